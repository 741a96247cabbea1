//! Group keys: what a member seals its group messages with, handed to the other members in key
//! envelopes sealed with each pair's key (see `crate::wire::GroupMessage`).
//!
//! A sender key is 32 random bytes from the core's seed, used with the same AEAD as the pair
//! keys (`item_cipher`: a key per message, so random nonces are safe for any number). The
//! associated data names the sender's public key, so a member cannot pass off a message under
//! another member's name even though every member holds every sender's key.

use super::e2e::{PairKey, SealError};
use super::item_cipher::ItemCipher;
use super::keys::PublicKey;
use crate::rng::SeededRng;
use crate::wire::{GroupId, KeyEnvelope, MessageId, UserName};
use std::fmt;

/// One sender's key for one group, for one membership.
#[derive(Clone)]
pub struct GroupKey {
    secret: [u8; 32],
    cipher: ItemCipher,
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupKey(..)")
    }
}

/// What a group message's seal is bound to besides its text.
#[derive(Clone, Copy, Debug)]
pub struct GroupSealHeader {
    /// The group.
    pub group: GroupId,
    /// The sender's id for the message.
    pub id: MessageId,
    /// The sender's epoch.
    pub epoch: u64,
    /// The sender's sequence number.
    pub seq: u64,
    /// Which of the sender's keys.
    pub generation: u64,
}

impl GroupSealHeader {
    fn bytes(&self, sender: &PublicKey) -> Vec<u8> {
        let mut aad = Vec::with_capacity(16 + 32 + 40);
        aad.extend_from_slice(b"breeze group v2");
        aad.extend_from_slice(&sender.0);
        for n in [
            self.group.0,
            self.id.0,
            self.epoch,
            self.seq,
            self.generation,
        ] {
            aad.extend_from_slice(&n.to_be_bytes());
        }
        aad
    }
}

fn envelope_header(group: GroupId, generation: u64, version: u64) -> [u8; 25] {
    let mut header = [0u8; 25];
    header[0] = b'k';
    for (i, n) in [group.0, generation, version].iter().enumerate() {
        header[1 + 8 * i..9 + 8 * i].copy_from_slice(&n.to_be_bytes());
    }
    header
}

impl GroupKey {
    /// A fresh key from the core's generator.
    pub fn generate(rng: &mut SeededRng) -> Self {
        Self::from_secret(rng.bytes32())
    }

    fn from_secret(secret: [u8; 32]) -> Self {
        GroupKey {
            cipher: ItemCipher::new("breeze group sender key v2", &secret),
            secret,
        }
    }

    /// `text` sealed by the holder of `sender`'s identity.
    pub fn seal(
        &self,
        sender: &PublicKey,
        header: &GroupSealHeader,
        text: &[u8],
        rng: &mut SeededRng,
    ) -> Vec<u8> {
        self.cipher.seal(&header.bytes(sender), text, rng)
    }

    /// The text, if `sender` sealed it under this key with this header.
    pub fn open(
        &self,
        sender: &PublicKey,
        header: &GroupSealHeader,
        sealed: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        self.cipher.open(&header.bytes(sender), sealed)
    }

    /// This key in an envelope for `to`, sealed with the pair key the sender shares with `to`.
    pub fn envelope(
        &self,
        to: &UserName,
        pair: &PairKey,
        group: GroupId,
        generation: u64,
        version: u64,
        rng: &mut SeededRng,
    ) -> KeyEnvelope {
        let header = envelope_header(group, generation, version);
        KeyEnvelope {
            to: to.clone(),
            sealed: pair.seal(&header, &self.secret, rng),
        }
    }

    /// The key in `envelope`, if the other side of `pair` sealed it for this group, generation
    /// and membership version.
    pub fn open_envelope(
        envelope: &KeyEnvelope,
        pair: &PairKey,
        group: GroupId,
        generation: u64,
        version: u64,
    ) -> Result<GroupKey, SealError> {
        let header = envelope_header(group, generation, version);
        let secret = pair.open(&header, &envelope.sealed)?;
        let secret: [u8; 32] = secret.try_into().map_err(|_| SealError::Forged)?;
        Ok(GroupKey::from_secret(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::{test_pair, IdentityKey};

    #[test]
    fn members_open_what_the_sender_sealed_and_nobody_can_pass_as_the_sender() {
        let (alice_bob, bob_alice, mut rng) = test_pair();
        let alice = IdentityKey::from_secret([1; 32]).public();
        let carol = IdentityKey::from_secret([3; 32]).public();
        let key = GroupKey::generate(&mut rng);
        let group = GroupId(7);
        let bob = UserName::new("bob").unwrap();
        let envelope = key.envelope(&bob, &alice_bob, group, 1, 4, &mut rng);
        assert!(GroupKey::open_envelope(&envelope, &bob_alice, group, 1, 5).is_err());
        assert!(GroupKey::open_envelope(&envelope, &bob_alice, GroupId(8), 1, 4).is_err());
        let opened = GroupKey::open_envelope(&envelope, &bob_alice, group, 1, 4).unwrap();
        let header = GroupSealHeader {
            group,
            id: MessageId(3),
            epoch: 9,
            seq: 1,
            generation: 1,
        };
        let sealed = key.seal(&alice, &header, b"hello group", &mut rng);
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(
            opened.open(&alice, &header, &sealed).unwrap(),
            b"hello group"
        );
        assert_eq!(
            opened.open(&carol, &header, &sealed),
            Err(SealError::Forged)
        );
        let other = GroupSealHeader { seq: 2, ..header };
        assert_eq!(opened.open(&alice, &other, &sealed), Err(SealError::Forged));
    }
}
