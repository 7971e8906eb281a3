//! pdm's RRset API (deSEC's is the model): read and write the RRsets of a
//! served zone, one at a time or as an atomic bulk, and a zone file's worth
//! at once. Every write goes through `rrsets::RecordService` (zone rules,
//! the caller's policy, journal, audit) and is served when it answers.

use super::guard::{BodyShape, JsonBody, RawBody, RecordCaller};
use super::{ApiError, AppState};
use crate::model::rtype::{parse_type, type_name};
use crate::rrsets::{
    owner_fqdn, rdata, zone_fqdn, Applied, Edit, Invalid, RRsetView, RecordError, WritePath,
};
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hickory_proto::rr::RecordType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Response header carrying the zone's serial after a write.
const SERIAL_HEADER: &str = "pdm-zone-serial";

/// An RRset as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RRsetBody {
    /// Owner, absolute.
    name: String,
    /// Owner relative to the zone; empty at the apex.
    subname: String,
    /// Type mnemonic.
    #[serde(rename = "type")]
    rtype: String,
    ttl: u32,
    /// Presentation-format record data.
    records: Vec<String>,
    /// pdm writes it (SOA, apex NS, DNSSEC): read-only.
    managed: bool,
    /// The pool's template wrote it: writable only with a policy that allows it.
    template: bool,
}

fn body_of(zone: &str, v: RRsetView) -> RRsetBody {
    RRsetBody {
        subname: subname(&v.owner, zone),
        name: v.owner,
        rtype: type_name(v.rtype),
        ttl: v.ttl,
        records: v.rdata,
        managed: v.managed,
        template: v.template,
    }
}

fn subname(owner: &str, zone: &str) -> String {
    owner
        .strip_suffix(zone)
        .map(|s| s.trim_end_matches('.').to_string())
        .unwrap_or_default()
}

/// One RRset as written: `ttl` and `records` may be left out of a PATCH.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RRsetInput {
    /// Owner relative to the zone (`""` or `@` for the apex).
    #[serde(default)]
    subname: Option<String>,
    /// Type mnemonic.
    #[serde(rename = "type", default)]
    rtype: Option<String>,
    #[serde(default)]
    ttl: Option<u32>,
    /// Presentation-format record data; empty: the RRset goes.
    #[serde(default)]
    records: Option<Vec<String>>,
}

/// One RRset or a list of them.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum RRsetsInput {
    /// A list (bulk, atomic).
    Many(Vec<RRsetInput>),
    /// One.
    One(RRsetInput),
}

impl BodyShape for RRsetsInput {}
impl BodyShape for RRsetInput {}

impl RRsetsInput {
    fn into_vec(self) -> Vec<RRsetInput> {
        match self {
            RRsetsInput::Many(v) => v,
            RRsetsInput::One(o) => vec![o],
        }
    }
}

/// Query of the list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only this owner (relative; `@` for the apex).
    subname: Option<String>,
    /// Only this type.
    #[serde(rename = "type")]
    rtype: Option<String>,
}

fn bad(kind: Invalid, rrset: String, detail: impl Into<String>) -> ApiError {
    RecordError::invalid(kind, rrset, detail.into()).into()
}

/// `subname` under `zone` as an owner FQDN.
fn owner_of(zone: &str, sub: &str) -> Result<String, ApiError> {
    let sub = sub.trim();
    if sub.is_empty() || sub == "@" || sub == "..." {
        return Ok(zone.to_string());
    }
    if sub.ends_with('.') {
        return Err(bad(
            Invalid::InvalidName,
            sub.to_string(),
            "subname is relative to the zone (no trailing dot)",
        ));
    }
    Ok(owner_fqdn(&format!("{sub}.{zone}"))?)
}

fn type_of(t: &str, rrset: &str) -> Result<RecordType, ApiError> {
    parse_type(t).map_err(|e| bad(Invalid::InvalidType, rrset.to_string(), e))
}

/// A typed key and its canonical rdata.
struct Parsed {
    owner: String,
    rtype: RecordType,
    ttl: Option<u32>,
    records: Option<Vec<String>>,
}

