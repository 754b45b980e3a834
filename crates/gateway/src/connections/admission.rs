//! Admission at the TCP accept: a cap on all the connections of the listeners that share
//! these [`Counters`], one on the connections of one client address (an IPv6 client by its
//! /64, as the rate limits count it; trusted proxies are not capped), and two on the
//! connections that have not yet sent a first request (the TLS handshake included): all of
//! them, and those of one address — far fewer, so that a few addresses cannot take every
//! place. A connection over a cap is closed before anything is read from it: in pingora's
//! accept loop already ([`AcceptFilter`]), so that a flood of them holds no file descriptors
//! while it waits for a task of its own; [`Counters::admit`] then takes the places for real.
//!
//! The same counts hold the requests in progress ([`Counters::start_request`]), each of which
//! may hold an upstream connection: at most `max_connections` in all and
//! `max_requests_per_address` per address, over all the address's connections — so that the
//! streams of a few HTTP/2 connections cannot hold an upstream connection (and the memory of a
//! request) each.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use pingora::listeners::ConnectionFilter;

use super::Limits;
use crate::lifecycle::{Connection, PendingPlace};

/// What one client address holds.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    connections: u32,
    /// Connections without a first request.
    pending: u32,
    /// Requests in progress.
    requests: u32,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.connections == 0 && self.pending == 0 && self.requests == 0
    }
}

/// Counts shared by every connection of the listeners that share them.
pub struct Counters {
    limits: Limits,
    trusted_proxies: Vec<prehod_config::Cidr>,
    per_address: Mutex<HashMap<IpAddr, Held>>,
    total: AtomicUsize,
    pending: AtomicUsize,
    requests: AtomicUsize,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("total", &self.total)
            .field("pending", &self.pending)
            .field("requests", &self.requests)
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
    /// In the pending counts until its first request.
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
            self.counters.give_back(ip, |held| {
                held.connections = held.connections.saturating_sub(1);
            });
        }
    }
}

/// A connection's places in the pending counts (its address's, and — once taken — the
/// global one), left at its first request or its end.
#[derive(Debug)]
struct Pending {
    counters: Arc<Counters>,
    address: Option<IpAddr>,
    global: AtomicBool,
}

impl PendingPlace for Pending {
    fn leave(&self) {
        if self.global.swap(false, Ordering::AcqRel) {
            self.counters.pending.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(ip) = self.address {
            self.counters.give_back(ip, |held| {
                held.pending = held.pending.saturating_sub(1);
            });
        }
    }
}

/// A request's place in the counts of requests in progress, given back when it is dropped.
#[derive(Debug)]
pub struct InFlight {
    counters: Arc<Counters>,
    address: Option<IpAddr>,
    global: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.global {
            self.counters.requests.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(ip) = self.address {
            self.counters.give_back(ip, |held| {
                held.requests = held.requests.saturating_sub(1);
            });
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
            pending: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn addresses(&self) -> MutexGuard<'_, HashMap<IpAddr, Held>> {
        self.per_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back what `give` takes off `ip`'s count; an address that holds nothing is
    /// forgotten.
    fn give_back(&self, ip: IpAddr, give: impl FnOnce(&mut Held)) {
        let mut map = self.addresses();
        if let Some(held) = map.get_mut(&ip) {
            give(held);
            if held.is_empty() {
                map.remove(&ip);
            }
        }
    }

    /// How `address` is counted per address: not at all for a trusted proxy, an IPv6 client
    /// by its /64.
    fn counted(&self, address: Option<IpAddr>) -> Option<IpAddr> {
        address
            .filter(|ip| !self.trusted_proxies.iter().any(|n| n.contains(*ip)))
            .map(crate::ratelimit::counted_address)
    }

    /// Whether an address holding `held` may have another connection.
    fn room_at(&self, held: &Held) -> Result<(), Refused> {
        if held.connections >= self.limits.max_per_address {
            return Err(Refused::PerAddress);
        }
        if held.pending >= self.limits.max_pending_per_address {
            return Err(Refused::PendingPerAddress);
        }
        Ok(())
    }

    /// Whether a new connection from `address` would find a place now (nothing is taken).
    pub fn room_for(&self, address: Option<IpAddr>) -> Result<(), Refused> {
        if let Some(ip) = self.counted(address) {
            if let Some(held) = self.addresses().get(&ip) {
                self.room_at(held)?;
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
        let address = self.counted(address);
        if let Some(ip) = address {
            let mut map = self.addresses();
            match map.get_mut(&ip) {
                Some(held) => {
                    self.room_at(held)?;
                    held.connections += 1;
                    held.pending += 1;
                }
                None => {
                    map.insert(
                        ip,
                        Held {
                            connections: 1,
                            pending: 1,
                            requests: 0,
                        },
                    );
                }
            }
            connection.set_counted_address(ip);
        }
        // From here on, dropping the slot gives back whatever it took.
        let pending = Arc::new(Pending {
            counters: self.clone(),
            address,
            global: AtomicBool::new(false),
        });
        connection.count_pending(pending.clone());
        let mut slot = Slot {
            counters: self.clone(),
            address,
            counted: false,
            connection: Some(connection.clone()),
        };
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.limits.max_connections {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Total);
        }
        slot.counted = true;
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.limits.max_pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Pending);
        }
        pending.global.store(true, Ordering::Release);
        Ok(slot)
    }

    /// Takes a place for a request in progress of a connection from `address` (as the
    /// connection counted it), or says why there is none: all the connections together hold
    /// `max_connections` requests, or the address holds `max_requests_per_address`. Not
    /// `refusable` (an HTTP/1 connection's request, which its connection's place already
    /// bounds): counted, never refused.
    pub fn start_request(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        refusable: bool,
    ) -> Result<InFlight, Refused> {
        let mut request = InFlight {
            counters: self.clone(),
            address: None,
            global: false,
        };
        if let Some(ip) = address {
            let mut map = self.addresses();
            let held = map.entry(ip).or_default();
            if refusable && held.requests >= self.limits.max_requests_per_address {
                return Err(Refused::PerAddress);
            }
            held.requests += 1;
            request.address = Some(ip);
        }
        let before = self.requests.fetch_add(1, Ordering::AcqRel);
        if refusable && before >= self.limits.max_connections {
            self.requests.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Total);
        }
        request.global = true;
        Ok(request)
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
                crate::metrics::count(
                    crate::metrics::ProcessCount::ConnectionRefused,
                    refused.label(),
                );
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
        limits_with(total, per_address, pending, u32::MAX, u32::MAX)
    }

