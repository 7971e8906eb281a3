//! RRset signing (RFC 4034 §3, §6) and the signature cache.
//!
//! Signatures are computed when an RRset is first served and cached by the
//! RRset's content and the signing key, so a zone rebuild that leaves an
//! RRset unchanged keeps its signature. Cached signatures are renewed once
//! less than a quarter of their validity remains.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::dnssec::TBS;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};

use super::keys::ZoneKey;
use crate::image::WireImage;

/// Signature validity policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningPolicy {
    /// Seconds from inception to expiration.
    pub(super) validity: u32,
    /// Inception is this far in the past, for validators with slow clocks.
    pub(super) inception_offset: u32,
    /// Re-sign when less than this many seconds of validity remain.
    refresh: u32,
}

impl Default for SigningPolicy {
    fn default() -> Self {
        // Knot's and PowerDNS's order of magnitude: two weeks, one hour back.
        Self::new(14 * 86_400, 14 * 86_400 / 4)
    }
}

impl SigningPolicy {
    /// Signatures valid `validity` seconds, renewed (in answers, and on
    /// secondaries by a serial bump) when less than `refresh` remain. The
    /// inception lies an hour back (an eighth of the validity when that is
    /// shorter).
    pub fn new(validity: u32, refresh: u32) -> Self {
        let validity = validity.max(60);
        Self {
            validity,
            inception_offset: (validity / 8).min(3_600),
            refresh: refresh.min(validity / 2),
        }
    }

    /// Re-sign when less than this many seconds of validity remain.
    pub fn refresh_margin(&self) -> u32 {
        self.refresh
    }

    /// Inceptions are rounded down to this many seconds, so concurrent
    /// signers of one RRset make the same validity window: an hour, or a
    /// sixteenth of a shorter validity.
    fn rounding(&self) -> u32 {
        (self.validity / 16).clamp(1, 3_600)
    }
}

/// What identifies a signature: signer, owner as signed, type, TTL, rdata, key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SigKey {
    signer: Name,
    owner: Name,
    rtype: RecordType,
    ttl: u32,
    rdata: Vec<RData>,
    key_tag: u16,
    algorithm: u8,
}

/// The borrowed form of [`SigKey`] for look-ups: hashes the same (see
/// [`sig_hash`]), so a cache hit costs no allocation, not even of the rdata
/// list when the caller holds records.
struct SigKeyRef<'a> {
    signer: &'a Name,
    owner: &'a Name,
    rtype: RecordType,
    ttl: u32,
    rdata: RdataView<'a>,
    key_tag: u16,
    algorithm: u8,
}

/// The rdata of an RRset, as a list or inside its records.
#[derive(Clone, Copy)]
enum RdataView<'a> {
    Data(&'a [RData]),
    Records(&'a [Record]),
}

impl<'a> RdataView<'a> {
    fn len(self) -> usize {
        match self {
            RdataView::Data(d) => d.len(),
            RdataView::Records(r) => r.len(),
        }
    }

    fn iter(self) -> impl Iterator<Item = &'a RData> {
        let (data, records) = match self {
            RdataView::Data(d) => (d, &[][..]),
            RdataView::Records(r) => (&[][..], r),
        };
        data.iter().chain(records.iter().map(|r| &r.data))
    }
}

/// The hash of a signature's identity. Deliberately partial: the owner
/// (case-folded, a label per write), type, TTL, key and rdata count. The
/// signer and the rdata are left to the equality check: RRsets that share
/// all of these are a handful at most (an RRset's old and new contents),
/// while hickory's `Hash` for names and rdata feeds the hasher a byte at a
/// time and made each look-up cost more than the rest of a signed answer.
fn sig_hash<H: Hasher>(
    state: &mut H,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
    rdata_len: usize,
    key_tag: u16,
    algorithm: u8,
) {
    let mut buf = [0u8; 64];
    for label in owner.iter() {
        let n = label.len().min(63);
        buf[0] = n as u8;
        for (d, s) in buf[1..].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        state.write(&buf[..=n]);
    }
    state.write_u16(u16::from(rtype));
    state.write_u32(ttl);
    state.write_usize(rdata_len);
    state.write_u16(key_tag);
    state.write_u8(algorithm);
}

