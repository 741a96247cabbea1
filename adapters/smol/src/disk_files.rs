//! [`DiskFiles`]: a [`FileHost`] for files in directories on disk.
//!
//! Sending reads the offered path. Receiving writes to a hidden temporary name in the chosen
//! directory (see `disk_names.rs`) and hashes the bytes as they are written, so the check at
//! the end costs no second pass over the file; the file gets its real name only once the hash
//! matched and its bytes are synced to the disk, never replacing an existing file, and a
//! mismatch is kept aside as `name.ID.corrupt`. A partial file outlives the process: a later
//! offer with the same sender, id, size and hash resumes from its length.

use crate::disk_names;
use crate::file_host::{FileHost, FileOffer};
use crate::write_behind::WriteBehind;
use breeze_core::client::Direction;
use breeze_core::transmit::FileSpan;
use breeze_core::wire::{TransferId, UserName};
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Writes smaller than this are gathered before they reach the file (a peer sending tiny
/// chunks costs no syscall per chunk); a chunk this big or bigger is written straight from
/// where it arrived, without a copy.
const WRITE_BUFFER: usize = 16 * 1024;
/// Bytes read per call when hashing what a resumed file already holds.
const HASH_BUFFER: usize = 256 * 1024;
/// Finished receptions remembered for [`DiskFiles::landed`].
const LANDED_KEPT: usize = 1024;

/// Where a received file ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// Verified, under its final name.
    Complete(PathBuf),
    /// The content hash did not match: kept aside under a `.corrupt` name.
    Corrupt(PathBuf),
}

/// Files offered and received, on disk. Share one between the client driver (as its
/// [`FileHost`]) and the application, which asks [`landed`](DiskFiles::landed) where a received
/// file went.
#[derive(Debug, Default)]
pub struct DiskFiles {
    sending: Mutex<HashMap<TransferId, Arc<Mutex<Source>>>>,
    receiving: Mutex<HashMap<Incoming, Arc<Mutex<Sink>>>>,
    landed: Mutex<VecDeque<(Incoming, Landed)>>,
}

/// A file being received: its sender and the sender's transfer id.
type Incoming = (UserName, TransferId);

#[derive(Debug)]
struct Source {
    path: PathBuf,
    size: u64,
    /// Shared with the spans of it still to be sent.
    file: Option<Arc<File>>,
    /// Where the file's cursor is, to skip a seek for sequential reads.
    position: u64,
}

impl Source {
    /// The file, opened on first use (and checked to be the size it was offered at).
    fn open(&mut self) -> io::Result<&Arc<File>> {
        if self.file.is_none() {
            let file = File::open(&self.path)?;
            if file.metadata()?.len() != self.size {
                return Err(io::Error::other("the file changed since it was offered"));
            }
            self.position = 0;
            self.file = Some(Arc::new(file));
        }
        self.file
            .as_ref()
            .ok_or_else(|| unknown("the file is not open"))
    }

    /// Bytes to read at `offset` for a read of up to `len`: fewer only at the end.
    fn want(&self, offset: u64, len: usize) -> usize {
        usize::try_from(self.size.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(len)
    }
}

#[derive(Debug)]
struct Sink {
    offer: FileOffer,
    dir: PathBuf,
    part: PathBuf,
    meta: PathBuf,
    out: BufWriter<File>,
    /// Where the next write goes without a seek.
    position: u64,
    /// The hash of the bytes `[0, hashed)`.
    hasher: blake3::Hasher,
    hashed: u64,
    /// A write did not continue the hashed bytes: hash the whole file again at the end.
    rehash: bool,
    /// Hands the written bytes to the disk as they arrive.
    behind: WriteBehind,
    /// Handing bytes to the disk failed: the final sync could miss the error, so it is kept.
    write_back_failed: Option<io::Error>,
}

impl DiskFiles {
    pub fn new() -> DiskFiles {
        DiskFiles::default()
    }

    /// Where `from`'s file `id` went, once it was verified (or found corrupt).
    pub fn landed(&self, from: &UserName, id: TransferId) -> Option<Landed> {
        lock(&self.landed)
            .iter()
            .rev()
            .find(|(key, _)| key.0 == *from && key.1 == id)
            .map(|(_, landed)| landed.clone())
    }

    fn source(&self, id: TransferId) -> io::Result<Arc<Mutex<Source>>> {
        lock(&self.sending)
            .get(&id)
            .cloned()
            .ok_or_else(|| unknown("no file is shared with this id"))
    }

