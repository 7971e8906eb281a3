//! Compact denial of existence (RFC 9824): every name "exists"; a negative
//! answer is a NOERROR/NODATA with one NSEC at the query name whose next name
//! is the immediate successor `\000.<qname>` — so it covers nothing else and
//! cannot be used to walk the zone. Non-existent names carry the NXNAME
//! pseudo-type (128) in the bitmap so resolvers can still tell NXDOMAIN apart.

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
use hickory_proto::rr::domain::Label;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The NXNAME pseudo-type (RFC 9824 §2).
pub const NXNAME: u16 = 128;

/// The immediate canonical successor of `name`: `\000.<name>` (the name
/// itself when it is already at the 255-octet limit).
pub(super) fn successor(name: &Name) -> Name {
    Label::from_raw_bytes(&[0])
        .and_then(|l| name.prepend_label(l))
        .unwrap_or_else(|_| name.clone())
}

/// NSEC for a name that does not exist: bitmap RRSIG, NSEC, NXNAME.
pub(super) fn nxname(owner: &Name, ttl: u32) -> Record {
    nsec(
        owner,
        ttl,
        [
            RecordType::RRSIG,
            RecordType::NSEC,
            RecordType::Unknown(NXNAME),
        ],
    )
}

/// NSEC for a name that exists without the asked type: its types plus RRSIG and NSEC.
pub fn nodata(owner: &Name, ttl: u32, types: impl IntoIterator<Item = RecordType>) -> Record {
    nsec(
        owner,
        ttl,
        types
            .into_iter()
            .chain([RecordType::RRSIG, RecordType::NSEC]),
    )
}

fn nsec(owner: &Name, ttl: u32, types: impl IntoIterator<Item = RecordType>) -> Record {
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(
            successor(&owner.to_lowercase()),
            types,
        ))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_is_the_next_name() {
        let n = Name::from_ascii("a.example.").unwrap();
        let s = successor(&n);
        assert_eq!(s.num_labels(), 3);
        assert!(n < s);
        // Nothing fits between a name and its \000 child in canonical order.
        assert!(Name::from_ascii("b.example.").unwrap() > s);
    }

    #[test]
    fn nxname_bitmap() {
        let r = nxname(&Name::from_ascii("nope.example.").unwrap(), 300);
        let RData::DNSSEC(DNSSECRData::NSEC(n)) = r.data else {
            panic!()
        };
        let t: Vec<_> = n.type_bit_maps().collect();
        assert!(t.contains(&RecordType::Unknown(128)) && t.contains(&RecordType::NSEC));
    }
}
