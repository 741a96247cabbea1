#![no_main]
//! See `breeze_fuzz::server_streams`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| breeze_fuzz::server_streams::run(data));
