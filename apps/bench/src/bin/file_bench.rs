//! `file_bench`: a big file over loopback, direct and relayed, next to a raw TCP copy of the
//! same file measured in the same run, with the sender's and receiver's peak memory.
//!
//! The parent process writes the file, runs the server (the smol server driver with its relay
//! rate limit lifted, in this process) and the raw copies, and starts the sender and the
//! receiver as **child processes** of this same binary (`file_bench sender …` / `receiver …`),
//! each a full `breeze_smol::Client` with `DiskFiles`; each child reports its own peak RSS
//! (`VmHWM` from `/proc/self/status`) at the end. The raw copy is two threads: one reads the
//! file and writes it to a loopback socket, the other reads the socket and writes a file, both
//! with plain 256 KiB `read`/`write` calls (no `sendfile`/`splice`). A second raw copy, the
//! "checked" one, also does the one thing Breeze's receiver must that costs the most: it
//! hashes the bytes with BLAKE3 as it writes them. The ratio to it is about what the protocol
//! and the durability cost. (It does not sync: a sync at the end of a plain copy waits for
//! the whole file to reach the disk, which Breeze's write-behind spreads over the transfer.)
//!
//! Timings: the receiver's clock runs from `accept_file` to the verified `FileDone` (every
//! byte written and the content hash checked); the sender's hashing before the offer is
//! reported on its own. Nothing but loopback; files go to a temporary directory (or `--dir`)
//! and are deleted afterwards.

use breeze_core::client::{Direction, Event, FileEvent, Route};
use breeze_core::server::ServerConfig;
use breeze_core::wire::UserName;
use breeze_smol::{Client, ClientOptions, DiskFiles, MemoryHost, ServerDriver, ServerStats};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator `breeze` uses, so the transfer costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MIB: u64 = 1024 * 1024;
/// Every wait is bounded: a transfer slower than this has failed the benchmark anyway.
const PATIENCE: Duration = Duration::from_secs(600);
/// Buffer of each side of the raw copy.
const RAW_BUFFER: usize = 256 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "file_bench",
    about = "File transfer over loopback: direct and relayed, against a raw TCP copy (see BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// File size in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Where the file and the received copies go (default: a fresh temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Which transfers to measure.
    #[arg(long, value_enum, default_value = "both")]
    mode: Modes,
    /// Measurements of each kind, interleaved (raw, Breeze, raw, Breeze…): the machine is
    /// shared, so the best of several is reported next to the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Modes {
    Direct,
    Relay,
    Both,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// (internal) Offers `file` to `to` and reports when it is done.
    #[command(hide = true)]
    Sender {
        #[arg(long)]
        server: SocketAddr,
        #[arg(long)]
        user: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        relay: bool,
    },
    /// (internal) Accepts the first offer into `dir` and reports when it is done.
    #[command(hide = true)]
    Receiver {
        #[arg(long)]
        server: SocketAddr,
        #[arg(long)]
        user: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        relay: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.role {
        Some(Role::Sender {
            server,
            user,
            to,
            file,
            relay,
        }) => smol::block_on(sender(server, &user, &to, &file, relay)),
        Some(Role::Receiver {
            server,
            user,
            dir,
            relay,
        }) => smol::block_on(receiver(server, &user, &dir, relay)),
        None => bench(cli.size_mib, cli.dir, cli.mode, cli.rounds.max(1)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("file_bench: {message}");
            ExitCode::FAILURE
        }
    }
}

// ---- the parent ---------------------------------------------------------------------------

/// One kind of transfer, measured `rounds` times next to as many raw copies.
struct Measured {
    mode: &'static str,
    /// MB/s of each round.
    raw: Vec<f64>,
    /// The raw copy that also hashes and syncs what it receives.
    checked: Vec<f64>,
    breeze: Vec<f64>,
    /// Seconds the sender spent hashing before its offer, per round.
    hashing: Vec<f64>,
    /// Peak RSS (KiB) and CPU seconds (user + system) of each child, worst round.
    sender_hwm_kib: u64,
    receiver_hwm_kib: u64,
    sender_cpu: Vec<f64>,
    receiver_cpu: Vec<f64>,
    /// This process's CPU seconds during the transfer: the server's (it relays or idles).
    server_cpu: Vec<f64>,
    /// CPU seconds of the raw copy, both ends.
    raw_cpu: Vec<f64>,
}