fn parse_input(zone: &str, i: RRsetInput, fixed: Option<(&str, &str)>) -> Result<Parsed, ApiError> {
    let (sub, t) = match fixed {
        Some((s, t)) => (s.to_string(), t.to_string()),
        None => (
            i.subname.clone().unwrap_or_default(),
            i.rtype.clone().ok_or_else(|| {
                bad(
                    Invalid::InvalidType,
                    i.subname.clone().unwrap_or_default(),
                    "type is required",
                )
            })?,
        ),
    };
    let owner = owner_of(zone, &sub)?;
    let rtype = type_of(&t, &format!("{owner} {t}"))?;
    let what = format!("{owner} {}", type_name(rtype));
    // pdm's own types are refused as such, before their data is read.
    if owner == zone || owner.ends_with(&format!(".{zone}")) {
        crate::rrsets::writable(zone, &owner, rtype)
            .map_err(|(kind, detail)| bad(kind, what.clone(), detail))?;
    }
    let records = i
        .records
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    rdata::canonical(&owner, rtype, r).map_err(|e| {
                        bad(Invalid::InvalidRdata, what.clone(), format!("{r:?}: {e}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(Parsed {
        owner,
        rtype,
        ttl: i.ttl,
        records,
    })
}

/// `PUT` semantics: `ttl` needed unless the RRset goes.
fn replace_edit(p: Parsed) -> Result<Edit, ApiError> {
    let what = format!("{} {}", p.owner, type_name(p.rtype));
    let records = p.records.ok_or_else(|| {
        bad(
            Invalid::InvalidRdata,
            what.clone(),
            "records is required ([] deletes)",
        )
    })?;
    let ttl = match (p.ttl, records.is_empty()) {
        (Some(t), _) => t,
        (None, true) => 0,
        (None, false) => return Err(bad(Invalid::TtlOutOfRange, what, "ttl is required")),
    };
    Ok(Edit::Replace {
        owner: p.owner,
        rtype: p.rtype,
        ttl,
        rdata: records,
    })
}

/// `PATCH` semantics: what is left out is kept.
fn patch_edit(p: Parsed, current: Option<&RRsetView>) -> Result<Edit, ApiError> {
    let what = format!("{} {}", p.owner, type_name(p.rtype));
    let records = match (p.records, current) {
        (Some(r), _) => r,
        (None, Some(c)) => c.rdata.clone(),
        (None, None) => {
            return Err(bad(
                Invalid::InvalidRdata,
                what,
                "records is required for a new RRset",
            ))
        }
    };
    let ttl = p
        .ttl
        .or(current.map(|c| c.ttl))
        .or(records.is_empty().then_some(0))
        .ok_or_else(|| {
            bad(
                Invalid::TtlOutOfRange,
                what,
                "ttl is required for a new RRset",
            )
        })?;
    Ok(Edit::Replace {
        owner: p.owner,
        rtype: p.rtype,
        ttl,
        rdata: records,
    })
}

fn no_duplicates(edits: &[Edit]) -> Result<(), ApiError> {
    let mut seen = std::collections::BTreeSet::new();
    for e in edits {
        if let Edit::Replace { owner, rtype, .. } = e {
            if !seen.insert((owner.clone(), u16::from(*rtype))) {
                return Err(bad(
                    Invalid::InvalidName,
                    e.describe(),
                    "the same RRset twice in one request",
                ));
            }
        }
    }
    Ok(())
}

/// The RRsets after a write, with the serial header.
async fn answer(
    s: &AppState,
    c: &RecordCaller,
    zone: &str,
    status: StatusCode,
    applied: &Applied,
    keys: &[(String, RecordType)],
) -> Result<Response, ApiError> {
    let owners: Vec<String> = keys.iter().map(|(o, _)| o.clone()).collect();
    let all = s
        .records
        .rrsets_at(zone, &c.writer(WritePath::RrsetApi), &owners)
        .await?;
    let out: Vec<RRsetBody> = all
        .into_iter()
        .filter(|v| keys.iter().any(|(o, t)| *o == v.owner && *t == v.rtype))
        .map(|v| body_of(zone, v))
        .collect();
    let mut resp = (status, Json(out)).into_response();
    stamp(&mut resp, applied);
    Ok(resp)
}

/// The answer to a write names the serial it made, and the journal entry
/// the read-your-writes layer waits for.
fn stamp(resp: &mut Response, applied: &Applied) {
    resp.headers_mut()
        .insert(SERIAL_HEADER, HeaderValue::from(applied.serial));
    super::consistency::made(resp, applied.journal_id);
}

fn keys_of(edits: &[Edit]) -> Vec<(String, RecordType)> {
    edits
        .iter()
        .filter_map(|e| match e {
            Edit::Replace { owner, rtype, .. } => Some((owner.clone(), *rtype)),
            _ => None,
        })
        .collect()
}

/// `GET /api/v1/zones/{zone}/rrsets`.
#[utoipa::path(get, operation_id = "rrsetsList", path = "/api/v1/zones/{zone}/rrsets", tag = "records", description = "The RRsets of a zone the caller may read.", params(("zone" = String, Path, description = "Zone name"), ListQuery), responses((status = 200, description = "RRsets", body = [RRsetBody]), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list(
    State(s): State<AppState>,
    Path(zone): Path<String>,
    Query(q): Query<ListQuery>,
    c: RecordCaller,
) -> Result<Json<Vec<RRsetBody>>, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let owner = q
        .subname
        .as_deref()
        .map(|sub| owner_of(&zone, sub))
        .transpose()?;
    let rtype = q.rtype.as_deref().map(|t| type_of(t, t)).transpose()?;
    let v = s
        .records
        .rrsets(
            &zone,
            &c.writer(WritePath::RrsetApi),
            owner.as_deref(),
            rtype,
        )
        .await?;
    Ok(Json(v.into_iter().map(|v| body_of(&zone, v)).collect()))
}

