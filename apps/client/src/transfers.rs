//! The file transfers this session knows of: offers waiting for an answer, transfers under
//! way, and recently finished ones, found by the id the user types (or a unique start of it).

use crate::transfer_rate::TransferRate;
use breeze_core::client::{Direction, Event, FileEvent};
use breeze_core::wire::{TransferId, UserName};
use breeze_core::Via;
use breeze_smol::SharedFile;
use std::path::PathBuf;
use std::time::Instant;

/// Finished transfers kept for lookups and display; the oldest go first.
const FINISHED_KEPT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Offered, not answered yet.
    Offered,
    /// Accepted; bytes are moving (or about to).
    Running,
    Done {
        verified: bool,
    },
    Failed(String),
    Declined,
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub peer: UserName,
    pub id: TransferId,
    pub direction: Direction,
    pub name: String,
    pub size: u64,
    /// Bytes through so far.
    pub bytes: u64,
    pub route: Option<Via>,
    pub state: State,
    /// Sending: the file offered. Receiving: the directory it goes to, then where it landed.
    pub path: Option<PathBuf>,
    pub rate: TransferRate,
}

impl Transfer {
    fn new(peer: UserName, id: TransferId, direction: Direction, name: String, size: u64) -> Self {
        Transfer {
            peer,
            id,
            direction,
            name,
            size,
            bytes: 0,
            route: None,
            state: State::Offered,
            path: None,
            rate: TransferRate::default(),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Offered | State::Running)
    }
}

#[derive(Debug, Default)]
pub struct Transfers {
    /// In the order they appeared.
    list: Vec<Transfer>,
}

impl Transfers {
    pub fn new() -> Transfers {
        Transfers::default()
    }

    /// This side offered `file` to `to`.
    pub fn offered(&mut self, to: &UserName, file: &SharedFile) {
        let mut transfer = Transfer::new(
            to.clone(),
            file.id,
            Direction::Sending,
            file.name.to_string(),
            file.size,
        );
        transfer.path = Some(file.path.clone());
        self.insert(transfer);
    }

    /// This side accepted `from`'s offer `id` into `dir`, starting at `offset`.
    pub fn accepted(&mut self, from: &UserName, id: TransferId, dir: PathBuf, offset: u64) {
        self.accepted_at(from, id, dir, offset, Instant::now());
    }

    /// [`accepted`](Transfers::accepted) at a given time: the rate's first sample, so a test
    /// on a made-up clock gets an exact rate.
    pub fn accepted_at(
        &mut self,
        from: &UserName,
        id: TransferId,
        dir: PathBuf,
        offset: u64,
        now: Instant,
    ) {
        if let Some(t) = self.get_mut(from, id, Direction::Receiving) {
            t.state = State::Running;
            t.bytes = offset;
            t.path = Some(dir);
            t.rate.record(now, offset);
        }
    }

    /// Where a received file landed.
    pub fn landed(&mut self, from: &UserName, id: TransferId, path: PathBuf) {
        if let Some(t) = self.get_mut(from, id, Direction::Receiving) {
            t.path = Some(path);
        }
    }

    /// This side declined or cancelled.
    pub fn ended(&mut self, peer: &UserName, id: TransferId, direction: Direction, state: State) {
        if let Some(t) = self.get_mut(peer, id, direction) {
            t.state = state;
        }
    }

    /// Follows the core's file events.
    pub fn apply(&mut self, event: &Event, now: Instant) {
        match event {
            Event::File(FileEvent::Offered {
                from,
                id,
                name,
                size,
                ..
            }) => self.insert(Transfer::new(
                from.clone(),
                *id,
                Direction::Receiving,
                name.to_string(),
                *size,
            )),
            Event::File(FileEvent::Accepted { to, id, offset }) => {
                if let Some(t) = self.get_mut(to, *id, Direction::Sending) {
                    t.state = State::Running;
                    t.bytes = *offset;
                    t.rate = TransferRate::default();
                    t.rate.record(now, *offset);
                }
            }
            Event::File(FileEvent::Progress {
                peer,
                id,
                direction,
                bytes,
                route,
                ..
            }) => {
                if let Some(t) = self.get_mut(peer, *id, *direction) {
                    t.bytes = *bytes;
                    t.route = Some(*route);
                    t.rate.record(now, *bytes);
                }
            }
            Event::File(FileEvent::Done {
                peer,
                id,
                direction,
                verified,
            }) => {
                if let Some(t) = self.get_mut(peer, *id, *direction) {
                    t.state = State::Done {
                        verified: *verified,
                    };
                    if *verified {
                        t.bytes = t.size;
                    }
                }
            }
            Event::File(FileEvent::Failed {
                peer,
                id,
                direction,
                failure,
            }) => self.ended(peer, *id, *direction, State::Failed(failure.to_string())),
            Event::File(FileEvent::Declined { to, id }) => {
                self.ended(to, *id, Direction::Sending, State::Declined)
            }
            Event::File(FileEvent::Cancelled {
                peer,
                id,
                direction,
            }) => self.ended(peer, *id, *direction, State::Cancelled),
            _ => {}
        }
    }

