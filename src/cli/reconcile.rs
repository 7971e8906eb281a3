//! `pdm reconcile`: make PowerDNS match the allocations.

use super::Error;
use clap::Args;
use pdm::config::Config;
use pdm::store::Store;

/// `pdm reconcile`.
#[derive(Args)]
pub struct ReconcileArgs {
    /// Only print what would change.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `pdm reconcile`, printing each change.
pub async fn run(args: ReconcileArgs, config: Config, store: &Store) -> Result<(), Error> {
    let dry_run = args.dry_run;
    let config = std::sync::Arc::new(config);
    let b = pdm::backend::powerdns::PowerDnsBackend::from_config(store, &config)?
        .ok_or("reconcile needs [backend] kind = \"powerdns\"")?;
    let changes = b.reconcile(dry_run).await?;
    for c in &changes {
        println!("{}{c}", if dry_run { "would " } else { "" });
    }
    eprintln!(
        "{} change(s){}",
        changes.len(),
        if dry_run { " (dry run)" } else { "" }
    );
    Ok(())
}
