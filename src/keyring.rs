//! DNSSEC key lifecycle against the store: creating a zone's keys, publishing
//! the apex key RRsets (DNSKEY, CDS, CDNSKEY, NSEC3PARAM), the DS its parent
//! must hold, and opening the private keys for the snapshot's signers.
//!
//! The pure parts (key generation, DS digests, signing) live in `dnssec/`;
//! this module is the IO edge that applies them inside store transactions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, NSEC3PARAM};
use hickory_proto::dnssec::{DigestType, Nsec3HashAlgorithm};
use hickory_proto::rr::{Name, RData, Record};
use sqlx::AnyConnection;

use crate::config::{Config, DnssecConfig};
use crate::dnssec::keys::{apex_key_records, ds_for, generate_key};
use crate::dnssec::{
    DenialMode, KeyAlgorithm, KeyRole, SigCache, SigningPolicy, SigningProfile, ZoneKey, ZoneSigner,
};
use crate::secret::SecretBox;
use crate::store::keys::{self, KeyRow, NewKey};
use crate::store::zones::{self, StoredRecord};
use crate::store::{now_ms, Store, StoreError};
use crate::zone::Zone;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored private key cannot be decrypted with the configured secret key.
    #[error("zone {zone}: cannot decrypt DNSSEC key {tag} (wrong PDM_SECRET_KEY?)")]
    Decrypt {
        /// The zone.
        zone: String,
        /// Its key tag.
        tag: u16,
    },
    /// Key material or a key record is unusable.
    #[error("zone {zone}: {detail}")]
    Key {
        /// The zone.
        zone: String,
        /// What is wrong.
        detail: String,
    },
}

/// The zone's published key material, for `pdm key ds` and the API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    /// Key tag.
    pub key_tag: u16,
    /// `csk` | `ksk` | `zsk`.
    pub role: String,
    /// Algorithm number.
    pub algorithm: u8,
    /// Lifecycle state.
    pub state: String,
    /// Whether the parent should hold its DS.
    pub in_parent: bool,
    /// DNSKEY RR in presentation form.
    pub dnskey: String,
    /// DS RRs (SHA-256, SHA-384) in presentation form, for SEP keys.
    pub ds: Vec<String>,
}

/// Creates, publishes and opens DNSSEC keys.
pub struct Keyring {
    secret: Arc<SecretBox>,
    config: DnssecConfig,
    cache: Arc<SigCache>,
    policy: SigningPolicy,
    /// Opened keys by row id: decrypting once per key, not per zone reload.
    opened: Mutex<OpenedKeys>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn sealed_context(zone: &str, dnskey: &str) -> String {
    format!("pdm dnssec key\0{zone}\0{dnskey}")
}

/// Keys opened, by row id, for as long as a served zone's signer holds
/// them: a zone reloaded (or rebuilt by a diff) reuses its keys without
/// decrypting them again, and a deleted zone's keys go with its signer.
/// (Holding them strongly kept every key ever opened: a pool that commits
/// and releases children grew by every child's keys.)
#[derive(Default)]
struct OpenedKeys {
    by_id: HashMap<i64, Weak<ZoneKey>>,
    /// Entries after the last sweep of dead ones: the next sweep runs when
    /// the map has doubled, so sweeping costs O(1) per insert.
    swept_at: usize,
}

impl OpenedKeys {
    /// The key of `row` while some signer still holds it (key row ids are
    /// never reused: AUTOINCREMENT on SQLite, a sequence on Postgres, and
    /// only committed rows are opened).
    fn get(&self, row: &KeyRow) -> Option<Arc<ZoneKey>> {
        self.by_id.get(&row.id)?.upgrade()
    }

