//! Sessions: what a login proves, sealed into one cookie any replica can open, checked on
//! every request against idle and absolute expiry and the revocation set, and cached after
//! the first check so the request path does not open the seal again.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use serde::{Deserialize, Serialize};

use crate::digest::KeyedDigest;
use crate::revocation::{Key, Kind, Revocations};
use crate::seal::{SealError, Sealer};

mod prepared;
pub use prepared::{Prepared, PreparedHold, PreparedValues, HOT_SESSIONS};

const PURPOSE: &[u8] = b"prehod session v1";

/// How the user logged in to the gateway: `Rekono` is any OpenID provider's login (which one:
/// [`Session::provider`]), named `rekono` in sealed sessions from before providers were a list.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Rekono,
    Certificate,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Rekono => "rekono",
            Method::Certificate => "certificate",
        }
    }
}

/// What a login proves, as sealed into the cookie and kept in the session cache. Its size is
/// most of a cached session's memory: the optional strings are `Box<str>` (16 bytes, no spare
/// capacity, where a `String` is 24), the certificate is boxed, so that the cache's
/// `Arc<Session>` fits jemalloc's 320-byte size class
/// (`a_cached_session_is_one_small_allocation_without_spare_capacity`; benches/README.md,
/// "session memory"). The sealed JSON is the same as with `String`s.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The gateway's own session id: new at every login.
    pub sid: String,
    pub sub: String,
    pub name: String,
    pub email: String,
    pub method: Method,
    pub amr: Vec<String>,
    /// Level of assurance: 10, 20 or 30.
    pub level: u8,
    /// Unix seconds of the authentication, by the provider's clock: with single sign-on, the
    /// person's first login there, however long ago.
    pub auth_time: u64,
    /// Unix seconds at which this gateway issued the session, by its own clock: what a
    /// revocation of the subject ("end all sessions") compares with. `None` in a session
    /// sealed by a gateway from before it existed; see [`Session::issue_time`].
    #[serde(default)]
    pub issued_at: Option<u64>,
    /// Unix seconds after which the session is over, whatever the activity.
    pub expires_at: u64,
    /// Unix seconds after which an idle session is over; pushed forward on activity.
    pub idle_until: u64,
    /// The identity provider's session id (`sid` claim), for back-channel logout.
    pub op_sid: Option<Box<str>>,
    /// For RP-initiated logout (`id_token_hint`).
    pub id_token: Option<String>,
    /// SHA-256 of the client certificate, for certificate sessions.
    pub cert_fingerprint: Option<Box<str>>,
    /// Subject, issuer and serial of the client certificate, for certificate sessions. Boxed:
    /// inline it made every cached session (mostly Rekono ones, without it) 200 bytes larger.
    #[serde(default)]
    pub cert: Option<Box<CertInfo>>,
    /// With host-only cookies, the one host this cookie is for (a portal's or the login
    /// host's): a cookie taken from one host is refused on another. `None` on the parent
    /// domain, where one cookie serves every host.
    #[serde(default)]
    pub host: Option<Box<str>>,
    /// The browser's session family: the sessions issued over one browser's login-host
    /// session (a step-up, two tabs whose callbacks arrived together) carry the id of the
    /// family they joined, and a logout ends the whole family ([`Sessions::end_browser`]).
    /// `None`: the session started its family, whose id is its own ([`Session::family_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Box<str>>,
    /// The id of the OpenID provider of a [`Method::Rekono`] (OpenID) login; `None` in a
    /// certificate session, and in one sealed before providers were configurable: `rekono`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Box<str>>,
    /// The identity header values and assertions a request to a portal carries, made at the
    /// first such request of this session object and kept for the next ([`Prepared`]). Never
    /// sealed; empty in a new session and in a clone (`Default::default()`).
    #[serde(skip)]
    pub prepared: Prepared,
}

impl Session {
    /// A session of `method` for `sub` at `level`, every other field empty or zero — those
    /// [`Sessions::issue`] sets (`sid`, `issued_at`, the deadlines) included. A login sets what
    /// else it knows with `Session { name, …, ..Session::new(…) }`: the one place a session is
    /// made of its parts, so that a field added to the session is added here.
    pub fn new(method: Method, sub: impl Into<String>, level: u8) -> Session {
        Session {
            sid: String::new(),
            sub: sub.into(),
            name: String::new(),
            email: String::new(),
            method,
            amr: Vec::new(),
            level,
            auth_time: 0,
            issued_at: None,
            expires_at: 0,
            idle_until: 0,
            op_sid: None,
            id_token: None,
            cert_fingerprint: None,
            cert: None,
            host: None,
            family: None,
            provider: None,
            prepared: Prepared::default(),
        }
    }

