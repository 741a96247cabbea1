#![no_main]
//! See `breeze_fuzz::client_streams`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| breeze_fuzz::client_streams::run(data));
