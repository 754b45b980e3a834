//! What the configuration tests share: the dev PKI in a temporary directory, and the check
//! that a configuration is refused with the errors expected.

use prehod_config::ConfigError;

/// The dev PKI (a CA, the dev server certificates and client certificates) in a new temporary
/// directory.
pub fn pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    prehod_devpki::generate(
        dir.path(),
        &prehod_devpki::dev_server_names("bankart.localhost"),
    )
    .expect("pki");
    dir
}

/// Asserts that `loaded` is refused, and that the errors shown name every one of `expected`;
/// returns what was shown.
pub fn assert_refused<T>(loaded: Result<T, ConfigError>, expected: &[&str]) -> String {
    let shown = match loaded {
        Ok(_) => panic!("loaded, not refused; expected {expected:?}"),
        Err(e) => e.to_string(),
    };
    for expected in expected {
        assert!(shown.contains(expected), "{expected}\nin\n{shown}");
    }
    shown
}