    /// When the gateway issued the session. A session sealed before the issue time was kept
    /// has its `auth_time` instead: never later than its issue ([`Sessions::issue`] caps it),
    /// so every revocation of the subject that ends the session by its issue time ends it by
    /// this one too — it can only be refused more often, never less (fail closed).
    pub fn issue_time(&self) -> u64 {
        self.issued_at.unwrap_or(self.auth_time)
    }

    /// How the session was made, as sessions, audit lines, metric labels and the method
    /// header name it: the OpenID provider's id (`rekono`, …), or `certificate`.
    pub fn method_label(&self) -> &str {
        match self.method {
            Method::Rekono => self
                .provider
                .as_deref()
                .unwrap_or(crate::oidc::DEFAULT_PROVIDER),
            Method::Certificate => Method::Certificate.as_str(),
        }
    }

    /// Drops the spare capacity of its lists: serde grows a list it reads to room for four
    /// (`amr` of two took 96 bytes, not 48), and a cached session keeps it for its lifetime.
    fn shrink_to_fit(&mut self) {
        self.amr.shrink_to_fit();
        if let Some(c) = &mut self.cert {
            c.revocation_keys.shrink_to_fit();
            c.distribution_points.shrink_to_fit();
        }
    }

    /// The id of the session family this session belongs to.
    pub fn family_id(&self) -> &str {
        self.family.as_deref().unwrap_or(&self.sid)
    }
}

/// What the per-user session index keeps of a session: enough to tell whether it is revoked
/// ([`Sessions::is_revoked_summary`]).
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a> {
    pub sid: &'a str,
    pub sub: &'a str,
    pub op_sid: Option<&'a str>,
    /// [`Session::family`] (`None`: the family is `sid`'s own).
    pub family: Option<&'a str>,
    /// [`Session::issue_time`].
    pub issued_at: u64,
    pub expires_at: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertInfo {
    #[serde(default)]
    pub organization: String,
    /// The organisation qualified by its anchor (see `cert::CertIdentity`).
    #[serde(default)]
    pub organization_id: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    /// The anchor it verified under, its notAfter, and how CRLs name its chain: what every
    /// request of the session is checked against again ([`crate::cert::Checker::still_valid`]).
    /// Absent in a session from an older gateway: it then fails those checks (logs in again).
    #[serde(default)]
    pub anchor: String,
    #[serde(default)]
    pub not_after: i64,
    #[serde(default)]
    pub revocation_keys: Vec<String>,
    #[serde(default)]
    pub distribution_points: Vec<String>,
}

/// Roughly the heap bytes of a session.
fn approximate_size(s: &Session) -> u64 {
    let strings = s.sid.len()
        + s.sub.len()
        + s.name.len()
        + s.email.len()
        + s.amr.iter().map(String::len).sum::<usize>()
        + s.op_sid.as_ref().map_or(0, |v| v.len())
        + s.id_token.as_ref().map_or(0, String::len)
        + s.cert_fingerprint.as_ref().map_or(0, |v| v.len())
        + s.host.as_ref().map_or(0, |v| v.len())
        + s.family.as_ref().map_or(0, |v| v.len())
        + s.provider.as_ref().map_or(0, |v| v.len())
        + s.cert.as_ref().map_or(0, |c| {
            std::mem::size_of::<CertInfo>()
                + c.organization.len()
                + c.subject.len()
                + c.issuer.len()
                + c.serial.len()
                + c.anchor.len()
                + c.revocation_keys.iter().map(String::len).sum::<usize>()
                + c.distribution_points.iter().map(String::len).sum::<usize>()
        });
    (std::mem::size_of::<Session>() + strings) as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a session cookie of this gateway (forged, altered, or sealed with a retired key).
    Invalid,
    IdleExpired,
    AbsoluteExpired,
    Revoked,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid_session",
            Refusal::IdleExpired => "idle_timeout",
            Refusal::AbsoluteExpired => "absolute_timeout",
            Refusal::Revoked => "revoked",
        }
    }
}

