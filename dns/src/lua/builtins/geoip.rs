//! The GeoIP functions (`country`, `latlon`, `pickclosest`'s distance, ...).

use super::super::addr::parse_combo;
use super::super::convert::{rt, string_or_list, synth_err};
use super::super::eval::{ctx_of, EvalCtx, GeoMissing};
use super::super::geo::{latlon_loc, latlon_text, GeoInfo};
use super::super::synth;
use super::def;
use mlua::{Lua, Table, Value};
use rand::Rng;
use std::net::IpAddr;

/// The GeoIP functions and the `GeoIPQueryAttribute` table.
pub(super) fn register(lua: &Lua, base: &Table) -> mlua::Result<()> {
    def(lua, base, "country", |lua, v: Value| {
        geo_compare(lua, &v, g_country)
    })?;
    def(lua, base, "continent", |lua, v: Value| {
        geo_compare(lua, &v, g_continent)
    })?;
    def(lua, base, "region", |lua, v: Value| {
        geo_compare(lua, &v, g_region)
    })?;
    def(lua, base, "asnum", |lua, v: Value| {
        geo_compare(lua, &v, g_asn)
    })?;
    def(lua, base, "countryCode", |lua, ()| geo_code(lua, g_country))?;
    def(lua, base, "continentCode", |lua, ()| {
        geo_code(lua, g_continent)
    })?;
    def(lua, base, "regionCode", |lua, ()| geo_code(lua, g_region))?;
    def(lua, base, "latlon", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(latlon_text(
            geo_lookup(&ctx, &ctx.bestwho)?
                .location
                .unwrap_or((0.0, 0.0)),
        ))
    })?;
    def(lua, base, "latlonloc", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(geo_lookup(&ctx, &ctx.bestwho)?
            .location
            .map(latlon_loc)
            .unwrap_or_default())
    })?;
    def(lua, base, "closestMagic", |lua, ()| {
        let ctx = ctx_of(lua)?;
        let mut candidates = Vec::new();
        for label in synth::raw_labels(&ctx.qname) {
            match parse_combo(&label.replace('-', ".")) {
                Some(a) => candidates.push(a),
                None => break,
            }
        }
        Ok(closest_of(&ctx, &candidates)?.to_string())
    })?;
    def(lua, base, "latlonMagic", |lua, ()| {
        let ctx = ctx_of(lua)?;
        let l = synth::raw_labels(&ctx.qname);
        if l.len() < 4 {
            return Ok("unknown".to_string());
        }
        let ip = parse_combo(&format!("{}.{}.{}.{}", l[3], l[2], l[1], l[0]));
        let loc = match ip {
            Some(ip) => geo_lookup(&ctx, &ip)?.location,
            None => {
                geo_lookup(&ctx, &ctx.bestwho)?;
                None
            }
        };
        Ok(latlon_text(loc.unwrap_or((0.0, 0.0))))
    })?;
    def(
        lua,
        base,
        "geoiplookup",
        |lua, (ip, attr): (String, i64)| {
            let ctx = ctx_of(lua)?;
            let addr = parse_combo(&ip)
                .ok_or_else(|| rt(format!("Unable to convert presentation address '{ip}'")))?;
            let i = geo_lookup(&ctx, &addr)?;
            let unknown = || "unknown".to_string();
            Ok(match attr {
                0 => g_asn(&i).unwrap_or_else(unknown),
                1 => i.city.clone().unwrap_or_else(unknown),
                2 => i.continent.clone().unwrap_or_else(unknown),
                3 | 4 => i.country.clone().unwrap_or_else(unknown),
                6 => i.region.clone().unwrap_or_else(unknown),
                7 => i.location.map(latlon_text).unwrap_or_default(),
                _ => unknown(),
            })
        },
    )?;
    let attrs = lua.create_table()?;
    for (i, n) in [
        "ASn",
        "City",
        "Continent",
        "Country",
        "Country2",
        "Name",
        "Region",
        "Location",
    ]
    .iter()
    .enumerate()
    {
        attrs.raw_set(*n, i as i64)?;
    }
    base.raw_set("GeoIPQueryAttribute", attrs)?;
    Ok(())
}

/// What the configured GeoIP provider knows about `addr` (fails without one).
pub(super) fn geo_lookup(ctx: &EvalCtx, addr: &IpAddr) -> mlua::Result<GeoInfo> {
    match &ctx.config.geo {
        Some(g) => Ok(g.lookup(addr)),
        None => Err(mlua::Error::external(GeoMissing)),
    }
}

/// `pickclosest`: the candidate nearest to `bestwho` (ties broken at random).
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

/// Whether `bestwho`'s attribute (`pick`) is `want` or one of it (`country` etc.).
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

/// `bestwho`'s attribute (`pick`), `--` when unknown (`countryCode` etc.).
pub(super) fn geo_code(lua: &Lua, pick: fn(&GeoInfo) -> Option<String>) -> mlua::Result<String> {
    let ctx = ctx_of(lua)?;
    let info = geo_lookup(&ctx, &ctx.bestwho)?;
    Ok(pick(&info).unwrap_or_else(|| "--".into()))
}

/// The country code.
pub(super) fn g_country(i: &GeoInfo) -> Option<String> {
    i.country.clone()
}
/// The continent code.
pub(super) fn g_continent(i: &GeoInfo) -> Option<String> {
    i.continent.clone()
}
/// The region code.
pub(super) fn g_region(i: &GeoInfo) -> Option<String> {
    i.region.clone()
}
/// The AS number as text.
pub(super) fn g_asn(i: &GeoInfo) -> Option<String> {
    i.asn.map(|a| a.to_string())
}
