//! TSIG (RFC 8945) on raw messages: find and verify the TSIG RR of a
//! request, sign responses (every message of a multi-message transfer,
//! each MAC chained to the previous one), sign NOTIFY requests and verify
//! their answers. HMAC-SHA256 and HMAC-SHA512 through ring.
//!
//! Works on bytes rather than hickory's message types: a MAC covers the
//! message exactly as sent, and the transfer path emits its own messages.

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use ring::hmac;
use std::collections::HashMap;
use std::sync::Arc;

/// TSIG RR type code.
const TSIG_TYPE: u16 = 250;
/// Class ANY, which every TSIG RR carries.
const CLASS_ANY: u16 = 255;
/// Seconds of clock difference we accept and announce (RFC 8945 §10: 300).
pub const FUDGE: u16 = 300;
/// TSIG error: the MAC does not verify.
pub const BADSIG: u16 = 16;
/// TSIG error: the key is unknown (name or algorithm).
pub const BADKEY: u16 = 17;
/// TSIG error: the signing time is outside the fudge.
pub const BADTIME: u16 = 18;
/// TSIG error: the MAC was truncated below our policy.
pub const BADTRUNC: u16 = 22;

/// An HMAC algorithm a key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `hmac-sha256.`
    HmacSha256,
    /// `hmac-sha512.`
    HmacSha512,
}

impl Algorithm {
    /// Parses `hmac-sha256` or `hmac-sha512` (a trailing dot is accepted).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Algorithm::HmacSha256),
            "hmac-sha512" => Some(Algorithm::HmacSha512),
            _ => None,
        }
    }

    /// The algorithm's name without the trailing dot (config and CLI spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            Algorithm::HmacSha256 => hmac::HMAC_SHA256,
            Algorithm::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// Length of a full MAC (and of a generated secret).
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha512 => 64,
        }
    }

    /// The algorithm name in canonical wire form.
    fn wire(self) -> Vec<u8> {
        wire_of_text(self.as_str())
    }
}

/// A shared secret: its name, algorithm and HMAC key. The secret itself
/// is never shown (`Debug` prints the name and algorithm only).
pub struct TsigKey {
    name: Name,
    name_wire: Vec<u8>,
    algorithm: Algorithm,
    key: hmac::Key,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name.to_ascii())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    /// A key named `name` (case does not matter) using `algorithm` with `secret`.
    pub fn new(name: &Name, algorithm: Algorithm, secret: &[u8]) -> Self {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        TsigKey {
            name_wire: canonical_wire(&name),
            name,
            algorithm,
            key: hmac::Key::new(algorithm.ring(), secret),
        }
    }

    /// The key's name (lower case, fully qualified).
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// The keys a server knows, by name.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    keys: HashMap<Vec<u8>, Arc<TsigKey>>,
}

impl KeySet {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a key.
    pub fn insert(&mut self, key: TsigKey) {
        self.keys.insert(key.name_wire.clone(), Arc::new(key));
    }

