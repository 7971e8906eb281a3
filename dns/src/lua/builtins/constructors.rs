//! `newCA`, `newDN`, `newNetmask` and `newNMG`: the PowerDNS object
//! constructors.

use super::super::addr::{parse_combo, Netmask, NetmaskGroup};
use super::super::convert::{rt, split_port, string_list};
use super::super::userdata::{LCombo, LDnsName, LNetmask, LNmg};
use super::def;
use hickory_proto::rr::Name;
use mlua::{Lua, Table, Value};

/// `newCA`, `newDN`, `newNetmask` and `newNMG`.
pub(super) fn register(lua: &Lua, base: &Table) -> mlua::Result<()> {
    def(lua, base, "newCA", |_, s: String| {
        let (host, port) = split_port(&s);
        parse_combo(host)
            .map(|a| LCombo(a, port))
            .ok_or_else(|| rt(format!("Unable to convert presentation address '{s}'")))
    })?;
    def(lua, base, "newDN", |_, s: String| {
        let mut n = Name::from_ascii(&s).map_err(|e| rt(format!("bad name {s:?}: {e}")))?;
        n.set_fqdn(true);
        Ok(LDnsName(n))
    })?;
    def(lua, base, "newNetmask", |_, s: String| {
        Netmask::parse(&s)
            .map(LNetmask)
            .ok_or_else(|| rt(format!("Not a netmask: '{s}'")))
    })?;
    def(lua, base, "newNMG", |_, v: Option<Value>| {
        let mut g = NetmaskGroup::default();
        if let Some(v) = v {
            for m in string_list(&v)? {
                g.add(&m)
                    .ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
            }
        }
        Ok(LNmg(g))
    })?;
    Ok(())
}
