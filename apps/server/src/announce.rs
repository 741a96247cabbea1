//! Telling the LAN where this server is: an mDNS/DNS-SD service of type `_breeze._tcp`, with
//! the server key's fingerprint in its TXT record (`fp`) and the protocol version (`v`), so
//! `breeze --user NAME` finds the server with no address given and knows the key to expect.
//!
//! The responder is `mdns-sd`'s (its own thread; no async runtime). Where it answers follows
//! `--listen`: a server on one address announces on that address's interface only (a
//! loopback address stays on loopback), one on all interfaces announces on every one. It
//! stops, with a goodbye, when the value is dropped. `--no-announce` turns it off.

use breeze_core::secure::Fingerprint;
use breeze_core::wire::PROTOCOL_VERSION;
use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};
use std::net::SocketAddr;

/// The DNS-SD service type clients browse for.
pub const SERVICE_TYPE: &str = "_breeze._tcp.local.";

/// A running announcement; dropping it withdraws it.
pub struct Announcement {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Announcement {
    /// Announces the server listening on `addr` with key `fingerprint`.
    pub fn start(addr: SocketAddr, fingerprint: &Fingerprint) -> Result<Announcement, String> {
        let failed = |e: mdns_sd::Error| format!("cannot announce the server on the LAN: {e}");
        let daemon = ServiceDaemon::new().map_err(failed)?;
        // A name of the key, so two servers on one host (or network) differ.
        let key = fingerprint.to_string().replace(':', "");
        let instance = format!("breeze {}", key.get(..8).unwrap_or(&key));
        let host = format!("breeze-{}.local.", key.get(..8).unwrap_or(&key));
        let properties = [
            ("fp", fingerprint.to_string()),
            ("v", PROTOCOL_VERSION.to_string()),
        ];
        let service = if addr.ip().is_unspecified() {
            ServiceInfo::new(
                SERVICE_TYPE,
                &instance,
                &host,
                (),
                addr.port(),
                &properties[..],
            )
            .map(ServiceInfo::enable_addr_auto)
        } else {
            daemon.disable_interface(IfKind::All).map_err(failed)?;
            daemon
                .enable_interface(IfKind::Addr(addr.ip()))
                .map_err(failed)?;
            ServiceInfo::new(
                SERVICE_TYPE,
                &instance,
                &host,
                addr.ip(),
                addr.port(),
                &properties[..],
            )
        }
        .map_err(failed)?;
        let fullname = service.get_fullname().to_string();
        daemon.register(service).map_err(failed)?;
        Ok(Announcement { daemon, fullname })
    }

    /// The announced instance's full DNS-SD name.
    pub fn name(&self) -> &str {
        &self.fullname
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        // The goodbye tells browsers at once; then the responder's thread ends.
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(std::time::Duration::from_millis(500));
        }
        let _ = self.daemon.shutdown();
    }
}
