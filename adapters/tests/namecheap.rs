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

/// Records on Namecheap's own DNS (set-dns): `dns.setHosts` / `dns.getHosts`.
mod host_records {
    use super::*;
    use pdm_adapters::{HostRecord, HostRecordType};

    fn rec(sub: &str, t: HostRecordType, value: &str, ttl: u32, prio: Option<u16>) -> HostRecord {
        HostRecord {
            subhost: sub.into(),
            rtype: t,
            value: value.into(),
            ttl,
            priority: prio,
        }
    }

    fn wanted() -> Vec<HostRecord> {
        vec![
            rec("", HostRecordType::A, "192.0.2.10", 300, None),
            rec("www", HostRecordType::Cname, "example.com", 1800, None),
            rec("", HostRecordType::Mx, "mail.example.net", 3600, Some(10)),
            rec("", HostRecordType::Mx, "backup.example.net", 3600, Some(20)),
            rec("", HostRecordType::Txt, "v=spf1 -all", 600, None),
            rec("v6", HostRecordType::Aaaa, "2001:db8::10", 300, None),
        ]
    }

    #[tokio::test]
    async fn set_replaces_everything_and_reads_back() {
        let (fake, _srv, nc) = setup().await;
        assert!(nc.capabilities().host_records);
        let dom = d("example.com");
        // A new domain carries the parking records; the URL one is outside set-dns.
        let before = nc.get_host_records(&dom).await.unwrap();
        assert_eq!(
            before,
            vec![rec(
                "www",
                HostRecordType::Cname,
                "parkingpage.namecheap.com",
                1800,
                None
            )]
        );
        assert_eq!(
            nc.set_host_records(&dom, &wanted()).await.unwrap(),
            Change::Applied
        );
        // Full replace: the parking records are gone, ours are there, in Namecheap's words.
        let stored = fake.host_records("example.com");
        assert_eq!(stored.len(), 6);
        assert!(stored.iter().all(|r| r.rtype != "URL"));
        let apex_a = stored.iter().find(|r| r.rtype == "A").unwrap();
        assert_eq!((apex_a.name.as_str(), apex_a.ttl), ("@", 300));
        let mx: Vec<(String, u16)> = stored
            .iter()
            .filter(|r| r.rtype == "MX")
            .map(|r| (r.address.clone(), r.mx_pref))
            .collect();
        assert!(mx.contains(&("mail.example.net".into(), 10)));
        assert!(mx.contains(&("backup.example.net".into(), 20)));
        assert_eq!(fake.email_type("example.com").as_deref(), Some("MX"));
        // Read-back equals what was asked (normalised, sorted).
        assert_eq!(
            nc.get_host_records(&dom).await.unwrap(),
            HostRecord::normalised_set(&wanted())
        );
        // The same set again: no write.
        assert_eq!(
            nc.set_host_records(&dom, &wanted()).await.unwrap(),
            Change::Unchanged
        );
        assert_eq!(fake.common().counters.writes("example.com"), 1);
        // A smaller set replaces, not merges.
        let one = vec![rec("", HostRecordType::A, "192.0.2.99", 300, None)];
        nc.set_host_records(&dom, &one).await.unwrap();
        assert_eq!(nc.get_host_records(&dom).await.unwrap(), one);
    }

    #[tokio::test]
    async fn refused_while_the_domain_uses_other_nameservers() {
        let (fake, _srv, nc) = setup().await;
        let dom = d("example.com");
        nc.set_ns(&dom, &ns(&["ns1.pdm.example.net", "ns2.pdm.example.net"]))
            .await
            .unwrap();
        for e in [
            nc.set_host_records(&dom, &wanted()).await.unwrap_err(),
            nc.get_host_records(&dom).await.unwrap_err(),
        ] {
            assert_eq!(e.code(), "registrar-rejected", "{e:?}");
            let reason =
                "Cannot complete this command as this domain is not using proper DNS servers";
            assert!(e.to_string().contains(reason), "{e}");
            assert!(e.upstream_message().is_some_and(|m| m.contains("2030288")));
            assert!(!e.to_string().contains(KEY) && !format!("{e:?}").contains(KEY));
        }
        assert_eq!(fake.host_records("example.com").len(), 2);
    }

    #[tokio::test]
    async fn empty_sets_are_refused_before_sending() {
        let (fake, _srv, nc) = setup().await;
        let e = nc
            .set_host_records(&d("example.com"), &[])
            .await
            .unwrap_err();
        assert!(matches!(e, RegistrarError::InvalidInput(_)), "{e:?}");
        assert_eq!(fake.common().counters.total_writes(), 0);
    }
}

/// Raw forms: the fake's setHosts refuses what Namecheap refuses.
mod fake_set_hosts {
    use super::*;

    async fn post(srv: &FakeServer, extra: &[(&str, &str)]) -> String {
        let mut form: Vec<(&str, &str)> = vec![
            ("ApiUser", "alice"),
            ("ApiKey", KEY),
            ("UserName", "alice"),
            ("ClientIp", "127.0.0.1"),
            ("Command", "namecheap.domains.dns.setHosts"),
            ("SLD", "example"),
            ("TLD", "com"),
        ];
        form.extend_from_slice(extra);
        reqwest::Client::new()
            .post(format!("{}/xml.response", srv.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn parameters_are_checked() {
        let (fake, srv, _nc) = setup().await;
        let a = [
            ("HostName1", "@"),
            ("RecordType1", "A"),
            ("Address1", "192.0.2.1"),
            ("TTL1", "300"),
        ];
        // 0-indexed: refused.
        let zero = [
            ("HostName0", "@"),
            ("RecordType0", "A"),
            ("Address0", "192.0.2.1"),
        ];
        assert!(post(&srv, &zero).await.contains("Status=\"ERROR\""));
        // A gap: refused.
        let gap = [
            a[0],
            a[1],
            a[2],
            ("HostName3", "x"),
            ("RecordType3", "A"),
            ("Address3", "192.0.2.3"),
        ];
        assert!(post(&srv, &gap).await.contains("Status=\"ERROR\""));
        // MX without EmailType=MX, and MX without MXPref: refused.
        let mx = [
            ("HostName1", "@"),
            ("RecordType1", "MX"),
            ("Address1", "mx.example.net"),
            ("MXPref1", "10"),
        ];
        assert!(post(&srv, &mx).await.contains("EmailType must be MX"));
        let no_pref = [mx[0], mx[1], mx[2], ("EmailType", "MX")];
        assert!(post(&srv, &no_pref).await.contains("MXPref1 is required"));
        // TTL out of range: refused.
        let ttl = [a[0], a[1], a[2], ("TTL1", "5")];
        assert!(post(&srv, &ttl).await.contains("TTL1 must be between"));
        assert_eq!(fake.common().counters.total_writes(), 0);
        // The right form is taken.
        assert!(post(&srv, &a).await.contains("IsSuccess=\"true\""));
        assert_eq!(fake.host_records("example.com").len(), 1);
    }
}
