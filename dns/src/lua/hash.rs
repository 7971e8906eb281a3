//! The hashes and container orders PowerDNS's deterministic pickers depend
//! on, reproduced bit for bit. Pure: no IO.

use std::net::IpAddr;

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 13);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 8);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 13);
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 12);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 16);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 5);
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 3);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 10);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 15);
}

fn le32(k: &[u8]) -> u32 {
    u32::from(k[0]) | u32::from(k[1]) << 8 | u32::from(k[2]) << 16 | u32::from(k[3]) << 24
}

/// Bob Jenkins' lookup2 hash as PowerDNS `burtle()` (pdns/burtle.hh).
pub(super) fn burtle(key: &[u8], initval: u32) -> u32 {
    let mut a: u32 = 0x9e37_79b9;
    let mut b: u32 = 0x9e37_79b9;
    let mut c: u32 = initval;
    let mut k = key;
    while k.len() >= 12 {
        a = a.wrapping_add(le32(&k[0..4]));
        b = b.wrapping_add(le32(&k[4..8]));
        c = c.wrapping_add(le32(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    // PowerDNS passes the length as uint32_t; keys here are tiny.
    c = c.wrapping_add(key.len() as u32);
    // The C switch falls through from the highest remaining byte down.
    let n = k.len();
    if n >= 11 {
        c = c.wrapping_add(u32::from(k[10]) << 24);
    }
    if n >= 10 {
        c = c.wrapping_add(u32::from(k[9]) << 16);
    }
    if n >= 9 {
        c = c.wrapping_add(u32::from(k[8]) << 8);
    }
    if n >= 8 {
        b = b.wrapping_add(u32::from(k[7]) << 24);
    }
    if n >= 7 {
        b = b.wrapping_add(u32::from(k[6]) << 16);
    }
    if n >= 6 {
        b = b.wrapping_add(u32::from(k[5]) << 8);
    }
    if n >= 5 {
        b = b.wrapping_add(u32::from(k[4]));
    }
    if n >= 4 {
        a = a.wrapping_add(u32::from(k[3]) << 24);
    }
    if n >= 3 {
        a = a.wrapping_add(u32::from(k[2]) << 16);
    }
    if n >= 2 {
        a = a.wrapping_add(u32::from(k[1]) << 8);
    }
    if n >= 1 {
        a = a.wrapping_add(u32::from(k[0]));
    }
    mix(&mut a, &mut b, &mut c);
    c
}

/// `ComboAddress::addressOnlyHash`: burtle over the address bytes in
/// network order (4 for IPv4, 16 for IPv6), seed 0.
pub(super) fn address_hash(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(v4) => burtle(&v4.octets(), 0),
        IpAddr::V6(v6) => burtle(&v6.octets(), 0),
    }
}

/// `DNSName::hash()`: burtle over the lower-cased wire form of the name
/// (`burtleCI` over the label storage, without the final root byte).
pub(super) fn name_hash(name: &hickory_proto::rr::Name) -> u32 {
    let mut storage = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        storage.push(label.len() as u8);
        storage.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    burtle(&storage, 0)
}

/// libstdc++'s `__prime_list` from index 6 on (the part `_M_next_bkt`
/// searches), up to sizes any LUA record plausibly has.
const PRIMES: &[u64] = &[
    17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127,
    137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409,
    439, 467, 503, 541, 577, 619, 661, 709, 761, 823, 887, 953, 1031, 1109, 1193, 1289, 1381, 1493,
    1613, 1741, 1879, 2029, 2179, 2357, 2549, 2753, 2971, 3209, 3469, 3739, 4027, 4349, 4703, 5087,
    5503, 5953, 6427, 6949, 7517, 8123, 8783, 9497, 10273, 11113, 12011, 12983, 14033, 15173,
    16411, 17749, 19183, 20753, 22447, 24281, 26267, 28411, 30727, 33223, 35933, 38873, 42043,
    45481, 49201, 53201, 57557, 62233, 67307, 72817, 78779, 85229, 92203, 99733,
];

/// `_Prime_rehash_policy::_M_next_bkt`: bucket count and next resize point.
fn next_bucket(n: u64) -> (u64, u64) {
    const FAST: [u64; 14] = [2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13];
    if n < FAST.len() as u64 {
        if n == 0 {
            return (1, 0);
        }
        let b = FAST[n as usize];
        return (b, b);
    }
    let b = PRIMES.iter().copied().find(|&p| p >= n).unwrap_or(n | 1);
    (b, b)
}

/// The iteration order of a `std::unordered_map<int, T>` (libstdc++, GCC
/// 12 as in Debian 12's PowerDNS 4.7.3) after inserting `keys` in order.
///
/// `pickwhashed` and `pickwrandom` read their Lua table into such a map and
/// accumulate weights in its iteration order, so the pick for a given
/// `bestwho` depends on it: with a handful of entries the order is the
/// reverse of the Lua order. Hash of an int is the int itself; every insert
/// into an empty bucket goes to the list front, into a non-empty bucket
/// before that bucket's first node; a rehash replays the list the same way.
pub(super) fn unordered_map_order(keys: &[i64]) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::with_capacity(keys.len());
    let mut buckets: u64 = 1;
    let mut next_resize: u64 = 0;
    let bucket_of = |k: i64, n: u64| (k as u64) % n;
    let place = |order: &mut Vec<usize>, idx: usize, n: u64| {
        let b = bucket_of(keys[idx], n);
        match order.iter().position(|&j| bucket_of(keys[j], n) == b) {
            Some(pos) => order.insert(pos, idx),
            None => order.insert(0, idx),
        }
    };
    for (idx, key) in keys.iter().enumerate() {
        if order.iter().any(|&j| keys[j] == *key) {
            continue;
        }
        let n_elt = order.len() as u64;
        if n_elt + 1 > next_resize {
            let min_bkts = (n_elt + 1).max(if next_resize == 0 { 11 } else { 0 });
            if min_bkts >= buckets {
                let (nb, nr) = next_bucket((min_bkts + 1).max(buckets * 2));
                next_resize = nr;
                buckets = nb;
                let old = std::mem::take(&mut order);
                for j in old {
                    place(&mut order, j, buckets);
                }
            } else {
                next_resize = buckets;
            }
        }
        place(&mut order, idx, buckets);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burtle_known_values() {
        // Vectors from the C code of pdns/burtle.hh compiled with gcc.
        assert_eq!(burtle(b"", 0), 3_175_731_469);
        assert_eq!(burtle(&[192, 0, 2, 1], 0), 3_312_216_360);
        assert_eq!(address_hash(&"10.1.2.3".parse().unwrap()), 3_516_852_848);
        assert_eq!(address_hash(&"2001:db8::1".parse().unwrap()), 104_545_022);
        assert_eq!(burtle(b"abcdefghijklm", 7), 3_014_939_900);
    }

    #[test]
    fn small_maps_iterate_in_reverse() {
        let keys: Vec<i64> = (1..=5).collect();
        assert_eq!(unordered_map_order(&keys), vec![4, 3, 2, 1, 0]);
    }

    #[test]
    fn rehash_reverses_again() {
        // 13 buckets hold keys 1..13; the 14th insert rehashes to 29 buckets,
        // replaying 13..1 to the front (giving 1..13), then 14 goes first.
        let keys: Vec<i64> = (1..=14).collect();
        let order = unordered_map_order(&keys);
        let expect: Vec<usize> = std::iter::once(13).chain(0..13).collect();
        assert_eq!(order, expect);
    }
}
