//! The UDP fast path: a few long-lived receive loops per socket instead of
//! hickory's task per datagram.
//!
//! hickory's UDP server spawns a task for every datagram and sends the reply
//! through a channel to the socket's own task; at authoritative rates that
//! bookkeeping cost more than answering. Here each loop drains the socket
//! whenever it is readable, a batch at a time (one `recvmmsg`, one
//! `sendmmsg`: [`mmsg`]), answers a cached question from an in-place read
//! and plans the rest into buffers it reuses. Only answers that need a full
//! LUA evaluation leave the loop (on a task of their own, so a slow program
//! never stalls the socket).

use super::cache::Echo;
use super::cookie::Presented;
use super::metrics::{header_rcode, qtype_of, CookieSeen, RrlAction, Transport, Writer};
use super::mmsg::{self, Outgoing, Received};
use super::respond::Plan;
use super::rrl::{ResponseClass, Verdict};
use super::{cache, wire, CacheRead, Decision, Handler};
use hickory_proto::op::ResponseCode;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Largest datagram we read; larger ones arrive cut and get FORMERR.
const RECV_BUFFER: usize = 65_535;
/// Datagrams answered before a loop yields to other tasks on its thread
/// (the API and TCP share the runtime; a flood must not starve them).
const BURST: usize = 64;

/// Socket buffer we ask for (the kernel caps it at `net.core.rmem_max`):
/// the default ~200 KiB holds only ~2,000 queries, which a scheduling hiccup
/// of a few milliseconds at 100k qps overflows.
const SOCKET_BUFFER: usize = 4 << 20;

/// Run `loops` receive loops on `socket` until the socket fails for good.
pub async fn serve(socket: UdpSocket, handler: Handler, loops: usize) {
    let sock = socket2::SockRef::from(&socket);
    for (what, set) in [
        ("receive", sock.set_recv_buffer_size(SOCKET_BUFFER)),
        ("send", sock.set_send_buffer_size(SOCKET_BUFFER)),
    ] {
        if let Err(error) = set {
            tracing::debug!(%error, "cannot enlarge the UDP {what} buffer");
        }
    }
    let socket = match socket.into_std().and_then(Socket::new) {
        Ok(s) => Arc::new(s),
        Err(error) => {
            tracing::error!(%error, "cannot register the UDP socket; DNS over UDP stopped");
            return;
        }
    };
    let mut set = tokio::task::JoinSet::new();
    for index in 0..loops.max(1) {
        set.spawn(receive_loop(socket.clone(), handler.clone(), index));
    }
    while set.join_next().await.is_some() {}
}

/// The server's UDP socket, registered with the reactor for reading only.
///
/// tokio's `UdpSocket` registers for writing too, and a UDP socket becomes
/// writable again after every datagram it sends: an edge-triggered
/// `EPOLLOUT` wake-up, and one more `epoll_wait`, per answer, for nothing
/// (strace: two `epoll_wait` per lone query, Knot makes one). Answers are
/// sent straight to the non-blocking socket; only a full send buffer (rare)
/// registers for writing, on a duplicate descriptor, until it drains.
struct Socket {
    io: AsyncFd<std::net::UdpSocket>,
}

impl Socket {
    fn new(socket: std::net::UdpSocket) -> std::io::Result<Socket> {
        socket.set_nonblocking(true)?;
        // SAFETY: the socket owns its descriptor, which nothing else closes
        // or replaces while it is registered.
        let io = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? };
        Ok(Socket { io })
    }

    /// Waits until the send buffer has room.
    async fn writable(&self) -> std::io::Result<()> {
        let dup = self.io.get_ref().try_clone()?;
        // SAFETY: the duplicate owns its descriptor, which nothing else
        // closes or replaces while the registration lives.
        let dup = unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE)? };
        let _ready = dup.writable().await?;
        Ok(())
    }

    /// Sends one datagram, waiting out a full send buffer.
    async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        loop {
            match self.io.get_ref().send_to(bytes, to) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.writable().await?,
                other => return other,
            }
        }
    }
}