impl Hash for SigKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (owner, rtype, ttl) = (&self.owner, self.rtype, self.ttl);
        sig_hash(
            state,
            owner,
            rtype,
            ttl,
            self.rdata.len(),
            self.key_tag,
            self.algorithm,
        );
    }
}

impl Hash for SigKeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (owner, rtype, ttl) = (self.owner, self.rtype, self.ttl);
        sig_hash(
            state,
            owner,
            rtype,
            ttl,
            self.rdata.len(),
            self.key_tag,
            self.algorithm,
        );
    }
}

impl quick_cache::Equivalent<SigKey> for SigKeyRef<'_> {
    fn equivalent(&self, k: &SigKey) -> bool {
        self.key_tag == k.key_tag
            && self.rtype == k.rtype
            && self.ttl == k.ttl
            && self.algorithm == k.algorithm
            && *self.owner == k.owner
            && *self.signer == k.signer
            && self.rdata.len() == k.rdata.len()
            && self.rdata.iter().eq(k.rdata.iter())
    }
}

#[derive(Debug)]
struct CachedSig {
    expiration: u32,
    rrsig: RRSIG,
}

/// A bounded, process-wide cache of RRSIGs shared by every zone.
pub struct SigCache {
    inner: quick_cache::sync::Cache<SigKey, Arc<CachedSig>>,
    signed: std::sync::atomic::AtomicU64,
    hits: StripedCounter,
}

/// A counter striped over cache lines by thread: signature-cache hits
/// happen several times per signed answer on every core, and one shared
/// atomic would bounce its cache line between them.
struct StripedCounter([PaddedCounter; STRIPES]);

const STRIPES: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct PaddedCounter(std::sync::atomic::AtomicU64);

impl StripedCounter {
    fn new() -> Self {
        StripedCounter(std::array::from_fn(|_| PaddedCounter::default()))
    }

    #[inline]
    fn inc(&self) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
        }
        let stripe = STRIPE.with(|s| *s);
        if let Some(c) = self.0.get(stripe) {
            c.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sum(&self) -> u64 {
        self.0
            .iter()
            .map(|c| c.0.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }
}

impl std::fmt::Debug for SigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigCache")
            .field("len", &self.inner.len())
            .finish()
    }
}

impl SigCache {
    /// A cache holding at most `capacity` signatures.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: quick_cache::sync::Cache::new(capacity.max(16)),
            signed: std::sync::atomic::AtomicU64::new(0),
            hits: StripedCounter::new(),
        }
    }

    /// How many signatures were computed (cache misses), for metrics and tests.
    pub fn signatures_computed(&self) -> u64 {
        self.signed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many signatures were served from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.sum()
    }

    /// Signatures currently cached.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Why an RRset could not be signed (the server answers SERVFAIL).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign {owner} {rtype}: {reason}")]
pub struct SignError {
    owner: String,
    rtype: String,
    reason: String,
}

/// What every signature of one zone shares: the cache, the validity policy
/// and the signer name (the zone apex).
#[derive(Debug, Clone, Copy)]
pub(super) struct SignContext<'a> {
    /// The signature cache.
    pub cache: &'a SigCache,
    /// Validity policy.
    pub policy: &'a SigningPolicy,
    /// The signer name (zone apex).
    pub signer: &'a Name,
}

/// Signs one RRset with `key` at time `now` (unix seconds), through the cache.
///
/// `owner` is the name as signed (lower-cased; `*.ce` for wildcard
/// expansions), `rdata` the RRset's data.
pub(super) fn sign_rrset(
    ctx: SignContext<'_>,
    key: &ZoneKey,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
    rdata: &[RData],
    now: u32,
) -> Result<RRSIG, SignError> {
    match cached(ctx, key, owner, rtype, ttl, RdataView::Data(rdata), now) {
        Some(hit) => Ok(hit),
        None => sign_fresh(ctx, key, owner, rtype, ttl, rdata, now),
    }
}

/// [`sign_rrset`] for an RRset held as records (the answer path): a cache
/// hit copies nothing.
pub(super) fn sign_records(
    ctx: SignContext<'_>,
    key: &ZoneKey,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
    records: &[Record],
    now: u32,
) -> Result<RRSIG, SignError> {
    match cached(
        ctx,
        key,
        owner,
        rtype,
        ttl,
        RdataView::Records(records),
        now,
    ) {
        Some(hit) => Ok(hit),
        None => {
            let rdata: Vec<RData> = records.iter().map(|r| r.data.clone()).collect();
            sign_fresh(ctx, key, owner, rtype, ttl, &rdata, now)
        }
    }
}

