//! The wire edge of the data plane: a planned response to bytes, and the
//! bare replies for requests that cannot be planned at all. Both the UDP
//! fast path and the TCP connections encode through here, so the
//! two transports cannot drift apart.

use super::respond::{Images, Plan};
use super::writer::{header_bytes, WriteError, Writer};
use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::ResponseInfo;
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

/// Encode `plan`, the response to a request whose question section is
/// `queries`, into `out` (cleared first). The encoder limit is the one
/// hickory applies (the response EDNS payload, or 512 without EDNS, over
/// UDP); the planner already fitted the sections under it, so hitting it
/// means a planner bug and gets a bare SERVFAIL rather than a cut message.
pub fn encode(
    plan: &Plan,
    queries: &Queries,
    protocol: Protocol,
    out: &mut Vec<u8>,
) -> ResponseInfo {
    encode_question(
        plan,
        queries.as_bytes(),
        queries.queries().len(),
        protocol,
        out,
    )
}

/// [`encode`] for a request whose question section is `question` (as
/// sent), holding `questions` questions.
pub fn encode_question(
    plan: &Plan,
    question: &[u8],
    questions: usize,
    protocol: Protocol,
    out: &mut Vec<u8>,
) -> ResponseInfo {
    out.clear();
    if !echo_decodes(question) {
        return header_only(&plan.metadata, ResponseCode::FormErr, out);
    }
    let (answers, authority, additional) = plan.sections();
    let count = |n: usize| u16::try_from(n).ok();
    let imaged = plan.images.as_ref().map_or(0, Images::records);
    let (Some(queries_n), Some(answers_n), Some(authority_n), Some(additional_n)) = (
        count(questions),
        count(answers.len()),
        count(authority.len() + imaged),
        count(additional.len() + usize::from(plan.edns.is_some())),
    ) else {
        return header_only(&plan.metadata, ResponseCode::ServFail, out);
    };
    let header = Header {
        metadata: plan.metadata,
        counts: HeaderCounts {
            queries: queries_n,
            answers: answers_n,
            authorities: authority_n,
            additionals: additional_n,
        },
    };
    let mut w = Writer::new(out, usize::from(max_size(plan, protocol)));
    w.header(&header.metadata, &header.counts);
    if w.question(question, questions).is_err() {
        // Only a request of many questions echoes more than fits (its plan
        // is a bare FORMERR): the header alone says the same.
        return header_only(&plan.metadata, plan.metadata.response_code, out);
    }
    let mut written = answers
        .iter()
        .chain(authority)
        .try_for_each(|r| w.record(r));
    if let (Ok(()), Some(images)) = (written, &plan.images) {
        written = images
            .denial
            .sets()
            .try_for_each(|set| match set.made_image() {
                Some(image) => w.image(image, images.apex_at),
                None => Err(WriteError::Unencodable),
            });
    }
    if written.is_ok() {
        written = additional.iter().try_for_each(|r| w.record(r));
    }
    if let (Ok(()), Some(edns)) = (written, &plan.edns) {
        written = w.opt(edns, plan.metadata.response_code.high());
    }
    match written {
        Ok(()) => ResponseInfo::from(header),
        Err(error) => {
            tracing::error!(?error, "encoding a planned response failed");
            header_only(&plan.metadata, ResponseCode::ServFail, out)
        }
    }
}

/// Whether the question section, copied verbatim behind a new header, still
/// decodes: every byte a name reads, through every compression pointer of
/// its chain, must be an earlier byte of the section itself. A pointer into
/// the request's header (or past the section) would read different bytes in
/// the reply; such a request gets a bare FORMERR instead (found by the
/// `packet` fuzz target, first for a pointer into the header, then for a
/// chain whose second pointer went there).
fn echo_decodes(question: &[u8]) -> bool {
    let mut pos = 0;
    while pos < question.len() {
        let Some(end) = name_end(question, pos) else {
            return false;
        };
        pos = end + 4; // type and class
    }
    pos == question.len()
}

