//! DNS transport: our own UDP receive threads ([`udp`]) and TCP accept loop
//! ([`tcp`]), and one [`Handler`] making every decision (see
//! docs/architecture.md). Zone transfers and TSIG-signed requests take
//! their own path ([`xfr`]).
//!
//! The handler reads the zone table once per request (`ArcSwap::load`, no
//! locks), plans the response with the pure [`respond::plan`] and encodes
//! it through [`wire`].

pub mod cache;
pub mod cookie;
pub mod dynamic;
pub mod metrics;
mod mmsg;
pub mod query;
pub mod respond;
pub mod rrl;
mod tcp;
mod udp;
pub mod update;
pub mod wire;
mod writer;
pub mod xfr;
mod zones;

use crate::lua::LuaEngine;
use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::BinDecodable;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use respond::Plan;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
pub use tcp::TcpLimits;
use tokio::net::{TcpListener, UdpSocket};
pub use zones::{ServedZone, SharedZones, ZoneSet};

/// What [`Handler::read_in_place`] found.
enum InPlace<'a> {
    /// Not a plain query, a transfer, or a malformed cookie: decode it.
    Unread,
    /// A plain query without a cached answer (or no cache): plan it from
    /// this read.
    Read {
        query: query::Query<'a>,
        presented: cookie::Presented,
    },
    /// The cached answer is in `out`.
    Hit {
        qtype: u16,
        presented: cookie::Presented,
    },
}

/// Our request handler: answers from the shared zone table.
#[derive(Clone)]
pub struct Handler {
    zones: SharedZones,
    lua: Option<LuaRuntime>,
    cache: Option<Arc<cache::PacketCache>>,
    metrics: Arc<metrics::DnsMetrics>,
    transfers: Option<Arc<xfr::Transfers>>,
    updates: Option<Arc<dyn update::UpdateHandler>>,
    rrl: Option<Arc<rrl::Rrl>>,
    cookies: Option<Arc<cookie::Cookies>>,
    tcp_limits: TcpLimits,
}

/// The LUA engine as the handler uses it: evaluations run on tokio's
/// blocking pool (never on a reactor thread), at most `permits` at once.
#[derive(Clone, Debug)]
pub struct LuaRuntime {
    engine: LuaEngine,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    offload: bool,
    quick: Option<LuaEngine>,
}

impl LuaRuntime {
    /// Run `engine` with at most `concurrency` evaluating queries at once.
    pub fn new(engine: LuaEngine, concurrency: usize) -> Self {
        LuaRuntime {
            engine,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
            offload: true,
            quick: None,
        }
    }

    /// Try every evaluation inline first with `quick`, an engine with a small
    /// budget (sharing the health checker); only evaluations that exceed it
    /// are run again on the blocking pool with the full budget. Runaway
    /// records then hold the reactor thread for at most `quick`'s budget.
    pub fn with_quick(mut self, quick: LuaEngine) -> Self {
        self.quick = Some(quick);
        self
    }

    /// Evaluate inline on the reactor thread instead (`offload = false`):
    /// cheaper per query, but a runaway record holds that thread for the
    /// whole evaluation budget.
    pub fn inline(mut self) -> Self {
        self.offload = false;
        self
    }

    /// The engine.
    pub fn engine(&self) -> &LuaEngine {
        &self.engine
    }

    /// A read-only handle on the health checker and the counters of both
    /// engines (inline tries and full runs; an offloaded retry counts twice).
    pub fn observer(&self) -> crate::lua::LuaObserver {
        let observer = crate::lua::LuaObserver::new(&self.engine);
        match &self.quick {
            Some(quick) => observer.and(quick),
            None => observer,
        }
    }
}

impl Handler {
    /// A handler answering from `zones`; LUA records SERVFAIL.
    pub fn new(zones: SharedZones) -> Self {
        Self {
            zones,
            lua: None,
            cache: None,
            metrics: Arc::new(metrics::DnsMetrics::new()),
            transfers: None,
            updates: None,
            rrl: None,
            cookies: None,
            tcp_limits: TcpLimits::default(),
        }
    }

