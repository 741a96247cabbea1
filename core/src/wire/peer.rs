//! The peer↔peer family: what travels on a direct channel once its handshake is through.
//!
//! The channel is opened by a Noise IK handshake (see [`crate::secure`]): the dialer proves the
//! key the server introduced it with, and reaches only the holder of the key the server
//! introduced the acceptor with. Nothing here says who anyone is; the handshake did.

use super::file::FileMessage;
use super::shared::{Ack, Chat, ErrorCode};
use crate::codec::{parse, variant_fields, DecodeError, Frame, SharedTail};
use crate::transmit::Payload;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// `File`'s variant index, as postcard writes it (a varint before the fields), for the chunk
/// fast path below; the tests check it against the derived encoding.
const FILE_FRAME: u32 = 5;

/// Peer↔peer frames, on a direct channel between two clients once its handshake is through.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PeerFrame {
    /// A chat message.
    Chat(Chat),
    /// An acknowledgement of chat messages that came over this channel.
    Ack(Ack),
    /// A heartbeat, sent only when nothing else was sent for an interval.
    Ping,
    /// Orderly close: the sender logs out or drops a duplicate channel.
    Bye,
    /// Why the sender closes the link.
    Error {
        /// The reason.
        code: ErrorCode,
    },
    /// A file transfer message.
    File(FileMessage),
    /// Orderly close of a channel nobody needs now: the receiver drops it without counting
    /// it as a failure (nothing to redial, nothing lost: what it carried unacknowledged goes
    /// by relay) and opens it again only when it has something for the sender.
    Closing(ClosingReason),
}

/// Why a direct channel is closed in order (see [`PeerFrame::Closing`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClosingReason {
    /// It carried nothing but heartbeats for the idle period.
    Idle,
    /// The sender is at its cap of direct channels and needs the room for another peer;
    /// this was its least recently used idle one.
    Evicted,
}

/// A chunk is the frame's end: its data goes out from where the host read it.
impl SharedTail for PeerFrame {
    fn shared_tail(&self) -> Option<Payload> {
        match self {
            PeerFrame::File(message) => message.shared_data().cloned(),
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
    FileMessage::chunk_in(variant_fields(payload, FILE_FRAME)?, source)
}
