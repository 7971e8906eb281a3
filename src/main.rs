//! The `pdm` command line: parses the arguments and hands each command to
//! its file in `cli/`.

mod cli;

use clap::{Parser, Subcommand};
use pdm::config::Overrides;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: a zone is many small allocations
/// (records, names, tree nodes), and glibc spends a fifth of start-up and
/// of each commit in malloc and free, with a header on every block.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Write a consistent copy of the SQLite database to FILE while pdm runs.
    Backup(cli::backup::BackupArgs),
}

fn main() -> ExitCode {
    let args = Cli::parse();
    if let Err(e) = init_logs() {
        eprintln!("pdm: {e}");
        return ExitCode::FAILURE;
    }
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

/// Logs on stderr: `PDM_LOG` filters, `PDM_LOG_FORMAT` picks `text`
/// (default) or `json` (one object a line, event fields at the top level,
/// the request id from the current span). Colour only on a terminal, so a
/// log file or a container log never carries escape codes.
fn init_logs() -> Result<(), String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PDM_LOG")
        .unwrap_or_else(|_| "info,hickory_server=warn".into());
    let format = std::env::var("PDM_LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.trim().to_ascii_lowercase().as_str() {
        "" | "text" => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        other => {
            return Err(format!(
                "PDM_LOG_FORMAT={other:?}: want \"json\" or \"text\""
            ))
        }
    }
    Ok(())
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
        Command::Backup(a) => cli::backup::run(a, &store).await,
    }
}
