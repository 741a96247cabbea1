//! A reference model of docs/ARCHITECTURE.md §4 (guarantees), and a runner that applies operation
//! sequences to the simulator and the model side by side, checking the invariants after every
//! step. Used by the proptest in `tests/model.rs` and by the `scenario` fuzz target.

use crate::{Node, Sim, SimConfig};
use breeze_core::client::{Event, Route};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {
        ensure_eq!($left, $right, "{} == {}", stringify!($left), stringify!($right))
    };
    ($left:expr, $right:expr, $($fmt:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!("{}: {:?} != {:?}", format!($($fmt)+), left, right));
        }
    }};
}

macro_rules! ensure_ne {
    ($left:expr, $right:expr, $($fmt:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left == right {
            return Err(format!("{}: both {:?}", format!($($fmt)+), left));
        }
    }};
}

pub const USERS: [&str; 3] = ["alice", "bob", "carol"];

#[derive(Debug, Clone)]
pub enum Op {
    Send {
        from: usize,
        to: usize,
    },
    Cut {
        a: usize,
        b: usize,
    },
    CutOneWay {
        from: usize,
        to: usize,
    },
    Heal {
        a: usize,
        b: usize,
    },
    CrashServer,
    RestartServer,
    Logout(usize),
    Login(usize),
    CrashClient(usize),
    Advance(u64),
    /// The user at `at` puts the conversation with `with` on screen.
    Open {
        at: usize,
        with: usize,
    },
}

/// Direct channels capped for every client: `cap` of them, closed after `idle` (see
/// `core/src/client/channels.rs`). With three users a cap of 1 puts everyone beyond it.
#[derive(Debug, Clone, Copy)]
pub struct Channels {
    pub cap: usize,
    pub idle: Duration,
}

/// One message as the model knows it.
#[derive(Debug, Clone)]
struct Sent {
    from: usize,
    from_incarnation: u64,
    to: usize,
    serial: u64,
    /// The sender stayed up until the message was delivered or stored, so it must arrive.
    must_arrive: bool,
}

struct Model {
    sent: BTreeMap<String, Sent>,
    serial: u64,
    /// When each directed cut started.
    cuts: HashMap<(usize, usize), Instant>,
    running: [bool; 3],
    /// Events already scanned per node (events are append-only).
    scanned: [usize; 3],
    /// (sender, sender run, message id) → text.
    ids: HashMap<(usize, u64, u64), String>,
}

fn text_of(sent: &Sent) -> String {
    format!(
        "{}.{}>{}#{}",
        USERS[sent.from], sent.from_incarnation, USERS[sent.to], sent.serial
    )
}

fn parse(text: &str) -> Option<(usize, u64, u64)> {
    let (head, serial) = text.split_once('#')?;
    let (from_inc, _) = head.split_once('>')?;
    let (from, inc) = from_inc.split_once('.')?;
    Some((
        USERS.iter().position(|u| *u == from)?,
        inc.parse().ok()?,
        serial.parse().ok()?,
    ))
}

