//! Records encoded once and copied into answers: a wire image.
//!
//! A signed NXDOMAIN carries the same few signed sets (the negative SOA and
//! the NSEC3 records of the chain, each with its RRSIGs) in answer after
//! answer; only the question differs. Encoding them per answer was a copy
//! of each hickory record (~23 allocations) and a run of the message writer
//! (~7.7k instructions). An image is the encoding made once, in a message
//! whose question is the zone's apex alone, with the place of every
//! compression pointer in it noted: copying it into an answer is a
//! `memcpy` and a few two-byte patches.
//!
//! Every pointer of an image points either at the apex (spelled in the
//! question of the message it was made in) or into the image itself. In an
//! answer it is moved to where the apex is spelled in that answer's question
//! and to where the image lands. Pure: bytes in, bytes out.

use hickory_proto::rr::{Name, RecordType};

/// Size of a DNS header.
const HEADER_LEN: usize = 12;
/// The largest offset a compression pointer can hold.
const MAX_POINTER: usize = 0x3FFF;

/// What a compression pointer of an image points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `offset` bytes into the apex's name.
    Apex(u16),
    /// `offset` bytes into the image.
    Own(u16),
}

/// One pointer to move: where in the image it sits, and what it points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reloc {
    at: u16,
    to: Target,
}

/// Records encoded once, to be copied into answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireImage {
    bytes: Box<[u8]>,
    records: u16,
    relocs: Box<[Reloc]>,
}

