//! The series that follow the configuration in use. Set when a configuration is taken into
//! use (at start-up and after each reload): every portal's series at zero, the
//! configuration's hash, when each server certificate and each trust anchor's CA expires.
//! Read at each scrape: the session store's counts and each anchor's CRL, and only the
//! anchors and upstream targets of the configuration in use keep a series.

use std::collections::HashSet;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::x509::{X509NameRef, X509};
use prehod_config::Config;

use super::{labels, Metrics};

impl Metrics {
    /// Publishes what the metrics say about `config`, the configuration just taken into use.
    /// Fails only for a label set that does not fit its metric (a programming error).
    pub fn publish_config(&self, config: &Config) -> Result<(), prometheus::Error> {
        labels::initialise_portals(self, config.portals.iter().map(|p| p.name.as_str()))?;
        let anchors = config
            .auth
            .as_ref()
            .and_then(|a| a.certificate_login.as_ref())
            .into_iter()
            .flat_map(|c| c.anchors.iter().map(|a| a.name.as_str()));
        labels::initialise_anchors(self, anchors)?;

        self.config_info
            .get_metric_with_label_values(&[config.digest.as_str()])?
            .set(1);
        labels::retain(&self.config_info, |l| l.get("hash") == Some(&config.digest));

        let mut certificates = HashSet::new();
        for c in &config.tls.certificates {
            let name = c
                .dns_names
                .first()
                .cloned()
                .or_else(|| {
                    c.chain
                        .first()
                        .map(|leaf| subject_name(leaf.subject_name()))
                })
                .unwrap_or_default();
            let file = c.cert_path.display().to_string();
            // The chain is served whole: it is usable until its first certificate expires.
            if let Some(expiry) = c.chain.iter().filter_map(not_after).min() {
                self.tls_certificate_expiry
                    .get_metric_with_label_values(&[name.as_str(), file.as_str()])?
                    .set(expiry);
                certificates.insert((name, file));
            }
        }
        labels::retain(&self.tls_certificate_expiry, |l| {
            let key = (label(l, "name"), label(l, "file"));
            certificates.contains(&key)
        });

        let mut cas = HashSet::new();
        let anchors = config
            .auth
            .iter()
            .flat_map(|a| a.certificate_login.iter())
            .flat_map(|c| c.anchors.iter());
        for anchor in anchors {
            for ca in &anchor.ca {
                let subject = subject_name(ca.subject_name());
                if let Some(expiry) = not_after(ca) {
                    self.client_ca_expiry
                        .get_metric_with_label_values(&[anchor.name.as_str(), subject.as_str()])?
                        .set(expiry);
                    cas.insert((anchor.name.clone(), subject));
                }
            }
        }
        labels::retain(&self.client_ca_expiry, |l| {
            cas.contains(&(label(l, "anchor"), label(l, "subject")))
        });
        Ok(())
    }

    /// Brings the series read at scrape time up to date with `config` and `auth` (the
    /// snapshot in use) at `now` (unix seconds).
    pub fn observe(&self, config: &Config, auth: Option<&crate::auth::AuthState>, now: i64) {
        // The health checker of a snapshot a reload replaced may still set a target that is
        // gone; only the targets in use keep a series (a stale 0 would page for nothing).
        let targets: HashSet<(String, String)> = config
            .portals
            .iter()
            .flat_map(|p| {
                p.upstream
                    .targets
                    .iter()
                    .map(|t| (p.name.clone(), t.to_string()))
            })
            .collect();
        labels::retain(&self.upstream_healthy, |l| {
            targets.contains(&(label(l, "portal"), label(l, "target")))
        });

        let mut anchors = HashSet::new();
        if let Some(auth) = auth {
            for anchor in auth.certificates.iter().flat_map(|c| &c.checker.anchors) {
                anchors.insert(anchor.name.clone());
                self.observe_crl(anchor, now);
            }
            self.session_cache_entries
                .set(auth.sessions.cached() as i64);
            self.revocations
                .set(auth.sessions.revocations(now.max(0) as u64) as i64);
            // Counters only go up: add what the session store counted since last time.
            let full = auth.sessions.revocation_store_full_total();
            self.revocation_store_full
                .inc_by(full.saturating_sub(self.revocation_store_full.get()));
            for (result, total) in [
                ("hit", &auth.sessions.hits),
                ("miss", &auth.sessions.misses),
            ] {
                let c = self.session_cache_lookups.with_label_values(&[result]);
                let total = total.load(std::sync::atomic::Ordering::Relaxed);
                c.inc_by(total.saturating_sub(c.get()));
            }
        }
        for crl in [&self.crl_age, &self.crl_next_update, &self.crl_loaded] {
            labels::retain(crl, |l| anchors.contains(&label(l, "anchor")));
        }
    }

