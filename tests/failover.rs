//! The shared state through a Redis failover: one master, one replica and three sentinels
//! (real Debian `redis-server` and `redis-sentinel`, ACL users, loopback, free ports), two
//! gateway replicas that find the master through `state.sentinel`, a loop of requests on
//! both while the master is killed. And the sentinel form over TLS with a private CA.
//!
//! Replication in Redis is asynchronous: a master acknowledges a write before its replica has
//! it. The test makes that window as wide as it likes: the replica replicates through a proxy
//! of the test's own that can stop passing the master's stream on, so a revocation is
//! acknowledged by the master, published to the fleet, and never reaches the replica that
//! the sentinels then promote.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prehod_test_support::fleet::*;
use prehod_test_support::load::Load;
use prehod_test_support::login::*;
use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP, VISOKA, VISOKA_TOTP};
use prehod_test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The master's name the sentinels watch.
const MASTER: &str = "prehod";
/// The gateways' ACL user on the data nodes (keys and channels under their prefix only).
const GATEWAY_PASSWORD: &str = "gateway-password-for-the-test";
/// The replicas' ACL user (`masteruser`) on the master.
const REPLICATION_PASSWORD: &str = "replication-password-for-the-test";
/// The sentinels' ACL user on the data nodes.
const SENTINEL_USER_PASSWORD: &str = "sentinel-user-password-for-the-test";
/// What clients (the gateways, each other) give the sentinels.
const SENTINEL_PASSWORD: &str = "sentinel-password-for-the-test";

/// The ACL of both data nodes (either may be the master).
fn acl(prefix: &str) -> String {
    format!(
        "user default off\n\
         user prehod on >{GATEWAY_PASSWORD} ~{prefix}* &{prefix}* +@all -@dangerous +role\n\
         user replica on >{REPLICATION_PASSWORD} +psync +replconf +ping\n\
         user sentinel on >{SENTINEL_USER_PASSWORD} allchannels +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill\n\
         masteruser replica\n\
         masterauth {REPLICATION_PASSWORD}\n"
    )
}

/// A `redis-server` or `redis-sentinel` of the test's own, from a config file in its own
/// directory (its log there too); killed when dropped.
struct Node {
    child: Option<std::process::Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// `redis-cli` arguments and password that authenticate to it.
    auth: (Vec<String>, String),
}

impl Node {
    fn start(program: &str, port: u16, config: &str, auth: (Vec<String>, String)) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let conf = dir.path().join("node.conf");
        std::fs::write(
            &conf,
            format!(
                "bind 127.0.0.1\ndir {}\nlogfile {}\n{config}",
                dir.path().display(),
                dir.path().join("node.log").display()
            ),
        )
        .expect("config");
        let child = std::process::Command::new(program)
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{program} (Debian packages redis-server, redis-sentinel; deploy/setup.sh installs them): {e}")
            });
        let node = Self {
            child: Some(child),
            port,
            dir,
            auth,
        };
        wait_for(
            &format!("{program} on {port}"),
            Duration::from_secs(10),
            || node.try_cli(&["PING"]).is_some_and(|a| a == "PONG"),
        );
        node
    }

    /// Another handle on the node at `port` (not killed when dropped).
    fn at(port: u16, auth: (Vec<String>, String)) -> Self {
        Self {
            child: None,
            port,
            dir: tempfile::tempdir().expect("dir"),
            auth,
        }
    }

    /// What `redis-cli` prints for `args` (`None` when it cannot reach the node).
    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
            ])
            .args(&self.auth.0)
            .args(args)
            .env("REDISCLI_AUTH", &self.auth.1)
            .output()
            .expect("redis-cli (Debian package redis-tools)");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} on {}", self.port))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A data node as the gateways' user sees it.
fn data_node(port: u16, extra: &str, prefix: &str) -> Node {
    Node::start(
        "redis-server",
        port,
        &format!(
            "port {port}\nsave \"\"\nappendonly no\n{}{extra}",
            acl(prefix)
        ),
        (
            vec!["--user".into(), "prehod".into()],
            GATEWAY_PASSWORD.into(),
        ),
    )
}