/// Where the name at `start` of `question` ends in place, when it reads
/// only bytes of `question` (see [`echo_decodes`]): each pointer goes
/// strictly back, and the name stays within 255 octets, which also ends a
/// chain that loops through labels.
fn name_end(question: &[u8], start: usize) -> Option<usize> {
    const HEADER: usize = 12;
    const MAX_NAME: usize = 255;
    let (mut pos, mut end, mut octets) = (start, None, 0usize);
    loop {
        let len = *question.get(pos)?;
        match len & 0xc0 {
            0x00 => {
                octets += 1 + usize::from(len);
                if octets > MAX_NAME {
                    return None;
                }
                if len == 0 {
                    return Some(end.unwrap_or(pos + 1));
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *question.get(pos + 1)?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                let target = target.checked_sub(HEADER).filter(|&t| t < pos)?;
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return None,
        }
    }
}

/// The encoder limit hickory applies: the response's EDNS payload (or 512
/// without EDNS) over UDP.
fn max_size(plan: &Plan, protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Udp => plan.edns.as_ref().map_or(512, |e| e.max_payload()),
        _ => u16::MAX,
    }
}

/// The records of `plan` as hickory's response type (what a hickory response
/// handle sends).
pub fn response<'a>(
    plan: &'a Plan,
    queries: &'a Queries,
) -> MessageResponse<'a, 'a, Records<'a>, Records<'a>, std::iter::Empty<&'a Record>, Records<'a>> {
    let (answers, authority, additional) = plan.sections();
    let mut builder = MessageResponseBuilder::new(queries, None);
    if let Some(edns) = plan.edns.as_ref() {
        builder.edns(edns);
    }
    builder.build(
        plan.metadata,
        answers.iter(),
        authority.iter(),
        std::iter::empty(),
        additional.iter(),
    )
}

/// One section of a planned response.
type Records<'a> = std::slice::Iter<'a, Record>;

/// Encode a header-only response to a request with `request` metadata.
pub fn header_only(request: &Metadata, rcode: ResponseCode, out: &mut Vec<u8>) -> ResponseInfo {
    out.clear();
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = rcode;
    metadata.recursion_available = false;
    metadata.authoritative = false;
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    out.extend_from_slice(&header_bytes(&header.metadata, &header.counts));
    ResponseInfo::from(header)
}

/// The reply to a datagram hickory could not decode as a request: FORMERR
/// with the sender's id when at least the header is readable and it is a
/// query; `None` (send nothing) for fragments shorter than a header and for
/// responses, which must never be answered (reflection loops).
pub fn undecodable(raw: &[u8], out: &mut Vec<u8>) -> Option<ResponseInfo> {
    let header = Header::read(&mut BinDecoder::new(raw)).ok()?;
    if header.metadata.message_type != MessageType::Query {
        return None;
    }
    Some(header_only(&header.metadata, ResponseCode::FormErr, out))
}

/// Append an EDNS option (`code`, `data`) to the OPT record of an encoded
/// message, which must be its last record (so it is for everything the
/// planner emits: TSIG, which would follow it, never takes this path).
/// Patches the OPT's RDLENGTH. `false`, leaving `out` untouched, when the
/// message has no OPT at its end or the option would not fit.
pub fn append_edns_option(out: &mut Vec<u8>, code: u16, data: &[u8]) -> bool {
    let Some(opt) = last_record(out) else {
        return false;
    };
    // OPT: root owner (one zero byte), then TYPE 41.
    if out.get(opt) != Some(&0) || out.get(opt + 1..opt + 3) != Some(&[0, 41][..]) {
        return false;
    }
    let rdlen_at = opt + 9;
    let Some(&[hi, lo]) = out.get(rdlen_at..rdlen_at + 2) else {
        return false;
    };
    let (Ok(len), Some(rdlen)) = (
        u16::try_from(data.len()),
        u16::from_be_bytes([hi, lo]).checked_add(4 + data.len() as u16),
    ) else {
        return false;
    };
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    true
}