fn bench(size_mib: u64, dir: Option<PathBuf>, modes: Modes, rounds: usize) -> Result<(), String> {
    let temp;
    let dir = match dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
            temp.path().to_path_buf()
        }
    };
    let size = size_mib * MIB;
    let file = dir.join("payload.bin");
    eprintln!("writing {} MiB to {}", size_mib, file.display());
    write_payload(&file, size).map_err(|e| format!("cannot write the payload: {e}"))?;

    let (server, stats, _stop) = start_server()?;
    let mut results = Vec::new();
    let wanted: &[(&'static str, bool)] = match modes {
        Modes::Direct => &[("direct", false)],
        Modes::Relay => &[("relayed", true)],
        Modes::Both => &[("direct", false), ("relayed", true)],
    };
    let mut runs = 0;
    for (mode, relay) in wanted {
        let mut measured = Measured {
            mode,
            raw: Vec::new(),
            checked: Vec::new(),
            breeze: Vec::new(),
            hashing: Vec::new(),
            sender_hwm_kib: 0,
            receiver_hwm_kib: 0,
            sender_cpu: Vec::new(),
            receiver_cpu: Vec::new(),
            server_cpu: Vec::new(),
            raw_cpu: Vec::new(),
        };
        for round in 1..=rounds {
            let before = cpu_seconds();
            let raw = mb_s(size, raw_copy(&file, &dir.join("raw-copy.bin"), false)?);
            measured.raw_cpu.push(cpu_seconds() - before);
            let checked = mb_s(size, raw_copy(&file, &dir.join("raw-copy.bin"), true)?);
            let out = dir.join(format!("received-{mode}"));
            runs += 1;
            let before = cpu_seconds();
            let (sent, received) = transfer(server, &file, &out, *relay, &format!("{runs}"))?;
            measured.server_cpu.push(cpu_seconds() - before);
            let _ = std::fs::remove_dir_all(&out);
            let breeze = size as f64 / received.value("secs")? / 1e6;
            let throttled = stats.get().throttled_file_bytes;
            eprintln!(
                "{mode} round {round}: raw {raw:.0} MB/s, checked raw {checked:.0} MB/s, \
                 Breeze {breeze:.0} MB/s (relay dropped {:.1} MiB so far, held back for the \
                 recipient)",
                throttled as f64 / MIB as f64
            );
            measured.raw.push(raw);
            measured.checked.push(checked);
            measured.breeze.push(breeze);
            measured.hashing.push(sent.value("hash_secs")?);
            measured.sender_hwm_kib = measured.sender_hwm_kib.max(sent.value("hwm_kib")? as u64);
            measured.receiver_hwm_kib = measured
                .receiver_hwm_kib
                .max(received.value("hwm_kib")? as u64);
            measured.sender_cpu.push(sent.value("cpu_secs")?);
            measured.receiver_cpu.push(received.value("cpu_secs")?);
        }
        results.push(measured);
    }
    let _ = std::fs::remove_file(&file);
    print_table(size_mib, rounds, &results);
    Ok(())
}

fn mb_s(size: u64, took: Duration) -> f64 {
    size as f64 / took.as_secs_f64() / 1e6
}

/// Pseudo-random bytes (xorshift), so nothing along the way can compress or dedupe them.
fn write_payload(path: &Path, size: u64) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(4 * MIB as usize, std::fs::File::create(path)?);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..size / MIB {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        out.write_all(&block)?;
    }
    // On disk before anything is measured, so its write-back does not slow the first run.
    out.into_inner()?.sync_all()
}

/// The server's address, and a handle that stops it when dropped.
fn start_server() -> Result<(SocketAddr, ServerStats, smol::channel::Sender<()>), String> {
    let mut config = ServerConfig::default();
    // The relay's per-user file budget protects chat on a shared server; here it would only
    // measure itself.
    config.file_relay.bytes_per_second = 1 << 40;
    config.file_relay.burst = 64 * MIB;
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        smol::block_on(async move {
            let listener = match smol::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(listener) => listener,
                Err(e) => return drop(addr_tx.send(Err(e.to_string()))),
            };
            let driver = ServerDriver::new(listener, config, MemoryHost::welcoming());
            let started = driver.local_addr().map(|addr| (addr, driver.stats()));
            let _ = addr_tx.send(started.map_err(|e| e.to_string()));
            let _ = driver
                .run(async move {
                    let _ = stopped.recv().await;
                })
                .await;
        })
    });
    let (addr, stats) = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the server did not start".to_string())??;
    Ok((addr, stats, stop))
}

