//! The PowerDNS Authoritative HTTP API v1, the subset tenants' tools use
//! (external-dns, octoDNS, lego, cert-manager webhooks), served by pdm
//! itself: servers, zones, RRset PATCH (REPLACE, DELETE, EXTEND, PRUNE; all
//! changes of one PATCH through one atomic `RecordService::apply`),
//! cryptokeys (read), metadata, notify and rectify. These routes speak
//! PowerDNS: its JSON shapes, status codes and `{"error": ...}` bodies
//! (`error.rs`), `X-API-Key` auth with pdm tokens and their policies
//! (`auth.rs`); the wire forms are pure (`wire.rs`). docs/powerdns-api.md
//! lists what is supported, the decisions and the accepted differences.

mod auth;
mod error;
mod wire;

pub(super) use error::negotiate;

use super::AppState;
use crate::delegation::byo::{ByoError, CreateRequest, Mode};
use crate::model::rtype::parse_type;
use crate::rrsets::{rdata, Edit, RRsetView};
use auth::{CachedCaller, PdnsCaller};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use error::PdnsError;
use hickory_proto::rr::RecordType;
use serde::Deserialize;
use serde_json::{json, Value};
use wire::{ChangeType, ZoneFacts};

/// An answer or a PowerDNS error.
type Answer<T> = Result<T, PdnsError>;

/// The 404 of an unknown path below `/api` (PowerDNS's words, negotiated).
pub(super) fn not_found(headers: &HeaderMap) -> Response {
    let json = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if json {
        (StatusCode::NOT_FOUND, Json(json!({"error": "Not Found"}))).into_response()
    } else {
        (StatusCode::NOT_FOUND, "Not Found").into_response()
    }
}

/// The largest request body: PowerDNS's `webserver-max-bodysize` default
/// (2 MB), so that a tool's PATCH of a whole zone that PowerDNS takes fits.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// A request body as JSON (PowerDNS parses it whatever its Content-Type):
/// 400 when it does not parse, 413 beyond [`MAX_BODY`].
async fn json_body(body: Body) -> Answer<Value> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| PdnsError::new(413, format!("request body exceeds {MAX_BODY} bytes")))?;
    serde_json::from_slice(&bytes).map_err(|_| PdnsError::bad_request())
}

/// A zone the caller may read.
struct Found {
    /// Lower-case FQDN.
    name: String,
    /// SOA serial.
    serial: u32,
    /// Signed.
    signed: bool,
}

impl Found {
    fn facts(&self) -> ZoneFacts<'_> {
        ZoneFacts {
            name: &self.name,
            serial: self.serial,
            dnssec: self.signed,
        }
    }
}

/// A zone the caller may read (404 otherwise, as for a zone that does not
/// exist: a scoped key does not learn other zones' names).
async fn zone_facts(s: &AppState, c: &PdnsCaller, zone_id: &str) -> Answer<Found> {
    let name = wire::zone_id_to_name(zone_id)?;
    let serial = s
        .store
        .zone_serial(&name)
        .await?
        .ok_or_else(PdnsError::not_found)?;
    if !c.policy.reads_zone(&name) {
        return Err(PdnsError::not_found());
    }
    let signed = s.store.zone_dnssec(&name).await?.is_some();
    Ok(Found {
        name,
        serial,
        signed,
    })
}

fn admin_only(c: &PdnsCaller, what: &str) -> Answer<()> {
    if c.admin {
        Ok(())
    } else {
        Err(PdnsError::forbidden(format!(
            "{what} needs an admin token; this key's policy covers records only"
        )))
    }
}

/// `GET /api`: the API versions.
#[utoipa::path(get, operation_id = "pdnsApiVersions", path = "/api", tag = "powerdns", description = "PowerDNS API discovery: the versions served.", responses((status = 200, description = "[{url, version}]", body = super::openapi::AnyObject), (status = 401, description = "Unauthorized")), security(("pdns_key" = [])))]
pub(super) async fn api_root(_: PdnsCaller) -> Json<Value> {
    Json(json!([{"url": "/api/v1", "version": 1}]))
}

