//! DNS over TCP (RFC 7766) on our own accept loop: length-prefixed
//! messages answered in order on each connection. Ordinary queries go
//! through the same planner and encoder as UDP; zone transfers stream many
//! messages per request, which hickory's TCP server cannot (it queues at
//! most a few responses and only writes them between requests).
//!
//! Hostile clients are bounded by [`TcpLimits`]: a cap on open connections
//! in total and per source address, a time limit to the first byte and
//! between queries (slowloris), and when a cap is reached the connection
//! idle the longest is closed to make room (only refused when none is
//! idle). Queries on a connection are answered one at a time, in order, so
//! at most one is in flight per connection: pipelined queries wait in the
//! socket buffer and TCP flow control slows their sender. A client that
//! sent the EDNS TCP keepalive option (RFC 7828) is told the idle timeout.
//! Reads and writes are buffered: pipelined queries arrive a buffer at a
//! time, a cached answer is copied like on UDP (from an in-place read), and
//! answers go out together when no query is left waiting.
//! UDP runs on its own loops and never waits on any of this.

use super::cache;
use super::cookie::Presented;
use super::metrics::{header_rcode, CookieSeen, TcpClose, TcpCounters};
use super::xfr::{self, Prepared};
use super::{wire, Decision, Handler, InPlace};
use hickory_proto::op::{MessageType, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsCode;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use rustc_hash::FxHashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The EDNS TCP keepalive option code (RFC 7828).
const KEEPALIVE_CODE: u16 = 11;
/// Bytes read from a connection at once: a few dozen pipelined queries.
const READ_BUFFER: usize = 4096;

/// Bounds on TCP clients (plain data; the control plane fills it from
/// `[tcp]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open connections at most, in total.
    pub max_connections: usize,
    /// Open connections at most from one source address.
    pub max_per_source: usize,
    /// A connection with no query for this long is closed (RFC 7766 §6.2.3
    /// suggests seconds), as is one whose query or answer stalls this long.
    pub idle_timeout: Duration,
    /// A new connection must send its first bytes within this.
    pub first_byte_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 1024,
            max_per_source: 64,
            idle_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(3),
        }
    }
}

/// What the registry and a connection's task share about it.
struct ConnState {
    /// Waiting for the next query (may be closed to make room).
    idle: AtomicBool,
    /// No query has arrived yet: the first-byte timeout applies, not the
    /// idle one.
    first: AtomicBool,
    /// When it last became idle, a raw reading of the registry's clock.
    idle_since: AtomicU64,
    /// Signalled to close it.
    close: Notify,
}

/// One registered connection.
struct Entry {
    ip: IpAddr,
    state: Arc<ConnState>,
}

/// The open connections, to enforce the caps.
struct Registry {
    limits: TcpLimits,
    /// The TSC clock (quanta): a raw reading per query costs a few
    /// instructions where `Instant::now` costs a vDSO call.
    clock: quanta::Clock,
    inner: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next: u64,
    conns: FxHashMap<u64, Entry>,
    per_source: FxHashMap<IpAddr, usize>,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.conns.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&entry.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&entry.ip);
            }
        }
        Some(entry)
    }

    /// The connection idle the longest (among those from `ip`, if given).
    fn oldest_idle(&self, ip: Option<IpAddr>) -> Option<u64> {
        self.conns
            .iter()
            .filter(|(_, e)| ip.is_none_or(|ip| e.ip == ip) && e.state.idle.load(Ordering::Relaxed))
            .min_by_key(|(_, e)| e.state.idle_since.load(Ordering::Relaxed))
            .map(|(&id, _)| id)
    }
}

/// A registered connection; leaving the registry when dropped.
struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    state: Arc<ConnState>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut open) = self.registry.inner.lock() {
            open.remove(self.id);
        }
    }
}

impl Admitted {
    /// Mark the connection idle (waiting for a query) or busy.
    fn set_idle(&self, idle: bool) {
        if idle {
            self.state
                .idle_since
                .store(self.registry.clock.raw(), Ordering::Relaxed);
        } else {
            self.state.first.store(false, Ordering::Relaxed);
        }
        self.state.idle.store(idle, Ordering::Relaxed);
    }
}

impl Registry {
    fn new(limits: TcpLimits) -> Self {
        Registry {
            limits,
            clock: quanta::Clock::new(),
            inner: Mutex::new(Open::default()),
        }
    }

