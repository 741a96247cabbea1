//! A client's files, in memory: what it offers and what it receives. A disk outlives the
//! client process, so a restarted receiver finds its partial file and resumes.

use breeze_core::transmit::{FileSpan, Payload};
use breeze_core::wire::{TransferId, UserName};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
pub struct Disk {
    /// Files offered, by transfer id (shared with the file spans made of them).
    pub outgoing: BTreeMap<TransferId, Arc<Vec<u8>>>,
    /// Files received or being received, by (sender, transfer id).
    pub incoming: BTreeMap<(UserName, TransferId), Vec<u8>>,
    /// The hash each incoming file was offered with.
    pub expected: BTreeMap<(UserName, TransferId), [u8; 32]>,
}

impl Disk {
    /// A read answered as a real host may: for a direct channel, every other one as a span
    /// of the file, which the simulated network writes from the file (see [`span_bytes`]);
    /// the others, and all for the relay, as bytes. (A route may change between the read and
    /// the send, so spans reach the relay now and then too.)
    pub fn read_payload(
        &self,
        id: TransferId,
        offset: u64,
        len: usize,
        direct: bool,
    ) -> Option<Payload> {
        let file = self.outgoing.get(&id)?;
        let start = usize::try_from(offset).ok()?.min(file.len());
        let end = start.saturating_add(len).min(file.len());
        if direct && len > 0 && (offset / len as u64) % 2 == 1 {
            return Some(Payload::File(FileSpan {
                file: file.clone(),
                offset,
                len: end - start,
            }));
        }
        Some(Payload::from(file[start..end].to_vec()))
    }

    pub fn write(&mut self, from: &UserName, id: TransferId, offset: u64, data: &[u8]) -> bool {
        let file = self.incoming.entry((from.clone(), id)).or_default();
        let Ok(start) = usize::try_from(offset) else {
            return false;
        };
        if start > file.len() {
            return false;
        }
        let end = start + data.len();
        if file.len() < end {
            file.resize(end, 0);
        }
        file[start..end].copy_from_slice(data);
        true
    }

    pub fn verify(&self, from: &UserName, id: TransferId) -> bool {
        let key = (from.clone(), id);
        // An empty file is never written to: nothing on disk reads as empty.
        let file = self.incoming.get(&key).map_or(&[][..], Vec::as_slice);
        self.expected
            .get(&key)
            .is_some_and(|hash| blake3::hash(file).as_bytes() == hash)
    }
}

/// What a driver writes for a payload: the bytes, or a span's bytes read from the file it
/// was made of (as `sendfile` would).
pub fn span_bytes(payload: Payload) -> Vec<u8> {
    match payload {
        Payload::Bytes(bytes) => Vec::from(bytes),
        Payload::File(span) => {
            let file = span
                .file
                .downcast_ref::<Vec<u8>>()
                .expect("the simulator makes spans of its own files only");
            let start = usize::try_from(span.offset).expect("an offset within the file");
            file[start..start + span.len].to_vec()
        }
    }
}
