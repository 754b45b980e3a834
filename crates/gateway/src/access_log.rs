//! The access log: one JSON line per request (target `prehod::access`) on stdout, beside the
//! rest of the log. It never carries cookies, tokens or query secrets.
//!
//! The line has exactly the shape `tracing-subscriber`'s JSON formatter gives every other
//! event (`timestamp`, `level`, `fields` with `message: "access"`, `target`; see the test
//! below), and `PREHOD_LOG` turns it off as before (it is written only while an INFO event of
//! target `prehod::access` is enabled). It is formatted here rather than through `tracing`
//! because that costed ~26 000 instructions per request — 13 % of a whole proxied request —
//! in field visitors and per-field serialisation (benches/README.md, "instructions").
//!
//! Lines are written in batches, not one `write(2)` each: a request's line waits in one
//! buffer until 32 KiB wait, the flusher thread's next turn (every 50 ms) or [`flush`] at
//! shutdown — as nginx's `access_log … buffer= flush=` and Envoy's flush interval do. A write
//! per request under stdout's lock was the one system call a request made beyond its sockets,
//! and the two worker threads waited for each other on that lock. Lines keep their order
//! (a batch is taken from the buffer under stdout's lock), and each batch is whole lines, so
//! they never interleave with the rest of the log; a line may follow a later event of another
//! target by up to 50 ms (its own `timestamp` is when it was made).
//!
//! A batch goes out in writes of whole lines of at most `PIPE_BUF` (4 096) bytes each: on a
//! pipe — a container's stdout — such a write is never mixed with another process's, and
//! during a binary upgrade the old and the new process write to the same stdout (one 32 KiB
//! write was cut into by the other process's lines once the reader lagged: the attacker's
//! review). A longer line is one write of its own, as every line was before.
//!
//! What a batch cannot survive is the process's sudden end: a SIGKILL (Kubernetes' after
//! `terminationGracePeriodSeconds`), the OOM killer or a crash loses the lines of the last
//! 50 ms at the most; a stop by SIGTERM, SIGINT or SIGQUIT writes them ([`flush`] at exit).

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::text::{push_decimal, push_ip};

/// Everything one access-log line says.
pub struct AccessEntry<'a> {
    pub request_id: &'a str,
    pub portal: &'a str,
    pub method: &'a str,
    /// Path and query with secret values redacted.
    pub path: &'a str,
    pub host: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub duration_ms: f64,
    /// The target's `host:port` (`crate::pool::TargetState::label`).
    pub upstream: Option<&'a str>,
    pub upstream_error: Option<&'a str>,
    pub auth: &'a str,
    pub client: Option<IpAddr>,
}

thread_local! {
    /// Each thread's line buffer, reused.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

pub fn write(e: &AccessEntry<'_>) {
    if !tracing::enabled!(target: "prehod::access", tracing::Level::INFO) {
        return;
    }
    let now = time::OffsetDateTime::now_utc();
    LINE.with(|line| {
        let Ok(mut line) = line.try_borrow_mut() else {
            return;
        };
        line.clear();
        format_line(&mut line, e, now);
        if PENDING.add(&line) {
            flush();
        }
    });
    // The binary started it before serving ([`start_flusher`]); here for any other user of
    // the library.
    start_flusher();
}

/// Starts the thread that writes the waiting lines every 50 ms (once; later calls return what
/// the first one got): whether it runs. The binary calls it before it serves and refuses to
/// start without it — else, on a quiet gateway, lines would wait for 32 KiB more or the exit.
pub fn start_flusher() -> bool {
    *FLUSHER.get_or_init(|| {
        let started = std::thread::Builder::new()
            .name("prehod-access-log".into())
            .spawn(|| loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            });
        if let Err(e) = &started {
            tracing::error!(error = %e, "the access log's flusher thread did not start");
        }
        started.is_ok()
    })
}

/// Writes every line that waits, in order. Called by the flusher thread, when a batch is full,
/// and by the binary before it exits (lines written after are written by the next call).
pub fn flush() {
    // The batch is taken under stdout's lock: two batches are written in the order they were
    // taken, and no other log line is written in the middle of one.
    let _ = PENDING.write_to(&mut std::io::stdout().lock());
}

/// How much waits before the request that adds to it writes the batch itself.
const BATCH: usize = 32 * 1024;
/// The most one write of several lines holds: POSIX's `PIPE_BUF` on Linux, the size up to
/// which a write to a pipe is not mixed with another writer's.
const PIPE_BUF: usize = 4096;
/// How long a line waits at the most while requests are few.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

