//! The Go service's registrar endpoints (reference/openova-pdm.md §1.4):
//! `POST /api/v1/registrar/{r}/validate` and `/set-ns`. The caller's
//! registrar credentials come in the `token` string of the request; they are
//! used for this request only, never stored, logged or echoed. Logs carry
//! registrar, domain and outcome only.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pdm_adapters::{
    Change, Credentials, Glue, NsSet, RegistrableDomain, Registrar, RegistrarError, RegistrarId,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{authenticate, read_body, AppState};
use crate::delegation::byo::cannot_set_ns_detail;
use crate::delegation::registry::{supported, validate_domain};

/// An error answer of the registrar endpoints: the Go shape plus
/// `registrar` and `domain` (and `supported` for an unknown registrar).
#[derive(Debug)]
struct RegistrarApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    registrar: String,
    domain: Option<String>,
    supported: bool,
}

impl RegistrarApiError {
    fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<String>,
        registrar: &str,
    ) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            registrar: registrar.to_string(),
            domain: None,
            supported: false,
        }
    }

    fn domain(mut self, d: &str) -> Self {
        self.domain = Some(d.to_string());
        self
    }
}

impl IntoResponse for RegistrarApiError {
    fn into_response(self) -> Response {
        let mut body =
            json!({"error": self.code, "detail": self.detail, "registrar": self.registrar});
        if let Some(d) = &self.domain {
            body["domain"] = json!(d);
        }
        if self.supported {
            body["supported"] = json!(supported());
        }
        (self.status, Json(body)).into_response()
    }
}

/// The Go service's status mapping, plus the codes it lacked.
fn map_registrar_error(
    e: &RegistrarError,
    registrar: RegistrarId,
    domain: &str,
) -> RegistrarApiError {
    use StatusCode as S;
    let (status, code, detail) = match e {
        RegistrarError::InvalidCredentials { .. } => (
            S::UNAUTHORIZED,
            "invalid-token",
            format!("credentials rejected by {registrar}"),
        ),
        RegistrarError::AccountNotEligible { .. } => {
            (S::FORBIDDEN, "account-not-eligible", e.to_string())
        }
        RegistrarError::IpNotWhitelisted { .. } => {
            (S::FORBIDDEN, "ip-not-whitelisted", e.to_string())
        }
        RegistrarError::DomainNotInAccount { .. } => (
            S::FORBIDDEN,
            "domain-not-in-account",
            format!("{domain} is not in this {registrar} account"),
        ),
        RegistrarError::RateLimited { retry_after, .. } => (
            S::TOO_MANY_REQUESTS,
            "rate-limited",
            match retry_after {
                Some(d) => format!(
                    "{registrar} rate limit; retry after {} s",
                    d.as_secs().max(1)
                ),
                None => format!("{registrar} rate limit; retry later"),
            },
        ),
        RegistrarError::Unavailable { .. } => (
            S::BAD_GATEWAY,
            "api-unavailable",
            format!("{registrar} API unavailable; retry later"),
        ),
        RegistrarError::Unsupported { what, .. } => (
            S::NOT_IMPLEMENTED,
            "unsupported",
            format!("{registrar} cannot do this through its API: {what}"),
        ),
        RegistrarError::InvalidInput(m) => (S::UNPROCESSABLE_ENTITY, "invalid-input", m.clone()),
        RegistrarError::Rejected { .. } => (
            S::INTERNAL_SERVER_ERROR,
            "registrar-error",
            format!("{registrar} refused the request; see pdm logs by registrar+domain"),
        ),
    };
    let mut err = RegistrarApiError::new(status, code, detail, registrar.as_str()).domain(domain);
    if let RegistrarError::RateLimited {
        retry_after: Some(d),
        ..
    } = e
    {
        err.detail = format!("{} (retryAfter={})", err.detail, d.as_secs().max(1));
    }
    err
}

#[derive(Deserialize)]
struct ValidateBody {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize)]
struct SetNsBody {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    nameservers: Option<Vec<String>>,
    #[serde(default, rename = "glueIP")]
    glue_ip: Option<String>,
}

/// What every registrar request starts with: auth, the registrar, the body.
async fn prelude<T: for<'de> Deserialize<'de>>(
    s: &AppState,
    headers: &HeaderMap,
    registrar: &str,
    body: Body,
) -> Result<(RegistrarId, T), Response> {
    authenticate(s, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let name = registrar.trim().to_ascii_lowercase();
    let Some(id) = RegistrarId::parse(&name) else {
        let mut e = RegistrarApiError::new(
            StatusCode::NOT_FOUND,
            "unsupported-registrar",
            format!("no adapter for registrar {name}"),
            &name,
        );
        e.supported = true;
        return Err(e.into_response());
    };
    let bytes = read_body(body).await.map_err(IntoResponse::into_response)?;
    let parsed: T = serde_json::from_slice(&bytes).map_err(|_| {
        RegistrarApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "the body must be a JSON object",
            id.as_str(),
        )
        .into_response()
    })?;
    Ok((id, parsed))
}

