//! The UDP fast path: receive threads, each on a socket of its own,
//! instead of hickory's task per datagram.
//!
//! hickory's UDP server spawns a task for every datagram and sends the reply
//! through a channel to the socket's own task; at authoritative rates that
//! bookkeeping cost more than answering. Here each loop, on a thread of its
//! own, blocks in `recvmmsg` until queries arrive, takes what is waiting in
//! one call, and sends the answers in one `sendmmsg` ([`mmsg`]): two system
//! calls per wake-up and no reactor. It answers a cached question from an
//! in-place read and plans the rest into buffers it reuses. Only answers
//! that must wait (a full LUA evaluation, an UPDATE) leave the loop, as
//! tasks on the runtime, so a slow program never stalls the socket.

use super::cache::Echo;
use super::cookie::Presented;
use super::metrics::{header_rcode, qtype_of, CookieSeen, RrlAction, Transport, Writer};
use super::mmsg::{self, Outgoing, Received};
use super::query::Query;
use super::respond::Plan;
use super::rrl::{ResponseClass, Verdict};
use super::{cache, wire, Decision, Handler, InPlace};
use hickory_proto::op::ResponseCode;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Largest datagram we read; larger ones arrive cut and get FORMERR.
const RECV_BUFFER: usize = 65_535;

/// Socket buffer we ask for (the kernel caps it at `net.core.rmem_max`):
/// the default ~200 KiB holds only ~2,000 queries, which a scheduling hiccup
/// of a few milliseconds at 100k qps overflows.
const SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket on `addr`, with `SO_REUSEPORT` so that [`serve`] can give
/// each receive loop a socket of its own on the same port. Not on port 0:
/// the kernel's pick of a free port skips no port that another
/// `SO_REUSEPORT` socket of the same user holds (3,000 such binds here
/// gave 166 ports twice), and two servers would share one. There the
/// loops share the socket.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    if addr.port() == 0 {
        return UdpSocket::from_std(std::net::UdpSocket::bind(addr).and_then(|s| {
            s.set_nonblocking(true)?;
            Ok(s)
        })?);
    }
    UdpSocket::from_std(reuse_port_socket(addr)?)
}

/// A non-blocking UDP socket bound to `addr` with `SO_REUSEPORT` set
/// before the bind (the kernel lets a socket join a port's group only if
/// every socket in it set the option first, and only for the same user).
fn reuse_port_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Type};
    let socket = socket2::Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReusePort, &true)
        .map_err(std::io::Error::from)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Ask for [`SOCKET_BUFFER`] each way (the kernel may give less).
fn enlarge_buffers(socket: socket2::SockRef<'_>) {
    for (what, set) in [
        ("receive", socket.set_recv_buffer_size(SOCKET_BUFFER)),
        ("send", socket.set_send_buffer_size(SOCKET_BUFFER)),
    ] {
        if let Err(error) = set {
            tracing::debug!(%error, "cannot enlarge the UDP {what} buffer");
        }
    }
}