    /// Rate-limit UDP responses under `settings` (`None`: off).
    pub fn with_rrl(mut self, settings: Option<rrl::RrlSettings>) -> Self {
        self.rrl = settings.map(|s| Arc::new(rrl::Rrl::new(s)));
        self
    }

    /// The rate limiter (`None`: off).
    pub fn rrl(&self) -> Option<&Arc<rrl::Rrl>> {
        self.rrl.as_ref()
    }

    /// Answer DNS cookies under `settings` (`None`: options ignored, as
    /// before cookies were built).
    pub fn with_cookies(mut self, settings: Option<cookie::CookieSettings>) -> Self {
        self.cookies = settings.map(|s| Arc::new(cookie::Cookies::new(&s)));
        self
    }

    /// The server cookies (`None`: off).
    pub fn cookies(&self) -> Option<&Arc<cookie::Cookies>> {
        self.cookies.as_ref()
    }

    /// Bound TCP clients by `limits`.
    pub fn with_tcp_limits(mut self, limits: TcpLimits) -> Self {
        self.tcp_limits = limits;
        self
    }

    /// What a request's COOKIE option presents (`Absent` with cookies off).
    fn presented(&self, request: &Request, now: u32) -> cookie::Presented {
        match &self.cookies {
            Some(c) => c.inspect(request.edns.as_ref(), request.src().ip(), now),
            None => cookie::Presented::Absent,
        }
    }

