//! The log setup both Breeze programs share (feature `logging`): the `tracing` events of the
//! drivers and the application, filtered by `RUST_LOG`, to stderr or appended to a file.

use std::io::IsTerminal;
use std::path::Path;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. The filter is `RUST_LOG`, or `default` when it is not set;
/// with neither, nothing is installed and nothing is logged. The log goes to stderr,
/// coloured only when a person watches it (a terminal), or plain text appended to
/// `log_file`.
pub fn init_logging(default: Option<&str>, log_file: Option<&Path>) -> Result<(), String> {
    let filter = match (EnvFilter::try_from_default_env(), default) {
        (Ok(filter), _) => filter,
        (Err(_), Some(default)) => EnvFilter::new(default),
        (Err(_), None) => return Ok(()),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}
