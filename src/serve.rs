//! `pdm serve` and the zone import/export commands: wiring of store,
//! snapshot, DNS server and HTTP API.

use crate::api::{self, AppState};
use crate::config::Config;
use crate::keyring::Keyring;
use crate::model::DomainName;
use crate::pool::PoolService;
use crate::secret::SecretBox;
use crate::server::ZoneSet;
use crate::snapshot::Refresher;
use crate::store::zones::StoredRecord;
use crate::store::{now_ms, Store};
use crate::zone::file;
use arc_swap::ArcSwap;
use hickory_proto::rr::RData;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Why `--fake-registrars` (or `[registrars] fake = true`) fails in a
/// production build.
#[cfg(not(feature = "fake-registrars"))]
pub const FAKES_NOT_BUILT: &str = "pdm was built without fake-registrars: the fake registrar \
     APIs are not in this binary; rebuild with `cargo build --release --features fake-registrars` \
     (or run `cargo run --release --features fake-registrars -- serve --fake-registrars`)";

/// How often expired reservations are marked as such (cosmetic: reserve and
/// commit decide expiry from `expires_at` themselves).
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Run DNS + HTTP until SIGINT/SIGTERM.
pub async fn serve(config: Config, store: Store) -> Result<(), Error> {
    // Refused before anything starts: the fakes are not in this binary.
    #[cfg(not(feature = "fake-registrars"))]
    if config.registrars.fake {
        return Err(FAKES_NOT_BUILT.into());
    }
    let config = Arc::new(config);
    let keyring = open_keyring(&config, &store).await?;
    let pdns = powerdns_backend(&config, &store)?;
    let pool = match &pdns {
        Some(b) => PoolService::with_backend(store.clone(), config.clone(), Arc::new(b.clone())),
        None => PoolService::new(store.clone(), config.clone(), keyring.clone()),
    };
    pool.ensure_pool_zones().await?;

    // One LUA engine and one health checker per process; zones prime their
    // LUA records (registering health checks) when they are loaded.
    let lua = lua_engine(&config.lua)?;
    lua.config().health.start();
    let hooks = crate::snapshot::LuaHooks {
        settings: config.lua.clone(),
        engine: Some(lua.clone()),
    };
    let zones = Arc::new(ArcSwap::from_pointee(ZoneSet::new()));
    let refresher =
        Refresher::start_with(store.clone(), keyring.clone(), zones.clone(), hooks).await?;
    tokio::spawn(refresher.run());

    let mut runtime = crate::server::LuaRuntime::new(lua.clone(), config.lua.concurrency);
    if !config.lua.offload {
        runtime = runtime.inline();
    } else if config.lua.inline_budget_us > 0 {
        runtime = runtime.with_quick(quick_engine(&lua, &config.lua));
    }
    let handler = crate::server::Handler::new(zones.clone())
        .with_lua(Some(runtime.clone()))
        .with_packet_cache(config.packet_cache);
    crate::server::spawn_handler(config.dns, handler)
        .await
        .map_err(|e| format!("cannot listen for DNS on {}: {e}", config.dns))?;
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|e| format!("cannot listen for HTTP on {}: {e}", config.http))?;

    let sweeper = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP_INTERVAL).await;
            match sweeper.expire_due(now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "reservations expired"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
        }
    });

    if let Some(k) = keyring.clone() {
        tokio::spawn(run_rollovers(store.clone(), k));
    }

    // byo domains: registrar endpoints (real APIs, config overrides, or the
    // local fakes), credentials sealed with the same secret key as DNSSEC
    // keys, and the durable operations worker.
    #[cfg_attr(not(feature = "fake-registrars"), allow(unused_mut))]
    let mut registrars = crate::delegation::Registrars::from_config(&config.registrars);
    #[cfg(feature = "fake-registrars")]
    let fakes = if config.registrars.fake {
        let f = crate::delegation::fakes::FakeRegistrars::start()
            .await
            .map_err(|e| format!("cannot start the fake registrars: {e}"))?;
        f.apply(&mut registrars);
        Some(f)
    } else {
        None
    };
    let secret = load_secret(&config)?.map(Arc::new);
    let byo = crate::delegation::ByoService::new(
        store.clone(),
        config.clone(),
        keyring.clone(),
        secret,
        registrars,
    );
    let runner: Arc<dyn crate::operations::StepRunner> = Arc::new(byo.clone());
    let worker = crate::operations::Worker::new(store.clone(), config.operations.clone())
        .with_runner(crate::delegation::byo::KIND_API, runner.clone())
        .with_runner(crate::delegation::byo::KIND_MANUAL, runner);
    let worker = match &pdns {
        Some(b) => {
            let r: Arc<dyn crate::operations::StepRunner> = Arc::new(b.clone());
            tokio::spawn(run_reconcile(b.clone()));
            worker
                .with_runner(crate::backend::KIND_PDNS_COMMIT, r.clone())
                .with_runner(crate::backend::KIND_PDNS_RELEASE, r)
        }
        None => worker,
    };
    tokio::spawn(worker.run());

    let ready = Arc::new(AtomicBool::new(false));
    let app = api::router(AppState {
        store: store.clone(),
        config: config.clone(),
        keyring: keyring.clone(),
        pool: pool.clone(),
        ready: ready.clone(),
        byo,
        lua: Some(runtime.observer()),
    });
    tracing::info!(http = %config.http, dns = %config.dns, "pdm serving");
    if config.demo {
        print_demo(&config, &store).await?;
    }
    #[cfg(feature = "fake-registrars")]
    if let Some(f) = &fakes {
        print_fake_registrars(&config, f);
    }
    ready.store(true, Ordering::Release);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// The PowerDNS backend when `[backend] kind = "powerdns"`.
