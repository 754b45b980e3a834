//! `tls`: the profile and minimum TLS version (`tls_profile.rs`) and the server certificates with their keys.

use openssl::asn1::Asn1Time;
use openssl::pkey::PKey;

use super::{join, Checker};
use crate::{raw, ServerCertificate, Tls};

impl Checker<'_> {
    pub(super) fn tls(&mut self, raw: raw::Tls) -> Option<Tls> {
        let versions = self.tls_profile(raw.profile.as_deref(), raw.min_version.as_deref());
        if raw.certificates.is_empty() {
            self.problem("tls.certificates", "at least one certificate is needed");
        }
        let mut certificates = Vec::new();
        let mut ok = true;
        for (i, c) in raw.certificates.iter().enumerate() {
            match self.server_certificate(c, &format!("tls.certificates[{i}]")) {
                Some(cert) => certificates.push(cert),
                None => ok = false,
            }
        }
        (ok && !certificates.is_empty()).then_some(())?;
        let (profile, min_version) = versions?;
        self.certificates_fit_profile(profile, &certificates)
            .then_some(())?;
        Some(Tls {
            profile,
            min_version,
            certificates,
        })
    }

    fn server_certificate(
        &mut self,
        raw: &raw::Certificate,
        key: &str,
    ) -> Option<ServerCertificate> {
        let cert_key = join(key, "cert");
        let key_key = join(key, "key");
        let chain = self.certificates_pem(&raw.cert, &cert_key, "certificate");
        let private = self
            .read_key_file(&raw.key, &key_key)
            .and_then(|(path, bytes)| match PKey::private_key_from_pem(&bytes) {
                Ok(k) => Some((path, k)),
                Err(_) => {
                    self.problem(
                        &key_key,
                        format!("{} is not a PEM private key", path.display()),
                    );
                    None
                }
            });
        let (cert_path, chain) = chain?;
        let (key_path, private) = private?;
        let leaf = chain.first()?;
        let matches = leaf
            .public_key()
            .map(|public| public.public_eq(&private))
            .unwrap_or(false);
        if !matches {
            self.problem(
                &key_key,
                format!(
                    "the key in {} does not belong to the certificate in {}",
                    key_path.display(),
                    cert_path.display()
                ),
            );
            return None;
        }
        if let Ok(now) = Asn1Time::days_from_now(0) {
            if leaf.not_after() < now {
                self.problem(
                    &cert_key,
                    format!(
                        "certificate {} expired on {}",
                        cert_path.display(),
                        leaf.not_after()
                    ),
                );
                return None;
            }
        }
        let dns_names: Vec<String> = leaf
            .subject_alt_names()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.dnsname().map(str::to_ascii_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        if dns_names.is_empty() {
            self.problem(
                &cert_key,
                format!(
                    "certificate {} has no DNS name in subjectAltName",
                    cert_path.display()
                ),
            );
            return None;
        }
        Some(ServerCertificate {
            cert_path,
            chain,
            key: private,
            dns_names,
        })
    }
}