/// Copies `from` to `to` through a loopback TCP connection; the time until the last byte is
/// in the destination file. `checked`: the receiving end also hashes the bytes (BLAKE3) as it
/// writes them, as Breeze's receiver does.
fn raw_copy(from: &Path, to: &Path, checked: bool) -> Result<Duration, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let to = to.to_path_buf();
    let start = Instant::now();
    let receiving = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut socket, _) = listener.accept()?;
        let mut out = std::fs::File::create(&to)?;
        let mut buffer = vec![0u8; RAW_BUFFER];
        let mut hasher = blake3::Hasher::new();
        let mut total = 0;
        loop {
            let n = socket.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            if checked {
                hasher.update(&buffer[..n]);
            }
            out.write_all(&buffer[..n])?;
            total += n as u64;
        }
        if checked {
            std::hint::black_box(hasher.finalize());
        }
        drop(out);
        std::fs::remove_file(&to)?;
        Ok(total)
    });
    let sent = (|| -> std::io::Result<u64> {
        let mut socket = TcpStream::connect(addr)?;
        let mut file = std::fs::File::open(from)?;
        let mut buffer = vec![0u8; RAW_BUFFER];
        let mut total = 0;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            socket.write_all(&buffer[..n])?;
            total += n as u64;
        }
        Ok(total)
    })()
    .map_err(|e| format!("raw copy, sending: {e}"))?;
    let received = receiving
        .join()
        .map_err(|_| "raw copy receiver panicked".to_string())?
        .map_err(|e| format!("raw copy, receiving: {e}"))?;
    if received != sent {
        return Err(format!("raw copy: sent {sent}, received {received}"));
    }
    Ok(start.elapsed())
}

/// `key=value` pairs a child printed on its last line.
struct Report(Vec<(String, String)>);

impl Report {
    fn value(&self, key: &str) -> Result<f64, String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| format!("child report has no {key}"))
    }
}

/// Runs one transfer between a sender and a receiver process; their reports.
fn transfer(
    server: SocketAddr,
    file: &Path,
    out: &Path,
    relay: bool,
    tag: &str,
) -> Result<(Report, Report), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (alice, bob) = (format!("alice{tag}"), format!("bob{tag}"));
    let spawn = |args: Vec<String>| {
        let mut command = Command::new(&exe);
        command.args(args).stdout(Stdio::piped());
        if relay {
            command.arg("--relay");
        }
        command
            .spawn()
            .map_err(|e| format!("cannot start a child: {e}"))
    };
    let server = server.to_string();
    let mut receiver = spawn(vec![
        "receiver".into(),
        "--server".into(),
        server.clone(),
        "--user".into(),
        bob.clone(),
        "--dir".into(),
        out.display().to_string(),
    ])?;
    let mut sender = spawn(vec![
        "sender".into(),
        "--server".into(),
        server,
        "--user".into(),
        alice,
        "--to".into(),
        bob,
        "--file".into(),
        file.display().to_string(),
    ])?;
    let report = |child: &mut std::process::Child| -> Result<Report, String> {
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let last = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .last()
            .ok_or("the child said nothing")?;
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a child failed ({status}): {last}"));
        }
        Ok(Report(
            last.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    };
    let receiver_report = report(&mut receiver)?;
    let sender_report = report(&mut sender)?;
    Ok((sender_report, receiver_report))
}

fn best(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn print_table(size_mib: u64, rounds: usize, results: &[Measured]) {
    println!(
        "| {size_mib} MiB, {rounds} rounds | raw TCP copy (best / median) | Breeze (best / median) | ratio of bests (of medians) | target | checked raw copy (best / median); Breeze's ratio | sender hashing | CPU s per GiB: raw copy; Breeze sender / receiver / server | peak RSS, sender / receiver |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let per_gib = |cpu: &[f64]| median(cpu) * 1024.0 / size_mib as f64;
    for m in results {
        let target = if m.mode == "direct" { 70.0 } else { 35.0 };
        let ratio = 100.0 * best(&m.breeze) / best(&m.raw);
        let ratio_median = 100.0 * median(&m.breeze) / median(&m.raw);
        let checked = 100.0 * best(&m.breeze) / best(&m.checked);
        let checked_median = 100.0 * median(&m.breeze) / median(&m.checked);
        println!(
            "| {} | {:.0} / {:.0} MB/s | {:.0} / {:.0} MB/s | {ratio:.0} % ({ratio_median:.0} %) | ≥ {target:.0} % ({}) | {:.0} / {:.0} MB/s; {checked:.0} % ({checked_median:.0} %) | {:.2} s | {:.2}; {:.2} / {:.2} / {:.2} | {:.1} / {:.1} MiB |",
            m.mode,
            best(&m.raw),
            median(&m.raw),
            best(&m.breeze),
            median(&m.breeze),
            if ratio >= target { "met" } else { "missed" },
            best(&m.checked),
            median(&m.checked),
            median(&m.hashing),
            per_gib(&m.raw_cpu),
            per_gib(&m.sender_cpu),
            per_gib(&m.receiver_cpu),
            per_gib(&m.server_cpu),
            m.sender_hwm_kib as f64 / 1024.0,
            m.receiver_hwm_kib as f64 / 1024.0,
        );
    }
}

// ---- the children -------------------------------------------------------------------------

fn start_client(server: SocketAddr, user: &str, relay: bool) -> Result<Client, String> {
    let user = UserName::new(user).map_err(|e| e.to_string())?;
    let mut options = ClientOptions::new(server, user, "pw");
    options.p2p_listen = "127.0.0.1:0".parse().expect("an address");
    options.direct_channels = !relay;
    options.files = Arc::new(DiskFiles::new());
    Client::start(options).map_err(|e| e.to_string())
}

/// The next event matching `want`, within [`PATIENCE`].
async fn wait_for(
    client: &Client,
    what: &str,
    want: impl Fn(&Event) -> bool,
) -> Result<Event, String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let next = futures_or(client.next_event(), deadline).await;
        match next {
            Some(Some(event)) if want(&event) => return Ok(event),
            Some(Some(Event::File(FileEvent::Failed { failure, .. }))) => {
                return Err(format!("transfer failed: {failure}"))
            }
            Some(Some(_)) => {}
            Some(None) => return Err(format!("the client stopped before {what}")),
            None => return Err(format!("no {what} within {PATIENCE:?}")),
        }
    }
}