fn apply(sim: &mut Sim, model: &mut Model, nodes: &[Node], op: &Op) {
    match *op {
        Op::Send { from, to } => {
            if !model.running[from] {
                return;
            }
            model.serial += 1;
            let sent = Sent {
                from,
                from_incarnation: sim.incarnation(nodes[from]),
                to,
                serial: model.serial,
                must_arrive: false,
            };
            let text = text_of(&sent);
            if let Ok(id) = sim.send(nodes[from], nodes[to], &text) {
                model
                    .ids
                    .insert((from, sent.from_incarnation, id.0), text.clone());
                model.sent.insert(text, sent);
            }
        }
        Op::Cut { a, b } => {
            let now = sim.now();
            model.cuts.entry((a, b)).or_insert(now);
            model.cuts.entry((b, a)).or_insert(now);
            sim.cut(nodes[a], nodes[b]);
        }
        Op::CutOneWay { from, to } => {
            model.cuts.entry((from, to)).or_insert(sim.now());
            sim.cut_one_way(nodes[from], nodes[to]);
        }
        Op::Heal { a, b } => {
            model.cuts.remove(&(a, b));
            model.cuts.remove(&(b, a));
            sim.heal(nodes[a], nodes[b]);
        }
        Op::CrashServer => sim.crash_server(),
        Op::RestartServer => sim.restart_server(),
        Op::Logout(n) => {
            model.running[n] = false;
            sim.logout(nodes[n]);
        }
        Op::CrashClient(n) => {
            model.running[n] = false;
            sim.crash_client(nodes[n]);
        }
        Op::Login(n) => {
            model.running[n] = true;
            sim.start_client(nodes[n]);
        }
        Op::Advance(ms) => sim.advance(Duration::from_millis(ms)),
        Op::Open { at, with } => sim.open_conversation(nodes[at], nodes[with]),
    }
}

/// Learns from the senders' events which messages the system took responsibility for:
/// delivered (acknowledged end to end) or stored by the server for an offline recipient.
/// Called before and after every operation, so events are read while their process runs.
fn note_settled(sim: &Sim, model: &mut Model, nodes: &[Node]) {
    for (i, node) in nodes.iter().enumerate() {
        let incarnation = sim.incarnation(*node);
        let events = sim.events(*node);
        for (_, event) in &events[model.scanned[i]..] {
            let id = match event {
                Event::Delivered { id, .. } | Event::Stored { id, .. } => id,
                _ => continue,
            };
            if let Some(text) = model.ids.get(&(i, incarnation, id.0)) {
                if let Some(sent) = model.sent.get_mut(text) {
                    sent.must_arrive = true;
                }
            }
        }
        model.scanned[i] = events.len();
    }
}

fn check_delivery(sim: &Sim, model: &Model, nodes: &[Node]) -> Result<(), String> {
    for (to, node) in nodes.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let mut last: HashMap<(usize, u64, u64), u64> = HashMap::new();
        for received in sim.received(*node) {
            let text = &received.text;
            let Some((from, from_inc, serial)) = parse(text) else {
                return Err(format!("unknown text {text:?}"));
            };
            let sent = model
                .sent
                .get(text)
                .ok_or_else(|| format!("never sent: {text}"))?;
            ensure_eq!(sent.to, to, "delivered to the wrong user");
            ensure_eq!(received.from.as_str(), USERS[from]);
            ensure!(
                seen.insert((received.incarnation, text.clone())),
                "{} received twice by {} (run {})",
                text,
                USERS[to],
                received.incarnation
            );
            let key = (from, from_inc, received.incarnation);
            if let Some(prev) = last.insert(key, serial) {
                ensure!(
                    prev < serial,
                    "{} arrived after #{} at {}: out of order",
                    text,
                    prev,
                    USERS[to]
                );
            }
        }
    }
    Ok(())
}

fn check_fallback(sim: &Sim, model: &Model, nodes: &[Node]) -> Result<(), String> {
    let now = sim.now();
    // Whoever stops hearing its peer falls back within the bound. (The other side learns
    // from the close, which may itself be cut; its own silence timer covers that case.)
    for (&(from, to), &since) in &model.cuts {
        if now - since > sim.fallback_bound() && model.running[from] && model.running[to] {
            ensure_ne!(
                sim.route(nodes[to], nodes[from]),
                Some(Route::Direct),
                "{} still direct to {} {:?} after {}→{} was cut",
                USERS[to],
                USERS[from],
                now - since,
                USERS[from],
                USERS[to]
            );
        }
    }
    if let Some(server) = sim.server() {
        server
            .check_invariants()
            .map_err(|e| format!("server invariant: {e}"))?;
    }
    Ok(())
}

