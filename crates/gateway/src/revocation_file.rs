//! `session.revocation_file`: the revocations made here kept on local disk, so that a restart
//! without shared state (`state:`) does not forget a logout, an ended session or an "end all"
//! (review 17b, finding 4): sessions survive a restart, so their revocations must too.
//!
//! One JSON line per revocation (kind, id, when, until when), appended and synced by a thread
//! of its own; the request that revoked waits for that sync (at most [`SYNC_WAIT`]), so that a
//! logout or an "end all" the user was told of is on disk before the answer leaves — a crash
//! right after it (a `kill -9`, an out-of-memory kill) does not bring the sessions back. A disk
//! slower than that bound is not waited for further (the revocation holds in memory, the
//! write goes on, a warning says so). At start-up the file is read, every
//! revocation still holding is applied, and the file is rewritten with only those; it is
//! compacted the same way while running when it holds more than twice the lines still
//! holding. A line that cannot be read stops the start (fail closed), except a last line cut
//! short by a crash mid-write, which is dropped with a warning. The file is created 0600: the
//! ids are subjects and session ids. Revocations learnt from other replicas (Redis) are not
//! written: Redis holds them.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;

use prehod_identity::revocation::Kind;
use prehod_identity::session::{Revoked, Sessions};
use serde::{Deserialize, Serialize};

/// Compact while running once this many lines were appended and fewer than half still hold.
const COMPACT_AFTER: usize = 10_000;

/// The longest a revoking request waits for its revocation to be synced to the file.
const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A revocation for the writer, and where it says the line is synced (or failed).
type Job = (Revoked, mpsc::SyncSender<()>);

#[derive(Serialize, Deserialize)]
struct Line {
    kind: String,
    id: String,
    at: u64,
    until: u64,
}

impl Line {
    fn of(r: &Revoked) -> Self {
        Self {
            kind: r.kind.label().to_owned(),
            id: r.id.clone(),
            at: r.at,
            until: r.until,
        }
    }
}

/// The revocation file: every revocation made here is sent to its writer thread.
pub struct RevocationFile {
    tx: Mutex<mpsc::Sender<Job>>,
}

impl RevocationFile {
    /// Hands `r` to the writer and waits until it is synced to the file (at most
    /// [`SYNC_WAIT`]; revocations are made by logouts and logins, not by every request).
    pub fn record(&self, r: &Revoked) {
        let (done, synced) = mpsc::sync_channel(1);
        let sent = {
            let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            tx.send((r.clone(), done)).is_ok()
        };
        if !sent {
            tracing::error!("revocation file writer is gone: this revocation is not kept on disk");
            return;
        }
        if let Err(mpsc::RecvTimeoutError::Timeout) = synced.recv_timeout(SYNC_WAIT) {
            tracing::warn!(
                wait = ?SYNC_WAIT,
                "revocation file: not synced in time; the revocation holds, its write goes on"
            );
        }
    }
}

/// The first snapshot's revocation file, if `session.revocation_file` is set; without it and
/// without `state:`, a warning that a restart forgets every logout.
pub fn start(
    shared: &crate::Shared,
) -> Result<Option<std::sync::Arc<RevocationFile>>, crate::BuildError> {
    let Some(auth) = &shared.auth else {
        return Ok(None);
    };
    let path = shared
        .config
        .auth
        .as_ref()
        .and_then(|a| a.session.revocation_file.as_deref());
    match path {
        Some(path) => open(path, &auth.sessions, prehod_identity::unix_now())
            .map(|f| Some(std::sync::Arc::new(f)))
            .map_err(crate::BuildError::RevocationFile),
        None => {
            if shared.state.is_none() {
                tracing::warn!(
                    "neither state: nor session.revocation_file is set: a restart forgets every \
                     logout, ended session and \"end all\" while the sessions they ended live on"
                );
            }
            Ok(None)
        }
    }
}

/// Reads `path` (absent: none yet), applies every revocation still holding at `now` to
/// `sessions`, rewrites the file with only those, and starts its writer.
pub fn open(path: &Path, sessions: &Sessions, now: u64) -> Result<RevocationFile, String> {
    let held = read(path, now)?;
    for r in &held {
        sessions.apply_remote(r, now);
    }
    rewrite(path, &held)?;
    let file = append(path)?;
    tracing::info!(
        path = %path.display(),
        revocations = held.len(),
        "revocation file read"
    );
    let (tx, rx) = mpsc::channel::<Job>();
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("prehod-revocation-file".into())
        .spawn(move || writer(path, file, held, rx))
        .map_err(|e| format!("cannot start the revocation file writer: {e}"))?;
    Ok(RevocationFile { tx: Mutex::new(tx) })
}

