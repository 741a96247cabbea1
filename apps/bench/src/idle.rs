//! `idle`: a crowd of clients enrols, the server restarts, and the whole crowd comes back at
//! once, logging in with its keys; then it idles on its heartbeat. None may be disconnected,
//! and the server's memory per connection is measured as (RSS with every client logged in
//! and idle − RSS with none) / clients.
//!
//! 1. **Enrolments.** Every client logs in once with its password (registering its account:
//!    an argon2id hash each) and leaves, which binds its profile key (`profiles.rs`: derived from its
//!    name, so the same in every run). Paced by `--login-concurrency`: a login must finish
//!    within 10 s of connecting, and the server hashes one password per core at a time.
//!    Measured against a bare argon2id loop on as many threads, run next (`bare_argon2.rs`).
//!    With `--data DIR`, a directory enrolled by an earlier run is reused and this is skipped.
//! 2. **Returning logins.** The server restarts on the same data directory and every client
//!    connects at once, as after an upgrade, with a key login: no password, no hash.
//! 3. **Idle.** They hold for `--seconds` with heartbeats only.
//!
//! The first `--core-clients` of the returning crowd are lean `breeze_core::Client` drivers
//! (`core_client.rs`), the rest hello-login-ping clients (`wire_client.rs`, which explains
//! why).

use crate::core_client::{self, Fleet, PASSWORD};
use crate::load::Correspondents;
use crate::load::{self, run_fleet, thousands, ClientReport, Plan, Progress};
use crate::server_process::{self, ServerProcess};
use crate::system::{self, Kib, Memory};
use crate::wire_client::{self, Crowd};
use breeze_core::liveness::Heartbeat;
use breeze_core::wire::UserName;
use smol::lock::Semaphore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The target: server memory per idle connection.
const TARGET_PER_CONNECTION: Kib = Kib(8);
/// What a data directory enrolled by `idle` holds besides the server's files: how many
/// clients it enrolled.
const ENROLLED_MARK: &str = "bench-idle-enrolled";
/// How long the bare argon2id loop runs.
const BARE_ARGON2_FOR: Duration = Duration::from_secs(8);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Idle clients, all logged in at once.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// How long to hold them once every one is logged in.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// How many of the clients are `breeze_core::Client` cores (logging in first); each holds a
    /// record of every other user, about 520 bytes apiece.
    #[arg(long, default_value_t = 50)]
    core_clients: usize,
    /// Enrolments in progress at once: the server hashes one password per core at a time and
    /// a login must finish within 10 s of connecting, so many more would time out. (The
    /// returning clients all come at once.)
    #[arg(long, default_value_t = 64)]
    login_concurrency: usize,
    /// Give up if the clients are not all logged in after this many seconds.
    #[arg(long, default_value_t = 1800)]
    login_timeout: u64,
    /// Threads running the load clients.
    #[arg(long, default_value_t = 1)]
    load_threads: usize,
    /// The server's data directory, kept after the run. One enrolled by an earlier run with at
    /// least `--clients` clients is reused: the enrolments are skipped. Default: a fresh one.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The `breeze-server` binary (default: next to this one).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
}

/// What the enrolment phase measured.
struct Enrolled {
    took: Duration,
    /// Right after the last enrolment, and a few seconds later: the argon2 memory of the
    /// storm should be gone by then.
    after_storm: Memory,
    settled: Memory,
    problems: u64,
}

/// What the watching thread measured.
struct Held {
    login_time: Duration,
    empty: Memory,
    /// The server's memory when a tenth of the clients were logged in, and how many exactly:
    /// the growth from there on is what connections cost, without the one-off costs of the
    /// first logins (see `print_report`).
    early: Option<(usize, Memory)>,
    logged_in: Memory,
    held: Memory,
    problems_logging_in: u64,
    /// Logins the returning crowd tried again (timed out or refused for now).
    retried: u64,
    problems_holding: u64,
    cpu_logging_in: Vec<(String, Duration)>,
    cpu_holding: Vec<(String, Duration)>,
    /// Server log lines (warnings and errors) up to the end of the hold.
    log_lines: u64,
}

