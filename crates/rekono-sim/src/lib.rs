//! A Rekono simulator: a real OpenID Provider over real HTTPS that behaves like Rekono as the
//! seed describes it — e-mail and password, then a second factor chosen among those the
//! account's level of assurance allows (SMS code, OnePass one-time password, OnePass push,
//! digital certificate) — so the whole gateway runs and is tested on one machine.
//!
//! In its FAPI 2.0 mode (`fapi2: true`) it takes only pushed authorization requests and
//! DPoP-bound tokens, and `danger_misbehave` breaks one promise of that profile at a time, for
//! tests of the relying party's refusals.
//!
//! It is for development and tests only: it binds loopback unless told otherwise, says so on
//! every page and at start, and has `/dev/…` endpoints (SMS outbox, push approval, key
//! rotation, logout) that a real provider would never have.

pub mod config;
mod endpoints;
mod exchange;
pub mod keys;
pub mod pages;
mod server;
pub mod totp;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use config::{hash_password, Account, Client, Misbehave, SimConfig, SimConfigError};
pub use server::{spawn, RunningSim, SimError};

/// Rekono's issuer path (MITREid Connect naming).
pub const BASE_PATH: &str = "/openid-connect-server-webapp";

/// A second factor.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Factor {
    Sms,
    Otp,
    Push,
    Certificate,
}

impl Factor {
    /// RFC 8176 `amr` values for a password plus this factor.
    pub fn amr(self) -> Vec<String> {
        let second = match self {
            Factor::Sms => "sms",
            Factor::Otp => "otp",
            Factor::Push => "mfa",
            Factor::Certificate => "hwk",
        };
        vec!["pwd".to_owned(), second.to_owned()]
    }
}

/// One SMS the simulator "sent".
#[derive(Clone, Debug, Serialize)]
pub struct Sms {
    pub to: String,
    pub email: String,
    pub code: String,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushStatus {
    Pending,
    Approved,
    Rejected,
}

/// A login in progress: from `authorize` until a code is issued.
#[derive(Debug)]
pub(crate) struct Tx {
    pub client: usize,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub min_level: Option<u8>,
    /// The level this login establishes: the requested one, or the account's own.
    pub target_level: u8,
    pub browser: String,
    pub csrf: String,
    pub created: Instant,
    pub account: Option<usize>,
    pub password_attempts: u32,
    pub code_attempts: u32,
    pub sms_code: Option<String>,
    pub push: Option<(String, PushStatus)>,
    /// The screen the transaction is on: what a language switch shows again.
    pub step: Step,
}

/// The screen a login transaction is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// E-mail and password (with the e-mail typed so far).
    Login {
        email: String,
    },
    Chooser,
    /// The SMS or OnePass code form.
    Code(Factor),
    Push,
}

