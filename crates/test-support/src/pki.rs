//! A fresh development PKI per test, in a temporary directory: the CA, the server certificate
//! for every `*.bankart.localhost` name, the client certificates, keys and CRLs that
//! `prehod_devpki` generates.

use std::path::PathBuf;

/// A temporary directory with a freshly generated PKI.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        prehod_devpki::generate(
            dir.path(),
            &prehod_devpki::dev_server_names("bankart.localhost"),
        )
        .expect("generate the test PKI");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A fresh PKI, as [`Pki::new`].
impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}
