//! Keeps docs/architecture.md true: every room (top-level module of
//! `src/`, or of `dns/src/` for the data plane) imports only the rooms its
//! row in the "Who may import whom" table allows, the data-plane rooms live
//! in the crate `pdm-dns` and touch no IO crate of the control plane (nor
//! does that crate depend on one), every room has a row, and nothing in the
//! repo points at files outside it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Rooms of the data plane: pure logic and sockets, no store, no HTTP.
/// They are the modules of the crate `pdm-dns` (`dns/src/`).
const DATA_PLANE: &[&str] = &["lua", "image", "zone", "dnssec", "server"];
/// Crates only the control plane may use.
/// (`reqwest` is allowed: LUA health checks probe URLs, as PowerDNS does.)
const CONTROL_CRATES: &[&str] = &["sqlx", "axum", "pdm_adapters", "tower_http"];
/// The source roots scanned for rooms: the control plane's crate, then the
/// data plane's.
const SOURCE_ROOTS: &[&str] = &["src", "dns/src"];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The room a file of a source root belongs to (`dns/src/zone/tree.rs` →
/// `zone`, `src/serve.rs` → `serve`); `None` for the crate roots.
fn room_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let room = first.trim_end_matches(".rs");
    (room != "lib" && room != "main").then(|| room.to_string())
}

/// Source text without comments (so prose mentioning `crate::x` is not an import).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every room named after `crate::` or `pdm_dns::` in `code`, including
/// each top-level path of a `use crate::{a::x, b::{y, z}}` group. The
/// control plane may reach the data plane either way (`pdm` re-exports it).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = prefix_refs(code, "crate::");
    out.extend(prefix_refs(code, "pdm_dns::"));
    out
}

