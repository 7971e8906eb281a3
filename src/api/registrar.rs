//! The Go service's registrar endpoints (docs/contract.md, "Registrars"):
//! `POST /api/v1/registrar/{r}/validate` and `/set-ns`. The caller's
//! registrar credentials come in the `token` string of the request; they are
//! used for this request only, never stored, logged or echoed. Logs carry
//! registrar, domain and outcome only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pdm_adapters::{
    Change, Credentials, Glue, HostRecord, HostRecordType, NsSet, RegistrableDomain, Registrar,
    RegistrarError, RegistrarId,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::registrar_error;
use super::guard::{Caller, RawBody};
use super::{ApiError, AppState};
use crate::delegation::byo::cannot_set_ns_detail;
use crate::delegation::registry::{supported, validate_domain};

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ValidateBody {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SetNsBody {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    nameservers: Option<Vec<String>>,
    #[serde(default, rename = "glueIP")]
    glue_ip: Option<String>,
}

/// The registrar from the path (404 `unsupported-registrar` with the list),
/// then the body (400 `invalid-body`).
fn prelude<T: for<'de> Deserialize<'de>>(
    registrar: &str,
    bytes: &[u8],
) -> Result<(RegistrarId, T), ApiError> {
    let name = registrar.trim().to_ascii_lowercase();
    let Some(id) = RegistrarId::parse(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unsupported-registrar",
            format!("no adapter for registrar {name}"),
        )
        .with("registrar", name)
        .with("supported", supported()));
    };
    let parsed: T = serde_json::from_slice(bytes).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "the body must be a JSON object",
        )
        .with("registrar", id.as_str())
    })?;
    Ok((id, parsed))
}

/// An error of a registrar endpoint: the Go shape plus `registrar` and `domain`.
fn refused(
    status: StatusCode,
    code: &'static str,
    detail: impl Into<String>,
    id: RegistrarId,
    domain: &str,
) -> ApiError {
    ApiError::new(status, code, detail)
        .with("registrar", id.as_str())
        .with("domain", domain)
}

/// Domain and token present, the domain registrable, the token well-formed.
fn inputs(
    id: RegistrarId,
    domain: Option<String>,
    token: Option<String>,
) -> Result<(RegistrableDomain, Credentials), ApiError> {
    use StatusCode as S;
    let domain = domain
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "missing-domain",
                "domain is required",
            )
            .with("registrar", id.as_str())
        })?;
    let token = token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        refused(
            S::UNPROCESSABLE_ENTITY,
            "missing-token",
            "token is required",
            id,
            &domain,
        )
    })?;
    let d = RegistrableDomain::parse(&domain).map_err(|e| {
        refused(
            S::UNPROCESSABLE_ENTITY,
            "invalid-domain",
            e.to_string(),
            id,
            &domain,
        )
    })?;
    // A token of the wrong shape is rejected credentials, as in the Go service.
    let creds = Credentials::from_token(id, &token)
        .map_err(|e| refused(S::UNAUTHORIZED, "invalid-token", e.to_string(), id, &domain))?;
    Ok((d, creds))
}

fn adapter(
    s: &AppState,
    creds: &Credentials,
    domain: &str,
) -> Result<Box<dyn Registrar>, ApiError> {
    s.byo
        .registrars()
        .adapter(creds)
        .map_err(|e| registrar_error(&e, creds.registrar(), domain))
}

fn logged<T>(id: RegistrarId, domain: &str, op: &str, r: Result<T, ApiError>) -> Response
where
    T: IntoResponse,
{
    match r {
        Ok(ok) => {
            tracing::info!(registrar = %id, domain, outcome = "ok", "registrar {op}");
            ok.into_response()
        }
        Err(e) => {
            // The detail carries the registrar's own reason for a refusal
            // (never a credential), so the log says why, not only that.
            tracing::info!(registrar = %id, domain, outcome = e.code, detail = %e.detail, "registrar {op}");
            e.into_response()
        }
    }
}

