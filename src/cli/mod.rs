//! The `pdm` subcommands other than `serve`, one file per command family;
//! `main.rs` parses the arguments and hands each command to its file here.

pub mod backup;
pub mod import;
pub mod key;
pub mod reconcile;
pub mod serve;
pub mod token;
pub mod tsig;
pub mod zone;

use pdm::config::{Config, Overrides};
use pdm::store::{redact_url, Store};
use std::path::Path;

/// What a command fails with: printed once by `main` as `pdm: …`.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The configuration and the migrated store every command starts from.
pub async fn open(path: Option<&Path>, overrides: &Overrides) -> Result<(Config, Store), Error> {
    let config = Config::load(path, overrides)?;
    let store = Store::connect_with(&config.database, config.database_timeout)
        .await
        .map_err(|e| format!("{e} ({})", redact_url(&config.database)))?;
    store.migrate().await?;
    Ok((config, store))
}

/// `pdm migrate`: the migrations ran when the store was opened.
pub fn migrate(config: &Config) -> Result<(), Error> {
    println!("migrations applied to {}", redact_url(&config.database));
    Ok(())
}
