//! `pdm zone import` / `pdm zone export`: master files in and out.

use super::Error;
use clap::Subcommand;
use hickory_proto::rr::RData;
use pdm::backend::powerdns::PowerDnsBackend;
use pdm::config::Config;
use pdm::keyring::Keyring;
use pdm::model::DomainName;
use pdm::store::zones::StoredRecord;
use pdm::store::Store;
use pdm::zone::file;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `pdm zone …`.
#[derive(Subcommand)]
pub enum ZoneCommand {
    /// Load an RFC 1035 master file as a zone pdm serves (replaces it if present).
    Import {
        /// Zone name (origin).
        #[arg(long)]
        zone: String,
        /// Master file.
        file: PathBuf,
        /// Sign the zone online (creates keys when it has none).
        #[arg(long)]
        sign: bool,
        /// Denial of existence when signing: nsec3 (default from config) or compact.
        #[arg(long)]
        denial: Option<String>,
        /// Key algorithm when signing: ecdsap256sha256 (default from config) or ed25519.
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// Print a zone as master-file text.
    Export {
        /// Zone name.
        name: String,
        /// Include RRSIGs and the NSEC3 chain (for zone verifiers).
        #[arg(long)]
        signed: bool,
    },
}

/// Runs a `pdm zone` command.
pub async fn run(cmd: ZoneCommand, config: Config, store: &Store) -> Result<(), Error> {
    match cmd {
        ZoneCommand::Import {
            zone,
            file,
            sign,
            denial,
            algorithm,
        } => {
            let mut profile = config.dnssec.profile();
            if let Some(a) = algorithm.as_deref() {
                profile.algorithm = pdm::dnssec::KeyAlgorithm::parse(a)
                    .ok_or_else(|| format!("--algorithm {a:?}: want ecdsap256sha256 or ed25519"))?;
            }
            profile.denial = match denial.as_deref() {
                None => config.dnssec.denial,
                Some(d) => pdm::dnssec::DenialMode::parse(d)
                    .ok_or_else(|| format!("--denial {d:?}: want nsec3 or compact"))?,
            };
            let keyring = if sign {
                Some(
                    pdm::keyring::open_keyring(&config, store)
                        .await?
                        .ok_or("--sign needs [dnssec] enabled = true")?,
                )
            } else {
                None
            };
            let n = import_zone(store, &zone, &file).await?;
            if let Some(k) = keyring {
                sign_imported(store, &k, &zone, profile).await?;
            }
            eprintln!(
                "imported {n} records into {zone}{}",
                if sign { " (signed)" } else { "" }
            );
            Ok(())
        }
        ZoneCommand::Export { name, signed } => {
            let keyring = if signed {
                pdm::keyring::open_keyring(&config, store).await?
            } else {
                None
            };
            let config = std::sync::Arc::new(config);
            print!(
                "{}",
                export_zone_any(&config, store, keyring.as_deref(), &name, signed).await?
            );
            Ok(())
        }
    }
}

/// `pdm zone import`: parse a master file and store it as a zone.
async fn import_zone(store: &Store, zone: &str, path: &Path) -> Result<usize, Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (parsed_origin, records) = file::parse_master(&text, Some(origin.name()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if DomainName::from_name(&parsed_origin) != origin {
        return Err(format!(
            "{} is for zone {parsed_origin}, not {origin}",
            path.display()
        )
        .into());
    }
    let mut file_serial = 0;
    let mut rows = Vec::with_capacity(records.len());
    for r in &records {
        if !origin.name().zone_of(&r.name) {
            return Err(format!("record {} is outside zone {origin}", r.name).into());
        }
        if let RData::SOA(soa) = &r.data {
            file_serial = soa.serial;
        }
        rows.push(StoredRecord::from_record(r));
    }
    // Validate as the server will see it before writing anything.
    pdm::zone::Zone::new(origin.name().clone(), records.clone())
        .map_err(|e| format!("{origin}: {e}"))?;
    store
        .import_zone(&origin.fqdn(), &rows, file_serial)
        .await?;
    Ok(rows.len())
}

/// `pdm zone import --sign`: sign an imported zone (creating keys when it has
/// none, republishing the key records otherwise).
async fn sign_imported(
    store: &Store,
    keyring: &Keyring,
    zone: &str,
    profile: pdm::dnssec::SigningProfile,
) -> Result<(), Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let fqdn = origin.fqdn();
    let mut tx = store.begin().await?;
    if pdm::store::keys::zone_keys(&mut tx, &fqdn)
        .await?
        .is_empty()
    {
        keyring
            .secure_zone(&mut tx, &fqdn, profile, "import")
            .await?;
    } else {
        pdm::store::keys::set_zone_dnssec(&mut tx, &fqdn, Some(profile.denial.as_str())).await?;
        keyring.publish(&mut tx, &fqdn, "import").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `pdm zone export [--signed]`: the zone as master-file text; signed adds
/// RRSIGs and the NSEC3 chain (needs the secret key).
async fn export_zone(
    store: &Store,
    keyring: Option<&Keyring>,
    zone: &str,
    signed: bool,
) -> Result<String, Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    if signed {
        let keyring = keyring.ok_or("--signed needs DNSSEC enabled and a secret key")?;
        let z = pdm::snapshot::load_zone(store, Some(keyring), &origin.fqdn())
            .await?
            .ok_or_else(|| format!("no zone {origin}"))?;
        let signer = z
            .signer()
            .ok_or_else(|| format!("zone {origin} is not signed"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let records = pdm::dnssec::export::signed_records(z.zone(), signer, now)?;
        return Ok(file::write_master(origin.name(), &records));
    }
    let Some(rows) = store.load_zone(&origin.fqdn()).await? else {
        return Err(format!("no zone {origin}").into());
    };
    let records = rows
        .iter()
        .map(StoredRecord::to_record)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(file::write_master(origin.name(), &records))
}

/// `pdm zone export`: a zone from the store ([`export_zone`]), or, with
/// `[backend] kind = "powerdns"`, a pool or child zone that PowerDNS holds
/// (as PowerDNS exports it: no DNSSEC records, PowerDNS signs on the fly).
async fn export_zone_any(
    config: &Arc<Config>,
    store: &Store,
    keyring: Option<&Keyring>,
    zone: &str,
    signed: bool,
) -> Result<String, Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let pdns = match PowerDnsBackend::from_config(store, config)? {
        Some(b) if store.load_zone(&origin.fqdn()).await?.is_none() => b,
        _ => return export_zone(store, keyring, zone, signed).await,
    };
    if signed {
        return Err(format!(
            "zone {origin} is held by PowerDNS, which signs it when answering; \
             --signed exports only zones pdm serves itself (use AXFR from PowerDNS)"
        )
        .into());
    }
    pdns.client()
        .export_zone(&origin.fqdn())
        .await?
        .ok_or_else(|| format!("no zone {origin} in the store or in PowerDNS").into())
}
