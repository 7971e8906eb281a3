//! The picker functions (`pickrandom`, `pickwhashed`, ...): one value
//! chosen from a list.

use super::super::convert::{string_list, synth_err, weighted_list, Ret};
use super::super::hash::unordered_map_order;
use super::super::rawlist::{self, Item};
use super::super::synth::SynthError;
use mlua::{Lua, Value};

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
