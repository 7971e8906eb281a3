//! The OVH adapter against the fake OVH API over real HTTP on loopback.

use std::time::{Duration, Instant};

use pdm_adapters::fake::ovh::OvhFake;
use pdm_adapters::http::{HttpConfig, RateLimit, RetryPolicy};
use pdm_adapters::ovh::{ds_from_dnskey, Ovh, TaskPolling};
use pdm_adapters::{
    Change, Credentials, DnskeyData, DsData, Glue, NsSet, RegistrableDomain, Registrar,
    RegistrarError, RegistrarId, Secret,
};

const AK: &str = "appkey-7f3a";
const AS: &str = "APPSECRET-do-not-leak-91c2";
const CK: &str = "CONSUMERKEY-do-not-leak-4be8";

fn creds(app_secret: &str, consumer_key: &str) -> Credentials {
    Credentials::Ovh {
        application_key: AK.into(),
        application_secret: Secret::new(app_secret),
        consumer_key: Secret::new(consumer_key),
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    }
}

fn adapter_with(fake: &OvhFake, c: &Credentials, limits: Vec<RateLimit>) -> Ovh {
    let cfg = HttpConfig::new(RegistrarId::Ovh, fake.base_url())
        .with_limits(limits)
        .with_retry(fast_retry());
    Ovh::new(c, &cfg).unwrap().with_task_polling(TaskPolling {
        interval: Duration::from_millis(5),
        deadline: Duration::from_secs(3),
    })
}

async fn setup() -> (OvhFake, Ovh) {
    let fake = OvhFake::start(AK, AS, CK).await.unwrap();
    fake.add_domain("example.com", &["dns19.ovh.net", "ns19.ovh.net"]);
    fake.add_domain("example.org", &["dns1.ovh.net", "ns1.ovh.net"]);
    let ovh = adapter_with(&fake, &creds(AS, CK), vec![]);
    (fake, ovh)
}

fn dom(s: &str) -> RegistrableDomain {
    RegistrableDomain::parse(s).unwrap()
}

fn ns(hosts: &[&str]) -> NsSet {
    NsSet::new(hosts.iter().copied()).unwrap()
}

fn ksk() -> DnskeyData {
    DnskeyData {
        flags: 257,
        protocol: 3,
        algorithm: 13,
        public_key: "mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==".into(),
        key_tag: 2371,
    }
}

fn assert_no_secrets(text: &str) {
    assert!(
        !text.contains(AS) && !text.contains(CK),
        "secret leaked: {text}"
    );
}

#[tokio::test]
async fn validate_reports_rules_and_membership() {
    let (_fake, ovh) = setup().await;
    assert!(ovh.capabilities().set_ns && ovh.capabilities().set_ds && ovh.capabilities().glue);
    let v = ovh.validate(Some(&dom("example.com"))).await.unwrap();
    assert_eq!(v.domain_in_account, Some(true));
    assert!(
        v.scope.contains(&"POST /domain/*".to_string()),
        "{:?}",
        v.scope
    );
    assert!(v.account.is_some());
    assert!(matches!(
        ovh.validate(Some(&dom("not-mine.net"))).await,
        Err(RegistrarError::DomainNotInAccount { .. })
    ));
    assert_eq!(ovh.validate(None).await.unwrap().domain_in_account, None);
}

#[tokio::test]
async fn lists_domains_and_reads_ns() {
    let (_fake, ovh) = setup().await;
    assert_eq!(
        ovh.list_domains().await.unwrap(),
        vec!["example.com", "example.org"]
    );
    assert_eq!(
        ovh.get_ns(&dom("example.com")).await.unwrap(),
        ns(&["dns19.ovh.net", "ns19.ovh.net"])
    );
}