    fn sink(&self, from: &UserName, id: TransferId) -> io::Result<Arc<Mutex<Sink>>> {
        lock(&self.receiving)
            .get(&(from.clone(), id))
            .cloned()
            .ok_or_else(|| unknown("this file is not being received"))
    }

    fn remember(&self, from: &UserName, id: TransferId, landed: Landed) {
        let mut kept = lock(&self.landed);
        if kept.len() >= LANDED_KEPT {
            kept.pop_front();
        }
        kept.push_back(((from.clone(), id), landed));
    }
}

impl FileHost for DiskFiles {
    fn share(&self, id: TransferId, path: &Path, size: u64) -> io::Result<()> {
        let mut sending = lock(&self.sending);
        if let Some(source) = sending.get(&id) {
            if lock(source).path == path {
                return Ok(());
            }
        }
        let source = Source {
            path: path.to_path_buf(),
            size,
            file: None,
            position: 0,
        };
        sending.insert(id, Arc::new(Mutex::new(source)));
        Ok(())
    }

    fn read(&self, id: TransferId, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let source = self.source(id)?;
        let mut source = lock(&source);
        let source = &mut *source;
        let file = source.open()?.clone();
        let mut file: &File = &file;
        if source.position != offset {
            file.seek(SeekFrom::Start(offset))?;
        }
        let want = source.want(offset, len);
        // `read_to_end` fills spare capacity without zeroing it first.
        let mut data = Vec::with_capacity(want);
        if let Err(error) = file.take(want as u64).read_to_end(&mut data) {
            source.position = u64::MAX;
            return Err(error);
        }
        let filled = data.len();
        source.position = offset + filled as u64;
        if filled < want {
            return Err(io::Error::other("the file shrank since it was offered"));
        }
        Ok(data)
    }

    /// The bytes as a span of the open file, on Linux, where the driver sends spans with
    /// `sendfile`. The span is read into the page cache here, on the lane's thread, so the
    /// driver's `sendfile` finds it there and does not hold up the owner's thread (and the
    /// chat on it) waiting for the disk: the kernel is asked to read the whole span ahead, and
    /// its last byte is read, which waits for that.
    #[cfg(target_os = "linux")]
    fn read_span(&self, id: TransferId, offset: u64, len: usize) -> io::Result<Option<FileSpan>> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::FileExt;
        let source = self.source(id)?;
        let mut source = lock(&source);
        let file = source.open()?.clone();
        let want = source.want(offset, len);
        let Some(last) = (want as u64)
            .checked_sub(1)
            .map(|n| offset.saturating_add(n))
        else {
            // Nothing left to read: the ordinary read says so.
            return Ok(None);
        };
        let (Ok(at), Ok(span_len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(want))
        else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        // SAFETY: advice on an open descriptor; it reads nothing into our memory.
        let advised = unsafe {
            libc::posix_fadvise(file.as_raw_fd(), at, span_len, libc::POSIX_FADV_WILLNEED)
        };
        if advised != 0 {
            tracing::debug!(%id, advised, "cannot ask for a file to be read ahead");
        }
        if file.read_at(&mut [0u8; 1], last)? == 0 {
            return Err(io::Error::other("the file shrank since it was offered"));
        }
        Ok(Some(FileSpan {
            file,
            offset,
            len: want,
        }))
    }

