//! The profile keys bound to each account (see schema version 2).

use breeze_core::secure::PublicKey;
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// One key of an account, for the operator's listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountKey {
    pub key: PublicKey,
    /// Unix seconds: when the key was first bound, and when it last logged in.
    pub added: i64,
    pub last_login: i64,
}

fn key_of(blob: Vec<u8>) -> Option<PublicKey> {
    Some(PublicKey(blob.try_into().ok()?))
}

impl Store {
    /// `key` logged in to `account` with the right password at `now` (Unix seconds): bind it
    /// if it is new, and make it the one handed out.
    pub fn bind_key(&mut self, account: &str, key: &PublicKey, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO account_keys (account, key, added, last_login) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (account, key) DO UPDATE SET last_login = excluded.last_login",
            params![account, &key.0[..], now],
        )?;
        Ok(())
    }

    /// The key peers are told `account` has: the one that logged in last.
    pub fn current_key(&self, account: &str) -> Result<Option<PublicKey>, StoreError> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT key FROM account_keys WHERE account = ?1
                 ORDER BY last_login DESC, added DESC LIMIT 1",
                [account],
                |row| row.get(0),
            )
            .optional()?;
        Ok(blob.and_then(key_of))
    }

    /// Every key bound to `account`, the one used last first.
    pub fn account_keys(&self, account: &str) -> Result<Vec<AccountKey>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT key, added, last_login FROM account_keys WHERE account = ?1
             ORDER BY last_login DESC, added DESC",
        )?;
        let rows = stmt.query_map([account], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get(1)?, row.get(2)?))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (blob, added, last_login) = row?;
            if let Some(key) = key_of(blob) {
                keys.push(AccountKey {
                    key,
                    added,
                    last_login,
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

    #[test]
    fn the_key_that_logged_in_last_is_the_one_handed_out() {
        let mut store = Store::open_in_memory_with(StoreOptions::fast_for_tests()).unwrap();
        store.add_user("alice", "pw").unwrap();
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
}