/// `GET /api/v1`: the API's entry point.
#[utoipa::path(get, operation_id = "pdnsApiV1", path = "/api/v1", tag = "powerdns", description = "PowerDNS API v1 discovery.", responses((status = 200, description = "[{api_features, server_url}]", body = super::openapi::AnyObject), (status = 401, description = "Unauthorized")), security(("pdns_key" = [])))]
pub(super) async fn api_v1(_: PdnsCaller) -> Json<Value> {
    Json(json!([{"api_features": [], "server_url": "/api/v1/servers{/server}"}]))
}

/// `GET /api/v1/servers`.
#[utoipa::path(get, operation_id = "pdnsServers", path = "/api/v1/servers", tag = "powerdns", description = "The one server, `localhost`.", responses((status = 200, description = "[Server]", body = super::openapi::AnyObject), (status = 401, description = "Unauthorized")), security(("pdns_key" = [])))]
pub(super) async fn servers(_: PdnsCaller) -> Json<Value> {
    Json(json!([wire::server()]))
}

/// `GET /api/v1/servers/localhost`.
#[utoipa::path(get, operation_id = "pdnsServer", path = "/api/v1/servers/localhost", tag = "powerdns", description = "The server object.", responses((status = 200, description = "Server", body = super::openapi::AnyObject), (status = 401, description = "Unauthorized")), security(("pdns_key" = [])))]
pub(super) async fn server(_: PdnsCaller) -> Json<Value> {
    Json(wire::server())
}

/// Query of the zone list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ZonesQuery {
    /// Only this zone (absolute name).
    zone: Option<String>,
    /// `false` leaves out `dnssec` and `edited_serial`.
    dnssec: Option<String>,
}

