//! Session cache memory: fills the gateway's session cache (`Sessions`, as the gateway builds
//! it, with jemalloc as in the binary) with 1 M sessions and reports the bytes each takes (RSS
//! growth over the cookies this bench itself holds) and the look-up time at that size.
//!
//! `cargo bench --bench sessions` (env: SESSIONS, default 1 000 000; SESSIONS_ID_TOKEN=1 to
//! give each session an 850-byte id token, as a Rekono login keeps for RP-initiated logout —
//! in the login host's cookie, or the one cookie of `cookie_scope: parent_domain`; the cache
//! leaves it out). Look-ups as the portal request path makes them
//! (`validate_on_portal`). SESSIONS_PREPARED=1: then what a session keeps once it has reached
//! a portal — its identity header values and one assertion (`Session::prepared`, held by the
//! bounded set of sessions in use, `HOT_SESSIONS`), and the assertion in the signer's cache
//! (as many) — as more bytes per session.

use std::time::{Duration, Instant};

use prehod_identity::seal::Sealer;
use prehod_identity::session::{Method, Session, Sessions};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let id_token = std::env::var("SESSIONS_ID_TOKEN").is_ok_and(|v| v == "1");
    let keys = [[7u8; 32]];
    // As the gateway builds it, with room for all of them (the defaults, 100 000 entries and
    // 64 MiB, would evict).
    let sessions = Sessions::with_memory_bound(
        Sealer::new(&keys),
        Duration::from_secs(1800),
        Duration::from_secs(36_000),
        n as u64 * 2,
        64 * 1024 * 1024 * 1024,
    );
    let now = prehod_identity::unix_now();
    let token = "e".repeat(850);
    let started = Instant::now();
    let mut cookies = Vec::with_capacity(n);
    for i in 0..n {
        let (_, cookie) = sessions
            .issue(
                Session {
                    name: "Janez Novak".into(),
                    email: format!("user{i}@rekono.localhost"),
                    amr: vec!["pwd".into(), "otp".into()],
                    auth_time: now,
                    op_sid: Some(format!("op-{i:016}").into()),
                    id_token: id_token.then(|| token.clone()),
                    host: Some("bips.bankart.localhost".into()),
                    ..Session::new(Method::Rekono, format!("rekono-{i:08}"), 20)
                },
                now,
            )
            .expect("issue");
        cookies.push(cookie);
    }
    let cookie_len = cookies.first().map_or(0, String::len);
    println!(
        "{n} sessions issued in {:.1} s; cookie {cookie_len} bytes{}; a Session is {} bytes (+16 in its Arc)",
        started.elapsed().as_secs_f64(),
        if id_token {
            " (with an 850-byte id token)"
        } else {
            ""
        },
        std::mem::size_of::<Session>()
    );
    let before = rss_kib();
    let started = Instant::now();
    for c in &cookies {
        sessions.validate_on_portal(c, now).expect("valid");
    }
    let fill = started.elapsed();
    let cached = sessions.cached();
    let after = rss_kib();
    assert_eq!(cached, n as u64, "every session is cached");
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        "cache filled: {cached} sessions in {:.1} s (a miss: open the seal and parse, {:.1} µs each); RSS {before} → {after} KiB: {per:.0} bytes per cached session ({:.2} GiB for 1 M)",
        fill.as_secs_f64(),
        fill.as_secs_f64() * 1e6 / n as f64,
        per * 1e6 / 1024.0 / 1024.0 / 1024.0
    );
    // Look-ups at that size: cache hits in a scattered order (a stride through the cookies).
    let lookups = n.min(2_000_000);
    let stride = 7919;
    let started = Instant::now();
    let mut i = 0usize;
    for _ in 0..lookups {
        i = (i + stride) % n;
        let c = cookies.get(i).expect("cookie");
        std::hint::black_box(sessions.validate_on_portal(c, now).expect("valid"));
    }
    let hit = started.elapsed();
    println!(
        "look-up (validate_on_portal, as a portal request; cache hit) with {cached} cached: {:.0} ns each ({lookups} look-ups)",
        hit.as_secs_f64() * 1e9 / lookups as f64
    );
    if std::env::var("SESSIONS_PREPARED").is_ok_and(|v| v == "1") {
        prepare_each(&sessions, &cookies, now);
    }
}

/// Each cached session as its first request to a portal leaves it: its identity header values
/// and its assertion for one audience made and kept (and the assertion in the signer's cache).
fn prepare_each(sessions: &Sessions, cookies: &[String], now: u64) {
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("P-256");
    let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("key"))
        .expect("key");
    let pem = key.private_key_to_pem_pkcs8().expect("pem");
    let signer =
        prehod_identity::assertion::Signer::new(&pem, "https://login".into(), 60).expect("signer");
    let per_session = |before: u64, after: u64| {
        (after.saturating_sub(before)) as f64 * 1024.0 / cookies.len() as f64
    };
    let before = rss_kib();
    for c in cookies {
        let s = sessions.validate_on_portal(c, now).expect("valid").session;
        prehod_gateway::identity_headers::values(&s).expect("values");
    }
    let values = rss_kib();
    let started = Instant::now();
    for c in cookies {
        let s = sessions.validate_on_portal(c, now).expect("valid").session;
        signer
            .sign_cached(&s, "https://bips.bankart.localhost", now)
            .expect("assertion");
    }
    let after = rss_kib();
    println!(
        "prepared: {} sessions; RSS {before} → {values} KiB for the header values: {:.0} bytes more per session; → {after} KiB for an assertion each ({:.1} s to sign): {:.0} more (the ~600-byte JWT kept with the session and in the signer's cache, both for the {} sessions in use at the most)",
        cookies.len(),
        per_session(before, values),
        started.elapsed().as_secs_f64(),
        per_session(values, after),
        prehod_identity::session::HOT_SESSIONS,
    );
}
