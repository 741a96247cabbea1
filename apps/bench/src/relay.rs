//! `relay`: chat through the server relay, measured three ways in one run.
//!
//! 1. **Breeze, in process**: the real `ServerDriver` with a `MemoryHost::welcoming()`, its
//!    owner and socket tasks on smol's global executor as in `breeze-server`, and N load
//!    clients: by default lean wire-level ones (`breeze_wire.rs`), with `--load core` one real
//!    `breeze_core::Client` each (`core_client.rs`, direct channels off).
//! 2. **Raw forwarder** (`raw.rs`): the same load without any protocol but the encryption
//!    (the same XX handshake and AES-GCM records), for the ratio.
//! 3. **Breeze, `breeze-server` process**: the same load against the real binary, whose
//!    memory (`/proc/<pid>/status`) is the server's alone.
//!
//! Throughput is messages received over the time from the first send to the last receipt;
//! latency is from the send stamp in the text to the receiver's `Message` event. The headline
//! is the server's CPU per delivered message (its process's, or every thread here but the
//! load's): a load generator that is itself busy limits the rate, not the server's cost.
//! Each client writes to a bounded random set of others (`--correspondents`, the same set in
//! every run), so pair keys are made once per pair, not once per message.

use crate::breeze_wire::{self, Sealing};
use crate::core_client::{self, Fleet};
use crate::in_process::InProcessServer;
use crate::load::{
    self, ms, run_fleet, thousands, ClientReport, Correspondents, Plan, Progress, Summary,
};
use crate::raw::{self, Forwarder, FrameSizes, RawFleet};
use crate::server_process::{self, ServerProcess};
use crate::system::{self, Memory};
use breeze_core::server::Stats;
use smol::lock::Semaphore;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The targets this benchmark was written for (2-core machine, load generator included).
const TARGET_RATE: f64 = 500_000.0;
const TARGET_P99: Duration = Duration::from_millis(50);
const TARGET_CLIENTS: usize = 1000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Load clients, each a `breeze_core::Client` on its own connection.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Messages in all (every run relays this many).
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Bytes of chat text per message.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages each client may have sent and not yet seen acknowledged.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Threads running the load clients (the server under test has its own).
    #[arg(long, default_value_t = 1)]
    load_threads: usize,
    /// Give up on a phase (logging in, relaying) after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Skip the third run, against a `breeze-server` process.
    #[arg(long)]
    no_process: bool,
    /// The `breeze-server` binary (default: next to this one).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Run only this one of the three (for profiling); no ratio then.
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Which load clients drive the Breeze runs: `wire`, lean clients speaking the protocol
    /// at the wire (`breeze_wire.rs`); `wire-stand-in`, the same with stand-ins for the
    /// end-to-end seals (the server's work unchanged, the load's lighter); or `core`, one real
    /// client core each (`core_client.rs`).
    #[arg(long, value_enum, default_value_t = Load::Wire)]
    load: Load,
    /// How many others each client writes to, at random among them (0: everyone). Bounded,
    /// the fleet makes its pair keys once (the wire clients before the timed window).
    #[arg(long, default_value_t = 16)]
    correspondents: usize,
    /// Logins in progress at once. The `breeze-server` process checks passwords (argon2) one
    /// at a time and a login must finish within 10 s of connecting: many more would time out.
    #[arg(long, default_value_t = 32)]
    login_concurrency: usize,
    /// Pace the load: this many messages a second over the whole fleet, each client sending
    /// on a schedule of its own (the window still caps what is unacknowledged), instead of
    /// as fast as the windows allow. For the server's cost and latency at light load.
    #[arg(long, value_name = "MSGS_PER_SECOND")]
    rate: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Load {
    Wire,
    WireStandIn,
    Core,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    InProcess,
    Raw,
    Process,
}

/// How long the clients stay connected and quiet after relaying before the memory is
/// measured again: a few of the server's sweeps, which give idle output buffers back.
const QUIET_AFTER: Duration = Duration::from_secs(2);