    /// How often [`Registry::reap`] runs: a fraction of the shorter
    /// timeout, so a connection is closed at most that much late.
    fn reap_every(&self) -> Duration {
        (self.limits.first_byte_timeout.min(self.limits.idle_timeout) / 8)
            .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Close every connection idle for longer than its timeout: the first
    /// byte's for one that has sent nothing yet (slowloris), the idle one
    /// after. One sweep over the open connections, instead of a timer per
    /// connection that every query would have to move.
    fn reap(&self, counters: &TcpCounters) {
        let now = self.clock.raw();
        let (first_byte, idle) = (self.limits.first_byte_timeout, self.limits.idle_timeout);
        let Ok(mut open) = self.inner.lock() else {
            return;
        };
        let due: Vec<(u64, TcpClose)> = open
            .conns
            .iter()
            .filter_map(|(&id, e)| {
                let s = &e.state;
                if !s.idle.load(Ordering::Relaxed) {
                    return None;
                }
                let (limit, why) = if s.first.load(Ordering::Relaxed) {
                    (first_byte, TcpClose::FirstByte)
                } else {
                    (idle, TcpClose::Idle)
                };
                let since = s.idle_since.load(Ordering::Relaxed);
                (since <= now && self.clock.delta(since, now) >= limit).then_some((id, why))
            })
            .collect();
        for (id, why) in due {
            if let Some(entry) = open.remove(id) {
                entry.state.close.notify_one();
                counters.closed(why);
            }
        }
    }

    /// Register a connection from `ip`, closing the oldest idle one (from
    /// `ip` first when that source is at its cap) to make room; `None` when
    /// at a cap with nothing idle to close.
    fn admit(self: &Arc<Self>, ip: IpAddr, counters: &TcpCounters) -> Option<Admitted> {
        let mut open = self.inner.lock().ok()?;
        let evict = |open: &mut Open, from: Option<IpAddr>| -> bool {
            let Some(id) = open.oldest_idle(from) else {
                return false;
            };
            if let Some(entry) = open.remove(id) {
                entry.state.close.notify_one();
                counters.closed(TcpClose::Evicted);
            }
            true
        };
        if open.per_source.get(&ip).copied().unwrap_or(0) >= self.limits.max_per_source.max(1)
            && !evict(&mut open, Some(ip))
        {
            return None;
        }
        if open.conns.len() >= self.limits.max_connections.max(1) && !evict(&mut open, None) {
            return None;
        }
        let id = open.next;
        open.next += 1;
        let state = Arc::new(ConnState {
            // Idle from the start: a connection that sends nothing is the
            // first to go.
            idle: AtomicBool::new(true),
            first: AtomicBool::new(true),
            idle_since: AtomicU64::new(self.clock.raw()),
            close: Notify::new(),
        });
        open.conns.insert(
            id,
            Entry {
                ip,
                state: state.clone(),
            },
        );
        *open.per_source.entry(ip).or_insert(0) += 1;
        Some(Admitted {
            registry: self.clone(),
            id,
            state,
        })
    }
}

/// Accept connections on `listener` and answer them with `handler` until
/// the listener fails for good.
pub async fn serve(listener: TcpListener, handler: Handler) {
    let registry = Arc::new(Registry::new(handler.tcp_limits.clone()));
    tokio::spawn(reaper(Arc::downgrade(&registry), handler.clone()));
    loop {
        let (stream, src) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors or an aborted handshake: keep going
                // after a pause rather than spinning.
                tracing::debug!(%error, "accepting a TCP connection failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let counters = &handler.metrics.tcp_connections;
        let Some(admitted) = registry.admit(src.ip().to_canonical(), counters) else {
            counters.closed(TcpClose::Refused);
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let counters = &handler.metrics.tcp_connections;
            counters.opened();
            if let Err(error) = connection(stream, src, &handler, &admitted).await {
                tracing::debug!(%src, %error, "TCP connection ended");
            }
            counters.ended();
        });
    }
}

/// Runs [`Registry::reap`] for as long as the registry is in use.
async fn reaper(registry: std::sync::Weak<Registry>, handler: Handler) {
    let Some(every) = registry.upgrade().map(|r| r.reap_every()) else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        registry.reap(&handler.metrics.tcp_connections);
    }
}

/// How waiting for the next query ended.
enum Wait {
    /// Bytes arrived.
    Ready,
    /// Closed by the client, reset, or closed by us.
    Done,
}