pub fn run(args: Args) -> Result<(), String> {
    if args.clients < 2 {
        return Err("need at least 2 clients".into());
    }
    let clients = args.clients;
    let core_clients = args.core_clients.min(clients);
    system::ensure_open_files(clients as u64 + 256)?;
    let binary = server_process::find_binary(args.server_bin.as_deref())?;
    let heartbeat = Heartbeat::default();
    println!(
        "idle: {} clients ({} client cores, {} wire-level), heartbeat {} s / dead after {} s, \
         held {} s, {} CPUs",
        thousands(clients as u64),
        thousands(core_clients as u64),
        thousands((clients - core_clients) as u64),
        heartbeat.interval.as_secs(),
        heartbeat.dead_after.as_secs(),
        args.seconds,
        system::cpus()
    );
    println!("load average at start: {}", system::load_average());
    let scratch;
    let data: &Path = match &args.data {
        Some(dir) => dir,
        None => {
            scratch = tempfile::Builder::new()
                .prefix("breeze-bench-")
                .tempdir()
                .map_err(|e| format!("cannot create a data directory: {e}"))?;
            scratch.path()
        }
    };
    let names = core_client::names("idle", clients);
    // The yardstick runs before and after the enrolments, and counts as their mean: the
    // machine's other load moves both alike.
    let threads = system::cpus();
    let bare_before = bare_argon2(threads);
    let enrolled = if enrolled_before(data) >= clients {
        println!("enrolments: reused from {}", data.display());
        None
    } else {
        let enrolled = enrol(&args, &binary, data, &names, heartbeat)?;
        std::fs::write(data.join(ENROLLED_MARK), format!("{clients}\n"))
            .map_err(|e| format!("cannot mark {} enrolled: {e}", data.display()))?;
        Some(enrolled)
    };
    let bare_after = bare_argon2(threads);
    let bare = (bare_before + bare_after) / 2.0;
    println!(
        "bare argon2id on {threads} threads: {bare_before:.1}/s before the enrolments, \
         {bare_after:.1}/s after"
    );

    // The restart: the same data directory, every client back at once with its key.
    let mut server = ServerProcess::start_on(&binary, clients + 64, data)?;
    std::thread::sleep(Duration::from_secs(3));
    let empty = server.memory()?;
    let progress = Arc::new(Progress::new(0));
    let login_slots = Arc::new(Semaphore::new(clients));
    let fleet = Arc::new(Fleet {
        server: server.addr,
        names: names.clone(),
        register: false,
        key_login: true,
        // Trusted on first use, as each enrolment did.
        server_key: None,
        plan: Plan {
            clients,
            messages: 0,
            size: 16,
            window: 0,
            rate: None,
        },
        correspondents: Correspondents::new(clients, 0, 1),
        progress: progress.clone(),
        login_slots: login_slots.clone(),
    });
    let crowd = Arc::new(Crowd {
        server: server.addr,
        password: PASSWORD,
        server_key: None,
        register: false,
        key_login: true,
        leave_after_login: false,
        retry_logins: true,
        heartbeat,
        progress: progress.clone(),
        login_slots,
    });
    let (report, held) = run_fleet(
        args.load_threads,
        clients,
        |i| {
            let (fleet, crowd, name) = (fleet.clone(), crowd.clone(), names[i].clone());
            async move {
                if i < core_clients {
                    core_client::run(fleet, i).await
                } else {
                    wire_client::run(crowd, name).await
                }
            }
        },
        || {
            let held = hold(&args, &progress, &server, empty);
            progress.finish();
            (held, server.stop())
        },
    );
    println!("load average at end:   {}", system::load_average());
    let (held, stopped) = held;
    let held = held?;
    print_report(&args, &held, &report, enrolled.as_ref(), bare);
    stopped?;
    let enrol_problems = enrolled.as_ref().map_or(0, |e| e.problems);
    if held.problems_logging_in + held.problems_holding + enrol_problems > 0 || held.log_lines > 0 {
        return Err("clients were disconnected or refused (see above)".into());
    }
    Ok(())
}

/// Argon2id hashes per second on `threads` threads, with the server's parameters.
fn bare_argon2(threads: usize) -> f64 {
    eprintln!(
        "  bare argon2id loop on {threads} threads for {} s",
        BARE_ARGON2_FOR.as_secs()
    );
    crate::bare_argon2::hashes_per_second(threads, BARE_ARGON2_FOR)
}

