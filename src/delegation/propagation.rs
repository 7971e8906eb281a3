//! Whether the parent shows a delegation: the pure comparison of what each
//! parent server answered with what it must show. The DNS questions are
//! asked by `probe.rs`; nothing here does IO.
//!
//! NS sets are compared normalised (lowercase, no trailing dot, deduplicated,
//! sorted) and must be equal. The parent's DS set must be non-empty and
//! every DS in it must be one of ours (SHA-256 or SHA-384 of a key the
//! parent should point at): a stale DS for a key we do not have makes the
//! zone bogus for validators. When a DS is not required (unsigned zone, or a
//! registrar with no DS API) an absent DS is fine, a wrong one is not.

use pdm_adapters::{normalise_ns, DsData};
use serde::Serialize;

/// What the parent must show for the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// NS hosts, normalised.
    pub ns: Vec<String>,
    /// Every DS the parent may show (all digests of every key in the parent).
    pub ds: Vec<DsData>,
    /// Whether a missing DS keeps the delegation from being complete.
    pub ds_required: bool,
}

impl Expected {
    /// Normalises `ns` and `ds`.
    pub fn new(ns: &[String], ds: &[DsData], ds_required: bool) -> Self {
        let mut ds: Vec<DsData> = ds.iter().map(DsData::normalised).collect();
        ds.sort();
        ds.dedup();
        Self {
            ns: normalise_ns(ns),
            ds,
            ds_required,
        }
    }
}

/// What one parent server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The server's address (`ip:port`).
    pub server: String,
    /// Its host name, when known (found iteratively).
    pub host: Option<String>,
    /// The NS it delegates the child to (empty: no delegation), or why it did not say.
    pub ns: Result<Vec<String>, String>,
    /// The DS it holds for the child, or why it did not say.
    pub ds: Result<Vec<DsData>, String>,
}

/// How the parent's DS set compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DsStatus {
    /// Non-empty, and every DS is one of ours.
    Match,
    /// No DS at the parent.
    Absent,
    /// At least one DS that is not ours.
    Mismatch,
    /// The server did not answer the DS question.
    Unknown,
}

/// One parent server's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerReport {
    /// `ip:port`.
    pub server: String,
    /// Host name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The NS it shows, normalised.
    pub ns: Vec<String>,
    /// Whether that equals the expected set.
    pub ns_match: bool,
    /// The DS it shows (`tag alg digest-type digest`).
    pub ds: Vec<String>,
    /// How its DS set compares.
    pub ds_status: DsStatus,
    /// Whether this server shows the complete delegation.
    pub ok: bool,
    /// Why it could not be asked, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The verdict over all parent servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Every parent server shows the complete delegation (and there is at least one).
    pub converged: bool,
    /// Per server, in the order asked.
    pub servers: Vec<ServerReport>,
    /// One line for humans (and `last error` while waiting).
    pub summary: String,
}

/// `tag alg digest-type digest` (the DS rdata presentation form).
pub fn ds_text(d: &DsData) -> String {
    let d = d.normalised();
    format!(
        "{} {} {} {}",
        d.key_tag,
        d.algorithm,
        d.digest_type,
        d.digest.to_ascii_uppercase()
    )
}

/// How `observed` compares with the acceptable `expected` set.
pub fn ds_status(expected: &[DsData], observed: &[DsData]) -> DsStatus {
    if observed.is_empty() {
        return DsStatus::Absent;
    }
    if observed.iter().all(|d| expected.contains(&d.normalised())) {
        DsStatus::Match
    } else {
        DsStatus::Mismatch
    }
}

/// One server's verdict.
pub fn judge(expected: &Expected, o: &Observation) -> ServerReport {
    let (ns, ns_err) = match &o.ns {
        Ok(ns) => (normalise_ns(ns), None),
        Err(e) => (Vec::new(), Some(e.clone())),
    };
    let (ds, status, ds_err) = match &o.ds {
        Ok(ds) => (
            ds.iter().map(ds_text).collect(),
            ds_status(&expected.ds, ds),
            None,
        ),
        Err(e) => (Vec::new(), DsStatus::Unknown, Some(e.clone())),
    };
    let ns_match = ns_err.is_none() && ns == expected.ns;
    let ds_ok = match status {
        DsStatus::Match => true,
        DsStatus::Absent => !expected.ds_required,
        DsStatus::Mismatch | DsStatus::Unknown => false,
    };
    let error = match (ns_err, ds_err) {
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(a), Some(b)) => Some(format!("NS: {a}; DS: {b}")),
        (Some(a), None) => Some(format!("NS: {a}")),
        (None, Some(b)) => Some(format!("DS: {b}")),
        (None, None) => None,
    };
    ServerReport {
        server: o.server.clone(),
        host: o.host.clone(),
        ns,
        ns_match,
        ds,
        ds_status: status,
        ok: ns_match && ds_ok,
        error,
    }
}

