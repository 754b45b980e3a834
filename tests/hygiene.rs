//! Issue 17, items 5–7, through the real gateway: identity-like headers a client invents, the
//! framing and methods of what is forwarded, and the memory the login host's buffered bodies
//! may take — each as the attack, over HTTP/1.1 and HTTP/2.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use prehod_test_support::*;
use serde_json::Value;

/// The JSON a demo portal answered, from a raw HTTP/1.1 response (chunked or not).
fn demo_json(raw: &[u8]) -> Value {
    let resp = RawResponse::parse(raw).expect("response");
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(raw));
    let text = String::from_utf8_lossy(&resp.body);
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        panic!("no JSON in {text}");
    };
    serde_json::from_str(text.get(start..=end).expect("json")).expect("json")
}

/// Every header a demo portal reports, as `name: value` lines in lower case.
fn received_lines(json: &Value) -> Vec<String> {
    json["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| {
            format!(
                "{}: {}",
                pair[0].as_str().unwrap_or_default(),
                pair[1].as_str().unwrap_or_default()
            )
            .to_ascii_lowercase()
        })
        .collect()
}

/// Header names a client can invent that a portal could take for the gateway's: close to a
/// configured identity header once case and `-`/`_`/`.` are normalised, under the identity
/// prefix (`X-Auth-`), or under a configured strip prefix (`X-Bank-*` below). Each carries
/// the value `spoofed`.
const SPOOFED: &[&str] = &[
    "X-Auth-Groups",
    "X.Auth.User",
    "x.auth.email",
    "X_Auth.Level",
    "X-AUTH-ROLES",
    "x-auth-is-admin",
    "X.Auth_Cert.Subject",
    "X-Bank-Customer",
    "x.bank.account",
    "X-Legacy-User",
    "X.Legacy_User",
];

/// Issue 17, item 5: `X-Auth-Groups: admins` and `X.Auth.User: admin` reached the portal over
/// HTTP/1.1 and HTTP/2 — a portal that reads a header the gateway does not set trusted them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_like_headers_never_reach_the_upstream_over_http1_or_http2() {
    let (_pki, gw, _portals) = demo_gateway(|setup| {
        setup.top_extra = "headers:\n  strip: [X-Legacy-User, \"X-Bank-*\"]\n".into();
    })
    .await;
    let h = host("acq");

    let mut request = format!(
        "GET /whoami HTTP/1.1\r\nHost: {h}\r\nAccept: application/json\r\nConnection: close\r\n\
X-Requested-With: XMLHttpRequest\r\nX-Authority-Hint: kept\r\n"
    );
    for name in SPOOFED {
        request.push_str(&format!("{name}: spoofed\r\n"));
    }
    request.push_str("\r\n");
    let raw = gw.raw(&h, request.as_bytes()).expect("handshake");
    let http1 = received_lines(&demo_json(&raw));

    let client = gw
        .client_builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let mut req = client
        .get(gw.url("acq", "/whoami"))
        .header("accept", "application/json")
        .header("x-requested-with", "XMLHttpRequest")
        .header("x-authority-hint", "kept");
    for name in SPOOFED {
        req = req.header(*name, "spoofed");
    }
    let resp = req.send().await.expect("h2 request");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let http2 = received_lines(&resp.json::<Value>().await.expect("json"));

    for (version, lines) in [("HTTP/1.1", &http1), ("HTTP/2", &http2)] {
        let spoofed: Vec<&String> = lines.iter().filter(|l| l.contains("spoofed")).collect();
        assert!(
            spoofed.is_empty(),
            "{version}: identity-like headers reached the portal: {spoofed:?}"
        );
        // Headers of the application's own stay.
        assert!(
            lines.contains(&"x-requested-with: xmlhttprequest".to_owned()),
            "{version}: {lines:?}"
        );
        assert!(
            lines.contains(&"x-authority-hint: kept".to_owned()),
            "{version}: {lines:?}"
        );
    }
}

