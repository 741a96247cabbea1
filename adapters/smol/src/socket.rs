//! One TCP socket as two tasks: a reader that forwards bytes to the owner task, and a writer
//! that drains a bounded queue of transmits.
//!
//! The owner never awaits a socket: it hands bytes to the writer with `try_send` and learns
//! what happened from [`SocketEvent`]s on its inbound channel. Exactly one
//! [`SocketEvent::Closed`] is reported per socket, always by the reader, whether the peer
//! closed, a read or write failed, or the owner asked for the close. Dropping a [`Socket`]
//! cancels both tasks and closes the file descriptor.

use async_channel::{Receiver, Sender, TrySendError};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use smol::Task;
use std::net::Shutdown;
use std::time::Duration;

/// Bytes read per `read` call (and the most one [`SocketEvent::Bytes`] carries).
const READ_BUFFER: usize = 64 * 1024;
/// Transmits a writer may have queued. The core bounds the *bytes* in flight per connection and
/// drops slow consumers itself; this bound only keeps the number of queued buffers finite.
const WRITE_QUEUE: usize = 1024;
/// The writer concatenates queued transmits up to this size into one `write` call.
const WRITE_BATCH: usize = 256 * 1024;
/// After a graceful close, how long the far side gets to close its end before the socket is
/// torn down regardless.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What a socket reports to its owner, tagged with the owner's key for it.
#[derive(Debug)]
pub(crate) enum SocketEvent<K> {
    Bytes(K, Vec<u8>),
    /// This many bytes handed to [`Socket::write`] reached the kernel.
    Written(K, usize),
    /// The socket is finished; its key will not be reported again.
    Closed(K),
}

enum WriteCmd {
    Bytes(Vec<u8>),
    /// Write everything queued before, then shut the socket down.
    Close,
}

/// The owner's handle on one socket.
pub(crate) struct Socket {
    stream: TcpStream,
    queue: Sender<WriteCmd>,
    /// The owner asked for the close; what the socket still reports is not news to the core.
    pub closing: bool,
    _reader: Task<()>,
    _writer: Task<()>,
}

impl Socket {
    /// Starts the reader and writer tasks; their reports go to `events`.
    pub fn spawn<K, E>(key: K, stream: TcpStream, events: Sender<E>) -> Socket
    where
        K: Clone + Send + std::fmt::Debug + 'static,
        E: From<SocketEvent<K>> + Send + 'static,
    {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(?key, %error, "cannot set TCP_NODELAY");
        }
        let (queue, queued) = async_channel::bounded(WRITE_QUEUE);
        let reader = smol::spawn(read_loop(key.clone(), stream.clone(), events.clone()));
        let writer = smol::spawn(write_loop(key, stream.clone(), queued, events));
        Socket {
            stream,
            queue,
            closing: false,
            _reader: reader,
            _writer: writer,
        }
    }

    /// Queues bytes for the writer. A socket whose queue is full is not keeping up (or is
    /// already gone): it is aborted, and its reader reports the close.
    pub fn write(&mut self, bytes: Vec<u8>) {
        if self.closing {
            // The core polls a connection's last bytes before its close; nothing comes after.
            return;
        }
        match self.queue.try_send(WriteCmd::Bytes(bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("write queue full, dropping the connection");
                self.abort();
            }
            Err(TrySendError::Closed(_)) => self.abort(),
        }
    }

    /// Closes gracefully: after everything queued is written. Later writes are dropped.
    pub fn close(&mut self) {
        self.closing = true;
        if self.queue.try_send(WriteCmd::Close).is_err() {
            self.abort();
        }
        self.queue.close();
    }

    /// Tears the socket down now; the reader then reports the close.
    pub fn abort(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

async fn read_loop<K, E>(key: K, mut stream: TcpStream, events: Sender<E>)
where
    K: Clone + std::fmt::Debug,
    E: From<SocketEvent<K>>,
{
    let mut buffer = vec![0u8; READ_BUFFER];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => {
                let bytes = buffer[..n].to_vec();
                if events
                    .send(SocketEvent::Bytes(key.clone(), bytes).into())
                    .await
                    .is_err()
                {
                    return;
                }
            }
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
    queued: Receiver<WriteCmd>,
    events: Sender<E>,
) where
    K: Clone + std::fmt::Debug,
    E: From<SocketEvent<K>>,
{
    let mut batch = Vec::new();
    let mut closing = false;
    while let Ok(first) = queued.recv().await {
        batch.clear();
        match first {
            WriteCmd::Bytes(bytes) => batch = bytes,
            WriteCmd::Close => closing = true,
        }
        while !closing && batch.len() < WRITE_BATCH {
            match queued.try_recv() {
                Ok(WriteCmd::Bytes(bytes)) => batch.extend_from_slice(&bytes),
                Ok(WriteCmd::Close) => closing = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            if let Err(error) = stream.write_all(&batch).await {
                tracing::debug!(?key, %error, "write failed");
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            let written = SocketEvent::Written(key.clone(), batch.len());
            if events.send(written.into()).await.is_err() {
                return;
            }
        }
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
