//! The Dynadot adapter (REST) against the fake Dynadot API over real HTTP on loopback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pdm_adapters::dynadot::Dynadot;
use pdm_adapters::fake::dynadot::{Ds, DynadotFake};
use pdm_adapters::http::{HttpConfig, RateLimit, RetryPolicy};
use pdm_adapters::{
    Change, Credentials, DnskeyData, DsData, Glue, NsSet, RegistrableDomain, Registrar,
    RegistrarError, RegistrarId, Secret,
};

const KEY: &str = "APIKEY-do-not-leak-5d1e";
const SECRET: &str = "APISECRET-do-not-leak-c07b";

fn creds(key: &str, secret: Option<&str>) -> Credentials {
    Credentials::Dynadot {
        api_key: Secret::new(key),
        api_secret: secret.map(Secret::new),
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

fn adapter_with(
    fake: &DynadotFake,
    c: &Credentials,
    limits: Vec<RateLimit>,
    retry: RetryPolicy,
) -> Dynadot {
    let cfg = HttpConfig::new(RegistrarId::Dynadot, fake.base_url())
        .with_limits(limits)
        .with_retry(retry);
    Dynadot::new(c, &cfg).unwrap()
}

async fn setup() -> (DynadotFake, Dynadot) {
    let fake = DynadotFake::start(KEY, SECRET).await.unwrap();
    fake.add_domain("example.com", &["ns1.dyna-ns.net", "ns2.dyna-ns.net"]);
    fake.add_domain("example.co.uk", &["ns1.dyna-ns.net", "ns2.dyna-ns.net"]);
    let d = adapter_with(&fake, &creds(KEY, Some(SECRET)), vec![], fast_retry());
    (fake, d)
}

fn dom(s: &str) -> RegistrableDomain {
    RegistrableDomain::parse(s).unwrap()
}

fn ns(hosts: &[&str]) -> NsSet {
    NsSet::new(hosts.iter().copied()).unwrap()
}

fn ds() -> DsData {
    DsData {
        key_tag: 2371,
        algorithm: 13,
        digest_type: 2,
        digest: "1F987CC6583E92DF0890718C42C32B9A4B8D1F8A2D3D1E6B3B8A2C1E0F9D8C7B".into(),
    }
}

fn assert_no_secrets(text: &str) {
    assert!(
        !text.contains(KEY) && !text.contains(SECRET),
        "secret leaked: {text}"
    );
}

#[tokio::test]
async fn validate_reports_account_and_membership() {
    let (_fake, d) = setup().await;
    let caps = d.capabilities();
    assert!(
        caps.validate
            && caps.list
            && caps.set_ns
            && caps.set_ds
            && caps.glue
            && !caps.delegate_subdomain
    );
    let v = d.validate(Some(&dom("example.co.uk"))).await.unwrap();
    assert_eq!(v.account.as_deref(), Some("fake-user"));
    assert_eq!(v.domain_in_account, Some(true));
    assert!(matches!(
        d.validate(Some(&dom("not-mine.net"))).await,
        Err(RegistrarError::DomainNotInAccount { .. })
    ));
}

#[tokio::test]
async fn lists_every_page() {
    let (fake, d) = setup().await;
    for i in 0..230 {
        fake.add_domain(
            &format!("d{i:03}.com"),
            &["ns1.dyna-ns.net", "ns2.dyna-ns.net"],
        );
    }
    let all = d.list_domains().await.unwrap();
    assert_eq!(all.len(), 232);
    assert!(all.contains(&"example.co.uk".to_string()) && all.contains(&"d229.com".to_string()));
    // 232 domains at 100 per page: 3 pages.
    assert_eq!(
        fake.common().counters.requests("GET /restful/v2/domains"),
        3
    );
}

#[tokio::test]
async fn set_ns_reads_first_and_writes_once() {
    let (fake, d) = setup().await;
    let x = dom("example.com");
    assert_eq!(
        d.get_ns(&x).await.unwrap(),
        ns(&["ns1.dyna-ns.net", "ns2.dyna-ns.net"])
    );
    // Same set, different spelling: no write.
    let same = NsSet::new(["NS2.dyna-ns.net.", "ns1.DYNA-NS.net"]).unwrap();
    assert_eq!(d.set_ns(&x, &same).await.unwrap(), Change::Unchanged);
    assert_eq!(fake.common().counters.total_writes(), 0);
    let want = ns(&[
        "ns2.pdm.example.net",
        "ns1.pdm.example.net",
        "ns3.pdm.example.net",
    ]);
    assert_eq!(d.set_ns(&x, &want).await.unwrap(), Change::Applied);
    assert_eq!(fake.ns("example.com"), want.hosts());
    assert_eq!(fake.common().counters.writes("example.com"), 1);
    assert_eq!(d.get_ns(&x).await.unwrap(), want);
    let too_many: Vec<String> = (0..14).map(|i| format!("ns{i}.pdm.example.net")).collect();
    let e = d
        .set_ns(&x, &NsSet::new(&too_many).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistrarError::InvalidInput(_)));
}

#[tokio::test]
async fn ds_set_read_skip_and_clear() {
    let (fake, d) = setup().await;
    let x = dom("example.com");
    assert!(d.get_ds(&x).await.unwrap().is_empty());
    let key = DnskeyData {
        flags: 257,
        protocol: 3,
        algorithm: 13,
        public_key: "AAAA".into(),
        key_tag: 2371,
    };
    assert_eq!(
        d.set_ds(&x, &[ds()], &[key]).await.unwrap(),
        Change::Applied
    );
    assert_eq!(
        fake.ds("example.com"),
        Some(Ds {
            key_tag: 2371,
            algorithm: 13,
            digest_type: 2,
            digest: ds().digest.to_ascii_lowercase()
        })
    );
    // The fake shows display strings ("ecdsa_p256_sha256 (13)", uppercase digest): normalised back.
    assert_eq!(d.get_ds(&x).await.unwrap(), vec![ds().normalised()]);
    assert_eq!(d.set_ds(&x, &[ds()], &[]).await.unwrap(), Change::Unchanged);
    assert_eq!(fake.common().counters.writes("example.com"), 1);
    let two = [ds(), DsData { key_tag: 1, ..ds() }];
    assert!(matches!(
        d.set_ds(&x, &two, &[]).await,
        Err(RegistrarError::Unsupported { .. })
    ));
    let bad_alg = DsData {
        algorithm: 99,
        ..ds()
    };
    assert!(matches!(
        d.set_ds(&x, &[bad_alg], &[]).await,
        Err(RegistrarError::InvalidInput(_))
    ));
    assert_eq!(d.set_ds(&x, &[], &[]).await.unwrap(), Change::Applied);
    assert_eq!(fake.ds("example.com"), None);
    assert_eq!(d.set_ds(&x, &[], &[]).await.unwrap(), Change::Unchanged);
}

#[tokio::test]
async fn glue_register_update_skip_delete() {
    let (fake, d) = setup().await;
    let x = dom("example.com");
    let host = "ns1.example.com";
    assert!(d.get_glue(&x, host).await.unwrap().addresses.is_empty());
    let one = Glue {
        host: host.into(),
        addresses: vec!["192.0.2.10".parse().unwrap()],
    };
    assert_eq!(d.set_glue(&x, &one).await.unwrap(), Change::Applied);
    assert_eq!(fake.host_ips(host), Some(vec!["192.0.2.10".to_string()]));
    assert_eq!(d.set_glue(&x, &one).await.unwrap(), Change::Unchanged);
    let two = Glue {
        host: host.into(),
        addresses: vec![
            "2001:db8::53".parse().unwrap(),
            "192.0.2.11".parse().unwrap(),
        ],
    };
    assert_eq!(d.set_glue(&x, &two).await.unwrap(), Change::Applied);
    assert_eq!(d.get_glue(&x, host).await.unwrap().addresses.len(), 2);
    // A new host with two addresses: register, then set_ip.
    let fresh = Glue {
        host: "ns2.example.com".into(),
        addresses: two.addresses.clone(),
    };
    assert_eq!(d.set_glue(&x, &fresh).await.unwrap(), Change::Applied);
    assert_eq!(fake.host_ips("ns2.example.com").map(|v| v.len()), Some(2));
    assert_eq!(
        d.set_glue(
            &x,
            &Glue {
                host: host.into(),
                addresses: vec![]
            }
        )
        .await
        .unwrap(),
        Change::Applied
    );
    assert_eq!(fake.host_ips(host), None);
    let outside = Glue {
        host: "ns1.elsewhere.net".into(),
        addresses: vec!["192.0.2.1".parse().unwrap()],
    };
    assert!(matches!(
        d.set_glue(&x, &outside).await,
        Err(RegistrarError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn bad_credentials() {
    let (fake, _) = setup().await;
    for c in [
        creds("WRONG-KEY", Some(SECRET)),
        creds(KEY, Some("WRONG-SECRET")),
    ] {
        let e = adapter_with(&fake, &c, vec![], fast_retry())
            .validate(None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, RegistrarError::InvalidCredentials { .. }),
            "{e}"
        );
    }
    // No secret: refused before any request, with a message that says what is missing.
    let cfg = HttpConfig::new(RegistrarId::Dynadot, fake.base_url());
    let e = Dynadot::new(&creds(KEY, None), &cfg).unwrap_err();
    assert!(
        matches!(&e, RegistrarError::InvalidInput(m) if m.contains("key:secret")),
        "{e}"
    );
    assert_no_secrets(&e.to_string());
}

#[tokio::test]
async fn unknown_domain_is_not_in_account() {
    let (_fake, d) = setup().await;
    let e = d.get_ns(&dom("not-mine.net")).await.unwrap_err();
    assert!(
        matches!(&e, RegistrarError::DomainNotInAccount { domain, .. } if domain == "not-mine.net"),
        "{e}"
    );
    let e = d
        .set_ns(
            &dom("not-mine.net"),
            &ns(&["a.example.net", "b.example.net"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RegistrarError::DomainNotInAccount { .. }));
}

#[tokio::test]
async fn server_errors_retry_reads_but_never_writes() {
    let (fake, d) = setup().await;
    fake.common().fail_next(1, 502);
    assert_eq!(d.list_domains().await.unwrap().len(), 2);
    fake.common().fail_next(3, 500);
    assert!(matches!(
        d.get_ns(&dom("example.com")).await,
        Err(RegistrarError::Unavailable { .. })
    ));
    // A 5xx on the PUT: the outcome is unknown, so it is reported, not repeated.
    fake.fail_next_write(500);
    let e = d
        .set_ns(
            &dom("example.com"),
            &ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e}");
    assert_eq!(
        fake.common()
            .counters
            .requests("PUT /restful/v2/domains/example.com/nameservers"),
        1
    );
    assert_eq!(
        fake.ns("example.com"),
        vec!["ns1.dyna-ns.net", "ns2.dyna-ns.net"]
    );
}

#[tokio::test]
async fn system_busy_is_retried_then_rate_limited() {
    let (fake, d) = setup().await;
    fake.busy_next(1);
    assert_eq!(
        d.get_ns(&dom("example.com")).await.unwrap().hosts().len(),
        2
    );
    fake.busy_next(10);
    let e = d.get_ns(&dom("example.com")).await.unwrap_err();
    assert!(matches!(e, RegistrarError::RateLimited { .. }), "{e}");
}

#[tokio::test]
async fn retry_after_is_obeyed_and_long_waits_are_returned() {
    let (fake, d) = setup().await;
    fake.common().rate_limit_next(1, Duration::from_secs(1));
    let start = Instant::now();
    assert_eq!(d.list_domains().await.unwrap().len(), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    fake.common().rate_limit_next(1, Duration::from_secs(90));
    let e = d.list_domains().await.unwrap_err();
    assert_eq!(
        e,
        RegistrarError::RateLimited {
            registrar: RegistrarId::Dynadot,
            retry_after: Some(Duration::from_secs(90))
        }
    );
}

#[tokio::test]
async fn one_request_in_flight_and_within_budget() {
    let (fake, _) = setup().await;
    fake.set_latency(Duration::from_millis(30));
    fake.common().set_budget(6, Duration::from_millis(600));
    let d = Arc::new(adapter_with(
        &fake,
        &creds(KEY, Some(SECRET)),
        vec![RateLimit::new(5, Duration::from_millis(600)).with_burst(2)],
        fast_retry(),
    ));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let d = d.clone();
        set.spawn(async move { d.get_ns(&dom("example.com")).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(
        fake.peak_in_flight(),
        1,
        "the adapter serialises requests (Regular tier)"
    );
    assert_eq!(fake.common().rate_limited(), 0);
    assert!(fake.common().peak_in_window() <= 6);
}

#[tokio::test]
async fn the_fake_enforces_the_concurrency_limit() {
    let (fake, _) = setup().await;
    fake.set_latency(Duration::from_millis(50));
    let d = Arc::new(
        adapter_with(
            &fake,
            &creds(KEY, Some(SECRET)),
            vec![],
            RetryPolicy::none(),
        )
        .with_concurrency(4),
    );
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let d = d.clone();
        set.spawn(async move { d.get_ns(&dom("example.com")).await });
    }
    let mut limited = 0;
    while let Some(r) = set.join_next().await {
        if let Err(RegistrarError::RateLimited { .. }) = r.unwrap() {
            limited += 1;
        }
    }
    assert!(
        limited >= 1,
        "4 concurrent requests on a 1-thread account must see 429"
    );
    assert!(fake.peak_in_flight() > 1);
}

#[tokio::test]
async fn secrets_never_show() {
    let (fake, d) = setup().await;
    assert_no_secrets(&format!("{d:?}"));
    assert_no_secrets(&format!("{:?}", creds(KEY, Some(SECRET))));
    let mut errors = vec![
        adapter_with(&fake, &creds(KEY, Some("WRONG")), vec![], fast_retry())
            .validate(None)
            .await
            .unwrap_err(),
        d.get_ns(&dom("not-mine.net")).await.unwrap_err(),
    ];
    fake.common().fail_next(3, 500);
    errors.push(d.get_ns(&dom("example.com")).await.unwrap_err());
    let cfg = HttpConfig::new(RegistrarId::Dynadot, "http://127.0.0.1:9/restful/v2")
        .with_retry(RetryPolicy::none());
    errors.push(
        Dynadot::new(&creds(KEY, Some(SECRET)), &cfg)
            .unwrap()
            .validate(None)
            .await
            .unwrap_err(),
    );
    for e in errors {
        assert_no_secrets(&e.to_string());
        assert_no_secrets(&format!("{e:?}"));
    }
}

/// Raw requests: the fake refuses what Dynadot refuses (so the tests above prove something).
mod fake_enforces {
    use super::*;
    use pdm_adapters::dynadot::signature;

    pub(super) async fn send(
        fake: &DynadotFake,
        method: reqwest::Method,
        path: &str,
        sig: Option<(&str, &str)>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", fake.base_url());
        let mut rb = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(KEY);
        if let Some((signed_path, signed_body)) = sig {
            rb = rb.header(
                "X-Signature",
                signature(KEY, SECRET, signed_path, "", signed_body.as_bytes()),
            );
        }
        if !body.is_empty() {
            rb = rb
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn signatures_are_required_and_checked_over_path_and_body() {
        let (fake, _) = setup().await;
        let full = "/restful/v2/domains/example.com/nameservers";
        let (st, v) = send(
            &fake,
            reqwest::Method::GET,
            "/domains/example.com/nameservers",
            None,
            "",
        )
        .await;
        assert_eq!(
            (st, v["error"]["description"].as_str()),
            (400, Some("X-Signature header not entered"))
        );
        let (st, v) = send(
            &fake,
            reqwest::Method::GET,
            "/domains/example.com/nameservers",
            Some((full, "")),
            "",
        )
        .await;
        assert_eq!((st, v["code"].as_str()), (200, Some("200")));
        // Signed over the path relative to /restful/v2 (level23's variant): refused.
        let rel = "/domains/example.com/nameservers";
        let (st, _) = send(&fake, reqwest::Method::GET, rel, Some((rel, "")), "").await;
        assert_eq!(st, 401);
        // Body changed after signing.
        let signed = r#"{"nameserver_list":["ns1.a.example","ns2.a.example"]}"#;
        let sent = r#"{"nameserver_list":["ns1.a.example","ns9.a.example"]}"#;
        let (st, _) = send(&fake, reqwest::Method::PUT, rel, Some((full, signed)), sent).await;
        assert_eq!(st, 401);
        // level23's `nameservers_list` spelling is not the documented field.
        let typo = r#"{"nameservers_list":["ns1.a.example","ns2.a.example"]}"#;
        let (st, _) = send(&fake, reqwest::Method::PUT, rel, Some((full, typo)), typo).await;
        assert_eq!(st, 400);
        assert_eq!(fake.common().counters.total_writes(), 0);
    }
}

/// Dynadot refuses a nameserver PUT naming hosts the account does not know;
/// the adapter adds them first (registrars.md §5.2 `add_external`).
mod account_name_servers {
    use super::*;

    #[tokio::test]
    async fn a_fresh_account_gets_the_hosts_added_then_the_set_takes() {
        let (fake, d) = setup().await;
        let want = ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]);
        assert!(!fake
            .external_hosts()
            .contains(&"ns1.pdm.example.net".to_string()));
        assert_eq!(
            d.set_ns(&dom("example.com"), &want).await.unwrap(),
            Change::Applied
        );
        assert_eq!(fake.ns("example.com"), want.hosts());
        for h in want.hosts() {
            assert!(fake.external_hosts().contains(h), "{h} not added");
            assert_eq!(
                fake.common()
                    .counters
                    .requests(&format!("POST /restful/v2/nameservers/{h}/add_external")),
                1
            );
        }
    }

    #[tokio::test]
    async fn hosts_already_in_the_account_are_no_failure() {
        let (fake, d) = setup().await;
        fake.add_external_host("ns1.pdm.example.net");
        fake.add_external_host("ns2.pdm.example.net");
        let want = ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]);
        assert_eq!(
            d.set_ns(&dom("example.com"), &want).await.unwrap(),
            Change::Applied
        );
        assert_eq!(fake.ns("example.com"), want.hosts());
        // The fake did answer "already exists" to each add.
        assert_eq!(
            fake.common()
                .counters
                .requests("POST /restful/v2/nameservers/ns1.pdm.example.net/add_external"),
            1
        );
        // A second flip elsewhere with the same hosts also succeeds.
        assert_eq!(
            d.set_ns(&dom("example.co.uk"), &want).await.unwrap(),
            Change::Applied
        );
    }

    #[tokio::test]
    async fn in_domain_hosts_are_glue_not_external() {
        let (fake, d) = setup().await;
        let x = dom("example.com");
        for (h, ip) in [
            ("ns1.example.com", "192.0.2.1"),
            ("ns2.example.com", "192.0.2.2"),
        ] {
            let glue = Glue {
                host: h.into(),
                addresses: vec![ip.parse().unwrap()],
            };
            d.set_glue(&x, &glue).await.unwrap();
        }
        let want = ns(&["ns1.example.com", "ns2.example.com"]);
        assert_eq!(d.set_ns(&x, &want).await.unwrap(), Change::Applied);
        assert!(!fake
            .external_hosts()
            .contains(&"ns1.example.com".to_string()));
    }

    #[tokio::test]
    async fn the_fake_refuses_unregistered_hosts_when_a_client_skips_the_add() {
        let (fake, _) = setup().await;
        let path = "/domains/example.com/nameservers";
        let body = r#"{"nameserver_list":["ns1.pdm.example.net","ns2.pdm.example.net"]}"#;
        let (st, v) = fake_enforces::send(
            &fake,
            reqwest::Method::PUT,
            path,
            Some((&format!("/restful/v2{path}"), body)),
            body,
        )
        .await;
        assert_eq!(st, 400);
        assert_eq!(
            v["error"]["description"].as_str(),
            Some(
                "Name server(s) ns1.pdm.example.net, ns2.pdm.example.net must be added to your account first"
            )
        );
        assert_eq!(
            fake.ns("example.com"),
            ["ns1.dyna-ns.net", "ns2.dyna-ns.net"]
        );
        // The refusal reaches the caller as a rejection carrying Dynadot's words.
        let e = pdm_adapters::dynadot::classify_error(
            reqwest::StatusCode::BAD_REQUEST,
            v.to_string().as_bytes(),
            Some("example.com"),
        );
        assert!(
            matches!(&e, RegistrarError::Rejected { message, .. } if message.contains("must be added to your account first")),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .contains("must be added to your account first"));
    }
}

/// Dynadot's refusal reaches the caller in Dynadot's words, never with a credential.
#[tokio::test]
async fn a_refusal_keeps_dynadots_reason_without_credentials() {
    let (fake, d) = setup().await;
    fake.refuse_next_write(&format!(
        "The domain is locked by the registry; contact support (key {KEY})"
    ));
    let e = d
        .set_ns(
            &dom("example.com"),
            &ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "registrar-rejected");
    assert!(
        e.to_string()
            .contains("The domain is locked by the registry; contact support"),
        "{e}"
    );
    assert!(e
        .upstream_message()
        .is_some_and(|m| m.contains("locked by the registry") && m.contains("<redacted>")));
    assert_no_secrets(&e.to_string());
    assert_no_secrets(&format!("{e:?}"));
    assert_eq!(
        fake.ns("example.com"),
        ["ns1.dyna-ns.net", "ns2.dyna-ns.net"]
    );
}

/// Records on Dynadot's own DNS (set-dns): `POST`/`GET …/records`.
mod host_records {
    use super::*;
    use pdm_adapters::fake::dynadot::DnsRecord;
    use pdm_adapters::{HostRecord, HostRecordType};

    fn rec(sub: &str, t: HostRecordType, value: &str, prio: Option<u16>) -> HostRecord {
        HostRecord {
            subhost: sub.into(),
            rtype: t,
            value: value.into(),
            ttl: 3600,
            priority: prio,
        }
    }

    fn wanted() -> Vec<HostRecord> {
        vec![
            rec("", HostRecordType::A, "192.0.2.10", None),
            rec("", HostRecordType::Mx, "mail.example.net", Some(10)),
            rec("", HostRecordType::Txt, "v=spf1 -all", None),
            rec("www", HostRecordType::Cname, "example.com", None),
            rec("mail", HostRecordType::Mx, "mx2.example.net", Some(20)),
            rec("v6", HostRecordType::Aaaa, "2001:db8::10", None),
        ]
    }

    #[tokio::test]
    async fn set_replaces_everything_and_reads_back() {
        let (fake, d) = setup().await;
        assert!(d.capabilities().host_records);
        let x = dom("example.com");
        assert!(d.get_host_records(&x).await.unwrap().is_empty());
        assert_eq!(
            d.set_host_records(&x, &wanted()).await.unwrap(),
            Change::Applied
        );
        let (stored, ttl) = fake.dns("example.com").unwrap();
        assert_eq!(ttl, 3600);
        // Apex records in dns_main_list, MX distance in record_value2.
        assert!(stored.contains(&DnsRecord {
            sub_host: None,
            record_type: "mx".into(),
            value1: "mail.example.net".into(),
            value2: Some("10".into()),
        }));
        assert!(stored.contains(&DnsRecord {
            sub_host: Some("mail".into()),
            record_type: "mx".into(),
            value1: "mx2.example.net".into(),
            value2: Some("20".into()),
        }));
        assert_eq!(stored.iter().filter(|r| r.sub_host.is_none()).count(), 3);
        assert_eq!(
            d.get_host_records(&x).await.unwrap(),
            HostRecord::normalised_set(&wanted())
        );
        assert_eq!(
            d.set_host_records(&x, &wanted()).await.unwrap(),
            Change::Unchanged
        );
        assert_eq!(fake.common().counters.writes("example.com"), 1);
        // Full replace: a smaller set leaves nothing else behind.
        let one = vec![rec("", HostRecordType::A, "192.0.2.99", None)];
        d.set_host_records(&x, &one).await.unwrap();
        assert_eq!(d.get_host_records(&x).await.unwrap(), one);
        assert_eq!(fake.dns("example.com").unwrap().0.len(), 1);
    }

    #[tokio::test]
    async fn one_ttl_per_domain_and_at_least_one_record() {
        let (fake, d) = setup().await;
        let x = dom("example.com");
        let mut mixed = wanted();
        mixed[0].ttl = 300;
        let e = d.set_host_records(&x, &mixed).await.unwrap_err();
        assert!(
            matches!(&e, RegistrarError::InvalidInput(m) if m.contains("one TTL")),
            "{e:?}"
        );
        let e = d.set_host_records(&x, &[]).await.unwrap_err();
        assert!(matches!(e, RegistrarError::InvalidInput(_)), "{e:?}");
        assert_eq!(fake.common().counters.total_writes(), 0);
    }

    #[tokio::test]
    async fn the_fake_checks_the_body() {
        let (fake, _) = setup().await;
        let path = "/domains/example.com/records";
        let full = format!("/restful/v2{path}");
        for body in [
            // Go service's set_dns2-style names are not REST fields.
            r#"{"sub_record0":"www","ttl":300}"#,
            // MX without its distance.
            r#"{"dns_main_list":[{"record_type":"MX","record_value1":"mx.example.net"}]}"#,
            // Not an IPv4 address.
            r#"{"dns_main_list":[{"record_type":"A","record_value1":"2001:db8::1"}]}"#,
        ] {
            let (st, _) = fake_enforces::send(
                &fake,
                reqwest::Method::POST,
                path,
                Some((&full, body)),
                body,
            )
            .await;
            assert_eq!(st, 400, "{body}");
        }
        assert_eq!(fake.dns("example.com"), None);
    }
}
