//! Accept backpressure: how many accepted connections may be in their handshake and login at
//! once; the rest wait, as accepted sockets, for a slot.
//!
//! Why: after a server restart every client comes back at once. Handed to the core all
//! together, ten thousand connections each hold a handshake, socket tasks and buffers while
//! they wait their turn on the one owner thread; once they log in those are freed, but
//! scattered among the sessions that stay, so the allocator keeps the pages (measured: about
//! half the server's memory after a storm of 10,000 returning logins). With a few hundred in
//! flight the storm's transient memory is a few hundred connections' worth, reused by the
//! next ones, and logins take no longer: the owner thread is the bottleneck either way.
//!
//! A waiting connection is an accepted socket and nothing else: no tasks, no core state. The
//! kernel keeps what its client sent. The accept loop keeps accepting into the waiting room
//! rather than leaving connections in the listen backlog (128 for `std`'s `bind`), which
//! would overflow in a storm and drop SYNs, to be retried by the clients a second or more
//! later.
//!
//! Generic over the stream so the rules are tested on virtual time (`admission_tests.rs`).

use breeze_core::server::ConnId;
use smol::net::TcpStream;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// Connections in their handshake or login at once, by default: enough to keep the owner
/// thread busy while some wait on round trips or the login lanes, few enough that their
/// transient memory is small.
pub const DEFAULT_MAX_PENDING_LOGINS: NonZeroUsize = NonZeroUsize::new(256).unwrap();

/// The most a connection dropped unadmitted has read out of it (see [`peer_gave_up`]): a
/// client's hello and handshake are a few hundred bytes.
const DISCARD_MAX: usize = 64 * 1024;

/// The waiting room and the slots of connections between accept and login.
#[derive(Debug)]
pub(crate) struct Admission<S> {
    waiting: VecDeque<Waiting<S>>,
    /// Admitted to the core, not yet logged in (nor closed).
    pending: HashSet<ConnId>,
    max_pending: usize,
    max_waiting: usize,
    /// How long a connection may wait: its client gives up by then (its login deadline), so
    /// admitting it would only spend a slot on a handshake nobody finishes.
    max_wait: Duration,
}

#[derive(Debug)]
struct Waiting<S> {
    stream: S,
    remote: SocketAddr,
    since: Instant,
}

impl<S> Admission<S> {
    /// At most `max_pending` in handshake or login, at most `max_waiting` waiting (more are
    /// closed at once), none waiting longer than `max_wait`.
    pub fn new(max_pending: usize, max_waiting: usize, max_wait: Duration) -> Admission<S> {
        Admission {
            waiting: VecDeque::new(),
            pending: HashSet::new(),
            max_pending: max_pending.max(1),
            max_waiting,
            max_wait,
        }
    }

    /// A connection was accepted at `now`. Returns it back if the waiting room is full: the
    /// caller closes it (dropping it does).
    pub fn arrived(&mut self, stream: S, remote: SocketAddr, now: Instant) -> Result<(), S> {
        if self.waiting.len() >= self.max_waiting {
            return Err(stream);
        }
        self.waiting.push_back(Waiting {
            stream,
            remote,
            since: now,
        });
        Ok(())
    }

    /// The next connection to hand to the core, if a slot is free; the caller then calls
    /// [`admitted`](Self::admitted) with the id it gave it. Connections that waited too long
    /// are dropped (closed) on the way, slot or not, and so are those whose client `gave_up`
    /// (closed its end while waiting): admitting one would spend a handshake on nobody.
    pub fn next(&mut self, now: Instant, gave_up: impl Fn(&S) -> bool) -> Option<(S, SocketAddr)> {
        while let Some(first) = self.waiting.front() {
            if now.saturating_duration_since(first.since) < self.max_wait {
                break;
            }
            self.waiting.pop_front();
        }
        if self.pending.len() >= self.max_pending {
            return None;
        }
        let first = loop {
            let first = self.waiting.pop_front()?;
            if !gave_up(&first.stream) {
                break first;
            }
        };
        if self.waiting.is_empty() && self.waiting.capacity() > 0 {
            // The storm is over: its queue's memory goes back rather than staying reserved.
            self.waiting = VecDeque::new();
        }
        Some((first.stream, first.remote))
    }

    /// `conn` is in the core now, holding a slot until it logs in or closes.
    pub fn admitted(&mut self, conn: ConnId) {
        self.pending.insert(conn);
    }

    /// `conn` logged in, or closed: its slot is free. Unknown ids are ignored.
    pub fn finished(&mut self, conn: ConnId) {
        self.pending.remove(&conn);
    }

    /// Drops every waiting connection (shutdown: they are closed unanswered).
    pub fn close_waiting(&mut self) {
        self.waiting = VecDeque::new();
    }

    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.pending.len(), self.waiting.len())
    }
}

/// Whether the client of a waiting connection has closed its end (it gave up waiting and
/// will try again on a new one): the socket is in `CLOSE_WAIT`. Linux only; elsewhere every
/// waiting connection is admitted and finds out by reading.
///
/// If so, what the client sent before it closed is read and dropped here (up to
/// [`DISCARD_MAX`]), so that closing the socket sends a FIN, not the reset a close with unread
/// input sends: a client that only half-closed still sees a clean end.
pub(crate) fn peer_gave_up(stream: &TcpStream) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        /// `TCP_CLOSE_WAIT` in the kernel's `tcp_states.h`: the peer sent its FIN.
        const TCP_CLOSE_WAIT: u8 = 8;
        // The first byte of `struct tcp_info` is the state; the kernel copies no more than
        // the length given.
        let mut info = [0u8; 8];
        let mut len = info.len() as libc::socklen_t;
        // SAFETY: `info` and `len` outlive the call, which writes at most `len` bytes.
        let result = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let gave_up = result == 0 && len >= 1 && info[0] == TCP_CLOSE_WAIT;
        if gave_up {
            let mut scratch = [0u8; 4096];
            let mut discarded = 0;
            while discarded < DISCARD_MAX {
                // SAFETY: `scratch` outlives the call, which writes at most its length.
                let n = unsafe {
                    libc::recv(
                        stream.as_raw_fd(),
                        scratch.as_mut_ptr().cast(),
                        scratch.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n <= 0 {
                    break;
                }
                discarded += n as usize;
            }
        }
        gave_up
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        false
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
