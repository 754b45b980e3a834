//! Numbers and IP addresses written as text straight into a buffer, without `core::fmt`: the
//! per-request texts (`X-Forwarded-For`, the access-log line) write several, and formatting
//! them through `Display` cost ~1 600 instructions per IPv4 address (benches/README.md,
//! issue 20). The output is byte for byte what `Display` writes (tests below).

use std::net::IpAddr;

/// Appends `n` in decimal, zero-padded to at least `width` digits (`{n:0width$}`; a `width`
/// above 20, the digits of `u64::MAX`, counts as 20). The digits go out in one copy: pushed
/// one by one (an `extend` over an iterator the `Vec` cannot size) they cost ~15 instructions
/// each.
pub fn push_decimal(out: &mut Vec<u8>, n: u64, width: usize) {
    // u64::MAX has 20 digits.
    let mut digits = [b'0'; 20];
    let mut len = 0;
    let mut rest = n;
    for digit in digits.iter_mut().rev() {
        // `rest % 10` is below 10: the cast keeps its value.
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
        len += 1;
        if rest == 0 {
            break;
        }
    }
    let shown = len.max(width.min(digits.len()));
    let start = digits.len().saturating_sub(shown);
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Appends `ip` as `Display` writes it: dotted decimal for IPv4, each octet's digits pushed
/// into room reserved once; IPv6 (rare behind the gateway's listeners, and with its own
/// compression rules) through `Display` itself.
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // "255.255.255.255"
            out.reserve(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(_) => {
            use std::io::Write;
            // Writing to a Vec does not fail.
            let _ = write!(out, "{ip}");
        }
    }
}

/// `ip` as a `String`, as `ip.to_string()` gives it.
pub fn ip_string(ip: IpAddr) -> String {
    let mut out = Vec::with_capacity(15);
    push_ip(&mut out, ip);
    // push_ip writes ASCII digits, dots and Display's own UTF-8 only.
    String::from_utf8(out).unwrap_or_else(|_| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn decimal(n: u64, width: usize) -> String {
        let mut out = Vec::new();
        push_decimal(&mut out, n, width);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn decimals_are_what_format_writes() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            255,
            999,
            1_000,
            65_535,
            123_456,
            u64::MAX,
        ] {
            for width in [0, 1, 2, 4, 6, 20] {
                assert_eq!(
                    decimal(n, width),
                    format!("{n:0width$}"),
                    "{n} width {width}"
                );
            }
        }
    }

    #[test]
    fn ipv4_addresses_are_what_display_writes() {
        for a in 0..=255u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(a, 255 - a, a / 7, a.wrapping_mul(31)));
            assert_eq!(ip_string(ip), ip.to_string());
        }
        for ip in [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::LOCALHOST,
        ] {
            assert_eq!(ip_string(IpAddr::V4(ip)), ip.to_string());
        }
    }

    #[test]
    fn ipv6_addresses_are_what_display_writes() {
        for ip in [
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::UNSPECIFIED,
            "2001:db8::1:0:0:1".parse().expect("address"),
            "::ffff:192.0.2.1".parse().expect("address"),
        ] {
            assert_eq!(ip_string(IpAddr::V6(ip)), ip.to_string());
        }
    }
}
