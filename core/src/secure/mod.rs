//! Encryption and authentication: identity keys, the Noise handshakes that open every
//! connection, the record layer that carries frames afterwards, and the end-to-end sealing of
//! what travels through the server relay (see `docs/ARCHITECTURE.md` §10 Security).
//!
//! Everything here is pure: keys come from the host, randomness from the core's seed, and no
//! primitive is written here. The Noise handshakes come from `snow`; the records after them are
//! AES-256-GCM from `ring`, keyed once per direction with the keys the handshake yields; the
//! end-to-end items are AES-256-GCM from `ring` too, each under its own key derived with BLAKE3
//! (`item_cipher`), over X25519 from curve25519-dalek; key derivation and fingerprints use
//! BLAKE3's key-derivation mode.
//!
//! Two Noise patterns are used, both over X25519, AES-GCM and SHA-256:
//! - **client↔server, XX**: the client learns the server's static key in the second message and
//!   checks it against its pin before it reveals anything of its own (its static key goes in the
//!   third message, the password only once the channel is up);
//! - **peer↔peer, IK**: the dialer already knows the acceptor's key from the server's
//!   introduction, so its first message is encrypted to that key and carries its own; the
//!   acceptor checks that key against the introduction of the user it claims to be.
//!
//! [`Handshake`], [`Sealer`], [`Opener`] and [`Inbound`] are public for programs that speak the
//! wire protocol without a [`Client`](crate::Client) (load generators, test peers, fuzzers);
//! the cores use the same pieces.
//!
//! The prologue names the protocol version and the link kind, so a handshake recorded for one
//! kind of link or one version cannot be used on another (no downgrade is possible: there is no
//! unencrypted mode to fall back to).

mod e2e;
mod group_key;
mod handshake;
mod inbound;
mod item_cipher;
mod keys;
mod record;
mod resolver;

pub use e2e::{PairKey, SealError, SEAL_OVERHEAD};
pub use group_key::{GroupKey, GroupSealHeader};
pub use handshake::{Handshake, HandshakeError, LinkKind, Progress};
pub(crate) use inbound::Read;
pub use inbound::{Inbound, ReadOwner};
pub use keys::{pair_fingerprint, Fingerprint, IdentityKey, PublicKey};
pub use record::{
    sealed_len, Opener, RecordError, Sealer, MAX_RECORD, MAX_RECORD_PAYLOAD, RECORD_AT_PART_END,
    RECORD_OVERHEAD,
};

#[cfg(test)]
pub(crate) use e2e::test_pair;
#[cfg(test)]
pub(crate) use handshake::test_channel;
#[cfg(test)]
pub(crate) use record::RecordReader;
