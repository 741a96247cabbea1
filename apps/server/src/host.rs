//! The server's [`ServerHost`]: logins and offline messages backed by the SQLite [`Store`].

use crate::{
    Binding, KeyCheck, OfflineMessage, PasswordHashing, Store, StoreError, StoreOptions, Verdict,
};
use breeze_core::secure::PublicKey;
use breeze_core::server::{OfflineChat, SavedGroups, StoreOutcome, StoredGroupMessage};
use breeze_core::wire::{
    GroupError, GroupId, GroupInfo, KeyLookup, LoginRefusal, MessageId, OrderedGroupMessage,
    SealedChat, Undeliverable, UserName,
};
use breeze_smol::ServerHost;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Accounts and offline messages for a running server.
///
/// Logins and offline messages use two connections to the same database, so a login never
/// holds up storing or loading messages. A password check holds the logins store only to
/// read the hash and to write the outcome: the hash itself runs outside it, on
/// [`PasswordHashing`], which lets one check per core run at once and bounds their memory.
/// A key login is one indexed update under the lock.
pub struct StoreHost {
    logins: Arc<Mutex<Store>>,
    offline: Arc<Mutex<Store>>,
    passwords: Arc<PasswordHashing>,
}

impl StoreHost {
    /// Opens the store in `dir` twice (see above).
    pub fn open(dir: &Path, options: StoreOptions) -> Result<StoreHost, StoreError> {
        let logins = Store::open_with(dir, options)?;
        let offline = logins.open_again(dir)?;
        Ok(StoreHost {
            passwords: logins.passwords(),
            logins: Arc::new(Mutex::new(logins)),
            offline: Arc::new(Mutex::new(offline)),
        })
    }

