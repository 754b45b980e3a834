//! Admission at the TCP accept: a cap on all the connections of the listeners that share
//! these [`Counters`], one on the connections of one client address (an IPv6 client by its
//! /64, as the rate limits count it; trusted proxies are not capped), and one on the
//! connections that have not yet sent a first request (the TLS handshake included). A
//! connection over a cap is closed before anything is read from it: in pingora's accept loop
//! already ([`AcceptFilter`]), so that a flood of them holds no file descriptors while it
//! waits for a task of its own; [`Counters::admit`] then takes the places for real.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::listeners::ConnectionFilter;

use super::Limits;
use crate::lifecycle::Connection;

/// Counts shared by every connection of the listeners that share them.
pub struct Counters {
    limits: Limits,
    trusted_proxies: Vec<prehod_config::Cidr>,
    per_address: Mutex<HashMap<IpAddr, u32>>,
    total: AtomicUsize,
    pending: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("total", &self.total)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

pub use crate::refusals::ConnectionRefused as Refused;

/// A connection's place in the counts, given back when it is dropped (with the connection's
/// stream, or at once when the connection is refused or its handshake fails).
#[derive(Debug)]
pub struct Slot {
    counters: Arc<Counters>,
    /// The counted address (IPv6: its /64), once it is counted.
    address: Option<IpAddr>,
    /// In the total count.
    counted: bool,
    /// In the pending count until its first request.
    connection: Option<Arc<Connection>>,
}

impl Slot {
    pub fn limits(&self) -> &Limits {
        &self.counters.limits
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(connection) = &self.connection {
            connection.release_pending();
        }
        if self.counted {
            self.counters.total.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(ip) = self.address {
            let mut map = self
                .counters
                .per_address
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

impl Counters {
    pub fn new(limits: Limits, trusted_proxies: Vec<prehod_config::Cidr>) -> Self {
        Self {
            limits,
            trusted_proxies,
            per_address: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How `address` is counted per address: not at all for a trusted proxy, an IPv6 client
    /// by its /64.
    fn counted(&self, address: Option<IpAddr>) -> Option<IpAddr> {
        address
            .filter(|ip| !self.trusted_proxies.iter().any(|n| n.contains(*ip)))
            .map(crate::ratelimit::counted_address)
    }

    /// Whether a new connection from `address` would find a place now (nothing is taken).
    pub fn room_for(&self, address: Option<IpAddr>) -> Result<(), Refused> {
        if let Some(ip) = self.counted(address) {
            let map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
            if map
                .get(&ip)
                .is_some_and(|n| *n >= self.limits.max_per_address)
            {
                return Err(Refused::PerAddress);
            }
        }
        if self.total.load(Ordering::Acquire) >= self.limits.max_connections {
            return Err(Refused::Total);
        }
        if self.pending.load(Ordering::Acquire) >= self.limits.max_pending {
            return Err(Refused::Pending);
        }
        Ok(())
    }

    /// Takes a place for a new connection from `address`, or says why there is none. The
    /// connection is pending until it says it has a first request.
    pub fn admit(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        connection: &Arc<Connection>,
    ) -> Result<Slot, Refused> {
        let mut slot = Slot {
            counters: self.clone(),
            address: None,
            counted: false,
            connection: None,
        };
        // From here on, dropping the slot gives back whatever it took.
        if let Some(ip) = self.counted(address) {
            let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.limits.max_per_address {
                return Err(Refused::PerAddress);
            }
            *n += 1;
            slot.address = Some(ip);
        }
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.limits.max_connections {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Total);
        }
        slot.counted = true;
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.limits.max_pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Pending);
        }
        connection.count_pending(self.pending.clone());
        slot.connection = Some(connection.clone());
        Ok(slot)
    }
}

/// The caps, applied in pingora's accept loop (see the module's documentation).
#[derive(Debug)]
pub struct AcceptFilter(pub Arc<Counters>);

#[async_trait]
impl ConnectionFilter for AcceptFilter {
    async fn should_accept(&self, address: Option<&SocketAddr>) -> bool {
        let address = address.map(SocketAddr::ip);
        match self.0.room_for(address) {
            Ok(()) => true,
            Err(refused) => {
                crate::metrics::count_connection_refused(refused.label());
                tracing::debug!(client = ?address, reason = refused.label(), "connection refused");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(total: usize, per_address: u32, pending: usize) -> Limits {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            deadlines: crate::lifecycle::Deadlines {
                header: Duration::from_secs(10),
                body: Duration::from_secs(5),
                body_min_rate: 1000,
                idle: Duration::from_secs(60),
            },
            max_connections: total,
            max_per_address: per_address,
            max_pending: pending,
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    fn admit(counters: &Arc<Counters>, address: &str) -> Result<Slot, Refused> {
        counters.admit(ip(address), &Arc::default())
    }

    #[test]
    fn caps_count_per_address_and_pending_and_give_places_back() {
        let counters = Arc::new(Counters::new(
            limits(100, 2, 3),
            vec!["10.0.0.0/8".parse().expect("cidr")],
        ));
        let one = admit(&counters, "192.0.2.1").expect("first");
        let two = admit(&counters, "192.0.2.1").expect("second");
        assert_eq!(
            admit(&counters, "192.0.2.1").err(),
            Some(Refused::PerAddress)
        );
        assert_eq!(
            counters.room_for(ip("192.0.2.1")),
            Err(Refused::PerAddress),
            "the accept loop's look says the same, and takes nothing"
        );
        assert_eq!(counters.room_for(ip("192.0.2.2")), Ok(()));
        // Three pending now (the refused one gave its place back): none more for anyone.
        let three = admit(&counters, "192.0.2.2").expect("another address");
        assert_eq!(admit(&counters, "192.0.2.2").err(), Some(Refused::Pending));
        // A connection whose first header is done is no longer pending.
        one.connection.as_ref().expect("pending").header_done(false);
        let four = admit(&counters, "192.0.2.2").expect("a pending place again");
        drop((two, three, four));
        assert_eq!(counters.pending.load(Ordering::Acquire), 0);
        drop(one);
        assert!(counters.per_address.lock().expect("lock").is_empty());
        assert_eq!(counters.total.load(Ordering::Acquire), 0);
        // Trusted proxies are not capped per address.
        let held: Vec<Slot> = (0..3)
            .map(|_| {
                let s = admit(&counters, "10.1.2.3").expect("proxy");
                s.connection.as_ref().expect("pending").header_done(false);
                s
            })
            .collect();
        assert_eq!(held.len(), 3);
    }

    #[test]
    fn ipv6_clients_are_capped_by_their_64() {
        let counters = Arc::new(Counters::new(limits(100, 2, 100), Vec::new()));
        let _a = admit(&counters, "2001:db8:1:2::1").expect("first");
        let _b = admit(&counters, "2001:db8:1:2:ffff::2").expect("second, same /64");
        assert_eq!(
            admit(&counters, "2001:db8:1:2:abcd::3").err(),
            Some(Refused::PerAddress),
            "a third address of the same /64"
        );
        assert!(
            admit(&counters, "2001:db8:1:3::1").is_ok(),
            "the next /64 is another client"
        );
        // An IPv4 client seen through a mapped IPv6 address is the same client.
        let _c = admit(&counters, "192.0.2.9").expect("v4");
        let _d = admit(&counters, "::ffff:192.0.2.9").expect("v4, mapped");
        assert_eq!(
            admit(&counters, "192.0.2.9").err(),
            Some(Refused::PerAddress)
        );
    }

    #[test]
    fn the_total_cap_holds_for_every_address_and_is_given_back() {
        let counters = Arc::new(Counters::new(limits(2, 10, 10), Vec::new()));
        let a = admit(&counters, "192.0.2.1").expect("first");
        let _b = admit(&counters, "192.0.2.2").expect("second");
        assert_eq!(admit(&counters, "192.0.2.3").err(), Some(Refused::Total));
        // The refused one took no place of its address.
        assert_eq!(counters.per_address.lock().expect("lock").len(), 2);
        drop(a);
        assert!(admit(&counters, "192.0.2.3").is_ok());
    }
}
