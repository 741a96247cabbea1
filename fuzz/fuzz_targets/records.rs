#![no_main]
//! See `breeze_fuzz::records`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| breeze_fuzz::records::run(data));