/// `POST /api/v1/zones/{zone}/rrsets`: create one RRset or several (409 if any exists).
#[utoipa::path(post, operation_id = "rrsetsCreate", path = "/api/v1/zones/{zone}/rrsets", tag = "records", description = "Create RRsets (one object or a list; all or nothing; 409 if one exists).", params(("zone" = String, Path, description = "Zone name")), request_body = RRsetsInput, responses((status = 201, description = "created", body = [RRsetBody]), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody), (status = 409, description = "rrset-exists", body = super::openapi::ErrorBody), (status = 422, description = "invalid RRset (the error names it)", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create(
    State(s): State<AppState>,
    Path(zone): Path<String>,
    c: RecordCaller,
    JsonBody(b): JsonBody<RRsetsInput>,
) -> Result<Response, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let mut edits = Vec::new();
    let mut prereqs = Vec::new();
    for i in b.into_vec() {
        let e = replace_edit(parse_input(&zone, i, None)?)?;
        if let Edit::Replace {
            owner,
            rtype,
            rdata,
            ..
        } = &e
        {
            if rdata.is_empty() {
                return Err(bad(
                    Invalid::InvalidRdata,
                    e.describe(),
                    "a new RRset needs records",
                ));
            }
            prereqs.push(crate::rrsets::Prereq::RRsetAbsent {
                owner: owner.clone(),
                rtype: *rtype,
            });
        }
        edits.push(e);
    }
    no_duplicates(&edits)?;
    let applied = s
        .records
        .apply(&zone, &edits, &prereqs, &c.writer(WritePath::RrsetApi))
        .await
        .map_err(|e| match e {
            RecordError::Prerequisite { detail, .. } => {
                RecordError::Exists(detail.trim_end_matches(" exists").to_string())
            }
            e => e,
        })?;
    answer(
        &s,
        &c,
        &zone,
        StatusCode::CREATED,
        &applied,
        &keys_of(&edits),
    )
    .await
}

/// `PUT /api/v1/zones/{zone}/rrsets`: set each listed RRset (atomic; `records: []` deletes).
#[utoipa::path(put, operation_id = "rrsetsReplace", path = "/api/v1/zones/{zone}/rrsets", tag = "records", description = "Replace the listed RRsets, all or nothing; records [] deletes one.", params(("zone" = String, Path, description = "Zone name")), request_body = RRsetsInput, responses((status = 200, description = "the listed RRsets that exist now", body = [RRsetBody]), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody), (status = 422, description = "invalid RRset (the error names it)", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn replace_many(
    State(s): State<AppState>,
    Path(zone): Path<String>,
    c: RecordCaller,
    JsonBody(b): JsonBody<RRsetsInput>,
) -> Result<Response, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let edits = b
        .into_vec()
        .into_iter()
        .map(|i| parse_input(&zone, i, None).and_then(replace_edit))
        .collect::<Result<Vec<_>, _>>()?;
    no_duplicates(&edits)?;
    let applied = s
        .records
        .apply(&zone, &edits, &[], &c.writer(WritePath::RrsetApi))
        .await?;
    answer(&s, &c, &zone, StatusCode::OK, &applied, &keys_of(&edits)).await
}

