//! The connection guard, one attack of issue 17 (items 1–4) per test: every listener caps
//! and times its connections from the TCP accept to the close — the plain-HTTP redirect and
//! admin listeners too, the TLS handshake too, every request of a connection, the wait
//! between requests — and only a connection that was really upgraded (101) leaves the HTTP
//! deadlines. Each test is the attack, run against the real binary from 127.0.0.1, while a
//! second client (127.0.0.2) is served.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use prehod_test_support::clients::*;
use prehod_test_support::*;
use tokio::io::AsyncWriteExt;

/// Closes, in order, of `conns`: each `Some(after how long)`, or `None` if still open after
/// `limit` (all are waited for at once).
async fn closes<S: tokio::io::AsyncRead + Unpin>(
    conns: &mut [S],
    limit: Duration,
) -> Vec<Option<Duration>> {
    join_all(conns.iter_mut().map(|c| closed_within(c, limit))).await
}

/// Waits up to 10 s for `conns` to be closed; asserts that at least `over_cap` of them were
/// closed at once (within 1 s: `capped`) and every one within 5 s (`cut`, by a 2 s deadline).
async fn capped_then_cut<S: tokio::io::AsyncRead + Unpin>(
    conns: &mut [S],
    over_cap: usize,
    capped: &str,
    cut: &str,
) {
    let closed = closes(conns, Duration::from_secs(10)).await;
    let at_once = closed
        .iter()
        .filter(|c| within(**c, Duration::ZERO, Duration::from_secs(1)))
        .count();
    assert!(at_once >= over_cap, "{capped}: {closed:?}");
    assert!(
        closed
            .iter()
            .all(|c| within(*c, Duration::ZERO, Duration::from_secs(5))),
        "{cut}: {closed:?}"
    );
}

fn within(d: Option<Duration>, lo: Duration, hi: Duration) -> bool {
    d.is_some_and(|d| (lo..hi).contains(&d))
}

/// The bystander's HTTPS request on a new connection from 127.0.0.2.
async fn bystander_get(gw: &Gateway) -> u16 {
    let connector = connector(&gw.ca, H1);
    let mut tls = tls_from(&connector, ip(BYSTANDER), gw.https, &host("acq"))
        .await
        .expect("the bystander's handshake");
    get(&mut tls, &host("acq"), "/bystander")
        .await
        .expect("the bystander's answer")
}