/// Answer the requests of one connection in order.
async fn connection(
    stream: TcpStream,
    src: SocketAddr,
    handler: &Handler,
    admitted: &Admitted,
) -> std::io::Result<()> {
    // Nagle's algorithm off: with it on, an answer written while the
    // previous one is unacknowledged waits for the client's next segment,
    // and a client that pipelines two queries waits for its own
    // delayed-ACK timer (~40 ms; knotd, which leaves it on, does).
    let _ = stream.set_nodelay(true);
    let limits = &handler.tcp_limits;
    let (rd, mut wr) = stream.into_split();
    // Pipelined queries are read a buffer at a time; their answers are
    // queued and sent together when no query is left waiting.
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let mut answers = Answers::default();
    let mut out = Vec::with_capacity(512);
    let mut raw = Vec::with_capacity(512);
    // Closed to make room or for idling too long (the registry's reaper):
    // one waiter for the connection's life, and no timer per connection.
    let close = admitted.state.close.notified();
    tokio::pin!(close);
    loop {
        // A pipelined query already in the buffer is taken as it is: no
        // wait, no select.
        if !take_buffered(&mut rd, &mut raw) {
            answers.send(&mut wr, limits.idle_timeout).await?;
            if rd.buffer().is_empty() {
                admitted.set_idle(true);
                // fill_buf is cancel safe: what it read stays buffered.
                let wait = tokio::select! {
                    read = rd.fill_buf() => match read {
                        Ok(bytes) if !bytes.is_empty() => Wait::Ready,
                        _ => Wait::Done,
                    },
                    _ = &mut close => Wait::Done,
                };
                if let Wait::Done = wait {
                    return Ok(());
                }
                admitted.set_idle(false);
            }
            // A message cut across segments: read the rest, in bounded time.
            if !take_buffered(&mut rd, &mut raw) {
                let mut len = [0u8; 2];
                let read = async {
                    rd.read_exact(&mut len).await?;
                    raw.clear();
                    raw.resize(usize::from(u16::from_be_bytes(len)), 0);
                    rd.read_exact(&mut raw).await
                };
                match tokio::time::timeout(limits.idle_timeout, read).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return Ok(()),
                    Err(_) => {
                        handler.metrics.tcp_connections.closed(TcpClose::Idle);
                        return Ok(());
                    }
                }
            }
        }
        let n = raw.len();
        if in_place(handler, &raw, src, &mut out) {
            answers.queue(&out, &mut wr, limits.idle_timeout).await?;
            continue;
        }
        let mut head = [0u8; 12];
        if let Some(h) = raw.get(..12) {
            head.copy_from_slice(h);
        }
        let request = match Request::from_bytes(raw.clone(), src, Protocol::Tcp) {
            Ok(r) => r,
            Err(_) => {
                if n >= 12 && wire::undecodable(&head, &mut out).is_some() {
                    answers.queue(&out, &mut wr, limits.idle_timeout).await?;
                }
                continue;
            }
        };
        if request.metadata.message_type != MessageType::Query {
            continue;
        }
        if super::update::is_update(handler, &request) {
            let m = super::update::answer(handler, &request).await;
            answers.queue(&m, &mut wr, limits.idle_timeout).await?;
            continue;
        }
        if handler.transfers.is_some() && xfr::is_transfer_path(&request) {
            match xfr::prepare(handler, &request, Protocol::Tcp) {
                Prepared::Reply(m) => answers.queue(&m, &mut wr, limits.idle_timeout).await?,
                Prepared::Nothing => {}
                Prepared::Transfer(job) => {
                    // In order: what is queued goes before the transfer.
                    answers.send(&mut wr, limits.idle_timeout).await?;
                    xfr::stream(handler, job, &mut BufWriter::new(&mut wr)).await?;
                }
            }
            continue;
        }
        let started = std::time::Instant::now();
        let now = if handler.cookies.is_some() {
            super::cookie::unix_now()
        } else {
            0
        };
        let presented = handler.presented(&request, now);
        let shared = handler.metrics.shared(super::metrics::Transport::Tcp);
        let mut cache_key = None;
        let plan = match presented {
            Presented::Malformed => {
                shared.cookie(CookieSeen::Malformed);
                super::respond::bare(&request, ResponseCode::FormErr)
            }
            _ => {
                shared.presented(presented);
                let zones = handler.zones.load_full();
                match handler.plan_now(&request, &zones) {
                    Decision::Ready(plan) => {
                        cache_key = handler
                            .cache
                            .as_ref()
                            .and_then(|c| Some((c, cache::Key::of(&request)?, zones)));
                        plan
                    }
                    Decision::Offload => match handler.plan_offloaded(&request, zones).await {
                        Some(plan) => plan,
                        None => super::servfail_plan(&request.metadata),
                    },
                }
            }
        };
        wire::encode(&plan, &request.queries, Protocol::Tcp, &mut out);
        if let Some((cache, key, zones)) = cache_key {
            cache.insert(&zones, key, &plan, &out);
        }
        handler.add_cookie(presented, src, now, &mut out);
        if wants_keepalive(&request) {
            // RFC 7828 §3.3.2: the idle timeout, in units of 100 ms.
            let units = u16::try_from(limits.idle_timeout.as_millis() / 100).unwrap_or(u16::MAX);
            wire::append_edns_option(&mut out, KEEPALIVE_CODE, &units.to_be_bytes());
        }
        let qtype = request
            .queries
            .queries()
            .first()
            .map(|q| u16::from(q.query_type()));
        shared.answered(
            u16::from(plan.metadata.response_code),
            qtype,
            started.elapsed(),
        );
        answers.queue(&out, &mut wr, limits.idle_timeout).await?;
    }
}