    /// One store for everything (e.g. an in-memory store in tests).
    pub fn from_store(store: Store) -> StoreHost {
        let passwords = store.passwords();
        let store = Arc::new(Mutex::new(store));
        StoreHost {
            logins: store.clone(),
            offline: store,
            passwords,
        }
    }
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding the lock leaves SQLite consistent (transactions roll back).
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ServerHost for StoreHost {
    fn check_login(
        &self,
        user: &UserName,
        password: &str,
        register: bool,
        key: &PublicKey,
    ) -> Result<(), LoginRefusal> {
        check_password(&self.logins, &self.passwords, user, password, register)?;
        let bound = lock(&self.logins).bind_key(user.as_str(), key, unix_now());
        match bound {
            Ok(Binding::Bound) => {
                tracing::info!(%user, key = %key.fingerprint(), "key enrolled by password");
                Ok(())
            }
            Ok(Binding::Revoked) => {
                tracing::info!(%user, key = %key.fingerprint(), "revoked key refused");
                Err(LoginRefusal::KeyRevoked)
            }
            Err(error) => {
                tracing::error!(%user, %error, "cannot bind the login's key");
                Err(LoginRefusal::ServerBusy)
            }
        }
    }

    fn check_key_login(&self, user: &UserName, key: &PublicKey) -> Result<(), LoginRefusal> {
        let checked = lock(&self.logins).key_login(user.as_str(), key, unix_now());
        match checked {
            Ok(KeyCheck::Enrolled) => Ok(()),
            Ok(KeyCheck::NotEnrolled) => {
                tracing::info!(%user, key = %key.fingerprint(), "key login with a key not enrolled");
                Err(LoginRefusal::KeyNotEnrolled)
            }
            Ok(KeyCheck::Revoked) => {
                tracing::info!(%user, key = %key.fingerprint(), "revoked key refused");
                Err(LoginRefusal::KeyRevoked)
            }
            Err(error) => {
                tracing::error!(%user, %error, "cannot check a key login");
                Err(LoginRefusal::ServerBusy)
            }
        }
    }

    fn store_offline(&self, to: &UserName, message: &OfflineChat) -> StoreOutcome {
        let (from, chat) = (&message.from, &message.chat);
        let message = OfflineMessage {
            recipient: to.as_str().to_owned(),
            sender: from.as_str().to_owned(),
            sender_key: message.key.0,
            epoch: chat.epoch,
            seq: chat.seq,
            first_unacked: chat.first_unacked,
            message_id: chat.id.0,
            sealed: chat.sealed.clone(),
        };
        match lock(&self.offline).store_offline(&message) {
            Ok(()) => StoreOutcome::Stored,
            Err(StoreError::UnknownUser(_)) => {
                StoreOutcome::Undeliverable(Undeliverable::NoSuchUser)
            }
            Err(StoreError::RecipientFull(_)) => {
                StoreOutcome::Undeliverable(Undeliverable::RecipientFull)
            }
            Err(error) => {
                // Not the message's fault: the sender hears nothing and offers it again.
                tracing::error!(%to, %from, %error, "cannot store an offline message");
                StoreOutcome::Failed
            }
        }
    }

    fn load_offline(&self, user: &UserName) -> Vec<OfflineChat> {
        let stored = match lock(&self.offline).load_offline(user.as_str()) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(%user, %error, "cannot load offline messages");
                return Vec::new();
            }
        };
        stored
            .into_iter()
            .filter_map(|message| {
                let sender = match UserName::new(message.sender.as_str()) {
                    Ok(sender) => sender,
                    Err(error) => {
                        tracing::warn!(sender = %message.sender, %error, "skipping a stored message");
                        return None;
                    }
                };
                let chat = SealedChat {
                    id: MessageId(message.message_id),
                    epoch: message.epoch,
                    seq: message.seq,
                    first_unacked: message.first_unacked,
                    sealed: message.sealed,
                };
                Some(OfflineChat {
                    from: sender,
                    key: PublicKey(message.sender_key),
                    chat,
                })
            })
            .collect()
    }

    fn load_key(&self, user: &UserName) -> KeyLookup {
        let store = lock(&self.logins);
        let name = user.as_str();
        match (store.current_key(name), store.user_exists(name)) {
            (Ok(Some(key)), _) => KeyLookup::Key(key),
            (Ok(None), Ok(true)) => KeyLookup::NotYet,
            (Ok(None), Ok(false)) => KeyLookup::NoSuchUser,
            (Err(error), _) | (_, Err(error)) => {
                // Not the user's fault: the sender asks again at its next login.
                tracing::error!(%user, %error, "cannot look up a key");
                KeyLookup::NotYet
            }
        }
    }

    fn delete_offline(&self, to: &UserName, from: &UserName, epoch: u64, through: u64) {
        let deleted =
            lock(&self.offline).delete_offline(to.as_str(), from.as_str(), epoch, through);
        if let Err(error) = deleted {
            tracing::error!(%to, %from, %error, "cannot delete acknowledged offline messages");
        }
    }

    fn load_groups(&self) -> SavedGroups {
        lock(&self.offline).load_groups().unwrap_or_else(|error| {
            tracing::error!(%error, "cannot load the groups");
            SavedGroups::default()
        })
    }

    fn save_group(&self, info: &GroupInfo, joined: &[UserName]) -> Result<(), GroupError> {
        match lock(&self.offline).save_group(info, joined) {
            Ok(()) => Ok(()),
            Err(StoreError::UnknownUser(user)) => match UserName::new(user) {
                Ok(user) => Err(GroupError::NoSuchUser(user)),
                Err(_) => Err(GroupError::StorageFailed),
            },
            Err(error) => {
                tracing::error!(group = %info.id, %error, "cannot save a group");
                Err(GroupError::StorageFailed)
            }
        }
    }

    fn store_group_message(&self, message: &StoredGroupMessage, next_order: u64) -> bool {
        match lock(&self.offline).store_group_message(message, next_order) {
            Ok(true) => true,
            Ok(false) => {
                tracing::debug!(group = %message.group, "a message for a group that ended");
                false
            }
            Err(error) => {
                tracing::error!(group = %message.group, %error, "cannot store a group message");
                false
            }
        }
    }

    fn delete_group_message(&self, group: GroupId, order: u64) {
        if let Err(error) = lock(&self.offline).delete_group_message(group, order) {
            tracing::error!(%group, %error, "cannot delete a group message");
        }
    }

    fn load_group_backlog(
        &self,
        user: &UserName,
        after: &[(GroupId, u64)],
        limit: usize,
    ) -> (Vec<OrderedGroupMessage>, bool) {
        lock(&self.offline)
            .load_group_backlog(user, after, limit)
            .unwrap_or_else(|error| {
                tracing::error!(%user, %error, "cannot load group messages");
                (Vec::new(), false)
            })
    }

    fn ack_group(&self, user: &UserName, group: GroupId, through: u64) {
        if let Err(error) = lock(&self.offline).ack_group(user, group, through) {
            tracing::error!(%user, %group, %error, "cannot delete acknowledged group messages");
        }
    }
}