    /// The CRL series of one anchor. An anchor with CRL sources but no CRL loaded yet has
    /// its nextUpdate at 0: certificate logins of that anchor are refused (fail closed) just
    /// as with a stale CRL, and `PrehodCrlStale` says so.
    fn observe_crl(&self, anchor: &prehod_identity::cert::Anchor, now: i64) {
        let name = [anchor.name.as_str()];
        match anchor.crl_state() {
            Some(crl) => {
                self.crl_age
                    .with_label_values(&name)
                    .set(now.saturating_sub(crl.this_update));
                // A CRL without nextUpdate: never stale, far in the future.
                self.crl_next_update
                    .with_label_values(&name)
                    .set(crl.next_update.min(NO_NEXT_UPDATE));
                self.crl_loaded.with_label_values(&name).set(crl.loaded_at);
            }
            None if !anchor.crl_sources.is_empty() => {
                self.crl_next_update.with_label_values(&name).set(0);
                self.crl_loaded.with_label_values(&name).set(0);
            }
            None => {}
        }
    }
}

/// The nextUpdate reported for a CRL without one: the year 9999.
const NO_NEXT_UPDATE: i64 = 253_402_300_799;

fn label(labels: &std::collections::HashMap<String, String>, name: &str) -> String {
    labels.get(name).cloned().unwrap_or_default()
}

/// A certificate's notAfter in unix seconds.
fn not_after(cert: &X509) -> Option<i64> {
    unix_time(cert.not_after())
}

