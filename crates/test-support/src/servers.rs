//! Small servers on loopback that stand in for the world around the gateway: a recorder of
//! request bodies (a back-channel logout endpoint), a file server (a CRL distribution point),
//! misbehaving HTTP servers, and an HTTPS server outside the gateway.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use crate::Pki;

/// A plain-HTTP endpoint on loopback that answers 200 to every request and hands each request
/// body to the test: a relying party's back-channel logout endpoint, for instance.
pub async fn body_recorder() -> (SocketAddr, tokio::sync::mpsc::Receiver<String>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            if let Some((_, body)) = crate::http::read_request(&mut s).await {
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned()).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        }
    });
    (addr, rx)
}

/// Serves the current contents of `path` over plain HTTP on loopback (read at each request):
/// a CRL distribution point, for instance.
pub async fn serve_file(path: PathBuf) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let path = path.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = std::fs::read(&path).unwrap_or_default();
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    addr
}

/// How a hostile HTTP server misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Hostile {
    /// Accepts, reads the request, and never answers (holding the connection).
    Silent,
    /// Answers 200 and then streams a body that never ends.
    Endless,
}

/// An HTTP server on loopback that misbehaves as `kind` says, for every connection.
pub async fn hostile_http(kind: Hostile) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                match kind {
                    Hostile::Silent => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Hostile::Endless => {
                        let _ = s
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\n\r\n",
                            )
                            .await;
                        let chunk = vec![0x30u8; 64 * 1024];
                        while s.write_all(&chunk).await.is_ok() {}
                    }
                }
                drop(s);
            });
        }
    });
    addr
}

/// An HTTPS server on loopback outside the gateway (the test PKI's certificate, which covers
/// every `*.bankart.localhost` name): it answers 200 and reports the head of every request it
/// gets — to show what a browser sends to a host the gateway does not guard.
pub fn tls_recorder(pki: &Pki) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    acceptor
        .set_certificate_chain_file(pki.path("server.crt"))
        .expect("cert");
    acceptor
        .set_private_key_file(pki.path("server.key"), SslFiletype::PEM)
        .expect("key");
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let Ok(mut tls) = acceptor.accept(stream) else {
                continue;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && tls.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        }
    });
    (addr, rx)
}
