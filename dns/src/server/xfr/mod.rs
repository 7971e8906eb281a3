//! Zone transfer out and TSIG: AXFR (RFC 5936) and IXFR (RFC 1995)
//! answers, TSIG (RFC 8945) on them and on any signed query, the transfer
//! ACL, NOTIFY sending (RFC 1996) and a log of transfers.
//!
//! This is the server's second path: a request reaches it only when it is
//! signed or asks for AXFR/IXFR (one field test on the UDP path), so the
//! query hot path carries no lock and no allocation for it. A transfer runs
//! on the blocking pool, streaming its messages to the connection through
//! a small channel (the whole signed zone is never held at once).

pub mod acl;
mod axfr;
mod history;
pub mod notify;
pub mod tsig;

use super::respond::Plan;
use super::{wire, Decision, Handler, ServedZone};
use acl::TransferPolicy;
use arc_swap::ArcSwap;
use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tsig::{Rejection, ResponseSigner};

/// Transfers remembered for [`Transfers::events`].
const LOG_CAPACITY: usize = 1000;

/// How a transfer request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TransferKind {
    /// The whole zone, asked for by AXFR.
    Axfr,
    /// The whole zone in answer to IXFR (no usable history).
    IxfrFull,
    /// Differences from the client's serial.
    Ixfr,
    /// The client is current: one SOA.
    UpToDate,
}

/// One transfer answered (or refused), for the API and the logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TransferEvent {
    /// Zone, with the trailing dot.
    pub zone: String,
    /// Client address.
    pub remote: SocketAddr,
    /// What was sent.
    pub kind: TransferKind,
    /// The serial sent.
    pub serial: u32,
    /// The serial the client had (IXFR).
    pub from_serial: Option<u32>,
    /// Messages sent.
    pub messages: usize,
    /// Bytes sent (without TCP length prefixes).
    pub bytes: usize,
    /// Milliseconds from request to the last message written.
    pub millis: u64,
    /// The TSIG key name, when signed.
    pub key: Option<String>,
    /// Unix seconds at the end.
    pub at: u64,
    /// Whether every message was written.
    pub complete: bool,
}

/// The transfer side of a server: policy (keys and ACL), history source
/// and the log. Shared by the UDP and TCP paths; the control plane swaps
/// the policy when keys or configuration change.
#[derive(Debug, Default)]
pub struct Transfers {
    policy: ArcSwap<TransferPolicy>,
    log: Mutex<VecDeque<TransferEvent>>,
    history: history::History,
}

impl Transfers {
    /// No keys and no rules: every transfer is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replace the policy (keys and rules).
    pub fn set_policy(&self, policy: TransferPolicy) {
        self.policy.store(Arc::new(policy));
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<TransferPolicy> {
        self.policy.load_full()
    }

    /// Forget the transfer history of zones `keep` says no (zones no longer
    /// served), so released zones do not stay in memory.
    pub fn retain_zones(&self, keep: impl Fn(&Name) -> bool) {
        self.history.retain(keep);
    }

    /// Zones whose signatures, as last transferred (at the serial given),
    /// expire before `horizon` (unix seconds): they need a serial bump,
    /// which makes the next transfer carry renewed signatures.
    pub fn expiring(&self, horizon: u32) -> Vec<(Name, u32)> {
        self.history.expiring(horizon)
    }

    /// The most recent transfers, oldest first.
    pub fn events(&self) -> Vec<TransferEvent> {
        match self.log.lock() {
            Ok(l) => l.iter().cloned().collect(),
            Err(p) => p.into_inner().iter().cloned().collect(),
        }
    }

    fn record(&self, event: TransferEvent) {
        tracing::info!(
            zone = %event.zone,
            remote = %event.remote,
            kind = ?event.kind,
            serial = event.serial,
            from_serial = ?event.from_serial,
            messages = event.messages,
            bytes = event.bytes,
            millis = event.millis,
            key = ?event.key,
            complete = event.complete,
            "transfer out"
        );
        let mut log = match self.log.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        if log.len() >= LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(event);
    }
}

/// Whether `request` takes this path: signed, or AXFR/IXFR.
pub(super) fn is_transfer_path(request: &Request) -> bool {
    request.signature.is_some()
        || request
            .queries
            .queries()
            .first()
            .is_some_and(|q| matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR))
}

/// How to answer a request on this path.
pub(super) enum Prepared {
    /// One message, complete (signed when the request was).
    Reply(Vec<u8>),
    /// Nothing (the request cannot be answered at all).
    Nothing,
    /// A zone transfer: stream it.
    Transfer(Box<Job>),
}

