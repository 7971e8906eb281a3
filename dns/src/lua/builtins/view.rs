//! `netmask` and `view`: answers chosen by the client's network.

use super::super::addr::Netmask;
use super::super::convert::{rt, string_list, string_list_of, synth_err};
use super::super::eval::ctx_of;
use super::super::synth;
use super::def;
use mlua::{Lua, Table, Value};

/// `netmask` and `view`.
pub(super) fn register(lua: &Lua, base: &Table) -> mlua::Result<()> {
    def(lua, base, "netmask", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        for m in string_list_of(lua, &v)? {
            let nm = Netmask::parse(&m).ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
            if nm.matches(&ctx.bestwho) {
                return Ok(true);
            }
        }
        Ok(false)
    })?;
    def(lua, base, "view", |lua, rules: Table| {
        let ctx = ctx_of(lua)?;
        for rule in rules.pairs::<Value, Table>() {
            let (_, rule) = rule?;
            let masks = string_list(&rule.get::<Value>(1)?)?;
            let dests = string_list(&rule.get::<Value>(2)?)?;
            for m in masks {
                let nm = Netmask::parse(&m).ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
                if nm.matches(&ctx.bestwho) {
                    if dests.is_empty() {
                        return Err(rt(format!(
                            "The IP list cannot be empty (for netmask {nm})"
                        )));
                    }
                    return synth::pick_random(&dests, &mut rand::thread_rng()).map_err(synth_err);
                }
            }
        }
        Ok(String::new())
    })?;
    Ok(())
}
