//! Names as byte strings in DNSSEC canonical order (RFC 4034 §6.1), so the
//! zone tree and the zone table compare with `memcmp` instead of hickory's
//! label-by-label, case-folding `Name` comparison (which was a fifth of the
//! server's instructions per query).
//!
//! The key of a name lists its labels from the root down; each label is
//! lower-cased, escaped (`0x00` → `01 00`, `0x01` → `01 01`) and ended by
//! `0x00`. Because the terminator sorts below every escaped byte, plain byte
//! order of keys is canonical name order, equal keys are equal names, and
//! the key of an ancestor is a prefix of its descendants' keys ending at a
//! label end.

use hickory_proto::rr::Name;
use std::borrow::Borrow;
use triomphe::ThinArc;

/// Label terminator.
const END: u8 = 0x00;
/// Escape for label bytes that would collide with the terminator.
const ESC: u8 = 0x01;

/// Append the canonical key of `name` to `out` (cleared first).
pub fn encode(name: &Name, out: &mut Vec<u8>) {
    out.clear();
    for label in name.iter().rev() {
        push_label(label, out);
    }
}

/// One label of a key: lower-cased, escaped, terminated.
fn push_label(label: &[u8], out: &mut Vec<u8>) {
    for &b in label {
        match b {
            END | ESC => out.extend_from_slice(&[ESC, b]),
            _ => out.push(b.to_ascii_lowercase()),
        }
    }
    out.push(END);
}

/// The canonical key of `name` in a fresh buffer.
pub fn of(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    encode(name, &mut out);
    out
}

/// The key of the child `label` of the name whose key is `parent`.
pub fn child(parent: &[u8], label: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + label.len() + 1);
    out.extend_from_slice(parent);
    push_label(label, &mut out);
    out
}

/// The (lower-case, fully qualified) name whose key is `key`: the tree
/// keeps keys only, and makes a node's name when a caller needs it.
pub fn name_of(key: &[u8]) -> Name {
    // Where each label ends, root side first; a name has at most 127.
    let mut ends = [0usize; 128];
    let mut n = 0;
    for end in prefixes(key) {
        if let Some(slot) = ends.get_mut(n) {
            *slot = end;
            n += 1;
        }
    }
    // Wire form, leaf label first, unescaped (a key is at most as long as
    // its name's 255 wire bytes plus escapes).
    let mut wire = [0u8; 256];
    let mut w = 0;
    for pair in ends[..n].windows(2).rev() {
        let label = key.get(pair[0]..pair[1].saturating_sub(1)).unwrap_or(&[]);
        let len_at = w;
        w += 1;
        let mut bytes = label.iter();
        while let Some(&b) = bytes.next() {
            let b = if b == ESC {
                bytes.next().copied().unwrap_or(b)
            } else {
                b
            };
            if let Some(slot) = wire.get_mut(w) {
                *slot = b;
            }
            w += 1;
        }
        if let Some(len) = wire.get_mut(len_at) {
            *len = u8::try_from(w - len_at - 1).unwrap_or(u8::MAX);
        }
    }
    let wire = wire.get(..=w).unwrap_or(&[0]);
    // Keys are only ever made from names, so they always decode.
    let mut decoder = hickory_proto::serialize::binary::BinDecoder::new(wire);
    let mut name = <Name as hickory_proto::serialize::binary::BinDecodable>::read(&mut decoder)
        .unwrap_or_else(|_| Name::root());
    name.set_fqdn(true);
    name
}

/// Lengths of the keys of `key`'s ancestors and itself, shortest (the root,
/// length 0) first: the prefixes at which a label ends.
pub fn prefixes(key: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut i = 0;
    let mut started = false;
    std::iter::from_fn(move || {
        if !started {
            started = true;
            return Some(0);
        }
        while let Some(&b) = key.get(i) {
            i += if b == ESC { 2 } else { 1 };
            if b == END {
                return Some(i);
            }
        }
        None
    })
}

/// Where the key of `key`'s parent name ends (the longest proper prefix
/// that is a whole name), or `None` for the root.
pub fn parent_end(key: &[u8]) -> Option<usize> {
    let (mut parent, mut last) = (None, None);
    for end in prefixes(key) {
        parent = last;
        last = Some(end);
    }
    parent
}

/// A tree key: the canonical bytes, which also give the name back
/// ([`Keyed::name`]; names in the tree are lower-case).
///
/// One pointer wide (a thin `Arc`, its length inside the allocation): the
/// persistent tree stores keys inline in 16-slot nodes and clones a node's
/// keys on every path copy, so a fat key (a `Name` is 80 bytes, an
/// `Arc<[u8]>` 16) made each small zone's one tree node larger, and each
/// change to a big zone dozens of allocations. And no `Name` beside the
/// bytes: that was 80 of every node's ~130 bytes of key, a pool of 100k
/// children holding some 800k nodes.
#[derive(Debug, Clone)]
pub(super) struct Keyed(ThinArc<(), u8>);

