//! The files a configuration was read from — the file itself, its `${file:…}` secrets, the
//! certificates, keys and CA bundles it names — each with what it looked like just before it
//! was read, so that a running gateway can tell when one changed (`reload.watch`).
//!
//! A file is compared by device, inode, size and modification time, through symbolic links: a
//! Kubernetes volume swaps a link to a new directory, a secret manager renames a new file over
//! the old; either gives another inode. CRL files are not listed: they are read again on their
//! own (`certificate_login.crl_refresh`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What a file looked like: enough to see that it was replaced or rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    /// The file at `path` now; `None` when it cannot be seen (missing, no permission).
    pub fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// One file a configuration was read from, stamped before it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub stamp: Option<FileStamp>,
}

impl SourceFile {
    /// Stamps `path` now (call it before reading the file).
    pub fn stamp(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            stamp: FileStamp::of(path),
        }
    }

    /// Whether the file differs from what it was when it was read.
    pub fn changed(&self) -> bool {
        FileStamp::of(&self.path) != self.stamp
    }
}

/// `files` with each path once (the first stamp kept).
pub(crate) fn dedup(files: Vec<SourceFile>) -> Vec<SourceFile> {
    let mut out: Vec<SourceFile> = Vec::with_capacity(files.len());
    for f in files {
        if !out.iter().any(|o| o.path == f.path) {
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_or_rewritten_or_removed_has_changed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "one").expect("write");
        let read = SourceFile::stamp(&path);
        assert!(!read.changed());
        // Renamed over, as a secret manager does (same size, another inode).
        let new = dir.path().join("secret.new");
        std::fs::write(&new, "two").expect("write");
        std::fs::rename(&new, &path).expect("rename");
        assert!(read.changed());
        let read = SourceFile::stamp(&path);
        std::fs::write(&path, "three").expect("rewrite");
        assert!(read.changed());
        let read = SourceFile::stamp(&path);
        std::fs::remove_file(&path).expect("remove");
        assert!(read.changed());
        // A file that was missing when read and still is has not changed.
        assert!(!SourceFile::stamp(&path).changed());
    }

    #[test]
    fn a_link_swapped_to_a_new_target_has_changed() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("v1")).expect("v1");
        std::fs::create_dir(dir.path().join("v2")).expect("v2");
        std::fs::write(dir.path().join("v1/key"), "same").expect("write");
        std::fs::write(dir.path().join("v2/key"), "same").expect("write");
        let data = dir.path().join("..data");
        std::os::unix::fs::symlink("v1", &data).expect("link");
        let key = dir.path().join("key");
        std::os::unix::fs::symlink("..data/key", &key).expect("link");
        let read = SourceFile::stamp(&key);
        // The kubelet's swap: a new link renamed over `..data`.
        let tmp = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink("v2", &tmp).expect("link");
        std::fs::rename(&tmp, &data).expect("swap");
        assert!(read.changed());
    }
}