    fn receive(&self, offer: &FileOffer, dir: &Path) -> io::Result<u64> {
        let key = (offer.from.clone(), offer.id);
        if lock(&self.receiving).contains_key(&key) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this file is already being received",
            ));
        }
        fs::create_dir_all(dir)?;
        let part = disk_names::join(dir, &disk_names::part(&offer.name, offer.id))?;
        let meta = disk_names::join(dir, &disk_names::meta(&offer.name, offer.id))?;
        let description = describe(offer);
        let same_offer = fs::read_to_string(&meta).is_ok_and(|text| text == description);
        let held = match fs::symlink_metadata(&part) {
            Ok(m) if same_offer && m.is_file() && m.len() <= offer.size => m.len(),
            _ => 0,
        };
        let mut hasher = blake3::Hasher::new();
        let file = if held > 0 {
            let mut file = OpenOptions::new().read(true).write(true).open(&part)?;
            hash_prefix(&mut file, held, &mut hasher)?;
            file
        } else {
            // Leftovers of another offer (or links planted in a shared directory) go; both
            // files are then created new, so nothing is written through an existing link.
            for stale in [&meta, &part] {
                match fs::remove_file(stale) {
                    Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                    _ => {}
                }
            }
            let create = || OpenOptions::new().write(true).create_new(true).clone();
            create().open(&meta)?.write_all(description.as_bytes())?;
            create().open(&part)?
        };
        let sink = Sink {
            offer: offer.clone(),
            dir: dir.to_path_buf(),
            part,
            meta,
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            position: held,
            hasher,
            hashed: held,
            rehash: false,
            behind: WriteBehind::new(held),
            write_back_failed: None,
        };
        lock(&self.receiving).insert(key, Arc::new(Mutex::new(sink)));
        Ok(held)
    }

    fn write(&self, from: &UserName, id: TransferId, offset: u64, data: &[u8]) -> io::Result<()> {
        let sink = self.sink(from, id)?;
        let mut sink = lock(&sink);
        if offset != sink.position {
            sink.out.seek(SeekFrom::Start(offset))?;
        }
        if offset == sink.hashed && !sink.rehash {
            sink.hasher.update(data);
            sink.hashed += data.len() as u64;
        } else {
            sink.rehash = true;
        }
        sink.position = offset + data.len() as u64;
        sink.out.write_all(data)?;
        if sink.write_back_failed.is_none() && sink.behind.due(sink.position) {
            // Flushed only when a stretch is handed over: small chunks stay gathered.
            let sink = &mut *sink;
            let position = sink.position;
            let handed = sink
                .out
                .flush()
                .and_then(|()| sink.behind.written(sink.out.get_ref(), position));
            if let Err(error) = handed {
                tracing::warn!(%error, "cannot write a file being received back to the disk");
                sink.write_back_failed = Some(error);
            }
        }
        Ok(())
    }

    fn verify(&self, from: &UserName, id: TransferId) -> io::Result<bool> {
        let Some(sink) = lock(&self.receiving).remove(&(from.clone(), id)) else {
            return Err(unknown("this file is not being received"));
        };
        let mut sink = lock(&sink);
        sink.out.flush()?;
        let size = sink.out.get_ref().metadata()?.len();
        let hash = if !sink.rehash && sink.hashed == size {
            sink.hasher.finalize()
        } else {
            let mut hasher = blake3::Hasher::new();
            let mut file = File::open(&sink.part)?;
            hash_prefix(&mut file, size, &mut hasher)?;
            hasher.finalize()
        };
        let verified = size == sink.offer.size && *hash.as_bytes() == sink.offer.hash;
        let (name, dir) = (&sink.offer.name, &sink.dir);
        let landed = if verified {
            // On the disk before it gets its name: after a crash, the final name holds the
            // whole verified content or does not exist (the partial resumes instead).
            sink.out.get_ref().sync_all()?;
            if let Some(error) = &sink.write_back_failed {
                return Err(io::Error::new(error.kind(), error.to_string()));
            }
            let placed = disk_names::place(&sink.part, dir, disk_names::finals(name))?;
            sync_dir(dir);
            Landed::Complete(placed)
        } else {
            let names = disk_names::corrupt(name, id);
            Landed::Corrupt(disk_names::place(&sink.part, dir, names)?)
        };
        let _ = fs::remove_file(&sink.meta);
        tracing::info!(%from, %id, ?landed, "received file checked");
        self.remember(from, id, landed);
        Ok(verified)
    }

    fn release(&self, peer: &UserName, id: TransferId, direction: Direction) {
        match direction {
            Direction::Sending => {
                lock(&self.sending).remove(&id);
            }
            Direction::Receiving => {
                let sink = lock(&self.receiving).remove(&(peer.clone(), id));
                if let Some(sink) = sink {
                    // Keep the partial file (and its description) for a later resume.
                    if let Err(error) = lock(&sink).out.flush() {
                        tracing::warn!(%peer, %id, %error, "cannot write a partial file");
                    }
                }
            }
        }
    }
}

/// What identifies an offer on disk: only the same sender's same file resumes a partial.
fn describe(offer: &FileOffer) -> String {
    let hash: String = offer.hash.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "breeze partial file\nfrom {}\nid {}\nsize {}\nblake3 {hash}\n",
        offer.from, offer.id, offer.size
    )
}

/// Feeds the first `len` bytes of `file` to `hasher`, leaving the cursor at `len`.
fn hash_prefix(file: &mut File, len: u64, hasher: &mut blake3::Hasher) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut buffer = vec![0u8; HASH_BUFFER];
    let mut left = len;
    while left > 0 {
        let want = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        file.read_exact(&mut buffer[..want])?;
        hasher.update(&buffer[..want]);
        left -= want as u64;
    }
    Ok(())
}

