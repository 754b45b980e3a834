//! The development commands — `dev`, `rekono-sim`, `pki`, `hash-password` — compiled only with
//! the `dev` feature (the default): the production build (`--no-default-features`) has none of
//! this code, nor the Rekono simulator, the demo portals or the dev PKI generator it uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use prehod_config::AppLogin;

use crate::{EX_CONFIG, EX_SOFTWARE, EX_UNAVAILABLE};

#[derive(clap::Subcommand)]
pub(crate) enum DevCommand {
    /// Run the whole system on this machine: the gateway with six demo portals and a
    /// generated dev PKI (development only).
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
    /// Read a password from standard input and print its argon2id hash (for the Rekono
    /// simulator's accounts files).
    HashPassword,
    /// Generate a development PKI (CA, server certificate, client certificates, CRL) into a
    /// directory.
    Pki {
        #[arg(long)]
        out: PathBuf,
        /// The base domain the server certificate covers (with `*.` under it).
        #[arg(long, default_value = "bankart.localhost")]
        domain: String,
    },
}

pub(crate) fn dispatch(command: DevCommand) -> ExitCode {
    match command {
        DevCommand::Dev { config, certs } => dev(&config, &certs),
        DevCommand::RekonoSim { config, certs } => rekono_sim(&config, &certs),
        DevCommand::HashPassword => hash_password(),
        DevCommand::Pki { out, domain } => pki(&out, &domain),
    }
}

fn hash_password() -> ExitCode {
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

fn pki(out: &Path, domain: &str) -> ExitCode {
    match prehod_devpki::generate(out, &prehod_devpki::dev_server_names(domain)) {
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

/// Generates the dev PKI when missing and exports its directory as PREHOD_DEV_CERTS, which
/// the dev configs name their files by. Call before any thread starts.
fn dev_pki(certs: &Path) -> Result<PathBuf, ExitCode> {
    let names = prehod_devpki::dev_server_names("bankart.localhost");
    match prehod_devpki::ensure(certs, &names) {
        Ok(prehod_devpki::Ensured::Generated) => {
            println!("prehod dev: generated the dev PKI in {}", certs.display())
        }
        Ok(prehod_devpki::Ensured::RenewedServerCertificate) => println!(
            "prehod dev: issued a new server certificate in {} (the old one had less than {} days left)",
            certs.display(),
            prehod_devpki::SERVER_CERT_RENEW_DAYS
        ),
        Ok(prehod_devpki::Ensured::Kept) => {}
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

/// The simulator configurations `prehod dev` starts when they are beside its config: Rekono,
/// and the simulator again as a second identity provider ("Bankart staff IdP").
const SIMULATORS: [&str; 2] = ["rekono.yaml", "staff-idp.yaml"];

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
    crate::logging::init_logging();
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
    // The simulators beside the config: Rekono, and the same simulator as a second
    // provider (Bankart's staff IdP), each when its file is there.
    let mut sim_configs = Vec::new();
    for name in SIMULATORS {
        let Some(p) = config_path
            .parent()
            .map(|d| d.join(name))
            .filter(|p| p.exists())
        else {
            continue;
        };
        match load_sim(&p) {
            Ok(c) => sim_configs.push(c),
            Err(code) => return code,
        }
    }
    let config = match crate::check::load(config_path) {
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
            let mut sims = Vec::new();
            for c in sim_configs {
                match prehod_rekono_sim::spawn(c).await {
                    Ok(running) => sims.push(running.sim),
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("Rekono simulator: {e}")));
                        return;
                    }
                }
            }
            let _ = ready_tx.send(Ok(sims));
            std::future::pending::<()>().await;
        });
    });
    let sims = match ready_rx.recv() {
        Ok(Ok(sims)) => sims,
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
    for sim in &sims {
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
    crate::run::run(
        config,
        Some(config_path.to_owned()),
        &crate::process::ProcessArgs::default(),
    )
}