/// One receive loop: drain the socket in batches (one `recvmmsg`, the
/// answers planned into reused buffers, one `sendmmsg`), yield after
/// [`BURST`] datagrams. Loop `index` is the only writer of its metrics shard.
async fn receive_loop(socket: Arc<Socket>, handler: Handler, index: usize) {
    let metrics = handler.metrics.clone();
    let counts = metrics.udp_loop(index);
    let mut received = Received::new(RECV_BUFFER);
    let mut outgoing = Outgoing::new(usize::from(super::respond::MAX_UDP_PAYLOAD));
    // (rcode, qtype, started) of each answer in `outgoing`, counted once sent.
    let mut answered: Vec<(u16, Option<u16>, quanta::Instant)> = Vec::with_capacity(mmsg::SLOTS);
    // Batch size: what the last batch found, doubled (so a busy socket
    // reaches SLOTS in a few calls and a quiet one stays at one or two).
    let mut want = 2;
    loop {
        let mut ready = match socket.io.readable().await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::error!(%error, "UDP socket failed; DNS over UDP stopped");
                return;
            }
        };
        let mut taken = 0;
        let drained = loop {
            // A short batch means the queue was empty a moment ago. The
            // closure then reports WouldBlock (keeping the count in `short`)
            // so tokio clears the readiness, and the next wait parks instead
            // of paying a `recvmmsg` that finds nothing: one syscall less per
            // wake-up when queries come one at a time. tokio clears only if
            // no datagram has signalled since this call read the readiness,
            // and every later arrival signals anew (edge-triggered), so none
            // is left waiting.
            let mut short = None;
            let n = match ready.try_io(|io| {
                let n = received.receive(io.as_fd(), want)?;
                if n < want {
                    short = Some(n);
                    return Err(ErrorKind::WouldBlock.into());
                }
                Ok(n)
            }) {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    transient(&e).await;
                    continue;
                }
                Err(_would_block) => match short {
                    Some(n) => n,
                    None => break true,
                },
            };
            for i in 0..n {
                let Some((datagram, src)) = received.get(i) else {
                    continue;
                };
                if !can_reply_to(src) {
                    continue;
                }
                let Some(out) = outgoing.next_buffer() else {
                    break;
                };
                let started = quanta::Instant::now();
                match answer(&handler, datagram, src, out, &counts) {
                    Reply::Send(rcode) => {
                        outgoing.push(src);
                        answered.push((rcode, qtype_of(datagram), started));
                    }
                    Reply::Nothing => {}
                    Reply::Offload(request) => {
                        let (socket, handler) = (socket.clone(), handler.clone());
                        tokio::spawn(async move { offloaded(&socket, &handler, request).await });
                    }
                    Reply::Update(pending) => {
                        let (socket, handler) = (socket.clone(), handler.clone());
                        let qtype = qtype_of(datagram);
                        tokio::spawn(
                            async move { update(&socket, &handler, pending, qtype).await },
                        );
                    }
                }
            }
            send_all(&socket, &mut outgoing).await;
            for (rcode, qtype, started) in answered.drain(..) {
                counts.answered(rcode, qtype, started.elapsed());
            }
            taken += n;
            let full = n == want;
            want = (n * 2).clamp(2, mmsg::SLOTS);
            if !full {
                // Fewer than asked for: the queue was empty a moment ago.
                break true;
            }
            if taken >= BURST {
                break false;
            }
        };
        if !drained {
            tokio::task::yield_now().await;
        }
    }
}

