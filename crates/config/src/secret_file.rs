//! Files that hold secrets: the `${file:PATH}` values (session keys, the OIDC client secret,
//! the admin token, the Redis URL, …) and the private-key files (`tls.certificates[].key`,
//! `assertion.key`, `oidc.client_key`).
//!
//! Each is read only if it is a regular file that other users can neither read nor write (a
//! Kubernetes Secret volume with `defaultMode: 0440`, a systemd credential, a file of mode 0600
//! or 0640 all pass), and never past a size bound. Messages name the file and never its content.

use std::io::Read;
use std::path::Path;

/// The most a `${file:…}` value may hold: a key, a token, a URL.
pub(crate) const MAX_VALUE_BYTES: u64 = 64 * 1024;
/// The most a private-key file may hold (a PEM key, perhaps with its chain).
pub(crate) const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// Reads the secret file at `path` (`what` names it in messages: "secret file", "key file"),
/// refusing one that others may read or write.
pub(crate) fn read(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, String> {
    let shown = path.display();
    // Follows symbolic links: a Kubernetes volume's files are links into its current version.
    // Checked by path first, so that a FIFO or a device is never opened (it could block or
    // never end), then again on the file opened.
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{what} {shown} does not exist"),
        _ => format!("cannot read {what} {shown}: {e}"),
    })?;
    check(&meta, path, what, max)?;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    check(&meta, path, what, max)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!("{what} {shown} is larger than {max} bytes"));
    }
    Ok(bytes)
}

/// A regular file, private to its owner and group, of at most `max` bytes.
fn check(meta: &std::fs::Metadata, path: &Path, what: &str, max: u64) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    if !meta.is_file() {
        return Err(format!("{what} {shown} is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o006 != 0 {
        let how = match (mode & 0o004 != 0, mode & 0o002 != 0) {
            (true, true) => "readable and writable",
            (true, false) => "readable",
            _ => "writable",
        };
        return Err(format!(
            "{what} {shown} is {how} by every user on this machine (mode {mode:04o}): make it private to the gateway's user and group, e.g. chmod 0640 {shown}"
        ));
    }
    if meta.len() > max {
        return Err(format!(
            "{what} {shown} is larger than {max} bytes ({} bytes)",
            meta.len()
        ));
    }
    Ok(())
}

/// A `${file:PATH}` value: the file's text without its trailing line break(s), not empty.
pub(crate) fn read_value(path: &Path) -> Result<String, String> {
    let bytes = read(path, "secret file", MAX_VALUE_BYTES)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("secret file {} is not UTF-8 text", path.display()))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(format!("secret file {} is empty", path.display()));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, name: &str, content: &[u8], mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_private_file_is_read_without_its_line_break() {
        let dir = tempfile::tempdir().expect("dir");
        for mode in [0o400, 0o600, 0o640, 0o440] {
            let p = file(dir.path(), "key", b"c2VjcmV0\n", mode);
            assert_eq!(read_value(&p).expect("private"), "c2VjcmV0");
        }
        let p = file(dir.path(), "crlf", b"token\r\n", 0o600);
        assert_eq!(read_value(&p).expect("crlf"), "token");
    }

    #[test]
    fn refuses_what_others_can_read_or_write_and_says_so_without_the_content() {
        let dir = tempfile::tempdir().expect("dir");
        for (mode, how) in [
            (0o644, "readable by every user"),
            (0o604, "readable by every user"),
            (0o602, "writable by every user"),
            (0o666, "readable and writable by every user"),
        ] {
            let p = file(dir.path(), "key", b"TOP-SECRET-VALUE", mode);
            let e = read_value(&p).expect_err("shared");
            assert!(e.contains(how) && e.contains(&format!("{mode:04o}")), "{e}");
            assert!(!e.contains("TOP-SECRET-VALUE"), "{e}");
        }
    }

    #[test]
    fn refuses_missing_empty_huge_binary_and_special_files() {
        let dir = tempfile::tempdir().expect("dir");
        let e = read_value(&dir.path().join("missing")).expect_err("missing");
        assert!(e.ends_with("missing does not exist"), "{e}");
        let e = read_value(&file(dir.path(), "empty", b"\n", 0o600)).expect_err("empty");
        assert!(e.ends_with("is empty"), "{e}");
        let big = vec![b'a'; MAX_VALUE_BYTES as usize + 1];
        let e = read_value(&file(dir.path(), "big", &big, 0o600)).expect_err("big");
        assert!(e.contains("is larger than 65536 bytes"), "{e}");
        let e = read_value(&file(dir.path(), "bin", &[0xff, 0xfe], 0o600)).expect_err("bin");
        assert!(e.ends_with("is not UTF-8 text"), "{e}");
        let e = read_value(dir.path()).expect_err("a directory");
        assert!(e.ends_with("is not a regular file"), "{e}");
        // A character device would never end (or block): refused before it is opened.
        let e = read_value(Path::new("/dev/zero")).expect_err("device");
        assert!(e.ends_with("is not a regular file"), "{e}");
    }
}