impl Keyed {
    /// Key `name`.
    pub fn new(name: &Name) -> Self {
        Self::from_key(&of(name))
    }

    /// A keyed name from its key, already computed by [`of`].
    pub fn from_key(key: &[u8]) -> Self {
        Keyed(ThinArc::from_header_and_slice((), key))
    }

    /// The name (lower-case), made from the key.
    pub fn name(&self) -> Name {
        name_of(self.key())
    }

    /// The canonical key bytes.
    pub fn key(&self) -> &[u8] {
        &self.0.slice
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Keyed {}

impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}

impl Borrow<[u8]> for Keyed {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    /// A name from raw labels (hickory's parser refuses binary escapes).
    fn raw(labels: &[&[u8]]) -> Name {
        Name::from_labels(labels.iter().map(|l| l.to_vec())).unwrap()
    }

    #[test]
    fn child_key_is_the_key_of_the_child_name() {
        for (parent, label) in [
            (n("."), &b"*"[..]),
            (n("Example.COM."), b"*"),
            (n("a.example."), b"MiXed"),
            (raw(&[b"x\x00\x01"]), b"\x00\x01y"),
        ] {
            let child = parent.prepend_label(label).unwrap();
            assert_eq!(super::child(&of(&parent), label), of(&child), "{child}");
        }
    }

    #[test]
    fn byte_order_is_canonical_order() {
        // RFC 4034 §6.1's example (its binary labels included), shuffled.
        let sorted = [
            raw(&[b"example"]),
            raw(&[b"a", b"example"]),
            raw(&[b"yljkjljk", b"a", b"example"]),
            raw(&[b"Z", b"a", b"example"]),
            raw(&[b"zABC", b"a", b"EXAMPLE"]),
            raw(&[b"z", b"example"]),
            raw(&[b"\x01", b"z", b"example"]),
            raw(&[b"\x01\x00", b"z", b"example"]),
            raw(&[b"*", b"z", b"example"]),
            raw(&[b"\x80", b"z", b"example"]),
        ];
        let mut names: Vec<Name> = sorted.iter().rev().cloned().collect();
        names.sort_by_key(of);
        assert_eq!(names, sorted);
        // And it agrees with hickory's canonical comparison everywhere.
        for a in &names {
            for b in &names {
                assert_eq!(of(a).cmp(&of(b)), a.cmp(b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn the_key_gives_the_name_back() {
        for name in [
            Name::root(),
            n("example."),
            n("www.example.com."),
            n("*.a.b.c.d.e.f.example."),
            raw(&[b"x\x00\x01", b"\x01", b"\x00z"]),
            raw(&[&[b'a'; 63][..], &[b'b'; 63], &[b'c'; 63], &[b'd'; 61]]),
        ] {
            let back = name_of(&of(&name));
            assert_eq!(back, name, "{name}");
            assert!(back.is_fqdn());
            assert_eq!(of(&back), of(&name));
        }
        // The spelling in the tree is lower-case.
        assert_eq!(name_of(&of(&n("WwW.Example."))).to_string(), "www.example.");
    }

    #[test]
    fn zero_bytes_do_not_collide() {
        let a = Name::from_labels(vec![b"a\x00".to_vec(), b"x".to_vec()]).unwrap();
        let b = Name::from_labels(vec![b"a".to_vec(), b"\x00x".to_vec()]).unwrap();
        assert_ne!(of(&a), of(&b));
        assert_eq!(a.cmp(&b), of(&a).cmp(&of(&b)));
    }

    #[test]
    fn case_is_ignored() {
        assert_eq!(of(&n("WwW.Example.COM.")), of(&n("www.example.com.")));
    }

    #[test]
    fn prefixes_are_the_ancestors() {
        let key = of(&raw(&[b"a", b"b\x00", b"c"]));
        let got: Vec<Vec<u8>> = prefixes(&key).map(|l| key[..l].to_vec()).collect();
        let want: Vec<Vec<u8>> = [Name::root(), raw(&[b"c"]), raw(&[b"b\x00", b"c"])]
            .iter()
            .map(of)
            .chain([key.clone()])
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn parent_end_is_the_parent_key() {
        let key = of(&raw(&[b"a", b"b\x00", b"c"]));
        let end = parent_end(&key).unwrap();
        assert_eq!(&key[..end], of(&raw(&[b"b\x00", b"c"])).as_slice());
        let top = of(&raw(&[b"c"]));
        assert_eq!(parent_end(&top), Some(0));
        assert_eq!(parent_end(&of(&Name::root())), None);
    }
}