async fn futures_or<T>(
    future: impl std::future::Future<Output = T>,
    deadline: Instant,
) -> Option<T> {
    smol::future::or(async { Some(future.await) }, async {
        smol::Timer::at(deadline).await;
        None
    })
    .await
}

async fn sender(
    server: SocketAddr,
    user: &str,
    to: &str,
    file: &Path,
    relay: bool,
) -> Result<(), String> {
    let client = start_client(server, user, relay)?;
    let to = UserName::new(to).map_err(|e| e.to_string())?;
    // The receiver starts first; wait until it is online (and, for direct, the channel is up).
    let peer = to.clone();
    wait_for(&client, "the receiver", move |e| match e {
        Event::Route { peer: p, route, .. } if *p == peer => relay || *route == Route::Direct,
        Event::Presence { user, online: true } if *user == peer => relay,
        _ => false,
    })
    .await?;
    let start = Instant::now();
    let shared = client
        .offer_file(&to, file)
        .await
        .map_err(|e| format!("cannot offer: {e}"))?;
    let hashed = start.elapsed();
    let done = wait_for(&client, "the end", |e| {
        matches!(
            e,
            Event::File(FileEvent::Done {
                direction: Direction::Sending,
                ..
            })
        )
    })
    .await?;
    let total = start.elapsed();
    if !matches!(done, Event::File(FileEvent::Done { verified: true, .. })) {
        return Err(format!("not verified: {done:?}"));
    }
    client.logout().await;
    println!(
        "sender id={} hash_secs={:.3} total_secs={:.3} hwm_kib={} {}",
        shared.id,
        hashed.as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_kib(),
        cpu_times()
    );
    Ok(())
}

async fn receiver(server: SocketAddr, user: &str, dir: &Path, relay: bool) -> Result<(), String> {
    let client = start_client(server, user, relay)?;
    let offer = wait_for(&client, "an offer", |e| {
        matches!(e, Event::File(FileEvent::Offered { .. }))
    })
    .await?;
    let Event::File(FileEvent::Offered { from, id, size, .. }) = offer else {
        unreachable!("matched above")
    };
    let start = Instant::now();
    client
        .accept_file(&from, id, dir)
        .await
        .map_err(|e| format!("cannot accept: {e}"))?;
    let done = wait_for(&client, "the end", |e| {
        matches!(
            e,
            Event::File(FileEvent::Done {
                direction: Direction::Receiving,
                ..
            })
        )
    })
    .await?;
    let took = start.elapsed();
    if !matches!(done, Event::File(FileEvent::Done { verified: true, .. })) {
        return Err(format!("not verified: {done:?}"));
    }
    client.logout().await;
    println!(
        "receiver bytes={size} secs={:.3} hwm_kib={} {}",
        took.as_secs_f64(),
        peak_rss_kib(),
        cpu_times()
    );
    Ok(())
}

/// Peak resident memory of this process so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `cpu_secs=…`, for a child's report.
fn cpu_times() -> String {
    format!("cpu_secs={:.3}", cpu_seconds())
}

/// CPU time (user + system, all threads) this process used so far, from `getrusage`.
fn cpu_seconds() -> f64 {
    // SAFETY: `getrusage` only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
