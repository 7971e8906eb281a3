//! Namecheap adapter against its fake, over real HTTP on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pdm_adapters::fake::namecheap::FakeNamecheap;
use pdm_adapters::fake::FakeServer;
use pdm_adapters::http::{HttpConfig, RateLimit, RetryPolicy};
use pdm_adapters::namecheap::Namecheap;
use pdm_adapters::{
    Change, Credentials, Glue, NsSet, RegistrableDomain, Registrar, RegistrarError, RegistrarId,
    Secret,
};

const KEY: &str = "NCKEY-0123456789abcdefSECRET";

fn creds(key: &str, ip: &str) -> Credentials {
    Credentials::Namecheap {
        api_user: "alice".into(),
        api_key: Secret::new(key),
        user_name: "alice".into(),
        client_ip: ip.into(),
    }
}

fn config(srv: &FakeServer) -> HttpConfig {
    HttpConfig::new(
        RegistrarId::Namecheap,
        format!("{}/xml.response", srv.base_url()),
    )
    .with_limits(vec![])
    .with_retry(RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    })
}

async fn setup() -> (Arc<FakeNamecheap>, FakeServer, Namecheap) {
    let fake = FakeNamecheap::new("alice", KEY);
    fake.add_domain("example.com");
    fake.add_domain("example.co.uk");
    let srv = fake.start().await.unwrap();
    let nc = Namecheap::with_config(creds(KEY, "198.51.100.7"), config(&srv)).unwrap();
    (fake, srv, nc)
}

fn d(s: &str) -> RegistrableDomain {
    RegistrableDomain::parse(s).unwrap()
}

fn ns(hosts: &[&str]) -> NsSet {
    NsSet::new(hosts.iter().copied()).unwrap()
}

#[tokio::test]
async fn validate_reports_account_and_domain() {
    let (_fake, _srv, nc) = setup().await;
    let v = nc.validate(Some(&d("example.com"))).await.unwrap();
    assert_eq!(v.account.as_deref(), Some("alice"));
    assert_eq!(v.domain_in_account, Some(true));
    assert!(!v.scope.is_empty());
    let caps = nc.capabilities();
    assert!(caps.set_ns && caps.glue && !caps.set_ds && !caps.delegate_subdomain);
}

#[tokio::test]
async fn bad_key_is_invalid_credentials_and_never_echoed() {
    let (_fake, srv, _) = setup().await;
    let wrong = "WRONGKEY-SECRET-VALUE";
    let nc = Namecheap::with_config(creds(wrong, "198.51.100.7"), config(&srv)).unwrap();
    let e = nc.validate(None).await.unwrap_err();
    assert_eq!(
        e,
        RegistrarError::InvalidCredentials {
            registrar: RegistrarId::Namecheap
        }
    );
    assert!(!e.to_string().contains(wrong) && !format!("{e:?}").contains(wrong));
    assert!(!format!("{nc:?}").contains(wrong), "{nc:?}");
}

