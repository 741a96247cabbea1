//! The server's static key on disk: `server.key` in the data directory, 32 secret bytes,
//! readable by the owner alone (0600). Made on first start; the same key every start after,
//! so clients that pinned it keep trusting this server.

use breeze_core::secure::IdentityKey;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "server.key";

fn path(data: &Path) -> PathBuf {
    data.join(FILE_NAME)
}

/// The key in `data`, made (with 32 bytes from the OS) if there is none yet.
pub fn load_or_create(data: &Path) -> Result<IdentityKey, String> {
    let path = path(data);
    match fs::File::open(&path) {
        Ok(file) => read(file, &path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => create(data, &path),
        Err(error) => Err(format!("cannot open {}: {error}", path.display())),
    }
}

/// The key in `data`, which must exist.
pub fn load(data: &Path) -> Result<IdentityKey, String> {
    let path = path(data);
    let file = fs::File::open(&path).map_err(|e| {
        format!(
            "cannot open {} (has the server been started once?): {e}",
            path.display()
        )
    })?;
    read(file, &path)
}

fn read(mut file: fs::File, path: &Path) -> Result<IdentityKey, String> {
    let mode = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by others (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    let mut secret = [0u8; 32];
    let mut rest = Vec::new();
    file.read_exact(&mut secret)
        .and_then(|()| file.read_to_end(&mut rest))
        .map_err(|e| format!("cannot read the key in {}: {e}", path.display()))?;
    if !rest.is_empty() {
        return Err(format!(
            "{} is not a Breeze key (wrong size)",
            path.display()
        ));
    }
    Ok(IdentityKey::from_secret(secret))
}

fn create(data: &Path, path: &Path) -> Result<IdentityKey, String> {
    fs::create_dir_all(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let secret = breeze_smol::os_seed().map_err(|e| format!("no OS randomness: {e}"))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(&secret)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(IdentityKey::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("breeze-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let made = load_or_create(&dir).unwrap();
        let mode = fs::metadata(path(&dir)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&dir).unwrap().public(), made.public());
        assert_eq!(load(&dir).unwrap().public(), made.public());
        fs::set_permissions(path(&dir), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&dir).unwrap_err().contains("chmod 600"));
        let _ = fs::remove_dir_all(&dir);
    }
}
