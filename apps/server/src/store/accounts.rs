//! Accounts: a name and the argon2id hash of its password. Clear passwords are never stored.

use breeze_core::wire::UserName;
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// The outcome of checking a login.
///
/// `UnknownUser` and `WrongPassword` are told apart for the server's log; a server should give
/// a client the same answer for both, or it hands out the list of account names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    UnknownUser,
    WrongPassword,
}

impl Verdict {
    /// Checks `password` against `stored` (the account's hash, `None` without an account);
    /// as long either way.
    pub fn of(
        passwords: &super::PasswordHashing,
        stored: Option<&str>,
        password: &str,
    ) -> Result<Verdict, StoreError> {
        let matched = passwords.matches(stored, password)?;
        Ok(match (stored, matched) {
            (None, _) => Verdict::UnknownUser,
            (Some(_), true) => Verdict::Ok,
            (Some(_), false) => Verdict::WrongPassword,
        })
    }
}

impl Store {
    /// Creates an account. Fails with `BadName`, `EmptyPassword` or `UserExists`.
    pub fn add_user(&mut self, name: &str, password: &str) -> Result<(), StoreError> {
        let name = valid_name(name)?;
        // Hashing is the slow part; it runs before the write so the database is never locked
        // for its duration (a server process may share the file).
        let hash = self.passwords.hash_new(password)?;
        self.add_user_hashed(name.as_str(), &hash)
    }

    /// Creates an account whose password hash (from [`PasswordHashing::hash`]) was made
    /// beforehand, without holding the store. Fails with `BadName` or `UserExists`.
    ///
    /// [`PasswordHashing::hash`]: super::PasswordHashing::hash
    pub fn add_user_hashed(&mut self, name: &str, hash: &str) -> Result<(), StoreError> {
        let name = valid_name(name)?;
        // One statement, so the existence check and the insert are atomic.
        let inserted = self.conn.execute(
            "INSERT INTO users (name, password_hash) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name.as_str(), hash],
        )?;
        if inserted == 0 {
            return Err(StoreError::UserExists(name.into()));
        }
        Ok(())
    }

    /// The stored password hash of `name`, `None` without such an account: the cheap half
    /// of a check, for callers that hash without holding the store.
    pub fn password_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT password_hash FROM users WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Deletes an account and every offline and group message waiting for it (a group message
    /// nobody else is owed goes, and an ended group nobody is owed anything of). `false` if
    /// there was none.
    pub fn remove_user(&mut self, name: &str) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM offline WHERE recipient = ?1", [name])?;
        tx.execute("DELETE FROM group_inbox WHERE member = ?1", [name])?;
        let removed = tx.execute("DELETE FROM users WHERE name = ?1", [name])?;
        tx.execute(
            "DELETE FROM group_messages WHERE NOT EXISTS (SELECT 1 FROM group_inbox i
             WHERE i.group_id = group_messages.group_id AND i.ord = group_messages.ord)",
            [],
        )?;
        tx.execute(
            "DELETE FROM groups
             WHERE NOT EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = groups.id)
             AND NOT EXISTS (SELECT 1 FROM group_inbox i WHERE i.group_id = groups.id)",
            [],
        )?;
        tx.commit()?;
        Ok(removed > 0)
    }

    /// All account names, sorted by byte order.
    pub fn list_users(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT name FROM users ORDER BY name")?;
        let names = stmt.query_map([], |row| row.get(0))?;
        Ok(names.collect::<Result<_, _>>()?)
    }

    /// Checks a login. Takes about as long for an unknown name as for a wrong password; see
    /// the `password` module.
    pub fn verify(&self, name: &str, password: &str) -> Result<Verdict, StoreError> {
        let stored = self.password_hash(name)?;
        Verdict::of(&self.passwords, stored.as_deref(), password)
    }

    /// Whether an account with this name exists.
    pub fn user_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