/// `PATCH /api/v1/zones/{zone}/rrsets`: like PUT, but what is left out is kept.
#[utoipa::path(patch, operation_id = "rrsetsPatch", path = "/api/v1/zones/{zone}/rrsets", tag = "records", description = "Change the listed RRsets, all or nothing; ttl or records left out are kept.", params(("zone" = String, Path, description = "Zone name")), request_body = RRsetsInput, responses((status = 200, description = "the listed RRsets that exist now", body = [RRsetBody]), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody), (status = 422, description = "invalid RRset (the error names it)", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_many(
    State(s): State<AppState>,
    Path(zone): Path<String>,
    c: RecordCaller,
    JsonBody(b): JsonBody<RRsetsInput>,
) -> Result<Response, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let parsed = b
        .into_vec()
        .into_iter()
        .map(|i| parse_input(&zone, i, None))
        .collect::<Result<Vec<_>, _>>()?;
    let owners: Vec<String> = parsed.iter().map(|p| p.owner.clone()).collect();
    let current = s
        .records
        .rrsets_at(&zone, &c.writer(WritePath::RrsetApi), &owners)
        .await?;
    let edits = parsed
        .into_iter()
        .map(|p| {
            let cur = current
                .iter()
                .find(|v| v.owner == p.owner && v.rtype == p.rtype);
            patch_edit(p, cur)
        })
        .collect::<Result<Vec<_>, _>>()?;
    no_duplicates(&edits)?;
    let applied = s
        .records
        .apply(&zone, &edits, &[], &c.writer(WritePath::RrsetApi))
        .await?;
    answer(&s, &c, &zone, StatusCode::OK, &applied, &keys_of(&edits)).await
}

/// `GET /api/v1/zones/{zone}/rrsets/{subname}/{type}`.
#[utoipa::path(get, operation_id = "rrsetGet", path = "/api/v1/zones/{zone}/rrsets/{subname}/{type}", tag = "records", description = "One RRset (`@` is the apex).", params(("zone" = String, Path, description = "Zone name"), ("subname" = String, Path, description = "Owner relative to the zone; @ for the apex"), ("type" = String, Path, description = "Type")), responses((status = 200, description = "the RRset", body = RRsetBody), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found or rrset-not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get_one(
    State(s): State<AppState>,
    Path((zone, sub, t)): Path<(String, String, String)>,
    c: RecordCaller,
) -> Result<Json<RRsetBody>, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let owner = owner_of(&zone, &sub)?;
    let rtype = type_of(&t, &format!("{owner} {t}"))?;
    let v = s
        .records
        .rrsets(
            &zone,
            &c.writer(WritePath::RrsetApi),
            Some(&owner),
            Some(rtype),
        )
        .await?;
    v.into_iter()
        .next()
        .map(|v| Json(body_of(&zone, v)))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "rrset-not-found",
                format!(
                    "{owner} {} does not exist (or the policy hides it)",
                    type_name(rtype)
                ),
            )
            .with("rrset", format!("{owner} {}", type_name(rtype)))
        })
}

/// One RRset written: 200 with it, or 204 when it went.
async fn write_one(
    s: &AppState,
    c: &RecordCaller,
    zone: &str,
    edit: Edit,
) -> Result<Response, ApiError> {
    let gone = matches!(&edit, Edit::Replace { rdata, .. } if rdata.is_empty());
    let keys = keys_of(std::slice::from_ref(&edit));
    let applied = s
        .records
        .apply(zone, &[edit], &[], &c.writer(WritePath::RrsetApi))
        .await?;
    if gone {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        stamp(&mut resp, &applied);
        return Ok(resp);
    }
    let all = s
        .records
        .rrsets(
            zone,
            &c.writer(WritePath::RrsetApi),
            Some(&keys[0].0),
            Some(keys[0].1),
        )
        .await?;
    let body = all.into_iter().next().map(|v| body_of(zone, v));
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    stamp(&mut resp, &applied);
    Ok(resp)
}