pub fn powerdns_backend(
    config: &Arc<Config>,
    store: &Store,
) -> Result<Option<crate::backend::powerdns::PowerDnsBackend>, Error> {
    if config.backend.kind != crate::config::BackendKind::PowerDns {
        return Ok(None);
    }
    let b = crate::backend::powerdns::PowerDnsBackend::new(store.clone(), config.clone())?;
    Ok(Some(b))
}

/// Periodic `reconcile` against PowerDNS (every `reconcile_interval_secs`; 0: off).
async fn run_reconcile(b: crate::backend::powerdns::PowerDnsBackend) {
    let secs = b.interval_secs();
    if secs == 0 {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        match b.reconcile(false).await {
            Ok(changes) => {
                for c in changes {
                    tracing::warn!(change = %c, "reconcile fixed a drift in PowerDNS");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconcile with PowerDNS failed"),
        }
    }
}

/// The process's LUA engine, built from `[lua]` (health checks not started).
pub fn lua_engine(settings: &crate::config::LuaSettings) -> Result<crate::lua::LuaEngine, Error> {
    use crate::lua::{HealthChecker, HealthConfig, LuaConfig, LuaEngine, MaxMindGeo};
    let health = HealthChecker::new(HealthConfig {
        interval: Duration::from_secs(settings.health_interval_secs),
        assume_up_before_first_check: settings.assume_up_before_first_check,
        ..HealthConfig::default()
    });
    let geo: Option<Arc<dyn crate::lua::GeoProvider>> = if settings.geoip_databases.is_empty() {
        None
    } else {
        let g = MaxMindGeo::open(&settings.geoip_databases)
            .map_err(|e| format!("lua.geoip_databases: {e}"))?;
        Some(Arc::new(g))
    };
    Ok(LuaEngine::new(LuaConfig {
        max_instructions: settings.max_instructions,
        timeout: Duration::from_millis(settings.timeout_ms),
        pool_size: settings.concurrency + 2,
        health,
        geo,
        ..LuaConfig::default()
    }))
}

/// The small-budget engine tried inline on the reactor before offloading
/// (same health checker and GeoIP data as `full`).
fn quick_engine(
    full: &crate::lua::LuaEngine,
    settings: &crate::config::LuaSettings,
) -> crate::lua::LuaEngine {
    let budget = Duration::from_micros(settings.inline_budget_us);
    crate::lua::LuaEngine::new(crate::lua::LuaConfig {
        // ~100 instructions per µs is well above what Lua 5.4 runs.
        max_instructions: (settings.inline_budget_us * 100).clamp(1000, settings.max_instructions),
        timeout: budget,
        pool_size: settings.concurrency + 2,
        ..full.config().clone()
    })
}

/// The secret key that seals private keys: `PDM_SECRET_KEY`, else
/// `dnssec.secret_key_file` (created when missing), else — for the demo
/// only — `./pdm.secret`. Returns `None` when no key is configured.
pub fn load_secret(config: &Config) -> Result<Option<SecretBox>, Error> {
    if let Ok(text) = std::env::var("PDM_SECRET_KEY") {
        return Ok(Some(
            SecretBox::from_text(&text).map_err(|e| format!("PDM_SECRET_KEY: {e}"))?,
        ));
    }
    let path = match (&config.dnssec.secret_key_file, config.demo) {
        (Some(p), _) => p.clone(),
        (None, true) => std::path::PathBuf::from("pdm.secret"),
        (None, false) => return Ok(None),
    };
    let (secret, created) = SecretBox::from_file(&path, true)?;
    if created {
        tracing::warn!(file = %path.display(), "created a new secret key for DNSSEC private keys; back it up with the database");
    }
    Ok(Some(secret))
}

/// The keyring when DNSSEC is enabled. Opens every stored private key so a
/// wrong secret key stops the start with the zone's name, before anything is
/// served or written.
pub async fn open_keyring(config: &Config, store: &Store) -> Result<Option<Arc<Keyring>>, Error> {
    if !config.dnssec.enabled {
        return Ok(None);
    }
    let secret = load_secret(config)?.ok_or(
        "DNSSEC is enabled but no secret key is configured: set PDM_SECRET_KEY (64 hex chars) \
         or dnssec.secret_key_file, or set dnssec.enabled = false",
    )?;
    let keyring = Keyring::new(Arc::new(secret), config.dnssec.clone());
    for zone in store.zone_names().await? {
        keyring.check_open(&store.zone_keys(&zone).await?)?;
    }
    Ok(Some(Arc::new(keyring)))
}

/// How often due rollover steps are looked for.
const ROLLOVER_TICK: Duration = Duration::from_secs(1);

/// Advances key rollovers whose next step is due. Every replica runs this;
/// the step is re-checked under the zone's row lock, so it happens once.
async fn run_rollovers(store: Store, keyring: Arc<Keyring>) {
    loop {
        tokio::time::sleep(ROLLOVER_TICK).await;
        let due = match store.due_rollovers(now_ms()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "rollover scan failed");
                continue;
            }
        };
        for r in due {
            let res = async {
                let mut tx = store.pool().begin().await?;
                keyring.advance_rollover(&mut tx, &r.zone, now_ms()).await?;
                tx.commit().await?;
                Ok::<(), crate::keyring::RolloverError>(())
            }
            .await;
            if let Err(e) = res {
                tracing::warn!(zone = %r.zone, error = %e, "rollover step failed; will retry");
            }
        }
    }
}

