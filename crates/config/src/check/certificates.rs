//! `certificate_login`: the certificate-login host, its trust anchors, and where each
//! anchor's revocation data comes from — each CRL source bound to the CA whose CRL it is.

use openssl::x509::{X509NameRef, X509};
use serde_yaml::Value;

use super::values::is_host_name;
use super::{join, Checker};
use crate::{raw, AnchorCrl, CrlSource, Tls};

impl Checker<'_> {
    pub(super) fn certificate_login(
        &mut self,
        raw: raw::CertificateLogin,
        tls: Option<&Tls>,
    ) -> Option<crate::CertificateLogin> {
        let host = raw.host.to_ascii_lowercase();
        if !is_host_name(&host) {
            self.problem(
                "certificate_login.host",
                format!("{:?} is not a host name", raw.host),
            );
        }
        if let Some(tls) = tls {
            if !tls.certificates.iter().any(|c| c.covers(&host)) {
                self.problem(
                    "certificate_login.host",
                    format!("no certificate in tls.certificates covers {host}"),
                );
            }
        }
        let level = raw.level.unwrap_or(30);
        if !matches!(level, 10 | 20 | 30) {
            self.problem(
                "certificate_login.level",
                format!("{level} is not 10, 20 or 30"),
            );
        }
        if raw.anchors.is_empty() {
            self.problem(
                "certificate_login.anchors",
                "at least one trust anchor is needed",
            );
        }
        let mut anchors = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        for (i, a) in raw.anchors.iter().enumerate() {
            let key = format!("certificate_login.anchors[{i}]");
            let ca = self
                .certificates_pem(&a.ca, &join(&key, "ca"), "CA")
                .map(|(_, c)| c);
            let user_id = a.user_id.clone().unwrap_or_else(|| "serial_number".into());
            let template = user_id.contains('{');
            if template {
                let known = ["serial_number", "common_name", "email", "organization"];
                let unknown: Vec<&str> = user_id
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split('}').next())
                    .filter(|p| !known.contains(p))
                    .collect();
                if !unknown.is_empty() {
                    self.problem(
                        &join(&key, "user_id"),
                        format!("unknown placeholder(s) {unknown:?}; use {known:?}"),
                    );
                }
            } else if !matches!(user_id.as_str(), "serial_number" | "common_name" | "email") {
                self.problem(
                    &join(&key, "user_id"),
                    format!("{user_id:?} is not one of: serial_number, common_name, email"),
                );
            }
            let crls = match &ca {
                Some(ca) => self.anchor_crls(&key, &a.crls, ca),
                None => Vec::new(),
            };
            let ocsp = a.ocsp.as_ref().and_then(|o| {
                let okey = join(&key, "ocsp");
                match url::Url::parse(&o.url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    _ => {
                        self.problem(
                            &join(&okey, "url"),
                            format!("{:?} is not an http(s) URL", o.url),
                        );
                        return None;
                    }
                }
                let soft_fail = match o.policy.as_deref().unwrap_or("fail_closed") {
                    "fail_closed" => false,
                    "soft_fail" => true,
                    other => {
                        self.problem(
                            &join(&okey, "policy"),
                            format!("{other:?} is not one of: fail_closed, soft_fail"),
                        );
                        return None;
                    }
                };
                Some(crate::OcspSettings {
                    url: o.url.clone(),
                    soft_fail,
                    timeout: self
                        .duration(o.timeout.as_ref(), &join(&okey, "timeout"))
                        .unwrap_or(std::time::Duration::from_secs(3)),
                    cache: self
                        .duration(o.cache.as_ref(), &join(&okey, "cache"))
                        .unwrap_or(std::time::Duration::from_secs(300)),
                    nonce: o.nonce.unwrap_or(false),
                    max_age: self
                        .duration(o.max_age.as_ref(), &join(&okey, "max_age"))
                        .unwrap_or(crate::DEFAULT_OCSP_MAX_AGE),
                })
            });
            let prefix = a
                .user_id_prefix
                .clone()
                .unwrap_or_else(|| crate::default_user_id_prefix(&a.name));
            let prefix_key = join(&key, "user_id_prefix");
            if prefix.len() < 2
                || !prefix.ends_with(':')
                || prefix.matches(':').count() != 1
                || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                self.problem(
                    &prefix_key,
                    format!("{prefix:?} must be a name followed by one ':' (such as \"acnlb:\"), so that certificate ids never equal a Rekono sub or another anchor's ids"),
                );
            } else if let Some(j) = prefixes
                .iter()
                .position(|p: &String| p.eq_ignore_ascii_case(&prefix))
            {
                self.problem(
                    &prefix_key,
                    format!("{prefix:?} is also the user-id prefix of certificate_login.anchors[{j}]: their user ids could collide; give each anchor its own user_id_prefix"),
                );
            }
            prefixes.push(prefix.clone());
            if let Some(ca) = ca {
                anchors.push(crate::TrustAnchor {
                    name: a.name.clone(),
                    ca,
                    crls,
                    user_id,
                    user_id_prefix: prefix,
                    policies: a.policies.clone(),
                    ocsp,
                    crl_distribution_points: a.crl_distribution_points,
                    clock_skew: self.duration(a.clock_skew.as_ref(), &join(&key, "clock_skew")),
                    max_chain_depth: a.max_chain_depth,
                });
            }
        }
        let skew = self
            .duration(raw.clock_skew.as_ref(), "certificate_login.clock_skew")
            .unwrap_or(std::time::Duration::from_secs(300));
        let refresh = self
            .duration(raw.crl_refresh.as_ref(), "certificate_login.crl_refresh")
            .unwrap_or(std::time::Duration::from_secs(60));
        let grace = self.duration(raw.crl_grace.as_ref(), "certificate_login.crl_grace");
        let fetch_timeout = self
            .duration(
                raw.fetch_timeout.as_ref(),
                "certificate_login.fetch_timeout",
            )
            .unwrap_or(std::time::Duration::from_secs(10));
        (anchors.len() == raw.anchors.len()).then_some(())?;
        Some(crate::CertificateLogin {
            host,
            level,
            clock_skew: skew,
            max_chain_depth: raw.max_chain_depth.unwrap_or(4),
            crl_refresh: refresh,
            crl_grace: grace,
            fetch_timeout,
            anchors,
        })
    }

    /// An anchor's `crls`: each a file or an http(s) URL, as a string or as
    /// `{source: …, issuer: …}`, where `issuer` names the CA of the anchor whose CRL it is (its
    /// subject as `CN=…, O=…`, or its common name). Without `issuer`, the anchor's CA
    /// certificates must all bear one name, which is then the issuer of every source.
    fn anchor_crls(&mut self, key: &str, entries: &[Value], ca: &[X509]) -> Vec<AnchorCrl> {
        let mut names: Vec<(Vec<u8>, String, String)> = Vec::new();
        for c in ca {
            let name = c.subject_name();
            let Ok(der) = name.to_der() else { continue };
            if !names.iter().any(|(d, _, _)| *d == der) {
                names.push((der, display_name(name), common_name(name)));
            }
        }
        let mut out = Vec::new();
        for (j, entry) in entries.iter().enumerate() {
            let ekey = format!("{key}.crls[{j}]");
            let (source, issuer) = match entry {
                Value::String(s) => (s.clone(), None),
                Value::Mapping(m) => {
                    let mut source = None;
                    let mut issuer = None;
                    for (k, v) in m {
                        match (k.as_str(), v.as_str()) {
                            (Some("source"), Some(s)) => source = Some(s.to_owned()),
                            (Some("issuer"), Some(s)) => issuer = Some(s.to_owned()),
                            (Some(k @ ("source" | "issuer")), None) => {
                                self.problem(&join(&ekey, k), "must be a string");
                            }
                            (k, _) => self.problem(
                                &ekey,
                                format!(
                                    "unknown key {k:?}: a CRL source has `source` and `issuer`",
                                    k = k.unwrap_or("?")
                                ),
                            ),
                        }
                    }
                    let Some(source) = source else {
                        self.problem(&ekey, "no `source` (the CRL's file or http(s) URL)");
                        continue;
                    };
                    (source, issuer)
                }
                _ => {
                    self.problem(
                        &ekey,
                        "a CRL source is a file or URL, or {source: …, issuer: …}",
                    );
                    continue;
                }
            };
            let source = if source.starts_with("http://") || source.starts_with("https://") {
                match url::Url::parse(&source) {
                    Ok(_) => CrlSource::Url(source),
                    Err(e) => {
                        self.problem(&ekey, format!("{source:?} is not a URL: {e}"));
                        continue;
                    }
                }
            } else {
                let path = self.file_path(&source);
                if !path.is_file() {
                    self.problem(&ekey, format!("cannot read CRL file {}", path.display()));
                    continue;
                }
                CrlSource::File(path)
            };
            let listed = || {
                names
                    .iter()
                    .map(|(_, d, _)| format!("{d:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let chosen = match &issuer {
                Some(wanted) => {
                    let by_name: Vec<_> = names.iter().filter(|(_, d, _)| d == wanted).collect();
                    let by_cn: Vec<_> = names.iter().filter(|(_, _, cn)| cn == wanted).collect();
                    match (by_name.as_slice(), by_cn.as_slice()) {
                        ([one], _) | ([], [one]) => Some((*one).clone()),
                        ([], []) => {
                            self.problem(
                                &join(&ekey, "issuer"),
                                format!(
                                    "{wanted:?} names none of this anchor's CA certificates ({})",
                                    listed()
                                ),
                            );
                            None
                        }
                        _ => {
                            self.problem(
                                &join(&ekey, "issuer"),
                                format!("{wanted:?} is the common name of several of this anchor's CAs: give the whole subject ({})", listed()),
                            );
                            None
                        }
                    }
                }
                None => match names.as_slice() {
                    [one] => Some(one.clone()),
                    _ => {
                        self.problem(
                            &ekey,
                            format!(
                                "this anchor's CA certificates bear {} names ({}): say whose CRL this is, as {{source: …, issuer: NAME}}, so that another CA's CRL is never taken for it",
                                names.len(),
                                listed()
                            ),
                        );
                        None
                    }
                },
            };
            if let Some((der, display, _)) = chosen {
                out.push(AnchorCrl {
                    source,
                    issuer: der,
                    issuer_name: display,
                });
            }
        }
        out
    }
}

/// A name as people write it: `CN=…, O=…`, in the certificate's order.
fn display_name(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn common_name(name: &X509NameRef) -> String {
    name.entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default()
}
