//! `direct`: full `breeze_smol::Client`s, every pair on a direct channel, chatting between
//! random pairs. Afterwards the server's counters must show nothing relayed or stored.
//!
//! The server is the real `ServerDriver` (in process, `MemoryHost::welcoming()`); the clients
//! listen for peers on 127.0.0.1. Sending starts once every client reports the route to every
//! other as direct; each client keeps up to `--window` messages unacknowledged.

use crate::core_client::{names, PASSWORD};
use crate::in_process::InProcessServer;
use crate::load::{self, ms, sent_at, stamped_text, thousands, ClientReport, Pick, Plan, Progress};
use crate::system;
use breeze_core::client::{Event, Route};
use breeze_core::secure::PublicKey;
use breeze_core::wire::UserName;
use breeze_core::Via;
use breeze_smol::{Client, ClientOptions};
use smol::lock::Semaphore;
use smol::Task;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Clients logging in at once (the server's failed-login limit per address is 10, and checks
/// under way count against it).
const LOGINS_AT_ONCE: usize = 8;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Clients, every pair of them on a direct channel.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Messages in all, each between a random pair.
    #[arg(long, default_value_t = 2000)]
    messages: u64,
    /// Bytes of chat text per message.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages each client may have sent and not yet seen acknowledged.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Give up on a phase (channels up, messages through) after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// What the event watcher of one client shares with the rest.
struct Member {
    client: Client,
    /// Free places in the window; a `Delivered` event gives one back.
    window: Arc<Semaphore>,
    /// Peers whose route is direct now.
    direct: AtomicUsize,
}

pub fn run(args: Args) -> Result<(), String> {
    if args.clients < 2 || args.size < 16 || args.window == 0 {
        return Err("need at least 2 clients, 16-byte texts and a window".into());
    }
    let plan = Plan {
        clients: args.clients,
        messages: args.messages,
        size: args.size,
        window: args.window,
        rate: None,
    };
    // Both ends of every channel and server connection are in this process.
    let n = args.clients as u64;
    system::ensure_open_files(n * (n + 4) + 256)?;
    println!(
        "direct: {} clients ({} direct channels), {} messages of {} B between random pairs, \
         window {} per client",
        n,
        n * (n - 1) / 2,
        thousands(args.messages),
        args.size,
        args.window
    );
    println!("load average at start: {}", system::load_average());

    let server = InProcessServer::start(args.clients)?;

    let result = chat(&args, plan, server.addr, server.key);
    let stats = server.stop();
    let (mut report, channels_up) = result?;
    let summary = report.summary();
    println!("load average at end:   {}", system::load_average());
    println!();
    println!(
        "all {} channels direct after {:.2} s",
        n * (n - 1) / 2,
        channels_up.as_secs_f64()
    );
    println!(
        "{:<16} {:>9} {:>9} {:>8} {:>8} {:>8}  problems",
        "run", "msgs/s", "elapsed", "p50 ms", "p99 ms", "max ms"
    );
    println!(
        "{:<16} {:>9} {:>7.2} s {:>8} {:>8} {:>8}  {}",
        "direct channels",
        thousands(summary.rate as u64),
        summary.elapsed.as_secs_f64(),
        ms(summary.p50),
        ms(summary.p99),
        ms(summary.max),
        report.problems_line()
    );
    println!(
        "{} sent, {} received, {} delivered",
        thousands(report.sent),
        thousands(report.received),
        thousands(report.delivered)
    );
    println!(
        "server: relayed chat messages {}, stored {}, relayed text bytes {}",
        stats.relayed, stats.stored, stats.relayed_text_bytes
    );
    let relayed_nothing = stats.relayed == 0 && stats.stored == 0 && stats.relayed_text_bytes == 0;
    println!(
        "server relayed nothing: {}",
        if relayed_nothing { "yes" } else { "NO" }
    );
    if !relayed_nothing {
        return Err("the server relayed chat that should have gone direct".into());
    }
    if report.received < args.messages || !report.problems.is_empty() {
        return Err("messages were lost, or went another way (see problems)".into());
    }
    Ok(())
}

/// Starts the clients, waits for every channel, chats, logs out. Returns the merged report and
/// how long the channels took to come up.
fn chat(
    args: &Args,
    plan: Plan,
    server: SocketAddr,
    server_key: PublicKey,
) -> Result<(ClientReport, Duration), String> {
    let names = Arc::new(names("peer", args.clients));
    let progress = Arc::new(Progress::new(args.messages));
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let start = Instant::now();
    let limit = Duration::from_secs(args.timeout);
    let mut members = Vec::new();
    let mut watchers: Vec<Task<ClientReport>> = Vec::new();
    for (started, name) in names.iter().enumerate() {
        // Checks under way count against the server's failed-login limit per address.
        let logging_in = || started - progress.get(&progress.logged_in);
        if !load::wait_until("logging in", limit, || logging_in() < LOGINS_AT_ONCE) {
            break;
        }
        let mut options = ClientOptions::new(server, name.clone(), PASSWORD);
        options.p2p_listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        // Pinned, as a profile that met this server before; each client makes up its own key.
        options.server_key = Some(server_key);
        let client = Client::start(options).map_err(|e| format!("cannot start {name}: {e}"))?;
        let member = Arc::new(Member {
            client,
            window: Arc::new(Semaphore::new(args.window)),
            direct: AtomicUsize::new(0),
        });
        watchers.push(smol::spawn(watch(
            member.clone(),
            progress.clone(),
            stopped.clone(),
        )));
        members.push(member);
    }
    let everyone_direct = || {
        members.len() == args.clients
            && members
                .iter()
                .all(|m| m.direct.load(Ordering::Relaxed) + 1 >= args.clients)
    };
    let up = load::wait_until("setting up direct channels", limit, everyone_direct);
    let channels_up = start.elapsed();
    let senders: Vec<Task<ClientReport>> = members
        .iter()
        .enumerate()
        .map(|(me, member)| {
            smol::spawn(send(
                member.clone(),
                me,
                names.clone(),
                plan,
                progress.clone(),
            ))
        })
        .collect();
    let through = up && {
        progress.start();
        load::wait_until("chatting", limit, || progress.received() >= args.messages)
    };
    progress.finish();
    drop(stop);
    let mut report = ClientReport::default();
    smol::block_on(async {
        for task in watchers {
            report.merge(task.await);
        }
        for task in senders {
            // Senders still waiting for a window place or the start are simply dropped.
            if let Some(sent) = task.cancel().await {
                report.merge(sent);
            }
        }
        let logouts: Vec<Task<()>> = members
            .iter()
            .map(|m| {
                let client = m.client.clone();
                smol::spawn(async move { client.logout().await })
            })
            .collect();
        for logout in logouts {
            logout.await;
        }
    });
    if !up {
        return Err(format!(
            "the direct channels were not all up within {} s",
            args.timeout
        ));
    }
    if !through {
        return Err(format!(
            "only {} of {} messages arrived within {} s",
            progress.received(),
            args.messages,
            args.timeout
        ));
    }
    Ok((report, channels_up))
}

/// Follows one client's events: routes, messages (latency, path), deliveries (window).
async fn watch(
    member: Arc<Member>,
    progress: Arc<Progress>,
    stopped: smol::channel::Receiver<()>,
) -> ClientReport {
    let mut report = ClientReport::default();
    let mut routes: HashMap<UserName, Route> = HashMap::new();
    let problem = |report: &mut ClientReport, what: String| {
        if !progress.is_stopping() {
            progress.problems.fetch_add(1, Ordering::Relaxed);
            report.problem(what);
        }
    };
    loop {
        let next = smol::future::race(member.client.next_event(), async {
            let _ = stopped.recv().await;
            None
        });
        let Some(event) = next.await else {
            return report;
        };
        match event {
            Event::LoggedIn { .. } => {
                progress.logged_in.fetch_add(1, Ordering::Relaxed);
            }
            Event::Route { peer, route, .. } => {
                if route != Route::Direct && routes.get(&peer) == Some(&Route::Direct) {
                    problem(&mut report, format!("a direct route fell back ({route})"));
                }
                routes.insert(peer, route);
                let direct = routes.values().filter(|r| **r == Route::Direct).count();
                member.direct.store(direct, Ordering::Relaxed);
            }
            Event::Message { text, route, .. } => {
                let now = Instant::now();
                report.receipt(sent_at(progress.origin, text.as_bytes()), now);
                progress.received.fetch_add(1, Ordering::Relaxed);
                if route != Via::Direct {
                    problem(&mut report, "a message arrived through the relay".into());
                }
            }
            Event::Delivered { route, .. } => {
                member.window.add_permits(1);
                report.delivered += 1;
                if route != Via::Direct {
                    problem(
                        &mut report,
                        "a message was delivered through the relay".into(),
                    );
                }
            }
            Event::ServerLost { error, .. } => {
                problem(&mut report, format!("server lost: {error}"))
            }
            Event::LoginFailed { reason } => {
                problem(&mut report, format!("login failed: {reason}"))
            }
            Event::Kicked { reason } => problem(&mut report, format!("kicked: {reason:?}")),
            Event::PeerRejected { error, .. } => {
                problem(&mut report, format!("peer rejected: {error}"))
            }
            Event::Stored { .. } | Event::Undeliverable { .. } => {
                problem(&mut report, "a message was not delivered live".into())
            }
            _ => {}
        }
    }
}

/// Sends to random other clients while messages remain, one window place each.
async fn send(
    member: Arc<Member>,
    me: usize,
    names: Arc<Vec<UserName>>,
    plan: Plan,
    progress: Arc<Progress>,
) -> ClientReport {
    let mut report = ClientReport::default();
    let mut pick = Pick::new(me as u64 + 1);
    progress.started().await;
    loop {
        let place = member.window.acquire_arc().await;
        if progress.claim(1) == 0 {
            return report;
        }
        // Given back by the watcher on `Delivered`.
        place.forget();
        let to = pick.other(me, plan.clients);
        let now = Instant::now();
        let text = stamped_text(progress.origin, now, plan.size);
        match member.client.send(&names[to], text).await {
            Ok(_) => report.sending(now),
            Err(error) => {
                progress.unclaim(1);
                progress.problems.fetch_add(1, Ordering::Relaxed);
                report.problem(format!("send refused: {error}"));
                return report;
            }
        }
    }
}