/// No client ever held more links than its cap, after any drain.
fn check_cap(sim: &Sim, nodes: &[Node], channels: Option<Channels>) -> Result<(), String> {
    let Some(channels) = channels else {
        return Ok(());
    };
    for (i, node) in nodes.iter().enumerate() {
        ensure!(
            sim.most_links(*node) <= channels.cap,
            "{} held {} links, over the cap of {}",
            USERS[i],
            sim.most_links(*node),
            channels.cap
        );
    }
    Ok(())
}

/// Without a cap: every pair is direct, over exactly one channel.
fn check_all_direct(sim: &Sim, nodes: &[Node]) -> Result<(), String> {
    for (i, node) in nodes.iter().enumerate() {
        for (j, other) in nodes.iter().enumerate() {
            if i != j {
                ensure_eq!(
                    sim.route(*node, *other),
                    Some(Route::Direct),
                    "{}→{} direct",
                    USERS[i],
                    USERS[j]
                );
            }
        }
        let client = sim.client(*node).expect("running");
        ensure_eq!(
            client.link_count(),
            USERS.len() - 1,
            "{} has one channel per peer",
            USERS[i]
        );
    }
    let n = USERS.len();
    ensure_eq!(sim.server().map(|s| s.stats().connections), Some(n));
    ensure_eq!(
        sim.open_streams(),
        n + n * (n - 1) / 2,
        "no stray connections"
    );
    Ok(())
}

/// With a cap, long after the last word: every channel closed as idle. Then each pair in
/// turn talks, and its messages go direct at once: the channel opens on demand, making room
/// by closing the one the sender used before.
fn check_direct_on_demand(
    sim: &mut Sim,
    model: &mut Model,
    nodes: &[Node],
    channels: Channels,
) -> Result<(), String> {
    let n = USERS.len();
    sim.advance(channels.idle + Duration::from_secs(1));
    for (i, node) in nodes.iter().enumerate() {
        let links = sim.client(*node).map_or(0, |c| c.link_count());
        ensure_eq!(links, 0, "{}'s idle channels closed", USERS[i]);
    }
    ensure_eq!(sim.open_streams(), n, "only the server links are left");
    for from in 0..n {
        for to in 0..n {
            if from == to {
                continue;
            }
            apply(sim, model, nodes, &Op::Send { from, to });
            sim.advance(Duration::from_millis(500));
            ensure_eq!(
                sim.route(nodes[from], nodes[to]),
                Some(Route::Direct),
                "{}→{} direct once it talks",
                USERS[from],
                USERS[to]
            );
            apply(sim, model, nodes, &Op::Send { from, to });
            sim.advance(Duration::from_millis(500));
            let last = sim
                .received_from(nodes[to], nodes[from])
                .last()
                .map(|r| r.route);
            ensure_eq!(
                last,
                Some(breeze_core::Via::Direct),
                "{}→{} went direct",
                USERS[from],
                USERS[to]
            );
        }
    }
    let links: usize = nodes
        .iter()
        .filter_map(|node| sim.client(*node))
        .map(|c| c.link_count())
        .sum();
    ensure_eq!(sim.open_streams(), n + links / 2, "no stray connections");
    sim.advance(Duration::from_secs(5));
    note_settled(sim, model, nodes);
    check_delivery(sim, model, nodes)?;
    check_cap(sim, nodes, Some(channels))
}

