//! The reserved-names list: labels no customer can take in any pool.

use std::collections::BTreeSet;

const RESERVED: &str = include_str!("../../zones/reserved.txt");

/// The built-in reserved labels, sorted.
pub fn reserved_labels() -> &'static BTreeSet<String> {
    static SET: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        RESERVED
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_ascii_lowercase)
            .collect()
    })
}

/// Whether `label` (already normalised) is reserved.
pub fn is_reserved(label: &str) -> bool {
    reserved_labels().contains(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_matches_go_service() {
        assert_eq!(reserved_labels().len(), 21);
        assert!(is_reserved("www"));
        assert!(is_reserved("console"));
        assert!(!is_reserved("marketplace"));
        assert!(!is_reserved("acme"));
    }
}
