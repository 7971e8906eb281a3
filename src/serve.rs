//! `pdm serve`, the composition root: builds the keyring, the zone backend,
//! the pool and byo services, the snapshot refresher, the DNS server and the
//! HTTP app from one `Config` and `Store`, wires them, and runs until
//! SIGINT/SIGTERM. Each part's own job lives in its room.

use crate::api::{self, AppState, Services};
use crate::backend::powerdns::PowerDnsBackend;
use crate::config::Config;
use crate::pool::PoolService;
use crate::server::ZoneSet;
use crate::snapshot::Refresher;
use crate::store::Store;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Why `--fake-registrars` (or `[registrars] fake = true`) fails in a
/// production build.
#[cfg(not(feature = "fake-registrars"))]
const FAKES_NOT_BUILT: &str = "pdm was built without fake-registrars: the fake registrar \
     APIs are not in this binary; rebuild with `cargo build --release --features fake-registrars` \
     (or run `cargo run --release --features fake-registrars -- serve --fake-registrars`)";

/// Run DNS + HTTP until SIGINT/SIGTERM.
pub async fn serve(config: Config, store: Store) -> Result<(), Error> {
    // Refused before anything starts: the fakes are not in this binary.
    #[cfg(not(feature = "fake-registrars"))]
    if config.registrars.fake {
        return Err(FAKES_NOT_BUILT.into());
    }
    let config = Arc::new(config);
    let keyring = crate::keyring::open_keyring(&config, &store).await?;
    let pdns = PowerDnsBackend::from_config(&store, &config)?;
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
    let mut refresher =
        Refresher::start_with(store.clone(), keyring.clone(), zones.clone(), hooks).await?;
    let served = refresher.served();

    // Zone transfers: TSIG keys (sealed with the secret key) and the ACL,
    // in force before DNS listens; NOTIFY follows every zone change.
    let secret = crate::secret::load_secret(&config)?.map(Arc::new);
    let transfers = Arc::new(crate::server::xfr::Transfers::new());
    transfers.set_policy(crate::server::xfr::acl::TransferPolicy {
        keys: crate::transfer::open_keys(&store, secret.as_deref()).await?,
        rules: crate::transfer::rules(&config),
    });
    tokio::spawn(crate::transfer::keep_policy(
        store.clone(),
        secret.clone(),
        config.clone(),
        transfers.clone(),
        Duration::from_secs(2),
    ));
    tokio::spawn(crate::transfer::keep_signatures_fresh(
        store.clone(),
        config.clone(),
        zones.clone(),
        transfers.clone(),
    ));
    let transfer_status = crate::transfer::TransferStatus::new(transfers.clone());
    let (changes_tx, changes_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(crate::transfer::notify_at_start(
        config.clone(),
        zones.clone(),
        changes_tx.clone(),
    ));
    refresher.on_change(changes_tx);
    tokio::spawn(
        crate::transfer::Notifier::new(config.clone(), zones.clone(), transfer_status.clone())
            .run(changes_rx),
    );
    if let Some(catalog) =
        crate::transfer::Catalog::new(config.clone(), store.clone(), zones.clone())
    {
        catalog.ensure().await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        refresher.on_change(tx);
        tokio::spawn(catalog.run(rx));
    }
    tokio::spawn(refresher.run());
    // This replica announces what it serves, for the change status.
    tokio::spawn(served.clone().compact_journal(config.journal.clone()));
    let stop_announcing = Arc::new(tokio::sync::Notify::new());
    let announcer = tokio::spawn(served.clone().announce(
        crate::operations::Instance::current().owner("serve"),
        Arc::clone(&stop_announcing),
    ));

    let mut runtime = crate::server::LuaRuntime::new(lua.clone(), config.lua.concurrency);
    if !config.lua.offload {
        runtime = runtime.inline();
    } else if config.lua.inline_budget_us > 0 {
        runtime = runtime.with_quick(quick_engine(&lua, &config.lua));
    }
    let records = crate::rrsets::RecordService::new(store.clone(), config.clone());
    let metrics = crate::metrics::Metrics::new();
    // RFC 2136 UPDATE: TSIG keys from the transfer policy, each key's record
    // policy from the store, answered once this node serves the change.
    let updates = crate::update::Updates::new(
        records.clone(),
        store.clone(),
        Some(served.clone()),
        metrics.update_calls(),
    );
    let handler = crate::server::Handler::new(zones.clone())
        .with_lua(Some(runtime.clone()))
        .with_packet_cache(config.packet_cache)
        .with_transfers(transfers)
        .with_rrl(config.rrl.clone())
        .with_cookies(config.cookies.clone())
        .with_tcp_limits(config.tcp.clone())
        .with_updates(Arc::new(updates));
    let mut metrics = metrics
        .with_dns(handler.clone())
        .with_lua(runtime.observer());
    if let Some(k) = &keyring {
        metrics = metrics.with_sig_cache(k.cache().clone());
    }
    // SQLite's WAL checkpoints, off the write path (store/checkpoint.rs).
    if let Some(checkpointer) = store.checkpointer().await? {
        metrics = metrics.with_checkpoints(checkpointer.stats());
        tokio::spawn(checkpointer.run(crate::store::checkpoint::INTERVAL));
    }
    crate::server::spawn_handler(config.dns, handler)
        .await
        .map_err(|e| format!("cannot listen for DNS on {}: {e}", config.dns))?;
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|e| format!("cannot listen for HTTP on {}: {e}", config.http))?;

    tokio::spawn(pool.clone().sweep_expired());

    if let Some(k) = keyring.clone() {
        tokio::spawn(crate::keyring::run_rollovers(store.clone(), k));
    }

    // byo domains: registrar endpoints (real APIs, config overrides, or the
    // local fakes), credentials sealed with the same secret key as DNSSEC
    // keys, and the durable operations worker.
    #[cfg_attr(not(feature = "fake-registrars"), allow(unused_mut))]
    let mut registrars = crate::delegation::Registrars::from_config(&config.registrars)
        .with_metrics(metrics.registrar_calls());
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
    let byo = crate::delegation::ByoService::new(
        store.clone(),
        config.clone(),
        pool.backend().clone(),
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
            tokio::spawn(b.clone().run_reconcile());
            worker
                .with_runner(crate::backend::KIND_PDNS_COMMIT, r.clone())
                .with_runner(crate::backend::KIND_PDNS_RELEASE, r.clone())
                .with_runner(crate::backend::KIND_PDNS_DOMAIN, r)
        }
        None => worker,
    };
    tokio::spawn(worker.run());

    let ready = Arc::new(AtomicBool::new(false));
    let app = api::router(AppState::new(Services {
        store: store.clone(),
        config: config.clone(),
        keyring: keyring.clone(),
        served: Some(served),
        pool: pool.clone(),
        ready: ready.clone(),
        byo,
        lua: Some(runtime.observer()),
        metrics,
        transfer: Some(transfer_status),
        records,
    }));
    tracing::info!(http = %config.http, dns = %config.dns, "pdm serving");
    if config.demo {
        crate::demo::print_demo(&config, &store).await?;
    }
    #[cfg(feature = "fake-registrars")]
    if let Some(f) = &fakes {
        crate::demo::print_fake_registrars(&config, f);
    }
    ready.store(true, Ordering::Release);
    // SIGTERM: /readyz answers 503 at once; requests are still accepted for
    // `shutdown_delay` (load balancers notice), then the listener closes and
    // requests in flight get `shutdown_grace` to finish.
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let drain = {
        let (ready, delay, grace) = (ready.clone(), config.shutdown_delay, config.shutdown_grace);
        async move {
            shutdown_signal().await;
            ready.store(false, Ordering::Release);
            tracing::info!(
                delay_secs = delay.as_secs(),
                grace_secs = grace.as_secs(),
                "draining: /readyz answers 503"
            );
            tokio::time::sleep(delay).await;
            let _ = stopping_tx.send(true);
        }
    };
    // The peer address feeds the per-source limits (api/limits.rs) and
    // credential policies limited to source networks.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(drain);
    let bound = async {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(config.shutdown_grace).await;
    };
    tokio::select! {
        served = server => served?,
        _ = bound => tracing::warn!(
            grace_secs = config.shutdown_grace.as_secs(),
            "grace period over with requests in flight; exiting"
        ),
    }
    tracing::info!("HTTP stopped");
    stop_announcing.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(2), announcer).await;
    Ok(())
}

/// The process's LUA engine, built from `[lua]` (health checks not started).
fn lua_engine(settings: &crate::config::LuaSettings) -> Result<crate::lua::LuaEngine, Error> {
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