    fn insert(&mut self, row: &KeyRow, key: &Arc<ZoneKey>) {
        self.by_id.insert(row.id, Arc::downgrade(key));
        if self.by_id.len() > 2 * self.swept_at.max(1024) {
            self.by_id.retain(|_, k| k.strong_count() > 0);
            self.swept_at = self.by_id.len();
        }
    }
}

/// One key generated and sealed, not stored yet.
struct FreshKey {
    role: KeyRole,
    algorithm: KeyAlgorithm,
    in_parent: bool,
    tag: u16,
    dnskey: DNSKEY,
    /// The DNSKEY rdata as stored.
    text: String,
    /// The sealed PKCS#8 private key, hex.
    sealed: String,
}

/// The keys of a zone about to be created ([`Keyring::fresh_keys`]).
pub struct FreshKeys {
    zone: String,
    denial: DenialMode,
    keys: Vec<FreshKey>,
}

impl FreshKeys {
    /// The keys whose DS the parent holds (KSK or CSK).
    fn sep(&self) -> Vec<&DNSKEY> {
        self.keys
            .iter()
            .filter(|k| k.in_parent && k.role != KeyRole::Zsk)
            .map(|k| &k.dnskey)
            .collect()
    }
}

impl std::fmt::Debug for FreshKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the sealed private keys.
        f.debug_struct("FreshKeys")
            .field("zone", &self.zone)
            .field("tags", &self.keys.iter().map(|k| k.tag).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Sets the apex key RRsets of `zone` to `records` (no-op when current).
async fn write_key_records(
    conn: &mut AnyConnection,
    zone: &str,
    records: &[StoredRecord],
    actor: &str,
) -> Result<(), KeyringError> {
    zones::set_rrsets_of(
        conn,
        zone,
        zone,
        &["DNSKEY", "CDS", "CDNSKEY", "NSEC3PARAM"],
        records,
        actor,
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("zone {zone} vanished")))?;
    Ok(())
}

/// Stores one generated key of `zone` in `state`.
async fn store_key(
    conn: &mut AnyConnection,
    zone: &str,
    key: &FreshKey,
    state: &str,
) -> Result<i64, KeyringError> {
    Ok(keys::insert_key(
        conn,
        &NewKey {
            zone,
            role: key.role.as_str(),
            algorithm: key.algorithm.number(),
            key_tag: key.tag,
            dnskey: &key.text,
            private_key: &key.sealed,
            state,
            in_parent: key.in_parent,
        },
    )
    .await?)
}

/// Parses a stored DNSKEY presentation rdata.
pub fn parse_dnskey(text: &str) -> Option<DNSKEY> {
    let stored = StoredRecord {
        name: ".".into(),
        rtype: "DNSKEY".into(),
        ttl: 0,
        rdata: text.to_string(),
    };
    match stored.to_record().ok()?.data {
        RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k),
        _ => None,
    }
}

fn origin_of(zone: &str) -> Result<Name, KeyringError> {
    Name::from_ascii(zone).map_err(|e| KeyringError::Key {
        zone: zone.to_string(),
        detail: format!("bad zone name: {e}"),
    })
}

impl Keyring {
    /// A keyring sealing with `secret`, creating keys per `config`.
    pub fn new(secret: Arc<SecretBox>, config: DnssecConfig) -> Self {
        let policy = config.signing_policy();
        Self {
            secret,
            cache: Arc::new(SigCache::new(config.signature_cache)),
            config,
            policy,
            opened: Mutex::new(OpenedKeys::default()),
        }
    }

    /// The signing settings.
    pub fn config(&self) -> &DnssecConfig {
        &self.config
    }

    /// The process-wide signature cache.
    pub fn cache(&self) -> &Arc<SigCache> {
        &self.cache
    }

    /// Generates one key for `zone` and stores it (sealed) in `state`.
    pub async fn create_key(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        role: KeyRole,
        algorithm: KeyAlgorithm,
        state: &str,
        in_parent: bool,
    ) -> Result<i64, KeyringError> {
        let key = self.generate(zone, role, algorithm, in_parent)?;
        store_key(conn, zone, &key, state).await
    }

