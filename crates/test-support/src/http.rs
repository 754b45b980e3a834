//! Reading what came back: a plain HTTP/1.1 GET to the admin listener, a raw HTTP/1.1
//! response split into its parts, the headers a demo portal reports it received, and digests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// A plain HTTP/1.1 GET; `Some((status, body))` if anything answered.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// An HTTP/1.1 response split into status, lower-case headers and body.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&bytes[..split]).ok()?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Self {
            status,
            headers,
            body: bytes[split + 4..].to_vec(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `Content-Length` of an HTTP head (request or status line and headers); 0 without one.
pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Reads one HTTP/1.1 request from `stream`, for a small server of a test: its head (request
/// line and headers) and its `Content-Length` body; `None` if the stream ends first.
pub async fn read_request<S>(stream: &mut S) -> Option<(String, Vec<u8>)>
where
    S: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let end = split + 4 + content_length(&head);
        if buf.len() >= end {
            return Some((head, buf[split + 4..end].to_vec()));
        }
    }
}

/// The value of the hidden input `name` (`tx`, `csrf`) in `html`, as the page writes it.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let (_, after) = html.split_once(&marker)?;
    after.split('"').next().map(str::to_owned)
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// The header names (lower case) a demo portal reports it received.
pub fn received_header_names(json: &serde_json::Value) -> Vec<String> {
    json["headers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|pair| pair[0].as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default()
}

pub fn received_header<'a>(json: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    json["headers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|pair| {
                    pair[0]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .filter_map(|pair| pair[1].as_str())
                .collect()
        })
        .unwrap_or_default()
}

pub fn path_display(p: &Path) -> String {
    p.display().to_string()
}
