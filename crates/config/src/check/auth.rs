//! The login sections together (`login`, `session`, `oidc`, `assertion`, `certificate_login`):
//! required as soon as one portal requires authentication, and checked against the portals.

use serde_yaml::Mapping;

use super::{join, Checker};
use crate::{raw, Portal, Tls};

impl Checker<'_> {
    /// The login sections: required as soon as one portal requires authentication.
    /// `Some(None)`: not needed and not given; `None`: a problem was reported.
    #[allow(clippy::option_option)]
    pub(super) fn auth(
        &mut self,
        top: &Mapping,
        needed: bool,
        tls: Option<&Tls>,
        portals: Option<&[Portal]>,
    ) -> Option<Option<crate::Auth>> {
        let present = ["login", "session", "oidc", "assertion"]
            .iter()
            .any(|k| top.contains_key(*k));
        if !needed && !present {
            return Some(None);
        }
        let login = self.required::<raw::Login>(top, "login");
        let session = self.required::<raw::Session>(top, "session");
        let oidc = self.required::<raw::Oidc>(top, "oidc");
        let assertion = self.required::<raw::Assertion>(top, "assertion");
        let login = login.and_then(|l| self.login(l, tls, portals));
        let session = session.and_then(|s| self.session(s, portals));
        let oidc = oidc.and_then(|o| self.oidc(o));
        let assertion = assertion.and_then(|a| self.assertion(a));
        let needs_certificates =
            portals.is_some_and(|ps| ps.iter().any(|p| p.client_certificate_required));
        if needs_certificates && !top.contains_key("certificate_login") {
            self.problem("", "a portal with client_certificate: required needs the certificate_login section (its trust anchors)");
        }
        let certificate_login =
            match self.optional::<raw::CertificateLogin>(top, "certificate_login") {
                Some(c) => self.certificate_login(c, tls),
                None if top.contains_key("certificate_login") => return None,
                None => None,
            };
        if let Some(portals) = portals {
            self.portals_against_certificate_login(portals, certificate_login.as_ref());
        }
        Some(Some(crate::Auth {
            login: login?,
            session: session?,
            oidc: oidc?,
            assertion: assertion?,
            certificate_login,
        }))
    }

    /// What a portal says about certificates must fit the `certificate_login` section: a
    /// certificate-only portal must accept certificate sessions at their level, and every
    /// `allowed_users` entry with a `:` must be a certificate id of a configured anchor.
    fn portals_against_certificate_login(
        &mut self,
        portals: &[Portal],
        certs: Option<&crate::CertificateLogin>,
    ) {
        for p in portals {
            let key = format!("portals.{}", p.name);
            if p.client_certificate_required {
                if !p.methods.contains(&crate::LoginMethod::Certificate) {
                    self.problem(
                        &join(&key, "methods"),
                        "a portal with client_certificate: required must allow the certificate method",
                    );
                }
                if let Some(c) = certs.filter(|c| p.min_level > c.level) {
                    self.problem(
                        &join(&key, "min_level"),
                        format!(
                            "{} is above certificate_login.level ({}): no certificate could ever reach this certificate-only portal",
                            p.min_level, c.level
                        ),
                    );
                }
            }
            // Another anchor's CA may issue the same O: with several anchors, an organisation
            // is named with its anchor's prefix (`acnlb:Bankart d.o.o.`).
            let anchors = certs.map_or(0, |c| c.anchors.len());
            for (i, org) in p.allowed_organisations.iter().flatten().enumerate() {
                let qualified = certs.is_some_and(|c| {
                    c.anchors.iter().any(|a| {
                        org.get(..a.user_id_prefix.len()) == Some(a.user_id_prefix.as_str())
                    })
                });
                if anchors > 1 && !qualified {
                    self.problem(
                        &format!("{key}.allowed_organisations[{i}]"),
                        format!("{org:?}: with several certificate_login anchors, name the organisation with its anchor's user_id_prefix (such as \"acnlb:{org}\"), or any anchor's CA could issue it"),
                    );
                }
            }
            for (i, user) in p.allowed_users.iter().flatten().enumerate() {
                let Some((prefix, _)) = user.split_once(':') else {
                    continue;
                };
                let prefix = format!("{prefix}:");
                let known =
                    certs.is_some_and(|c| c.anchors.iter().any(|a| a.user_id_prefix == prefix));
                if !known {
                    self.problem(
                        &format!("{key}.allowed_users[{i}]"),
                        format!("{user:?}: {prefix:?} is not the user_id_prefix of any certificate_login anchor (certificate ids are PREFIX:VALUE; Rekono subs contain no ':')"),
                    );
                }
            }
        }
    }
}
