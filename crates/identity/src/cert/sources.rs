//! An anchor's configured CRL sources (`crls:`): the CRL each gave last, the in-memory check
//! of a chain against them, their refresh (a CRL that is not taken leaves the previous one),
//! and what a reload or the fleet's shared state hands on. What makes a CRL acceptable is
//! [`super::crl`]'s.

use std::sync::{Arc, RwLock};

use openssl::x509::X509;

use super::crl::{accept, AcceptedCrl, Clock, CrlRefusal, Expected, RefusedCrl};
use super::marks::{CrlMarks, Mark, MarkKey};
use super::verdict::issuer_hash_of;
use super::{fetch, Anchor, AnchorCrl, Checker, CrlSource, Refusal};

/// The state of an anchor's CRLs, for metrics and `/readyz`: the oldest thisUpdate and the
/// earliest nextUpdate and load of its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlState {
    pub this_update: i64,
    pub next_update: i64,
    pub loaded_at: i64,
}

/// The CRLs each configured source gave, by the source's index: the last one of each CA key
/// that signed there (a source is bound to a CA's name, and a CA that renewed its key has two
/// certificates of that name; one key's CRL never replaces, nor speaks for, the other's), the
/// one taken last at the end. Empty: none taken.
pub(crate) struct Loaded {
    slots: RwLock<Vec<Slot>>,
}

pub(crate) type Slot = Vec<Arc<AcceptedCrl>>;