/// Run `loops` receive loops on `socket`'s port until the socket fails for
/// good or this future is dropped (the loops notice within [`STOP_CHECK`]).
/// Each loop reads a socket of its own when `socket` allows it ([`bind`]):
/// the kernel spreads the clients over them by address and port, and no
/// two threads take the same receive queue's lock. Otherwise they share
/// `socket`.
pub async fn serve(socket: UdpSocket, handler: Handler, loops: usize) {
    enlarge_buffers(socket2::SockRef::from(&socket));
    let socket = match socket.into_std().and_then(Socket::new) {
        Ok(s) => Arc::new(s),
        Err(error) => {
            tracing::error!(%error, "cannot set up the UDP socket; DNS over UDP stopped");
            return;
        }
    };
    let local = socket.std.local_addr();
    let mut sockets = vec![socket];
    if let Ok(local) = local {
        for _ in 1..loops {
            match reuse_port_socket(local).and_then(|s| {
                enlarge_buffers(socket2::SockRef::from(&s));
                Socket::new(s)
            }) {
                Ok(s) => sockets.push(Arc::new(s)),
                Err(error) => {
                    tracing::debug!(%error, "the UDP receive loops share one socket");
                    break;
                }
            }
        }
    }
    let stop = Stop::default();
    let (ended, mut all_ended) = tokio::sync::mpsc::channel::<()>(1);
    let runtime = tokio::runtime::Handle::current();
    for index in 0..loops.max(1) {
        let socket = sockets[index % sockets.len()].clone();
        let (handler, stop) = (handler.clone(), stop.0.clone());
        let (runtime, ended) = (runtime.clone(), ended.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("pdm-udp-{index}"))
            .spawn(move || {
                receive_loop(&socket, &handler, index, &runtime, &stop);
                drop(ended);
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a UDP receive thread");
        }
    }
    drop(ended);
    // Every sender gone: every loop ended.
    let _ = all_ended.recv().await;
    drop(stop);
}

/// How often a receive loop blocked on an idle socket looks whether it
/// should stop (its receive timeout).
const STOP_CHECK: Duration = Duration::from_millis(200);

/// Tells the receive loops to stop when dropped (with the task that runs
/// [`serve`]).
#[derive(Default)]
struct Stop(Arc<AtomicBool>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The server's UDP socket, read by threads of its own that block in
/// `recvmmsg`, outside tokio.
///
/// Under tokio, a lone query cost an `epoll_wait`, a `recvmmsg` and a
/// `sendmmsg`, plus the reactor's and scheduler's work for the wake-up;
/// and a UDP socket registered for writing turns writable again after
/// every datagram it sends (an `EPOLLOUT` wake-up per answer, for nothing).
/// A thread blocked in `recvmmsg` (`MSG_WAITFORONE`) pays two system calls
/// per lone query and nothing else. The socket stays in blocking mode for
/// those threads; every send passes `MSG_DONTWAIT`, and a task that finds
/// the send buffer full waits on a short-lived registration of a
/// duplicate descriptor for writing.
struct Socket {
    std: std::net::UdpSocket,
}

impl Socket {
    fn new(socket: std::net::UdpSocket) -> std::io::Result<Socket> {
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(STOP_CHECK))?;
        Ok(Socket { std: socket })
    }

    /// Waits until the send buffer has room.
    async fn writable(&self) -> std::io::Result<()> {
        let dup = self.std.try_clone()?;
        // SAFETY: the duplicate owns its descriptor, which nothing else
        // closes or replaces while the registration lives.
        let dup = unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE)? };
        let _ready = dup.writable().await?;
        Ok(())
    }

    /// Sends one datagram without blocking the thread, waiting out a full
    /// send buffer.
    async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        let to = socket2::SockAddr::from(to);
        loop {
            let sent = socket2::SockRef::from(&self.std).send_to_with_flags(
                bytes,
                &to,
                nix::libc::MSG_DONTWAIT,
            );
            match sent {
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.writable().await?,
                other => return other,
            }
        }
    }
}

/// One receive loop, on a thread of its own: block until datagrams arrive,
/// read what is there in one `recvmmsg`, answer into reused buffers, send
/// in one `sendmmsg`. Loop `index` is the only writer of its metrics shard.
/// What must wait (LUA evaluations, UPDATEs) runs on `runtime`.
fn receive_loop(
    socket: &Arc<Socket>,
    handler: &Handler,
    index: usize,
    runtime: &tokio::runtime::Handle,
    stop: &AtomicBool,
) {
    let metrics = handler.metrics.clone();
    let counts = metrics.udp_loop(index);
    let mut received = Received::new(RECV_BUFFER);
    let mut outgoing = Outgoing::new(usize::from(super::respond::MAX_UDP_PAYLOAD));
    // (rcode, qtype, started) of each answer in `outgoing`, counted once sent.
    let mut answered: Vec<(u16, Option<u16>, quanta::Instant)> = Vec::with_capacity(mmsg::SLOTS);
    // Batch size: what the last batch found, doubled (a busy socket reaches
    // SLOTS in a few calls; a quiet one prepares one or two headers).
    let mut want = 2;
    while !stop.load(Ordering::Relaxed) {
        let n = match received.wait(socket.std.as_fd(), want) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                transient(&e);
                continue;
            }
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
            match answer(handler, datagram, src, out, &counts) {
                Reply::Send(rcode) => {
                    outgoing.push(src);
                    answered.push((rcode, qtype_of(datagram), started));
                }
                Reply::Nothing => {}
                Reply::Offload(request) => {
                    let (socket, handler) = (socket.clone(), handler.clone());
                    runtime.spawn(async move { offloaded(&socket, &handler, request).await });
                }
                Reply::Update(pending) => {
                    let (socket, handler) = (socket.clone(), handler.clone());
                    let qtype = qtype_of(datagram);
                    runtime.spawn(async move { update(&socket, &handler, pending, qtype).await });
                }
            }
        }
        send_all(&socket.std, &mut outgoing);
        for (rcode, qtype, started) in answered.drain(..) {
            counts.answered(rcode, qtype, started.elapsed());
        }
        want = (n * 2).clamp(2, mmsg::SLOTS);
    }
}

