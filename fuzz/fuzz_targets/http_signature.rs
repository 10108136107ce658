//! `cargo +nightly fuzz run http_signature`: see [`rtc::fuzzing::http_signature`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtc::fuzzing::http_signature(data));
