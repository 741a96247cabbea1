//! Building protocol values out of fuzz input: small name, number and key sets (so that names,
//! epochs, sequence numbers and keys collide often enough to matter), and texts whose length
//! comes from two input bytes (so a short input can still fill a buffer to its bound).

use arbitrary::{Result, Unstructured};
use breeze_core::codec::encode_frame;
use breeze_core::rng::SeededRng;
use breeze_core::secure::{GroupKey, GroupSealHeader, IdentityKey, PairKey, PublicKey};
use breeze_core::wire::{
    Ack, Chat, ErrorCode, FileMessage, FileName, KickReason, LoginRefusal, MessageId, PeerIntro,
    TransferId, Undeliverable, UserName,
};
use breeze_core::wire::{
    GroupError, GroupId, GroupInfo, GroupMessage, GroupRequest, KeyEnvelope, SealedAck, SealedChat,
    SealedFile,
};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// Every harness draws user names from this set.
pub const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "eve"];

/// Frames the harness builds are encoded with this limit, far above any core's, so oversized
/// frames reach the decoder under test too.
pub const HARNESS_MAX_FRAME: usize = 1 << 20;

/// The static keys the harnesses hold: whoever plays a server, a client or a peer uses one of
/// these, so the harness can always answer a handshake written to any of them.
pub struct Keys {
    /// What the harness serves with: mostly the first; the second is "the server's key changed".
    pub servers: [IdentityKey; 2],
    /// Clients and peers the harness plays (by index, for any user name).
    pub users: [IdentityKey; 4],
    /// The client under test in `client_streams`.
    pub me: IdentityKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        servers: [0x51, 0x52].map(|b| IdentityKey::from_secret([b; 32])),
        users: [0x61, 0x62, 0x63, 0x64].map(|b| IdentityKey::from_secret([b; 32])),
        me: IdentityKey::from_secret([0x42; 32]),
    })
}

/// One of the harness's user keys, by index.
pub fn user_key(u: &mut Unstructured) -> Result<usize> {
    u.choose_index(keys().users.len())
}

/// A key for an introduction: mostly one the harness holds (`held`, drawn when `None`),
/// sometimes one nobody holds (random bytes, or the all-zero key of low order).
pub fn intro_key(u: &mut Unstructured, held: Option<usize>) -> Result<PublicKey> {
    Ok(match u.int_in_range(0..=15u8)? {
        0 => PublicKey([0; 32]),
        1 => PublicKey(u.arbitrary()?),
        _ => {
            let i = match held {
                Some(i) => i,
                None => user_key(u)?,
            };
            keys().users[i].public()
        }
    })
}

/// An introduction of `user` on one of four hosts, with `key`.
pub fn intro(user: UserName, host: u8, key: PublicKey) -> PeerIntro {
    PeerIntro {
        user,
        endpoint: SocketAddr::from(([10, 0, 0, 1 + host % 4], 7000 + u16::from(host % 4))),
        key,
    }
}

pub fn name(u: &mut Unstructured) -> Result<UserName> {
    let i = u.choose_index(NAMES.len())?;
    Ok(UserName::new(NAMES[i]).expect("valid name"))
}

/// A chat text. Texts the harness recognises later start with `epoch:seq:`; the rest is
/// filler whose length is drawn up to `max_len` (usually past the limit under test).
pub fn text(u: &mut Unstructured, epoch: u64, seq: u64, max_len: usize) -> Result<String> {
    let mut text = format!("{epoch}:{seq}:");
    match u.int_in_range(0..=3u8)? {
        0 => {}
        1 => {
            let s: &str = u.arbitrary()?;
            text.push_str(s);
        }
        _ => {
            let len = u.int_in_range(0..=max_len)?;
            let fill = char::from(b'a' + u.int_in_range(0..=25u8)?);
            text.extend(std::iter::repeat_n(fill, len));
        }
    }
    Ok(text)
}

/// Parses the `epoch:seq:` a harness-made text starts with.
pub fn parse_text(text: &str) -> Option<(u64, u64)> {
    let mut parts = text.splitn(3, ':');
    let epoch = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((epoch, seq))
}

