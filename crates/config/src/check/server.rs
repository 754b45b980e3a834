//! `server`: threads, shutdown, and the connection guard's caps and deadlines.

use std::time::Duration;

use super::Checker;
use crate::{parse_duration, raw, Server};

/// Each client connection's read buffer under TLS (`server.read_buffer`): more than one TLS
/// record, so a read takes a whole record in one system call; pingora's own default (64 KiB)
/// is held by every idle keep-alive connection. 24 KiB, not 16.5: jemalloc's thread cache
/// keeps the 20 KiB size class (`tcache_max:20480`, .cargo/config.toml) for OpenSSL's record
/// buffers; a read buffer of that class would come from the cache already written and be
/// zeroed whole (20 KB more resident per idle connection), one of the next class comes from
/// fresh pages, of which only what reads fill is resident (benches/README.md, "allocator").
pub const DEFAULT_READ_BUFFER: usize = 24 * 1024;

/// Streams an HTTP/2 connection may have open at once, by default: a browser queues the rest
/// of a page's requests on the connection; pingora's own default is 100.
pub const DEFAULT_H2_MAX_STREAMS: u32 = 32;

/// The most `server.h2_max_streams` may be (the value pingora would take by itself, and then
/// some).
const MAX_H2_MAX_STREAMS: u32 = 1000;

/// Connections without a first request one address may hold, by default: 32, so that it takes
/// 32 addresses (IPv6 /64s) to fill the default `max_pending_connections` (1024); for a smaller
/// global cap a quarter of it (at least 1).
fn default_pending_per_address(max_pending: usize) -> u32 {
    u32::try_from(max_pending / 4).map_or(32, |quarter| quarter.clamp(1, 32))
}

impl Checker<'_> {
    pub(super) fn server(&mut self, raw: raw::Server) -> Option<Server> {
        let threads = raw
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        if threads == 0 {
            self.problem("server.threads", "must be at least 1");
            return None;
        }
        // pingora counts the grace period in whole seconds (and shuts its runtimes down at
        // once for less than one): a part of a second is rounded up, never down.
        let grace_period = match raw.grace_period {
            Some(ref g) => match parse_duration(g) {
                Ok(d) => Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0)),
                Err(message) => {
                    self.problem("server.grace_period", message);
                    return None;
                }
            },
            None => Duration::from_secs(10),
        };
        let mut timeout = |value: Option<String>, key: &str, default: u64| match self
            .duration(value.as_ref(), key)
        {
            Some(d) => Some(d),
            None if value.is_none() => Some(Duration::from_secs(default)),
            None => None,
        };
        let handshake_timeout = timeout(raw.handshake_timeout, "server.handshake_timeout", 10);
        let header_timeout = timeout(raw.header_timeout, "server.header_timeout", 10);
        let body_timeout = timeout(raw.body_timeout, "server.body_timeout", 10);
        let idle_timeout = timeout(raw.idle_timeout, "server.idle_timeout", 60);
        let body_min_rate = raw.body_min_rate.unwrap_or(16 * 1024);
        if body_min_rate == 0 {
            self.problem(
                "server.body_min_rate",
                "must be at least 1 (bytes per second)",
            );
        }
        let max_connections = raw.max_connections.unwrap_or(16 * 1024);
        if max_connections == 0 {
            self.problem("server.max_connections", "must be at least 1");
        }
        let max_connections_per_address = raw.max_connections_per_address.unwrap_or(256);
        if max_connections_per_address == 0 {
            self.problem("server.max_connections_per_address", "must be at least 1");
        }
        let max_pending_connections = raw.max_pending_connections.unwrap_or(1024);
        if max_pending_connections == 0 {
            self.problem("server.max_pending_connections", "must be at least 1");
        }
        let max_pending_connections_per_address = match raw.max_pending_connections_per_address {
            Some(0) => {
                self.problem(
                    "server.max_pending_connections_per_address",
                    "must be at least 1",
                );
                1
            }
            Some(n) if usize::try_from(n).map_or(true, |n| n >= max_pending_connections) => {
                self.problem(
                    "server.max_pending_connections_per_address",
                    format!(
                        "must be below server.max_pending_connections ({max_pending_connections}): \
                         else one address can take every place of connections without a request"
                    ),
                );
                n
            }
            Some(n) => n,
            None => default_pending_per_address(max_pending_connections),
        };
        let max_requests_per_address = raw
            .max_requests_per_address
            .unwrap_or(max_connections_per_address);
        if max_requests_per_address == 0 {
            self.problem("server.max_requests_per_address", "must be at least 1");
        }
        let h2_max_streams = raw.h2_max_streams.unwrap_or(DEFAULT_H2_MAX_STREAMS);
        if !(1..=MAX_H2_MAX_STREAMS).contains(&h2_max_streams) {
            self.problem(
                "server.h2_max_streams",
                format!("must be between 1 and {MAX_H2_MAX_STREAMS}"),
            );
        }
        let body_buffers = self.body_buffers(
            raw.body_buffer_memory.as_deref(),
            raw.body_buffers_per_connection,
        );
        let read_buffer = raw.read_buffer.unwrap_or(DEFAULT_READ_BUFFER);
        if read_buffer > 1024 * 1024 {
            self.problem(
                "server.read_buffer",
                "must be at most 1048576 bytes (it is held by every open connection)",
            );
        }
        Some(Server {
            threads,
            grace_period,
            handshake_timeout: handshake_timeout?,
            header_timeout: header_timeout?,
            body_timeout: body_timeout?,
            body_min_rate,
            idle_timeout: idle_timeout?,
            max_connections,
            max_connections_per_address,
            max_pending_connections,
            max_pending_connections_per_address,
            max_requests_per_address,
            h2_max_streams,
            read_buffer,
            body_buffers: body_buffers?,
        })
    }
}