/// Account names follow the wire rule, so every stored name can be sent and logged as is.
pub(super) fn valid_name(name: &str) -> Result<UserName, StoreError> {
    UserName::new(name).map_err(|reason| StoreError::BadName {
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::super::offline::tests::message;
    use super::super::StoreOptions;
    use super::*;

    fn store() -> Store {
        Store::open_in_memory_with(StoreOptions::fast_for_tests()).unwrap()
    }

    #[test]
    fn alice_logs_in_with_her_password_and_not_with_another() {
        let mut store = store();
        store.add_user("alice", "wonderland").unwrap();
        assert_eq!(store.verify("alice", "wonderland").unwrap(), Verdict::Ok);
        assert_eq!(
            store.verify("alice", "Wonderland").unwrap(),
            Verdict::WrongPassword
        );
        assert_eq!(store.verify("alice", "").unwrap(), Verdict::WrongPassword);
    }

    #[test]
    fn a_name_without_account_is_unknown_whatever_the_password() {
        let mut store = store();
        store.add_user("alice", "wonderland").unwrap();
        assert_eq!(
            store.verify("mallory", "wonderland").unwrap(),
            Verdict::UnknownUser
        );
        assert_eq!(store.verify("", "").unwrap(), Verdict::UnknownUser);
        assert_eq!(
            store.verify("not a name!", "x").unwrap(),
            Verdict::UnknownUser
        );
    }

    #[test]
    fn the_password_is_stored_only_as_an_argon2id_hash() {
        let mut store = store();
        store.add_user("alice", "wonderland").unwrap();
        let stored: String = store
            .conn
            .query_row("SELECT password_hash FROM users", [], |row| row.get(0))
            .unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("wonderland"));
    }

    #[test]
    fn adding_an_existing_name_fails_and_keeps_the_first_password() {
        let mut store = store();
        store.add_user("alice", "first").unwrap();
        let err = store.add_user("alice", "second").unwrap_err();
        assert!(
            matches!(&err, StoreError::UserExists(name) if name == "alice"),
            "{err}"
        );
        assert_eq!(store.verify("alice", "first").unwrap(), Verdict::Ok);
        assert_eq!(
            store.verify("alice", "second").unwrap(),
            Verdict::WrongPassword
        );
    }

    #[test]
    fn names_are_case_sensitive_like_on_the_wire() {
        let mut store = store();
        store.add_user("alice", "a").unwrap();
        store.add_user("Alice", "b").unwrap();
        assert_eq!(store.list_users().unwrap(), ["Alice", "alice"]);
    }

    #[test]
    fn bad_names_and_empty_passwords_are_refused() {
        let mut store = store();
        for name in ["", "has space", "ünï", &"x".repeat(33), "semi;colon"] {
            let err = store.add_user(name, "pw").unwrap_err();
            assert!(matches!(err, StoreError::BadName { .. }), "{name:?}: {err}");
        }
        assert!(store.add_user(&"x".repeat(32), "pw").is_ok());
        assert!(matches!(
            store.add_user("bob", "").unwrap_err(),
            StoreError::EmptyPassword
        ));
        assert_eq!(store.list_users().unwrap(), ["x".repeat(32)]);
    }

    #[test]
    fn users_are_listed_sorted() {
        let mut store = store();
        assert!(store.list_users().unwrap().is_empty());
        for name in ["mallory", "alice", "bob", "_x", "Zed"] {
            store.add_user(name, "pw").unwrap();
        }
        assert_eq!(
            store.list_users().unwrap(),
            ["Zed", "_x", "alice", "bob", "mallory"]
        );
    }

    #[test]
    fn removing_bob_deletes_his_account_and_the_messages_waiting_for_him() {
        let mut store = store();
        store.add_user("alice", "pw").unwrap();
        store.add_user("bob", "pw").unwrap();
        store
            .store_offline(&message("bob", "alice", 1, 1, "to bob"))
            .unwrap();
        store
            .store_offline(&message("alice", "bob", 1, 1, "from bob"))
            .unwrap();

        assert!(store.remove_user("bob").unwrap());
        assert!(!store.user_exists("bob").unwrap());
        assert_eq!(store.verify("bob", "pw").unwrap(), Verdict::UnknownUser);
        assert_eq!(store.count_offline("bob").unwrap(), 0);
        let left: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM offline WHERE recipient = 'bob'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        // What bob sent before his account went away is still delivered to alice.
        assert_eq!(store.load_offline("alice").unwrap()[0].sealed, b"from bob");

        assert!(
            !store.remove_user("bob").unwrap(),
            "second removal finds nothing"
        );
        store.add_user("bob", "new").unwrap();
        assert_eq!(
            store.count_offline("bob").unwrap(),
            0,
            "a new bob starts empty"
        );
    }
}
