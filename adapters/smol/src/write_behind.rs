//! Write-behind for a file being received: its bytes head for the disk while it arrives.
//!
//! A received file is synced before it gets its final name, so after a crash that name holds
//! the whole verified content or does not exist. Left to the end, that sync would write the
//! whole file back at once and the transfer would wait for it; a background `fdatasync` every
//! few MiB costs a journal commit each time and stalls writes to pages under write-back.
//! Instead, on Linux, each stretch of [`STRETCH`] bytes is handed to the disk as soon as it
//! is written (`sync_file_range` with `WRITE`: starts write-back, does not wait), and the
//! stretch before it is waited for, so at most two stretches are dirty or in flight and the
//! final sync has only the tail and the metadata left. Elsewhere the final sync does it all.

use std::fs::File;
use std::io;

/// Bytes handed to the disk at a time.
pub(crate) const STRETCH: u64 = 8 * 1024 * 1024;

/// Tracks how far a file's bytes have been handed to the disk.
#[derive(Debug)]
pub(crate) struct WriteBehind {
    /// Write-back started for `[0, started)`.
    started: u64,
    /// Write-back finished for `[0, waited)`.
    waited: u64,
}

impl WriteBehind {
    /// For a file whose first `held` bytes are already there (a resumed file: their fate is
    /// left to the final sync).
    pub fn new(held: u64) -> WriteBehind {
        WriteBehind {
            started: held,
            waited: held,
        }
    }

    /// Whether [`written`](WriteBehind::written) up to `end` has anything to do: the caller
    /// flushes its own buffer for it only then.
    pub fn due(&self, end: u64) -> bool {
        end < self.started || end - self.started >= STRETCH
    }

    /// The file is written (and flushed from any user-space buffer) up to `end`, sequentially.
    /// Starts write-back of the new stretch once it is whole, after waiting for the one before.
    pub fn written(&mut self, file: &File, end: u64) -> io::Result<()> {
        if end < self.started {
            // A rewind: the bytes are rewritten; the final sync covers them.
            self.started = end;
            self.waited = self.waited.min(end);
            return Ok(());
        }
        if !self.due(end) {
            return Ok(());
        }
        if self.started > self.waited {
            wait(file, self.waited, self.started)?;
            self.waited = self.started;
        }
        start(file, self.started, end)?;
        self.started = end;
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn start(file: &File, from: u64, to: u64) -> io::Result<()> {
    sync_range(file, from, to, libc::SYNC_FILE_RANGE_WRITE)
}

#[cfg(target_os = "linux")]
fn wait(file: &File, from: u64, to: u64) -> io::Result<()> {
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    sync_range(file, from, to, flags)
}

#[cfg(target_os = "linux")]
fn sync_range(file: &File, from: u64, to: u64, flags: libc::c_uint) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return Ok(());
    };
    // SAFETY: `sync_file_range` reads no memory of ours; the descriptor is open while `file`
    // is borrowed.
    let result = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn start(_: &File, _: u64, _: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn wait(_: &File, _: u64, _: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn stretches_are_handed_over_whole_and_rewinds_go_back() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut file = File::create(dir.path().join("f")).expect("a file");
        let mut behind = WriteBehind::new(0);
        let block = vec![7u8; 1024 * 1024];
        for _ in 0..2 * STRETCH / block.len() as u64 + 1 {
            file.write_all(&block).expect("written");
            let end = file.metadata().expect("metadata").len();
            behind.written(&file, end).expect("handed over");
        }
        assert_eq!(behind.started, 2 * STRETCH);
        assert_eq!(behind.waited, STRETCH);
        behind.written(&file, 1024).expect("a rewind");
        assert_eq!((behind.started, behind.waited), (1024, 1024));
    }
}
