//! Every request body the API takes, parsed from the same bytes: the entry
//! point of the `api_json` fuzz target (crate `pdm-fuzz`). The bodies'
//! types stay private to the API; this is their one outside door.

use super::guard::{parse_json, BodyShape};
use crate::model::{DomainName, Label};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Parse `bytes` as each request body type, as the handlers' extractors do
/// (errors rendered as the 400 they become), then run every string in it
/// through the edge parsers fields go through. Never panics on any input.
pub fn fuzz_bodies(bytes: &[u8]) {
    shaped::<super::allocation::PutBody>(bytes);
    shaped::<super::dnssec::RolloverRequest>(bytes);
    shaped::<super::domains::CreateBody>(bytes);
    shaped::<super::pool::ReserveBody>(bytes);
    shaped::<super::pool::CommitBody>(bytes);
    shaped::<super::pool::ReleaseFqdnBody>(bytes);
    shaped::<super::pool::ForceReleaseBody>(bytes);
    shaped::<super::zones::ZoneBody>(bytes);
    let _ = plain::<super::pool::ReleaseBody>(bytes);
    let _ = plain::<super::registrar::ValidateBody>(bytes);
    let _ = plain::<super::registrar::SetNsBody>(bytes);
    let _ = plain::<super::registrar::SetDnsBody>(bytes);
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        strings(&value, &mut |s| {
            let _ = Label::parse(s);
            let _ = DomainName::parse(s);
            let _ = s.parse::<std::net::IpAddr>();
        });
    }
}

/// A body type read by [`parse_json`]; a rejection rendered as its 400.
fn shaped<T: BodyShape>(bytes: &[u8]) {
    if let Err(e) = parse_json::<T>(bytes) {
        drop(axum::response::IntoResponse::into_response(e));
    }
}

/// A body type the handler reads with serde directly.
fn plain<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

/// Call `f` on every string (keys too) in `value`.
fn strings(value: &Value, f: &mut dyn FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, f)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            f(k);
            strings(v, f);
        }),
        _ => {}
    }
}
