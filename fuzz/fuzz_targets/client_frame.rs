//! `cargo +nightly fuzz run client_frame`: see [`rtc::fuzzing::client_frame`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtc::fuzzing::client_frame(data));
