//! The login sections together (`login`, `session`, `oidc` or `providers`, `assertion`,
//! `certificate_login`): required as soon as one portal requires authentication, and checked
//! against the portals (their `methods` name providers, their `allowed_users` user ids).

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
        let present = ["login", "session", "oidc", "providers", "assertion"]
            .iter()
            .any(|k| top.contains_key(*k));
        if !needed && !present {
            return Some(None);
        }
        let login = self.required::<raw::Login>(top, "login");
        let session = self.required::<raw::Session>(top, "session");
        let (valid_providers, providers_ok) = self.providers(top);
        let assertion = self.required::<raw::Assertion>(top, "assertion");
        let login = login.and_then(|l| self.login(l, tls, portals));
        let session = session.and_then(|s| self.session(s, portals));
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
            let prefixes: Vec<String> = valid_providers
                .iter()
                .map(|p| p.user_id_prefix.clone())
                .filter(|p| !p.is_empty())
                .collect();
            self.portals_against_certificate_login(portals, certificate_login.as_ref(), &prefixes);
        }
        // The providers that were well written, checked against the rest even when another
        // was not: every problem at once.
        if !valid_providers.is_empty() {
            self.providers_against_the_rest(&valid_providers, portals, certificate_login.as_ref());
        }
        let providers = providers_ok.then_some(valid_providers);
        Some(Some(crate::Auth {
            login: login?,
            session: session?,
            providers: providers?,
            assertion: assertion?,
            certificate_login,
        }))
    }

    /// The OpenID providers: `providers:` (a list), or the single `oidc:` section (one
    /// provider, id `rekono`); never both, never none. Each checked, then the list: no two
    /// with one id, no two with one issuer and client.
    /// Returns the providers that are well written, and whether all are.
    fn providers(&mut self, top: &Mapping) -> (Vec<crate::Oidc>, bool) {
        let list = match (top.get("oidc"), top.get("providers")) {
            (Some(_), Some(_)) => {
                self.problem(
                    "providers",
                    "oidc and providers both name the OpenID providers: keep one (oidc is one provider, id rekono)",
                );
                return (Vec::new(), false);
            }
            (Some(one), None) => {
                let raw = self.decode::<raw::Oidc>(one, "oidc");
                vec![raw.and_then(|raw| self.oidc(raw, "oidc"))]
            }
            (None, Some(many)) => {
                let Some(raws) = self.decode::<Vec<serde_yaml::Value>>(many, "providers") else {
                    return (Vec::new(), false);
                };
                if raws.is_empty() {
                    self.problem("providers", "must name at least one provider");
                    return (Vec::new(), false);
                }
                raws.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let at = format!("providers[{i}]");
                        let raw = self.decode::<raw::Oidc>(v, &at)?;
                        if raw.id.is_none() {
                            self.problem(&at, "required key `id` is missing");
                            return None;
                        }
                        self.oidc(raw, &at)
                    })
                    .collect()
            }
            (None, None) => {
                self.problem(
                    "",
                    "required key `oidc` (one provider) or `providers` (a list) is missing",
                );
                return (Vec::new(), false);
            }
        };
        let at = |i: usize| {
            if top.contains_key("providers") {
                format!("providers[{i}]")
            } else {
                "oidc".to_owned()
            }
        };
        for (i, p) in list.iter().enumerate() {
            let Some(p) = p else { continue };
            let earlier = list.iter().take(i).flatten();
            if let Some(first) = earlier.clone().position(|q| q.id == p.id) {
                self.problem(
                    &format!("{}.id", at(i)),
                    format!("{:?} is already the id of {}", p.id, at(first)),
                );
            }
            if let Some(first) = earlier
                .clone()
                .position(|q| q.issuer == p.issuer && q.client_id == p.client_id)
            {
                self.problem(
                    &format!("{}.client_id", at(i)),
                    format!(
                        "{} already is issuer {} with client {:?}: one registration is one provider",
                        at(first),
                        p.issuer,
                        p.client_id
                    ),
                );
            }
        }
        let all = list.iter().all(Option::is_some);
        (list.into_iter().flatten().collect(), all)
    }

    /// What names a provider elsewhere must name one of `providers`: portals' `methods`; and
    /// user ids must stay apart: no provider's prefix is (or starts) a certificate anchor's.
    fn providers_against_the_rest(
        &mut self,
        providers: &[crate::Oidc],
        portals: Option<&[Portal]>,
        certs: Option<&crate::CertificateLogin>,
    ) {
        let ids: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
        for p in portals.unwrap_or_default() {
            for (i, m) in p.methods.iter().enumerate() {
                if let crate::LoginMethod::Provider(id) = m {
                    if !ids.contains(&id.as_str()) {
                        self.problem(
                            &format!("portals.{}.methods[{i}]", p.name),
                            format!(
                                "{id:?} is not certificate nor the id of a provider (providers: {})",
                                ids.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        let anchors = certs.map(|c| c.anchors.as_slice()).unwrap_or_default();
        for (i, p) in providers.iter().enumerate() {
            let clash = anchors.iter().find(|a| {
                !p.user_id_prefix.is_empty()
                    && (a.user_id_prefix.starts_with(&p.user_id_prefix)
                        || p.user_id_prefix.starts_with(&a.user_id_prefix))
            });
            if let Some(a) = clash {
                let at = if providers.len() == 1 && p.id == crate::DEFAULT_PROVIDER_ID {
                    "oidc.id".to_owned()
                } else {
                    format!("providers[{i}].id")
                };
                self.problem(
                    &at,
                    format!(
                        "its user ids ({}…) could equal those of certificate anchor {:?} ({}…): choose another id or user_id_prefix",
                        p.user_id_prefix, a.name, a.user_id_prefix
                    ),
                );
            }
        }
    }

    /// What a portal says about certificates must fit the `certificate_login` section: a
    /// certificate-only portal must accept certificate sessions at their level, and every
    /// `allowed_users` entry with a `:` must be a certificate id of a configured anchor.
    fn portals_against_certificate_login(
        &mut self,
        portals: &[Portal],
        certs: Option<&crate::CertificateLogin>,
        provider_prefixes: &[String],
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
                let known = certs
                    .is_some_and(|c| c.anchors.iter().any(|a| a.user_id_prefix == prefix))
                    || provider_prefixes.contains(&prefix);
                if !known {
                    self.problem(
                        &format!("{key}.allowed_users[{i}]"),
                        format!("{user:?}: {prefix:?} is not the user_id_prefix of any certificate_login anchor nor a provider's ID: (certificate ids are PREFIX:VALUE, other providers' ids ID:SUB; Rekono subs contain no ':')"),
                    );
                }
            }
        }
    }
}

/// The id of the first of `providers:` (or of the single `oidc:`), read before the portals are
/// checked (a portal without `methods` allows it); `None` when none is written (`rekono`).
pub(super) fn first_provider_id(top: &Mapping) -> Option<String> {
    let first = match top.get("providers") {
        Some(list) => list.as_sequence()?.first()?,
        None => top.get("oidc")?,
    };
    first.get("id")?.as_str().map(str::to_owned)
}