/// A cached signature that is not yet due for renewal.
fn cached(
    ctx: SignContext<'_>,
    key: &ZoneKey,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
    rdata: RdataView<'_>,
    now: u32,
) -> Option<RRSIG> {
    let probe = SigKeyRef {
        signer: ctx.signer,
        owner,
        rtype,
        ttl,
        rdata,
        key_tag: key.tag(),
        algorithm: key.algorithm().number(),
    };
    let hit = ctx.cache.inner.get(&probe)?;
    let fresh = hit.expiration.wrapping_sub(now) as i32 > ctx.policy.refresh_margin() as i32;
    if fresh {
        ctx.cache.hits.inc();
    }
    fresh.then(|| hit.rrsig.clone())
}

/// Sign (cache miss or renewal) and remember the signature.
fn sign_fresh(
    ctx: SignContext<'_>,
    key: &ZoneKey,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
    rdata: &[RData],
    now: u32,
) -> Result<RRSIG, SignError> {
    let SignContext {
        cache,
        policy,
        signer,
    } = ctx;
    // Miss (or due for renewal): sign the canonical, lower-cased form.
    let owner = owner.to_lowercase();
    let key_id = SigKey {
        signer: signer.clone(),
        owner: owner.clone(),
        rtype,
        ttl,
        rdata: rdata.to_vec(),
        key_tag: key.tag(),
        algorithm: key.algorithm().number(),
    };
    let err = |reason: String| SignError {
        owner: owner.to_string(),
        rtype: rtype.to_string(),
        reason,
    };
    // Round inception down to the hour so concurrent signers of the same
    // RRset produce the same validity window.
    let step = policy.rounding();
    let inception = (now.saturating_sub(policy.inception_offset)) / step * step;
    let expiration = inception.wrapping_add(policy.validity);
    let input = SigInput {
        type_covered: rtype,
        algorithm: key.algorithm().hickory(),
        num_labels: owner.num_labels(),
        original_ttl: ttl,
        sig_expiration: SerialNumber::new(expiration),
        sig_inception: SerialNumber::new(inception),
        key_tag: key.tag(),
        signer_name: signer.clone(),
    };
    let records: Vec<Record> = rdata
        .iter()
        .map(|d| Record::from_rdata(owner.clone(), ttl, d.clone()))
        .collect();
    let tbs = TBS::from_input(&owner, DNSClass::IN, &input, records.iter())
        .map_err(|e| err(e.to_string()))?;
    let sig = key.sign(&tbs).map_err(err)?;
    let rrsig = RRSIG::from_sig(input, sig);
    cache
        .signed
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cache.inner.insert(
        key_id,
        Arc::new(CachedSig {
            expiration,
            rrsig: rrsig.clone(),
        }),
    );
    Ok(rrsig)
}

/// An RRset with its RRSIGs, signed once and then copied into answers
/// as is (the NSEC3 proofs and the negative SOA of NXDOMAIN answers).
#[derive(Debug)]
pub(super) struct SignedSet {
    /// The RRset's records, then its RRSIGs.
    records: Box<[Record]>,
    /// The fingerprint of the keys that made the RRSIGs (see
    /// [`key_fingerprint`]): other keys, other signatures.
    keys: u64,
    /// The earliest expiration among the RRSIGs.
    expiration: u32,
    /// The records' wire image, made by the first answer that copies
    /// them as one (`None` inside: they have none).
    image: OnceLock<Option<WireImage>>,
}

impl SignedSet {
    /// Whether answers at `now` may still carry this set: made by the
    /// keys `keys`, and with more than the refresh margin of validity
    /// left (the test [`cached`] applies to the signature cache).
    fn fresh(&self, keys: u64, policy: &SigningPolicy, now: u32) -> bool {
        self.keys == keys
            && self.expiration.wrapping_sub(now) as i32 > policy.refresh_margin() as i32
    }
}

/// A lazily signed RRset shared by every answer that carries it: made at
/// the first answer, then copied; made again (through the signature cache)
/// when the signing keys changed or the RRSIGs near expiry. Lock-free for
/// readers: an `ArcSwap` load takes no shared write, so cores answering
/// from one cell do not bounce a reference count between them.
#[derive(Default)]
pub(super) struct SignedCell(arc_swap::ArcSwapOption<SignedSet>);

