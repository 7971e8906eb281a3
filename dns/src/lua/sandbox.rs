//! The sandbox a state runs records in. Each state is built once: standard
//! libraries limited to `string`, `table`, `math`, `utf8` and four `os`
//! time functions (behind read-only proxies), the LUA functions, and an
//! instruction hook. Evaluations run in the state's one environment table,
//! whose metatable (locked) falls back to that base; any write to it marks
//! it dirty and a dirty environment is emptied after the evaluation, so
//! globals a record defines die with the evaluation and no record can
//! modify what the next one sees. Nothing a record leaves may run outside
//! its budget: `__gc` metamethods are refused, and so are to-be-closed
//! variables (see `eval.rs`).

use super::addr::Netmask;
use super::builtins::register_functions;
use super::eval::ctx_of;
use super::limits::{Budget, HIT_NONE, HOOK_EVERY};
use super::userdata::{LCombo, LDnsName, LHeader, LNetmask};
use mlua::{Function, HookTriggers, IntoLua, Lua, LuaOptions, StdLib, Table, Value};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One reusable Lua state.
pub(super) struct Worker {
    pub(super) lua: Lua,
    /// The environment every evaluation on this state runs in; emptied
    /// after each one that wrote to it (see [`reset_env`]), so records never
    /// see each other's globals, without building a table per query.
    pub(super) env: Table,
    /// Something was stored in `env` since it was last emptied.
    pub(super) dirty: Arc<AtomicBool>,
    pub(super) budget: Arc<Budget>,
    /// Compiled records by their stored chunks (no joining or formatting
    /// of the code on a hit), with whether the code names `include`.
    /// FxHash: the keys are zone content, hashed on every evaluation.
    pub(super) chunks: FxHashMap<Vec<String>, (Function, bool)>,
    /// `function(f) return (f()) end`: calls a record and keeps its first
    /// result, inside the VM. mlua 0.11 reads every result of a call back
    /// without growing the C stack first, so a record returning hundreds of
    /// values overflowed it (a fuzz finding, fuzz/regressions/lua_record).
    pub(super) first: Function,
}

/// Trusted bootstrap run once per state with the real globals: builds the
/// whitelisted base table the per-evaluation environments fall back to.
const BOOTSTRAP: &str = r#"
local G, limit_hit = _G, ...
local function ro(t)
  return G.setmetatable({}, {
    __index = t,
    __newindex = function() G.error("attempt to modify a read-only table", 2) end,
    __metatable = false,
  })
end
local base = {}
for _, k in G.ipairs({'assert','error','ipairs','next','pairs','select','tonumber','tostring',
                      'type','rawequal','rawlen','rawget','_VERSION'}) do
  base[k] = G[k]
end
-- Finalizers run with the instruction hook off (Lua stops hooks during GC
-- metamethods), at any later collection: a looping __gc would hold its
-- thread forever, outside every budget. Lua marks an object for
-- finalization only if its metatable has __gc when it is set, so
-- refusing it here is enough.
local rawsetmt, rawget = G.setmetatable, G.rawget
base.setmetatable = function(t, mt)
  if G.type(mt) == 'table' and rawget(mt, '__gc') ~= nil then
    G.error('__gc metamethods are not allowed in LUA records', 2)
  end
  return rawsetmt(t, mt)
end
base.unpack = G.table.unpack
local rawgetmt = G.getmetatable
-- Only tables: string and userdata metatables are shared across records.
base.getmetatable = function(o) if G.type(o) == 'table' then return rawgetmt(o) end return nil end
local rawpcall, pack, unpack = G.pcall, G.table.pack, G.table.unpack
-- A caught limit error must not let the script carry on.
base.pcall = function(f, ...)
  local r = pack(rawpcall(f, ...))
  if not r[1] and limit_hit() then G.error(r[2], 0) end
  return unpack(r, 1, r.n)
end
-- Pattern matching runs in C where the instruction hook cannot stop it,
-- and backtracking patterns are polynomial in the subject length with the
-- number of quantifiers as exponent. Refuse calls whose worst case
-- (start positions x backtracking states) exceeds a few million steps.
local sgsub, slen, ssub = G.string.gsub, G.string.len, G.string.sub
local function quantifiers(p)
  p = sgsub(p, '%%.', 'x')
  p = sgsub(p, '%[%^?%]?[^%]]*%]', 'x')
  local _, k = sgsub(p, '[%*%+%-%?]', '')
  return k
end
local function check(s, p)
  if G.type(s) ~= 'string' or G.type(p) ~= 'string' then return end
  local n = slen(s)
  local cost = (ssub(p, 1, 1) == '^') and 1 or (n + 1)
  for i = 1, quantifiers(p) do
    cost = cost * (n + i) / i
    if cost > 5e6 then G.error('pattern too complex for a LUA record', 3) end
  end
end
for _, name in G.ipairs({'find', 'match', 'gmatch', 'gsub'}) do
  local f = G.string[name]
  G.string[name] = function(s, p, ...)
    if not (name == 'find' and G.select(2, ...)) then check(s, p) end
    return f(s, p, ...)
  end