    fn limits_with(
        total: usize,
        per_address: u32,
        pending: usize,
        pending_per_address: u32,
        requests_per_address: u32,
    ) -> Limits {
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
            max_pending_per_address: pending_per_address,
            max_requests_per_address: requests_per_address,
            h2_max_streams: 32,
            grace_period: Duration::from_secs(1),
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
        assert!(counters
            .addresses()
            .values()
            .all(|held| held.pending == 0 && held.connections == 1));
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

    #[test]
    fn one_address_holds_only_its_share_of_the_connections_without_a_request() {
        let counters = Arc::new(Counters::new(limits_with(100, 50, 10, 3, 100), Vec::new()));
        let held: Vec<Slot> = (0..3)
            .map(|_| admit(&counters, "192.0.2.1").expect("pending"))
            .collect();
        assert_eq!(
            admit(&counters, "192.0.2.1").err(),
            Some(Refused::PendingPerAddress)
        );
        assert_eq!(
            counters.room_for(ip("192.0.2.1")),
            Err(Refused::PendingPerAddress)
        );
        assert!(
            admit(&counters, "192.0.2.2").is_ok(),
            "another address has places"
        );
        // A connection with its first request leaves its address's pending count.
        held[0]
            .connection
            .as_ref()
            .expect("pending")
            .header_done(false);
        let more = admit(&counters, "192.0.2.1").expect("a pending place again");
        drop((held, more));
        assert!(counters.addresses().is_empty());
        assert_eq!(counters.pending.load(Ordering::Acquire), 0);
    }

    #[test]
    fn requests_in_progress_are_capped_per_address_and_in_all() {
        let counters = Arc::new(Counters::new(limits_with(4, 50, 10, 10, 2), Vec::new()));
        let a = ip("192.0.2.1");
        let _connection = admit(&counters, "192.0.2.1").expect("connection");
        let one = counters.start_request(a, true).expect("first");
        let _two = counters.start_request(a, true).expect("second");
        assert_eq!(
            counters.start_request(a, true).err(),
            Some(Refused::PerAddress)
        );
        // An HTTP/1 request is counted, never refused.
        let _http1 = counters.start_request(a, false).expect("counted");
        drop(one);
        assert_eq!(
            counters.start_request(a, true).err(),
            Some(Refused::PerAddress),
            "the HTTP/1 request holds the place given back"
        );
        // All addresses together: at most `max_connections` (4).
        let b = ip("192.0.2.2");
        let _b1 = counters.start_request(b, true).expect("b1");
        let _b2 = counters.start_request(b, true).expect("b2");
        assert_eq!(
            counters.start_request(ip("192.0.2.3"), true).err(),
            Some(Refused::Total),
            "a third address, with none of its own, finds all four places taken"
        );
        assert_eq!(
            counters.start_request(None, true).err(),
            Some(Refused::Total),
            "a trusted proxy's requests count in all"
        );
        drop((_b1, _b2, _http1, _two, _connection));
        assert!(counters.addresses().is_empty());
        assert_eq!(counters.requests.load(Ordering::Acquire), 0);
    }
}
