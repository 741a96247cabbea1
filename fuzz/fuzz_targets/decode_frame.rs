#![no_main]
//! See `breeze_fuzz::decode_frame`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| breeze_fuzz::decode_frame::run(data));
