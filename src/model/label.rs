//! A pool subdomain label, validated by the rules the Go service's callers
//! already enforce (reference §1.6): `[a-z][a-z0-9-]{0,62}`, no trailing `-`.

use std::fmt;

/// Why a label was rejected; each maps to a stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The label is empty after trimming.
    #[error("subdomain is empty")]
    Empty,
    /// More than 63 octets.
    #[error("subdomain is longer than 63 characters")]
    TooLong,
    /// A character outside `[a-z0-9-]` (after lower-casing), a non-letter
    /// first character, or a trailing hyphen.
    #[error("subdomain must be a-z, 0-9 and hyphens, start with a letter, max 63 characters")]
    InvalidFormat,
}

/// A validated, lower-case pool subdomain label such as `acme`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    /// Parse user input: trims whitespace and lower-cases, then validates.
    pub fn parse(input: &str) -> Result<Self, LabelError> {
        let s = input.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err(LabelError::Empty);
        }
        if s.len() > 63 {
            return Err(LabelError::TooLong);
        }
        let bytes = s.as_bytes();
        if !bytes[0].is_ascii_lowercase() || bytes[bytes.len() - 1] == b'-' {
            return Err(LabelError::InvalidFormat);
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err(LabelError::InvalidFormat);
        }
        Ok(Label(s))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_labels() {
        for ok in ["a", "acme", "a1", "my-shop", "x".repeat(63).as_str()] {
            assert_eq!(Label::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(Label::parse("  AcMe ").unwrap().as_str(), "acme");
    }

    #[test]
    fn rejects_invalid_labels() {
        assert_eq!(Label::parse(""), Err(LabelError::Empty));
        assert_eq!(Label::parse("   "), Err(LabelError::Empty));
        assert_eq!(Label::parse(&"x".repeat(64)), Err(LabelError::TooLong));
        for bad in ["1abc", "-abc", "abc-", "a_b", "a.b", "ä", "a b", "*"] {
            assert_eq!(Label::parse(bad), Err(LabelError::InvalidFormat), "{bad}");
        }
    }
}
