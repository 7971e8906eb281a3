//! DNSSEC: keys, online signing, authenticated denial (NSEC3 or compact
//! denial), DS/CDS. Pure: no IO. The store keeps (encrypted) keys and the
//! published key records; the snapshot builds a [`ZoneSigner`] per signed
//! zone; the server calls [`answer::secure`] for DO=1 queries. Imports only
//! `zone`: the signer is held next to the zone by the server, and key
//! material arrives here already opened (the keyring unseals it).

// Public because other rooms use them: the server secures answers ...
pub mod answer;
mod compact;
// ... `pdm zone export --signed` ...
pub mod export;
// ... the keyring makes keys and DS/DNSKEY records ...
pub mod keys;
mod nsec3;
// ... and the keyring, API and CLI plan rollovers.
pub mod rollover;
mod sign;
// ... and zone transfers keep what they sent.
pub mod signed;

use std::sync::{Arc, OnceLock};

pub use keys::{KeyAlgorithm, KeyRole, ZoneKey};
pub use sign::{KeptSet, SigCache, SignError, SigningPolicy};

use crate::zone::{Zone, ZoneDelta};
use hickory_proto::rr::Name;

/// Whether `a` and `b` are the same name (case-insensitively, as `==`),
/// by whole labels: the answer path compares names that are usually
/// copies of one another, which a label `memcmp` settles, where hickory's
/// `==` folds case a byte at a time (a 32-octet NSEC3 label cost more than
/// copying the record).
pub(crate) fn same_name(a: &Name, b: &Name) -> bool {
    a.is_fqdn() == b.is_fqdn()
        && a.num_labels() == b.num_labels()
        && a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x == y || x.eq_ignore_ascii_case(y))
}

/// How a signed zone proves that names or types do not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenialMode {
    /// NSEC3, RFC 9276 parameters (the default; see docs/dnssec.md for why).
    Nsec3,
    /// Compact denial of existence, RFC 9824 ("black lies").
    Compact,
}

impl DenialMode {
    /// Parses `nsec3` or `compact`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nsec3" => Some(DenialMode::Nsec3),
            "compact" | "compact-denial" | "black-lies" => Some(DenialMode::Compact),
            _ => None,
        }
    }

    /// The lowercase mnemonic.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialMode::Nsec3 => "nsec3",
            DenialMode::Compact => "compact",
        }
    }
}

/// How a zone is signed: what `secure_zone` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningProfile {
    /// Key algorithm.
    pub algorithm: KeyAlgorithm,
    /// Denial of existence.
    pub denial: DenialMode,
    /// KSK + ZSK instead of one CSK.
    pub split_keys: bool,
}

/// The denial machinery of one zone snapshot.
#[derive(Debug)]
enum Denial {
    /// The NSEC3 chain of the zone version the signer was made for: built
    /// with the signer for a large zone, at the first answer or transfer
    /// that needs it for a small one (of a pool's 100k child zones most
    /// never deny a name; their chains were 2 KiB of RSS each and a third
    /// of start-up). Boxed: an unmade chain is a word, not 152 bytes.
    Nsec3(OnceLock<Box<nsec3::Nsec3Chain>>),
    /// NSEC records synthesized per query.
    Compact,
}

/// Zones with more names than this get their NSEC3 chain with their
/// signer: building it later would stall the first denial (a pool of 100k
/// delegations hashes for ~0.1 s). Below it, a chain costs microseconds.
const LAZY_CHAIN_NAMES: usize = 256;

/// The chain of `zone` as [`Denial::Nsec3`] holds it: already built when
/// the zone is large.
fn chain_cell(zone: &Zone, negative_ttl: u32) -> OnceLock<Box<nsec3::Nsec3Chain>> {
    let cell = OnceLock::new();
    if zone.node_count() > LAZY_CHAIN_NAMES {
        let _ = cell.set(Box::new(nsec3::Nsec3Chain::build(zone, negative_ttl)));
    }
    cell
}

/// Everything needed to sign answers from one zone snapshot.
#[derive(Debug)]
pub struct ZoneSigner {
    origin: Name,
    /// The serial of the zone version this signer was made for (what a
    /// lazily built chain is checked against in debug builds).
    serial: u32,
    /// Keys that sign every RRset except the apex key RRsets. (Boxed
    /// slices: a signer per child zone, 100k of them.)
    zone_keys: Box<[Arc<ZoneKey>]>,
    /// Keys that sign DNSKEY, CDS and CDNSKEY.
    key_keys: Box<[Arc<ZoneKey>]>,
    denial: Denial,
    negative_ttl: u32,
    cache: Arc<SigCache>,
    pub(crate) policy: SigningPolicy,
    /// The fingerprint of `zone_keys`, which sign the kept signed sets.
    key_id: u64,
    /// The negative SOA with its RRSIGs, as NXDOMAIN and NODATA answers
    /// carry it: one per zone version, as the signer is.
    negative_soa: sign::SignedCell,
}