impl Loaded {
    pub fn new(sources: &[AnchorCrl]) -> Self {
        Self {
            slots: RwLock::new(vec![Vec::new(); sources.len()]),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Slot>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Puts `crl` in `slot` as the one taken last, in place of the one of the same key.
fn put(slot: &mut Slot, crl: Arc<AcceptedCrl>) {
    slot.retain(|c| c.issuer != crl.issuer);
    slot.push(crl);
}

impl Anchor {
    /// This anchor's CA certificates named `name` (DER).
    pub(crate) fn cas_named(&self, name: &[u8]) -> Vec<X509> {
        self.ca
            .iter()
            .filter(|c| c.subject_name().to_der().is_ok_and(|d| d == name))
            .cloned()
            .collect()
    }

    /// Refuses a chain any of whose certificates (`keys`, see [`super::verdict`]; the
    /// client's own first, then its CA certificates) a loaded CRL of its issuer lists; or when
    /// a source has no CRL yet, or the CRL it gave last is past its nextUpdate beyond the
    /// grace period; or — fail closed — when a certificate's issuer (the CA certificate that
    /// verified it, by name and key) has no CRL from these sources, or one past its
    /// nextUpdate, or none that speaks for its kind (an end-entity certificate, a CA
    /// certificate). An anchor without sources leaves it to its other revocation data.
    pub(crate) fn check_crls(
        &self,
        keys: &[String],
        now: i64,
        grace: Option<i64>,
    ) -> Result<(), Refusal> {
        if self.crl_sources.is_empty() {
            return Ok(());
        }
        let slots = self.crls.read();
        for slot in slots.iter() {
            match slot.last() {
                Some(crl) if crl.stale(now, grace) => return Err(Refusal::RevocationUnknown),
                Some(_) => {}
                None => return Err(Refusal::RevocationUnknown),
            }
        }
        let all = || slots.iter().flatten();
        if all().any(|crl| keys.iter().any(|k| crl.revoked.contains(k))) {
            return Err(Refusal::Revoked);
        }
        for (depth, key) in keys.iter().enumerate() {
            let issuer = issuer_hash_of(key);
            let mut of_issuer = all().filter(|c| c.issuer == issuer).peekable();
            if of_issuer.peek().is_none() {
                return Err(Refusal::RevocationUnknown); // no CRL of this issuer's key
            }
            let mut spoken_for = false;
            for c in of_issuer {
                if c.stale(now, grace) {
                    return Err(Refusal::RevocationUnknown);
                }
                spoken_for |= if depth == 0 {
                    c.covers_end_entities
                } else {
                    c.covers_cas
                };
            }
            if !spoken_for {
                return Err(Refusal::RevocationUnknown);
            }
        }
        Ok(())
    }

    /// Takes `bytes` from source `i` if it passes, raising its mark; otherwise what was
    /// there stays.
    fn install(
        &self,
        i: usize,
        bytes: Result<Vec<u8>, String>,
        clock: &Clock,
        marks: &CrlMarks,
    ) -> Result<(), RefusedCrl> {
        let Some(spec) = self.crl_sources.get(i) else {
            return Ok(());
        };
        let refused = |reason, detail| RefusedCrl {
            source: spec.source.to_string(),
            reason,
            detail,
        };
        let bytes = bytes.map_err(|e| refused(CrlRefusal::Fetch, e))?;
        let url = match &spec.source {
            CrlSource::Url(u) => Some(u.as_str()),
            CrlSource::File(_) => None,
        };
        let expected = Expected {
            name: &spec.issuer,
            signers: self.cas_named(&spec.issuer),
            url,
            for_end_entity: false,
        };
        let slot = self.crls.read().get(i).cloned().unwrap_or_default();
        let crl = accept(&bytes, &expected, clock, marks, &slot).map_err(|(r, d)| refused(r, d))?;
        marks.raise(crl.key, &crl.mark);
        if let Some(slot) = self.crls.write().get_mut(i) {
            put(slot, Arc::new(crl));
        }
        Ok(())
    }

    /// The loaded CRLs' dates, once every source has one.
    pub fn crl_state(&self) -> Option<CrlState> {
        let slots = self.crls.read();
        let mut state: Option<CrlState> = None;
        for slot in slots.iter() {
            let crl = slot.last()?;
            state = Some(match state {
                None => CrlState {
                    this_update: crl.this_update,
                    next_update: crl.next_update,
                    loaded_at: crl.loaded_at,
                },
                Some(s) => CrlState {
                    this_update: s.this_update.min(crl.this_update),
                    next_update: s.next_update.min(crl.next_update),
                    loaded_at: s.loaded_at.min(crl.loaded_at),
                },
            });
        }
        state
    }

    /// For a configuration reload: each source this anchor shares with `old` (the same
    /// source, the same issuer, and the same CA certificates) starts with `old`'s CRL when it
    /// has none or an older one — a file read at the reload may have been rolled back — so
    /// that certificate logins neither fail closed nor go back until the next fetch.
    pub fn adopt_crls(&self, old: &Anchor) {
        let same_ca = self.ca.len() == old.ca.len()
            && self
                .ca
                .iter()
                .zip(&old.ca)
                .all(|(a, b)| a.to_der().ok() == b.to_der().ok());
        if !same_ca {
            return;
        }
        let theirs = old.crls.read().clone();
        let mut mine = self.crls.write();
        for (spec, slot) in self.crl_sources.iter().zip(mine.iter_mut()) {
            let Some(j) = old.crl_sources.iter().position(|s| s == spec) else {
                continue;
            };
            let Some(old_slot) = theirs.get(j) else {
                continue;
            };
            for old_crl in old_slot {
                // Mine stays when it is at least as far along: in the same series by its
                // mark, in another (another scope) by its thisUpdate.
                let newer = slot
                    .iter()
                    .find(|c| c.issuer == old_crl.issuer)
                    .is_some_and(|c| {
                        if c.key == old_crl.key {
                            c.mark.at_least(&old_crl.mark)
                        } else {
                            c.this_update >= old_crl.this_update
                        }
                    });
                if !newer {
                    let fresh_one = slot.last().cloned();
                    put(slot, old_crl.clone());
                    // What the source gave last stays last, if it is still there.
                    if let Some(last) = fresh_one.filter(|c| c.issuer != old_crl.issuer) {
                        put(slot, last);
                    }
                }
            }
        }
        drop(mine);
        if let (Some(new), Some(old)) = (&self.distribution_points, &old.distribution_points) {
            new.adopt(old);
        }
    }

    /// Drops every loaded CRL that `marks` show superseded (a higher one was seen elsewhere:
    /// after a reload, or by another replica); returns the sources that lost theirs.
    fn drop_superseded(&self, marks: &CrlMarks) -> Vec<String> {
        let mut dropped = Vec::new();
        let mut slots = self.crls.write();
        for (spec, slot) in self.crl_sources.iter().zip(slots.iter_mut()) {
            let before = slot.len();
            slot.retain(|c| {
                marks
                    .get(&c.key)
                    .is_none_or(|highest| c.mark.at_least(&highest))
            });
            if slot.len() != before {
                dropped.push(spec.source.to_string());
            }
        }
        drop(slots);
        if let Some(dps) = &self.distribution_points {
            dropped.extend(dps.drop_superseded(marks));
        }
        dropped
    }
}

impl Checker {
    /// The clock `anchor`'s CRLs are judged by.
    pub(crate) fn clock(&self, anchor: &Anchor, now: i64) -> Clock {
        Clock {
            now,
            skew: anchor.clock_skew.unwrap_or(self.clock_skew),
            grace: self.stale_grace,
        }
    }

    /// Reads the CRL files of every anchor (at start-up and reload; URLs are fetched by
    /// [`Checker::refresh_crls`]). Returns what was refused, by anchor.
    pub fn load_crl_files(&self) -> Vec<(String, RefusedCrl)> {
        let marks = self.crl_marks();
        let mut refused = Vec::new();
        for anchor in &self.anchors {
            let clock = self.clock(anchor, super::now());
            for (i, spec) in anchor.crl_sources.iter().enumerate() {
                if let CrlSource::File(p) = &spec.source {
                    let bytes = std::fs::read(p).map_err(|e| e.to_string());
                    if let Err(r) = anchor.install(i, bytes, &clock, &marks) {
                        refused.push((anchor.name.clone(), r));
                    }
                }
            }
        }
        refused
    }

    /// Reads the files and fetches the URLs of `anchor`'s CRL sources; each CRL that passes
    /// replaces its source's, each that does not is returned and the previous one stays.
    pub async fn refresh_crls(&self, anchor: &Anchor, http: &reqwest::Client) -> Vec<RefusedCrl> {
        let marks = self.crl_marks();
        let mut refused = Vec::new();
        for (i, spec) in anchor.crl_sources.iter().enumerate() {
            let bytes = match &spec.source {
                CrlSource::File(p) => std::fs::read(p).map_err(|e| e.to_string()),
                CrlSource::Url(u) => fetch::get(http, u).await,
            };
            let clock = self.clock(anchor, super::now());
            if let Err(r) = anchor.install(i, bytes, &clock, &marks) {
                refused.push(r);
            }
        }
        refused
    }

    /// A mark the fleet's shared state holds: raised here too, and every CRL it supersedes
    /// dropped (that anchor fails closed until a CRL at least as new is fetched). Returns the
    /// sources that lost their CRL, by anchor.
    pub fn apply_shared_crl_mark(&self, key: MarkKey, mark: &Mark) -> Vec<(String, String)> {
        let marks = self.crl_marks();
        if marks.raise_quietly(key, mark).is_none() {
            return Vec::new();
        }
        self.anchors
            .iter()
            .flat_map(|a| {
                a.drop_superseded(&marks)
                    .into_iter()
                    .map(|s| (a.name.clone(), s))
            })
            .collect()
    }

    /// For a configuration reload: this checker takes over `old`'s marks (with its own,
    /// the higher of each) and, per anchor of the same name, its CRLs ([`Anchor::adopt_crls`]);
    /// then drops whatever the marks show superseded.
    pub fn adopt(&self, old: &Checker) {
        let theirs = old.crl_marks();
        for (key, mark) in self.crl_marks().all() {
            theirs.raise(key, &mark);
        }
        *self.marks.write().unwrap_or_else(|e| e.into_inner()) = theirs.clone();
        for anchor in &self.anchors {
            if let Some(same) = old.anchors.iter().find(|a| a.name == anchor.name) {
                anchor.adopt_crls(same);
            }
            for source in anchor.drop_superseded(&theirs) {
                tracing::warn!(anchor = %anchor.name, source = %source, "CRL read at the reload is older than one seen before; refused until a newer one is fetched");
            }
        }
    }
}