/// The domain as logged: trimmed and lower-cased, empty when absent.
fn shown_domain(domain: &Option<String>) -> String {
    domain
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `POST /api/v1/registrar/{registrar}/validate` `{domain, token}`.
#[utoipa::path(post, operation_id = "registrarValidate", path = "/api/v1/registrar/{registrar}/validate", tag = "registrars", description = "Check registrar credentials and domain ownership.", params(("registrar" = String, Path, description = "cloudflare, dynadot, godaddy, namecheap or ovh")), request_body = ValidateBody, responses((status = 200, description = "valid", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "unsupported-registrar", body = super::openapi::ErrorBody), (status = 502, description = "registrar-error", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn validate(
    State(s): State<AppState>,
    _: Caller,
    Path(registrar): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<Response, ApiError> {
    let (id, b) = prelude::<ValidateBody>(&registrar, &bytes)?;
    let shown = shown_domain(&b.domain);
    let r = async {
        let (d, creds) = inputs(id, b.domain, b.token)?;
        let name = d.name();
        let a = adapter(&s, &creds, &name)?;
        validate_domain(a.as_ref(), &d)
            .await
            .map_err(|e| registrar_error(&e, id, &name))?;
        Ok(Json(
            json!({"valid": true, "registrar": id.as_str(), "domain": name}),
        ))
    }
    .await;
    Ok(logged(id, &shown, "validate", r))
}

/// `POST /api/v1/registrar/{registrar}/set-ns` `{domain, token, nameservers, glueIP?}`.
#[utoipa::path(post, operation_id = "registrarSetNs", path = "/api/v1/registrar/{registrar}/set-ns", tag = "registrars", description = "Set the domain's nameservers at the registrar.", params(("registrar" = String, Path, description = "cloudflare, dynadot, godaddy, namecheap or ovh")), request_body = SetNsBody, responses((status = 200, description = "set", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "unsupported-registrar", body = super::openapi::ErrorBody), (status = 502, description = "registrar-error", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn set_ns(
    State(s): State<AppState>,
    _: Caller,
    Path(registrar): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<Response, ApiError> {
    let (id, b) = prelude::<SetNsBody>(&registrar, &bytes)?;
    let shown = shown_domain(&b.domain);
    let r = async {
        let (d, creds) = inputs(id, b.domain, b.token)?;
        let name = d.name();
        let requested = pdm_adapters::normalise_ns(b.nameservers.unwrap_or_default());
        if requested.is_empty() {
            return Err(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing-nameservers",
                "nameservers must list at least one host",
                id,
                &name,
            ));
        }
        let ns = NsSet::new(&requested).map_err(|e| {
            refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-nameservers",
                e.to_string(),
                id,
                &name,
            )
        })?;
        let glue_ip = match b
            .glue_ip
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            None => None,
            Some(g) => Some(g.parse::<std::net::Ipv4Addr>().map_err(|_| {
                refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-glue-ip",
                    format!("glueIP {g:?} is not an IPv4 address"),
                    id,
                    &name,
                )
            })?),
        };
        let a = adapter(&s, &creds, &name)?;
        if !a.capabilities().set_ns {
            return Err(refused(
                StatusCode::NOT_IMPLEMENTED,
                "set-ns-not-supported",
                cannot_set_ns_detail(id),
                id,
                &name,
            ));
        }
        let fail = |e: RegistrarError| registrar_error(&e, id, &name);
        validate_domain(a.as_ref(), &d).await.map_err(fail)?;
        // Glue only for hosts inside the domain itself: a host elsewhere is
        // resolved through its own zone, and registries refuse glue outside
        // the domain's bailiwick.
        let mut glued = Vec::new();
        if let Some(ip) = glue_ip {
            let in_bailiwick: Vec<&String> = ns
                .hosts()
                .iter()
                .filter(|h| h.ends_with(&format!(".{name}")))
                .collect();
            if !in_bailiwick.is_empty() {
                if !a.capabilities().glue {
                    return Err(refused(
                        StatusCode::NOT_IMPLEMENTED,
                        "glue-not-supported",
                        format!(
                            "{id} has no API for glue records, needed for {}",
                            in_bailiwick[0]
                        ),
                        id,
                        &name,
                    ));
                }
                for h in in_bailiwick {
                    let glue = Glue {
                        host: h.clone(),
                        addresses: vec![std::net::IpAddr::V4(ip)],
                    };
                    a.set_glue(&d, &glue).await.map_err(fail)?;
                    glued.push(h.clone());
                }
            }
        }
        let change = a.set_ns(&d, &ns).await.map_err(fail)?;
        // Read back; if that fails the requested list is echoed (Go behaviour).
        let confirmed = match a.get_ns(&d).await {
            Ok(got) if !got.is_empty() => got.hosts().to_vec(),
            _ => ns.hosts().to_vec(),
        };
        let mut body: Value = json!({
            "success": true,
            "registrar": id.as_str(),
            "domain": name,
            "nameservers": confirmed,
            "propagation": id.propagation_hint(),
            "changed": change == Change::Applied,
        });
        if !glued.is_empty() {
            body["glue"] = json!(glued);
        }
        Ok(Json(body))
    }
    .await;
    Ok(logged(id, &shown, "set-ns", r))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SetDnsBody {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    records: Option<Vec<Value>>,
}

/// TTL when a record gives none.
const DEFAULT_HOST_TTL: u32 = 3600;

/// The Go service's `validateRecords`, plus syntax checks of the values it
/// let through to the registrar: each problem is a 422 `invalid-records`
/// naming the record by its index.
fn host_records(raw: Option<Vec<Value>>) -> Result<Vec<HostRecord>, String> {
    let raw = raw.unwrap_or_default();
    if raw.is_empty() {
        return Err("records must list at least one record".into());
    }
    raw.iter()
        .enumerate()
        .map(|(i, v)| host_record(v).map_err(|e| format!("records[{i}]: {e}")))
        .collect()
}

