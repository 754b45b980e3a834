//! `prehod`: the Bankart Secure Web Gateway's command line — `run`, `check`, `dev`, `pki`.
//!
//! Exit codes: 0 success, 64 bad configuration or usage (EX_USAGE), 69 a listener address
//! cannot be bound (EX_UNAVAILABLE), 70 an internal failure (EX_SOFTWARE).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pingora::server::{RunArgs, Server};
use prehod_config::{AppLogin, Config};

/// jemalloc rather than glibc's malloc for Rust's allocations: with its background threads it
/// gives memory freed by closed connections back to the system (glibc kept all of it:
/// benches/README.md, "connections").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const EX_CONFIG: u8 = 64;
/// systemd's `RuntimeDirectory=prehod` (deploy/systemd/prehod.service, mode 0700).
const DEFAULT_UPGRADE_SOCKET: &str = "/run/prehod/upgrade.sock";
const EX_UNAVAILABLE: u8 = 69;
const EX_SOFTWARE: u8 = 70;

#[derive(Parser)]
#[command(
    name = "prehod",
    version,
    about = "prehod — the Bankart Secure Web Gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How the gateway process runs beside others (pid file, binary upgrade).
#[derive(clap::Args, Clone, Debug)]
struct ProcessArgs {
    /// Write this process's id here (for `prehod reload` and for sending `SIGQUIT`).
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Binary upgrade: take the listening sockets over from the running gateway (which hands
    /// them over on `SIGQUIT`, then drains and exits) instead of binding them.
    #[arg(long, short)]
    upgrade: bool,
    /// The unix socket the listening sockets are handed over on; the old and the new process
    /// must name the same one. Its directory must be private to the gateway's user (not
    /// writable by group or others, owned by it or root): whoever can put a socket there
    /// receives the listening sockets.
    #[arg(long, default_value = DEFAULT_UPGRADE_SOCKET)]
    upgrade_socket: PathBuf,
}

impl Default for ProcessArgs {
    fn default() -> Self {
        Self {
            pid_file: None,
            upgrade: false,
            upgrade_socket: PathBuf::from(DEFAULT_UPGRADE_SOCKET),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. `SIGHUP` (or `prehod reload`) reloads the configuration; `SIGQUIT`
    /// hands the listening sockets to a new process started with `--upgrade` (binary upgrade).
    Run {
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        process: ProcessArgs,
    },
    /// Reload a running gateway's configuration: check the file first (when given), then send
    /// `SIGHUP` to the process in the pid file. The gateway logs the outcome and counts it in
    /// `prehod_config_reloads_total{result}`; a bad file leaves the old configuration serving.
    Reload {
        /// The gateway's pid file (`prehod run --pid-file`).
        #[arg(long)]
        pid_file: PathBuf,
        /// Check this configuration before signalling (exit 64 with its problems, no signal).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration: exit 0 with a summary, or list every problem as
    /// FILE:LINE:COL: key: message and exit 64.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the whole system on this machine: the gateway with six demo portals and a
    /// generated dev PKI.
    Dev {
        /// The dev configuration.
        #[arg(long, short, default_value = "deploy/dev/proxy.yaml")]
        config: PathBuf,
        /// Where the dev PKI lives (generated when missing); exported as PREHOD_DEV_CERTS.
        #[arg(long, default_value = "certs/dev")]
        certs: PathBuf,
    },
    /// Run the Rekono simulator alone (development and tests only).
    RekonoSim {
        #[arg(long, short, default_value = "deploy/dev/rekono.yaml")]
        config: PathBuf,
        /// Where the dev PKI lives (generated when missing); exported as PREHOD_DEV_CERTS.
        #[arg(long, default_value = "certs/dev")]
        certs: PathBuf,
    },
    /// Read a password from standard input and print its argon2id hash (for accounts files).
    HashPassword,
    /// Generate a PKI (CA, server certificate, client certificates, CRL) into a directory.
    Pki {
        #[arg(long)]
        out: PathBuf,
        /// The base domain the server certificate covers (with `*.` under it).
        #[arg(long, default_value = "bankart.localhost")]
        domain: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run {
            config: path,
            process,
        } => match load(&path) {
            Ok(config) => run(config, Some(path), &process),
            Err(code) => code,
        },
        Command::Reload { pid_file, config } => reload(&pid_file, config.as_deref()),
        Command::Dev { config, certs } => dev(&config, &certs),
        Command::RekonoSim { config, certs } => rekono_sim(&config, &certs),
        Command::HashPassword => {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err()
                || line.trim_end_matches(['\r', '\n']).is_empty()
            {
                eprintln!("prehod: give the password on standard input");
                return ExitCode::from(EX_CONFIG);
            }
            match prehod_rekono_sim::hash_password(line.trim_end_matches(['\r', '\n'])) {
                Ok(hash) => {
                    println!("{hash}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("prehod: {e}");
                    ExitCode::from(EX_SOFTWARE)
                }
            }
        }
        Command::Pki { out, domain } => {
            match prehod_devpki::generate(&out, &prehod_devpki::dev_server_names(&domain)) {
                Ok(()) => {
                    println!("prehod: wrote a PKI for *.{domain} to {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("prehod: {e}");
                    ExitCode::from(EX_SOFTWARE)
                }
            }
        }
    }
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("{e}");
        eprintln!(
            "prehod: {} problem(s) in {}; not starting",
            e.problems.len(),
            path.display()
        );
        ExitCode::from(EX_CONFIG)
    })
}

fn check(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            let own = config
                .portals
                .iter()
                .filter(|p| p.app_login == AppLogin::Own)
                .count();
            println!(
                "{}: ok — {} portals ({} with their own login), {} certificate(s), https on {}, admin on {}",
                path.display(),
                config.portals.len(),
                own,
                config.tls.certificates.len(),
                config.listen.https,
                config.admin.listen
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: {} problem(s)", path.display(), e.problems.len());
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// pingora does not stop when a port is taken (its listener thread retries, then panics) and
/// cannot report a port it picked: every address is tried here first, with a clear error.
fn check_binds(config: &Config) -> Result<(), String> {
    let mut addrs: Vec<(&str, SocketAddr)> = vec![
        ("listen.https", config.listen.https),
        ("admin.listen", config.admin.listen),
    ];
    if let Some(a) = config.listen.http_redirect {
        addrs.push(("listen.http_redirect", a));
    }
    for (key, addr) in addrs {
        if addr.port() == 0 {
            return Err(format!(
                "{key}: port 0 is not supported: prehod cannot report which port it would get"
            ));
        }
        std::net::TcpListener::bind(addr)
            .map_err(|e| format!("{key}: cannot listen on {addr}: {e}"))?;
    }
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PREHOD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(ClientGone)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_writer(std::io::stdout),
        )
        .try_init();
}

/// pingora logs a client that went away while its request header was read ("Fail to proxy:
/// Downstream ConnectionClosed …, downstream session type: h1") at ERROR, with no hook to say
/// otherwise (`ProxyHttp::suppress_error_log` covers the later phases). Such a line is counted
/// in `prehod_client_disconnects_total{kind="header"}` instead of written, so ERROR stays for
/// what someone must act on.
struct ClientGone;

impl ClientGone {
    fn is_client_gone(event: &tracing::Event<'_>) -> bool {
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    let text = format!("{value:?}");
                    self.0 = text.starts_with("Fail to proxy: Downstream ")
                        && text.contains("while reading request headers")
                        && text.contains("downstream session type:");
                }
            }
        }
        if *event.metadata().level() != tracing::Level::ERROR {
            return false;
        }
        let mut m = Message(false);
        event.record(&mut m);
        m.0
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ClientGone {
    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        if Self::is_client_gone(event) {
            // Counted, not written (an event raised here would be dropped: tracing does not
            // re-enter a subscriber from inside it).
            prehod_gateway::metrics::count_client_disconnect("header");
            return false;
        }
        true
    }
}

/// The directory of `path` (a pid file, the upgrade socket) must be private to this process's
/// user: owned by it or root, writable by neither group nor others — else another local user
/// could plant a symlink or a socket there. `Ok(false)`: the directory does not exist.
fn private_dir(path: &Path) -> Result<bool, String> {
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("/proc/self: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "{}: owned by uid {}, not by this user ({me}) or root",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{}: writable by group or others (mode {:o}): use a directory private to the gateway's user",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(true)
}

/// Writes the pid file: never through a symlink, only in a private directory.
fn write_pid_file(path: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if !private_dir(path)? {
        return Err("its directory does not exist".to_owned());
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(|e| e.to_string())?;
    writeln!(file, "{}", std::process::id()).map_err(|e| e.to_string())
}

/// `prehod reload`: checks the file (when given), then signals the gateway.
fn reload(pid_file: &Path, config: Option<&Path>) -> ExitCode {
    if let Some(path) = config {
        if let Err(code) = load(path) {
            return code;
        }
    }
    if let Err(e) = private_dir(pid_file) {
        eprintln!("prehod: --pid-file {}: {e}", pid_file.display());
        return ExitCode::from(EX_CONFIG);
    }
    let pid = match std::fs::read_to_string(pid_file)
        .map_err(|e| e.to_string())
        .and_then(|t| t.trim().parse::<i32>().map_err(|e| e.to_string()))
    {
        Ok(pid) if pid > 0 => pid,
        Ok(pid) => {
            eprintln!("prehod: {}: not a process id: {pid}", pid_file.display());
            return ExitCode::from(EX_CONFIG);
        }
        Err(e) => {
            eprintln!("prehod: {}: {e}", pid_file.display());
            return ExitCode::from(EX_CONFIG);
        }
    };
    // Only a gateway is signalled: a stale pid file may name another process by now.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let is_prehod = exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("prehod"));
    if !is_prehod {
        eprintln!(
            "prehod: process {pid} (from {}) is not a prehod gateway ({}): nothing signalled",
            pid_file.display(),
            exe.display()
        );
        return ExitCode::from(EX_UNAVAILABLE);
    }
    match nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    ) {
        Ok(()) => {
            println!("prehod: asked process {pid} to reload its configuration (see its log and prehod_config_reloads_total)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("prehod: cannot signal process {pid}: {e}");
            ExitCode::from(EX_UNAVAILABLE)
        }
    }
}

fn run(config: Config, path: Option<PathBuf>, process: &ProcessArgs) -> ExitCode {
    // On an upgrade the old process still holds the addresses: they are handed over instead.
    if !process.upgrade {
        if let Err(message) = check_binds(&config) {
            eprintln!("prehod: {message}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    }
    // Whoever can put a socket at the upgrade path receives the listening sockets at SIGQUIT.
    match private_dir(&process.upgrade_socket) {
        Ok(_) => {}
        Err(e) => {
            eprintln!(
                "prehod: --upgrade-socket {}: {e}",
                process.upgrade_socket.display()
            );
            return ExitCode::from(EX_CONFIG);
        }
    }
    init_logging();
    // SIGHUP reloads (see prehod_gateway::live); until the reload service runs, one must not
    // end the process (its default action): the handler is installed now, for the process.
    if let Err(e) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|rt| {
            rt.block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map(drop)
            })
        })
    {
        eprintln!("prehod: cannot handle SIGHUP: {e}");
        return ExitCode::from(EX_SOFTWARE);
    }
    let mut conf = prehod_gateway::server_conf(&config);
    conf.upgrade_sock = process.upgrade_socket.to_string_lossy().into_owned();
    let opt = pingora::server::configuration::Opt {
        upgrade: process.upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    // With --upgrade: waits here for the old process's sockets (sent at its SIGQUIT).
    server.bootstrap();
    if let Some(pid_file) = &process.pid_file {
        if let Err(e) = write_pid_file(pid_file) {
            eprintln!("prehod: --pid-file {}: {e}", pid_file.display());
            return ExitCode::from(EX_UNAVAILABLE);
        }
    }
    let conf = server.configuration.clone();
    let services = match prehod_gateway::build_reloadable(config, path, &conf) {
        Ok(services) => services,
        Err(e) => {
            eprintln!("prehod: {e}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    server.add_services(services);
    tracing::info!("prehod started");
    // Returns after SIGTERM (graceful, within server.grace_period), SIGINT (fast) or SIGQUIT
    // (sockets handed to the upgrade, then graceful).
    server.run(RunArgs::default());
    if let Some(pid_file) = &process.pid_file {
        // Unless an upgraded process wrote its own pid there meanwhile.
        let ours = std::fs::read_to_string(pid_file)
            .is_ok_and(|p| p.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(pid_file);
        }
    }
    ExitCode::SUCCESS
}

/// Generates the dev PKI when missing and exports its directory as PREHOD_DEV_CERTS, which
/// the dev configs name their files by. Call before any thread starts.
fn dev_pki(certs: &Path) -> Result<PathBuf, ExitCode> {
    let names = prehod_devpki::dev_server_names("bankart.localhost");
    match prehod_devpki::ensure(certs, &names) {
        Ok(true) => println!("prehod dev: generated the dev PKI in {}", certs.display()),
        Ok(false) => {}
        Err(e) => {
            eprintln!("prehod dev: {e}");
            return Err(ExitCode::from(EX_SOFTWARE));
        }
    }
    let certs_abs = std::fs::canonicalize(certs).unwrap_or_else(|_| certs.to_owned());
    std::env::set_var("PREHOD_DEV_CERTS", &certs_abs);
    if std::env::var_os("PREHOD_SESSION_KEY").is_none() {
        match std::fs::read_to_string(certs_abs.join(prehod_devpki::files::SESSION_KEY)) {
            Ok(key) => std::env::set_var("PREHOD_SESSION_KEY", key.trim()),
            Err(e) => {
                eprintln!(
                    "prehod dev: {}: {e} (delete {} to regenerate the dev PKI)",
                    prehod_devpki::files::SESSION_KEY,
                    certs.display()
                );
                return Err(ExitCode::from(EX_SOFTWARE));
            }
        }
    }
    Ok(certs_abs)
}

fn load_sim(path: &Path) -> Result<prehod_rekono_sim::SimConfig, ExitCode> {
    prehod_rekono_sim::SimConfig::load(path).map_err(|e| {
        eprintln!("prehod: Rekono simulator: {e}");
        ExitCode::from(EX_CONFIG)
    })
}

/// Prints the simulator's URL and demo accounts: e-mail, password, level, TOTP secret.
fn print_sim(sim: &prehod_rekono_sim::Sim) {
    println!(
        "  Rekono simulator (NOT Rekono — development only): {}",
        sim.issuer()
    );
    println!(
        "    try every factor in a browser: {}/dev/try   SMS outbox: {}/dev/outbox",
        sim.config.public_url, sim.config.public_url
    );
    println!("    approve a OnePass push: curl --cacert certs/dev/ca.crt -X POST {}/dev/push/ID/approve  (pending: /dev/push)\n", sim.config.public_url);
    println!(
        "    {:<28} {:<14} {:<6} {:<34} factors",
        "account", "password", "level", "OnePass TOTP secret"
    );
    for a in &sim.config.accounts {
        let factors: Vec<String> = sim
            .factors_for(a, a.level)
            .iter()
            .map(|f| format!("{f:?}").to_ascii_lowercase())
            .collect();
        println!(
            "    {:<28} {:<14} {:<6} {:<34} {}",
            a.email,
            a.demo_password.as_deref().unwrap_or("(hashed)"),
            a.level,
            a.totp_secret_base32.as_deref().unwrap_or("-"),
            factors.join(", ")
        );
        if let Some(secret) = &a.totp_secret_base32 {
            println!(
                "      otpauth://totp/Rekono%20(sim):{}?secret={secret}&issuer=Rekono%20(sim)",
                a.email
            );
        }
    }
    println!();
}

fn rekono_sim(config_path: &Path, certs: &Path) -> ExitCode {
    if let Err(code) = dev_pki(certs) {
        return code;
    }
    let config = match load_sim(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("prehod: {e}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    runtime.block_on(async move {
        match prehod_rekono_sim::spawn(config).await {
            Ok(running) => {
                print_sim(&running.sim);
                let _ = tokio::signal::ctrl_c().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("prehod: Rekono simulator: {e}");
                ExitCode::from(EX_UNAVAILABLE)
            }
        }
    })
}

fn dev(config_path: &Path, certs: &Path) -> ExitCode {
    let certs_abs = match dev_pki(certs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let sim_config = match config_path
        .parent()
        .map(|d| d.join("rekono.yaml"))
        .filter(|p| p.exists())
    {
        Some(p) => match load_sim(&p) {
            Ok(c) => Some(c),
            Err(code) => return code,
        },
        None => None,
    };
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };

    // The demo portals run on a runtime of their own, beside pingora's.
    let portals: Vec<(SocketAddr, prehod_demo_portal::PortalInfo)> = config
        .portals
        .iter()
        .filter_map(|p| {
            let target = p.upstream.targets.first()?;
            let addr: SocketAddr = format!("{target}").parse().ok()?;
            Some((
                addr,
                prehod_demo_portal::PortalInfo {
                    name: p.name.clone(),
                    title: p.title.clone(),
                    own_login: p.app_login == AppLogin::Own,
                },
            ))
        })
        .collect();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        runtime.block_on(async move {
            for (addr, info) in portals {
                if let Err(e) = prehod_demo_portal::spawn(addr, info).await {
                    let _ = ready_tx.send(Err(format!("demo portal on {addr}: {e}")));
                    return;
                }
            }
            let sim = match sim_config {
                Some(c) => match prehod_rekono_sim::spawn(c).await {
                    Ok(running) => Some(running.sim),
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("Rekono simulator: {e}")));
                        return;
                    }
                },
                None => None,
            };
            let _ = ready_tx.send(Ok(sim));
            std::future::pending::<()>().await;
        });
    });
    let sim = match ready_rx.recv() {
        Ok(Ok(sim)) => sim,
        Ok(Err(e)) => {
            eprintln!("prehod dev: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
        Err(_) => return ExitCode::from(EX_SOFTWARE),
    };

    let port = config.listen.https.port();
    println!("\nprehod dev — the Bankart Secure Web Gateway on this machine\n");
    if let Some(auth) = &config.auth {
        println!("  Bankart login page: {}/\n", auth.login.url);
    }
    println!("  Portals (through the gateway):");
    for p in &config.portals {
        let own = if p.app_login == AppLogin::Own {
            format!(
                "   then the app's own login: {} / {}",
                prehod_demo_portal::DEMO_USERNAME,
                prehod_demo_portal::DEMO_PASSWORD
            )
        } else {
            String::new()
        };
        println!("    {:<32} https://{}:{port}/{own}", p.title, p.host);
    }
    println!();
    if let Some(sim) = &sim {
        print_sim(sim);
    }
    println!(
        "  Admin:   http://{}/metrics  /healthz  /readyz",
        config.admin.listen
    );
    println!(
        "  Dev CA:  {} (trust it in your browser, or use curl --cacert)",
        certs_abs.join("ca.crt").display()
    );
    println!("  Client certificates: {}/clients/\n", certs_abs.display());
    run(
        config,
        Some(config_path.to_owned()),
        &ProcessArgs::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_is_never_written_through_a_symlink_or_in_a_shared_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let target = dir.path().join("victim");
        std::fs::write(&target, "precious").expect("victim file");
        let link = dir.path().join("prehod.pid");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(write_pid_file(&link).is_err());
        assert_eq!(
            std::fs::read_to_string(&target).expect("victim"),
            "precious"
        );

        let plain = dir.path().join("plain.pid");
        write_pid_file(&plain).expect("a private directory");
        assert_eq!(
            std::fs::read_to_string(&plain).expect("pid").trim(),
            std::process::id().to_string()
        );

        let shared = tempfile::tempdir().expect("dir");
        std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod");
        let err = write_pid_file(&shared.path().join("p.pid")).expect_err("shared");
        assert!(err.contains("writable by group or others"), "{err}");
        assert_eq!(private_dir(&dir.path().join("missing/x.sock")), Ok(false));
    }
}