    /// Read `raw` in place (from `src`, over `protocol`, cookies checked at
    /// `now`) and write its packet-cache answer to `out` when there is one;
    /// UDP and TCP both try this before decoding anything. The query is read
    /// and its cookie checked once, for the cache and for the planner.
    fn read_in_place<'a>(
        &self,
        raw: &'a [u8],
        src: SocketAddr,
        protocol: hickory_server::net::xfer::Protocol,
        now: u32,
        out: &mut Vec<u8>,
    ) -> InPlace<'a> {
        let Some(query) = query::Query::parse(raw).filter(|q| !q.is_transfer()) else {
            return InPlace::Unread;
        };
        let presented = match &self.cookies {
            Some(c) => c.inspect_data(query.edns.and_then(|e| e.cookie), src.ip(), now),
            None => cookie::Presented::Absent,
        };
        if presented == cookie::Presented::Malformed {
            return InPlace::Unread;
        }
        if let Some(cache) = &self.cache {
            let zones = self.zones.load();
            let key = cache::KeyRef::of(&query, protocol);
            if cache.answer(&zones, &key, cache::Echo::of_query(&query), out) {
                return InPlace::Hit {
                    qtype: query.qtype,
                    presented,
                };
            }
        }
        InPlace::Read { query, presented }
    }

    /// Plan the answer to `query`, a plain query read in place (from `src`,
    /// over `protocol`), without hickory decoding it; encode it into `out`
    /// and offer it to the packet cache. Its rcode, or `None` (nothing
    /// written) when a LUA answer must wait: the caller decodes and offloads.
    fn answer_read(
        &self,
        query: &query::Query<'_>,
        src: SocketAddr,
        protocol: hickory_server::net::xfer::Protocol,
        out: &mut Vec<u8>,
    ) -> Option<u16> {
        let view = respond::QueryView::of_query(query);
        let zones = self.zones.load();
        let Decision::Ready(plan) = self.plan_view(&view, src, protocol, &zones, true) else {
            return None;
        };
        wire::encode_question(&plan, view.question, view.questions, protocol, out);
        if let Some(cache) = &self.cache {
            let key = cache::KeyRef::of(query, protocol).to_owned();
            cache.insert(&zones, key, &plan, out);
        }
        Some(u16::from(plan.metadata.response_code))
    }

    /// Append a fresh server cookie to the encoded response `out` when the
    /// request presented a client cookie.
    fn add_cookie(
        &self,
        presented: cookie::Presented,
        src: SocketAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) {
        if let (Some(cookies), Some(client)) = (&self.cookies, presented.client()) {
            let data = cookies.answer(client, src.ip(), now);
            wire::append_edns_option(out, cookie::OPTION_CODE, &data);
        }
    }

    /// Count queries into `metrics` (shared with whoever renders them).
    pub fn with_metrics(mut self, metrics: Arc<metrics::DnsMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The query counters.
    pub fn metrics(&self) -> &Arc<metrics::DnsMetrics> {
        &self.metrics
    }

    /// The packet cache (`None`: cache off).
    pub fn packet_cache(&self) -> Option<&Arc<cache::PacketCache>> {
        self.cache.as_ref()
    }

    /// Answer zone transfers and TSIG-signed requests under `transfers`'
    /// policy (without it, AXFR is refused and TSIG is not looked at).
    pub fn with_transfers(mut self, transfers: Arc<xfr::Transfers>) -> Self {
        self.transfers = Some(transfers);
        self
    }

    /// Apply RFC 2136 UPDATEs with `updates` (TSIG keys from the transfer
    /// policy, so set [`Handler::with_transfers`] too); without it, UPDATE
    /// gets NOTIMP.
    pub fn with_updates(mut self, updates: Arc<dyn update::UpdateHandler>) -> Self {
        self.updates = Some(updates);
        self
    }

    /// Reuse encoded UDP answers, at most `capacity` of them (0: off).
    pub fn with_packet_cache(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| Arc::new(cache::PacketCache::new(capacity)));
        self
    }

    /// Answers served from the packet cache so far (`None`: cache off).
    pub fn packet_cache_hits(&self) -> Option<u64> {
        self.cache.as_ref().map(|c| c.hits())
    }

    /// Evaluate LUA records with `lua`.
    pub fn with_lua(mut self, lua: Option<LuaRuntime>) -> Self {
        self.lua = lua;
        self
    }

    /// Plan the response on the calling thread when that is cheap: static
    /// answers, and LUA answers the quick engine finishes within its budget.
    /// [`Decision::Offload`] means the full-budget engine must run off the
    /// reactor ([`Handler::plan_offloaded`]).
    pub fn plan_now(&self, request: &Request, zones: &ZoneSet) -> Decision {
        let view = respond::QueryView::of_message(request);
        self.plan_view(&view, request.src(), request.protocol(), zones, false)
    }

    /// [`Handler::plan_now`] for a request seen as `request`, from `src`
    /// over `protocol`; `wire_images` as [`respond::Env::wire_images`].
    pub fn plan_view(
        &self,
        request: &respond::QueryView<'_>,
        src: SocketAddr,
        protocol: hickory_server::net::xfer::Protocol,
        zones: &ZoneSet,
        wire_images: bool,
    ) -> Decision {
        let plan_with = |lua: Option<&LuaEngine>| {
            let env = respond::Env {
                src,
                lua,
                wire_images,
            };
            respond::plan_view(request, zones, protocol, &env)
        };
        // With an engine, the planner runs programs only for zones that
        // have them; static zones cost no more than without one.
        let Some(lua) = self.lua.as_ref() else {
            return Decision::Ready(plan_with(None));
        };
        let inline = match (&lua.quick, lua.offload) {
            (Some(quick), true) => quick,
            (_, false) => &lua.engine,
            (None, true) => {
                // Everything runs off the reactor: plan statically first, so
                // only names that need a program (SERVFAIL without an
                // engine) pay for the trip.
                let plan = plan_with(None);
                return if plan.metadata.response_code == ResponseCode::ServFail
                    && needs_lua(request, zones)
                {
                    Decision::Offload
                } else {
                    Decision::Ready(plan)
                };
            }
        };
        let plan = plan_with(Some(inline));
        if plan.lua_limited && lua.offload {
            Decision::Offload
        } else {
            Decision::Ready(plan)
        }
    }

    /// Plan with the full-budget LUA engine on tokio's blocking pool (never
    /// on a reactor thread), at most `concurrency` at once. `None` when the
    /// runtime is shutting down or the request no longer decodes.
    pub async fn plan_offloaded(&self, request: &Request, zones: Arc<ZoneSet>) -> Option<Plan> {
        let lua = self.lua.as_ref()?;
        let _permit = lua.permits.clone().acquire_owned().await.ok()?;
        let raw = request.as_slice().to_vec();
        let (src, protocol) = (request.src(), request.protocol());
        let engine = lua.engine.clone();
        let job = tokio::task::spawn_blocking(move || {
            let req = Request::from_bytes(raw, src, protocol).ok()?;
            let env = respond::Env {
                src,
                lua: Some(&engine),
                wire_images: false,
            };
            Some(respond::plan_with(&req, &zones, protocol, &env))
        });
        job.await.ok().flatten()
    }
}

