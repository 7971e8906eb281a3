//! `pdm tsig`: TSIG keys for zone transfers and NOTIFY.

use super::Error;
use clap::Subcommand;
use pdm::config::Config;
use pdm::store::Store;

/// `pdm tsig …`.
#[derive(Subcommand)]
pub enum TsigCommand {
    /// Create a key and print its secret (base64) once; it is stored sealed.
    Create {
        /// Key name (as the secondaries know it, e.g. `xfr`).
        name: String,
        /// `hmac-sha256` or `hmac-sha512`.
        #[arg(long, default_value = "hmac-sha256")]
        algorithm: String,
        /// Record policy for RFC 2136 UPDATE: JSON, or `@file` (see docs/records.md).
        #[arg(long)]
        policy: Option<String>,
    },
    /// List the keys (name, algorithm, creation time); never a secret.
    List,
    /// Delete a key (transfers signed with it are refused from then on).
    Delete {
        /// Key name.
        name: String,
    },
}

/// Runs a `pdm tsig` command.
pub async fn run(cmd: TsigCommand, config: &Config, store: &Store) -> Result<(), Error> {
    match cmd {
        TsigCommand::Create {
            name,
            algorithm,
            policy,
        } => {
            let policy = policy.map(|p| super::token::policy_json(&p)).transpose()?;
            let secret = pdm::secret::load_secret(config)?;
            let b64 = pdm::transfer::create_key(
                store,
                secret.as_ref(),
                &name,
                &algorithm,
                policy.as_deref(),
            )
            .await?;
            // stdout carries the secret alone (scripts capture it); what to
            // do with it goes to stderr.
            println!("{b64}");
            eprintln!(
                "key {} ({}) created; its secret is shown only now",
                pdm::config::tsig_key_name(&name),
                algorithm.to_ascii_lowercase()
            );
            Ok(())
        }
        TsigCommand::List => {
            for k in pdm::transfer::list_keys(store).await? {
                println!("{} {} {}", k.name, k.algorithm, k.created_at);
            }
            Ok(())
        }
        TsigCommand::Delete { name } => {
            let name = pdm::config::tsig_key_name(&name);
            if !store.delete_tsig_key(&name).await? {
                return Err(format!("no TSIG key named {name}").into());
            }
            println!("deleted {name}");
            Ok(())
        }
    }
}
