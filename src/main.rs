//! The `pdm` command line: parses the arguments and hands each command to
//! its file in `cli/`.

mod cli;

use clap::{Parser, Subcommand};
use pdm::config::Overrides;
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
    Serve(cli::serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    /// Import or export zones.
    #[command(subcommand)]
    Zone(cli::zone::ZoneCommand),
    /// DNSSEC keys: DS for the parent, key list, rollovers.
    #[command(subcommand)]
    Key(cli::key::KeyCommand),
    /// TSIG keys for zone transfers and NOTIFY.
    #[command(subcommand)]
    Tsig(cli::tsig::TsigCommand),
    /// Compare the allocations with what PowerDNS serves and fix the
    /// differences (`[backend] kind = "powerdns"`), printing each change.
    Reconcile(cli::reconcile::ReconcileArgs),
    /// Adopt the child zones a PowerDNS server already holds under the
    /// configured pools as active allocations.
    Import(cli::import::ImportArgs),
}

fn main() -> ExitCode {
    let args = Cli::parse();
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
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pdm: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Cli) -> Result<(), cli::Error> {
    let mut overrides = match &args.command {
        Command::Serve(a) => a.overrides(),
        _ => Overrides::default(),
    };
    overrides.database = args.database.clone();
    let (config, store) = cli::open(args.config.as_deref(), &overrides).await?;
    match args.command {
        Command::Serve(_) => pdm::serve::serve(config, store).await,
        Command::Migrate => cli::migrate(&config),
        Command::Token(c) => cli::token::run(c, &store).await,
        Command::Zone(c) => cli::zone::run(c, config, &store).await,
        Command::Key(c) => cli::key::run(c, &config, &store).await,
        Command::Tsig(c) => cli::tsig::run(c, &config, &store).await,
        Command::Reconcile(a) => cli::reconcile::run(a, config, &store).await,
        Command::Import(a) => cli::import::run(a, &config, &store).await,
    }
}
