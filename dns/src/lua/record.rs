//! The LUA record type (65402): presentation and wire forms, and how
//! PowerDNS 4.x turns its character-strings into Lua source. Pure: no IO.

use hickory_proto::rr::RecordType;
use std::fmt;
use std::str::FromStr;

/// Type code of the PowerDNS LUA record.
pub const LUA_TYPE_CODE: u16 = 65402;

/// A LUA record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LuaParseError {
    /// The covered type is missing or not a known mnemonic / `TYPEnnn`.
    #[error("LUA record: unknown or missing record type {0:?}")]
    BadType(String),
    /// No code after the type.
    #[error("LUA record: no code after the record type")]
    NoCode,
    /// A quoted string is not closed.
    #[error("LUA record: unterminated quoted string")]
    Unterminated,
    /// A character-string longer than 255 bytes, or a bad escape.
    #[error("LUA record: {0}")]
    BadString(String),
    /// Truncated or malformed wire rdata.
    #[error("LUA record: malformed wire rdata: {0}")]
    BadWire(String),
}

/// One LUA record's rdata: the type it synthesizes and its code chunks.
///
/// Chunks are kept in presentation form (the text between the quotes, with
/// `\"`, `\\` and `\DDD` escapes left as written) because that is what
/// PowerDNS stores and splits to build the code ([`LuaRecord::code`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LuaRecord {
    /// The record type this snippet answers for (`A`, `TXT`, ... or `LUA` for include files).
    pub rtype: RecordType,
    /// The character-strings, in presentation form without the quotes.
    pub chunks: Vec<String>,
}

impl LuaRecord {
    /// Parse the presentation form, e.g. `A "ifportup(443, {'192.0.2.1'})"`.
    ///
    /// Several quoted strings (optionally inside `( ... )`) are several
    /// chunks; an unquoted word is a chunk too, as in TXT rdata.
    pub fn parse(rdata_text: &str) -> Result<Self, LuaParseError> {
        let text = rdata_text.trim();
        let (ty, rest) = match text.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&text[..i], &text[i..]),
            None => (text, ""),
        };
        let rtype = parse_type(ty)?;
        let chunks = split_strings(rest)?;
        if chunks.is_empty() {
            return Err(LuaParseError::NoCode);
        }
        Ok(LuaRecord { rtype, chunks })
    }

    /// Build a record from a type and one code string (escaping `"` and `\`).
    #[cfg(test)]
    pub(super) fn new(rtype: RecordType, code: &str) -> Self {
        LuaRecord {
            rtype,
            chunks: vec![escape(code.as_bytes())],
        }
    }

    /// Parse wire rdata: a 16-bit type followed by `<character-string>`s.
    pub fn from_wire(rdata: &[u8]) -> Result<Self, LuaParseError> {
        if rdata.len() < 2 {
            return Err(LuaParseError::BadWire("shorter than the type field".into()));
        }
        let rtype = RecordType::from(u16::from_be_bytes([rdata[0], rdata[1]]));
        let mut chunks = Vec::new();
        let mut rest = &rdata[2..];
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len);
            if tail.len() < len {
                return Err(LuaParseError::BadWire(
                    "character-string runs past the end".into(),
                ));
            }
            chunks.push(escape(&tail[..len]));
            rest = &tail[len..];
        }
        if chunks.is_empty() {
            return Err(LuaParseError::NoCode);
        }
        Ok(LuaRecord { rtype, chunks })
    }

    /// Wire rdata: the type then each chunk as a `<character-string>`.
    pub fn to_wire(&self) -> Result<Vec<u8>, LuaParseError> {
        let mut out =
            Vec::with_capacity(2 + self.chunks.iter().map(|c| c.len() + 1).sum::<usize>());
        out.extend_from_slice(&u16::from(self.rtype).to_be_bytes());
        for chunk in &self.chunks {
            let bytes = unescape(chunk)?;
            let len = u8::try_from(bytes.len()).map_err(|_| {
                LuaParseError::BadString(format!(
                    "character-string of {} bytes (max 255)",
                    bytes.len()
                ))
            })?;
            out.push(len);
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }

    /// The Lua source as PowerDNS ≤ 4.9 builds it (`LUARecordContent::getCode`
    /// with `lua-records-insert-whitespace=yes`).
    ///
    /// PowerDNS keeps the chunks as `"c1" "c2"`, splits that text on `"`
    /// (dropping empty pieces) and appends every piece followed by one space,
    /// so `"a" "b"` becomes `a   b ` (the single space between the quotes is
    /// a piece of its own). A `\"` inside a chunk is split too, exactly as
    /// PowerDNS does; double quotes therefore cannot be used in LUA code.
    pub(super) fn code(&self) -> String {
        let stored = self
            .chunks
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(" ");
        let mut code = String::with_capacity(stored.len() + 8);
        for piece in stored.split('"').filter(|p| !p.is_empty()) {
            code.push_str(piece);
            code.push(' ');
        }
        code
    }
}

impl fmt::Display for LuaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // hickory spells every unknown type "Unknown".
        match self.rtype {
            RecordType::Unknown(LUA_TYPE_CODE) => write!(f, "LUA")?,
            RecordType::Unknown(code) => write!(f, "TYPE{code}")?,
            t => write!(f, "{t}")?,
        }
        for c in &self.chunks {
            write!(f, " \"{c}\"")?;
        }
        Ok(())
    }
}

