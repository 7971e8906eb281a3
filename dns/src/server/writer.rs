//! pdm's own message writer: a response's header, its question (copied as
//! the client sent it) and its records, with name compression, written
//! straight into the output buffer. Pure: bytes in, bytes out.
//!
//! hickory's generic encoder was half the instructions of a signed
//! NXDOMAIN answer: a heap copy per compression candidate, a bounds check
//! per byte, an `Edns` clone per message. This writer keeps its candidates
//! on the stack, filters them by length before comparing, and writes the
//! rdata of the types that answers are made of itself. Rarer types go
//! through hickory's encoder, uncompressed, which is what RFC 3597 §4 asks
//! of every type newer than RFC 1035.
//!
//! Compression follows hickory's rules, so messages decode the same: names
//! are compared byte for byte (case included), the owner names of records
//! and the names in NS, CNAME, PTR, MX and SOA rdata are compressed, and
//! the names in SRV, RRSIG and NSEC rdata are written whole. Unlike
//! hickory, the question's name is a target too, which makes answers a
//! little shorter, never longer.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Edns, HeaderCounts, MessageType, Metadata};
use hickory_proto::rr::{Name, RData, Record, RecordData, RecordTypeSet};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::image::WireImage;

/// `records` encoded as they would be in the authority section of an answer
/// from the zone `apex`, as a wire image. `None` when one cannot be encoded
/// or its names point anywhere but at the apex and at each other.
pub fn render_image(apex: &Name, records: &[Record]) -> Option<WireImage> {
    let mut question = Vec::with_capacity(apex.len() + 5);
    for label in apex.iter() {
        question.push(label.len() as u8);
        question.extend_from_slice(label);
    }
    question.push(0);
    let apex_len = question.len();
    question.extend_from_slice(&[0, 6, 0, 1]);
    let count = u16::try_from(records.len()).ok()?;
    let mut out = Vec::with_capacity(1024);
    let mut w = Writer::new(&mut out, usize::from(u16::MAX));
    w.header(
        &Metadata::new(0, MessageType::Response, hickory_proto::op::OpCode::Query),
        &HeaderCounts::default(),
    );
    w.question(&question, 1).ok()?;
    for r in records {
        w.record(r).ok()?;
    }
    WireImage::from_message(&out, apex_len, count)
}

/// Why a record could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// The message would pass its size limit; nothing of the record was kept.
    Full,
    /// The record cannot be encoded at all (a character string over 255
    /// bytes, rdata over 65,535 bytes, or hickory refused it).
    Unencodable,
}

/// Compression targets kept per message (hickory keeps 64 as well).
const MAX_TARGETS: usize = 64;
/// A compression pointer has 14 bits of offset.
const MAX_POINTER: usize = 0x3FFF;
/// DNS header size.
const HEADER_LEN: usize = 12;

/// A name already in the message that later names may point to: where it
/// starts and its length uncompressed (root byte included). Only targets of
/// the same length are compared, so most candidates cost one byte compare.
#[derive(Debug, Clone, Copy, Default)]
struct Target {
    at: u16,
    len: u8,
}

/// Where a message stood before a record, to take the record back.
#[derive(Debug, Clone, Copy)]
struct Mark {
    len: usize,
    targets: usize,
}

/// Writes one message into a caller's buffer.
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
    targets: [Target; MAX_TARGETS],
    n_targets: usize,
}

