//! End-to-end sealing between two users, for everything the server relays or stores.
//!
//! The server forwards chat, acknowledgements and file messages between users who have no
//! direct channel, and keeps messages for users who are offline. It must be able to do that
//! without reading or forging any of it. Each pair of users therefore shares a key that only
//! they can compute: X25519 between one's identity key and the other's public key, put through
//! BLAKE3's key derivation together with both public keys. A sealed item is 24 fresh random
//! bytes (from the core's seeded generator) and AES-256-GCM ciphertext under a key derived from
//! them (see `item_cipher`); the associated data names the sender's and the recipient's keys
//! and the item's visible header (its kind, message numbers, transfer id and offset), so the
//! server can neither alter those, nor turn a message around, nor move it to another pair.
//!
//! A recipient who is offline is sealed to in the same way: the sender needs only the
//! recipient's public key, which the server hands out.

use super::item_cipher::ItemCipher;
use super::keys::{IdentityKey, PublicKey};
use crate::rng::SeededRng;
use std::fmt;

pub use super::item_cipher::{SealError, SEAL_OVERHEAD};

/// The key one user shares with one other user.
#[derive(Clone)]
pub struct PairKey {
    cipher: ItemCipher,
    mine: PublicKey,
    theirs: PublicKey,
}

impl fmt::Debug for PairKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairKey({:?} ↔ {:?})", self.mine, self.theirs)
    }
}

impl PairKey {
    /// The key `me` shares with the holder of `theirs`; `None` for a key that yields no secret
    /// (a low-order point a malicious server might hand out).
    pub fn new(me: &IdentityKey, theirs: &PublicKey) -> Option<Self> {
        let shared = me.agree(theirs)?;
        let mine = me.public();
        let (low, high) = if mine <= *theirs {
            (mine, *theirs)
        } else {
            (*theirs, mine)
        };
        let mut material = [0u8; 96];
        material[..32].copy_from_slice(&shared);
        material[32..64].copy_from_slice(&low.0);
        material[64..].copy_from_slice(&high.0);
        Some(PairKey {
            cipher: ItemCipher::new("breeze end-to-end pair key v2", &material),
            mine,
            theirs: *theirs,
        })
    }

    /// The other user's key.
    pub fn theirs(&self) -> PublicKey {
        self.theirs
    }

    /// `plain` sealed from us to them, bound to `header`.
    pub fn seal(&self, header: &[u8], plain: &[u8], rng: &mut SeededRng) -> Vec<u8> {
        self.seal_with(header, rng, plain.len(), |out| out.extend_from_slice(plain))
    }

    /// The plaintext that `write` appends, sealed from us to them and bound to `header`; for
    /// callers that encode an item straight into the buffer it is sealed in (`capacity`: the
    /// plaintext's expected size).
    pub fn seal_with(
        &self,
        header: &[u8],
        rng: &mut SeededRng,
        capacity: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Vec<u8> {
        let aad = associated(&self.mine, &self.theirs, header);
        self.cipher.seal_with(&aad, rng, capacity, write)
    }

    /// What they sealed to us, bound to `header`.
    pub fn open(&self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let aad = associated(&self.theirs, &self.mine, header);
        self.cipher.open(&aad, sealed)
    }
}

fn associated(from: &PublicKey, to: &PublicKey, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + 64 + header.len());
    aad.extend_from_slice(b"breeze e2e v2");
    aad.extend_from_slice(&from.0);
    aad.extend_from_slice(&to.0);
    aad.extend_from_slice(header);
    aad
}

/// Both sides of one pair (alice's, bob's) and a generator, for tests of what is sealed.
#[cfg(test)]
pub(crate) fn test_pair() -> (PairKey, PairKey, SeededRng) {
    let (a, b) = (
        IdentityKey::from_secret([1; 32]),
        IdentityKey::from_secret([2; 32]),
    );
    (
        PairKey::new(&a, &b.public()).unwrap(),
        PairKey::new(&b, &a.public()).unwrap(),
        SeededRng::from_u64(5),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (PairKey, PairKey, SeededRng) {
        test_pair()
    }

    #[test]
    fn only_the_other_side_opens_it_and_only_with_the_same_header() {
        let (alice, bob, mut rng) = pair();
        let sealed = alice.seal(b"chat 1 7", b"hi bob", &mut rng);
        assert!(!sealed.windows(6).any(|w| w == b"hi bob"));
        assert_eq!(bob.open(b"chat 1 7", &sealed).unwrap(), b"hi bob");
        assert_eq!(bob.open(b"chat 1 8", &sealed), Err(SealError::Forged));
        // Turned around: alice cannot be made to accept her own message as bob's.
        assert_eq!(alice.open(b"chat 1 7", &sealed), Err(SealError::Forged));
        let carol = IdentityKey::from_secret([3; 32]);
        let carol_bob = PairKey::new(&carol, &alice.mine).unwrap();
        assert_eq!(carol_bob.open(b"chat 1 7", &sealed), Err(SealError::Forged));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(bob.open(b"chat 1 7", &flipped), Err(SealError::Forged));
        assert_eq!(bob.open(b"", &sealed[..10]), Err(SealError::Truncated));
    }
}
