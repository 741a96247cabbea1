//! One TCP socket as two tasks: a reader that forwards bytes to the owner task, and a writer
//! that drains the bytes the owner queued.
//!
//! The owner never awaits a socket: it appends bytes to the socket's outgoing buffer and rings
//! the writer's doorbell, and it learns what happened from [`SocketEvent`]s on its inbound
//! channel. Exactly one [`SocketEvent::Closed`] is reported per socket, always by the reader,
//! whether the peer closed, a read or write failed, or the owner asked for the close. Dropping
//! a [`Socket`] cancels both tasks and closes the file descriptor.
//!
//! The outgoing buffer has no bound of its own: the cores count every byte they hand out until
//! the driver reports it [`Written`](SocketEvent::Written), and disconnect a connection whose
//! unwritten bytes pass their per-connection bound. So the buffer never holds more than that
//! bound, and an idle socket holds no buffer at all.

use crate::doorbell::{doorbell, Bell, Rung};
use crate::read_pool::{ReadPool, Received};
use crate::span_write::{cork, write_span};
use async_channel::Sender;
use async_io::Async;
use breeze_core::transmit::Payload;
use breeze_core::wire::Bytes;
use futures_lite::AsyncWriteExt;
use smol::net::TcpStream;
use smol::Task;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read};
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// First size of a reader's buffer: small, because most connections are idle most of the time.
const READ_BUFFER_MIN: usize = 1024;
/// A reader whose reads keep filling its buffer doubles it, up to this size (and this is the
/// most one [`SocketEvent::Bytes`] carries).
///
/// 128 KiB: a file transfer's 32 KiB chunk frames then straddle two reads half as often as
/// with 64 KiB (the decoder copies a straddling frame together) and the owner hears of half as
/// many reads: about 7 % of a receiving client's CPU. Bigger, a 32 KiB chunk would be copied
/// anyway rather than pin a read buffer more than four times its size.
const READ_BUFFER_MAX: usize = 128 * 1024;
/// A read at least this big hands its buffer itself to the owner (no copy), who gives it back
/// through [`Socket::recycle`] to the driver's [`ReadPool`] for a later read: file transfers
/// and bursts move every byte once less. Smaller reads are copied out at their size.
const HAND_OVER_MIN: usize = 16 * 1024;
/// After a graceful close, how long the far side gets to close its end before the socket is
/// torn down regardless.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// How long a graceful close may take in all, last words and linger included. A peer that
/// stopped reading (the core drops it as a slow consumer) would otherwise hold the writer in
/// `write` forever, and with it the file descriptor the core no longer counts.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// What a socket reports to its owner, tagged with the owner's key for it.
#[derive(Debug)]
pub(crate) enum SocketEvent<K> {
    Bytes(K, Received),
    /// This many bytes handed to [`Socket::write`] reached the kernel.
    Written(K, usize),
    /// The socket is finished; its key will not be reported again.
    Closed(K),
}

/// Buffers the writer takes per `writev`: far under the kernel's `IOV_MAX` (1024).
const WRITE_SLICES: usize = 64;
/// Bytes handed to [`Socket::write`] smaller than this, behind others not yet written, are
/// gathered into one buffer (up to about this much); bigger ones (a file chunk, a burst), and
/// any that come alone, are queued as they are and written without a copy.
const APPEND_MAX: usize = 16 * 1024;

/// What the owner has handed the writer and the writer has not taken yet.
#[derive(Default)]
struct Outgoing {
    /// Oldest first; `gathering` comes after them.
    queued: VecDeque<Payload>,
    /// Small writes, appended.
    gathering: Vec<u8>,
    /// Write what is queued, then shut the socket down.
    closing: bool,
}

impl Outgoing {
    /// Queues what was gathered, behind everything queued before it.
    fn seal(&mut self) {
        if !self.gathering.is_empty() {
            let gathered = std::mem::take(&mut self.gathering);
            self.queued.push_back(Payload::Bytes(Bytes::from(gathered)));
        }
    }

    /// Everything to write, in order.
    fn take(&mut self) -> VecDeque<Payload> {
        self.seal();
        std::mem::take(&mut self.queued)
    }
}

/// The owner's handle on one socket.
pub(crate) struct Socket {
    stream: TcpStream,
    outgoing: Arc<Mutex<Outgoing>>,
    /// Rung after every change to `outgoing`; one pending ring is enough to wake the writer.
    doorbell: Bell,
    /// Where read buffers handed over with [`SocketEvent::Bytes`] go back for reuse.
    pool: ReadPool,
    /// The owner asked for the close; what the socket still reports is not news to the core.
    pub closing: bool,
    _reader: Task<()>,
    _writer: Task<()>,
    /// Armed by [`close`](Socket::close): tears the socket down at [`CLOSE_DEADLINE`].
    close_deadline: Option<Task<()>>,
}

