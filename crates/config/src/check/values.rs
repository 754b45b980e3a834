//! Values that several sections share: addresses, durations, host names.

use std::net::SocketAddr;

use super::Checker;
use crate::parse_duration;

impl Checker<'_> {
    pub(super) fn socket_addr(&mut self, value: &str, key: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.problem(
                    key,
                    format!(
                        "{value:?} is not an address: write IP:PORT, e.g. 0.0.0.0:443 or [::]:443"
                    ),
                );
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        value: Option<&String>,
        key: &str,
    ) -> Option<std::time::Duration> {
        let value = value?;
        match parse_duration(value) {
            Ok(d) if d.is_zero() => {
                self.problem(key, "must be longer than zero");
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }
}

pub(super) fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(is_host_name("acq.bankart.si"));
        assert!(!is_host_name("https://acq.bankart.si"));
        assert!(!is_host_name("acq.bankart.si:443"));
        assert!(!is_host_name("acq..si"));
    }
}