impl<'a> Writer<'a> {
    /// A writer of a message of at most `limit` bytes into `out` (cleared).
    pub fn new(out: &'a mut Vec<u8>, limit: usize) -> Writer<'a> {
        out.clear();
        Writer {
            out,
            limit,
            targets: [Target::default(); MAX_TARGETS],
            n_targets: 0,
        }
    }

    /// The header: `metadata` with `counts`.
    pub fn header(&mut self, m: &Metadata, counts: &HeaderCounts) {
        self.out.extend_from_slice(&header_bytes(m, counts));
    }

    /// The question section, copied as the client sent it. When it is one
    /// question whose name has no pointer, the name becomes a compression
    /// target, so answers owned by the question name are two-byte pointers.
    /// `Full`, writing nothing, when the section passes the limit (a
    /// request of many questions, echoed in a FORMERR without EDNS).
    pub fn question(&mut self, bytes: &[u8], count: usize) -> Result<(), WriteError> {
        let start = self.out.len();
        if start + bytes.len() > self.limit {
            return Err(WriteError::Full);
        }
        self.out.extend_from_slice(bytes);
        if count != 1 {
            return Ok(());
        }
        // The labels of the name, each a target with what is left of it.
        let Some(name_len) = plain_name_len(bytes) else {
            return Ok(());
        };
        let mut at = 0;
        while let Some(&l) = bytes.get(at).filter(|&&l| l != 0) {
            self.remember(start + at, name_len - at);
            at += 1 + usize::from(l);
        }
        Ok(())
    }

    /// Where the message stands now.
    fn mark(&self) -> Mark {
        Mark {
            len: self.out.len(),
            targets: self.n_targets,
        }
    }

    /// Take back everything written since `mark`.
    fn rollback(&mut self, mark: Mark) {
        self.out.truncate(mark.len);
        self.n_targets = mark.targets;
    }

    /// One resource record; on error nothing of it stays in the message.
    pub fn record(&mut self, r: &Record) -> Result<(), WriteError> {
        let mark = self.mark();
        let written = self.record_unchecked(r);
        match written {
            Ok(()) if self.out.len() <= self.limit => Ok(()),
            Ok(()) => {
                self.rollback(mark);
                Err(WriteError::Full)
            }
            Err(e) => {
                self.rollback(mark);
                Err(e)
            }
        }
    }

    /// Records encoded once (see [`crate::image`]), in a message whose
    /// apex is spelled at `apex_at`. Its names become no targets: nothing
    /// after a denial's authority section is compressed against it.
    pub fn image(&mut self, image: &WireImage, apex_at: usize) -> Result<(), WriteError> {
        if self.out.len() + image.len() > self.limit || !image.append_to(self.out, apex_at) {
            return Err(WriteError::Full);
        }
        Ok(())
    }

    /// The OPT record of `edns`, carrying the high bits of the rcode.
    pub fn opt(&mut self, edns: &Edns, rcode_high: u8) -> Result<(), WriteError> {
        let mark = self.mark();
        self.out.push(0); // root owner
        self.u16(41);
        self.u16(edns.max_payload().max(512));
        self.out.push(rcode_high);
        self.out.push(edns.version());
        self.u16(u16::from(*edns.flags()));
        let options = edns.options();
        if options.as_ref().is_empty() {
            self.u16(0);
        } else {
            let mut rdata = Vec::new();
            if options.emit(&mut BinEncoder::new(&mut rdata)).is_err() {
                self.rollback(mark);
                return Err(WriteError::Unencodable);
            }
            let Ok(len) = u16::try_from(rdata.len()) else {
                self.rollback(mark);
                return Err(WriteError::Unencodable);
            };
            self.u16(len);
            self.out.extend_from_slice(&rdata);
        }
        if self.out.len() > self.limit {
            self.rollback(mark);
            return Err(WriteError::Full);
        }
        Ok(())
    }

    fn record_unchecked(&mut self, r: &Record) -> Result<(), WriteError> {
        self.name(&r.name, true);
        self.u16(u16::from(r.record_type()));
        self.u16(u16::from(r.dns_class));
        self.u32(r.ttl);
        let rdlen_at = self.out.len();
        self.u16(0);
        if !r.data.is_update() {
            self.rdata(&r.data)?;
        }
        let len =
            u16::try_from(self.out.len() - rdlen_at - 2).map_err(|_| WriteError::Unencodable)?;
        self.out[rdlen_at..rdlen_at + 2].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    fn rdata(&mut self, data: &RData) -> Result<(), WriteError> {
        match data {
            RData::A(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::AAAA(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::NS(n) => self.name(&n.0, true),
            RData::CNAME(n) => self.name(&n.0, true),
            RData::PTR(n) => self.name(&n.0, true),
            RData::MX(mx) => {
                self.u16(mx.preference);
                self.name(&mx.exchange, true);
            }
            RData::SOA(soa) => {
                self.name(&soa.mname, true);
                self.name(&soa.rname, true);
                self.u32(soa.serial);
                for v in [soa.refresh, soa.retry, soa.expire] {
                    self.out.extend_from_slice(&v.to_be_bytes());
                }
                self.u32(soa.minimum);
            }
            RData::TXT(txt) => {
                for s in txt.txt_data.iter() {
                    let len = u8::try_from(s.len()).map_err(|_| WriteError::Unencodable)?;
                    self.out.push(len);
                    self.out.extend_from_slice(s);
                }
            }
            RData::SRV(srv) => {
                self.u16(srv.priority);
                self.u16(srv.weight);
                self.u16(srv.port);
                self.name(&srv.target, false);
            }
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
                let input = sig.input();
                self.u16(u16::from(input.type_covered));
                self.out.push(u8::from(input.algorithm));
                self.out.push(input.num_labels);
                self.u32(input.original_ttl);
                self.u32(input.sig_expiration.get());
                self.u32(input.sig_inception.get());
                self.u16(input.key_tag);
                self.name(&input.signer_name, false);
                self.out.extend_from_slice(sig.sig());
            }
            RData::DNSSEC(DNSSECRData::NSEC3(n)) => {
                self.out.push(u8::from(n.hash_algorithm()));
                self.out.push(n.flags());
                self.u16(n.iterations());
                let salt = n.salt();
                let hash = n.next_hashed_owner_name();
                for field in [salt, hash] {
                    let len = u8::try_from(field.len()).map_err(|_| WriteError::Unencodable)?;
                    self.out.push(len);
                    self.out.extend_from_slice(field);
                }
                self.type_bitmap(n.type_set());
            }
            RData::DNSSEC(DNSSECRData::NSEC(n)) => {
                self.name(n.next_domain_name(), false);
                self.type_bitmap(n.type_set());
            }
            other => {
                // Rare types: hickory's own encoding, names uncompressed.
                let mut rdata = Vec::new();
                let mut enc = BinEncoder::new(&mut rdata);
                enc.set_name_encoding(NameEncoding::Uncompressed);
                other.emit(&mut enc).map_err(|_| WriteError::Unencodable)?;
                self.out.extend_from_slice(&rdata);
            }
        }
        Ok(())
    }

    /// An NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2): per window in use, its
    /// number, its length and the bits up to the last type in it.
    fn type_bitmap(&mut self, types: &RecordTypeSet) {
        let mut window: Option<(u8, usize)> = None; // (window, where its length byte is)
        for t in types.iter() {
            let code = u16::from(t);
            let [hi, lo] = code.to_be_bytes();
            let len_at = match window {
                Some((w, at)) if w == hi => at,
                _ => {
                    self.out.push(hi);
                    self.out.push(0);
                    let at = self.out.len() - 1;
                    window = Some((hi, at));
                    at
                }
            };
            let index = usize::from(lo / 8);
            let have = usize::from(self.out[len_at]);
            if have < index + 1 {
                self.out.resize(len_at + 1 + index + 1, 0);
                self.out[len_at] = (index + 1) as u8;
            }
            self.out[len_at + 1 + index] |= 0x80 >> (lo % 8);
        }
    }

    /// A name, compressed against earlier names when `compress`. It is
    /// written out whole first, and each of its suffixes, longest first,
    /// then looked for among the targets: the first found replaces the rest
    /// of the name with a pointer. Every label left written out becomes a
    /// target either way (as in hickory).
    fn name(&mut self, name: &Name, compress: bool) {
        let start = self.out.len();
        for label in name.iter() {
            // A `Name` holds labels of at most 63 bytes.
            self.out.push(label.len() as u8);
            self.out.extend_from_slice(label);
        }
        self.out.push(0);
        let end = self.out.len();
        let mut at = start;
        while let Some(&l) = self.out.get(at).filter(|&&l| l != 0) {
            if compress {
                if let Some(to) = self.find(at, end - at) {
                    self.out.truncate(at);
                    self.u16(0xC000 | to);
                    return;
                }
            }
            self.remember(at, end - at);
            at += 1 + usize::from(l);
        }
    }

    /// A target spelling the `len` bytes of name written out at `at`.
    fn find(&self, at: usize, len: usize) -> Option<u16> {
        self.targets[..self.n_targets]
            .iter()
            .find(|t| usize::from(t.len) == len && self.spells(usize::from(t.at), at))
            .map(|t| t.at)
    }

    /// Whether the name at `target` in the message (pointers followed) is,
    /// byte for byte through to the root, the name written out at `at`.
    /// Checked in full, so a stale target can cost a comparison but never
    /// a wrong pointer.
    fn spells(&self, mut target: usize, mut at: usize) -> bool {
        let msg = &self.out[..];
        loop {
            // Follow pointers; each must go strictly backwards, so this ends.
            while let (Some(&hi), Some(&lo)) = (msg.get(target), msg.get(target + 1)) {
                if hi & 0xC0 != 0xC0 {
                    break;
                }
                let to = usize::from(hi & 0x3F) << 8 | usize::from(lo);
                if to >= target {
                    return false;
                }
                target = to;
            }
            let Some(&l) = msg.get(at) else {
                return false;
            };
            let n = 1 + usize::from(l);
            if msg.get(target..target + n) != msg.get(at..at + n) {
                return false;
            }
            if l == 0 {
                return true;
            }
            target += n;
            at += n;
        }
    }

    fn remember(&mut self, at: usize, len: usize) {
        if at <= MAX_POINTER && self.n_targets < MAX_TARGETS {
            if let (Ok(at), Ok(len)) = (u16::try_from(at), u8::try_from(len)) {
                self.targets[self.n_targets] = Target { at, len };
                self.n_targets += 1;
            }
        }
    }

    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
}

/// The twelve header bytes of `m` with `counts`.
pub(super) fn header_bytes(m: &Metadata, counts: &HeaderCounts) -> [u8; HEADER_LEN] {
    let [id_hi, id_lo] = m.id.to_be_bytes();
    let flags = u8::from(m.message_type == MessageType::Response) << 7
        | (u8::from(m.op_code) & 0x0f) << 3
        | u8::from(m.authoritative) << 2
        | u8::from(m.truncation) << 1
        | u8::from(m.recursion_desired);
    let flags2 = u8::from(m.recursion_available) << 7
        | u8::from(m.authentic_data) << 5
        | u8::from(m.checking_disabled) << 4
        | m.response_code.low();
    let [q1, q2] = counts.queries.to_be_bytes();
    let [a1, a2] = counts.answers.to_be_bytes();
    let [n1, n2] = counts.authorities.to_be_bytes();
    let [d1, d2] = counts.additionals.to_be_bytes();
    [id_hi, id_lo, flags, flags2, q1, q2, a1, a2, n1, n2, d1, d2]
}

/// The wire length of the name at the start of `bytes` when it is spelled
/// out in labels (no pointer), root byte included.
fn plain_name_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let l = *bytes.get(at)?;
        match l {
            0 => return (at < 255).then_some(at + 1),
            l if l & 0xC0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::rdata::{sig::SigInput, NSEC, NSEC3, RRSIG};
    use hickory_proto::dnssec::{Algorithm, Nsec3HashAlgorithm};
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{CAA, CNAME, MX, NS, SOA, SRV, TXT};
    use hickory_proto::rr::RecordType;
    use proptest::prelude::*;

    /// Names from few labels, so suffixes repeat and compression is tried
    /// at every depth; mixed case, so byte-for-byte matching matters.
    fn name() -> impl Strategy<Value = Name> {
        let label = prop::sample::select(vec!["a", "mail", "Mail", "x-1", "EXAMPLE", "example"]);
        prop::collection::vec(label, 0..5).prop_map(|labels| {
            let mut n = Name::from_labels(labels).expect("labels are valid");
            n.set_fqdn(true);
            n
        })
    }

    fn rdata() -> impl Strategy<Value = RData> {
        let types = vec![
            RecordType::A,
            RecordType::NS,
            RecordType::SOA,
            RecordType::MX,
            RecordType::AAAA,
            RecordType::RRSIG,
        ];
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| RData::A(std::net::Ipv4Addr::from(b).into())),
            any::<[u8; 16]>().prop_map(|b| RData::AAAA(std::net::Ipv6Addr::from(b).into())),
            name().prop_map(|n| RData::NS(NS(n))),
            name().prop_map(|n| RData::CNAME(CNAME(n))),
            (any::<u16>(), name()).prop_map(|(p, n)| RData::MX(MX::new(p, n))),
            (name(), name(), any::<u32>())
                .prop_map(|(m, r, s)| { RData::SOA(SOA::new(m, r, s, 3600, 600, 86400, 60)) }),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..4)
                .prop_map(|t| RData::TXT(TXT::from_bytes(t.iter().map(Vec::as_slice).collect()))),
            (any::<u16>(), any::<u16>(), any::<u16>(), name())
                .prop_map(|(p, w, port, n)| RData::SRV(SRV::new(p, w, port, n))),
            (name(), any::<u16>(), prop::collection::vec(any::<u8>(), 64)).prop_map(
                |(signer, tag, sig)| {
                    let input = SigInput {
                        type_covered: RecordType::A,
                        algorithm: Algorithm::ECDSAP256SHA256,
                        num_labels: 2,
                        original_ttl: 300,
                        sig_expiration: 1_800_000_000.into(),
                        sig_inception: 1_700_000_000.into(),
                        key_tag: tag,
                        signer_name: signer,
                    };
                    RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig)))
                }
            ),
            (prop::sample::subsequence(types.clone(), 0..6), any::<u8>()).prop_map(|(t, f)| {
                let mut t = t;
                t.push(RecordType::Unknown(1234));
                RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
                    Nsec3HashAlgorithm::SHA1,
                    f & 1 == 1,
                    0,
                    vec![0xab; usize::from(f % 3)],
                    vec![0x5a; 20],
                    t,
                )))
            }),
            (name(), prop::sample::subsequence(types, 1..6))
                .prop_map(|(n, t)| RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(n, t)))),
            (any::<bool>(), name()).prop_map(|(critical, n)| {
                RData::CAA(CAA::new_issue(critical, Some(n), vec![]))
            }),
        ]
    }

    fn record() -> impl Strategy<Value = Record> {
        (name(), any::<u32>(), rdata()).prop_map(|(n, ttl, d)| Record::from_rdata(n, ttl, d))
    }

    /// Encode a response of `records` (all in the answer section) to a
    /// query for `qname`, within `limit`; a record that does not fit is
    /// skipped and the next one tried. The records kept.
    fn write(qname: &Name, records: &[Record], limit: usize) -> (Vec<u8>, Vec<Record>) {
        let mut question = Vec::new();
        let mut enc = BinEncoder::new(&mut question);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        qname.emit(&mut enc).unwrap();
        question.extend_from_slice(&[0, 1, 0, 1]);
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, limit);
        let m = Metadata::new(7, MessageType::Response, hickory_proto::op::OpCode::Query);
        w.header(&m, &HeaderCounts::default());
        w.question(&question, 1)
            .expect("a question fits 1500 bytes");
        let mut kept = Vec::new();
        for r in records {
            match w.record(r) {
                Ok(()) => kept.push(r.clone()),
                Err(WriteError::Full) => continue,
                Err(e) => panic!("{e:?} for {r}"),
            }
        }
        let counts = HeaderCounts {
            queries: 1,
            answers: kept.len() as u16,
            ..HeaderCounts::default()
        };
        out[..HEADER_LEN].copy_from_slice(&header_bytes(&m, &counts));
        (out, kept)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// What the writer writes, hickory reads back as the same records,
        /// every name spelled as given; a record that does not fit is taken
        /// back whole, and the records after it still point only at what
        /// stayed.
        #[test]
        fn hickory_reads_back_what_was_written(
            qname in name(),
            records in prop::collection::vec(record(), 0..12),
            limit in 300usize..1500,
        ) {
            let (bytes, kept) = write(&qname, &records, limit);
            prop_assert!(bytes.len() <= limit);
            let m = Message::from_vec(&bytes).expect("decodes");
            prop_assert_eq!(m.queries[0].name().to_string(), qname.to_string());
            prop_assert_eq!(&m.answers[..], &kept[..]);
            for (got, want) in m.answers.iter().zip(&kept) {
                prop_assert_eq!(got.name.to_string(), want.name.to_string());
                prop_assert_eq!(got.data.to_string(), want.data.to_string());
            }
        }
    }
}