fn unix_time(t: &Asn1TimeRef) -> Option<i64> {
    let diff = Asn1Time::from_unix(0).ok()?.diff(t).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// The subject's common name, or else its whole name (`O=…, C=…`).
fn subject_name(name: &X509NameRef) -> String {
    let text = |e: &openssl::x509::X509NameEntryRef| e.data().to_string().unwrap_or_default();
    if let Some(cn) = name.entries_by_nid(Nid::COMMONNAME).next() {
        return text(cn);
    }
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            format!("{key}={}", text(e))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The shipped dev configuration, as `prehod dev` runs it.
    const DEV: &str = include_str!("../../../../deploy/dev/proxy.yaml");

    struct DevPki {
        dir: tempfile::TempDir,
        session_key: String,
    }

    impl DevPki {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tmp");
            prehod_devpki::generate(
                dir.path(),
                &prehod_devpki::dev_server_names("bankart.localhost"),
            )
            .expect("dev PKI");
            let session_key = std::fs::read_to_string(dir.path().join("session.key"))
                .expect("session key")
                .trim()
                .to_owned();
            Self { dir, session_key }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn load(&self, text: &str) -> Config {
            let certs = self.dir.path().display().to_string();
            Config::from_text(&self.path("proxy.yaml"), text, |name| match name {
                "PREHOD_DEV_CERTS" => Some(certs.clone()),
                "PREHOD_SESSION_KEY" => Some(self.session_key.clone()),
                _ => None,
            })
            .unwrap_or_else(|e| panic!("{e}"))
        }
    }

    fn render(m: &Metrics) -> String {
        String::from_utf8(m.render()).expect("UTF-8")
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn lines_of<'t>(text: &'t str, metric: &str) -> Vec<&'t str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .collect()
    }

    fn not_after_of(path: &Path) -> i64 {
        let cert = X509::from_pem(&std::fs::read(path).expect("read")).expect("PEM");
        let at = not_after(&cert).expect("notAfter");
        // Checked against OpenSSL's own comparison, not only the conversion above.
        let back = Asn1Time::from_unix(at).expect("time");
        assert_eq!(
            cert.not_after().compare(&back).expect("compare"),
            std::cmp::Ordering::Equal
        );
        at
    }

    /// Issue 21, point 4: the portals' series exist at zero as soon as a configuration is in
    /// use (the login hosts under their own names), the configuration's hash and every
    /// certificate's expiry are there; a reload replaces them, leaving nothing of the old.
    #[test]
    fn a_configuration_publishes_its_portals_hash_and_certificates_and_a_reload_replaces_them() {
        let pki = DevPki::new();
        let m = Metrics::new().expect("metrics");
        m.publish_config(&pki.load(DEV)).expect("publish");
        let text = render(&m);
        for series in [
            r#"prehod_requests_total{auth="session",portal="acq",status_class="5xx"}"#,
            r#"prehod_requests_total{auth="denied",portal="bws",status_class="4xx"}"#,
            r#"prehod_requests_total{auth="login",portal="login",status_class="5xx"}"#,
            r#"prehod_requests_total{auth="panic",portal="login",status_class="5xx"}"#,
            r#"prehod_requests_total{auth="certificate",portal="certlogin",status_class="2xx"}"#,
            r#"prehod_requests_total{auth="none",portal="unknown",status_class="4xx"}"#,
            r#"prehod_request_duration_seconds_count{portal="login"}"#,
            r#"prehod_request_duration_seconds_count{portal="acq"}"#,
            r#"prehod_upstream_duration_seconds_count{portal="b2b"}"#,
            r#"prehod_upstream_errors_total{kind="read_timeout",portal="acq"}"#,
            r#"prehod_upstream_errors_total{kind="connect_refused",portal="bips"}"#,
            r#"prehod_step_ups_total{portal="bws"}"#,
        ] {
            assert_eq!(value(&text, series), Some(0.0), "{series} in\n{text}");
        }
        // The login host is no portal: it has no upstream series.
        assert_eq!(
            value(
                &text,
                r#"prehod_upstream_duration_seconds_count{portal="login"}"#
            ),
            None
        );
        let digest: String = openssl::sha::sha256(DEV.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            lines_of(&text, "prehod_config_info"),
            [format!(r#"prehod_config_info{{hash="{digest}"}} 1"#)]
        );
        let server = pki.path("server.crt");
        let cert_series = format!(
            r#"prehod_tls_certificate_expiry_timestamp_seconds{{file="{}",name="bankart.localhost"}}"#,
            server.display()
        );
        assert_eq!(
            value(&text, &cert_series),
            Some(not_after_of(&server) as f64),
            "{text}"
        );
        let ca_series = r#"prehod_client_ca_expiry_timestamp_seconds{anchor="prehod dev CA",subject="prehod dev CA"}"#;
        assert_eq!(
            value(&text, ca_series),
            Some(not_after_of(&pki.path("ca.crt")) as f64),
            "{text}"
        );

        // A reload: another certificate file, no certificate login, one portal fewer.
        std::fs::copy(&server, pki.path("other.crt")).expect("copy");
        let start = DEV.find("certificate_login:").expect("section");
        let end = DEV.find("\ntimeouts:").expect("next section");
        let reloaded = format!(
            "{}{}",
            DEV.get(..start).expect("before"),
            DEV.get(end + 1..).expect("after")
        );
        // Without the portal bws: its lines are those indented under `  bws:`.
        let mut in_bws = false;
        let reloaded: String = reloaded
            .lines()
            .filter(|line| {
                if !line.starts_with("   ") {
                    in_bws = *line == "  bws:";
                }
                !in_bws
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let reloaded = reloaded.replace("/server.crt", "/other.crt");
        assert_ne!(reloaded, DEV);
        let config = pki.load(&reloaded);
        assert!(config.portals.iter().all(|p| p.name != "bws"));
        m.publish_config(&config).expect("publish");
        let text = render(&m);
        assert_eq!(
            lines_of(&text, "prehod_config_info"),
            [format!(
                r#"prehod_config_info{{hash="{}"}} 1"#,
                config.digest
            )]
        );
        assert_eq!(
            lines_of(&text, "prehod_tls_certificate_expiry_timestamp_seconds"),
            [format!(
                r#"prehod_tls_certificate_expiry_timestamp_seconds{{file="{}",name="bankart.localhost"}} {}"#,
                pki.path("other.crt").display(),
                not_after_of(&server)
            )]
        );
        assert!(lines_of(&text, "prehod_client_ca_expiry_timestamp_seconds").is_empty());
    }

    /// The scrape-time series follow the snapshot in use: a target or an anchor a reload
    /// removed loses its series (a frozen 0 or an old nextUpdate would page for nothing), and
    /// an anchor whose CRLs could not be loaded shows nextUpdate 0 — stale, as it is treated.
    #[test]
    fn scrapes_keep_series_only_for_what_the_snapshot_in_use_has() {
        let pki = DevPki::new();
        let m = Metrics::new().expect("metrics");
        let shared = crate::Shared::new(pki.load(DEV)).expect("snapshot");
        m.upstream_healthy
            .with_label_values(&["acq", "127.0.0.1:9101"])
            .set(1);
        m.upstream_healthy
            .with_label_values(&["gone", "10.9.9.9:8080"])
            .set(0);
        m.crl_next_update.with_label_values(&["gone CA"]).set(1);
        let now = prehod_identity::unix_now() as i64;
        m.observe(&shared.config, shared.auth.as_ref(), now);
        let text = render(&m);
        assert_eq!(
            lines_of(&text, "prehod_upstream_healthy"),
            [r#"prehod_upstream_healthy{portal="acq",target="127.0.0.1:9101"} 1"#]
        );
        let next = value(
            &text,
            r#"prehod_crl_next_update_timestamp_seconds{anchor="prehod dev CA"}"#,
        )
        .expect("the dev CA's CRL");
        assert!(next > now as f64, "a fresh CRL: {next} <= {now}");
        assert_eq!(
            lines_of(&text, "prehod_crl_next_update_timestamp_seconds").len(),
            1
        );

        // The same anchor with its CRL at an address that does not answer: none loaded.
        let unreachable = DEV.replace(
            "${PREHOD_DEV_CERTS}/ca.crl.pem",
            "http://127.0.0.1:9/ca.crl",
        );
        let shared = crate::Shared::new(pki.load(&unreachable)).expect("snapshot");
        m.observe(&shared.config, shared.auth.as_ref(), now);
        let text = render(&m);
        assert_eq!(
            value(
                &text,
                r#"prehod_crl_next_update_timestamp_seconds{anchor="prehod dev CA"}"#
            ),
            Some(0.0),
            "{text}"
        );
    }

    #[test]
    fn asn1_times_become_unix_seconds() {
        let t = Asn1Time::from_unix(1_767_225_600).expect("time");
        assert_eq!(unix_time(&t), Some(1_767_225_600));
        let t = Asn1Time::from_str("99991231235959Z").expect("time");
        assert_eq!(unix_time(&t), Some(NO_NEXT_UPDATE));
    }
}