/// A transfer to run.
pub(super) struct Job {
    zone: ServedZone,
    kind: TransferKind,
    from_serial: Option<u32>,
    id: u16,
    recursion_desired: bool,
    question: Vec<u8>,
    signer: Option<ResponseSigner>,
    remote: SocketAddr,
    started: Instant,
}

/// A header + question message with `rcode` answering `request`.
pub(super) fn error_message(request: &Request, rcode: ResponseCode) -> Vec<u8> {
    let m = &request.metadata;
    let mut out = Vec::with_capacity(12 + request.queries.as_bytes().len());
    out.extend_from_slice(&m.id.to_be_bytes());
    out.push(0x80 | (u8::from(m.op_code) & 0x0f) << 3 | u8::from(m.recursion_desired));
    out.push(rcode.low());
    let qd = u16::try_from(request.queries.len()).unwrap_or(0);
    for n in [qd, 0, 0, 0] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    if qd > 0 {
        out.extend_from_slice(request.queries.as_bytes());
    }
    out
}

/// Decide what to send for a request on this path, over `protocol`.
pub(super) fn prepare(handler: &Handler, request: &Request, protocol: Protocol) -> Prepared {
    let Some(transfers) = handler.transfers.as_ref() else {
        return Prepared::Nothing;
    };
    let policy = transfers.policy();
    let now = tsig::unix_now();
    let raw = request.as_slice();
    // TSIG first: a bad signature is answered as such whatever was asked.
    let mut signer = None;
    if request.signature.is_some() {
        let verified = match tsig::find(raw) {
            Ok(Some(t)) => tsig::verify_request(raw, t, &policy.keys, now),
            _ => Err(Rejection::FormErr),
        };
        match verified {
            Ok(v) => signer = Some(ResponseSigner::new(v, now)),
            Err(rejection) => {
                // Debug, like Knot: anyone can send these, and the log must
                // not be theirs to fill.
                tracing::debug!(
                    remote = %request.src(),
                    rejection = rejection_name(&rejection),
                    "TSIG verification failed"
                );
                let rcode = match rejection {
                    Rejection::FormErr => ResponseCode::FormErr,
                    _ => ResponseCode::NotAuth,
                };
                let mut out = error_message(request, rcode);
                tsig::sign_rejection(&mut out, &rejection, now);
                return Prepared::Reply(out);
            }
        }
    }
    let reply = |rcode: ResponseCode, signer: Option<ResponseSigner>| {
        let mut out = error_message(request, rcode);
        if let Some(mut s) = signer {
            s.sign(&mut out);
        }
        Prepared::Reply(out)
    };
    let Some(query) = request.queries.queries().first() else {
        return reply(ResponseCode::FormErr, signer);
    };
    let qtype = query.query_type();
    if request.metadata.op_code != OpCode::Query
        || !matches!(qtype, RecordType::AXFR | RecordType::IXFR)
    {
        return signed_answer(handler, request, protocol, signer);
    }
    if request.queries.len() != 1 {
        return reply(ResponseCode::FormErr, signer);
    }
    let qname = Name::from(query.name());
    let zones = handler.zones.load();
    let Some(zone) = zones.get(&qname).cloned() else {
        return reply(ResponseCode::NotAuth, signer);
    };
    let key = signer.as_ref().map(|s| s.key().name().clone());
    if !policy.allows(zone.zone().origin(), request.src().ip(), key.as_ref()) {
        tracing::debug!(zone = %qname, remote = %request.src(), key = ?key.as_ref().map(|k| k.to_ascii()), "transfer refused by the ACL");
        return reply(ResponseCode::Refused, signer);
    }
    if zone.zone().has_dynamic() {
        tracing::info!(zone = %qname, "transfer refused: the zone has LUA records");
        return reply(ResponseCode::Refused, signer);
    }
    if zone
        .signer()
        .is_some_and(|s| s.mode() == crate::dnssec::DenialMode::Compact)
    {
        tracing::info!(zone = %qname, "transfer refused: compact denial is synthesized per query");
        return reply(ResponseCode::Refused, signer);
    }
    let serial = zone.zone().serial();
    let (kind, from_serial) = if qtype == RecordType::IXFR {
        let Some(have) = request.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        }) else {
            return reply(ResponseCode::FormErr, signer);
        };
        // RFC 1982: the client is current unless its serial is older.
        if !serial_lt(have, serial) {
            (TransferKind::UpToDate, Some(have))
        } else if protocol == Protocol::Udp {
            // RFC 1995 §2: over UDP, one SOA tells the client to use TCP.
            (TransferKind::UpToDate, Some(have))
        } else {
            (TransferKind::IxfrFull, Some(have))
        }
    } else {
        if protocol == Protocol::Udp {
            return reply(ResponseCode::Refused, signer);
        }
        (TransferKind::Axfr, None)
    };
    let job = Job {
        zone,
        kind,
        from_serial,
        id: request.metadata.id,
        recursion_desired: request.metadata.recursion_desired,
        question: request.queries.as_bytes().to_vec(),
        signer,
        remote: request.src(),
        started: Instant::now(),
    };
    if kind == TransferKind::UpToDate {
        let mut job = job;
        let mut out = None;
        let stats = axfr::run(&mut job, None, &mut |m| {
            out = Some(m);
            true
        });
        transfers.record(job.event(stats));
        return out.map_or(Prepared::Nothing, Prepared::Reply);
    }
    Prepared::Transfer(Box::new(job))
}