/// A plain-HTTP upstream that records every request it gets (head and body, as bytes) and
/// answers each with `200 ok`, closing the connection. The health checker's bare connects
/// record nothing.
async fn recording_upstream() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let body = &buf[end + 4..];
                    let complete = if head.contains("transfer-encoding: chunked") {
                        body.ends_with(b"0\r\n\r\n")
                    } else {
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.split(',').next())
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        body.len() >= length
                    };
                    if complete {
                        break;
                    }
                }
                record.lock().expect("lock").push(buf);
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (addr, seen)
}

/// The request the recording upstream got for `path`, if any.
fn recorded(seen: &Arc<Mutex<Vec<Vec<u8>>>>, path: &str) -> Option<String> {
    let marker = format!(" {path} HTTP/1.1\r\n");
    seen.lock()
        .expect("lock")
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .find(|r| r.contains(&marker))
}

/// The `name:` header lines of a recorded request head, values trimmed.
fn header_lines(request: &str, name: &str) -> Vec<String> {
    let head = request.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// Issue 17, item 6: two identical `Content-Length` headers and `Content-Length: 5, 5` reached
/// the upstream as sent; `Transfer-Encoding: gzip, chunked` arrived as plain `chunked` (the
/// coding silently dropped); `TRACE` and `OPTIONS *` were forwarded; and so was any method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_is_collapsed_or_refused_and_only_known_methods_are_forwarded() {
    let pki = Pki::new();
    let (upstream, seen) = recording_upstream().await;
    let (mut setup, _portals) = six_demo_portals().await;
    setup.upstreams.retain(|(p, _)| p != "acq");
    setup = setup.upstream("acq", &[format!("http://{upstream}")]);
    let gw = Gateway::start(&pki, &setup);
    let h = host("acq");
    let send = |request: String| {
        let raw = gw.raw(&h, request.as_bytes()).expect("handshake");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let resp = RawResponse::parse(&raw).unwrap_or_else(|| panic!("no response: {text}"));
        (resp, text)
    };

    // RFC 9112 §6.3: identical Content-Length values are one length; the upstream sees one.
    for (path, lengths) in [
        ("/two-lines", "Content-Length: 5\r\nContent-Length: 5\r\n"),
        ("/one-list", "Content-Length: 5, 5\r\n"),
    ] {
        let (resp, text) = send(format!(
            "POST {path} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n{lengths}\r\nhello"
        ));
        assert_eq!(resp.status, 200, "{path}: {text}");
        let got = recorded(&seen, path).unwrap_or_else(|| panic!("{path} not forwarded"));
        assert_eq!(
            header_lines(&got, "content-length"),
            ["5"],
            "{path}: the upstream must see one length: {got}"
        );
        assert!(got.ends_with("\r\n\r\nhello"), "{path}: {got}");
    }

    // Any transfer coding but one final `chunked` is refused: the gateway cannot forward it
    // faithfully (it would drop the coding, and the body would change meaning).
    for (path, codings) in [
        ("/gzip-chunked", "Transfer-Encoding: gzip, chunked\r\n"),
        (
            "/gzip-then-chunked",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        ),
        ("/chunked-twice", "Transfer-Encoding: chunked, chunked\r\n"),
        (
            "/identity-chunked",
            "Transfer-Encoding: identity,chunked\r\n",
        ),
    ] {
        let (resp, text) = send(format!(
            "POST {path} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n{codings}\r\n5\r\nhello\r\n0\r\n\r\n"
        ));
        assert_eq!(resp.status, 400, "{path}: {text}");
        assert_eq!(recorded(&seen, path), None, "{path} was forwarded");
    }
    // A plain chunked body still goes through, still chunked.
    let (resp, text) = send(format!(
        "POST /chunked HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ));
    assert_eq!(resp.status, 200, "{text}");
    let got = recorded(&seen, "/chunked").expect("chunked body forwarded");
    assert_eq!(
        header_lines(&got, "transfer-encoding"),
        ["chunked"],
        "{got}"
    );

    // TRACE is answered by the gateway (405), never forwarded; so is a method the portal does
    // not take (the default set has no WebDAV).
    for (method, path) in [
        ("TRACE", "/trace"),
        ("PROPFIND", "/propfind"),
        ("FOO", "/foo"),
    ] {
        let (resp, text) = send(format!(
            "{method} {path} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(resp.status, 405, "{method}: {text}");
        let allow = resp.header("allow").unwrap_or_else(|| panic!("{text}"));
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        assert!(!allow.contains("TRACE"), "{allow}");
        assert_eq!(recorded(&seen, path), None, "{method} was forwarded");
    }
    // `OPTIONS *` asks about the server, which is the gateway: answered, never forwarded.
    let before = seen.lock().expect("lock").len();
    let (resp, text) = send(format!(
        "OPTIONS * HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n"
    ));
    assert!(resp.status < 500, "{text}");
    assert!(resp.header("allow").is_some(), "{text}");
    assert_eq!(
        seen.lock().expect("lock").len(),
        before,
        "OPTIONS * was forwarded"
    );
    // The usual methods are forwarded.
    for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let path = format!("/method-{method}");
        let (resp, text) = send(format!(
            "{method} {path} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert_eq!(resp.status, 200, "{method}: {text}");
        assert!(recorded(&seen, &path).is_some(), "{method} not forwarded");
    }

    // The same over HTTP/2.
    let client = gw
        .client_builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    for (method, path) in [("TRACE", "/h2-trace"), ("PROPFIND", "/h2-propfind")] {
        let resp = client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                gw.url("acq", path),
            )
            .send()
            .await
            .expect("h2 request");
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), 405, "{method} over HTTP/2");
        assert!(resp.headers().contains_key("allow"));
        assert_eq!(
            recorded(&seen, path),
            None,
            "{method} was forwarded over h2"
        );
    }
}

/// A portal's own method list (`http_methods`): what it lists is forwarded, anything else
/// is answered 405 with that list in `Allow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_portal_forwards_only_its_own_http_methods() {
    let pki = Pki::new();
    let (upstream, seen) = recording_upstream().await;
    let (mut setup, _portals) = six_demo_portals().await;
    setup.upstreams.retain(|(p, _)| p != "acq");
    setup = setup
        .upstream("acq", &[format!("http://{upstream}")])
        .portal_yaml("acq", "http_methods: [GET, PROPFIND]");
    let gw = Gateway::start(&pki, &setup);
    let h = host("acq");
    for (method, path, expected) in [
        ("GET", "/get", 200),
        ("HEAD", "/head", 200),
        ("PROPFIND", "/propfind", 200),
        ("POST", "/post", 405),
        ("DELETE", "/delete", 405),
    ] {
        let raw = gw
            .raw(
                &h,
                format!("{method} {path} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            )
            .expect("handshake");
        let resp = RawResponse::parse(&raw).expect("response");
        assert_eq!(
            resp.status,
            expected,
            "{method}: {}",
            String::from_utf8_lossy(&raw)
        );
        assert_eq!(recorded(&seen, path).is_some(), expected == 200, "{method}");
        if expected == 405 {
            assert_eq!(resp.header("allow"), Some("GET, HEAD, PROPFIND"));
        }
    }
    // Another portal keeps the default set.
    let raw = gw
        .raw(
            &host("b2b"),
            format!(
                "DELETE /x HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                host("b2b")
            )
            .as_bytes(),
        )
        .expect("handshake");
    assert_eq!(RawResponse::parse(&raw).expect("response").status, 200);
}

/// The peak resident memory of a process so far, in bytes (`VmHWM`).
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

fn metric_value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls the gateway's metrics until `done` says so (10 s at most); returns the last ones.
async fn wait_for_metrics(gw: &Gateway, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = gw.metrics();
        if done(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const RESERVED: &str = "prehod_body_buffer_bytes";

fn refused_for(metrics: &str, reason: &str) -> f64 {
    metric_value(
        metrics,
        &format!("prehod_body_buffers_refused_total{{reason=\"{reason}\"}}"),
    )
}

/// An HTTP/2 connection from `from` (any 127.0.0.0/8 address is loopback) that opens `streams`
/// POSTs to `url`, each declaring 64 KiB, sending 60 000 bytes of it and then nothing: every
/// body stays incomplete until the gateway gives up on it. Returns each stream's status (or
/// `None` when it was reset) and how long it took to come.
fn hold_bodies(
    client: reqwest::Client,
    url: String,
    streams: usize,
) -> Vec<tokio::task::JoinHandle<(Option<u16>, Duration)>> {
    (0..streams)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let body = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 60_000]))
                })
                .chain(futures_util::stream::pending());
                let started = Instant::now();
                let resp = client
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("content-length", "65536")
                    .body(reqwest::Body::wrap_stream(body))
                    .send()
                    .await;
                (resp.ok().map(|r| r.status().as_u16()), started.elapsed())
            })
        })
        .collect()
}

