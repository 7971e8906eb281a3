//! The `pdm` command line.

use clap::{Args, Parser, Subcommand};
use pdm::config::{Config, Overrides};
use pdm::store::{redact_url, Store};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pdm",
    version,
    about = "Authoritative DNS server and pool-domain control plane"
)]
struct Cli {
    /// TOML configuration file (default: the built-in demo configuration).
    #[arg(long, global = true, env = "PDM_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "PDM_DATABASE_URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the DNS server and the HTTP API.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Import or export zones.
    #[command(subcommand)]
    Zone(ZoneCommand),
    /// DNSSEC keys: DS for the parent, key list, rollovers.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Compare the allocations with what PowerDNS serves and fix the
    /// differences (`[backend] kind = "powerdns"`), printing each change.
    Reconcile {
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Adopt the child zones a PowerDNS server already holds under the
    /// configured pools as active allocations.
    Import {
        /// PowerDNS webserver URL, e.g. http://127.0.0.1:8081 (the API key
        /// comes from `[backend]` or PDM_POWERDNS_API_KEY).
        #[arg(long)]
        from_powerdns: String,
        /// Only print what would be adopted.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
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

#[derive(Args)]
struct ServeArgs {
    /// HTTP API listen address.
    #[arg(long, env = "PDM_HTTP")]
    http: Option<String>,
    /// DNS listen address (UDP and TCP).
    #[arg(long, env = "PDM_DNS")]
    dns: Option<String>,
    /// Start fake Cloudflare/Namecheap/GoDaddy/OVH/Dynadot APIs on 127.0.0.1
    /// and send registrar calls there (try byo-api offline).
    #[cfg(feature = "fake-registrars")]
    #[arg(long, env = "PDM_FAKE_REGISTRARS")]
    fake_registrars: bool,
    /// Encoded UDP answers kept for reuse (0 turns the packet cache off).
    #[arg(long, env = "PDM_PACKET_CACHE")]
    packet_cache: Option<usize>,
}

impl ServeArgs {
    /// `--fake-registrars`.
    #[cfg(feature = "fake-registrars")]
    fn fake_registrars(&self) -> bool {
        self.fake_registrars
    }

    /// Always off: the flag exists only in builds with the fakes.
    #[cfg(not(feature = "fake-registrars"))]
    fn fake_registrars(&self) -> bool {
        false
    }
}

#[derive(Subcommand)]
enum TokenCommand {
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

#[derive(Subcommand)]
enum ZoneCommand {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PDM_LOG")
                .unwrap_or_else(|_| "info,hickory_server=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pdm: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pdm: {e}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn run(cli: Cli) -> Result<(), Error> {
    let (http, dns, fake_registrars, packet_cache) = match &cli.command {
        Command::Serve(a) => (
            a.http.clone(),
            a.dns.clone(),
            a.fake_registrars(),
            a.packet_cache,
        ),
        _ => (None, None, false, None),
    };
    let overrides = Overrides {
        http,
        dns,
        database: cli.database.clone(),
        fake_registrars,
        packet_cache,
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    let store = Store::connect(&config.database)
        .await
        .map_err(|e| format!("{e} ({})", redact_url(&config.database)))?;
    store.migrate().await?;
    match cli.command {
        Command::Serve(_) => pdm::serve::serve(config, store).await,
        Command::Migrate => {
            println!("migrations applied to {}", redact_url(&config.database));
            Ok(())
        }
        Command::Token(TokenCommand::Create { name, scopes }) => {
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
        Command::Zone(ZoneCommand::Import {
            zone,
            file,
            sign,
            denial,
            algorithm,
        }) => {
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
                    pdm::keyring::open_keyring(&config, &store)
                        .await?
                        .ok_or("--sign needs [dnssec] enabled = true")?,
                )
            } else {
                None
            };
            let n = pdm::serve::import_zone(&store, &zone, &file).await?;
            if let Some(k) = keyring {
                pdm::serve::sign_imported(&store, &k, &zone, profile).await?;
            }
            eprintln!(
                "imported {n} records into {zone}{}",
                if sign { " (signed)" } else { "" }
            );
            Ok(())
        }
        Command::Zone(ZoneCommand::Export { name, signed }) => {
            let keyring = if signed {
                pdm::keyring::open_keyring(&config, &store).await?
            } else {
                None
            };
            let config = std::sync::Arc::new(config);
            print!(
                "{}",
                pdm::serve::export_zone_any(&config, &store, keyring.as_deref(), &name, signed)
                    .await?
            );
            Ok(())
        }
        Command::Key(KeyCommand::Ds { zone }) => {
            for k in pdm::serve::key_info(&store, &config, &zone).await? {
                if k.in_parent {
                    for ds in &k.ds {
                        println!("{ds}");
                    }
                }
            }
            Ok(())
        }
        Command::Key(KeyCommand::Rollover {
            zone,
            zsk,
            ksk,
            csk,
            ds_published,
        }) => {
            use pdm::dnssec::rollover::RolloverKind;
            let kind = match (zsk, ksk, csk) {
                (true, _, _) => Some(RolloverKind::Zsk),
                (_, true, _) => Some(RolloverKind::Ksk),
                (_, _, true) => Some(RolloverKind::Csk),
                _ => None,
            };
            println!(
                "{}",
                pdm::serve::rollover_cli(&config, &store, &zone, kind, ds_published).await?
            );
            Ok(())
        }
        Command::Reconcile { dry_run } => {
            let config = std::sync::Arc::new(config);
            let b = pdm::backend::powerdns::powerdns_backend(&config, &store)?
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
        Command::Import {
            from_powerdns,
            dry_run,
        } => {
            let adopted =
                pdm::backend::powerdns::import_from(&config, &store, &from_powerdns, dry_run)
                    .await?;
            for a in &adopted {
                println!("{}adopt {a}", if dry_run { "would " } else { "" });
            }
            eprintln!("{} zone(s) adopted", adopted.len());
            Ok(())
        }
        Command::Key(KeyCommand::List { zone }) => {
            let info = pdm::serve::key_info(&store, &config, &zone).await?;
            println!("{}", serde_json::to_string_pretty(&info)?);
            Ok(())
        }
    }
}
