//! A crowd on the simulator: many clients online at once, random conversations among them,
//! direct channels capped. The bounded-channel tests check it (at most the cap of channels at
//! every step, idle channels close, every message once and in order while channels open and
//! close under it) and print its figures (channels and heartbeats per client).

use crate::{Node, Sim, SimConfig};
use breeze_core::client::{Event, RouteReason};
use breeze_core::rng::SeededRng;
use std::collections::HashMap;
use std::time::Duration;

/// What the crowd does.
#[derive(Debug, Clone, Copy)]
pub struct Crowd {
    pub clients: usize,
    /// Every client's `max_direct_channels`.
    pub cap: usize,
    /// Every client's `channel_idle`.
    pub idle: Duration,
    pub seed: u64,
    /// Conversations started per second across the crowd: a random pair, a message each way
    /// (the reply a little later).
    pub conversations_per_second: usize,
    /// How long the crowd talks before anything is measured: longer than the idle period,
    /// so that the channels of the logins (everyone dials everyone while few are online)
    /// are gone and what is measured is the steady state.
    pub warm_up: Duration,
    /// How long the crowd talks while measured.
    pub talk: Duration,
    /// How long the crowd is quiet at the end, before the checks: longer than the idle
    /// period to see every channel close, or just long enough for what is on its way.
    pub quiet: Duration,
}

/// What the crowd measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// The most links any client held after any step (logins included).
    pub most_links: usize,
    /// Links per client, averaged over the talk (sampled every second).
    pub mean_links: f64,
    /// Heartbeats each client sent per second on its peer links during the talk.
    pub heartbeats_per_second: f64,
    /// Links per client after the quiet spell at the end.
    pub links_after_quiet: f64,
    /// Links held after the quiet spell by the clients that know of more peers online than
    /// their cap (the server tells later sessions on a big server only about whom they
    /// watch, so others may be within theirs, and keep a channel to each peer they know).
    pub beyond_cap_links_after_quiet: usize,
    /// Route events across the crowd: channels closed as idle, and to make room.
    pub idle_closes: usize,
    pub evictions: usize,
    /// Messages sent, and how many of them went direct.
    pub messages: usize,
    pub direct: usize,
}

