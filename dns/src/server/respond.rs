//! Pure response planning: from a decoded request and the zone table to the
//! header, EDNS and (size-fitted) sections of the response. No IO, so every
//! policy here (rcodes, EDNS, 0x20, truncation) is unit-testable.

use super::dynamic::{client_subnet, subnet_option, subnet_option_len, LuaSynth};
use super::query::Query;
use super::writer::{render_image, Writer};
use super::ZoneSet;
use crate::dnssec::answer::{kept_denial, KeptDenial};
use crate::lua::{LuaEngine, QueryContext};
use crate::zone::{lookup_key, lookup_keyed, Answer, AnswerKind};
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Edns, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, RecordTypeSet};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};
use hickory_server::net::xfer::Protocol;
use hickory_server::zone_handler::MessageRequest;

/// The UDP payload size we advertise and never exceed (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Size of our OPT RR on the wire (root owner, no options).
const OPT_LEN: usize = 11;
/// DNS header size.
const HEADER_LEN: usize = 12;

/// Everything needed to emit one response.
#[derive(Debug)]
pub struct Plan {
    /// Response header (id, flags, rcode; TC when truncated).
    pub metadata: Metadata,
    /// EDNS to include (present iff the request had EDNS).
    pub edns: Option<Edns>,
    /// The lookup result (empty for error responses).
    pub answer: Answer,
    /// How many answer records to send (prefix of `answer.answers`).
    pub n_answers: usize,
    /// How many authority records to send.
    pub n_authority: usize,
    /// How many additional records to send.
    pub n_additional: usize,
    /// SERVFAIL because a LUA evaluation hit a limit (the server may retry
    /// with a larger budget).
    pub lua_limited: bool,
    /// The answer came from a zone with LUA records (never reusable).
    pub dynamic: bool,
    /// The authority section as kept signed sets, written from their wire
    /// images (`answer.authority` is then empty). Only a planner whose
    /// [`Env::wire_images`] is set makes one.
    pub images: Option<Images>,
}

/// The authority section of a signed NXDOMAIN as wire images: the kept
/// sets (each with its image made) and where the question spells the apex
/// their names point at.
#[derive(Debug, Clone)]
pub struct Images {
    /// The sets, in order, each with its image.
    pub denial: KeptDenial,
    /// The offset in the message of the apex as the question spells it.
    pub apex_at: usize,
}

impl Images {
    /// How many records the images hold.
    pub fn records(&self) -> usize {
        self.denial
            .sets()
            .filter_map(|s| s.made_image())
            .map(|i| usize::from(i.records()))
            .sum()
    }
}

impl Plan {
    /// A response without records: `metadata` with `rcode`.
    pub fn empty(mut metadata: Metadata, edns: Option<Edns>, rcode: ResponseCode) -> Plan {
        metadata.response_code = rcode;
        Plan {
            metadata,
            edns,
            answer: Answer::default(),
            n_answers: 0,
            n_authority: 0,
            n_additional: 0,
            lua_limited: false,
            dynamic: false,
            images: None,
        }
    }

    /// Records to send, per section.
    pub fn sections(&self) -> (&[Record], &[Record], &[Record]) {
        let a = &self.answer;
        (
            a.answers.get(..self.n_answers).unwrap_or(&[]),
            a.authority.get(..self.n_authority).unwrap_or(&[]),
            a.additional.get(..self.n_additional).unwrap_or(&[]),
        )
    }
}

/// The largest response we may send for this request over this protocol.
pub fn size_limit(edns: Option<&Edns>, protocol: Protocol) -> u16 {
    payload_limit(edns.map(Edns::max_payload), protocol)
}

/// [`size_limit`] from the requestor's payload size (`None`: no EDNS).
fn payload_limit(payload: Option<u16>, protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Udp => match payload {
            // RFC 6891 §6.2.5: values below 512 are treated as 512.
            Some(p) => p.clamp(512, MAX_UDP_PAYLOAD),
            None => 512,
        },
        _ => u16::MAX,
    }
}

/// What the planner may know beyond the message: the client's address
/// and the LUA engine (without one, names answered by LUA records SERVFAIL).
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// Source address of the query (`who` in LUA records).
    pub src: std::net::SocketAddr,
    /// The LUA engine.
    pub lua: Option<&'a LuaEngine>,
    /// The plan goes to [`super::wire::encode_question`], which writes
    /// [`Plan::images`]: a signed NXDOMAIN at the apex may come as images.
    pub wire_images: bool,
}

impl Default for Env<'_> {
    fn default() -> Self {
        Env {
            src: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            lua: None,
            wire_images: false,
        }
    }
}

/// What the planner reads of a request, parsed at the edge: from hickory's
/// decoded message ([`QueryView::of_message`]) or from the in-place read of
/// a plain query ([`QueryView::of_query`]), which spares the UDP path
/// hickory's generic decoding when the packet cache misses.
#[derive(Debug, Clone, Copy)]
pub struct QueryView<'a> {
    /// The request's header fields.
    pub metadata: Metadata,
    /// The request's OPT record, when it had one.
    pub edns: Option<EdnsView>,
    /// The question section as sent (names as spelled).
    pub question: &'a [u8],
    /// How many questions it holds.
    pub questions: usize,
    /// Type and class of the question, when there is exactly one.
    pub query: Option<(RecordType, DNSClass)>,
}

