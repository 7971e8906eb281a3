//! GoDaddy adapter against its fake, over real HTTP on loopback.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pdm_adapters::fake::godaddy::FakeGoDaddy;
use pdm_adapters::fake::FakeServer;
use pdm_adapters::godaddy::{GoDaddy, PollConfig};
use pdm_adapters::http::{HttpConfig, RateLimit, RetryPolicy};
use pdm_adapters::{
    Change, Credentials, DsData, Glue, NsSet, RegistrableDomain, Registrar, RegistrarError,
    RegistrarId, Secret,
};

const KEY: &str = "gdkey123";
const SECRET: &str = "GD-SECRET-do-not-leak";
const CID: &str = "cust-4242";

fn creds(secret: &str, cid: Option<&str>) -> Credentials {
    Credentials::Godaddy {
        key: KEY.into(),
        secret: Secret::new(secret),
        customer_id: cid.map(str::to_string),
    }
}

fn config(srv: &FakeServer) -> HttpConfig {
    HttpConfig::new(RegistrarId::Godaddy, srv.base_url())
        .with_limits(vec![])
        .with_retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
        })
}

fn fast_poll() -> PollConfig {
    PollConfig {
        interval: Duration::from_millis(10),
        deadline: Duration::from_secs(5),
    }
}

async fn setup(cid: Option<&str>) -> (Arc<FakeGoDaddy>, FakeServer, GoDaddy) {
    let fake = FakeGoDaddy::new(KEY, SECRET, CID);
    fake.add_domain("example.com", &["ns1.old.net", "ns2.old.net"]);
    let srv = fake.start().await.unwrap();
    let gd = GoDaddy::with_config(creds(SECRET, cid), config(&srv))
        .unwrap()
        .with_poll(fast_poll());
    (fake, srv, gd)
}

fn d(s: &str) -> RegistrableDomain {
    RegistrableDomain::parse(s).unwrap()
}

fn ns(hosts: &[&str]) -> NsSet {
    NsSet::new(hosts.iter().copied()).unwrap()
}

fn ds(tag: u16, digest: &str) -> DsData {
    DsData {
        key_tag: tag,
        algorithm: 13,
        digest_type: 2,
        digest: digest.into(),
    }
}

#[tokio::test]
async fn validate_v1_and_v2() {
    let (_fake, _srv, gd) = setup(Some(CID)).await;
    let v = gd.validate(Some(&d("example.com"))).await.unwrap();
    assert_eq!(v.domain_in_account, Some(true));
    assert_eq!(v.account.as_deref(), Some(CID));
    assert!(v.scope.iter().any(|s| s.contains("v2")), "{:?}", v.scope);
    let caps = gd.capabilities();
    assert!(caps.set_ns && caps.set_ds && caps.get_ds && caps.glue && !caps.delegate_subdomain);
}

