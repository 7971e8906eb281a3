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
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Record policy: JSON, or `@file` (see docs/records.md). Without
        /// `--scope`, a token with a policy has no other scope.
        #[arg(long)]
        policy: Option<String>,
    },
    /// List the tokens (id, name, scopes, policy); never a secret.
    List,
    /// Delete a token by id.
    Delete {
        /// Token id (from `pdm token list`).
        id: i64,
    },
}

/// A policy given on the command line (JSON or `@file`), checked, as
/// stored (compact JSON).
pub fn policy_json(arg: &str) -> Result<String, Error> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read policy file {path}: {e}"))?,
        None => arg.to_string(),
    };
    let spec: pdm::policy::PolicySpec =
        serde_json::from_str(&text).map_err(|e| format!("policy: {e}"))?;
    spec.parse()?;
    Ok(serde_json::to_string(&spec)?)
}

/// Runs a `pdm token` command.
pub async fn run(cmd: TokenCommand, store: &Store) -> Result<(), Error> {
    match cmd {
        TokenCommand::Create {
            name,
            mut scopes,
            policy,
        } => {
            if scopes.is_empty() && policy.is_none() {
                scopes.push("admin".into());
            }
            let policy = policy.map(|p| policy_json(&p)).transpose()?;
            for s in &scopes {
                if !pdm::store::tokens::valid_scope(s) {
                    return Err(format!(
                        "invalid scope {s:?} (want admin, pool:* or pool:<domain>)"
                    )
                    .into());
                }
            }
            let (secret, id) = store
                .create_token_with_policy(&name, &scopes, policy.as_deref())
                .await?;
            println!("{secret}");
            eprintln!("token {id} ({name}) created; its secret is shown only now");
            Ok(())
        }
        TokenCommand::List => {
            for (t, created) in store.tokens().await? {
                println!(
                    "{} {} scopes={} policy={} created_ms={created}",
                    t.id,
                    t.name,
                    t.scopes.join(","),
                    t.policy.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        TokenCommand::Delete { id } => {
            if !store.delete_token(id).await? {
                return Err(format!("no token with id {id}").into());
            }
            println!("deleted token {id}");
            Ok(())
        }
    }
}
