//! Identity keys and the fingerprints people compare.
//!
//! Every server and every client profile has one static X25519 key. Who a peer is rests on
//! that key alone: the server binds accounts to keys, introductions carry them, and the
//! fingerprints below let two people check, out of band, that nobody stands in between.

use super::resolver::x25519;
use curve25519_dalek::montgomery::MontgomeryPoint;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A static X25519 public key: what identifies a server or a client profile.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The key as 64 hex digits, how profiles store the keys they pinned.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads what [`to_hex`](PublicKey::to_hex) writes.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(PublicKey(key))
    }

    /// The key's own fingerprint: what `breeze-server key` prints and users compare.
    pub fn fingerprint(&self) -> Fingerprint {
        let hash = blake3::derive_key("breeze key fingerprint v1", &self.0);
        Fingerprint::from_digest(&hash)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// A static X25519 key pair. The secret half never leaves it except through
/// [`secret_bytes`](IdentityKey::secret_bytes), for the host to save in a 0600 file; `Debug`
/// shows only the public half, so a key cannot end up in a log by accident.
#[derive(Clone)]
pub struct IdentityKey {
    secret: [u8; 32],
    public: PublicKey,
}

impl IdentityKey {
    /// The key pair whose secret is `secret`: 32 random bytes the host drew from the operating
    /// system (a new key) or read back from its key file.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let mut dh = x25519();
        dh.set(&secret);
        let mut public = [0u8; 32];
        public.copy_from_slice(dh.pubkey());
        IdentityKey {
            secret,
            public: PublicKey(public),
        }
    }

    /// The public half, which others may know.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The secret half, for the host to store. Nothing in the core logs or sends it.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// X25519 between this key and `theirs`; `None` for a key of low order, which would make
    /// the result predictable (all zeros) to anyone.
    pub(crate) fn agree(&self, theirs: &PublicKey) -> Option<[u8; 32]> {
        let shared = MontgomeryPoint(theirs.0)
            .mul_clamped(self.secret)
            .to_bytes();
        if shared == [0u8; 32] {
            return None;
        }
        Some(shared)
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({})", self.public.fingerprint())
    }
}

/// A short, readable digest of one or two keys: 32 hex digits in groups of four.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 16]);

impl Fingerprint {
    fn from_digest(digest: &[u8; 32]) -> Self {
        let mut short = [0u8; 16];
        short.copy_from_slice(&digest[..16]);
        Fingerprint(short)
    }

    /// Parses what [`Display`](fmt::Display) writes (groups may be separated by `:`, `-`,
    /// spaces or nothing; case does not matter).
    pub fn parse(text: &str) -> Option<Self> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|b| !matches!(b, b':' | b'-' | b' '))
            .collect();
        if digits.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in digits.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{:02x}{:02x}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The fingerprint of a pair of users, the same on both sides whatever the order: what
/// `verify USER` shows. Two people who read out the same string know each holds the key the
/// other's client uses, so nobody (not even the server) sits between them.
pub fn pair_fingerprint(a: &PublicKey, b: &PublicKey) -> Fingerprint {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(&low.0);
    both[32..].copy_from_slice(&high.0);
    Fingerprint::from_digest(&blake3::derive_key("breeze pair fingerprint v1", &both))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_pair_is_the_same_from_the_same_secret_and_hides_it_in_debug() {
        let a = IdentityKey::from_secret([7; 32]);
        let b = IdentityKey::from_secret([7; 32]);
        assert_eq!(a.public(), b.public());
        let shown = format!("{a:?}");
        assert!(!shown.contains("07, 07"), "{shown}");
        assert!(shown.contains(&a.public().fingerprint().to_string()));
    }

    #[test]
    fn both_sides_agree_and_see_the_same_pair_fingerprint() {
        let a = IdentityKey::from_secret([1; 32]);
        let b = IdentityKey::from_secret([2; 32]);
        assert_eq!(a.agree(&b.public()), b.agree(&a.public()));
        assert_eq!(
            pair_fingerprint(&a.public(), &b.public()),
            pair_fingerprint(&b.public(), &a.public())
        );
        let c = IdentityKey::from_secret([3; 32]);
        assert_ne!(
            pair_fingerprint(&a.public(), &b.public()),
            pair_fingerprint(&a.public(), &c.public())
        );
    }

    #[test]
    fn a_low_order_key_gives_no_shared_secret() {
        let a = IdentityKey::from_secret([1; 32]);
        assert_eq!(a.agree(&PublicKey([0; 32])), None);
    }

    #[test]
    fn keys_read_back_their_hex() {
        let key = IdentityKey::from_secret([4; 32]).public();
        assert_eq!(PublicKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(PublicKey::from_hex("zz"), None);
        assert_eq!(PublicKey::from_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn fingerprints_read_back_what_they_print() {
        let f = IdentityKey::from_secret([9; 32]).public().fingerprint();
        let text = f.to_string();
        assert_eq!(text.len(), 39);
        assert_eq!(Fingerprint::parse(&text), Some(f));
        assert_eq!(
            Fingerprint::parse(&text.replace(':', "").to_uppercase()),
            Some(f)
        );
        assert_eq!(Fingerprint::parse("abc"), None);
    }
}