    /// The key with this name.
    pub fn get(&self, name: &Name) -> Option<&Arc<TsigKey>> {
        self.keys.get(&canonical_wire(name))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A name in canonical wire form: labels lower-cased, uncompressed.
fn canonical_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

fn wire_of_text(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    for label in s.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out
}

/// The TSIG RR at the end of a message, as read.
#[derive(Debug, Clone)]
pub struct TsigRecord {
    /// Offset of the TSIG RR (the signed message is everything before).
    start: usize,
    /// The key name.
    pub key_name: Name,
    /// The algorithm name as sent.
    algorithm: Name,
    /// Time signed, unix seconds.
    pub time: u64,
    /// Permitted clock difference.
    fudge: u16,
    /// The MAC.
    mac: Vec<u8>,
    /// The message id when it was signed.
    original_id: u16,
    /// TSIG error field.
    pub error: u16,
    /// Other data.
    other: Vec<u8>,
}

/// Why a message's TSIG RR cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed message or TSIG record")]
pub struct Malformed;

/// Position after the (possibly compressed) name at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, Malformed> {
    loop {
        let len = *msg.get(pos).ok_or(Malformed)?;
        match len {
            0 => return Ok(pos + 1),
            l if l & 0xc0 == 0xc0 => return Ok(pos + 2),
            l if l > 63 => return Err(Malformed),
            l => pos += 1 + usize::from(l),
        }
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, Malformed> {
    msg.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(Malformed)
}

fn name_at(msg: &[u8], pos: usize) -> Result<Name, Malformed> {
    let mut d = BinDecoder::new(msg);
    d.read_slice(pos).map_err(|_| Malformed)?;
    let mut n = Name::read(&mut d).map_err(|_| Malformed)?;
    n.set_fqdn(true);
    Ok(n)
}

/// The TSIG RR of `msg`, when its last record is one (`Ok(None)`: unsigned).
pub fn find(msg: &[u8]) -> Result<Option<TsigRecord>, Malformed> {
    if msg.len() < 12 {
        return Err(Malformed);
    }
    let count = |i: usize| u16_at(msg, 4 + 2 * i).map(usize::from);
    let (qd, an, ns, ar) = (count(0)?, count(1)?, count(2)?, count(3)?);
    if ar == 0 {
        return Ok(None);
    }
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos)? + 4;
    }
    for _ in 0..an + ns + ar - 1 {
        pos = skip_name(msg, pos)?;
        let rdlen = usize::from(u16_at(msg, pos + 8)?);
        pos += 10 + rdlen;
    }
    let start = pos;
    let after_name = skip_name(msg, pos)?;
    if u16_at(msg, after_name)? != TSIG_TYPE {
        return Ok(None);
    }
    let key_name = name_at(msg, start)?;
    let rdlen = usize::from(u16_at(msg, after_name + 8)?);
    let rdata = after_name + 10;
    let end = rdata + rdlen;
    if end != msg.len() {
        return Err(Malformed);
    }
    let algorithm = name_at(msg, rdata)?;
    let mut p = skip_name(msg, rdata)?;
    let time_hi = u64::from(u16_at(msg, p)?);
    let time_lo = msg
        .get(p + 2..p + 6)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(Malformed)?;
    let fudge = u16_at(msg, p + 6)?;
    let mac_len = usize::from(u16_at(msg, p + 8)?);
    p += 10;
    let mac = msg.get(p..p + mac_len).ok_or(Malformed)?.to_vec();
    p += mac_len;
    let original_id = u16_at(msg, p)?;
    let error = u16_at(msg, p + 2)?;
    let other_len = usize::from(u16_at(msg, p + 4)?);
    p += 6;
    let other = msg.get(p..p + other_len).ok_or(Malformed)?.to_vec();
    if p + other_len != end {
        return Err(Malformed);
    }
    Ok(Some(TsigRecord {
        start,
        key_name,
        algorithm,
        time: time_hi << 32 | u64::from(time_lo),
        fudge,
        mac,
        original_id,
        error,
        other,
    }))
}

/// The TSIG variables of RFC 8945 §4.3.3 (all of them, or only the timers).
fn variables(
    key: &TsigKey,
    time: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
    timers_only: bool,
) -> Vec<u8> {
    let mut v = Vec::with_capacity(64 + other.len());
    if !timers_only {
        v.extend_from_slice(&key.name_wire);
        v.extend_from_slice(&CLASS_ANY.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(&key.algorithm.wire());
    }
    v.extend_from_slice(&((time >> 32) as u16).to_be_bytes());
    v.extend_from_slice(&(time as u32).to_be_bytes());
    v.extend_from_slice(&fudge.to_be_bytes());
    if !timers_only {
        v.extend_from_slice(&error.to_be_bytes());
        v.extend_from_slice(&(other.len() as u16).to_be_bytes());
        v.extend_from_slice(other);
    }
    v
}

/// The MAC over `prior` (length-prefixed, when given), the message
/// `header` + `body` and the variables.
fn mac(key: &TsigKey, prior: Option<&[u8]>, header: &[u8], body: &[u8], vars: &[u8]) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(&key.key);
    if let Some(p) = prior {
        ctx.update(&(p.len() as u16).to_be_bytes());
        ctx.update(p);
    }
    ctx.update(header);
    ctx.update(body);
    ctx.update(vars);
    ctx.sign().as_ref().to_vec()
}

/// MAC comparison in time independent of where they differ (a timing
/// oracle would let a forger learn a MAC byte by byte).
fn same_mac(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The header of the signed message as it was signed: the original id, and
/// ARCOUNT without the TSIG RR.
fn signed_header(msg: &[u8], t: &TsigRecord) -> Result<[u8; 12], Malformed> {
    let mut h: [u8; 12] = msg
        .get(..12)
        .and_then(|h| h.try_into().ok())
        .ok_or(Malformed)?;
    h[..2].copy_from_slice(&t.original_id.to_be_bytes());
    let ar = u16::from_be_bytes([h[10], h[11]]).saturating_sub(1);
    h[10..12].copy_from_slice(&ar.to_be_bytes());
    Ok(h)
}

/// Why a signed request is refused (RFC 8945 §5.2); each maps to a TSIG
/// error code in a NOTAUTH answer, or FORMERR.
#[derive(Debug, Clone)]
pub enum Rejection {
    /// The message or its TSIG RR does not parse, or the MAC length is
    /// out of range: FORMERR.
    FormErr,
    /// Unknown key name or algorithm: NOTAUTH, BADKEY, unsigned.
    BadKey(Box<TsigRecord>),
    /// The MAC does not verify: NOTAUTH, BADSIG, unsigned.
    BadSig(Box<TsigRecord>),
    /// MAC truncated (we accept full MACs only): NOTAUTH, BADTRUNC, unsigned.
    BadTrunc(Box<TsigRecord>),
    /// Signed too far from our time: NOTAUTH, BADTIME, signed with the key.
    BadTime(Arc<TsigKey>, Box<TsigRecord>),
}

/// A request whose TSIG verified: the key and the request MAC, which the
/// response's MAC covers.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The key that signed the request.
    pub key: Arc<TsigKey>,
    /// The request's MAC.
    pub mac: Vec<u8>,
}

/// Verify the TSIG RR `t` of request `msg` with `keys` at unix time `now`.
pub fn verify_request(
    msg: &[u8],
    t: TsigRecord,
    keys: &KeySet,
    now: u64,
) -> Result<Verified, Rejection> {
    let key = match keys.get(&t.key_name) {
        Some(k) if Algorithm::parse(&t.algorithm.to_ascii()) == Some(k.algorithm) => k.clone(),
        _ => return Err(Rejection::BadKey(Box::new(t))),
    };
    let full = key.algorithm.mac_len();
    // RFC 8945 §5.2.2.1: longer than the hash, or shorter than half of it
    // (and than 10 octets), is malformed; a shorter yet legal MAC is
    // below our policy (full MACs only).
    if t.mac.len() > full || t.mac.len() < (full / 2).max(10) {
        return Err(Rejection::FormErr);
    }
    if t.mac.len() < full {
        return Err(Rejection::BadTrunc(Box::new(t)));
    }
    let header = signed_header(msg, &t).map_err(|_| Rejection::FormErr)?;
    let body = msg.get(12..t.start).ok_or(Rejection::FormErr)?;
    let vars = variables(&key, t.time, t.fudge, t.error, &t.other, false);
    let want = mac(&key, None, &header, body, &vars);
    if !same_mac(&want, &t.mac) {
        return Err(Rejection::BadSig(Box::new(t)));
    }
    if now.abs_diff(t.time) > u64::from(t.fudge) {
        return Err(Rejection::BadTime(key, Box::new(t)));
    }
    Ok(Verified { key, mac: t.mac })
}

/// Append a TSIG RR to `msg` (ARCOUNT incremented).
#[allow(clippy::too_many_arguments)]
fn append(
    msg: &mut Vec<u8>,
    key_name_wire: &[u8],
    algorithm_wire: &[u8],
    time: u64,
    fudge: u16,
    mac: &[u8],
    original_id: u16,
    error: u16,
    other: &[u8],
) {
    let rdlen = algorithm_wire.len() + 16 + mac.len() + other.len();
    msg.extend_from_slice(key_name_wire);
    msg.extend_from_slice(&TSIG_TYPE.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(algorithm_wire);
    msg.extend_from_slice(&((time >> 32) as u16).to_be_bytes());
    msg.extend_from_slice(&(time as u32).to_be_bytes());
    msg.extend_from_slice(&fudge.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    msg.extend_from_slice(&original_id.to_be_bytes());
    msg.extend_from_slice(&error.to_be_bytes());
    msg.extend_from_slice(&(other.len() as u16).to_be_bytes());
    msg.extend_from_slice(other);
    if let Some(ar) = msg.get_mut(10..12) {
        let n = u16::from_be_bytes([ar[0], ar[1]]).saturating_add(1);
        ar.copy_from_slice(&n.to_be_bytes());
    }
}

/// Room a TSIG RR may take at the end of a message (key and algorithm
/// names, a SHA-512 MAC, no other data): transfers leave this free.
pub const RESERVE: usize = 255 + 20 + 16 + 64 + 10 + 6;

fn message_id(msg: &[u8]) -> u16 {
    msg.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// Signs the responses to one verified request: the first MAC covers the
/// request's MAC, each later one the MAC before it (RFC 8945 §5.3.1).
#[derive(Debug)]
pub struct ResponseSigner {
    key: Arc<TsigKey>,
    prior: Vec<u8>,
    first: bool,
    time: u64,
}

impl ResponseSigner {
    /// Signer for the answers to `request`, at unix time `now`.
    pub fn new(request: Verified, now: u64) -> Self {
        ResponseSigner {
            key: request.key,
            prior: request.mac,
            first: true,
            time: now,
        }
    }

    /// The key signing.
    pub fn key(&self) -> &Arc<TsigKey> {
        &self.key
    }

    /// Sign `msg` (a complete response without TSIG) and append the TSIG RR.
    pub fn sign(&mut self, msg: &mut Vec<u8>) {
        let Some((header, body)) = msg.split_first_chunk::<12>() else {
            return;
        };
        let vars = variables(&self.key, self.time, FUDGE, 0, &[], !self.first);
        let m = mac(&self.key, Some(&self.prior), header, body, &vars);
        let id = message_id(msg);
        append(
            msg,
            &self.key.name_wire,
            &self.key.algorithm.wire(),
            self.time,
            FUDGE,
            &m,
            id,
            0,
            &[],
        );
        self.prior = m;
        self.first = false;
    }
}

/// Append the TSIG RR of an error answer for `rejection` to `msg` (the
/// NOTAUTH or FORMERR response, without TSIG). BADKEY, BADSIG and BADTRUNC
/// answers are unsigned; BADTIME is signed and carries our time.
pub fn sign_rejection(msg: &mut Vec<u8>, rejection: &Rejection, now: u64) {
    let id = message_id(msg);
    let (t, code) = match rejection {
        Rejection::FormErr => return,
        Rejection::BadKey(t) => (t, BADKEY),
        Rejection::BadSig(t) => (t, BADSIG),
        Rejection::BadTrunc(t) => (t, BADTRUNC),
        Rejection::BadTime(key, t) => {
            let mut other = Vec::with_capacity(6);
            other.extend_from_slice(&((now >> 32) as u16).to_be_bytes());
            other.extend_from_slice(&(now as u32).to_be_bytes());
            let Some((header, body)) = msg.split_first_chunk::<12>() else {
                return;
            };
            // The request's time, so the client can match it (§5.2.3).
            let vars = variables(key, t.time, FUDGE, BADTIME, &other, false);
            let m = mac(key, Some(&t.mac), header, body, &vars);
            append(
                msg,
                &key.name_wire,
                &key.algorithm.wire(),
                t.time,
                FUDGE,
                &m,
                id,
                BADTIME,
                &other,
            );
            return;
        }
    };
    append(
        msg,
        &canonical_wire(&t.key_name),
        &canonical_wire(&t.algorithm),
        now,
        FUDGE,
        &[],
        id,
        code,
        &[],
    );
}

/// Sign a request we send (NOTIFY) with `key` at `now`; returns its MAC,
/// which the answer's MAC must cover.
pub fn sign_request(msg: &mut Vec<u8>, key: &TsigKey, now: u64) -> Vec<u8> {
    let Some((header, body)) = msg.split_first_chunk::<12>() else {
        return Vec::new();
    };
    let vars = variables(key, now, FUDGE, 0, &[], false);
    let m = mac(key, None, header, body, &vars);
    let id = message_id(msg);
    append(
        msg,
        &key.name_wire,
        &key.algorithm.wire(),
        now,
        FUDGE,
        &m,
        id,
        0,
        &[],
    );
    m
}

/// Why the answer to a signed request is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// It carries no TSIG RR.
    #[error("answer is not signed")]
    Unsigned,
    /// Its TSIG RR reports an error (BADKEY, BADSIG, BADTIME...).
    #[error("peer reports TSIG error {0}")]
    Peer(u16),
    /// It is signed with another key, or its MAC does not verify.
    #[error("answer's TSIG does not verify")]
    BadMac,
    /// It does not parse.
    #[error("answer is malformed")]
    Malformed,
}

/// Verify the answer `msg` to a request we signed with `key` (MAC `request_mac`).
pub fn verify_answer(msg: &[u8], key: &TsigKey, request_mac: &[u8]) -> Result<(), AnswerError> {
    let t = find(msg)
        .map_err(|_| AnswerError::Malformed)?
        .ok_or(AnswerError::Unsigned)?;
    if t.error != 0 {
        return Err(AnswerError::Peer(t.error));
    }
    if canonical_wire(&t.key_name) != key.name_wire || t.mac.len() != key.algorithm.mac_len() {
        return Err(AnswerError::BadMac);
    }
    let header = signed_header(msg, &t).map_err(|_| AnswerError::Malformed)?;
    let body = msg.get(12..t.start).ok_or(AnswerError::Malformed)?;
    let vars = variables(key, t.time, t.fudge, t.error, &t.other, false);
    let want = mac(key, Some(request_mac), &header, body, &vars);
    same_mac(&want, &t.mac)
        .then_some(())
        .ok_or(AnswerError::BadMac)
}

/// Verify a later message of a multi-message answer (MAC over the prior
/// MAC, the message and the timers); returns its MAC for the next one.
#[cfg(test)]
pub(crate) fn verify_next(msg: &[u8], key: &TsigKey, prior: &[u8]) -> Result<Vec<u8>, AnswerError> {
    let t = find(msg)
        .map_err(|_| AnswerError::Malformed)?
        .ok_or(AnswerError::Unsigned)?;
    let header = signed_header(msg, &t).map_err(|_| AnswerError::Malformed)?;
    let body = msg.get(12..t.start).ok_or(AnswerError::Malformed)?;
    let vars = variables(key, t.time, t.fudge, 0, &[], true);
    let want = mac(key, Some(prior), &header, body, &vars);
    if !same_mac(&want, &t.mac) {
        return Err(AnswerError::BadMac);
    }
    Ok(t.mac)
}

/// The MAC of a message's TSIG RR (tests follow chains with it).
#[cfg(test)]
pub(crate) fn mac_of(msg: &[u8]) -> Option<Vec<u8>> {
    find(msg).ok().flatten().map(|t| t.mac)
}

/// Unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::RecordType;

    fn key(name: &str, secret: &[u8]) -> TsigKey {
        TsigKey::new(
            &Name::from_ascii(name).unwrap(),
            Algorithm::HmacSha256,
            secret,
        )
    }

    fn request() -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.add_query(Query::query(
            Name::from_ascii("example.test.").unwrap(),
            RecordType::AXFR,
        ));
        m.to_vec().unwrap()
    }

    fn keys(k: TsigKey) -> KeySet {
        let mut s = KeySet::new();
        s.insert(k);
        s
    }

    #[test]
    fn a_signed_request_verifies_and_hickory_reads_the_tsig() {
        let k = key("xfr.", b"0123456789abcdef0123456789abcdef");
        let mut msg = request();
        let now = 1_700_000_000;
        let mac = sign_request(&mut msg, &k, now);
        let parsed = Message::from_vec(&msg).expect("hickory decodes it");
        assert!(parsed.signature.is_some(), "TSIG seen as the signature");
        let t = find(&msg).unwrap().expect("tsig found");
        assert_eq!(t.time, now);
        let v = verify_request(
            &msg,
            t,
            &keys(key("XFR", b"0123456789abcdef0123456789abcdef")),
            now + 10,
        )
        .expect("verifies");
        assert_eq!(v.mac, mac);
    }

    #[test]
    fn wrong_secret_unknown_key_and_old_time_are_told_apart() {
        let k = key("xfr.", b"right secret, right secret......");
        let mut msg = request();
        sign_request(&mut msg, &k, 1000);
        let t = || find(&msg).unwrap().unwrap();
        let other = keys(key("xfr.", b"wrong secret, wrong secret......"));
        assert!(matches!(
            verify_request(&msg, t(), &other, 1000),
            Err(Rejection::BadSig(_))
        ));
        let unknown = keys(key("other.", b"right secret, right secret......"));
        assert!(matches!(
            verify_request(&msg, t(), &unknown, 1000),
            Err(Rejection::BadKey(_))
        ));
        let right = keys(key("xfr.", b"right secret, right secret......"));
        assert!(matches!(
            verify_request(&msg, t(), &right, 1000 + 301),
            Err(Rejection::BadTime(..))
        ));
        assert!(verify_request(&msg, t(), &right, 1000 - 300).is_ok());
        // One flipped bit in the body.
        let mut bad = msg.clone();
        bad[14] ^= 1;
        let tb = find(&bad).unwrap().unwrap();
        assert!(matches!(
            verify_request(&bad, tb, &right, 1000),
            Err(Rejection::BadSig(_))
        ));
    }

    #[test]
    fn response_chain_verifies_as_a_client_would() {
        let k = Arc::new(key("xfr.", b"chain secret chain secret chain!"));
        let mut req = request();
        let req_mac = sign_request(&mut req, &k, 5000);
        let mut signer = ResponseSigner::new(
            Verified {
                key: k.clone(),
                mac: req_mac.clone(),
            },
            5001,
        );
        let mut first = request();
        first[2] |= 0x80;
        signer.sign(&mut first);
        verify_answer(&first, &k, &req_mac).expect("first answer verifies");
        // The second message: prior MAC + message + timers.
        let first_mac = find(&first).unwrap().unwrap().mac;
        let mut second = request();
        second[2] |= 0x80;
        signer.sign(&mut second);
        let t = find(&second).unwrap().unwrap();
        let header = signed_header(&second, &t).unwrap();
        let vars = variables(&k, t.time, t.fudge, 0, &[], true);
        let want = mac(&k, Some(&first_mac), &header, &second[12..t.start], &vars);
        assert_eq!(want, t.mac);
    }

    #[test]
    fn rejections_carry_their_error_codes() {
        let k = key("xfr.", b"right secret, right secret......");
        let mut msg = request();
        sign_request(&mut msg, &k, 1000);
        let t = find(&msg).unwrap().unwrap();
        for (rej, code, signed) in [
            (Rejection::BadKey(Box::new(t.clone())), BADKEY, false),
            (Rejection::BadSig(Box::new(t.clone())), BADSIG, false),
            (
                Rejection::BadTime(Arc::new(k), Box::new(t.clone())),
                BADTIME,
                true,
            ),
        ] {
            let mut out = request();
            sign_rejection(&mut out, &rej, 99_999);
            let got = find(&out).unwrap().unwrap();
            assert_eq!(got.error, code);
            assert_eq!(!got.mac.is_empty(), signed);
            assert!(Message::from_vec(&out).is_ok());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let base = {
            let k = key("xfr.", b"x");
            let mut m = request();
            sign_request(&mut m, &k, 1);
            m
        };
        for cut in 0..base.len() {
            let _ = find(&base[..cut]);
        }
        for i in 0..base.len() {
            let mut m = base.clone();
            m[i] = 0xff;
            if let Ok(Some(t)) = find(&m) {
                let _ = verify_request(&m, t, &keys(key("xfr.", b"x")), 1);
            }
        }
    }
}