/// `GET /api/v1/servers/localhost/zones`: the zones the key may read.
#[utoipa::path(get, operation_id = "pdnsZonesList", path = "/api/v1/servers/localhost/zones", tag = "powerdns", description = "The zones the key's policy may read (no rrsets).", params(ZonesQuery), responses((status = 200, description = "[Zone]", body = super::openapi::AnyObject), (status = 401, description = "Unauthorized"), (status = 422, description = "{error}", body = super::openapi::AnyObject)), security(("pdns_key" = [])))]
pub(super) async fn zones_list(
    State(s): State<AppState>,
    c: PdnsCaller,
    Query(q): Query<ZonesQuery>,
) -> Answer<Json<Value>> {
    let only = q.zone.as_deref().map(wire::canonical_name).transpose()?;
    let with_dnssec = q.dnssec.as_deref() != Some("false");
    let out: Vec<Value> = s
        .store
        .zone_summaries()
        .await?
        .into_iter()
        .filter(|z| only.as_ref().is_none_or(|o| *o == z.name))
        .filter(|z| c.policy.reads_zone(&z.name))
        .map(|z| {
            Value::Object(wire::zone_summary(
                &ZoneFacts {
                    name: &z.name,
                    serial: z.serial,
                    dnssec: z.signed,
                },
                with_dnssec,
            ))
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

/// Query of a zone read.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ZoneQuery {
    /// `false`: no rrsets.
    rrsets: Option<String>,
    /// Only the RRsets at this name.
    rrset_name: Option<String>,
    /// With `rrset_name`: only this type.
    rrset_type: Option<String>,
}

/// `GET /api/v1/servers/localhost/zones/{zone_id}`.
#[utoipa::path(get, operation_id = "pdnsZoneGet", path = "/api/v1/servers/localhost/zones/{zone_id}", tag = "powerdns", description = "A zone with the RRsets the key may read (DNSSEC records are not listed, as in PowerDNS).", params(("zone_id" = String, Path, description = "Zone id: the name with its dot, `/` as `=2F`"), ZoneQuery), responses((status = 200, description = "Zone", body = super::openapi::AnyObject), (status = 401, description = "Unauthorized"), (status = 404, description = "Not Found")), security(("pdns_key" = [])))]
pub(super) async fn zone_get(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path(zone_id): Path<String>,
    Query(q): Query<ZoneQuery>,
) -> Answer<Json<Value>> {
    let zone = zone_facts(&s, &c, &zone_id).await?;
    let (name, facts) = (&zone.name, zone.facts());
    if q.rrsets.as_deref() == Some("false") {
        return Ok(Json(wire::zone_detail(&facts, None)));
    }
    let owner = q
        .rrset_name
        .as_deref()
        .map(wire::canonical_name)
        .transpose()?;
    let rtype = match (&owner, q.rrset_type.as_deref()) {
        (_, None) => None,
        (None, Some(_)) => {
            return Err(PdnsError::unprocessable(
                "rrset_type given without rrset_name",
            ))
        }
        (Some(_), Some(t)) => Some(
            parse_type(t).map_err(|_| PdnsError::unprocessable(format!("Unknown type '{t}'")))?,
        ),
    };
    let sets = s
        .records
        .rrsets(name, &c.writer(), owner.as_deref(), rtype)
        .await?;
    Ok(Json(wire::zone_detail(&facts, Some(&sets))))
}

/// The current TTL of each RRset an EXTEND without a TTL names.
async fn current_ttls(
    s: &AppState,
    c: &PdnsCaller,
    zone: &str,
    changes: &[wire::Change],
) -> Answer<Vec<RRsetView>> {
    let mut out = Vec::new();
    for ch in changes {
        if ch.changetype == ChangeType::Extend && ch.ttl.is_none() && wire::in_zone(&ch.name, zone)
        {
            out.extend(
                s.records
                    .rrsets(zone, &c.writer(), Some(&ch.name), Some(ch.rtype))
                    .await?,
            );
        }
    }
    Ok(out)
}

fn edits_of(zone: &str, changes: &[wire::Change], current: &[RRsetView]) -> Answer<Vec<Edit>> {
    wire::to_edits(zone, changes, rdata::canonical, |o, t: RecordType| {
        current
            .iter()
            .find(|v| v.owner == o && v.rtype == t)
            .map(|v| v.ttl)
    })
}

/// `PATCH /api/v1/servers/localhost/zones/{zone_id}`: RRset changes, all or nothing.
#[utoipa::path(patch, operation_id = "pdnsZonePatch", path = "/api/v1/servers/localhost/zones/{zone_id}", tag = "powerdns", description = "`{\"rrsets\": [...]}` with changetype REPLACE, DELETE, EXTEND or PRUNE; all changes in one atomic write, served when it answers.", params(("zone_id" = String, Path, description = "Zone id")), request_body(content = super::openapi::AnyObject, description = "{rrsets: [RRSet]}"), responses((status = 204, description = "applied"), (status = 400, description = "Bad Request"), (status = 401, description = "Unauthorized"), (status = 403, description = "the key's policy refuses (names the rule)", body = super::openapi::AnyObject), (status = 404, description = "Not Found"), (status = 422, description = "{error} naming the RRset", body = super::openapi::AnyObject)), security(("pdns_key" = [])))]
pub(super) async fn zone_patch(
    State(s): State<AppState>,
    caller: CachedCaller,
    Path(zone_id): Path<String>,
    body: Body,
) -> Answer<Response> {
    let outcome = patch(&s, &caller.0, &zone_id, body).await;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(Patched::Written(change)) = outcome {
        super::consistency::made(&mut resp, change);
    } else {
        // Nothing was written, so neither the token nor the zone was
        // checked under the write's lock: check them now, in the order
        // PowerDNS answers (401, then 404, then what the body earned).
        caller.confirm(&s).await?;
        zone_facts(&s, &caller.0, &zone_id).await?;
        outcome?;
    }
    Ok(resp)
}

/// What a PATCH did.
enum Patched {
    /// The changes were applied (the token and the zone found under the
    /// lock), as this journal entry (none: they changed nothing).
    Written(Option<i64>),
    /// No change to make.
    Nothing,
}

/// The PATCH itself, without a read of the zone first: the write's
/// transaction finds the zone (404 otherwise) and the token.
async fn patch(s: &AppState, c: &PdnsCaller, zone_id: &str, body: Body) -> Answer<Patched> {
    let name = wire::zone_id_to_name(zone_id)?;
    if !c.policy.reads_zone(&name) {
        return Err(PdnsError::not_found());
    }
    let body = json_body(body).await?;
    let changes = wire::parse_patch(&body)?;
    let current = current_ttls(s, c, &name, &changes).await?;
    let edits = edits_of(&name, &changes, &current)?;
    if edits.is_empty() {
        return Ok(Patched::Nothing);
    }
    let applied = s.records.apply(&name, &edits, &[], &c.writer()).await?;
    Ok(Patched::Written(applied.journal_id))
}

/// `PUT /api/v1/servers/localhost/zones/{zone_id}`: zone settings.
#[utoipa::path(put, operation_id = "pdnsZonePut", path = "/api/v1/servers/localhost/zones/{zone_id}", tag = "powerdns", description = "Zone settings (admin): pdm owns the SOA, signing and rectification, so only values that match what pdm does are accepted (kind Native/Master, dnssec as configured); the rest is ignored.", params(("zone_id" = String, Path, description = "Zone id")), request_body(content = super::openapi::AnyObject, description = "Zone fields"), responses((status = 204, description = "accepted"), (status = 403, description = "not an admin key", body = super::openapi::AnyObject), (status = 404, description = "Not Found"), (status = 422, description = "a setting pdm does not have", body = super::openapi::AnyObject)), security(("pdns_key" = [])))]
pub(super) async fn zone_put(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path(zone_id): Path<String>,
    body: Body,
) -> Answer<StatusCode> {
    let Found { name, signed, .. } = zone_facts(&s, &c, &zone_id).await?;
    admin_only(&c, "changing zone settings")?;
    let body = json_body(body).await?;
    check_kind(&body)?;
    if let Some(want) = body.get("dnssec").and_then(Value::as_bool) {
        if want != signed {
            return Err(PdnsError::unprocessable(format!(
                "zone {name} is {} by pdm's [dnssec] configuration; pdm signs zones itself",
                if signed { "signed" } else { "unsigned" }
            )));
        }
    }
    if body
        .get("masters")
        .and_then(Value::as_array)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(PdnsError::unprocessable(
            "pdm serves its zones as a primary: masters are not supported",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// 422 for a kind pdm does not serve (it is every zone's primary).
fn check_kind(body: &Value) -> Answer<()> {
    match body.get("kind").and_then(Value::as_str) {
        Some(k)
            if ["slave", "secondary", "consumer", "producer"]
                .contains(&k.to_ascii_lowercase().as_str()) =>
        {
            Err(PdnsError::unprocessable(format!(
                "pdm serves its zones as a primary: kind '{k}' is not supported"
            )))
        }
        _ => Ok(()),
    }
}

/// `POST /api/v1/servers/localhost/zones`: a standalone zone (admin).
#[utoipa::path(post, operation_id = "pdnsZoneCreate", path = "/api/v1/servers/localhost/zones", tag = "powerdns", description = "Create a standalone zone (admin): a byo-manual domain in pdm (signed per [dnssec]; SOA and NS are pdm's, `nameservers` is ignored), with the rrsets given, all or nothing. Names of a pool are 422 (allocations make those).", request_body(content = super::openapi::AnyObject, description = "{name, kind, rrsets?, nameservers?}"), responses((status = 201, description = "Zone", body = super::openapi::AnyObject), (status = 403, description = "not an admin key", body = super::openapi::AnyObject), (status = 409, description = "Conflict"), (status = 422, description = "{error}", body = super::openapi::AnyObject)), security(("pdns_key" = [])))]
pub(super) async fn zone_create(
    State(s): State<AppState>,
    c: PdnsCaller,
    body: Body,
) -> Answer<Response> {
    admin_only(&c, "creating zones")?;
    let body = json_body(body).await?;
    let raw = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| PdnsError::unprocessable("Key 'name' not present or not a String"))?;
    let name = wire::canonical_name(raw)?;
    body.get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| PdnsError::unprocessable("Key 'kind' not present or not a String"))?;
    check_kind(&body)?;
    if body.get("zone").is_some_and(|z| !z.is_null()) {
        return Err(PdnsError::unprocessable(
            "zone text is not supported by pdm: give rrsets (or POST /api/v1/zones/{zone}/import)",
        ));
    }
    // The rrsets are read and checked before the zone exists; what only
    // the zone's contents decide (conflicts, bounds) is undone below.
    let changes = match body.get("rrsets") {
        Some(Value::Array(sets)) => {
            let sets: Vec<Value> = sets
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if let Some(o) = r.as_object_mut() {
                        o.entry("changetype").or_insert(json!("REPLACE"));
                    }
                    r
                })
                .collect();
            wire::parse_patch(&json!({ "rrsets": sets }))?
        }
        _ => Vec::new(),
    };
    let edits = edits_of(&name, &changes, &[])?;
    let domain = name.trim_end_matches('.').to_string();
    if s.store.zone_serial(&name).await?.is_some() {
        return Err(PdnsError::conflict());
    }
    let req = CreateRequest {
        domain: domain.clone(),
        mode: Mode::Manual,
        registrar: None,
        credentials: None,
    };
    match s.byo.create(req).await {
        Ok(_) => {}
        Err(ByoError::Exists(_) | ByoError::ZoneExists(_)) => return Err(PdnsError::conflict()),
        Err(ByoError::PoolDomain(d)) => {
            return Err(PdnsError::unprocessable(format!(
                "{d} is a pool domain (or inside one): its zones are made by allocations"
            )))
        }
        Err(ByoError::InvalidDomain(m)) => return Err(PdnsError::unprocessable(m)),
        Err(e) => return Err(PdnsError::internal("zone create", &e)),
    }
    if !edits.is_empty() {
        if let Err(e) = s.records.apply(&name, &edits, &[], &c.writer()).await {
            // All or nothing, as PowerDNS's one transaction.
            if let Err(d) = s.byo.delete(&domain).await {
                tracing::error!(zone = %name, error = %d, "cannot undo a zone whose rrsets failed");
            }
            return Err(e.into());
        }
    }
    let zone = zone_facts(&s, &c, &name).await?;
    let sets = s
        .records
        .rrsets(&zone.name, &c.writer(), None, None)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::zone_detail(&zone.facts(), Some(&sets))),
    )
        .into_response())
}