    /// One key for `zone`, generated and sealed, not stored yet.
    fn generate(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: KeyAlgorithm,
        in_parent: bool,
    ) -> Result<FreshKey, KeyringError> {
        let kerr = |detail: String| KeyringError::Key {
            zone: zone.to_string(),
            detail,
        };
        let (pkcs8, key) = generate_key(algorithm, role).map_err(|e| kerr(e.to_string()))?;
        let text = zones::storage_text(&RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey().clone())));
        let sealed = self
            .secret
            .seal(&sealed_context(zone, &text), &pkcs8)
            .map_err(|e| kerr(e.to_string()))?;
        Ok(FreshKey {
            role,
            algorithm,
            in_parent,
            tag: key.tag(),
            dnskey: key.dnskey().clone(),
            text,
            sealed: hex::encode(sealed),
        })
    }

    /// The keys [`Keyring::secure_zone`] would give `zone` (a CSK, or a KSK
    /// and a ZSK), generated and sealed but not stored: a zone created with
    /// their records ([`Keyring::fresh_key_records`]) and then the keys
    /// ([`Keyring::store_fresh_keys`]) is one journal entry, not two.
    pub fn fresh_keys(
        &self,
        zone: &str,
        profile: SigningProfile,
    ) -> Result<FreshKeys, KeyringError> {
        let alg = profile.algorithm;
        let keys = if profile.split_keys {
            vec![
                self.generate(zone, KeyRole::Ksk, alg, true)?,
                self.generate(zone, KeyRole::Zsk, alg, false)?,
            ]
        } else {
            vec![self.generate(zone, KeyRole::Csk, alg, true)?]
        };
        Ok(FreshKeys {
            zone: zone.to_string(),
            denial: profile.denial,
            keys,
        })
    }

    /// The apex DNSKEY, CDS, CDNSKEY (and NSEC3PARAM) records of fresh keys:
    /// exactly what [`Keyring::publish`] writes once they are stored.
    pub fn fresh_key_records(&self, fresh: &FreshKeys) -> Result<Vec<StoredRecord>, KeyringError> {
        let published: Vec<&DNSKEY> = fresh.keys.iter().map(|k| &k.dnskey).collect();
        self.key_records(
            &fresh.zone,
            &published,
            &fresh.sep(),
            Some(fresh.denial.as_str()),
        )
    }

    /// Stores fresh keys (active) of the zone created with their records in
    /// this transaction and marks it signed. Returns the DS records the
    /// parent must hold.
    pub async fn store_fresh_keys(
        &self,
        conn: &mut AnyConnection,
        fresh: &FreshKeys,
    ) -> Result<Vec<StoredRecord>, KeyringError> {
        for k in &fresh.keys {
            store_key(conn, &fresh.zone, k, "active").await?;
        }
        keys::set_zone_dnssec(conn, &fresh.zone, Some(fresh.denial.as_str())).await?;
        self.ds_records(&fresh.zone, &fresh.sep())
    }

    /// Signs `zone` (which must exist and have no keys): creates a CSK (or
    /// KSK + ZSK), marks the zone signed with `denial`, publishes the apex
    /// key records. Returns the DS records the parent must hold.
    pub async fn secure_zone(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        profile: SigningProfile,
        actor: &str,
    ) -> Result<Vec<StoredRecord>, KeyringError> {
        let fresh = self.fresh_keys(zone, profile)?;
        let ds = self.store_fresh_keys(conn, &fresh).await?;
        // What publish would read back from the rows just stored.
        let records = self.fresh_key_records(&fresh)?;
        write_key_records(conn, zone, &records, actor).await?;
        Ok(ds)
    }

    /// Rewrites the apex DNSKEY, CDS, CDNSKEY and NSEC3PARAM RRsets of `zone`
    /// from its key rows and denial mode (no-op when already current).
    pub async fn publish(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        actor: &str,
    ) -> Result<(), KeyringError> {
        let rows = keys::zone_keys(conn, zone).await?;
        let mode = keys::zone_dnssec(conn, zone).await?;
        let mut published: Vec<DNSKEY> = Vec::new();
        let mut sep: Vec<DNSKEY> = Vec::new();
        for r in &rows {
            let k = parse_dnskey(&r.dnskey).ok_or_else(|| KeyringError::Key {
                zone: zone.to_string(),
                detail: format!("stored DNSKEY {} does not parse", r.key_tag),
            })?;
            if matches!(r.state.as_str(), "published" | "active" | "retired") {
                published.push(k.clone());
            }
            if r.in_parent && r.role != "zsk" {
                sep.push(k);
            }
        }
        let pub_refs: Vec<&DNSKEY> = published.iter().collect();
        let sep_refs: Vec<&DNSKEY> = sep.iter().collect();
        let stored = self.key_records(zone, &pub_refs, &sep_refs, mode.as_deref())?;
        write_key_records(conn, zone, &stored, actor).await
    }

    /// The DS records (SHA-256) the parent must hold for `zone`.
    pub async fn parent_ds(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
    ) -> Result<Vec<StoredRecord>, KeyringError> {
        let rows = keys::zone_keys(conn, zone).await?;
        let sep: Vec<DNSKEY> = rows
            .iter()
            .filter(|r| r.in_parent && r.role != "zsk")
            .filter_map(|r| parse_dnskey(&r.dnskey))
            .collect();
        self.ds_records(zone, &sep.iter().collect::<Vec<_>>())
    }

    /// The apex key RRsets of `zone` for keys `published` (SEP keys `sep`)
    /// under denial `mode` (`None`: unsigned, no records).
    fn key_records(
        &self,
        zone: &str,
        published: &[&DNSKEY],
        sep: &[&DNSKEY],
        mode: Option<&str>,
    ) -> Result<Vec<StoredRecord>, KeyringError> {
        let origin = origin_of(zone)?;
        let mut records: Vec<Record> = if mode.is_some() {
            apex_key_records(&origin, self.config.dnskey_ttl, published, sep).map_err(|e| {
                KeyringError::Key {
                    zone: zone.to_string(),
                    detail: e.to_string(),
                }
            })?
        } else {
            Vec::new()
        };
        if mode == Some(DenialMode::Nsec3.as_str()) {
            records.push(Record::from_rdata(
                origin.clone(),
                0,
                RData::DNSSEC(DNSSECRData::NSEC3PARAM(NSEC3PARAM::new(
                    Nsec3HashAlgorithm::SHA1,
                    false,
                    0,
                    Vec::new(),
                ))),
            ));
        }
        Ok(records.iter().map(StoredRecord::from_record).collect())
    }

    /// The DS records (SHA-256) the parent of `zone` must hold for `sep`.
    fn ds_records(&self, zone: &str, sep: &[&DNSKEY]) -> Result<Vec<StoredRecord>, KeyringError> {
        let origin = origin_of(zone)?;
        let mut out = Vec::new();
        for k in sep {
            let ds = ds_for(&origin, k, DigestType::SHA256).map_err(|e| KeyringError::Key {
                zone: zone.to_string(),
                detail: e.to_string(),
            })?;
            out.push(StoredRecord::from_record(&Record::from_rdata(
                origin.clone(),
                self.config.dnskey_ttl,
                RData::DNSSEC(DNSSECRData::DS(ds)),
            )));
        }
        Ok(out)
    }

    fn open(&self, row: &KeyRow) -> Result<Arc<ZoneKey>, KeyringError> {
        if let Ok(opened) = self.opened.lock() {
            if let Some(k) = opened.get(row) {
                return Ok(k);
            }
        }
        let decrypt = || KeyringError::Decrypt {
            zone: row.zone.clone(),
            tag: row.key_tag,
        };
        let sealed = hex::decode(&row.private_key).map_err(|_| decrypt())?;
        let pkcs8 = self
            .secret
            .open(&sealed_context(&row.zone, &row.dnskey), &sealed)
            .map_err(|_| decrypt())?;
        let alg = KeyAlgorithm::from_number(row.algorithm).ok_or_else(|| KeyringError::Key {
            zone: row.zone.clone(),
            detail: format!("unsupported algorithm {}", row.algorithm),
        })?;
        let role = KeyRole::parse(&row.role).ok_or_else(|| KeyringError::Key {
            zone: row.zone.clone(),
            detail: format!("unknown key role {}", row.role),
        })?;
        let dnskey = parse_dnskey(&row.dnskey).ok_or_else(|| KeyringError::Key {
            zone: row.zone.clone(),
            detail: format!("stored DNSKEY {} does not parse", row.key_tag),
        })?;
        // Parsed at its first signature: start-up with 100k signed zones
        // must not parse 100k keys. Opening the seal above already proved
        // the secret key and bound this DNSKEY to the private half.
        let key = Arc::new(
            ZoneKey::from_pkcs8_lazy(alg, role, dnskey, pkcs8).map_err(|e| KeyringError::Key {
                zone: row.zone.clone(),
                detail: e.to_string(),
            })?,
        );
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(row, &key);
        }
        Ok(key)
    }

    /// Builds the signer for a freshly loaded `zone`, or `None` when the zone
    /// is unsigned. Fails when a signing key cannot be opened.
    pub fn signer_for(
        &self,
        zone: &Zone,
        mode: Option<&str>,
        rows: &[KeyRow],
    ) -> Result<Option<ZoneSigner>, KeyringError> {
        let Some(mode) = mode.and_then(DenialMode::parse) else {
            return Ok(None);
        };
        let mut zone_keys = Vec::new();
        let mut key_keys = Vec::new();
        for r in rows.iter().filter(|r| r.state == "active") {
            let k = self.open(r)?;
            match k.role() {
                KeyRole::Csk => {
                    zone_keys.push(k.clone());
                    key_keys.push(k);
                }
                KeyRole::Ksk => key_keys.push(k),
                KeyRole::Zsk => zone_keys.push(k),
            }
        }
        if zone_keys.is_empty() || key_keys.is_empty() {
            return Err(KeyringError::Key {
                zone: zone.origin().to_ascii(),
                detail: "signed zone has no active signing key".into(),
            });
        }
        Ok(Some(ZoneSigner::new(
            zone,
            zone_keys,
            key_keys,
            mode,
            self.cache.clone(),
            self.policy,
        )))
    }

    /// Opens every active key of every signed zone: run at start so a wrong
    /// secret key fails loudly, naming the zone, before anything is served.
    pub fn check_open(&self, rows: &[KeyRow]) -> Result<(), KeyringError> {
        for r in rows.iter().filter(|r| r.state != "removed") {
            self.open(r)?;
        }
        Ok(())
    }
}