#[tokio::test]
async fn error_classes() {
    let (fake, srv, gd) = setup(Some(CID)).await;
    // Wrong secret: 401, and the secret appears nowhere.
    let bad = GoDaddy::with_config(creds("WRONG-SECRET-xyz", None), config(&srv)).unwrap();
    let e = bad.validate(None).await.unwrap_err();
    assert_eq!(
        e,
        RegistrarError::InvalidCredentials {
            registrar: RegistrarId::Godaddy
        }
    );
    for s in [
        e.to_string(),
        format!("{e:?}"),
        format!("{bad:?}"),
        format!("{gd:?}"),
    ] {
        assert!(
            !s.contains("WRONG-SECRET-xyz") && !s.contains(SECRET),
            "{s}"
        );
    }
    // Domain not in account.
    let e = gd.validate(Some(&d("nothere.com"))).await.unwrap_err();
    assert_eq!(
        e,
        RegistrarError::DomainNotInAccount {
            registrar: RegistrarId::Godaddy,
            domain: "nothere.com".into()
        }
    );
    // Wrong customer id: refused, not mistaken for a bad key.
    let other = GoDaddy::with_config(creds(SECRET, Some("cust-0")), config(&srv)).unwrap();
    assert!(matches!(
        other.get_ds(&d("example.com")).await.unwrap_err(),
        RegistrarError::Rejected { .. }
    ));
    // 403 ACCESS_DENIED is eligibility, not credentials.
    fake.set_access_denied(true);
    let e = gd.validate(None).await.unwrap_err();
    match e {
        RegistrarError::AccountNotEligible { detail, .. } => {
            assert!(detail.contains("ACCESS_DENIED"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn list_follows_the_marker() {
    let (fake, _srv, gd) = setup(None).await;
    for i in 0..6 {
        fake.add_domain(&format!("d{i}.org"), &["ns1.x.net", "ns2.x.net"]);
    }
    let all = gd.with_page_size(3).list_domains().await.unwrap();
    assert_eq!(all.len(), 7);
    assert_eq!(all[0], "d0.org");
    // 7 domains at 3 a page: 3, 3, 1.
    assert_eq!(fake.common().counters.requests("GET /v1/domains"), 3);
}

#[tokio::test]
async fn v1_set_ns_patch_and_noop() {
    let (fake, _srv, gd) = setup(None).await;
    let dom = d("example.com");
    let same = ns(&["NS2.old.net.", "ns1.old.net"]);
    assert_eq!(gd.set_ns(&dom, &same).await.unwrap(), Change::Unchanged);
    assert_eq!(fake.common().counters.writes("example.com"), 0);
    let want = ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]);
    assert_eq!(gd.set_ns(&dom, &want).await.unwrap(), Change::Applied);
    assert_eq!(
        fake.ns("example.com"),
        ["ns1.pdm.example.net", "ns2.pdm.example.net"]
    );
    assert_eq!(gd.set_ns(&dom, &want).await.unwrap(), Change::Unchanged);
    assert_eq!(fake.common().counters.writes("example.com"), 1);
    assert_eq!(
        fake.common()
            .counters
            .requests("PATCH /v1/domains/{domain}"),
        1
    );

    // A protected domain answers 409 with GoDaddy's reason.
    fake.set_protected("example.com", true);
    let e = gd
        .set_ns(&dom, &ns(&["ns1.other.net", "ns2.other.net"]))
        .await
        .unwrap_err();
    match e {
        RegistrarError::Rejected { message, .. } => {
            assert!(message.contains("not eligible"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn v2_set_ns_waits_for_the_action() {
    let (fake, _srv, gd) = setup(Some(CID)).await;
    fake.set_action_timing(3, true);
    let want = ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]);
    assert_eq!(
        gd.set_ns(&d("example.com"), &want).await.unwrap(),
        Change::Applied
    );
    // Applied only once the action reached SUCCESS, which the adapter waited for.
    assert_eq!(
        fake.ns("example.com"),
        ["ns1.pdm.example.net", "ns2.pdm.example.net"]
    );
    let polls = fake
        .common()
        .counters
        .requests("GET /v2/customers/{cid}/domains/{domain}/actions/{type}");
    assert_eq!(polls, 5, "404, 3 x PENDING, SUCCESS");
    assert_eq!(
        fake.common()
            .counters
            .requests("PATCH /v1/domains/{domain}"),
        0
    );
    assert_eq!(
        gd.set_ns(&d("example.com"), &want).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(fake.common().counters.writes("example.com"), 1);
}

#[tokio::test]
async fn v2_failed_action_and_deadline() {
    let (fake, _srv, gd) = setup(Some(CID)).await;
    fake.set_fail_actions(true);
    let e = gd
        .set_ns(&d("example.com"), &ns(&["ns1.a.net", "ns2.a.net"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RegistrarError::Rejected { message, .. } if message.contains("FAILED")),
        "{e:?}"
    );
    assert_eq!(fake.ns("example.com"), ["ns1.old.net", "ns2.old.net"]);

    fake.set_fail_actions(false);
    fake.set_action_timing(10_000, false);
    let gd = gd.with_poll(PollConfig {
        interval: Duration::from_millis(20),
        deadline: Duration::from_millis(150),
    });
    // The previous action failed, so a new one may start.
    let e = gd
        .set_ns(&d("example.com"), &ns(&["ns1.b.net", "ns2.b.net"]))
        .await
        .unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn ds_create_replace_remove() {
    let (fake, _srv, gd) = setup(Some(CID)).await;
    let dom = d("example.com");
    assert!(gd.get_ds(&dom).await.unwrap().is_empty());
    let a = ds(12345, "abcdef0123456789");
    let b = ds(54321, "0011223344556677");
    assert_eq!(
        gd.set_ds(&dom, std::slice::from_ref(&a), &[])
            .await
            .unwrap(),
        Change::Applied
    );
    assert_eq!(fake.ds("example.com").len(), 1);
    assert_eq!(gd.get_ds(&dom).await.unwrap(), vec![a.normalised()]);
    // Same DS, digest in another case: no write.
    let upper = DsData {
        digest: a.digest.to_uppercase(),
        ..a.clone()
    };
    assert_eq!(
        gd.set_ds(&dom, &[upper], &[]).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(fake.common().counters.writes("example.com"), 1);
    // Rollover: delete a, create b.
    assert_eq!(
        gd.set_ds(&dom, std::slice::from_ref(&b), &[])
            .await
            .unwrap(),
        Change::Applied
    );
    assert_eq!(gd.get_ds(&dom).await.unwrap(), vec![b.normalised()]);
    assert_eq!(
        fake.common()
            .counters
            .requests("DELETE /v2/customers/{cid}/domains/{domain}/dnssecRecords"),
        1
    );
    // Empty removes DNSSEC delegation.
    assert_eq!(gd.set_ds(&dom, &[], &[]).await.unwrap(), Change::Applied);
    assert!(fake.ds("example.com").is_empty());
    // An algorithm GoDaddy has no name for fails before any write.
    let odd = DsData {
        algorithm: 253,
        ..a
    };
    assert!(matches!(
        gd.set_ds(&dom, &[odd], &[]).await.unwrap_err(),
        RegistrarError::InvalidInput(_)
    ));
}

#[tokio::test]
async fn v2_features_need_a_customer_id() {
    let (_fake, _srv, gd) = setup(None).await;
    let caps = gd.capabilities();
    assert!(!caps.set_ds && !caps.get_ds && !caps.glue);
    let e = gd
        .set_ds(&d("example.com"), &[ds(1, "ab")], &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RegistrarError::Unsupported { what, .. } if what.contains("customer id")),
        "{e:?}"
    );
}

#[tokio::test]
async fn glue_via_v2_hosts() {
    let (fake, _srv, gd) = setup(Some(CID)).await;
    let dom = d("example.com");
    assert!(gd
        .get_glue(&dom, "ns1.example.com")
        .await
        .unwrap()
        .addresses
        .is_empty());
    let g = Glue {
        host: "ns1.example.com".into(),
        addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))],
    };
    assert_eq!(gd.set_glue(&dom, &g).await.unwrap(), Change::Applied);
    assert_eq!(
        fake.glue_v4("example.com", "ns1.example.com"),
        [Ipv4Addr::new(192, 0, 2, 53)]
    );
    assert_eq!(gd.get_glue(&dom, "ns1.example.com").await.unwrap(), g);
    assert_eq!(gd.set_glue(&dom, &g).await.unwrap(), Change::Unchanged);
    assert_eq!(fake.common().counters.writes("example.com"), 1);
    let gone = Glue {
        host: g.host.clone(),
        addresses: vec![],
    };
    assert_eq!(gd.set_glue(&dom, &gone).await.unwrap(), Change::Applied);
    assert!(fake.glue_v4("example.com", "ns1.example.com").is_empty());
    // Missing domain is an error even on the glue read.
    let e = gd
        .get_glue(&d("nothere.com"), "ns1.nothere.com")
        .await
        .unwrap_err();
    assert!(
        matches!(e, RegistrarError::DomainNotInAccount { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn retry_after_from_the_body_is_obeyed() {
    let (fake, _srv, gd) = setup(None).await;
    // No Retry-After header: only the body's retryAfterSec says how long.
    fake.set_retry_after_header(false);
    fake.common().rate_limit_next(1, Duration::from_secs(1));
    let start = Instant::now();
    gd.get_ns(&d("example.com")).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fake.common().rate_limited(), 1);

    // Longer than the cap: reported with the registrar's figure, without sleeping.
    fake.common().rate_limit_next(1, Duration::from_secs(120));
    let start = Instant::now();
    let e = gd.get_ns(&d("example.com")).await.unwrap_err();
    assert_eq!(
        e,
        RegistrarError::RateLimited {
            registrar: RegistrarId::Godaddy,
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn client_side_limiter_keeps_under_the_budget() {
    let fake = FakeGoDaddy::new(KEY, SECRET, CID);
    fake.add_domain("example.com", &["ns1.old.net", "ns2.old.net"]);
    let srv = fake.start().await.unwrap();
    let window = Duration::from_millis(500);
    fake.common().set_budget(4, window);
    let gd = GoDaddy::with_config(
        creds(SECRET, None),
        config(&srv).with_limits(vec![RateLimit::new(4, window).with_burst(2)]),
    )
    .unwrap();
    for _ in 0..10 {
        gd.get_ns(&d("example.com")).await.unwrap();
    }
    assert_eq!(fake.common().rate_limited(), 0);
    assert!(fake.common().peak_in_window() <= 4);
}

#[tokio::test]
async fn server_errors_retry_reads_only() {
    let (fake, _srv, gd) = setup(None).await;
    fake.common().fail_next(2, 503);
    assert_eq!(
        gd.get_ns(&d("example.com")).await.unwrap(),
        ns(&["ns1.old.net", "ns2.old.net"])
    );
    fake.common()
        .fail_next_on("PATCH /v1/domains/{domain}", 5, 500);
    let e = gd
        .set_ns(&d("example.com"), &ns(&["ns1.a.net", "ns2.a.net"]))
        .await
        .unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e:?}");
    assert_eq!(
        fake.common()
            .counters
            .requests("PATCH /v1/domains/{domain}"),
        1
    );
}

/// GoDaddy's 409 for a protected domain reaches the caller in GoDaddy's words
/// (Display and `upstream_message`), on v1 and v2, with no credential in it.
#[tokio::test]
async fn a_protected_domain_refusal_keeps_godaddys_reason() {
    for cid in [None, Some(CID)] {
        let (fake, _srv, gd) = setup(cid).await;
        fake.set_protected("example.com", true);
        let e = gd
            .set_ns(&d("example.com"), &ns(&["ns1.other.net", "ns2.other.net"]))
            .await
            .unwrap_err();
        assert!(matches!(e, RegistrarError::Rejected { .. }), "{e:?}");
        let reason = "The given domain is not eligible to have its nameservers changed";
        assert!(e.to_string().contains(reason), "{e}");
        assert!(
            e.upstream_message().is_some_and(|m| m.contains(reason)),
            "{e:?}"
        );
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(SECRET) && !text.contains(KEY), "{text}");
        }
        assert_eq!(e.code(), "registrar-rejected");
    }
}

/// Adapters without a registrar-DNS API answer Unsupported.
#[tokio::test]
async fn other_adapters_do_not_set_host_records() {
    let gd = GoDaddy::with_config(
        Credentials::Godaddy {
            key: "k".into(),
            secret: Secret::new("s"),
            customer_id: None,
        },
        HttpConfig::new(RegistrarId::Godaddy, "http://127.0.0.1:9"),
    )
    .unwrap();
    assert!(!gd.capabilities().host_records);
    let e = gd
        .set_host_records(&d("example.com"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RegistrarError::Unsupported { registrar: RegistrarId::Godaddy, what } if what.contains("DNS records")),
        "{e:?}"
    );
    assert!(matches!(
        gd.get_host_records(&d("example.com")).await,
        Err(RegistrarError::Unsupported { .. })
    ));
}
