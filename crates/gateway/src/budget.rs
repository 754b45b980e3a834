//! One memory budget for every request body the gateway reads into memory instead of
//! streaming it: the login host's forms and back-channel logout tokens, and the forms kept
//! across a login (`crate::portal::keep_form`). A body reserves its bytes *before* it is read — its
//! declared length, or the most it may be — and gives them back when it is dropped ([`Hold`]).
//!
//! Three limits, each refused at once (the reason counted in
//! `prehod_body_buffers_refused_total`): the whole budget (`server.body_buffer_memory`); one
//! client address's share, a quarter of it (IPv6 by /64, as the rate limits count), so that
//! one client cannot take it all; and the bodies one connection holds at once
//! (`server.body_buffers_per_connection`), so that one HTTP/2 connection cannot open a hundred
//! streams that each hold one. Nothing here knows pingora: a connection is any shared value
//! that lives as long as it (`crate::body` uses its TLS digest).

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use prehod_config::BodyBuffers;

pub use crate::refusals::BodyRefused as Refused;

/// A connection, by identity: a value all its requests share, alive as long as it is. A
/// [`Hold`] keeps it alive, so no other connection can have its address meanwhile.
pub type ConnectionId = Arc<dyn Any + Send + Sync>;

fn connection_key(connection: &ConnectionId) -> usize {
    Arc::as_ptr(connection).cast::<()>() as usize
}

#[derive(Debug, Default)]
struct Counts {
    reserved: u64,
    by_address: HashMap<String, u64>,
    by_connection: HashMap<usize, usize>,
}

#[derive(Debug)]
pub struct BodyBudget {
    memory: u64,
    per_address: u64,
    per_connection: usize,
    counts: Mutex<Counts>,
}

