//! `pdm serve`'s arguments; the server itself is `pdm::serve`.

use clap::Args;
use pdm::config::Overrides;

/// `pdm serve`.
#[derive(Args)]
pub struct ServeArgs {
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
    /// After SIGTERM, seconds to keep accepting requests while /readyz answers 503.
    #[arg(long, env = "PDM_SHUTDOWN_DELAY_SECS")]
    shutdown_delay_secs: Option<u64>,
    /// After SIGTERM and the delay, seconds in-flight requests may take before exit.
    #[arg(long, env = "PDM_SHUTDOWN_GRACE_SECS")]
    shutdown_grace_secs: Option<u64>,
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

    /// The configuration overrides these flags make (the database is global).
    pub fn overrides(&self) -> Overrides {
        Overrides {
            http: self.http.clone(),
            dns: self.dns.clone(),
            database: None,
            fake_registrars: self.fake_registrars(),
            packet_cache: self.packet_cache,
            shutdown_delay_secs: self.shutdown_delay_secs,
            shutdown_grace_secs: self.shutdown_grace_secs,
        }
    }
}
