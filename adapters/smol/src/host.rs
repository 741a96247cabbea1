//! What the server driver asks of the application embedding it: accounts and offline storage.

use breeze_core::secure::PublicKey;
use breeze_core::server::{OfflineChat, SavedGroups, StoreOutcome, StoredGroupMessage};
use breeze_core::wire::{
    GroupError, GroupId, GroupInfo, KeyLookup, LoginRefusal, OrderedGroupMessage, UserName,
};

/// Performs the server core's host actions (`Action::CheckLogin`, `CheckKeyLogin`, `StoreOffline`,
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
    /// what the server hands that user's peers, and it is enrolled for key logins. A key
    /// the owner revoked for this account is refused with `KeyRevoked`, password or not.
    /// The driver runs these on a pool of one thread per core, so at most that many hashes
    /// (and their memory) are under way at once.
    fn check_login(
        &self,
        user: &UserName,
        password: &str,
        register: bool,
        key: &PublicKey,
    ) -> Result<(), LoginRefusal>;

    /// A key login: `Ok` when `key` is bound to `user` (an earlier password login enrolled
    /// it) and not revoked, and then it is the key handed out for `user` again;
    /// `Err(KeyNotEnrolled)` for a key not bound to that account or no such account (told
    /// apart only in the host's log), `Err(KeyRevoked)` for a revoked one. A lookup, not a
    /// hash: the driver runs these beside password checks, never queued behind them. A host
    /// that keeps no keys refuses every key login, which sends clients back to passwords.
    fn check_key_login(&self, user: &UserName, key: &PublicKey) -> Result<(), LoginRefusal> {
        let _ = (user, key);
        Err(LoginRefusal::KeyNotEnrolled)
    }

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

    // ---- groups (`Action::SaveGroup` and the others); the group calls run one at a time, in
    // order, like the offline ones. A host without group storage keeps the defaults, which
    // refuse every group (`StorageFailed`): groups are never announced if they cannot be kept.

    /// Every saved group, and the highest group id ever saved, given to the core once at start.
    fn load_groups(&self) -> SavedGroups {
        SavedGroups::default()
    }

    /// Saves `info` after a change, and raises the highest group id saved to its id in the
    /// same transaction: the id is then never given to another group, even after the group is
    /// gone for good. No members ends the group: it takes no more messages, but what is stored
    /// for it stays for the recipients who have not acknowledged it, and the group's record
    /// (given back by `load_groups` with no members) goes with the last of it. Refuses with
    /// `GroupError::NoSuchUser` if one of `joined` has no account.
    fn save_group(&self, info: &GroupInfo, joined: &[UserName]) -> Result<(), GroupError> {
        let _ = (info, joined);
        Err(GroupError::StorageFailed)
    }

    /// Stores a group message for each recipient, with `next_order` and the sender's last
    /// (epoch, seq), in one transaction; false if it could not, or the group ended.
    fn store_group_message(&self, message: &StoredGroupMessage, next_order: u64) -> bool {
        let _ = (message, next_order);
        false
    }

    /// Deletes a stored group message for every recipient.
    fn delete_group_message(&self, group: GroupId, order: u64) {
        let _ = (group, order);
    }

    /// What is stored for `user` after the places in `after` (0 for a group not listed), in
    /// order per group, at most `limit`, each with `user`'s envelope only; and whether there
    /// is more.
    fn load_group_backlog(
        &self,
        user: &UserName,
        after: &[(GroupId, u64)],
        limit: usize,
    ) -> (Vec<OrderedGroupMessage>, bool) {
        let _ = (user, after, limit);
        (Vec::new(), false)
    }

    /// `user` has every message of `group` up to `through`: delete its copies.
    fn ack_group(&self, user: &UserName, group: GroupId, through: u64) {
        let _ = (user, group, through);
    }
}
