//! `certificate_login`: the certificate-login host, its trust anchors, CRLs and OCSP.

use super::values::is_host_name;
use super::{join, Checker};
use crate::{raw, Tls};

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
            let mut crls = Vec::new();
            for (j, c) in a.crls.iter().enumerate() {
                if c.starts_with("http://") || c.starts_with("https://") {
                    match url::Url::parse(c) {
                        Ok(_) => crls.push(crate::CrlSource::Url(c.clone())),
                        Err(e) => self.problem(
                            &format!("{key}.crls[{j}]"),
                            format!("{c:?} is not a URL: {e}"),
                        ),
                    }
                } else {
                    let path = self.file_path(c);
                    if path.is_file() {
                        crls.push(crate::CrlSource::File(path));
                    } else {
                        self.problem(
                            &format!("{key}.crls[{j}]"),
                            format!("cannot read CRL file {}", path.display()),
                        );
                    }
                }
            }
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
}
