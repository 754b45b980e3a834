//! How far each CRL series has come: the highest CRL number and thisUpdate seen per issuer,
//! key and scope. No CRL below its mark is ever taken again; the marks outlive the CRLs
//! themselves (a reload hands them on, the fleet's shared state keeps them across restarts).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What a CRL's mark is kept under: 16 bytes of SHA-256 over its issuer's name, the key that
/// signed it and its issuingDistributionPoint (none: the issuer's full CRL).
pub type MarkKey = [u8; 16];

/// How far a CRL series has come: a CRL number and a thisUpdate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Big-endian, no leading zeros; at most 20 octets (RFC 5280 §5.2.3).
    number: Vec<u8>,
    this_update: i64,
}

impl Mark {
    pub fn new(number: &[u8], this_update: i64) -> Self {
        Self {
            number: number.iter().copied().skip_while(|b| *b == 0).collect(),
            this_update,
        }
    }

    /// The CRL number, big-endian, without leading zeros.
    pub fn number(&self) -> &[u8] {
        &self.number
    }

    pub fn this_update(&self) -> i64 {
        self.this_update
    }

    /// Neither its number nor its thisUpdate is lower than `other`'s.
    pub fn at_least(&self, other: &Mark) -> bool {
        let by_number = self
            .number
            .len()
            .cmp(&other.number.len())
            .then_with(|| self.number.cmp(&other.number));
        by_number.is_ge() && self.this_update >= other.this_update
    }

    /// The higher number and the later thisUpdate of the two.
    fn max(&self, other: &Mark) -> Mark {
        let number =
            if Mark::new(&other.number, i64::MIN).at_least(&Mark::new(&self.number, i64::MIN)) {
                other.number.clone()
            } else {
                self.number.clone()
            };
        Mark {
            number,
            this_update: self.this_update.max(other.this_update),
        }
    }

    /// The number as 40 hex digits: texts of that form compare as the numbers do (the shared
    /// state store compares texts).
    pub fn number_text(&self) -> String {
        format!("{:0>40}", hex::encode(&self.number))
    }

    /// thisUpdate as 20 decimal digits (times before 1970 as 0), comparable as text.
    pub fn this_update_text(&self) -> String {
        format!("{:020}", self.this_update.max(0))
    }

    /// The inverse of [`Mark::number_text`] and [`Mark::this_update_text`].
    pub fn from_texts(number: &str, this_update: &str) -> Option<Mark> {
        if number.len() > 40 {
            return None;
        }
        let padded = format!("{number:0>40}");
        Some(Mark::new(
            &hex::decode(padded).ok()?,
            this_update.parse().ok()?,
        ))
    }
}

/// Called with every mark raised here (the fleet's shared state keeps them).
pub type MarkHook = Arc<dyn Fn(MarkKey, Mark) + Send + Sync>;

/// The highest CRL number and thisUpdate seen per issuer, key and scope: no CRL below them is
/// ever taken again. One per process (a reload hands it on, see [`Checker::adopt`]).
#[derive(Default)]
pub struct CrlMarks {
    marks: RwLock<HashMap<MarkKey, Mark>>,
    hook: RwLock<Option<MarkHook>>,
}

impl CrlMarks {
    /// `Err(highest)` when `mark` is below the highest seen under `key`.
    pub(crate) fn admits(&self, key: &MarkKey, mark: &Mark) -> Result<(), Mark> {
        match self.read().get(key) {
            Some(highest) if !mark.at_least(highest) => Err(highest.clone()),
            _ => Ok(()),
        }
    }

    /// The mark under `key` now.
    pub fn get(&self, key: &MarkKey) -> Option<Mark> {
        self.read().get(key).cloned()
    }

    /// Raises the mark under `key` to `mark` (each part to the higher); the hook hears of it.
    pub(crate) fn raise(&self, key: MarkKey, mark: &Mark) {
        if let Some(raised) = self.raise_quietly(key, mark) {
            let hook = self.hook.read().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(hook) = hook {
                hook(key, raised);
            }
        }
    }

    /// Raises the mark without telling the hook; returns the new mark if it changed.
    pub(crate) fn raise_quietly(&self, key: MarkKey, mark: &Mark) -> Option<Mark> {
        let mut marks = self.marks.write().unwrap_or_else(|e| e.into_inner());
        let next = match marks.get(&key) {
            Some(old) if old.at_least(mark) => return None,
            Some(old) => old.max(mark),
            None => mark.clone(),
        };
        marks.insert(key, next.clone());
        Some(next)
    }

    /// Every mark held (for the shared state store).
    pub fn all(&self) -> Vec<(MarkKey, Mark)> {
        self.read().iter().map(|(k, m)| (*k, m.clone())).collect()
    }

    pub fn set_hook(&self, hook: MarkHook) {
        *self.hook.write().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<MarkKey, Mark>> {
        self.marks.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_compares_numbers_by_value_and_dates_on_their_own() {
        let m = |n: &[u8], t| Mark::new(n, t);
        assert!(m(&[2], 10).at_least(&m(&[1], 10)));
        assert!(m(&[0, 2], 10).at_least(&m(&[2], 10)), "leading zeros");
        assert!(m(&[1, 0], 10).at_least(&m(&[0xff], 10)), "256 > 255");
        assert!(!m(&[0xff], 10).at_least(&m(&[1, 0], 10)));
        assert!(
            !m(&[3], 9).at_least(&m(&[2], 10)),
            "a higher number, an earlier date"
        );
        assert!(
            !m(&[1], 11).at_least(&m(&[2], 10)),
            "a later date, a lower number"
        );
        assert_eq!(m(&[3], 9).max(&m(&[2], 10)), m(&[3], 10));
        let text = m(&[1, 0], 1_700_000_000);
        assert_eq!(text.number_text().len(), 40);
        assert!(m(&[0xff], 0).number_text() < text.number_text());
        assert_eq!(
            Mark::from_texts(&text.number_text(), &text.this_update_text()),
            Some(text)
        );
        assert_eq!(Mark::from_texts("zz", "1"), None);
    }

    #[test]
    fn marks_only_go_up_and_tell_their_hook() {
        let marks = CrlMarks::default();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = heard.clone();
        marks.set_hook(Arc::new(move |k, m| h.lock().expect("lock").push((k, m))));
        let key = [7u8; 16];
        marks.raise(key, &Mark::new(&[5], 100));
        assert_eq!(
            marks.admits(&key, &Mark::new(&[4], 100)),
            Err(Mark::new(&[5], 100))
        );
        assert_eq!(
            marks.admits(&key, &Mark::new(&[5], 99)),
            Err(Mark::new(&[5], 100))
        );
        assert_eq!(
            marks.admits(&key, &Mark::new(&[5], 100)),
            Ok(()),
            "the same CRL again"
        );
        assert_eq!(
            marks.admits(&[8u8; 16], &Mark::new(&[1], 1)),
            Ok(()),
            "another series"
        );
        marks.raise(key, &Mark::new(&[4], 200));
        assert_eq!(marks.get(&key), Some(Mark::new(&[5], 200)));
        marks.raise(key, &Mark::new(&[5], 150));
        assert_eq!(heard.lock().expect("lock").len(), 2, "no news, no call");
    }
}
