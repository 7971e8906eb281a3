//! The picker functions (`pickrandom`, `pickwhashed`, ...): one value
//! chosen from a list.

use super::super::addr::ip_text;
use super::super::convert::{
    ip_list_of, rt, string_list, string_list_of, synth_err, weighted_list, Ret,
};
use super::super::eval::ctx_of;
use super::super::hash::unordered_map_order;
use super::super::rawlist::{self, Item};
use super::super::synth::{self, SynthError};
use super::def;
use super::geoip::closest_of;
use mlua::{Lua, Table, Value};

/// The pickers: `all`, `pickrandom`, `pickrandomsample`, `pickhashed`,
/// `pickwrandom`, `pickwhashed`, `picknamehashed` and `pickclosest`.
pub(super) fn register(lua: &Lua, base: &Table) -> mlua::Result<()> {
    def(lua, base, "all", |lua, v: Value| {
        let items = string_list_of(lua, &v)?;
        if items.is_empty() {
            return Err(rt("The IP list cannot be empty"));
        }
        Ok(Ret(items))
    })?;
    def(lua, base, "pickrandom", |lua, v: Value| {
        pick_one(lua, &v, |items| {
            synth::pick_random(items, &mut rand::thread_rng())
        })
    })?;
    def(
        lua,
        base,
        "pickrandomsample",
        |lua, (n, v): (i64, Value)| {
            synth::pick_random_sample(n, &string_list_of(lua, &v)?, &mut rand::thread_rng())
                .map(Ret)
                .map_err(synth_err)
        },
    )?;
    def(lua, base, "pickhashed", |lua, v: Value| {
        let bestwho = ctx_of(lua)?.bestwho;
        pick_one(lua, &v, |items| synth::pick_hashed(&bestwho, items))
    })?;
    def(lua, base, "pickwrandom", |lua, v: Value| {
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_random(items, &mut rand::thread_rng())
        })
    })?;
    def(lua, base, "pickwhashed", |lua, v: Value| {
        let bestwho = ctx_of(lua)?.bestwho;
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_hashed(&bestwho, items)
        })
    })?;
    def(lua, base, "picknamehashed", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        let qname = ctx.qname.clone();
        drop(ctx);
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_name_hashed(&qname, items)
        })
    })?;
    def(lua, base, "pickclosest", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        Ok(Ret(ip_text(&closest_of(&ctx, &ip_list_of(lua, &v)?)?)))
    })?;
    Ok(())
}

/// One item picked from `string_list(v)` by `pick`, converted to a string
/// only once chosen.
pub(super) fn pick_one(
    lua: &Lua,
    v: &Value,
    pick: impl for<'a> Fn(&[Item<'a>]) -> Result<Item<'a>, SynthError>,
) -> mlua::Result<Ret<String>> {
    let picked =
        match rawlist::with_list(lua, v, |items| pick(items).map(|i| i.text().into_owned())) {
            Some(r) => r,
            None => {
                let list = string_list(v)?;
                let items: Vec<Item<'_>> = list.iter().map(|s| Item::Str(s.as_bytes())).collect();
                pick(&items).map(|i| i.text().into_owned())
            }
        };
    picked.map(Ret).map_err(synth_err)
}

/// One value picked from `weighted_list(v)` by `pick`.
pub(super) fn pick_weighted(
    lua: &Lua,
    v: &Value,
    pick: impl for<'a> Fn(&[(i64, Item<'a>)]) -> Result<Item<'a>, SynthError>,
) -> mlua::Result<Ret<String>> {
    let picked = match rawlist::with_weighted(lua, v, |entries| {
        let keys: Vec<i64> = entries.iter().map(|e| e.0).collect();
        let items: Vec<(i64, Item<'_>)> = unordered_map_order(&keys)
            .into_iter()
            .map(|i| (entries[i].1.atoi(), entries[i].2))
            .collect();
        pick(&items).map(|i| i.text().into_owned())
    }) {
        Some(r) => r,
        None => {
            let list = weighted_list(v)?;
            let items: Vec<(i64, Item<'_>)> = list
                .iter()
                .map(|(w, s)| (*w, Item::Str(s.as_bytes())))
                .collect();
            pick(&items).map(|i| i.text().into_owned())
        }
    };
    picked.map(Ret).map_err(synth_err)
}