/// Runs the crowd: logins, the talk, then a quiet spell longer than the idle period. Checks
/// as it goes that no client holds more than the cap, and at the end that every message
/// arrived exactly once and in order.
pub fn run(crowd: &Crowd) -> Result<Figures, String> {
    let mut config = SimConfig::new(crowd.seed);
    config.max_direct_channels = Some(crowd.cap);
    config.channel_idle = Some(crowd.idle);
    let mut sim = Sim::new(config);
    let nodes: Vec<Node> = (0..crowd.clients)
        .map(|i| sim.add_client(&format!("u{i:05}")))
        .collect();
    sim.advance(Duration::from_secs(2));
    for node in &nodes {
        if !sim.is_logged_in(*node) {
            return Err(format!("{} did not log in", sim.name(*node)));
        }
    }

    let mut rng = SeededRng::from_u64(crowd.seed ^ 0x00c0_ffee);
    let mut serial = 0u64;
    let mut replies: Vec<(Node, Node)> = Vec::new();
    let mut sent: HashMap<(Node, Node), Vec<u64>> = HashMap::new();
    let mut send = |sim: &mut Sim, from: Node, to: Node, serial: &mut u64| {
        *serial += 1;
        let text = format!("{}>{}#{}", from.0, to.0, serial);
        match sim.send(from, to, &text) {
            Ok(_) => {
                sent.entry((from, to)).or_default().push(*serial);
                Ok(())
            }
            Err(e) => Err(format!("{} could not send: {e}", sim.name(from))),
        }
    };
    let mut heartbeats_before = heartbeats(&sim, &nodes);
    let mut link_samples = 0usize;
    let warm_up = crowd.warm_up.as_secs();
    let seconds = crowd.talk.as_secs().max(1);
    let tenth = Duration::from_millis(100);
    let wall = std::time::Instant::now();
    for second in 0..warm_up + seconds {
        if second == warm_up {
            heartbeats_before = heartbeats(&sim, &nodes);
            link_samples = 0;
        }
        // Conversations start throughout the second, and each reply comes a tenth later,
        // so channels open and close while messages are on their way.
        for step in 0..10 {
            for (from, to) in std::mem::take(&mut replies) {
                send(&mut sim, from, to, &mut serial)?;
            }
            let starting = crowd.conversations_per_second / 10
                + usize::from(step < crowd.conversations_per_second % 10);
            for _ in 0..starting {
                let a = (rng.next_u64() % crowd.clients as u64) as usize;
                let step = 1 + (rng.next_u64() % (crowd.clients as u64 - 1)) as usize;
                let b = (a + step) % crowd.clients;
                send(&mut sim, nodes[a], nodes[b], &mut serial)?;
                replies.push((nodes[b], nodes[a]));
            }
            sim.advance(tenth);
        }
        link_samples += nodes
            .iter()
            .filter_map(|n| sim.client(*n))
            .map(|c| c.link_count())
            .sum::<usize>();
    }
    for (from, to) in std::mem::take(&mut replies) {
        send(&mut sim, from, to, &mut serial)?;
    }
    let heartbeats_talk = heartbeats(&sim, &nodes) - heartbeats_before;
    eprintln!(
        "crowd of {}: logins and talk took {:.1?} of wall time",
        crowd.clients,
        wall.elapsed()
    );

    // Quiet: whatever was still on its way arrives (and, after the idle period, idle
    // channels close).
    sim.advance(crowd.quiet);

    let n = crowd.clients as f64;
    let mut figures = Figures {
        mean_links: link_samples as f64 / n / seconds as f64,
        heartbeats_per_second: heartbeats_talk as f64 / n / seconds as f64,
        links_after_quiet: nodes
            .iter()
            .filter_map(|n| sim.client(*n))
            .map(|c| c.link_count())
            .sum::<usize>() as f64
            / n,
        messages: sent.values().map(Vec::len).sum(),
        beyond_cap_links_after_quiet: nodes
            .iter()
            .filter_map(|n| sim.client(*n))
            .filter(|c| c.peers().filter(|(_, online, _)| *online).count() > crowd.cap)
            .map(|c| c.link_count())
            .sum(),
        ..Figures::default()
    };
    for node in &nodes {
        figures.most_links = figures.most_links.max(sim.most_links(*node));
        if sim.most_links(*node) > crowd.cap {
            return Err(format!(
                "{} held {} links, over the cap of {}",
                sim.name(*node),
                sim.most_links(*node),
                crowd.cap
            ));
        }
        for (_, event) in sim.events(*node) {
            match event {
                Event::Route {
                    reason: RouteReason::Idle,
                    ..
                } => figures.idle_closes += 1,
                Event::Route {
                    reason: RouteReason::Evicted,
                    ..
                } => figures.evictions += 1,
                _ => {}
            }
        }
    }
    // Every message arrived, once, in the order sent.
    for (to_index, to) in nodes.iter().enumerate() {
        let mut got: HashMap<usize, Vec<u64>> = HashMap::new();
        for received in sim.received(*to) {
            let (head, serial) = received
                .text
                .split_once('#')
                .ok_or_else(|| format!("odd text {:?}", received.text))?;
            let from: usize = head
                .split_once('>')
                .and_then(|(f, _)| f.parse().ok())
                .ok_or_else(|| format!("odd text {:?}", received.text))?;
            let serial: u64 = serial.parse().map_err(|_| "odd serial".to_string())?;
            got.entry(from).or_default().push(serial);
            if received.route == breeze_core::Via::Direct {
                figures.direct += 1;
            }
        }
        for (from_index, from) in nodes.iter().enumerate() {
            let expected = sent.get(&(*from, *to)).map_or(&[][..], Vec::as_slice);
            let arrived = got.get(&from_index).map_or(&[][..], Vec::as_slice);
            if expected != arrived {
                return Err(format!(
                    "{from_index}→{to_index}: sent {expected:?}, arrived {arrived:?}"
                ));
            }
        }
    }
    Ok(figures)
}

fn heartbeats(sim: &Sim, nodes: &[Node]) -> u64 {
    nodes
        .iter()
        .filter_map(|n| sim.client(*n))
        .map(|c| c.heartbeats_sent())
        .sum()
}
