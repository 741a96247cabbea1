//! The model-based property test for groups: random sends, membership changes, client and
//! server crashes and partitions, checked after every step and once everything has healed.
//!
//! The server's store is the ground truth of who should get what: every group message the
//! host stored names its recipients (the members when the server took it). After every step:
//! two members never disagree about what is at a place in the order, no run of a client shows
//! a place twice or out of order, nobody is shown a place they are not a recipient of, and
//! every text shown is one its sender wrote. Once every client and the server are up and the
//! network healed: every recipient was shown every place meant for it, and every message a
//! sender queued and did not lose to its own crash was taken exactly once.

use crate::{Node, Sim, SimConfig};
use breeze_core::client::GroupEvent;
use breeze_core::wire::{GroupId, GroupRequest, UserName};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// The users; `alice` creates the group with the first three.
pub const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const GROUP: &str = "team";

/// One step of a run.
#[derive(Debug, Clone)]
pub enum Op {
    /// A member sends this many messages to the group at once (no time passes: what follows
    /// finds them on their way).
    Send(usize, u8),
    /// The owner adds a user.
    Add(usize),
    /// The owner removes a user.
    Remove(usize),
    /// A member leaves.
    Leave(usize),
    CrashClient(usize),
    StartClient(usize),
    CrashServer,
    RestartServer,
    /// Cuts the direct paths between two users (group messages always go through the server).
    Cut(usize, usize),
    Advance(u64),
}

struct Run {
    sim: Sim,
    nodes: Vec<Node>,
    group: GroupId,
    running: Vec<bool>,
    /// text → (sender, sender's run, the sender's id for it).
    sent: BTreeMap<String, (usize, u64, u64)>,
    /// Sender runs that crashed: their unsent messages may be lost with them.
    crashed_runs: BTreeSet<(usize, u64)>,
    serial: u64,
}

/// Runs `ops` and checks the invariants after each step and at the end.
pub fn run(seed: u64, ops: &[Op]) -> Result<(), String> {
    let mut sim = Sim::new(SimConfig::new(seed));
    let nodes: Vec<Node> = USERS.iter().map(|u| sim.add_client(u)).collect();
    sim.advance(Duration::from_secs(2));
    let group = sim
        .create_group(nodes[0], GROUP, &nodes[1..3])
        .ok_or("the group was not created")?;
    let mut run = Run {
        sim,
        nodes,
        group,
        running: vec![true; USERS.len()],
        sent: BTreeMap::new(),
        crashed_runs: BTreeSet::new(),
        serial: 0,
    };
    for (step, op) in ops.iter().enumerate() {
        run.apply(op);
        run.check_safety()
            .map_err(|e| format!("after step {step} ({op:?}): {e}"))?;
    }
    run.heal();
    if std::env::var("DEBUG_MODEL").is_ok() {
        for (i, node) in run.nodes.iter().enumerate() {
            for (at, e) in run.sim.events(*node) {
                eprintln!("{} {:?} {e:?}", USERS[i], *at - run.sim.now());
            }
        }
        for e in run.sim.server_events() {
            eprintln!("S {e:?}");
        }
    }
    run.check_safety()
        .map_err(|e| format!("after healing: {e}"))?;
    run.check_complete()
}

impl Run {
    fn name(&self, i: usize) -> UserName {
        self.sim.name(self.nodes[i]).clone()
    }

    fn request(&mut self, by: usize, request: GroupRequest) {
        if self.running[by] {
            let _ = self.sim.group_request(self.nodes[by], request);
        }
    }

