//! `pdnslog`, `print`, `pdnsrandom` and `report`.

use super::super::convert::{rt, value_string};
use super::def;
use mlua::{Lua, Table, Value, Variadic};
use rand::Rng;

/// `pdnslog`, `print`, `pdnsrandom` and `report`.
pub(super) fn register(lua: &Lua, base: &Table) -> mlua::Result<()> {
    def(
        lua,
        base,
        "pdnslog",
        |_, (msg, level): (Value, Option<i64>)| {
            let msg = value_string(&msg).unwrap_or_else(|_| format!("{msg:?}"));
            match level.unwrap_or(6) {
                0..=3 => tracing::error!(target: "pdm::lua::record", "{msg}"),
                4 => tracing::warn!(target: "pdm::lua::record", "{msg}"),
                5 | 6 => tracing::info!(target: "pdm::lua::record", "{msg}"),
                _ => tracing::debug!(target: "pdm::lua::record", "{msg}"),
            }
            Ok(())
        },
    )?;
    def(lua, base, "print", |_, args: Variadic<Value>| {
        let parts: Vec<String> = args
            .iter()
            .map(|v| value_string(v).unwrap_or_else(|_| v.type_name().to_string()))
            .collect();
        tracing::debug!(target: "pdm::lua::record", "{}", parts.join("\t"));
        Ok(())
    })?;
    def(lua, base, "pdnsrandom", |_, n: Option<i64>| {
        let mut rng = rand::thread_rng();
        Ok(match n {
            Some(n) if n > 0 => rng.gen_range(0..n),
            _ => i64::from(rng.gen::<u32>()),
        })
    })?;
    def(
        lua,
        base,
        "report",
        |_, _: Variadic<Value>| -> mlua::Result<()> { Err(rt("Script took too long")) },
    )?;
    Ok(())
}
