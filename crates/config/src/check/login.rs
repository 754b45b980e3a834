//! `login`: the login host, its public URL, help links, portal prefix and templates.

use super::values::is_host_name;
use super::{join, Checker};
use crate::{raw, Portal, Tls};

impl Checker<'_> {
    pub(super) fn login(
        &mut self,
        raw: raw::Login,
        tls: Option<&Tls>,
        portals: Option<&[Portal]>,
    ) -> Option<crate::Login> {
        let host = raw.host.to_ascii_lowercase();
        if !is_host_name(&host) {
            self.problem("login.host", format!("{:?} is not a host name", raw.host));
            return None;
        }
        if let Some(tls) = tls {
            if !tls.certificates.iter().any(|c| c.covers(&host)) {
                self.problem(
                    "login.host",
                    format!("no certificate in tls.certificates covers {host}"),
                );
            }
        }
        if let Some(p) = portals.and_then(|ps| ps.iter().find(|p| p.host == host)) {
            self.problem(
                "login.host",
                format!("host {host} is already used by portal {}", p.name),
            );
        }
        let mut url = |value: Option<String>, key: &str, default: &str| -> String {
            let value = value.unwrap_or_else(|| default.to_owned());
            match url::Url::parse(&value) {
                Ok(u) if u.scheme() == "https" => value,
                _ => {
                    self.problem(
                        &join("login", key),
                        format!("{value:?} is not an https:// URL"),
                    );
                    value
                }
            }
        };
        let help_url = url(raw.help_url, "help_url", "https://www.bankart.si/");
        let rekono_instructions_url = url(
            raw.rekono_instructions_url,
            "rekono_instructions_url",
            "https://www.rekono.si/",
        );
        let certificate_instructions_url = url(
            raw.certificate_instructions_url,
            "certificate_instructions_url",
            "https://www.bankart.si/",
        );
        let public_url = raw
            .url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://{host}"));
        match url::Url::parse(&public_url) {
            Ok(u)
                if u.scheme() == "https"
                    && u.host_str() == Some(host.as_str())
                    && (u.path() == "/" || u.path().is_empty()) => {}
            _ => self.problem(
                "login.url",
                format!("{public_url:?} is not https://{host}[:port]"),
            ),
        }
        let portal_prefix = raw
            .portal_prefix
            .unwrap_or_else(|| crate::DEFAULT_PORTAL_PREFIX.to_owned());
        let name = portal_prefix
            .strip_prefix('/')
            .and_then(|p| p.strip_suffix('/'))
            .unwrap_or_default();
        if name.is_empty()
            || name == "."
            || name == ".."
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
        {
            self.problem(
                "login.portal_prefix",
                format!(
                    "{portal_prefix:?} is not one path segment between slashes, e.g. \"/.prehod/\""
                ),
            );
        }
        let templates = raw.templates.map(|t| self.file_path(&t));
        if let Some(dir) = &templates {
            if !dir.is_dir() {
                self.problem(
                    "login.templates",
                    format!("{} is not a directory", dir.display()),
                );
            }
        }
        Some(crate::Login {
            host,
            url: public_url,
            help_url,
            rekono_instructions_url,
            certificate_instructions_url,
            support_email: raw
                .support_email
                .unwrap_or_else(|| crate::DEFAULT_SUPPORT_EMAIL.into()),
            templates,
            portal_prefix,
        })
    }
}
