//! The profile keys bound to each account (schema version 2), enrolled for key logins and
//! revocable by the owner (version 4).
//!
//! A password login binds the key the client proved in its handshake: that enrols it, and
//! from then on the key alone logs in (`key_login`, one indexed update). The owner can revoke
//! a key; it is kept, marked, so that it is refused for good (with or without the password)
//! and never again handed to peers as the account's key.

use breeze_core::secure::{Fingerprint, PublicKey};
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// One key of an account, for the operator's listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountKey {
    pub key: PublicKey,
    /// Unix seconds: when the key was first bound, and when it last logged in.
    pub added: i64,
    pub last_login: i64,
    /// Unix seconds when the owner revoked it; `None` while it is good.
    pub revoked: Option<i64>,
}

/// What binding a key after a right password came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Bound (or already bound): enrolled, and the key handed out from now on.
    Bound,
    /// The owner revoked this key for the account: the login is refused.
    Revoked,
}

/// What a key login found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// Enrolled and good: logged in (its last login is now).
    Enrolled,
    /// Not bound to the account, or no such account.
    NotEnrolled,
    /// Bound and revoked.
    Revoked,
}

/// Why `revoke_key` did not revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeError {
    /// No key of the account has that fingerprint.
    NoSuchKey,
    /// That key was revoked already, at this time.
    AlreadyRevoked(i64),
}

fn key_of(blob: Vec<u8>) -> Option<PublicKey> {
    Some(PublicKey(blob.try_into().ok()?))
}

impl Store {
    /// `key` logged in to `account` with the right password at `now` (Unix seconds): bind it
    /// if it is new, and make it the one handed out; unless the owner revoked it.
    pub fn bind_key(
        &mut self,
        account: &str,
        key: &PublicKey,
        now: i64,
    ) -> Result<Binding, StoreError> {
        // One statement: a revoked key matches the conflict but not the update, so nothing
        // changes and nothing can slip in between a check and the write.
        let changed = self.conn.execute(
            "INSERT INTO account_keys (account, key, added, last_login) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (account, key) DO UPDATE SET last_login = excluded.last_login
             WHERE revoked IS NULL",
            params![account, &key.0[..], now],
        )?;
        Ok(if changed == 0 {
            Binding::Revoked
        } else {
            Binding::Bound
        })
    }

    /// A key login of `key` to `account` at `now`: logged in when enrolled and good (and its
    /// last login noted, which also makes it the key handed out).
    pub fn key_login(
        &mut self,
        account: &str,
        key: &PublicKey,
        now: i64,
    ) -> Result<KeyCheck, StoreError> {
        let updated = self.conn.execute(
            "UPDATE account_keys SET last_login = ?3
             WHERE account = ?1 AND key = ?2 AND revoked IS NULL",
            params![account, &key.0[..], now],
        )?;
        if updated > 0 {
            return Ok(KeyCheck::Enrolled);
        }
        let bound = self
            .conn
            .query_row(
                "SELECT 1 FROM account_keys WHERE account = ?1 AND key = ?2",
                params![account, &key.0[..]],
                |_| Ok(()),
            )
            .optional()?;
        Ok(match bound {
            Some(()) => KeyCheck::Revoked,
            None => KeyCheck::NotEnrolled,
        })
    }

    /// Revokes the key of `account` whose fingerprint is `fingerprint`, at `now`.
    pub fn revoke_key(
        &mut self,
        account: &str,
        fingerprint: &Fingerprint,
        now: i64,
    ) -> Result<Result<PublicKey, RevokeError>, StoreError> {
        let found = self
            .account_keys(account)?
            .into_iter()
            .find(|k| &k.key.fingerprint() == fingerprint);
        let Some(found) = found else {
            return Ok(Err(RevokeError::NoSuchKey));
        };
        if let Some(at) = found.revoked {
            return Ok(Err(RevokeError::AlreadyRevoked(at)));
        }
        self.conn.execute(
            "UPDATE account_keys SET revoked = ?3
             WHERE account = ?1 AND key = ?2 AND revoked IS NULL",
            params![account, &found.key.0[..], now],
        )?;
        Ok(Ok(found.key))
    }

