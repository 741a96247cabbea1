//! `records`: the encryption layer on its own: both Noise handshakes between two ends, then
//! records either way, damaged or not, arriving in any chunks.
//!
//! Input layout: the link kind (client↔server XX or peer IK), then operations: seal an
//! input-sized plaintext on either end (in one call, or cut into several), optionally damage
//! the records ([`tamper`]) and feed them to the other end's [`Inbound`] in input-chosen
//! chunks; or feed raw input bytes to an end. Before the channel is open, the handshake itself
//! takes the damage: a damaged message, or raw bytes, in place of the next message.
//!
//! Checked:
//! - no panic, whatever the bytes (handshake messages, records, garbage);
//! - a handshake whose messages were all delivered untouched opens both ends, and each proves
//!   its static key to the other (the dialer's IK payload arrives as written); one with a
//!   damaged message never opens both ends;
//! - every record is at most `2 + MAX_RECORD` bytes and at least a tag long, and a plaintext of
//!   `n` bytes sealed in one call takes `ceil(n / MAX_RECORD_PAYLOAD)` records;
//! - untouched records open to exactly the plaintext sent, in order, however they are chunked;
//! - damaged records (a flipped bit, one cut short, swapped, dropped, repeated or replayed)
//!   fail, and what opened before the failure is exactly the plaintext of the records before
//!   the damaged one; a stream cut mid-record opens what came before the cut and waits;
//! - raw bytes on an open channel never open to any plaintext.

use crate::gen::keys;
use crate::link::{tamper, FarEnd, FarError, Tamper};
use crate::trace;
use arbitrary::{Result, Unstructured};
use breeze_core::secure::{LinkKind, MAX_RECORD, MAX_RECORD_PAYLOAD};

const MAX_OPS: usize = 64;

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = drive(&mut u);
}

/// One end.
struct End {
    far: FarEnd,
    /// What it reads can no longer be followed (an error, or bytes we cannot account for).
    broken: bool,
}

fn drive(u: &mut Unstructured) -> Result<()> {
    let kind = if u.arbitrary()? {
        LinkKind::ClientServer
    } else {
        LinkKind::Peer
    };
    let keys = keys();
    let (initiator, responder) = (&keys.users[0], &keys.users[1]);
    let name = b"alice".to_vec();
    let remote = match kind {
        LinkKind::ClientServer => None,
        LinkKind::Peer => Some(responder.public()),
    };
    let seed: u64 = u.arbitrary()?;
    let mut ends = [
        End {
            far: FarEnd::initiator(kind, initiator, remote.as_ref(), seed),
            broken: false,
        },
        End {
            far: FarEnd::responder(kind, vec![responder.clone()], seed.wrapping_add(7)),
            broken: false,
        },
    ];
    trace!("records: {kind:?}");
    // Something other than the next message, whole, went to an end; a message itself changed.
    let (mut touched, mut changed) = (false, false);
    // Both ends were open once (an end that fails to open a record later is lost, not back to
    // handshaking).
    let mut established = false;
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        if !established && ends[0].far.is_open() && ends[1].far.is_open() {
            established = true;
            assert!(!changed, "a damaged handshake opened both ends");
            let proved = (ends[0].far.remote(), ends[1].far.remote());
            assert_eq!(
                proved,
                (Some(responder.public()), Some(initiator.public())),
                "the handshake proved the wrong keys"
            );
            if kind == LinkKind::Peer {
                assert_eq!(ends[1].far.payloads()[0], name, "the dialer's payload");
            }
            if touched {
                // Junk after the last message may wait as a partial record: not ours to follow.
                ends[0].broken = true;
                ends[1].broken = true;
            }
        }
        if !established {
            if ends.iter().any(|e| e.far.is_lost()) {
                // The handshake failed: one side gave up, which is all it may do.
                assert!(
                    touched,
                    "an untouched handshake failed ({:?}, {:?})",
                    ends[0].far, ends[1].far
                );
                return Ok(());
            }
            let Some((t, c)) = handshake_step(u, &mut ends, &name, touched)? else {
                // Both ends wait (a message cut short): nothing more can happen.
                return Ok(());
            };
            touched |= t;
            changed |= c;
            continue;
        }
        records_step(u, &mut ends)?;
    }
    Ok(())
}

