//! The `breeze-server` binary as a separate process, so its memory is its own.

use crate::system::{self, Memory};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the server gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    /// Lines the server logged (at warn level and above unless RUST_LOG says otherwise).
    log_lines: Arc<AtomicU64>,
    _stdout: BufReader<ChildStdout>,
    /// The data directory, when the process owns a throw-away one.
    _data: Option<tempfile::TempDir>,
}

/// `--server-bin`, or `breeze-server` next to this binary (both are in `target/release`).
pub fn find_binary(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?;
    let sibling = me.with_file_name("breeze-server");
    if sibling.is_file() {
        Ok(sibling)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p breeze-server) or pass \
             --server-bin",
            sibling.display()
        ))
    }
}

impl ServerProcess {
    /// Starts `breeze-server --listen 127.0.0.1:0 --open-registration` (per-address limits raised) on a fresh data
    /// directory and waits for its `listening on ADDR` line.
    pub fn start(binary: &Path, max_connections_per_ip: usize) -> Result<ServerProcess, String> {
        let data = tempfile::Builder::new()
            .prefix("breeze-bench-")
            .tempdir()
            .map_err(|e| format!("cannot create a data directory: {e}"))?;
        let mut server = ServerProcess::start_on(binary, max_connections_per_ip, data.path())?;
        server._data = Some(data);
        Ok(server)
    }

    /// Like [`start`](Self::start), on the data directory `data`, which outlives the process
    /// (a restart, or a later run, finds the accounts and keys in it).
    pub fn start_on(
        binary: &Path,
        max_connections_per_ip: usize,
        data: &Path,
    ) -> Result<ServerProcess, String> {
        let mut command = Command::new(binary);
        command
            .arg("--data")
            .arg(data)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--open-registration",
                "--no-announce",
            ])
            .args([
                "--max-connections-per-ip",
                &max_connections_per_ip.to_string(),
                // Every load client logs in from 127.0.0.1, and checks in progress count.
                "--max-login-failures-per-ip",
                "1000000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            // Logins are logged at info: 10,000 lines nobody reads. Warnings are what count.
            command.env("RUST_LOG", "warn");
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let log_lines = Arc::new(AtomicU64::new(0));
        if let Some(stderr) = child.stderr.take() {
            let lines = log_lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if lines.fetch_add(1, Ordering::Relaxed) < 20 {
                        eprintln!("  [breeze-server] {line}");
                    }
                }
            });
        }
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} did not start (first line: {first:?})",
                binary.display()
            ));
        };
        Ok(ServerProcess {
            child,
            addr,
            log_lines,
            _stdout: stdout,
            _data: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn memory(&self) -> Result<Memory, String> {
        system::memory(Some(self.pid()))
    }

    /// Lines the server has logged so far.
    pub fn log_lines(&self) -> u64 {
        self.log_lines.load(Ordering::Relaxed)
    }

    /// Stops the server gracefully (SIGTERM), killing it if it takes too long. A server shutting
    /// down says goodbye to every client at once, rather than announcing each client's
    /// departure to all who remain, so stop it before the load clients leave.
    pub fn stop(&mut self) -> Result<(), String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return match status.success() {
                true => Ok(()),
                false => Err(format!("breeze-server exited with {status}")),
            };
        }
        // SAFETY: kill only sends a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("breeze-server exited with {status}")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("breeze-server did not stop within 15 s of SIGTERM".into());
                }
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
