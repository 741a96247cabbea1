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

/// Which way one message, acknowledgement or file chunk actually went.
///
/// Not to be confused with [`Route`](crate::client::Route), the way messages to a peer go
/// *now*, which can also be `Connecting`: a message is always carried by one of these two,
/// and a report of how it went ("delivered via relay") must not be able to say anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Via {
    /// Over the authenticated direct channel between the two clients.
    Direct,
    /// Through the server.
    Relay,
}