/// Why no session was issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The revocation store is at its bound: a new session could not be revoked, so none is
    /// issued (fail closed) until expired revocations make room.
    #[error("revocation store full ({max} entries): no new sessions until revocations expire")]
    RevocationStoreFull { max: usize },
}

/// A session that passed every check, and the cookie to set if its idle time was rolled.
#[derive(Debug)]
pub struct Valid {
    pub session: Arc<Session>,
    pub rolled: Option<String>,
}

/// A cached session with the revocation-store keys of its ids, computed once when it was
/// opened rather than three SHA-256 digests on every request. The keys are kept inline (moka
/// clones the value on every hit: a copy of 65 bytes where a second `Arc` was an allocation of
/// 96 bytes per session and a second reference count to move per request).
///
/// The cached session never holds the id token (`Session::id_token` is `None` in it): at ~850
/// bytes it was half of a cached session's memory, and only the login host's logout
/// (`id_token_hint`) and the re-seals of that host's cookie need it. A look-up that must have
/// it ([`Sessions::validate`], [`Sessions::peek`], a roll of a cookie that keeps it) opens the
/// cookie again; the portal request path ([`Sessions::validate_on_portal`]) does not.
#[derive(Clone)]
struct Cached {
    session: Arc<Session>,
    keys: RevocationKeys,
    /// The cookie holds an id token that `session` leaves out.
    id_token_left_out: bool,
}

/// A cookie's session as a look-up found it ([`Sessions::find`]).
struct Found {
    cached: Cached,
    /// A miss that opened a cookie with an id token: the whole session, token included.
    opened_whole: Option<Session>,
}

impl Found {
    /// The whole session, its id token included: the cached one when the cache left nothing
    /// out, else the one a miss opened, else the cookie opened again.
    fn whole(self, sessions: &Sessions, cookie: &str) -> Option<Arc<Session>> {
        if !self.cached.id_token_left_out {
            return Some(self.cached.session);
        }
        match self.opened_whole {
            Some(whole) => Some(Arc::new(whole)),
            None => sessions.open_whole(cookie),
        }
    }
}

#[derive(Clone)]
struct RevocationKeys {
    sid: Key,
    op_sid: Option<Key>,
    sub: Key,
    family: Key,
}

impl RevocationKeys {
    fn of(s: &Session) -> Self {
        Self {
            sid: crate::revocation::key(Kind::Session, &s.sid),
            op_sid: s
                .op_sid
                .as_deref()
                .map(|op| crate::revocation::key(Kind::RekonoSession, op)),
            sub: crate::revocation::key(Kind::Subject, &s.sub),
            family: crate::revocation::key(Kind::Family, s.family_id()),
        }
    }
}

pub struct Sessions {
    sealer: Sealer,
    idle: Duration,
    absolute: Duration,
    /// [`KeyedDigest`] of a cookie value → the session that opened from it.
    cache: Cache<u128, Cached>,
    /// The cache's digest keys; they go with the cache at a reload.
    digest: KeyedDigest,
    /// Sessions, Rekono sessions and subjects logged out, each until it no longer matters.
    /// Shared with the sessions of the configurations loaded after this one (see [`Sessions::adopt`]).
    revoked: Arc<Revocations>,
    /// The longest absolute timeout (seconds) of this configuration and those loaded before
    /// it in this process: how long a revocation must hold when it ends sessions it does not
    /// know (a session issued before a reload that shortened the timeout lives until the
    /// expiry sealed at its issue). Shared across reloads like `revoked`.
    longest_absolute: Arc<std::sync::atomic::AtomicU64>,
    /// How long after an end of sessions the subject's next Rekono login must authenticate
    /// afresh ([`Sessions::require_fresh_login`]; `session.fresh_login_for`).
    fresh_login_for: Duration,
    pub hits: Arc<std::sync::atomic::AtomicU64>,
    pub misses: Arc<std::sync::atomic::AtomicU64>,
    /// Told of every revocation made here (not of those applied from other replicas), to
    /// share it with the fleet.
    on_revoke: Option<RevokeHook>,
    /// Told of every session issued here (for the per-user session index).
    on_issue: Option<IssueHook>,
}

pub type IssueHook = Arc<dyn Fn(&Session) + Send + Sync>;