/// Send every answer in `outgoing` (in as few `sendmmsg` calls as the
/// kernel allows), then empty it. An answer the kernel refuses is logged
/// and skipped; a full send buffer is waited out.
async fn send_all(socket: &Socket, outgoing: &mut Outgoing) {
    let mut from = 0;
    while from < outgoing.len() {
        match outgoing.send(socket.io.as_fd(), from) {
            Ok(0) => break,
            Ok(sent) => from += sent,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if socket.writable().await.is_err() {
                    break;
                }
            }
            Err(error) => {
                if let Some((_, to)) = outgoing.get(from) {
                    tracing::debug!(%error, %to, "sending a UDP response failed");
                }
                from += 1;
            }
        }
    }
    outgoing.clear();
}

/// What to do after looking at one datagram.
enum Reply {
    /// `out` holds the response, with this rcode.
    Send(u16),
    /// Drop it silently (runt, response, or nothing to say).
    Nothing,
    /// Plan it off the loop.
    Offload(Box<Request>),
    /// A verified RFC 2136 UPDATE: apply it off the loop.
    Update(Box<super::update::Pending>),
}

/// Answer `datagram` into `out`: from the packet cache on an in-place read
/// when it can, else by decoding and planning.
fn answer(
    handler: &Handler,
    datagram: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
    counts: &Writer<'_>,
) -> Reply {
    match cached(handler, datagram, src, out, counts) {
        Cached::Answered(reply) => reply,
        Cached::Missed => decoded(handler, datagram, src, out, counts, false),
        Cached::NotTried => decoded(handler, datagram, src, out, counts, true),
    }
}

/// The outcome of trying the packet cache without decoding.
enum Cached {
    /// Answered (or dropped by rate limiting).
    Answered(Reply),
    /// Looked up: not there.
    Missed,
    /// Not looked up (no cache, or not a plain query).
    NotTried,
}

/// The common case, a plain query whose answer is cached: read in place
/// ([`Query::parse`]), look up by a borrowed key, copy. No generic message
/// is built and nothing is allocated.
fn cached(
    handler: &Handler,
    datagram: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
    counts: &Writer<'_>,
) -> Cached {
    let now = unix_now_if(handler);
    let presented = match handler.cached_read(datagram, src, Protocol::Udp, now, out) {
        CacheRead::NotTried => return Cached::NotTried,
        CacheRead::Missed => {
            counts.cache_lookup(false);
            return Cached::Missed;
        }
        CacheRead::Hit { presented, .. } => presented,
    };
    counts.cache_lookup(true);
    let rcode = header_rcode(out);
    let asked = Asked::Read { datagram, src };
    Cached::Answered(finish(handler, asked, presented, now, rcode, out, counts))
}

/// Decode and, when possible, answer `datagram` into `out`; `look_up`:
/// whether the packet cache still has to be asked.
fn decoded(
    handler: &Handler,
    datagram: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
    counts: &Writer<'_>,
    look_up: bool,
) -> Reply {
    let request = match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
        Ok(request) => request,
        Err(_) => {
            return match wire::undecodable(datagram, out) {
                Some(_) => Reply::Send(header_rcode(out)),
                None => Reply::Nothing,
            }
        }
    };
    if request.metadata.message_type != hickory_proto::op::MessageType::Query {
        return Reply::Nothing;
    }
    if super::update::is_update(handler, &request) {
        return match super::update::prepare(handler, &request) {
            super::update::Step::Reply(m) => {
                out.clear();
                out.extend_from_slice(&m);
                Reply::Send(header_rcode(out))
            }
            super::update::Step::Apply(pending) => Reply::Update(pending),
        };
    }
    // Signed requests and transfers take their own path (never cached).
    if handler.transfers.is_some() && super::xfr::is_transfer_path(&request) {
        return match super::xfr::prepare(handler, &request, Protocol::Udp) {
            super::xfr::Prepared::Reply(m) => {
                out.clear();
                out.extend_from_slice(&m);
                Reply::Send(header_rcode(out))
            }
            _ => Reply::Nothing,
        };
    }
    let now = unix_now_if(handler);
    let presented = handler.presented(&request, now);
    if presented == Presented::Malformed {
        // RFC 7873 §5.2.2: a COOKIE option of a wrong length is FORMERR.
        counts.cookie(CookieSeen::Malformed);
        wire::encode(
            &super::respond::bare(&request, ResponseCode::FormErr),
            &request.queries,
            Protocol::Udp,
            out,
        );
        return Reply::Send(header_rcode(out));
    }
    let zones = handler.zones.load();
    let cached = handler
        .cache
        .as_ref()
        .and_then(|c| cache::Key::of(&request).map(|k| (c, k)));
    if let (Some((cache, key)), true) = (&cached, look_up) {
        let hit = cache.answer(&zones, key, Echo::of(&request), out);
        counts.cache_lookup(hit);
        if hit {
            let rcode = header_rcode(out);
            let asked = Asked::Decoded(&request);
            return finish(handler, asked, presented, now, rcode, out, counts);
        }
    }
    match handler.plan_now(&request, &zones) {
        Decision::Ready(plan) => {
            wire::encode(&plan, &request.queries, Protocol::Udp, out);
            if let Some((cache, key)) = cached {
                cache.insert(&zones, key, &plan, out);
            }
            let rcode = u16::from(plan.metadata.response_code);
            finish(
                handler,
                Asked::Decoded(&request),
                presented,
                now,
                rcode,
                out,
                counts,
            )
        }
        Decision::Offload => Reply::Offload(Box::new(request)),
    }
}

