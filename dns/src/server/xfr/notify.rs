//! Talking to secondaries: NOTIFY (RFC 1996) and SOA probes, one attempt
//! each, signed with TSIG when a key is given, the answer checked (id,
//! opcode, rcode, TSIG). Retries and backoff belong to the caller, which
//! knows the secondaries.

use super::tsig::{self, TsigKey};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Why a NOTIFY was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The secondary answered with an error rcode.
    #[error("answered {0}")]
    Rcode(ResponseCode),
    /// The answer's TSIG is missing, wrong or reports an error.
    #[error("TSIG: {0}")]
    Tsig(#[from] tsig::AnswerError),
    /// The message could not be built.
    #[error("cannot build the NOTIFY: {0}")]
    Build(String),
}

/// Send one NOTIFY for `zone` (with its `soa`, so the secondary sees the
/// serial) to `target` and wait up to `timeout` for the acknowledgement.
pub async fn notify(
    target: SocketAddr,
    zone: &Name,
    soa: Option<&Record>,
    key: Option<&TsigKey>,
    timeout: Duration,
) -> Result<(), NotifyError> {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(zone.clone(), RecordType::SOA));
    if let Some(soa) = soa {
        m.add_answer(soa.clone());
    }
    let answer = exchange(target, m, key, timeout).await?;
    match answer.metadata.response_code {
        ResponseCode::NoError => Ok(()),
        rcode => Err(NotifyError::Rcode(rcode)),
    }
}

/// The SOA serial `target` serves for `zone` (`None`: it answered without
/// one, e.g. NOTAUTH or REFUSED for a zone it dropped).
pub async fn soa_serial(
    target: SocketAddr,
    zone: &Name,
    key: Option<&TsigKey>,
    timeout: Duration,
) -> Result<Option<u32>, NotifyError> {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(zone.clone(), RecordType::SOA));
    let answer = exchange(target, m, key, timeout).await?;
    Ok(answer.answers.iter().find_map(|r| match &r.data {
        hickory_proto::rr::RData::SOA(soa) if r.name == *zone => Some(soa.serial),
        _ => None,
    }))
}

/// Send `m` over UDP (signed with `key`) and wait for its answer, checked.
async fn exchange(
    target: SocketAddr,
    m: Message,
    key: Option<&TsigKey>,
    timeout: Duration,
) -> Result<Message, NotifyError> {
    let (id, op) = (m.metadata.id, m.metadata.op_code);
    let mut raw = m.to_vec().map_err(|e| NotifyError::Build(e.to_string()))?;
    let request_mac = key.map(|k| tsig::sign_request(&mut raw, k, tsig::unix_now()));
    let bind: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(target).await?;
    socket.send(&raw).await?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Err(NotifyError::Timeout(timeout)),
        };
        let Some(answer) = buf.get(..n) else {
            continue;
        };
        // Not ours (stale id, garbage): keep waiting.
        let Ok(parsed) = Message::from_vec(answer) else {
            continue;
        };
        let md = &parsed.metadata;
        if md.id != id || md.message_type != MessageType::Response || md.op_code != op {
            continue;
        }
        if let (Some(k), Some(mac)) = (key, request_mac.as_deref()) {
            tsig::verify_answer(answer, k, mac)?;
        }
        return Ok(parsed);
    }
}
