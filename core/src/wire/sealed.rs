//! What the server relays and stores between two users, sealed end to end (see
//! [`crate::secure::PairKey`]): each item keeps in the clear only what the server needs to do
//! its job (message numbers for storing and deleting, a transfer's id and offset for the relay
//! budget), and that header is bound into the seal, so the server can neither read the rest nor
//! change the header without the recipient noticing.

use super::file::{FileMessage, TransferId, SHARED_DATA_MIN};
use super::shared::{Ack, Chat, MessageId};
use crate::rng::SeededRng;
use crate::secure::{PairKey, SealError};
use crate::transmit::Payload;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A chat message on its way through the relay (or waiting in the server's store).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SealedChat {
    /// As in [`Chat`]: the sender's id for the message.
    pub id: MessageId,
    /// As in [`Chat`]: the sender's process lifetime.
    pub epoch: u64,
    /// As in [`Chat`]: its place in the sequence to this recipient.
    pub seq: u64,
    /// As in [`Chat`]: the sender's lowest unacknowledged sequence number.
    pub first_unacked: u64,
    /// The text, sealed.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// An acknowledgement through the relay, with a seal over its numbers: the server learns
/// what it needs to delete stored messages, but cannot make a sender believe a message was
/// delivered when it was not.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SealedAck {
    /// The numbers, for the server's store.
    pub ack: Ack,
    /// A seal over them that only the acknowledging user could make.
    #[serde(with = "serde_bytes")]
    pub seal: Vec<u8>,
}

/// What the relay may know of a sealed file message: whether it is an offer (refused for an
/// offline recipient) or a chunk (its offset and size count against the sender's budget).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum FileHint {
    /// An offer: refused when the recipient is offline (files are not stored).
    Offer,
    /// A chunk of `len` bytes at `offset`: counted against the sender's relay budget.
    Chunk {
        /// Where in the file.
        offset: u64,
        /// How many bytes of file data.
        len: u32,
    },
    /// Anything else (accept, progress, done…): forwarded as it is.
    Control,
}

/// A file message on its way through the relay.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SealedFile {
    /// The transfer.
    pub id: TransferId,
    /// What the relay may know of the message.
    pub hint: FileHint,
    /// The whole file message, sealed.
    pub sealed: Bytes,
}

impl SealedChat {
    fn header(id: MessageId, epoch: u64, seq: u64, first_unacked: u64) -> [u8; 33] {
        let mut header = [0u8; 33];
        header[0] = b'c';
        for (i, n) in [id.0, epoch, seq, first_unacked].iter().enumerate() {
            header[1 + 8 * i..9 + 8 * i].copy_from_slice(&n.to_be_bytes());
        }
        header
    }

    /// `chat` sealed from us to the holder of `pair`'s other key.
    pub fn seal(chat: &Chat, pair: &PairKey, rng: &mut SeededRng) -> SealedChat {
        let header = Self::header(chat.id, chat.epoch, chat.seq, chat.first_unacked);
        SealedChat {
            id: chat.id,
            epoch: chat.epoch,
            seq: chat.seq,
            first_unacked: chat.first_unacked,
            sealed: pair.seal(&header, chat.text.as_bytes(), rng),
        }
    }

    /// The chat inside, if it was sealed to us by the holder of `pair`'s other key with this
    /// very header.
    pub fn open(&self, pair: &PairKey) -> Result<Chat, SealError> {
        let header = Self::header(self.id, self.epoch, self.seq, self.first_unacked);
        let text = pair.open(&header, &self.sealed)?;
        let text = String::from_utf8(text).map_err(|_| SealError::Forged)?;
        Ok(Chat {
            id: self.id,
            epoch: self.epoch,
            seq: self.seq,
            first_unacked: self.first_unacked,
            text,
        })
    }

    /// Bytes the server stores or forwards for it.
    pub fn len(&self) -> usize {
        self.sealed.len()
    }

    /// Whether the sealed text is empty (never, for a well-formed item).
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty()
    }
}

impl SealedAck {
    fn header(ack: &Ack) -> [u8; 17] {
        let mut header = [0u8; 17];
        header[0] = b'a';
        header[1..9].copy_from_slice(&ack.epoch.to_be_bytes());
        header[9..].copy_from_slice(&ack.through.to_be_bytes());
        header
    }

    /// `ack` with our seal, for the other side of `pair`.
    pub fn seal(ack: Ack, pair: &PairKey, rng: &mut SeededRng) -> SealedAck {
        SealedAck {
            ack,
            seal: pair.seal(&Self::header(&ack), &[], rng),
        }
    }

    /// The acknowledgement, if the other side of `pair` made it.
    pub fn open(&self, pair: &PairKey) -> Result<Ack, SealError> {
        pair.open(&Self::header(&self.ack), &self.seal)?;
        Ok(self.ack)
    }
}

