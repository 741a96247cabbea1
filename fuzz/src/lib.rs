//! Harnesses behind the cargo-fuzz targets in `fuzz_targets/`.
//!
//! Each target is one line calling `run` here, so the harness logic can be read, shared and
//! replayed in one place. Every harness panics on the first broken property; libFuzzer saves the
//! input under `fuzz/artifacts/<target>/`. Set `BREEZE_FUZZ_TRACE=1` while replaying a crash
//! (`cargo fuzz run <target> <file>`) to print every step the harness takes.

pub mod client_streams;
pub mod decode_frame;
pub mod gen;
pub mod link;
pub mod records;
pub mod scenario;
pub mod server_streams;
mod timers;

/// Whether to print each step (replaying a crash to turn it into a regression test).
pub fn tracing() -> bool {
    use std::sync::OnceLock;
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("BREEZE_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::tracing() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use trace;
