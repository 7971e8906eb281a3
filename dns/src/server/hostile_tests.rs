//! Hostile traffic against a real server on loopback: a UDP flood under
//! response rate limiting, DNS cookies over both transports, and a
//! thousand idle TCP connections. Limits are small so each test takes
//! seconds.

use super::cookie::{CookieSettings, OPTION_CODE};
use super::metrics::{CookieSeen, RrlAction, TcpClose};
use super::rrl::{ResponseClass, RrlSettings};
use super::*;
use crate::zone::file::parse_master;
use crate::zone::Zone;
use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Instant};

fn zones() -> SharedZones {
    let (origin, records) = parse_master(
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hm 7 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\n",
        None,
    )
    .unwrap();
    let mut set = ZoneSet::new();
    set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
    Arc::new(ArcSwap::from_pointee(set))
}

/// A server with `handler`'s settings on a free loopback port.
async fn start(configure: impl FnOnce(Handler) -> Handler) -> (SocketAddr, Handler) {
    let handler = configure(Handler::new(zones()).with_packet_cache(1000));
    let (udp, tcp) = bind_pair("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    serve_handler(udp, tcp, handler.clone());
    (addr, handler)
}

/// RRL at `rate` per class, nothing exempt (the tests run on loopback).
fn rrl(rate: u32) -> Option<RrlSettings> {
    Some(RrlSettings {
        rates: [rate; 4],
        slip: 2,
        exempt: Vec::new(),
        table_size: 4096,
        ..RrlSettings::default()
    })
}

/// A query, with a COOKIE option of `cookie` bytes when given.
fn query(id: u16, name: &str, cookie: Option<&[u8]>, keepalive: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    if cookie.is_some() || keepalive {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        if let Some(c) = cookie {
            e.options_mut()
                .insert(EdnsOption::Unknown(OPTION_CODE, c.to_vec()));
        }
        if keepalive {
            e.options_mut().insert(EdnsOption::Unknown(11, Vec::new()));
        }
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// The COOKIE option data of a response.
fn cookie_of(m: &Message) -> Option<Vec<u8>> {
    match m.edns.as_ref()?.options().get(EdnsCode::Cookie)? {
        EdnsOption::Unknown(_, d) => Some(d.clone()),
        _ => None,
    }
}

/// One UDP exchange from `from`.
async fn udp_from(from: &str, addr: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let sock = tokio::net::UdpSocket::bind((from, 0)).await.unwrap();
    sock.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = timeout(Duration::from_secs(1), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

async fn tcp_exchange(stream: &mut TcpStream, bytes: &[u8]) -> Message {
    let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
    stream.write_all(&len).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut lb = [0u8; 2];
    timeout(Duration::from_secs(2), stream.read_exact(&mut lb))
        .await
        .unwrap()
        .unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
    stream.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

/// What came back for a flood.
#[derive(Debug, Default)]
struct Tally {
    full: usize,
    truncated: usize,
    badcookie: usize,
}

/// Send `count` queries from `from` spread over `over`, and tally the replies.
async fn flood(
    from: &str,
    addr: SocketAddr,
    count: usize,
    over: Duration,
    cookie: Option<&[u8]>,
) -> (Tally, Duration) {
    let sock = Arc::new(tokio::net::UdpSocket::bind((from, 0)).await.unwrap());
    let rx = sock.clone();
    let receiver = tokio::spawn(async move {
        let mut tally = Tally::default();
        let mut buf = vec![0u8; 65535];
        while let Ok(Ok((n, _))) = timeout(Duration::from_millis(500), rx.recv_from(&mut buf)).await
        {
            let m = Message::from_vec(&buf[..n]).unwrap();
            if m.metadata.response_code == ResponseCode::BADCOOKIE {
                tally.badcookie += 1;
            } else if m.metadata.truncation {
                assert!(m.answers.is_empty());
                tally.truncated += 1;
            } else {
                assert_eq!(m.answers.len(), 1, "{m:?}");
                tally.full += 1;
            }
        }
        tally
    });
    let started = Instant::now();
    let gap = over / u32::try_from(count).unwrap();
    for i in 0..count {
        let q = query(i as u16, "www.example.com.", cookie, false);
        sock.send_to(&q, addr).await.unwrap();
        tokio::time::sleep_until(started + gap * (i as u32 + 1)).await;
    }
    let took = started.elapsed();
    (receiver.await.unwrap(), took)
}

/// The most full answers a limit of `rate` per second lets through in
/// `took`: one window per second boundary crossed, plus the first.
fn allowance(rate: usize, took: Duration) -> usize {
    rate * (took.as_secs() as usize + 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_source_is_limited_and_another_is_not() {
    let rate = 20;
    let (addr, handler) = start(|h| {
        h.with_rrl(rrl(rate))
            .with_cookies(Some(CookieSettings::default()))
    })
    .await;
    // A client at the flooding address learns its server cookie first.
    let learned = udp_from(
        "127.0.0.9",
        addr,
        &query(1, "www.example.com.", Some(&[4; 8]), false),
    )
    .await
    .expect("an answer");
    let cookie = cookie_of(&learned).expect("a server cookie");
    let legit = tokio::spawn(async move {
        // A second source, in another /24, at a tenth of the limit.
        let mut answered = 0;
        for i in 0..10 {
            let q = query(i, "www.example.com.", None, false);
            if udp_from("127.0.1.10", addr, &q)
                .await
                .is_some_and(|m| m.answers.len() == 1 && !m.metadata.truncation)
            {
                answered += 1;
            }
            sleep(Duration::from_millis(80)).await;
        }
        answered
    });
    // 10× the limit for a second, answered from the packet cache.
    let (tally, took) = flood("127.0.0.9", addr, 200, Duration::from_secs(1), None).await;
    assert_eq!(
        legit.await.unwrap(),
        10,
        "the other source got every answer"
    );
    let limit = allowance(rate as usize, took);
    assert!(
        tally.full <= limit && tally.full >= rate as usize,
        "{tally:?} in {took:?}: at most {limit} full answers"
    );
    let limited = 200 - tally.full;
    // slip 2: every second limited response is a TC=1 reply.
    assert!(
        tally.truncated >= limited / 2 - 2 && tally.truncated <= limited / 2 + 2,
        "{tally:?}"
    );
    let snap = handler.metrics().snapshot();
    let dropped = snap
        .udp
        .rate_limited(ResponseClass::Answer, RrlAction::Dropped);
    let slipped = snap
        .udp
        .rate_limited(ResponseClass::Answer, RrlAction::Slipped);
    assert_eq!(slipped as usize, tally.truncated);
    assert_eq!((dropped + slipped) as usize, limited);
    assert!(
        snap.udp.cache_hits > 100,
        "the flood was served from the cache"
    );

    // The same address with its valid server cookie is not limited.
    let (tally, _) = flood(
        "127.0.0.9",
        addr,
        100,
        Duration::from_millis(300),
        Some(&cookie),
    )
    .await;
    assert_eq!(tally.full, 100, "{tally:?}");
    assert!(handler.metrics().snapshot().udp.cookies(CookieSeen::Valid) >= 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limited_clients_with_a_client_cookie_slip_as_badcookie() {
    let (addr, handler) = start(|h| {
        h.with_rrl(rrl(10))
            .with_cookies(Some(CookieSettings::default()))
    })
    .await;
    let (tally, took) = flood(
        "127.0.0.9",
        addr,
        60,
        Duration::from_millis(200),
        Some(&[8; 8]),
    )
    .await;
    assert!(tally.full <= allowance(10, took), "{tally:?}");
    assert_eq!(tally.truncated, 0, "cookie clients get BADCOOKIE, not TC");
    // slip 2: half the limited responses (the slip count restarts with
    // each second's window, hence the slack).
    let limited = 60 - tally.full;
    assert!(
        tally.badcookie >= limited / 2 - 2 && tally.badcookie >= 15,
        "{tally:?}"
    );
    let snap = handler.metrics().snapshot();
    assert_eq!(
        snap.udp.cookies(CookieSeen::BadCookie) as usize,
        tally.badcookie
    );
}

#[tokio::test]
async fn cookies_are_answered_over_udp_and_tcp_and_from_the_cache() {
    let (addr, handler) = start(|h| h.with_cookies(Some(CookieSettings::default()))).await;
    let cookies = handler.cookies().unwrap().clone();
    let client = [0xab; 8];
    let now = cookie::unix_now();
    for round in 0..2 {
        // The second round is a packet-cache hit: its cookie is still fresh
        // and made for this client.
        let m = udp_from(
            "127.0.0.1",
            addr,
            &query(1, "www.example.com.", Some(&client), false),
        )
        .await
        .unwrap();
        let c = cookie_of(&m).expect("a cookie");
        assert_eq!(c.len(), 24, "round {round}");
        assert_eq!(&c[..8], &client);
        let mut e = Edns::new();
        e.options_mut().insert(EdnsOption::Unknown(OPTION_CODE, c));
        assert_eq!(
            cookies.inspect(Some(&e), "127.0.0.1".parse().unwrap(), now),
            cookie::Presented::Valid(client),
            "round {round}"
        );
    }
    assert!(handler.packet_cache_hits().unwrap() >= 1);
    // A wrong server cookie: answered normally, with a fresh cookie
    // (RFC 7873 §5.2.4 → §5.2.3, our choice when not rate limited).
    let mut wrong = client.to_vec();
    wrong.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]);
    let m = udp_from(
        "127.0.0.1",
        addr,
        &query(2, "www.example.com.", Some(&wrong), false),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    let fresh = cookie_of(&m).unwrap();
    assert_ne!(&fresh[8..], &wrong[8..]);
    // A malformed option: FORMERR.
    let m = udp_from(
        "127.0.0.1",
        addr,
        &query(3, "www.example.com.", Some(&[1; 5]), false),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // TCP: the cookie, and the keepalive timeout when asked for it.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let m = tcp_exchange(&mut s, &query(4, "www.example.com.", Some(&client), true)).await;
    assert_eq!(&cookie_of(&m).unwrap()[..8], &client);
    let keepalive = match m.edns.as_ref().unwrap().options().get(EdnsCode::Keepalive) {
        Some(EdnsOption::Unknown(_, d)) => d.clone(),
        other => panic!("no keepalive: {other:?}"),
    };
    assert_eq!(keepalive, 100u16.to_be_bytes(), "10 s in units of 100 ms");
    let m = tcp_exchange(&mut s, &query(5, "www.example.com.", None, false)).await;
    assert!(m.edns.is_none(), "nothing unasked");
    // Not over UDP (RFC 7828 §3.2.1).
    let m = udp_from("127.0.0.1", addr, &query(6, "www.example.com.", None, true))
        .await
        .unwrap();
    assert!(m.edns.unwrap().options().get(EdnsCode::Keepalive).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_lock_out_a_new_client() {
    let limits = TcpLimits {
        max_connections: 1000,
        max_per_source: 2000,
        // Generous enough that the checks below finish before it on a
        // loaded CI machine; the test takes about this long.
        idle_timeout: Duration::from_secs(4),
        first_byte_timeout: Duration::from_secs(4),
    };
    let (addr, handler) = start(|h| h.with_tcp_limits(limits)).await;
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // At the cap: a new client still gets answers (the oldest idle goes).
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    let m = tcp_exchange(&mut fresh, &query(1, "www.example.com.", None, false)).await;
    assert_eq!(m.answers.len(), 1);
    let tcp = &handler.metrics().tcp_connections;
    assert!(tcp.closed_for(TcpClose::Evicted) >= 1);
    // UDP answers all the while.
    let mut udp_answered = 0;
    for i in 0..100 {
        if udp_from(
            "127.0.0.1",
            addr,
            &query(i, "www.example.com.", None, false),
        )
        .await
        .is_some()
        {
            udp_answered += 1;
        }
    }
    assert_eq!(udp_answered, 100);
    assert!(
        opened.elapsed() < Duration::from_millis(3500),
        "the checks above ran before the timeout"
    );
    // After the timeout every idle connection is closed by the server.
    let mut closed = 0;
    for s in &mut idle {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = timeout(Duration::from_secs(6), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000);
    assert!(
        tcp.closed_for(TcpClose::FirstByte) >= 998,
        "{}",
        tcp.closed_for(TcpClose::FirstByte)
    );
    // The busy client's connection went idle after its answer: closed too.
    let mut b = [0u8; 1];
    assert!(matches!(
        timeout(Duration::from_secs(6), fresh.read(&mut b)).await,
        Ok(Ok(0))
    ));
    assert!(tcp.closed_for(TcpClose::Idle) >= 1);
}

#[tokio::test]
async fn a_source_at_its_cap_loses_its_oldest_idle_connection() {
    let limits = TcpLimits {
        max_per_source: 3,
        ..TcpLimits::default()
    };
    let (addr, handler) = start(|h| h.with_tcp_limits(limits)).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    sleep(Duration::from_millis(20)).await;
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(TcpStream::connect(addr).await.unwrap());
    }
    sleep(Duration::from_millis(20)).await;
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    let m = tcp_exchange(&mut fourth, &query(1, "www.example.com.", None, false)).await;
    assert_eq!(m.answers.len(), 1);
    let mut b = [0u8; 1];
    assert!(
        matches!(
            timeout(Duration::from_secs(1), first.read(&mut b)).await,
            Ok(Ok(0))
        ),
        "the oldest was closed"
    );
    assert_eq!(
        handler
            .metrics()
            .tcp_connections
            .closed_for(TcpClose::Evicted),
        1
    );
    let m = tcp_exchange(&mut others[1], &query(2, "www.example.com.", None, false)).await;
    assert_eq!(m.answers.len(), 1, "the others still serve");
}

#[tokio::test]
async fn pipelined_queries_are_answered_in_order_one_at_a_time() {
    let (addr, _) = start(|h| h).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // Fifty queries in one write: answered in order (one in flight per
    // connection; the rest wait in the socket buffer).
    let mut burst = Vec::new();
    for id in 0..50u16 {
        let q = query(id, "www.example.com.", None, false);
        burst.extend_from_slice(&u16::try_from(q.len()).unwrap().to_be_bytes());
        burst.extend_from_slice(&q);
    }
    s.write_all(&burst).await.unwrap();
    for id in 0..50u16 {
        let mut lb = [0u8; 2];
        timeout(Duration::from_secs(2), s.read_exact(&mut lb))
            .await
            .unwrap()
            .unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
        s.read_exact(&mut buf).await.unwrap();
        let m = Message::from_vec(&buf).unwrap();
        assert_eq!(m.metadata.id, id);
        assert_eq!(m.answers.len(), 1);
    }
}

#[tokio::test]
async fn a_busy_connection_stays_open_and_an_idle_one_closes_after_the_idle_timeout() {
    let limits = TcpLimits {
        idle_timeout: Duration::from_millis(1500),
        first_byte_timeout: Duration::from_millis(1500),
        ..TcpLimits::default()
    };
    let (addr, _) = start(|h| h.with_tcp_limits(limits)).await;
    let mut busy = TcpStream::connect(addr).await.unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    tcp_exchange(&mut idle, &query(1, "www.example.com.", None, false)).await;
    // Not closed early.
    let mut b = [0u8; 1];
    let early = timeout(Duration::from_millis(500), idle.read(&mut b)).await;
    assert!(early.is_err(), "closed before the idle timeout: {early:?}");
    // A query every 0.5 s for 3.5 s: twice the idle timeout, never idle
    // for one, so the lazily moved timer must never close it.
    for id in 0..7 {
        let m = tcp_exchange(&mut busy, &query(id, "www.example.com.", None, false)).await;
        assert_eq!(m.metadata.id, id);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The idle one was closed by the server meanwhile.
    let closed = timeout(Duration::from_secs(3), idle.read(&mut b)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "the idle connection is still open: {closed:?}"
    );
    let m = tcp_exchange(&mut busy, &query(99, "www.example.com.", None, false)).await;
    assert_eq!(m.metadata.id, 99);
}

/// The server's end of the TCP connection whose client end is `client`:
/// found among this process's descriptors, since the server runs here.
fn server_end_of(client: &TcpStream) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{getpeername, getsockname, SockaddrStorage};
    let (local, peer) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry.unwrap().file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let (Ok(mine), Ok(theirs)) = (
            getsockname::<SockaddrStorage>(fd),
            getpeername::<SockaddrStorage>(fd),
        ) else {
            continue;
        };
        let as_addr = |a: SockaddrStorage| a.as_sockaddr_in().map(|s| SocketAddr::from(*s));
        if as_addr(mine) == Some(peer) && as_addr(theirs) == Some(local) {
            // A duplicate, so that the server closing its descriptor does
            // not leave this one dangling. SAFETY: `fd` was open a moment
            // ago (it answered getsockname) and the connection stays open
            // while the test holds its client end.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            return borrowed.try_clone_to_owned().unwrap();
        }
    }
    panic!("no server socket for {local} -> {peer}");
}

#[tokio::test]
async fn tcp_answers_are_sent_at_once_not_held_by_nagle() {
    // With Nagle's algorithm on (knotd leaves it on), an answer written
    // while the previous one is unacknowledged waits for the client's next
    // segment: a resolver that pipelines two queries gets the second answer
    // only when its delayed-ACK timer fires, ~40 ms later (measured against
    // knotd 3.2: median 42.8 ms, against pdm 0.12 ms).
    let (addr, _) = start(|h| h).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    tcp_exchange(&mut s, &query(1, "www.example.com.", None, false)).await;
    let server = server_end_of(&s);
    assert!(
        nix::sys::socket::getsockopt(&server, nix::sys::socket::sockopt::TcpNoDelay).unwrap(),
        "the server's socket has Nagle's algorithm on"
    );
}