/// Domain and token present, the domain registrable, the token well-formed.
fn inputs(
    id: RegistrarId,
    domain: Option<String>,
    token: Option<String>,
) -> Result<(RegistrableDomain, Credentials), RegistrarApiError> {
    let domain = domain
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            RegistrarApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing-domain",
                "domain is required",
                id.as_str(),
            )
        })?;
    let token = token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        RegistrarApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing-token",
            "token is required",
            id.as_str(),
        )
        .domain(&domain)
    })?;
    let d = RegistrableDomain::parse(&domain).map_err(|e| {
        RegistrarApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-domain",
            e.to_string(),
            id.as_str(),
        )
        .domain(&domain)
    })?;
    // A token of the wrong shape is rejected credentials, as in the Go service.
    let creds = Credentials::from_token(id, &token).map_err(|e| {
        RegistrarApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            e.to_string(),
            id.as_str(),
        )
        .domain(&domain)
    })?;
    Ok((d, creds))
}

fn adapter(
    s: &AppState,
    creds: &Credentials,
    domain: &str,
) -> Result<Box<dyn Registrar>, RegistrarApiError> {
    s.byo
        .registrars()
        .adapter(creds)
        .map_err(|e| map_registrar_error(&e, creds.registrar(), domain))
}

fn logged<T>(id: RegistrarId, domain: &str, op: &str, r: Result<T, RegistrarApiError>) -> Response
where
    T: IntoResponse,
{
    match r {
        Ok(ok) => {
            tracing::info!(registrar = %id, domain, outcome = "ok", "registrar {op}");
            ok.into_response()
        }
        Err(e) => {
            tracing::info!(registrar = %id, domain, outcome = e.code, "registrar {op}");
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
pub async fn validate(
    State(s): State<AppState>,
    Path(registrar): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (id, b) = match prelude::<ValidateBody>(&s, &headers, &registrar, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let shown = shown_domain(&b.domain);
    let r = async {
        let (d, creds) = inputs(id, b.domain, b.token)?;
        let name = d.name();
        let a = adapter(&s, &creds, &name)?;
        validate_domain(a.as_ref(), &d)
            .await
            .map_err(|e| map_registrar_error(&e, id, &name))?;
        Ok(Json(
            json!({"valid": true, "registrar": id.as_str(), "domain": name}),
        ))
    }
    .await;
    logged(id, &shown, "validate", r)
}

/// `POST /api/v1/registrar/{registrar}/set-ns` `{domain, token, nameservers, glueIP?}`.
pub async fn set_ns(
    State(s): State<AppState>,
    Path(registrar): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (id, b) = match prelude::<SetNsBody>(&s, &headers, &registrar, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let shown = shown_domain(&b.domain);
    let r = async {
        let (d, creds) = inputs(id, b.domain, b.token)?;
        let name = d.name();
        let requested = pdm_adapters::normalise_ns(b.nameservers.unwrap_or_default());
        if requested.is_empty() {
            return Err(RegistrarApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing-nameservers",
                "nameservers must list at least one host",
                id.as_str(),
            )
            .domain(&name));
        }
        let ns = NsSet::new(&requested).map_err(|e| {
            RegistrarApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-nameservers",
                e.to_string(),
                id.as_str(),
            )
            .domain(&name)
        })?;
        let glue_ip = match b
            .glue_ip
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            None => None,
            Some(g) => Some(g.parse::<std::net::Ipv4Addr>().map_err(|_| {
                RegistrarApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-glue-ip",
                    format!("glueIP {g:?} is not an IPv4 address"),
                    id.as_str(),
                )
                .domain(&name)
            })?),
        };
        let a = adapter(&s, &creds, &name)?;
        if !a.capabilities().set_ns {
            return Err(RegistrarApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "set-ns-not-supported",
                cannot_set_ns_detail(id),
                id.as_str(),
            )
            .domain(&name));
        }
        let fail = |e: RegistrarError| map_registrar_error(&e, id, &name);
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
                    return Err(RegistrarApiError::new(
                        StatusCode::NOT_IMPLEMENTED,
                        "glue-not-supported",
                        format!(
                            "{id} has no API for glue records, needed for {}",
                            in_bailiwick[0]
                        ),
                        id.as_str(),
                    )
                    .domain(&name));
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
    logged(id, &shown, "set-ns", r)
}