/// The fields of a request's OPT record the planner honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdnsView {
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK.
    pub dnssec_ok: bool,
    /// Requestor's UDP payload size, as sent.
    pub max_payload: u16,
    /// The Client Subnet option's address and source prefix.
    pub subnet: Option<(std::net::IpAddr, u8)>,
    /// Whether a server cookie will be appended (a well-formed COOKIE option).
    pub cookie: bool,
}

impl<'a> QueryView<'a> {
    /// The view of a message hickory decoded.
    pub fn of_message(request: &'a MessageRequest) -> QueryView<'a> {
        let queries = request.queries.queries();
        QueryView {
            metadata: request.metadata,
            edns: request.edns.as_ref().map(|e| EdnsView {
                version: e.version(),
                dnssec_ok: e.flags().dnssec_ok,
                max_payload: e.max_payload(),
                subnet: client_subnet(Some(e)),
                cookie: super::cookie::wants_cookie(Some(e)),
            }),
            question: request.queries.as_bytes(),
            questions: queries.len(),
            query: match queries {
                [q] => Some((q.query_type(), q.query_class())),
                _ => None,
            },
        }
    }

    /// The view of a plain query read in place (one uncompressed question,
    /// an OPT whose only option is a COOKIE).
    pub fn of_query(query: &Query<'a>) -> QueryView<'a> {
        let n = query.question.len();
        let class = query
            .question
            .get(n.saturating_sub(2)..)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
        QueryView {
            metadata: {
                let mut m = Metadata::new(query.id, MessageType::Query, OpCode::Query);
                m.recursion_desired = query.rd;
                m.checking_disabled = query.cd;
                m
            },
            edns: query.edns.map(|e| EdnsView {
                version: e.version,
                dnssec_ok: e.dnssec_ok,
                max_payload: e.payload,
                subnet: None,
                cookie: super::cookie::wants_cookie_data(e.cookie),
            }),
            question: query.question,
            questions: 1,
            query: Some((RecordType::from(query.qtype), DNSClass::from(class))),
        }
    }

    /// The query name as the client spelled it.
    fn qname(&self) -> Option<Name> {
        Name::read(&mut BinDecoder::new(self.question)).ok()
    }
}

/// Plan the response to `request` from `zones` (no LUA engine).
pub fn plan(request: &MessageRequest, zones: &ZoneSet, protocol: Protocol) -> Plan {
    plan_with(request, zones, protocol, &Env::default())
}

/// Plan the response to `request` from `zones`, evaluating LUA records
/// with `env.lua`.
pub fn plan_with(
    request: &MessageRequest,
    zones: &ZoneSet,
    protocol: Protocol,
    env: &Env<'_>,
) -> Plan {
    plan_view(&QueryView::of_message(request), zones, protocol, env)
}

/// Plan the response to the request seen as `request` from `zones`,
/// evaluating LUA records with `env.lua`.
pub fn plan_view(
    request: &QueryView<'_>,
    zones: &ZoneSet,
    protocol: Protocol,
    env: &Env<'_>,
) -> Plan {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.recursion_available = false;
    metadata.authentic_data = false;

    // RFC 7871 §7.2.1: echo the client's subnet; the scope is 0 unless a
    // LUA record looked at it (set below).
    let subnet = request.edns.and_then(|e| e.subnet);
    let mut edns = request.edns.map(|req| {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP_PAYLOAD);
        e.set_version(0);
        e.set_dnssec_ok(req.dnssec_ok);
        if let Some(sn) = subnet {
            e.options_mut().insert(subnet_option(sn, 0));
        }
        e
    });
    let error = Plan::empty;

    if request.edns.is_some_and(|e| e.version > 0) {
        return error(metadata, edns, ResponseCode::BADVERS);
    }
    // NOTIFY / UPDATE get their own branches later.
    if request.metadata.op_code != OpCode::Query {
        return error(metadata, edns, ResponseCode::NotImp);
    }
    let Some((qtype, qclass)) = request.query else {
        return error(metadata, edns, ResponseCode::FormErr);
    };
    if qclass != DNSClass::IN {
        return error(metadata, edns, ResponseCode::Refused);
    }
    match qtype {
        RecordType::AXFR => return error(metadata, edns, ResponseCode::Refused),
        RecordType::IXFR => return error(metadata, edns, ResponseCode::NotImp),
        RecordType::OPT => return error(metadata, edns, ResponseCode::FormErr),
        _ => {}
    }
    let Some(qname) = request.qname() else {
        return error(metadata, edns, ResponseCode::FormErr);
    };
    // One canonical key per query: the zone table and the zone's tree are
    // both searched by it.
    let qkey = crate::zone::key::of(&qname);
    let Some(mut served) = zones.find_key(&qkey) else {
        return error(metadata, edns, ResponseCode::Refused);
    };
    // RFC 4035 §3.1.4.1: DS at a zone apex belongs to the parent; answer it
    // from the parent when we serve that too.
    if qtype == RecordType::DS && served.zone().origin() == &qname && !qname.is_root() {
        if let Some(parent) = zones.find(&qname.base_name()) {
            // Only when the parent really delegates here; otherwise the
            // child's own NODATA is the better answer.
            if parent.zone().node(&qname).is_some_and(|n| n.cut) {
                served = parent;
            }
        }
    }
    let zone = served.zone();
    let dnssec_ok = request.edns.is_some_and(|e| e.dnssec_ok);
    let mut answer = match env.lua.filter(|_| zone.has_dynamic()) {
        Some(engine) => {
            let owner = std::sync::Arc::clone(zone);
            let include = move |n: &Name| owner.lua_includes(n);
            let mut ctx =
                QueryContext::new(qname.clone(), qtype, zone.origin().clone(), env.src.ip());
            ctx.ecs = subnet;
            ctx.dnssec_ok = dnssec_ok;
            ctx.tcp = protocol == Protocol::Tcp;
            ctx.edns_size = request.edns.map_or(0, |e| e.max_payload);
            ctx.header = (
                request.metadata.id,
                request.metadata.recursion_desired,
                request.metadata.checking_disabled,
            );
            let ctx = ctx.with_include(&include);
            let mut synth = LuaSynth::new(engine, ctx);
            match lookup_keyed(zone, &qname, &qkey, qtype, &mut synth) {
                Ok(a) => {
                    if let (Some(sn), Some(scope), Some(e)) = (subnet, synth.scope, edns.as_mut()) {
                        e.options_mut()
                            .remove(hickory_proto::rr::rdata::opt::EdnsCode::Subnet);
                        e.options_mut().insert(subnet_option(sn, scope));
                    }
                    a
                }
                Err(e) => {
                    tracing::debug!(%qname, %qtype, error = %e, "LUA record failed: SERVFAIL");
                    let mut p = error(metadata, edns, ResponseCode::ServFail);
                    p.lua_limited = matches!(
                        e,
                        crate::lua::LuaError::InstructionLimit
                            | crate::lua::LuaError::Timeout
                            | crate::lua::LuaError::MemoryLimit
                    );
                    return p;
                }
            }
        }
        None => lookup_key(zone, &qname, &qkey, qtype),
    };
    if answer.rcode == ResponseCode::ServFail {
        // A LUA record and no engine to run it.
        return error(metadata, edns, ResponseCode::ServFail);
    }
    let limit = payload_limit(request.edns.map(|e| e.max_payload), protocol);
    let reserve = match (&edns, subnet) {
        (Some(_), Some((_, source))) => OPT_LEN + subnet_option_len(source),
        (Some(_), None) => OPT_LEN,
        (None, _) => 0,
    };
    // Room for the server cookie the transport appends after encoding.
    let reserve = if request.edns.is_some_and(|e| e.cookie) {
        reserve + super::cookie::OPTION_WIRE_LEN
    } else {
        reserve
    };
    let mut imaged = None;
    match served.signer() {
        Some(signer) if dnssec_ok => {
            let now = unix_now();
            let budget =
                usize::from(limit).saturating_sub(HEADER_LEN + request.question.len() + reserve);
            let kept = if env.wire_images {
                images(&answer, zone, signer, &qname, request.question, budget, now)
            } else {
                Ok(None)
            };
            let secured = kept.and_then(|i| match i {
                // The authority section goes as images: nothing to fit.
                Some(i) => {
                    answer.authority.clear();
                    imaged = Some(i);
                    Ok(())
                }
                None => crate::dnssec::answer::secure(&mut answer, zone, signer, &qname, now),
            });
            if let Err(e) = secured {
                tracing::error!(error = %e, "signing failed");
                return error(metadata, edns, ResponseCode::ServFail);
            }
        }
        // RFC 4035 §3.2.1: no DNSSEC records for DO=0 clients, but a DS
        // asked for by type is data like any other.
        _ if !dnssec_ok && qtype != RecordType::DS => {
            answer
                .authority
                .retain(|r| r.record_type() != RecordType::DS);
        }
        _ => {}
    }
    metadata.response_code = answer.rcode;
    metadata.authoritative = answer.authoritative;

    let fit = fit(&answer, request.question, limit as usize, reserve);
    metadata.truncation = fit.truncated;
    Plan {
        metadata,
        edns,
        answer,
        n_answers: fit.answers,
        n_authority: fit.authority,
        n_additional: fit.additional,
        lua_limited: false,
        dynamic: zone.has_dynamic(),
        images: imaged,
    }
}

/// The authority section of `answer` as wire images, when it is a signed
/// NXDOMAIN that [`crate::dnssec::answer::kept_denial`] keeps, the
/// question spells the apex as the zone does, and the images fit in
/// `budget` bytes. `Ok(None)`: plan it record by record.
fn images(
    answer: &Answer,
    zone: &crate::zone::Zone,
    signer: &crate::dnssec::ZoneSigner,
    qname: &Name,
    question: &[u8],
    budget: usize,
    now: u32,
) -> Result<Option<Images>, crate::dnssec::SignError> {
    let Some(apex_at) = crate::image::apex_in_question(question, zone.origin()) else {
        return Ok(None);
    };
    let Some(denial) = kept_denial(answer, zone, signer, qname, now)? else {
        return Ok(None);
    };
    let mut len = 0;
    for set in denial.sets() {
        let Some(image) = set.image(|r| render_image(zone.origin(), r)) else {
            return Ok(None);
        };
        len += image.len();
    }
    // What does not fit is planned record by record: the same policy
    // (`fit`) then decides, on the same bytes.
    Ok((len <= budget).then_some(Images { denial, apex_at }))
}

/// A response without records to `request`, with `rcode`, shaped as the
/// planner shapes every response (EDNS echoed at our payload size).
pub fn bare(request: &MessageRequest, rcode: ResponseCode) -> Plan {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.recursion_available = false;
    metadata.authentic_data = false;
    let edns = request.edns.as_ref().map(|req| {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP_PAYLOAD);
        e.set_version(0);
        e.set_dnssec_ok(req.flags().dnssec_ok);
        e
    });
    Plan::empty(metadata, edns, rcode)
}