impl WireImage {
    /// The image of the `records` records that follow the question in
    /// `message`, a message whose only question is the apex (its name is
    /// `apex_len` bytes, then type and class). `None` when a pointer in them
    /// points anywhere else, or the records do not parse.
    pub fn from_message(message: &[u8], apex_len: usize, records: u16) -> Option<WireImage> {
        let base = HEADER_LEN + apex_len + 4;
        let image = message.get(base..)?;
        let mut relocs = Vec::new();
        let mut at = 0;
        let mut note = |ptr_at: usize, value: usize| -> Option<()> {
            let to = if (HEADER_LEN..HEADER_LEN + apex_len).contains(&value) {
                Target::Apex(u16::try_from(value - HEADER_LEN).ok()?)
            } else if (base..message.len()).contains(&value) && value - base < ptr_at {
                Target::Own(u16::try_from(value - base).ok()?)
            } else {
                return None;
            };
            relocs.push(Reloc {
                at: u16::try_from(ptr_at).ok()?,
                to,
            });
            Some(())
        };
        for _ in 0..records {
            at = walk_name(image, at, &mut note)?;
            let fixed = image.get(at..at + 10)?;
            let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            let rdata = at + 10;
            let end = rdata + rdlen;
            if end > image.len() {
                return None;
            }
            // Only the well-known types of RFC 1035 may hold compressed
            // names in their rdata (RFC 3597 §4); the writer compresses no
            // others.
            match RecordType::from(rtype) {
                RecordType::NS | RecordType::CNAME | RecordType::PTR => {
                    walk_name(image, rdata, &mut note)?;
                }
                RecordType::MX => {
                    walk_name(image, rdata + 2, &mut note)?;
                }
                RecordType::SOA => {
                    let rname = walk_name(image, rdata, &mut note)?;
                    walk_name(image, rname, &mut note)?;
                }
                _ => {}
            }
            at = end;
        }
        if at != image.len() {
            return None;
        }
        Some(WireImage {
            bytes: image.into(),
            records,
            relocs: relocs.into(),
        })
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it holds no bytes (then no records).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// How many records it holds.
    pub fn records(&self) -> u16 {
        self.records
    }

    /// Appends the image to `out`, a message in which the apex's name is
    /// spelled at `apex_at`. `false`, appending nothing, when a pointer
    /// would pass the 14 bits a pointer has.
    pub fn append_to(&self, out: &mut Vec<u8>, apex_at: usize) -> bool {
        let start = out.len();
        if start + self.bytes.len() > MAX_POINTER + 1 || apex_at > MAX_POINTER {
            // Checked once for all: every target is before the image's end.
            return false;
        }
        out.extend_from_slice(&self.bytes);
        for r in self.relocs.iter() {
            let value = match r.to {
                Target::Apex(o) => apex_at + usize::from(o),
                Target::Own(o) => start + usize::from(o),
            };
            let at = start + usize::from(r.at);
            // `value` ≤ MAX_POINTER: both bases and the image fit in 14 bits.
            out[at..at + 2].copy_from_slice(&(0xC000 | value as u16).to_be_bytes());
        }
        true
    }
}

/// Walks the name at `at` in `image`: calls `note` with the place and value
/// of its pointer, if it ends in one. The offset after the name.
fn walk_name(
    image: &[u8],
    mut at: usize,
    note: &mut impl FnMut(usize, usize) -> Option<()>,
) -> Option<usize> {
    loop {
        let len = *image.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => {
                let low = *image.get(at + 1)?;
                note(at, usize::from(l & 0x3F) << 8 | usize::from(low))?;
                return Some(at + 2);
            }
            l if l & 0xC0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Where `apex` is spelled, byte for byte (case included), as the tail of
/// the first name in `question`: its offset in a message whose question
/// section starts right after the header. `None` when the name is not under
/// `apex` in that spelling, or has a pointer.
pub fn apex_in_question(question: &[u8], apex: &Name) -> Option<usize> {
    let mut at = 0;
    loop {
        if spells(question, at, apex) {
            return Some(HEADER_LEN + at);
        }
        let len = usize::from(*question.get(at)?);
        if len == 0 || len & 0xC0 != 0 {
            return None;
        }
        at += 1 + len;
    }
}

/// Whether the labels of `name`, then the root, are written at `at`.
fn spells(bytes: &[u8], mut at: usize, name: &Name) -> bool {
    for label in name.iter() {
        let end = at + 1 + label.len();
        if bytes.get(at) != Some(&(label.len() as u8)) || bytes.get(at + 1..end) != Some(label) {
            return false;
        }
        at = end;
    }
    bytes.get(at) == Some(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with `apex` as its question and `records` raw after it.
    fn message(apex: &[u8], records: &[u8]) -> Vec<u8> {
        let mut m = vec![0; HEADER_LEN];
        m.extend_from_slice(apex);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend_from_slice(records);
        m
    }

    const APEX: &[u8] = b"\x04zone\x04test\x00";

    /// `x.zone.test TXT` with the owner a pointer to the apex, then a
    /// record owned by a pointer to the first record's owner.
    fn two_records() -> Vec<u8> {
        let mut r = vec![1, b'x', 0xC0, 12];
        r.extend_from_slice(&[0, 16, 0, 1, 0, 0, 0, 60, 0, 2, 1, b'a']);
        r.extend_from_slice(&[0xC0, 12 + 11 + 4]);
        r.extend_from_slice(&[0, 16, 0, 1, 0, 0, 0, 60, 0, 2, 1, b'b']);
        r
    }

    #[test]
    fn relocates_apex_and_own_pointers() {
        let m = message(APEX, &two_records());
        let img = WireImage::from_message(&m, APEX.len(), 2).expect("image");
        assert_eq!(img.records(), 2);
        assert_eq!(img.len(), two_records().len());
        // An answer whose question is `a.zone.test`: the apex at 12 + 2.
        let mut out = vec![0; HEADER_LEN];
        out.extend_from_slice(b"\x01a\x04zone\x04test\x00\x00\x01\x00\x01");
        let start = out.len();
        assert!(img.append_to(&mut out, HEADER_LEN + 2));
        assert_eq!(&out[start + 2..start + 4], &[0xC0, 14]);
        let own = start as u8;
        assert_eq!(&out[start + 16..start + 18], &[0xC0, own]);
    }

    #[test]
    fn refuses_pointers_elsewhere_and_bad_records() {
        // A pointer into the header.
        let mut r = two_records();
        r[3] = 4;
        assert_eq!(
            WireImage::from_message(&message(APEX, &r), APEX.len(), 2),
            None
        );
        // A forward pointer into the image.
        let mut r = two_records();
        r[3] = 12 + 11 + 4 + 20;
        assert_eq!(
            WireImage::from_message(&message(APEX, &r), APEX.len(), 2),
            None
        );
        // More records claimed than present; fewer than present.
        let m = message(APEX, &two_records());
        assert_eq!(WireImage::from_message(&m, APEX.len(), 3), None);
        assert_eq!(WireImage::from_message(&m, APEX.len(), 1), None);
    }

    #[test]
    fn finds_the_apex_in_the_question_exactly_as_spelled() {
        let apex = Name::from_ascii("zone.test.").unwrap();
        let q = b"\x01a\x04zone\x04test\x00\x00\x01\x00\x01";
        assert_eq!(apex_in_question(q, &apex), Some(HEADER_LEN + 2));
        assert_eq!(apex_in_question(&q[2..], &apex), Some(HEADER_LEN));
        let upper = b"\x01a\x04ZONE\x04test\x00\x00\x01\x00\x01";
        assert_eq!(apex_in_question(upper, &apex), None);
        let other = b"\x01a\x04zone\x03org\x00\x00\x01\x00\x01";
        assert_eq!(apex_in_question(other, &apex), None);
        let longer = b"\x01a\x04zone\x04test\x02uk\x00\x00\x01\x00\x01";
        assert_eq!(apex_in_question(longer, &apex), None);
        assert_eq!(apex_in_question(b"\x01a\xC0\x0C", &apex), None);
        assert_eq!(apex_in_question(b"", &apex), None);
    }

    #[test]
    fn never_builds_a_pointer_past_fourteen_bits() {
        let m = message(APEX, &two_records());
        let img = WireImage::from_message(&m, APEX.len(), 2).expect("image");
        let mut out = vec![0; MAX_POINTER];
        assert!(!img.append_to(&mut out, 14));
        assert_eq!(out.len(), MAX_POINTER);
    }
}
