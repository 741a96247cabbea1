#![no_main]
//! See `breeze_fuzz::scenario`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| breeze_fuzz::scenario::run(data));