/// One run's figures.
struct Outcome {
    name: &'static str,
    summary: Summary,
    report: ClientReport,
    /// CPU used per thread while relaying, in this process (and in the server process).
    cpu_here: Vec<(String, Duration)>,
    cpu_server: Option<Vec<(String, Duration)>>,
    /// The server's writes while relaying.
    server_writes: Option<u64>,
    login_time: Duration,
    /// Memory of whatever `memory` measured: before, logged in and idle, after relaying, and
    /// [`QUIET_AFTER`] later.
    memory: Option<[Memory; 4]>,
    stats: Option<Stats>,
}

pub fn run(args: Args) -> Result<(), String> {
    if args.clients < 2 || args.size < 16 || args.window == 0 || args.messages == 0 {
        return Err("need at least 2 clients, 16-byte texts, a window and a message".into());
    }
    if args.rate.is_some() && args.load == Load::Core {
        return Err("--rate paces the wire load clients and the raw ones, not --load core".into());
    }
    let plan = Plan {
        clients: args.clients,
        messages: args.messages,
        size: args.size,
        window: args.window,
        rate: args.rate,
    };
    // This process holds both ends of every connection in the in-process runs.
    system::ensure_open_files(2 * args.clients as u64 + 256)?;
    let wanted = |run: Only| args.only.is_none_or(|only| only == run);
    let server_bin = match args.no_process || !wanted(Only::Process) {
        true => None,
        false => Some(server_process::find_binary(args.server_bin.as_deref())?),
    };
    let names = core_client::names("load", args.clients);
    let sizes = FrameSizes::like_breeze(args.size, &names[args.clients - 1]);
    println!(
        "relay: {} clients ({} load), each writing to {} others, {} messages of {} B text \
         (relay frame {} B, ack frame {} B), window {} per client, {} load thread(s), {} CPUs",
        thousands(args.clients as u64),
        match args.load {
            Load::Wire => "wire-level",
            Load::WireStandIn => "wire-level, stand-in end-to-end seals",
            Load::Core => "client-core",
        },
        correspondents(&args).len(),
        thousands(args.messages),
        args.size,
        sizes.chat,
        sizes.ack,
        args.window,
        args.load_threads,
        system::cpus()
    );
    println!("load average at start: {}", system::load_average());

    let mut outcomes = Vec::new();
    if wanted(Only::InProcess) {
        outcomes.push(breeze_in_process(&args, plan)?);
    }
    if wanted(Only::Raw) {
        outcomes.push(raw_forwarder(&args, plan, sizes)?);
    }
    if let Some(binary) = server_bin {
        outcomes.push(breeze_process(&args, plan, &binary)?);
    }
    println!("load average at end:   {}", system::load_average());
    print_table(&args, &outcomes);
    let broken: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.summary.received < args.messages || !o.report.problems.is_empty())
        .map(|o| o.name)
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "lost messages or problems in: {}",
            broken.join(", ")
        ))
    }
}

fn breeze_in_process(args: &Args, plan: Plan) -> Result<Outcome, String> {
    eprintln!("1/3 Breeze, in-process server driver");
    let before = system::memory(None)?;
    let server = InProcessServer::start(args.clients)?;
    let progress = Arc::new(Progress::new(plan.messages));
    let fleet = Arc::new(Fleet {
        server: server.addr,
        names: core_client::names("load", plan.clients),
        register: false,
        key_login: false,
        server_key: Some(server.key),
        plan,
        correspondents: correspondents(args),
        progress: progress.clone(),
        login_slots: Arc::new(Semaphore::new(args.login_concurrency.max(1))),
    });
    let (report, watched) = run_fleet(
        args.load_threads,
        plan.clients,
        |i| load_client(args.load, fleet.clone(), i),
        || watch(args, &progress, || system::memory(None).ok(), None),
    );
    let stats = server.stop();
    let watched = watched?;
    Ok(outcome(
        "Breeze, in-process server",
        report,
        watched,
        before,
        Some(stats),
    ))
}