impl SealedFile {
    /// A sealed file message that is the rest of a frame (`encoded`), its sealed bytes shared
    /// from `source`, the buffer the frame was read into (see
    /// [`Frame::parse_in`](crate::codec::Frame::parse_in)); `None` if it is not exactly one,
    /// and the ordinary decode then decides.
    pub(crate) fn shared_in(encoded: &[u8], source: &Bytes) -> Option<SealedFile> {
        let fields = postcard::take_from_bytes::<(TransferId, FileHint, &[u8])>(encoded);
        let Ok(((id, hint, sealed), [])) = fields else {
            return None;
        };
        let sealed = crate::codec::share(source, sealed);
        Some(SealedFile { id, hint, sealed })
    }

    /// The sealed bytes, when they are big enough to be worth writing out from where they
    /// are (see [`SharedTail`](crate::codec::SharedTail)). They are a frame's last field.
    pub(crate) fn shared_tail(&self) -> Option<Payload> {
        (self.sealed.len() >= SHARED_DATA_MIN).then(|| Payload::Bytes(self.sealed.clone()))
    }

    fn hint_of(message: &FileMessage) -> FileHint {
        match message {
            FileMessage::Offer { .. } => FileHint::Offer,
            FileMessage::Chunk { offset, data, .. } => FileHint::Chunk {
                offset: *offset,
                len: data.len().min(u32::MAX as usize) as u32,
            },
            _ => FileHint::Control,
        }
    }

    fn header(id: TransferId, hint: FileHint) -> [u8; 22] {
        let mut header = [0u8; 22];
        header[0] = b'f';
        header[1..9].copy_from_slice(&id.0.to_be_bytes());
        match hint {
            FileHint::Offer => header[9] = 1,
            FileHint::Chunk { offset, len } => {
                header[9] = 2;
                header[10..18].copy_from_slice(&offset.to_be_bytes());
                header[18..22].copy_from_slice(&len.to_be_bytes());
            }
            FileHint::Control => header[9] = 3,
        }
        header
    }

    /// `message` sealed from us to the other side of `pair`; `None` for a chunk whose data is
    /// a span of a file (never sent on an encrypted link).
    pub fn seal(message: &FileMessage, pair: &PairKey, rng: &mut SeededRng) -> Option<SealedFile> {
        let id = message.id();
        let hint = Self::hint_of(message);
        let capacity = match hint {
            FileHint::Chunk { len, .. } => len as usize + 32,
            _ => 256,
        };
        // Encoded straight into the buffer it is sealed in: a chunk's data is copied once.
        let mut encoded = Ok(());
        let sealed = pair.seal_with(&Self::header(id, hint), rng, capacity, |out| {
            encoded = postcard::to_io(message, out).map(drop);
        });
        encoded.ok()?;
        Some(SealedFile {
            id,
            hint,
            sealed: Bytes::from(sealed),
        })
    }

    /// The file message inside, if the other side of `pair` sealed it with this header and it
    /// says what the header says. A chunk's data stays in the buffer it was opened in.
    pub fn open(&self, pair: &PairKey) -> Result<FileMessage, SealError> {
        let plain = Bytes::from(pair.open(&Self::header(self.id, self.hint), &self.sealed)?);
        let message = match FileMessage::chunk_in(&plain, &plain) {
            Some(chunk) => chunk,
            None => postcard::from_bytes(&plain).map_err(|_| SealError::Forged)?,
        };
        if message.id() != self.id || Self::hint_of(&message) != self.hint {
            return Err(SealError::Forged);
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::test_pair as pair;

    #[test]
    fn a_sealed_chat_opens_only_unaltered() {
        let (alice, bob, mut rng) = pair();
        let chat = Chat {
            id: MessageId(4),
            epoch: 9,
            seq: 2,
            first_unacked: 1,
            text: "meet at noon".into(),
        };
        let sealed = SealedChat::seal(&chat, &alice, &mut rng);
        assert!(!sealed.sealed.windows(4).any(|w| w == b"noon"));
        assert_eq!(sealed.open(&bob), Ok(chat));
        let mut moved = sealed.clone();
        moved.seq = 3;
        assert_eq!(moved.open(&bob), Err(SealError::Forged));
    }

    #[test]
    fn a_forged_ack_is_refused() {
        let (alice, bob, mut rng) = pair();
        let ack = Ack {
            epoch: 9,
            through: 5,
        };
        let sealed = SealedAck::seal(ack, &bob, &mut rng);
        assert_eq!(sealed.open(&alice), Ok(ack));
        let mut stretched = sealed;
        stretched.ack.through = 50;
        assert_eq!(stretched.open(&alice), Err(SealError::Forged));
    }

    #[test]
    fn a_file_message_must_say_what_its_hint_says() {
        let (alice, bob, mut rng) = pair();
        let chunk = FileMessage::Chunk {
            id: TransferId(3),
            offset: 64,
            data: vec![7; 100].into(),
        };
        let sealed = SealedFile::seal(&chunk, &alice, &mut rng).unwrap();
        assert_eq!(
            sealed.hint,
            FileHint::Chunk {
                offset: 64,
                len: 100
            }
        );
        assert_eq!(sealed.open(&bob), Ok(chunk));
        let mut lying = sealed;
        lying.hint = FileHint::Chunk {
            offset: 0,
            len: 100,
        };
        assert_eq!(lying.open(&bob), Err(SealError::Forged));
    }
}