/// The query an answer in `out` is for, as far as it was read.
#[derive(Clone, Copy)]
enum Asked<'a> {
    /// Decoded by hickory.
    Decoded(&'a Request),
    /// Read in place only ([`Query::parse`] accepted it).
    Read { datagram: &'a [u8], src: SocketAddr },
}

impl Asked<'_> {
    fn src(&self) -> SocketAddr {
        match self {
            Asked::Decoded(request) => request.src(),
            Asked::Read { src, .. } => *src,
        }
    }
}

/// Unix seconds when cookies or rate limiting need the time (one clock
/// read per datagram), else 0.
fn unix_now_if(handler: &Handler) -> u32 {
    if handler.cookies.is_some() || handler.rrl.is_some() {
        super::cookie::unix_now()
    } else {
        0
    }
}

/// The last step for an encoded UDP response in `out` (with `rcode`, its
/// full 12-bit code): count the cookie, rate-limit (unless the client
/// proved its address with a valid server cookie), and append a fresh
/// server cookie for a client that sent one.
fn finish(
    handler: &Handler,
    asked: Asked<'_>,
    presented: Presented,
    now: u32,
    mut rcode: u16,
    out: &mut Vec<u8>,
    counts: &Writer<'_>,
) -> Reply {
    match presented {
        Presented::Valid(_) => counts.cookie(CookieSeen::Valid),
        Presented::ClientOnly(_) => counts.cookie(CookieSeen::ClientOnly),
        Presented::Absent | Presented::Malformed => {}
    }
    if let (Some(rrl), false) = (&handler.rrl, matches!(presented, Presented::Valid(_))) {
        let class = ResponseClass::of_message(out);
        match rrl.check(asked.src().ip(), class, u64::from(now)) {
            Verdict::Pass => {}
            Verdict::Drop => {
                counts.rate_limited(class, RrlAction::Dropped);
                return Reply::Nothing;
            }
            Verdict::Slip => {
                counts.rate_limited(class, RrlAction::Slipped);
                // Slips are rare enough to decode for: a query read in
                // place is one hickory decodes (Query::parse's contract).
                let decoded;
                let request = match asked {
                    Asked::Decoded(request) => request,
                    Asked::Read { datagram, src } => {
                        match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
                            Ok(request) => {
                                decoded = request;
                                &decoded
                            }
                            Err(_) => return Reply::Nothing,
                        }
                    }
                };
                if presented.client().is_some() {
                    // RFC 7873 §5.2.3: BADCOOKIE with a fresh server cookie;
                    // the client retries over UDP with it and is exempt.
                    counts.cookie(CookieSeen::BadCookie);
                    let plan = super::respond::bare(request, ResponseCode::BADCOOKIE);
                    wire::encode(&plan, &request.queries, Protocol::Udp, out);
                    rcode = u16::from(ResponseCode::BADCOOKIE);
                } else {
                    wire::truncated(&request.metadata, &request.queries, out);
                    return Reply::Send(header_rcode(out));
                }
            }
        }
    }
    handler.add_cookie(presented, asked.src(), now, out);
    Reply::Send(rcode)
}

