//! The GeoIP functions (`country`, `latlon`, `pickclosest`'s distance, ...).

use super::super::convert::{string_or_list, synth_err};
use super::super::eval::{ctx_of, EvalCtx, GeoMissing};
use super::super::geo::GeoInfo;
use super::super::synth;
use mlua::{Lua, Value};
use rand::Rng;
use std::net::IpAddr;

pub(super) fn geo_lookup(ctx: &EvalCtx, addr: &IpAddr) -> mlua::Result<GeoInfo> {
    match &ctx.config.geo {
        Some(g) => Ok(g.lookup(addr)),
        None => Err(mlua::Error::external(GeoMissing)),
    }
}

pub(super) fn closest_of(ctx: &EvalCtx, candidates: &[IpAddr]) -> mlua::Result<IpAddr> {
    let who = geo_lookup(ctx, &ctx.bestwho)?
        .location
        .unwrap_or((0.0, 0.0));
    let mut located = Vec::with_capacity(candidates.len());
    for c in candidates {
        located.push((*c, geo_lookup(ctx, c)?.location.unwrap_or((0.0, 0.0))));
    }
    let mut rng = rand::thread_rng();
    let mut tie = |n: usize| rng.gen_range(0..n.max(1));
    synth::pick_closest(who, &located, &mut tie).map_err(synth_err)
}

pub(super) fn geo_compare(
    lua: &Lua,
    want: &Value,
    pick: fn(&GeoInfo) -> Option<String>,
) -> mlua::Result<bool> {
    let ctx = ctx_of(lua)?;
    let info = geo_lookup(&ctx, &ctx.bestwho)?;
    let have = pick(&info).unwrap_or_else(|| "unknown".into());
    Ok(string_or_list(want)?
        .iter()
        .any(|w| w.eq_ignore_ascii_case(&have)))
}

pub(super) fn geo_code(lua: &Lua, pick: fn(&GeoInfo) -> Option<String>) -> mlua::Result<String> {
    let ctx = ctx_of(lua)?;
    let info = geo_lookup(&ctx, &ctx.bestwho)?;
    Ok(pick(&info).unwrap_or_else(|| "--".into()))
}

pub(super) fn g_country(i: &GeoInfo) -> Option<String> {
    i.country.clone()
}
pub(super) fn g_continent(i: &GeoInfo) -> Option<String> {
    i.continent.clone()
}
pub(super) fn g_region(i: &GeoInfo) -> Option<String> {
    i.region.clone()
}
pub(super) fn g_asn(i: &GeoInfo) -> Option<String> {
    i.asn.map(|a| a.to_string())
}
