//! Exactly-once, in-order delivery per sender→recipient pair, across route changes.
//!
//! The sender keeps every message in an [`Outbox`] until the recipient's cumulative [`Ack`]
//! covers it, and re-sends it on whatever route is current when the path it last went over
//! fails or stays silent too long. The recipient's [`Inbox`] releases messages strictly in
//! sequence order, holds early arrivals, and drops anything it already released.
//!
//! [`Ack`]: crate::wire::Ack

mod inbox;
mod outbox;

pub use inbox::{Inbox, Receipt};
pub use outbox::{Outbox, Pending, Sent, Timeouts};

/// Which way a message (or an acknowledgement) travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Path {
    Direct,
    Relay,
}