/// How many clients `data` was enrolled with by an earlier run (0: none).
fn enrolled_before(data: &Path) -> usize {
    std::fs::read_to_string(data.join(ENROLLED_MARK))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Phase 1: every client registers with its password, enrolling its key; then they leave
/// and the server stops.
fn enrol(
    args: &Args,
    binary: &Path,
    data: &Path,
    names: &[UserName],
    heartbeat: Heartbeat,
) -> Result<Enrolled, String> {
    let clients = names.len();
    let mut server = ServerProcess::start_on(binary, clients + 64, data)?;
    let progress = Arc::new(Progress::new(0));
    let crowd = Arc::new(Crowd {
        server: server.addr,
        password: PASSWORD,
        server_key: None,
        register: true,
        key_login: false,
        // Enrolled is all it takes: staying would make every later enrolment announce itself
        // to all the earlier ones, which measures presence, not password checks.
        leave_after_login: true,
        retry_logins: true,
        heartbeat,
        progress: progress.clone(),
        login_slots: Arc::new(Semaphore::new(args.login_concurrency.max(1))),
    });
    let (report, watched) = run_fleet(
        args.load_threads,
        clients,
        |i| wire_client::run(crowd.clone(), names[i].clone()),
        || {
            let start = Instant::now();
            let all_in = load::wait_reporting(
                "enrolling",
                Duration::from_secs(args.login_timeout),
                || progress.get(&progress.logged_in) >= clients,
                || storm_line("enrolled", &progress, start, &server),
            );
            let took = start.elapsed();
            let after_storm = server.memory();
            // Long enough for the allocator to hand freed argon2 memory back.
            std::thread::sleep(Duration::from_secs(3));
            let settled = server.memory();
            let problems = progress.problems();
            progress.finish();
            let stopped = server.stop();
            (all_in, took, after_storm, settled, problems, stopped)
        },
    );
    let (all_in, took, after_storm, settled, problems, stopped) = watched;
    if !all_in {
        return Err(format!(
            "only {} of {clients} clients enrolled within {} s ({})",
            progress.get(&progress.logged_in),
            args.login_timeout,
            report.problems_line()
        ));
    }
    stopped?;
    eprintln!(
        "  all {} enrolled after {:.1} s; restarting the server",
        thousands(clients as u64),
        took.as_secs_f64()
    );
    Ok(Enrolled {
        took,
        after_storm: after_storm?,
        settled: settled?,
        problems,
    })
}

/// Waits for every login, then holds for `--seconds`, reading the server's memory.
fn hold(
    args: &Args,
    progress: &Progress,
    server: &ServerProcess,
    empty: Memory,
) -> Result<Held, String> {
    let cpu = || system::thread_cpu(Some(server.pid())).unwrap_or_default();
    let cpu_start = cpu();
    let start = Instant::now();
    let mut early = None;
    let all_in = load::wait_reporting(
        "logging in",
        Duration::from_secs(args.login_timeout),
        || {
            let logged_in = progress.get(&progress.logged_in);
            if early.is_none() && logged_in >= args.clients / 10 {
                early = server.memory().ok().map(|memory| (logged_in, memory));
            }
            logged_in >= args.clients
        },
        || storm_line("logged in", progress, start, server),
    );
    if !all_in {
        return Err(format!(
            "only {} of {} clients logged in within {} s",
            progress.get(&progress.logged_in),
            args.clients,
            args.login_timeout
        ));
    }
    let login_time = start.elapsed();
    let problems_logging_in = progress.problems();
    let retried = progress.retried.load(std::sync::atomic::Ordering::Relaxed);
    let cpu_logged_in = cpu();
    let logged_in = server.memory()?;
    eprintln!(
        "  all {} logged in after {:.0} s; holding {} s",
        thousands(args.clients as u64),
        login_time.as_secs_f64(),
        args.seconds
    );
    let hold_start = Instant::now();
    let hold_for = Duration::from_secs(args.seconds);
    while hold_start.elapsed() < hold_for {
        std::thread::sleep(
            Duration::from_secs(1).min(hold_for - hold_start.elapsed().min(hold_for)),
        );
        let second = hold_start.elapsed().as_secs();
        if second.is_multiple_of(10) && second > 0 {
            eprintln!(
                "  … holding: {} s, {} problems, server RSS {}",
                second,
                progress.problems() - problems_logging_in,
                server.memory().map(|m| m.rss).unwrap_or_default()
            );
        }
    }
    let held = server.memory()?;
    let problems_holding = progress.problems() - problems_logging_in;
    let cpu_held = cpu();
    Ok(Held {
        login_time,
        empty,
        early,
        logged_in,
        held,
        problems_logging_in,
        retried,
        problems_holding,
        cpu_logging_in: system::cpu_between(&cpu_start, &cpu_logged_in),
        cpu_holding: system::cpu_between(&cpu_logged_in, &cpu_held),
        log_lines: server.log_lines(),
    })
}

fn print_report(
    args: &Args,
    held: &Held,
    report: &ClientReport,
    enrolled: Option<&Enrolled>,
    bare: f64,
) {
    let log_lines = held.log_lines;
    let clients = args.clients as u64;
    let per_connection =
        |loaded: Memory| loaded.rss.0.saturating_sub(held.empty.rss.0) as f64 / clients as f64;
    let worst = per_connection(held.logged_in).max(per_connection(held.held));
    let rate = |n: u64, took: Duration| n as f64 / took.as_secs_f64();
    println!();
    println!(
        "returning logins: {} in {:.1} s ({}/s)",
        thousands(clients),
        held.login_time.as_secs_f64(),
        thousands(rate(clients, held.login_time).round() as u64)
    );
    match enrolled {
        Some(enrolled) => println!(
            "enrolments: {} in {:.1} s ({}/s); bare argon2id on the same cores: {}/s",
            thousands(clients),
            enrolled.took.as_secs_f64(),
            thousands(rate(clients, enrolled.took).round() as u64),
            thousands(bare.round() as u64)
        ),
        None => println!(
            "enrolments: reused from an earlier run; bare argon2id on the same cores: {}/s",
            thousands(bare.round() as u64)
        ),
    }
    println!("memory per idle connection: {worst:.1} KiB");
    println!();
    if let Some(enrolled) = enrolled {
        println!(
            "enrolments: {:.2}× the bare argon2id loop (target ≥ 0.8×); server RSS once every \
             client enrolled (and left): {} right after the storm, {} 3 s later (peak {})",
            rate(clients, enrolled.took) / bare,
            enrolled.after_storm.rss,
            enrolled.settled.rss,
            enrolled.settled.peak
        );
    }
    println!(
        "returning logins after the restart, all at once: {:.1} s (target ≤ 20 s at 10,000), \
         {} logins tried again after a timeout or refusal",
        held.login_time.as_secs_f64(),
        thousands(held.retried)
    );
    let tuning: Vec<String> = std::env::vars()
        .filter(|(name, _)| name.starts_with("MALLOC_") || name.starts_with("GLIBC_TUNABLES"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if !tuning.is_empty() {
        println!(
            "allocator settings passed to the server: {}",
            tuning.join(" ")
        );
    }
    println!(
        "{:<44} {:>12} {:>16}",
        "server RSS (/proc/<pid>/status)", "VmRSS", "per connection"
    );
    println!("{:<44} {:>12}", "no clients", held.empty.rss.to_string());
    if let Some((n, early)) = held.early {
        println!(
            "{:<44} {:>12}",
            format!("{} logged in", thousands(n as u64)),
            early.rss.to_string()
        );
    }
    println!(
        "{:<44} {:>12} {:>12.1} KiB",
        format!("{} logged in, idle", thousands(clients)),
        held.logged_in.rss.to_string(),
        per_connection(held.logged_in)
    );
    println!(
        "{:<44} {:>12} {:>12.1} KiB",
        format!("after {} s of heartbeats", args.seconds),
        held.held.rss.to_string(),
        per_connection(held.held)
    );
    println!(
        "{:<44} {:>12}",
        "peak (VmHWM, the login storm included)",
        held.held.peak.to_string()
    );
    println!(
        "memory per idle connection, (RSS with all − RSS with none) / clients: {:.1} KiB; \
         target ≤ {} KiB: {}",
        worst,
        TARGET_PER_CONNECTION.0,
        if worst <= TARGET_PER_CONNECTION.0 as f64 {
            "met"
        } else {
            "NOT met"
        }
    );
    if let Some((n, early)) = held.early.filter(|(n, _)| (*n as u64) < clients) {
        // One-off costs of the first logins (buffers, tables) that the formula above spreads
        // over the connections: the growth past the first tenth leaves them out.
        let marginal =
            held.held.rss.0.saturating_sub(early.rss.0) as f64 / (clients - n as u64) as f64;
        println!(
            "growth per connection from {} to {} logged in: {marginal:.1} KiB",
            thousands(n as u64),
            thousands(clients)
        );
    }
    let problems = held.problems_logging_in + held.problems_holding;
    println!(
        "disconnects, refusals and errors: {} while logging in, {} while holding ({}); \
         server log lines at warn or above: {log_lines}; target 0: {}",
        held.problems_logging_in,
        held.problems_holding,
        report.problems_line(),
        if problems == 0 && log_lines == 0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "server CPU while logging in: {}",
        system::cpu_line(&held.cpu_logging_in)
    );
    println!(
        "server CPU while holding:    {}",
        system::cpu_line(&held.cpu_holding)
    );
}

/// The progress line of a storm of logins: how many `done` so far, their rate, the problems
/// and the server's memory.
fn storm_line(done: &str, progress: &Progress, start: Instant, server: &ServerProcess) -> String {
    let logged_in = progress.get(&progress.logged_in);
    format!(
        "{} {done} ({:.0}/s), {} problems, server RSS {}",
        thousands(logged_in as u64),
        logged_in as f64 / start.elapsed().as_secs_f64(),
        progress.problems(),
        server.memory().map(|m| m.rss).unwrap_or_default()
    )
}