    pub fn get(&self, peer: &UserName, id: TransferId, direction: Direction) -> Option<&Transfer> {
        self.list
            .iter()
            .find(|t| t.id == id && t.direction == direction && &t.peer == peer)
    }

    fn get_mut(
        &mut self,
        peer: &UserName,
        id: TransferId,
        direction: Direction,
    ) -> Option<&mut Transfer> {
        self.list
            .iter_mut()
            .find(|t| t.id == id && t.direction == direction && &t.peer == peer)
    }

    /// The one transfer matching `want` whose id is, or starts with, `typed` (hex).
    pub fn find(&self, typed: &str, want: impl Fn(&Transfer) -> bool) -> Result<&Transfer, String> {
        let typed = typed.trim().to_ascii_lowercase();
        if typed.is_empty() || !typed.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("{typed:?} is not a transfer id (hex digits)"));
        }
        let mut found = self
            .list
            .iter()
            .filter(|t| want(t) && t.id.to_string().starts_with(&typed));
        match (found.next(), found.next()) {
            (Some(t), None) => Ok(t),
            (Some(_), Some(_)) => Err(format!("several transfers start with {typed}")),
            (None, _) => Err(format!("no such transfer: {typed}")),
        }
    }

    pub fn active(&self) -> impl Iterator<Item = &Transfer> {
        self.list.iter().filter(|t| t.is_active())
    }

    fn insert(&mut self, transfer: Transfer) {
        self.list.retain(|t| {
            !(t.id == transfer.id && t.direction == transfer.direction && t.peer == transfer.peer)
        });
        self.list.push(transfer);
        while self.list.iter().filter(|t| !t.is_active()).count() > FINISHED_KEPT {
            match self.list.iter().position(|t| !t.is_active()) {
                Some(oldest) => self.list.remove(oldest),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breeze_core::wire::FileName;

    fn name(n: &str) -> UserName {
        UserName::new(n).unwrap()
    }

    fn offer(from: &str, id: u64) -> Event {
        Event::File(FileEvent::Offered {
            from: name(from),
            id: TransferId(id),
            name: FileName::new("a.txt").unwrap(),
            size: 10,
            hash: [0; 32],
        })
    }

    #[test]
    fn an_offer_is_found_by_a_unique_start_of_its_id() {
        let mut transfers = Transfers::new();
        let now = Instant::now();
        transfers.apply(&offer("bob", 0xabc0_0000_0000_0001), now);
        transfers.apply(&offer("carol", 0xabd0_0000_0000_0002), now);
        let offered = |t: &Transfer| t.state == State::Offered;
        assert_eq!(transfers.find("abc", offered).unwrap().peer, name("bob"));
        assert_eq!(
            transfers.find("ABD00000", offered).unwrap().peer,
            name("carol")
        );
        assert!(transfers.find("ab", offered).is_err(), "ambiguous");
        assert!(transfers.find("ff", offered).is_err());
        assert!(transfers.find("../", offered).is_err());
    }

    #[test]
    fn progress_and_the_end_are_followed() {
        let mut transfers = Transfers::new();
        let now = Instant::now();
        transfers.apply(&offer("bob", 1), now);
        transfers.accepted(&name("bob"), TransferId(1), PathBuf::from("/tmp"), 0);
        transfers.apply(
            &Event::File(FileEvent::Progress {
                peer: name("bob"),
                id: TransferId(1),
                direction: Direction::Receiving,
                bytes: 4,
                size: 10,
                route: Via::Direct,
            }),
            now,
        );
        let t = transfers
            .get(&name("bob"), TransferId(1), Direction::Receiving)
            .unwrap();
        assert_eq!(
            (t.bytes, t.route, &t.state),
            (4, Some(Via::Direct), &State::Running)
        );
        transfers.apply(
            &Event::File(FileEvent::Done {
                peer: name("bob"),
                id: TransferId(1),
                direction: Direction::Receiving,
                verified: true,
            }),
            now,
        );
        assert_eq!(transfers.active().count(), 0);
    }
}
