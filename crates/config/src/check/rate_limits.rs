//! `rate_limits`: the token buckets on the login endpoints.

use super::{join, Checker};
use crate::{parse_rate, raw, EndpointLimit, RateLimits};

impl Checker<'_> {
    pub(super) fn rate_limits(&mut self, raw: raw::RateLimits) -> Option<RateLimits> {
        let defaults = RateLimits::default();
        let mut ok = true;
        let mut endpoint = |checker: &mut Self,
                            raw: Option<raw::EndpointLimit>,
                            name: &str,
                            default: EndpointLimit| {
            let key = join("rate_limits", name);
            match checker.endpoint_limit(raw.unwrap_or_default(), &key, default) {
                Some(limit) => limit,
                None => {
                    ok = false;
                    default
                }
            }
        };
        let login = endpoint(self, raw.login, "login", defaults.login);
        let certificate_login = endpoint(
            self,
            raw.certificate_login,
            "certificate_login",
            defaults.certificate_login,
        );
        let backchannel_logout = endpoint(
            self,
            raw.backchannel_logout,
            "backchannel_logout",
            defaults.backchannel_logout,
        );
        let tracked_keys = raw.tracked_keys.unwrap_or(defaults.tracked_keys);
        if tracked_keys == 0 {
            self.problem("rate_limits.tracked_keys", "must be at least 1");
            ok = false;
        }
        ok.then_some(RateLimits {
            login,
            certificate_login,
            backchannel_logout,
            tracked_keys,
        })
    }

    fn endpoint_limit(
        &mut self,
        raw: raw::EndpointLimit,
        key: &str,
        default: EndpointLimit,
    ) -> Option<EndpointLimit> {
        let mut ok = true;
        let mut rate = |checker: &mut Self, value: Option<String>, name: &str, default| match value
        {
            None => default,
            Some(v) => match parse_rate(&v) {
                Ok(r) => r,
                Err(message) => {
                    checker.problem(&join(key, name), message);
                    ok = false;
                    default
                }
            },
        };
        let per_address = rate(self, raw.per_address, "per_address", default.per_address);
        let per_certificate = rate(
            self,
            raw.per_certificate.clone(),
            "per_certificate",
            default.per_certificate,
        );
        let takes_certificates = key.ends_with("certificate_login");
        if raw.per_certificate.is_some() && !takes_certificates {
            self.problem(
                &join(key, "per_certificate"),
                "only rate_limits.certificate_login knows a certificate",
            );
            ok = false;
        }
        let burst = raw.burst.unwrap_or(default.burst);
        if burst == 0 {
            self.problem(
                &join(key, "burst"),
                "must be at least 1 (a bucket of 0 refuses everything; write per_address: off for no limit)",
            );
            ok = false;
        }
        ok.then_some(EndpointLimit {
            per_address,
            per_certificate,
            burst,
        })
    }
}