/// The verdict over every parent server asked.
pub fn compare(expected: &Expected, observations: &[Observation]) -> Report {
    let servers: Vec<ServerReport> = observations.iter().map(|o| judge(expected, o)).collect();
    let converged = !servers.is_empty() && servers.iter().all(|s| s.ok);
    let ok = servers.iter().filter(|s| s.ok).count();
    let summary = if servers.is_empty() {
        "no parent server could be found".to_string()
    } else if converged {
        format!("all {} parent servers show the delegation", servers.len())
    } else {
        let first_bad = servers.iter().find(|s| !s.ok);
        let why = match first_bad {
            Some(s) if s.error.is_some() => {
                format!("{}: {}", s.server, s.error.clone().unwrap_or_default())
            }
            Some(s) if !s.ns_match => format!(
                "{} delegates to [{}], want [{}]",
                s.server,
                s.ns.join(", "),
                expected.ns.join(", ")
            ),
            Some(s) => format!("{} DS is {:?}", s.server, s.ds_status),
            None => String::new(),
        };
        format!(
            "{ok} of {} parent servers show the delegation; {why}",
            servers.len()
        )
    };
    Report {
        converged,
        servers,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(tag: u16, digest: &str) -> DsData {
        DsData {
            key_tag: tag,
            algorithm: 13,
            digest_type: 2,
            digest: digest.into(),
        }
    }

    fn expected(required: bool) -> Expected {
        Expected::new(
            &["NS1.pdm.test.".into(), "ns2.pdm.test".into()],
            &[ds(1, "ABCD")],
            required,
        )
    }

    fn obs(ns: &[&str], d: Vec<DsData>) -> Observation {
        Observation {
            server: "192.0.2.1:53".into(),
            host: None,
            ns: Ok(ns.iter().map(|s| s.to_string()).collect()),
            ds: Ok(d),
        }
    }

    #[test]
    fn ns_compared_normalised() {
        let r = judge(
            &expected(true),
            &obs(&["ns2.PDM.test.", "ns1.pdm.test"], vec![ds(1, "abcd")]),
        );
        assert!(r.ns_match && r.ok, "{r:?}");
        assert_eq!(r.ds_status, DsStatus::Match);
        assert_eq!(r.ds, vec!["1 13 2 ABCD"]);
    }

    #[test]
    fn extra_or_missing_ns_is_no_match() {
        let e = expected(false);
        assert!(!judge(&e, &obs(&["ns1.pdm.test"], vec![])).ns_match);
        assert!(
            !judge(
                &e,
                &obs(
                    &["ns1.pdm.test", "ns2.pdm.test", "old.registrar.net"],
                    vec![]
                )
            )
            .ns_match
        );
    }

    #[test]
    fn ds_absent_ok_only_when_not_required() {
        let o = obs(&["ns1.pdm.test", "ns2.pdm.test"], vec![]);
        assert!(judge(&expected(false), &o).ok);
        let r = judge(&expected(true), &o);
        assert!(!r.ok && r.ds_status == DsStatus::Absent);
    }

    #[test]
    fn stale_ds_is_mismatch_even_when_not_required() {
        let o = obs(
            &["ns1.pdm.test", "ns2.pdm.test"],
            vec![ds(1, "abcd"), ds(9, "ffff")],
        );
        let r = judge(&expected(false), &o);
        assert_eq!(r.ds_status, DsStatus::Mismatch);
        assert!(!r.ok);
    }

    #[test]
    fn converged_needs_every_server() {
        let e = expected(true);
        let good = obs(&["ns1.pdm.test", "ns2.pdm.test"], vec![ds(1, "ABCD")]);
        let mut bad = obs(&["old.registrar.net", "old2.registrar.net"], vec![]);
        bad.server = "192.0.2.2:53".into();
        assert!(compare(&e, std::slice::from_ref(&good)).converged);
        let r = compare(&e, &[good.clone(), bad]);
        assert!(!r.converged);
        assert!(r.summary.starts_with("1 of 2"), "{}", r.summary);
        let mut timeout = good;
        timeout.ns = Err("timeout".into());
        timeout.ds = Err("timeout".into());
        let r = compare(&e, &[timeout]);
        assert!(!r.converged);
        assert_eq!(r.servers[0].error.as_deref(), Some("timeout"));
        assert!(!compare(&e, &[]).converged);
    }
}
