//! The wire edge of the data plane: a planned response to bytes, and the
//! bare replies for requests that cannot be planned at all. Both the UDP
//! fast path and the hickory-driven TCP path encode through here, so the
//! two transports cannot drift apart.

use super::respond::Plan;
use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
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
    out.clear();
    let response = response(plan, queries);
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(match protocol {
        Protocol::Udp => plan.edns.as_ref().map_or(512, |e| e.max_payload()),
        _ => u16::MAX,
    });
    match response.destructive_emit(&mut encoder) {
        Ok(info) => info,
        Err(error) => {
            tracing::error!(%error, "encoding a planned response failed");
            header_only(&plan.metadata, ResponseCode::ServFail, out)
        }
    }
}

/// The records of `plan` as hickory's response type (what its TCP response
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
    // Twelve bytes into a growable buffer: emitting cannot fail.
    let _ = header.emit(&mut BinEncoder::new(out));
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

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;

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
