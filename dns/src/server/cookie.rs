//! DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018).
//!
//! A server cookie is `version 1 | 3 reserved bytes | timestamp (u32 unix
//! seconds) | SipHash-2-4(client cookie | version | reserved | timestamp |
//! client IP)`, keyed by a 16-byte secret. Replicas configured with the same
//! secret accept each other's cookies (anycast). The secret rotates: the
//! current one signs, the current and the previous one verify, so a client's
//! cookie survives one rotation.
//!
//! What a request carries decides what it gets (RFC 7873 §5.2):
//! no cookie: answered as today; a malformed COOKIE option: FORMERR; a
//! client cookie alone, or with a server cookie we did not make (or made too
//! long ago): answered normally with a fresh server cookie, and subject to
//! rate limiting, where a slipped reply is BADCOOKIE with a fresh cookie
//! rather than TC=1 (§5.2.3 lets the server choose; a client retrying with
//! the cookie over UDP costs less than over TCP); a valid server cookie:
//! answered with a fresh cookie and exempt from rate limiting (the client
//! has proved it receives at its address). This module is pure apart from
//! the clock and the random secret.

use arc_swap::ArcSwap;
use hickory_proto::op::Edns;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use std::hash::Hasher;
use std::net::IpAddr;
use std::time::Duration;

/// The COOKIE EDNS option code.
pub const OPTION_CODE: u16 = 10;
/// Length of the COOKIE option we send: client cookie (8) + server cookie (16).
pub const OPTION_DATA_LEN: usize = 24;
/// Bytes a cookie option adds to a response (option header + data).
pub const OPTION_WIRE_LEN: usize = 4 + OPTION_DATA_LEN;
/// RFC 9018 §4.3: a server cookie older than this is not valid.
const MAX_AGE_SECS: u64 = 3600;
/// RFC 9018 §4.3: nor one from further in the future than this (clock skew
/// between replicas).
const MAX_SKEW_SECS: u64 = 300;

/// A 16-byte SipHash key.
pub type Secret = [u8; 16];

/// How server cookies are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// The signing secret; `None`: a random one, rotated every `rotate`.
    pub secret: Option<Secret>,
    /// A secret still accepted (the one before the last rotation).
    pub previous_secret: Option<Secret>,
    /// How often a random secret is replaced (ignored with a configured one).
    pub rotate: Duration,
}

impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings {
            secret: None,
            previous_secret: None,
            rotate: Duration::from_secs(86_400),
        }
    }
}

/// What a request's COOKIE option says about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// No COOKIE option.
    Absent,
    /// A COOKIE option of an impossible length (RFC 7873 §5.2.2: FORMERR).
    Malformed,
    /// A client cookie alone, or with a server cookie that does not verify.
    ClientOnly([u8; 8]),
    /// A client cookie with a server cookie we made recently for this address.
    Valid([u8; 8]),
}

impl Presented {
    /// The client cookie, when there is a well-formed one.
    pub fn client(&self) -> Option<&[u8; 8]> {
        match self {
            Presented::ClientOnly(c) | Presented::Valid(c) => Some(c),
            Presented::Absent | Presented::Malformed => None,
        }
    }
}

/// The current and previous secrets.
#[derive(Debug)]
struct Secrets {
    current: Secret,
    previous: Option<Secret>,
}

/// Server cookies: made with the current secret, checked against both.
#[derive(Debug)]
pub struct Cookies {
    secrets: ArcSwap<Secrets>,
    rotate: Option<Duration>,
}

impl Cookies {
    /// Cookies under `settings` (a random secret when none is configured).
    pub fn new(settings: &CookieSettings) -> Self {
        let current = settings.secret.unwrap_or_else(rand::random);
        Cookies {
            secrets: ArcSwap::from_pointee(Secrets {
                current,
                previous: settings.previous_secret,
            }),
            rotate: settings.secret.is_none().then_some(settings.rotate),
        }
    }

    /// How often [`Cookies::rotate`] should run (`None`: the secret is
    /// configured; the operator rotates it).
    pub fn rotation_interval(&self) -> Option<Duration> {
        self.rotate.filter(|d| !d.is_zero())
    }

    /// Replace the current secret with a random one, keeping the current
    /// one as the previous (still accepted).
    pub fn rotate(&self) {
        let old = self.secrets.load();
        self.secrets.store(std::sync::Arc::new(Secrets {
            current: rand::random(),
            previous: Some(old.current),
        }));
    }

