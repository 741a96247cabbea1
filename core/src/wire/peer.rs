//! The peer↔peer family: the authenticated setup handshake, then chat.
//!
//! Setup (dialer D, acceptor A, secret S from the server's introduction of the pair):
//! 1. D → A `Hello { user: D, nonce: nd }`
//! 2. A → D `Challenge { user: A, nonce: na, proof: mac(S, accept, D, A, nd, na) }`
//! 3. D → A `Auth { proof: mac(S, dial, D, A, nd, na) }`
//!
//! The dialer treats the channel as up once it has checked the challenge and sent its proof;
//! the acceptor once it has checked that proof. No extra round trip is spent on a "ready".
//!
//! Both nonces are fresh per connection, so a recorded handshake cannot be replayed, and a
//! claimed user name is worthless without the secret the server gave that exact pair.

use super::file::FileMessage;
use super::payload::Payload;
use super::shared::{Ack, Chat, ErrorCode, UserName};
use crate::codec::{parse, DecodeError, Frame, SharedTail};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// `File`'s variant index, as postcard writes it (a varint before the fields), for the chunk
/// fast path below; the tests check it against the derived encoding.
const FILE_FRAME: u32 = 8;

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PeerFrame {
    Hello {
        version: u16,
        user: UserName,
        nonce: [u8; 32],
    },
    Challenge {
        user: UserName,
        nonce: [u8; 32],
        proof: [u8; 32],
    },
    Auth {
        proof: [u8; 32],
    },
    Chat(Chat),
    Ack(Ack),
    Ping,
    /// Orderly close: the sender logs out or drops a duplicate channel.
    Bye,
    Error {
        code: ErrorCode,
    },
    File(FileMessage),
}

/// A chunk is the frame's end: its data goes out from where the host read it.
impl SharedTail for PeerFrame {
    fn shared_tail(&self) -> Option<&Payload> {
        match self {
            PeerFrame::File(message) => message.shared_data(),
            _ => None,
        }
    }
}

/// A direct transfer's chunks keep their data in the read buffer they arrived in: the chunk
/// goes to the disk from there, not from a copy.
impl Frame for PeerFrame {
    fn parse_in(payload: &[u8], source: &Bytes) -> Result<Self, DecodeError> {
        match chunk_in(payload, source) {
            Some(chunk) => Ok(PeerFrame::File(chunk)),
            None => parse(payload),
        }
    }
}

/// `payload` as a `File(Chunk)` frame with its data shared from `source`, if it is one.
fn chunk_in(payload: &[u8], source: &Bytes) -> Option<FileMessage> {
    let (FILE_FRAME, rest) = postcard::take_from_bytes::<u32>(payload).ok()? else {
        return None;
    };
    FileMessage::chunk_in(rest, source)
}
