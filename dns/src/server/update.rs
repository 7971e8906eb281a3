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

/// The complete response to an UPDATE (signed when its TSIG verified).
pub(super) async fn answer(handler: &Handler, request: &Request) -> Vec<u8> {
    let Some(updates) = handler.updates.as_ref() else {
        return super::xfr::error_message(request, ResponseCode::NotImp);
    };
    let remote = request.src();
    let now = tsig::unix_now();
    let raw = request.as_slice();
    let reject = |why: Rejected, rcode: ResponseCode, key: Option<&Name>| {
        updates.rejected(remote, key, why, rcode);
        super::xfr::error_message(request, rcode)
    };
    if request.signature.is_none() {
        return reject(Rejected::Unsigned, ResponseCode::Refused, None);
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
            return out;
        }
    };
    let key = signer.key().name().clone();
    let signed = |rcode: ResponseCode, signer: &mut ResponseSigner| {
        let mut out = super::xfr::error_message(request, rcode);
        signer.sign(&mut out);
        out
    };
    // §3.1.1: exactly one zone, of type SOA; a class we do not serve is
    // not our zone.
    let zone = match zone_of(request) {
        Ok(z) => z,
        Err(rcode) => {
            updates.rejected(remote, Some(&key), Rejected::ZoneSection, rcode);
            return signed(rcode, &mut signer);
        }
    };
    if handler.zones.load().get(&zone).is_none() {
        updates.rejected(
            remote,
            Some(&key),
            Rejected::NotServed,
            ResponseCode::NotAuth,
        );
        return signed(ResponseCode::NotAuth, &mut signer);
    }
    let rcode = updates
        .update(UpdateRequest {
            zone,
            key,
            prerequisites: request.answers.clone(),
            updates: request.authorities.clone(),
            remote,
        })
        .await;
    signed(rcode, &mut signer)
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