/// Item 1: the plain-HTTP redirect listener had no slow-client defences at all (no header
/// deadline, no cap per address: pingora times each read at 60 s), and neither had the admin
/// listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_http_listeners_cut_slow_headers_and_cap_each_address() {
    let (_pki, gw, _portals) = demo_gateway(|setup| {
        setup.http_redirect = true;
        setup.server_extra = "header_timeout: 2s\nmax_connections_per_address: 20\n".into();
    })
    .await;
    let http = gw.http.expect("the redirect listener");
    let attacker = ip(ATTACKER);

    // Thirty unfinished headers from one address.
    let mut partial = Vec::new();
    for _ in 0..30 {
        let mut c = tcp_from(attacker, http).await.expect("connect");
        let _ = c
            .write_all(b"GET / HTTP/1.1\r\nHost: acq.bankart.localhost\r\n")
            .await;
        partial.push(c);
    }
    // One header line every second, on the redirect listener and on the admin listener
    // (from a third address: the first is at its cap).
    let trickle = |addr| async move {
        let mut c = tcp_from(ip("127.0.0.3"), addr).await.expect("connect");
        let started = Instant::now();
        let mut n = 0;
        let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: admin\r\n").await;
        loop {
            if closed_within(&mut c, Duration::from_secs(1))
                .await
                .is_some()
            {
                return Some(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(15) {
                return None;
            }
            n += 1;
            let _ = c.write_all(format!("X-Slow-{n}: 1\r\n").as_bytes()).await;
        }
    };
    let trickled = tokio::spawn(trickle(http));
    let trickled_admin = tokio::spawn(trickle(gw.admin));

    // Meanwhile another address is redirected.
    let mut by = tcp_from(ip(BYSTANDER), http).await.expect("connect");
    by.write_all(b"GET /x HTTP/1.1\r\nHost: acq.bankart.localhost\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_response(&mut by).await.expect("answer"), 308);

    capped_then_cut(
        &mut partial,
        10,
        "the ten connections over the cap of 20 are closed at once",
        "every unfinished header is cut by the 2 s deadline",
    )
    .await;
    for (what, t) in [
        ("redirect", trickled.await.expect("join")),
        ("admin", trickled_admin.await.expect("join")),
    ] {
        assert!(
            within(t, Duration::from_millis(1500), Duration::from_secs(6)),
            "a header sent a line a second on the {what} listener is cut by the 2 s deadline: {t:?}"
        );
    }
    let page = gw.metrics();
    assert!(
        metric(&page, "prehod_slow_clients_total{phase=\"header\"}") >= 20.0,
        "{page}"
    );
    assert!(
        metric(
            &page,
            "prehod_connections_refused_total{reason=\"per_address\"}"
        ) >= 10.0,
        "{page}"
    );
}

/// Item 2: connections still in the TLS handshake were neither capped nor counted, and had
/// pingora's fixed 60 s to finish it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_timed_from_the_tcp_accept_before_any_handshake() {
    let (_pki, gw, _portals) = demo_gateway(|setup| {
        setup.server_extra = "handshake_timeout: 2s\nmax_connections_per_address: 20\n".into();
    })
    .await;
    let attacker = ip(ATTACKER);

    // Thirty connections that never send a ClientHello, and one that stops in its middle.
    let mut silent = Vec::new();
    for _ in 0..30 {
        silent.push(tcp_from(attacker, gw.https).await.expect("connect"));
    }
    let mut half = tcp_from(attacker, gw.https).await.expect("connect");
    let _ = half
        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .await;
    silent.push(half);

    // Another address is served meanwhile.
    assert_eq!(bystander_get(&gw).await, 200);

    capped_then_cut(
        &mut silent,
        11,
        "the connections over the cap of 20 are refused before any handshake",
        "a handshake that does not finish within 2 s is cut",
    )
    .await;
    let page = gw.metrics();
    assert!(
        metric(&page, "prehod_slow_clients_total{phase=\"handshake\"}") >= 15.0,
        "{page}"
    );
    assert!(
        metric(
            &page,
            "prehod_connections_refused_total{reason=\"per_address\"}"
        ) >= 11.0,
        "{page}"
    );
}

/// A request `head` on a new HTTP/1.1 TLS connection, then one more `trickle` every
/// `every`: how long until the gateway closed it (`None`: open after 12 s).
async fn trickled(gw: &Gateway, head: String, every: Duration, trickle: &str) -> Option<Duration> {
    let connector = connector(&gw.ca, H1);
    let mut tls = tls_from(&connector, ip(ATTACKER), gw.https, &host("acq"))
        .await
        .expect("handshake");
    tls.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut n = 0;
    loop {
        if closed_within(&mut tls, every).await.is_some() {
            return Some(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(12) {
            return None;
        }
        n += 1;
        let _ = tls
            .write_all(trickle.replace("{n}", &n.to_string()).as_bytes())
            .await;
    }
}

/// Item 3: any `Upgrade:` request header switched the header deadline and the body-rate limit
/// off for the rest of the connection, whether or not the answer was 101.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_header_without_a_101_keeps_every_deadline() {
    let (_pki, gw, _portals) = demo_gateway(|setup| {
        setup.server_extra = "header_timeout: 2s\nbody_timeout: 2s\nbody_min_rate: 1000\n".into();
    })
    .await;
    let h = host("acq");

    // A POST that asks for a WebSocket and sends its body a byte every half second.
    let body = trickled(
        &gw,
        format!(
            "POST / HTTP/1.1\r\nHost: {h}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Content-Length: 100000\r\n\r\n"
        ),
        Duration::from_millis(500),
        "x",
    );
    // A GET with `Upgrade: foo` (answered 200, not 101), then a second request whose header
    // comes a line a second.
    let header = async {
        let connector = connector(&gw.ca, H1);
        let mut tls = tls_from(&connector, ip(ATTACKER), gw.https, &h)
            .await
            .expect("handshake");
        tls.write_all(
            format!("GET / HTTP/1.1\r\nHost: {h}\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
        assert_eq!(read_response(&mut tls).await.expect("answer"), 200);
        tls.write_all(format!("GET / HTTP/1.1\r\nHost: {h}\r\n").as_bytes())
            .await
            .expect("write");
        let started = Instant::now();
        let mut n = 0;
        loop {
            if closed_within(&mut tls, Duration::from_secs(1))
                .await
                .is_some()
            {
                return Some(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(12) {
                return None;
            }
            n += 1;
            let _ = tls.write_all(format!("X-Slow-{n}: 1\r\n").as_bytes()).await;
        }
    };
    let (body, header) = tokio::join!(body, header);
    assert!(
        within(body, Duration::from_millis(1500), Duration::from_secs(6)),
        "a POST asking for an upgrade keeps its body's minimum rate: cut after {body:?}"
    );
    assert!(
        within(header, Duration::from_millis(1500), Duration::from_secs(6)),
        "the request after a refused upgrade keeps its header deadline: cut after {header:?}"
    );
    assert_eq!(bystander_get(&gw).await, 200);
}

/// Item 3, the other side: a connection that really was upgraded (101) is a WebSocket, not an
/// HTTP request: it outlives the header, body and idle deadlines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_websocket_upgrade_outlives_the_http_deadlines() {
    use tokio::io::AsyncReadExt;
    let (_pki, gw, _portals) = demo_gateway(|setup| {
        setup.server_extra =
            "header_timeout: 1s\nbody_timeout: 1s\nbody_min_rate: 1000\nidle_timeout: 1s\n".into();
    })
    .await;
    let h = host("bws");
    let connector = connector(&gw.ca, H1);
    let mut tls = tls_from(&connector, ip(ATTACKER), gw.https, &h)
        .await
        .expect("handshake");
    tls.write_all(
        format!(
            "GET /__demo/ws HTTP/1.1\r\nHost: {h}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).await.expect("read head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // Quiet for three times every deadline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let message = b"still here";
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | message.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(message.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tls.write_all(&frame).await.expect("send a frame");
    let mut reply = vec![0u8; 2 + message.len()];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut reply))
        .await
        .expect("an echo in time")
        .expect("the echo");
    assert_eq!(&reply[2..], message);
}

/// Item 4: idle connections never timed out (HTTP/1.1 keep-alive after a request, HTTP/2
/// after a stream), though SECURITY.md said an idle timeout applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_over_http1_and_http2() {
    let (_pki, gw, _portals) = demo_gateway(|setup| {
        setup.server_extra = "idle_timeout: 2s\n".into();
    })
    .await;
    let h = host("acq");
    let attacker = ip(ATTACKER);

    let h1 = async {
        let connector = connector(&gw.ca, H1);
        let mut tls = tls_from(&connector, attacker, gw.https, &h)
            .await
            .expect("handshake");
        // Requests a second apart keep the connection: the idle time starts again each time.
        for _ in 0..4 {
            assert_eq!(get(&mut tls, &h, "/").await.expect("answer"), 200);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(get(&mut tls, &h, "/").await.expect("answer"), 200);
        closed_within(&mut tls, Duration::from_secs(10)).await
    };
    let h2 = async {
        let connector = connector(&gw.ca, H2);
        let mut tls = tls_from(&connector, attacker, gw.https, &h)
            .await
            .expect("handshake");
        tls.write_all(&h2_get(&h)).await.expect("write");
        assert!(h2_read_response(&mut tls).await.expect("answer"), "200");
        closed_within(&mut tls, Duration::from_secs(10)).await
    };
    let (h1, h2) = tokio::join!(h1, h2);
    assert!(
        within(h1, Duration::from_millis(1500), Duration::from_secs(6)),
        "an idle HTTP/1.1 keep-alive connection is closed after 2 s: {h1:?}"
    );
    assert!(
        within(h2, Duration::from_millis(1500), Duration::from_secs(6)),
        "an idle HTTP/2 connection is closed after 2 s: {h2:?}"
    );
    let page = gw.metrics();
    assert!(
        metric(&page, "prehod_slow_clients_total{phase=\"idle\"}") >= 2.0,
        "{page}"
    );
}

/// The global cap: beyond `server.max_connections` every new connection is refused at once,
/// whoever it comes from, until places are given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_cap_refuses_connections_beyond_it_until_places_are_given_back() {
    let (_pki, gw, _portals) = demo_gateway(|setup| {
        setup.server_extra = "max_connections: 4\n".into();
    })
    .await;
    // Four connections through their handshake: admitted, and held.
    let connector = connector(&gw.ca, H1);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            tls_from(&connector, ip(ATTACKER), gw.https, &host("acq"))
                .await
                .expect("handshake"),
        );
    }
    let mut refused = tcp_from(ip(BYSTANDER), gw.https).await.expect("connect");
    assert!(
        within(
            closed_within(&mut refused, Duration::from_secs(5)).await,
            Duration::ZERO,
            Duration::from_secs(1)
        ),
        "the fifth connection is closed at once"
    );
    assert!(
        metric(
            &gw.metrics(),
            "prehod_connections_refused_total{reason=\"total\"}"
        ) >= 1.0
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut tls) = tls_from(&connector, ip(BYSTANDER), gw.https, &host("acq")).await {
            if get(&mut tls, &host("acq"), "/").await.ok() == Some(200) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the places were not given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 20 ("the floor"): pingora wrote a response's header and its body in separate TLS
/// records (two `SSL_write`s, each an encryption and a record buffer), where nginx sends a
/// small response in one. The guard's stream holds writes until pingora flushes: a small
/// response is one record. Counted on the wire, under the TLS layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_response_leaves_in_one_tls_record() {
    let (_pki, gw, _portals) = demo_gateway(|_| {}).await;
    let h = host("acq");
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tcp = tcp_from(ip(ATTACKER), gw.https).await.expect("connect");
    let ssl = connector(&gw.ca, H1)
        .configure()
        .and_then(|c| c.into_ssl(&h))
        .expect("ssl");
    let mut tls = tokio_openssl::SslStream::new(
        ssl,
        Recorded {
            inner: tcp,
            received: received.clone(),
        },
    )
    .expect("tls");
    std::pin::Pin::new(&mut tls)
        .connect()
        .await
        .expect("handshake");
    // The first answers also carry the session tickets; the one after them is counted.
    for _ in 0..2 {
        assert_eq!(get(&mut tls, &h, "/").await.expect("answer"), 200);
    }
    let start = received.lock().expect("log").len();
    assert_eq!(get(&mut tls, &h, "/").await.expect("answer"), 200);
    let wire = received.lock().expect("log")[start..].to_vec();
    let mut records = Vec::new();
    let mut at = 0;
    while at + 5 <= wire.len() {
        let length = usize::from(u16::from_be_bytes([wire[at + 3], wire[at + 4]]));
        records.push((wire[at], length));
        at += 5 + length;
    }
    assert_eq!(at, wire.len(), "whole records: {records:?}");
    assert_eq!(
        records.len(),
        1,
        "a demo page (header and a ~1 KB body) in one TLS record: {records:?}"
    );
}

/// A gateway whose `acq` portal is `upstream`, and an HTTP/1.1 TLS connection to it (keep the
/// gateway: dropping it stops it).
async fn acq_over_tls_to(
    upstream: std::net::SocketAddr,
) -> (
    (Pki, Gateway, Vec<tokio::task::JoinHandle<()>>),
    tokio_openssl::SslStream<tokio::net::TcpStream>,
    String,
) {
    let started = demo_gateway(|setup| {
        setup.upstreams[0].1 = vec![format!("http://{upstream}")];
    })
    .await;
    let h = host("acq");
    let tls = tls_from(
        &connector(&started.1.ca, H1),
        ip(ATTACKER),
        started.1.https,
        &h,
    )
    .await
    .expect("handshake");
    (started, tls, h)
}

/// An upstream whose requests for a path starting `/script` are handed, with their header, to
/// `script`; everything else (health checks) gets an empty 200 and a close.
async fn scripted_upstream<F, Fut>(script: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let script = std::sync::Arc::new(script);
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if c.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head).into_owned();
                if line
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|p| p.starts_with("/script"))
                {
                    script(c, head).await;
                } else {
                    let _ = c
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                }
            });
        }
    });
    address
}

