//! RFC 1035 master files: parsing (via hickory's zone parser) and writing.
//!
//! The writer emits one RR per line with absolute names so that its output
//! parses back to the same records (`pdm zone export` / `import`).

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use std::fmt::Write as _;

/// A master file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ZoneFileError(pub String);

/// Parse RFC 1035 master-file text. Returns the origin and all records.
///
/// `origin` is the initial `$ORIGIN` (used for `@` and relative names); a
/// `$ORIGIN` line in the text overrides it. Without either, parsing fails.
pub fn parse_master(
    text: &str,
    origin: Option<&Name>,
) -> Result<(Name, Vec<Record>), ZoneFileError> {
    // hickory would read absolute $INCLUDE paths from the local disk; zone
    // text may come from the API, so never follow includes.
    if let Some(line) = text.lines().position(|l| {
        l.trim_start()
            .get(..8)
            .is_some_and(|w| w.eq_ignore_ascii_case("$include"))
    }) {
        return Err(ZoneFileError(format!(
            "line {}: $INCLUDE is not supported",
            line + 1
        )));
    }
    match parse_all(text, origin) {
        Ok(v) => Ok(v),
        Err(msg) => {
            // hickory's lexer does not report positions; find the first line
            // at which a prefix of the file fails with the same error.
            match error_line(text, origin, &msg) {
                Some(line) => Err(ZoneFileError(format!("line {line}: {msg}"))),
                None => Err(ZoneFileError(msg)),
            }
        }
    }
}

fn parse_all(text: &str, origin: Option<&Name>) -> Result<(Name, Vec<Record>), String> {
    let parser = Parser::new(text, None, origin.cloned());
    let (mut origin, sets) = parser.parse().map_err(|e| e.to_string())?;
    origin.set_fqdn(true);
    let mut records = Vec::new();
    for (_, set) in sets {
        let parts = set.into_parts();
        records.extend(parts.records);
        records.extend(parts.rrsigs);
    }
    Ok((origin, records))
}