pub(crate) fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().min(u32::MAX as u64) as u32)
        .unwrap_or(0)
}

/// How much of an answer fits in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// Answer records that fit.
    pub answers: usize,
    /// Authority records that fit.
    pub authority: usize,
    /// Additional records that fit.
    pub additional: usize,
    /// Whether to set TC.
    pub truncated: bool,
}

/// Upper bound of a name's wire size without compression.
fn name_ub(n: &Name) -> usize {
    n.len() + 1
}

/// Upper bound of an NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2): at most 34
/// bytes per window in use. The set iterates in order, so windows are
/// counted as they change.
fn bitmap_ub(types: &RecordTypeSet) -> usize {
    let mut last = None;
    let mut windows = 0;
    for t in types.iter() {
        let window = u16::from(t) >> 8;
        if last != Some(window) {
            windows += 1;
            last = Some(window);
        }
    }
    windows * 34
}

/// Upper bound of a record's wire size (no compression). Exact-encodes only
/// uncommon types.
pub(crate) fn record_ub(r: &Record) -> usize {
    let rdata = match &r.data {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::NS(n) => name_ub(&n.0),
        RData::CNAME(n) => name_ub(&n.0),
        RData::PTR(n) => name_ub(&n.0),
        RData::MX(mx) => 2 + name_ub(&mx.exchange),
        RData::SRV(srv) => 6 + name_ub(&srv.target),
        RData::SOA(soa) => name_ub(&soa.mname) + name_ub(&soa.rname) + 20,
        RData::TXT(txt) => txt.txt_data.iter().map(|s| 1 + s.len()).sum(),
        // Every signed answer carries these; encoding them to measure cost
        // as much as sending them.
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
            18 + name_ub(&sig.input().signer_name) + sig.sig().len()
        }
        RData::DNSSEC(DNSSECRData::NSEC3(n)) => {
            6 + n.salt().len() + n.next_hashed_owner_name().len() + bitmap_ub(n.type_set())
        }
        RData::DNSSEC(DNSSECRData::NSEC(n)) => {
            name_ub(n.next_domain_name()) + bitmap_ub(n.type_set())
        }
        other => other.to_bytes().map_or(usize::MAX / 4, |b| b.len()),
    };
    name_ub(&r.name) + 10 + rdata
}

