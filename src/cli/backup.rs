//! `pdm backup FILE`: a consistent online copy of the SQLite database.

use clap::Args;
use pdm::store::Store;
use std::path::PathBuf;

/// `pdm backup`.
#[derive(Args)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist yet).
    file: PathBuf,
}

/// Copy the database to the file; the secret key is not in it (see README, "Backup and restore").
pub async fn run(args: BackupArgs, store: &Store) -> Result<(), super::Error> {
    if args.file.exists() {
        return Err(format!(
            "{} exists; pdm backup never overwrites",
            args.file.display()
        )
        .into());
    }
    store.backup_to(&args.file).await?;
    println!(
        "backup written to {} (restore: stop pdm, copy it over the database file, keep PDM_SECRET_KEY)",
        args.file.display()
    );
    Ok(())
}
