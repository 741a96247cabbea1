//! What the server driver asks of the application embedding it: accounts and offline storage.

use breeze_core::secure::PublicKey;
use breeze_core::server::{OfflineChat, StoreOutcome};
use breeze_core::wire::{KeyLookup, LoginRefusal, UserName};

/// Performs the server core's host actions (`Action::CheckLogin`, `StoreOffline`,
/// `LoadOffline`, `DeleteOffline`, `LoadKey`). What it stores is sealed end to end: the host
/// never sees a message's text.
///
/// Every method may block (password hashing, a database): the driver calls them on smol's
/// blocking thread pool, never on the task that owns the core. `check_login` calls run
/// concurrently with each other and with the rest; the offline calls run one at a time, in
/// the order the core asked for them, and the driver waits for each before going on, so the
/// store sees a message stored before it is loaded or deleted.
pub trait ServerHost: Send + Sync + 'static {
    /// Checks `user`'s password, or creates the account when `register` is set (the core
    /// has already refused registration if the server does not allow it). When the answer is
    /// yes, `key` (the static key the client proved it holds) is bound to the account: it is
    /// what the server hands that user's peers.
    fn check_login(
        &self,
        user: &UserName,
        password: &str,
        register: bool,
        key: &PublicKey,
    ) -> Result<(), LoginRefusal>;

    /// Keeps a message for the offline user `to` until it acknowledges it. Storing a message
    /// already stored (same sender, `chat.epoch`, `chat.seq`) must do nothing and succeed.
    /// The outcome goes to the core, which tells the sender "stored" only once it is, "lost"
    /// when it can never be, and nothing on a passing failure (the sender tries again).
    fn store_offline(&self, to: &UserName, message: &OfflineChat) -> StoreOutcome;

    /// Everything stored for `user`, as `(sender, message)`, oldest first.
    fn load_offline(&self, user: &UserName) -> Vec<OfflineChat>;

    /// The key `user` logged in with last (what others seal their offline messages to).
    fn load_key(&self, user: &UserName) -> KeyLookup;

    /// `to` acknowledged every message of `from`'s `epoch` up to `through`: forget them.
    fn delete_offline(&self, to: &UserName, from: &UserName, epoch: u64, through: u64);
}
