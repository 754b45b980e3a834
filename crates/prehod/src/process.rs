//! How the gateway process lives beside others: its pid file and binary-upgrade socket, each
//! only in a directory private to the gateway's user.

use std::path::{Path, PathBuf};

/// systemd's `RuntimeDirectory=prehod` (deploy/systemd/prehod.service, mode 0700).
const DEFAULT_UPGRADE_SOCKET: &str = "/run/prehod/upgrade.sock";

/// How the gateway process runs beside others (pid file, binary upgrade).
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ProcessArgs {
    /// Write this process's id here (for `prehod reload` and for sending `SIGQUIT`).
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Binary upgrade: take the listening sockets over from the running gateway (which hands
    /// them over on `SIGQUIT`, then drains and exits) instead of binding them.
    #[arg(long, short)]
    pub upgrade: bool,
    /// The unix socket the listening sockets are handed over on; the old and the new process
    /// must name the same one. Its directory must be private to the gateway's user (not
    /// writable by group or others, owned by it or root): whoever can put a socket there
    /// receives the listening sockets.
    #[arg(long, default_value = DEFAULT_UPGRADE_SOCKET)]
    pub upgrade_socket: PathBuf,
}

impl Default for ProcessArgs {
    fn default() -> Self {
        Self {
            pid_file: None,
            upgrade: false,
            upgrade_socket: PathBuf::from(DEFAULT_UPGRADE_SOCKET),
        }
    }
}

/// The directory of `path` (a pid file, the upgrade socket) must be private to this process's
/// user: owned by it or root, writable by neither group nor others — else another local user
/// could plant a symlink or a socket there. `Ok(false)`: the directory does not exist.
pub(crate) fn private_dir(path: &Path) -> Result<bool, String> {
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("/proc/self: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "{}: owned by uid {}, not by this user ({me}) or root",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{}: writable by group or others (mode {:o}): use a directory private to the gateway's user",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(true)
}

/// Writes the pid file: never through a symlink, only in a private directory.
pub(crate) fn write_pid_file(path: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if !private_dir(path)? {
        return Err("its directory does not exist".to_owned());
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(|e| e.to_string())?;
    writeln!(file, "{}", std::process::id()).map_err(|e| e.to_string())
}

/// Removes the pid file at exit, unless an upgraded process wrote its own pid there meanwhile.
pub(crate) fn remove_pid_file(path: &Path) {
    let ours =
        std::fs::read_to_string(path).is_ok_and(|p| p.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_is_never_written_through_a_symlink_or_in_a_shared_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let target = dir.path().join("victim");
        std::fs::write(&target, "precious").expect("victim file");
        let link = dir.path().join("prehod.pid");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(write_pid_file(&link).is_err());
        assert_eq!(
            std::fs::read_to_string(&target).expect("victim"),
            "precious"
        );

        let plain = dir.path().join("plain.pid");
        write_pid_file(&plain).expect("a private directory");
        assert_eq!(
            std::fs::read_to_string(&plain).expect("pid").trim(),
            std::process::id().to_string()
        );

        let shared = tempfile::tempdir().expect("dir");
        std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod");
        let err = write_pid_file(&shared.path().join("p.pid")).expect_err("shared");
        assert!(err.contains("writable by group or others"), "{err}");
        assert_eq!(private_dir(&dir.path().join("missing/x.sock")), Ok(false));
    }
}
