//! The client's profile: one directory per (server, user), readable by its owner alone, with
//! what makes this client *this* user's: its static key, the server key it pinned, and the
//! keys of the peers it has met (so a change is noticed).
//!
//! ```text
//! PROFILE/identity.key   32 secret bytes, 0600: the key this profile proves on every handshake
//! PROFILE/server.pub     the pinned server key, 64 hex digits
//! PROFILE/peers          one line per peer met: NAME HEX-KEY
//! PROFILE/enrolled       the account this key is enrolled for: it logs in without password
//! ```
//!
//! The default place is `$XDG_DATA_HOME/breeze/profiles/USER@SERVER` (`~/.local/share/…`
//! without XDG); `--profile DIR` picks another.

use breeze_core::secure::{IdentityKey, PublicKey};
use breeze_core::wire::UserName;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file saying the profile's key is enrolled: the account's name, one line.
const ENROLLED: &str = "enrolled";

/// An open profile directory.
#[derive(Debug, Clone)]
pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    /// Where the profile of `user` on `server` lives unless `--profile` says otherwise.
    pub fn default_dir(server: &str, user: &UserName) -> Result<PathBuf, String> {
        let data = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
                Some(home) => PathBuf::from(home).join(".local").join("share"),
                None => {
                    return Err("neither XDG_DATA_HOME nor HOME is set: give --profile DIR".into())
                }
            },
        };
        let server: String = server
            .chars()
            .map(|c| if c == '/' { '_' } else { c })
            .collect();
        Ok(data
            .join("breeze")
            .join("profiles")
            .join(format!("{user}@{server}")))
    }

    /// Opens (creating, mode 0700) the profile in `dir`; refuses one others may read.
    pub fn open(dir: &Path) -> Result<Profile, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create the profile {}: {e}", dir.display()))?;
        let mode = fs::metadata(dir)
            .map_err(|e| format!("cannot read the profile {}: {e}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "the profile {} is open to others (mode {:o}): run `chmod 700 {}`",
                dir.display(),
                mode & 0o777,
                dir.display()
            ));
        }
        Ok(Profile {
            dir: dir.to_path_buf(),
        })
    }

    /// This profile's key, made on first use.
    pub fn identity(&self) -> Result<IdentityKey, String> {
        breeze_smol::key_file::load_or_create(&self.dir.join("identity.key"))
    }

    /// The server key pinned at first contact, if any.
    pub fn server_key(&self) -> Result<Option<PublicKey>, String> {
        let path = self.dir.join("server.pub");
        match fs::read_to_string(&path) {
            Ok(text) => PublicKey::from_hex(&text)
                .map(Some)
                .ok_or_else(|| format!("{} does not hold a key", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Pins `key` as this profile's server key (replacing any earlier pin: only on first
    /// contact, or when the user trusts a new key on purpose).
    pub fn pin_server(&self, key: &PublicKey) -> Result<(), String> {
        self.write_private("server.pub", &format!("{}\n", key.to_hex()))
    }

    /// The keys of the peers met before.
    pub fn peer_keys(&self) -> Result<Vec<(UserName, PublicKey)>, String> {
        let path = self.dir.join("peers");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut keys = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let parsed = line.split_once(' ').and_then(|(name, key)| {
                Some((UserName::new(name).ok()?, PublicKey::from_hex(key)?))
            });
            match parsed {
                Some(entry) => keys.push(entry),
                None => return Err(format!("{}: cannot read the line {line:?}", path.display())),
            }
        }
        Ok(keys)
    }

    /// Remembers `key` as `user`'s, replacing what was remembered for them.
    pub fn remember_peer(&self, user: &UserName, key: &PublicKey) -> Result<(), String> {
        let mut keys = self.peer_keys()?;
        keys.retain(|(name, _)| name != user);
        keys.push((user.clone(), *key));
        let text: String = keys
            .iter()
            .map(|(name, key)| format!("{name} {}\n", key.to_hex()))
            .collect();
        self.write_private("peers", &text)
    }

    /// Whether this profile's key is enrolled for `user`: a password login of `user` bound
    /// it on the server, so it logs in with the key alone. Not a secret, just a memory: a
    /// server that forgot the key says so, and the password enrols it again.
    pub fn is_enrolled(&self, user: &UserName) -> bool {
        fs::read_to_string(self.dir.join(ENROLLED))
            .is_ok_and(|text| text.lines().any(|line| line.trim() == user.as_str()))
    }

    /// Remembers that the key is enrolled for `user` (see `is_enrolled`).
    pub fn mark_enrolled(&self, user: &UserName) -> Result<(), String> {
        if self.is_enrolled(user) {
            return Ok(());
        }
        self.write_private(ENROLLED, &format!("{user}\n"))
    }

    /// Replaces the file `name` with `text` at once (written aside, then renamed), 0600.
    fn write_private(&self, name: &str, text: &str) -> Result<(), String> {
        let path = self.dir.join(name);
        let aside = self.dir.join(format!(".{name}.new"));
        let write = || -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&aside)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&aside, &path)
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("breeze-profile-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_profile_keeps_its_key_pins_and_peers_privately() {
        let dir = scratch("keeps");
        let profile = Profile::open(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let key = profile.identity().unwrap();
        assert_eq!(
            Profile::open(&dir).unwrap().identity().unwrap().public(),
            key.public()
        );
        assert_eq!(profile.server_key().unwrap(), None);
        let server = PublicKey([7; 32]);
        profile.pin_server(&server).unwrap();
        assert_eq!(profile.server_key().unwrap(), Some(server));
        let bob = UserName::new("bob").unwrap();
        profile.remember_peer(&bob, &PublicKey([1; 32])).unwrap();
        profile.remember_peer(&bob, &PublicKey([2; 32])).unwrap();
        assert_eq!(
            profile.peer_keys().unwrap(),
            vec![(bob, PublicKey([2; 32]))]
        );
        for file in ["identity.key", "server.pub", "peers"] {
            let mode = fs::metadata(dir.join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_profile_remembers_which_account_its_key_is_enrolled_for() {
        let dir = scratch("enrolled");
        let profile = Profile::open(&dir).unwrap();
        let (alice, bob) = (
            UserName::new("alice").unwrap(),
            UserName::new("bob").unwrap(),
        );
        assert!(!profile.is_enrolled(&alice));
        profile.mark_enrolled(&alice).unwrap();
        assert!(Profile::open(&dir).unwrap().is_enrolled(&alice));
        assert!(
            !profile.is_enrolled(&bob),
            "another account is not enrolled"
        );
        let mode = fs::metadata(dir.join(ENROLLED))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_profile_others_can_read_is_refused() {
        let dir = scratch("open");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Profile::open(&dir).unwrap_err().contains("chmod 700"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_default_place_is_per_user_and_server_under_the_data_directory() {
        let alice = UserName::new("alice").unwrap();
        let dir = Profile::default_dir("10.0.0.1:7300", &alice).unwrap();
        assert!(
            dir.ends_with("breeze/profiles/alice@10.0.0.1:7300"),
            "{dir:?}"
        );
    }
}
