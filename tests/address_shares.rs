//! What one client address may hold of what everyone needs (review 17, an attacker's review
//! of issue 17): upstream connections and memory through the streams of a few HTTP/2
//! connections, the places of connections without a first request, the admin listener's
//! places. Each test is an attack that worked against the release build, run against the real
//! binary on loopback from 127.0.0.1 while 127.0.0.2 is served; each failed before the fix
//! (`server.h2_max_streams`, `server.max_requests_per_address`,
//! `server.max_pending_connections_per_address`, the admin listener's per-address cap). The
//! reviewer's scripts that found them by hand are in `tests/address_shares/`.

use std::time::{Duration, Instant};

use prehod_test_support::clients::*;
use prehod_test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The gateway's open file descriptors now.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// An HPACK block for `GET /` on `authority` (`:method GET`, `:scheme https`, `:path /`
/// indexed, `:authority` a literal).
fn get_block(authority: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x87, 0x84, 0x01];
    block.push(u8::try_from(authority.len()).expect("a short authority"));
    block.extend_from_slice(authority.as_bytes());
    block
}

/// One HTTP/2 connection from 127.0.0.1 that opens `streams` GET streams at once and never
/// lets a byte of any response body through: SETTINGS_INITIAL_WINDOW_SIZE = 0, no
/// WINDOW_UPDATE ever. It acknowledges the server's SETTINGS and reads everything else, and
/// is held open until the task is dropped.
async fn zero_window_streams(gw_https: std::net::SocketAddr, ca: std::path::PathBuf, streams: u32) {
    zero_window_streams_to(gw_https, ca, streams, host("acq")).await;
}

/// [`zero_window_streams`] to the host `h` (SNI and `:authority`).
async fn zero_window_streams_to(
    gw_https: std::net::SocketAddr,
    ca: std::path::PathBuf,
    streams: u32,
    h: String,
) {
    let connector = connector(&ca, H2);
    let Ok(mut tls) = tls_from(&connector, ip(ATTACKER), gw_https, &h).await else {
        return;
    };
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // SETTINGS: ENABLE_PUSH = 0, INITIAL_WINDOW_SIZE = 0.
    let mut settings = Vec::new();
    settings.extend_from_slice(&2u16.to_be_bytes());
    settings.extend_from_slice(&0u32.to_be_bytes());
    settings.extend_from_slice(&4u16.to_be_bytes());
    settings.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&frame(4, 0, 0, &settings));
    for i in 0..streams {
        // END_STREAM | END_HEADERS
        out.extend_from_slice(&frame(1, 0x5, 1 + 2 * i, &get_block(&h)));
    }
    if tls.write_all(&out).await.is_err() {
        return;
    }
    loop {
        let mut head = [0u8; 9];
        if tls.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        if tls.read_exact(&mut payload).await.is_err() {
            return;
        }
        if head[3] == 4 && head[4] & 1 == 0 && tls.write_all(&frame(4, 1, 0, &[])).await.is_err() {
            return;
        }
    }
}

/// The bystander's `GET /` on a new HTTPS connection from 127.0.0.2: its status, or `None`
/// when no answer came within a second.
async fn bystander(gw: &Gateway) -> Option<u16> {
    let connector = connector(&gw.ca, H1);
    tokio::time::timeout(Duration::from_secs(1), async {
        let mut tls = tls_from(&connector, ip(BYSTANDER), gw.https, &host("acq"))
            .await
            .ok()?;
        get(&mut tls, &host("acq"), "/bystander").await.ok()
    })
    .await
    .ok()
    .flatten()
}