/// The password part of a login: creates the account first when `register`. The store is
/// locked only to read the hash and to insert an account, never while hashing.
fn check_password(
    logins: &Mutex<Store>,
    passwords: &PasswordHashing,
    user: &UserName,
    password: &str,
    register: bool,
) -> Result<(), LoginRefusal> {
    let name = user.as_str();
    if register {
        let hash = passwords.hash_new(password).map_err(|error| match error {
            StoreError::EmptyPassword => LoginRefusal::BadCredentials,
            error => {
                tracing::error!(%user, %error, "cannot hash a password");
                LoginRefusal::ServerBusy
            }
        })?;
        match lock(logins).add_user_hashed(name, &hash) {
            Ok(()) => {
                tracing::info!(%user, "account registered");
                return Ok(());
            }
            // Registering an existing account with its own password is just a login.
            Err(StoreError::UserExists(_)) => {}
            Err(error) => {
                tracing::error!(%user, %error, "cannot register");
                return Err(LoginRefusal::ServerBusy);
            }
        }
    }
    let stored = lock(logins).password_hash(name);
    let verdict = stored.and_then(|stored| Verdict::of(passwords, stored.as_deref(), password));
    match verdict {
        Ok(Verdict::Ok) => Ok(()),
        Ok(Verdict::WrongPassword) if register => Err(LoginRefusal::NameTaken),
        Ok(verdict) => {
            // Told apart here for the operator; the client gets the same answer for both.
            tracing::info!(%user, ?verdict, "bad credentials");
            Err(LoginRefusal::BadCredentials)
        }
        Err(error) => {
            tracing::error!(%user, %error, "cannot check a login");
            Err(LoginRefusal::ServerBusy)
        }
    }
}

