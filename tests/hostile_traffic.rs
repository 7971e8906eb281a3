//! Hostile traffic against `pdm serve` as configured by an operator
//! (`[rrl]`, `[cookies]`, `[tcp]`): `dig +cookie` gets a server cookie and
//! a wrong one is replaced (RFC 7873 §5.2.4); a UDP flood from one loopback
//! source is held to the configured rate while another source is answered,
//! and `/metrics` counts it. The data-plane tests (dns/src/server/
//! hostile_tests.rs) cover the limits in depth; this proves the wiring.

#[macro_use]
mod common;
use common::*;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

/// The COOKIE dig printed (client + server, hex), and whether it said "good".
fn dig_cookie(srv: &PdmServer, cookie_arg: &str) -> (String, String) {
    let out = Command::new("dig")
        .args([
            &format!("@{}", srv.dns_addr.ip()),
            "-p",
            &srv.dns_addr.port().to_string(),
            "+norec",
            "+tries=1",
            "+time=2",
            cookie_arg,
            "example.test",
            "SOA",
        ])
        .output()
        .expect("dig (dnsutils) runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let cookie = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("; COOKIE: "))
        .unwrap_or_default()
        .to_string();
    (cookie, text)
}

fn config() -> Config {
    Config::default_test().extra(
        "[rrl]\nresponses_per_second = 20\nslip = 2\nexempt = []\nlog_interval_secs = 1\n\
         [cookies]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\n\
         [tcp]\nmax_connections = 50\nidle_timeout_ms = 2000\n",
    )
}

#[test]
fn dig_cookie_gets_a_server_cookie_and_a_wrong_one_is_replaced() {
    let srv = start_or_skip!(Backend::Sqlite, config());
    let (cookie, text) = dig_cookie(&srv, "+cookie");
    assert!(text.contains("status: NOERROR"), "{text}");
    // 8 bytes of client cookie, 16 of server cookie (RFC 9018), in hex.
    let hex: String = cookie
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(hex.len(), 48, "{text}");
    assert!(cookie.contains("(good)"), "{text}");
    // The server cookie we were given is accepted when sent back.
    let (again, text) = dig_cookie(&srv, &format!("+cookie={hex}"));
    assert!(text.contains("status: NOERROR"), "{text}");
    assert!(again.contains("(good)"), "{text}");
    // A wrong server cookie: a normal answer with a fresh server cookie.
    let wrong = format!("{}{}", &hex[..16], "01000000aaaaaaaabbbbbbbbcccccccc");
    let (fresh, text) = dig_cookie(&srv, &format!("+cookie={wrong}"));
    assert!(text.contains("status: NOERROR"), "{text}");
    assert!(text.contains("ANSWER: 1"), "{text}");
    assert!(fresh.starts_with(&hex[..16]), "{text}");
    assert!(!fresh.starts_with(&wrong), "a new server cookie: {text}");
    assert!(fresh.contains("(good)"), "{text}");
}

/// A query for the pool's SOA with id `id`.
fn soa_query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(b"\x07example\x04test\x00\x00\x06\x00\x01");
    q
}

#[test]
fn a_udp_flood_from_one_source_is_limited_and_counted() {
    let srv = start_or_skip!(Backend::Sqlite, config());
    let flood = UdpSocket::bind("127.0.0.9:0").unwrap();
    flood
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let other = UdpSocket::bind("127.0.1.10:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let started = Instant::now();
    let mut other_answered = 0;
    for i in 0..200u16 {
        flood.send_to(&soa_query(i), srv.dns_addr).unwrap();
        if i % 20 == 0 {
            other.send_to(&soa_query(i), srv.dns_addr).unwrap();
            let mut buf = [0u8; 1500];
            if other.recv(&mut buf).is_ok_and(|n| n > 12 && buf[7] == 1) {
                other_answered += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 1500];
    while let Ok(n) = flood.recv(&mut buf) {
        assert!(n >= 12);
        if buf[2] & 0x02 != 0 {
            truncated += 1;
        } else {
            full += 1;
        }
    }
    assert_eq!(other_answered, 10, "the other source got every answer");
    let allowance = 20 * (took.as_secs() as usize + 2);
    assert!(
        (20..=allowance).contains(&full),
        "{full} full answers in {took:?}"
    );
    assert!(truncated >= (200 - full) / 2 - 2, "{truncated} TC replies");
    let metrics = srv.request("GET", "/metrics", None, Body::None, &[]).text;
    let limited: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("pdm_dns_rrl_limited_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(limited as usize, 200 - full, "{metrics}");
    assert!(
        metrics.contains("pdm_dns_rrl_table_bytes 8388608"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pdm_dns_tcp_connections_open 0"),
        "{metrics}"
    );
    // Logged as a summary: a line a second at most, not one per drop.
    std::thread::sleep(Duration::from_millis(1500));
    let log = srv.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("response rate limiting held back"))
        .count();
    let seconds = started.elapsed().as_secs() as usize;
    assert!((1..=seconds + 1).contains(&lines), "{lines} lines: {log}");
}
