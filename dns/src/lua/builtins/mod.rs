//! The PowerDNS LUA functions, registered once per state in its base table.

mod constructors;
mod forward;
mod geoip;
mod ifup;
mod pickers;
mod utility;
mod view;

use super::LUA_TYPE_CODE;
use hickory_proto::rr::RecordType;
use mlua::{FromLuaMulti, IntoLuaMulti, Lua, MaybeSend, Table};

/// Register every LUA function (and the `pdns` type table) in `base`.
pub(super) fn register_functions(lua: &Lua, base: &Table) -> mlua::Result<()> {
    pickers::register(lua, base)?;
    ifup::register(lua, base)?;
    view::register(lua, base)?;
    geoip::register(lua, base)?;
    forward::register(lua, base)?;
    utility::register(lua, base)?;
    constructors::register(lua, base)?;
    let pdns = lua.create_table()?;
    for t in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::MX,
        RecordType::NS,
        RecordType::PTR,
        RecordType::SOA,
        RecordType::SRV,
        RecordType::TXT,
        RecordType::CAA,
        RecordType::HTTPS,
        RecordType::SVCB,
    ] {
        pdns.raw_set(t.to_string(), u16::from(t))?;
    }
    pdns.raw_set("LUA", LUA_TYPE_CODE)?;
    base.raw_set("pdns", pdns)?;
    Ok(())
}

/// Register `f` as the function `name` of the base table.
fn def<A, R>(
    lua: &Lua,
    base: &Table,
    name: &str,
    f: impl Fn(&Lua, A) -> mlua::Result<R> + MaybeSend + 'static,
) -> mlua::Result<()>
where
    A: FromLuaMulti,
    R: IntoLuaMulti,
{
    base.raw_set(name, lua.create_function(f)?)
}