/// One revocation, as shared between replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    pub kind: Kind,
    pub id: String,
    /// Unix seconds of the revocation.
    pub at: u64,
    /// Unix seconds until which it holds.
    pub until: u64,
}

pub type RevokeHook = Arc<dyn Fn(Revoked) + Send + Sync>;

impl Sessions {
    /// `max_entries` bounds the number of cached sessions, `max_bytes` the memory they take
    /// (cookie and session sizes as weights); whichever is reached first evicts.
    pub fn new(sealer: Sealer, idle: Duration, absolute: Duration, max_entries: u64) -> Self {
        Self::with_memory_bound(sealer, idle, absolute, max_entries, 64 * 1024 * 1024)
    }

    pub fn with_memory_bound(
        sealer: Sealer,
        idle: Duration,
        absolute: Duration,
        max_entries: u64,
        max_bytes: u64,
    ) -> Self {
        // moka bounds one quantity: the weight. Each entry weighs its bytes, and at least
        // max_bytes / max_entries, so the entry count is bounded too.
        let floor = (max_bytes / max_entries.max(1)).max(1);
        Self {
            sealer,
            idle,
            absolute,
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(move |_: &u128, c: &Cached| -> u32 {
                    // With what a session keeps once it reached a portal (weighed once, from
                    // the start); its prepared values are bounded by their own set.
                    let bytes = std::mem::size_of::<(u128, Cached)>() as u64
                        + approximate_size(&c.session)
                        + prepared::LINGERING_BYTES;
                    u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
                })
                // An entry is never older than the longest a session can idle.
                .time_to_live(idle)
                .build(),
            digest: KeyedDigest::random(),
            revoked: Arc::new(Revocations::new(crate::revocation::DEFAULT_MAX)),
            longest_absolute: Arc::new(absolute.as_secs().into()),
            fresh_login_for: absolute,
            hits: Default::default(),
            misses: Default::default(),
            on_revoke: None,
            on_issue: None,
        }
    }

    /// Bounds the revocation store to `max` entries (`session.max_revocations`); see
    /// [`crate::revocation`] for the bytes per entry and what happens at the bound.
    pub fn with_max_revocations(mut self, max: usize) -> Self {
        self.revoked = Arc::new(Revocations::new(max));
        self
    }

