//! `prehod run`: checks the listener addresses and the process's private paths, then starts
//! pingora with the gateway's services and runs until `SIGTERM`, `SIGINT` or `SIGQUIT`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use pingora::server::{RunArgs, Server};
use prehod_config::Config;

use crate::process::{private_dir, remove_pid_file, write_pid_file, ProcessArgs};
use crate::{EX_CONFIG, EX_SOFTWARE, EX_UNAVAILABLE};

/// `prehod run --config PATH`: loads the file, then runs the gateway on it.
pub(crate) fn run_file(path: PathBuf, process: &ProcessArgs) -> ExitCode {
    match crate::check::load(&path) {
        Ok(config) => run(config, Some(path), process),
        Err(code) => code,
    }
}

/// Runs the gateway on `config`; `path` is the file reloads read again.
pub(crate) fn run(config: Config, path: Option<PathBuf>, process: &ProcessArgs) -> ExitCode {
    // On an upgrade the old process still holds the addresses: they are handed over instead.
    if !process.upgrade {
        if let Err(message) = check_binds(&config) {
            eprintln!("prehod: {message}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    }
    // Whoever can put a socket at the upgrade path receives the listening sockets at SIGQUIT.
    if let Err(e) = private_dir(&process.upgrade_socket) {
        eprintln!(
            "prehod: --upgrade-socket {}: {e}",
            process.upgrade_socket.display()
        );
        return ExitCode::from(EX_CONFIG);
    }
    crate::logging::init_logging();
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
    // The access log's lines go out every 50 ms from this thread: without it a quiet gateway
    // would hold them back (the error is logged).
    if !prehod_gateway::access_log::start_flusher() {
        eprintln!("prehod: the access log's flusher thread did not start");
        return ExitCode::from(EX_SOFTWARE);
    }
    tracing::info!("prehod started");
    // Returns after SIGTERM (graceful, within server.grace_period), SIGINT (fast) or SIGQUIT
    // (sockets handed to the upgrade, then graceful).
    server.run(RunArgs::default());
    // The access log's last lines (it writes in batches).
    prehod_gateway::access_log::flush();
    if let Some(pid_file) = &process.pid_file {
        remove_pid_file(pid_file);
    }
    ExitCode::SUCCESS
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