fn raw_forwarder(args: &Args, plan: Plan, sizes: FrameSizes) -> Result<Outcome, String> {
    eprintln!("2/3 raw forwarder (XX handshake, AES-GCM records)");
    let before = system::memory(None)?;
    let forwarder = Forwarder::start(plan.clients).map_err(|e| format!("cannot listen: {e}"))?;
    let progress = Arc::new(Progress::new(plan.messages));
    let fleet = Arc::new(RawFleet {
        server: forwarder.addr,
        server_key: forwarder.key,
        plan,
        correspondents: correspondents(args),
        sizes,
        progress: progress.clone(),
    });
    let (report, watched) = run_fleet(
        args.load_threads,
        plan.clients,
        |i| raw::run(fleet.clone(), i),
        || watch(args, &progress, || system::memory(None).ok(), None),
    );
    let writes = forwarder.writes.load(std::sync::atomic::Ordering::Relaxed);
    drop(forwarder);
    let mut watched = watched?;
    // Its writes are `send`s, which /proc/<pid>/io does not count: it counts them itself.
    watched.server_writes = Some(writes);
    Ok(outcome(
        "raw encrypted forwarder",
        report,
        watched,
        before,
        None,
    ))
}

fn breeze_process(args: &Args, plan: Plan, binary: &std::path::Path) -> Result<Outcome, String> {
    eprintln!("3/3 Breeze, breeze-server process (registering accounts: argon2, one at a time)");
    let mut server = ServerProcess::start(binary, args.clients + 64)?;
    let pid = server.pid();
    // Let it settle (the store is opened and the dummy hash made before it listens).
    std::thread::sleep(Duration::from_millis(500));
    let before = server.memory()?;
    let progress = Arc::new(Progress::new(plan.messages));
    let fleet = Arc::new(Fleet {
        server: server.addr,
        names: core_client::names("load", plan.clients),
        register: true,
        key_login: false,
        // The process made its key in its fresh data directory: trusted on first use.
        server_key: None,
        plan,
        correspondents: correspondents(args),
        progress: progress.clone(),
        login_slots: Arc::new(Semaphore::new(args.login_concurrency.max(1))),
    });
    let (report, (watched, log_lines, stopped)) = run_fleet(
        args.load_threads,
        plan.clients,
        |i| load_client(args.load, fleet.clone(), i),
        || {
            let watched = watch(
                args,
                &progress,
                || system::memory(Some(pid)).ok(),
                Some(pid),
            );
            (watched, server.log_lines(), server.stop())
        },
    );
    let mut outcome = outcome(
        "Breeze, breeze-server process",
        report,
        watched?,
        before,
        None,
    );
    if log_lines > 0 {
        outcome
            .report
            .problem(format!("{log_lines} server log lines at warn or above"));
    }
    stopped?;
    Ok(outcome)
}

/// Whom each client writes to: the same for every run of one invocation.
fn correspondents(args: &Args) -> Correspondents {
    Correspondents::new(args.clients, args.correspondents, 0x5eed)
}

/// One load client of the kind asked for.
fn load_client(
    load: Load,
    fleet: Arc<Fleet>,
    i: usize,
) -> Pin<Box<dyn Future<Output = ClientReport>>> {
    match load {
        Load::Wire => Box::pin(breeze_wire::run(fleet, i, Sealing::Real)),
        Load::WireStandIn => Box::pin(breeze_wire::run(fleet, i, Sealing::StandIn)),
        Load::Core => Box::pin(core_client::run(fleet, i)),
    }
}

/// What the watching thread saw.
struct Watched {
    login_time: Duration,
    memory_idle: Option<Memory>,
    memory_after: Option<Memory>,
    memory_quiet: Option<Memory>,
    cpu_here: Vec<(String, Duration)>,
    cpu_server: Option<Vec<(String, Duration)>>,
    server_writes: Option<u64>,
}

/// Waits for every client to log in and see the others, starts the senders, waits for every
/// message, and always ends the load.
fn watch(
    args: &Args,
    progress: &Progress,
    memory: impl Fn() -> Option<Memory>,
    server_pid: Option<u32>,
) -> Result<Watched, String> {
    let result = watch_phases(args, progress, memory, server_pid);
    progress.finish();
    result
}

