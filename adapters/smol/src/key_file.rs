//! A static key on disk: 32 secret bytes in a file only its owner may read (0600). The
//! server keeps one in its data directory, each client profile one of its own. Made the first
//! time and the same ever after: peers and clients that pinned the key keep trusting it.

use breeze_core::secure::IdentityKey;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The key in the file `path`, made (with 32 bytes from the OS) if there is none yet; the
/// error is a message for the user.
pub fn load_or_create(path: &Path) -> Result<IdentityKey, String> {
    match fs::File::open(path) {
        Ok(file) => read(file, path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => create(path),
        Err(error) => Err(format!("cannot open {}: {error}", path.display())),
    }
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

fn create(path: &Path) -> Result<IdentityKey, String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let secret = crate::os_seed().map_err(|e| format!("no OS randomness: {e}"))?;
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
        let path = dir.join("nested").join("test.key");
        let made = load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&path).unwrap().public(), made.public());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&path).unwrap_err().contains("chmod 600"));
        fs::write(&path, [1; 31]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_create(&path).is_err(), "a short file is not a key");
        let _ = fs::remove_dir_all(&dir);
    }
}