fn sentinel(port: u16, master_port: u16) -> Node {
    Node::start(
        "redis-sentinel",
        port,
        &format!(
            "port {port}\n\
             sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER} 1000\n\
             sentinel failover-timeout {MASTER} 5000\n\
             sentinel parallel-syncs {MASTER} 1\n\
             sentinel auth-user {MASTER} sentinel\n\
             sentinel auth-pass {MASTER} {SENTINEL_USER_PASSWORD}\n\
             requirepass {SENTINEL_PASSWORD}\n\
             sentinel sentinel-pass {SENTINEL_PASSWORD}\n"
        ),
        (Vec::new(), SENTINEL_PASSWORD.into()),
    )
}

/// `field`'s value in `SENTINEL MASTER`'s answer (field and value on lines of their own).
fn master_field(sentinel: &Node, field: &str) -> Option<String> {
    let answer = sentinel.try_cli(&["SENTINEL", "MASTER", MASTER])?;
    let lines: Vec<&str> = answer.lines().collect();
    lines
        .iter()
        .position(|l| *l == field)
        .and_then(|i| lines.get(i + 1))
        .map(|v| (*v).to_owned())
}

/// The master's address as `sentinel` has it.
fn named_master(sentinel: &Node) -> Option<String> {
    let answer = sentinel.try_cli(&["SENTINEL", "get-master-addr-by-name", MASTER])?;
    let mut lines = answer.lines();
    Some(format!("{}:{}", lines.next()?, lines.next()?))
}