impl std::fmt::Debug for SignedCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SignedCell")
            .field(&self.0.load().is_some())
            .finish()
    }
}

impl SignedCell {
    /// Appends the kept signed set to `out` when `usable` accepts it and it
    /// is fresh for `keys` at `now`; otherwise appends (and keeps) what
    /// `make` returns: the records, then their RRSIGs.
    pub fn extend_into(
        &self,
        out: &mut Vec<Record>,
        keys: u64,
        policy: &SigningPolicy,
        now: u32,
        usable: impl FnOnce(&[Record]) -> bool,
        make: impl FnOnce() -> Result<Vec<Record>, SignError>,
    ) -> Result<(), SignError> {
        {
            let kept = self.0.load();
            if let Some(set) = kept.as_deref() {
                if set.fresh(keys, policy, now) && usable(&set.records) {
                    out.extend_from_slice(&set.records);
                    return Ok(());
                }
            }
        }
        let records = make()?;
        out.extend_from_slice(&records);
        self.keep(records, keys, now);
        Ok(())
    }

    /// The kept signed set, as [`SignedCell::extend_into`] would copy it
    /// (made and kept first when it must be). `None` when what `make`
    /// returns has no RRSIGs, so is not kept.
    pub fn kept(
        &self,
        keys: u64,
        policy: &SigningPolicy,
        now: u32,
        usable: impl FnOnce(&[Record]) -> bool,
        make: impl FnOnce() -> Result<Vec<Record>, SignError>,
    ) -> Result<Option<KeptSet>, SignError> {
        let kept = self.0.load_full();
        if let Some(set) = kept.filter(|s| s.fresh(keys, policy, now) && usable(&s.records)) {
            return Ok(Some(KeptSet(set)));
        }
        Ok(self.keep(make()?, keys, now).map(KeptSet))
    }

    /// Keeps `records` (a set, then its RRSIGs) made by `keys` at `now`,
    /// unless they have no RRSIGs.
    fn keep(&self, records: Vec<Record>, keys: u64, now: u32) -> Option<Arc<SignedSet>> {
        let expiration = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig.input().sig_expiration.get()),
                _ => None,
            })
            // Soonest first in serial order (RFC 1982), as [`cached`] compares.
            .min_by_key(|e| e.wrapping_sub(now) as i32);
        // Without RRSIGs (no keys) nothing is kept: every answer makes it.
        let set = Arc::new(SignedSet {
            records: records.into_boxed_slice(),
            keys,
            expiration: expiration?,
            image: OnceLock::new(),
        });
        self.0.store(Some(Arc::clone(&set)));
        Some(set)
    }

    /// A copy of the kept set's first record (the RRset's, unsigned).
    pub fn first(&self) -> Option<Record> {
        self.0.load().as_deref()?.records.first().cloned()
    }
}

/// A kept signed set held by an answer that copies it as a wire image
/// (see [`crate::image`]).
#[derive(Debug, Clone)]
pub struct KeptSet(Arc<SignedSet>);

impl KeptSet {
    /// The set's wire image, made by `render` the first time it is asked
    /// for (`None`: `render` could not make one).
    pub fn image(&self, render: impl FnOnce(&[Record]) -> Option<WireImage>) -> Option<&WireImage> {
        self.0
            .image
            .get_or_init(|| render(&self.0.records))
            .as_ref()
    }

    /// The image [`KeptSet::image`] made, if it made one.
    pub fn made_image(&self) -> Option<&WireImage> {
        self.0.image.get()?.as_ref()
    }
}

/// A fingerprint of a signing key list: tags, algorithms and public keys,
/// in order. Kept signed sets carry the one of the keys that made them, so
/// a set made by other keys (a rollover) is never served.
pub(super) fn key_fingerprint(keys: &[Arc<ZoneKey>]) -> u64 {
    use std::collections::hash_map::DefaultHasher;
    // SipHash with fixed keys: the same keys give the same fingerprint in
    // every signer of the process.
    let mut h = DefaultHasher::new();
    for k in keys {
        k.tag().hash(&mut h);
        k.algorithm().number().hash(&mut h);
        k.public_bytes().hash(&mut h);
    }
    h.finish()
}