/// A chat from a small space of epochs and sequence numbers; `epoch` overrides the draw when
/// the harness wants to hit a known epoch.
pub fn chat(u: &mut Unstructured, epoch: Option<u64>, max_text: usize) -> Result<Chat> {
    let epoch = match epoch {
        Some(e) if u.ratio(3, 4)? => e,
        _ => u.int_in_range(0..=3u64)?,
    };
    let seq = seq_number(u)?;
    let first_unacked = if u.ratio(3, 4)? { 1 } else { seq_number(u)? };
    let id = MessageId(u.int_in_range(0..=20u64)?);
    Ok(Chat {
        id,
        epoch,
        seq,
        first_unacked,
        text: text(u, epoch, seq, max_text)?,
    })
}

/// A sequence number: mostly small, sometimes at the edge of the type.
pub fn seq_number(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=15u8)? {
        0 => u64::MAX - u64::from(u.int_in_range(0..=2u8)?),
        1 => u.arbitrary()?,
        _ => u.int_in_range(0..=12u64)?,
    })
}

pub fn ack(u: &mut Unstructured, epoch: Option<u64>) -> Result<Ack> {
    let epoch = match epoch {
        Some(e) if u.ratio(3, 4)? => e,
        _ => u.int_in_range(0..=3u64)?,
    };
    let through = seq_number(u)?;
    Ok(Ack { epoch, through })
}

pub fn version(u: &mut Unstructured) -> Result<u16> {
    Ok(if u.ratio(7, 8)? {
        breeze_core::wire::PROTOCOL_VERSION
    } else {
        u.arbitrary()?
    })
}

pub fn error_code(u: &mut Unstructured) -> Result<ErrorCode> {
    use ErrorCode::*;
    Ok(*u.choose(&[
        UnsupportedVersion,
        Malformed,
        FrameTooLarge,
        UnexpectedFrame,
        NotLoggedIn,
        HelloTimeout,
        SetupFailed,
        UnknownPeer,
        SlowConsumer,
        TextTooLong,
        Idle,
        TooManyConnections,
    ])?)
}

pub fn refusal(u: &mut Unstructured) -> Result<LoginRefusal> {
    use LoginRefusal::*;
    Ok(*u.choose(&[
        BadCredentials,
        NameTaken,
        RegistrationClosed,
        TooManyAttempts,
        ServerBusy,
        KeyNotEnrolled,
        KeyRevoked,
    ])?)
}

pub fn kick_reason(u: &mut Unstructured) -> Result<KickReason> {
    Ok(*u.choose(&[KickReason::LoggedInElsewhere, KickReason::AccountRemoved])?)
}

pub fn undeliverable(u: &mut Unstructured) -> Result<Undeliverable> {
    Ok(*u.choose(&[Undeliverable::NoSuchUser, Undeliverable::RecipientFull])?)
}

pub fn bytes32(u: &mut Unstructured) -> Result<[u8; 32]> {
    if u.ratio(1, 2)? {
        Ok([u.int_in_range(0..=3u8)?; 32])
    } else {
        u.arbitrary()
    }
}

/// Encodes `frames` back to back.
pub fn encode_all<T: Serialize>(frames: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        encode_frame(frame, HARNESS_MAX_FRAME, &mut out).expect("harness frame fits");
    }
    out
}

/// Splits `bytes` into 1..=4 chunks at input-chosen points, and sometimes appends garbage or
/// cuts the tail, so that valid streams also exercise partial frames and framing errors.
pub fn chunks(u: &mut Unstructured, mut bytes: Vec<u8>) -> Result<Vec<Vec<u8>>> {
    match u.int_in_range(0..=15u8)? {
        0 => {
            let junk: &[u8] = u.arbitrary()?;
            bytes.extend_from_slice(junk);
        }
        1 => {
            let keep = u.int_in_range(0..=bytes.len())?;
            bytes.truncate(keep);
        }
        _ => {}
    }
    split(u, bytes)
}

/// Splits `bytes` into 1..=4 chunks at input-chosen points, changing nothing.
pub fn split(u: &mut Unstructured, bytes: Vec<u8>) -> Result<Vec<Vec<u8>>> {
    let pieces = u.int_in_range(1..=4usize)?;
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    for _ in 1..pieces {
        let at = u.int_in_range(0..=rest.len())?;
        let (head, tail) = rest.split_at(at);
        out.push(head.to_vec());
        rest = tail;
    }
    out.push(rest.to_vec());
    Ok(out)
}

