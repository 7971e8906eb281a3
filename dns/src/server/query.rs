//! A query read in place: the header, the one question and the OPT record
//! located in the datagram, without building a generic message.
//!
//! This is the front door of the UDP fast path: a packet-cache hit is
//! answered from these borrowed fields alone. Anything unusual (not a plain
//! QUERY, more than one question, a compressed question name, records other
//! than one OPT, EDNS options other than one COOKIE, trailing bytes) is
//! `None` here and takes the general path through hickory's decoder, which
//! stays the judge of what is well formed. So this parser only ever accepts
//! a subset of what hickory accepts, and for that subset it must read the
//! same values: `tests` and the `packet` fuzz target check both.

/// The fixed DNS header length.
const HEADER: usize = 12;
/// RFC 1035 §2.3.4: a name is at most 255 octets on the wire.
const MAX_NAME: usize = 255;
/// EDNS option code of COOKIE (RFC 7873).
const COOKIE: u16 = 10;
/// Query types of zone transfers (RFC 5936, RFC 1995).
const AXFR: u16 = 252;
const IXFR: u16 = 251;

/// A plain query's fields, borrowed from its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    /// Message id.
    pub id: u16,
    /// Recursion desired (copied into the answer).
    pub rd: bool,
    /// Checking disabled (copied into the answer).
    pub cd: bool,
    /// The question section as sent: name (uncompressed, case as spelled),
    /// type and class.
    pub question: &'a [u8],
    /// Query type.
    pub qtype: u16,
    /// The OPT record, when there is one.
    pub edns: Option<Edns<'a>>,
}

/// The OPT record's fields (RFC 6891 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns<'a> {
    /// Requestor's UDP payload size, as sent (not yet clamped).
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK.
    pub dnssec_ok: bool,
    /// The data of its COOKIE option, if it has one.
    pub cookie: Option<&'a [u8]>,
}

impl<'a> Query<'a> {
    /// Whether it asks for a zone transfer (which takes its own path).
    pub fn is_transfer(&self) -> bool {
        matches!(self.qtype, AXFR | IXFR)
    }