fn watch_phases(
    args: &Args,
    progress: &Progress,
    memory: impl Fn() -> Option<Memory>,
    server_pid: Option<u32>,
) -> Result<Watched, String> {
    let limit = Duration::from_secs(args.timeout);
    let clients = args.clients;
    let start = Instant::now();
    let all_in = load::wait_reporting(
        "logging in",
        limit,
        || progress.get(&progress.ready) >= clients,
        || {
            format!(
                "{} connected, {} logged in, {} see everyone, {} problems",
                progress.get(&progress.connected),
                progress.get(&progress.logged_in),
                progress.get(&progress.ready),
                progress.problems()
            )
        },
    );
    if !all_in {
        return Err(format!(
            "only {} of {clients} clients logged in and saw everyone within {} s",
            progress.get(&progress.ready),
            args.timeout
        ));
    }
    let login_time = start.elapsed();
    // Presence has settled: what is left is the idle cost of the connections.
    std::thread::sleep(Duration::from_millis(500));
    let memory_idle = memory();
    let cpu = |pid| system::thread_cpu(pid).unwrap_or_default();
    let (here_before, server_before) = (cpu(None), server_pid.map(|pid| cpu(Some(pid))));
    let writes_before = server_pid.and_then(system::writes);
    eprintln!(
        "  … all logged in and seeing each other after {:.1} s; relaying",
        login_time.as_secs_f64()
    );
    progress.start();
    let complete = load::wait_reporting(
        "relaying",
        limit,
        || progress.received() >= args.messages,
        || {
            format!(
                "{} of {} received, {} problems",
                thousands(progress.received()),
                thousands(args.messages),
                progress.problems()
            )
        },
    );
    let (here_after, server_after) = (cpu(None), server_pid.map(|pid| cpu(Some(pid))));
    let writes_after = server_pid.and_then(system::writes);
    let memory_after = memory();
    // The same connections, quiet again: what relaying left behind (sweeps run every 0.5 s and
    // give back idle output buffers), to compare with the quiet state before it.
    std::thread::sleep(QUIET_AFTER);
    let memory_quiet = memory();
    if !complete {
        return Err(format!(
            "only {} of {} messages arrived within {} s",
            progress.received(),
            args.messages,
            args.timeout
        ));
    }
    Ok(Watched {
        login_time,
        memory_idle,
        memory_after,
        memory_quiet,
        cpu_here: system::cpu_between(&here_before, &here_after),
        server_writes: writes_before
            .zip(writes_after)
            .map(|(before, after)| after.saturating_sub(before)),
        cpu_server: server_before
            .zip(server_after)
            .map(|(before, after)| system::cpu_between(&before, &after)),
    })
}

impl Outcome {
    /// CPU while relaying: the server's (its process, or every thread here but the load's)
    /// and the load clients'.
    fn cpu_split(&self) -> (Duration, Duration) {
        let is_load = |name: &str| name.starts_with("load-");
        let sum = |it: &mut dyn Iterator<Item = &(String, Duration)>| it.map(|(_, t)| *t).sum();
        let load = sum(&mut self.cpu_here.iter().filter(|(n, _)| is_load(n)));
        let server = match &self.cpu_server {
            Some(cpu) => sum(&mut cpu.iter()),
            None => sum(&mut self.cpu_here.iter().filter(|(n, _)| !is_load(n))),
        };
        (server, load)
    }
}

fn outcome(
    name: &'static str,
    mut report: ClientReport,
    watched: Watched,
    before: Memory,
    stats: Option<Stats>,
) -> Outcome {
    let summary = report.summary();
    let memory = match (
        watched.memory_idle,
        watched.memory_after,
        watched.memory_quiet,
    ) {
        (Some(idle), Some(after), Some(quiet)) => Some([before, idle, after, quiet]),
        _ => None,
    };
    eprintln!(
        "    {} msgs/s, p50 {} ms, p99 {} ms",
        thousands(summary.rate as u64),
        ms(summary.p50),
        ms(summary.p99)
    );
    Outcome {
        name,
        summary,
        report,
        cpu_here: watched.cpu_here,
        cpu_server: watched.cpu_server,
        server_writes: watched.server_writes,
        login_time: watched.login_time,
        memory,
        stats,
    }
}

