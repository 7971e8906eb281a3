//! `pdm key`: DS for the parent, the key list, rollovers.

use super::Error;
use clap::Subcommand;
use pdm::config::Config;
use pdm::model::DomainName;
use pdm::store::Store;

/// `pdm key …`.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Print the DS records (SHA-256 and SHA-384) the zone's parent must hold.
    Ds {
        /// Zone name.
        zone: String,
    },
    /// List the zone's keys with their DNSKEY and DS (JSON).
    List {
        /// Zone name.
        zone: String,
    },
    /// Start a key rollover (a running `pdm serve` carries out the steps), or
    /// confirm that an external parent publishes the new DS.
    Rollover {
        /// Zone name.
        zone: String,
        /// Roll the zone-signing key (pre-publication).
        #[arg(long, group = "kind")]
        zsk: bool,
        /// Roll the key-signing key (double-DS).
        #[arg(long, group = "kind")]
        ksk: bool,
        /// Roll the combined signing key (double-DS).
        #[arg(long, group = "kind")]
        csk: bool,
        /// The parent now publishes the new DS: continue the rollover.
        #[arg(long, group = "kind")]
        ds_published: bool,
    },
}

/// Runs a `pdm key` command.
pub async fn run(cmd: KeyCommand, config: &Config, store: &Store) -> Result<(), Error> {
    match cmd {
        KeyCommand::Ds { zone } => {
            for k in key_info(store, config, &zone).await? {
                if k.in_parent {
                    for ds in &k.ds {
                        println!("{ds}");
                    }
                }
            }
            Ok(())
        }
        KeyCommand::Rollover {
            zone,
            zsk,
            ksk,
            csk,
            ds_published,
        } => {
            use pdm::dnssec::rollover::RolloverKind;
            let kind = match (zsk, ksk, csk) {
                (true, _, _) => Some(RolloverKind::Zsk),
                (_, true, _) => Some(RolloverKind::Ksk),
                (_, _, true) => Some(RolloverKind::Csk),
                _ => None,
            };
            println!(
                "{}",
                rollover_cli(config, store, &zone, kind, ds_published).await?
            );
            Ok(())
        }
        KeyCommand::List { zone } => {
            let info = key_info(store, config, &zone).await?;
            println!("{}", serde_json::to_string_pretty(&info)?);
            Ok(())
        }
    }
}

/// `pdm key rollover`: start a rollover, or confirm the parent's new DS.
async fn rollover_cli(
    config: &Config,
    store: &Store,
    zone: &str,
    kind: Option<pdm::dnssec::rollover::RolloverKind>,
    ds_published: bool,
) -> Result<String, Error> {
    let keyring = pdm::keyring::open_keyring(config, store)
        .await?
        .ok_or("DNSSEC is disabled in this configuration")?;
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let kind = match (ds_published, kind) {
        (true, _) => None,
        (false, Some(k)) => Some(k),
        (false, None) => return Err("say which key: --zsk, --ksk or --csk".into()),
    };
    let status = keyring
        .rollover_command(store, &origin.fqdn(), kind)
        .await?;
    Ok(serde_json::to_string_pretty(&status)?)
}

/// `pdm key ds ZONE`: the DS records (SHA-256, SHA-384) the parent must hold.
async fn key_info(
    store: &Store,
    config: &Config,
    zone: &str,
) -> Result<Vec<pdm::keyring::KeyInfo>, Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let fqdn = origin.fqdn();
    if store.load_zone(&fqdn).await?.is_none() {
        return Err(format!("no zone {origin}").into());
    }
    let rows = store.zone_keys(&fqdn).await?;
    if rows.is_empty() {
        return Err(format!("zone {origin} is not signed").into());
    }
    Ok(pdm::keyring::key_info(
        &fqdn,
        &rows,
        config.dnssec.dnskey_ttl,
    ))
}