impl Socket {
    /// Starts the reader and writer tasks; their reports go to `events`.
    pub fn spawn<K, E>(key: K, stream: TcpStream, events: Sender<E>, pool: &ReadPool) -> Socket
    where
        K: Clone + Send + std::fmt::Debug + 'static,
        E: From<SocketEvent<K>> + Send + 'static,
    {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(?key, %error, "cannot set TCP_NODELAY");
        }
        let outgoing = Arc::new(Mutex::new(Outgoing::default()));
        let (doorbell, rung) = doorbell();
        let reader = smol::spawn(read_loop(
            key.clone(),
            stream.clone(),
            events.clone(),
            pool.clone(),
        ));
        let writer = smol::spawn(write_loop(
            key,
            stream.clone(),
            outgoing.clone(),
            rung,
            events,
        ));
        Socket {
            stream,
            outgoing,
            doorbell,
            pool: pool.clone(),
            closing: false,
            _reader: reader,
            _writer: writer,
            close_deadline: None,
        }
    }

    /// Queues bytes (or a span of a file) for the writer; they are written in the order
    /// queued.
    pub fn write(&mut self, payload: Payload) {
        if self.closing {
            // The core polls a connection's last bytes before its close; nothing comes after.
            return;
        }
        {
            let mut outgoing = lock(&self.outgoing);
            let idle = outgoing.queued.is_empty() && outgoing.gathering.is_empty();
            match payload {
                Payload::Bytes(bytes)
                    if bytes.len() < APPEND_MAX
                        && !idle
                        && outgoing.gathering.len() < APPEND_MAX =>
                {
                    // Behind others: gathered, so a burst of small ones is one buffer.
                    outgoing.gathering.extend_from_slice(&bytes);
                }
                payload => {
                    // Alone (the usual case for chat), big, a file span, or after a full
                    // gathering: as it is.
                    outgoing.seal();
                    outgoing.queued.push_back(payload);
                }
            }
        }
        self.ring();
    }

    /// Gives back the buffer of a [`SocketEvent::Bytes`] once handled, so the reader can read
    /// into it again instead of allocating.
    pub fn recycle(&self, received: Received) {
        if received.buffer.len() >= HAND_OVER_MIN {
            self.pool.give(received.buffer);
        }
    }

    /// Closes gracefully: after everything queued is written. Later writes are dropped.
    pub fn close(&mut self) {
        self.closing = true;
        lock(&self.outgoing).closing = true;
        self.ring();
        if self.close_deadline.is_none() {
            let stream = self.stream.clone();
            self.close_deadline = Some(smol::spawn(async move {
                async_io::Timer::after(CLOSE_DEADLINE).await;
                let _ = stream.shutdown(Shutdown::Both);
            }));
        }
    }

    /// Tears the socket down now; the reader then reports the close.
    pub fn abort(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn ring(&self) {
        if !self.doorbell.ring() {
            // The writer is gone (a write failed): the reader reports the close.
            self.abort();
        }
    }
}

