//! Mozilla's server-side TLS configurations (`tls.profile`) as OpenSSL settings: the TLS
//! versions, cipher suites and key-exchange groups the listener offers, exactly as listed.
//!
//! Followed: Mozilla's Server Side TLS guidelines **version 6.0**
//! (<https://ssl-config.mozilla.org/guidelines/6.0.json>, the wiki page "Security/Server Side
//! TLS"). Against 5.7 (what sslyze 6.3 checks), 6.0 drops the three DHE-RSA suites from
//! "intermediate" and adds the hybrid group X25519MLKEM768 to both: what is offered here is a
//! subset of 5.7's lists too. Neither profile offers X448, secp521r1 or the finite-field
//! groups (OpenSSL's defaults would). Cipher order: the client's (`server_preferred_order:
//! false`). What the guidelines ask of the certificate (key type and size, lifespan) is the
//! operator's: `prehod check` refuses a key the profile does not take.

use pingora::tls::error::ErrorStack;
use pingora::tls::ssl::{SslAcceptorBuilder, SslOptions, SslVersion};
use prehod_config::{TlsProfile, TlsVersion};

/// One of Mozilla's configurations, in OpenSSL's names.
pub struct Profile {
    pub min_version: TlsVersion,
    /// TLS 1.2 suites; none under `modern` (no TLS 1.2 at all).
    pub tls12_ciphers: &'static [&'static str],
    pub tls13_ciphersuites: &'static [&'static str],
    /// Key-exchange groups, in Mozilla's order.
    pub groups: &'static [&'static str],
    /// Mozilla's post-quantum hybrid groups, offered first where the OpenSSL in use has them
    /// (3.5 and later; Debian 12's 3.0 does not).
    pub hybrid_groups: &'static [&'static str],
}

/// "intermediate": TLS 1.2 and 1.3, forward-secret AEAD suites only.
pub const INTERMEDIATE: Profile = Profile {
    min_version: TlsVersion::Tls12,
    tls12_ciphers: &[
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ],
    tls13_ciphersuites: TLS13_CIPHERSUITES,
    groups: GROUPS,
    hybrid_groups: HYBRID_GROUPS,
};

/// "modern": TLS 1.3 only.
pub const MODERN: Profile = Profile {
    min_version: TlsVersion::Tls13,
    tls12_ciphers: &[],
    tls13_ciphersuites: TLS13_CIPHERSUITES,
    groups: GROUPS,
    hybrid_groups: HYBRID_GROUPS,
};

/// The same in both profiles.
const TLS13_CIPHERSUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];
const GROUPS: &[&str] = &["X25519", "prime256v1", "secp384r1"];
const HYBRID_GROUPS: &[&str] = &["X25519MLKEM768"];

impl Profile {
    pub fn of(profile: TlsProfile) -> &'static Profile {
        match profile {
            TlsProfile::Intermediate => &INTERMEDIATE,
            TlsProfile::Modern => &MODERN,
        }
    }
}

/// What [`apply`] set up, for the start-up log.
#[derive(Debug)]
pub struct Offered {
    pub min_version: TlsVersion,
    /// The groups list as OpenSSL took it.
    pub groups: String,
}

/// Sets `builder` (Mozilla's intermediate v5 from rust-openssl, for its options) to offer
/// exactly `profile`, from `min_version` (the config's, never below the profile's) to TLS 1.3.
pub fn apply(
    builder: &mut SslAcceptorBuilder,
    profile: TlsProfile,
    min_version: TlsVersion,
) -> Result<Offered, ErrorStack> {
    let p = Profile::of(profile);
    let min_version = match (p.min_version, min_version) {
        (TlsVersion::Tls12, TlsVersion::Tls12) => TlsVersion::Tls12,
        _ => TlsVersion::Tls13,
    };
    builder.set_min_proto_version(Some(match min_version {
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    }))?;
    builder.set_max_proto_version(Some(SslVersion::TLS1_3))?;
    // No renegotiation, ever (TLS 1.2; TLS 1.3 has none): a connection's client certificate is
    // checked once and its verdict kept for the connection's life (identity's `cert::cached`),
    // so a second handshake must never put another certificate on it. OpenSSL 3 already
    // refuses a client's renegotiation by default; this does not depend on that default.
    builder.set_options(SslOptions::NO_RENEGOTIATION);
    if p.tls12_ciphers.is_empty() {
        // OpenSSL takes no empty TLS 1.2 list: TLS 1.2 is switched off instead.
        builder.set_options(SslOptions::NO_TLSV1_2);
    } else {
        builder.set_cipher_list(&p.tls12_ciphers.join(":"))?;
    }
    builder.set_ciphersuites(&p.tls13_ciphersuites.join(":"))?;
    let plain = p.groups.join(":");
    let with_hybrid = p
        .hybrid_groups
        .iter()
        .chain(p.groups)
        .copied()
        .collect::<Vec<_>>()
        .join(":");
    let groups = match builder.set_groups_list(&with_hybrid) {
        Ok(()) => with_hybrid,
        // An OpenSSL without ML-KEM refuses the whole list (3.0 has no "?" for "if known"):
        // the classical groups alone, which every OpenSSL since 1.1.1 has.
        Err(_) => {
            builder.set_groups_list(&plain)?;
            plain
        }
    };
    Ok(Offered {
        min_version,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::tls::ssl::{SslAcceptor, SslMethod};

    fn offered(profile: TlsProfile, min: TlsVersion) -> Offered {
        let mut builder =
            SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor builder");
        apply(&mut builder, profile, min).expect("the profile applies")
    }

    #[test]
    fn the_groups_are_mozillas_with_the_hybrid_one_only_where_openssl_has_it() {
        let o = offered(TlsProfile::Intermediate, TlsVersion::Tls12);
        let has_ml_kem = openssl::version::number() >= 0x3050_0000;
        let expected = if has_ml_kem {
            "X25519MLKEM768:X25519:prime256v1:secp384r1"
        } else {
            "X25519:prime256v1:secp384r1"
        };
        assert_eq!(o.groups, expected, "{}", openssl::version::version());
        assert_eq!(o.min_version, TlsVersion::Tls12);
    }

    #[test]
    fn modern_and_a_tls_1_3_minimum_both_start_at_tls_1_3() {
        assert_eq!(
            offered(TlsProfile::Modern, TlsVersion::Tls13).min_version,
            TlsVersion::Tls13
        );
        // What the config check would refuse is still TLS 1.3 here.
        assert_eq!(
            offered(TlsProfile::Modern, TlsVersion::Tls12).min_version,
            TlsVersion::Tls13
        );
        assert_eq!(
            offered(TlsProfile::Intermediate, TlsVersion::Tls13).min_version,
            TlsVersion::Tls13
        );
    }
}
