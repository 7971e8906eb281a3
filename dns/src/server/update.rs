//! RFC 2136 UPDATE on the data plane: the message checks that need only
//! the wire and the zone table (TSIG, RFC 8945; the zone section, §3.1),
//! then the request goes to an [`UpdateHandler`] the control plane
//! implements (this crate never writes records), and its rcode comes back
//! in a response signed with the request's key.
//!
//! Every update must be signed: an unsigned one is REFUSED, one with an
//! unknown key or a bad MAC gets NOTAUTH with the TSIG error (BADKEY,
//! BADSIG, BADTIME, BADTRUNC) as for signed queries.

use super::xfr::tsig::{self, Rejection, ResponseSigner};
use super::Handler;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_server::server::Request;
use std::net::SocketAddr;

/// An UPDATE whose TSIG verified and whose zone this server serves.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    /// The zone section's name (the zone served, lower case, FQDN).
    pub zone: Name,
    /// The TSIG key that signed the request (lower case, FQDN).
    pub key: Name,
    /// The prerequisite section, as sent (RFC 2136 §2.4).
    pub prerequisites: Vec<Record>,
    /// The update section, as sent (RFC 2136 §2.5).
    pub updates: Vec<Record>,
    /// Who sent it.
    pub remote: SocketAddr,
}

/// Why the data plane answered an UPDATE without asking the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Not signed.
    Unsigned,
    /// The TSIG did not verify (the name of the TSIG error).
    Tsig(&'static str),
    /// The zone section is malformed.
    ZoneSection,
    /// The zone is not served here.
    NotServed,
}

impl Rejected {
    /// A word for the log and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::Unsigned => "unsigned",
            Rejected::Tsig(e) => e,
            Rejected::ZoneSection => "zone-section",
            Rejected::NotServed => "not-served",
        }
    }
}

/// Applies UPDATEs (the control plane). `update` answers only once the
/// change is served here (read your writes) or failed.
#[async_trait::async_trait]
pub trait UpdateHandler: Send + Sync + 'static {
    /// Apply `request` and return the response code.
    async fn update(&self, request: UpdateRequest) -> ResponseCode;

    /// An UPDATE answered with `rcode` before reaching [`Self::update`]
    /// (to count and log it; `key` when it was signed with a known key).
    fn rejected(&self, remote: SocketAddr, key: Option<&Name>, why: Rejected, rcode: ResponseCode);
}

/// Whether `request` is an UPDATE this handler takes.
pub(super) fn is_update(handler: &Handler, request: &Request) -> bool {
    handler.updates.is_some() && request.metadata.op_code == hickory_proto::op::OpCode::Update
}

/// What an UPDATE gets: an answer now, or the handler's decision first.
pub(super) enum Step {
    /// The complete response (a rejection).
    Reply(Vec<u8>),
    /// Verified and for a zone served here: ask the handler ([`apply`]).
    Apply(Box<Pending>),
}

/// A verified UPDATE waiting for the handler.
pub(super) struct Pending {
    request: UpdateRequest,
    signer: ResponseSigner,
    /// The response without its rcode and TSIG.
    skeleton: Vec<u8>,
}

impl Pending {
    /// Who sent it.
    pub(super) fn remote(&self) -> SocketAddr {
        self.request.remote
    }
}

/// The checks that need no waiting (TSIG, zone section, zone served): a
/// flood of unsigned or forged UPDATEs costs no more than queries.
pub(super) fn prepare(handler: &Handler, request: &Request) -> Step {
    let Some(updates) = handler.updates.as_ref() else {
        return Step::Reply(super::xfr::error_message(request, ResponseCode::NotImp));
    };
    let remote = request.src();
    let now = tsig::unix_now();
    let raw = request.as_slice();
    let reject = |why: Rejected, rcode: ResponseCode, key: Option<&Name>| {
        updates.rejected(remote, key, why, rcode);
        super::xfr::error_message(request, rcode)
    };
    if request.signature.is_none() {
        return Step::Reply(reject(Rejected::Unsigned, ResponseCode::Refused, None));
    }
    let verified = match (tsig::find(raw), handler.transfers.as_ref()) {
        (Ok(Some(t)), Some(transfers)) => {
            tsig::verify_request(raw, t, &transfers.policy().keys, now)
        }
        // No key store at all: every key is unknown.
        (Ok(Some(t)), None) => Err(Rejection::BadKey(Box::new(t))),
        _ => Err(Rejection::FormErr),
    };
    let mut signer = match verified {
        Ok(v) => ResponseSigner::new(v, now),
        Err(rejection) => {
            let (rcode, name) = match &rejection {
                Rejection::FormErr => (ResponseCode::FormErr, "FORMERR"),
                Rejection::BadKey(_) => (ResponseCode::NotAuth, "BADKEY"),
                Rejection::BadSig(_) => (ResponseCode::NotAuth, "BADSIG"),
                Rejection::BadTrunc(_) => (ResponseCode::NotAuth, "BADTRUNC"),
                Rejection::BadTime(..) => (ResponseCode::NotAuth, "BADTIME"),
            };
            let mut out = reject(Rejected::Tsig(name), rcode, None);
            tsig::sign_rejection(&mut out, &rejection, now);
            return Step::Reply(out);
        }
    };
    let key = signer.key().name().clone();
    let mut signed = |rcode: ResponseCode, why: Rejected| {
        updates.rejected(remote, Some(&key), why, rcode);
        let mut out = super::xfr::error_message(request, rcode);
        signer.sign(&mut out);
        Step::Reply(out)
    };
    // §3.1.1: exactly one zone, of type SOA; a class we do not serve is
    // not our zone.
    let zone = match zone_of(request) {
        Ok(z) => z,
        Err(rcode) => return signed(rcode, Rejected::ZoneSection),
    };
    if handler.zones.load().get(&zone).is_none() {
        return signed(ResponseCode::NotAuth, Rejected::NotServed);
    }
    Step::Apply(Box::new(Pending {
        request: UpdateRequest {
            zone,
            key,
            prerequisites: request.answers.clone(),
            updates: request.authorities.clone(),
            remote,
        },
        signer,
        skeleton: super::xfr::error_message(request, ResponseCode::NoError),
    }))
}