    /// What the COOKIE option of a request from `ip` presents, at `now`
    /// (unix seconds).
    pub fn inspect(&self, edns: Option<&Edns>, ip: IpAddr, now: u32) -> Presented {
        self.inspect_data(option_data(edns), ip, now)
    }

    /// [`Cookies::inspect`] for the COOKIE option's data.
    pub fn inspect_data(&self, data: Option<&[u8]>, ip: IpAddr, now: u32) -> Presented {
        let Some(data) = data else {
            return Presented::Absent;
        };
        let (client, server) = match data.len() {
            8 => (data, &[][..]),
            16..=40 => data.split_at(8),
            _ => return Presented::Malformed,
        };
        let mut c = [0u8; 8];
        c.copy_from_slice(client);
        if server.len() == 16 && self.verifies(&c, server, ip, now) {
            Presented::Valid(c)
        } else {
            Presented::ClientOnly(c)
        }
    }

    /// Whether `server` is a cookie we made for `client` at `ip`, recently.
    fn verifies(&self, client: &[u8; 8], server: &[u8], ip: IpAddr, now: u32) -> bool {
        let Some((head, hash)) = server.split_first_chunk::<8>() else {
            return false;
        };
        // Version 1 (RFC 9018 §4.2); reserved bytes are hashed as sent.
        if head[0] != 1 {
            return false;
        }
        let stamp = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let (stamp, now) = (u64::from(stamp), u64::from(now));
        if stamp + MAX_AGE_SECS < now || stamp > now + MAX_SKEW_SECS {
            return false;
        }
        let secrets = self.secrets.load();
        let ok = |secret: &Secret| sip(secret, client, head, ip).to_le_bytes() == hash;
        ok(&secrets.current) || secrets.previous.as_ref().is_some_and(ok)
    }

    /// The COOKIE option data to send back to `client` at `ip`: its client
    /// cookie and a fresh server cookie stamped `now`.
    pub fn answer(&self, client: &[u8; 8], ip: IpAddr, now: u32) -> [u8; OPTION_DATA_LEN] {
        let mut head = [0u8; 8];
        head[0] = 1;
        head[4..].copy_from_slice(&now.to_be_bytes());
        let hash = sip(&self.secrets.load().current, client, &head, ip);
        let mut out = [0u8; OPTION_DATA_LEN];
        out[..8].copy_from_slice(client);
        out[8..16].copy_from_slice(&head);
        out[16..].copy_from_slice(&hash.to_le_bytes());
        out
    }
}