static PENDING: Pending = Pending(Mutex::new(Vec::new()));
static FLUSHER: OnceLock<bool> = OnceLock::new();

/// The lines made and not yet written.
struct Pending(Mutex<Vec<u8>>);

impl Pending {
    /// Adds `line`; whether a batch is full.
    fn add(&self, line: &[u8]) -> bool {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.capacity() == 0 {
            pending.reserve_exact(BATCH + 4096);
        }
        pending.extend_from_slice(line);
        pending.len() >= BATCH
    }

    /// Writes what waits to `out` (held by the caller while it takes it), leaving room for the
    /// next batch.
    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let batch = {
            let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.is_empty() {
                return Ok(());
            }
            std::mem::replace(&mut *pending, Vec::with_capacity(BATCH + 4096))
        };
        for piece in pieces(&batch) {
            out.write_all(piece)?;
        }
        out.flush()
    }
}

/// `batch` (whole lines) cut into writes of whole lines of at most [`PIPE_BUF`] bytes; a
/// longer line is a piece of its own.
fn pieces(batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = batch;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let window = rest.get(..PIPE_BUF.min(rest.len())).unwrap_or(rest);
        let end = match memchr::memrchr(b'\n', window) {
            // Up to the last newline that fits.
            Some(i) if window.len() < rest.len() => i + 1,
            // All of the rest fits.
            _ if window.len() == rest.len() => rest.len(),
            // A line longer than a piece: alone, to its newline (or the end).
            _ => memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
        };
        let (piece, after) = rest.split_at(end);
        rest = after;
        Some(piece)
    })
}

/// The line (with its newline) for `e` at `now`.
fn format_line(out: &mut Vec<u8>, e: &AccessEntry<'_>, now: time::OffsetDateTime) {
    // tracing-subscriber's timestamp: RFC 3339, UTC, microseconds; the digits written
    // without core::fmt (~2 000 instructions per line less).
    out.extend_from_slice(b"{\"timestamp\":\"");
    // A year before 1 BC is not a clock's: written as 0000 (`time` allows −9999).
    // The date and the time each taken apart once (`month()` and `day()` each convert the
    // day of the year again).
    let (year, month, day) = now.to_calendar_date();
    let (hour, minute, second, micro) = now.to_hms_micro();
    push_decimal(out, u64::try_from(year).unwrap_or(0), 4);
    for (sep, n) in [
        (b'-', u8::from(month)),
        (b'-', day),
        (b'T', hour),
        (b':', minute),
        (b':', second),
    ] {
        out.push(sep);
        push_decimal(out, u64::from(n), 2);
    }
    out.push(b'.');
    push_decimal(out, u64::from(micro), 6);
    out.extend_from_slice(b"Z\",\"level\":\"INFO\",\"fields\":{\"message\":\"access\"");
    // Each key written with its punctuation as one piece (`,"key":`).
    let text = |out: &mut Vec<u8>, key: &[u8], value: &str| {
        out.extend_from_slice(key);
        push_json_string(out, value);
    };
    // Room for the line: fewer growths of a buffer that a long path outgrew.
    out.reserve(256 + e.path.len());
    text(out, b",\"request_id\":", e.request_id);
    text(out, b",\"portal\":", e.portal);
    text(out, b",\"method\":", e.method);
    text(out, b",\"path\":", e.path);
    text(out, b",\"host\":", e.host);
    out.extend_from_slice(b",\"status\":");
    push_decimal(out, u64::from(e.status), 1);
    out.extend_from_slice(b",\"bytes\":");
    // usize fits u64 on every target the gateway builds for.
    push_decimal(out, u64::try_from(e.bytes).unwrap_or(u64::MAX), 1);
    out.extend_from_slice(b",\"duration_ms\":");
    let _ = serde_json::to_writer(&mut *out, &e.duration_ms);
    text(out, b",\"upstream\":", e.upstream.unwrap_or("-"));
    text(
        out,
        b",\"upstream_error\":",
        e.upstream_error.unwrap_or("-"),
    );
    text(out, b",\"auth\":", e.auth);
    match e.client {
        // Digits, dots and colons: nothing to escape.
        Some(ip) => {
            out.extend_from_slice(b",\"client\":\"");
            push_ip(out, ip);
            out.push(b'"');
        }
        None => text(out, b",\"client\":", "-"),
    }
    out.extend_from_slice(b"},\"target\":\"prehod::access\"}\n");
}

