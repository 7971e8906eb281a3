//! RFC 1035 master files: parsing (via hickory's zone parser) and writing.
//!
//! The writer emits one RR per line with absolute names so that its output
//! parses back to the same records (`pdm zone export` / `import`).
//!
//! PowerDNS LUA records (`name IN LUA A "code"`, type 65402) are not known
//! to hickory's parser: a pre-pass swaps each LUA entry's type and rdata for
//! a uniquely tagged TXT placeholder (so owner, TTL, class, `$ORIGIN` and
//! blank-owner rules stay hickory's), and the placeholders are turned back
//! into LUA records after parsing.

use crate::lua::LuaRecord;
use crate::zone::tree::LUA;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::DigestType;
use hickory_proto::rr::rdata::svcb::{SvcParamValue, SVCB};
use hickory_proto::rr::rdata::{HTTPS, NULL, TXT};
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
    let (text, lua) = extract_lua(text)?;
    let text = decimal_escapes(&text)?;
    let parser = Parser::new(text.as_ref(), None, origin.cloned());
    let (mut origin, sets) = parser.parse().map_err(|e| e.to_string())?;
    origin.set_fqdn(true);
    let mut records = Vec::new();
    for (_, set) in sets {
        let parts = set.into_parts();
        records.extend(parts.records);
        records.extend(parts.rrsigs);
    }
    for r in records.iter().filter(|r| checked_on_read(r.record_type())) {
        check_reads_back(r)?;
        check_ds_digest(r)?;
    }
    records.iter_mut().for_each(split_long_strings);
    if !lua.programs.is_empty() {
        let mut placed = 0usize;
        for r in records.iter_mut() {
            if let Some(program) = lua.placeholder_of(r) {
                r.data = lua_rdata(program).map_err(|e| e.to_string())?;
                placed += 1;
            }
        }
        // The pre-pass splits entries with rules of its own; where they
        // part from hickory's (odd escapes, quotes across lines), a
        // placeholder ends up inside another record's data instead of
        // standing for its LUA entry. Refuse that rather than keep it.
        if placed != lua.programs.len()
            || records
                .iter()
                .any(|r| rdata_text(&r.data).contains(&lua.tag))
        {
            return Err(
                "LUA records that could not be told apart from the text around them \
                 (check the quoting and escapes near them)"
                    .to_string(),
            );
        }
    }
    Ok((origin, records))
}

/// A LUA program as record data (`RData::Unknown` of type 65402).
pub(super) fn lua_rdata(program: &LuaRecord) -> Result<RData, crate::lua::LuaParseError> {
    Ok(RData::Unknown {
        code: LUA,
        rdata: NULL::with(program.to_wire()?),
    })
}

/// LUA entries lifted out of a master file, and how to recognise their
/// placeholders.
struct Extracted {
    tag: String,
    programs: Vec<LuaRecord>,
}

impl Extracted {
    /// The LUA program a parsed placeholder record stands for.
    fn placeholder_of(&self, r: &Record) -> Option<&LuaRecord> {
        let RData::TXT(txt) = &r.data else {
            return None;
        };
        let [only] = &*txt.txt_data else {
            return None;
        };
        let rest = std::str::from_utf8(only).ok()?.strip_prefix(&self.tag)?;
        self.programs.get(rest.parse::<usize>().ok()?)
    }
}

/// One master-file token (a quoted string keeps its quotes): its byte range.
#[derive(Debug, Clone, Copy)]
struct Tok {
    start: usize,
    end: usize,
}