/// The path the master's stream takes to its replica: a TCP proxy in front of the master,
/// which every client uses as the master's address. Once frozen it stops passing on what the
/// master sends down a replication connection (one that said `PSYNC`): writes the master
/// acknowledges then never reach the replica, as when replication lags.
struct MasterProxy {
    port: u16,
    frozen: Arc<AtomicBool>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl MasterProxy {
    async fn start(master: u16) -> Self {
        let (listener, port) = loop {
            let port = free_port();
            if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                break (l, port);
            }
        };
        let frozen = Arc::new(AtomicBool::new(false));
        let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (f, t) = (frozen.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", master)).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let replication = Arc::new(AtomicBool::new(false));
                let r = replication.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                        if buf[..n].windows(4).any(|w| w == b"SYNC") {
                            r.store(true, Ordering::SeqCst);
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let frozen = f.clone();
                let down = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                        if frozen.load(Ordering::SeqCst) && replication.load(Ordering::SeqCst) {
                            continue;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut tasks = t.lock().expect("lock");
                tasks.push(up.abort_handle());
                tasks.push(down.abort_handle());
            }
        });
        tasks.lock().expect("lock").push(accept.abort_handle());
        Self {
            port,
            frozen,
            tasks,
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Gone like a dead host: every connection closed, new ones refused.
    fn stop(&self) {
        for t in self.tasks.lock().expect("lock").drain(..) {
            t.abort();
        }
    }
}

/// A loop of requests on the replicas: each worker sends one cookie to one replica again and
/// again and expects one status; any other answer or error is a failure.
fn start_load(pki: &Pki, work: Vec<(std::net::SocketAddr, (String, String), u16)>) -> Load {
    let workers = work.into_iter().map(|(https, cookie, expected)| {
        let client = bips_client(pki, https);
        let url = format!("https://{}:{}/", host("bips"), https.port());
        let cookie = format!("{}={}", cookie.0, cookie.1);
        move || {
            let answer = client
                .get(&url)
                .header("accept", "application/json")
                .header("cookie", &cookie)
                .send();
            async move {
                match answer.await {
                    Ok(r) if r.status().as_u16() == expected => Ok(()),
                    Ok(r) => Err(format!("{https}: {} instead of {expected}", r.status())),
                    Err(e) => Err(format!("{https}: {e}")),
                }
            }
        }
    });
    Load::start(workers, Duration::from_millis(10))
}

/// How long after `since` the replica on `admin` was connected to `master` again (polled
/// every 20 ms on its own thread).
fn reconnected(
    admin: std::net::SocketAddr,
    master: String,
    since: Instant,
) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        wait_for(
            "the replica to follow the new master",
            Duration::from_secs(60),
            || {
                let store = readyz_store(admin);
                store["up"] == true && store["master"] == master.as_str()
            },
        );
        since.elapsed()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_load_keeps_every_revocation_on_both_replicas_and_on_a_new_one() {
    let prefix = "failover:";
    let (master_port, replica_port) = (free_port(), free_port());
    let mut master = data_node(master_port, "", prefix);
    let proxy = MasterProxy::start(master_port).await;
    let master_address = format!("127.0.0.1:{}", proxy.port);
    let replica = data_node(
        replica_port,
        &format!("replicaof 127.0.0.1 {}\n", proxy.port),
        prefix,
    );
    let sentinels: Vec<Node> = (0..3).map(|_| sentinel(free_port(), proxy.port)).collect();
    wait_for("the replica to sync", Duration::from_secs(20), || {
        replica.cli(&["ROLE"]).lines().nth(3) == Some("connected")
    });
    wait_for(
        "each sentinel to know the replica and the other sentinels",
        Duration::from_secs(30),
        || {
            sentinels.iter().all(|s| {
                master_field(s, "num-slaves").as_deref() == Some("1")
                    && master_field(s, "num-other-sentinels").as_deref() == Some("2")
            })
        },
    );
    let urls: Vec<String> = sentinels
        .iter()
        .map(|s| format!("redis://127.0.0.1:{}", s.port))
        .collect();
    let top: &'static str = Box::leak(
        format!(
            "state:\n  sentinel:\n    master: {MASTER}\n    urls: [{}]\n    password: {SENTINEL_PASSWORD}\n  username: prehod\n  password: {GATEWAY_PASSWORD}\n  key_prefix: \"{prefix}\"\n",
            urls.join(", ")
        )
        .into_boxed_str(),
    );
    let world = world(Options {
        top_yaml: top,
        ..Options::default()
    })
    .await;
    let pki = &world.pki;
    let a = (world.gw.https, world.gw.admin);
    let b = Replica::of(&world.gw);
    for admin in [a.1, b.admin] {
        wait_for(
            "the replica to reach the master",
            Duration::from_secs(10),
            || {
                let store = readyz_store(admin);
                store["up"] == true && store["master"] == master_address.as_str()
            },
        );
    }

    // L keeps working throughout; R1, R2 and R3 are ended before, in and during the failover.
    let bips = portal_url(&world, "bips", "/");
    let mut l = Browser::new(&world);
    login_otp(&world, &mut l, &bips, SREDNJA, SREDNJA_TOTP).await;
    let mut r1 = Browser::new(&world);
    login_otp(&world, &mut r1, &bips, VISOKA, VISOKA_TOTP).await;
    let mut r2 = Browser::new(&world);
    login_otp(&world, &mut r2, &bips, SREDNJA, SREDNJA_TOTP).await;
    let mut r3 = Browser::new(&world);
    login_otp(&world, &mut r3, &bips, VISOKA, VISOKA_TOTP).await;
    let (cl, c1, c2, c3) = (
        bips_session(&l),
        bips_session(&r1),
        bips_session(&r2),
        bips_session(&r3),
    );
    for c in [&cl, &c1, &c2, &c3] {
        assert_eq!(status_with(pki, a.0, c).await, 200);
        assert_eq!(status_with(pki, b.https, c).await, 200);
    }

    // 1. Before: R1 logged out on A, refused on B, and on the replica too (replicated).
    log_out(&world, &mut r1).await;
    until_status(pki, b.https, &c1, 401, Duration::from_secs(2)).await;
    master.cli(&["SET", &format!("{prefix}replicated-up-to-here"), "1"]);
    assert_eq!(
        master.cli(&["WAIT", "1", "5000"]),
        "1",
        "the replica has it all"
    );
    let before = revocation_keys(&replica, prefix);
    assert!(!before.is_empty(), "R1's revocation is on the replica");

    // 2. In the replication window: the replica stops receiving; R2 is logged out on A. The
    // master acknowledges and publishes it (B refuses at once); the replica never gets it.
    proxy.freeze();
    log_out(&world, &mut r2).await;
    assert_eq!(status_with(pki, a.0, &c2).await, 401);
    until_status(pki, b.https, &c2, 401, Duration::from_secs(2)).await;
    wait_for(
        "the master to hold R2's revocation",
        Duration::from_secs(5),
        || revocation_keys(&master, prefix).len() > before.len(),
    );
    assert_eq!(
        revocation_keys(&replica, prefix),
        before,
        "the replica lacks what the master acknowledged"
    );

    // 3. The loop of requests on both replicas: L answered, R1 and R2 refused, every time.
    let load = start_load(
        pki,
        vec![
            (a.0, cl.clone(), 200),
            (b.https, cl.clone(), 200),
            (a.0, c1.clone(), 401),
            (b.https, c2.clone(), 401),
        ],
    );
    wait_for("the load to run", Duration::from_secs(10), || {
        load.served() > 20
    });

    // 4. The master dies. A logout on A while there is no master is held, and queued.
    let killed = Instant::now();
    proxy.stop();
    master.kill();
    let new_master = format!("127.0.0.1:{replica_port}");
    let a_back = reconnected(a.1, new_master.clone(), killed);
    let b_back = reconnected(b.admin, new_master.clone(), killed);
    let served_at_kill = load.served();
    let sentinels_switched = {
        let (port, new_master) = (sentinels[0].port, new_master.clone());
        std::thread::spawn(move || {
            let s = Node::at(port, (Vec::new(), SENTINEL_PASSWORD.into()));
            wait_for("the sentinels to switch", Duration::from_secs(60), || {
                named_master(&s).as_deref() == Some(new_master.as_str())
            });
            killed.elapsed()
        })
    };
    log_out(&world, &mut r3).await;
    assert_eq!(status_with(pki, a.0, &c3).await, 401, "held on A at once");
    let store = readyz_store(a.1);
    let during_switch = store["up"] == false;
    if during_switch {
        assert!(store["pending_revocations"].as_u64() >= Some(1), "{store}");
    }
    let a_took = a_back.join().expect("A follows the new master");
    let b_took = b_back.join().expect("B follows the new master");
    let served_meanwhile = load.served() - served_at_kill;
    let switch_took = sentinels_switched.join().expect("the sentinels switch");
    let switched = sentinels
        .iter()
        .filter(|s| named_master(s).as_deref() == Some(new_master.as_str()))
        .count();
    assert!(
        switched >= 2,
        "a majority of the sentinels moved the master"
    );
    eprintln!(
        "failover (down-after 1000 ms): the first of the three sentinels named the new master {switch_took:?} after the master was killed; A served from its local state for {a_took:?}, B for {b_took:?} ({served_meanwhile} requests answered meanwhile); R3 made during the switch: {during_switch}"
    );
    // R3, made on A while no master was known, reaches B once A is back.
    until_status(pki, b.https, &c3, 401, Duration::from_secs(10)).await;
    assert_eq!(readyz_store(a.1)["pending_revocations"], 0);
    let served_before = load.served();
    wait_for(
        "requests after the failover",
        Duration::from_secs(10),
        || load.served() > served_before + 20,
    );
    let (served, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} of {served} requests failed: {failures:?}",
        failures.len()
    );