/// Best-effort line number (1-based) of a parse error: binary search for the
/// shortest prefix of whole lines that fails with the same message. Only run
/// on the error path.
fn error_line(text: &str, origin: Option<&Name>, msg: &str) -> Option<usize> {
    let ends: Vec<usize> = text
        .char_indices()
        .filter(|&(_, c)| c == '\n')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(text.len()))
        .collect();
    let fails_same = |n: usize| -> bool {
        let end = ends[n - 1];
        // Comparing messages filters prefixes that fail for another reason
        // (e.g. cut inside parentheses).
        matches!(parse_all(&text[..end], origin), Err(m) if m == msg)
    };
    let (mut lo, mut hi) = (1usize, ends.len());
    if !fails_same(hi) {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails_same(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// Render records as master-file text (SOA first).
///
/// Absolute names, explicit TTL and class, one RR per line; the output
/// parses back with [`parse_master`] to the same set of records.
pub fn write_master(origin: &Name, records: &[Record]) -> String {
    let mut out = String::with_capacity(64 * records.len() + 32);
    let mut origin = origin.clone();
    origin.set_fqdn(true);
    let _ = writeln!(out, "$ORIGIN {}", origin.to_ascii());
    let soa = records
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA);
    let rest = records
        .iter()
        .filter(|r| r.record_type() != RecordType::SOA);
    for r in soa.chain(rest) {
        write_record(&mut out, r);
        out.push('\n');
    }
    out
}

/// One record as a master-file line (no newline).
pub fn write_record(out: &mut String, r: &Record) {
    let mut name = r.name.clone();
    name.set_fqdn(true);
    let _ = write!(
        out,
        "{} {} {} {} ",
        name.to_ascii(),
        r.ttl,
        r.dns_class,
        r.record_type()
    );
    write_rdata(out, &r.data);
}

/// Presentation-format rdata that `RData::try_from_str` reads back exactly
/// (hickory's own `Display` is lossy for TXT).
pub fn rdata_text(data: &RData) -> String {
    let mut s = String::new();
    write_rdata(&mut s, data);
    s
}

fn write_rdata(out: &mut String, data: &RData) {
    match data {
        // hickory's Display for TXT neither quotes nor escapes.
        RData::TXT(txt) => {
            let mut first = true;
            for s in txt.txt_data.iter() {
                if !first {
                    out.push(' ');
                }
                first = false;
                write_char_string(out, s);
            }
            if first {
                out.push_str("\"\"");
            }
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// A `<character-string>` in quotes, in a form hickory 0.26's lexer reads
/// back byte-exactly: its `\DDD` decoding is broken (it computes
/// `d1<<16 | d2<<8 | d3`), so only `\000`-`\009` are escaped numerically;
/// other control bytes and UTF-8 text are written raw inside the quotes.
/// Bytes that are not valid UTF-8 cannot be represented (lossy).
fn write_char_string(out: &mut String, s: &[u8]) {
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                '\0'..='\u{9}' => {
                    let _ = write!(out, "\\00{}", c as u32);
                }
                _ => out.push(c),
            }
        }
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const ZONE: &str = r#"
$ORIGIN example.com.
$TTL 3600
@   IN SOA ns1.example.com. hostmaster.example.com. ( 2024010101 7200 3600 1209600 300 )
    IN NS  ns1
    IN NS  ns2.example.net.
    IN MX  10 mail
ns1 IN A   192.0.2.1
    IN AAAA 2001:db8::1
www 300 IN CNAME web
web IN A 192.0.2.10
txt IN TXT "hello world" "second \"quoted\" string" "semi;colon"
_sip._tcp IN SRV 10 60 5060 sip
caa IN CAA 0 issue "letsencrypt.org"
"#;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    #[test]
    fn parses_origin_ttl_and_multistring_txt() {
        let (origin, records) = parse_master(ZONE, None).unwrap();
        assert_eq!(origin, name("example.com."));
        assert_eq!(records.len(), 11);
        let www = records
            .iter()
            .find(|r| r.record_type() == RecordType::CNAME)
            .unwrap();
        assert_eq!(www.ttl, 300);
        let ns1 = records
            .iter()
            .find(|r| r.record_type() == RecordType::A && r.name == name("ns1.example.com."))
            .unwrap();
        assert_eq!(ns1.ttl, 3600);
        let txt = records
            .iter()
            .find(|r| r.record_type() == RecordType::TXT)
            .unwrap();
        match &txt.data {
            RData::TXT(t) => {
                assert_eq!(t.txt_data.len(), 3);
                assert_eq!(&*t.txt_data[1], b"second \"quoted\" string");
                assert_eq!(&*t.txt_data[2], b"semi;colon");
            }
            _ => panic!("not TXT"),
        }
    }

    #[test]
    fn origin_argument_used_without_dollar_origin() {
        let text = "@ 60 IN SOA ns hm 1 2 3 4 5\nwww 60 IN A 192.0.2.1\n";
        let (origin, records) = parse_master(text, Some(&name("example.org."))).unwrap();
        assert_eq!(origin, name("example.org."));
        assert!(records.iter().any(|r| r.name == name("www.example.org.")));
    }

    #[test]
    fn error_has_line_number() {
        let text = "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\nwww IN A not-an-ip\nx IN A 192.0.2.1\n";
        let err = parse_master(text, None).unwrap_err().to_string();
        assert!(err.starts_with("line 4:"), "{err}");
    }

    #[test]
    fn include_is_rejected() {
        let text = "$ORIGIN example.com.\n$include /etc/passwd\n";
        let err = parse_master(text, None).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("$INCLUDE"), "{err}");
    }

    #[test]
    fn missing_origin_is_an_error() {
        let err = parse_master("www 60 IN A 192.0.2.1\n", None).unwrap_err();
        assert!(!err.to_string().is_empty());
    }

    #[test]
    fn write_round_trips() {
        let (origin, mut records) = parse_master(ZONE, None).unwrap();
        // Add awkward TXT content: escapes and non-printable bytes.
        records.push(Record::from_rdata(
            name("bin.example.com."),
            60,
            RData::TXT(hickory_proto::rr::rdata::TXT::from_bytes(vec![
                "a\\b\"c\x01\x0b é".as_bytes(),
                b"".as_slice(),
            ])),
        ));
        let text = write_master(&origin, &records);
        assert!(text.lines().nth(1).unwrap().contains(" SOA "), "{text}");
        let (origin2, records2) = parse_master(&text, None).unwrap();
        assert_eq!(origin, origin2);
        let key = |r: &Record| (r.name.to_ascii(), r.record_type(), r.ttl, r.to_string());
        let mut a: Vec<_> = records.iter().map(key).collect();
        let mut b: Vec<_> = records2.iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        // And the rdata compares equal (TXT Display is lossy, compare data).
        for r in &records {
            assert!(records2
                .iter()
                .any(|r2| r2.name == r.name && r2.data == r.data && r2.ttl == r.ttl));
        }
    }
}