/// Wraps an RRSIG rdata into a record owned by `owner` with `ttl`.
pub(super) fn rrsig_record(owner: &Name, ttl: u32, rrsig: RRSIG) -> Record {
    Record::from_rdata(owner.clone(), ttl, RData::DNSSEC(DNSSECRData::RRSIG(rrsig)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::keys::{generate, KeyAlgorithm, KeyRole};
    use hickory_proto::dnssec::PublicKey;
    use hickory_proto::rr::rdata::A;

    fn verify(key: &ZoneKey, owner: &Name, rdata: &[RData], ttl: u32, rrsig: &RRSIG) {
        let records: Vec<Record> = rdata
            .iter()
            .map(|d| Record::from_rdata(owner.clone(), ttl, d.clone()))
            .collect();
        let tbs = TBS::from_input(owner, DNSClass::IN, rrsig.input(), records.iter()).unwrap();
        key.dnskey()
            .public_key()
            .verify(tbs.as_ref(), rrsig.sig())
            .expect("signature verifies with the published DNSKEY");
    }

    #[test]
    fn signs_verifies_and_caches() {
        let cache = SigCache::new(100);
        let policy = SigningPolicy::default();
        let apex = Name::from_ascii("example.test.").unwrap();
        let ctx = SignContext {
            cache: &cache,
            policy: &policy,
            signer: &apex,
        };
        for alg in [KeyAlgorithm::Ecdsap256sha256, KeyAlgorithm::Ed25519] {
            let key = ZoneKey::from_pkcs8(alg, KeyRole::Csk, &generate(alg).unwrap()).unwrap();
            let owner = Name::from_ascii("WWW.example.test.").unwrap();
            let rdata = vec![
                RData::A(A::new(192, 0, 2, 2)),
                RData::A(A::new(192, 0, 2, 1)),
            ];
            let now = 1_800_000_000;
            let s1 = sign_rrset(ctx, &key, &owner, RecordType::A, 300, &rdata, now).unwrap();
            verify(&key, &owner.to_lowercase(), &rdata, 300, &s1);
            assert_eq!(s1.input().num_labels, 3);
            assert!(s1.input().sig_inception.get() <= now - 3600);
            let before = cache.signatures_computed();
            let hits = cache.hits();
            let s2 = sign_rrset(ctx, &key, &owner, RecordType::A, 300, &rdata, now + 10).unwrap();
            assert_eq!(s1, s2, "cache hit");
            assert_eq!(cache.signatures_computed(), before);
            assert!(cache.hits() > hits, "the hit is counted");
            // The same RRset held as records (the answer path) finds it too.
            let records: Vec<Record> = rdata
                .iter()
                .map(|d| Record::from_rdata(owner.clone(), 300, d.clone()))
                .collect();
            let s2r = sign_records(ctx, &key, &owner, RecordType::A, 300, &records, now + 20);
            assert_eq!(s2r.unwrap(), s1, "cache hit through records");
            assert_eq!(cache.signatures_computed(), before);
            // Past three quarters of the validity: re-signed.
            let later = now + policy.validity - policy.refresh_margin() + 3600;
            let s3 = sign_rrset(ctx, &key, &owner, RecordType::A, 300, &rdata, later).unwrap();
            assert!(s3.input().sig_expiration.get() > s1.input().sig_expiration.get());
            verify(&key, &owner.to_lowercase(), &rdata, 300, &s3);
        }
    }

    /// RFC 8080 §6.1 example RRset (example.com. MX 10 mail.example.com.,
    /// inception 1438207200, expiration 1440021600): Ed25519 is deterministic,
    /// so the whole canonical form and signing path must give the RFC's bytes.
    #[test]
    fn rfc8080_ed25519_signature_is_reproduced() {
        use hickory_proto::rr::rdata::MX;
        let key = crate::dnssec::keys::tests::rfc8080_key();
        let owner = Name::from_ascii("example.com.").unwrap();
        let rdata = [RData::MX(MX::new(
            10,
            Name::from_ascii("mail.example.com.").unwrap(),
        ))];
        let input = SigInput {
            type_covered: RecordType::MX,
            algorithm: key.algorithm().hickory(),
            num_labels: 2,
            original_ttl: 3600,
            sig_expiration: SerialNumber::new(1_440_021_600),
            sig_inception: SerialNumber::new(1_438_207_200),
            key_tag: key.tag(),
            signer_name: owner.clone(),
        };
        let records: Vec<Record> = rdata
            .iter()
            .map(|d| Record::from_rdata(owner.clone(), 3600, d.clone()))
            .collect();
        let tbs = TBS::from_input(&owner, DNSClass::IN, &input, records.iter()).unwrap();
        let sig = key.sign(&tbs).unwrap();
        assert_eq!(
            data_encoding::BASE64.encode(&sig),
            "oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg=="
        );
    }

    /// RFC 4034 §6.1: the canonical name order of the RFC's example list.
    #[test]
    fn canonical_name_order_matches_rfc4034() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let raw = |b: u8| {
            n("z.example.")
                .prepend_label(hickory_proto::rr::domain::Label::from_raw_bytes(&[b]).unwrap())
                .unwrap()
        };
        let names = vec![
            n("example."),
            n("a.example."),
            n("yljkjljk.a.example."),
            n("Z.a.example."),
            n("zABC.a.EXAMPLE."),
            n("z.example."),
            raw(0o001),
            n("*.z.example."),
            raw(0o200),
        ];
        let mut sorted = names.clone();
        sorted.reverse();
        sorted.sort();
        assert_eq!(sorted, names);
    }

    fn tbs_bytes(owner: &str, rtype: RecordType, rdata: &[RData]) -> Vec<u8> {
        let owner = Name::from_ascii(owner).unwrap();
        let input = SigInput {
            type_covered: rtype,
            algorithm: hickory_proto::dnssec::Algorithm::ECDSAP256SHA256,
            num_labels: owner.num_labels(),
            original_ttl: 300,
            sig_expiration: SerialNumber::new(2),
            sig_inception: SerialNumber::new(1),
            key_tag: 1,
            signer_name: Name::from_ascii("example.").unwrap(),
        };
        let records: Vec<Record> = rdata
            .iter()
            .map(|d| Record::from_rdata(owner.clone(), 300, d.clone()))
            .collect();
        TBS::from_input(&owner, DNSClass::IN, &input, records.iter())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    /// RFC 4034 §6.2–6.3: the signed form of an RRset is independent of record
    /// order and of the case of the owner and of names inside RDATA.
    #[test]
    fn rrset_canonical_form() {
        use hickory_proto::rr::rdata::{CNAME, NS};
        let a1 = RData::A(A::new(192, 0, 2, 1));
        let a2 = RData::A(A::new(192, 0, 2, 2));
        assert_eq!(
            tbs_bytes("www.example.", RecordType::A, &[a2.clone(), a1.clone()]),
            tbs_bytes("WWW.Example.", RecordType::A, &[a1, a2])
        );
        let up = RData::NS(NS(Name::from_ascii("NS1.Example.").unwrap()));
        let low = RData::NS(NS(Name::from_ascii("ns1.example.").unwrap()));
        assert_eq!(
            tbs_bytes("example.", RecordType::NS, &[up]),
            tbs_bytes("example.", RecordType::NS, &[low])
        );
        let c = |t: &str| RData::CNAME(CNAME(Name::from_ascii(t).unwrap()));
        assert_ne!(
            tbs_bytes("a.example.", RecordType::CNAME, &[c("x.example.")]),
            tbs_bytes("a.example.", RecordType::CNAME, &[c("y.example.")]),
            "different data, different signed form"
        );
    }

    #[test]
    fn wildcard_owner_has_fewer_labels() {
        let cache = SigCache::new(100);
        let apex = Name::from_ascii("example.test.").unwrap();
        let alg = KeyAlgorithm::Ecdsap256sha256;
        let key = ZoneKey::from_pkcs8(alg, KeyRole::Zsk, &generate(alg).unwrap()).unwrap();
        let owner = Name::from_ascii("*.w.example.test.").unwrap();
        let rdata = vec![RData::A(A::new(192, 0, 2, 9))];
        let s = sign_rrset(
            SignContext {
                cache: &cache,
                policy: &SigningPolicy::default(),
                signer: &apex,
            },
            &key,
            &owner,
            RecordType::A,
            60,
            &rdata,
            1_800_000_000,
        )
        .unwrap();
        assert_eq!(s.input().num_labels, 3);
    }
}
