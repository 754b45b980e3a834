//! Build script: the source revision this build is made from, for `prehod_build_info{revision}`.
//!
//! `PREHOD_GIT_REVISION` from the environment comes first (a container build has no `.git`:
//! pass it as a build argument); otherwise `git rev-parse HEAD` of the source tree; otherwise
//! `unknown` (a source archive, no git installed) — a build never fails for want of it. With
//! git, the script runs again when HEAD or a branch moves, so the revision is never stale.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PREHOD_GIT_REVISION");
    let revision = std::env::var("PREHOD_GIT_REVISION")
        .ok()
        .filter(|r| is_revision(r))
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PREHOD_BUILD_REVISION={revision}");
}

/// A label value that cannot surprise anyone: hex digits (a full or short commit id), at most
/// 64 of them (SHA-256 repositories).
fn is_revision(r: &str) -> bool {
    (7..=64).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned())
}

fn git_revision() -> Option<String> {
    let revision = git(&["rev-parse", "HEAD"]).filter(|r| is_revision(r))?;
    // Run again when HEAD moves: HEAD itself (a checkout, a detached commit), the branches
    // (a commit on the current one; its file may not exist yet while it is only in
    // packed-refs) and packed-refs. Only paths that exist: a missing one would run the script
    // at every build.
    for path in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            let mut p = PathBuf::from(p);
            if p.is_relative() {
                if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
                    p = PathBuf::from(dir).join(p);
                }
            }
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    Some(revision.to_ascii_lowercase())
}
