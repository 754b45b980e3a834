//! `prehod check`, and loading a configuration for the other commands: every problem printed
//! as `FILE:LINE:COL: key: message`, exit 64.

use std::path::Path;
use std::process::ExitCode;

use prehod_config::{AppLogin, Config};

use crate::EX_CONFIG;

/// Loads `path`, or prints its problems and returns the exit code (64).
pub(crate) fn load(path: &Path) -> Result<Config, ExitCode> {
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

/// `prehod check`: a one-line summary, or every problem.
pub(crate) fn check(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            if let Err(e) = check_pages(&config) {
                eprintln!("{}: login.templates: {e}", path.display());
                eprintln!("{}: 1 problem(s)", path.display());
                return ExitCode::from(EX_CONFIG);
            }
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
            let forgetful = config
                .auth
                .as_ref()
                .is_some_and(|a| a.session.revocation_file.is_none() && config.state.is_none());
            if forgetful {
                eprintln!(
                    "{}: warning: neither state: nor session.revocation_file is set: a restart forgets every logout, ended session and \"end all\" while the sessions they ended live on",
                    path.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: {} problem(s)", path.display(), e.problems.len());
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// The pages with `login.templates`' replacements, each rendered in every language as at the
/// start: a broken template or a catalogue that lacks a text is found here.
fn check_pages(config: &Config) -> Result<(), prehod_gateway::pages::PagesError> {
    let Some(login) = config.auth.as_ref().map(|a| &a.login) else {
        return Ok(());
    };
    prehod_gateway::pages::Pages::new(login.templates.as_deref(), &login.support_email).map(|_| ())
}