    /// For a configuration reload: these sessions take over `old`'s revocations and lookup
    /// counts (a revocation outlives any configuration), and its cache of opened cookies when
    /// `same_keys` (same session keys and timeouts: a cookie opens to the same session). With
    /// other keys the cache starts empty, so a retired key's cookie is opened again — and
    /// refused. A changed `session.max_revocations` takes effect at the next restart.
    pub fn adopt(mut self, old: &Sessions, same_keys: bool) -> Self {
        self.revoked = old.revoked.clone();
        self.longest_absolute = old.longest_absolute.clone();
        self.longest_absolute.fetch_max(
            self.absolute.as_secs(),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.on_revoke = old.on_revoke.clone();
        self.on_issue = old.on_issue.clone();
        self.hits = old.hits.clone();
        self.misses = old.misses.clone();
        if same_keys && self.idle == old.idle && self.absolute == old.absolute {
            self.cache = old.cache.clone();
            self.digest = old.digest.clone();
        }
        self
    }

    /// How long after an end of sessions the subject's next login must be fresh
    /// (`session.fresh_login_for`); never shorter than the absolute timeout.
    pub fn with_fresh_login_for(mut self, hold: Duration) -> Self {
        self.fresh_login_for = hold.max(self.absolute);
        self
    }

    /// Seconds a revocation of sessions it does not know holds: the longest absolute timeout
    /// this process has had, so that no session issued before it outlives it.
    fn hold(&self) -> u64 {
        self.longest_absolute
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(self.absolute.as_secs())
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    pub fn absolute(&self) -> Duration {
        self.absolute
    }

    /// A new session for a login at `now` (its issue time), and its cookie value; it joins
    /// `session.family` when that is set. Refused while the revocation store is full: a
    /// session that could not be revoked is not issued.
    pub fn issue(&self, mut session: Session, now: u64) -> Result<(Session, String), IssueError> {
        if self.revoked.is_full(now) {
            return Err(IssueError::RevocationStoreFull {
                max: self.revoked.max(),
            });
        }
        session.sid = crate::random_id();
        // A session moved in may have served a portal: what it prepared then is another
        // session's (attacker's review of the prepared values, finding 1).
        session.prepared = Default::default();
        session.auth_time = session.auth_time.min(now);
        session.issued_at = Some(now);
        session.expires_at = now + self.absolute.as_secs();
        session.idle_until = (now + self.idle.as_secs()).min(session.expires_at);
        let cookie = self.seal(&session)?;
        if let Some(hook) = &self.on_issue {
            hook(&session);
        }
        Ok((session, cookie))
    }

    /// The cookie value of `session` for `host` (see [`Session::host`]): the same session
    /// (same id, same expiry), bound to another host.
    pub fn cookie_for(&self, session: &Session, host: Option<&str>) -> Result<String, SealError> {
        let mut s = session.clone();
        s.host = host.map(Box::from);
        self.seal(&s)
    }

    /// The cookie value of `session` for a portal's host (host-only cookies): as
    /// [`Sessions::cookie_for`], without the id token. Only the login host's cookie is sent
    /// back to the provider at logout (`id_token_hint`); a portal's comes with every request
    /// to the portal, ~1 100 bytes shorter without it.
    pub fn portal_cookie(&self, session: &Session, host: &str) -> Result<String, SealError> {
        let mut s = session.clone();
        s.host = Some(host.into());
        s.id_token = None;
        self.seal(&s)
    }

    fn seal(&self, session: &Session) -> Result<String, SealError> {
        let json = serde_json::to_vec(session).map_err(|e| SealError::Crypto(e.to_string()))?;
        self.sealer.seal(PURPOSE, &json)
    }

    /// Checks a cookie value at `now`: the whole session as sealed, its id token included (for
    /// the login host, whose cookie's token logout sends back to the provider, and whose
    /// session is sealed again into other cookies).
    pub fn validate(&self, cookie: &str, now: u64) -> Result<Valid, Refusal> {
        self.validate_as(cookie, now, true)
    }

    /// Checks a cookie value at `now` as [`Sessions::validate`] does, for a request to a
    /// portal's host: the session may lack its id token (`Session::id_token` is `None`, see
    /// [`Cached`]) — so that a cached session is used as it is, without opening the cookie
    /// again. Never seal the session it returns into a cookie. `Valid::rolled` is a portal's
    /// cookie: a host-only one (`Session::host` set) is sealed without the id token, as
    /// [`Sessions::portal_cookie`] seals it (a portal cookie sealed with one before sheds it at
    /// its first roll); the one cookie of every host (`host` unset) is sealed whole. Never for
    /// the login host's cookie, whose token logout needs.
    pub fn validate_on_portal(&self, cookie: &str, now: u64) -> Result<Valid, Refusal> {
        self.validate_as(cookie, now, false)
    }

    fn validate_as(&self, cookie: &str, now: u64, with_id_token: bool) -> Result<Valid, Refusal> {
        let found = self.find(cookie, true).ok_or(Refusal::Invalid)?;
        let Cached { session, keys, .. } = &found.cached;
        if now >= session.expires_at {
            return Err(Refusal::AbsoluteExpired);
        }
        if now >= session.idle_until {
            return Err(Refusal::IdleExpired);
        }
        if self.is_revoked(session, keys, now) {
            return Err(Refusal::Revoked);
        }
        // Roll the idle deadline once half of it is used (deadlines are whole seconds, so
        // "half or less" keeps even a very short idle time rolling).
        let roll = session.idle_until.saturating_sub(now) <= self.idle.as_secs() / 2;
        // A rolled cookie is the whole session again, id token included — but a portal's
        // host-only cookie, which carries none (`portal_cookie`).
        let session = if with_id_token || (roll && found.cached.session.host.is_none()) {
            found.whole(self, cookie).ok_or(Refusal::Invalid)?
        } else {
            found.cached.session
        };
        let rolled = if roll {
            let mut next = (*session).clone();
            next.idle_until = (now + self.idle.as_secs()).min(next.expires_at);
            self.seal(&next).ok()
        } else {
            None
        };
        Ok(Valid { session, rolled })
    }

    /// A cookie's session from the cache, or opened from its seal; a miss is counted and cached
    /// when `keep`.
    fn find(&self, cookie: &str, keep: bool) -> Option<Found> {
        use std::sync::atomic::Ordering::Relaxed;
        let digest = self.digest.of(cookie);
        if let Some(cached) = self.cache.get(&digest) {
            if keep {
                self.hits.fetch_add(1, Relaxed);
            }
            return Some(Found {
                cached,
                opened_whole: None,
            });
        }
        if keep {
            self.misses.fetch_add(1, Relaxed);
        }
        let found = self.open(cookie)?;
        if keep {
            self.cache.insert(digest, found.cached.clone());
        }
        Some(found)
    }

    /// A cookie's session, opened from its seal (a cache miss), as the cache keeps it: without
    /// its id token ([`Cached`]); and the whole session when it had one.
    fn open(&self, cookie: &str) -> Option<Found> {
        let mut s = self.open_session(cookie)?;
        s.shrink_to_fit();
        let whole = s.id_token.is_some().then(|| s.clone());
        s.id_token = None;
        let cached = Cached {
            keys: RevocationKeys::of(&s),
            session: Arc::new(s),
            id_token_left_out: whole.is_some(),
        };
        Some(Found {
            cached,
            opened_whole: whole,
        })
    }

    /// A cookie's whole session, id token included, opened from its seal.
    fn open_whole(&self, cookie: &str) -> Option<Arc<Session>> {
        let mut s = self.open_session(cookie)?;
        s.shrink_to_fit();
        Some(Arc::new(s))
    }

    fn open_session(&self, cookie: &str) -> Option<Session> {
        let plain = self.sealer.open(PURPOSE, cookie).ok()?;
        serde_json::from_slice::<Session>(&plain).ok()
    }

    /// Whether `cookie` was opened here before (and is still cached).
    pub fn is_cached(&self, cookie: &str) -> bool {
        self.cache.contains_key(&self.digest.of(cookie))
    }

    /// A cookie's session when it is genuine, not past its absolute expiry and not revoked —
    /// even if it has idled out. For ending it (logout) and for knowing whose browser this is
    /// (a login over it must be the same person): a session idle on one host may still be in
    /// use on another. The session is whole, its id token included.
    pub fn peek(&self, cookie: &str, now: u64) -> Option<Arc<Session>> {
        let found = self.find(cookie, false)?;
        let Cached { session, keys, .. } = &found.cached;
        if now >= session.expires_at || self.is_revoked(session, keys, now) {
            return None;
        }
        found.whole(self, cookie)
    }

    /// `keys` are `s`'s own ([`RevocationKeys::of`]).
    fn is_revoked(&self, s: &Session, keys: &RevocationKeys, now: u64) -> bool {
        let r = &self.revoked;
        if r.below_watermark(s.expires_at) {
            return true;
        }
        let [sid, op_sid, family, sub] = r.revoked_at_keys(
            [
                Some(&keys.sid),
                keys.op_sid.as_ref(),
                Some(&keys.family),
                Some(&keys.sub),
            ],
            now,
        );
        sid.is_some()
            || op_sid.is_some()
            || family.is_some()
            || sub.is_some_and(|at| ended_by_subject_revocation(s.issue_time(), at))
    }

    /// Ends one session; the revocation holds until the session's absolute expiry, the one
    /// sealed at its issue (whatever the timeout is now).
    pub fn revoke_session(&self, session: &Session, now: u64) {
        self.revoke(Kind::Session, &session.sid, now, session.expires_at);
    }

    /// Ends the session with id `sid`, whatever its expiry (held for the longest absolute
    /// timeout this process has had).
    pub fn revoke_sid(&self, sid: &str, now: u64) {
        self.revoke(Kind::Session, sid, now, now + self.hold());
    }

    /// Ends every session of a Rekono session.
    pub fn revoke_op_sid(&self, op_sid: &str, now: u64) {
        self.revoke(Kind::RekonoSession, op_sid, now, now + self.hold());
    }

    /// Ends every session of `sub` issued until `now` (this second included); sessions
    /// issued later live, whatever their provider's `auth_time`. The subject's next Rekono
    /// login must authenticate afresh ([`Sessions::require_fresh_login`]).
    pub fn revoke_sub(&self, sub: &str, now: u64) {
        self.revoke(Kind::Subject, sub, now, now + self.hold());
        self.require_fresh_login(sub, now);
    }

    /// The next Rekono login of `sub` must have authenticated after `now` (a single sign-on
    /// from before is asked again, `crate::oidc::Hints::fresh`): for `session.fresh_login_for`,
    /// the longest a Rekono single sign-on session lasts, not the gateway's absolute timeout.
    /// Ends no session.
    pub fn require_fresh_login(&self, sub: &str, now: u64) {
        let hold = self.fresh_login_for.as_secs().max(self.hold());
        self.revoke(Kind::FreshLogin, sub, now, now + hold);
    }

    /// Ends every session of the family `family` ([`Session::family_id`]), for as long as
    /// any of them can live.
    pub fn revoke_family(&self, family: &str, now: u64) {
        self.revoke(Kind::Family, family, now, now + self.hold());
    }

    /// A logout: ends `session` and every session of its family — those the same browser
    /// got from logins over it, even when two of them crossed and its cookie holds only one.
    pub fn end_browser(&self, session: &Session, now: u64) {
        self.revoke_session(session, now);
        self.revoke_family(session.family_id(), now);
    }

    /// When a fresh login of `sub` was last required ([`Sessions::require_fresh_login`]: an
    /// end of all their sessions or of one from the sessions page), while that still holds:
    /// a login of `sub` must then have authenticated after it. A revocation of the subject
    /// requires it too (one whose `fresh_login` record was lost, or made by a replica from
    /// before that kind existed).
    pub fn fresh_login_required_after(&self, sub: &str, now: u64) -> Option<u64> {
        let subject = self.revoked.revoked_at(Kind::Subject, sub, now);
        subject.max(self.revoked.revoked_at(Kind::FreshLogin, sub, now))
    }

    /// Whether the family `family` was ended (a new login must not join it).
    pub fn is_family_revoked(&self, family: &str, now: u64) -> bool {
        self.revoked.revoked_at(Kind::Family, family, now).is_some()
    }

    /// Calls `hook` with every session issued here from now on.
    pub fn set_issue_hook(&mut self, hook: IssueHook) {
        self.on_issue = Some(hook);
    }

    /// Whether a session known only by its summary is revoked at `now` (for listing
    /// sessions).
    pub fn is_revoked_summary(&self, s: &Summary<'_>, now: u64) -> bool {
        let r = &self.revoked;
        r.below_watermark(s.expires_at)
            || r.revoked_at(Kind::Session, s.sid, now).is_some()
            || s.op_sid
                .is_some_and(|op| r.revoked_at(Kind::RekonoSession, op, now).is_some())
            || r.revoked_at(Kind::Family, s.family.unwrap_or(s.sid), now)
                .is_some()
            || r.revoked_at(Kind::Subject, s.sub, now)
                .is_some_and(|at| ended_by_subject_revocation(s.issued_at, at))
    }

    /// Calls `hook` with every revocation made here from now on.
    pub fn set_revoke_hook(&mut self, hook: RevokeHook) {
        self.on_revoke = Some(hook);
    }

    /// Applies a revocation another replica made (it is not shared again).
    pub fn apply_remote(&self, r: &Revoked, now: u64) {
        if r.until > now {
            self.store(r.kind, &r.id, r.at.min(now), r.until);
        }
    }

    fn revoke(&self, kind: Kind, id: &str, now: u64, until: u64) {
        self.store(kind, id, now, until);
        if let Some(hook) = &self.on_revoke {
            hook(Revoked {
                kind,
                id: id.to_owned(),
                at: now,
                until,
            });
        }
    }

    fn store(&self, kind: Kind, id: &str, now: u64, until: u64) {
        if let Err(full) = self.revoked.revoke(kind, id, now, until) {
            tracing::error!(
                max = full.max,
                "revocation store full: every session issued until now is refused, and no new \
                 session is issued until revocations expire (raise session.max_revocations)"
            );
        }
    }

    /// Revocations held now (`prehod_revocations`).
    pub fn revocations(&self, now: u64) -> usize {
        self.revoked.held(now)
    }

    /// Times the revocation store was found full (`prehod_revocation_store_full_total`).
    pub fn revocation_store_full_total(&self) -> u64 {
        self.revoked
            .full_total
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn cached(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

/// Whether a session the gateway issued at `issued` is ended by a revocation of its subject
/// at `revoked`. Both are this gateway's (or fleet's) whole seconds: a session issued in the
/// very second of the revocation is ended with it, since it may have been issued before it.
fn ended_by_subject_revocation(issued: u64, revoked: u64) -> bool {
    issued <= revoked
}

#[cfg(test)]
mod tests;