/// Transfer ids come from a small set so offers, answers and chunks meet.
pub fn transfer_id(u: &mut Unstructured) -> Result<TransferId> {
    Ok(TransferId(u.int_in_range(0..=3u64)?))
}

pub fn file_name(u: &mut Unstructured) -> Result<FileName> {
    let names = ["a.txt", "photo.jpg", "x", "report.final.pdf"];
    Ok(FileName::new(*u.choose(&names)?).expect("valid file name"))
}

/// A file size or offset: mostly within a few chunks, sometimes at the edge of the type.
pub fn file_offset(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=15u8)? {
        0 => u64::MAX - u64::from(u.int_in_range(0..=1u8)?),
        1 => u.arbitrary()?,
        2..=5 => 0,
        _ => u.int_in_range(0..=200_000u64)?,
    })
}

/// Chunk data up to `max_len` bytes (a chunk is at most 32 KiB in the core).
pub fn file_data(u: &mut Unstructured, max_len: usize) -> Result<Vec<u8>> {
    let len = if u.ratio(1, 2)? {
        u.int_in_range(0..=64usize)?
    } else {
        u.int_in_range(0..=max_len)?
    };
    Ok(vec![u.arbitrary::<u8>()?; len])
}

pub fn file_message(u: &mut Unstructured, max_chunk: usize) -> Result<FileMessage> {
    let id = transfer_id(u)?;
    Ok(match u.int_in_range(0..=9u8)? {
        0 | 1 => FileMessage::Offer {
            id,
            name: file_name(u)?,
            size: file_offset(u)?,
            hash: bytes32(u)?,
            repeat: u.arbitrary()?,
        },
        2 => FileMessage::Accept {
            id,
            offset: file_offset(u)?,
            window: file_offset(u)?,
        },
        3 => FileMessage::Decline { id },
        4 => FileMessage::Cancel {
            id,
            by_sender: u.arbitrary()?,
        },
        5 | 6 => FileMessage::Chunk {
            id,
            offset: file_offset(u)?,
            data: file_data(u, max_chunk)?.into(),
        },
        7 | 8 => FileMessage::Progress {
            id,
            accepted: file_offset(u)?,
            credit_end: file_offset(u)?,
            resync: u.arbitrary()?,
        },
        _ => FileMessage::Done {
            id,
            verified: u.arbitrary()?,
        },
    })
}

/// What the relay carries for `to`, sealed by one of the harness's users (whose key is
/// returned): mostly well sealed, so the recipient opens it and its logic is fuzzed, sometimes
/// damaged, so the refusal of forged items is fuzzed too.
fn sealer(u: &mut Unstructured, to: &PublicKey) -> Result<(PublicKey, PairKey, SeededRng)> {
    let from = &keys().users[user_key(u)?];
    let pair = PairKey::new(from, to)
        .or_else(|| PairKey::new(from, &keys().me.public()))
        .ok_or(arbitrary::Error::IncorrectFormat)?;
    Ok((from.public(), pair, SeededRng::from_u64(u.arbitrary()?)))
}

fn damage(u: &mut Unstructured, bytes: &mut [u8]) -> Result<()> {
    if !bytes.is_empty() && u.ratio(1, 8)? {
        let at = u.choose_index(bytes.len())?;
        bytes[at] ^= 1 << u.int_in_range(0..=7u8)?;
    }
    Ok(())
}

/// A chat sealed for `to`, and the key it was sealed from.
pub fn sealed_chat(
    u: &mut Unstructured,
    max_text: usize,
    to: &PublicKey,
) -> Result<(PublicKey, SealedChat)> {
    let chat = chat(u, None, max_text)?;
    let (from, pair, mut rng) = sealer(u, to)?;
    let mut sealed = SealedChat::seal(&chat, &pair, &mut rng);
    damage(u, &mut sealed.sealed)?;
    Ok((from, sealed))
}

/// An acknowledgement sealed for `to`.
pub fn sealed_ack(u: &mut Unstructured, epoch: Option<u64>, to: &PublicKey) -> Result<SealedAck> {
    let ack = ack(u, epoch)?;
    let (_, pair, mut rng) = sealer(u, to)?;
    let mut sealed = SealedAck::seal(ack, &pair, &mut rng);
    damage(u, &mut sealed.seal)?;
    Ok(sealed)
}