/// `DELETE /api/v1/servers/localhost/zones/{zone_id}`: a zone made by POST (admin).
#[utoipa::path(delete, operation_id = "pdnsZoneDelete", path = "/api/v1/servers/localhost/zones/{zone_id}", tag = "powerdns", description = "Delete a standalone (byo-manual) zone, its keys and its records (admin). Pool, allocation, byo-api and imported zones are 422: their own APIs remove them.", params(("zone_id" = String, Path, description = "Zone id")), responses((status = 204, description = "deleted"), (status = 403, description = "not an admin key", body = super::openapi::AnyObject), (status = 404, description = "Not Found"), (status = 422, description = "not a zone this API made", body = super::openapi::AnyObject)), security(("pdns_key" = [])))]
pub(super) async fn zone_delete(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path(zone_id): Path<String>,
) -> Answer<StatusCode> {
    let name = zone_facts(&s, &c, &zone_id).await?.name;
    admin_only(&c, "deleting zones")?;
    let domain = name.trim_end_matches('.');
    let manual = match s.byo.status(domain).await {
        Ok(st) => st.mode == Mode::Manual.as_str(),
        Err(ByoError::NotFound(_)) => false,
        Err(e) => return Err(PdnsError::internal("zone delete", &e)),
    };
    if !manual {
        return Err(PdnsError::unprocessable(format!(
            "zone {name} was not made by POST /zones (a pool, allocation, byo-api or imported zone): its own API removes it"
        )));
    }
    s.byo
        .delete(domain)
        .await
        .map_err(|e| PdnsError::internal("zone delete", &e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT .../zones/{zone_id}/notify`: pdm NOTIFYs on every change already.
#[utoipa::path(put, operation_id = "pdnsZoneNotify", path = "/api/v1/servers/localhost/zones/{zone_id}/notify", tag = "powerdns", description = "A no-op answered as PowerDNS does: pdm sends NOTIFY to its secondaries on every serial change.", params(("zone_id" = String, Path, description = "Zone id")), responses((status = 200, description = "{result}", body = super::openapi::AnyObject), (status = 404, description = "Not Found")), security(("pdns_key" = [])))]
pub(super) async fn notify(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path(zone_id): Path<String>,
) -> Answer<Json<Value>> {
    zone_facts(&s, &c, &zone_id).await?;
    Ok(Json(json!({"result": "Notification queued"})))
}

/// `PUT .../zones/{zone_id}/rectify`: pdm's signer keeps the zone rectified.
#[utoipa::path(put, operation_id = "pdnsZoneRectify", path = "/api/v1/servers/localhost/zones/{zone_id}/rectify", tag = "powerdns", description = "A no-op answered as PowerDNS does: pdm signs online, its NSEC3 chain follows every change.", params(("zone_id" = String, Path, description = "Zone id")), responses((status = 200, description = "{result}", body = super::openapi::AnyObject), (status = 404, description = "Not Found")), security(("pdns_key" = [])))]
pub(super) async fn rectify(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path(zone_id): Path<String>,
) -> Answer<Json<Value>> {
    zone_facts(&s, &c, &zone_id).await?;
    Ok(Json(json!({"result": "Rectified"})))
}

/// The rdata of a presentation RR line (`owner ttl IN TYPE rdata`).
fn rdata_of(line: &str) -> String {
    line.splitn(5, char::is_whitespace)
        .nth(4)
        .unwrap_or_default()
        .to_string()
}

/// `GET .../zones/{zone_id}/cryptokeys`: the zone's keys from the keyring.
#[utoipa::path(get, operation_id = "pdnsCryptokeys", path = "/api/v1/servers/localhost/zones/{zone_id}/cryptokeys", tag = "powerdns", description = "The zone's DNSSEC keys (never their private halves), with DS digests SHA-256 and SHA-384.", params(("zone_id" = String, Path, description = "Zone id")), responses((status = 200, description = "[Cryptokey]", body = super::openapi::AnyObject), (status = 404, description = "Not Found")), security(("pdns_key" = [])))]
pub(super) async fn cryptokeys(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path(zone_id): Path<String>,
) -> Answer<Json<Value>> {
    let name = zone_facts(&s, &c, &zone_id).await?.name;
    let rows = s.store.zone_keys(&name).await?;
    let ttl = s.keyring.as_ref().map_or(3600, |k| k.config().dnskey_ttl);
    let infos = crate::keyring::key_info(&name, &rows, ttl);
    let out: Vec<Value> = rows
        .iter()
        .zip(infos)
        .map(|(row, info)| {
            let dnskey = rdata_of(&info.dnskey);
            let flags: u16 = dnskey
                .split_whitespace()
                .next()
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            let (algorithm, bits) = wire::algorithm(row.algorithm);
            // PowerDNS writes DS digests in lower case.
            let ds: Vec<String> = info
                .ds
                .iter()
                .map(|d| rdata_of(d).to_ascii_lowercase())
                .collect();
            json!({
                "type": "Cryptokey",
                "id": row.id,
                "active": row.state == "active",
                "published": matches!(row.state.as_str(), "published" | "active" | "retired"),
                "keytype": row.role,
                "flags": flags,
                "dnskey": dnskey,
                "algorithm": algorithm,
                "bits": bits,
                "ds": ds,
            })
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

/// `GET .../zones/{zone_id}/metadata`: what pdm does, as metadata.
#[utoipa::path(get, operation_id = "pdnsMetadataList", path = "/api/v1/servers/localhost/zones/{zone_id}/metadata", tag = "powerdns", description = "The zone's metadata: SOA-EDIT-API DEFAULT (pdm bumps the serial on every change); pdm keeps no other per-zone metadata.", params(("zone_id" = String, Path, description = "Zone id")), responses((status = 200, description = "[Metadata]", body = super::openapi::AnyObject), (status = 404, description = "Not Found")), security(("pdns_key" = [])))]
pub(super) async fn metadata_list(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path(zone_id): Path<String>,
) -> Answer<Json<Value>> {
    zone_facts(&s, &c, &zone_id).await?;
    Ok(Json(json!([wire::metadata(
        "SOA-EDIT-API",
        &["DEFAULT".to_string()]
    )])))
}

/// `GET .../zones/{zone_id}/metadata/{kind}`.
#[utoipa::path(get, operation_id = "pdnsMetadataGet", path = "/api/v1/servers/localhost/zones/{zone_id}/metadata/{kind}", tag = "powerdns", description = "One metadata kind (the kinds PowerDNS 4.7's API accepts; pdm holds none of them per zone: empty).", params(("zone_id" = String, Path, description = "Zone id"), ("kind" = String, Path, description = "Metadata kind")), responses((status = 200, description = "Metadata", body = super::openapi::AnyObject), (status = 404, description = "Not Found"), (status = 422, description = "Unsupported metadata kind", body = super::openapi::AnyObject)), security(("pdns_key" = [])))]
pub(super) async fn metadata_get(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path((zone_id, kind)): Path<(String, String)>,
) -> Answer<Json<Value>> {
    zone_facts(&s, &c, &zone_id).await?;
    if !wire::valid_metadata_kind(&kind) {
        return Err(PdnsError::unprocessable(format!(
            "Unsupported metadata kind '{kind}'"
        )));
    }
    Ok(Json(wire::metadata(&kind, &[])))
}

/// Where in pdm a metadata kind's job is done instead.
fn metadata_home(kind: &str) -> &'static str {
    match kind {
        "ALLOW-AXFR-FROM" | "AXFR-SOURCE" | "ALSO-NOTIFY" | "IXFR" | "SLAVE-RENOTIFY" => {
            "transfers and NOTIFY are configured in pdm.toml [transfer]"
        }
        "ALLOW-DNSUPDATE-FROM"
        | "TSIG-ALLOW-DNSUPDATE"
        | "FORWARD-DNSUPDATE"
        | "SOA-EDIT-DNSUPDATE"
        | "NOTIFY-DNSUPDATE" => {
            "RFC 2136 UPDATE is authorised by TSIG keys with policies (POST /api/v1/tsig-keys)"
        }
        "PUBLISH-CDNSKEY" | "PUBLISH-CDS" => "pdm publishes CDS/CDNSKEY per its [dnssec] settings",
        "SOA-EDIT" => "pdm owns the SOA and bumps the serial on every change",
        _ => "pdm keeps no per-zone metadata",
    }
}

/// `PUT .../zones/{zone_id}/metadata/{kind}`.
#[utoipa::path(put, operation_id = "pdnsMetadataPut", path = "/api/v1/servers/localhost/zones/{zone_id}/metadata/{kind}", tag = "powerdns", description = "Set a metadata kind (admin): accepted when it matches what pdm does (empty); otherwise 422 saying where pdm configures it.", params(("zone_id" = String, Path, description = "Zone id"), ("kind" = String, Path, description = "Metadata kind")), request_body(content = super::openapi::AnyObject, description = "{metadata: [string]}"), responses((status = 200, description = "Metadata", body = super::openapi::AnyObject), (status = 403, description = "not an admin key", body = super::openapi::AnyObject), (status = 404, description = "Not Found"), (status = 422, description = "Unsupported metadata kind, or not settable in pdm", body = super::openapi::AnyObject)), security(("pdns_key" = [])))]
pub(super) async fn metadata_put(
    State(s): State<AppState>,
    c: PdnsCaller,
    Path((zone_id, kind)): Path<(String, String)>,
    body: Body,
) -> Answer<Json<Value>> {
    zone_facts(&s, &c, &zone_id).await?;
    admin_only(&c, "changing zone metadata")?;
    let body = json_body(body).await?;
    if !wire::valid_metadata_kind(&kind) {
        return Err(PdnsError::unprocessable(format!(
            "Unsupported metadata kind '{kind}'"
        )));
    }
    let values = body
        .get("metadata")
        .and_then(Value::as_array)
        .ok_or_else(|| PdnsError::unprocessable("Key 'metadata' not present or not an Array"))?;
    if !values.is_empty() {
        return Err(PdnsError::unprocessable(format!(
            "Metadata kind '{kind}' cannot be set in pdm: {}",
            metadata_home(&kind)
        )));
    }
    Ok(Json(wire::metadata(&kind, &[])))
}