fn rejection_name(r: &Rejection) -> &'static str {
    match r {
        Rejection::FormErr => "FORMERR",
        Rejection::BadKey(_) => "BADKEY",
        Rejection::BadSig(_) => "BADSIG",
        Rejection::BadTrunc(_) => "BADTRUNC",
        Rejection::BadTime(..) => "BADTIME",
    }
}

/// RFC 1982 serial comparison: `a` is older than `b`.
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

/// An ordinary query that was signed: answered as usual, then signed.
fn signed_answer(
    handler: &Handler,
    request: &Request,
    protocol: Protocol,
    signer: Option<ResponseSigner>,
) -> Prepared {
    let zones = handler.zones.load();
    let plan: Plan = match handler.plan_now(request, &zones) {
        Decision::Ready(plan) => plan,
        // Signed queries are SOA probes from secondaries; a LUA program
        // that needs the full budget is not worth a second path here.
        Decision::Offload => super::servfail_plan(&request.metadata),
    };
    let mut out = Vec::with_capacity(512);
    wire::encode(&plan, &request.queries, protocol, &mut out);
    if let Some(mut s) = signer {
        s.sign(&mut out);
    }
    Prepared::Reply(out)
}

impl Job {
    fn event(&self, stats: axfr::Stats) -> TransferEvent {
        TransferEvent {
            zone: self.zone.zone().origin().to_ascii(),
            remote: self.remote,
            kind: self.kind,
            serial: self.zone.zone().serial(),
            from_serial: self.from_serial,
            messages: stats.messages,
            bytes: stats.bytes,
            millis: self.started.elapsed().as_millis() as u64,
            key: self.signer.as_ref().map(|s| s.key().name().to_ascii()),
            at: tsig::unix_now(),
            complete: stats.complete,
        }
    }
}

/// Messages queued between the transfer task and the socket.
const STREAM_DEPTH: usize = 4;

/// Run `job` on the blocking pool and write its messages (each with its
/// TCP length prefix) to `writer`.
pub(super) async fn stream<W>(
    handler: &Handler,
    job: Box<Job>,
    writer: &mut W,
) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let Some(transfers) = handler.transfers.clone() else {
        return Ok(());
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(STREAM_DEPTH);
    let history = Arc::clone(&transfers);
    let producer = tokio::task::spawn_blocking(move || {
        let mut job = job;
        let stats = axfr::run(&mut job, Some(&history.history), &mut |m| {
            tx.blocking_send(m).is_ok()
        });
        (job, stats)
    });
    let mut result = Ok(());
    while let Some(m) = rx.recv().await {
        let len = u16::try_from(m.len()).unwrap_or(u16::MAX).to_be_bytes();
        let write = async {
            writer.write_all(&len).await?;
            writer.write_all(&m).await
        };
        if let Err(e) = tokio::time::timeout(WRITE_TIMEOUT, write)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        {
            result = Err(e);
            break;
        }
    }
    drop(rx);
    let complete = match producer.await {
        Ok((job, mut stats)) => {
            stats.complete &= result.is_ok();
            transfers.record(job.event(stats));
            stats.complete
        }
        Err(_) => false,
    };
    result?;
    writer.flush().await?;
    // A transfer cut short (signing failed) must not leave the client
    // waiting for the closing SOA: close the connection.
    if complete {
        Ok(())
    } else {
        Err(std::io::Error::other("zone transfer incomplete"))
    }
}

/// A client that stops reading for this long loses its transfer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests;
