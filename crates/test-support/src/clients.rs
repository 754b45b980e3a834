//! Raw clients for the connection tests: TCP from a chosen loopback address (127.0.0.1 and
//! 127.0.0.2 are two clients to the gateway), TLS with a chosen ALPN, one HTTP/1.1 exchange
//! read to its end, a minimal HTTP/2 client written frame by frame, hyper's HTTP/2 client,
//! and "how long until the gateway closed this connection".

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_openssl::SslStream;

pub const ATTACKER: &str = "127.0.0.1";
pub const BYSTANDER: &str = "127.0.0.2";

pub fn ip(text: &str) -> IpAddr {
    text.parse().expect("a literal address")
}

/// A TCP connection to `to` from the loopback address `from`.
pub async fn tcp_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// A client TLS set-up that trusts the test CA and offers `alpn` (wire format).
pub fn connector(ca: &Path, alpn: &[u8]) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls()).expect("connector");
    b.set_ca_file(ca).expect("CA");
    b.set_alpn_protos(alpn).expect("ALPN");
    b.build()
}

pub const H1: &[u8] = b"\x08http/1.1";
pub const H2: &[u8] = b"\x02h2";

/// A TLS connection from `from` to `to` for `sni`.
pub async fn tls_from(
    connector: &SslConnector,
    from: IpAddr,
    to: SocketAddr,
    sni: &str,
) -> io::Result<SslStream<TcpStream>> {
    tls_over(connector, tcp_from(from, to).await?, sni).await
}

/// The TLS handshake for `sni` over a TCP connection made earlier.
pub async fn tls_over(
    connector: &SslConnector,
    tcp: TcpStream,
    sni: &str,
) -> io::Result<SslStream<TcpStream>> {
    let ssl = connector
        .configure()
        .and_then(|c| c.into_ssl(sni))
        .map_err(io::Error::other)?;
    let mut tls = SslStream::new(ssl, tcp).map_err(io::Error::other)?;
    Pin::new(&mut tls)
        .connect()
        .await
        .map_err(io::Error::other)?;
    Ok(tls)
}

/// Reads one HTTP/1.1 response to its end (`Content-Length` or chunked) and returns its
/// status; the connection is then idle and reusable.
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = text[..end].to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = &text[end + 4..];
        let complete = if let Some(length) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            buf.len() >= end + 4 + length
        } else if head.contains("transfer-encoding: chunked") {
            body.ends_with("0\r\n\r\n")
        } else {
            true
        };
        if complete {
            return Ok(status);
        }
    }
}

/// One `GET path` over HTTP/1.1 on `stream`, read to its end.
pub async fn get<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    path: &str,
) -> io::Result<u16> {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    read_response(stream).await
}

/// Reads and discards until the gateway closes the connection (end of stream or an error);
/// `Some(how long that took)`, or `None` when it was still open after `limit`.
pub async fn closed_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all)
        .await
        .ok()
        .map(|()| started.elapsed())
}

/// HTTP/2 by hand: the client preface, an empty SETTINGS frame and one `GET path` on stream
/// 1 (HPACK: `:method GET`, `:scheme https`, `:path /` indexed; `:authority` a literal).
pub fn h2_get(authority: &str) -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&frame(4, 0, 0, &[]));
    let mut block = vec![0x82, 0x87, 0x84, 0x01];
    block.push(u8::try_from(authority.len()).expect("a short authority"));
    block.extend_from_slice(authority.as_bytes());
    // END_STREAM | END_HEADERS
    out.extend_from_slice(&frame(1, 0x5, 1, &block));
    out
}

/// One HTTP/2 frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small frame");
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads HTTP/2 frames until stream 1 ends (acknowledging the server's SETTINGS); returns
/// whether its response was a 200 (`:status 200` is HPACK index 8: the byte 0x88).
pub async fn h2_read_response<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> io::Result<bool> {
    let mut ok = false;
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await?;
        match kind {
            // SETTINGS without ACK: acknowledge them.
            4 if flags & 1 == 0 => stream.write_all(&frame(4, 1, 0, &[])).await?,
            // HEADERS of stream 1 (no padding or priority from this server).
            1 if id == 1 => ok = payload.first() == Some(&0x88),
            _ => {}
        }
        // END_STREAM on a HEADERS or DATA frame of stream 1.
        if id == 1 && matches!(kind, 0 | 1) && flags & 1 == 1 {
            return Ok(ok);
        }
    }
}

/// hyper's HTTP/2 client (reqwest's): it sends no request after the server's GOAWAY and does
/// not try one again on a new connection when its first connection went away.
pub type Http2Sender = hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>;

/// hyper's HTTP/2 handshake over `tls` (its connection driven by a task of its own): no
/// stream opened yet.
pub async fn hyper_http2(tls: SslStream<TcpStream>) -> hyper::Result<Http2Sender> {
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The sum of every sample of `name` (with its labels, e.g. `x_total{phase="idle"}`) in a
/// Prometheus text page.
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Makes sure the open-file limit of this test process is at least `needed` (it holds every
/// attacking connection and the demo portals' side of the gateway's upstream connections):
/// raised with `prlimit` when it is lower; the test fails when it cannot be.
pub fn enough_open_files(needed: u64) {
    let soft = || {
        std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
            })
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    if soft() < needed {
        // `prlimit` on this very process (util-linux): raise the soft limit to `needed`.
        let _ = std::process::Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={needed}:"))
            .status();
    }
    assert!(
        soft() >= needed,
        "this test needs an open-file limit of {needed} (ulimit -n); it is {}",
        soft()
    );
}