/// Plan a LUA answer on the blocking pool, then send it.
async fn offloaded(socket: &Socket, handler: &Handler, request: Box<Request>) {
    let started = std::time::Instant::now();
    let zones = handler.zones.load_full();
    let plan: Plan = match handler.plan_offloaded(&request, zones).await {
        Some(plan) => plan,
        None => super::servfail_plan(&request.metadata),
    };
    let mut out = Vec::with_capacity(512);
    wire::encode(&plan, &request.queries, Protocol::Udp, &mut out);
    let counts = handler.metrics.shared(Transport::Udp);
    let now = unix_now_if(handler);
    let presented = handler.presented(&request, now);
    let rcode = u16::from(plan.metadata.response_code);
    let asked = Asked::Decoded(&request);
    if let Reply::Send(rcode) = finish(handler, asked, presented, now, rcode, &mut out, &counts) {
        send(socket, &out, request.src()).await;
        counts.answered(rcode, qtype_of(request.as_slice()), started.elapsed());
    }
}

/// Apply a verified UPDATE (it waits on the store and the zone table),
/// then answer.
async fn update(
    socket: &Socket,
    handler: &Handler,
    pending: Box<super::update::Pending>,
    qtype: Option<u16>,
) {
    let started = std::time::Instant::now();
    let to = pending.remote();
    let out = super::update::apply(handler, pending).await;
    send(socket, &out, to).await;
    handler
        .metrics
        .shared(Transport::Udp)
        .answered(header_rcode(&out), qtype, started.elapsed());
}

/// Send one answer, logging a failure.
async fn send(socket: &Socket, bytes: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, to).await {
        tracing::debug!(%error, %to, "sending a UDP response failed");
    }
}