#[tokio::test]
async fn whitelist_is_checked_on_the_source_ip() {
    let (fake, _srv, nc) = setup().await;
    fake.set_whitelist(vec![IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))]);
    let e = nc.validate(None).await.unwrap_err();
    match &e {
        RegistrarError::IpNotWhitelisted { detail, .. } => {
            assert!(detail.contains("127.0.0.1"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains(KEY));
}

#[tokio::test]
async fn ipv6_client_ip_is_refused_before_sending() {
    let (fake, srv, _) = setup().await;
    let e = Namecheap::with_config(creds(KEY, "2001:db8::1"), config(&srv)).unwrap_err();
    assert!(matches!(e, RegistrarError::InvalidInput(_)));
    assert_eq!(fake.common().counters.total_requests(), 0);
}

#[tokio::test]
async fn ineligible_account_is_not_a_bad_key() {
    let (fake, _srv, nc) = setup().await;
    fake.set_eligible(false);
    let e = nc.validate(None).await.unwrap_err();
    assert!(
        matches!(e, RegistrarError::AccountNotEligible { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn unknown_and_foreign_domains_are_not_in_account() {
    let (fake, _srv, nc) = setup().await;
    fake.add_foreign_domain("theirs.com");
    for name in ["missing.com", "theirs.com"] {
        let e = nc.validate(Some(&d(name))).await.unwrap_err();
        assert_eq!(
            e,
            RegistrarError::DomainNotInAccount {
                registrar: RegistrarId::Namecheap,
                domain: name.into()
            }
        );
    }
}

#[tokio::test]
async fn list_reads_every_page() {
    let (fake, _srv, nc) = setup().await;
    for i in 0..23 {
        fake.add_domain(&format!("d{i:02}.net"));
    }
    let nc = nc.with_page_size(10);
    let all = nc.list_domains().await.unwrap();
    assert_eq!(all.len(), 25);
    assert!(all.contains(&"example.co.uk".to_string()) && all.contains(&"d22.net".to_string()));
    assert_eq!(
        fake.common().counters.requests("namecheap.domains.getlist"),
        3
    );
}

#[tokio::test]
async fn set_ns_reads_first_and_skips_equal_sets() {
    let (fake, _srv, nc) = setup().await;
    let dom = d("example.com");
    let cur = nc.get_ns(&dom).await.unwrap();
    assert_eq!(
        cur.hosts(),
        ["dns1.registrar-servers.com", "dns2.registrar-servers.com"]
    );
    // Same set in another spelling: nothing is written.
    let same = ns(&["DNS2.registrar-servers.com.", "dns1.registrar-servers.com"]);
    assert_eq!(nc.set_ns(&dom, &same).await.unwrap(), Change::Unchanged);
    assert_eq!(fake.common().counters.writes("example.com"), 0);

    let want = ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]);
    assert_eq!(nc.set_ns(&dom, &want).await.unwrap(), Change::Applied);
    assert_eq!(
        fake.ns("example.com"),
        ["ns1.pdm.example.net", "ns2.pdm.example.net"]
    );
    assert_eq!(nc.set_ns(&dom, &want).await.unwrap(), Change::Unchanged);
    assert_eq!(fake.common().counters.writes("example.com"), 1);
    assert_eq!(nc.get_ns(&dom).await.unwrap(), want);
}

#[tokio::test]
async fn psl_split_reaches_co_uk() {
    let (fake, _srv, nc) = setup().await;
    let want = ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]);
    assert_eq!(
        nc.set_ns(&d("example.co.uk"), &want).await.unwrap(),
        Change::Applied
    );
    assert_eq!(
        fake.ns("example.co.uk"),
        ["ns1.pdm.example.net", "ns2.pdm.example.net"]
    );
}

#[tokio::test]
async fn glue_create_update_and_skip() {
    let (fake, _srv, nc) = setup().await;
    let dom = d("example.com");
    assert!(nc
        .get_glue(&dom, "ns1.example.com")
        .await
        .unwrap()
        .addresses
        .is_empty());
    let g = |ip: [u8; 4]| Glue {
        host: "ns1.example.com".into(),
        addresses: vec![IpAddr::V4(Ipv4Addr::from(ip))],
    };
    assert_eq!(
        nc.set_glue(&dom, &g([192, 0, 2, 1])).await.unwrap(),
        Change::Applied
    );
    assert_eq!(
        fake.glue("example.com", "ns1.example.com"),
        Some(Ipv4Addr::new(192, 0, 2, 1))
    );
    assert_eq!(
        nc.set_glue(&dom, &g([192, 0, 2, 1])).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(fake.common().counters.writes("example.com"), 1);
    // Update sends OldIP; the fake refuses a wrong one.
    assert_eq!(
        nc.set_glue(&dom, &g([192, 0, 2, 2])).await.unwrap(),
        Change::Applied
    );
    assert_eq!(
        fake.glue("example.com", "ns1.example.com"),
        Some(Ipv4Addr::new(192, 0, 2, 2))
    );
    assert_eq!(
        nc.get_glue(&dom, "ns1.example.com").await.unwrap(),
        g([192, 0, 2, 2])
    );

    let v6 = Glue {
        host: "ns1.example.com".into(),
        addresses: vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
    };
    assert!(matches!(
        nc.set_glue(&dom, &v6).await.unwrap_err(),
        RegistrarError::Unsupported { .. }
    ));
    let outside = Glue {
        host: "ns1.other.net".into(),
        addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    };
    assert!(matches!(
        nc.set_glue(&dom, &outside).await.unwrap_err(),
        RegistrarError::InvalidInput(_)
    ));
    assert_eq!(fake.common().counters.writes("example.com"), 2);
}

#[tokio::test]
async fn http_405_is_retried_then_reported() {
    let (fake, _srv, nc) = setup().await;
    fake.common().rate_limit_next(1, Duration::from_secs(1));
    nc.get_ns(&d("example.com")).await.unwrap();
    assert_eq!(fake.common().rate_limited(), 1);

    fake.common().rate_limit_next(10, Duration::from_secs(1));
    let e = nc.get_ns(&d("example.com")).await.unwrap_err();
    // Namecheap sends no Retry-After: the error says so honestly.
    assert_eq!(
        e,
        RegistrarError::RateLimited {
            registrar: RegistrarId::Namecheap,
            retry_after: None
        }
    );
    assert!(e.is_transient());
}

#[tokio::test]
async fn client_side_limiter_keeps_under_the_budget() {
    let fake = FakeNamecheap::new("alice", KEY);
    fake.add_domain("example.com");
    let srv = fake.start().await.unwrap();
    let window = Duration::from_millis(600);
    fake.common().set_budget(3, window);
    let cfg = config(&srv).with_limits(vec![RateLimit::new(3, window)]);
    let nc = Namecheap::with_config(creds(KEY, "198.51.100.7"), cfg).unwrap();
    let start = Instant::now();
    for _ in 0..7 {
        nc.get_ns(&d("example.com")).await.unwrap();
    }
    assert_eq!(
        fake.common().rate_limited(),
        0,
        "the fake never had to answer 405"
    );
    assert!(fake.common().peak_in_window() <= 3);
    assert_eq!(fake.common().counters.total_requests(), 7);
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn server_errors_and_transport_failures_are_unavailable() {
    let (fake, srv, nc) = setup().await;
    fake.common().fail_next(1, 503);
    nc.get_ns(&d("example.com")).await.unwrap();
    fake.common().fail_next(5, 502);
    let e = nc.get_ns(&d("example.com")).await.unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e:?}");

    // Writes are not retried on 5xx: the first attempt may have been applied.
    let want = ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]);
    fake.common()
        .fail_next_on("namecheap.domains.dns.setcustom", 3, 500);
    let e = nc.set_ns(&d("example.com"), &want).await.unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e:?}");
    assert_eq!(
        fake.common()
            .counters
            .requests("namecheap.domains.dns.setcustom"),
        1
    );

    // Nothing listening: a transport error, without the key in it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = HttpConfig::new(
        RegistrarId::Namecheap,
        format!("http://{closed}/xml.response"),
    )
    .with_limits(vec![])
    .with_retry(RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(5),
        ..RetryPolicy::default()
    });
    let nc = Namecheap::with_config(creds(KEY, "198.51.100.7"), cfg).unwrap();
    let e = nc.get_ns(&d("example.com")).await.unwrap_err();
    assert!(matches!(e, RegistrarError::Unavailable { .. }), "{e:?}");
    assert!(!e.to_string().contains(KEY) && !format!("{e:?}").contains(KEY));
    drop(srv);
}