/// The offset of the last resource record of an encoded message, when it
/// ends exactly where the message does (a walk over the sections: names
/// are skipped label by label or by their compression pointer).
fn last_record(msg: &[u8]) -> Option<usize> {
    let count = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *msg.get(at)?,
            *msg.get(at + 1)?,
        ])))
    };
    let questions = count(4)?;
    let records = count(6)? + count(8)? + count(10)?;
    let mut i = 12;
    for _ in 0..questions {
        i = skip_name(msg, i)? + 4;
    }
    let mut last = None;
    for _ in 0..records {
        last = Some(i);
        i = skip_name(msg, i)? + 8;
        i += count(i)? + 2;
    }
    (i == msg.len()).then_some(last).flatten()
}

/// The offset just past the (possibly compressed) name at `i`.
fn skip_name(msg: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *msg.get(i)?;
        match len {
            0 => return Some(i + 1),
            l if l & 0xC0 == 0xC0 => return Some(i + 2),
            l if l & 0xC0 == 0 => i += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// The reply to a rate-limited query that slips: header and question
/// only, TC=1, so a real client retries over TCP (RFC 7766), which a
/// spoofed source cannot.
pub fn truncated(request: &Metadata, queries: &Queries, out: &mut Vec<u8>) {
    out.clear();
    let mut metadata = Metadata::response_from_request(request);
    metadata.recursion_available = false;
    metadata.truncation = true;
    let header = Header {
        metadata,
        counts: HeaderCounts {
            queries: u16::try_from(queries.queries().len()).unwrap_or(0),
            ..HeaderCounts::default()
        },
    };
    out.extend_from_slice(&header_bytes(&header.metadata, &header.counts));
    out.extend_from_slice(queries.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::serialize::binary::BinEncoder;

    /// A question echoes only when every name reads bytes of the section
    /// itself, through its whole pointer chain: the reply's header is not
    /// the request's.
    #[test]
    fn an_echo_follows_the_whole_pointer_chain() {
        const TC: [u8; 4] = [0, 1, 0, 1];
        let q = |names: &[&[u8]]| -> Vec<u8> {
            names
                .iter()
                .flat_map(|n| n.iter().chain(&TC).copied())
                .collect()
        };
        // "b" then a pointer back to the first name ("a", at offset 12).
        assert!(echo_decodes(&q(&[b"\x01a\x00", b"\x01b\xc0\x0c"])));
        // Straight into the header.
        assert!(!echo_decodes(&q(&[b"\x01a\xc0\x02"])));
        // Into the section (offset 13), where the bytes are a pointer into
        // the header (the fuzz target's finding).
        assert!(!echo_decodes(&q(&[b"\x02\xc0\x02\x00", b"\xc0\x0d"])));
        // Forward, and a chain looping through a label.
        assert!(!echo_decodes(&q(&[b"\xc0\x20", b"\x00"])));
        assert!(!echo_decodes(&q(&[b"\x01a\xc0\x0c"])));
        // Truncated.
        assert!(!echo_decodes(b"\x01a\x00\x00\x01"));
    }

    /// hickory's generic encoding of `plan` (the reference).
    fn hickory_bytes(plan: &Plan, queries: &Queries, protocol: Protocol) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = BinEncoder::new(&mut out);
        enc.set_max_size(max_size(plan, protocol));
        response(plan, queries).destructive_emit(&mut enc).unwrap();
        out
    }

    /// Same header, sections and EDNS, owner names spelled the same (case
    /// included; `Name`'s equality ignores case).
    fn assert_same_message(got: &[u8], want: &[u8], case: &str) {
        let (g, w) = (
            Message::from_vec(got).unwrap(),
            Message::from_vec(want).unwrap(),
        );
        assert_eq!(g, w, "{case}");
        let spelled =
            |m: &Message| -> Vec<String> { m.answers.iter().map(|r| r.name.to_string()).collect() };
        assert_eq!(spelled(&g), spelled(&w), "{case}");
        assert_eq!(
            g.queries[0].name().to_string(),
            w.queries[0].name().to_string(),
            "{case}"
        );
    }

    #[test]
    fn answers_encode_as_hickory_decodes_them() {
        use crate::server::ZoneSet;
        use crate::zone::file::parse_master;
        use crate::zone::Zone;
        use hickory_proto::op::{Edns, Query};
        use hickory_proto::rr::{Name, RecordType};
        use hickory_server::server::Request;
        let (origin, records) = parse_master(
            "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hm 7 3600 600 86400 60\n@ IN NS ns1\n\
             ns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\nwww IN A 192.0.2.3\nwww IN AAAA 2001:db8::1\n\
             www IN TXT \"t\"\n*.w IN A 192.0.2.9\n",
            None,
        )
        .unwrap();
        let mut zones = ZoneSet::new();
        zones.insert(std::sync::Arc::new(Zone::new(origin, records).unwrap()).into());
        for name in [
            "www.example.com.",
            "WwW.ExAmPlE.cOm.",
            "x.w.example.com.",
            "ns1.example.com.",
        ] {
            for t in [
                RecordType::A,
                RecordType::AAAA,
                RecordType::TXT,
                RecordType::MX,
            ] {
                for edns in [
                    None,
                    Some((1232, false)),
                    Some((4096, true)),
                    Some((512, false)),
                ] {
                    for (rd, cd) in [(false, false), (true, true)] {
                        let mut m = Message::query();
                        m.metadata.id = 0xbeef;
                        m.metadata.recursion_desired = rd;
                        m.metadata.checking_disabled = cd;
                        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
                        if let Some((size, dnssec_ok)) = edns {
                            let mut e = Edns::new();
                            e.set_max_payload(size);
                            e.set_dnssec_ok(dnssec_ok);
                            m.set_edns(e);
                        }
                        let raw = m.to_vec().unwrap();
                        let req = Request::from_bytes(
                            raw,
                            "127.0.0.1:53000".parse().unwrap(),
                            Protocol::Udp,
                        )
                        .unwrap();
                        let plan = super::super::respond::plan(&req, &zones, Protocol::Udp);
                        let want = hickory_bytes(&plan, &req.queries, Protocol::Udp);
                        let mut got = Vec::new();
                        encode(&plan, &req.queries, Protocol::Udp, &mut got);
                        let case = format!("{name} {t} {edns:?} rd={rd} cd={cd}");
                        assert_same_message(&got, &want, &case);
                        // The question is a compression target: never longer.
                        assert!(got.len() <= want.len(), "{case}");
                    }
                }
            }
        }
    }

    /// Found by the `packet` fuzz target: fourteen long questions without
    /// EDNS are a FORMERR whose question echo would pass 512 bytes; the
    /// reply is the header alone.
    #[test]
    fn an_echo_over_the_limit_is_a_bare_header() {
        let mut raw = vec![0xab, 0xcd, 0x01, 0x00, 0, 14, 0, 0, 0, 0, 0, 0];
        for i in 0..14u8 {
            raw.extend_from_slice(&[40]);
            raw.extend(std::iter::repeat_n(b'a' + i, 40));
            raw.extend_from_slice(&[0, 0, 1, 0, 1]);
        }
        let req = hickory_server::server::Request::from_bytes(
            raw,
            "127.0.0.1:53000".parse().unwrap(),
            Protocol::Udp,
        )
        .unwrap();
        let plan = super::super::respond::plan(&req, &crate::server::ZoneSet::new(), Protocol::Udp);
        assert_eq!(plan.metadata.response_code, ResponseCode::FormErr);
        let mut out = Vec::new();
        encode(&plan, &req.queries, Protocol::Udp, &mut out);
        assert!(out.len() <= 512, "{} bytes", out.len());
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.id, 0xabcd);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert!(m.queries.is_empty());
    }

    #[test]
    fn garbage_shorter_than_a_header_gets_nothing() {
        let mut out = Vec::new();
        assert!(undecodable(&[0x12, 0x34, 0x01], &mut out).is_none());
    }

    #[test]
    fn undecodable_query_gets_formerr_with_its_id() {
        // A header announcing one question, then nothing.
        let raw = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        let mut out = Vec::new();
        let info = undecodable(&raw, &mut out).expect("a reply");
        assert_eq!(info.response_code, ResponseCode::FormErr);
        let m = Message::from_vec(&out).expect("decodes");
        assert_eq!(m.metadata.id, 0xabcd);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn responses_are_never_answered() {
        let raw = [0xab, 0xcd, 0x81, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        assert!(undecodable(&raw, &mut Vec::new()).is_none());
    }
}