/// Public key material of a zone: DNSKEYs and DS (SHA-256 and SHA-384).
pub fn key_info(zone: &str, rows: &[KeyRow], ttl: u32) -> Vec<KeyInfo> {
    let Ok(origin) = Name::from_ascii(zone) else {
        return Vec::new();
    };
    rows.iter()
        .map(|r| {
            let mut ds = Vec::new();
            if r.role != "zsk" {
                if let Some(k) = parse_dnskey(&r.dnskey) {
                    for d in [DigestType::SHA256, DigestType::SHA384] {
                        if let Ok(x) = ds_for(&origin, &k, d) {
                            ds.push(format!(
                                "{zone} {ttl} IN DS {}",
                                crate::zone::file::rdata_text(&RData::DNSSEC(DNSSECRData::DS(x)))
                            ));
                        }
                    }
                }
            }
            KeyInfo {
                key_tag: r.key_tag,
                role: r.role.clone(),
                algorithm: r.algorithm,
                state: r.state.clone(),
                in_parent: r.in_parent,
                dnskey: match parse_dnskey(&r.dnskey) {
                    Some(k) => format!(
                        "{zone} {ttl} IN DNSKEY {}",
                        crate::zone::file::rdata_text(&RData::DNSSEC(DNSSECRData::DNSKEY(k)))
                    ),
                    None => format!("{zone} {ttl} IN DNSKEY {}", r.dnskey),
                },
                ds,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::keys::generate;

    #[test]
    fn dnskey_text_round_trips() {
        let alg = KeyAlgorithm::Ecdsap256sha256;
        let k = ZoneKey::from_pkcs8(alg, KeyRole::Csk, &generate(alg).unwrap()).unwrap();
        let text = zones::storage_text(&RData::DNSSEC(DNSSECRData::DNSKEY(k.dnskey().clone())));
        let back = parse_dnskey(&text).expect("parses");
        assert_eq!(&back, k.dnskey());
        assert_eq!(back.calculate_key_tag().unwrap(), k.tag());
    }

    /// Opened keys stay shared while a signer holds them and are swept
    /// once every signer dropped them: a pool that commits and releases
    /// children forever does not keep every child's keys.
    #[test]
    fn opened_keys_follow_their_signers() {
        let alg = KeyAlgorithm::Ecdsap256sha256;
        let row = |id: i64| KeyRow {
            id,
            zone: "z.test.".into(),
            role: "csk".into(),
            algorithm: alg.number(),
            key_tag: 0,
            dnskey: String::new(),
            private_key: String::new(),
            state: "active".into(),
            in_parent: true,
            created_at: 0,
            changed_at: 0,
        };
        let key = || {
            let (_, k) = generate_key(alg, KeyRole::Csk).unwrap();
            Arc::new(k)
        };
        let mut opened = OpenedKeys::default();
        let held = key();
        opened.insert(&row(0), &held);
        for id in 1..3_000 {
            // A released child's key: its signer is gone at once.
            opened.insert(&row(id), &key());
        }
        assert!(
            opened.by_id.len() <= 2_049,
            "dead keys were not swept: {} entries",
            opened.by_id.len()
        );
        let again = opened.get(&row(0)).expect("a held key is found again");
        assert!(Arc::ptr_eq(&again, &held));
        assert!(
            opened.get(&row(2_999)).is_none(),
            "a dropped key is opened again"
        );
    }

    /// A zone created with its fresh keys' records holds exactly what
    /// publishing its stored keys writes: publishing again changes nothing
    /// (no serial bump, no second journal entry), for each key layout and
    /// denial mode; and the DS returned is the one `parent_ds` reads back.
    #[tokio::test]
    async fn a_zone_created_with_fresh_keys_is_already_published() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let keyring = Keyring::new(
            Arc::new(SecretBox::from_bytes(&[7; 32]).unwrap()),
            DnssecConfig::default(),
        );
        let mut n = 0;
        for split_keys in [false, true] {
            for denial in [DenialMode::Nsec3, DenialMode::Compact] {
                n += 1;
                let zone = format!("z{n}.test.");
                let profile = SigningProfile {
                    algorithm: KeyAlgorithm::Ecdsap256sha256,
                    denial,
                    split_keys,
                };
                let soa = StoredRecord {
                    name: zone.clone(),
                    rtype: "SOA".into(),
                    ttl: 300,
                    rdata: format!("ns1.{zone} hostmaster.{zone} 1 7200 3600 1209600 300"),
                };
                let fresh = keyring.fresh_keys(&zone, profile).unwrap();
                let mut records = vec![soa];
                let key_records = keyring.fresh_key_records(&fresh).unwrap();
                assert_eq!(
                    key_records.iter().any(|r| r.rtype == "NSEC3PARAM"),
                    denial == DenialMode::Nsec3,
                    "{zone}"
                );
                records.extend(key_records);
                let mut tx = store.begin().await.unwrap();
                let serial = zones::create_zone(
                    &mut tx,
                    &zone,
                    crate::store::zones::ZoneKind::Child,
                    &records,
                    "test",
                )
                .await
                .unwrap();
                let ds = keyring.store_fresh_keys(&mut tx, &fresh).await.unwrap();
                tx.commit().await.unwrap();
                let entries = store.journal_after(0, 1000).await.unwrap();
                let before = entries.iter().filter(|e| e.change.zone == zone).count();
                assert_eq!(before, 1, "{zone}: created in one journal entry");

                let mut conn = store.pool().acquire().await.unwrap();
                keyring.publish(&mut conn, &zone, "test").await.unwrap();
                assert_eq!(
                    zones::get_zone(&mut conn, &zone)
                        .await
                        .unwrap()
                        .unwrap()
                        .serial,
                    serial,
                    "{zone}: publishing the stored keys again changed the zone"
                );
                let read_back = keyring.parent_ds(&mut conn, &zone).await.unwrap();
                drop(conn);
                let entries = store.journal_after(0, 1000).await.unwrap();
                assert_eq!(
                    entries.iter().filter(|e| e.change.zone == zone).count(),
                    1,
                    "{zone}"
                );
                assert_eq!(ds, read_back, "{zone}");
                assert_eq!(ds.len(), 1, "{zone}: one SEP key");
            }
        }
    }
}

/// Why a rollover cannot start or advance.
#[derive(Debug, thiserror::Error)]
pub enum RolloverError {
    /// The zone does not exist or is not signed.
    #[error("zone {0} is not a signed zone")]
    NotSigned(String),
    /// A rollover is already running.
    #[error("zone {0} already has a {1} rollover in progress")]
    InProgress(String, String),
    /// The key layout does not have a key of this kind.
    #[error("zone {zone} has no active {kind} to roll (its keys: {have})")]
    NoSuchKey {
        /// The zone.
        zone: String,
        /// Asked kind.
        kind: String,
        /// What it has.
        have: String,
    },
    /// Nothing is waiting for a DS confirmation.
    #[error("zone {0} has no rollover waiting for the parent's DS")]
    NotWaitingForDs(String),
    /// Key or store failure.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

impl From<StoreError> for RolloverError {
    fn from(e: StoreError) -> Self {
        RolloverError::Keyring(KeyringError::Store(e))
    }
}

impl From<sqlx::Error> for RolloverError {
    fn from(e: sqlx::Error) -> Self {
        RolloverError::Keyring(KeyringError::Store(StoreError::Db(e)))
    }
}

/// The rollover of a zone as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RolloverStatus {
    /// `zsk` | `ksk` | `csk`.
    pub kind: String,
    /// Step number.
    pub step: i32,
    /// Name of the current state.
    pub state: String,
    /// Key tag of the key being replaced.
    pub old_key_tag: Option<u16>,
    /// Key tag of the new key.
    pub new_key_tag: Option<u16>,
    /// When the next step runs (RFC 3339), when known.
    pub next_step_at: Option<String>,
    /// True when the next step waits for the operator to confirm that the
    /// parent publishes the new DS (`POST .../rollover/ds-published`).
    pub waiting_for_parent_ds: bool,
    /// When the rollover started (RFC 3339).
    pub started_at: String,
}

/// `next_at` value meaning "until the operator confirms the parent's DS".
const WAIT_FOR_OPERATOR: i64 = i64::MAX;

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Describes a stored rollover for the API.
pub fn rollover_status(row: &keys::RolloverRow, rows: &[KeyRow]) -> RolloverStatus {
    use crate::dnssec::rollover::{plan, RolloverKind};
    let tag = |id: i64| rows.iter().find(|r| r.id == id).map(|r| r.key_tag);
    let state = RolloverKind::parse(&row.kind)
        .and_then(|k| plan(k, row.step))
        .map(|s| s.name.to_string())
        .unwrap_or_default();
    RolloverStatus {
        kind: row.kind.clone(),
        step: row.step,
        state,
        old_key_tag: tag(row.old_key),
        new_key_tag: tag(row.new_key),
        next_step_at: (row.next_at != WAIT_FOR_OPERATOR).then(|| rfc3339_ms(row.next_at)),
        waiting_for_parent_ds: row.next_at == WAIT_FOR_OPERATOR,
        started_at: rfc3339_ms(row.started_at),
    }
}

impl Keyring {
    /// The parent zone pdm serves that delegates to `zone`, if any.
    async fn served_parent(
        conn: &mut AnyConnection,
        zone: &str,
    ) -> Result<Option<zones::ZoneRow>, StoreError> {
        let Ok(name) = Name::from_ascii(zone) else {
            return Ok(None);
        };
        let mut parent = name.base_name();
        loop {
            if let Some(row) = zones::get_zone(conn, &parent.to_ascii()).await? {
                let delegates = zones::has_rrset(conn, row.id, zone, "NS").await?;
                return Ok(delegates.then_some(row));
            }
            if parent.is_root() {
                return Ok(None);
            }
            parent = parent.base_name();
        }
    }

    /// Rewrites the DS set in the parent pdm serves (no-op when the parent is elsewhere).
    async fn sync_parent_ds(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        actor: &str,
    ) -> Result<bool, KeyringError> {
        let Some(parent) = Self::served_parent(conn, zone).await? else {
            return Ok(false);
        };
        let ds = self.parent_ds(conn, zone).await?;
        zones::set_rrsets(conn, &parent, zone, &["DS"], &ds, actor).await?;
        Ok(true)
    }

    /// Largest TTL of any record in the zone (seconds).
    async fn max_zone_ttl(conn: &mut AnyConnection, zone: &str) -> Result<u32, StoreError> {
        let Some(row) = zones::get_zone(conn, zone).await? else {
            return Ok(0);
        };
        zones::max_ttl(conn, row.id).await
    }

    async fn next_at(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        wait: crate::dnssec::rollover::Wait,
        parent_served: bool,
        now: i64,
    ) -> Result<i64, StoreError> {
        use crate::dnssec::rollover::Wait;
        let dnskey = self.config.dnskey_ttl as i64;
        let secs = match wait {
            Wait::Ds if !parent_served => return Ok(WAIT_FOR_OPERATOR),
            Wait::Ds | Wait::Dnskey => dnskey,
            Wait::MaxZoneTtl => Self::max_zone_ttl(conn, zone).await? as i64,
            Wait::DnskeyAndZone => dnskey.max(Self::max_zone_ttl(conn, zone).await? as i64),
        };
        Ok(now + (secs + self.config.propagation_delay_secs as i64) * 1000)
    }

    /// Starts a rollover of `kind` in `zone`: creates the new key in its first
    /// state, republishes, updates the parent DS when pdm serves the parent.
    pub async fn start_rollover(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        kind: crate::dnssec::rollover::RolloverKind,
    ) -> Result<keys::RolloverRow, RolloverError> {
        use crate::dnssec::rollover::{new_key_initial, plan};
        if keys::zone_dnssec(conn, zone).await?.is_none() {
            return Err(RolloverError::NotSigned(zone.to_string()));
        }
        if let Some(r) = keys::get_rollover(conn, zone).await? {
            return Err(RolloverError::InProgress(zone.to_string(), r.kind));
        }
        let rows = keys::zone_keys(conn, zone).await?;
        let old = rows
            .iter()
            .find(|r| r.state == "active" && r.role == kind.as_str())
            .ok_or_else(|| RolloverError::NoSuchKey {
                zone: zone.to_string(),
                kind: kind.as_str().to_string(),
                have: rows
                    .iter()
                    .map(|r| format!("{} {}", r.role, r.state))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let alg = KeyAlgorithm::from_number(old.algorithm).unwrap_or(self.config.algorithm);
        let role = KeyRole::parse(&old.role).unwrap_or(KeyRole::Csk);
        let init = new_key_initial(kind);
        let new_id = self
            .create_key(conn, zone, role, alg, init.state, init.in_parent)
            .await?;
        let actor = format!("rollover {} {zone}", kind.as_str());
        self.publish(conn, zone, &actor).await?;
        let parent_served = self.sync_parent_ds(conn, zone, &actor).await?;
        let now = crate::store::now_ms();
        let wait = plan(kind, 0).and_then(|s| s.wait);
        let next_at = match wait {
            Some(w) => self.next_at(conn, zone, w, parent_served, now).await?,
            None => now,
        };
        let row = keys::RolloverRow {
            zone: zone.to_string(),
            kind: kind.as_str().to_string(),
            step: 0,
            old_key: old.id,
            new_key: new_id,
            next_at,
            started_at: now,
            updated_at: now,
        };
        keys::put_rollover(conn, &row).await?;
        Ok(row)
    }

    /// Starts a rollover (`Some(kind)`) or confirms the parent's new DS
    /// (`None`) in its own transaction; returns the status to show.
    pub async fn rollover_command(
        &self,
        store: &crate::store::Store,
        zone: &str,
        kind: Option<crate::dnssec::rollover::RolloverKind>,
    ) -> Result<RolloverStatus, RolloverError> {
        let mut tx = store.begin().await?;
        let row = match kind {
            Some(kind) => self.start_rollover(&mut tx, zone, kind).await?,
            None => self.confirm_parent_ds(&mut tx, zone).await?,
        };
        tx.commit().await?;
        let rows = store.zone_keys(zone).await?;
        Ok(rollover_status(&row, &rows))
    }

    /// The operator confirms the parent (which pdm does not serve) publishes
    /// the new DS: the rollover continues after the DS TTL.
    pub async fn confirm_parent_ds(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
    ) -> Result<keys::RolloverRow, RolloverError> {
        let Some(mut row) = keys::get_rollover(conn, zone).await? else {
            return Err(RolloverError::NotWaitingForDs(zone.to_string()));
        };
        if row.next_at != WAIT_FOR_OPERATOR {
            return Err(RolloverError::NotWaitingForDs(zone.to_string()));
        }
        let now = crate::store::now_ms();
        row.next_at = now
            + (self.config.dnskey_ttl as i64 + self.config.propagation_delay_secs as i64) * 1000;
        keys::put_rollover(conn, &row).await?;
        Ok(row)
    }

    /// Runs the next step of `zone`'s rollover if it is due at `now` (ms).
    /// Returns the row after the step (`None` when the rollover finished or
    /// nothing was due). Safe to call from several replicas: the step is
    /// re-read inside the caller's transaction and applied once.
    pub async fn advance_rollover(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        now: i64,
    ) -> Result<Option<keys::RolloverRow>, RolloverError> {
        use crate::dnssec::rollover::{plan, RolloverKind};
        // Lock the zone row first so two replicas serialise here.
        sqlx::query("UPDATE zones SET serial = serial WHERE name = $1")
            .bind(zone)
            .execute(&mut *conn)
            .await?;
        let Some(mut row) = keys::get_rollover(conn, zone).await? else {
            return Ok(None);
        };
        if row.next_at > now {
            return Ok(None);
        }
        let Some(kind) = RolloverKind::parse(&row.kind) else {
            keys::finish_rollover(conn, zone).await?;
            return Ok(None);
        };
        let step = row.step + 1;
        let Some(plan) = plan(kind, step) else {
            keys::finish_rollover(conn, zone).await?;
            return Ok(None);
        };
        if let Some(c) = plan.old {
            keys::set_key_state(conn, row.old_key, c.state, c.in_parent).await?;
        }
        if let Some(c) = plan.new {
            keys::set_key_state(conn, row.new_key, c.state, c.in_parent).await?;
        }
        let actor = format!("rollover {} {zone} step {step}", kind.as_str());
        self.publish(conn, zone, &actor).await?;
        let parent_served = self.sync_parent_ds(conn, zone, &actor).await?;
        match plan.wait {
            None => {
                keys::finish_rollover(conn, zone).await?;
                tracing::info!(zone, kind = kind.as_str(), "key rollover finished");
                Ok(None)
            }
            Some(w) => {
                row.step = step;
                row.next_at = self.next_at(conn, zone, w, parent_served, now).await?;
                keys::put_rollover(conn, &row).await?;
                tracing::info!(
                    zone,
                    kind = kind.as_str(),
                    step,
                    state = plan.name,
                    "key rollover step"
                );
                Ok(Some(row))
            }
        }
    }
}

/// Why the keyring could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// DNSSEC is on but no secret key is configured.
    #[error(
        "DNSSEC is enabled but no secret key is configured: set PDM_SECRET_KEY (64 hex chars) \
         or dnssec.secret_key_file, or set dnssec.enabled = false"
    )]
    NoSecret,
    /// The secret key could not be loaded.
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored private key does not open with the secret key.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// The keyring when DNSSEC is enabled. Opens every stored private key so a
/// wrong secret key stops the start with the zone's name, before anything is
/// served or written.
pub async fn open_keyring(
    config: &Config,
    store: &Store,
) -> Result<Option<Arc<Keyring>>, OpenError> {
    if !config.dnssec.enabled {
        return Ok(None);
    }
    let secret = crate::secret::load_secret(config)?.ok_or(OpenError::NoSecret)?;
    let keyring = Keyring::new(Arc::new(secret), config.dnssec.clone());
    // In id ranges: one query per range, not one per zone (100k zones).
    let last = store.max_zone_id().await?;
    let mut from = 1;
    while from <= last {
        keyring.check_open(&store.keys_of_zones(from..=from + 9_999).await?)?;
        from += 10_000;
    }
    Ok(Some(Arc::new(keyring)))
}

/// How often due rollover steps are looked for.
const ROLLOVER_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Advances key rollovers whose next step is due. Every replica runs this;
/// the step is re-checked under the zone's row lock, so it happens once.
pub async fn run_rollovers(store: Store, keyring: Arc<Keyring>) {
    loop {
        tokio::time::sleep(ROLLOVER_TICK).await;
        let due = match store.due_rollovers(now_ms()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "rollover scan failed");
                continue;
            }
        };
        for r in due {
            let res = async {
                let mut tx = store.begin().await?;
                keyring.advance_rollover(&mut tx, &r.zone, now_ms()).await?;
                tx.commit().await?;
                Ok::<(), RolloverError>(())
            }
            .await;
            if let Err(e) = res {
                tracing::warn!(zone = %r.zone, error = %e, "rollover step failed; will retry");
            }
        }
    }
}
