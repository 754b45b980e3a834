//! How this replica reaches the shared state's Redis: the one server of `state.url`, or the
//! master that the sentinels of `state.sentinel` name.
//!
//! With sentinels (Redis's "Sentinel client" rules): the sentinels are asked in turn, the one
//! that answered last first; the address one names is used only once that server answers
//! `ROLE` as a master (a sentinel with a stale view names a replica). The replication task
//! asks again whenever its connection is lost, and while connected asks a sentinel every tick
//! whether the master is still the same ([`Connector::confirm`]), so a failover is followed
//! even when the old master stays reachable (cut off from the sentinels, not from us).
//! Every connection and every question is bounded by `state.timeout`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prehod_config::{State, StateServer};
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
    RedisError, Role, TlsCertificates,
};

/// A Redis server to use: its client and its address.
#[derive(Clone)]
pub(super) struct Server {
    pub client: Client,
    /// `HOST:PORT`, for logs and `/readyz` (never credentials).
    pub address: String,
}

/// Finds the server to use (see the module's documentation).
pub(super) struct Connector {
    timeout: Duration,
    target: Target,
}

enum Target {
    /// `state.url`: always this server.
    Fixed(Server),
    /// `state.sentinel`: the master they name.
    Sentinels(Sentinels),
}

struct Sentinels {
    /// The master's name.
    master: String,
    sentinels: Vec<Sentinel>,
    /// The sentinel that answered last: asked first.
    preferred: AtomicUsize,
    /// How the servers they name are reached: TLS, its CA, user and password.
    tls: bool,
    ca: Option<Vec<u8>>,
    redis: RedisConnectionInfo,
}

struct Sentinel {
    address: String,
    client: Client,
    /// Kept between questions; dropped after an error.
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Connector {
    pub fn new(settings: &State) -> Result<Self, RedisError> {
        let credentials = |username: &Option<String>, password: &Option<String>| {
            let mut info = RedisConnectionInfo::default();
            if let Some(u) = username {
                info = info.set_username(u);
            }
            if let Some(p) = password {
                info = info.set_password(p);
            }
            info
        };
        let target = match &settings.server {
            StateServer::Url(url) => {
                let info = url.as_str().into_connection_info()?;
                // `state.username` / `.password` beside a URL without them (check refuses both).
                let mut redis = info.redis_settings().clone();
                if let Some(u) = &settings.username {
                    redis = redis.set_username(u);
                }
                if let Some(p) = &settings.password {
                    redis = redis.set_password(p);
                }
                let address = match info.addr() {
                    ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                        host_port(host, *port)
                    }
                    ConnectionAddr::Unix(path) => path.display().to_string(),
                    _ => settings.server(),
                };
                let client = with_ca(info.set_redis_settings(redis), settings.ca.as_deref())?;
                Target::Fixed(Server { client, address })
            }
            StateServer::Sentinel(s) => {
                let to_sentinels = credentials(&s.username, &s.password);
                let sentinels = s
                    .addresses
                    .iter()
                    .map(|(host, port)| {
                        let info = address(host, *port, s.tls)
                            .into_connection_info()?
                            .set_redis_settings(to_sentinels.clone());
                        Ok(Sentinel {
                            address: host_port(host, *port),
                            client: with_ca(info, settings.ca.as_deref())?,
                            conn: tokio::sync::Mutex::new(None),
                        })
                    })
                    .collect::<Result<_, RedisError>>()?;
                Target::Sentinels(Sentinels {
                    master: s.master.clone(),
                    sentinels,
                    preferred: AtomicUsize::new(0),
                    tls: s.tls,
                    ca: settings.ca.clone(),
                    redis: credentials(&settings.username, &settings.password),
                })
            }
        };
        Ok(Self {
            timeout: settings.timeout,
            target,
        })
    }