    /// The owner, as the owner's own client knows it (the first member if that one is down).
    fn owner(&self) -> Option<usize> {
        (0..USERS.len()).find(|i| {
            self.running[*i]
                && self
                    .sim
                    .client(self.nodes[*i])
                    .and_then(|c| c.group_named(GROUP))
                    .is_some_and(|g| g.owner == self.name(*i))
        })
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Send(i, count) => {
                if !self.running[i] {
                    return;
                }
                for _ in 0..count {
                    self.serial += 1;
                    let text = format!("{}#{}", USERS[i], self.serial);
                    let node = self.nodes[i];
                    if let Ok(id) = self.sim.queue_group(node, self.group, &text) {
                        self.sent
                            .insert(text, (i, self.sim.incarnation(node), id.0));
                    }
                }
            }
            Op::Add(u) => {
                if let Some(owner) = self.owner() {
                    let users = vec![self.name(u)];
                    self.request(
                        owner,
                        GroupRequest::Add {
                            group: self.group,
                            users,
                        },
                    );
                }
            }
            Op::Remove(u) => {
                if let Some(owner) = self.owner().filter(|o| *o != u) {
                    let users = vec![self.name(u)];
                    self.request(
                        owner,
                        GroupRequest::Remove {
                            group: self.group,
                            users,
                        },
                    );
                }
            }
            Op::Leave(u) => self.request(u, GroupRequest::Leave { group: self.group }),
            Op::CrashClient(i) => {
                if self.running[i] {
                    let node = self.nodes[i];
                    self.crashed_runs.insert((i, self.sim.incarnation(node)));
                    self.sim.crash_client(node);
                    self.running[i] = false;
                }
            }
            Op::StartClient(i) => {
                if !self.running[i] {
                    self.sim.start_client(self.nodes[i]);
                    self.running[i] = true;
                }
            }
            Op::CrashServer => self.sim.crash_server(),
            Op::RestartServer => self.sim.restart_server(),
            Op::Cut(a, b) => self.sim.cut(self.nodes[a], self.nodes[b]),
            Op::Advance(ms) => self.sim.advance(Duration::from_millis(ms)),
        }
    }

    fn heal(&mut self) {
        self.sim.restart_server();
        for i in 0..USERS.len() {
            if !self.running[i] {
                self.sim.start_client(self.nodes[i]);
                self.running[i] = true;
            }
            for j in 0..USERS.len() {
                if i != j {
                    self.sim.heal(self.nodes[i], self.nodes[j]);
                }
            }
        }
        // Reconnect backoff is at most a minute; then everything settles.
        self.sim.advance(Duration::from_secs(90));
    }

    /// What each place in the group's order should reach.
    fn recipients(&self) -> Result<BTreeMap<u64, (UserName, BTreeSet<UserName>)>, String> {
        let mut places = BTreeMap::new();
        for stored in self.sim.group_log.iter().filter(|m| m.group == self.group) {
            let recipients = stored.recipients.iter().cloned().collect();
            let entry = (stored.from.clone(), recipients);
            if let Some(earlier) = places.insert(stored.order, entry.clone()) {
                if earlier != entry {
                    return Err(format!(
                        "place {} was stored twice, differently",
                        stored.order
                    ));
                }
            }
        }
        Ok(places)
    }

    fn check_safety(&self) -> Result<(), String> {
        let places = self.recipients()?;
        let mut at_place: HashMap<u64, (UserName, String)> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let me = self.name(i);
            let mut last: HashMap<u64, u64> = HashMap::new();
            for m in self.sim.group_messages(*node, self.group) {
                let previous = last.insert(m.incarnation, m.order).unwrap_or(0);
                if m.order <= previous {
                    return Err(format!(
                        "{me} (run {}) was shown place {} after {previous}",
                        m.incarnation, m.order
                    ));
                }
                let Some((from, recipients)) = places.get(&m.order) else {
                    return Err(format!("{me} was shown place {} nobody stored", m.order));
                };
                if !recipients.contains(&me) {
                    return Err(format!(
                        "{me} was shown place {}, not meant for it",
                        m.order
                    ));
                }
                if from != &m.from {
                    return Err(format!(
                        "place {} is {from}'s, shown as {}'s",
                        m.order, m.from
                    ));
                }
                match self.sent.get(&m.text) {
                    Some((sender, _, _)) if USERS[*sender] == m.from.as_str() => {}
                    _ => {
                        return Err(format!(
                            "{me} was shown {:?}, never sent by {}",
                            m.text, m.from
                        ))
                    }
                }
                let seen = (m.from.clone(), m.text.clone());
                if let Some(other) = at_place.insert(m.order, seen.clone()) {
                    if other != seen {
                        return Err(format!("place {}: {other:?} and {seen:?}", m.order));
                    }
                }
            }
        }
        for (text, (sender, _, _)) in &self.sent {
            let copies: BTreeSet<u64> = at_place
                .iter()
                .filter(|(_, (_, t))| t == text)
                .map(|(place, _)| *place)
                .collect();
            if copies.len() > 1 {
                return Err(format!(
                    "{}'s {text:?} took places {copies:?}",
                    USERS[*sender]
                ));
            }
        }
        Ok(())
    }

    fn check_complete(&self) -> Result<(), String> {
        let places = self.recipients()?;
        let mut taken: HashMap<String, u64> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let me = self.name(i);
            let shown: BTreeSet<u64> = self
                .sim
                .group_messages(*node, self.group)
                .into_iter()
                .map(|m| {
                    taken.insert(m.text, m.order);
                    m.order
                })
                .collect();
            let owed: BTreeSet<u64> = places
                .iter()
                .filter(|(_, (_, r))| r.contains(&me))
                .map(|(place, _)| *place)
                .collect();
            let missing: Vec<_> = owed.difference(&shown).collect();
            if !missing.is_empty() {
                return Err(format!("{me} never got places {missing:?}"));
            }
        }
        // Given up with a reason the sender was told (it was no longer a member).
        let failed: BTreeSet<(usize, u64)> = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, node)| {
                self.sim
                    .group_events(*node)
                    .filter_map(move |e| match e {
                        GroupEvent::SendFailed { id, .. } => Some((i, id.0)),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for (text, (sender, run, id)) in &self.sent {
            let lost_with_its_sender = self.crashed_runs.contains(&(*sender, *run));
            let given_up = failed.contains(&(*sender, *id));
            if !taken.contains_key(text) && !lost_with_its_sender && !given_up {
                return Err(format!("{}'s {text:?} was never delivered", USERS[*sender]));
            }
        }
        Ok(())
    }
}