end
-- string.rep copies in a C loop, once per repetition even when the copies
-- are empty, where the instruction hook cannot stop it (non-empty copies
-- are bounded by the memory limit: the result is allocated first). Empty
-- copies make the empty string: return it without the loop.
local srep = G.string.rep
G.string.rep = function(s, n, sep)
  local k = G.tonumber(n)
  if s == '' and (sep == nil or sep == '') and k and k % 1 == 0 then return '' end
  return srep(s, n, sep)
end
base.string = ro(G.string)
base.table = ro(G.table)
base.math = ro(G.math)
base.utf8 = ro(G.utf8)
base.os = ro({ time = G.os.time, date = G.os.date, clock = G.os.clock, difftime = G.os.difftime })
rawgetmt('').__metatable = false
return base
"#;

/// A new state: the sandboxed base table, the functions, the environment and the hook.
pub(super) fn build_worker() -> mlua::Result<Worker> {
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::OS,
        LuaOptions::default(),
    )?;
    let budget = Arc::new(Budget::new());
    let b2 = budget.clone();
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_, _| b2.tick(),
    )?;
    let b3 = budget.clone();
    let limit_hit =
        lua.create_function(move |_, ()| Ok(b3.hit.load(Ordering::Relaxed) != HIT_NONE))?;
    let base: Table = lua.load(BOOTSTRAP).set_name("bootstrap").call(limit_hit)?;
    register_functions(&lua, &base)?;
    // Lookups go env (the record's own globals and presets already read) →
    // base (the functions) → `preset`, which builds the preset variable.
    // `_G` lives in base, so an untouched environment is empty and needs
    // no reset; writes of new globals go through `__newindex`, which marks
    // it dirty.
    let env = lua.create_table_with_capacity(0, 32)?;
    let dirty = Arc::new(AtomicBool::new(false));
    let env_mt = lua.create_table()?;
    env_mt.raw_set("__index", base.clone())?;
    let d = dirty.clone();
    let store = lua.create_function(move |_, (t, k, v): (Table, Value, Value)| {
        d.store(true, Ordering::Relaxed);
        t.raw_set(k, v)
    })?;
    env_mt.raw_set("__newindex", store)?;
    env_mt.raw_set("__metatable", false)?;
    env.set_metatable(Some(env_mt))?;
    base.raw_set("_G", env.clone())?;
    let (env2, d) = (env.clone(), dirty.clone());
    let presets = lua.create_function(move |lua, (_, key): (Value, Value)| match key {
        Value::String(key) => preset(lua, &env2, &d, &key),
        _ => Ok(Value::Nil),
    })?;
    let base_mt = lua.create_table()?;
    base_mt.raw_set("__index", presets)?;
    base_mt.raw_set("__metatable", false)?;
    base.set_metatable(Some(base_mt))?;
    let first = lua
        .load("local f = ... return (f())")
        .set_name("LUA record call")
        .set_mode(mlua::ChunkMode::Text)
        .into_function()?;
    Ok(Worker {
        lua,
        env,
        dirty,
        budget,
        chunks: FxHashMap::default(),
        first,
    })
}

/// Empty the shared environment after an evaluation: the globals a record
/// set and the presets it looked at.
pub(super) fn reset_env(env: &Table) -> mlua::Result<()> {
    let mut keys: Vec<Value> = Vec::new();
    for pair in env.pairs::<Value, Value>() {
        let (k, _) = pair?;
        keys.push(k);
    }
    for k in keys {
        env.raw_set(k, Value::Nil)?;
    }
    Ok(())
}

/// A preset variable (`qname`, `who`, ...), built from the evaluation
/// context the first time a record reads it and kept in the environment
/// until the evaluation ends. Most records read none, and building them all
/// up front (userdata each) cost more than running the record.
pub(super) fn preset(
    lua: &Lua,
    env: &Table,
    dirty: &AtomicBool,
    key: &mlua::String,
) -> mlua::Result<Value> {
    let ctx = ctx_of(lua)?;
    let v = match &*key.as_bytes() {
        b"qname" => LDnsName(ctx.qname.clone()).into_lua(lua)?,
        b"zone" => LDnsName(ctx.zone.clone()).into_lua(lua)?,
        b"zoneid" => ctx.zone_id.into_lua(lua)?,
        b"who" => LCombo(ctx.who, 0).into_lua(lua)?,
        b"bestwho" => LCombo(ctx.bestwho, 0).into_lua(lua)?,
        b"ecswho" => match ctx.ecs {
            Some((a, bits)) => LNetmask(Netmask::new(a, bits)).into_lua(lua)?,
            None => Value::Nil,
        },
        b"dh" => LHeader(ctx.header).into_lua(lua)?,
        b"dnssecOK" => Value::Boolean(ctx.dnssec_ok),
        b"tcp" => Value::Boolean(ctx.tcp),
        b"ednsPKTSize" => ctx.edns_size.into_lua(lua)?,
        _ => return Ok(Value::Nil),
    };
    drop(ctx);
    env.raw_set(key, v.clone())?;
    dirty.store(true, Ordering::Relaxed);
    Ok(v)
}
