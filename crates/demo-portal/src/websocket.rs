//! `/__demo/ws`: a WebSocket echo (RFC 6455), so `prehod dev` and the tests can show that an
//! upgraded connection passes through the gateway both ways. Text and binary messages come
//! back as they were sent; a close frame is answered and ends the connection.

use base64::Engine;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Larger messages are refused: this is a demo.
const MAX_PAYLOAD: u64 = 1 << 20;

/// The `Sec-WebSocket-Accept` value for a client's key.
pub fn accept_value(key: &str) -> String {
    let digest = Sha1::digest(format!("{key}{GUID}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

pub fn accept(mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (true, Some(key)) = (upgrade, key) else {
        let mut r = Response::new(Full::new(Bytes::from_static(
            b"a WebSocket upgrade is expected here\n",
        )));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let _ = echo(TokioIo::new(upgraded)).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header("sec-websocket-accept", accept_value(&key))
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

async fn echo<S: AsyncReadExt + AsyncWriteExt + Unpin>(mut io: S) -> std::io::Result<()> {
    loop {
        let mut head = [0u8; 2];
        io.read_exact(&mut head).await?;
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            len = u64::from(io.read_u16().await?);
        } else if len == 127 {
            len = io.read_u64().await?;
        }
        if len > MAX_PAYLOAD {
            return Ok(());
        }
        let mut mask = [0u8; 4];
        if masked {
            io.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0u8; len as usize];
        io.read_exact(&mut payload).await?;
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        // Server frames are never masked.
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&payload);
        io.write_all(&frame).await?;
        if opcode == 0x8 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_value_matches_rfc_6455_example() {
        assert_eq!(
            super::accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
