//! `pdm token`: API tokens.

use super::Error;
use clap::Subcommand;
use pdm::store::Store;

/// `pdm token …`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once.
    Create {
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// `admin`, `pool:*` or `pool:<domain>`; repeatable.
        #[arg(long = "scope", default_value = "admin")]
        scopes: Vec<String>,
    },
}

/// Runs a `pdm token` command.
pub async fn run(cmd: TokenCommand, store: &Store) -> Result<(), Error> {
    match cmd {
        TokenCommand::Create { name, scopes } => {
            for s in &scopes {
                if !pdm::store::tokens::valid_scope(s) {
                    return Err(format!(
                        "invalid scope {s:?} (want admin, pool:* or pool:<domain>)"
                    )
                    .into());
                }
            }
            let (secret, _) = store.create_token(&name, &scopes).await?;
            println!("{secret}");
            Ok(())
        }
    }
}