impl FromStr for LuaRecord {
    type Err = LuaParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LuaRecord::parse(s)
    }
}

fn parse_type(ty: &str) -> Result<RecordType, LuaParseError> {
    if ty.is_empty() {
        return Err(LuaParseError::BadType(String::new()));
    }
    let upper = ty.to_ascii_uppercase();
    if upper == "LUA" {
        return Ok(RecordType::Unknown(LUA_TYPE_CODE));
    }
    if let Some(num) = upper.strip_prefix("TYPE") {
        if let Ok(n) = num.parse::<u16>() {
            return Ok(RecordType::from(n));
        }
    }
    match RecordType::from_str(&upper) {
        Ok(t) => Ok(t),
        Err(_) => Err(LuaParseError::BadType(ty.to_string())),
    }
}

/// Split rdata text into character-strings (presentation form, unquoted).
fn split_strings(text: &str) -> Result<Vec<String>, LuaParseError> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() || c == b'(' || c == b')' {
            i += 1;
            continue;
        }
        if c == b'"' {
            let start = i + 1;
            let mut j = start;
            loop {
                match bytes.get(j) {
                    None => return Err(LuaParseError::Unterminated),
                    Some(b'\\') => j += 2,
                    Some(b'"') => break,
                    Some(_) => j += 1,
                }
            }
            out.push(text[start..j].to_string());
            i = j + 1;
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(bytes.len());
            out.push(text[start..end].to_string());
        }
    }
    Ok(out)
}

/// Presentation form of raw bytes, as PowerDNS `txtEscape` writes them.
pub(super) fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            32..=126 => s.push(char::from(b)),
            _ => s.push_str(&format!("\\{b:03}")),
        }
    }
    s
}

/// Raw bytes of a presentation-form string (`\X` and `\DDD` escapes).
pub(super) fn unescape(s: &str) -> Result<Vec<u8>, LuaParseError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let digits = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        if let Some(d) = digits {
            let v =
                u32::from(d[0] - b'0') * 100 + u32::from(d[1] - b'0') * 10 + u32::from(d[2] - b'0');
            let byte = u8::try_from(v)
                .map_err(|_| LuaParseError::BadString(format!("escape \\{v} out of range")))?;
            out.push(byte);
            i += 4;
        } else if let Some(&c) = b.get(i + 1) {
            out.push(c);
            i += 2;
        } else {
            return Err(LuaParseError::BadString("trailing backslash".into()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_chunk() {
        let r = LuaRecord::parse(r#"A "ifportup(443, {'192.0.2.1','192.0.2.2'})""#).unwrap();
        assert_eq!(r.rtype, RecordType::A);
        assert_eq!(r.chunks, vec!["ifportup(443, {'192.0.2.1','192.0.2.2'})"]);
        assert_eq!(r.code(), "ifportup(443, {'192.0.2.1','192.0.2.2'}) ");
    }

    #[test]
    fn joins_chunks_like_powerdns_4() {
        // Verified against 4.7.3: "'ab" "cd'" evaluates to "ab   cd".
        let r = LuaRecord::parse(r#"TXT ( "'ab" "cd'" )"#).unwrap();
        assert_eq!(r.chunks.len(), 2);
        assert_eq!(r.code(), "'ab   cd' ");
    }

    #[test]
    fn type_forms() {
        assert_eq!(
            LuaRecord::parse("aaaa \"x\"").unwrap().rtype,
            RecordType::AAAA
        );
        assert_eq!(
            LuaRecord::parse("LUA \"x\"").unwrap().rtype,
            RecordType::Unknown(LUA_TYPE_CODE)
        );
        assert_eq!(
            LuaRecord::parse("TYPE1 \"x\"").unwrap().rtype,
            RecordType::A
        );
        assert!(matches!(
            LuaRecord::parse("NOPE \"x\""),
            Err(LuaParseError::BadType(_))
        ));
        assert!(matches!(LuaRecord::parse("A"), Err(LuaParseError::NoCode)));
        assert!(matches!(
            LuaRecord::parse("A \"x"),
            Err(LuaParseError::Unterminated)
        ));
    }

    #[test]
    fn wire_round_trip() {
        let r = LuaRecord::parse(r#"TXT "'ab" "cd'""#).unwrap();
        let wire = r.to_wire().unwrap();
        // Verified layout from an AXFR of 4.7.3: 00 10 | 03 'ab | 03 cd'.
        assert_eq!(
            wire,
            vec![0, 16, 3, b'\'', b'a', b'b', 3, b'c', b'd', b'\'']
        );
        assert_eq!(LuaRecord::from_wire(&wire).unwrap(), r);
        assert!(LuaRecord::from_wire(&[0]).is_err());
        assert!(LuaRecord::from_wire(&[0, 1, 5, b'a']).is_err());
    }

    #[test]
    fn escapes_round_trip() {
        let r = LuaRecord::new(RecordType::TXT, "a\\b\x01");
        assert_eq!(r.chunks[0], "a\\\\b\\001");
        let wire = r.to_wire().unwrap();
        assert_eq!(&wire[3..], b"a\\b\x01");
        assert_eq!(r.to_string(), "TXT \"a\\\\b\\001\"");
    }
}