    // 5. The new master holds every revocation: R2 only because the replicas wrote it again
    // (it was lost with the old master). A replica started now refuses R1, R2 and R3.
    let c = Replica::of(&world.gw);
    wait_for(
        "replica C to reach the new master",
        Duration::from_secs(10),
        || {
            let store = readyz_store(c.admin);
            store["up"] == true && store["master"] == new_master.as_str()
        },
    );
    assert_eq!(status_with(pki, c.https, &cl).await, 200);
    assert_eq!(status_with(pki, c.https, &c1).await, 401, "ended before");
    assert_eq!(
        status_with(pki, c.https, &c2).await,
        401,
        "ended in the replication window: acknowledged by the old master and lost with it"
    );
    assert_eq!(
        status_with(pki, c.https, &c3).await,
        401,
        "ended during the switch"
    );
    for (name, https) in [("A", a.0), ("B", b.https)] {
        for (cookie, status) in [(&cl, 200), (&c1, 401), (&c2, 401), (&c3, 401)] {
            assert_eq!(status_with(pki, https, cookie).await, status, "{name}");
        }
    }
    if std::env::var_os("PREHOD_TEST_SHOW_LOGS").is_some() {
        for s in &sentinels {
            eprintln!("{}", s.log());
        }
    }
}

/// The keys of stored revocations on `node`.
fn revocation_keys(node: &Node, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = node
        .cli(&["--scan", "--pattern", &format!("{prefix}rev*")])
        .lines()
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys
}

