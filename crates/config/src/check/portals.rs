//! `portals`: each portal's host, login rules and settings (its upstream: `upstream.rs`).

use serde_yaml::Value;

use super::values::is_host_name;
use super::{join, Checker};
use crate::{raw, AppLogin, HealthCheck, Portal, Timeouts, Tls, Upstream};

impl Checker<'_> {
    pub(super) fn portals(
        &mut self,
        raw: Option<&Value>,
        tls: Option<&Tls>,
        defaults: Timeouts,
    ) -> Option<Vec<Portal>> {
        let Some(raw) = raw else {
            self.problem("", "required key `portals` is missing");
            return None;
        };
        let Value::Mapping(map) = raw else {
            self.problem("portals", "must map portal names to their settings");
            return None;
        };
        if map.is_empty() {
            self.problem("portals", "at least one portal is needed");
            return None;
        }
        let mut ok = true;
        let mut portals: Vec<Portal> = Vec::new();
        let mut hosts: Vec<(String, String)> = Vec::new();
        for (name, value) in map {
            let Some(name) = name.as_str() else {
                self.problem("portals", "portal names must be strings");
                ok = false;
                continue;
            };
            let key = join("portals", name);
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                self.problem(&key, "a portal name uses a-z, 0-9 and '-' only");
                ok = false;
            }
            if crate::RESERVED_PORTAL_NAMES.contains(&name) {
                self.problem(
                    &key,
                    format!(
                        "{name:?} cannot name a portal: the metrics use it for requests that no portal serves (reserved: {})",
                        crate::RESERVED_PORTAL_NAMES.join(", ")
                    ),
                );
                ok = false;
            }
            let Some(raw) = self.decode::<raw::Portal>(value, &key) else {
                ok = false;
                continue;
            };
            // Compared before the rest is checked, so a portal with another mistake still
            // counts as the host's first user.
            let host = raw.host.to_ascii_lowercase();
            match hosts.iter().find(|(h, _)| *h == host) {
                Some((_, other)) => {
                    let message = format!("host {host} is already used by portal {other}");
                    self.problem(&join(&key, "host"), message);
                    ok = false;
                }
                None => hosts.push((host, name.to_owned())),
            }
            match self.portal(name, raw, &key, tls, defaults) {
                Some(portal) => portals.push(portal),
                None => ok = false,
            }
        }
        ok.then_some(portals)
    }

    fn portal(
        &mut self,
        name: &str,
        raw: raw::Portal,
        key: &str,
        tls: Option<&Tls>,
        defaults: Timeouts,
    ) -> Option<Portal> {
        let host_key = join(key, "host");
        let host = raw.host.to_ascii_lowercase();
        let host = if is_host_name(&host) {
            Some(host)
        } else {
            self.problem(
                &host_key,
                format!("{:?} is not a host name: write only the name, e.g. acq.bankart.si (no scheme, port or path)", raw.host),
            );
            None
        };
        if let (Some(host), Some(tls)) = (&host, tls) {
            if !tls.certificates.iter().any(|c| c.covers(host)) {
                self.problem(
                    &host_key,
                    format!("no certificate in tls.certificates covers {host}"),
                );
            }
        }
        let app_login = match raw.app_login.as_deref() {
            None | Some("gateway") => Some(AppLogin::Gateway),
            Some("own") => Some(AppLogin::Own),
            Some(other) => {
                self.problem(
                    &join(key, "app_login"),
                    format!("{other:?} is not one of: gateway, own"),
                );
                None
            }
        };
        let upstream = match (raw.upstream, raw.forward_auth) {
            (Some(upstream), false) => self.upstream(upstream, &join(key, "upstream")),
            (None, true) => Some(Upstream {
                targets: Vec::new(),
                tls: None,
                // Nothing to check: the pool has no targets.
                health_check: HealthCheck {
                    interval: std::time::Duration::from_secs(5),
                    timeout: std::time::Duration::from_secs(1),
                },
            }),
            (None, false) => {
                self.problem(key, "required key `upstream` is missing (or `forward_auth: true` for a portal behind another proxy)");
                None
            }
            (Some(_), true) => {
                self.problem(
                    &join(key, "upstream"),
                    "a forward_auth portal has no upstream: the proxy in front of it forwards its requests",
                );
                None
            }
        };
        if raw.forward_auth && raw.client_certificate.is_some() {
            self.problem(
                &join(key, "forward_auth"),
                "a certificate-only portal (client_certificate) cannot be a forward_auth portal: its handshake is the gateway's",
            );
        }
        let timeouts = self.timeouts(&raw.timeouts, &join(key, "timeouts"), defaults);
        let min_level = raw.min_level.unwrap_or(10);
        if !matches!(min_level, 10 | 20 | 30) {
            self.problem(
                &join(key, "min_level"),
                format!("{min_level} is not 10 (low), 20 (substantial) or 30 (high)"),
            );
        }
        // Without `methods`: the first provider and certificates. A provider added to the
        // list is allowed only where a portal names it (checked against the list in `auth`).
        let methods = match raw.methods {
            None => vec![
                crate::LoginMethod::Provider(self.default_provider.clone()),
                crate::LoginMethod::Certificate,
            ],
            Some(names) => names
                .into_iter()
                .map(|m| match m.as_str() {
                    "certificate" => crate::LoginMethod::Certificate,
                    _ => crate::LoginMethod::Provider(m),
                })
                .collect(),
        };
        let http_methods = self.http_methods(raw.http_methods, key);
        Some(Portal {
            min_level,
            methods,
            http_methods: http_methods?,
            allowed_users: raw.allowed_users,
            allowed_organisations: raw.allowed_organisations,
            client_certificate_required: match raw.client_certificate.as_deref() {
                None => false,
                Some("required") => true,
                Some(other) => {
                    self.problem(&join(key, "client_certificate"), format!("{other:?} is not `required` (certificate login elsewhere is optional by design)"));
                    false
                }
            },
            danger_no_authentication: raw.danger_no_authentication,
            forward_auth: raw.forward_auth,
            name: name.to_owned(),
            host: host?,
            title: raw.title.unwrap_or_else(|| name.to_owned()),
            app_login: app_login?,
            upstream: upstream?,
            timeouts,
        })
    }
}