/// `value` as a JSON string, as serde_json writes it (the tracing formatter's escaping): as it
/// is between quotes when nothing in it needs escaping — the usual field (an id, a host, a
/// path) — else through serde_json. serde_json's writer cost ~220 instructions per field,
/// eight fields a line (issue 20).
fn push_json_string(out: &mut Vec<u8>, value: &str) {
    // What serde_json escapes: control characters, the quote and the backslash.
    if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn entry<'a>(path: &'a str, host: &'a str) -> AccessEntry<'a> {
        AccessEntry {
            request_id: "c51701e218014c5c83f7280450dd11ee",
            portal: "bips",
            method: "GET",
            path,
            host,
            status: 302,
            bytes: 0,
            duration_ms: 0.463889,
            upstream: Some("127.0.0.1:8080"),
            upstream_error: None,
            auth: "redirect",
            client: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        }
    }

    /// Lines wait until a batch is full or a flush, then go out whole and in the order they
    /// were made, and nothing is written twice.
    #[test]
    fn lines_wait_for_a_batch_and_go_out_whole_and_in_order() {
        let pending = Pending(Mutex::new(Vec::new()));
        let mut out = Vec::new();
        pending.write_to(&mut out).unwrap();
        assert!(out.is_empty(), "nothing waits");
        let line = |i: usize| format!("{{\"n\":{i:06},\"pad\":\"{}\"}}\n", "x".repeat(300));
        let mut full_at = None;
        for i in 0..200 {
            if pending.add(line(i).as_bytes()) && full_at.is_none() {
                full_at = Some(i);
            }
        }
        // ~320 bytes a line: the batch is full at its 32 KiB, not before.
        let full_at = full_at.expect("a batch fills");
        let len = line(0).len();
        assert!(
            full_at * len < BATCH && (full_at + 1) * len >= BATCH,
            "full at {full_at}"
        );
        pending.write_to(&mut out).unwrap();
        let expected: String = (0..200).map(line).collect();
        assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
        pending.add(line(200).as_bytes());
        pending.write_to(&mut out).unwrap();
        pending.write_to(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected + &line(200));
    }

    /// Every `write` call a writer gets.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// review-al: one 32 KiB write to a pipe is cut into by another process writing to it (the
    /// old and the new process of an upgrade share stdout) once the reader lags; a write of at
    /// most PIPE_BUF bytes is not. Every write is whole lines of at most PIPE_BUF bytes, or one
    /// longer line alone — and nothing is lost or reordered on the way.
    #[test]
    fn review_al_a_batch_goes_out_in_writes_a_pipe_never_mixes() {
        let pending = Pending(Mutex::new(Vec::new()));
        let mut expected = String::new();
        for i in 0..300 {
            // Mostly ~320-byte lines, some as long as a piece or longer (a long path).
            let pad = match i % 50 {
                7 => PIPE_BUF - 20,
                8 => PIPE_BUF * 3,
                9 => PIPE_BUF - 21,
                _ => 300,
            };
            let line = format!("{{\"n\":{i:06},\"p\":\"{}\"}}\n", "y".repeat(pad));
            pending.add(line.as_bytes());
            expected.push_str(&line);
        }
        let mut out = Writes::default();
        pending.write_to(&mut out).unwrap();
        assert!(out.0.len() > 30, "{} writes", out.0.len());
        for w in &out.0 {
            assert_eq!(w.last(), Some(&b'\n'), "a write ends a line");
            let lines = w.iter().filter(|&&b| b == b'\n').count();
            assert!(
                w.len() <= PIPE_BUF || lines == 1,
                "a write of {} bytes holds {lines} lines",
                w.len()
            );
        }
        // Pieces are as full as they may be: a piece and the next line would not fit.
        for pair in out.0.windows(2) {
            let next = pair[1].iter().position(|&b| b == b'\n').unwrap() + 1;
            assert!(pair[0].len() + next > PIPE_BUF);
        }
        assert_eq!(String::from_utf8(out.0.concat()).unwrap(), expected);
        // Exactly PIPE_BUF, and one byte more.
        for len in [PIPE_BUF, PIPE_BUF + 1] {
            let line = format!("{}\n", "z".repeat(len - 1));
            let two = format!("{line}{line}");
            assert_eq!(
                pieces(two.as_bytes()).collect::<Vec<_>>(),
                [line.as_bytes(); 2]
            );
        }
    }

    /// Every character class serde_json treats apart, alone and among others: the fast path
    /// writes what serde_json writes.
    #[test]
    fn json_strings_are_what_serde_json_writes() {
        let mut values = vec![
            String::new(),
            "c51701e218014c5c83f7280450dd11ee".to_owned(),
            "/a?b=c&d=REDACTED".to_owned(),
            "\u{7f}é日本\u{10ffff}".to_owned(),
        ];
        for c in (0u8..0x80).map(char::from) {
            values.push(c.to_string());
            values.push(format!("ab{c}cd"));
        }
        for v in values {
            let mut ours = Vec::new();
            push_json_string(&mut ours, &v);
            let theirs = serde_json::to_vec(&v).expect("serialize");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{v:?}"
            );
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The same entry through `tracing` and the binary's JSON formatter (as the access log
    /// was written before): every key, value and their order are the same; only the
    /// timestamps differ (taken at different instants).
    #[test]
    fn the_line_is_what_the_tracing_json_formatter_wrote() {
        let hostile = "/a\"b\\c\u{1}\u{7f}é?code=REDACTED";
        let e = entry(hostile, "bips.bankart.localhost");
        let captured = Captured::default();
        let sink = captured.clone();
        let client = e.client.map_or("-".to_owned(), |c| c.to_string());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "prehod::access",
                request_id = e.request_id,
                portal = e.portal,
                method = e.method,
                path = e.path,
                host = e.host,
                status = e.status,
                bytes = e.bytes,
                duration_ms = e.duration_ms,
                upstream = e.upstream.unwrap_or("-"),
                upstream_error = e.upstream_error.unwrap_or("-"),
                auth = e.auth,
                client = client.as_str(),
                "access"
            );
        });
        let theirs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let mut ours = Vec::new();
        format_line(&mut ours, &e, time::OffsetDateTime::now_utc());
        let ours = String::from_utf8(ours).expect("utf-8");
        assert!(
            ours.ends_with('\n') && !ours.trim_end().contains('\n'),
            "one line"
        );
        let strip = |line: &str| -> (String, String) {
            let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("JSON");
            let ts = v["timestamp"].as_str().expect("timestamp").to_owned();
            let rest = line
                .split_once("\",\"level\"")
                .map(|(_, r)| r.to_owned())
                .expect("level follows timestamp");
            (ts, rest)
        };
        let (their_ts, their_rest) = strip(&theirs);
        let (our_ts, our_rest) = strip(&ours);
        assert_eq!(our_rest, their_rest, "byte for byte after the timestamp");
        // Same timestamp format: 2026-12-01T12:20:19.049207Z.
        let shape = |ts: &str| {
            ts.chars()
                .map(|c| if c.is_ascii_digit() { '9' } else { c })
                .collect::<String>()
        };
        assert_eq!(shape(&our_ts), shape(&their_ts));
        assert_eq!(shape(&our_ts), "9999-99-99T99:99:99.999999Z");
    }

    #[test]
    fn a_line_is_one_line_whatever_the_values() {
        let e = entry("/x\n{\"forged\":1}\r\n", "h\u{2028}ost");
        let mut out = Vec::new();
        format_line(&mut out, &e, time::OffsetDateTime::UNIX_EPOCH);
        let line = String::from_utf8(out).expect("utf-8");
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.starts_with("{\"timestamp\":\"1970-01-01T00:00:00.000000Z\""));
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(v["fields"]["path"], "/x\n{\"forged\":1}\r\n");
        assert_eq!(v["fields"]["status"], 302);
    }

    #[test]
    fn the_client_and_upstream_are_written_as_their_display() {
        for (client, shown) in [
            (Some("2001:db8::7".parse().expect("address")), "2001:db8::7"),
            (Some("192.0.2.10".parse().expect("address")), "192.0.2.10"),
            (None, "-"),
        ] {
            let mut e = entry("/", "h");
            (e.client, e.upstream) = (client, None);
            let mut out = Vec::new();
            format_line(&mut out, &e, time::OffsetDateTime::UNIX_EPOCH);
            let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
            assert_eq!(v["fields"]["client"], shown);
            assert_eq!(v["fields"]["upstream"], "-");
        }
    }
}