/// Finding 1: the caps count client connections, and SECURITY.md/README say "each client
/// connection may hold an upstream one" — but an HTTP/2 connection holds up to 100 (pingora's
/// SETTINGS_MAX_CONCURRENT_STREAMS), one per stream whose response the client never lets
/// through (window 0): each stream holds its upstream connection for `body_timeout` (10 s)
/// and is then replaced. Eight connections from one address — far under the per-address cap
/// — hold 800 upstream connections: with the open-file limit at 512 the gateway runs out of
/// file descriptors and a second client address gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_of_one_address_cannot_hold_an_upstream_connection_each() {
    enough_open_files(4096);
    let pki = Pki::new();
    let (mut setup, _portals) = six_demo_portals().await;
    setup.open_files = Some(512);
    setup.server_extra = "max_connections_per_address: 16\n".into();
    let gw = Gateway::start(&pki, &setup);
    assert_eq!(
        bystander(&gw).await,
        Some(200),
        "the bystander before the attack"
    );
    let idle_fds = open_fds(gw.pid());

    let mut attackers = Vec::new();
    for _ in 0..8 {
        attackers.push(tokio::spawn(zero_window_streams(
            gw.https,
            gw.ca.clone(),
            100,
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // For the next six seconds (within the 10 s body_timeout: no stream has ended yet).
    let started = Instant::now();
    let mut answers = Vec::new();
    let mut peak_fds = 0;
    while started.elapsed() < Duration::from_secs(6) {
        peak_fds = peak_fds.max(open_fds(gw.pid()));
        answers.push(bystander(&gw).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for a in &attackers {
        a.abort();
    }
    let refused = answers.iter().filter(|a| **a != Some(200)).count();
    eprintln!("open files: {idle_fds} idle, {peak_fds} at the peak; answers {answers:?}");
    assert!(
        refused == 0 && peak_fds < idle_fds + 2 * 16 + 64,
        "one address with 8 HTTP/2 connections (cap 16): the gateway's open files went from \
         {idle_fds} to {peak_fds} (about one upstream connection per stream), and {refused} of \
         the bystander's {} requests got no 200 within a second: {answers:?}",
        answers.len()
    );
    let refused = metric(
        &gw.metrics(),
        "prehod_requests_refused_total{reason=\"per_address\"}",
    );
    assert!(
        refused >= 100.0,
        "the streams over the address's share were refused (REFUSED_STREAM): {refused}"
    );
}

/// The server's SETTINGS_MAX_CONCURRENT_STREAMS on a new HTTP/2 connection from 127.0.0.1.
async fn advertised_max_streams(gw: &Gateway) -> Option<u32> {
    let connector = connector(&gw.ca, H2);
    let mut tls = tls_from(&connector, ip(ATTACKER), gw.https, &host("acq"))
        .await
        .ok()?;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&frame(4, 0, 0, &[]));
    tls.write_all(&out).await.ok()?;
    let mut head = [0u8; 9];
    tls.read_exact(&mut head).await.ok()?;
    assert_eq!(head[3], 4, "the server's first frame is its SETTINGS");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    tls.read_exact(&mut payload).await.ok()?;
    payload.chunks_exact(6).find_map(|s| {
        (u16::from_be_bytes([s[0], s[1]]) == 3)
            .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
    })
}

/// Finding 1, the first half of its fix: an HTTP/2 connection may open `server.h2_max_streams`
/// streams at once (32 by default, pingora's 100 before), and says so in its SETTINGS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_offer_h2_max_streams_concurrent_streams() {
    let pki = Pki::new();
    let (mut setup, _portals) = six_demo_portals().await;
    let gw = Gateway::start(&pki, &setup);
    assert_eq!(advertised_max_streams(&gw).await, Some(32), "the default");
    drop(gw);
    setup.server_extra = "h2_max_streams: 5\n".into();
    let gw = Gateway::start(&pki, &setup);
    assert_eq!(advertised_max_streams(&gw).await, Some(5), "as configured");
}

/// Finding 2: the per-address cap (256) against the global cap on connections without a
/// first request (1024), at their defaults: four client addresses — four IPv6 /64s, which
/// any home connection with a /56 has 256 of — fill `max_pending_connections` with TCP
/// connections that never send a ClientHello, and every other client is then refused at
/// the accept, for as long as the four reconnect every `handshake_timeout`. SECURITY.md's
/// known gap speaks of "many addresses — a botnet, or an IPv6 /48".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_addresses_cannot_keep_everyone_else_out_with_the_default_caps() {
    enough_open_files(4096);
    let pki = Pki::new();
    let (setup, _portals) = six_demo_portals().await;
    let gw = Gateway::start(&pki, &setup);
    assert_eq!(
        bystander(&gw).await,
        Some(200),
        "the bystander before the attack"
    );

    let mut silent = Vec::new();
    for from in ["127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        for _ in 0..256 {
            if let Ok(c) = tcp_from(ip(from), gw.https).await {
                silent.push(c);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(bystander(&gw).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(silent);
    let refused = metric(
        &gw.metrics(),
        "prehod_connections_refused_total{reason=\"pending_per_address\"}",
    );
    assert!(
        refused >= 4.0 * 200.0,
        "each address's connections beyond its 32 without a request were refused: {refused}"
    );
    assert!(
        answers.iter().all(|a| *a == Some(200)),
        "four addresses with 256 silent connections each (the per-address cap): a fifth \
         address got {answers:?}"
    );
}

/// The gateway's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Finding 3: without a session, one address holds memory through HTTP/2 streams whose
/// answer (here the gateway's own 421 page, 1.2 KB) it never lets through: each stream keeps
/// its task, its pingora session and its request for `body_timeout` (10 s), about 24 KB each,
/// and is replaced at once. 64 connections (a quarter of the per-address cap) × 100 streams,
/// one HEADERS frame of a few dozen bytes each, took the release build from 68 to 227 MB;
/// the whole cap would be about 600 MB. No budget counts it (the body budget counts request
/// bodies only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_with_a_closed_window_do_not_hold_memory_without_bound() {
    enough_open_files(4096);
    let pki = Pki::new();
    let (setup, _portals) = six_demo_portals().await;
    let gw = Gateway::start(&pki, &setup);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(gw.pid());
    let mut attackers = Vec::new();
    for _ in 0..64 {
        attackers.push(tokio::spawn(zero_window_streams_to(
            gw.https,
            gw.ca.clone(),
            100,
            host("nope"),
        )));
    }
    let mut peak = before;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak = peak.max(rss_kib(gw.pid()));
    }
    for a in &attackers {
        a.abort();
    }
    eprintln!("memory: {before} KiB before, {peak} KiB at the peak");
    assert!(
        peak < before + 48 * 1024,
        "64 HTTP/2 connections from one address, 100 streams each with the window closed, \
         no session: the gateway's memory went from {before} KiB to {peak} KiB"
    );
}

/// Finding 4: the admin listener's caps are the public ones with the total lowered to 256 —
/// so its per-address cap (256) is its whole capacity: one address holding 256 silent
/// connections (renewed every `header_timeout`) leaves `/healthz` and `/metrics` unanswered
/// for everyone, the kubelet's liveness probe included (a restart of every replica it
/// reaches). It needs to reach the admin listener (a private address, but any pod of the
/// cluster may).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_place_of_the_admin_listener() {
    enough_open_files(4096);
    let pki = Pki::new();
    let (setup, _portals) = six_demo_portals().await;
    let gw = Gateway::start(&pki, &setup);
    let mut silent = Vec::new();
    for _ in 0..256 {
        if let Ok(c) = tcp_from(ip(ATTACKER), gw.admin).await {
            silent.push(c);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe = tokio::time::timeout(Duration::from_secs(2), async {
        let mut c = tcp_from(ip(BYSTANDER), gw.admin).await.ok()?;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")
            .await
            .ok()?;
        read_response(&mut c).await.ok()
    })
    .await
    .ok()
    .flatten();
    drop(silent);
    assert_eq!(
        probe,
        Some(200),
        "/healthz from a second address while one address holds 256 admin connections"
    );
    // The metrics are read from the attacker's address (127.0.0.1): poll until the gateway has
    // seen its dropped connections close and its share has room again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        if let Some((200, body)) = http_get(gw.admin, "/metrics") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics never answered after the attack"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let refused = metric(
        &page,
        "prehod_connections_refused_total{reason=\"per_address\"}",
    );
    assert!(
        refused >= 200.0,
        "the admin connections of one address beyond its 16 were refused: {refused}"
    );
}
