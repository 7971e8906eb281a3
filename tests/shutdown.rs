//! SIGTERM drains (docs/contract.md "Lifecycle"): `/readyz` answers 503 at
//! once, requests are still accepted during `shutdown_delay`, every request
//! the server had begun reading is answered, and the process exits 0; a
//! request that never finishes cannot hold it past `shutdown_grace`.

#[macro_use]
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A `POST .../reserve` whose body is sent in two halves: after the first,
/// the server has accepted the request and is reading it.
struct HalfSent {
    stream: TcpStream,
    rest: Vec<u8>,
}

fn start_reserve(srv: &PdmServer, token: &str, sub: &str) -> HalfSent {
    let body = format!(r#"{{"subdomain":"{sub}"}}"#).into_bytes();
    let mut stream = TcpStream::connect(srv.http_addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST /api/v1/pool/example.test/reserve HTTP/1.1\r\nHost: pdm\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let half = body.len() / 2;
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(&body[..half]).expect("send half");
    stream.flush().expect("flush");
    HalfSent {
        stream,
        rest: body[half..].to_vec(),
    }
}

impl HalfSent {
    /// Send the rest and read the whole answer: (status, body).
    fn finish(mut self) -> Result<(u16, String), String> {
        self.stream
            .write_all(&self.rest)
            .map_err(|e| format!("send rest: {e}"))?;
        let mut raw = Vec::new();
        self.stream
            .read_to_end(&mut raw)
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        Ok((status, body))
    }
}

fn readyz(srv: &PdmServer) -> Option<u16> {
    reqwest::blocking::Client::new()
        .get(format!("{}/readyz", srv.http_base()))
        .timeout(Duration::from_secs(2))
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

#[test]
fn sigterm_drops_no_accepted_request() {
    let env = [
        ("PDM_SHUTDOWN_DELAY_SECS", "3"),
        ("PDM_SHUTDOWN_GRACE_SECS", "10"),
    ];
    let Some(mut srv) = PdmServer::start_with_env(Backend::Sqlite, Config::default_test(), &env)
    else {
        return;
    };
    let token = srv.admin_token();
    let in_flight: Vec<HalfSent> = (0..8)
        .map(|i| start_reserve(&srv, &token, &format!("inflight{i}")))
        .collect();
    // A client that keeps calling (fresh connections) until /readyz says
    // the node is going, as a load balancer's health check would.
    let stop_at = Instant::now() + Duration::from_secs(15);
    let load = {
        let base = srv.http_base();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            let (mut ok, mut failed) = (0u32, Vec::new());
            while Instant::now() < stop_at {
                match client
                    .get(format!("{base}/api/v1/pool/example.test/check?sub=load"))
                    .send()
                {
                    Ok(r) if r.status().as_u16() == 200 => ok += 1,
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
                match client.get(format!("{base}/readyz")).send() {
                    Ok(r) if r.status().as_u16() == 503 => break,
                    Ok(_) => {}
                    Err(e) => {
                        failed.push(format!("readyz: {e}"));
                        break;
                    }
                }
            }
            (ok, failed)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    srv.sigterm();
    // 503 at once, while requests are still accepted.
    let mut seen = None;
    let turned = wait_for(Duration::from_secs(2), || {
        seen = readyz(&srv);
        seen == Some(503)
    });
    assert!(
        turned,
        "/readyz did not turn 503 within 1 s (last {seen:?})"
    );
    let (ok, failed) = load.join().expect("load thread");
    assert!(ok > 0, "the load client got no answer at all");
    assert!(
        failed.is_empty(),
        "requests failed while draining: {failed:?}"
    );
    // Past the delay the listener is closed while those requests are still
    // being read: they must be answered all the same, in full.
    while signalled.elapsed() < Duration::from_millis(4000) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        TcpStream::connect(srv.http_addr).is_err(),
        "the listener still accepts after the delay"
    );
    for (i, req) in in_flight.into_iter().enumerate() {
        let (status, body) = req
            .finish()
            .unwrap_or_else(|e| panic!("in-flight request {i} dropped: {e}\n{}", srv.log()));
        assert_eq!(status, 201, "in-flight request {i}: {body}");
        let v: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(v["subdomain"], format!("inflight{i}"));
    }
    let status = srv
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still running 15 s after SIGTERM\n{}", srv.log()));
    assert!(status.success(), "exit {status}\n{}", srv.log());
    assert!(
        signalled.elapsed() >= Duration::from_secs(3),
        "left before the shutdown delay"
    );
    assert!(srv.log().contains("draining"), "{}", srv.log());
    // What they reserved is in the database.
    srv.restart();
    let (st, list) = srv.get("/api/v1/pool/example.test/list", Some(&token));
    assert_eq!(st, 200, "{list}");
    let held = list["allocations"].as_array().expect("allocations").len();
    assert_eq!(held, 8, "{list}");
}

#[test]
fn a_stuck_request_cannot_hold_the_exit_past_the_grace() {
    let env = [
        ("PDM_SHUTDOWN_DELAY_SECS", "0"),
        ("PDM_SHUTDOWN_GRACE_SECS", "2"),
    ];
    let Some(mut srv) = PdmServer::start_with_env(Backend::Sqlite, Config::default_test(), &env)
    else {
        return;
    };
    let token = srv.admin_token();
    let stuck = start_reserve(&srv, &token, "stuck");
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    srv.sigterm();
    let status = srv
        .wait_exit(Duration::from_secs(8))
        .unwrap_or_else(|| panic!("a stuck request held the process\n{}", srv.log()));
    let took = signalled.elapsed();
    assert!(status.success(), "exit {status}\n{}", srv.log());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "exited after {took:?} (grace 2 s)"
    );
    assert!(srv.log().contains("grace period over"), "{}", srv.log());
    drop(stuck);
}
