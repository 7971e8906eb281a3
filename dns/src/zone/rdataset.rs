//! The record data of one RRset, decoded or as wire bytes.
//!
//! hickory's `RData` is 184 bytes whatever it holds (its SOA variant holds
//! two names inline), plus the heap for keys and digests. The data a zone
//! holds alone (its SOA, its keys, the DS of a delegation) is most of what
//! a child zone of a pool costs, and is answered far less often than
//! addresses: it is kept in wire form (uncompressed names, case kept), at a
//! third of the size, and decoded when asked for. Everything else stays
//! decoded, as answers use it.

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{
    BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};
use std::borrow::Cow;
use std::hash::{Hash, Hasher};

/// The record data of an RRset, in canonical order.
#[derive(Debug, Clone)]
pub enum RDataSet {
    /// Decoded, as answers use it.
    Decoded(Vec<RData>),
    /// Each record as a big-endian `u16` length and its wire bytes.
    Wire {
        /// The records' type (wire data does not say).
        rtype: RecordType,
        /// How many records.
        count: u32,
        /// The records.
        bytes: Box<[u8]>,
    },
}

impl Default for RDataSet {
    fn default() -> Self {
        RDataSet::Decoded(Vec::new())
    }
}

/// Whether data of `rtype` is one zone's own (serials, keys, digests) and
/// so kept in wire form: never equal elsewhere, answered seldom enough that
/// decoding it per answer is cheap. (`intern` does not share it either.)
pub(super) fn zone_own(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::SOA
            | RecordType::DNSKEY
            | RecordType::CDNSKEY
            | RecordType::CDS
            | RecordType::DS
    )
}

impl RDataSet {
    /// How many records.
    pub fn len(&self) -> usize {
        match self {
            RDataSet::Decoded(v) => v.len(),
            RDataSet::Wire { count, .. } => *count as usize,
        }
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records, borrowed when decoded, decoded when in wire form.
    pub fn get(&self) -> Cow<'_, [RData]> {
        match self {
            RDataSet::Decoded(v) => Cow::Borrowed(v),
            RDataSet::Wire { .. } => Cow::Owned(self.decode()),
        }
    }

    /// The records to change: wire form is decoded first (and compacted
    /// again by [`RDataSet::compact`] once the change is made).
    pub fn make_decoded(&mut self) -> &mut Vec<RData> {
        if let RDataSet::Wire { .. } = self {
            *self = RDataSet::Decoded(self.decode());
        }
        match self {
            RDataSet::Decoded(v) => v,
            // Made decoded just above.
            RDataSet::Wire { .. } => unreachable!("decoded above"),
        }
    }

    /// The records without `data`, and where it was; `None` when it is not
    /// among them. A wire set (the SOA of every write) is decoded once
    /// here, where finding the record through [`RDataSet::get`] and
    /// removing it through [`RDataSet::make_decoded`] decoded it twice.
    pub fn without(&self, data: &RData) -> Option<(usize, Vec<RData>)> {
        let all = self.get();
        let i = all.iter().position(|d| d == data)?;
        let mut rest = all.into_owned();
        rest.remove(i);
        Some((i, rest))
    }

    /// Whether `data` is among the records.
    pub fn contains(&self, data: &RData) -> bool {
        self.get().contains(data)
    }

    /// Whether [`RDataSet::compact`] would change this set (so a shared
    /// copy is only made when it will).
    pub fn compacts(&self, rtype: RecordType) -> bool {
        matches!(self, RDataSet::Decoded(v) if !v.is_empty()) && zone_own(rtype)
    }

    /// Keep the data of `rtype` in wire form when that is how it is kept
    /// and every record reads back equal (else it stays decoded).
    pub fn compact(&mut self, rtype: RecordType) {
        let RDataSet::Decoded(records) = self else {
            return;
        };
        if !zone_own(rtype) || records.is_empty() {
            return;
        }
        let Some(bytes) = encode(records) else {
            return;
        };
        let Ok(count) = u32::try_from(records.len()) else {
            return;
        };
        let wire = RDataSet::Wire {
            rtype,
            count,
            bytes: bytes.into_boxed_slice(),
        };
        if wire.decode_checked().as_deref() == Some(records.as_slice()) {
            *self = wire;
        }
    }

    /// The records of a wire set (none for a decoded one).
    fn decode(&self) -> Vec<RData> {
        self.decode_checked().unwrap_or_default()
    }

    /// The records of a wire set; `None` when the bytes do not read back
    /// (never for bytes [`RDataSet::compact`] kept: it checks).
    fn decode_checked(&self) -> Option<Vec<RData>> {
        let RDataSet::Wire {
            rtype,
            count,
            bytes,
        } = self
        else {
            return None;
        };
        let mut out = Vec::with_capacity(*count as usize);
        let mut rest: &[u8] = bytes;
        while let [hi, lo, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            let one = tail.get(..len)?;
            rest = tail.get(len..)?;
            out.push(decode_one(*rtype, one)?);
        }
        Some(out)
    }
}

/// Records in wire form, each behind its length; `None` when one cannot
/// be encoded.
fn encode(records: &[RData]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for data in records {
        let mut one = Vec::new();
        {
            let mut encoder = BinEncoder::new(&mut one);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            data.emit(&mut encoder).ok()?;
        }
        let len = u16::try_from(one.len()).ok()?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&one);
    }
    Some(out)
}

/// One record's data of type `rtype` from its wire bytes.
fn decode_one(rtype: RecordType, bytes: &[u8]) -> Option<RData> {
    let len = u16::try_from(bytes.len()).ok()?;
    let mut decoder = BinDecoder::new(bytes);
    let data = RData::read(&mut decoder, rtype, Restrict::new(len)).ok()?;
    // All of it, or it was not this record.
    decoder.is_empty().then_some(data)
}