/// How a request is answered: now, or after a LUA evaluation off the reactor.
// Moved once per query; boxing the plan would cost an allocation per query.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// The response is planned.
    Ready(Plan),
    /// Plan with [`Handler::plan_offloaded`].
    Offload,
}

/// Whether answering `request` may run LUA programs.
fn needs_lua(request: &respond::QueryView<'_>, zones: &ZoneSet) -> bool {
    Name::read(&mut hickory_proto::serialize::binary::BinDecoder::new(
        request.question,
    ))
    .ok()
    .and_then(|name| zones.find(&name))
    .is_some_and(|z| z.zone().has_dynamic())
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = std::time::Instant::now();
        let info = self.answer_stream(request, &mut response_handle).await;
        let qtype = request
            .queries
            .queries()
            .first()
            .map(|q| u16::from(q.query_type()));
        self.metrics.shared(metrics::Transport::Tcp).answered(
            u16::from(info.response_code),
            qtype,
            started.elapsed(),
        );
        info
    }
}

impl Handler {
    /// Answer one request over a stream transport (TCP).
    async fn answer_stream<R: ResponseHandler>(
        &self,
        request: &Request,
        response_handle: &mut R,
    ) -> ResponseInfo {
        let zones = self.zones.load_full();
        let plan = match self.plan_now(request, &zones) {
            Decision::Ready(plan) => plan,
            Decision::Offload => match self.plan_offloaded(request, zones).await {
                Some(plan) => plan,
                None => servfail_plan(&request.metadata),
            },
        };
        let response = wire::response(&plan, &request.queries);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "sending DNS response failed");
                ResponseInfo::from(Header {
                    metadata: servfail_plan(&request.metadata).metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// A bare SERVFAIL (the LUA evaluation could not run at all).
fn servfail_plan(request: &Metadata) -> Plan {
    let mut metadata = Metadata::response_from_request(request);
    metadata.recursion_available = false;
    Plan::empty(metadata, None, ResponseCode::ServFail)
}

/// Bind UDP and TCP on `addr` and answer from `zones` until the process ends.
/// Returns once both sockets are bound; serving continues on a spawned task.
pub async fn spawn(
    addr: SocketAddr,
    zones: SharedZones,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    spawn_bound(addr, zones).await.map(|(_, handle)| handle)
}

/// Like [`spawn`], evaluating LUA records with `lua`.
pub async fn spawn_with_lua(
    addr: SocketAddr,
    zones: SharedZones,
    lua: Option<LuaRuntime>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    spawn_handler(addr, Handler::new(zones).with_lua(lua)).await
}

/// Bind UDP and TCP on `addr` and answer with `handler`.
pub async fn spawn_handler(
    addr: SocketAddr,
    handler: Handler,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let udp = udp::bind(addr)?;
    let local = udp.local_addr()?;
    let tcp = TcpListener::bind(local).await?;
    Ok(serve_handler(udp, tcp, handler))
}

/// Like [`spawn`], also returning the bound address (useful with port 0:
/// TCP is bound to the port UDP received).
pub async fn spawn_bound(
    addr: SocketAddr,
    zones: SharedZones,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let (udp, tcp) = bind_pair(addr).await?;
    let local = udp.local_addr()?;
    Ok((local, serve(udp, tcp, zones)))
}

/// UDP and TCP sockets on the same address. With port 0 the kernel picks a
/// free UDP port, which TCP may not have free (another process holds it):
/// pick again rather than fail.
pub async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let tries = if addr.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = udp::bind(addr)?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse)))
}