/// The rooms named after `prefix` (a crate root followed by `::`) in `code`.
fn prefix_refs(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(pos) = code[i..].find(prefix) {
        let begin = i + pos;
        let start = begin + prefix.len();
        i = start;
        // `$crate::` in macros is another crate's root; `my_crate::` is not ours.
        if begin > 0 && (bytes[begin - 1] == b'$' || is_ident(bytes[begin - 1])) {
            continue;
        }
        if bytes.get(start) == Some(&b'{') {
            let mut depth = 0usize;
            let mut word = String::new();
            let mut expecting = true;
            for &c in &bytes[start..] {
                let c = c as char;
                match c {
                    '{' => {
                        depth += 1;
                        expecting = depth == 1;
                        word.clear();
                    }
                    '}' => {
                        if depth == 1 && expecting && !word.is_empty() {
                            out.insert(word.clone());
                        }
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        if expecting && !word.is_empty() {
                            out.insert(word.clone());
                        }
                        word.clear();
                        expecting = true;
                    }
                    ':' if depth == 1 && expecting => {
                        if !word.is_empty() {
                            out.insert(word.clone());
                        }
                        expecting = false;
                    }
                    c if depth == 1 && expecting && (c.is_alphanumeric() || c == '_') => {
                        word.push(c)
                    }
                    _ => {}
                }
            }
        } else {
            let word: String = code[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                out.insert(word);
            }
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The table under "## Who may import whom": room → rooms it may import.
fn allowed_table() -> BTreeMap<String, BTreeSet<String>> {
    let doc = fs::read_to_string(Path::new(ROOT).join("docs/architecture.md"))
        .expect("docs/architecture.md");
    let section = doc
        .split("## Who may import whom")
        .nth(1)
        .expect("docs/architecture.md has a \"## Who may import whom\" section");
    let mut table = BTreeMap::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 3 || cells[1].starts_with("---") || cells[1] == "room" {
            continue;
        }
        let room = cells[1].trim_matches('`').to_string();
        let may: BTreeSet<String> = cells[2]
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty() && s != "—" && s != "-" && s != "nothing")
            .collect();
        table.insert(room, may);
    }
    assert!(!table.is_empty(), "the import table is empty");
    table
}

#[test]
fn imports_follow_the_table() {
    let table = allowed_table();
    let mut files = Vec::new();
    for root in SOURCE_ROOTS {
        let src = Path::new(ROOT).join(root);
        let mut found = Vec::new();
        rs_files(&src, &mut found);
        files.extend(found.into_iter().map(|f| (src.clone(), f)));
    }
    let mut rooms = BTreeSet::new();
    let mut bad = Vec::new();
    for (src, f) in &files {
        let Some(room) = room_of(src, f) else {
            continue;
        };
        rooms.insert(room.clone());
        let in_dns_crate = src.ends_with("dns/src");
        if in_dns_crate != DATA_PLANE.contains(&room.as_str()) {
            bad.push(format!(
                "{}: room {room} belongs in {}",
                f.strip_prefix(ROOT).unwrap().display(),
                if in_dns_crate {
                    "src/"
                } else {
                    "dns/src/ (crate pdm-dns)"
                }
            ));
        }
        let code = code_only(&fs::read_to_string(f).unwrap());
        let Some(may) = table.get(&room) else {
            continue;
        };
        for target in crate_refs(&code) {
            if target != room && !may.contains(&target) && table.contains_key(&target) {
                bad.push(format!(
                    "{}: {room} imports {target}",
                    f.strip_prefix(ROOT).unwrap().display()
                ));
            }
        }
        if DATA_PLANE.contains(&room.as_str()) {
            for c in CONTROL_CRATES {
                if code.contains(&format!("{c}::")) {
                    bad.push(format!(
                        "{}: data-plane room {room} uses {c}",
                        f.strip_prefix(ROOT).unwrap().display()
                    ));
                }
            }
        }
    }
    let missing: Vec<&String> = rooms.iter().filter(|r| !table.contains_key(*r)).collect();
    assert!(
        missing.is_empty(),
        "rooms without a row in docs/architecture.md's import table: {missing:?}"
    );
    let stale: Vec<&String> = table.keys().filter(|r| !rooms.contains(*r)).collect();
    assert!(
        stale.is_empty(),
        "rows in docs/architecture.md's import table for rooms that do not exist: {stale:?}"
    );
    assert!(
        bad.is_empty(),
        "imports the table does not allow:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_parser_sees_grouped_and_plain_imports() {
    let code = "use crate::{zone::Zone, dnssec::{a, b}, lua};\nlet x = crate::store::now();\nmacro! { $crate::common::x }\nuse pdm_dns::server::Handler;\nuse other_crate::api;";
    let got = crate_refs(code);
    let want: BTreeSet<String> = ["zone", "dnssec", "lua", "store", "server"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
    assert!(crate_refs(&code_only("// see crate::api for why")).is_empty());
}

/// Every package the manifest depends on, in any dependency table
/// (normal, dev, build, per target), by its package name (a `package =`
/// rename does not hide it).
fn manifest_deps(manifest: &toml::Table) -> BTreeSet<String> {
    const TABLES: &[&str] = &["dependencies", "dev-dependencies", "build-dependencies"];
    let mut sections: Vec<&toml::Table> = TABLES
        .iter()
        .filter_map(|t| manifest.get(*t)?.as_table())
        .collect();
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for target in targets.values().filter_map(|t| t.as_table()) {
            sections.extend(TABLES.iter().filter_map(|t| target.get(*t)?.as_table()));
        }
    }
    let mut out = BTreeSet::new();
    for section in sections {
        for (name, spec) in section {
            let package = spec.get("package").and_then(|p| p.as_str()).unwrap_or(name);
            out.insert(package.to_string());
        }
    }
    out
}

#[test]
fn the_data_plane_crate_depends_on_no_control_plane_crate() {
    let text = fs::read_to_string(Path::new(ROOT).join("dns/Cargo.toml")).expect("dns/Cargo.toml");
    let manifest: toml::Table = text.parse().expect("dns/Cargo.toml parses");
    let name = manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str());
    assert_eq!(name, Some("pdm-dns"));
    let deps = manifest_deps(&manifest);
    // Sanity: the scan sees the manifest's real dependencies.
    assert!(deps.contains("hickory-proto"), "{deps:?}");
    let forbidden: Vec<&str> = ["sqlx", "axum", "tower-http", "pdm-adapters", "pdm"]
        .into_iter()
        .filter(|c| deps.contains(*c))
        .collect();
    assert!(
        forbidden.is_empty(),
        "dns/Cargo.toml (the data plane) depends on control-plane crates: {forbidden:?}"
    );
}

#[test]
fn the_dependency_scan_sees_renames_and_target_tables() {
    let manifest: toml::Table = r#"
        [dependencies]
        db = { package = "sqlx", version = "0.8" }
        [target.'cfg(unix)'.dev-dependencies]
        axum = "0.8"
    "#
    .parse()
    .unwrap();
    let deps = manifest_deps(&manifest);
    assert!(deps.contains("sqlx") && deps.contains("axum"), "{deps:?}");
}

/// Text files of the repo (tracked sources and docs), outside `target/`.
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if p.is_dir() {
            text_files(&p, out);
        } else if ["rs", "md", "toml", "sh", "sql", "yaml", "yml", "json"]
            .iter()
            .any(|x| p.extension().is_some_and(|e| e == *x))
        {
            out.push(p);
        }
    }
}

#[test]
fn nothing_points_outside_the_repo() {
    let root = Path::new(ROOT);
    let mut files = Vec::new();
    text_files(root, &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        let shown = f.strip_prefix(root).unwrap().display().to_string();
        // Migrations are applied history: sqlx checksums them, so their
        // comments stay as first written.
        if shown == "tests/architecture.rs" || shown.starts_with("migrations/") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            for needle in ["DESIGN.md", "shared/reference", "reference/", "../shared"] {
                if line.contains(needle) {
                    bad.push(format!("{shown}:{}: mentions {needle}", n + 1));
                }
            }
            // Markdown links to local files must resolve inside the repo.
            let mut rest = line;
            while let Some(i) = rest.find("](") {
                let after = &rest[i + 2..];
                let Some(end) = after.find(')') else {
                    break;
                };
                let target = after[..end].split('#').next().unwrap_or_default();
                rest = &after[end..];
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let base = f.parent().unwrap_or(root);
                let resolved = base.join(target);
                let inside = resolved
                    .canonicalize()
                    .map(|p| p.starts_with(root.canonicalize().unwrap()))
                    .unwrap_or(false);
                if !inside {
                    bad.push(format!(
                        "{shown}:{}: link to {target} outside the repo",
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
