//! Just enough DER to write CRLs, OCSP answers and certificate extensions field by field, and
//! to read the CertID and nonce out of an OCSP request. The signatures on what is written here
//! are OpenSSL's (see `revocation.rs`), and `tests/revocation.rs` checks the fixtures with the
//! `openssl` command line, so nothing here is trusted on its own word.

/// One TLV: `tag`, then the DER length of `content`, then `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

pub fn seq(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

pub fn set(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &items.concat())
}

/// `[n] EXPLICIT`
pub fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, inner)
}

/// An INTEGER whose content is exactly `raw` (two's complement, as a certificate carries it).
pub fn integer_raw(raw: &[u8]) -> Vec<u8> {
    tlv(0x02, raw)
}

pub fn integer(n: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = n
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    integer_raw(&bytes)
}

pub fn boolean(b: bool) -> Vec<u8> {
    tlv(0x01, &[if b { 0xff } else { 0 }])
}

pub fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

pub fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

pub fn bits(b: &[u8]) -> Vec<u8> {
    let mut content = vec![0u8];
    content.extend_from_slice(b);
    tlv(0x03, &content)
}

pub fn ia5(s: &str) -> Vec<u8> {
    tlv(0x16, s.as_bytes())
}

/// An OBJECT IDENTIFIER from its dotted form.
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().expect("numeric arc"))
        .collect();
    let mut content = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.insert(0, 0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        content.extend(chunk);
    }
    tlv(0x06, &content)
}

/// An X.509 Extension: `extnID`, `critical` (only when true, as DER wants), `extnValue`.
pub fn extension(id: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut items = vec![oid(id)];
    if critical {
        items.push(boolean(true));
    }
    items.push(octets(value));
    seq(&items)
}

/// Civil date of unix `t` (UTC): (year, month, day, hour, minute, second).
fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ`.
pub fn generalized_time(t: i64) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = civil(t);
    tlv(
        0x18,
        format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes(),
    )
}

/// A certificate or CRL time: UTCTime before 2050, GeneralizedTime from then on.
pub fn time(t: i64) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = civil(t);
    if (1950..2050).contains(&y) {
        tlv(
            0x17,
            format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).as_bytes(),
        )
    } else {
        generalized_time(t)
    }
}

/// Reads one TLV: `(tag, content, the bytes after it)`. Panics on anything malformed (the
/// input is what the gateway under test sent; a malformed request fails the test).
pub fn read(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let first = input[1];
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        let len = input[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        (len, 2 + n)
    };
    (tag, &input[header..header + len], &input[header + len..])
}

/// The TLVs of a constructed value's content, each whole (tag and length included).
pub fn children(mut content: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (_, _, rest) = read(content);
        let whole = &content[..content.len() - rest.len()];
        out.push(whole);
        content = rest;
    }
    out
}
