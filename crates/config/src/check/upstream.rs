//! `portals.*.upstream`: the upstream URLs, their TLS and the health check.

use super::{join, Checker};
use crate::{raw, HealthCheck, Target, Upstream, UpstreamTls};

impl Checker<'_> {
    pub(super) fn upstream(&mut self, raw: raw::Upstream, key: &str) -> Option<Upstream> {
        let urls_key = join(key, "urls");
        if raw.urls.is_empty() {
            self.problem(&urls_key, "at least one upstream URL is needed");
            return None;
        }
        let mut targets = Vec::new();
        let mut schemes = Vec::new();
        for (i, s) in raw.urls.iter().enumerate() {
            let item = format!("{urls_key}[{i}]");
            match upstream_url(s) {
                Ok((https, target)) => {
                    schemes.push(https);
                    targets.push(target);
                }
                Err(message) => self.problem(&item, message),
            }
        }
        if targets.len() != raw.urls.len() {
            return None;
        }
        let https = *schemes.first()?;
        if schemes.iter().any(|s| *s != https) {
            self.problem(&urls_key, "all URLs of one portal use the same scheme");
            return None;
        }
        let tls = if https {
            let ca = match &raw.ca {
                Some(path) => Some(self.certificates_pem(path, &join(key, "ca"), "CA")?.1),
                None => None,
            };
            Some(UpstreamTls {
                ca,
                danger_accept_invalid_certs: raw.danger_accept_invalid_certs,
            })
        } else {
            if raw.ca.is_some() {
                self.problem(
                    &join(key, "ca"),
                    "a CA is only used with https:// upstreams",
                );
            }
            if raw.danger_accept_invalid_certs {
                self.problem(
                    &join(key, "danger_accept_invalid_certs"),
                    "only means something for https:// upstreams",
                );
            }
            None
        };
        let hc_key = join(key, "health_check");
        let interval = self
            .duration(
                raw.health_check.interval.as_ref(),
                &join(&hc_key, "interval"),
            )
            .unwrap_or(std::time::Duration::from_secs(5));
        let timeout = self
            .duration(raw.health_check.timeout.as_ref(), &join(&hc_key, "timeout"))
            .unwrap_or(std::time::Duration::from_secs(1));
        if timeout >= interval {
            self.problem(
                &join(&hc_key, "timeout"),
                "must be shorter than the interval",
            );
        }
        Some(Upstream {
            targets,
            tls,
            health_check: HealthCheck { interval, timeout },
        })
    }
}

/// `http(s)://host[:port][/]` → (is https, target). prehod forwards each request's own path,
/// so an upstream URL cannot carry a path, query, fragment or credentials.
fn upstream_url(s: &str) -> Result<(bool, Target), String> {
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(format!(
                "scheme {other:?} is not supported: use http or https"
            ))
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("an upstream URL cannot carry credentials".into());
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(format!(
            "an upstream URL names only scheme, host and port: drop the path {:?} (prehod forwards each request's own path)",
            url.path()
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an upstream URL cannot carry a query or fragment".into());
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(format!("{s:?} has no host")),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{s:?} has no port"))?;
    Ok((https, Target { host, port }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        assert_eq!(
            upstream_url("http://10.0.0.1:8080").unwrap(),
            (
                false,
                Target {
                    host: "10.0.0.1".into(),
                    port: 8080
                }
            )
        );
        assert_eq!(upstream_url("https://app.internal/").unwrap().1.port, 443);
        assert!(upstream_url("http://a:1/app")
            .unwrap_err()
            .contains("drop the path"));
        assert!(upstream_url("http://a:1/?x=1")
            .unwrap_err()
            .contains("query"));
        assert!(upstream_url("ftp://a").unwrap_err().contains("scheme"));
        assert!(upstream_url("http://u:p@a")
            .unwrap_err()
            .contains("credentials"));
        assert!(upstream_url("nonsense").is_err());
    }
}