#[derive(Debug)]
pub(crate) struct Code {
    pub client: usize,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub sid: String,
    pub account: usize,
    pub acr: u8,
    pub amr: Vec<String>,
    pub auth_time: u64,
    pub expires: Instant,
    pub used: bool,
    pub access_tokens: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct AccessToken {
    pub account: usize,
    pub expires: Instant,
    /// RFC 9449: the thumbprint of the DPoP key the token is bound to; it is then usable only
    /// with a proof by that key.
    pub jkt: Option<String>,
}

/// A pushed authorization request (RFC 9126), until its `request_uri` is used (once).
#[derive(Debug)]
pub(crate) struct Pushed {
    pub client: usize,
    pub params: HashMap<String, String>,
    pub expires: Instant,
}

/// A Rekono single-sign-on session (cookie `rekono_sid`).
#[derive(Debug)]
pub(crate) struct Session {
    pub account: usize,
    pub browser: String,
    pub acr: u8,
    pub amr: Vec<String>,
    pub auth_time: u64,
    pub clients: BTreeSet<usize>,
}

#[derive(Default, Debug)]
pub(crate) struct State {
    pub txs: HashMap<String, Tx>,
    pub codes: HashMap<String, Code>,
    pub tokens: HashMap<String, AccessToken>,
    pub sessions: HashMap<String, Session>,
    pub outbox: Vec<Sms>,
    pub used_jti: HashSet<String>,
    /// Failed attempts per account (password and codes), for the dev console.
    pub failures: HashMap<String, u32>,
    /// The query of each authorization request, newest last (at most [`AUTHORIZE_LOG`]).
    pub authorize_log: Vec<Vec<(String, String)>>,
    /// The form of each pushed authorization request that was accepted, newest last (at most
    /// [`AUTHORIZE_LOG`]).
    pub par_log: Vec<Vec<(String, String)>>,
    /// Pushed authorization requests by `request_uri`.
    pub pushed: HashMap<String, Pushed>,
    /// DPoP proof `jti`s already used (RFC 9449 11.1), with when they may be forgotten.
    pub dpop_jti: HashMap<String, Instant>,
}

/// How many authorization requests [`Sim::authorization_requests`] keeps.
pub const AUTHORIZE_LOG: usize = 200;

/// The simulator: its configuration, keys and everything in flight.
pub struct Sim {
    pub config: SimConfig,
    pub keys: keys::Keys,
    pub(crate) state: Mutex<State>,
    pub(crate) http: reqwest::Client,
    /// The addresses actually bound (a `:0` port in the config is replaced).
    pub https: SocketAddr,
    pub mtls: SocketAddr,
    /// What it gets wrong on purpose now (from the config's `danger_misbehave`).
    pub(crate) misbehave: Mutex<config::Misbehave>,
}

impl Sim {
    pub fn issuer(&self) -> String {
        self.config.issuer()
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The factors `account` is offered for a login that asks for `level`: those of the
    /// account's own level of assurance (the seed: the factors offered depend on the account's
    /// level) that satisfy the level asked (a factor satisfies the levels up to the highest one
    /// that lists it), and for which the account has what they need.
    pub fn factors_for(&self, account: &Account, level: u8) -> Vec<Factor> {
        let strongest = |f: Factor| {
            self.config
                .levels
                .iter()
                .filter(|(_, fs)| fs.contains(&f))
                .map(|(l, _)| *l)
                .max()
                .unwrap_or(0)
        };
        self.config
            .levels
            .get(&account.level)
            .map(|factors| {
                factors
                    .iter()
                    .copied()
                    .filter(|f| strongest(*f) >= level)
                    .filter(|f| match f {
                        Factor::Sms => account.phone.is_some(),
                        Factor::Otp | Factor::Push => account.totp_secret.is_some(),
                        Factor::Certificate => !account.certificates.is_empty(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The query parameters of the authorization requests received so far (oldest first): what
    /// a relying party really sent.
    pub fn authorization_requests(&self) -> Vec<Vec<(String, String)>> {
        self.state().authorize_log.clone()
    }

    /// The forms of the pushed authorization requests accepted so far (oldest first).
    pub fn pushed_requests(&self) -> Vec<Vec<(String, String)>> {
        self.state().par_log.clone()
    }

    /// What the simulator gets wrong on purpose now.
    pub fn misbehaving(&self) -> config::Misbehave {
        self.misbehave
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes what the simulator gets wrong on purpose (tests of the relying party).
    pub fn misbehave(&self, change: impl FnOnce(&mut config::Misbehave)) {
        change(&mut self.misbehave.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The SMS messages sent so far (also at `GET /dev/outbox`).
    pub fn outbox(&self) -> Vec<Sms> {
        self.state().outbox.clone()
    }

    /// Pending OnePass pushes: (push id, account e-mail).
    pub fn pending_pushes(&self) -> Vec<(String, String)> {
        let state = self.state();
        state
            .txs
            .values()
            .filter_map(|tx| match (&tx.push, tx.account) {
                (Some((id, PushStatus::Pending)), Some(a)) => {
                    Some((id.clone(), self.config.accounts[a].email.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Approves or rejects a pending push. Returns whether it was found.
    pub fn answer_push(&self, push_id: &str, approve: bool) -> bool {
        let mut state = self.state();
        for tx in state.txs.values_mut() {
            if let Some((id, status)) = &mut tx.push {
                if id == push_id && *status == PushStatus::Pending {
                    *status = if approve {
                        PushStatus::Approved
                    } else {
                        PushStatus::Rejected
                    };
                    return true;
                }
            }
        }
        false
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `+38640123456` → `****456`.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(3)..].iter().collect();
    format!("****{tail}")
}