/// A master and a sentinel that speak only TLS, with certificates of the test's CA.
fn tls_args(pki: &Pki, port: u16) -> String {
    let p = |name: &str| pki.path(name).display().to_string();
    format!(
        "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n",
        p("server.crt"),
        p("server.key"),
        p("ca.crt")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sentinels_and_the_master_can_be_reached_over_tls_with_a_private_ca_and_only_with_it() {
    let pki = Pki::new();
    let prefix = "tls:";
    let (master_port, sentinel_port) = (free_port(), free_port());
    let tls_cli = |extra: Vec<String>| {
        let mut args = vec![
            "--tls".to_owned(),
            "--cacert".to_owned(),
            pki.path("ca.crt").display().to_string(),
        ];
        args.extend(extra);
        args
    };
    let _master = Node::start(
        "redis-server",
        master_port,
        &format!(
            "{}save \"\"\nappendonly no\n{}",
            tls_args(&pki, master_port),
            acl(prefix)
        ),
        (
            tls_cli(vec!["--user".into(), "prehod".into()]),
            GATEWAY_PASSWORD.into(),
        ),
    );
    let sentinel = Node::start(
        "redis-sentinel",
        sentinel_port,
        &format!(
            "{}sentinel monitor {MASTER} 127.0.0.1 {master_port} 1\n\
             sentinel auth-user {MASTER} sentinel\n\
             sentinel auth-pass {MASTER} {SENTINEL_USER_PASSWORD}\n\
             requirepass {SENTINEL_PASSWORD}\n",
            tls_args(&pki, sentinel_port)
        ),
        (tls_cli(Vec::new()), SENTINEL_PASSWORD.into()),
    );
    wait_for(
        "the sentinel to watch the master",
        Duration::from_secs(10),
        || named_master(&sentinel).is_some(),
    );
    let (mut setup, _portals) = six_demo_portals().await;
    let state = |ca: &Path, password: &str| {
        format!(
            "state:\n  sentinel:\n    master: {MASTER}\n    urls: [rediss://localhost:{sentinel_port}]\n    password: {password}\n  username: prehod\n  password: {GATEWAY_PASSWORD}\n  key_prefix: \"{prefix}\"\n  tls:\n    ca: {}\n",
            ca.display()
        )
    };
    setup.top_extra = state(&pki.path("ca.crt"), SENTINEL_PASSWORD);
    let trusted = Gateway::start(&pki, &setup);
    wait_for(
        "the TLS connection to the master",
        Duration::from_secs(10),
        || {
            let store = readyz_store(trusted.admin);
            store["up"] == true && store["master"] == format!("127.0.0.1:{master_port}").as_str()
        },
    );
    assert_eq!(
        readyz_store(trusted.admin)["server"],
        format!("master {MASTER} of sentinels rediss://localhost:{sentinel_port}")
    );

    // Another CA: the sentinel's certificate does not verify, nothing is asked of it.
    let other = tempfile::tempdir().expect("dir");
    prehod_devpki::generate(
        other.path(),
        &prehod_devpki::dev_server_names("bankart.localhost"),
    )
    .expect("another PKI");
    setup.top_extra = state(&other.path().join("ca.crt"), SENTINEL_PASSWORD);
    let untrusting = Gateway::start(&pki, &setup);
    // A wrong password for the sentinels: refused by them.
    setup.top_extra = state(&pki.path("ca.crt"), "not-the-sentinel-password");
    let refused = Gateway::start(&pki, &setup);
    for (gw, says) in [
        (&untrusting, "sentinel localhost"),
        (&refused, "sentinel localhost"),
    ] {
        wait_for("a refused connection", Duration::from_secs(10), || {
            readyz_store(gw.admin)["error"]
                .as_str()
                .is_some_and(|e| e.contains(says))
        });
        let store = readyz_store(gw.admin);
        assert_eq!(store["up"], false, "{store}");
        assert_eq!(store["master"], serde_json::Value::Null, "{store}");
        let shown = store.to_string();
        assert!(
            ![
                SENTINEL_PASSWORD,
                GATEWAY_PASSWORD,
                "not-the-sentinel-password"
            ]
            .iter()
            .any(|p| shown.contains(p)),
            "no password in /readyz: {store}"
        );
    }
}

/// A master the sentinels no longer name is left even while it still answers (as when it is
/// cut off from the sentinels but not from the gateway, or the sentinels were told to watch
/// another server): the gateway asks a sentinel every tick and follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_the_sentinels_no_longer_name_is_left_while_it_still_answers() {
    let prefix = "moved:";
    let (x, y) = (free_port(), free_port());
    let _first = data_node(x, "", prefix);
    let second = data_node(y, "", prefix);
    let sentinel = sentinel(free_port(), x);
    wait_for(
        "the sentinel to watch the first",
        Duration::from_secs(10),
        || named_master(&sentinel).as_deref() == Some(format!("127.0.0.1:{x}").as_str()),
    );
    let (mut setup, _portals) = six_demo_portals().await;
    setup.top_extra = format!(
        "state:\n  sentinel:\n    master: {MASTER}\n    urls: [redis://127.0.0.1:{}]\n    password: {SENTINEL_PASSWORD}\n  username: prehod\n  password: {GATEWAY_PASSWORD}\n  key_prefix: \"{prefix}\"\n",
        sentinel.port
    );
    let pki = Pki::new();
    let gw = Gateway::start(&pki, &setup);
    wait_for("the first master", Duration::from_secs(10), || {
        let store = readyz_store(gw.admin);
        store["up"] == true && store["master"] == format!("127.0.0.1:{x}").as_str()
    });
    // The sentinel now watches the second server; the first goes on answering.
    sentinel.cli(&["SENTINEL", "REMOVE", MASTER]);
    sentinel.cli(&[
        "SENTINEL",
        "MONITOR",
        MASTER,
        "127.0.0.1",
        &y.to_string(),
        "1",
    ]);
    sentinel.cli(&["SENTINEL", "SET", MASTER, "auth-user", "sentinel"]);
    sentinel.cli(&[
        "SENTINEL",
        "SET",
        MASTER,
        "auth-pass",
        SENTINEL_USER_PASSWORD,
    ]);
    wait_for("the gateway to follow", Duration::from_secs(10), || {
        let store = readyz_store(gw.admin);
        store["up"] == true && store["master"] == format!("127.0.0.1:{y}").as_str()
    });
    // It writes there: the fleet's epoch (a new server holds none, so it sets one).
    wait_for("the epoch on the second", Duration::from_secs(10), || {
        second.cli(&["EXISTS", &format!("{prefix}epoch")]) == "1"
    });
    assert!(
        gw.log_lines()
            .iter()
            .any(|l| l.contains("the shared state store's master moved")),
        "the move is logged"
    );
}

/// The single-URL form with an ACL user and password given beside the URL: connected as that
/// user; with a wrong password refused, and neither password shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_by_url_with_an_acl_user_and_its_password() {
    let prefix = "acl:";
    let port = free_port();
    let node = data_node(port, "", prefix);
    let (mut setup, _portals) = six_demo_portals().await;
    let state = |password: &str| {
        format!(
            "state:\n  url: redis://127.0.0.1:{port}/\n  username: prehod\n  password: {password}\n  key_prefix: \"{prefix}\"\n"
        )
    };
    let pki = Pki::new();
    setup.top_extra = state(GATEWAY_PASSWORD);
    let right = Gateway::start(&pki, &setup);
    setup.top_extra = state("not-the-gateway-password");
    let wrong = Gateway::start(&pki, &setup);
    wait_for("the connection as prehod", Duration::from_secs(10), || {
        readyz_store(right.admin)["up"] == true
    });
    wait_for("the epoch it sets", Duration::from_secs(10), || {
        node.cli(&["EXISTS", &format!("{prefix}epoch")]) == "1"
    });
    wait_for("the refusal", Duration::from_secs(10), || {
        readyz_store(wrong.admin)["error"]
            .as_str()
            .is_some_and(|e| e.contains("AuthenticationFailed"))
    });
    let shown = readyz_store(wrong.admin).to_string() + &readyz_store(right.admin).to_string();
    assert!(
        !shown.contains(GATEWAY_PASSWORD) && !shown.contains("not-the-gateway-password"),
        "{shown}"
    );
}