/// Issue 17, item 7: the login host read every POST body into memory before routing; 10
/// HTTP/2 connections × 100 streams × 60 KB took the gateway from 32 to 120 MB. Now every
/// buffered body shares one budget (16 MiB by default): many clients holding many large
/// unfinished bodies cannot push the gateway's memory past it, and a normal login goes on
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_host_bodies_over_http2_stay_within_one_memory_budget() {
    let world =
        prehod_test_support::login::world(prehod_test_support::login::Options::default()).await;
    let gw = &world.gw;
    let url = prehod_test_support::login::login_url(&world, "/logout");
    let before = peak_memory(gw.pid());

    // Eight client addresses × 10 connections × 12 streams × 60 KB: 57 MB of bodies.
    let mut held = Vec::new();
    for last in 2..10u8 {
        let from = IpAddr::from([127, 0, 0, last]);
        for _ in 0..10 {
            let client = gw
                .client_builder()
                .http2_prior_knowledge()
                .local_address(from)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client");
            held.extend(hold_bodies(client, url.clone(), 12));
        }
    }
    // The bytes reserved for bodies, sampled while they come in (10 s at most) until the
    // whole budget is taken; the login below starts then.
    let budget = 16.0 * 1024.0 * 1024.0;
    let mut reserved = Vec::new();
    let sampling = Instant::now() + Duration::from_secs(10);
    while reserved.last().is_none_or(|r| *r < budget) && Instant::now() < sampling {
        reserved.push(metric_value(&gw.metrics(), RESERVED));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // While they are held, a normal login from another address works.
    let mut browser = prehod_test_support::login::Browser::new(&world);
    let page = prehod_test_support::login::login_otp(
        &world,
        &mut browser,
        &prehod_test_support::login::portal_url(&world, "acq", "/whoami"),
        prehod_test_support::rekono::SREDNJA,
        prehod_test_support::rekono::SREDNJA_TOTP,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let during = peak_memory(gw.pid());

    let mut outcomes = Vec::new();
    for task in held {
        outcomes.push(task.await.expect("stream task"));
    }
    let grew = during
        .saturating_sub(before)
        .max(peak_memory(gw.pid()).saturating_sub(before));
    // At most 16 MiB of bodies, plus what 960 streams on 80 connections cost besides their
    // bodies (16 MiB, measured with 100-byte bodies) and the data in flight of the refused
    // ones: far below the 57 MB of bodies sent (before the budget, the peak grew by 101 MiB).
    assert!(
        grew < 48 * 1024 * 1024,
        "the gateway's peak memory grew by {} MiB",
        grew / (1024 * 1024)
    );
    assert_eq!(
        reserved.last().copied(),
        Some(budget),
        "the budget was full when the login started"
    );
    assert!(reserved.iter().all(|r| *r <= budget), "{reserved:?}");
    let refused: Vec<&(Option<u16>, Duration)> =
        outcomes.iter().filter(|(s, _)| *s == Some(503)).collect();
    assert!(
        refused.len() >= 960 - 256,
        "at most 16 MiB / 64 KiB bodies are held, the rest refused: {} refused",
        refused.len()
    );
    assert!(
        refused.iter().all(|(_, t)| *t < Duration::from_secs(8)),
        "a refusal comes at once, long before the held bodies' deadline"
    );
    let metrics = gw.metrics();
    assert!(
        metric_value(&metrics, "prehod_body_buffers_refused_total") >= refused.len() as f64,
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, RESERVED),
        0.0,
        "every reservation is given back"
    );
}

/// Each limit of the body budget refuses at once with a 503 page, counted by reason: the
/// bodies one HTTP/2 connection holds, one client address's share, and the whole budget; a
/// form kept across the login is just not kept when there is no room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_budget_refuses_per_connection_per_address_and_in_all() {
    let world = prehod_test_support::login::world(prehod_test_support::login::Options {
        server_yaml: "body_buffer_memory: 512KiB\nbody_buffers_per_connection: 2\n",
        ..Default::default()
    })
    .await;
    let gw = &world.gw;
    let url = prehod_test_support::login::login_url(&world, "/logout");
    let client = |last: u8| {
        gw.client_builder()
            .http2_prior_knowledge()
            .local_address(IpAddr::from([127, 0, 0, last]))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    };
    const BODY: f64 = 65536.0;
    // One connection, five streams: two are held, three refused (per connection).
    let first = hold_bodies(client(2), url.clone(), 5);
    wait_for_metrics(gw, "two bodies held on one connection", |m| {
        metric_value(m, RESERVED) == 2.0 * BODY && refused_for(m, "per_connection") == 3.0
    })
    .await;
    // The address's share is a quarter of 512 KiB: two 64 KiB bodies; a second connection
    // from it gets none.
    let second = hold_bodies(client(2), url.clone(), 1);
    wait_for_metrics(gw, "the address's share refused", |m| {
        refused_for(m, "per_address") == 1.0
    })
    .await;
    // Three more addresses take two bodies each: 8 × 64 KiB fill the budget; the next
    // address finds none left.
    let mut more = Vec::new();
    for last in 3..6 {
        more.extend(hold_bodies(client(last), url.clone(), 2));
    }
    wait_for_metrics(gw, "a full budget", |m| {
        metric_value(m, RESERVED) == 8.0 * BODY
    })
    .await;
    let last = hold_bodies(client(6), url.clone(), 1);

    let refusal = |tasks: Vec<tokio::task::JoinHandle<(Option<u16>, Duration)>>| async move {
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.expect("task"));
        }
        statuses
    };
    let last = refusal(last).await;
    assert_eq!(last[0].0, Some(503), "the budget is full: {last:?}");
    assert!(last[0].1 < Duration::from_secs(5), "refused at once");
    let second = refusal(second).await;
    assert_eq!(second[0].0, Some(503), "the address's share is taken");
    let metrics = gw.metrics();
    assert_eq!(refused_for(&metrics, "per_connection"), 3.0, "{metrics}");
    assert_eq!(refused_for(&metrics, "per_address"), 1.0, "{metrics}");
    assert_eq!(refused_for(&metrics, "memory"), 1.0, "{metrics}");
    assert_eq!(metric_value(&metrics, RESERVED), 8.0 * BODY);

    // A form sent to a portal without a session while the budget is full: the login goes on
    // without it (`notice=form_not_kept`) rather than failing.
    let resp = world
        .gw
        .client()
        .post(prehod_test_support::login::portal_url(
            &world, "acq", "/form",
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "same-origin")
        .body("a=1")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().expect("ascii");
    assert!(location.contains("notice=form_not_kept"), "{location}");

    let first = refusal(first).await;
    assert_eq!(
        first.iter().filter(|(s, _)| *s == Some(503)).count(),
        3,
        "{first:?}"
    );
    refusal(more).await;
    assert_eq!(
        metric_value(&gw.metrics(), RESERVED),
        0.0,
        "every reservation is given back"
    );
}

/// The same budget over HTTP/1.1: a login-host body declared larger than one body may be is
/// refused (413) before it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_host_body_larger_than_allowed_is_refused_before_it_is_read() {
    let world =
        prehod_test_support::login::world(prehod_test_support::login::Options::default()).await;
    let gw = &world.gw;
    let h = "login.bankart.localhost";
    let mut connector =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).expect("connector");
    connector.set_ca_file(&gw.ca).expect("CA");
    connector.set_alpn_protos(b"\x08http/1.1").expect("alpn");
    let tcp = std::net::TcpStream::connect(gw.https).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut tls = connector.build().connect(h, tcp).expect("handshake");
    let started = Instant::now();
    write!(
        tls,
        "POST /logout HTTP/1.1\r\nHost: {h}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\r\n"
    )
    .expect("write");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let resp = RawResponse::parse(&answer)
        .unwrap_or_else(|| panic!("no answer: {}", String::from_utf8_lossy(&answer)));
    assert_eq!(resp.status, 413);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at once"
    );
}