/// Send every answer in `outgoing` (in as few `sendmmsg` calls as the
/// kernel allows), then empty it. An answer the kernel refuses is logged
/// and skipped; a full send buffer is waited out (bounded).
fn send_all(socket: &std::net::UdpSocket, outgoing: &mut Outgoing) {
    let mut from = 0;
    let mut waits = 0;
    while from < outgoing.len() {
        match outgoing.send(socket.as_fd(), from) {
            Ok(0) => break,
            Ok(sent) => from += sent,
            Err(e) if e.kind() == ErrorKind::WouldBlock && waits < SEND_WAITS => {
                waits += 1;
                let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(SEND_WAIT_MS));
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

/// How long a loop waits for room in a full send buffer, and how many
/// times per batch, before it drops the answers left (the client retries;
/// a loop stuck on sending would stop reading).
const SEND_WAIT_MS: u8 = 10;
const SEND_WAITS: usize = 10;

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

/// Answer `datagram` into `out`: from an in-place read when it can (the
/// packet cache, else a plan from the read), else by decoding and planning.
fn answer(
    handler: &Handler,
    datagram: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
    counts: &Writer<'_>,
) -> Reply {
    let now = unix_now_if(handler);
    match handler.read_in_place(datagram, src, Protocol::Udp, now, out) {
        // The common case: no generic message is built, nothing allocated.
        InPlace::Hit { presented, .. } => {
            counts.cache_lookup(true);
            let rcode = header_rcode(out);
            let asked = Asked::Read { datagram, src };
            finish(handler, asked, presented, now, rcode, out, counts)
        }
        InPlace::Read { query, presented } => {
            if handler.cache.is_some() {
                counts.cache_lookup(false);
            }
            planned_in_place(handler, datagram, &query, presented, now, src, out, counts)
                .unwrap_or_else(|| decoded(handler, datagram, src, out, counts, false))
        }
        InPlace::Unread => decoded(handler, datagram, src, out, counts, true),
    }
}

/// Plan and encode the answer to `query`, the in-place read of `datagram`,
/// without hickory decoding it ([`Handler::answer_read`]). A LUA answer that must wait leaves the thread as a
/// decoded request; `None` only if hickory refuses what the in-place read
/// accepted (never, by [`Query::parse`]'s contract).
#[allow(clippy::too_many_arguments)] // the loop's state, passed through
fn planned_in_place(
    handler: &Handler,
    datagram: &[u8],
    query: &Query<'_>,
    presented: Presented,
    now: u32,
    src: SocketAddr,
    out: &mut Vec<u8>,
    counts: &Writer<'_>,
) -> Option<Reply> {
    let Some(rcode) = handler.answer_read(query, src, Protocol::Udp, out) else {
        let request = Request::from_bytes(datagram.to_vec(), src, Protocol::Udp).ok()?;
        return Some(Reply::Offload(Box::new(request)));
    };
    let asked = Asked::Read { datagram, src };
    Some(finish(handler, asked, presented, now, rcode, out, counts))
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
    counts.presented(presented);
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
fn transient(error: &std::io::Error) {
    match error.kind() {
        ErrorKind::Interrupted | ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => {}
        _ => {
            tracing::warn!(%error, "receiving on the UDP socket failed");
            std::thread::sleep(Duration::from_millis(10));
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

    /// example.com with www A 192.0.2.2.
    fn zones_for_test() -> crate::server::SharedZones {
        let text = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hm 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n";
        let (origin, records) = parse_master(text, None).unwrap();
        let mut set = super::super::ZoneSet::new();
        set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
        Arc::new(arc_swap::ArcSwap::from_pointee(set))
    }

    #[test]
    fn a_cached_answer_allocates_nothing() {
        let zones = zones_for_test();
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
    async fn the_socket_is_read_by_threads_and_watched_by_no_reactor() {
        use std::os::fd::AsRawFd;
        let socket = Socket::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let fd = socket.std.as_raw_fd();
        // No epoll instance watches it: no wake-up of the reactor per query
        // or per answer (a UDP socket turns writable after every send).
        assert_eq!(epoll_masks(fd), Vec::<u32>::new());

        // Waiting for room registers a duplicate, for as long as the wait.
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(1), socket.writable())
                .await
                .expect("a writable socket is reported writable")
                .unwrap();
        }
        assert_eq!(
            epoll_masks(fd),
            Vec::<u32>::new(),
            "the wait's registration is gone"
        );

        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let here = socket.std.local_addr().unwrap();
        socket
            .send_to(b"answer", peer.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"answer"[..], here));
    }

    /// How many UDP sockets of this process are bound to `addr`.
    fn sockets_on(addr: SocketAddr) -> usize {
        use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, SockaddrStorage};
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
            .filter(|&fd| {
                // SAFETY: only asked about while the test holds the server's
                // sockets open; a descriptor closed meanwhile answers EBADF.
                let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let bound = getsockname::<SockaddrStorage>(fd)
                    .ok()
                    .and_then(|a| a.as_sockaddr_in().map(|s| SocketAddr::from(*s)));
                bound == Some(addr)
                    && getsockopt(&borrowed, sockopt::SockType).ok() == Some(SockType::Datagram)
            })
            .count()
    }

    #[tokio::test]
    async fn a_plain_socket_is_shared_by_the_loops() {
        // A socket bound without SO_REUSEPORT (as `bind` does on port 0)
        // admits no other on its port: the loops read it together.
        let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let server = tokio::spawn(serve(socket, Handler::new(zones_for_test()), 3));
        tokio::task::yield_now().await;
        assert_eq!(sockets_on(addr), 1);
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut m = Message::query();
        m.add_query(HQuery::query(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
        ));
        client.send_to(&m.to_vec().unwrap(), addr).unwrap();
        let mut buf = [0u8; 512];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(Message::from_vec(&buf[..n]).unwrap().answers.len(), 1);
        server.abort();
    }

    #[tokio::test]
    async fn the_receive_threads_answer_and_stop_with_the_server() {
        let zones = zones_for_test();
        // A fixed port (the kernel's free one of the moment): port 0 gets
        // no SO_REUSEPORT.
        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let socket = bind(addr).unwrap();
        let server = tokio::spawn(serve(socket, Handler::new(zones), 3));
        tokio::task::yield_now().await; // the server starts its threads
        assert_eq!(
            sockets_on(addr),
            3,
            "a socket of its own for each receive loop"
        );

        let mut m = Message::query();
        m.add_query(HQuery::query(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
        ));
        // Clients on many ports, spread by the kernel over the sockets:
        // every loop answers the ones it gets.
        for id in 0..24u16 {
            let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            m.metadata.id = id;
            client.send_to(&m.to_vec().unwrap(), addr).unwrap();
            let mut buf = [0u8; 512];
            // Blocking this runtime's only thread is fine: the answers come
            // from the receive threads.
            let (n, from) = client.recv_from(&mut buf).unwrap();
            let reply = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!((reply.metadata.id, reply.answers.len()), (id, 1));
            assert_eq!(from, addr, "answered from the address asked");
        }

        // Dropping the server stops its threads, which close the socket:
        // the port can be bound again (a test or a restart in-process).
        server.abort();
        let _ = server.await;
        let deadline = std::time::Instant::now() + STOP_CHECK * 10;
        loop {
            match std::net::UdpSocket::bind(addr) {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() < deadline => {
                    assert_eq!(e.kind(), ErrorKind::AddrInUse);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the receive threads kept the socket: {e}"),
            }
        }
    }
}