/// Every revocation in `path` still holding at `now`.
fn read(path: &Path, now: u64) -> Result<Vec<Revoked>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut held = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Line>(line)
            .ok()
            .and_then(|l| Some((Kind::from_label(&l.kind)?, l)));
        match parsed {
            Some((kind, l)) if l.until > now => held.push(Revoked {
                kind,
                id: l.id,
                at: l.at,
                until: l.until,
            }),
            Some(_) => {}
            None if i + 1 == lines.len() && !complete => tracing::warn!(
                path = %path.display(),
                line = i + 1,
                "revocation file: last line cut short (a crash while writing?); dropped"
            ),
            None => {
                return Err(format!(
                    "{}:{}: not a revocation line (kind, id, at, until as JSON); not starting without it",
                    path.display(),
                    i + 1
                ))
            }
        }
    }
    Ok(held)
}

/// Replaces `path` with `held`, through a synced temporary file renamed over it.
fn rewrite(path: &Path, held: &[Revoked]) -> Result<(), String> {
    let tmp = tmp_path(path);
    let write = || -> std::io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut out = BufWriter::new(file);
        for r in held {
            serde_json::to_writer(&mut out, &Line::of(r))?;
            out.write_all(b"\n")?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

fn append(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: cannot open for appending: {e}", path.display()))
}

/// Appends and syncs each revocation; compacts when most lines no longer hold.
fn writer(path: PathBuf, mut file: File, mut held: Vec<Revoked>, rx: mpsc::Receiver<Job>) {
    let mut lines = held.len();
    while let Ok((r, done)) = rx.recv() {
        let mut line = match serde_json::to_vec(&Line::of(&r)) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "revocation file: cannot encode a revocation");
                continue;
            }
        };
        line.push(b'\n');
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            tracing::error!(
                path = %path.display(),
                error = %e,
                "revocation file: cannot write; this revocation holds until the process ends"
            );
        }
        // The revoking request goes on (it may have stopped waiting: nothing to tell then).
        let _ = done.try_send(());
        held.push(r);
        lines += 1;
        if lines >= COMPACT_AFTER {
            let now = prehod_identity::unix_now();
            held.retain(|r| r.until > now);
            if held.len() * 2 < lines {
                match rewrite(&path, &held).and_then(|()| append(&path)) {
                    Ok(f) => {
                        file = f;
                        lines = held.len();
                    }
                    Err(e) => tracing::error!(error = %e, "revocation file: compaction failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revoked(kind: Kind, id: &str, until: u64) -> Revoked {
        Revoked {
            kind,
            id: id.into(),
            at: 100,
            until,
        }
    }

    #[test]
    fn what_still_holds_is_read_back_and_a_torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("revocations");
        rewrite(
            &path,
            &[
                revoked(Kind::Subject, "sub \"with\" quotes\nand a newline", 5000),
                revoked(Kind::Session, "gone", 150),
            ],
        )
        .expect("write");
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("{\"kind\":\"session\",\"id\":\"ha");
        std::fs::write(&path, &text).expect("torn");
        let held = read(&path, 200).expect("read back");
        assert_eq!(
            held,
            vec![revoked(
                Kind::Subject,
                "sub \"with\" quotes\nand a newline",
                5000
            )]
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_bad_line_in_the_middle_stops_the_start_and_names_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("revocations");
        std::fs::write(
            &path,
            "nonsense\n{\"kind\":\"session\",\"id\":\"a\",\"at\":1,\"until\":9}\n",
        )
        .expect("write");
        let e = read(&path, 2).expect_err("refused");
        assert!(e.starts_with(&format!("{}:1: ", path.display())), "{e}");
        assert_eq!(read(&dir.path().join("absent"), 2).expect("none"), vec![]);
    }

    #[test]
    fn a_recorded_revocation_is_on_disk_when_record_returns() {
        // The request that revoked answers after `record`: a crash right after the answer
        // must not lose what the user was told of (ending_sessions.rs's restart is a kill).
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("revocations");
        let sessions = Sessions::new(
            prehod_identity::seal::Sealer::new(&[[5; 32]]),
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(600),
            10,
        );
        let file = open(&path, &sessions, 100).expect("open");
        for i in 0..50 {
            let r = revoked(Kind::Subject, &format!("sub-{i}"), 5000);
            file.record(&r);
            assert!(
                read(&path, 200).expect("read").contains(&r),
                "revocation {i} not on disk when record returned"
            );
        }
    }
}