impl PartialEq for RDataSet {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RDataSet::Decoded(a), RDataSet::Decoded(b)) => a == b,
            (RDataSet::Wire { bytes: a, .. }, RDataSet::Wire { bytes: b, .. }) => a == b,
            _ => *self.get() == *other.get(),
        }
    }
}

impl Eq for RDataSet {}

impl Hash for RDataSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The decoded records, whichever the form: equal sets hash alike.
        self.get().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::file::parse_master;

    /// The records of `text` (one RRset's type) as one set, in file order.
    fn set_of(text: &str) -> (RecordType, Vec<RData>) {
        let (_, records) = parse_master(&format!("$ORIGIN example.com.\n{text}"), None).unwrap();
        let rtype = records[0].record_type();
        (rtype, records.into_iter().map(|r| r.data).collect())
    }

    /// `n` P-256 keys of `rtype` (DNSKEY or CDNSKEY), from their wire
    /// form (the zone-file parser refuses key records).
    fn keys(rtype: RecordType, n: u8) -> (RecordType, Vec<RData>) {
        let records = (0..n)
            .map(|i| {
                let mut wire = vec![1, 0, 3, 13];
                wire[1] = if i == 0 { 1 } else { 0 };
                wire.extend((0..64).map(|b: u8| b.wrapping_mul(7).wrapping_add(i)));
                let mut decoder = BinDecoder::new(&wire);
                RData::read(&mut decoder, rtype, Restrict::new(68)).unwrap()
            })
            .collect();
        (rtype, records)
    }

    /// A SHA-256 digest record of `rtype` (CDS or DS), from its wire form.
    fn digests(rtype: RecordType) -> (RecordType, Vec<RData>) {
        let mut wire = vec![0x09, 0x43, 13, 2];
        wire.extend((0..32).map(|b: u8| b.wrapping_mul(11)));
        let mut decoder = BinDecoder::new(&wire);
        let data = RData::read(&mut decoder, rtype, Restrict::new(36)).unwrap();
        (rtype, vec![data])
    }

    #[test]
    fn zone_own_data_is_kept_as_wire_and_reads_back_the_same() {
        for (rtype, records) in [
            "@ 3600 IN SOA Ns1.Example.COM. HostMaster.example.com. 2024010101 7200 3600 1209600 300\n",
        ]
        .into_iter()
        .map(set_of)
        .chain([
            keys(RecordType::DNSKEY, 2),
            keys(RecordType::CDNSKEY, 1),
            digests(RecordType::CDS),
            digests(RecordType::DS),
        ])
        {
            let mut set = RDataSet::Decoded(records.clone());
            assert!(set.compacts(rtype));
            set.compact(rtype);
            let RDataSet::Wire { bytes, .. } = &set else {
                panic!("{rtype} stayed decoded");
            };
            // Smaller than hickory's 184 bytes a record, heap aside.
            assert!(bytes.len() < 100 * records.len(), "{rtype}: {}", bytes.len());
            assert_eq!(set.len(), records.len());
            assert_eq!(&*set.get(), records.as_slice(), "{rtype}");
            assert_eq!(set.get()[0].to_string(), records[0].to_string());
            assert!(set.contains(&records[0]));
            assert_eq!(set, RDataSet::Decoded(records.clone()));
            // A change decodes it; compacting again gives the same bytes.
            let before = set.clone();
            set.make_decoded().push(records[0].clone());
            assert_eq!(set.len(), records.len() + 1);
            set.make_decoded().pop();
            set.compact(rtype);
            assert_eq!(set, before);
            let (RDataSet::Wire { bytes: a, .. }, RDataSet::Wire { bytes: b, .. }) = (&set, &before)
            else {
                panic!("{rtype} stayed decoded");
            };
            assert_eq!(a, b);
        }
        // Case in names is kept (the zone-file parser lowers it: build one).
        let name = |s: &str| hickory_proto::rr::Name::from_ascii(s).unwrap();
        let soa = hickory_proto::rr::rdata::SOA::new(
            name("Ns1.Example.COM."),
            name("h.example.com."),
            1,
            2,
            3,
            4,
            5,
        );
        let mut set = RDataSet::Decoded(vec![RData::SOA(soa)]);
        set.compact(RecordType::SOA);
        assert_eq!(
            set.get()[0].to_string(),
            "Ns1.Example.COM. h.example.com. 1 2 3 4 5"
        );
    }

    #[test]
    fn answered_data_stays_decoded() {
        for text in [
            "www 300 IN A 192.0.2.1\n",
            "@ 300 IN NS ns1.example.com.\n",
            "@ 300 IN MX 10 mx\n",
        ] {
            let (rtype, records) = set_of(text);
            let mut set = RDataSet::Decoded(records);
            assert!(!set.compacts(rtype));
            set.compact(rtype);
            assert!(matches!(set, RDataSet::Decoded(_)), "{rtype}");
            assert!(matches!(set.get(), Cow::Borrowed(_)));
        }
        // Nothing to keep.
        let mut empty = RDataSet::default();
        empty.compact(RecordType::SOA);
        assert!(matches!(empty, RDataSet::Decoded(_)));
    }

    #[test]
    fn bytes_that_do_not_read_back_give_nothing() {
        let set = RDataSet::Wire {
            rtype: RecordType::DS,
            count: 1,
            bytes: vec![0, 9, 1, 2].into_boxed_slice(),
        };
        assert!(set.get().is_empty());
        let trailing = RDataSet::Wire {
            rtype: RecordType::SOA,
            count: 1,
            bytes: vec![0, 1, 0].into_boxed_slice(),
        };
        assert!(trailing.get().is_empty());
    }
}
