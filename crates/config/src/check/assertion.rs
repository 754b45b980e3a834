//! `assertion`: the key that signs the identity assertion sent to the portals.

use super::Checker;
use crate::raw;

impl Checker<'_> {
    pub(super) fn assertion(&mut self, raw: raw::Assertion) -> Option<crate::AssertionSettings> {
        let (path, pem) = self.read_key_file(&raw.key, "assertion.key")?;
        let ok = openssl::pkey::PKey::private_key_from_pem(&pem)
            .ok()
            .and_then(|k| k.ec_key().ok())
            .is_some_and(|k| k.group().curve_name() == Some(openssl::nid::Nid::X9_62_PRIME256V1));
        if !ok {
            self.problem(
                "assertion.key",
                format!("{} is not an EC P-256 private key in PEM", path.display()),
            );
            return None;
        }
        let lifetime = self
            .duration(raw.lifetime.as_ref(), "assertion.lifetime")
            .unwrap_or(std::time::Duration::from_secs(60));
        Some(crate::AssertionSettings {
            key_pem: pem,
            lifetime,
        })
    }
}
