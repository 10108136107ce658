//! `cargo +nightly fuzz run bus_decode`: see [`rtc::fuzzing::bus_decode`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtc::fuzzing::bus_decode(data));