/// Heals everything, brings everyone up, lets the system settle, then checks convergence,
/// liveness of delivery, route recovery and that nothing is left behind.
fn settle_and_check(
    sim: &mut Sim,
    model: &mut Model,
    nodes: &[Node],
    channels: Option<Channels>,
) -> Result<(), String> {
    for a in 0..USERS.len() {
        for b in 0..USERS.len() {
            if a != b {
                sim.heal(nodes[a], nodes[b]);
            }
        }
    }
    model.cuts.clear();
    sim.restart_server();
    for (i, node) in nodes.iter().enumerate() {
        if !model.running[i] {
            sim.start_client(*node);
            model.running[i] = true;
        }
    }
    sim.advance(Duration::from_secs(90));
    note_settled(sim, model, nodes);
    check_delivery(sim, model, nodes)?;

    // Presence converged and every pair is direct over exactly one channel; with channels
    // capped, every pair gets one as soon as it talks.
    for (i, node) in nodes.iter().enumerate() {
        ensure!(sim.is_logged_in(*node), "{} logged in", USERS[i]);
        let client = sim.client(*node).expect("running");
        for (j, other) in nodes.iter().enumerate() {
            if i == j {
                continue;
            }
            let name = sim.name(*other);
            let online = client.peers().any(|(n, online, _)| n == name && online);
            ensure!(online, "{} sees {} online", USERS[i], USERS[j]);
        }
    }
    match channels {
        // Beyond the cap: channels open on demand.
        Some(channels) if channels.cap < USERS.len() - 1 => {
            check_direct_on_demand(sim, model, nodes, channels)?
        }
        _ => {
            check_all_direct(sim, nodes)?;
            check_cap(sim, nodes, channels)?;
        }
    }

    // Every message whose sender saw it delivered or stored has arrived. A message whose
    // sender went away before that may be lost, never duplicated.
    let arrived: BTreeSet<&str> = nodes
        .iter()
        .flat_map(|n| sim.received(*n))
        .map(|r| r.text.as_str())
        .collect();
    for (text, sent) in &model.sent {
        let sender_kept_it = sim.incarnation(nodes[sent.from]) == sent.from_incarnation;
        if sent.must_arrive || sender_kept_it {
            if !arrived.contains(text.as_str()) && std::env::var("BREEZE_MODEL_DEBUG").is_ok() {
                for node in nodes {
                    for (at, e) in sim.events(*node) {
                        eprintln!("{} -{:.3?} {:?}", sim.name(*node), sim.now() - *at, e);
                    }
                }
                for (at, e) in sim.server_events() {
                    eprintln!("server -{:.3?} {:?}", sim.now() - *at, e);
                }
            }
            ensure!(arrived.contains(text.as_str()), "{} never arrived", text);
        }
    }

    // Everyone logs out: no connection or session may remain.
    for node in nodes {
        sim.logout(*node);
    }
    sim.advance(Duration::from_secs(1));
    ensure_eq!(sim.server().map(|s| s.stats().connections), Some(0));
    ensure_eq!(sim.server().map(|s| s.stats().online), Some(0));
    ensure_eq!(sim.open_streams(), 0);
    Ok(())
}

pub fn run(seed: u64, ops: &[Op]) -> Result<(), String> {
    run_with(seed, ops, None)
}

/// [`run`] with every client's direct channels capped.
pub fn run_with(seed: u64, ops: &[Op], channels: Option<Channels>) -> Result<(), String> {
    let mut config = SimConfig::new(seed);
    if let Some(channels) = channels {
        config.max_direct_channels = Some(channels.cap);
        config.channel_idle = Some(channels.idle);
    }
    let mut sim = Sim::new(config);
    let nodes: Vec<Node> = USERS.iter().map(|u| sim.add_client(u)).collect();
    let mut model = Model {
        sent: BTreeMap::new(),
        serial: 0,
        cuts: HashMap::new(),
        running: [true; 3],
        scanned: [0; 3],
        ids: HashMap::new(),
    };
    sim.advance(Duration::from_secs(1));
    for op in ops {
        note_settled(&sim, &mut model, &nodes);
        apply(&mut sim, &mut model, &nodes, op);
        note_settled(&sim, &mut model, &nodes);
        check_delivery(&sim, &model, &nodes)?;
        check_fallback(&sim, &model, &nodes)?;
        check_cap(&sim, &nodes, channels)?;
    }
    settle_and_check(&mut sim, &mut model, &nodes, channels)
}
