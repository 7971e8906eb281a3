//! `createForward`, `createForward6`, `createReverse`, `createReverse6` and
//! `filterForward`: addresses and names read from the query name.

use super::super::addr::parse_combo;
use super::super::convert::{rt, string_pairs, synth_err, Ret};
use super::super::eval::ctx_of;
use super::super::synth;
use super::super::userdata::LNmg;
use super::def;
use mlua::{AnyUserData, Lua, Table};

/// The forward/reverse synthesizers and `filterForward`.
pub(super) fn register(lua: &Lua, base: &Table) -> mlua::Result<()> {
    def(lua, base, "createForward", |lua, ()| {
        let ctx = ctx_of(lua)?;
        synth::create_forward(&ctx.qname, &ctx.zone)
            .map(Ret)
            .map_err(synth_err)
    })?;
    def(lua, base, "createForward6", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(Ret(synth::create_forward6(&ctx.qname, &ctx.zone)))
    })?;
    def(
        lua,
        base,
        "createReverse",
        |lua, (fmt, exc): (String, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let exc = string_pairs(&exc)?;
            synth::create_reverse(&ctx.qname, &fmt, &exc)
                .map(Ret)
                .map_err(synth_err)
        },
    )?;
    def(
        lua,
        base,
        "createReverse6",
        |lua, (fmt, exc): (String, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let exc = string_pairs(&exc)?;
            Ok(Ret(synth::create_reverse6(&ctx.qname, &fmt, &exc)))
        },
    )?;
    def(
        lua,
        base,
        "filterForward",
        |_, (addr, nmg, fallback): (String, AnyUserData, Option<String>)| {
            let ip = parse_combo(&addr)
                .ok_or_else(|| rt(format!("Unable to convert presentation address '{addr}'")))?;
            let nmg = nmg.borrow::<LNmg>()?;
            if nmg.0.matches(&ip) {
                return Ok(vec![addr]);
            }
            Ok(match fallback {
                Some(f) if f.is_empty() => vec![],
                Some(f) => vec![f],
                None if ip.is_ipv4() => vec!["0.0.0.0".to_string()],
                None => vec!["::".to_string()],
            })
        },
    )?;
    Ok(())
}
