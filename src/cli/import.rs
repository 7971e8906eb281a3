//! `pdm import --from-powerdns`: adopt child zones PowerDNS already holds.

use super::Error;
use clap::Args;
use pdm::config::Config;
use pdm::store::Store;

/// `pdm import`.
#[derive(Args)]
pub struct ImportArgs {
    /// PowerDNS webserver URL, e.g. http://127.0.0.1:8081 (the API key
    /// comes from `[backend]` or PDM_POWERDNS_API_KEY).
    #[arg(long)]
    from_powerdns: String,
    /// Only print what would be adopted.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `pdm import`, printing each adopted zone.
pub async fn run(args: ImportArgs, config: &Config, store: &Store) -> Result<(), Error> {
    let ImportArgs {
        from_powerdns,
        dry_run,
    } = args;
    let adopted =
        pdm::backend::powerdns::import_from(config, store, &from_powerdns, dry_run).await?;
    for a in &adopted {
        println!("{}adopt {a}", if dry_run { "would " } else { "" });
    }
    eprintln!("{} zone(s) adopted", adopted.len());
    Ok(())
}