    /// The key peers are told `account` has: the good one that logged in last.
    pub fn current_key(&self, account: &str) -> Result<Option<PublicKey>, StoreError> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT key FROM account_keys WHERE account = ?1 AND revoked IS NULL
                 ORDER BY last_login DESC, added DESC LIMIT 1",
                [account],
                |row| row.get(0),
            )
            .optional()?;
        Ok(blob.and_then(key_of))
    }

    /// Every key bound to `account`, revoked ones too, the one used last first.
    pub fn account_keys(&self, account: &str) -> Result<Vec<AccountKey>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT key, added, last_login, revoked FROM account_keys WHERE account = ?1
             ORDER BY last_login DESC, added DESC",
        )?;
        let rows = stmt.query_map([account], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
            ))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (blob, added, last_login, revoked) = row?;
            if let Some(key) = key_of(blob) {
                keys.push(AccountKey {
                    key,
                    added,
                    last_login,
                    revoked,
                });
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn store() -> Store {
        let mut store = Store::open_in_memory_with(StoreOptions::fast_for_tests()).unwrap();
        store.add_user("alice", "pw").unwrap();
        store
    }

    #[test]
    fn the_key_that_logged_in_last_is_the_one_handed_out() {
        let mut store = store();
        assert_eq!(store.current_key("alice").unwrap(), None);
        let (laptop, phone) = (PublicKey([1; 32]), PublicKey([2; 32]));
        store.bind_key("alice", &laptop, 100).unwrap();
        store.bind_key("alice", &phone, 200).unwrap();
        assert_eq!(store.current_key("alice").unwrap(), Some(phone));
        store.bind_key("alice", &laptop, 300).unwrap();
        assert_eq!(store.current_key("alice").unwrap(), Some(laptop));
        let keys = store.account_keys("alice").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].added, keys[0].last_login), (100, 300));
        assert!(store.remove_user("alice").unwrap());
        assert_eq!(store.account_keys("alice").unwrap(), vec![]);
    }

    #[test]
    fn an_enrolled_key_logs_in_alone_and_another_does_not() {
        let mut store = store();
        let (laptop, stranger) = (PublicKey([1; 32]), PublicKey([9; 32]));
        assert_eq!(
            store.key_login("alice", &laptop, 50).unwrap(),
            KeyCheck::NotEnrolled
        );
        assert_eq!(
            store.bind_key("alice", &laptop, 100).unwrap(),
            Binding::Bound
        );
        assert_eq!(
            store.key_login("alice", &laptop, 150).unwrap(),
            KeyCheck::Enrolled
        );
        assert_eq!(store.account_keys("alice").unwrap()[0].last_login, 150);
        assert_eq!(
            store.key_login("alice", &stranger, 160).unwrap(),
            KeyCheck::NotEnrolled
        );
        assert_eq!(
            store.key_login("nobody", &laptop, 160).unwrap(),
            KeyCheck::NotEnrolled
        );
    }

    #[test]
    fn a_revoked_key_is_refused_for_good_and_never_handed_out() {
        let mut store = store();
        let (laptop, phone) = (PublicKey([1; 32]), PublicKey([2; 32]));
        store.bind_key("alice", &laptop, 100).unwrap();
        store.bind_key("alice", &phone, 200).unwrap();
        let revoked = store
            .revoke_key("alice", &phone.fingerprint(), 300)
            .unwrap();
        assert_eq!(revoked, Ok(phone));
        assert_eq!(store.current_key("alice").unwrap(), Some(laptop));
        assert_eq!(
            store.key_login("alice", &phone, 400).unwrap(),
            KeyCheck::Revoked
        );
        // The password does not bring it back either.
        assert_eq!(
            store.bind_key("alice", &phone, 500).unwrap(),
            Binding::Revoked
        );
        assert_eq!(store.current_key("alice").unwrap(), Some(laptop));
        let listed = store.account_keys("alice").unwrap();
        let phone_row = listed.iter().find(|k| k.key == phone).unwrap();
        assert_eq!((phone_row.last_login, phone_row.revoked), (200, Some(300)));
        assert_eq!(
            store
                .revoke_key("alice", &phone.fingerprint(), 600)
                .unwrap(),
            Err(RevokeError::AlreadyRevoked(300))
        );
        let unknown = PublicKey([7; 32]).fingerprint();
        assert_eq!(
            store.revoke_key("alice", &unknown, 600).unwrap(),
            Err(RevokeError::NoSuchKey)
        );
    }
}
