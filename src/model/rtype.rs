//! Record type mnemonics as pdm writes and reads them: hickory's names,
//! `LUA` for PowerDNS's LUA type, `TYPEnnn` (RFC 3597) for the rest.

use hickory_proto::rr::RecordType;
use std::str::FromStr;

/// A type mnemonic (`TXT`, `LUA`, `TYPE65534`).
pub fn parse_type(s: &str) -> Result<RecordType, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("LUA") {
        return Ok(crate::zone::LUA);
    }
    if let Some(code) = s
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("TYPE"))
        .and_then(|_| s[4..].parse::<u16>().ok())
    {
        return Ok(RecordType::from(code));
    }
    match RecordType::from_str(&s.to_ascii_uppercase()) {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(format!("unknown record type {s:?}")),
        Ok(t) => Ok(t),
    }
}

/// The mnemonic of a type (`LUA` for PowerDNS's, `TYPEnnn` for unknown ones).
pub fn type_name(t: RecordType) -> String {
    match t {
        crate::zone::LUA => "LUA".to_string(),
        RecordType::Unknown(code) => format!("TYPE{code}"),
        t => t.to_string(),
    }
}