/// `pdm key rollover`: start a rollover, or confirm the parent's new DS.
pub async fn rollover_cli(
    config: &Config,
    store: &Store,
    zone: &str,
    kind: Option<crate::dnssec::rollover::RolloverKind>,
    ds_published: bool,
) -> Result<String, Error> {
    let keyring = open_keyring(config, store)
        .await?
        .ok_or("DNSSEC is disabled in this configuration")?;
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let kind = match (ds_published, kind) {
        (true, _) => None,
        (false, Some(k)) => Some(k),
        (false, None) => return Err("say which key: --zsk, --ksk or --csk".into()),
    };
    let status = keyring
        .rollover_command(store, &origin.fqdn(), kind)
        .await?;
    Ok(serde_json::to_string_pretty(&status)?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

async fn print_demo(config: &Config, store: &Store) -> Result<(), Error> {
    // The demo token is rotated at every start: only its hash is stored, so
    // the previous one could not be shown again anyway.
    store.delete_tokens_named("demo").await?;
    let (token, _) = store.create_token("demo", &["admin".to_string()]).await?;
    let pool = config
        .pools
        .first()
        .map(|p| p.domain.without_dot())
        .unwrap_or_default();
    let http = config.http;
    let dns_port = config.dns.port();
    let dns_ip = config.dns.ip();
    println!(
        r#"
pdm demo is running (config: built-in demo, database: {db})
  DNS  {dns} (UDP+TCP)    HTTP {http}
  DNSSEC: zones are signed; private keys are sealed with the key in ./pdm.secret
  (or $PDM_SECRET_KEY). The pool's DS for its parent: pdm key ds {pool}

Admin token (shown once, valid until the next demo start):
  export PDM_TOKEN={token}

Try it:
  curl -s 'http://{http}/api/v1/pool/{pool}/check?sub=acme'
  curl -s -X POST http://{http}/api/v1/pool/{pool}/reserve -H "Authorization: Bearer $PDM_TOKEN" -d '{{"subdomain":"acme"}}'
  curl -s -X POST http://{http}/api/v1/pool/{pool}/commit  -H "Authorization: Bearer $PDM_TOKEN" \
       -d '{{"subdomain":"acme","reservationToken":"<token from reserve>","loadBalancerIP":"192.0.2.10"}}'
  dig @{dns_ip} -p {dns_port} acme.{pool} A +norec
  dig @{dns_ip} -p {dns_port} www.acme.{pool} A +norec +dnssec
  curl -s http://{http}/api/v1/zones/acme.{pool}/dnssec -H "Authorization: Bearer $PDM_TOKEN"
  curl -s -X DELETE http://{http}/api/v1/pool/{pool}/release -H "Authorization: Bearer $PDM_TOKEN" -d '{{"subdomain":"acme"}}'
"#,
        db = crate::store::redact_url(&config.database),
        dns = config.dns,
    );
    Ok(())
}

#[cfg(feature = "fake-registrars")]
fn print_fake_registrars(config: &Config, fakes: &crate::delegation::fakes::FakeRegistrars) {
    let http = config.http;
    let mut lines = String::new();
    for (id, url) in fakes.urls() {
        lines.push_str(&format!("  {:<11} {url}\n", id.as_str()));
    }
    let a = &crate::delegation::fakes::DEMO_ACCOUNTS[1];
    println!(
        r#"
Fake registrars (--fake-registrars): registrar calls go to local fakes, nothing leaves this machine.
{lines}Try byo-api offline (demo accounts: {accounts}):
  curl -s -X POST http://{http}/api/v1/registrar/{r}/validate -H "Authorization: Bearer $PDM_TOKEN" \
       -d '{{"domain":"{d}","token":"{t}"}}'
  curl -s -X POST http://{http}/api/v1/domains -H "Authorization: Bearer $PDM_TOKEN" \
       -d '{{"domain":"{d}","mode":"byo-api","registrar":"{r}","credentials":"{t}"}}'
  curl -s http://{http}/api/v1/domains/{d} -H "Authorization: Bearer $PDM_TOKEN"
"#,
        accounts = crate::delegation::fakes::DEMO_ACCOUNTS
            .iter()
            .map(|a| format!("{} {} token {}", a.registrar, a.domain, a.token))
            .collect::<Vec<_>>()
            .join("; "),
        r = a.registrar,
        d = a.domain,
        t = a.token,
    );
}

/// `pdm zone import`: parse a master file and store it as a zone.
pub async fn import_zone(store: &Store, zone: &str, path: &Path) -> Result<usize, Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (parsed_origin, records) = file::parse_master(&text, Some(origin.name()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if DomainName::from_name(&parsed_origin) != origin {
        return Err(format!(
            "{} is for zone {parsed_origin}, not {origin}",
            path.display()
        )
        .into());
    }
    let mut file_serial = 0;
    let mut rows = Vec::with_capacity(records.len());
    for r in &records {
        if !origin.name().zone_of(&r.name) {
            return Err(format!("record {} is outside zone {origin}", r.name).into());
        }
        if let RData::SOA(soa) = &r.data {
            file_serial = soa.serial;
        }
        rows.push(StoredRecord::from_record(r));
    }
    // Validate as the server will see it before writing anything.
    crate::zone::Zone::new(origin.name().clone(), records.clone())
        .map_err(|e| format!("{origin}: {e}"))?;
    store
        .import_zone(&origin.fqdn(), &rows, file_serial)
        .await?;
    Ok(rows.len())
}

/// `pdm zone import --sign`: sign an imported zone (creating keys when it has
/// none, republishing the key records otherwise).
pub async fn sign_imported(
    store: &Store,
    keyring: &Keyring,
    zone: &str,
    profile: crate::dnssec::SigningProfile,
) -> Result<(), Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let fqdn = origin.fqdn();
    let mut tx = store.pool().begin().await?;
    if crate::store::keys::zone_keys(&mut tx, &fqdn)
        .await?
        .is_empty()
    {
        keyring
            .secure_zone(&mut tx, &fqdn, profile, "import")
            .await?;
    } else {
        crate::store::keys::set_zone_dnssec(&mut tx, &fqdn, Some(profile.denial.as_str())).await?;
        keyring.publish(&mut tx, &fqdn, "import").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `pdm zone export [--signed]`: the zone as master-file text; signed adds
/// RRSIGs and the NSEC3 chain (needs the secret key).
pub async fn export_zone(
    store: &Store,
    keyring: Option<&Keyring>,
    zone: &str,
    signed: bool,
) -> Result<String, Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    if signed {
        let keyring = keyring.ok_or("--signed needs DNSSEC enabled and a secret key")?;
        let z = crate::snapshot::load_zone(store, Some(keyring), &origin.fqdn())
            .await?
            .ok_or_else(|| format!("no zone {origin}"))?;
        let signer = z
            .signer()
            .ok_or_else(|| format!("zone {origin} is not signed"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let records = crate::dnssec::export::signed_records(z.zone(), signer, now)?;
        return Ok(file::write_master(origin.name(), &records));
    }
    let Some(rows) = store.load_zone(&origin.fqdn()).await? else {
        return Err(format!("no zone {origin}").into());
    };
    let records = rows
        .iter()
        .map(StoredRecord::to_record)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(file::write_master(origin.name(), &records))
}

/// `pdm zone export`: a zone from the store ([`export_zone`]), or, with
/// `[backend] kind = "powerdns"`, a pool or child zone that PowerDNS holds
/// (as PowerDNS exports it: no DNSSEC records, PowerDNS signs on the fly).
pub async fn export_zone_any(
    config: &Arc<Config>,
    store: &Store,
    keyring: Option<&Keyring>,
    zone: &str,
    signed: bool,
) -> Result<String, Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let pdns = match powerdns_backend(config, store)? {
        Some(b) if store.load_zone(&origin.fqdn()).await?.is_none() => b,
        _ => return export_zone(store, keyring, zone, signed).await,
    };
    if signed {
        return Err(format!(
            "zone {origin} is held by PowerDNS, which signs it when answering; \
             --signed exports only zones pdm serves itself (use AXFR from PowerDNS)"
        )
        .into());
    }
    pdns.client()
        .export_zone(&origin.fqdn())
        .await?
        .ok_or_else(|| format!("no zone {origin} in the store or in PowerDNS").into())
}

/// `pdm key ds ZONE`: the DS records (SHA-256, SHA-384) the parent must hold.
pub async fn key_info(
    store: &Store,
    config: &Config,
    zone: &str,
) -> Result<Vec<crate::keyring::KeyInfo>, Error> {
    let origin = DomainName::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?;
    let fqdn = origin.fqdn();
    if store.load_zone(&fqdn).await?.is_none() {
        return Err(format!("no zone {origin}").into());
    }
    let rows = store.zone_keys(&fqdn).await?;
    if rows.is_empty() {
        return Err(format!("zone {origin} is not signed").into());
    }
    Ok(crate::keyring::key_info(
        &fqdn,
        &rows,
        config.dnssec.dnskey_ttl,
    ))
}