/// Decide how many records of each section fit in `limit` bytes, with
/// `reserve` bytes kept for the OPT RR. Cheap upper-bound check first; an
/// exact trial encoding (same compression as the real one) only when the
/// bound says it might not fit.
///
/// Policy: if the answer or authority section does not fit completely the
/// response is TC=1 with empty sections (the client retries over TCP).
/// Additional records are dropped at RRset boundaries; TC=1 is set only when
/// referral glue had to be dropped (RFC 9471).
pub fn fit(answer: &Answer, question: &[u8], limit: usize, reserve: usize) -> Fit {
    let all = Fit {
        answers: answer.answers.len(),
        authority: answer.authority.len(),
        additional: answer.additional.len(),
        truncated: false,
    };
    let budget = limit.saturating_sub(HEADER_LEN + question.len() + reserve);
    let ub: usize = answer
        .answers
        .iter()
        .chain(&answer.authority)
        .chain(&answer.additional)
        .map(record_ub)
        .fold(0usize, usize::saturating_add);
    if ub <= budget {
        return all;
    }
    let empty = Fit {
        answers: 0,
        authority: 0,
        additional: 0,
        truncated: true,
    };
    let mut buf = Vec::with_capacity(limit);
    let mut w = Writer::new(&mut buf, limit.saturating_sub(reserve));
    w.header(
        &Metadata::new(0, MessageType::Response, OpCode::Query),
        &HeaderCounts::default(),
    );
    if w.question(question, usize::from(!question.is_empty()))
        .is_err()
    {
        return empty;
    }
    for r in answer.answers.iter().chain(&answer.authority) {
        if w.record(r).is_err() {
            return empty;
        }
    }
    let mut n_add = 0;
    for r in &answer.additional {
        if w.record(r).is_err() {
            break;
        }
        n_add += 1;
    }
    if n_add == answer.additional.len() {
        return all;
    }
    // Back off to an RRset boundary: do not send a partial RRset.
    let adds = &answer.additional;
    while n_add > 0
        && n_add < adds.len()
        && adds[n_add - 1].name == adds[n_add].name
        && adds[n_add - 1].record_type() == adds[n_add].record_type()
    {
        n_add -= 1;
    }
    Fit {
        additional: n_add,
        truncated: matches!(answer.kind, AnswerKind::Referral { .. }),
        ..all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::file::parse_master;
    use crate::zone::Zone;
    use hickory_proto::op::{Message, MessageType, Query};
    use hickory_server::server::Request;
    use std::str::FromStr;
    use std::sync::Arc;

    pub(crate) fn test_zones() -> ZoneSet {
        let mut text = String::from(
            "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hm 7 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\n",
        );
        for i in 0..40 {
            text.push_str(&format!("big IN TXT \"{i:03}{}\"\n", "x".repeat(97)));
        }
        text.push_str("sub IN NS ns1.sub\nsub IN DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nns1.sub IN A 192.0.2.9\n");
        for i in 0..60 {
            text.push_str(&format!(
                "child IN NS ns{i}.child\nns{i}.child IN A 192.0.2.{i}\n"
            ));
        }
        let (origin, records) = parse_master(&text, None).unwrap();
        let mut set = ZoneSet::new();
        set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
        // A child zone we also serve; the parent holds its delegation and DS.
        let (o2, r2) = parse_master(
            "$ORIGIN sub.example.com.\n@ 300 IN SOA ns1 hm 9 1 1 1 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.9\n",
            None,
        )
        .unwrap();
        set.insert(Arc::new(Zone::new(o2, r2).unwrap()).into());
        set
    }

    pub(crate) fn query_bytes(name: &str, t: RecordType, edns: Option<(u16, u8, bool)>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        if let Some((size, version, dnssec_ok)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            e.set_version(version);
            e.set_dnssec_ok(dnssec_ok);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    /// Plan and encode exactly as the server does.
    fn run(bytes: Vec<u8>, zones: &ZoneSet, protocol: Protocol) -> (Message, Vec<u8>) {
        let req = Request::from_bytes(bytes, "127.0.0.1:5353".parse().unwrap(), protocol).unwrap();
        let plan = plan(&req, zones, protocol);
        let mut buf = Vec::new();
        super::super::wire::encode(&plan, &req.queries, protocol, &mut buf);
        (Message::from_vec(&buf).unwrap(), buf)
    }

    #[test]
    fn dnssec_record_bounds_cover_their_encoding() {
        let owner = Name::from_ascii("x.example.com.").unwrap();
        use hickory_proto::dnssec::rdata::{sig::SigInput, RRSIG};
        use hickory_proto::dnssec::Algorithm;
        let input = SigInput {
            type_covered: RecordType::A,
            algorithm: Algorithm::ECDSAP256SHA256,
            num_labels: 3,
            original_ttl: 300,
            sig_expiration: 1_800_000_000.into(),
            sig_inception: 1_700_000_000.into(),
            key_tag: 12345,
            signer_name: Name::from_ascii("example.com.").unwrap(),
        };
        let rrsig = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![7; 64])));
        let mut cases = vec![rrsig];
        use hickory_proto::dnssec::rdata::{NSEC, NSEC3};
        use hickory_proto::dnssec::Nsec3HashAlgorithm;
        let many = [
            RecordType::A,
            RecordType::NS,
            RecordType::SOA,
            RecordType::MX,
            RecordType::AAAA,
            RecordType::RRSIG,
            RecordType::DNSKEY,
            RecordType::CAA,
            RecordType::Unknown(65534),
        ];
        let hash = vec![0xab; 20];
        cases.push(RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
            Nsec3HashAlgorithm::SHA1,
            false,
            0,
            vec![],
            hash.clone(),
            many,
        ))));
        cases.push(RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
            Nsec3HashAlgorithm::SHA1,
            true,
            0,
            vec![1, 2],
            hash,
            [],
        ))));
        cases.push(RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(
            Name::from_ascii("next.x.example.com.").unwrap(),
            [
                RecordType::A,
                RecordType::RRSIG,
                RecordType::NSEC,
                RecordType::Unknown(128),
            ],
        ))));
        for data in cases {
            let encoded = data.to_bytes().unwrap().len();
            let shown = data.to_string();
            let r = Record::from_rdata(owner.clone(), 300, data);
            assert!(
                record_ub(&r) >= owner.len() + 1 + 10 + encoded,
                "{shown}: bound {} < {}",
                record_ub(&r),
                owner.len() + 11 + encoded
            );
        }
    }

    #[test]
    fn positive_answer_flags() {
        let z = test_zones();
        let (m, _) = run(
            query_bytes("www.example.com.", RecordType::A, None),
            &z,
            Protocol::Udp,
        );
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.id, 0x1234);
        assert!(m.metadata.authoritative);
        assert!(m.metadata.recursion_desired);
        assert!(!m.metadata.recursion_available);
        assert_eq!(m.answers.len(), 1);
        assert!(m.edns.is_none());
    }

    #[test]
    fn question_and_owner_keep_query_case() {
        let z = test_zones();
        let q = query_bytes("wWw.ExAmPlE.cOm.", RecordType::A, None);
        let (m, bytes) = run(q.clone(), &z, Protocol::Udp);
        // The question section is byte-identical to the query's.
        let qlen = q.len() - 12;
        assert_eq!(&bytes[12..12 + qlen], &q[12..]);
        assert!(m.answers[0]
            .name
            .eq_case(&Name::from_ascii("wWw.ExAmPlE.cOm.").unwrap()));
    }

    #[test]
    fn refused_outside_zones_and_non_in_class() {
        let z = test_zones();
        let (m, _) = run(
            query_bytes("example.org.", RecordType::A, None),
            &z,
            Protocol::Udp,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(!m.metadata.authoritative);
        let mut msg = Message::query();
        let mut q = Query::query(Name::from_ascii("www.example.com.").unwrap(), RecordType::A);
        q.query_class = DNSClass::CH;
        msg.add_query(q);
        let (m, _) = run(msg.to_vec().unwrap(), &z, Protocol::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn notimp_for_other_opcodes_formerr_for_two_questions() {
        let z = test_zones();
        let mut msg = Message::query();
        msg.metadata.op_code = OpCode::Notify;
        msg.add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::SOA,
        ));
        let (m, _) = run(msg.to_vec().unwrap(), &z, Protocol::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);

        let mut msg = Message::query();
        msg.add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::A,
        ));
        msg.add_query(Query::query(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
        ));
        let (m, _) = run(msg.to_vec().unwrap(), &z, Protocol::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);

        let msg = Message::query();
        let (m, _) = run(msg.to_vec().unwrap(), &z, Protocol::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn axfr_refused_ixfr_notimp() {
        let z = test_zones();
        let (m, _) = run(
            query_bytes("example.com.", RecordType::AXFR, None),
            &z,
            Protocol::Tcp,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        let (m, _) = run(
            query_bytes("example.com.", RecordType::IXFR, None),
            &z,
            Protocol::Tcp,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    }

    #[test]
    fn edns_echoed_with_our_payload_and_do_bit() {
        let z = test_zones();
        let (m, _) = run(
            query_bytes("www.example.com.", RecordType::A, Some((4096, 0, true))),
            &z,
            Protocol::Udp,
        );
        let e = m.edns.expect("edns");
        assert_eq!(e.max_payload(), MAX_UDP_PAYLOAD);
        assert!(e.flags().dnssec_ok);
        let (m, _) = run(
            query_bytes("www.example.com.", RecordType::A, Some((4096, 0, false))),
            &z,
            Protocol::Udp,
        );
        assert!(!m.edns.unwrap().flags().dnssec_ok);
    }

    #[test]
    fn badvers_for_edns_version_1() {
        let z = test_zones();
        let (m, _) = run(
            query_bytes("www.example.com.", RecordType::A, Some((1232, 1, false))),
            &z,
            Protocol::Udp,
        );
        // 16 decodes as BADSIG (same code as BADVERS).
        assert_eq!(u16::from(m.metadata.response_code), 16);
        assert!(m.answers.is_empty());
        assert!(m.edns.is_some());
    }

    #[test]
    fn truncation_without_edns_is_512() {
        let z = test_zones();
        let (m, bytes) = run(
            query_bytes("big.example.com.", RecordType::TXT, None),
            &z,
            Protocol::Udp,
        );
        assert!(bytes.len() <= 512);
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn truncation_caps_edns_at_1232() {
        let z = test_zones();
        let (m, bytes) = run(
            query_bytes("big.example.com.", RecordType::TXT, Some((65000, 0, false))),
            &z,
            Protocol::Udp,
        );
        assert!(bytes.len() <= 1232);
        assert!(m.metadata.truncation);
        assert!(m.edns.is_some(), "OPT must survive truncation");
        // Small client size is honoured too.
        let (m, bytes) = run(
            query_bytes("big.example.com.", RecordType::TXT, Some((600, 0, false))),
            &z,
            Protocol::Udp,
        );
        assert!(bytes.len() <= 600);
        assert!(m.metadata.truncation);
    }

    #[test]
    fn tcp_sends_everything() {
        let z = test_zones();
        let (m, _) = run(
            query_bytes("big.example.com.", RecordType::TXT, None),
            &z,
            Protocol::Tcp,
        );
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 40);
    }

    #[test]
    fn referral_glue_that_does_not_fit_sets_tc() {
        let z = test_zones();
        let (m, bytes) = run(
            query_bytes(
                "host.child.example.com.",
                RecordType::A,
                Some((1232, 0, false)),
            ),
            &z,
            Protocol::Udp,
        );
        assert!(bytes.len() <= 1232);
        assert!(!m.metadata.authoritative);
        assert_eq!(m.authorities.len(), 60);
        assert!(m.metadata.truncation);
        assert!(m.additionals.len() < 60);
    }

    #[test]
    fn ds_at_child_apex_comes_from_parent() {
        let z = test_zones();
        let (m, _) = run(
            query_bytes("sub.example.com.", RecordType::DS, None),
            &z,
            Protocol::Udp,
        );
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].record_type(), RecordType::DS);
        let (m, _) = run(
            query_bytes("sub.example.com.", RecordType::SOA, None),
            &z,
            Protocol::Udp,
        );
        assert_eq!(
            m.answers[0].name,
            Name::from_str("sub.example.com.").unwrap()
        );
    }

    #[test]
    fn fit_upper_bound_is_safe() {
        let z = test_zones();
        // Every planned UDP response must encode within the limit without
        // hickory's own truncation kicking in.
        for (name, t) in [
            ("big.example.com.", RecordType::TXT),
            ("www.example.com.", RecordType::A),
            ("child.example.com.", RecordType::NS),
            ("example.com.", RecordType::NS),
            ("nx.example.com.", RecordType::A),
        ] {
            for edns in [None, Some((512, 0, false)), Some((1232, 0, true))] {
                let req = Request::from_bytes(
                    query_bytes(name, t, edns),
                    "127.0.0.1:1".parse().unwrap(),
                    Protocol::Udp,
                )
                .unwrap();
                let p = plan(&req, &z, Protocol::Udp);
                let (m, bytes) = run(query_bytes(name, t, edns), &z, Protocol::Udp);
                assert_eq!(m.answers.len(), p.n_answers, "{name}");
                assert_eq!(m.authorities.len(), p.n_authority, "{name}");
                assert_eq!(m.additionals.len(), p.n_additional, "{name}");
                assert!(bytes.len() <= size_limit(req.edns.as_ref(), Protocol::Udp) as usize);
            }
        }
    }

    fn lua_zones() -> ZoneSet {
        let text = r#"$ORIGIN lua.test.
$TTL 60
@     IN SOA ns1 hm 1 3600 600 86400 30
@     IN NS  ns1
ns1   IN A   192.0.2.1
www   IN A   192.0.2.10
all   IN LUA A "all({'192.0.2.1','192.0.2.2'})"
nm    IN LUA A ";if netmask({'10.0.0.0/8'}) then return '192.0.2.100' else return '192.0.2.200' end"
err   IN LUA A "error('boom')"
none  IN LUA A "{}"
cn    IN LUA CNAME "'www.lua.test.'"
cfg   IN LUA LUA "ips={'192.0.2.77','192.0.2.78'}"
inc   IN LUA A ";include('cfg') return ips"
loop  IN LUA A ";while true do end"
"#;
        let (origin, records) = parse_master(text, None).unwrap();
        let mut set = ZoneSet::new();
        set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
        set
    }

    fn lua_plan(
        zones: &ZoneSet,
        engine: &LuaEngine,
        name: &str,
        t: RecordType,
        ecs: Option<(&str, u8)>,
    ) -> Plan {
        let mut m = Message::query();
        m.metadata.id = 7;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        if let Some((addr, bits)) = ecs {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            e.options_mut()
                .insert(subnet_option((addr.parse().unwrap(), bits), 0));
            m.set_edns(e);
        }
        let req = Request::from_bytes(
            m.to_vec().unwrap(),
            "127.0.0.1:5353".parse().unwrap(),
            Protocol::Udp,
        )
        .unwrap();
        let env = Env {
            src: "127.0.0.1:5353".parse().unwrap(),
            lua: Some(engine),
            ..Env::default()
        };
        plan_with(&req, zones, Protocol::Udp, &env)
    }

    fn scope_of(p: &Plan) -> Option<(u8, u8)> {
        use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
        match p.edns.as_ref()?.option(EdnsCode::Subnet)? {
            EdnsOption::Subnet(cs) => Some((cs.source_prefix(), cs.scope_prefix())),
            _ => None,
        }
    }

    #[test]
    fn lua_answers_through_the_planner() {
        let z = lua_zones();
        let e = LuaEngine::new(crate::lua::LuaConfig::default());
        let p = lua_plan(&z, &e, "all.lua.test.", RecordType::A, None);
        assert_eq!(p.metadata.response_code, ResponseCode::NoError);
        assert_eq!(p.n_answers, 2);
        let p = lua_plan(&z, &e, "inc.lua.test.", RecordType::A, None);
        assert_eq!(p.n_answers, 2, "include() sees the cfg record");
        let p = lua_plan(&z, &e, "cn.lua.test.", RecordType::A, None);
        let kinds: Vec<_> = p.answer.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(kinds, vec![RecordType::CNAME, RecordType::A]);
        let p = lua_plan(&z, &e, "none.lua.test.", RecordType::A, None);
        assert_eq!(p.metadata.response_code, ResponseCode::NoError);
        assert_eq!((p.n_answers, p.n_authority), (0, 1));
        for bad in ["err.lua.test.", "loop.lua.test."] {
            let t0 = std::time::Instant::now();
            let p = lua_plan(&z, &e, bad, RecordType::A, None);
            assert_eq!(p.metadata.response_code, ResponseCode::ServFail, "{bad}");
            assert!(
                t0.elapsed() < std::time::Duration::from_millis(200),
                "{bad}"
            );
        }
        // Without an engine LUA names SERVFAIL and static names still work.
        let req_zones = lua_zones();
        let r = Request::from_bytes(
            query_bytes("all.lua.test.", RecordType::A, None),
            "127.0.0.1:1".parse().unwrap(),
            Protocol::Udp,
        )
        .unwrap();
        assert_eq!(
            plan(&r, &req_zones, Protocol::Udp).metadata.response_code,
            ResponseCode::ServFail
        );
    }

    #[test]
    fn lua_uses_ecs_and_sets_the_scope() {
        let z = lua_zones();
        let e = LuaEngine::new(crate::lua::LuaConfig::default());
        let data = |p: &Plan| {
            p.answer
                .answers
                .iter()
                .map(|r| r.data.to_string())
                .collect::<Vec<_>>()
        };
        let p = lua_plan(
            &z,
            &e,
            "nm.lua.test.",
            RecordType::A,
            Some(("10.1.2.0", 24)),
        );
        assert_eq!(data(&p), vec!["192.0.2.100"]);
        assert_eq!(scope_of(&p), Some((24, 24)));
        let p = lua_plan(
            &z,
            &e,
            "nm.lua.test.",
            RecordType::A,
            Some(("192.0.2.0", 24)),
        );
        assert_eq!(data(&p), vec!["192.0.2.200"]);
        let p = lua_plan(&z, &e, "nm.lua.test.", RecordType::A, None);
        assert_eq!(data(&p), vec!["192.0.2.200"], "127.0.0.1 is not in 10/8");
        // Static answers echo the subnet with scope 0.
        let p = lua_plan(
            &z,
            &e,
            "www.lua.test.",
            RecordType::A,
            Some(("10.1.2.0", 24)),
        );
        assert_eq!(scope_of(&p), Some((24, 0)));
    }

    /// A fresh P-256 CSK.
    fn p256_key() -> Arc<crate::dnssec::ZoneKey> {
        use crate::dnssec::keys::{generate, KeyAlgorithm, KeyRole, ZoneKey};
        let pkcs8 = generate(KeyAlgorithm::Ecdsap256sha256).unwrap();
        Arc::new(ZoneKey::from_pkcs8(KeyAlgorithm::Ecdsap256sha256, KeyRole::Csk, &pkcs8).unwrap())
    }

    /// `zone` signed online with `key` as its only key, denying with `mode`.
    fn signed(
        zone: Zone,
        key: &Arc<crate::dnssec::ZoneKey>,
        mode: crate::dnssec::DenialMode,
    ) -> crate::server::ServedZone {
        use crate::dnssec::{SigCache, SigningPolicy, ZoneSigner};
        let signer = ZoneSigner::new(
            &zone,
            vec![key.clone()],
            vec![key.clone()],
            mode,
            Arc::new(SigCache::new(64)),
            SigningPolicy::default(),
        );
        crate::server::ServedZone::signed(Arc::new(zone), Arc::new(signer))
    }

    /// A signed NXDOMAIN written from wire images allocates a few times
    /// (the name read from the question, the lookup's closest encloser and
    /// SOA), not once per record of its proofs as the record path does.
    #[test]
    fn signed_nxdomain_from_images_allocates_a_few_times() {
        use crate::dnssec::DenialMode;
        use crate::server::alloc_count::allocations;
        use crate::server::query::Query as InPlace;
        let key = p256_key();
        let (origin, records) = parse_master(
            "$ORIGIN example.com.\n@ 300 IN SOA ns1 hm 1 3600 600 86400 30\n@ 300 IN NS ns1\n\
             ns1 300 IN A 192.0.2.1\nwww 300 IN A 192.0.2.2\nmail 300 IN A 192.0.2.3\n",
            None,
        )
        .unwrap();
        let mut set = ZoneSet::new();
        set.insert(signed(
            Zone::new(origin, records).unwrap(),
            &key,
            DenialMode::Nsec3,
        ));
        let images = Env {
            wire_images: true,
            ..Env::default()
        };
        let mut out = Vec::with_capacity(2048);
        let mut cost = |name: &str, env: &Env<'_>| {
            let raw = query_bytes(name, RecordType::A, Some((1232, 0, true)));
            let read = InPlace::parse(&raw).unwrap();
            let view = QueryView::of_query(&read);
            let before = allocations();
            let plan = plan_view(&view, &set, Protocol::Udp, env);
            super::super::wire::encode_question(&plan, view.question, 1, Protocol::Udp, &mut out);
            drop(plan);
            let n = allocations() - before;
            let m = Message::from_vec(&out).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
            assert!(m.authorities.len() >= 4, "{name}: {:?}", m.authorities);
            n
        };
        // Every kept set and image made (all names of the zone's chain).
        for i in 0..64 {
            cost(&format!("warm{i}.example.com."), &images);
        }
        let by_images = (0..32)
            .map(|i| cost(&format!("nx{i}.example.com."), &images))
            .max()
            .unwrap();
        let by_records = (0..32)
            .map(|i| cost(&format!("nx{i}.example.com."), &Env::default()))
            .min()
            .unwrap();
        assert!(by_images <= 4, "{by_images} allocations from images");
        assert!(
            by_records >= by_images + 8,
            "{by_records} allocations record by record, {by_images} from images"
        );
    }

    #[test]
    fn lua_answers_are_signed_and_bitmaps_show_the_target_type() {
        use crate::dnssec::DenialMode;
        use crate::server::ServedZone;
        use hickory_proto::dnssec::rdata::DNSSECRData;
        let key = p256_key();
        let e = LuaEngine::new(crate::lua::LuaConfig::default());
        for mode in [DenialMode::Nsec3, DenialMode::Compact] {
            let mut set = ZoneSet::new();
            for z in lua_zones().iter().map(ServedZone::zone) {
                let zone = Zone::new(z.origin().clone(), z.records()).unwrap();
                set.insert(signed(zone, &key, mode));
            }
            let ask = |name: &str, t: RecordType| {
                let req = Request::from_bytes(
                    query_bytes(name, t, Some((1232, 0, true))),
                    "127.0.0.1:5353".parse().unwrap(),
                    Protocol::Udp,
                )
                .unwrap();
                let env = Env {
                    src: "127.0.0.1:5353".parse().unwrap(),
                    lua: Some(&e),
                    ..Env::default()
                };
                plan_with(&req, &set, Protocol::Udp, &env)
            };
            // A synthesized RRset gets an RRSIG like a static one.
            let p = ask("all.lua.test.", RecordType::A);
            let types: Vec<_> = p.answer.answers.iter().map(|r| r.record_type()).collect();
            assert_eq!(
                types,
                vec![RecordType::A, RecordType::A, RecordType::RRSIG],
                "{mode:?}"
            );
            // NODATA for another type: the denial bitmap lists A (not LUA).
            let p = ask("all.lua.test.", RecordType::TXT);
            let bitmap: Vec<RecordType> = p
                .answer
                .authority
                .iter()
                .find_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::NSEC3(n)) => Some(n.type_bit_maps().collect()),
                    RData::DNSSEC(DNSSECRData::NSEC(n)) => Some(n.type_bit_maps().collect()),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{mode:?}: no denial record {:?}", p.answer.authority));
            assert!(bitmap.contains(&RecordType::A), "{mode:?} {bitmap:?}");
            assert!(!bitmap.contains(&crate::zone::LUA), "{mode:?} {bitmap:?}");
            // An empty LUA result is a signed NODATA too, and its denial
            // record does not claim the type (NSEC3: a per-answer copy of the
            // chain record for that name).
            let p = ask("none.lua.test.", RecordType::A);
            assert_eq!(p.metadata.response_code, ResponseCode::NoError);
            assert!(p
                .answer
                .authority
                .iter()
                .any(|r| r.record_type() == RecordType::RRSIG));
            let denial: Vec<Vec<RecordType>> = p
                .answer
                .authority
                .iter()
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::NSEC3(n)) => Some(n.type_bit_maps().collect()),
                    RData::DNSSEC(DNSSECRData::NSEC(n)) => Some(n.type_bit_maps().collect()),
                    _ => None,
                })
                .collect();
            assert_eq!(denial.len(), 1, "{mode:?} {:?}", p.answer.authority);
            assert!(!denial[0].contains(&RecordType::A), "{mode:?} {denial:?}");
        }
    }
}
