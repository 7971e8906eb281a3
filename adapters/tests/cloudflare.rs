//! Cloudflare adapter against its fake, over real HTTP on loopback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pdm_adapters::cloudflare::Cloudflare;
use pdm_adapters::fake::cloudflare::{FakeCloudflare, FakeToken};
use pdm_adapters::fake::FakeServer;
use pdm_adapters::http::{HttpConfig, RateLimit, RetryPolicy};
use pdm_adapters::{
    Change, Credentials, DsData, NsSet, RegistrableDomain, Registrar, RegistrarError, RegistrarId,
    Secret,
};

const ACCOUNT: &str = "acc0123456789";
const TOKEN: &str = "cf-token-SECRET-0123456789";

fn creds(token: &str, account: Option<&str>) -> Credentials {
    Credentials::Cloudflare {
        api_token: Secret::new(token),
        account_id: account.map(str::to_string),
    }
}

fn config(srv: &FakeServer) -> HttpConfig {
    HttpConfig::new(RegistrarId::Cloudflare, srv.base_url())
        .with_limits(vec![])
        .with_retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
        })
}

async fn setup() -> (Arc<FakeCloudflare>, FakeServer, Cloudflare) {
    let fake = FakeCloudflare::new(ACCOUNT);
    fake.add_token(TOKEN, FakeToken::full());
    fake.add_registrar_domain(
        "registered.com",
        &["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
    );
    fake.add_zone("registered.com");
    fake.add_zone("example.org");
    let srv = fake.start().await.unwrap();
    let cf = Cloudflare::with_config(creds(TOKEN, None), config(&srv)).unwrap();
    (fake, srv, cf)
}

fn d(s: &str) -> RegistrableDomain {
    RegistrableDomain::parse(s).unwrap()
}

fn ns(hosts: &[&str]) -> NsSet {
    NsSet::new(hosts.iter().copied()).unwrap()
}

#[tokio::test]
async fn validate_user_token_and_probe_scope() {
    let (_fake, _srv, cf) = setup().await;
    let v = cf.validate(Some(&d("registered.com"))).await.unwrap();
    assert_eq!(v.account.as_deref(), Some(ACCOUNT));
    assert_eq!(v.domain_in_account, Some(true));
    assert!(
        v.scope.contains(&"user token: active".to_string()),
        "{:?}",
        v.scope
    );
    assert!(
        v.scope.contains(&"registrar: read".to_string()),
        "{:?}",
        v.scope
    );
    // A zone-only domain counts as in the account too.
    assert_eq!(
        cf.validate(Some(&d("example.org")))
            .await
            .unwrap()
            .domain_in_account,
        Some(true)
    );
    let caps = cf.capabilities();
    assert!(!caps.set_ns && caps.delegate_subdomain && caps.get_ns);
}

#[tokio::test]
async fn account_token_verifies_on_the_account_path() {
    let (fake, srv, _) = setup().await;
    let t = FakeToken {
        account: Some(ACCOUNT.into()),
        registrar_read: false,
        ..FakeToken::full()
    };
    fake.add_token("cfat_account_token", t);
    let cf =
        Cloudflare::with_config(creds("cfat_account_token", Some(ACCOUNT)), config(&srv)).unwrap();
    let v = cf.validate(None).await.unwrap();
    assert!(
        v.scope.contains(&"account token: active".to_string()),
        "{:?}",
        v.scope
    );
    assert!(
        v.scope.contains(&"registrar: no access".to_string()),
        "{:?}",
        v.scope
    );
    assert_eq!(
        fake.common()
            .counters
            .requests("GET /accounts/{id}/tokens/verify"),
        1
    );
    // Without registrar access, the list still has the zones.
    assert_eq!(
        cf.list_domains().await.unwrap(),
        ["example.org", "registered.com"]
    );
}

#[tokio::test]
async fn bad_tokens_are_invalid_credentials_and_never_echoed() {
    let (fake, srv, cf) = setup().await;
    let disabled = FakeToken {
        status: "disabled".into(),
        ..FakeToken::full()
    };
    fake.add_token("cf-disabled-SECRET", disabled);
    for token in [
        "cf-unknown-SECRET",
        "cf-disabled-SECRET",
        "has space SECRET",
    ] {
        let c = Cloudflare::with_config(creds(token, None), config(&srv)).unwrap();
        let e = c.validate(None).await.unwrap_err();
        assert_eq!(
            e,
            RegistrarError::InvalidCredentials {
                registrar: RegistrarId::Cloudflare
            },
            "{token}"
        );
        for s in [e.to_string(), format!("{e:?}"), format!("{c:?}")] {
            assert!(!s.contains("SECRET"), "{s}");
        }
    }
    assert!(!format!("{cf:?}").contains(TOKEN));
}

#[tokio::test]
async fn list_reads_every_page_of_both_sources() {
    let (fake, _srv, cf) = setup().await;
    for i in 0..11 {
        fake.add_registrar_domain(
            &format!("reg{i:02}.com"),
            &["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        );
    }
    for i in 0..7 {
        fake.add_zone(&format!("zone{i}.net"));
    }
    let all = cf.with_per_page(5).list_domains().await.unwrap();
    // 12 registrar domains + 9 zones, registered.com in both.
    assert_eq!(all.len(), 12 + 9 - 1);
    assert!(all.contains(&"reg10.com".to_string()) && all.contains(&"zone6.net".to_string()));
    assert_eq!(
        fake.common()
            .counters
            .requests("GET /accounts/{id}/registrar/domains"),
        3
    );
    assert_eq!(fake.common().counters.requests("GET /zones"), 2);
}

#[tokio::test]
async fn get_ns_from_registrar_or_active_zone() {
    let (_fake, _srv, cf) = setup().await;
    let want = ns(&["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"]);
    assert_eq!(cf.get_ns(&d("registered.com")).await.unwrap(), want);
    assert_eq!(cf.get_ns(&d("example.org")).await.unwrap(), want);
    let e = cf.get_ns(&d("elsewhere.com")).await.unwrap_err();
    assert_eq!(
        e,
        RegistrarError::DomainNotInAccount {
            registrar: RegistrarId::Cloudflare,
            domain: "elsewhere.com".into()
        }
    );
}

#[tokio::test]
async fn set_ns_is_unsupported_by_policy() {
    let (fake, _srv, cf) = setup().await;
    let e = cf
        .set_ns(&d("registered.com"), &ns(&["ns1.pdm.net", "ns2.pdm.net"]))
        .await
        .unwrap_err();
    match e {
        RegistrarError::Unsupported { what, .. } => {
            assert!(what.contains("Cloudflare Registrar"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.common().counters.total_requests(), 0);
}

#[tokio::test]
async fn delegate_subdomain_writes_only_differences() {
    let (fake, _srv, cf) = setup().await;
    let child = "sov.example.org";
    let ds1 = DsData {
        key_tag: 2371,
        algorithm: 13,
        digest_type: 2,
        digest: "ab12cd34".into(),
    };
    let set1 = ns(&["ns1.pdm.net", "ns2.pdm.net"]);
    assert_eq!(
        cf.delegate_subdomain(child, &set1, std::slice::from_ref(&ds1))
            .await
            .unwrap(),
        Change::Applied
    );
    assert_eq!(
        fake.records_at(child),
        [
            ("DS".to_string(), "2371 13 2 AB12CD34".to_string()),
            ("NS".to_string(), "ns1.pdm.net".to_string()),
            ("NS".to_string(), "ns2.pdm.net".to_string()),
        ]
    );
    assert_eq!(fake.common().counters.writes(child), 3);

    // Same again, spelled differently: no write.
    let upper = DsData {
        digest: "AB12CD34".into(),
        ..ds1.clone()
    };
    assert_eq!(
        cf.delegate_subdomain(
            "SOV.example.org.",
            &ns(&["NS2.pdm.net.", "ns1.pdm.net"]),
            &[upper]
        )
        .await
        .unwrap(),
        Change::Unchanged
    );
    assert_eq!(fake.common().counters.writes(child), 3);

    // One NS swapped: one create, one delete; the DS and the other NS stay.
    let set2 = ns(&["ns1.pdm.net", "ns3.pdm.net"]);
    assert_eq!(
        cf.delegate_subdomain(child, &set2, &[ds1]).await.unwrap(),
        Change::Applied
    );
    assert_eq!(fake.common().counters.writes(child), 5);
    // Dropping DNSSEC removes only the DS.
    assert_eq!(
        cf.delegate_subdomain(child, &set2, &[]).await.unwrap(),
        Change::Applied
    );
    assert_eq!(
        fake.records_at(child),
        [
            ("NS".to_string(), "ns1.pdm.net".to_string()),
            ("NS".to_string(), "ns3.pdm.net".to_string())
        ]
    );
    assert_eq!(fake.common().counters.writes(child), 6);
}

#[tokio::test]
async fn delegate_picks_the_longest_suffix_zone() {
    let (fake, _srv, cf) = setup().await;
    fake.add_zone("eu.example.org");
    let set = ns(&["ns1.pdm.net", "ns2.pdm.net"]);
    assert_eq!(
        cf.delegate_subdomain("a.eu.example.org", &set, &[])
            .await
            .unwrap(),
        Change::Applied
    );
    // The records landed in eu.example.org, not example.org.
    assert_eq!(fake.records_at("a.eu.example.org").len(), 2);
    assert_eq!(fake.zones_holding("a.eu.example.org"), ["eu.example.org"]);

    let e = cf
        .delegate_subdomain("x.elsewhere.com", &set, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(e, RegistrarError::DomainNotInAccount { .. }),
        "{e:?}"
    );
    let e = cf
        .delegate_subdomain("example.org", &set, &[])
        .await
        .unwrap_err();
    assert!(matches!(e, RegistrarError::InvalidInput(_)), "{e:?}");
}

#[tokio::test]
async fn delegate_without_dns_edit_is_rejected() {
    let (fake, srv, _) = setup().await;
    fake.add_token(
        "cf-readonly",
        FakeToken {
            dns_edit: false,
            ..FakeToken::full()
        },
    );
    let cf = Cloudflare::with_config(creds("cf-readonly", None), config(&srv)).unwrap();
    let e = cf
        .delegate_subdomain("sov.example.org", &ns(&["ns1.pdm.net", "ns2.pdm.net"]), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RegistrarError::Rejected { message, .. } if message.contains("permission")),
        "{e:?}"
    );
    assert_eq!(fake.common().counters.writes("sov.example.org"), 0);
}

#[tokio::test]
async fn retry_after_header_is_obeyed_and_capped() {
    let (fake, _srv, cf) = setup().await;
    fake.common().rate_limit_next(1, Duration::from_secs(1));
    let start = Instant::now();
    cf.get_ns(&d("registered.com")).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    fake.common().rate_limit_next(1, Duration::from_secs(300));
    let e = cf.get_ns(&d("registered.com")).await.unwrap_err();
    assert_eq!(
        e,
        RegistrarError::RateLimited {
            registrar: RegistrarId::Cloudflare,
            retry_after: Some(Duration::from_secs(300))
        }
    );
}

#[tokio::test]
async fn client_side_limiter_keeps_under_the_budget() {
    let fake = FakeCloudflare::new(ACCOUNT);
    fake.add_token(TOKEN, FakeToken::full());
    fake.add_zone("example.org");
    let srv = fake.start().await.unwrap();
    let window = Duration::from_millis(500);
    fake.common().set_budget(5, window);
    let cf = Cloudflare::with_config(
        creds(TOKEN, Some(ACCOUNT)),
        config(&srv).with_limits(vec![RateLimit::new(5, window).with_burst(3)]),
    )
    .unwrap();
    for _ in 0..6 {
        // get_ns on a zone-only domain: registrar probe + zone lookup = 2 requests.
        cf.get_ns(&d("example.org")).await.unwrap();
    }
    assert_eq!(fake.common().rate_limited(), 0);
    assert!(fake.common().peak_in_window() <= 5);
    assert_eq!(fake.common().counters.total_requests(), 12);
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let (fake, _srv, cf) = setup().await;
    fake.common().fail_next(1, 502);
    cf.get_ns(&d("registered.com")).await.unwrap();
    fake.common().fail_next(10, 503);
    let e = cf.get_ns(&d("registered.com")).await.unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e:?}");
    assert!(e.is_transient());
}
