//! The client driver's owner loop: waits for a socket report, a handle's command, a file host
//! answer or the timer, feeds it to the core, then drains the core (transmits before each
//! action, then events, then the timer).

use super::commands::Command;
use super::owner::{Input, Owner, SocketKey, LOGOUT_GRACE};
use crate::client_options::ClientOptions;
use crate::dial::connect;
use crate::listener::accept_loop;
use async_channel::{Receiver, Sender};
use breeze_core::client::{Action, Destination, Event};
use futures_lite::future::race;
use smol::net::TcpListener;
use std::time::Instant;

/// Socket reports and connect results queued for the owner; readers wait when it is full.
const INBOUND_QUEUE: usize = 256;

enum Wake {
    Input(Input),
    Command(Command),
    Timer,
    /// Every `Client` handle is gone.
    Detached,
}

/// The owner task: runs until every [`Client`](super::Client) handle is gone, then logs out
/// and lingers until the goodbyes are written.
pub(super) async fn run(
    core: breeze_core::Client,
    options: ClientOptions,
    listener: Option<TcpListener>,
    commands: Receiver<Command>,
    events: Sender<Event>,
) {
    let (inbound_tx, inbound) = async_channel::bounded(INBOUND_QUEUE);
    let _accept = listener
        .map(|listener| smol::spawn(accept_loop(listener, inbound_tx.clone(), Input::Accepted)));
    let mut owner = Owner::new(core, options, inbound_tx.clone(), events);
    owner.drain();
    loop {
        let now = match owner.wake(&inbound, &commands).await {
            Wake::Input(input) => owner.handle(input),
            Wake::Command(command) => owner.command(command),
            Wake::Timer => {
                let now = Instant::now();
                owner.core.handle_timeout(now);
                now
            }
            Wake::Detached => break,
        };
        owner.drain();
        owner.answer_logout(now);
    }
    let now = Instant::now();
    if !owner.core.is_stopped() {
        owner.core.logout(now);
        owner.drain();
    }
    owner.linger(&inbound, now + LOGOUT_GRACE).await;
}

impl Owner {
    async fn wake(&mut self, inbound: &Receiver<Input>, commands: &Receiver<Command>) -> Wake {
        let alarm = &mut self.alarm;
        let socket = async {
            match inbound.recv().await {
                Ok(input) => Wake::Input(input),
                // The owner holds a sender itself, so this never happens.
                Err(_) => std::future::pending().await,
            }
        };
        let command = async { commands.recv().await.map_or(Wake::Detached, Wake::Command) };
        let timer = async {
            alarm.ring().await;
            Wake::Timer
        };
        race(socket, race(command, timer)).await
    }

    /// Drains the core after an input: transmits before each action, then events, then the
    /// timer.
    fn drain(&mut self) {
        loop {
            while let Some(transmit) = self.core.poll_transmit() {
                let key = match transmit.to {
                    Destination::Server => self.server.map(SocketKey::Server),
                    Destination::Peer(link) => Some(SocketKey::Peer(link)),
                };
                if let Some(socket) = key.and_then(|key| self.sockets.get_mut(&key)) {
                    socket.write(transmit.payload);
                }
            }
            let Some(action) = self.core.poll_action() else {
                break;
            };
            self.perform(action);
        }
        while let Some(event) = self.core.poll_event() {
            match &event {
                // Route changes are the client's P2P log: worth a line at the default level.
                Event::Route {
                    peer,
                    route,
                    reason,
                } => {
                    tracing::info!(%peer, %route, %reason, "route changed")
                }
                _ => tracing::debug!(?event, "client event"),
            }
            self.observe_file_event(&event);
            let _ = self.events.try_send(event);
        }
        let deadline = [self.core.poll_timeout(), self.logout_deadline];
        self.alarm.arm(deadline.into_iter().flatten().min());
    }

    fn perform(&mut self, action: Action) {
        let timeout = self.options.connect_timeout;
        let report = self.inbound_tx.clone();
        match action {
            Action::ConnectServer => {
                let addr = self.options.server;
                smol::spawn(async move {
                    let result = connect(addr, timeout).await;
                    let _ = report.send(Input::ServerConnected(result)).await;
                })
                .detach();
            }
            Action::CloseServer => {
                if let Some(generation) = self.server.take() {
                    self.close(SocketKey::Server(generation));
                }
            }
            Action::Dial { peer, addr } => {
                smol::spawn(async move {
                    let result = connect(addr, timeout).await;
                    let _ = report.send(Input::Dialed { peer, result }).await;
                })
                .detach();
            }
            Action::CloseLink { link } => self.close(SocketKey::Peer(link)),
            Action::ReadFile {
                id,
                offset,
                len,
                direct,
            } => self.read_file(id, offset, len, direct),
            Action::WriteFile {
                from,
                id,
                offset,
                data,
            } => self.write_file(from, id, offset, data),
            Action::VerifyFile { from, id } => self.verify_file(from, id),
            other => tracing::debug!(?other, "action not supported by this driver"),
        }
    }

    /// Logout callers return once every socket is closed, or the grace period is over.
    fn answer_logout(&mut self, now: Instant) {
        let Some(deadline) = self.logout_deadline else {
            return;
        };
        if self.sockets.is_empty() || now >= deadline {
            for waiter in self.logout_waiters.drain(..) {
                let _ = waiter.try_send(());
            }
            self.logout_deadline = None;
            self.alarm.arm(self.core.poll_timeout());
        }
    }

    /// After the last handle is gone: keep writing and reaping until every socket is closed or
    /// `deadline`.
    async fn linger(&mut self, inbound: &Receiver<Input>, deadline: Instant) {
        while !self.sockets.is_empty() {
            let input = race(async { inbound.recv().await.ok() }, async {
                async_io::Timer::at(deadline).await;
                None
            });
            let Some(input) = input.await else { break };
            self.handle(input);
            self.drain();
        }
    }
}