fn host_record(v: &Value) -> Result<HostRecord, String> {
    let obj = v.as_object().ok_or("must be an object")?;
    let text = |k: &str| match obj.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(_) => Err(format!("{k} must be a string")),
    };
    let number = |k: &str| match obj.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{k} must be an integer")),
    };
    let rtype_text = text("type")?;
    let rtype: HostRecordType = rtype_text
        .parse()
        .map_err(|_| format!("type {rtype_text:?}: want one of A, AAAA, CNAME, MX, TXT"))?;
    let value = text("value")?;
    if value.is_empty() {
        return Err("value is required".into());
    }
    let subhost = text("subhost")?;
    if subhost.len() > 253 || subhost.chars().any(|c| c.is_whitespace()) {
        return Err(format!("subhost {subhost:?} is not a host label"));
    }
    let ttl = match number("ttl")? {
        None => DEFAULT_HOST_TTL,
        Some(t) if t < 0 => return Err(format!("ttl {t} must be >= 0")),
        Some(t) => u32::try_from(t).map_err(|_| format!("ttl {t} is too large"))?,
    };
    let priority = match (rtype, number("priority")?) {
        (HostRecordType::Mx, None) => Some(0),
        (HostRecordType::Mx, Some(p)) if p < 0 => return Err(format!("priority {p} must be >= 0")),
        (HostRecordType::Mx, Some(p)) => {
            Some(u16::try_from(p).map_err(|_| format!("priority {p} is above 65535"))?)
        }
        (_, _) => None,
    };
    let bad_value = |want: &str| Err(format!("value {value:?} is not {want}"));
    match rtype {
        HostRecordType::A if value.parse::<std::net::Ipv4Addr>().is_err() => {
            return bad_value("an IPv4 address")
        }
        HostRecordType::Aaaa if value.parse::<std::net::Ipv6Addr>().is_err() => {
            return bad_value("an IPv6 address")
        }
        HostRecordType::Cname | HostRecordType::Mx
            if crate::model::DomainName::parse(&value).is_err() =>
        {
            return bad_value("a host name")
        }
        HostRecordType::Txt if value.len() > 4000 => return bad_value("at most 4000 bytes"),
        _ => {}
    }
    Ok(HostRecord {
        subhost,
        rtype,
        value,
        ttl,
        priority,
    })
}

/// `POST /api/v1/registrar/{registrar}/set-dns` `{domain, token, records}`:
/// replaces the records on the registrar's own nameservers (Dynadot,
/// Namecheap), then reads them back.
#[utoipa::path(post, operation_id = "registrarSetDns", path = "/api/v1/registrar/{registrar}/set-dns", tag = "registrars", description = "Replace the records on the registrar's own nameservers.", params(("registrar" = String, Path, description = "cloudflare, dynadot, godaddy, namecheap or ovh")), request_body = SetDnsBody, responses((status = 200, description = "set", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "unsupported-registrar", body = super::openapi::ErrorBody), (status = 501, description = "set-dns-not-supported", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn set_dns(
    State(s): State<AppState>,
    _: Caller,
    Path(registrar): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<Response, ApiError> {
    let (id, b) = prelude::<SetDnsBody>(&registrar, &bytes)?;
    let shown = shown_domain(&b.domain);
    let r = async {
        let (d, creds) = inputs(id, b.domain, b.token)?;
        let name = d.name();
        let records = host_records(b.records).map_err(|e| {
            refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid-records", e, id, &name)
        })?;
        let a = adapter(&s, &creds, &name)?;
        if !a.capabilities().host_records {
            return Err(refused(
                StatusCode::NOT_IMPLEMENTED,
                "set-dns-not-supported",
                format!("{id} has no API for records on its own nameservers; set-dns works with dynadot and namecheap"),
                id,
                &name,
            ));
        }
        let fail = |e: RegistrarError| registrar_error(&e, id, &name);
        validate_domain(a.as_ref(), &d).await.map_err(fail)?;
        let change = a.set_host_records(&d, &records).await.map_err(fail)?;
        // Read back; if that fails the requested records are echoed (Go behaviour).
        let confirmed = match a.get_host_records(&d).await {
            Ok(got) => got,
            Err(e) => {
                tracing::info!(registrar = %id, domain = %name, error = %e, "set-dns read-back failed; echoing the request");
                records.clone()
            }
        };
        Ok(Json(json!({
            "success": true,
            "registrar": id.as_str(),
            "domain": name,
            "records": confirmed,
            "propagation": id.propagation_hint(),
            "changed": change == Change::Applied,
        })))
    }
    .await;
    Ok(logged(id, &shown, "set-dns", r))
}