/// `PUT /api/v1/zones/{zone}/rrsets/{subname}/{type}`.
#[utoipa::path(put, operation_id = "rrsetPut", path = "/api/v1/zones/{zone}/rrsets/{subname}/{type}", tag = "records", description = "Set one RRset (`records: []` deletes it: 204).", params(("zone" = String, Path, description = "Zone name"), ("subname" = String, Path, description = "Owner relative to the zone; @ for the apex"), ("type" = String, Path, description = "Type")), request_body = RRsetInput, responses((status = 200, description = "the RRset", body = RRsetBody), (status = 204, description = "deleted"), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody), (status = 422, description = "invalid RRset", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn put_one(
    State(s): State<AppState>,
    Path((zone, sub, t)): Path<(String, String, String)>,
    c: RecordCaller,
    JsonBody(b): JsonBody<RRsetInput>,
) -> Result<Response, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let edit = replace_edit(parse_input(&zone, b, Some((&sub, &t)))?)?;
    write_one(&s, &c, &zone, edit).await
}

/// `PATCH /api/v1/zones/{zone}/rrsets/{subname}/{type}`.
#[utoipa::path(patch, operation_id = "rrsetPatch", path = "/api/v1/zones/{zone}/rrsets/{subname}/{type}", tag = "records", description = "Change one RRset's ttl or records (what is left out is kept).", params(("zone" = String, Path, description = "Zone name"), ("subname" = String, Path, description = "Owner relative to the zone; @ for the apex"), ("type" = String, Path, description = "Type")), request_body = RRsetInput, responses((status = 200, description = "the RRset", body = RRsetBody), (status = 204, description = "deleted"), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody), (status = 422, description = "invalid RRset", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn patch_one(
    State(s): State<AppState>,
    Path((zone, sub, t)): Path<(String, String, String)>,
    c: RecordCaller,
    JsonBody(b): JsonBody<RRsetInput>,
) -> Result<Response, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let p = parse_input(&zone, b, Some((&sub, &t)))?;
    let cur = s
        .records
        .rrsets(
            &zone,
            &c.writer(WritePath::RrsetApi),
            Some(&p.owner),
            Some(p.rtype),
        )
        .await?;
    let edit = patch_edit(p, cur.first())?;
    write_one(&s, &c, &zone, edit).await
}

/// `DELETE /api/v1/zones/{zone}/rrsets/{subname}/{type}`: 204, also when it did not exist.
#[utoipa::path(delete, operation_id = "rrsetDelete", path = "/api/v1/zones/{zone}/rrsets/{subname}/{type}", tag = "records", description = "Delete one RRset (204 also when there was none).", params(("zone" = String, Path, description = "Zone name"), ("subname" = String, Path, description = "Owner relative to the zone; @ for the apex"), ("type" = String, Path, description = "Type")), responses((status = 204, description = "deleted"), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody), (status = 422, description = "managed RRset", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_one(
    State(s): State<AppState>,
    Path((zone, sub, t)): Path<(String, String, String)>,
    c: RecordCaller,
) -> Result<Response, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let owner = owner_of(&zone, &sub)?;
    let rtype = type_of(&t, &format!("{owner} {t}"))?;
    write_one(
        &s,
        &c,
        &zone,
        Edit::Replace {
            owner,
            rtype,
            ttl: 0,
            rdata: Vec::new(),
        },
    )
    .await
}