/// What the coalescing must not do: hold a streamed (chunked) response's chunk until the
/// upstream sends more. pingora flushes after every chunk; the first must reach the client
/// while the upstream still waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_chunk_reaches_the_client_before_the_response_ends() {
    use tokio::io::AsyncReadExt;
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel::<()>();
    let seen = std::sync::Arc::new(tokio::sync::Mutex::new(Some(seen_rx)));
    let upstream = scripted_upstream(move |mut c, _| {
        let seen = seen.clone();
        async move {
            c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
                .await
                .expect("first chunk");
            // The rest only once the client saw the first chunk (or after 5 s).
            if let Some(seen_rx) = seen.lock().await.take() {
                let _ = tokio::time::timeout(Duration::from_secs(5), seen_rx).await;
            }
            let _ = c.write_all(b"4\r\nlast\r\n0\r\n\r\n").await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let (_gw, mut tls, h) = acq_over_tls_to(upstream).await;
    tls.write_all(format!("GET /script/stream HTTP/1.1\r\nHost: {h}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_first = async {
        while !String::from_utf8_lossy(&got).contains("first") {
            let n = tls.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
    };
    let in_time = tokio::time::timeout(Duration::from_secs(3), read_first).await;
    assert!(
        in_time.is_ok(),
        "the first chunk was held until the response ended: {}",
        String::from_utf8_lossy(&got)
    );
    let _ = seen_tx.send(());
}

/// A TCP stream that keeps a copy of every byte it reads.
struct Recorded {
    inner: tokio::net::TcpStream,
    received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl tokio::io::AsyncRead for Recorded {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_ready() {
            let new = buf.filled()[before..].to_vec();
            self.received.lock().expect("log").extend_from_slice(&new);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Recorded {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// The guard's stream holds small writes until pingora flushes (one record for a response's
// header and small body): an attacker's review of it (2026-12-06), each attack against the
// real binary — nothing pingora means to send may be held back.
// ---------------------------------------------------------------------------------------------

/// Reads from `tls` until `done(received so far)` or `limit`; every read's (time since
/// `start`, bytes received so far).
async fn read_until<S: tokio::io::AsyncRead + Unpin>(
    tls: &mut S,
    start: Instant,
    limit: Duration,
    got: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> bool,
) -> Vec<(Duration, usize)> {
    use tokio::io::AsyncReadExt;
    let mut timeline = Vec::new();
    let mut chunk = [0u8; 65536];
    let _ = tokio::time::timeout(limit, async {
        while !done(got) {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    got.extend_from_slice(&chunk[..n]);
                    timeline.push((start.elapsed(), got.len()));
                }
            }
        }
    })
    .await;
    timeline
}

fn body_of(got: &[u8]) -> Option<&[u8]> {
    got.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| &got[at + 4..])
}

/// A `Content-Length` response the upstream streams slowly (a report, a download, a long-poll
/// that sends its answer in pieces): header and 4 000 bytes at once, then 2 000 bytes every
/// 500 ms. pingora does not flush a Content-Length body until its end, so only pingora's own
/// 1 460-byte L4 buffer may hold anything back: the header and the first 4 000 bytes reach the
/// client at once, each piece as it comes. Failed when the guard held writes up to 16 KiB
/// (ce34ad7: nothing for 3.5 s, then one 16 196-byte burst).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowly_streamed_content_length_body_is_not_held_until_16_kib() {
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Instant, usize)>::new()));
    let log = sent.clone();
    let upstream = scripted_upstream(move |mut c, _| {
        let log = log.clone();
        async move {
            let total = 40_000usize;
            let mut first =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n").into_bytes();
            first.extend(std::iter::repeat_n(b'a', 4_000));
            let _ = c.write_all(&first).await;
            let mut body = 4_000;
            log.lock().expect("log").push((Instant::now(), body));
            while body < total {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let n = 2_000.min(total - body);
                if c.write_all(&vec![b'b'; n]).await.is_err() {
                    return;
                }
                body += n;
                log.lock().expect("log").push((Instant::now(), body));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let (_gw, mut tls, h) = acq_over_tls_to(upstream).await;
    let start = Instant::now();
    tls.write_all(format!("GET /script HTTP/1.1\r\nHost: {h}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut got = Vec::new();
    let timeline = read_until(&mut tls, start, Duration::from_secs(15), &mut got, |g| {
        body_of(g).is_some_and(|b| b.len() >= 40_000)
    })
    .await;
    let upstream_sent: Vec<(Duration, usize)> = sent
        .lock()
        .expect("log")
        .iter()
        .map(|(t, n)| (t.saturating_duration_since(start), *n))
        .collect();
    eprintln!("client received (time, bytes incl. header): {timeline:?}");
    eprintln!("upstream sent (time, body bytes): {upstream_sent:?}");
    let first_body = timeline
        .iter()
        .zip(std::iter::repeat(()))
        .find_map(|((t, n), ())| {
            let header = got.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
            (*n > header).then_some(*t)
        });
    assert!(
        first_body.is_some_and(|t| t < Duration::from_millis(1_500)),
        "the first 4 000 bytes of the body (sent at once by the upstream) reached the client \
         only at {first_body:?}; client timeline {timeline:?}; upstream {upstream_sent:?}"
    );
}

/// Held: `Expect: 100-continue` through the proxy — the upstream's 100 Continue is a 1xx, which
/// pingora flushes, so the client gets it before it sends its body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_continue_reaches_the_client_before_its_body() {
    let upstream = scripted_upstream(|mut c, head| async move {
        use tokio::io::AsyncReadExt;
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if text.contains("expect: 100-continue") {
            let _ = c.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
        }
        let mut body = [0u8; 5];
        if c.read_exact(&mut body).await.is_err() {
            return;
        }
        let _ = c
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthank")
            .await;
    })
    .await;
    let (_gw, mut tls, h) = acq_over_tls_to(upstream).await;
    let start = Instant::now();
    tls.write_all(
        format!(
            "POST /script HTTP/1.1\r\nHost: {h}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("request");
    let mut got = Vec::new();
    let timeline = read_until(&mut tls, start, Duration::from_secs(3), &mut got, |g| {
        g.windows(4).any(|w| w == b"\r\n\r\n")
    })
    .await;
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 100"),
        "no 100 Continue before the body within 3 s: {text:?} {timeline:?}"
    );
    tls.write_all(b"hello").await.expect("body");
    let mut rest = Vec::new();
    read_until(&mut tls, start, Duration::from_secs(3), &mut rest, |g| {
        g.ends_with(b"thank")
    })
    .await;
    assert!(
        String::from_utf8_lossy(&rest).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}

/// Held: a 101 whose upstream speaks first, later (a server greeting over the upgraded
/// connection): the 101 is flushed (1xx), and every piece of an upgraded body is flushed
/// (close-delimited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_and_a_later_server_first_message_are_not_held() {
    let upstream = scripted_upstream(|mut c, _| async move {
        let _ = c
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = c.write_all(b"\x81\x05hello").await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let (_gw, mut tls, h) = acq_over_tls_to(upstream).await;
    let start = Instant::now();
    tls.write_all(
        format!(
            "GET /script HTTP/1.1\r\nHost: {h}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("request");
    let mut got = Vec::new();
    let timeline = read_until(&mut tls, start, Duration::from_millis(800), &mut got, |g| {
        g.windows(4).any(|w| w == b"\r\n\r\n")
    })
    .await;
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 101"),
        "no 101 within 800 ms: {:?} {timeline:?}",
        String::from_utf8_lossy(&got)
    );
    let timeline = read_until(&mut tls, start, Duration::from_secs(3), &mut got, |g| {
        g.ends_with(b"hello")
    })
    .await;
    assert!(
        got.ends_with(b"hello"),
        "the server's first message was held: {timeline:?}"
    );
}
