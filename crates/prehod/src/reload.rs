//! `prehod reload`: checks the configuration (when given), then sends `SIGHUP` to the gateway
//! named by its pid file — and only to a prehod gateway.

use std::path::Path;
use std::process::ExitCode;

use crate::process::private_dir;
use crate::{EX_CONFIG, EX_UNAVAILABLE};

pub(crate) fn reload(pid_file: &Path, config: Option<&Path>) -> ExitCode {
    if let Some(path) = config {
        if let Err(code) = crate::check::load(path) {
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
