//! Lua values to Rust and back, read the way PowerDNS's LuaWrapper reads
//! the C++ parameter types (`std::string`, `vector<pair<int,string>>`,
//! `opts_t`, ...), and the error helpers the LUA functions share.

use super::addr::parse_combo;
use super::hash::unordered_map_order;
use super::rawlist::{self, Item};
use super::synth::{self, SynthError};
use super::userdata::{LCombo, LDnsName};
use mlua::{IntoLua, Lua, Table, Value};
use std::collections::HashMap;
use std::net::IpAddr;

/// A function's result, converted to Lua with the record's memory limit
/// lifted: while a limit is set, mlua creates every string and table in a
/// protected call, which cost more than the function itself. The result
/// is bounded by what the function read (a pick, a list of the record's
/// addresses, a name), so it can exceed the limit only by that much, and
/// the record's next allocation then fails as before.
pub(super) struct Ret<T>(pub(super) T);

impl<T: IntoLua> IntoLua for Ret<T> {
    fn into_lua(self, lua: &Lua) -> mlua::Result<Value> {
        let limit = lua.set_memory_limit(0);
        let v = self.0.into_lua(lua);
        if let Ok(limit) = limit {
            let _ = lua.set_memory_limit(limit);
        }
        v
    }
}

/// A Lua runtime error with `msg`.
pub(super) fn rt(msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(msg.to_string())
}

/// A Lua value read as a C++ `std::string` by LuaWrapper (numbers coerce).
pub(super) fn value_string(v: &Value) -> mlua::Result<String> {
    match v {
        Value::String(s) => Ok(s.to_string_lossy()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Number(f) => Ok(synth::lua51_number(*f)),
        Value::UserData(ud) => {
            if let Ok(c) = ud.borrow::<LCombo>() {
                return Ok(c.0.to_string());
            }
            if let Ok(n) = ud.borrow::<LDnsName>() {
                return Ok(n.text());
            }
            Err(rt("Unable to convert parameter to string"))
        }
        other => Err(rt(format!(
            "Unable to convert parameter from {} to string",
            other.type_name()
        ))),
    }
}

/// `vector<pair<int,string>>`: values of an integer-keyed table, in `next` order.
pub(super) fn string_list(v: &Value) -> mlua::Result<Vec<String>> {
    let Value::Table(t) = v else {
        return Err(rt(format!("expected a list, got {}", v.type_name())));
    };
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if !matches!(k, Value::Integer(_)) {
            return Err(rt("expected a list (integer keys)"));
        }
        out.push(value_string(&v)?);
    }
    Ok(out)
}

/// [`string_list`], read off the stack when the table allows it.
pub(super) fn string_list_of(lua: &Lua, v: &Value) -> mlua::Result<Vec<String>> {
    match rawlist::with_list(lua, v, |items| {
        items
            .iter()
            .map(|i| i.text().into_owned())
            .collect::<Vec<_>>()
    }) {
        Some(list) => Ok(list),
        None => string_list(v),
    }
}

/// Addresses of parsed list items (`ip_list` after `string_list`).
fn ip_items(items: &[Item<'_>]) -> mlua::Result<Vec<IpAddr>> {
    items
        .iter()
        .map(|i| {
            let s = i.text();
            parse_combo(&s)
                .ok_or_else(|| rt(format!("Unable to convert presentation address '{s}'")))
        })
        .collect()
}

/// [`ip_list`], read off the stack when the table allows it.
pub(super) fn ip_list_of(lua: &Lua, v: &Value) -> mlua::Result<Vec<IpAddr>> {
    rawlist::with_list(lua, v, ip_items).unwrap_or_else(|| ip_list(v))
}

/// [`ip_sets`], read off the stack when the table allows it.
pub(super) fn ip_sets_of(lua: &Lua, v: &Value) -> mlua::Result<Vec<Vec<IpAddr>>> {
    rawlist::with_sets(lua, v, |sets| {
        sets.iter()
            .map(|s| ip_items(s))
            .collect::<mlua::Result<Vec<_>>>()
    })
    .unwrap_or_else(|| ip_sets(v))
}

fn ip_list(v: &Value) -> mlua::Result<Vec<IpAddr>> {
    string_list(v)?
        .iter()
        .map(|s| {
            parse_combo(s)
                .ok_or_else(|| rt(format!("Unable to convert presentation address '{s}'")))
        })
        .collect()
}

/// `variant<iplist_t, ipunitlist_t>`: a list of addresses or a list of lists.
fn ip_sets(v: &Value) -> mlua::Result<Vec<Vec<IpAddr>>> {
    let Value::Table(t) = v else {
        return Err(rt("expected a list of addresses"));
    };
    let first_is_table = matches!(t.get::<Value>(1)?, Value::Table(_));
    if !first_is_table {
        return Ok(vec![ip_list(v)?]);
    }
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (_, set) = pair?;
        out.push(ip_list(&set)?);
    }
    Ok(out)
}

/// `unordered_map<int, unordered_map<int,string>>` of `{weight, value}`
/// pairs, in the order libstdc++ iterates such a map.
pub(super) fn weighted_list(v: &Value) -> mlua::Result<Vec<(i64, String)>> {
    let Value::Table(t) = v else {
        return Err(rt("expected a list of {weight, value} pairs"));
    };
    let mut keys = Vec::new();
    let mut items = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, inner) = pair?;
        let Value::Integer(k) = k else {
            return Err(rt("expected a list of {weight, value} pairs"));
        };
        let Value::Table(inner) = inner else {
            return Err(rt("expected {weight, value}"));
        };
        let w = value_string(&inner.get::<Value>(1)?)?;
        let s = value_string(&inner.get::<Value>(2)?)?;
        keys.push(k);
        items.push((super::addr::atoi(&w), s));
    }
    Ok(unordered_map_order(&keys)
        .into_iter()
        .map(|i| items[i].clone())
        .collect())
}

/// `opts_t` (`unordered_map<string,string>`).
pub(super) fn options(v: &Option<Table>) -> mlua::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    if let Some(t) = v {
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            let k = value_string(&k)?;
            let v = match v {
                Value::Boolean(b) => b.to_string(),
                other => value_string(&other)?,
            };
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// A string or a list of strings (`combovar_t`).
pub(super) fn string_or_list(v: &Value) -> mlua::Result<Vec<String>> {
    match v {
        Value::Table(_) => string_list(v),
        other => Ok(vec![value_string(other)?]),
    }
}

/// A rule's complaint as a Lua runtime error.
pub(super) fn synth_err(e: SynthError) -> mlua::Error {
    rt(e.0)
}

/// An optional string-to-string table as pairs (`createReverse`'s exceptions).
pub(super) fn string_pairs(t: &Option<Table>) -> mlua::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(t) = t {
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            out.push((value_string(&k)?, value_string(&v)?));
        }
    }
    Ok(out)
}

/// `host:port` or `[v6]:port` split (port 0 when absent), as `ComboAddress` parses it.
pub(super) fn split_port(s: &str) -> (&str, u16) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            return (h, p.parse().unwrap_or(0));
        }
        return (rest.trim_end_matches(']'), 0);
    }
    if s.matches(':').count() == 1 {
        if let Some((h, p)) = s.split_once(':') {
            if let Ok(port) = p.parse() {
                return (h, port);
            }
        }
    }
    (s, 0)
}
