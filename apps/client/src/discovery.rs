//! Finding Breeze servers on the LAN: browse mDNS/DNS-SD for `_breeze._tcp` (what
//! `breeze-server` announces, see its `announce.rs`) for a moment and list what answered,
//! each with its address and the key fingerprint from its TXT record.
//!
//! `breeze discover` prints them; `breeze` without a server (on the command line or in the
//! settings) uses the one it finds, and with several lets the user choose.

use breeze_core::secure::Fingerprint;
use mdns_sd::{ServiceDaemon, ServiceEvent};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The DNS-SD service type servers announce.
const SERVICE_TYPE: &str = "_breeze._tcp.local.";

/// How long to listen for answers by default: responders answer within a few hundred
/// milliseconds (RFC 6762 delays answers by up to 120 ms, and the first query may be lost).
pub const DEFAULT_WAIT: Duration = Duration::from_millis(1500);

/// The most servers kept: a bound on what a hostile LAN can make us hold.
const MAX_SERVERS: usize = 64;

/// One server heard on the LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Where to connect, as `HOST:PORT`.
    pub addr: String,
    /// The fingerprint its announcement carries; checked against the key at the handshake
    /// when the profile has pinned none yet.
    pub fingerprint: Option<String>,
}

impl Found {
    /// The announced fingerprint, when it is one.
    pub fn key(&self) -> Option<Fingerprint> {
        self.fingerprint.as_deref().and_then(Fingerprint::parse)
    }
}

/// The servers that answered within `wait`, sorted by address.
pub fn browse(wait: Duration) -> Result<Vec<Found>, String> {
    let failed = |e: mdns_sd::Error| format!("cannot look for servers on the LAN: {e}");
    let daemon = ServiceDaemon::new().map_err(failed)?;
    let answers = daemon.browse(SERVICE_TYPE).map_err(failed)?;
    let deadline = Instant::now() + wait;
    // By instance name: a server answering on several interfaces is one server.
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(event) = answers.recv_timeout(left) else {
            break;
        };
        if let ServiceEvent::ServiceResolved(service) = event {
            let ips = service.get_addresses().iter().map(|ip| ip.to_ip_addr());
            let Some(ip) = pick(ips) else { continue };
            if found.len() < MAX_SERVERS || found.contains_key(service.get_fullname()) {
                let fingerprint = service
                    .get_property_val_str("fp")
                    .filter(|fp| Fingerprint::parse(fp).is_some())
                    .map(str::to_string);
                let addr = SocketAddr::new(ip, service.get_port()).to_string();
                found.insert(
                    service.get_fullname().to_string(),
                    Found { addr, fingerprint },
                );
            }
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    let _ = daemon.shutdown();
    let mut servers: Vec<Found> = found.into_values().collect();
    servers.sort_by(|a, b| a.addr.cmp(&b.addr));
    servers.dedup();
    Ok(servers)
}

/// The address to use of those a server announced: IPv4 first (link-local IPv6 needs a
/// scope a `HOST:PORT` cannot carry), the smallest for a stable choice.
fn pick(ips: impl Iterator<Item = IpAddr>) -> Option<IpAddr> {
    ips.min_by_key(|ip| (ip.is_ipv6(), *ip))
}

/// What to tell the user about several servers, one a line.
pub fn listing(servers: &[Found]) -> String {
    servers
        .iter()
        .map(|s| match &s.fingerprint {
            Some(fp) => format!("{} (key {fp})", s.addr),
            None => s.addr.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_comes_before_ipv6_and_the_choice_is_stable() {
        let ips: Vec<IpAddr> = ["fe80::1", "10.0.0.9", "10.0.0.2"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect();
        assert_eq!(pick(ips.into_iter()), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(pick(std::iter::empty()), None);
    }

    #[test]
    fn a_found_server_is_one_json_object_with_addr_and_fingerprint() {
        let found = Found {
            addr: "10.0.0.2:7300".into(),
            fingerprint: Some("98dd:d8b2:027d:0d8a:d711:b1b2:42ed:5bfe".into()),
        };
        assert_eq!(
            serde_json::to_string(&found).unwrap(),
            "{\"addr\":\"10.0.0.2:7300\",\"fingerprint\":\"98dd:d8b2:027d:0d8a:d711:b1b2:42ed:5bfe\"}"
        );
        assert!(found.key().is_some());
        assert!(listing(&[found.clone(), found]).contains(", "));
    }
}