    /// Read `datagram` as a plain query, or `None` for anything else.
    pub fn parse(datagram: &'a [u8]) -> Option<Query<'a>> {
        let header = datagram.get(..HEADER)?;
        let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        let (flags0, flags1) = (header[2], header[3]);
        // QR = 0 and opcode QUERY (0).
        if flags0 & 0xf8 != 0 {
            return None;
        }
        let (qd, an, ns, ar) = (word(4), word(6), word(8), word(10));
        if qd != 1 || an != 0 || ns != 0 || ar > 1 {
            return None;
        }
        let name_len = name_len(&datagram[HEADER..])?;
        let question_end = HEADER + name_len + 4;
        let question = datagram.get(HEADER..question_end)?;
        let qtype = u16::from_be_bytes([question[name_len], question[name_len + 1]]);
        let rest = &datagram[question_end..];
        let edns = match ar {
            0 if rest.is_empty() => None,
            1 => Some(opt(rest)?),
            _ => return None,
        };
        Some(Query {
            id: word(0),
            rd: flags0 & 0x01 != 0,
            cd: flags1 & 0x10 != 0,
            question,
            qtype,
            edns,
        })
    }
}

/// The length of the uncompressed name at the start of `bytes`, root label
/// included; `None` for a pointer, a reserved label type, an overlong name
/// or a cut one.
fn name_len(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = usize::from(*bytes.get(pos)?);
        if len & 0xc0 != 0 {
            return None;
        }
        pos += 1 + len;
        if pos > MAX_NAME {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

/// The OPT record that must make up all of `rr`: root owner, type 41, and
/// options that are at most one COOKIE.
fn opt(rr: &[u8]) -> Option<Edns<'_>> {
    let (fixed, rdata) = rr.split_at_checked(11)?;
    let [owner, t0, t1, c0, c1, _ext_rcode, version, flags, _z, l0, l1] = *fixed else {
        return None;
    };
    if owner != 0 || [t0, t1] != [0, 41] || usize::from(u16::from_be_bytes([l0, l1])) != rdata.len()
    {
        return None;
    }
    let mut cookie = None;
    let mut options = rdata;
    while !options.is_empty() {
        let (head, tail) = options.split_at_checked(4)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let (data, tail) = tail.split_at_checked(len)?;
        if code != COOKIE || cookie.is_some() {
            return None;
        }
        cookie = Some(data);
        options = tail;
    }
    Some(Edns {
        payload: u16::from_be_bytes([c0, c1]),
        version,
        dnssec_ok: flags & 0x80 != 0,
        cookie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns as HEdns, Message, MessageType, OpCode, Query as HQuery};
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    use hickory_proto::rr::{Name, RecordType};
    use hickory_server::net::xfer::Protocol;
    use hickory_server::server::Request;
    use proptest::prelude::*;

    /// Id, RD, CD, question bytes, qtype and (payload, version, DO, cookie).
    type View = (
        u16,
        bool,
        bool,
        Vec<u8>,
        u16,
        Option<(u16, u8, bool, Option<Vec<u8>>)>,
    );

    /// What hickory's decoder reads from `raw`, in this module's terms.
    fn hickory_view(raw: &[u8]) -> Option<View> {
        let src = "192.0.2.1:53".parse().ok()?;
        let r = Request::from_bytes(raw.to_vec(), src, Protocol::Udp).ok()?;
        let q = r.queries.queries().first()?;
        let edns = r.edns.as_ref().map(|e| {
            let cookie = match e.options().get(EdnsCode::Cookie) {
                Some(EdnsOption::Unknown(_, d)) => Some(d.clone()),
                _ => None,
            };
            (e.max_payload(), e.version(), e.flags().dnssec_ok, cookie)
        });
        Some((
            r.metadata.id,
            r.metadata.recursion_desired,
            r.metadata.checking_disabled,
            r.queries.as_bytes().to_vec(),
            u16::from(q.query_type()),
            edns,
        ))
    }

    fn query_bytes(name: &str, rtype: RecordType, edns: Option<HEdns>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.metadata.recursion_desired = true;
        m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
        if let Some(e) = edns {
            m.edns = Some(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn reads_a_plain_query_like_hickory() {
        let raw = query_bytes("WwW.Example.com.", RecordType::AAAA, None);
        let q = Query::parse(&raw).expect("plain query");
        assert_eq!(q.id, 0x1234);
        assert!(q.rd && !q.cd);
        assert_eq!(q.qtype, 28);
        assert_eq!(q.edns, None);
        assert_eq!(&q.question[..4], b"\x03WwW");
        let (id, rd, cd, question, qtype, edns) = hickory_view(&raw).unwrap();
        assert_eq!((id, rd, cd, qtype, edns), (q.id, q.rd, q.cd, q.qtype, None));
        assert_eq!(question, q.question);
    }

    #[test]
    fn reads_edns_and_its_cookie() {
        let mut e = HEdns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(true);
        e.options_mut()
            .insert(EdnsOption::Unknown(u16::from(EdnsCode::Cookie), vec![7; 8]));
        let raw = query_bytes("a.example.", RecordType::A, Some(e));
        let q = Query::parse(&raw).expect("plain query");
        let e = q.edns.expect("OPT");
        assert_eq!((e.payload, e.version, e.dnssec_ok), (1232, 0, true));
        assert_eq!(e.cookie, Some(&[7u8; 8][..]));
    }

    #[test]
    fn leaves_the_unusual_to_the_general_path() {
        let plain = query_bytes("a.example.", RecordType::A, None);
        // A response.
        let mut r = plain.clone();
        r[2] |= 0x80;
        assert!(Query::parse(&r).is_none());
        // NOTIFY (opcode 4) and UPDATE (5).
        for op in [OpCode::Notify, OpCode::Update] {
            let mut r = plain.clone();
            r[2] |= u8::from(op) << 3;
            assert!(Query::parse(&r).is_none(), "{op:?}");
        }
        // Trailing bytes.
        let mut r = plain.clone();
        r.push(0);
        assert!(Query::parse(&r).is_none());
        // A compressed question name (pointer to itself: hickory refuses it too).
        let mut r = plain[..12].to_vec();
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(Query::parse(&r).is_none());
        // Two questions.
        let mut r = plain.clone();
        r[5] = 2;
        r.extend_from_slice(&plain[12..]);
        assert!(Query::parse(&r).is_none());
        // An EDNS option other than COOKIE (Client Subnet).
        let mut e = HEdns::new();
        e.options_mut()
            .insert(EdnsOption::Unknown(8, vec![0, 1, 0, 0]));
        assert!(Query::parse(&query_bytes("a.example.", RecordType::A, Some(e))).is_none());
        // Runts.
        for n in 0..plain.len() {
            assert!(Query::parse(&plain[..n]).is_none(), "cut at {n}");
        }
    }

    /// Queries built from arbitrary parts, plus single-byte mutations.
    fn datagram() -> impl Strategy<Value = Vec<u8>> {
        let label = proptest::collection::vec(any::<u8>(), 0..12);
        let parts = (
            any::<[u8; 12]>(),
            proptest::collection::vec(label, 0..4),
            any::<[u8; 4]>(),
            proptest::option::of((
                any::<[u8; 8]>(),
                proptest::collection::vec(any::<u8>(), 0..24),
            )),
        );
        (parts, any::<Option<(usize, u8)>>()).prop_map(|((mut header, labels, tc, opt), flip)| {
            header[2] &= 0x07 | if header[3] & 1 == 0 { 0x80 } else { 0 };
            header[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())]);
            let mut raw = header.to_vec();
            for l in labels.iter().filter(|l| !l.is_empty()) {
                raw.push(l.len() as u8);
                raw.extend_from_slice(l);
            }
            raw.push(0);
            raw.extend_from_slice(&tc);
            if let Some((fixed, options)) = opt {
                raw.extend_from_slice(&[0, 0, 41]);
                raw.extend_from_slice(&fixed[..6]);
                raw.extend_from_slice(&(options.len() as u16).to_be_bytes());
                raw.extend_from_slice(&options);
            }
            if let Some((at, byte)) = flip {
                let at = at % raw.len();
                raw[at] = byte;
            }
            raw
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Whatever the fast parser accepts, hickory decodes as a query
        /// with the same fields.
        #[test]
        fn accepts_only_what_hickory_reads_the_same(raw in datagram()) {
            if let Some(q) = Query::parse(&raw) {
                let (id, rd, cd, question, qtype, edns) = hickory_view(&raw)
                    .expect("hickory decodes what the fast path accepts");
                prop_assert_eq!((id, rd, cd, qtype), (q.id, q.rd, q.cd, q.qtype));
                prop_assert_eq!(&question[..], q.question);
                let ours = q.edns.map(|e| (e.payload.max(512), e.version, e.dnssec_ok, e.cookie.map(<[u8]>::to_vec)));
                prop_assert_eq!(edns, ours);
                let m = Message::from_vec(&raw).expect("decodes");
                prop_assert_eq!(m.metadata.message_type, MessageType::Query);
                prop_assert_eq!(m.metadata.op_code, OpCode::Query);
            }
        }
    }
}