/// A file message sealed for `to`.
pub fn sealed_file(
    u: &mut Unstructured,
    max_chunk: usize,
    to: &PublicKey,
) -> Result<(PublicKey, SealedFile)> {
    let message = file_message(u, max_chunk)?;
    let (from, pair, mut rng) = sealer(u, to)?;
    let sealed =
        SealedFile::seal(&message, &pair, &mut rng).ok_or(arbitrary::Error::IncorrectFormat)?;
    let mut bytes = sealed.sealed.to_vec();
    damage(u, &mut bytes)?;
    Ok((
        from,
        SealedFile {
            sealed: bytes.into(),
            ..sealed
        },
    ))
}

/// One of a few group ids, so requests and messages meet the groups that exist.
pub fn group_id(u: &mut Unstructured) -> Result<GroupId> {
    Ok(GroupId(u.int_in_range(0..=3u64)?))
}

/// A group name: mostly valid and few (to collide), sometimes bad.
pub fn group_name(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => u.arbitrary()?,
        1 => "no spaces allowed".into(),
        n => format!("team{n}"),
    })
}

fn names(u: &mut Unstructured) -> Result<Vec<UserName>> {
    (0..u.int_in_range(0..=4u8)?).map(|_| name(u)).collect()
}

/// Any group request.
pub fn group_request(u: &mut Unstructured) -> Result<GroupRequest> {
    let group = group_id(u)?;
    Ok(match u.int_in_range(0..=4u8)? {
        0 => GroupRequest::Create {
            name: group_name(u)?,
            members: names(u)?,
        },
        1 => GroupRequest::Add {
            group,
            users: names(u)?,
        },
        2 => GroupRequest::Remove {
            group,
            users: names(u)?,
        },
        3 => GroupRequest::Leave { group },
        _ => GroupRequest::Rename {
            group,
            name: group_name(u)?,
        },
    })
}

/// A group message sealed by one of the harness's users under a fresh group key, with an
/// envelope of that key for `to` (named `to_name`), mostly well made, sometimes damaged; and
/// envelopes (junk) for some other names. Returns the sender's key.
pub fn group_message(
    u: &mut Unstructured,
    group: GroupId,
    to_name: &UserName,
    to: &PublicKey,
) -> Result<(PublicKey, GroupMessage)> {
    let (from, pair, mut rng) = sealer(u, to)?;
    let key = GroupKey::generate(&mut rng);
    let (generation, version) = (u.int_in_range(0..=3u64)?, u.int_in_range(0..=5u64)?);
    let (id, epoch, seq) = (
        MessageId(u.arbitrary()?),
        u.int_in_range(0..=2u64)?,
        seq_number(u)?,
    );
    let header = GroupSealHeader {
        group,
        id,
        epoch,
        seq,
        generation,
    };
    let text = "g".repeat(u.int_in_range(0..=64usize)?);
    let mut sealed = key.seal(&from, &header, text.as_bytes(), &mut rng);
    damage(u, &mut sealed)?;
    let mut keys = Vec::new();
    if u.ratio(3, 4)? {
        let mut envelope = key.envelope(to_name, &pair, group, generation, version, &mut rng);
        damage(u, &mut envelope.sealed)?;
        keys.push(envelope);
    }
    for other in names(u)? {
        keys.push(KeyEnvelope {
            to: other,
            sealed: u.arbitrary()?,
        });
    }
    Ok((
        from,
        GroupMessage {
            id,
            epoch,
            seq,
            generation,
            version,
            keys,
            sealed,
        },
    ))
}

/// A group as a server might describe it, mostly with `me` in it.
pub fn group_info(u: &mut Unstructured, me: &UserName) -> Result<GroupInfo> {
    let mut members = names(u)?;
    if u.ratio(3, 4)? {
        members.push(me.clone());
    }
    Ok(GroupInfo {
        id: group_id(u)?,
        name: group_name(u)?,
        owner: name(u)?,
        members,
        version: u.int_in_range(0..=5u64)?,
    })
}

/// Any group error.
pub fn group_error(u: &mut Unstructured) -> Result<GroupError> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => GroupError::UnknownGroup,
        1 => GroupError::NotMember,
        2 => GroupError::NotOwner,
        3 => GroupError::NoSuchUser(name(u)?),
        4 => GroupError::Busy,
        _ => GroupError::TooLong,
    })
}