fn print_table(args: &Args, outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<32} {:>11} {:>9} {:>8} {:>8} {:>8} {:>14} {:>12}  problems",
        "run", "msgs/s", "elapsed", "p50 ms", "p99 ms", "max ms", "server µs/msg", "load µs/msg"
    );
    for o in outcomes {
        let s = &o.summary;
        let per_message = |cpu: Duration| cpu.as_secs_f64() * 1e6 / s.received.max(1) as f64;
        let (server, load) = o.cpu_split();
        println!(
            "{:<32} {:>11} {:>7.2} s {:>8} {:>8} {:>8} {:>14.2} {:>12.2}  {}",
            o.name,
            thousands(s.rate as u64),
            s.elapsed.as_secs_f64(),
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            per_message(server),
            per_message(load),
            o.report.problems_line()
        );
    }
    println!(
        "(server µs/msg: the server's CPU while relaying over the messages delivered: the \
         breeze-server process's, or this process's threads but the load's; load µs/msg: \
         the load threads')"
    );
    let rate = |name: &str| {
        outcomes
            .iter()
            .find(|o| o.name.starts_with(name))
            .map(|o| o.summary.rate)
    };
    if let (Some(breeze), Some(raw)) = (rate("Breeze, in"), rate("raw")) {
        println!("Breeze / raw (in-process server): {:.2}", breeze / raw);
    }
    if let (Some(breeze), Some(raw)) = (rate("Breeze, breeze-server"), rate("raw")) {
        println!("Breeze / raw (breeze-server process): {:.2}", breeze / raw);
    }
    println!();
    for o in outcomes {
        println!(
            "{}: logged in and presence settled in {:.1} s; {} sent, {} received, {} delivered{}",
            o.name,
            o.login_time.as_secs_f64(),
            thousands(o.report.sent),
            thousands(o.report.received),
            thousands(o.report.delivered),
            o.stats.map_or(String::new(), |s| format!(
                "; server relayed {}, stored {}",
                thousands(s.relayed),
                thousands(s.stored)
            ))
        );
        println!(
            "  CPU while relaying, this process: {}",
            system::cpu_line(&o.cpu_here)
        );
        if let Some(cpu) = &o.cpu_server {
            println!(
                "  CPU while relaying, breeze-server process: {}",
                system::cpu_line(cpu)
            );
        }
        if let Some(writes) = o.server_writes {
            println!(
                "  server writes while relaying (writev of the breeze-server process, or the \
                 forwarder's own count): {} ({:.2} per message)",
                thousands(writes),
                writes as f64 / o.summary.received.max(1) as f64
            );
        }
        if let Some([before, idle, after, quiet]) = o.memory {
            let whose = match o.cpu_server {
                Some(_) => "breeze-server process (its /proc/<pid>/status)",
                None => "this process (server and load together)",
            };
            println!(
                "  RSS of {whose}: {} before, {} with {} clients idle, {} after relaying \
                 (peak {}), {} once quiet again {} s later",
                before.rss,
                idle.rss,
                args.clients,
                after.rss,
                after.peak,
                quiet.rss,
                QUIET_AFTER.as_secs()
            );
        }
    }
    println!();
    let scope = if args.clients == TARGET_CLIENTS {
        String::new()
    } else {
        format!(
            " (the targets are set for {TARGET_CLIENTS} clients; this run has {})",
            args.clients
        )
    };
    for o in outcomes.iter().filter(|o| o.name.starts_with("Breeze")) {
        let s = &o.summary;
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        println!(
            "targets, {}: ≥ 500,000 msgs/s {} ({}); p99 < 50 ms {} ({} ms){scope}",
            o.name,
            verdict(s.rate >= TARGET_RATE),
            thousands(s.rate as u64),
            verdict(s.p99 < TARGET_P99),
            ms(s.p99)
        );
    }
}