/// Errors a receive loop survives: ICMP-reported failures of earlier sends
/// and interrupted calls go on at once; anything else is logged and backed
/// off briefly so a persistent error cannot spin a core.
async fn transient(error: &std::io::Error) {
    match error.kind() {
        ErrorKind::Interrupted | ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => {}
        _ => {
            tracing::warn!(%error, "receiving on the UDP socket failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Whether a reply to `src` can reach anyone: port 0 and unspecified or
/// broadcast sources are forged or broken, and answering them only helps
/// reflection.
fn can_reply_to(src: SocketAddr) -> bool {
    if src.port() == 0 || src.ip().is_unspecified() {
        return false;
    }
    match src.ip() {
        std::net::IpAddr::V4(v4) => !v4.is_broadcast(),
        std::net::IpAddr::V6(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::alloc_count::allocations;
    use crate::zone::file::parse_master;
    use crate::zone::Zone;
    use hickory_proto::op::{Edns, Message, Query as HQuery};
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn a_cached_answer_allocates_nothing() {
        let text = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hm 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n";
        let (origin, records) = parse_master(text, None).unwrap();
        let mut set = super::super::ZoneSet::new();
        set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
        let zones = Arc::new(arc_swap::ArcSwap::from_pointee(set));
        let handler = Handler::new(zones)
            .with_packet_cache(100)
            .with_cookies(Some(super::super::cookie::CookieSettings::default()));
        let metrics = handler.metrics.clone();
        let counts = metrics.udp_loop(0);
        let src: SocketAddr = "192.0.2.9:5300".parse().unwrap();
        let mut out = Vec::with_capacity(1232);
        for (name, dnssec_ok, cookie) in [
            ("www.example.com.", false, false),
            ("WWW.example.com.", true, true),
            ("absent.example.com.", false, false),
        ] {
            let mut m = Message::query();
            m.add_query(HQuery::query(
                Name::from_ascii(name).unwrap(),
                RecordType::A,
            ));
            let mut e = Edns::new();
            e.set_dnssec_ok(dnssec_ok);
            if cookie {
                e.options_mut()
                    .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                        10,
                        vec![1; 8],
                    ));
            }
            m.set_edns(e);
            let raw = m.to_vec().unwrap();
            // An NXDOMAIN is kept from its second miss on: ask three times.
            for _ in 0..3 {
                assert!(matches!(
                    answer(&handler, &raw, src, &mut out, &counts),
                    Reply::Send(_)
                ));
            }
            let before = allocations();
            assert!(matches!(
                answer(&handler, &raw, src, &mut out, &counts),
                Reply::Send(_)
            ));
            assert_eq!(allocations() - before, 0, "{name}: a cache hit allocated");
            assert!(out.len() > 12);
        }
        assert!(handler.packet_cache_hits().unwrap_or(0) >= 3);
    }

    #[test]
    fn unreachable_sources_get_no_reply() {
        for bad in [
            "0.0.0.0:53000",
            "127.0.0.1:0",
            "255.255.255.255:53000",
            "[::]:53000",
        ] {
            assert!(!can_reply_to(bad.parse().unwrap()), "{bad}");
        }
        assert!(can_reply_to("192.0.2.1:53000".parse().unwrap()));
        assert!(can_reply_to("[2001:db8::1]:53000".parse().unwrap()));
    }

    /// The event mask the kernel's epoll instances hold for `fd`, read from
    /// `/proc/self/fdinfo` (one line per watched descriptor, `tfd: N events: HEX`).
    fn epoll_masks(fd: i32) -> Vec<u32> {
        let mut masks = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            if target.to_string_lossy() != "anon_inode:[eventpoll]" {
                continue;
            }
            let name = entry.file_name();
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{}", name.to_string_lossy()))
                    .unwrap_or_default();
            for line in info.lines() {
                let mut words = line.split_whitespace();
                if words.next() == Some("tfd:") && words.next() == Some(&fd.to_string()) {
                    let hex = line
                        .split("events:")
                        .nth(1)
                        .unwrap()
                        .split_whitespace()
                        .next()
                        .unwrap();
                    masks.push(u32::from_str_radix(hex, 16).unwrap());
                }
            }
        }
        masks
    }

    #[tokio::test]
    async fn the_socket_is_watched_for_reading_only_and_still_sends() {
        use std::os::fd::AsRawFd;
        const EPOLLIN: u32 = 0x1;
        const EPOLLOUT: u32 = 0x4;
        let socket = Socket::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let fd = socket.io.as_raw_fd();
        // (mio keeps a duplicate of its epoll descriptor: the same instance
        // may be listed twice.)
        let masks = epoll_masks(fd);
        assert!(!masks.is_empty(), "the socket is registered");
        for mask in &masks {
            assert_ne!(mask & EPOLLIN, 0, "watched for reading: {mask:x}");
            assert_eq!(
                mask & EPOLLOUT,
                0,
                "not for writing (a wake-up per answer): {mask:x}"
            );
        }
        // Waiting for room registers a duplicate, for as long as the wait.
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(1), socket.writable())
                .await
                .expect("a writable socket is reported writable")
                .unwrap();
        }
        assert_eq!(epoll_masks(fd), masks, "the wait's registration is gone");

        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let here = socket.io.get_ref().local_addr().unwrap();
        socket
            .send_to(b"answer", peer.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"answer"[..], here));
        peer.send_to(b"query", here).unwrap();
        let ready = tokio::time::timeout(Duration::from_secs(1), socket.io.readable()).await;
        assert!(ready.is_ok(), "a datagram makes the socket readable");
    }
}