/// Serve on already-bound sockets (tests and callers that need the ports).
pub fn serve(udp: UdpSocket, tcp: TcpListener, zones: SharedZones) -> tokio::task::JoinHandle<()> {
    serve_handler(udp, tcp, Handler::new(zones))
}

/// Serve on already-bound sockets with a configured handler: UDP on our
/// own receive threads (one per runtime worker), TCP on our accept loop.
pub fn serve_handler(
    udp: UdpSocket,
    tcp: TcpListener,
    handler: Handler,
) -> tokio::task::JoinHandle<()> {
    let loops = tokio::runtime::Handle::current().metrics().num_workers();
    if let Some(cookies) = &handler.cookies {
        if let Some(every) = cookies.rotation_interval() {
            // Weak: the task ends with the server rather than keep it alive.
            let cookies = Arc::downgrade(cookies);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    match cookies.upgrade() {
                        Some(c) => c.rotate(),
                        None => return,
                    }
                }
            });
        }
    }
    if let Some(rrl) = &handler.rrl {
        let every = rrl.settings().log_interval.max(Duration::from_millis(100));
        tokio::spawn(rrl_summaries(Arc::downgrade(&handler.metrics), every));
    }
    let udp = tokio::spawn(udp::serve(udp, handler.clone(), loops));
    let tcp = tokio::spawn(tcp::serve(tcp, handler));
    tokio::spawn(async move {
        let _ = tcp.await;
        let _ = udp.await;
    })
}

/// Log, every `every`, how many responses rate limiting held back since
/// the last line (nothing when none were). Ends with the counters.
async fn rrl_summaries(metrics: std::sync::Weak<metrics::DnsMetrics>, every: Duration) {
    use metrics::RrlAction;
    use rrl::ResponseClass;
    let mut last = [[0u64; 2]; 4];
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        let Some(m) = metrics.upgrade() else { return };
        let snap = m.snapshot().udp;
        let mut now = [[0u64; 2]; 4];
        for class in ResponseClass::ALL {
            for action in RrlAction::ALL {
                now[class.index()][action as usize] = snap.rate_limited(class, action);
            }
        }
        let delta = |c: ResponseClass, a: RrlAction| {
            now[c.index()][a as usize].saturating_sub(last[c.index()][a as usize])
        };
        let total = |a: RrlAction| ResponseClass::ALL.iter().map(|&c| delta(c, a)).sum::<u64>();
        let (dropped, slipped) = (total(RrlAction::Dropped), total(RrlAction::Slipped));
        if dropped + slipped > 0 {
            let per =
                |c: ResponseClass| delta(c, RrlAction::Dropped) + delta(c, RrlAction::Slipped);
            tracing::warn!(
                dropped,
                slipped,
                answer = per(ResponseClass::Answer),
                nxdomain = per(ResponseClass::Nxdomain),
                nodata = per(ResponseClass::Nodata),
                error = per(ResponseClass::Error),
                interval_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
                "response rate limiting held back UDP responses"
            );
        }
        last = now;
    }
}

#[cfg(test)]
mod alloc_count;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
