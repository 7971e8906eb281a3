//! pdm: an authoritative DNS server and pool-domain control plane.
//!
//! Data flows one way: `api` → `pool` → `store` (rows + journal) →
//! `snapshot` → the zone table served by `server`. The data plane imports
//! one way too: `lua` ← `zone` ← `dnssec` ← `server` (see the test below).

pub mod api;
pub mod backend;
pub mod config;
pub mod delegation;
pub mod dnssec;
pub mod keyring;
pub mod lua;
pub mod model;
pub mod operations;
pub mod pool;
pub mod secret;
pub mod serve;
pub mod server;
pub mod snapshot;
pub mod store;
pub mod zone;

/// The data plane's import direction (`lua` ← `zone` ← `dnssec` ←
/// `server`), checked on the source text so a stray `use` fails here rather
/// than in review.
#[cfg(test)]
mod data_plane_layering {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The rooms each data-plane room may import (besides itself).
    const ALLOWED: [(&str, &[&str]); 4] = [
        ("lua", &[]),
        ("zone", &["lua"]),
        ("dnssec", &["zone", "lua"]),
        ("server", &["dnssec", "zone", "lua"]),
    ];

    /// Top-level rooms named after `crate::` in code (comments skipped),
    /// including `use crate::{a, b::c}` groups.
    fn imported_rooms(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                    None => vec![rest],
                };
                for n in names {
                    let room: String = n
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !room.is_empty() {
                        out.insert(room);
                    }
                }
            }
        }
        out
    }

    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_scanner_sees_plain_and_grouped_imports() {
        let rooms = imported_rooms(
            "use crate::zone::Zone;\nuse crate::{store::X, dnssec};\n// crate::api in a comment\nlet s = crate::secret::open();",
        );
        let want: BTreeSet<String> = ["zone", "store", "dnssec", "secret"]
            .map(String::from)
            .into();
        assert_eq!(rooms, want);
    }

    #[test]
    fn data_plane_imports_point_one_way() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (room, allowed) in ALLOWED {
            let mut paths = Vec::new();
            files(&src.join(room), &mut paths);
            assert!(!paths.is_empty(), "no sources under src/{room}");
            for path in paths {
                let text = std::fs::read_to_string(&path).unwrap();
                for imported in imported_rooms(&text) {
                    if imported != room && !allowed.contains(&imported.as_str()) {
                        wrong.push(format!("{} imports crate::{imported}", path.display()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "upward or sideways imports:\n{}",
            wrong.join("\n")
        );
    }
}
