//! Files a config names: paths relative to the config file, key files (owner-only), certificates
//! in PEM; each is stamped as a source of the configuration.

use std::path::PathBuf;

use openssl::x509::X509;

use super::{resolve, Checker};

impl Checker<'_> {
    pub(super) fn file_path(&self, value: &str) -> PathBuf {
        resolve(&self.base_dir, value)
    }

    /// A private-key file: read only if other users can neither read nor write it.
    pub(super) fn read_key_file(&mut self, value: &str, key: &str) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.file_path(value);
        self.sources.push(crate::sources::SourceFile::stamp(&path));
        match crate::secret_file::read(&path, "key file", crate::secret_file::MAX_KEY_FILE_BYTES) {
            Ok(bytes) => Some((path, bytes)),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    pub(super) fn read_file(
        &mut self,
        value: &str,
        key: &str,
        what: &str,
    ) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.file_path(value);
        self.sources.push(crate::sources::SourceFile::stamp(&path));
        match std::fs::read(&path) {
            Ok(bytes) => Some((path, bytes)),
            Err(e) => {
                self.problem(
                    key,
                    format!("cannot read {what} file {}: {e}", path.display()),
                );
                None
            }
        }
    }

    pub(super) fn certificates_pem(
        &mut self,
        value: &str,
        key: &str,
        what: &str,
    ) -> Option<(PathBuf, Vec<X509>)> {
        let (path, bytes) = self.read_file(value, key, what)?;
        match X509::stack_from_pem(&bytes) {
            Ok(chain) if !chain.is_empty() => Some((path, chain)),
            Ok(_) => {
                self.problem(key, format!("{} holds no PEM certificate", path.display()));
                None
            }
            Err(e) => {
                self.problem(
                    key,
                    format!("{} is not a PEM certificate file: {e}", path.display()),
                );
                None
            }
        }
    }
}