/// Replace every LUA entry by a TXT placeholder. Returns the text to give
/// hickory (borrowed when there is no LUA record) and the programs.
fn extract_lua(text: &str) -> Result<(std::borrow::Cow<'_, str>, Extracted), String> {
    // Cheap exit: no word "lua" anywhere.
    if !text.to_ascii_lowercase().contains("lua") {
        let none = Extracted {
            tag: String::new(),
            programs: Vec::new(),
        };
        return Ok((std::borrow::Cow::Borrowed(text), none));
    }
    // The tag is a hash of the text: a text cannot hold its own hash, and
    // the same text always parses the same way (a fuzz run's crash replays).
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        text.hash(&mut h);
        h.finish()
    };
    let mut ex = Extracted {
        tag: format!("pdm-lua-placeholder-{digest:016x}-"),
        programs: Vec::new(),
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        // One entry: from here to the end of line outside parentheses.
        let entry_start = i;
        let mut toks: Vec<Tok> = Vec::new();
        let mut depth = 0usize;
        let mut newlines = 0usize;
        while let Some(&c) = b.get(i) {
            match c {
                b'\n' => {
                    newlines += 1;
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                b';' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'(' => {
                    depth += 1;
                    i += 1;
                }
                b')' => {
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                b' ' | b'\t' | b'\r' => i += 1,
                b'"' => {
                    let start = i;
                    i += 1;
                    loop {
                        match b.get(i) {
                            None => return Err("unterminated quoted string".to_string()),
                            Some(b'\\') => i += 2,
                            Some(b'"') => {
                                i += 1;
                                break;
                            }
                            Some(b'\n') => {
                                newlines += 1;
                                i += 1;
                            }
                            Some(_) => i += 1,
                        }
                    }
                    toks.push(Tok {
                        start,
                        end: i.min(b.len()),
                    });
                }
                _ => {
                    let start = i;
                    while i < b.len() && !b" \t\r\n();\"".contains(&b[i]) {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    toks.push(Tok {
                        start,
                        end: i.min(b.len()),
                    });
                }
            }
        }
        let entry_end = i;
        // Tokens start at ASCII bytes but an escape may end one inside a
        // UTF-8 sequence: never slice unchecked.
        let word = |t: &Tok| text.get(t.start..t.end).unwrap_or("");
        let blank_owner = matches!(b.get(entry_start), Some(b' ' | b'\t'));
        if toks.is_empty() || word(&toks[0]).starts_with('$') {
            continue;
        }
        // Skip the owner, then TTL and class tokens: the next is the type.
        let mut k = usize::from(!blank_owner);
        while k < toks.len() && (is_ttl(word(&toks[k])) || is_class(word(&toks[k]))) {
            k += 1;
        }
        let Some(ty) = toks.get(k) else { continue };
        if !word(ty).eq_ignore_ascii_case("LUA") {
            continue;
        }
        // The rdata: the remaining tokens, comments and parentheses dropped.
        let rdata = toks[k + 1..].iter().map(word).collect::<Vec<_>>().join(" ");
        // (parse_master adds the line number)
        let program = LuaRecord::parse(&rdata).map_err(|e| e.to_string())?;
        let index = ex.programs.len();
        ex.programs.push(program);
        out.push_str(text.get(copied..ty.start).unwrap_or(""));
        let _ = writeln!(out, "TXT \"{}{index}\"", ex.tag);
        // Keep line numbers: one newline per line the entry spanned.
        for _ in 1..newlines {
            out.push('\n');
        }
        copied = entry_end;
    }
    if ex.programs.is_empty() {
        return Ok((std::borrow::Cow::Borrowed(text), ex));
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    Ok((std::borrow::Cow::Owned(out), ex))
}

/// Rewrites the `\DDD` escapes inside quoted strings into what hickory
/// 0.26's lexer reads as the byte meant. It decodes `\DDD` as the character
/// `d1<<16 | d2<<8 | d3` (`\010` became U+0100, not a newline), right only
/// for `\000`-`\009`, which are kept. A byte below 128 becomes the
/// character itself (a quote or backslash escaped), and a run of bytes
/// from 128 up becomes the UTF-8 text it spells. hickory keeps a string's
/// text as UTF-8, so bytes that are not UTF-8 cannot be read from text at
/// all: an error, rather than other bytes. Unquoted tokens and comments are
/// left alone (hickory does not unescape them; names decode their own).
fn decimal_escapes(text: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    if !text.contains('\\') {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).filter(|c| c.is_ascii_digit()).map(|c| c - b'0');
    // The byte a `\DDD` at `i` stands for, if one is there.
    let escape_at = |i: usize| -> Option<Result<u8, String>> {
        if b.get(i) != Some(&b'\\') {
            return None;
        }
        let (d1, d2, d3) = (digit(i + 1)?, digit(i + 2)?, digit(i + 3)?);
        let v = u32::from(d1) * 100 + u32::from(d2) * 10 + u32::from(d3);
        Some(u8::try_from(v).map_err(|_| format!("escape \\{d1}{d2}{d3} is above 255")))
    };
    let mut out = String::with_capacity(text.len());
    // hickory's lexer states that matter: in a comment, in a quoted string,
    // in an unquoted word (where a quote is an ordinary character).
    let (mut comment, mut quoted, mut word) = (false, false, false);
    let mut copied = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'\n' => (comment, word) = (false, false),
            _ if comment => {}
            b'"' if quoted => quoted = false,
            b'\\' if quoted => {
                let Some(first) = escape_at(i) else {
                    i += 2; // `\X`: hickory reads X
                    continue;
                };
                if first? < 10 {
                    i += 4;
                    continue;
                }
                // A run of escaped bytes, decoded together: one character
                // may take several.
                out.push_str(&text[copied..i]);
                let mut bytes = Vec::new();
                while let Some(byte) = escape_at(i) {
                    bytes.push(byte?);
                    i += 4;
                }
                let decoded = String::from_utf8(bytes).map_err(|e| {
                    format!(
                        "escaped bytes {:?} are not UTF-8 text, which is all a record's text can hold here",
                        e.as_bytes()
                    )
                })?;
                decoded.chars().for_each(|c| push_quoted_char(&mut out, c));
                copied = i;
                continue;
            }
            _ if quoted => {}
            b';' => (comment, word) = (true, false),
            b'"' if !word => quoted = true,
            c if c.is_ascii_whitespace() || c == b'(' || c == b')' => word = false,
            _ => word = true,
        }
        i += 1;
    }
    if copied == 0 {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    out.push_str(&text[copied..]);
    Ok(std::borrow::Cow::Owned(out))
}

/// Whether a master-file token is a TTL (`3600`, `1h30m`).
fn is_ttl(w: &str) -> bool {
    w.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && w.bytes()
            .all(|c| c.is_ascii_digit() || b"sSmMhHdDwW".contains(&c))
}

/// Whether a master-file token is a class.
fn is_class(w: &str) -> bool {
    ["IN", "CH", "HS", "NONE", "ANY", "CS"]
        .iter()
        .any(|c| w.eq_ignore_ascii_case(c))
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
pub(super) fn write_record(out: &mut String, r: &Record) {
    let mut name = r.name.clone();
    name.set_fqdn(true);
    let rtype = r.record_type();
    let mnemonic = match rtype {
        LUA => "LUA".to_string(),
        RecordType::Unknown(code) => format!("TYPE{code}"),
        t => t.to_string(),
    };
    let _ = write!(
        out,
        "{} {} {} {mnemonic} ",
        name.to_ascii(),
        r.ttl,
        r.dns_class,
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
        // PowerDNS presentation: `A "code"`.
        RData::Unknown { code, rdata } if *code == LUA => {
            match LuaRecord::from_wire(&rdata.anything) {
                Ok(program) => {
                    let _ = write!(out, "{program}");
                }
                Err(_) => write_generic(out, &rdata.anything),
            }
        }
        // RFC 3597 generic form for other unknown types.
        RData::Unknown { rdata, .. } => write_generic(out, &rdata.anything),
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
        // hickory's Display leaves HINFO's strings unquoted and NAPTR's
        // unescaped: spaces, quotes or parentheses in them did not read back.
        RData::HINFO(h) => {
            write_char_string(out, &h.cpu);
            out.push(' ');
            write_char_string(out, &h.os);
        }
        // hickory's Display quotes CAA's value without escaping it (and
        // its parser takes the tag as any token): a quote or backslash in
        // either did not read back.
        RData::CAA(caa) => {
            let _ = write!(out, "{} ", caa.flags());
            if !caa.tag.is_empty() && caa.tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
                out.push_str(&caa.tag);
            } else {
                write_char_string(out, caa.tag.as_bytes());
            }
            out.push(' ');
            write_char_string(out, &caa.value);
        }
        // hickory's Display names CERT's type and algorithm, which its
        // parser reads only as numbers.
        RData::CERT(c) => {
            let data = c.cert_base64();
            let _ = write!(
                out,
                "{} {} {} {}",
                u16::from(c.cert_type),
                c.key_tag,
                u8::from(c.algorithm),
                if data.is_empty() { "\"\"" } else { &data }
            );
        }
        // hickory's Display ends each list with a comma and gives
        // no-default-alpn an `=`, neither of which its parser reads back.
        RData::SVCB(svcb) | RData::HTTPS(HTTPS(svcb)) => write_svcb(out, svcb),
        RData::NAPTR(n) => {
            let _ = write!(out, "{} {} ", n.order, n.preference);
            for s in [&n.flags, &n.services, &n.regexp] {
                write_char_string(out, s);
                out.push(' ');
            }
            let _ = write!(out, "{}", n.replacement);
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// SVCB's presentation form as hickory's parser reads it: lists
/// comma-separated without escapes, unknown keys' values bare. Values that
/// need escapes there (an ALPN id with a comma) do not read back, and
/// [`parse_master`] refuses them (see `check_reads_back`).
fn write_svcb(out: &mut String, svcb: &SVCB) {
    fn list<T: std::fmt::Display>(out: &mut String, items: &[T]) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{item}");
        }
    }
    let _ = write!(out, "{} {}", svcb.svc_priority, svcb.target_name);
    for (key, value) in &svcb.svc_params {
        let _ = write!(out, " {key}");
        match value {
            SvcParamValue::NoDefaultAlpn => continue,
            SvcParamValue::Unknown(u) if u.0.is_empty() => continue,
            _ => out.push('='),
        }
        match value {
            SvcParamValue::Mandatory(m) => list(out, &m.0),
            SvcParamValue::Alpn(a) => list(out, &a.0),
            SvcParamValue::Ipv4Hint(h) => list(out, &h.0),
            SvcParamValue::Ipv6Hint(h) => list(out, &h.0),
            SvcParamValue::Port(p) => {
                let _ = write!(out, "{p}");
            }
            SvcParamValue::Unknown(u) => out.push_str(&String::from_utf8_lossy(&u.0)),
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
}

/// The most a `<character-string>` holds (RFC 1035 §3.3).
const MAX_CHARACTER_STRING: usize = 255;

/// Splits a TXT string longer than a `<character-string>` holds into
/// consecutive strings of at most 255 bytes. hickory reads `"…"` of any
/// length, and a TXT kept that way cannot be put on the wire: its name
/// answered SERVFAIL although the write that made it answered 2xx.
/// PowerDNS, whose API takes such values (DKIM keys), splits them the same
/// way when it serves them.
///
/// Public for the store's loads, which read stored rdata without this
/// parser: a string stored whole before this split existed is served too.
pub fn split_long_strings(r: &mut Record) {
    let RData::TXT(txt) = &r.data else {
        return;
    };
    if txt.txt_data.iter().all(|s| s.len() <= MAX_CHARACTER_STRING) {
        return;
    }
    r.data = txt_of(txt.txt_data.iter().map(|s| &**s));
}

/// TXT data of `strings`, each longer than 255 bytes cut into consecutive
/// strings of at most 255 (see [`text_cut`]); an empty string is kept.
fn txt_of<'a>(strings: impl Iterator<Item = &'a [u8]>) -> RData {
    let mut parts: Vec<&[u8]> = Vec::new();
    for s in strings {
        let mut rest = s;
        loop {
            let cut = text_cut(rest);
            parts.push(&rest[..cut]);
            rest = &rest[cut..];
            if rest.is_empty() {
                break;
            }
        }
    }
    RData::TXT(TXT::from_bytes(parts))
}

/// TXT record data written as plain quoted strings (`"v=spf1 -all" "x"`:
/// printable ASCII without backslashes, separated by blanks), read
/// directly and split as [`split_long_strings`] splits; `None` for any
/// other spelling, which hickory's lexer reads. That lexer, a zone file's
/// worth of machinery per value, was a twentieth of a PowerDNS-API PATCH,
/// and plain strings are what the record APIs' clients write (ACME tokens,
/// external-dns's registry records, SPF, DKIM).
pub fn plain_txt(text: &str) -> Option<RData> {
    let blank = [' ', '\t'];
    let mut rest = text.trim_matches(blank);
    let mut strings: Vec<&[u8]> = Vec::new();
    while !rest.is_empty() {
        let body = rest.strip_prefix('"')?;
        let end = body.find('"')?;
        let s = &body.as_bytes()[..end];
        if !s.iter().all(|&b| (b' '..=b'~').contains(&b) && b != b'\\') {
            return None;
        }
        strings.push(s);
        let after = &body[end + 1..];
        rest = after.trim_start_matches(blank);
        if rest.len() == after.len() && !rest.is_empty() {
            return None;
        }
    }
    (!strings.is_empty()).then(|| txt_of(strings.into_iter()))
}

/// Where the first string of at most 255 bytes of `s` ends: at a character
/// boundary when `s` is text, so that each string stays text (a string
/// that is not is written lossily, see [`write_char_string`]).
fn text_cut(s: &[u8]) -> usize {
    if s.len() <= MAX_CHARACTER_STRING {
        return s.len();
    }
    match std::str::from_utf8(s) {
        Ok(text) => (1..=MAX_CHARACTER_STRING)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(MAX_CHARACTER_STRING),
        Err(_) => MAX_CHARACTER_STRING,
    }
}

/// Types whose text form pdm writes itself: a parsed record of these
/// types is written and read back before it is accepted, so that what is
/// stored and exported is what was read. Rare values that hickory's
/// parser cannot read back in any form are refused instead of kept wrong.
fn checked_on_read(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::SVCB | RecordType::HTTPS | RecordType::CERT | RecordType::CAA | RecordType::DS
    )
}

/// Refuses a DS whose digest is not as long as its digest type makes it
/// (SHA-1 20 bytes, SHA-256 32, SHA-384 48; other types are not checked).
/// hickory reads an odd number of hex digits by dropping the last one, so a
/// digest mistyped by a digit would be stored one byte short: a DS that
/// matches no key, and a child zone that validates as bogus.
fn check_ds_digest(r: &Record) -> Result<(), String> {
    let RData::DNSSEC(DNSSECRData::DS(ds)) = &r.data else {
        return Ok(());
    };
    let want = match ds.digest_type() {
        DigestType::SHA1 => 20,
        DigestType::SHA256 => 32,
        DigestType::SHA384 => 48,
        _ => return Ok(()),
    };
    let got = ds.digest().len();
    if got == want {
        return Ok(());
    }
    Err(format!(
        "DS digest of {got} bytes ({} hex digits or one short of them): digest type {} takes {want} bytes ({} hex digits)",
        got * 2,
        u8::from(ds.digest_type()),
        want * 2
    ))
}

/// Refuses a record whose written form reads back as something else.
fn check_reads_back(r: &Record) -> Result<(), String> {
    let text = rdata_text(&r.data);
    match RData::try_from_str(r.record_type(), &text) {
        Ok(again) if again == r.data => Ok(()),
        _ => Err(format!(
            "{} record data that pdm cannot write back unchanged (written as {text:?}): \
             leave out escapes, spaces and quotes in its values",
            r.record_type()
        )),
    }
}

fn write_generic(out: &mut String, wire: &[u8]) {
    let _ = write!(out, "\\# {} {}", wire.len(), hex::encode(wire));
}

/// A `<character-string>` in quotes, in a form hickory 0.26's lexer reads
/// back byte-exactly: its `\DDD` decoding is broken (it computes
/// `d1<<16 | d2<<8 | d3`), so only `\000`-`\009` are escaped numerically;
/// other control bytes and UTF-8 text are written raw inside the quotes.
/// Bytes that are not valid UTF-8 cannot be represented (lossy).
fn write_char_string(out: &mut String, s: &[u8]) {
    out.push('"');
    for chunk in s.utf8_chunks() {
        chunk.valid().chars().for_each(|c| push_quoted_char(out, c));
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out.push('"');
}

/// One character inside a quoted string, as hickory 0.26's lexer reads it
/// back: quote and backslash escaped, `\000`-`\009` numerically (the only
/// `\DDD` it decodes right), anything else raw.
fn push_quoted_char(out: &mut String, c: char) {
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
    fn hinfo_and_naptr_strings_read_back() {
        // Found by the zone_file fuzz target: HINFO was written unquoted.
        let text = "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n\
                    h IN HINFO \"cpu (x)\" \"os \\\"y\\\";z else end\"\n\
                    n IN NAPTR 100 10 \"u\" \"E2U+\\\"sip\\\" (x)\" \"!^.*$!sip:a b@x!\" .\n";
        let (origin, records) = parse_master(text, None).unwrap();
        let written = write_master(&origin, &records);
        let (_, again) = parse_master(&written, None).unwrap();
        assert_eq!(again, records, "{written}");
        let hinfo = again
            .iter()
            .find(|r| r.record_type() == RecordType::HINFO)
            .unwrap();
        let RData::HINFO(h) = &hinfo.data else {
            panic!()
        };
        assert_eq!(&*h.os, b"os \"y\";z else end");
    }

    #[test]
    fn caa_values_and_tags_read_back() {
        // Found by the zone_file fuzz target: CAA's value was quoted but
        // not escaped.
        let text = "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n\
                    a IN CAA 128 iodef mailto:x\"y\n\
                    b IN CAA 0 \"is sue\" \"v\\\\w \\\"q\\\"\"\n\
                    c IN CAA 0 issue \"letsencrypt.org; validationmethods=dns-01\"\n";
        let (origin, records) = parse_master(text, None).unwrap();
        let written = write_master(&origin, &records);
        let (_, again) = parse_master(&written, None).unwrap();
        assert_eq!(again, records, "{written}");
        let value = |owner: &str| {
            let r = again.iter().find(|r| r.name == name(owner)).unwrap();
            let RData::CAA(caa) = &r.data else { panic!() };
            (caa.tag.clone(), caa.value.clone())
        };
        assert_eq!(
            value("a.example.com."),
            ("iodef".into(), b"mailto:x\"y".to_vec())
        );
        assert_eq!(
            value("b.example.com."),
            ("is sue".into(), b"v\\w \"q\"".to_vec())
        );
        assert!(
            written.contains(
                "c.example.com. 60 IN CAA 0 issue \"letsencrypt.org; validationmethods=dns-01\""
            ),
            "{written}"
        );
    }

    #[test]
    fn svcb_and_cert_read_back() {
        // hickory's Display wrote `no-default-alpn=`, a comma after each
        // list and CERT's mnemonics, none of which its parser reads.
        let text = "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n\
                    a IN HTTPS 1 . mandatory=alpn,port alpn=h2,h3 no-default-alpn port=8443 \
                    ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1 ech=\"AEX+DQBBpQAgACBa\"\n\
                    b IN SVCB 1 svc.example.net. key65000=abc key65001\n\
                    c IN HTTPS 0 target.example.net.\n\
                    d IN CERT 1 2 3 AAAA\n";
        let (origin, records) = parse_master(text, None).unwrap();
        let written = write_master(&origin, &records);
        let (_, again) = parse_master(&written, None).unwrap();
        assert_eq!(again, records, "{written}");
        assert!(
            written.contains(
                "a.example.com. 60 IN HTTPS 1 . mandatory=alpn,port alpn=h2,h3 no-default-alpn \
                 port=8443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1 ech=\"AEX+DQBBpQAgACBa\"\n"
            ),
            "{written}"
        );
        assert!(
            written.contains("d.example.com. 60 IN CERT 1 2 3 AAAA\n"),
            "{written}"
        );
    }

    #[test]
    fn values_that_cannot_be_written_back_are_refused() {
        // hickory reads `\,` in an ALPN id but cannot read any form of an
        // id holding a comma back: keeping it would store another record.
        let text = "$ORIGIN example.com.\nwww 60 IN A 192.0.2.1\n\
                    s 60 IN HTTPS 1 . alpn=\"h2,h\\\\,3\"\n";
        let err = parse_master(text, None).unwrap_err().0;
        assert!(err.starts_with("line 3: HTTPS record data"), "{err}");
        // hickory reads a one-digit digest as none, and no digest at all
        // it does not read (found by the zone_file fuzz target).
        let text = "$ORIGIN example.com.\nd 60 IN DS 12345 13 2 1\n";
        let err = parse_master(text, None).unwrap_err().0;
        assert!(err.starts_with("line 2: DS record data"), "{err}");
        let text = "$ORIGIN example.com.\nd 60 IN DS 12345 13 9 ABCD\n";
        assert!(parse_master(text, None).is_ok());
    }

    /// A DS digest one hex digit short (which hickory reads one byte
    /// short) or of the wrong length for its type is refused, with its line.
    #[test]
    fn ds_digests_of_the_wrong_length_are_refused() {
        let sha256 = "2BB183AF5F22588179A53B0A98631FAD1A292118F1D3A0E1C9A3E5E0E3D2F3A4";
        let ok = format!("$ORIGIN x.test.\nc 60 DS 12345 13 2 {sha256}\n");
        assert!(parse_master(&ok, None).is_ok());
        let odd = format!("$ORIGIN x.test.\n\nc 60 DS 12345 13 2 {}\n", &sha256[..63]);
        let e = parse_master(&odd, None).unwrap_err().0;
        assert!(e.starts_with("line 3: DS digest of 31 bytes"), "{e}");
        let short = format!("$ORIGIN x.test.\nc 60 DS 12345 13 4 {sha256}\n");
        let e = parse_master(&short, None).unwrap_err().0;
        assert!(e.contains("digest type 4 takes 48 bytes"), "{e}");
        // A digest type pdm does not know keeps any length.
        let other = format!("$ORIGIN x.test.\nc 60 DS 12345 13 9 {}\n", &sha256[..10]);
        assert!(parse_master(&other, None).is_ok());
    }

    /// A TXT string past 255 bytes becomes strings of 255 in order (the
    /// empty ones kept), and the record can then go on the wire.
    #[test]
    fn long_txt_strings_are_split_into_character_strings() {
        use hickory_proto::serialize::binary::BinEncodable;
        let long = "a".repeat(600);
        let text = format!("$ORIGIN x.test.\nt 60 TXT \"{long}\" \"\" \"short\"\n");
        let (_, records) = parse_master(&text, None).unwrap();
        let RData::TXT(txt) = &records[0].data else {
            panic!("not TXT: {:?}", records[0].data);
        };
        let lens: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [255, 255, 90, 0, 5]);
        assert_eq!(txt.txt_data.concat(), format!("{long}short").as_bytes());
        assert!(records[0].to_bytes().is_ok(), "encodes");
        // Written and read again, it stays as it is.
        let again = format!(
            "$ORIGIN x.test.\nt 60 TXT {}\n",
            rdata_text(&records[0].data)
        );
        assert_eq!(
            parse_master(&again, None).unwrap().1[0].data,
            records[0].data
        );
        // Text is cut between characters, never inside one.
        let wide = "é".repeat(200);
        let text = format!("$ORIGIN x.test.\nt 60 TXT \"{wide}\"\n");
        let (_, records) = parse_master(&text, None).unwrap();
        let RData::TXT(txt) = &records[0].data else {
            panic!()
        };
        let lens: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [254, 146]);
        assert!(txt.txt_data.iter().all(|s| std::str::from_utf8(s).is_ok()));
        // Strings within bounds are left alone.
        let (_, short) = parse_master("$ORIGIN x.test.\nt 60 TXT \"ab\" \"\"\n", None).unwrap();
        let RData::TXT(txt) = &short[0].data else {
            panic!()
        };
        assert_eq!(txt.txt_data.len(), 2);
    }

    #[test]
    fn decimal_escapes_in_quoted_strings_are_the_bytes_meant() {
        // hickory 0.26 alone reads `\\010` as U+0100 and `\\195\\169` as
        // two odd characters.
        let text = "$ORIGIN example.com.\n\
                    t 60 IN TXT \"a\\010b\" \"caf\\195\\169\" \"\\034q\\092\\059\\032\\000\\065\"\n\
                    u 60 IN TXT plain\\065 ; a comment \\999\n\
                    v 60 IN TXT x\"\\065\n";
        let (origin, records) = parse_master(text, None).unwrap();
        let txt = |owner: &str| -> Vec<Vec<u8>> {
            let r = records.iter().find(|r| r.name == name(owner)).unwrap();
            let RData::TXT(t) = &r.data else { panic!() };
            t.txt_data.iter().map(|s| s.to_vec()).collect()
        };
        assert_eq!(
            txt("t.example.com."),
            vec![
                b"a\nb".to_vec(),
                "café".as_bytes().to_vec(),
                b"\"q\\; \0A".to_vec()
            ]
        );
        // Unquoted, hickory keeps the backslash; a quote inside a word is
        // an ordinary character, and no string starts there.
        assert_eq!(txt("u.example.com."), vec![b"plain\\065".to_vec()]);
        assert_eq!(txt("v.example.com."), vec![b"x\"\\065".to_vec()]);
        let written = write_master(&origin, &records);
        let (_, again) = parse_master(&written, None).unwrap();
        assert_eq!(again, records, "{written}");
    }

    #[test]
    fn escaped_bytes_that_are_not_text_are_refused() {
        for (rdata, want) in [
            ("\"\\255\"", "not UTF-8"),
            ("\"\\195\\065\"", "not UTF-8"),
            ("\"\\256\"", "above 255"),
        ] {
            let text = format!("$ORIGIN example.com.\nt 60 IN TXT {rdata}\n");
            let err = parse_master(&text, None).unwrap_err().0;
            assert!(
                err.starts_with("line 2: ") && err.contains(want),
                "{rdata}: {err}"
            );
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

    const LUA_ZONE: &str = r#"$ORIGIN example.com.
$TTL 300
@      IN SOA ns1 hm 1 7200 3600 1209600 60
@      IN NS  ns1
ns1    IN A   192.0.2.1
port   60 IN LUA A "ifportup(443, {'192.0.2.1','192.0.2.2'})"
multi  IN LUA TXT ( "'ab"   ; a comment inside
                    "cd'" )
       IN TXT "static next to lua"
lua    IN A 192.0.2.9
cfg    IN lua LUA "ips={'192.0.2.77'}"
*.w    IN LUA A "createForward()"
after  IN A 192.0.2.3
"#;

    #[test]
    fn lua_records_parse_with_hickory_rules() {
        let (_, records) = parse_master(LUA_ZONE, None).unwrap();
        let lua: Vec<&Record> = records.iter().filter(|r| r.record_type() == LUA).collect();
        assert_eq!(lua.len(), 4, "{records:?}");
        let prog = |r: &Record| match &r.data {
            RData::Unknown { rdata, .. } => LuaRecord::from_wire(&rdata.anything).unwrap(),
            other => panic!("{other:?}"),
        };
        let port = lua
            .iter()
            .find(|r| r.name == name("port.example.com."))
            .unwrap();
        assert_eq!(port.ttl, 60);
        assert_eq!(prog(port).rtype, RecordType::A);
        assert_eq!(
            prog(port).chunks,
            vec!["ifportup(443, {'192.0.2.1','192.0.2.2'})"]
        );
        let multi = lua
            .iter()
            .find(|r| r.name == name("multi.example.com."))
            .unwrap();
        assert_eq!(multi.ttl, 300);
        assert_eq!(prog(multi).chunks, vec!["'ab", "cd'"]);
        // The blank-owner line after a multi-line LUA entry belongs to `multi`.
        assert!(records
            .iter()
            .any(|r| r.name == name("multi.example.com.") && r.record_type() == RecordType::TXT));
        // An owner named "lua" is not a LUA record; lower-case type is.
        assert!(records
            .iter()
            .any(|r| r.name == name("lua.example.com.") && r.record_type() == RecordType::A));
        let cfg = lua
            .iter()
            .find(|r| r.name == name("cfg.example.com."))
            .unwrap();
        assert_eq!(prog(cfg).rtype, LUA);
        assert!(lua.iter().any(|r| r.name == name("*.w.example.com.")));
        assert!(records.iter().any(|r| r.name == name("after.example.com.")));
    }

    #[test]
    fn lua_errors_keep_line_numbers() {
        let text = "$ORIGIN example.com.\n@ 60 IN SOA ns hm 1 2 3 4 5\nx 60 IN LUA NOPE \"1\"\n";
        let err = parse_master(text, None).unwrap_err().to_string();
        assert!(err.starts_with("line 3:"), "{err}");
        let text = "$ORIGIN example.com.\n@ 60 IN SOA ns hm 1 2 3 4 5\nx 60 IN LUA ( A\n \"1\" )\ny 60 IN A bad\n";
        let err = parse_master(text, None).unwrap_err().to_string();
        assert!(err.starts_with("line 5:"), "{err}");
    }

    #[test]
    fn lua_records_export_in_powerdns_form_and_round_trip() {
        let (origin, records) = parse_master(LUA_ZONE, None).unwrap();
        let text = write_master(&origin, &records);
        assert!(
            text.contains(
                r#"port.example.com. 60 IN LUA A "ifportup(443, {'192.0.2.1','192.0.2.2'})""#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"multi.example.com. 300 IN LUA TXT "'ab" "cd'""#),
            "{text}"
        );
        let (_, again) = parse_master(&text, None).unwrap();
        let mut a: Vec<_> = records
            .iter()
            .map(|r| (r.name.to_ascii(), r.ttl, r.data.clone()))
            .collect();
        let mut b: Vec<_> = again
            .iter()
            .map(|r| (r.name.to_ascii(), r.ttl, r.data.clone()))
            .collect();
        a.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        b.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        assert_eq!(a, b);
    }

    /// hickory's reading of `text` as the rdata of a TXT record.
    fn lexed_txt(text: &str) -> Option<RData> {
        let line = format!("t.example. 3600 IN TXT {text}\n");
        match parse_master(&line, Some(&name("example."))) {
            Ok((_, records)) if records.len() == 1 => Some(records[0].data.clone()),
            _ => None,
        }
    }

    #[test]
    fn plain_txt_reads_plain_strings_and_leaves_the_rest_to_the_lexer() {
        for text in [
            r#""v=spf1 -all""#,
            r#""heritage=external-dns,external-dns/owner=default" "b""#,
            "\"\"",
            "\t\"a\"\t \"\"  \"c;d (e) $f @\"  ",
        ] {
            let fast = plain_txt(text).unwrap_or_else(|| panic!("{text} not read"));
            assert_eq!(Some(fast), lexed_txt(text), "{text}");
        }
        let long = format!("\"{}\"", "k".repeat(600));
        let RData::TXT(t) = plain_txt(&long).unwrap() else {
            panic!("not TXT");
        };
        let lens: Vec<usize> = t.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [255, 255, 90]);
        for text in [
            "plain",
            r#""a\"b""#,
            r#""a\065""#,
            r#""a""b""#,
            r#""open"#,
            "\"caf\u{e9}\"",
            "\"tab\there\"",
            "",
        ] {
            assert_eq!(plain_txt(text), None, "{text}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Whatever the direct reading takes, hickory's lexer reads the same.
        #[test]
        fn plain_txt_reads_what_the_lexer_reads(
            strings in proptest::collection::vec("[ !#-\\[\\]-~]{0,300}", 1..4),
            seps in proptest::collection::vec("[ \t]{0,2}", 4),
            raw in "[ -~\t\"\\\\]{0,60}",
        ) {
            let mut text = seps[0].clone();
            for (i, s) in strings.iter().enumerate() {
                text.push('"');
                text.push_str(s);
                text.push('"');
                // Strings apart, as the direct reading wants them.
                let last = i + 1 == strings.len();
                text.push_str(if last || !seps[i + 1].is_empty() { &seps[i + 1] } else { " " });
            }
            let fast = plain_txt(&text);
            proptest::prop_assert!(fast.is_some(), "{:?} not read", text);
            proptest::prop_assert_eq!(&fast, &lexed_txt(&text), "{:?}", text);
            // The store's loads read stored rdata alone, then split.
            let alone = RData::try_from_str(RecordType::TXT, &text).expect("reads");
            let mut rec = Record::from_rdata(name("t.example."), 3600, alone);
            split_long_strings(&mut rec);
            proptest::prop_assert_eq!(fast, Some(rec.data), "{:?}", text);
            for t in [raw.as_str()] {
                if let Some(fast) = plain_txt(t) {
                    proptest::prop_assert_eq!(Some(fast), lexed_txt(t), "{:?}", t);
                }
            }
        }
    }
}
