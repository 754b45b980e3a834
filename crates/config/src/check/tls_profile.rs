//! `tls.profile` and `tls.min_version`: which of Mozilla's server-side TLS configurations the
//! listener follows, and the contradictions `prehod check` refuses (a TLS 1.2 minimum under
//! `modern`, a certificate key the profile does not take).

use openssl::nid::Nid;
use openssl::pkey::Id;

use super::Checker;
use crate::{ServerCertificate, TlsProfile, TlsVersion};

impl Checker<'_> {
    /// The profile (default `intermediate`) and the lowest TLS version offered: the
    /// profile's own, or TLS 1.3 where `tls.min_version: "1.3"` narrows `intermediate` (the
    /// key older configurations have).
    pub(super) fn tls_profile(
        &mut self,
        profile: Option<&str>,
        min_version: Option<&str>,
    ) -> Option<(TlsProfile, TlsVersion)> {
        let profile = match profile {
            None | Some("intermediate") => Some(TlsProfile::Intermediate),
            Some("modern") => Some(TlsProfile::Modern),
            Some(other) => {
                self.problem(
                    "tls.profile",
                    format!("{other:?} is not a profile: use \"intermediate\" (TLS 1.2 and 1.3, the default) or \"modern\" (TLS 1.3 only)"),
                );
                None
            }
        };
        let min_version = match min_version {
            None => None,
            Some("1.2") => Some(TlsVersion::Tls12),
            Some("1.3") => Some(TlsVersion::Tls13),
            Some(other) => {
                self.problem(
                    "tls.min_version",
                    format!("{other:?} is not allowed: use \"1.2\" or \"1.3\" (older versions are not offered)"),
                );
                return None;
            }
        };
        match (profile?, min_version) {
            (TlsProfile::Modern, Some(TlsVersion::Tls12)) => {
                self.problem(
                    "tls.min_version",
                    "\"1.2\" contradicts tls.profile: modern, which offers TLS 1.3 only: remove tls.min_version, or use profile: intermediate",
                );
                None
            }
            (TlsProfile::Modern, _) => Some((TlsProfile::Modern, TlsVersion::Tls13)),
            (TlsProfile::Intermediate, v) => {
                Some((TlsProfile::Intermediate, v.unwrap_or(TlsVersion::Tls12)))
            }
        }
    }

    /// Whether every server certificate has a key the profile takes (Mozilla's
    /// `certificate_types`, `certificate_curves` and `rsa_key_size`): ECDSA on P-256 or P-384
    /// under both, RSA of at least 2048 bits under `intermediate` only. Reports each one
    /// that does not.
    pub(super) fn certificates_fit_profile(
        &mut self,
        profile: TlsProfile,
        certificates: &[ServerCertificate],
    ) -> bool {
        let mut ok = true;
        for (i, c) in certificates.iter().enumerate() {
            let Some(leaf) = c.chain.first() else {
                continue;
            };
            let key = leaf.public_key().ok();
            let refusal = match key.as_ref().map(|k| k.id()) {
                Some(Id::EC) => {
                    let curve = key
                        .as_ref()
                        .and_then(|k| k.ec_key().ok())
                        .and_then(|k| k.group().curve_name());
                    match curve {
                        Some(Nid::X9_62_PRIME256V1 | Nid::SECP384R1) => None,
                        other => Some(format!(
                            "an ECDSA key on {}",
                            other
                                .and_then(|n| n.short_name().ok())
                                .unwrap_or("an unnamed curve")
                        )),
                    }
                }
                Some(Id::RSA) => {
                    let bits = key.as_ref().map_or(0, |k| k.bits());
                    match profile {
                        TlsProfile::Intermediate if bits >= 2048 => None,
                        TlsProfile::Intermediate => Some(format!("an RSA key of {bits} bits")),
                        TlsProfile::Modern => Some("an RSA key".to_owned()),
                    }
                }
                _ => Some("a key that is neither ECDSA nor RSA".to_owned()),
            };
            if let Some(refusal) = refusal {
                let takes = match profile {
                    TlsProfile::Intermediate => {
                        "ECDSA on P-256 or P-384, or RSA of at least 2048 bits"
                    }
                    TlsProfile::Modern => {
                        "ECDSA on P-256 or P-384 only (or use tls.profile: intermediate)"
                    }
                };
                self.problem(
                    &format!("tls.certificates[{i}].cert"),
                    format!(
                        "{} has {refusal}; Mozilla's {} profile takes {takes}",
                        c.cert_path.display(),
                        profile.label()
                    ),
                );
                ok = false;
            }
        }
        ok
    }
}