#[tokio::test]
async fn set_ns_switches_to_external_and_waits_for_the_task() {
    let (fake, ovh) = setup().await;
    fake.set_task_polls(3);
    assert_eq!(fake.ns_type("example.com").as_deref(), Some("hosted"));
    let want = ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]);
    assert_eq!(
        ovh.set_ns(&dom("example.com"), &want).await.unwrap(),
        Change::Applied
    );
    assert_eq!(fake.ns_type("example.com").as_deref(), Some("external"));
    // The task ran to done: old entries are gone, not just marked.
    assert_eq!(
        fake.ns("example.com"),
        vec![
            ("ns1.pdm.example.net".to_string(), false),
            ("ns2.pdm.example.net".to_string(), false)
        ]
    );
    assert_eq!(fake.tasks_pending(), 0);
    let polls: u64 = fake
        .common()
        .counters
        .all_requests()
        .iter()
        .filter(|(route, _)| route.starts_with("GET /1.0/domain/example.com/task/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(polls, 3, "todo → doing → doing → done takes 3 polls");
    // PUT nameServerType + POST nameServers/update.
    assert_eq!(fake.common().counters.writes("example.com"), 2);
    assert_eq!(ovh.get_ns(&dom("example.com")).await.unwrap(), want);
}

#[tokio::test]
async fn set_ns_skips_the_write_when_sets_match() {
    let (fake, ovh) = setup().await;
    let same = NsSet::new(["NS19.OVH.NET.", "dns19.ovh.net"]).unwrap();
    assert_eq!(
        ovh.set_ns(&dom("example.com"), &same).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(fake.common().counters.total_writes(), 0);
    assert_eq!(fake.tasks_created(), 0);
}

#[tokio::test]
async fn pending_removals_are_skipped_and_a_slow_task_hits_the_deadline() {
    let (fake, ovh) = setup().await;
    fake.set_task_polls(10_000);
    let ovh = ovh.with_task_polling(TaskPolling {
        interval: Duration::from_millis(20),
        deadline: Duration::from_millis(150),
    });
    let want = ns(&["a.ns.example.net", "b.ns.example.net"]);
    let err = ovh.set_ns(&dom("example.com"), &want).await.unwrap_err();
    assert!(
        matches!(&err, RegistrarError::Unavailable { detail, .. } if detail.contains("still")),
        "{err}"
    );
    // The registry view shows the old hosts as toDelete:true ...
    assert!(fake
        .ns("example.com")
        .contains(&("dns19.ovh.net".to_string(), true)));
    // ... which the adapter skips, so the read already shows the asked set and
    // asking again queues no second task.
    assert_eq!(ovh.get_ns(&dom("example.com")).await.unwrap(), want);
    assert_eq!(
        ovh.set_ns(&dom("example.com"), &want).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(fake.tasks_created(), 1);
}

#[tokio::test]
async fn a_failed_task_is_rejected_with_its_comment() {
    let (fake, ovh) = setup().await;
    fake.fail_next_task("Invalid DNS servers: ns1.broken.example does not answer");
    let err = ovh
        .set_ns(
            &dom("example.com"),
            &ns(&["ns1.broken.example", "ns2.broken.example"]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistrarError::Rejected { message, .. } if message.contains("does not answer")),
        "{err}"
    );
    // The failed task undid its change.
    assert_eq!(
        ovh.get_ns(&dom("example.com")).await.unwrap(),
        ns(&["dns19.ovh.net", "ns19.ovh.net"])
    );
}

#[tokio::test]
async fn ds_records_go_through_dnskey_material() {
    let (fake, ovh) = setup().await;
    let d = dom("example.com");
    assert!(ovh.get_ds(&d).await.unwrap().is_empty());
    let key = ksk();
    let ds = ds_from_dnskey("example.com", &key).unwrap();
    assert_eq!(
        ovh.set_ds(&d, std::slice::from_ref(&ds), std::slice::from_ref(&key))
            .await
            .unwrap(),
        Change::Applied
    );
    let keys = fake.keys("example.com");
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].flags, keys[0].algorithm, keys[0].tag),
        (257, 13, 2371)
    );
    assert_eq!(ovh.get_ds(&d).await.unwrap(), vec![ds.clone()]);
    // Uppercase digest, same record: nothing to do.
    let upper = DsData {
        digest: ds.digest.to_uppercase(),
        ..ds.clone()
    };
    let writes = fake.common().counters.writes("example.com");
    assert_eq!(
        ovh.set_ds(&d, &[upper], std::slice::from_ref(&key))
            .await
            .unwrap(),
        Change::Unchanged
    );
    assert_eq!(fake.common().counters.writes("example.com"), writes);
    // A DS without its DNSKEY cannot be sent to OVH.
    let other = DsData {
        key_tag: 1,
        ..ds.clone()
    };
    assert!(matches!(
        ovh.set_ds(&d, &[other], &[key]).await,
        Err(RegistrarError::InvalidInput(_))
    ));
    // Empty set: `{"keys":[]}` removes DNSSEC delegation.
    assert_eq!(ovh.set_ds(&d, &[], &[]).await.unwrap(), Change::Applied);
    assert!(fake.keys("example.com").is_empty());
    assert!(ovh.get_ds(&d).await.unwrap().is_empty());
}

