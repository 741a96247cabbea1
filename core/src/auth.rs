//! Proofs for the peer setup handshake (see [`crate::wire::PeerFrame`]).
//!
//! A proof is BLAKE3 in keyed mode over a transcript of both user names and both nonces, keyed
//! with the pair secret from the server's introduction. The role byte keeps the dialer's and the
//! acceptor's proofs different, so neither can be reflected back as the other.

use crate::wire::UserName;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Dialer,
    Acceptor,
}

pub fn setup_proof(
    secret: &[u8; 32],
    role: Role,
    dialer: &UserName,
    acceptor: &UserName,
    dialer_nonce: &[u8; 32],
    acceptor_nonce: &[u8; 32],
) -> [u8; 32] {
    let mut mac = blake3::Hasher::new_keyed(secret);
    mac.update(b"breeze p2p setup v1");
    mac.update(&[match role {
        Role::Dialer => 1,
        Role::Acceptor => 2,
    }]);
    for name in [dialer, acceptor] {
        mac.update(&[name.as_str().len() as u8]);
        mac.update(name.as_str().as_bytes());
    }
    mac.update(dialer_nonce);
    mac.update(acceptor_nonce);
    *mac.finalize().as_bytes()
}

/// Constant-time comparison (blake3's `Hash` equality is), so a forger learns nothing from timing.
pub fn proof_matches(expected: [u8; 32], received: [u8; 32]) -> bool {
    blake3::Hash::from(expected) == blake3::Hash::from(received)
}
