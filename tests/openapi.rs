//! The OpenAPI document served at `/api/v1/openapi.json` is OpenAPI 3.1,
//! names every route `src/api/mod.rs` registers (method and path) and no
//! route that does not exist, and passes `openapi-spec-validator` (PyPI,
//! installed by scripts/test).

#[macro_use]
mod common;
use common::*;
use std::collections::BTreeSet;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `(METHOD, path)` the router registers: each `.route("PATH", ...)`
/// call in src/api/mod.rs with the method routers (`get(`, `post(`,
/// `.put(`, ...) inside its parentheses.
fn routes_in_router() -> BTreeSet<(String, String)> {
    let code = std::fs::read_to_string(format!("{ROOT}/src/api/mod.rs")).expect("src/api/mod.rs");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1usize;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("balanced .route(...)");
        let call = &rest[..end];
        let path = call
            .split('"')
            .nth(1)
            .expect("a route starts with its path literal")
            .to_string();
        for method in ["get", "post", "put", "delete", "patch"] {
            let used = call.match_indices(&format!("{method}(")).any(|(j, _)| {
                j == 0
                    || call[..j]
                        .chars()
                        .next_back()
                        .is_some_and(|c| !c.is_alphanumeric() && c != '_')
            });
            if used {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
        rest = &rest[end..];
    }
    out
}

#[test]
fn the_route_scan_sees_every_method() {
    let routes = routes_in_router();
    for want in [
        ("GET", "/api/v1/domains"),
        ("POST", "/api/v1/domains"),
        ("PUT", "/api/v1/pool/{domain}/allocations/{sub}"),
        ("DELETE", "/api/v1/pool/{domain}/allocations/{sub}"),
        ("GET", "/livez"),
        ("GET", "/api/v1/openapi.json"),
    ] {
        assert!(
            routes.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not found in {routes:?}"
        );
    }
    assert!(routes.len() >= 30, "{routes:?}");
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_the_document_validates() {
    let srv = match PdmServer::start(Backend::Sqlite, Config::default_test()) {
        Some(s) => s,
        None => return,
    };
    let r = srv.request("GET", "/api/v1/openapi.json", None, Body::None, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0", "{doc}");
    let routes = routes_in_router();
    let docs = documented(&doc);
    let missing: Vec<_> = routes.difference(&docs).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /api/v1/openapi.json (add #[utoipa::path] and list the handler in src/api/openapi.rs): {missing:?}"
    );
    let phantom: Vec<_> = docs.difference(&routes).collect();
    assert!(
        phantom.is_empty(),
        "documented routes the router does not have: {phantom:?}"
    );
    // Writes say how they authenticate; the public probes do not.
    let put = &doc["paths"]["/api/v1/pool/{domain}/allocations/{sub}"]["put"];
    assert_eq!(put["security"][0]["bearer"], json!([]), "{put}");
    assert!(put["responses"]["201"].is_object(), "{put}");
    assert!(doc["paths"]["/livez"]["get"]["security"].is_null());
    assert!(
        doc["components"]["schemas"]["ErrorBody"]["properties"]["error"].is_object(),
        "{doc}"
    );

    let file = srv.dir.path().join("openapi.json");
    std::fs::write(&file, &r.text).expect("write the document");
    let probe = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        assert!(
            std::env::var_os("CI").is_none(),
            "openapi-spec-validator missing but CI is set (scripts/test pip-installs it)"
        );
        eprintln!("SKIP: openapi-spec-validator not installed");
        return;
    }
    let out = Command::new("python3")
        .arg("-m")
        .arg("openapi_spec_validator")
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator is not a rubber stamp: a broken copy fails it.
    let mut broken = doc.clone();
    broken["paths"]["/livez"]["get"]["responses"] = json!("nope");
    std::fs::write(&file, broken.to_string()).expect("write");
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(!out.status.success(), "a broken document must fail");
}