/// Whether the request carries the EDNS TCP keepalive option (RFC 7828:
/// the server answers with its timeout only when asked).
fn wants_keepalive(request: &Request) -> bool {
    request
        .edns
        .as_ref()
        .is_some_and(|e| e.options().get(EdnsCode::Keepalive).is_some())
}

/// The answer to a plain query read in place, into `out`: from the packet
/// cache, else planned from the read without hickory decoding it (as over
/// UDP), with a fresh server cookie when the query brought a client cookie.
/// `false` (nothing written) for what the in-place read leaves to the
/// general path (anything but a plain query, a transfer, a malformed
/// cookie) and for a LUA answer that must wait. Its COOKIE is the only
/// option such a query can carry, so no keepalive is asked for.
fn in_place(handler: &Handler, raw: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> bool {
    let started = quanta::Instant::now();
    let now = if handler.cookies.is_some() {
        super::cookie::unix_now()
    } else {
        0
    };
    let (qtype, presented, rcode) = match handler.read_in_place(raw, src, Protocol::Tcp, now, out) {
        InPlace::Unread => return false,
        InPlace::Hit { qtype, presented } => (qtype, presented, header_rcode(out)),
        InPlace::Read { query, presented } => {
            let Some(rcode) = handler.answer_read(&query, src, Protocol::Tcp, out) else {
                return false;
            };
            (query.qtype, presented, rcode)
        }
    };
    let shared = handler.metrics.shared(super::metrics::Transport::Tcp);
    shared.presented(presented);
    handler.add_cookie(presented, src, now, out);
    shared.answered(rcode, Some(qtype), started.elapsed());
    true
}

/// Move a whole message that is already buffered in `rd` into `raw`;
/// `false` (nothing taken) when the buffer holds less than one.
fn take_buffered<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut BufReader<R>,
    raw: &mut Vec<u8>,
) -> bool {
    let buffered = rd.buffer();
    let Some(&[hi, lo]) = buffered.get(..2) else {
        return false;
    };
    let end = 2 + usize::from(u16::from_be_bytes([hi, lo]));
    let Some(message) = buffered.get(2..end) else {
        return false;
    };
    raw.clear();
    raw.extend_from_slice(message);
    std::pin::Pin::new(rd).consume(end);
    true
}

/// Answers queued on a connection, sent together (one write) before it
/// waits for its next query.
#[derive(Default)]
struct Answers {
    queued: Vec<u8>,
}

impl Answers {
    /// Above this many bytes queued, they are sent before the next query
    /// is read.
    const SEND_AT: usize = 16 * 1024;

    /// Queue `msg` with its length prefix (a message over 65,535 bytes,
    /// which no answer is, is dropped).
    async fn queue(
        &mut self,
        msg: &[u8],
        wr: &mut OwnedWriteHalf,
        limit: Duration,
    ) -> std::io::Result<()> {
        let Ok(len) = u16::try_from(msg.len()) else {
            return Ok(());
        };
        self.queued.extend_from_slice(&len.to_be_bytes());
        self.queued.extend_from_slice(msg);
        if self.queued.len() >= Self::SEND_AT {
            self.send(wr, limit).await?;
        }
        Ok(())
    }

    /// Send what is queued: at once when the socket takes it (the common
    /// case, no timer), else waiting for it at most `limit` (a client that
    /// stops reading loses its connection).
    async fn send(&mut self, wr: &mut OwnedWriteHalf, limit: Duration) -> std::io::Result<()> {
        let mut sent = 0;
        while sent < self.queued.len() {
            match wr.try_write(&self.queued[sent..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::timeout(limit, wr.write_all(&self.queued[sent..]))
                        .await
                        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))?;
                    sent = self.queued.len();
                }
                Err(e) => return Err(e),
            }
        }
        self.queued.clear();
        Ok(())
    }
}
