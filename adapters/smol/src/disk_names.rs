//! The names [`DiskFiles`](crate::DiskFiles) gives a received file in the directory the user
//! chose: a hidden temporary name while it arrives, its own name (or `name (1).ext`, …) once
//! verified, `name.ID.corrupt` when the content hash did not match.
//!
//! The core has already refused names with separators, `..`, control characters and reserved
//! device names; [`join`] still checks that what it joins is one plain path component, so no
//! name can ever reach outside the directory.

use breeze_core::wire::{FileName, TransferId};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The longest file name most file systems accept, in bytes.
const MAX_NAME: usize = 255;
/// How many `name (n).ext` variants are tried before giving up.
const MAX_VARIANTS: u32 = 9_999;

/// `.<name>.<id>.breeze-part`: where the bytes go while they arrive.
pub(crate) fn part(name: &FileName, id: TransferId) -> String {
    let suffix = format!(".{id}.breeze-part");
    format!(
        ".{}{suffix}",
        shorten(name.as_str(), MAX_NAME - 1 - suffix.len())
    )
}

/// `.<name>.<id>.breeze-meta`: whose partial file it is (sender, id, size, hash), so only the
/// same offer resumes from it.
pub(crate) fn meta(name: &FileName, id: TransferId) -> String {
    let suffix = format!(".{id}.breeze-meta");
    format!(
        ".{}{suffix}",
        shorten(name.as_str(), MAX_NAME - 1 - suffix.len())
    )
}

/// `<name>.<id>.corrupt`, then `<name>.<id> (1).corrupt`, …: a file whose hash did not match,
/// kept for a look but never under its real name.
pub(crate) fn corrupt(name: &FileName, id: TransferId) -> impl Iterator<Item = String> {
    let suffix = format!(".{id}");
    let base = format!(
        "{}{suffix}.corrupt",
        shorten(name.as_str(), MAX_NAME - suffix.len() - ".corrupt".len())
    );
    variants(base)
}

/// `name`, then `name (1)`, `name (2)`, … before the extension: the first that does not exist
/// yet is the received file's name.
pub(crate) fn finals(name: &FileName) -> impl Iterator<Item = String> {
    variants(name.as_str().to_string())
}

fn variants(name: String) -> impl Iterator<Item = String> {
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => (name[..dot].to_string(), name[dot..].to_string()),
        _ => (name.clone(), String::new()),
    };
    std::iter::once(name).chain((1..=MAX_VARIANTS).map(move |n| {
        let tag = format!(" ({n})");
        let room = MAX_NAME.saturating_sub(tag.len() + extension.len());
        format!("{}{tag}{extension}", shorten(&stem, room))
    }))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn shorten(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `dir/name`, refusing anything but one plain component (no root, no `..`, no separator).
pub(crate) fn join(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(part)), None) if part == name => Ok(dir.join(part)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        )),
    }
}

/// Moves `from` to the first of `names` in `dir` that does not exist, never replacing a file:
/// a hard link fails if the name is taken, so a file that appears meanwhile is safe too.
pub(crate) fn place(
    from: &Path,
    dir: &Path,
    names: impl Iterator<Item = String>,
) -> io::Result<PathBuf> {
    for name in names {
        let to = join(dir, &name)?;
        match fs::hard_link(from, &to) {
            Ok(()) => {
                fs::remove_file(from)?;
                return Ok(to);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            // A file system without hard links: check, then rename (a small race remains).
            Err(_) if to.symlink_metadata().is_err() => {
                fs::rename(from, &to)?;
                return Ok(to);
            }
            Err(_) => continue,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "every variant of the file name is taken",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> FileName {
        FileName::new(n).unwrap()
    }

    #[test]
    fn temporary_and_corrupt_names_carry_the_transfer_id() {
        let id = TransferId(0xab);
        assert_eq!(
            part(&name("report.pdf"), id),
            ".report.pdf.00000000000000ab.breeze-part"
        );
        assert_eq!(
            meta(&name("report.pdf"), id),
            ".report.pdf.00000000000000ab.breeze-meta"
        );
        let corrupt: Vec<String> = corrupt(&name("report.pdf"), id).take(2).collect();
        assert_eq!(
            corrupt,
            [
                "report.pdf.00000000000000ab.corrupt",
                "report.pdf.00000000000000ab (1).corrupt"
            ]
        );
    }

    #[test]
    fn a_taken_name_gets_a_number_before_its_extension() {
        let names: Vec<String> = finals(&name("photo.jpg")).take(3).collect();
        assert_eq!(names, ["photo.jpg", "photo (1).jpg", "photo (2).jpg"]);
        let names: Vec<String> = finals(&name(".bashrc")).take(2).collect();
        assert_eq!(names, [".bashrc", ".bashrc (1)"]);
        let names: Vec<String> = finals(&name("notes")).take(2).collect();
        assert_eq!(names, ["notes", "notes (1)"]);
    }

    #[test]
    fn long_names_are_shortened_on_a_character_boundary_to_fit() {
        let long = "é".repeat(127); // 254 bytes
        let id = TransferId(1);
        for generated in [part(&name(&long), id), meta(&name(&long), id)]
            .into_iter()
            .chain(corrupt(&name(&long), id).take(3))
            .chain(finals(&name(&long)).take(3))
        {
            assert!(generated.len() <= MAX_NAME, "{generated} is too long");
        }
    }

    #[test]
    fn join_accepts_only_one_plain_component() {
        let dir = Path::new("/downloads");
        assert_eq!(
            join(dir, "a.txt").unwrap(),
            PathBuf::from("/downloads/a.txt")
        );
        for bad in ["/etc/passwd", "../x", "a/b", "..", ".", "", "./a"] {
            assert!(join(dir, bad).is_err(), "{bad:?} was joined");
        }
    }
}