    /// Connection and response timeouts of every connection to Redis.
    pub fn config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
    }

    /// The longest pause between two attempts to find the server: short with sentinels, so
    /// that the master they promote is found soon after they have switched.
    pub fn retry_cap(&self) -> Duration {
        match self.target {
            Target::Fixed(_) => Duration::from_secs(1),
            Target::Sentinels(_) => Duration::from_millis(250),
        }
    }

    /// The server for `state.url` from the start; `None` with sentinels (found on connecting).
    pub fn fixed(&self) -> Option<Server> {
        match &self.target {
            Target::Fixed(server) => Some(server.clone()),
            Target::Sentinels(_) => None,
        }
    }

    /// The server to use now, with a command connection to it when finding it made one.
    pub async fn find(&self) -> Result<(Server, Option<MultiplexedConnection>), String> {
        let s = match &self.target {
            Target::Fixed(server) => return Ok((server.clone(), None)),
            Target::Sentinels(s) => s,
        };
        let mut checked: Vec<(String, u16)> = Vec::new();
        let mut why = Vec::new();
        for (i, sentinel) in s.in_turn() {
            let (host, port) = match self.ask(sentinel, &s.master).await {
                Ok(Some(a)) => a,
                Ok(None) => {
                    why.push(format!(
                        "sentinel {} knows no master {:?}",
                        sentinel.address, s.master
                    ));
                    continue;
                }
                Err(e) => {
                    why.push(format!("sentinel {}: {e}", sentinel.address));
                    continue;
                }
            };
            if checked.contains(&(host.clone(), port)) {
                continue;
            }
            checked.push((host.clone(), port));
            match self.master_at(s, &host, port).await {
                Ok(found) => {
                    s.preferred.store(i, Ordering::Relaxed);
                    return Ok(found);
                }
                Err(e) => why.push(format!(
                    "{} (named by sentinel {}): {e}",
                    host_port(&host, port),
                    sentinel.address
                )),
            }
        }
        Err(format!("no master found: {}", why.join("; ")))
    }

    /// `Err(why)` when the sentinels now name another master than `current`. A sentinel that
    /// does not answer is no reason to leave a master that works: then `Ok`.
    pub async fn confirm(&self, current: &Server) -> Result<(), String> {
        let Target::Sentinels(s) = &self.target else {
            return Ok(());
        };
        for (_, sentinel) in s.in_turn() {
            if let Ok(Some((host, port))) = self.ask(sentinel, &s.master).await {
                let named = host_port(&host, port);
                return if named == current.address {
                    Ok(())
                } else {
                    Err(format!(
                        "sentinel {} names {named} as the master now, not {}",
                        sentinel.address, current.address
                    ))
                };
            }
        }
        Ok(())
    }

    /// The master's address as `sentinel` has it (`None`: it knows no such master).
    async fn ask(
        &self,
        sentinel: &Sentinel,
        master: &str,
    ) -> Result<Option<(String, u16)>, String> {
        let mut cached = sentinel.conn.lock().await;
        let mut conn = match cached.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = self.connect(&sentinel.client).await?;
                *cached = Some(c.clone());
                c
            }
        };
        let answer: Result<Option<(String, String)>, _> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master)
            .query_async(&mut conn)
            .await;
        match answer {
            Ok(None) => Ok(None),
            Ok(Some((host, port))) => match port.parse() {
                Ok(port) => Ok(Some((host, port))),
                Err(_) => Err(format!("answered the port {port:?}")),
            },
            Err(e) => {
                *cached = None;
                Err(e.to_string())
            }
        }
    }

    /// The server at `host:port`, if it answers `ROLE` as a master.
    async fn master_at(
        &self,
        s: &Sentinels,
        host: &str,
        port: u16,
    ) -> Result<(Server, Option<MultiplexedConnection>), String> {
        let info = address(host, port, s.tls)
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_redis_settings(s.redis.clone());
        let client = with_ca(info, s.ca.as_deref()).map_err(|e| e.to_string())?;
        let mut conn = self.connect(&client).await?;
        let role: Role = redis::cmd("ROLE")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        match role {
            Role::Primary { .. } => Ok((
                Server {
                    client,
                    address: host_port(host, port),
                },
                Some(conn),
            )),
            _ => Err("is not a master (yet)".to_owned()),
        }
    }

    /// A connection to `client`'s server, within the timeouts.
    pub async fn connect(&self, client: &Client) -> Result<MultiplexedConnection, String> {
        tokio::time::timeout(
            self.timeout * 2,
            client.get_multiplexed_async_connection_with_config(&self.config()),
        )
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())
    }
}

impl Sentinels {
    /// The sentinels (with their index) in the order they are asked: the one that answered
    /// last first.
    fn in_turn(&self) -> impl Iterator<Item = (usize, &Sentinel)> {
        let first = self.preferred.load(Ordering::Relaxed);
        self.sentinels
            .iter()
            .enumerate()
            .cycle()
            .skip(first)
            .take(self.sentinels.len())
    }
}

fn address(host: &str, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_owned(), port)
    }
}

/// A client of `info`; with `ca` (PEM) a TLS server's certificate must chain to it (and
/// only to it: it replaces the system's roots).
fn with_ca(info: redis::ConnectionInfo, ca: Option<&[u8]>) -> Result<Client, RedisError> {
    match ca {
        Some(ca) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        ),
        None => Client::open(info),
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl super::Store {
    /// The command connection to the server in use, made if there is none.
    pub(super) async fn connection(&self) -> Result<MultiplexedConnection, String> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref() {
            return Ok(c.clone());
        }
        let server = self
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(server) = server else {
            return Err("no master found yet".to_owned());
        };
        let c = self.connector.connect(&server.client).await?;
        *conn = Some(c.clone());
        Ok(c)
    }

    pub(super) async fn forget_connection(&self) {
        *self.conn.lock().await = None;
    }

    /// From now on commands go to `server` (through `conn`, when finding it made one); a
    /// change of master is logged.
    pub(super) async fn use_server(&self, server: Server, conn: Option<MultiplexedConnection>) {
        let mut cached = self.conn.lock().await;
        let previous = self
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(server.clone());
        match previous {
            Some(p) if p.address != server.address => {
                tracing::warn!(
                    from = %p.address,
                    to = %server.address,
                    "the shared state store's master moved: following it"
                );
                *cached = conn;
            }
            _ => {
                if conn.is_some() {
                    *cached = conn;
                }
            }
        }
    }
}
