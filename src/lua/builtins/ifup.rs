//! The health-checked functions `ifportup`, `ifurlup` and `ifurlextup`.

use super::super::addr::{ip_text, parse_combo};
use super::super::convert::{ip_sets_of, options, rt, synth_err, Ret};
use super::super::eval::{ctx_of, EvalCtx};
use super::super::health::{CheckKind, CheckOptions, Health, TargetKey};
use super::super::synth::{self, SynthError};
use super::def;
use super::geoip::closest_of;
use mlua::{Lua, Table, Value};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// `ifportup`, `ifurlup` and `ifurlextup`.
pub(super) fn register(lua: &Lua, base: &Table) -> mlua::Result<()> {
    def(
        lua,
        base,
        "ifportup",
        |lua, (port, addrs, opts): (i64, Value, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let port = port.clamp(0, i64::from(u16::MAX)) as u16;
            let sets = ip_sets_of(lua, &addrs)?;
            let opts = options(&opts)?;
            let check = CheckOptions::from_opts(&opts).map_err(rt)?;
            generic_if_up(&ctx, &sets, &opts, &|ip| TargetKey {
                kind: CheckKind::Tcp(SocketAddr::new(ip, port)),
                opts: check.clone(),
            })
            .map(Ret)
        },
    )?;
    def(
        lua,
        base,
        "ifurlup",
        |lua, (url, addrs, opts): (String, Value, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let sets = ip_sets_of(lua, &addrs)?;
            let opts = options(&opts)?;
            let check = CheckOptions::from_opts(&opts).map_err(rt)?;
            generic_if_up(&ctx, &sets, &opts, &|ip| TargetKey {
                kind: CheckKind::Http {
                    url: url.clone(),
                    addr: Some(ip),
                },
                opts: check.clone(),
            })
            .map(Ret)
        },
    )?;
    def(
        lua,
        base,
        "ifurlextup",
        |lua, (groups, opts): (Table, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let opts = options(&opts)?;
            let check = CheckOptions::from_opts(&opts).map_err(rt)?;
            let hc = &ctx.config.health;
            let assume_up = hc.config().assume_up_before_first_check;
            let mut all = Vec::new();
            let mut incomplete = true;
            let mut rng = rand::thread_rng();
            let closest = |c: &[IpAddr]| closest_of(&ctx, c).map_err(|e| SynthError(e.to_string()));
            let selector_for =
                |name: &str| opts.get(name).map_or("random", String::as_str).to_string();
            let mut chosen = None;
            for group in groups.pairs::<Value, Table>() {
                let (_, unit) = group?;
                let mut available = Vec::new();
                for entry in unit.pairs::<String, String>() {
                    let (ip, url) = entry?;
                    let addr = parse_combo(&ip).ok_or_else(|| {
                        rt(format!("Unable to convert presentation address '{ip}'"))
                    })?;
                    all.push(addr);
                    let h = hc.status(&TargetKey {
                        kind: CheckKind::Http { url, addr: None },
                        opts: check.clone(),
                    });
                    if h != Health::Unknown {
                        incomplete = false;
                    }
                    if h == Health::Up || (h == Health::Unknown && assume_up) {
                        available.push(addr);
                    }
                }
                if !available.is_empty() && chosen.is_none() {
                    chosen = Some(available);
                    if !ctx.priming {
                        break;
                    }
                }
            }
            let picked = match chosen {
                Some(avail) => synth::use_selector(
                    &selector_for("selector"),
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
                        return Err(rt("ifexturlup health check has not completed yet"));
                    }
                    synth::use_selector(
                        &selector_for("backupSelector"),
                        &ctx.bestwho,
                        &all,
                        &mut rng,
                        &closest,
                    )
                }
            };
            Ok(Ret(picked
                .map_err(synth_err)?
                .iter()
                .map(ip_text)
                .collect::<Vec<_>>()))
        },
    )?;
    Ok(())
}

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
