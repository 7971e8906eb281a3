//! Absolute domain names as pdm stores and compares them: lower-case,
//! fully qualified, validated by hickory's parser.

use hickory_proto::rr::Name;
use std::fmt;

/// Why a domain name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a syntactically valid DNS name.
    #[error("not a valid domain name: {0}")]
    Invalid(String),
    /// The root or a single-label name where a real domain is required.
    #[error("domain name needs at least two labels")]
    TooShort,
}

/// A lower-case, fully-qualified domain name (e.g. `acme.example.test.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(Name);

impl DomainName {
    /// Parse user input with or without the trailing dot.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let s = input.trim();
        if s.is_empty() || s == "." {
            return Err(NameError::TooShort);
        }
        let mut name = Name::from_ascii(s).map_err(|_| NameError::Invalid(s.to_string()))?;
        name.set_fqdn(true);
        let name = name.to_lowercase();
        if name.num_labels() < 2 {
            return Err(NameError::TooShort);
        }
        Ok(DomainName(name))
    }

    /// Wrap an existing hickory name (lower-cased, made absolute).
    pub fn from_name(name: &Name) -> Self {
        let mut n = name.to_lowercase();
        n.set_fqdn(true);
        DomainName(n)
    }

    /// The hickory name.
    pub fn name(&self) -> &Name {
        &self.0
    }

    /// `label.self`
    pub fn child(&self, label: &str) -> Result<Self, NameError> {
        self.0
            .prepend_label(label)
            .map(DomainName)
            .map_err(|_| NameError::Invalid(label.to_string()))
    }

    /// Text without the trailing dot, as the HTTP API shows names.
    pub fn without_dot(&self) -> String {
        let s = self.0.to_ascii();
        s.strip_suffix('.').unwrap_or(&s).to_string()
    }

    /// Text with the trailing dot, as the store keeps names.
    pub fn fqdn(&self) -> String {
        self.0.to_ascii()
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.without_dot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let n = DomainName::parse("Example.TEST").unwrap();
        assert_eq!(n.fqdn(), "example.test.");
        assert_eq!(n.without_dot(), "example.test");
        assert_eq!(DomainName::parse("example.test.").unwrap(), n);
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(DomainName::parse(""), Err(NameError::TooShort));
        assert_eq!(DomainName::parse("."), Err(NameError::TooShort));
        assert_eq!(DomainName::parse("test"), Err(NameError::TooShort));
        assert!(DomainName::parse("a..b").is_err());
        assert!(DomainName::parse(&format!("{}.test", "x".repeat(64))).is_err());
    }

    #[test]
    fn child_prepends() {
        let n = DomainName::parse("example.test").unwrap();
        assert_eq!(n.child("acme").unwrap().fqdn(), "acme.example.test.");
    }
}
