//! DNSSEC key lifecycle against the store: creating a zone's keys, publishing
//! the apex key RRsets (DNSKEY, CDS, CDNSKEY, NSEC3PARAM), the DS its parent
//! must hold, and opening the private keys for the snapshot's signers.
//!
//! The pure parts (key generation, DS digests, signing) live in `dnssec/`;
//! this module is the IO edge that applies them inside store transactions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, NSEC3PARAM};
use hickory_proto::dnssec::{DigestType, Nsec3HashAlgorithm};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sqlx::AnyConnection;

use crate::config::DnssecConfig;
use crate::dnssec::keys::{apex_key_records, ds_for, generate};
use crate::dnssec::{DenialMode, KeyAlgorithm, KeyRole, SigCache, SigningPolicy, ZoneKey, ZoneSigner};
use crate::secret::SecretBox;
use crate::store::keys::{self, KeyRow, NewKey};
use crate::store::zones::{self, StoredRecord};
use crate::store::StoreError;
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
    opened: Mutex<HashMap<i64, Arc<ZoneKey>>>,
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
        Self {
            secret,
            config,
            cache: Arc::new(SigCache::new(1 << 20)),
            policy: SigningPolicy::default(),
            opened: Mutex::new(HashMap::new()),
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
        let kerr = |detail: String| KeyringError::Key {
            zone: zone.to_string(),
            detail,
        };
        let pkcs8 = generate(algorithm).map_err(|e| kerr(e.to_string()))?;
        let key = ZoneKey::from_pkcs8(algorithm, role, &pkcs8).map_err(|e| kerr(e.to_string()))?;
        let dnskey =
            zones::storage_text(&RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey().clone())));
        let sealed = self
            .secret
            .seal(&sealed_context(zone, &dnskey), &pkcs8)
            .map_err(|e| kerr(e.to_string()))?;
        let id = keys::insert_key(
            conn,
            &NewKey {
                zone,
                role: role.as_str(),
                algorithm: algorithm.number(),
                key_tag: key.tag(),
                dnskey: &dnskey,
                private_key: &hex::encode(sealed),
                state,
                in_parent,
            },
        )
        .await?;
        Ok(id)
    }

    /// Signs `zone` (which must exist and have no keys): creates a CSK (or
    /// KSK + ZSK), marks the zone signed with `denial`, publishes the apex
    /// key records. Returns the DS records the parent must hold.
    pub async fn secure_zone(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        denial: DenialMode,
        actor: &str,
    ) -> Result<Vec<StoredRecord>, KeyringError> {
        let alg = self.config.algorithm;
        if self.config.split_keys {
            self.create_key(conn, zone, KeyRole::Ksk, alg, "active", true)
                .await?;
            self.create_key(conn, zone, KeyRole::Zsk, alg, "active", false)
                .await?;
        } else {
            self.create_key(conn, zone, KeyRole::Csk, alg, "active", true)
                .await?;
        }
        keys::set_zone_dnssec(conn, zone, Some(denial.as_str())).await?;
        self.publish(conn, zone, actor).await?;
        self.parent_ds(conn, zone).await
    }

    /// Rewrites the apex DNSKEY, CDS, CDNSKEY and NSEC3PARAM RRsets of `zone`
    /// from its key rows and denial mode (no-op when already current).
    pub async fn publish(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        actor: &str,
    ) -> Result<(), KeyringError> {
        let origin = origin_of(zone)?;
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
        let ttl = self.config.dnskey_ttl;
        let pub_refs: Vec<&DNSKEY> = published.iter().collect();
        let sep_refs: Vec<&DNSKEY> = sep.iter().collect();
        let mut records: Vec<Record> = if mode.is_some() {
            apex_key_records(&origin, ttl, &pub_refs, &sep_refs).map_err(|e| KeyringError::Key {
                zone: zone.to_string(),
                detail: e.to_string(),
            })?
        } else {
            Vec::new()
        };
        if mode.as_deref() == Some(DenialMode::Nsec3.as_str()) {
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
        let stored: Vec<StoredRecord> = records.iter().map(StoredRecord::from_record).collect();
        let row = zones::get_zone(conn, zone)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("zone {zone} vanished")))?;
        zones::set_rrsets(
            conn,
            &row,
            zone,
            &["DNSKEY", "CDS", "CDNSKEY", "NSEC3PARAM"],
            &stored,
            actor,
        )
        .await?;
        Ok(())
    }

    /// The DS records (SHA-256) the parent must hold for `zone`.
    pub async fn parent_ds(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
    ) -> Result<Vec<StoredRecord>, KeyringError> {
        let origin = origin_of(zone)?;
        let rows = keys::zone_keys(conn, zone).await?;
        let mut out = Vec::new();
        for r in rows.iter().filter(|r| r.in_parent && r.role != "zsk") {
            let Some(k) = parse_dnskey(&r.dnskey) else {
                continue;
            };
            let ds = ds_for(&origin, &k, DigestType::SHA256).map_err(|e| KeyringError::Key {
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
        if let Ok(map) = self.opened.lock() {
            if let Some(k) = map.get(&row.id) {
                return Ok(k.clone());
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
        let key = Arc::new(
            ZoneKey::from_pkcs8(alg, role, &pkcs8).map_err(|e| KeyringError::Key {
                zone: row.zone.clone(),
                detail: e.to_string(),
            })?,
        );
        if let Ok(mut map) = self.opened.lock() {
            map.insert(row.id, key.clone());
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

    #[test]
    fn dnskey_text_round_trips() {
        let alg = KeyAlgorithm::Ecdsap256sha256;
        let k = ZoneKey::from_pkcs8(alg, KeyRole::Csk, &generate(alg).unwrap()).unwrap();
        let text =
            zones::storage_text(&RData::DNSSEC(DNSSECRData::DNSKEY(k.dnskey().clone())));
        let back = parse_dnskey(&text).expect("parses");
        assert_eq!(&back, k.dnskey());
        assert_eq!(back.calculate_key_tag().unwrap(), k.tag());
    }
}
