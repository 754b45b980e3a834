//! The simulator's two HTTPS listeners (hyper over OpenSSL): the provider itself, and the
//! certificate-factor listener whose handshake asks the browser for a client certificate.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use tokio::net::TcpListener;
use tokio_openssl::SslStream;

use crate::exchange::{plain, Conn, Req, Resp};
use crate::{keys, Sim, SimConfig, State};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("TLS setup: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Keys(#[from] keys::KeyError),
    #[error("configuration: {0}")]
    Config(#[from] crate::SimConfigError),
    #[error("back-channel client: {0}")]
    Http(#[from] reqwest::Error),
}

/// A running simulator; dropping it does not stop it (its tasks live on the runtime).
pub struct RunningSim {
    pub sim: Arc<Sim>,
}

impl RunningSim {
    pub fn issuer(&self) -> String {
        self.sim.issuer()
    }
}

fn acceptor(config: &SimConfig, ask_for_certificate: bool) -> Result<SslAcceptor, SimError> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    b.set_certificate_chain_file(&config.tls_cert)?;
    b.set_private_key_file(&config.tls_key, SslFiletype::PEM)?;
    b.check_private_key()?;
    b.set_alpn_select_callback(|_, _| Err(openssl::ssl::AlpnError::NOACK));
    if ask_for_certificate {
        // Ask, accept whatever comes: the account's linked certificates are matched by
        // fingerprint afterwards, and "no certificate" gets a page, not a TLS alert.
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
        b.set_session_id_context(b"rekono-sim-mtls")?;
    }
    Ok(b.build())
}

/// Replaces a `:0` port in `url` with the bound one.
fn with_port(url: &str, port: u16) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.port() == Some(0) => {
            let _ = u.set_port(Some(port));
            u.as_str().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}

/// Binds both listeners and starts serving on the current tokio runtime.
pub async fn spawn(mut config: SimConfig) -> Result<RunningSim, SimError> {
    config.validate()?;
    let https = TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    let mtls = TcpListener::bind(config.listen_mtls)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen_mtls,
            source,
        })?;
    let https_addr = https.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen,
        source,
    })?;
    let mtls_addr = mtls.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen_mtls,
        source,
    })?;
    config.public_url = with_port(&config.public_url, https_addr.port());
    config.public_mtls_url = with_port(&config.public_mtls_url, mtls_addr.port());
    config.clients.push(crate::Client {
        client_id: crate::endpoints::PLAYGROUND_CLIENT.to_owned(),
        name: "Rekono simulator — playground".to_owned(),
        secret: Some(keys::random_token(24)),
        jwt_keys: Vec::new(),
        redirect_uris: vec![format!("{}/dev/callback", config.public_url)],
        post_logout_redirect_uris: Vec::new(),
        backchannel_logout_uri: None,
        id_token_alg: jsonwebtoken::Algorithm::ES256,
    });

    let plain_acceptor = acceptor(&config, false)?;
    let mtls_acceptor = acceptor(&config, true)?;
    let http = back_channel_client(&config)?;
    let sim = Arc::new(Sim {
        keys: keys::Keys::generate()?,
        misbehave: Mutex::new(config.misbehave.clone()),
        config,
        state: Mutex::new(State::default()),
        http,
        https: https_addr,
        mtls: mtls_addr,
    });
    tracing::warn!(
        issuer = %sim.issuer(),
        "REKONO SIMULATOR running — a development and test stand-in, not Rekono"
    );
    tokio::spawn(serve(https, plain_acceptor, sim.clone(), false));
    tokio::spawn(serve(mtls, mtls_acceptor, sim.clone(), true));
    Ok(RunningSim { sim })
}

/// The client that posts back-channel logout tokens. `*.localhost` names resolve to loopback
/// (RFC 6761), which glibc does not do for us.
fn back_channel_client(config: &SimConfig) -> Result<reqwest::Client, SimError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(5));
    if let Some(ca) = &config.backchannel_ca {
        let pem = std::fs::read(ca).map_err(|e| crate::SimConfigError::File {
            path: ca.clone(),
            message: format!("cannot read: {e}"),
        })?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            b = b.add_root_certificate(cert);
        }
    }
    for client in &config.clients {
        let Some(uri) = client
            .backchannel_logout_uri
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
        else {
            continue;
        };
        if let (Some(host), Some(port)) = (uri.host_str(), uri.port_or_known_default()) {
            if host == "localhost" || host.ends_with(".localhost") {
                b = b.resolve(host, SocketAddr::from(([127, 0, 0, 1], port)));
            }
        }
    }
    Ok(b.build()?)
}

async fn serve(listener: TcpListener, acceptor: SslAcceptor, sim: Arc<Sim>, mtls: bool) {
    let acceptor = Arc::new(acceptor);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let sim = sim.clone();
        tokio::spawn(async move {
            let Ok(ssl) = Ssl::new(acceptor.context()) else {
                return;
            };
            let Ok(mut stream) = SslStream::new(ssl, tcp) else {
                return;
            };
            if Pin::new(&mut stream).accept().await.is_err() {
                return;
            }
            let peer_cert = stream
                .ssl()
                .peer_certificate()
                .and_then(|c| c.digest(openssl::hash::MessageDigest::sha256()).ok())
                .map(hex::encode);
            let conn = Conn { mtls, peer_cert };
            let service = service_fn(move |req| {
                let sim = sim.clone();
                let conn = conn.clone();
                async move { Ok::<_, Infallible>(handle(sim, req, conn).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(sim: Arc<Sim>, req: Request<Incoming>, conn: Conn) -> Resp {
    let (parts, body) = req.into_parts();
    // Forms and token requests are small; anything larger is refused.
    let body = match Limited::new(body, 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    crate::endpoints::route(&sim, Req::parse(&parts, &body, conn)).await
}