/// RFC 9018 §4.4: SipHash-2-4 over client cookie, version, reserved,
/// timestamp and the client's address (4 or 16 bytes).
// The hash goes on the wire in SipHash's own (little-endian) byte order,
// as BIND and Knot send it (the RFC 9018 test vector checks it).
fn sip(secret: &Secret, client: &[u8; 8], head: &[u8; 8], ip: IpAddr) -> u64 {
    let mut h = siphasher::sip::SipHasher24::new_with_key(secret);
    h.write(client);
    h.write(head);
    match ip.to_canonical() {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    h.finish()
}

/// The data of the first COOKIE option in `edns`.
fn option_data(edns: Option<&Edns>) -> Option<&[u8]> {
    match edns?.options().get(EdnsCode::Cookie)? {
        EdnsOption::Unknown(_, data) => Some(data),
        // hickory keeps options it does not model as raw bytes; a future
        // typed variant would land here (treated as absent until then).
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Whether a request carries a COOKIE option of a length we answer with a
/// cookie (the planner keeps room for it).
pub fn wants_cookie(edns: Option<&Edns>) -> bool {
    wants_cookie_data(option_data(edns))
}

/// [`wants_cookie`] for the COOKIE option's data.
pub fn wants_cookie_data(data: Option<&[u8]>) -> bool {
    data.is_some_and(|d| d.len() == 8 || (16..=40).contains(&d.len()))
}

/// Unix time in seconds, as cookies stamp it.
pub fn unix_now() -> u32 {
    super::respond::unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edns_with(data: &[u8]) -> Edns {
        let mut e = Edns::new();
        e.options_mut()
            .insert(EdnsOption::Unknown(OPTION_CODE, data.to_vec()));
        e
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));
    const NOW: u32 = 1_800_000_000;

    #[test]
    fn lengths_decide_malformed_or_client_only() {
        let c = Cookies::new(&CookieSettings::default());
        assert_eq!(c.inspect(None, IP, NOW), Presented::Absent);
        assert_eq!(
            c.inspect(Some(&Edns::new()), IP, NOW),
            Presented::Absent,
            "EDNS without a cookie"
        );
        for bad in [0usize, 1, 7, 9, 15, 41, 60] {
            let e = edns_with(&vec![1; bad]);
            assert_eq!(c.inspect(Some(&e), IP, NOW), Presented::Malformed, "{bad}");
            assert!(!wants_cookie(Some(&e)));
        }
        let e = edns_with(&[7; 8]);
        assert_eq!(c.inspect(Some(&e), IP, NOW), Presented::ClientOnly([7; 8]));
        assert!(wants_cookie(Some(&e)));
        // A server cookie of another make (any length 8..=32) is not ours.
        let e = edns_with(&[7; 40]);
        assert_eq!(c.inspect(Some(&e), IP, NOW), Presented::ClientOnly([7; 8]));
    }

    #[test]
    fn our_cookie_verifies_for_its_address_and_time_only() {
        let c = Cookies::new(&CookieSettings::default());
        let data = c.answer(&[3; 8], IP, NOW);
        let e = edns_with(&data);
        assert_eq!(c.inspect(Some(&e), IP, NOW + 10), Presented::Valid([3; 8]));
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(
            c.inspect(Some(&e), other, NOW),
            Presented::ClientOnly([3; 8])
        );
        assert_eq!(
            c.inspect(Some(&e), IP, NOW + 3601),
            Presented::ClientOnly([3; 8]),
            "an hour old"
        );
        assert_eq!(
            c.inspect(Some(&e), IP, NOW - 301),
            Presented::ClientOnly([3; 8]),
            "from the future"
        );
        let mut forged = data;
        forged[23] ^= 1;
        assert_eq!(
            c.inspect(Some(&edns_with(&forged)), IP, NOW),
            Presented::ClientOnly([3; 8])
        );
        let mut other_client = data;
        other_client[0] ^= 1;
        assert!(matches!(
            c.inspect(Some(&edns_with(&other_client)), IP, NOW),
            Presented::ClientOnly(_)
        ));
    }

    #[test]
    fn rotation_keeps_the_previous_secret_for_one_round() {
        let c = Cookies::new(&CookieSettings::default());
        let e = edns_with(&c.answer(&[5; 8], IP, NOW));
        c.rotate();
        assert_eq!(c.inspect(Some(&e), IP, NOW), Presented::Valid([5; 8]));
        c.rotate();
        assert_eq!(c.inspect(Some(&e), IP, NOW), Presented::ClientOnly([5; 8]));
    }

    #[test]
    fn replicas_sharing_a_secret_accept_each_others_cookies() {
        let settings = CookieSettings {
            secret: Some([9; 16]),
            ..CookieSettings::default()
        };
        let (a, b) = (Cookies::new(&settings), Cookies::new(&settings));
        assert_eq!(a.rotation_interval(), None, "configured secrets stay");
        let e = edns_with(&a.answer(&[1; 8], IP, NOW));
        assert_eq!(b.inspect(Some(&e), IP, NOW), Presented::Valid([1; 8]));
        // The previous secret of a replica that rotated by configuration.
        let rotated = Cookies::new(&CookieSettings {
            secret: Some([10; 16]),
            previous_secret: Some([9; 16]),
            ..CookieSettings::default()
        });
        assert_eq!(rotated.inspect(Some(&e), IP, NOW), Presented::Valid([1; 8]));
    }

    #[test]
    fn rfc9018_appendix_a_vector() {
        // RFC 9018 Appendix A.1: secret e5e973e5a6b2a43f48e7dc849e37bfcf,
        // client cookie 2464c4abcf10c957, client 198.51.100.100, timestamp
        // 1559731985 → server cookie 010000005cf79f111f8130c3eee29480.
        let secret: Secret = hex::decode("e5e973e5a6b2a43f48e7dc849e37bfcf")
            .unwrap()
            .try_into()
            .unwrap();
        let c = Cookies::new(&CookieSettings {
            secret: Some(secret),
            ..CookieSettings::default()
        });
        let client: [u8; 8] = hex::decode("2464c4abcf10c957").unwrap().try_into().unwrap();
        let got = c.answer(&client, "198.51.100.100".parse().unwrap(), 1_559_731_985);
        assert_eq!(hex::encode(&got[8..]), "010000005cf79f111f8130c3eee29480");
    }
}
