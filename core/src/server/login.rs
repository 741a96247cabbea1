//! Getting in: the hello exchange, the login frame, the host's verdict, and the session that
//! starts when it says yes.

use super::connection::{Phase, Session};
use super::file_relay::FileBudget;
use super::output::{Action, ConnError, Event, LogoutReason};
use super::{ConnId, Server};
use crate::password::Password;
use crate::secure::PublicKey;
use crate::wire::{KickReason, LoginRefusal, ServerFrame, UserName, PROTOCOL_VERSION};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A credential check the host has not answered yet.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingCheck {
    /// The address that asked, which the verdict is counted against.
    ip: IpAddr,
    kind: CheckKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckKind {
    /// `Action::CheckLogin`: a password hash, counted as a failure while under way.
    Password,
    /// `Action::CheckKeyLogin`: a lookup, counted only if it fails.
    Key,
}

impl Server {
    /// The client's hello: always answered with ours, so a client speaking another version
    /// learns which one this server speaks before it is closed.
    pub(super) fn on_hello(&mut self, conn: ConnId, version: u16, now: Instant) {
        self.send(
            conn,
            &ServerFrame::Hello {
                version: PROTOCOL_VERSION,
            },
            now,
        );
        if version != PROTOCOL_VERSION {
            self.fail(conn, ConnError::UnsupportedVersion { theirs: version }, now);
        } else if let Some(connection) = self.conns.get_mut(&conn) {
            connection.phase = Phase::Login;
        }
    }

    /// The login frame: refused at once when the server can say no without the host (closed
    /// registration, an address guessing passwords), else handed to the host to check.
    pub(super) fn on_login(
        &mut self,
        conn: ConnId,
        user: UserName,
        password: Password,
        p2p_port: u16,
        register: bool,
        now: Instant,
    ) {
        if register && !self.config.open_registration {
            return self.refuse_login(conn, user, LoginRefusal::RegistrationClosed, now);
        }
        let Some(key) = self.begin_check(conn, &user, p2p_port, CheckKind::Password, now) else {
            return;
        };
        self.actions.push_back(Action::CheckLogin {
            conn,
            user,
            password,
            register,
            key,
        });
    }

    /// The key login frame: the handshake proved the client holds `key`, so the host only
    /// looks up whether it is enrolled for `user`. Only logins that failed are held against
    /// the address, not those under way (see `AddressLimits::key_check_finished`).
    pub(super) fn on_key_login(
        &mut self,
        conn: ConnId,
        user: UserName,
        p2p_port: u16,
        now: Instant,
    ) {
        let Some(key) = self.begin_check(conn, &user, p2p_port, CheckKind::Key, now) else {
            return;
        };
        self.actions
            .push_back(Action::CheckKeyLogin { conn, user, key });
    }

    /// What both logins do before the host checks them: refuse an address that failed too
    /// often (for a password, the checks under way count too: each costs a hash), else note
    /// the check as pending and return the key the handshake proved.
    fn begin_check(
        &mut self,
        conn: ConnId,
        user: &UserName,
        p2p_port: u16,
        kind: CheckKind,
        now: Instant,
    ) -> Option<PublicKey> {
        let connection = self.conns.get_mut(&conn)?;
        let ip = connection.remote.ip();
        let Some(key) = connection.key else {
            self.fail(conn, ConnError::UnexpectedFrame, now);
            return None;
        };
        let max = self.config.max_login_failures_per_ip;
        let refused = match kind {
            CheckKind::Password => self.limits.too_many_failures(ip, max, now),
            CheckKind::Key => self.limits.failed_too_often(ip, max, now),
        };
        if refused {
            self.refuse_login(conn, user.clone(), LoginRefusal::TooManyAttempts, now);
            return None;
        }
        connection.phase = Phase::Checking {
            user: user.clone(),
            p2p_port,
            key,
        };
        if kind == CheckKind::Password {
            self.limits.check_started(ip);
        }
        self.pending_checks.insert(conn, PendingCheck { ip, kind });
        Some(key)
    }

    /// The host's verdict on a credential check, of either kind.
    pub(super) fn on_login_checked(
        &mut self,
        conn: ConnId,
        verdict: Result<(), LoginRefusal>,
        now: Instant,
    ) {
        // Count the verdict against the address even if the connection is gone by now: the
        // host did the hashing, and hanging up must not be a way around the limit.
        let Some(check) = self.pending_checks.remove(&conn) else {
            return;
        };
        match check.kind {
            CheckKind::Password => {
                let wrong_password = matches!(
                    verdict,
                    Err(LoginRefusal::BadCredentials | LoginRefusal::NameTaken)
                );
                self.limits.check_finished(check.ip, wrong_password, now);
            }
            CheckKind::Key => {
                let wrong_key = matches!(
                    verdict,
                    Err(LoginRefusal::KeyNotEnrolled | LoginRefusal::KeyRevoked)
                );
                self.limits.key_check_finished(check.ip, wrong_key, now);
            }
        }
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        let Phase::Checking {
            user,
            p2p_port,
            key,
        } = &connection.phase
        else {
            return;
        };
        let (user, p2p_port, key) = (user.clone(), *p2p_port, *key);
        match verdict {
            Err(reason) => self.refuse_login(conn, user, reason, now),
            Ok(()) => self.log_in(conn, user, p2p_port, key, now),
        }
    }

    /// Says no: the host logs why, the client is told why (so it knows whether retrying can
    /// help), and the connection closes.
    fn refuse_login(&mut self, conn: ConnId, user: UserName, reason: LoginRefusal, now: Instant) {
        self.events
            .push_back(Event::LoginRefused { conn, user, reason });
        self.send(conn, &ServerFrame::LoginRefused { reason }, now);
        self.close(conn, LogoutReason::Requested, now);
    }

    /// Starts the session: an older session of the same user is kicked (the newest login
    /// wins), the client hears yes before anything else, then who is online, then what was
    /// stored for it.
    fn log_in(
        &mut self,
        conn: ConnId,
        user: UserName,
        p2p_port: u16,
        key: PublicKey,
        now: Instant,
    ) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        let endpoint = SocketAddr::new(connection.remote.ip(), p2p_port);
        connection.phase = Phase::Online(Session {
            user: user.clone(),
            key,
            endpoint,
            stored_delivered: HashSet::default(),
            file_budget: FileBudget::new(self.config.file_relay, now),
            groups: Default::default(),
        });
        if let Some(old) = self.presence.insert(user.clone(), conn) {
            let reason = KickReason::LoggedInElsewhere;
            self.send(old, &ServerFrame::Kicked { reason }, now);
            self.close(old, LogoutReason::Kicked(reason), now);
        }
        self.events.push_back(Event::LoggedIn {
            conn,
            user: user.clone(),
            endpoint,
        });
        self.send(conn, &ServerFrame::LoginOk { user: user.clone() }, now);
        self.introduce(conn, &user, now);
        self.list_groups(conn, &user, now);
        self.actions.push_back(Action::LoadOffline { user });
        self.load_group_backlog(conn);
    }
}
