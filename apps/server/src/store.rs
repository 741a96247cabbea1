//! Persistent server state: accounts and offline messages, in one SQLite file.
//!
//! The store lives in `DIR/breeze.sqlite3`, opened in WAL mode so `breeze-server user …` can
//! change accounts while a server process is reading the same file. Every write that checks
//! before it changes (a duplicate name, the per-recipient bound) runs in one transaction, so a
//! second process cannot slip in between the check and the write.
//!
//! Where things are:
//! - `schema.rs`: the table definitions and the `user_version` migrations.
//! - `accounts.rs`: add, remove, list and verify accounts ([`Verdict`]).
//! - `password.rs`: argon2id hashing and the constant-work check for unknown users, usable
//!   without the store's lock ([`PasswordHashing`]); `password_memory.rs`: the argon2 memory,
//!   at most one block per core.
//! - `keys.rs`: the profile keys bound to each account ([`AccountKey`]), key logins and
//!   revocation.
//! - `offline.rs`: messages kept for a recipient until it acknowledges them.
//! - `groups.rs`: groups, their members, and group messages until every member has them.
//! - `error.rs`: [`StoreError`].

mod accounts;
mod error;
mod groups;
mod keys;
mod offline;
mod password;
mod password_memory;
mod schema;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub use accounts::Verdict;
pub use error::StoreError;
pub use keys::{AccountKey, Binding, KeyCheck, RevokeError};
pub use offline::{OfflineMessage, MAX_OFFLINE_PER_RECIPIENT};
pub use password::PasswordHashing;

use std::sync::Arc;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "breeze.sqlite3";

/// How long a write waits for another process (e.g. the CLI next to a running server) to
/// release the database before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How a [`Store`] is opened. `Default` is what production uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Hash passwords with the cheapest argon2id parameters instead of the default ones.
    ///
    /// Only for tests: hashing with the default parameters takes tens of milliseconds, which
    /// adds up over a test suite. Hashes made this way are weak; never use it for real accounts.
    pub argon2_fast_for_tests: bool,
    /// Most offline messages kept per recipient; see [`MAX_OFFLINE_PER_RECIPIENT`].
    pub offline_limit: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            argon2_fast_for_tests: false,
            offline_limit: MAX_OFFLINE_PER_RECIPIENT,
        }
    }
}

impl StoreOptions {
    /// Options for tests: cheap password hashing, the production offline bound.
    pub fn fast_for_tests() -> Self {
        StoreOptions {
            argon2_fast_for_tests: true,
            ..StoreOptions::default()
        }
    }

    /// The same options with another per-recipient offline bound (tests use a small one).
    pub fn with_offline_limit(self, offline_limit: usize) -> Self {
        StoreOptions {
            offline_limit,
            ..self
        }
    }
}

/// The server's persistent state: accounts and offline messages.
///
/// Reads take `&self`, writes `&mut self`. A `Store` is `Send` but not `Sync`: one thread (or
/// one task at a time) owns it.
pub struct Store {
    conn: Connection,
    passwords: Arc<PasswordHashing>,
    offline_limit: usize,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, with production options.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// Opens (creating if needed) the store in `dir`.
    ///
    /// Creates `dir` if it is missing (owner-only on Unix, since it holds password hashes),
    /// then brings the schema up to date.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let passwords = Arc::new(PasswordHashing::new(options.argon2_fast_for_tests)?);
        Store::setup(connect(dir)?, passwords, options.offline_limit)
    }

    /// A second connection to the database of this store, in `dir`, with its options and its
    /// password hashing (one bound on the hashes in flight, whichever connection asks).
    pub fn open_again(&self, dir: &Path) -> Result<Store, StoreError> {
        Store::setup(connect(dir)?, self.passwords.clone(), self.offline_limit)
    }

    /// A store that lives only as long as the value, with production options.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::open_in_memory_with(StoreOptions::default())
    }

    /// A store that lives only as long as the value.
    pub fn open_in_memory_with(options: StoreOptions) -> Result<Store, StoreError> {
        let passwords = Arc::new(PasswordHashing::new(options.argon2_fast_for_tests)?);
        Store::setup(
            Connection::open_in_memory()?,
            passwords,
            options.offline_limit,
        )
    }

    /// The password hashing this store uses, for checks made without holding the store
    /// (read the hash with [`password_hash`](Store::password_hash), check it with this).
    pub fn passwords(&self) -> Arc<PasswordHashing> {
        self.passwords.clone()
    }

    /// The schema version of the open database (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::version(&self.conn)
    }

    fn setup(
        mut conn: Connection,
        passwords: Arc<PasswordHashing>,
        offline_limit: usize,
    ) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn,
            passwords,
            offline_limit,
        })
    }
}

/// The database in `dir`, created if needed (`dir` owner-only on Unix, since it holds
/// password hashes), in WAL mode.
fn connect(dir: &Path) -> Result<Connection, StoreError> {
    create_private_dir(dir).map_err(|source| StoreError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let conn = Connection::open(dir.join(DATABASE_FILE))?;
    // WAL lets readers and one writer proceed together; NORMAL is durable in WAL mode
    // except for the last transactions before a power cut, which is fine for a messenger.
    // The pragma answers with the mode in force, so it is read rather than just set.
    let _mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(std::path::PathBuf);

    impl TempDir {
        pub(crate) fn new(label: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "breeze-store-test-{}-{label}-{n}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_new_directory_is_created_at_the_current_schema_version() {
        let tmp = TempDir::new("create");
        let dir = tmp.path().join("nested").join("data");
        let store = Store::open_with(&dir, StoreOptions::fast_for_tests()).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::supported_version());
        assert!(dir.join(DATABASE_FILE).is_file());
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn an_in_memory_store_is_at_the_current_schema_version() {
        let store = Store::open_in_memory_with(StoreOptions::fast_for_tests()).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::supported_version());
    }

    #[test]
    fn reopening_a_directory_keeps_accounts_and_offline_messages() {
        let tmp = TempDir::new("reopen");
        {
            let mut store = Store::open_with(tmp.path(), StoreOptions::fast_for_tests()).unwrap();
            store.add_user("alice", "wonderland").unwrap();
            store.add_user("bob", "builder").unwrap();
            store
                .store_offline(&offline::tests::message("bob", "alice", 7, 1, "hi bob"))
                .unwrap();
        }
        let store = Store::open_with(tmp.path(), StoreOptions::fast_for_tests()).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::supported_version());
        assert_eq!(store.list_users().unwrap(), ["alice", "bob"]);
        assert_eq!(store.verify("alice", "wonderland").unwrap(), Verdict::Ok);
        let kept = store.load_offline("bob").unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].sealed, b"hi bob");
    }

    #[test]
    fn a_path_that_is_a_file_is_refused_as_data_dir() {
        let tmp = TempDir::new("file");
        std::fs::create_dir_all(tmp.path()).unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open_with(&file, StoreOptions::fast_for_tests())
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::DataDir { .. }), "{err}");
    }
}