/// Now, in Unix seconds, for when a key was bound, last used or revoked.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> UserName {
        UserName::new(n).unwrap()
    }

    fn host() -> StoreHost {
        let mut store = Store::open_in_memory_with(StoreOptions::fast_for_tests()).unwrap();
        store.add_user("alice", "wonderland").unwrap();
        store.add_user("bob", "builder").unwrap();
        StoreHost::from_store(store)
    }

    /// A message from alice as the store sees it: opaque bytes under alice's key.
    fn from_alice(seq: u64, sealed: &str) -> OfflineChat {
        OfflineChat {
            from: name("alice"),
            key: PublicKey([1; 32]),
            chat: SealedChat {
                id: MessageId(seq + 10),
                epoch: 7,
                seq,
                first_unacked: 1,
                sealed: sealed.as_bytes().to_vec(),
            },
        }
    }

    const KEY: PublicKey = PublicKey([5; 32]);

    #[test]
    fn a_login_binds_its_key_only_when_the_password_is_right() {
        let host = host();
        let other = PublicKey([6; 32]);
        assert!(host
            .check_login(&name("alice"), "nope", false, &other)
            .is_err());
        assert_eq!(lock(&host.logins).current_key("alice").unwrap(), None);
        assert_eq!(
            host.check_login(&name("alice"), "wonderland", false, &KEY),
            Ok(())
        );
        assert_eq!(lock(&host.logins).current_key("alice").unwrap(), Some(KEY));
    }

    #[test]
    fn an_enrolled_key_logs_in_alone_until_it_is_revoked() {
        let host = host();
        let stranger = PublicKey([6; 32]);
        let alice = name("alice");
        assert_eq!(
            host.check_key_login(&alice, &KEY),
            Err(LoginRefusal::KeyNotEnrolled)
        );
        assert_eq!(host.check_login(&alice, "wonderland", false, &KEY), Ok(()));
        assert_eq!(host.check_key_login(&alice, &KEY), Ok(()));
        assert_eq!(
            host.check_key_login(&alice, &stranger),
            Err(LoginRefusal::KeyNotEnrolled)
        );
        assert_eq!(
            host.check_key_login(&name("carol"), &KEY),
            Err(LoginRefusal::KeyNotEnrolled)
        );
        let revoked = lock(&host.logins).revoke_key("alice", &KEY.fingerprint(), 1);
        assert_eq!(revoked.unwrap(), Ok(KEY));
        assert_eq!(
            host.check_key_login(&alice, &KEY),
            Err(LoginRefusal::KeyRevoked)
        );
        assert_eq!(
            host.check_login(&alice, "wonderland", false, &KEY),
            Err(LoginRefusal::KeyRevoked),
            "the right password does not bring a revoked key back"
        );
        assert_eq!(host.load_key(&alice), KeyLookup::NotYet);
    }

    #[test]
    fn password_checks_run_side_by_side_without_holding_the_store() {
        let host = Arc::new(host());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let host = host.clone();
                std::thread::spawn(move || {
                    let key = PublicKey([i; 32]);
                    host.check_login(&name("bob"), "builder", false, &key)
                })
            })
            .collect();
        // Meanwhile the store answers at once.
        assert!(lock(&host.logins).user_exists("alice").unwrap());
        for thread in threads {
            assert_eq!(thread.join().unwrap(), Ok(()));
        }
        assert_eq!(lock(&host.logins).account_keys("bob").unwrap().len(), 4);
    }

    #[test]
    fn logins_are_checked_against_the_accounts() {
        let host = host();
        assert_eq!(
            host.check_login(&name("alice"), "wonderland", false, &KEY),
            Ok(())
        );
        let wrong = host.check_login(&name("alice"), "nope", false, &KEY);
        assert_eq!(wrong, Err(LoginRefusal::BadCredentials));
        let unknown = host.check_login(&name("carol"), "x", false, &KEY);
        assert_eq!(unknown, Err(LoginRefusal::BadCredentials));
    }

    #[test]
    fn registration_creates_an_account_once() {
        let host = host();
        assert_eq!(host.check_login(&name("carol"), "pw", true, &KEY), Ok(()));
        assert_eq!(host.check_login(&name("carol"), "pw", false, &KEY), Ok(()));
        assert_eq!(host.check_login(&name("carol"), "pw", true, &KEY), Ok(()));
        let taken = host.check_login(&name("alice"), "guess", true, &KEY);
        assert_eq!(taken, Err(LoginRefusal::NameTaken));
    }

    #[test]
    fn offline_messages_round_trip_and_an_ack_deletes_them() {
        let host = host();
        let (alice, bob) = (name("alice"), name("bob"));
        assert_eq!(
            host.store_offline(&bob, &from_alice(1, "one")),
            StoreOutcome::Stored
        );
        assert_eq!(
            host.store_offline(&bob, &from_alice(2, "two")),
            StoreOutcome::Stored
        );
        assert_eq!(
            host.load_offline(&bob),
            vec![from_alice(1, "one"), from_alice(2, "two")]
        );
        host.delete_offline(&bob, &alice, 7, 1);
        assert_eq!(host.load_offline(&bob), vec![from_alice(2, "two")]);
    }

    #[test]
    fn a_message_for_a_name_without_account_is_undeliverable() {
        let host = host();
        let lost = host.store_offline(&name("nobody"), &from_alice(1, "x"));
        assert_eq!(lost, StoreOutcome::Undeliverable(Undeliverable::NoSuchUser));
    }
}