/// Makes a new name in `dir` durable. Best effort: without it a crash may only lose the name,
/// and the synced content is still found under the temporary name and resumed from.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(error) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), %error, "cannot sync the directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn unknown(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, what.to_string())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use breeze_core::wire::FileName;

    fn offer(from: &str, content: &[u8]) -> FileOffer {
        FileOffer {
            from: UserName::new(from).unwrap(),
            id: TransferId(0x42),
            name: FileName::new("song.ogg").unwrap(),
            size: content.len() as u64,
            hash: *blake3::hash(content).as_bytes(),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// A span stands for the very bytes `read` gives, fewer only at the end; a file that
    /// shrank since it was offered is an error, not a short span.
    #[cfg(target_os = "linux")]
    #[test]
    fn spans_cover_what_reads_return_and_a_shrunk_file_is_refused() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offered.bin");
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
        fs::write(&path, &content).unwrap();
        let files = DiskFiles::new();
        let id = TransferId(7);
        files.share(id, &path, content.len() as u64).unwrap();
        for (offset, len) in [(0u64, 65_536usize), (65_536, 65_536), (99_990, 4096)] {
            let span = files.read_span(id, offset, len).unwrap().expect("a span");
            let read = files.read(id, offset, len).unwrap();
            assert_eq!((span.offset, span.len), (offset, read.len()));
            let file = span.file.downcast_ref::<File>().expect("a std::fs::File");
            let mut held = vec![0u8; span.len];
            file.read_exact_at(&mut held, span.offset).unwrap();
            assert!(held == read, "the span holds other bytes than the read");
        }
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(50_000)
            .unwrap();
        assert!(files.read_span(id, 40_000, 65_536).is_err());
    }

    #[test]
    fn a_partial_file_resumes_only_for_the_same_offer() {
        let dir = tempfile::tempdir().unwrap();
        let content = vec![7u8; 100_000];
        let alice = offer("alice", &content);
        let files = DiskFiles::new();
        assert_eq!(files.receive(&alice, dir.path()).unwrap(), 0);
        files
            .write(&alice.from, alice.id, 0, &content[..60_000])
            .unwrap();
        files.release(&alice.from, alice.id, Direction::Receiving);

        // A restarted receiver: a new store, the same directory.
        let files = DiskFiles::new();
        let mallory = offer("mallory", &content);
        assert_eq!(files.receive(&mallory, dir.path()).unwrap(), 0, "not hers");
        files.release(&mallory.from, mallory.id, Direction::Receiving);
        // Mallory's attempt replaced the partial file: alice's starts over too.
        let files = DiskFiles::new();
        assert_eq!(files.receive(&alice, dir.path()).unwrap(), 0);
        files
            .write(&alice.from, alice.id, 0, &content[..30_000])
            .unwrap();
        files.release(&alice.from, alice.id, Direction::Receiving);

        let files = DiskFiles::new();
        assert_eq!(files.receive(&alice, dir.path()).unwrap(), 30_000);
        files
            .write(&alice.from, alice.id, 30_000, &content[30_000..])
            .unwrap();
        assert!(files.verify(&alice.from, alice.id).unwrap());
        assert_eq!(names(dir.path()), ["song.ogg"]);
        assert_eq!(fs::read(dir.path().join("song.ogg")).unwrap(), content);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_under_the_temporary_name_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let content = b"hello".to_vec();
        let alice = offer("alice", &content);
        let part = disk_names::part(&alice.name, alice.id);
        let meta = disk_names::meta(&alice.name, alice.id);
        std::os::unix::fs::symlink(&victim, dir.path().join(part)).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(meta)).unwrap();
        let files = DiskFiles::new();
        assert_eq!(files.receive(&alice, dir.path()).unwrap(), 0);
        files.write(&alice.from, alice.id, 0, &content).unwrap();
        assert!(files.verify(&alice.from, alice.id).unwrap());
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(dir.path().join("song.ogg")).unwrap(), content);
    }

    #[test]
    fn a_mismatch_is_kept_aside_and_never_under_the_real_name() {
        let dir = tempfile::tempdir().unwrap();
        let content = vec![1u8; 1000];
        let alice = offer("alice", &content);
        let files = DiskFiles::new();
        files.receive(&alice, dir.path()).unwrap();
        files.write(&alice.from, alice.id, 0, &[2u8; 1000]).unwrap();
        assert!(!files.verify(&alice.from, alice.id).unwrap());
        let kept = dir.path().join("song.ogg.0000000000000042.corrupt");
        assert_eq!(names(dir.path()), ["song.ogg.0000000000000042.corrupt"]);
        assert_eq!(
            files.landed(&alice.from, alice.id),
            Some(Landed::Corrupt(kept))
        );
    }
}
