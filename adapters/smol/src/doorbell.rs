//! A doorbell between a socket's owner and its writer task: "there is something for you",
//! rung any number of times, heard once.
//!
//! Why not a `bounded(1)` channel, as before: every socket has one, for as long as it lives,
//! and an `async_channel` is a cache-padded 768-byte allocation plus its listeners' (about
//! 1 KiB per connection, measured with heaptrack at 10,000 idle connections). This is one
//! small allocation: a flag, a waker and whether either side is gone.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

#[derive(Default)]
struct State {
    rung: bool,
    waiting: Option<Waker>,
    /// The [`Bell`] was dropped: nothing will ring again.
    bell_gone: bool,
    /// The [`Rung`] was dropped: nobody listens.
    listener_gone: bool,
}

/// The ringing side (the owner's [`Socket`](crate::socket::Socket)).
pub(crate) struct Bell(Arc<Mutex<State>>);

/// The listening side (the writer task).
pub(crate) struct Rung(Arc<Mutex<State>>);

pub(crate) fn doorbell() -> (Bell, Rung) {
    let state = Arc::new(Mutex::new(State::default()));
    (Bell(state.clone()), Rung(state))
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding it; a poisoned lock still holds consistent flags.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Bell {
    /// Rings; `false` if the listener is gone (the writer ended).
    pub fn ring(&self) -> bool {
        let waker = {
            let mut state = lock(&self.0);
            if state.listener_gone {
                return false;
            }
            state.rung = true;
            state.waiting.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

impl Drop for Bell {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.0);
            state.bell_gone = true;
            state.waiting.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Rung {
    /// Waits for a ring since the last wait; `false` once the bell is gone and nothing rang.
    pub async fn wait(&self) -> bool {
        poll_fn(|cx| {
            let mut state = lock(&self.0);
            if state.rung {
                state.rung = false;
                Poll::Ready(true)
            } else if state.bell_gone {
                Poll::Ready(false)
            } else {
                if !state
                    .waiting
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    state.waiting = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Rung {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.listener_gone = true;
        state.waiting = None;
    }
}

#[cfg(test)]
mod tests {
    use super::doorbell;

    #[test]
    fn rings_are_heard_once_and_a_dropped_side_is_noticed() {
        smol::block_on(async {
            let (bell, rung) = doorbell();
            assert!(bell.ring());
            assert!(bell.ring());
            assert!(rung.wait().await, "rung before the wait: heard at once");
            let waiting = smol::spawn(async move {
                let heard = rung.wait().await;
                (heard, rung)
            });
            smol::future::yield_now().await;
            assert!(bell.ring());
            let (heard, rung) = waiting.await;
            assert!(heard, "rung while waiting: woken");
            drop(bell);
            assert!(!rung.wait().await, "the bell is gone");

            let (bell, rung) = doorbell();
            drop(rung);
            assert!(!bell.ring(), "nobody listens");
        });
    }
}
