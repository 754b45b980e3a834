//! The little DER the `openssl` crate does not reach: an OCSP request with a nonce, and the
//! nonce and dates of an OCSP answer (after OpenSSL verified its signature). Reading never
//! indexes by position: a malformed input is `None`.

/// One TLV read from the front of `input`: its tag, its content, and the bytes after it.
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub rest: &'a [u8],
}

/// Reads one TLV (definite lengths only, as DER has them).
pub(crate) fn read(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, after_len) = after_tag.split_first()?;
    let (len, body) = if first < 0x80 {
        (usize::from(first), after_len)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > std::mem::size_of::<usize>() {
            return None;
        }
        let (len_bytes, body) = after_len.split_at_checked(n)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, body)
    };
    let (content, rest) = body.split_at_checked(len)?;
    Some(Tlv { tag, content, rest })
}

/// The TLVs inside a constructed value's content, in order.
pub(crate) fn children(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let tlv = read(content)?;
        content = tlv.rest;
        out.push(tlv);
    }
    Some(out)
}

/// Writes one TLV.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OID: u8 = 0x06;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;
pub(crate) const BIT_STRING: u8 = 0x03;

/// A GeneralizedTime's content (`YYYYMMDDHHMMSSZ`, fractions of a second allowed and
/// dropped) as unix seconds.
pub(crate) fn generalized_time(content: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(content).ok()?;
    let text = text.strip_suffix('Z')?;
    let whole = text.split('.').next()?;
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |from: usize, to: usize| whole.get(from..to)?.parse::<i64>().ok();
    let (y, mo, d) = (field(0, 4)?, field(4, 6)?, field(6, 8)?);
    let (h, mi, s) = (field(8, 10)?, field(10, 12)?, field(12, 14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_read_as_unix_seconds() {
        assert_eq!(generalized_time(b"19700101000000Z"), Some(0));
        assert_eq!(generalized_time(b"20000301000000Z"), Some(951_868_800));
        assert_eq!(generalized_time(b"20380119031408Z"), Some(2_147_483_648));
        assert_eq!(
            generalized_time(b"20240229235959.123Z"),
            Some(1_709_251_199)
        );
        for bad in [
            &b"2024022923595Z"[..],
            b"20241301000000Z",
            b"20240101000000",
            b"2024010100000xZ",
        ] {
            assert_eq!(
                generalized_time(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn reading_stops_at_malformed_lengths_instead_of_running_past_the_input() {
        let ok = tlv(SEQUENCE, &tlv(INTEGER, &[1]));
        let outer = read(&ok).expect("reads");
        assert_eq!(outer.tag, SEQUENCE);
        assert_eq!(children(outer.content).expect("children").len(), 1);
        assert!(
            read(&[0x30, 0x05, 0x02]).is_none(),
            "content shorter than its length"
        );
        assert!(
            read(&[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]).is_none(),
            "a 9-byte length"
        );
        assert!(read(&[0x30]).is_none());
        let long = tlv(OCTET_STRING, &[7u8; 300]);
        assert_eq!(read(&long).map(|t| t.content.len()), Some(300));
    }
}