/// Ask the handler (it answers once the change is served) and sign its rcode.
pub(super) async fn apply(handler: &Handler, pending: Box<Pending>) -> Vec<u8> {
    let Pending {
        request,
        mut signer,
        mut skeleton,
    } = *pending;
    let rcode = match handler.updates.as_ref() {
        Some(updates) => updates.update(request).await,
        None => ResponseCode::NotImp,
    };
    // The rcode's low four bits live in the header's fourth octet (the
    // ones UPDATE uses all fit: NOTZONE is 10).
    if let Some(b) = skeleton.get_mut(3) {
        *b = (*b & 0xf0) | (rcode.low() & 0x0f);
    }
    signer.sign(&mut skeleton);
    skeleton
}

/// The complete response to an UPDATE (signed when its TSIG verified).
pub(super) async fn answer(handler: &Handler, request: &Request) -> Vec<u8> {
    match prepare(handler, request) {
        Step::Reply(m) => m,
        Step::Apply(pending) => apply(handler, pending).await,
    }
}

/// The zone an UPDATE names, or the rcode its zone section earns.
fn zone_of(request: &Request) -> Result<Name, ResponseCode> {
    let queries = request.queries.queries();
    let [zone] = queries else {
        return Err(ResponseCode::FormErr);
    };
    if zone.query_type() != RecordType::SOA {
        return Err(ResponseCode::FormErr);
    }
    if zone.query_class() != DNSClass::IN {
        return Err(ResponseCode::NotAuth);
    }
    let mut name = Name::from(zone.name()).to_lowercase();
    name.set_fqdn(true);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::xfr::acl::TransferPolicy;
    use crate::server::xfr::tsig::{Algorithm, KeySet, TsigKey};
    use crate::server::xfr::Transfers;
    use crate::server::{bind_pair, serve_handler, ZoneSet};
    use crate::zone::file::parse_master;
    use crate::zone::Zone;
    use arc_swap::ArcSwap;
    use hickory_proto::op::{Message, OpCode, Query};
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::RData;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpStream, UdpSocket};

    const SECRET: &[u8] = b"update secret of thirty-two byte";

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn key(n: &str, secret: &[u8]) -> TsigKey {
        TsigKey::new(&name(n), Algorithm::HmacSha256, secret)
    }

    /// Records what reaches it and answers `rcode`.
    struct Recorder {
        rcode: ResponseCode,
        seen: Mutex<Vec<UpdateRequest>>,
        rejected: Mutex<Vec<(Rejected, ResponseCode)>>,
    }

    #[async_trait::async_trait]
    impl UpdateHandler for Recorder {
        async fn update(&self, request: UpdateRequest) -> ResponseCode {
            self.seen.lock().unwrap().push(request);
            self.rcode
        }

        fn rejected(&self, _: SocketAddr, _: Option<&Name>, why: Rejected, rcode: ResponseCode) {
            self.rejected.lock().unwrap().push((why, rcode));
        }
    }

    /// A server for `plain.test.` with key `upd.`; with `updates`, UPDATE
    /// goes to it.
    async fn start(updates: Option<Arc<Recorder>>) -> SocketAddr {
        let (o, r) = parse_master(
            "$ORIGIN plain.test.\n$TTL 300\n@ IN SOA ns1 hm 7 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n",
            None,
        )
        .unwrap();
        let mut set = ZoneSet::new();
        set.insert(Arc::new(Zone::new(o, r).unwrap()).into());
        let transfers = Arc::new(Transfers::new());
        let mut keys = KeySet::new();
        keys.insert(key("upd.", SECRET));
        transfers.set_policy(TransferPolicy {
            keys,
            rules: Vec::new(),
        });
        let mut handler =
            Handler::new(Arc::new(ArcSwap::from_pointee(set))).with_transfers(transfers);
        if let Some(u) = updates {
            handler = handler.with_updates(u);
        }
        let (udp, tcp) = bind_pair("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = udp.local_addr().unwrap();
        serve_handler(udp, tcp, handler);
        addr
    }

    fn recorder(rcode: ResponseCode) -> Arc<Recorder> {
        Arc::new(Recorder {
            rcode,
            seen: Mutex::new(Vec::new()),
            rejected: Mutex::new(Vec::new()),
        })
    }

    /// An UPDATE of `zone` (zone section type `ztype`) adding one TXT.
    fn update(zone: &str, ztype: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x2136;
        m.metadata.op_code = OpCode::Update;
        m.add_query(Query::query(name(zone), ztype));
        m.add_authority(Record::from_rdata(
            name(&format!("x.{zone}")),
            60,
            RData::TXT(TXT::new(vec!["v".into()])),
        ));
        m.to_vec().unwrap()
    }

    async fn udp(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.send_to(msg, addr).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        buf.truncate(n);
        buf
    }

    async fn tcp(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&(msg.len() as u16).to_be_bytes())
            .await
            .unwrap();
        s.write_all(msg).await.unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.unwrap();
        buf
    }

    fn rcode(m: &[u8]) -> ResponseCode {
        let m = Message::from_vec(m).unwrap();
        assert_eq!(m.metadata.op_code, OpCode::Update);
        m.metadata.response_code
    }

    #[tokio::test]
    async fn a_signed_update_reaches_the_handler_and_its_rcode_comes_back_signed() {
        let rec = recorder(ResponseCode::YXRRSet);
        let addr = start(Some(rec.clone())).await;
        let k = key("upd.", SECRET);
        for over_tcp in [false, true] {
            let mut req = update("plain.test.", RecordType::SOA);
            let mac = tsig::sign_request(&mut req, &k, tsig::unix_now());
            let m = if over_tcp {
                tcp(addr, &req).await
            } else {
                udp(addr, &req).await
            };
            assert_eq!(rcode(&m), ResponseCode::YXRRSet);
            tsig::verify_answer(&m, &k, &mac).expect("the answer is signed with the key");
        }
        let seen = rec.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].zone, name("plain.test."));
        assert_eq!(seen[0].key, name("upd."));
        assert_eq!(seen[0].updates.len(), 1);
        assert!(seen[0].prerequisites.is_empty());
    }

    #[tokio::test]
    async fn unsigned_bad_tsig_foreign_zone_and_bad_zone_section_never_reach_the_handler() {
        let rec = recorder(ResponseCode::NoError);
        let addr = start(Some(rec.clone())).await;
        // Unsigned: REFUSED.
        let m = udp(addr, &update("plain.test.", RecordType::SOA)).await;
        assert_eq!(rcode(&m), ResponseCode::Refused);
        // Bad secret, unknown key, old time: NOTAUTH with the TSIG error.
        for (k, at, code) in [
            (
                key("upd.", b"not the secret, not the secret.."),
                tsig::unix_now(),
                tsig::BADSIG,
            ),
            (key("other.", SECRET), tsig::unix_now(), tsig::BADKEY),
            (key("upd.", SECRET), tsig::unix_now() - 3600, tsig::BADTIME),
        ] {
            let mut req = update("plain.test.", RecordType::SOA);
            tsig::sign_request(&mut req, &k, at);
            let m = tcp(addr, &req).await;
            assert_eq!(rcode(&m), ResponseCode::NotAuth);
            assert_eq!(tsig::find(&m).unwrap().expect("TSIG").error, code);
        }
        // A zone not served: NOTAUTH; a zone section not of type SOA: FORMERR; both signed.
        let k = key("upd.", SECRET);
        for (zone, ztype, want) in [
            ("elsewhere.test.", RecordType::SOA, ResponseCode::NotAuth),
            ("plain.test.", RecordType::A, ResponseCode::FormErr),
        ] {
            let mut req = update(zone, ztype);
            let mac = tsig::sign_request(&mut req, &k, tsig::unix_now());
            let m = udp(addr, &req).await;
            assert_eq!(rcode(&m), want, "{zone} {ztype}");
            tsig::verify_answer(&m, &k, &mac).expect("signed");
        }
        assert!(rec.seen.lock().unwrap().is_empty());
        let rejected = rec.rejected.lock().unwrap();
        assert_eq!(rejected.len(), 6, "{rejected:?}");
        assert_eq!(rejected[0], (Rejected::Unsigned, ResponseCode::Refused));
        assert_eq!(rejected[4], (Rejected::NotServed, ResponseCode::NotAuth));
        assert_eq!(rejected[5], (Rejected::ZoneSection, ResponseCode::FormErr));
    }

    #[tokio::test]
    async fn without_a_handler_update_is_not_implemented() {
        let addr = start(None).await;
        let m = udp(addr, &update("plain.test.", RecordType::SOA)).await;
        assert_eq!(rcode(&m), ResponseCode::NotImp);
    }
}
