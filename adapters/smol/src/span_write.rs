//! Writes a file span (a sent chunk's data, see [`FileSpan`]) from the file to a socket.
//!
//! On Linux with `sendfile`: the kernel moves the file's cached pages to the socket, so a sent
//! file's bytes are neither read into the process nor copied into the socket by it — about a
//! third of a sending client's work during a transfer. [`DiskFiles`](crate::DiskFiles) makes
//! spans only there, and brings them into the page cache on its lane's thread when it makes
//! them, so the writer here does not wait for the disk.
//!
//! The frame header promising the span's bytes has gone out already: if the file no longer
//! has them (it shrank since it was offered), the stream can only be broken off, which the
//! caller does on the error. The transfer then goes on over another path, or fails on its next
//! read, which finds the file changed.

use breeze_core::transmit::FileSpan;
use smol::net::TcpStream;
use std::fs::File;
use std::io;

/// Holds back partial segments on `stream` while `corked` (`TCP_CORK`): a frame's header and
/// the span after it then leave as full segments, not as a tiny packet each (the sockets
/// run with `TCP_NODELAY`, which pushes every write at once). Uncorking sends what is held.
pub(crate) fn cork(stream: &TcpStream, corked: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let value = libc::c_int::from(corked);
        // SAFETY: `value` outlives the call, which only reads `size_of::<c_int>()` bytes of it.
        let result = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_CORK,
                std::ptr::addr_of!(value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "cannot set TCP_CORK");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (stream, corked);
}

/// Writes every byte of `span` to `stream`.
pub(crate) async fn write_span(stream: &TcpStream, span: &FileSpan) -> io::Result<()> {
    let Some(file) = span.file.downcast_ref::<File>() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a file span whose handle is not a std::fs::File",
        ));
    };
    send_file(stream, file, span.offset, span.len).await
}

#[cfg(target_os = "linux")]
async fn send_file(stream: &TcpStream, file: &File, offset: u64, len: usize) -> io::Result<()> {
    use smol::Async;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;

    let socket: Arc<Async<std::net::TcpStream>> = stream.clone().into();
    let mut at = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut left = len;
    while left > 0 {
        let sent = socket
            .write_with(|socket| {
                // SAFETY: both descriptors are open for the call (`socket` and `file` are
                // borrowed), and `at` is a valid `off_t` the kernel advances.
                let sent =
                    unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut at, left) };
                if sent < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(sent as usize)
                }
            })
            .await?;
        if sent == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being sent",
            ));
        }
        left = left.saturating_sub(sent);
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
async fn send_file(_: &TcpStream, _: &File, _: u64, _: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "file spans are written with sendfile, on Linux only",
    ))
}

#[cfg(all(test, target_os = "linux"))]
pub(crate) mod tests {
    use super::*;
    use futures_lite::AsyncReadExt;
    use smol::net::TcpListener;
    use std::io::Write;
    use std::sync::Arc;

    /// A temporary file holding `content`, shared as spans are.
    pub(crate) fn file_holding(content: &[u8]) -> Arc<File> {
        let mut temp = tempfile::tempfile().unwrap();
        temp.write_all(content).unwrap();
        Arc::new(temp)
    }

    pub(crate) fn span_of(file: &Arc<File>, offset: u64, len: usize) -> FileSpan {
        FileSpan {
            file: file.clone(),
            offset,
            len,
        }
    }

    /// Spans bigger than the socket takes at once arrive whole, in order, from their offsets.
    #[test]
    fn spans_arrive_as_the_file_holds_them() {
        smol::block_on(async {
            let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            let file = file_holding(&content);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let reading = smol::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                stream.read_to_end(&mut got).await.unwrap();
                got
            });
            let stream = TcpStream::connect(addr).await.unwrap();
            let spans = [(1_000_000, 2_000_000), (0, 1_000_000), (2_999_990, 10)];
            for (offset, len) in spans {
                write_span(&stream, &span_of(&file, offset, len))
                    .await
                    .unwrap();
            }
            drop(stream);
            let got = reading.await;
            let expected: Vec<u8> = spans
                .iter()
                .flat_map(|&(offset, len)| &content[offset as usize..offset as usize + len])
                .copied()
                .collect();
            assert!(got == expected, "{} bytes arrived", got.len());
        });
    }

    #[test]
    fn a_span_past_the_end_of_the_file_is_an_error() {
        smol::block_on(async {
            let file = file_holding(&[7; 100]);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let _accepting = smol::spawn(async move { listener.accept().await });
            let stream = TcpStream::connect(addr).await.unwrap();
            let error = write_span(&stream, &span_of(&file, 50, 100))
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
            let foreign = FileSpan {
                file: Arc::new(()),
                offset: 0,
                len: 1,
            };
            let error = write_span(&stream, &foreign).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        });
    }
}