/// The kustomize component's own configuration (deploy/kubernetes/components/redis): what its
/// configure.sh writes for a pod is accepted by the real redis-server and redis-sentinel, the
/// ACL is what the component's comments say (no default user; prehod's user on its own keys,
/// without admin commands; the sentinels' user enough to watch the master), and no password
/// is written in clear except the replicas' own `masterauth`.
#[test]
fn the_kubernetes_components_configuration_starts_redis_and_sentinel_as_documented() {
    let pki = Pki::new();
    let component =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/components/redis");
    let work = tempfile::tempdir().expect("dir");
    let dir = |name: &str| {
        let d = work.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        d
    };
    let (statics, secrets, run, sentinel_run, data) = (
        dir("static"),
        dir("secrets"),
        dir("run"),
        dir("sentinel"),
        dir("data"),
    );
    let (redis_port, sentinel_port) = (free_port(), free_port());
    // The static files with this machine's paths and ports for the pod's.
    let local = |text: String| {
        text.replace(
            "/tls/tls.crt",
            &pki.path("server.crt").display().to_string(),
        )
        .replace(
            "/tls/tls.key",
            &pki.path("server.key").display().to_string(),
        )
        .replace("/tls/ca.crt", &pki.path("ca.crt").display().to_string())
        .replace("dir /data", &format!("dir {}", data.display()))
        .replace(
            "dir /run/sentinel",
            &format!("dir {}", sentinel_run.display()),
        )
        .replace("bind * -::*", "bind 127.0.0.1")
        .replace("tls-port 6379", &format!("tls-port {redis_port}"))
        .replace("tls-port 26379", &format!("tls-port {sentinel_port}"))
    };
    for name in ["redis.conf", "sentinel.conf"] {
        let text = std::fs::read_to_string(component.join(name)).expect("static file");
        std::fs::write(statics.join(name), local(text)).expect("write");
    }
    let passwords = [
        ("password", "component-prehod-password"),
        ("password-previous", "component-prehod-password-before"),
        ("replication-password", "component-replication-password"),
        ("sentinel-user-password", "component-sentinel-user-password"),
        ("sentinel-password", "component-sentinel-password"),
    ];
    for (key, value) in passwords {
        std::fs::write(secrets.join(key), format!("{value}\n")).expect("secret");
    }
    let out = std::process::Command::new("sh")
        .arg(component.join("configure.sh"))
        .env("POD_NAME", "prehod-redis-0")
        .env("NAMESPACE", "prehod")
        .env("REPLICAS", "1")
        .env("REDIS_PORT", redis_port.to_string())
        .env("STATIC_DIR", &statics)
        .env("SECRETS_DIR", &secrets)
        .env("RUN_DIR", &run)
        .env("SENTINEL_RUN_DIR", &sentinel_run)
        .env("TLS_DIR", pki.dir.path())
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no sentinel answered"));
    // Only the replicas' own password is in clear (masterauth); the ACL holds hashes.
    let acl = std::fs::read_to_string(run.join("users.acl")).expect("acl");
    let conf = std::fs::read_to_string(run.join("redis.conf")).expect("conf");
    for (_, value) in passwords {
        assert!(!acl.contains(value), "a password in clear in users.acl");
    }
    assert!(!conf.contains("component-prehod-password"));
    // The pod's name resolves in its cluster only: here, the loopback address.
    let pod = "prehod-redis-0.prehod-redis.prehod.svc.cluster.local";
    for file in [run.join("redis.conf"), sentinel_run.join("sentinel.conf")] {
        let text = std::fs::read_to_string(&file).expect("generated");
        std::fs::write(&file, text.replace(pod, "127.0.0.1")).expect("write");
    }
    let spawn = |program: &str, conf: &Path| {
        Child(
            std::process::Command::new(program)
                .arg(conf)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect(program),
        )
    };
    let _redis = spawn("redis-server", &run.join("redis.conf"));
    let _sentinel = spawn("redis-sentinel", &sentinel_run.join("sentinel.conf"));
    let tls = |user: &[&str]| {
        let mut args = vec![
            "--tls".to_owned(),
            "--cacert".to_owned(),
            pki.path("ca.crt").display().to_string(),
        ];
        args.extend(user.iter().map(|s| (*s).to_owned()));
        args
    };
    let prehod = Node::at(
        redis_port,
        (
            tls(&["--user", "prehod"]),
            "component-prehod-password".into(),
        ),
    );
    let anonymous = Node::at(redis_port, (tls(&[]), String::new()));
    let sentinel = Node::at(
        sentinel_port,
        (tls(&[]), "component-sentinel-password".into()),
    );
    wait_for(
        "redis-server with the component's config",
        Duration::from_secs(10),
        || prehod.try_cli(&["PING"]).as_deref() == Some("PONG"),
    );
    assert!(
        anonymous.cli(&["PING"]).contains("NOAUTH"),
        "no default user"
    );
    // While a rotation runs, prehod's user takes the previous password too.
    let before = Node::at(
        redis_port,
        (
            tls(&["--user", "prehod"]),
            "component-prehod-password-before".into(),
        ),
    );
    assert_eq!(before.cli(&["PING"]), "PONG");
    let wrong = Node::at(redis_port, (tls(&["--user", "prehod"]), "wrong".into()));
    assert_ne!(wrong.try_cli(&["PING"]).as_deref(), Some("PONG"));
    assert!(
        prehod.cli(&["FLUSHALL"]).contains("NOPERM"),
        "no admin command"
    );
    assert!(
        prehod.cli(&["GET", "not-prehods"]).contains("NOPERM"),
        "its keys only"
    );
    assert_eq!(prehod.cli(&["GET", "prehod:epoch"]), "");
    assert_eq!(prehod.cli(&["ROLE"]).lines().next(), Some("master"));
    // Alone, the master takes no write: min-replicas-to-write (a cut-off master refuses too).
    assert!(prehod.cli(&["SET", "prehod:x", "1"]).contains("NOREPLICAS"));
    wait_for(
        "the sentinel to watch the master",
        Duration::from_secs(10),
        || named_master(&sentinel).as_deref() == Some(format!("127.0.0.1:{redis_port}").as_str()),
    );
    // Its ACL user reaches the master: it is not taken for down.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(master_field(&sentinel, "flags").as_deref(), Some("master"));
    assert_eq!(
        master_field(&sentinel, "last-ok-ping-reply")
            .map(|ms| ms.parse::<u64>().unwrap_or(u64::MAX) < 1500),
        Some(true)
    );
}
