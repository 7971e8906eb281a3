//! The health-checked functions `ifportup`, `ifurlup` and `ifurlextup`:
//! the Lua side (arguments, health-check targets, the checker's answers).
//! Which addresses they answer with is decided in `selection.rs`.

use super::super::addr::{ip_text, parse_combo};
use super::super::convert::{ip_sets_of, options, rt, synth_err, Ret};
use super::super::eval::{ctx_of, EvalCtx};
use super::super::health::{CheckKind, CheckOptions, Health, TargetKey};
use super::super::selection::{select_up, IfUpError, IfUpOptions};
use super::super::synth::SynthError;
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
            let health = |ip: &IpAddr| {
                let key = TargetKey {
                    kind: CheckKind::Tcp(SocketAddr::new(*ip, port)),
                    opts: check.clone(),
                };
                Ok((*ip, ctx.config.health.status(&key)))
            };
            if_up(&ctx, &sets, &opts, health, "if{url,port}up")
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
            let health = |ip: &IpAddr| {
                let key = TargetKey {
                    kind: CheckKind::Http {
                        url: url.clone(),
                        addr: Some(*ip),
                    },
                    opts: check.clone(),
                };
                Ok((*ip, ctx.config.health.status(&key)))
            };
            if_up(&ctx, &sets, &opts, health, "if{url,port}up")
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
            let sets = url_groups(&groups)?;
            // The address is only the answer; the URL alone is checked.
            let health = |(ip, url): &(String, String)| {
                let addr = parse_combo(ip)
                    .ok_or_else(|| rt(format!("Unable to convert presentation address '{ip}'")))?;
                let key = TargetKey {
                    kind: CheckKind::Http {
                        url: url.clone(),
                        addr: None,
                    },
                    opts: check.clone(),
                };
                Ok((addr, ctx.config.health.status(&key)))
            };
            if_up(&ctx, &sets, &opts, health, "ifexturlup")
        },
    )?;
    Ok(())
}

/// `ifurlextup`'s `{{[address] = url, ...}, ...}` (`vector<pair<int, opts_t>>`).
fn url_groups(groups: &Table) -> mlua::Result<Vec<Vec<(String, String)>>> {
    groups
        .pairs::<Value, Table>()
        .map(|group| group?.1.pairs::<String, String>().collect())
        .collect()
}

/// One call's answer: [`select_up`] with the call's options, the
/// checker's settings and the client, as the list of address strings.
/// `name` names the function in the "not completed yet" error.
fn if_up<C>(
    ctx: &EvalCtx,
    sets: &[Vec<C>],
    opts: &HashMap<String, String>,
    health: impl FnMut(&C) -> mlua::Result<(IpAddr, Health)>,
    name: &str,
) -> mlua::Result<Ret<Vec<String>>> {
    let assume_up = ctx.config.health.config().assume_up_before_first_check;
    let options = IfUpOptions::from_opts(opts, assume_up, ctx.priming);
    let closest = |c: &[IpAddr]| closest_of(ctx, c).map_err(|e| SynthError(e.to_string()));
    let mut rng = rand::thread_rng();
    match select_up(sets, health, &options, &ctx.bestwho, &mut rng, &closest) {
        Ok(picked) => Ok(Ret(picked.iter().map(ip_text).collect())),
        Err(IfUpError::Candidate(e)) => Err(e),
        Err(IfUpError::Incomplete) => Err(rt(format!("{name} health check has not completed yet"))),
        Err(IfUpError::Selector(e)) => Err(synth_err(e)),
    }
}
