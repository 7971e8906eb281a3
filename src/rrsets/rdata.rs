//! Record data as tenants write it (presentation text, one record per
//! string) into the canonical stored form. Pure.

use crate::store::zones::storage_text;
use crate::zone::file::parse_master;
use hickory_proto::rr::{Name, RData, RecordType};
use std::str::FromStr;

/// The longest rdata text accepted (a TXT of 64 KiB cannot be served anyway).
const MAX_RDATA_TEXT: usize = 8192;

/// Parses one record's rdata of type `rtype` at `owner` (absolute names in
/// rdata must end with a dot) into its stored form.
pub fn canonical(owner: &str, rtype: RecordType, text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty record data".into());
    }
    if text.len() > MAX_RDATA_TEXT {
        return Err(format!(
            "record data longer than {MAX_RDATA_TEXT} characters"
        ));
    }
    // One line of a master file: no second record, no directive smuggled in.
    if text.contains(['\n', '\r']) {
        return Err("record data must be on one line".into());
    }
    // What hickory's lexer would read the same, read directly (the common
    // TXT of every ACME challenge and registry record).
    if rtype == RecordType::TXT {
        if let Some(data) = crate::zone::file::plain_txt(text) {
            return Ok(storage_text(&data));
        }
    }
    let parse = |origin: &str| -> Result<RData, String> {
        let origin = Name::from_str(origin).map_err(|e| e.to_string())?;
        let line = format!(
            "{owner} 3600 IN {} {text}\n",
            crate::model::rtype::type_name(rtype)
        );
        let (_, records) = parse_master(&line, Some(&origin)).map_err(|e| {
            e.0.strip_prefix("line 1: ")
                .map(str::to_string)
                .unwrap_or(e.0)
        })?;
        match records.as_slice() {
            [r] if r.record_type() == rtype => Ok(r.data.clone()),
            [_] => Err(format!(
                "not {} record data",
                crate::model::rtype::type_name(rtype)
            )),
            _ => Err("expected exactly one record".into()),
        }
    };
    let a = parse("pdm-origin-a.invalid.")?;
    // A relative name in rdata would take the origin; two origins tell.
    // Types whose data holds no name cannot take it: one parse is enough.
    if !nameless(rtype) {
        let b = parse("pdm-origin-b.invalid.")?;
        if a != b {
            return Err("names in record data must be absolute (end with a dot)".into());
        }
    }
    let out = storage_text(&a);
    // hickory's parsers stop at what they need; a second address after the
    // first would be dropped without a word. The generic form (`\# len hex`)
    // is checked by its length instead.
    if !text.starts_with("\\#") && tokens(text) > tokens(&out) {
        return Err(format!("unexpected data after {out:?}"));
    }
    Ok(out)
}

/// Types whose record data holds no domain name (addresses, strings,
/// hashes), so no origin can end up in it.
fn nameless(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::A | RecordType::AAAA | RecordType::TXT | RecordType::SSHFP | RecordType::TLSA
    )
}

/// Presentation tokens: whitespace-separated, quoted strings as one,
/// parentheses not counted.
fn tokens(text: &str) -> usize {
    let (mut n, mut in_token, mut quoted, mut escaped) = (0, false, false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if !in_token {
                    in_token = true;
                    n += 1;
                }
            }
            '"' => {
                if !quoted && !in_token {
                    n += 1;
                }
                quoted = !quoted;
                in_token = true;
            }
            _ if quoted => {}
            c if c.is_whitespace() || c == '(' || c == ')' => in_token = false,
            _ => {
                if !in_token {
                    in_token = true;
                    n += 1;
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: &str = "www.acme.pool.test.";

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonical(O, RecordType::A, " 192.0.2.1 ").unwrap(),
            "192.0.2.1"
        );
        assert_eq!(
            canonical(O, RecordType::AAAA, "2001:DB8::1").unwrap(),
            "2001:db8::1"
        );
        assert_eq!(
            canonical(O, RecordType::TXT, "\"hello world\"").unwrap(),
            "\"hello world\""
        );
        assert_eq!(
            canonical(O, RecordType::MX, "10 Mail.Example.Test.").unwrap(),
            "10 mail.example.test."
        );
        assert_eq!(
            canonical(O, RecordType::CAA, "0 issue \"letsencrypt.org\"").unwrap(),
            "0 issue \"letsencrypt.org\""
        );
        assert!(canonical(O, RecordType::SRV, "10 5 443 svc.example.test.").is_ok());
    }

    #[test]
    fn bad_rdata_is_refused() {
        assert!(canonical(O, RecordType::A, "300.1.1.1").is_err());
        assert!(canonical(O, RecordType::A, "").is_err());
        assert!(canonical(O, RecordType::CNAME, "relative")
            .unwrap_err()
            .contains("absolute"));
        assert!(canonical(O, RecordType::MX, "10 mail")
            .unwrap_err()
            .contains("absolute"));
        assert!(canonical(O, RecordType::A, "192.0.2.1\nx 300 IN A 192.0.2.2").is_err());
        assert!(canonical(O, RecordType::A, "192.0.2.1 192.0.2.2").is_err());
        assert!(canonical(O, RecordType::TXT, &"a".repeat(9000)).is_err());
        assert!(canonical(O, RecordType::MX, "10 mx.test. extra").is_err());
        assert_eq!(
            canonical(O, RecordType::TXT, "\"a b\" \"c\"").unwrap(),
            "\"a b\" \"c\""
        );
    }

    #[test]
    fn token_counts() {
        assert_eq!(tokens("10 mail.test."), 2);
        assert_eq!(tokens("\"a b\" c"), 2);
        assert_eq!(tokens("( 1 2 )"), 2);
        assert_eq!(tokens("a\\ b"), 1);
    }
}