/// Bytes reserved for one body, given back when dropped.
pub struct Hold {
    budget: Arc<BodyBudget>,
    bytes: u64,
    address: Option<String>,
    connection: Option<ConnectionId>,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("bytes", &self.bytes)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Hold {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl BodyBudget {
    pub fn new(settings: BodyBuffers) -> Self {
        Self {
            memory: settings.memory,
            per_address: settings.memory / 4,
            per_connection: settings.per_connection,
            counts: Mutex::default(),
        }
    }

    /// Reserves `bytes` for a body from `address` on `connection`, or says why not.
    pub fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        address: Option<IpAddr>,
        connection: Option<ConnectionId>,
    ) -> Result<Hold, Refused> {
        let address = address.map(crate::ratelimit::address_label);
        let refused = {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            let on_connection = connection
                .as_ref()
                .and_then(|c| counts.by_connection.get(&connection_key(c)))
                .copied()
                .unwrap_or(0);
            let of_address = address
                .as_ref()
                .and_then(|a| counts.by_address.get(a))
                .copied()
                .unwrap_or(0);
            if on_connection >= self.per_connection {
                Some(Refused::PerConnection)
            } else if of_address.saturating_add(bytes) > self.per_address {
                Some(Refused::PerAddress)
            } else if counts.reserved.saturating_add(bytes) > self.memory {
                Some(Refused::Memory)
            } else {
                counts.reserved += bytes;
                if let Some(a) = &address {
                    *counts.by_address.entry(a.clone()).or_insert(0) += bytes;
                }
                if let Some(c) = &connection {
                    *counts.by_connection.entry(connection_key(c)).or_insert(0) += 1;
                }
                crate::metrics::set_body_buffer_bytes(counts.reserved);
                None
            }
        };
        if let Some(refused) = refused {
            crate::metrics::count(
                crate::metrics::ProcessCount::BodyBufferRefused,
                refused.label(),
            );
            return Err(refused);
        }
        Ok(Hold {
            budget: self.clone(),
            bytes,
            address,
            connection,
        })
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserved
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut counts = self.budget.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.reserved = counts.reserved.saturating_sub(self.bytes);
        if let Some(a) = &self.address {
            if let Some(n) = counts.by_address.get_mut(a) {
                *n = n.saturating_sub(self.bytes);
                if *n == 0 {
                    counts.by_address.remove(a);
                }
            }
        }
        if let Some(c) = &self.connection {
            let key = connection_key(c);
            if let Some(n) = counts.by_connection.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.by_connection.remove(&key);
                }
            }
        }
        crate::metrics::set_body_buffer_bytes(counts.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    fn budget(memory: u64, per_connection: usize) -> Arc<BodyBudget> {
        Arc::new(BodyBudget::new(BodyBuffers {
            memory,
            per_connection,
        }))
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn the_whole_budget_and_each_addresses_quarter_are_never_exceeded() {
        let b = budget(256 * KIB, 100);
        // One address: a quarter, 64 KiB.
        let a = b.reserve(40 * KIB, ip("192.0.2.1"), None).expect("first");
        assert_eq!(
            b.reserve(30 * KIB, ip("192.0.2.1"), None).err(),
            Some(Refused::PerAddress)
        );
        let a2 = b
            .reserve(24 * KIB, ip("192.0.2.1"), None)
            .expect("up to the share");
        // Three more addresses fill the budget; a fifth finds nothing left.
        let others: Vec<Hold> = ["192.0.2.2", "192.0.2.3", "192.0.2.4"]
            .iter()
            .map(|a| b.reserve(64 * KIB, ip(a), None).expect("its share"))
            .collect();
        assert_eq!(b.reserved(), 256 * KIB);
        assert_eq!(
            b.reserve(1, ip("192.0.2.5"), None).err(),
            Some(Refused::Memory)
        );
        assert_eq!(b.reserve(1, None, None).err(), Some(Refused::Memory));
        // Given back when dropped: room again, and the address's share too.
        drop(a);
        assert_eq!(b.reserved(), 216 * KIB);
        let again = b
            .reserve(40 * KIB, ip("192.0.2.1"), None)
            .expect("room again");
        drop((a2, others, again));
        assert_eq!(b.reserved(), 0);
        assert!(b.counts.lock().unwrap().by_address.is_empty());
    }

    #[test]
    fn an_ipv6_client_is_one_address_per_64() {
        let b = budget(256 * KIB, 100);
        let _one = b
            .reserve(64 * KIB, ip("2001:db8:1:2::1"), None)
            .expect("first");
        assert_eq!(
            b.reserve(1, ip("2001:db8:1:2:ffff::9"), None).err(),
            Some(Refused::PerAddress),
            "same /64"
        );
        let _other = b
            .reserve(64 * KIB, ip("2001:db8:1:3::1"), None)
            .expect("another /64");
    }

    #[test]
    fn a_connection_holds_at_most_its_number_of_bodies() {
        let b = budget(16 * 1024 * KIB, 2);
        let conn: ConnectionId = Arc::new(());
        let other: ConnectionId = Arc::new(());
        let one = b.reserve(1, None, Some(conn.clone())).expect("one");
        let _two = b.reserve(1, None, Some(conn.clone())).expect("two");
        assert_eq!(
            b.reserve(1, None, Some(conn.clone())).err(),
            Some(Refused::PerConnection)
        );
        let _elsewhere = b.reserve(1, None, Some(other)).expect("another connection");
        drop(one);
        let _three = b.reserve(1, None, Some(conn)).expect("a place again");
    }

    #[test]
    fn a_refusal_reserves_nothing() {
        let b = budget(256 * KIB, 1);
        let conn: ConnectionId = Arc::new(());
        let _held = b
            .reserve(10, ip("192.0.2.1"), Some(conn.clone()))
            .expect("held");
        for _ in 0..100 {
            assert!(b.reserve(10, ip("192.0.2.1"), Some(conn.clone())).is_err());
            assert!(b.reserve(100 * KIB, ip("192.0.2.9"), None).is_err());
        }
        assert_eq!(b.reserved(), 10);
    }
}
