//! `[api]` abuse limits on the real binary: per-source and per-token rates
//! answer 429 with `Retry-After` and the house error body, on every
//! endpoint including the public `check` (name enumeration); the limited
//! caller recovers after the wait, and other callers are not affected.

#[macro_use]
mod common;
use common::*;
use std::time::Duration;

/// `n` GETs of `path` (with `token`): (status, Retry-After, body) each.
fn burst(
    srv: &PdmServer,
    path: &str,
    token: Option<&str>,
    n: usize,
) -> Vec<(u16, Option<u64>, Value)> {
    let client = reqwest::blocking::Client::new();
    (0..n)
        .map(|_| {
            let mut rb = client.get(format!("{}{}", srv.http_base(), path));
            if let Some(t) = token {
                rb = rb.header("Authorization", format!("Bearer {t}"));
            }
            let r = rb.send().expect("request");
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            (status, retry, r.json().unwrap_or(Value::Null))
        })
        .collect()
}

/// Every 429 carries `Retry-After` (whole seconds, at least 1) and the house body.
fn assert_limited_answers(answers: &[(u16, Option<u64>, Value)]) -> usize {
    let limited: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    for (_, retry, body) in &limited {
        let secs = retry.expect("429 without Retry-After");
        assert!((1..=2).contains(&secs), "Retry-After {secs}");
        assert_eq!(body["error"], "rate-limited", "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
    limited.len()
}

#[test]
fn public_check_is_limited_per_source() {
    let cfg = Config::default_test()
        .extra("[api]\nrate_per_source = 5\nburst_per_source = 5\nexempt_sources = []");
    let srv = PdmServer::start(Backend::Sqlite, cfg).expect("sqlite");
    std::thread::sleep(Duration::from_millis(1200)); // the readiness polls' bucket refills
    let answers = burst(&srv, "/api/v1/pool/example.test/check?sub=enum1", None, 40);
    let limited = assert_limited_answers(&answers);
    let served = answers.len() - limited;
    // The burst, plus at most what refills while the loop runs (5/s).
    assert!((5..=10).contains(&served), "{served} served of 40");
    assert!(limited >= 30, "{limited} limited");
    // Another endpoint from the same source shares the source's budget.
    let (st, _) = srv.get("/api/v1/reserved", None);
    assert_eq!(st, 429);
    // After the wait the source is served again.
    std::thread::sleep(Duration::from_millis(1200));
    let (st, body) = srv.check("example.test", "enum2");
    assert_eq!(st, 200, "{body}");
}

#[test]
fn tokens_are_limited_apart_from_each_other() {
    let cfg = Config::default_test().extra(
        "[api]\nrate_per_source = 0\nrate_per_token = 5\nburst_per_token = 5\nexempt_sources = []",
    );
    let srv = PdmServer::start(Backend::Sqlite, cfg).expect("sqlite");
    let (a, b) = (srv.admin_token(), srv.token_with_scope("pool:*"));
    let answers = burst(&srv, "/api/v1/pool/example.test/list", Some(&a), 30);
    let limited = assert_limited_answers(&answers);
    assert!(limited >= 20, "{limited} limited of 30");
    assert!(answers.iter().take(5).all(|(s, _, _)| *s == 200));
    // Token b has its own budget; unknown tokens are counted too (401 first).
    let other = burst(&srv, "/api/v1/pool/example.test/list", Some(&b), 5);
    assert!(other.iter().all(|(s, _, _)| *s == 200), "{other:?}");
    let unknown = burst(&srv, "/api/v1/pool/example.test/list", Some("nope"), 10);
    assert_eq!(unknown.iter().filter(|(s, _, _)| *s == 401).count(), 5);
    assert_eq!(assert_limited_answers(&unknown), 5);
}

#[test]
fn loopback_is_exempt_by_default() {
    let srv = PdmServer::start(Backend::Sqlite, Config::default_test()).expect("sqlite");
    let answers = burst(&srv, "/api/v1/pool/example.test/check?sub=x", None, 300);
    assert_eq!(assert_limited_answers(&answers), 0);
}
