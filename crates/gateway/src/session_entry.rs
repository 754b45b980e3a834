//! One session as the per-user session index keeps it (`crate::login::sessions::Index`, and
//! Redis through `crate::state`): who, how, at which level, when issued, last seen.

use prehod_identity::session::{Session, Summary};
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub sid: String,
    pub sub: String,
    pub method: String,
    pub level: u8,
    /// The provider's login time (with single sign-on, possibly long before the session).
    pub auth_time: u64,
    /// When the gateway issued the session ([`Session::issue_time`]).
    pub issued_at: u64,
    pub expires_at: u64,
    pub last_seen: u64,
    #[serde(skip)]
    pub op_sid: Option<String>,
    /// [`Session::family`].
    #[serde(skip)]
    pub family: Option<String>,
}

impl Entry {
    pub fn of(s: &Session) -> Self {
        Self {
            sid: s.sid.clone(),
            sub: s.sub.clone(),
            method: s.method_label().to_owned(),
            level: s.level,
            auth_time: s.auth_time,
            issued_at: s.issue_time(),
            expires_at: s.expires_at,
            last_seen: s.issue_time(),
            op_sid: s.op_sid.as_deref().map(str::to_owned),
            family: s.family.as_deref().map(str::to_owned),
        }
    }

    pub fn summary(&self) -> Summary<'_> {
        Summary {
            sid: &self.sid,
            sub: &self.sub,
            op_sid: self.op_sid.as_deref(),
            family: self.family.as_deref(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        }
    }
}