impl ZoneSigner {
    /// Builds the signer for `zone`: `zone_keys` sign data, `key_keys` sign the
    /// apex key RRsets (a CSK is in both). A large zone's NSEC3 chain is
    /// computed here, a small one's at its first use.
    pub fn new(
        zone: &Zone,
        zone_keys: Vec<Arc<ZoneKey>>,
        key_keys: Vec<Arc<ZoneKey>>,
        mode: DenialMode,
        cache: Arc<SigCache>,
        policy: SigningPolicy,
    ) -> Self {
        let negative_ttl = zone.negative_ttl();
        let denial = match mode {
            DenialMode::Nsec3 => Denial::Nsec3(chain_cell(zone, negative_ttl)),
            DenialMode::Compact => Denial::Compact,
        };
        Self {
            serial: zone.serial(),
            origin: zone.origin().clone(),
            key_id: sign::key_fingerprint(&zone_keys),
            zone_keys: zone_keys.into(),
            key_keys: key_keys.into(),
            denial,
            negative_ttl,
            cache,
            policy,
            negative_soa: sign::SignedCell::default(),
        }
    }

    /// The signer for `zone`, made from `zone` by [`Zone::apply_tracked`]
    /// with `delta` from the zone this signer was built for: same keys,
    /// cache and policy; the NSEC3 chain follows the changed names only
    /// (compact denial has no chain). `None` when the diff touched the key
    /// RRsets or NSEC3PARAM: build a new signer then (the keys may differ).
    /// Signatures need no care: the cache is keyed by RRset content.
    pub fn apply(&self, zone: &Zone, delta: &ZoneDelta) -> Option<Self> {
        if delta.keys_changed || zone.origin() != &self.origin {
            return None;
        }
        let negative_ttl = zone.negative_ttl();
        let denial = match &self.denial {
            Denial::Nsec3(cell) => Denial::Nsec3(match cell.get() {
                Some(chain) if negative_ttl == self.negative_ttl => {
                    OnceLock::from(Box::new(chain.apply(zone, &delta.names)))
                }
                // Every NSEC3 carries the negative TTL: a new SOA MINIMUM (or
                // SOA TTL) changes them all.
                Some(chain) => OnceLock::from(Box::new(chain.rebuilt(zone, negative_ttl))),
                // Never used: still built at first use (or now, when the
                // change made the zone large).
                None => chain_cell(zone, negative_ttl),
            }),
            Denial::Compact => Denial::Compact,
        };
        Some(Self {
            serial: zone.serial(),
            origin: self.origin.clone(),
            zone_keys: self.zone_keys.clone(),
            key_keys: self.key_keys.clone(),
            denial,
            negative_ttl,
            cache: Arc::clone(&self.cache),
            policy: self.policy,
            key_id: self.key_id,
            negative_soa: sign::SignedCell::default(),
        })
    }

    /// This signer with other keys, sharing the NSEC3 chain (and so its
    /// kept signed sets): what kept sets must not be served across.
    #[cfg(test)]
    pub(crate) fn rekeyed(
        &self,
        zone_keys: Vec<Arc<ZoneKey>>,
        key_keys: Vec<Arc<ZoneKey>>,
    ) -> Self {
        let denial = match &self.denial {
            Denial::Nsec3(cell) => Denial::Nsec3(cell.clone()),
            Denial::Compact => Denial::Compact,
        };
        Self {
            serial: self.serial,
            origin: self.origin.clone(),
            key_id: sign::key_fingerprint(&zone_keys),
            zone_keys: zone_keys.into(),
            key_keys: key_keys.into(),
            denial,
            negative_ttl: self.negative_ttl,
            cache: Arc::clone(&self.cache),
            policy: self.policy,
            negative_soa: sign::SignedCell::default(),
        }
    }

    /// The zone apex (the RRSIG signer name).
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The denial mode.
    pub fn mode(&self) -> DenialMode {
        match self.denial {
            Denial::Nsec3(_) => DenialMode::Nsec3,
            Denial::Compact => DenialMode::Compact,
        }
    }

    /// The NSEC3 chain of `zone`, in NSEC3 mode; `zone` is the version
    /// this signer was made for (the server keeps them as a pair), from
    /// which the chain is built at its first use.
    fn nsec3(&self, zone: &Zone) -> Option<&nsec3::Nsec3Chain> {
        match &self.denial {
            Denial::Nsec3(cell) => Some(cell.get_or_init(|| {
                debug_assert_eq!(
                    zone.serial(),
                    self.serial,
                    "a signer used with another zone version"
                );
                Box::new(nsec3::Nsec3Chain::build(zone, self.negative_ttl))
            })),
            Denial::Compact => None,
        }
    }

    /// Whether the NSEC3 chain has been made (tests of its laziness).
    #[cfg(test)]
    pub(crate) fn chain_made(&self) -> bool {
        matches!(&self.denial, Denial::Nsec3(cell) if cell.get().is_some())
    }

    /// What every signature of this zone shares.
    fn sign_context(&self) -> sign::SignContext<'_> {
        sign::SignContext {
            cache: &self.cache,
            policy: &self.policy,
            signer: &self.origin,
        }
    }

    /// The fingerprint of the keys that sign data RRsets (NSEC3 and SOA
    /// included): what kept signed sets are checked against.
    pub(crate) fn key_id(&self) -> u64 {
        self.key_id
    }

    /// The shared signature cache.
    pub fn cache(&self) -> &SigCache {
        &self.cache
    }

    /// Keys that sign an RRset of `rtype`.
    pub(crate) fn keys_for(&self, rtype: hickory_proto::rr::RecordType) -> &[Arc<ZoneKey>] {
        use hickory_proto::rr::RecordType as T;
        match rtype {
            T::DNSKEY | T::CDS | T::CDNSKEY => &self.key_keys,
            _ => &self.zone_keys,
        }
    }
}