/// The next handshake message (whoever's turn it is), delivered whole, damaged, or replaced by
/// raw bytes: whether anything but the message went, and whether the message itself changed;
/// `None` when neither end has a message to write.
fn handshake_step(
    u: &mut Unstructured,
    ends: &mut [End; 2],
    name: &[u8],
    touched_before: bool,
) -> Result<Option<(bool, bool)>> {
    let Some(from) = (0..2).find(|i| ends[*i].far.our_turn()) else {
        return Ok(None);
    };
    let payload: &[u8] = if from == 0 && ends[from].far.written() == 0 {
        name
    } else {
        &[]
    };
    let Some(mut message) = ends[from].far.next_message(payload) else {
        return Ok(None);
    };
    let (touched, changed) = match u.int_in_range(0..=7u8)? {
        0 => (true, crate::link::tamper_message(u, &mut message)?),
        1 => {
            message = u.arbitrary()?;
            (true, true)
        }
        _ => (false, false),
    };
    trace!("handshake from {from}: {message:?} (touched: {touched}, changed: {changed})");
    let (_, error) = feed(u, &mut ends[1 - from].far, &message)?;
    if !touched && !touched_before {
        assert!(
            error.is_none(),
            "an untouched handshake message failed: {error:?}"
        );
    }
    Ok(Some((touched, changed)))
}

/// Feeds `bytes` in input-chosen chunks: the plaintext opened, and the error that stopped it.
fn feed(
    u: &mut Unstructured,
    far: &mut FarEnd,
    mut bytes: &[u8],
) -> Result<(Vec<u8>, Option<FarError>)> {
    let mut plain = Vec::new();
    while !bytes.is_empty() {
        let n = if u.ratio(3, 4)? {
            bytes.len()
        } else {
            u.int_in_range(1..=bytes.len())?
        };
        let (chunk, rest) = bytes.split_at(n);
        bytes = rest;
        let (opened, error) = far.read_all(chunk);
        plain.extend_from_slice(&opened);
        if error.is_some() {
            return Ok((plain, error));
        }
    }
    Ok((plain, None))
}

fn records_step(u: &mut Unstructured, ends: &mut [End; 2]) -> Result<()> {
    let from = usize::from(u.arbitrary::<bool>()?);
    let to = 1 - from;
    if ends[to].broken {
        return Ok(());
    }
    if u.ratio(1, 8)? {
        // Raw bytes: nothing forged opens.
        let junk: Vec<u8> = u.arbitrary()?;
        let (plain, error) = feed(u, &mut ends[to].far, &junk)?;
        assert!(plain.is_empty(), "raw bytes opened to {plain:?}");
        trace!("raw bytes to {to}: {error:?}");
        // A partial record may now wait: the stream is no longer ours to follow.
        ends[to].broken = true;
        return Ok(());
    }
    let len = match u.int_in_range(0..=7u8)? {
        0 => u.int_in_range(0..=3 * MAX_RECORD_PAYLOAD)?,
        1 => MAX_RECORD_PAYLOAD + u.int_in_range(0..=2usize)? - 1,
        _ => u.int_in_range(0..=300usize)?,
    };
    let fill: u8 = u.arbitrary()?;
    let plain: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
    let cuts = crate::link::cuts(u, len)?;
    let old = ends[from].far.kept();
    let mut records = ends[from].far.seal(&plain, &cuts);
    for record in &records {
        assert!(
            record.len() <= 2 + MAX_RECORD,
            "a record of {} bytes",
            record.len()
        );
        assert!(record.len() >= 2 + 16, "a record without its tag");
    }
    if cuts.is_empty() {
        assert_eq!(
            records.len(),
            len.div_ceil(MAX_RECORD_PAYLOAD),
            "{len} bytes sealed in one call"
        );
    }
    // The plaintext in each record, to know what must open before a damaged one.
    let parts: Vec<usize> = records.iter().map(|r| r.len() - 2 - 16).collect();
    let damage = match u.ratio(1, 4)? {
        true => Some(tamper(u, &mut records, &old)?),
        false => None,
    };
    trace!(
        "{} bytes from {from} in {} records, damage {damage:?}",
        plain.len(),
        parts.len()
    );
    let (opened, error) = feed(u, &mut ends[to].far, &records.concat())?;
    let end = &mut ends[to];
    match damage {
        None => {
            assert_eq!(error, None, "untouched records failed");
            assert!(opened == plain, "the plaintext changed on the way");
        }
        Some(damage) => {
            // Exactly the records before the damaged one open (a cut or a wrong length may
            // leave the end waiting for the rest instead of failing).
            let before: usize = parts[..first_damaged(&damage, parts.len())].iter().sum();
            assert!(
                opened == plain[..before],
                "{damage:?}: {} bytes opened, {before} expected",
                opened.len()
            );
            if damage.must_be_noticed() {
                assert!(error.is_some(), "{damage:?} went unnoticed");
            }
            end.broken = true;
        }
    }
    Ok(())
}

/// The first record position the damage touches.
fn first_damaged(damage: &Tamper, n: usize) -> usize {
    match *damage {
        Tamper::FlipBit { record, .. }
        | Tamper::Truncate { record, .. }
        | Tamper::FlipLength { record, .. } => record,
        Tamper::Swap { a, .. } => a,
        Tamper::Drop { record } => record,
        Tamper::Repeat { record } => record + 1,
        Tamper::Replay { at } => at,
        Tamper::Cut { .. } => n.saturating_sub(1),
    }
}
