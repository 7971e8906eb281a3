//! The health-checked functions `ifportup`, `ifurlup` and `ifurlextup`.

use super::super::addr::ip_text;
use super::super::convert::{rt, synth_err};
use super::super::eval::EvalCtx;
use super::super::health::{Health, TargetKey};
use super::super::synth::{self, SynthError};
use super::geoip::closest_of;
use std::collections::HashMap;
use std::net::IpAddr;

/// `genericIfUp`: the first set with an UP address wins (selector within
/// it); if none, `backupSelector` over every address.
pub(super) fn generic_if_up(
    ctx: &EvalCtx,
    sets: &[Vec<IpAddr>],
    opts: &HashMap<String, String>,
    key_for: &dyn Fn(IpAddr) -> TargetKey,
) -> mlua::Result<Vec<String>> {
    let hc = &ctx.config.health;
    let assume_up = hc.config().assume_up_before_first_check;
    let mut incomplete = true;
    let mut chosen: Option<Vec<IpAddr>> = None;
    for set in sets {
        let mut available = Vec::new();
        for addr in set {
            let h = hc.status(&key_for(*addr));
            if h != Health::Unknown {
                incomplete = false;
            }
            if h == Health::Up || (h == Health::Unknown && assume_up) {
                available.push(*addr);
            }
        }
        if !available.is_empty() && chosen.is_none() {
            chosen = Some(available);
            if !ctx.priming {
                break;
            }
        }
    }
    let selector_for = |name: &str| opts.get(name).map_or("random", String::as_str);
    let mut rng = rand::thread_rng();
    let closest = |c: &[IpAddr]| closest_of(ctx, c).map_err(|e| SynthError(e.to_string()));
    let picked = match chosen {
        Some(avail) => synth::use_selector(
            selector_for("selector"),
            &ctx.bestwho,
            &avail,
            &mut rng,
            &closest,
        ),
        None => {
            if incomplete
                && opts
                    .get("failOnIncompleteCheck")
                    .is_some_and(|v| v == "true")
            {
                return Err(rt("if{url,port}up health check has not completed yet"));
            }
            let all: Vec<IpAddr> = sets.iter().flatten().copied().collect();
            synth::use_selector(
                selector_for("backupSelector"),
                &ctx.bestwho,
                &all,
                &mut rng,
                &closest,
            )
        }
    };
    Ok(picked.map_err(synth_err)?.iter().map(ip_text).collect())
}
