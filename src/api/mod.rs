//! The HTTP API (axum): the Go service's pool endpoints, registrar and byo
//! endpoints, DNSSEC and status reads. Every handler states its guards in
//! its signature (`guard.rs`); `Idempotency-Key` is one layer
//! (`idempotency.rs`); typed errors become HTTP answers in one table
//! (`error.rs`).

mod allocation;
mod changes;
mod consistency;
mod credentials;
mod dnssec;
mod domains;
mod error;
mod fuzz;
mod guard;
mod idempotency;
mod limits;
mod observe;
mod openapi;
mod pdns;
mod pool;
mod registrar;
mod rrsets;
mod status;
mod zones;

use crate::config::Config;
use crate::keyring::Keyring;
use crate::pool::PoolService;
use crate::store::Store;
use axum::routing::{delete, get, post, put};
use axum::Router;
pub use error::ApiError;
pub use fuzz::fuzz_bodies;
pub use guard::MAX_BODY;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What the handlers are given: one shared [`Services`]. Every extractor
/// and middleware layer clones the state per request, so it is one
/// reference count rather than a dozen.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// The state handing out `services`.
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services and the pieces the handlers hand out.
pub struct Services {
    /// The store (tokens, idempotency answers, zones, operations).
    pub store: Store,
    /// The configuration pdm runs with.
    pub config: Arc<Config>,
    /// The DNSSEC keyring, when zones are signed.
    pub keyring: Option<Arc<Keyring>>,
    /// The allocation service.
    pub pool: PoolService,
    /// Set once DNS and HTTP are both serving.
    pub ready: Arc<AtomicBool>,
    /// Managed byo domains and the registrar endpoints.
    pub byo: crate::delegation::ByoService,
    /// What this node's DNS serves: writes wait on it before answering 2xx
    /// (`None` where nothing is served).
    pub served: Option<crate::snapshot::Served>,
    /// The LUA records' health checker and counters.
    pub lua: Option<crate::lua::LuaObserver>,
    /// What `/metrics` exposes; HTTP requests are counted into it.
    pub metrics: crate::metrics::Metrics,
    /// Transfers served and NOTIFY per secondary (`None` where nothing is served).
    pub transfer: Option<crate::transfer::TransferStatus>,
    /// Record reads and writes (RRset API, PowerDNS API).
    pub records: crate::rrsets::RecordService,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    let limits = limits::Limits::new(&state.config.api);
    // Writes that honour `Idempotency-Key`. The registrar endpoints are not
    // among them: their bodies carry the caller's registrar credentials,
    // which pdm keeps no trace of, not even a hash.
    let writes = Router::new()
        .route("/api/v1/pool/{domain}/reserve", post(pool::reserve))
        .route("/api/v1/pool/{domain}/commit", post(pool::commit))
        .route("/api/v1/release", post(pool::release_fqdn))
        .route("/api/v1/force-release", post(pool::force_release))
        .route(
            "/api/v1/zones/{zone}/dnssec/rollover",
            post(dnssec::start_rollover),
        )
        .route(
            "/api/v1/zones/{zone}/dnssec/rollover/ds-published",
            post(dnssec::confirm_ds),
        )
        .route("/api/v1/domains", post(domains::create).get(domains::list))
        .route("/api/v1/zones", post(zones::create))
        .route(
            "/api/v1/zones/{zone}/rrsets",
            get(rrsets::list)
                .post(rrsets::create)
                .put(rrsets::replace_many)
                .patch(rrsets::patch_many),
        )
        .route(
            "/api/v1/zones/{zone}/rrsets/{subname}/{type}",
            get(rrsets::get_one)
                .put(rrsets::put_one)
                .patch(rrsets::patch_one)
                .delete(rrsets::delete_one),
        )
        .route("/api/v1/zones/{zone}/import", post(rrsets::import))
        .route(
            "/api/v1/tokens",
            post(credentials::create_token).get(credentials::list_tokens),
        )
        .route(
            "/api/v1/tsig-keys",
            post(credentials::create_tsig).get(credentials::list_tsig),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ));
    // The PowerDNS-compatible API: its own error shapes (`pdns::negotiate`),
    // X-API-Key auth, no Idempotency-Key (PowerDNS has none; its PATCHes
    // are idempotent by construction).
    let powerdns = Router::new()
        .route("/api", get(pdns::api_root))
        .route("/api/v1", get(pdns::api_v1))
        .route("/api/v1/servers", get(pdns::servers))
        .route("/api/v1/servers/localhost", get(pdns::server))
        .route(
            "/api/v1/servers/localhost/zones",
            get(pdns::zones_list).post(pdns::zone_create),
        )
        .route(
            "/api/v1/servers/localhost/zones/{zone_id}",
            get(pdns::zone_get)
                .put(pdns::zone_put)
                .patch(pdns::zone_patch)
                .delete(pdns::zone_delete),
        )
        .route(
            "/api/v1/servers/localhost/zones/{zone_id}/notify",
            put(pdns::notify),
        )
        .route(
            "/api/v1/servers/localhost/zones/{zone_id}/rectify",
            put(pdns::rectify),
        )
        .route(
            "/api/v1/servers/localhost/zones/{zone_id}/cryptokeys",
            get(pdns::cryptokeys),
        )
        .route(
            "/api/v1/servers/localhost/zones/{zone_id}/metadata",
            get(pdns::metadata_list),
        )
        .route(
            "/api/v1/servers/localhost/zones/{zone_id}/metadata/{kind}",
            get(pdns::metadata_get).put(pdns::metadata_put),
        )
        .layer(axum::middleware::from_fn(pdns::negotiate));
    Router::new()
        .merge(writes)
        .merge(powerdns)
        .route("/healthz", get(status::healthz))
        .route("/livez", get(status::livez))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(status::metrics))
        .route("/api/v1/reserved", get(status::reserved))
        .route("/api/v1/pool/{domain}/check", get(pool::check))
        .route("/api/v1/pool/{domain}/release", delete(pool::release))
        .route("/api/v1/pool/{domain}/list", get(pool::list))
        .route(
            "/api/v1/pool/{domain}/allocations/{sub}",
            get(allocation::get)
                .put(allocation::put)
                .delete(allocation::delete),
        )
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/zones/{zone}/dnssec", get(dnssec::status))
        .route(
            "/api/v1/registrar/{registrar}/validate",
            post(registrar::validate),
        )
        .route(
            "/api/v1/registrar/{registrar}/set-ns",
            post(registrar::set_ns),
        )
        .route(
            "/api/v1/registrar/{registrar}/set-dns",
            post(registrar::set_dns),
        )
        .route("/api/v1/health-checks", get(status::health_checks))
        .route("/api/v1/transfers", get(status::transfers))
        .route("/api/v1/operations/{id}", get(status::operation))
        .route("/api/v1/changes/{id}", get(changes::status))
        .route("/api/v1/zones/{zone}/export", get(rrsets::export))
        .route("/api/v1/tokens/{id}", delete(credentials::delete_token))
        .route("/api/v1/tsig-keys/{name}", delete(credentials::delete_tsig))
        .route("/api/v1/audit", get(credentials::audit))
        .route(
            "/api/v1/domains/{domain}",
            get(domains::get).delete(domains::delete),
        )
        .route_layer(axum::middleware::from_fn(observe::tag_route))
        .fallback(
            |uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
                // Below /api/v1/servers the PowerDNS API answers in its words.
                if uri.path() == "/api" || uri.path().starts_with("/api/v1/servers") {
                    return pdns::not_found(&headers);
                }
                axum::response::IntoResponse::into_response(ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "not-found",
                    "no such endpoint",
                ))
            },
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            consistency::layer,
        ))
        // Inside `observe`: refused and timed-out requests are logged and counted.
        .layer(axum::middleware::from_fn_with_state(limits, limits::layer))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::layer,
        ))
        .with_state(state)
}