/// Locks `outgoing`; a panic elsewhere while holding it cannot leave it half-updated.
fn lock(outgoing: &Mutex<Outgoing>) -> MutexGuard<'_, Outgoing> {
    outgoing
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads until the socket closes, reporting what each read brought.
///
/// Each read is tried at once and readiness awaited only when there was nothing to read (as
/// `AsyncRead` does): at load, bytes are usually waiting, and waiting for readiness first
/// would cost the poller a re-arm per read. A small read goes into a buffer on the stack and
/// is copied out at its size, so waiting holds no buffer: an idle socket (most of them) costs
/// no read buffer at all. A read that fills its buffer says more is probably waiting: the next
/// one is twice as big (up to [`READ_BUFFER_MAX`]), into a pooled buffer once it is big enough
/// to be handed over whole.
async fn read_loop<K, E>(key: K, stream: TcpStream, events: Sender<E>, pool: ReadPool)
where
    K: Clone + std::fmt::Debug,
    E: From<SocketEvent<K>>,
{
    let source: Arc<Async<std::net::TcpStream>> = stream.into();
    let mut next_len = READ_BUFFER_MIN;
    loop {
        let mut socket: &std::net::TcpStream = source.get_ref();
        let read = if next_len <= READ_BUFFER_MIN {
            let mut small = [0u8; READ_BUFFER_MIN];
            socket.read(&mut small).map(|n| Received {
                buffer: small.get(..n).unwrap_or_default().to_vec(),
                len: n,
            })
        } else {
            // A given-back buffer has its full length already: at most its tail needs zeroing.
            let mut buffer = if next_len >= HAND_OVER_MIN {
                pool.take()
            } else {
                Vec::new()
            };
            buffer.resize(next_len, 0);
            match socket.read(&mut buffer) {
                Ok(len) => Ok(Received { buffer, len }),
                Err(error) => {
                    if buffer.len() >= HAND_OVER_MIN {
                        pool.give(buffer);
                    }
                    Err(error)
                }
            }
        };
        match read {
            Ok(Received { len: 0, .. }) => break,
            Ok(received) => {
                let (n, size) = (received.len, next_len);
                next_len = if n == size && n < READ_BUFFER_MAX {
                    // More was probably waiting: read bigger next time.
                    2 * n
                } else if n < READ_BUFFER_MIN {
                    // The burst is over (or never began).
                    READ_BUFFER_MIN
                } else {
                    size
                };
                if events
                    .send(SocketEvent::Bytes(key.clone(), received).into())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if let Err(error) = source.readable().await {
                    tracing::debug!(?key, %error, "read failed");
                    break;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::debug!(?key, %error, "read failed");
                break;
            }
        }
    }
    let _ = events.send(SocketEvent::Closed(key).into()).await;
}

async fn write_loop<K, E>(
    key: K,
    mut stream: TcpStream,
    outgoing: Arc<Mutex<Outgoing>>,
    rung: Rung,
    events: Sender<E>,
) where
    K: Clone + std::fmt::Debug,
    E: From<SocketEvent<K>>,
{
    loop {
        // The owner dropping its handle is a close too.
        let owner_gone = !rung.wait().await;
        let closing = loop {
            let (mut batch, closing) = {
                let mut outgoing = lock(&outgoing);
                (outgoing.take(), outgoing.closing)
            };
            if batch.is_empty() {
                break closing || owner_gone;
            }
            // Boxed: the writing future is several times the size of the waiting one, and
            // every idle socket's task would otherwise carry it while it waits.
            let written = Box::pin(write_all(&mut stream, batch.make_contiguous())).await;
            if let Err(error) = written {
                tracing::debug!(?key, %error, "write failed");
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            let len = batch.iter().map(Payload::len).sum();
            let written = SocketEvent::Written(key.clone(), len);
            if events.send(written.into()).await.is_err() {
                return;
            }
        };
        if closing {
            break;
        }
    }
    // Closing (or the owner dropped its handle): send our FIN, give the far side a moment to
    // read and close its end (closing with unread input would reset the connection and could
    // destroy the last words), then tear down so the reader finishes.
    let _ = stream.flush().await;
    let _ = stream.shutdown(Shutdown::Write);
    async_io::Timer::after(CLOSE_LINGER).await;
    let _ = stream.shutdown(Shutdown::Both);
}

/// Writes every byte of `payloads`, in order: bytes a few `writev`s for the lot, each file
/// span from its file.
async fn write_all(stream: &mut TcpStream, payloads: &[Payload]) -> io::Result<()> {
    if !payloads.iter().any(|p| matches!(p, Payload::File(_))) {
        // Chat and relayed chunks: bytes only.
        return write_all_bytes(stream, payloads).await;
    }
    cork(stream, true);
    let written = write_all_with_spans(stream, payloads).await;
    cork(stream, false);
    written
}

async fn write_all_with_spans(stream: &mut TcpStream, payloads: &[Payload]) -> io::Result<()> {
    let mut rest = payloads;
    loop {
        let in_memory = rest
            .iter()
            .take_while(|p| matches!(p, Payload::Bytes(_)))
            .count();
        let (bytes, after) = rest.split_at(in_memory);
        write_all_bytes(stream, bytes).await?;
        // `after` is empty or starts with a span.
        let Some((first, after)) = after.split_first() else {
            return Ok(());
        };
        if let Payload::File(span) = first {
            write_span(stream, span).await?;
        }
        rest = after;
    }
}

/// Writes every byte of `payloads`, in order, a few `writev`s for the lot; they are all bytes
/// (a span among them would be skipped).
async fn write_all_bytes(stream: &mut TcpStream, payloads: &[Payload]) -> io::Result<()> {
    for group in payloads.chunks(WRITE_SLICES) {
        let mut slices: Vec<IoSlice<'_>> = group
            .iter()
            .filter_map(Payload::as_bytes)
            .filter(|b| !b.is_empty())
            .map(|b| IoSlice::new(b))
            .collect();
        let mut left = &mut slices[..];
        while !left.is_empty() {
            let n = stream.write_vectored(left).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut left, n);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_channel::Receiver;
    use futures_lite::AsyncReadExt;
    use smol::net::TcpListener;

    /// A socket on one end of a fresh loopback connection: the other end, the socket, and
    /// what the socket reports.
    async fn loopback_socket() -> (TcpStream, Socket, Receiver<SocketEvent<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (far, accepted) = futures_lite::future::zip(TcpStream::connect(addr), async {
            listener.accept().await.map(|(stream, _)| stream)
        })
        .await;
        let (events, reports) = async_channel::unbounded::<SocketEvent<u8>>();
        let socket = Socket::spawn(1u8, accepted.unwrap(), events, &ReadPool::default());
        (far.unwrap(), socket, reports)
    }

    /// The far end reads exactly `expected`, and the socket reports all of it written.
    async fn arrives_whole(
        far: &mut TcpStream,
        reports: &Receiver<SocketEvent<u8>>,
        expected: &[u8],
    ) {
        let mut received = vec![0u8; expected.len()];
        far.read_exact(&mut received).await.unwrap();
        assert!(received == expected, "bytes lost, added or reordered");
        let mut written = 0;
        while written < expected.len() {
            if let Ok(SocketEvent::Written(1, n)) = reports.recv().await {
                written += n;
            }
        }
        assert_eq!(written, expected.len());
    }

    /// Small writes are appended, big ones queued as they are and written with `writev`, many
    /// at a time and across partial writes: the far side still reads every byte in order, and
    /// the owner hears that all of them were written.
    #[test]
    fn mixed_writes_arrive_whole_and_in_order() {
        smol::block_on(async {
            let (mut far, mut socket, reports) = loopback_socket().await;
            let mut expected = Vec::new();
            for i in 0..3 * WRITE_SLICES {
                let len = if i % 3 == 0 {
                    100 * 1024 + i
                } else {
                    1 + i % 5000
                };
                let bytes: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
                expected.extend_from_slice(&bytes);
                socket.write(bytes.into());
            }
            arrives_whole(&mut far, &reports, &expected).await;
        });
    }

    /// File spans between bytes go out from the file, each where it was queued (a frame's
    /// header before its chunk), and count as written like bytes.
    #[cfg(target_os = "linux")]
    #[test]
    fn file_spans_between_bytes_arrive_in_order() {
        use crate::span_write::tests::{file_holding, span_of};
        smol::block_on(async {
            let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
            let file = file_holding(&content);
            let (mut far, mut socket, reports) = loopback_socket().await;
            let mut expected = Vec::new();
            for i in 0..200usize {
                let header: Vec<u8> = vec![i as u8; 1 + i % 20];
                expected.extend_from_slice(&header);
                socket.write(header.into());
                let (offset, len) = ((i * 4999) % 900_000, 1 + (i * 7919) % 40_000);
                expected.extend_from_slice(&content[offset..offset + len]);
                socket.write(Payload::File(span_of(&file, offset as u64, len)));
            }
            arrives_whole(&mut far, &reports, &expected).await;
        });
    }

    /// A peer that stops reading leaves the writer blocked in `write`; a close must still end
    /// the socket (the reader reports it) once the close deadline passes.
    #[test]
    fn a_close_ends_the_socket_even_when_the_peer_never_reads() {
        smol::block_on(async {
            let (_stalled_peer, mut socket, reports) = loopback_socket().await;
            // Far more than the kernel buffers of both ends hold: the writer blocks.
            for _ in 0..256 {
                socket.write(vec![7u8; 256 * 1024].into());
            }
            async_io::Timer::after(Duration::from_millis(200)).await;
            socket.close();
            let closed = async {
                while let Ok(report) = reports.recv().await {
                    if let SocketEvent::Closed(1) = report {
                        return true;
                    }
                }
                false
            };
            let deadline = async {
                async_io::Timer::after(CLOSE_DEADLINE + Duration::from_secs(3)).await;
                false
            };
            assert!(
                futures_lite::future::or(closed, deadline).await,
                "the socket was still open after the close deadline"
            );
        });
    }
}

#[cfg(test)]
mod task_size {
    use super::*;

    /// Every socket's two tasks live as long as the socket, mostly waiting: what they carry
    /// while waiting is memory per idle connection. The writing itself is boxed for that.
    #[test]
    fn an_idle_sockets_tasks_stay_small() {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let stream = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (events, _reports) = async_channel::unbounded::<SocketEvent<u8>>();
            let (_doorbell, rung) = doorbell();
            let outgoing = Arc::new(Mutex::new(Outgoing::default()));
            let read = read_loop(1u8, stream.clone(), events.clone(), ReadPool::default());
            let write = write_loop(1u8, stream, outgoing, rung, events);
            assert!(
                std::mem::size_of_val(&read) <= 384,
                "{}",
                std::mem::size_of_val(&read)
            );
            assert!(
                std::mem::size_of_val(&write) <= 512,
                "{}",
                std::mem::size_of_val(&write)
            );
        });
    }
}
