//! `prehod`: the Bankart Secure Web Gateway's command line — argument parsing and dispatch
//! only; each command's body lives in a module of its own.
//!
//! `run`, `check` and `reload` are the gateway. `dev`, `rekono-sim`, `pki` and `hash-password`
//! exist only in a build with the `dev` feature (the default, so that `cargo run -- dev` and the
//! tests have them); the production build (`--no-default-features`: Dockerfile, deploy/) has
//! none of their code.
//!
//! Exit codes: 0 success, 64 bad configuration or usage (EX_USAGE), 69 a listener address
//! cannot be bound (EX_UNAVAILABLE), 70 an internal failure (EX_SOFTWARE).

mod check;
#[cfg(feature = "dev")]
mod dev;
mod logging;
mod process;
mod reload;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc rather than glibc's malloc for Rust's allocations: with its background threads it
/// gives memory freed by closed connections back to the system (glibc kept all of it:
/// benches/README.md, "connections").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub(crate) const EX_CONFIG: u8 = 64;
pub(crate) const EX_UNAVAILABLE: u8 = 69;
pub(crate) const EX_SOFTWARE: u8 = 70;

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

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. `SIGHUP` (or `prehod reload`) reloads the configuration; `SIGQUIT`
    /// hands the listening sockets to a new process started with `--upgrade` (binary upgrade).
    Run {
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        process: process::ProcessArgs,
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
    #[cfg(feature = "dev")]
    #[command(flatten)]
    Dev(dev::DevCommand),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run { config, process } => run::run_file(config, &process),
        Command::Reload { pid_file, config } => reload::reload(&pid_file, config.as_deref()),
        Command::Check { config } => check::check(&config),
        #[cfg(feature = "dev")]
        Command::Dev(command) => dev::dispatch(command),
    }
}