/// `GET /api/v1/zones/{zone}/export`: the RRsets the caller may read, as a zone file.
#[utoipa::path(get, operation_id = "zoneExport", path = "/api/v1/zones/{zone}/export", tag = "records", description = "The zone as master-file text (what the caller may read; DNSSEC records are added when served).", params(("zone" = String, Path, description = "Zone name")), responses((status = 200, description = "text/dns", content_type = "text/dns", body = String), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn export(
    State(s): State<AppState>,
    Path(zone): Path<String>,
    c: RecordCaller,
) -> Result<Response, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let v = s
        .records
        .rrsets(&zone, &c.writer(WritePath::RrsetApi), None, None)
        .await?;
    let mut out = format!("$ORIGIN {zone}\n");
    // The DNSSEC records are pdm's and made afresh (a signed copy comes by
    // AXFR); left out, the export imports back as it is. SOA first.
    let v = v
        .into_iter()
        .filter(|r| r.rtype == RecordType::SOA || !crate::rrsets::managed_type(r.rtype));
    let (soa, rest): (Vec<_>, Vec<_>) = v.partition(|r| r.rtype == RecordType::SOA);
    for r in soa.into_iter().chain(rest) {
        for d in &r.rdata {
            out.push_str(&format!(
                "{} {} IN {} {d}\n",
                r.owner,
                r.ttl,
                type_name(r.rtype)
            ));
        }
    }
    let mut resp = out.into_response();
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/dns"));
    Ok(resp)
}

/// Query of an import.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportQuery {
    /// Also delete the writable RRsets the file does not have.
    #[serde(default)]
    replace: bool,
}

/// `POST /api/v1/zones/{zone}/import`: set every RRset of a zone file (atomic).
#[utoipa::path(post, operation_id = "zoneImport", path = "/api/v1/zones/{zone}/import", tag = "records", description = "Set every RRset of a master file (text body), all or nothing. SOA, apex NS and DNSSEC records in it are skipped (pdm's); with replace=true the writable RRsets it lacks are deleted.", params(("zone" = String, Path, description = "Zone name"), ImportQuery), request_body(content = String, content_type = "text/dns"), responses((status = 200, description = "{serial, changed, skipped}", body = super::openapi::AnyObject), (status = 403, description = "policy-denied", body = super::openapi::ErrorBody), (status = 404, description = "zone-not-found", body = super::openapi::ErrorBody), (status = 422, description = "invalid-zone-file or invalid RRset", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn import(
    State(s): State<AppState>,
    Path(zone): Path<String>,
    Query(q): Query<ImportQuery>,
    c: RecordCaller,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let zone = zone_fqdn(&zone)?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-zone-file",
            "the body is not UTF-8",
        )
    })?;
    let origin = hickory_proto::rr::Name::from_ascii(&zone)
        .map_err(|e| bad(Invalid::InvalidName, zone.clone(), e.to_string()))?;
    let (_, records) = crate::zone::file::parse_master(text, Some(&origin)).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-zone-file",
            e.to_string(),
        )
    })?;
    let mut sets: BTreeMap<(String, u16), (RecordType, u32, Vec<String>)> = BTreeMap::new();
    let mut skipped = 0usize;
    for r in &records {
        let owner = r.name.to_lowercase().to_ascii();
        let rtype = r.record_type();
        if crate::rrsets::managed_type(rtype)
            || (owner == zone && matches!(rtype, RecordType::NS | RecordType::DS))
        {
            skipped += 1;
            continue;
        }
        let e = sets
            .entry((owner, u16::from(rtype)))
            .or_insert((rtype, r.ttl, Vec::new()));
        let text = crate::store::zones::storage_text(&r.data);
        if !e.2.contains(&text) {
            e.2.push(text);
        }
    }
    let mut edits: Vec<Edit> = Vec::new();
    if q.replace {
        for v in s
            .records
            .rrsets(&zone, &c.writer(WritePath::Import), None, None)
            .await?
        {
            if !v.managed && !sets.contains_key(&(v.owner.clone(), u16::from(v.rtype))) {
                edits.push(Edit::Replace {
                    owner: v.owner,
                    rtype: v.rtype,
                    ttl: 0,
                    rdata: Vec::new(),
                });
            }
        }
    }
    for ((owner, _), (rtype, ttl, rdata)) in sets {
        edits.push(Edit::Replace {
            owner,
            rtype,
            ttl,
            rdata,
        });
    }
    let applied = s
        .records
        .apply(&zone, &edits, &[], &c.writer(WritePath::Import))
        .await?;
    let mut resp = Json(serde_json::json!({
        "serial": applied.serial,
        "changed": applied.changed.len(),
        "skipped": skipped,
    }))
    .into_response();
    stamp(&mut resp, &applied);
    Ok(resp)
}