#[tokio::test]
async fn glue_create_update_skip_delete() {
    let (fake, ovh) = setup().await;
    let d = dom("example.com");
    let host = "ns1.example.com";
    assert!(ovh.get_glue(&d, host).await.unwrap().addresses.is_empty());
    let g = Glue {
        host: host.into(),
        addresses: vec!["192.0.2.1".parse().unwrap()],
    };
    assert_eq!(ovh.set_glue(&d, &g).await.unwrap(), Change::Applied);
    assert_eq!(
        fake.glue("example.com", host),
        Some(vec!["192.0.2.1".to_string()])
    );
    assert_eq!(ovh.set_glue(&d, &g).await.unwrap(), Change::Unchanged);
    let g2 = Glue {
        host: "NS1.example.com.".into(),
        addresses: vec!["2001:db8::1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
    };
    assert_eq!(ovh.set_glue(&d, &g2).await.unwrap(), Change::Applied);
    let got = ovh.get_glue(&d, host).await.unwrap();
    assert_eq!(
        got.addresses,
        vec![
            "192.0.2.2".parse::<std::net::IpAddr>().unwrap(),
            "2001:db8::1".parse().unwrap()
        ]
    );
    assert_eq!(
        ovh.set_glue(
            &d,
            &Glue {
                host: host.into(),
                addresses: vec![]
            }
        )
        .await
        .unwrap(),
        Change::Applied
    );
    assert_eq!(fake.glue("example.com", host), None);
    let outside = Glue {
        host: "ns1.elsewhere.net".into(),
        addresses: vec!["192.0.2.1".parse().unwrap()],
    };
    assert!(matches!(
        ovh.set_glue(&d, &outside).await,
        Err(RegistrarError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn bad_credentials_are_invalid_credentials() {
    let (fake, _) = setup().await;
    let wrong_secret = adapter_with(&fake, &creds("WRONG-SECRET", CK), vec![]);
    let e = wrong_secret.list_domains().await.unwrap_err();
    assert!(
        matches!(e, RegistrarError::InvalidCredentials { .. }),
        "{e}"
    );
    let wrong_ck = adapter_with(&fake, &creds(AS, "WRONG-CK"), vec![]);
    let e = wrong_ck.validate(None).await.unwrap_err();
    assert!(
        matches!(e, RegistrarError::InvalidCredentials { .. }),
        "{e}"
    );
    fake.set_credential_status("pendingValidation");
    let ok = adapter_with(&fake, &creds(AS, CK), vec![]);
    assert!(matches!(
        ok.validate(None).await,
        Err(RegistrarError::InvalidCredentials { .. })
    ));
}

#[tokio::test]
async fn signatures_cover_the_full_public_url() {
    let (fake, ovh) = setup().await;
    // The fake now believes it is reached as eu.api.ovh.com: our signature over
    // the loopback URL no longer matches, exactly as behind a rewriting proxy.
    fake.set_public_origin("https://eu.api.ovh.com");
    assert!(matches!(
        ovh.list_domains().await,
        Err(RegistrarError::InvalidCredentials { .. })
    ));
}

#[tokio::test]
async fn rules_without_writes_are_not_granted() {
    let (fake, ovh) = setup().await;
    fake.set_rules(&[("GET", "/domain"), ("GET", "/domain/*")]);
    let v = ovh.validate(Some(&dom("example.com"))).await.unwrap();
    assert_eq!(
        v.scope,
        vec!["GET /domain".to_string(), "GET /domain/*".to_string()]
    );
    let e = ovh
        .set_ns(
            &dom("example.com"),
            &ns(&["ns1.x.example", "ns2.x.example"]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RegistrarError::AccountNotEligible { detail, .. } if detail.contains("not been granted")),
        "{e}"
    );
    assert_eq!(fake.common().counters.total_writes(), 0);
}

#[tokio::test]
async fn unknown_domain_is_not_in_account() {
    let (_fake, ovh) = setup().await;
    let e = ovh.get_ns(&dom("not-mine.net")).await.unwrap_err();
    assert!(
        matches!(&e, RegistrarError::DomainNotInAccount { domain, .. } if domain == "not-mine.net"),
        "{e}"
    );
    let e = ovh
        .set_glue(
            &dom("not-mine.net"),
            &Glue {
                host: "ns1.not-mine.net".into(),
                addresses: vec![],
            },
        )
        .await;
    assert!(matches!(e, Err(RegistrarError::DomainNotInAccount { .. })));
}

#[tokio::test]
async fn server_errors_retry_reads_but_never_writes() {
    let (fake, ovh) = setup().await;
    ovh.list_domains().await.unwrap(); // measures the clock skew first
                                       // One 500 on a read: retried, succeeds.
    fake.common().fail_next(1, 500);
    assert_eq!(ovh.list_domains().await.unwrap().len(), 2);
    // Persistent 5xx: Unavailable once the attempts run out.
    fake.common().fail_next(3, 503);
    assert!(matches!(
        ovh.list_domains().await,
        Err(RegistrarError::Unavailable { .. })
    ));
    // A 500 on nameServers/update (php-ovh#123) is not retried: a second POST
    // could queue a second task.
    fake.fail_next_write(500);
    let d = dom("example.org");
    let e = ovh
        .set_ns(&d, &ns(&["ns1.y.example", "ns2.y.example"]))
        .await
        .unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e}");
    // The PUT (nameServerType) took the injected 500; nothing after it was sent.
    assert_eq!(
        fake.common()
            .counters
            .requests("PUT /1.0/domain/example.org"),
        1
    );
    assert_eq!(
        fake.common()
            .counters
            .requests("POST /1.0/domain/example.org/nameServers/update"),
        0
    );
    // Now let the type switch through and fail the POST itself.
    fake.set_ns_type("example.org", "external");
    fake.fail_next_write(500);
    let e = ovh
        .set_ns(&d, &ns(&["ns1.y.example", "ns2.y.example"]))
        .await
        .unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e}");
    assert_eq!(
        fake.common()
            .counters
            .requests("POST /1.0/domain/example.org/nameServers/update"),
        1
    );
    assert_eq!(fake.tasks_created(), 0);
}

#[tokio::test]
async fn clock_skew_is_corrected_and_a_lying_clock_is_reported() {
    let (fake, ovh) = setup().await;
    // OVH's clock an hour ahead: /auth/time tells us, we correct, calls pass.
    fake.set_clock_offset(3600);
    assert_eq!(ovh.list_domains().await.unwrap().len(), 2);
    // Measured once, reused.
    ovh.list_domains().await.unwrap();
    assert_eq!(fake.common().counters.requests("GET /1.0/auth/time"), 1);

    let (fake, ovh) = setup().await;
    fake.set_time_lie(1000);
    let e = ovh.list_domains().await.unwrap_err();
    assert!(
        matches!(&e, RegistrarError::Unavailable { detail, .. } if detail.contains("clock skew")),
        "{e}"
    );
    // The skew was re-measured once (2 × /auth/time), then the error surfaced.
    assert_eq!(fake.common().counters.requests("GET /1.0/auth/time"), 2);
    fake.set_time_lie(0);
    assert_eq!(ovh.list_domains().await.unwrap().len(), 2);
}

#[tokio::test]
async fn retry_after_is_obeyed_and_long_waits_are_returned() {
    let (fake, ovh) = setup().await;
    ovh.list_domains().await.unwrap();
    fake.common().rate_limit_next(1, Duration::from_secs(1));
    let start = Instant::now();
    assert_eq!(ovh.list_domains().await.unwrap().len(), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    fake.common().rate_limit_next(1, Duration::from_secs(120));
    let e = ovh.list_domains().await.unwrap_err();
    assert_eq!(
        e,
        RegistrarError::RateLimited {
            registrar: RegistrarId::Ovh,
            retry_after: Some(Duration::from_secs(120))
        }
    );
}

#[tokio::test]
async fn client_side_limit_stays_within_the_budget() {
    let fake = OvhFake::start(AK, AS, CK).await.unwrap();
    fake.add_domain("example.com", &["dns19.ovh.net", "ns19.ovh.net"]);
    fake.common().set_budget(5, Duration::from_millis(500));
    // The client keeps a margin under the server's budget: its windows start
    // when it sends, the server's when a request arrives.
    let ovh = adapter_with(
        &fake,
        &creds(AS, CK),
        vec![RateLimit::new(4, Duration::from_millis(500)).with_burst(2)],
    );
    let start = Instant::now();
    for _ in 0..4 {
        // 3 requests each (nameServer + 2 ids), plus /auth/time once.
        ovh.get_ns(&dom("example.com")).await.unwrap();
    }
    assert_eq!(fake.common().rate_limited(), 0);
    assert!(fake.common().peak_in_window() <= 5);
    assert!(fake.common().counters.total_requests() >= 13);
    // 13 requests at 4 per 500 ms (burst 2) cannot take less than ~1.3 s.
    assert!(
        start.elapsed() >= Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn secrets_never_show() {
    let (fake, ovh) = setup().await;
    assert_no_secrets(&format!("{ovh:?}"));
    assert_no_secrets(&format!("{:?}", creds(AS, CK)));
    let mut errors = vec![];
    errors.push(
        adapter_with(&fake, &creds("WRONG", CK), vec![])
            .list_domains()
            .await
            .unwrap_err(),
    );
    fake.common().fail_next(5, 500);
    errors.push(ovh.list_domains().await.unwrap_err());
    fake.common().fail_next(0, 500);
    errors.push(ovh.get_ns(&dom("not-mine.net")).await.unwrap_err());
    fake.set_rules(&[]);
    errors.push(ovh.list_domains().await.unwrap_err());
    // Unreachable endpoint: transport error text.
    let cfg =
        HttpConfig::new(RegistrarId::Ovh, "http://127.0.0.1:9/1.0").with_retry(RetryPolicy::none());
    errors.push(
        Ovh::new(&creds(AS, CK), &cfg)
            .unwrap()
            .list_domains()
            .await
            .unwrap_err(),
    );
    for e in errors {
        assert_no_secrets(&e.to_string());
        assert_no_secrets(&format!("{e:?}"));
    }
}

/// Raw requests: the fake refuses what OVH refuses (so the tests above prove something).
mod fake_enforces {
    use super::*;
    use pdm_adapters::ovh::signature;

    async fn server_time(fake: &OvhFake) -> i64 {
        let body = reqwest::get(format!("{}/auth/time", fake.base_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // A bare integer, not a JSON string or object.
        body.parse().unwrap()
    }

    async fn send(
        fake: &OvhFake,
        method: reqwest::Method,
        path: &str,
        signed_body: &str,
        sent_body: &str,
        ts: i64,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", fake.base_url());
        let sig = signature(AS, CK, method.as_str(), &url, signed_body.as_bytes(), ts);
        let mut rb = reqwest::Client::new()
            .request(method, &url)
            .header("X-Ovh-Application", AK)
            .header("X-Ovh-Consumer", CK)
            .header("X-Ovh-Timestamp", ts.to_string())
            .header("X-Ovh-Signature", sig);
        if !sent_body.is_empty() {
            rb = rb
                .header("Content-Type", "application/json")
                .body(sent_body.to_string());
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn unsigned_tampered_and_stale_requests_are_refused() {
        let (fake, _) = setup().await;
        let ts = server_time(&fake).await;
        let r = reqwest::get(format!("{}/domain", fake.base_url()))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["errorCode"],
            "MISSING_HEADER"
        );
        let (st, _) = send(&fake, reqwest::Method::GET, "/domain", "", "", ts).await;
        assert_eq!(st, 200);
        // Body changed after signing (php-ovh#80): INVALID_SIGNATURE.
        fake.set_ns_type("example.com", "external");
        let path = "/domain/example.com/nameServers/update";
        let signed = r#"{"nameServers":[{"host":"ns1.a.example"},{"host":"ns2.a.example"}]}"#;
        let sent = r#"{"nameServers": [{"host":"ns1.a.example"},{"host":"ns2.a.example"}]}"#;
        let (st, v) = send(&fake, reqwest::Method::POST, path, signed, sent, ts).await;
        assert_eq!(
            (st, v["errorCode"].as_str()),
            (400, Some("INVALID_SIGNATURE"))
        );
        // Outside the ±180 s window.
        let (st, v) = send(&fake, reqwest::Method::GET, "/domain", "", "", ts - 200).await;
        assert_eq!(
            (st, v["message"].as_str()),
            (400, Some("Query out of time"))
        );
        assert_eq!(fake.common().counters.total_writes(), 0);
    }

    #[tokio::test]
    async fn hosted_mode_and_wrong_field_names_are_refused() {
        let (fake, _) = setup().await;
        let ts = server_time(&fake).await;
        let body = r#"{"nameServers":[{"host":"ns1.a.example"},{"host":"ns2.a.example"}]}"#;
        let path = "/domain/example.com/nameServers/update";
        let (st, _) = send(&fake, reqwest::Method::POST, path, body, body, ts).await;
        assert_eq!(st, 403, "hosted domains take no custom NS");
        // terraform's lower-case `publickey` is not the schema's `publicKey`.
        let body = r#"{"keys":[{"algorithm":13,"flags":257,"publickey":"AAAA","tag":1}]}"#;
        let (st, _) = send(
            &fake,
            reqwest::Method::POST,
            "/domain/example.com/dsRecord",
            body,
            body,
            ts,
        )
        .await;
        assert_eq!(st, 400);
        // One NS is not a delegation.
        fake.set_ns_type("example.com", "external");
        let body = r#"{"nameServers":[{"host":"ns1.a.example"}]}"#;
        let (st, _) = send(&fake, reqwest::Method::POST, path, body, body, ts).await;
        assert_eq!(st, 400);
        assert_eq!(fake.tasks_created(), 0);
    }
}

/// A failed task's comment is OVH's reason: it reaches the error's Display and
/// `upstream_message`, with any credential OVH might echo scrubbed out.
#[tokio::test]
async fn a_failed_task_keeps_ovhs_reason_without_credentials() {
    let (fake, ovh) = setup().await;
    fake.fail_next_task(&format!(
        "DomainDnsUpdate failed: ns1.broken.example is not reachable (consumer {CK})"
    ));
    let err = ovh
        .set_ns(
            &dom("example.com"),
            &ns(&["ns1.broken.example", "ns2.broken.example"]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "registrar-rejected");
    assert!(
        err.to_string()
            .contains("DomainDnsUpdate failed: ns1.broken.example is not reachable"),
        "{err}"
    );
    assert!(err
        .upstream_message()
        .is_some_and(|m| m.contains("is not reachable") && m.contains("<redacted>")));
    assert_no_secrets(&err.to_string());
    assert_no_secrets(&format!("{err:?}"));
}
