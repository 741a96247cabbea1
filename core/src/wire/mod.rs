//! Everything that crosses a socket: the three message families and the types they share.
//!
//! Every connection starts with a hello carrying [`PROTOCOL_VERSION`]; a peer speaking another
//! version is told so with an error frame and then closed. Frames themselves are length-prefixed
//! postcard (see [`crate::codec`]).

mod client_server;
mod file;
mod group;
mod peer;
mod sealed;
mod shared;

/// The type of file chunk data, re-exported so hosts need no `bytes` dependency of their own.
pub use bytes::Bytes;
pub use client_server::{ClientFrame, KeyLookup, PeerIntro, ServerFrame};
pub use file::{FileMessage, FileName, FileNameError, TransferId, MAX_FILE_NAME};
pub use group::{
    valid_group_name, GroupError, GroupId, GroupInfo, GroupMessage, GroupRequest, KeyEnvelope,
    OrderedGroupMessage, MAX_GROUP_NAME,
};
pub use peer::{ClosingReason, PeerFrame};
pub use sealed::{FileHint, SealedAck, SealedChat, SealedFile};
pub use shared::{
    Ack, Chat, ErrorCode, KickReason, LoginRefusal, MessageId, Undeliverable, UserName,
    UserNameError,
};

/// The protocol version this build speaks. Bumped on any incompatible wire change.
pub const PROTOCOL_VERSION: u16 = 7;

/// The most users one [`ClientFrame::Watch`] may name; a client watching more sends several.
pub const MAX_WATCH_PER_FRAME: usize = 256;
