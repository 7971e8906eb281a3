//! The Lua side: a pool of pre-warmed, sandboxed mlua states, the
//! PowerDNS LUA functions registered in them, and one evaluation.
//!
//! Each state is built once: standard libraries limited to `string`,
//! `table`, `math`, `utf8` and four `os` time functions (behind read-only
//! proxies), the LUA functions, and an instruction hook. Evaluations run in
//! the state's one environment table, whose metatable (locked) falls back to
//! that base; any write to it marks it dirty and a dirty environment is
//! emptied after the evaluation, so globals a record defines die with the
//! evaluation and no record can modify what the next one sees. States go
//! back to a lock-free queue after use (garbage-collected first when they
//! hit a limit).

use super::addr::{ip_text, parse_combo, Netmask, NetmaskGroup};
use super::geo::{latlon_loc, latlon_text, GeoInfo};
use super::hash::unordered_map_order;
use super::health::{CheckKind, CheckOptions, Health, TargetKey};
use super::rawlist::{self, Item};
use super::synth::{self, SynthError};
use super::{LuaAnswer, LuaConfig, LuaError, LuaRecord, QueryContext, LUA_TYPE_CODE};
use crossbeam_queue::ArrayQueue;
use hickory_proto::rr::{Name, RecordType};
use mlua::{
    AnyUserData, Function, HookTriggers, IntoLua, Lua, LuaOptions, MetaMethod, StdLib, Table,
    UserData, UserDataMethods, Value, Variadic, VmState,
};
use rand::Rng;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How often (in VM instructions) the hook checks the budgets.
const HOOK_EVERY: u32 = 1000;

const HIT_NONE: u8 = 0;
const HIT_INSTRUCTIONS: u8 = 1;
const HIT_TIME: u8 = 2;

/// Per-state budget the instruction hook enforces.
#[derive(Debug)]
struct Budget {
    epoch: Instant,
    deadline_us: AtomicU64,
    used: AtomicU64,
    max: AtomicU64,
    hit: AtomicU8,
}

impl Budget {
    fn new() -> Self {
        Budget {
            epoch: Instant::now(),
            deadline_us: AtomicU64::new(u64::MAX),
            used: AtomicU64::new(0),
            max: AtomicU64::new(u64::MAX),
            hit: AtomicU8::new(HIT_NONE),
        }
    }

    fn arm(&self, cfg: &LuaConfig) {
        let deadline = self.epoch.elapsed() + cfg.timeout;
        self.deadline_us.store(
            u64::try_from(deadline.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.used.store(0, Ordering::Relaxed);
        self.max
            .store(cfg.max_instructions.max(1), Ordering::Relaxed);
        self.hit.store(HIT_NONE, Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.deadline_us.store(u64::MAX, Ordering::Relaxed);
        self.max.store(u64::MAX, Ordering::Relaxed);
    }

    /// Called every [`HOOK_EVERY`] instructions. Once exceeded it keeps
    /// failing, so code that catches the error (pcall) fails again at once.
    fn tick(&self) -> mlua::Result<VmState> {
        let used = self
            .used
            .fetch_add(u64::from(HOOK_EVERY), Ordering::Relaxed)
            + u64::from(HOOK_EVERY);
        if used > self.max.load(Ordering::Relaxed) {
            self.hit.store(HIT_INSTRUCTIONS, Ordering::Relaxed);
            return Err(mlua::Error::runtime(
                "Script took too long (instruction limit)",
            ));
        }
        let now_us = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        if now_us > self.deadline_us.load(Ordering::Relaxed) {
            self.hit.store(HIT_TIME, Ordering::Relaxed);
            return Err(mlua::Error::runtime("Script took too long (time limit)"));
        }
        Ok(VmState::Continue)
    }
}

/// Raised by geo functions when no provider is configured.
#[derive(Debug, thiserror::Error)]
#[error("no GeoIP database configured")]
struct GeoMissing;

/// What the LUA functions may know about the current evaluation.
struct EvalCtx {
    qname: Name,
    zone: Name,
    bestwho: IpAddr,
    /// The rest of the preset variables (see [`preset`]).
    zone_id: i64,
    who: IpAddr,
    ecs: Option<(IpAddr, u8)>,
    header: (u16, bool, bool),
    dnssec_ok: bool,
    tcp: bool,
    edns_size: u16,
    config: LuaConfig,
    /// At zone load: register every health-check target, not just the
    /// ones the selection logic reaches.
    priming: bool,
    /// An evaluation is running (the context stays in the state between
    /// evaluations, inactive).
    active: bool,
}

/// One reusable Lua state.
struct Worker {
    lua: Lua,
    /// The environment every evaluation on this state runs in; emptied
    /// after each one that wrote to it (see [`reset_env`]), so records never
    /// see each other's globals, without building a table per query.
    env: Table,
    /// Something was stored in `env` since it was last emptied.
    dirty: Arc<AtomicBool>,
    budget: Arc<Budget>,
    /// Compiled records by their stored chunks (no joining or formatting
    /// of the code on a hit), with whether the code names `include`.
    /// FxHash: the keys are zone content, hashed on every evaluation.
    chunks: FxHashMap<Vec<String>, (Function, bool)>,
}

/// Evaluation counters.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq, Eq)]
pub struct LuaStats {
    /// Evaluations run.
    pub evaluations: u64,
    /// Evaluations that failed.
    pub errors: u64,
    /// Evaluations stopped by the instruction, time or memory limit.
    pub limit_errors: u64,
    /// Lua states created (pool misses and replacements).
    pub states_created: u64,
}

#[derive(Default)]
struct Counters {
    evaluations: AtomicU64,
    errors: AtomicU64,
    limit_errors: AtomicU64,
    states_created: AtomicU64,
}

struct EngineInner {
    config: LuaConfig,
    pool: ArrayQueue<Worker>,
    counters: Counters,
}

/// The LUA record engine (Send + Sync; clones share the state pool).
///
/// Where it deliberately differs from PowerDNS 4.7:
/// - a real instruction/time limit and a memory limit (4.7's exec limit is
///   broken; `;while true do end` hangs it) → [`LuaError`], SERVFAIL;
/// - sandboxed: no `io`, `os` beyond time/date/clock/difftime, `require`,
///   `load*`, `dofile`, `debug`, `collectgarbage`, `coroutine`; globals do
///   not leak between evaluations (PowerDNS `shared` mode leaks them);
/// - geo functions fail without a GeoIP provider (4.7 answers `--` etc.);
/// - `filterForward(..., '')` returns no records (the documented 4.9
///   behaviour; 4.7 returns `""` and SERVFAILs);
/// - accepts the 4.8+ list-of-sets form in `ifportup`, the 5.0 options
///   `interval`/`minimumFailures`/`failOnIncompleteCheck` and the 4.9
///   `picknamehashed`;
/// - `ifurlextup` groups are read in Lua `pairs` order (PowerDNS reads them
///   into a `std::unordered_map<string,string>`, whose order only matters
///   for the `hashed` selector).
#[derive(Clone)]
pub struct LuaEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for LuaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaEngine")
            .field("config", &self.inner.config)
            .field("idle_states", &self.inner.pool.len())
            .finish()
    }
}

impl LuaEngine {
    /// Build an engine and pre-warm `pool_size` states.
    pub fn new(config: LuaConfig) -> LuaEngine {
        let cap = config.pool_size.max(1);
        let engine = LuaEngine {
            inner: Arc::new(EngineInner {
                config,
                pool: ArrayQueue::new(cap),
                counters: Counters::default(),
            }),
        };
        for _ in 0..cap {
            match engine.new_worker() {
                Ok(w) => {
                    let _ = engine.inner.pool.push(w);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot create Lua state");
                    break;
                }
            }
        }
        engine
    }

    /// The configuration.
    pub fn config(&self) -> &LuaConfig {
        &self.inner.config
    }

    /// Evaluation counters.
    pub fn stats(&self) -> LuaStats {
        let c = &self.inner.counters;
        LuaStats {
            evaluations: c.evaluations.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            limit_errors: c.limit_errors.load(Ordering::Relaxed),
            states_created: c.states_created.load(Ordering::Relaxed),
        }
    }

    /// Evaluate a LUA record for one query.
    pub fn evaluate(&self, rec: &LuaRecord, ctx: &QueryContext<'_>) -> Result<LuaAnswer, LuaError> {
        self.inner
            .counters
            .evaluations
            .fetch_add(1, Ordering::Relaxed);
        let r = self.run(rec, ctx, false);
        if let Err(e) = &r {
            self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(qname = %ctx.qname, rtype = %rec.rtype, error = %e, "LUA record failed");
        }
        r
    }

    /// Evaluate once at zone load so the record's health-check targets
    /// (all of them, not only those the selection reaches) are registered
    /// and checked before the first query.
    pub fn prime(
        &self,
        rec: &LuaRecord,
        owner: &Name,
        zone: &Name,
        include: Option<&super::IncludeFn>,
    ) -> Result<(), LuaError> {
        let who = IpAddr::from([127, 0, 0, 1]);
        let mut ctx = QueryContext::new(owner.clone(), rec.rtype, zone.clone(), who);
        ctx.include = include;
        self.run(rec, &ctx, true).map(|_| ())
    }

    fn new_worker(&self) -> Result<Worker, LuaError> {
        self.inner
            .counters
            .states_created
            .fetch_add(1, Ordering::Relaxed);
        build_worker().map_err(|e| LuaError::Internal(e.to_string()))
    }

    fn run(
        &self,
        rec: &LuaRecord,
        ctx: &QueryContext<'_>,
        priming: bool,
    ) -> Result<LuaAnswer, LuaError> {
        if rec.rtype == RecordType::Unknown(LUA_TYPE_CODE) {
            return Err(LuaError::NotEvaluable(
                "type LUA records are include files".into(),
            ));
        }
        let mut worker = match self.inner.pool.pop() {
            Some(w) => w,
            None => self.new_worker()?,
        };
        let cfg = &self.inner.config;
        let bestwho = ctx.bestwho();
        // Overwrite the state's context in place: inserting and removing app
        // data allocates each time. The configuration is the engine's, set
        // when the state first ran (states never change engines).
        match worker.lua.app_data_mut::<EvalCtx>() {
            Some(mut slot) => {
                let slot = &mut *slot;
                slot.qname.clone_from(&ctx.qname);
                slot.zone.clone_from(&ctx.zone);
                slot.bestwho = bestwho;
                slot.zone_id = ctx.zone_id;
                slot.who = ctx.who;
                slot.ecs = ctx.ecs;
                slot.header = ctx.header;
                slot.dnssec_ok = ctx.dnssec_ok;
                slot.tcp = ctx.tcp;
                slot.edns_size = ctx.edns_size;
                slot.priming = priming;
                slot.active = true;
            }
            None => {
                worker.lua.set_app_data(EvalCtx {
                    qname: ctx.qname.clone(),
                    zone: ctx.zone.clone(),
                    bestwho,
                    zone_id: ctx.zone_id,
                    who: ctx.who,
                    ecs: ctx.ecs,
                    header: ctx.header,
                    dnssec_ok: ctx.dnssec_ok,
                    tcp: ctx.tcp,
                    edns_size: ctx.edns_size,
                    config: cfg.clone(),
                    priming,
                    active: true,
                });
            }
        }
        worker.budget.arm(cfg);
        let result = eval_in(&mut worker, rec, ctx, cfg);
        worker.budget.disarm();
        let hit = worker.budget.hit.load(Ordering::Relaxed);
        if let Some(mut slot) = worker.lua.app_data_mut::<EvalCtx>() {
            slot.active = false;
        }

        let outcome = match (hit, result) {
            (HIT_INSTRUCTIONS, _) => Err(LuaError::InstructionLimit),
            (HIT_TIME, _) => Err(LuaError::Timeout),
            (_, Err(e)) => Err(map_error(&e)),
            (_, Ok(v)) => v,
        };
        let poisoned = matches!(
            outcome,
            Err(LuaError::InstructionLimit | LuaError::Timeout | LuaError::MemoryLimit)
        );
        if poisoned {
            // Lua unwinds limit errors like any error, so the state stays
            // usable (and rebuilding one inline would slow this very query);
            // only reclaim what the runaway code allocated.
            self.inner
                .counters
                .limit_errors
                .fetch_add(1, Ordering::Relaxed);
            let _ = worker.lua.gc_collect();
        }
        let _ = self.inner.pool.push(worker);
        let strings = outcome?;
        let mut records = Vec::with_capacity(strings.len());
        for s in strings {
            match synth::rdata_from_text(rec.rtype, &s) {
                Ok(r) => records.push(r),
                Err(SynthError(reason)) => {
                    return Err(LuaError::BadRdata {
                        value: s,
                        rtype: rec.rtype,
                        reason,
                    })
                }
            }
        }
        Ok(LuaAnswer {
            rtype: rec.rtype,
            records,
            ecs_scope: ctx.ecs.map(|(_, bits)| bits),
            ttl: None,
        })
    }
}

/// Run the record in the state's environment (emptied afterwards when it
/// was written). Outer `Err` is a Lua error; inner
/// `Err` is a result of the wrong shape.
fn eval_in(
    worker: &mut Worker,
    rec: &LuaRecord,
    ctx: &QueryContext<'_>,
    cfg: &LuaConfig,
) -> mlua::Result<Result<Vec<String>, LuaError>> {
    let cache_cap = cfg.chunk_cache;
    let Worker {
        lua,
        env,
        dirty,
        chunks,
        budget,
        ..
    } = worker;
    let (func, uses_include) = match chunks.get(rec.chunks.as_slice()) {
        Some((f, inc)) => (f.clone(), *inc),
        None => {
            let code = rec.code();
            let actual = match code.strip_prefix(';') {
                Some(script) => script.to_string(),
                None => format!("return {code}"),
            };
            let f = lua
                .load(&actual)
                .set_name("LUA record")
                .set_environment(env.clone())
                .into_function()?;
            if chunks.len() >= cache_cap.max(1) {
                chunks.clear();
            }
            let inc = actual.contains("include");
            chunks.insert(rec.chunks.clone(), (f.clone(), inc));
            (f, inc)
        }
    };
    // The memory limit covers the record's own code only: while a limit is
    // set, mlua runs every table and string operation in a protected call.
    let call = |func: &Function| {
        let baseline = lua.used_memory();
        let _ = lua.set_memory_limit(baseline.saturating_add(cfg.memory_limit));
        let v = func.call::<Value>(());
        let _ = lua.set_memory_limit(0);
        v
    };
    // `include` must borrow the zone for this query, so it lives in a scope;
    // a scope costs more than most programs, and a record can only reach
    // `include` by naming it.
    let result = if uses_include {
        let include = ctx.include;
        let zone = ctx.zone.clone();
        let budget = budget.clone();
        lua.scope(|scope| {
            let env2 = env.clone();
            let inc = scope.create_function(move |lua, name: String| {
                include_records(lua, &env2, include, &zone, &name, &budget)
            })?;
            env.raw_set("include", inc)?;
            dirty.store(true, Ordering::Relaxed);
            call(&func)
        })
    } else {
        call(&func)
    };
    let outcome = result.map(|v| {
        // A returned list is read off the stack when it allows it.
        if let Some(list) = rawlist::with_list(lua, &v, |items| {
            items.iter().map(|i| i.text().into_owned()).collect()
        }) {
            return Ok(list);
        }
        result_strings(v)
    });
    if dirty.swap(false, Ordering::Relaxed) {
        reset_env(env)?;
    }
    outcome
}

/// Empty the shared environment after an evaluation: the globals a record
/// set and the presets it looked at.
fn reset_env(env: &Table) -> mlua::Result<()> {
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
fn preset(lua: &Lua, env: &Table, dirty: &AtomicBool, key: &mlua::String) -> mlua::Result<Value> {
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

/// `include('name')`: run the LUA records at `name.<zone>` in the current
/// environment. Like PowerDNS, a failing include is logged and ignored,
/// except that exhausted budgets always propagate.
fn include_records(
    lua: &Lua,
    env: &Table,
    include: Option<&super::IncludeFn>,
    zone: &Name,
    name: &str,
    budget: &Budget,
) -> mlua::Result<()> {
    let Some(resolve) = include else {
        return Ok(());
    };
    let target = match Name::from_ascii(name).and_then(|n| n.append_domain(zone)) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(name, error = %e, "included LUA record name is malformed");
            return Ok(());
        }
    };
    for rec in resolve(&target) {
        let code = rec.code();
        let r = lua
            .load(code)
            .set_name("include")
            .set_environment(env.clone())
            .exec();
        if let Err(e) = r {
            if budget.hit.load(Ordering::Relaxed) != HIT_NONE || has_memory_error(&e) {
                return Err(e);
            }
            tracing::error!(record = %target, error = %e, "failed to load include record for LUA record");
        }
    }
    Ok(())
}

/// The returned value as strings (`variant<string, vector<pair<int,string>>>`).
fn result_strings(v: Value) -> Result<Vec<String>, LuaError> {
    match v {
        Value::Nil => Err(LuaError::Nil),
        Value::Table(t) => {
            let mut out = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| LuaError::BadReturn(e.to_string()))?;
                if !matches!(k, Value::Integer(_)) {
                    return Err(LuaError::BadReturn("table with non-integer keys".into()));
                }
                out.push(value_string(&v).map_err(|e| LuaError::BadReturn(e.to_string()))?);
            }
            Ok(out)
        }
        other => value_string(&other)
            .map(|s| vec![s])
            .map_err(|_| LuaError::BadReturn(other.type_name().to_string())),
    }
}

fn map_error(e: &mlua::Error) -> LuaError {
    if has_memory_error(e) {
        return LuaError::MemoryLimit;
    }
    if find_cause(e, &|x| x.downcast_ref::<GeoMissing>().is_some()) {
        return LuaError::GeoUnavailable;
    }
    LuaError::Script(e.to_string())
}

fn find_cause(e: &mlua::Error, pred: &dyn Fn(&mlua::Error) -> bool) -> bool {
    if pred(e) {
        return true;
    }
    match e {
        mlua::Error::CallbackError { cause, .. } => find_cause(cause, pred),
        mlua::Error::WithContext { cause, .. } => find_cause(cause, pred),
        _ => false,
    }
}

fn has_memory_error(e: &mlua::Error) -> bool {
    find_cause(e, &|x| matches!(x, mlua::Error::MemoryError(_)))
}

// ---------------------------------------------------------------- state build

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
                      'type','rawequal','rawlen','rawget','setmetatable','_VERSION'}) do
  base[k] = G[k]
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
base.string = ro(G.string)
base.table = ro(G.table)
base.math = ro(G.math)
base.utf8 = ro(G.utf8)
base.os = ro({ time = G.os.time, date = G.os.date, clock = G.os.clock, difftime = G.os.difftime })
rawgetmt('').__metatable = false
return base
"#;

fn build_worker() -> mlua::Result<Worker> {
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
    Ok(Worker {
        lua,
        env,
        dirty,
        budget,
        chunks: FxHashMap::default(),
    })
}

// ---------------------------------------------------------------- conversions

/// A function's result, converted to Lua with the record's memory limit
/// lifted: while a limit is set, mlua creates every string and table in a
/// protected call, which cost more than the function itself. The result
/// is bounded by what the function read (a pick, a list of the record's
/// addresses, a name), so it can exceed the limit only by that much, and
/// the record's next allocation then fails as before.
struct Ret<T>(T);

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

fn rt(msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(msg.to_string())
}

fn ctx_of(lua: &Lua) -> mlua::Result<mlua::AppDataRef<'_, EvalCtx>> {
    lua.app_data_ref::<EvalCtx>()
        .filter(|c| c.active)
        .ok_or_else(|| rt("LUA function called outside a record evaluation"))
}

/// A Lua value read as a C++ `std::string` by LuaWrapper (numbers coerce).
fn value_string(v: &Value) -> mlua::Result<String> {
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
fn string_list(v: &Value) -> mlua::Result<Vec<String>> {
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
fn string_list_of(lua: &Lua, v: &Value) -> mlua::Result<Vec<String>> {
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

/// One item picked from `string_list(v)` by `pick`, converted to a string
/// only once chosen.
fn pick_one(
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
fn pick_weighted(
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
fn ip_list_of(lua: &Lua, v: &Value) -> mlua::Result<Vec<IpAddr>> {
    rawlist::with_list(lua, v, ip_items).unwrap_or_else(|| ip_list(v))
}

/// [`ip_sets`], read off the stack when the table allows it.
fn ip_sets_of(lua: &Lua, v: &Value) -> mlua::Result<Vec<Vec<IpAddr>>> {
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
fn weighted_list(v: &Value) -> mlua::Result<Vec<(i64, String)>> {
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
fn options(v: &Option<Table>) -> mlua::Result<HashMap<String, String>> {
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
fn string_or_list(v: &Value) -> mlua::Result<Vec<String>> {
    match v {
        Value::Table(_) => string_list(v),
        other => Ok(vec![value_string(other)?]),
    }
}

fn synth_err(e: SynthError) -> mlua::Error {
    rt(e.0)
}

fn geo_lookup(ctx: &EvalCtx, addr: &IpAddr) -> mlua::Result<GeoInfo> {
    match &ctx.config.geo {
        Some(g) => Ok(g.lookup(addr)),
        None => Err(mlua::Error::external(GeoMissing)),
    }
}

fn closest_of(ctx: &EvalCtx, candidates: &[IpAddr]) -> mlua::Result<IpAddr> {
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

/// `genericIfUp`: the first set with an UP address wins (selector within
/// it); if none, `backupSelector` over every address.
fn generic_if_up(
    ctx: &EvalCtx,
    sets: &[Vec<IpAddr>],
    opts: &HashMap<String, String>,
    key_for: &dyn Fn(IpAddr) -> TargetKey,
) -> mlua::Result<Vec<String>> {
    let hc = &ctx.config.health;
    let assume_up = hc.config().assume_up_before_first_check;
    let mut incomplete = true;
    let mut chosen: Option<Vec<IpAddr>> = None;
    for set in sets {
        let mut available = Vec::new();
        for addr in set {
            let h = hc.status(&key_for(*addr));
            if h != Health::Unknown {
                incomplete = false;
            }
            if h == Health::Up || (h == Health::Unknown && assume_up) {
                available.push(*addr);
            }
        }
        if !available.is_empty() && chosen.is_none() {
            chosen = Some(available);
            if !ctx.priming {
                break;
            }
        }
    }
    let selector_for = |name: &str| opts.get(name).map_or("random", String::as_str);
    let mut rng = rand::thread_rng();
    let closest = |c: &[IpAddr]| closest_of(ctx, c).map_err(|e| SynthError(e.to_string()));
    let picked = match chosen {
        Some(avail) => synth::use_selector(
            selector_for("selector"),
            &ctx.bestwho,
            &avail,
            &mut rng,
            &closest,
        ),
        None => {
            if incomplete
                && opts
                    .get("failOnIncompleteCheck")
                    .is_some_and(|v| v == "true")
            {
                return Err(rt("if{url,port}up health check has not completed yet"));
            }
            let all: Vec<IpAddr> = sets.iter().flatten().copied().collect();
            synth::use_selector(
                selector_for("backupSelector"),
                &ctx.bestwho,
                &all,
                &mut rng,
                &closest,
            )
        }
    };
    Ok(picked.map_err(synth_err)?.iter().map(ip_text).collect())
}

fn geo_compare(
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

fn geo_code(lua: &Lua, pick: fn(&GeoInfo) -> Option<String>) -> mlua::Result<String> {
    let ctx = ctx_of(lua)?;
    let info = geo_lookup(&ctx, &ctx.bestwho)?;
    Ok(pick(&info).unwrap_or_else(|| "--".into()))
}

fn g_country(i: &GeoInfo) -> Option<String> {
    i.country.clone()
}
fn g_continent(i: &GeoInfo) -> Option<String> {
    i.continent.clone()
}
fn g_region(i: &GeoInfo) -> Option<String> {
    i.region.clone()
}
fn g_asn(i: &GeoInfo) -> Option<String> {
    i.asn.map(|a| a.to_string())
}

// ---------------------------------------------------------------- functions

fn register_functions(lua: &Lua, base: &Table) -> mlua::Result<()> {
    macro_rules! reg {
        ($name:expr, $f:expr) => {
            base.raw_set($name, lua.create_function($f)?)?;
        };
    }

    reg!("all", |lua, v: Value| {
        let items = string_list_of(lua, &v)?;
        if items.is_empty() {
            return Err(rt("The IP list cannot be empty"));
        }
        Ok(Ret(items))
    });
    reg!("pickrandom", |lua, v: Value| {
        pick_one(lua, &v, |items| {
            synth::pick_random(items, &mut rand::thread_rng())
        })
    });
    reg!("pickrandomsample", |lua, (n, v): (i64, Value)| {
        synth::pick_random_sample(n, &string_list_of(lua, &v)?, &mut rand::thread_rng())
            .map(Ret)
            .map_err(synth_err)
    });
    reg!("pickhashed", |lua, v: Value| {
        let bestwho = ctx_of(lua)?.bestwho;
        pick_one(lua, &v, |items| synth::pick_hashed(&bestwho, items))
    });
    reg!("pickwrandom", |lua, v: Value| {
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_random(items, &mut rand::thread_rng())
        })
    });
    reg!("pickwhashed", |lua, v: Value| {
        let bestwho = ctx_of(lua)?.bestwho;
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_hashed(&bestwho, items)
        })
    });
    reg!("picknamehashed", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        let qname = ctx.qname.clone();
        drop(ctx);
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_name_hashed(&qname, items)
        })
    });
    reg!("pickclosest", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        Ok(Ret(ip_text(&closest_of(&ctx, &ip_list_of(lua, &v)?)?)))
    });

    reg!("ifportup", |lua,
                      (port, addrs, opts): (
        i64,
        Value,
        Option<Table>
    )| {
        let ctx = ctx_of(lua)?;
        let port = port.clamp(0, i64::from(u16::MAX)) as u16;
        let sets = ip_sets_of(lua, &addrs)?;
        let opts = options(&opts)?;
        let check = CheckOptions::from_opts(&opts).map_err(rt)?;
        generic_if_up(&ctx, &sets, &opts, &|ip| TargetKey {
            kind: CheckKind::Tcp(SocketAddr::new(ip, port)),
            opts: check.clone(),
        })
        .map(Ret)
    });
    reg!("ifurlup", |lua,
                     (url, addrs, opts): (
        String,
        Value,
        Option<Table>
    )| {
        let ctx = ctx_of(lua)?;
        let sets = ip_sets_of(lua, &addrs)?;
        let opts = options(&opts)?;
        let check = CheckOptions::from_opts(&opts).map_err(rt)?;
        generic_if_up(&ctx, &sets, &opts, &|ip| TargetKey {
            kind: CheckKind::Http {
                url: url.clone(),
                addr: Some(ip),
            },
            opts: check.clone(),
        })
        .map(Ret)
    });
    reg!(
        "ifurlextup",
        |lua, (groups, opts): (Table, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let opts = options(&opts)?;
            let check = CheckOptions::from_opts(&opts).map_err(rt)?;
            let hc = &ctx.config.health;
            let assume_up = hc.config().assume_up_before_first_check;
            let mut all = Vec::new();
            let mut incomplete = true;
            let mut rng = rand::thread_rng();
            let closest = |c: &[IpAddr]| closest_of(&ctx, c).map_err(|e| SynthError(e.to_string()));
            let selector_for =
                |name: &str| opts.get(name).map_or("random", String::as_str).to_string();
            let mut chosen = None;
            for group in groups.pairs::<Value, Table>() {
                let (_, unit) = group?;
                let mut available = Vec::new();
                for entry in unit.pairs::<String, String>() {
                    let (ip, url) = entry?;
                    let addr = parse_combo(&ip).ok_or_else(|| {
                        rt(format!("Unable to convert presentation address '{ip}'"))
                    })?;
                    all.push(addr);
                    let h = hc.status(&TargetKey {
                        kind: CheckKind::Http { url, addr: None },
                        opts: check.clone(),
                    });
                    if h != Health::Unknown {
                        incomplete = false;
                    }
                    if h == Health::Up || (h == Health::Unknown && assume_up) {
                        available.push(addr);
                    }
                }
                if !available.is_empty() && chosen.is_none() {
                    chosen = Some(available);
                    if !ctx.priming {
                        break;
                    }
                }
            }
            let picked = match chosen {
                Some(avail) => synth::use_selector(
                    &selector_for("selector"),
                    &ctx.bestwho,
                    &avail,
                    &mut rng,
                    &closest,
                ),
                None => {
                    if incomplete
                        && opts
                            .get("failOnIncompleteCheck")
                            .is_some_and(|v| v == "true")
                    {
                        return Err(rt("ifexturlup health check has not completed yet"));
                    }
                    synth::use_selector(
                        &selector_for("backupSelector"),
                        &ctx.bestwho,
                        &all,
                        &mut rng,
                        &closest,
                    )
                }
            };
            Ok(Ret(picked
                .map_err(synth_err)?
                .iter()
                .map(ip_text)
                .collect::<Vec<_>>()))
        }
    );

    reg!("netmask", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        for m in string_list_of(lua, &v)? {
            let nm = Netmask::parse(&m).ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
            if nm.matches(&ctx.bestwho) {
                return Ok(true);
            }
        }
        Ok(false)
    });
    reg!("view", |lua, rules: Table| {
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
    });

    reg!("country", |lua, v: Value| geo_compare(lua, &v, g_country));
    reg!("continent", |lua, v: Value| geo_compare(
        lua,
        &v,
        g_continent
    ));
    reg!("region", |lua, v: Value| geo_compare(lua, &v, g_region));
    reg!("asnum", |lua, v: Value| geo_compare(lua, &v, g_asn));
    reg!("countryCode", |lua, ()| geo_code(lua, g_country));
    reg!("continentCode", |lua, ()| geo_code(lua, g_continent));
    reg!("regionCode", |lua, ()| geo_code(lua, g_region));
    reg!("latlon", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(latlon_text(
            geo_lookup(&ctx, &ctx.bestwho)?
                .location
                .unwrap_or((0.0, 0.0)),
        ))
    });
    reg!("latlonloc", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(geo_lookup(&ctx, &ctx.bestwho)?
            .location
            .map(latlon_loc)
            .unwrap_or_default())
    });
    reg!("closestMagic", |lua, ()| {
        let ctx = ctx_of(lua)?;
        let mut candidates = Vec::new();
        for label in synth::raw_labels(&ctx.qname) {
            match parse_combo(&label.replace('-', ".")) {
                Some(a) => candidates.push(a),
                None => break,
            }
        }
        Ok(closest_of(&ctx, &candidates)?.to_string())
    });
    reg!("latlonMagic", |lua, ()| {
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
    });
    reg!("geoiplookup", |lua, (ip, attr): (String, i64)| {
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
    });
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

    reg!("createForward", |lua, ()| {
        let ctx = ctx_of(lua)?;
        synth::create_forward(&ctx.qname, &ctx.zone)
            .map(Ret)
            .map_err(synth_err)
    });
    reg!("createForward6", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(Ret(synth::create_forward6(&ctx.qname, &ctx.zone)))
    });
    reg!(
        "createReverse",
        |lua, (fmt, exc): (String, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let exc = string_pairs(&exc)?;
            synth::create_reverse(&ctx.qname, &fmt, &exc)
                .map(Ret)
                .map_err(synth_err)
        }
    );
    reg!(
        "createReverse6",
        |lua, (fmt, exc): (String, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let exc = string_pairs(&exc)?;
            Ok(Ret(synth::create_reverse6(&ctx.qname, &fmt, &exc)))
        }
    );
    reg!("filterForward", |_,
                           (addr, nmg, fallback): (
        String,
        AnyUserData,
        Option<String>
    )| {
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
    });

    reg!("pdnslog", |_, (msg, level): (Value, Option<i64>)| {
        let msg = value_string(&msg).unwrap_or_else(|_| format!("{msg:?}"));
        match level.unwrap_or(6) {
            0..=3 => tracing::error!(target: "pdm::lua::record", "{msg}"),
            4 => tracing::warn!(target: "pdm::lua::record", "{msg}"),
            5 | 6 => tracing::info!(target: "pdm::lua::record", "{msg}"),
            _ => tracing::debug!(target: "pdm::lua::record", "{msg}"),
        }
        Ok(())
    });
    reg!("print", |_, args: Variadic<Value>| {
        let parts: Vec<String> = args
            .iter()
            .map(|v| value_string(v).unwrap_or_else(|_| v.type_name().to_string()))
            .collect();
        tracing::debug!(target: "pdm::lua::record", "{}", parts.join("\t"));
        Ok(())
    });
    reg!("pdnsrandom", |_, n: Option<i64>| {
        let mut rng = rand::thread_rng();
        Ok(match n {
            Some(n) if n > 0 => rng.gen_range(0..n),
            _ => i64::from(rng.gen::<u32>()),
        })
    });
    reg!("report", |_, _: Variadic<Value>| -> mlua::Result<()> {
        Err(rt("Script took too long"))
    });
    reg!("newCA", |_, s: String| {
        let (host, port) = split_port(&s);
        parse_combo(host)
            .map(|a| LCombo(a, port))
            .ok_or_else(|| rt(format!("Unable to convert presentation address '{s}'")))
    });
    reg!("newDN", |_, s: String| {
        let mut n = Name::from_ascii(&s).map_err(|e| rt(format!("bad name {s:?}: {e}")))?;
        n.set_fqdn(true);
        Ok(LDnsName(n))
    });
    reg!("newNetmask", |_, s: String| {
        Netmask::parse(&s)
            .map(LNetmask)
            .ok_or_else(|| rt(format!("Not a netmask: '{s}'")))
    });
    reg!("newNMG", |_, v: Option<Value>| {
        let mut g = NetmaskGroup::default();
        if let Some(v) = v {
            for m in string_list(&v)? {
                g.add(&m)
                    .ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
            }
        }
        Ok(LNmg(g))
    });
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

fn string_pairs(t: &Option<Table>) -> mlua::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(t) = t {
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            out.push((value_string(&k)?, value_string(&v)?));
        }
    }
    Ok(out)
}

fn split_port(s: &str) -> (&str, u16) {
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

// ---------------------------------------------------------------- userdata

/// `DNSName` as exposed to records (`qname`, `zone`, `newDN`).
#[derive(Clone)]
struct LDnsName(Name);

impl LDnsName {
    fn text(&self) -> String {
        let mut n = self.0.clone();
        n.set_fqdn(true);
        n.to_ascii()
    }
}

fn name_arg(v: &Value) -> mlua::Result<Name> {
    match v {
        Value::UserData(ud) => Ok(ud.borrow::<LDnsName>()?.0.clone()),
        other => {
            let s = value_string(other)?;
            Name::from_ascii(&s).map_err(|e| rt(format!("bad name {s:?}: {e}")))
        }
    }
}

impl UserData for LDnsName {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("toString", |_, this, ()| Ok(this.text()));
        methods.add_method("toStringNoDot", |_, this, ()| {
            let t = this.text();
            Ok(if t == "." {
                t
            } else {
                t.trim_end_matches('.').to_string()
            })
        });
        methods.add_method("countLabels", |_, this, ()| Ok(this.0.num_labels()));
        methods.add_method("wirelength", |_, this, ()| Ok(this.0.len()));
        methods.add_method("getRawLabels", |_, this, ()| Ok(synth::raw_labels(&this.0)));
        methods.add_method("isPartOf", |_, this, other: Value| {
            Ok(name_arg(&other)?.zone_of(&this.0))
        });
        methods.add_method("equal", |_, this, other: Value| {
            Ok(name_arg(&other)? == this.0)
        });
        methods.add_method_mut("chopOff", |_, this, ()| {
            if this.0.is_root() {
                return Ok(false);
            }
            this.0 = this.0.base_name();
            Ok(true)
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.text()));
        methods.add_meta_method(MetaMethod::Eq, |_, this, other: Value| {
            Ok(name_arg(&other)? == this.0)
        });
        methods.add_meta_method(MetaMethod::Concat, |_, this, other: Value| {
            Ok(format!(
                "{}{}",
                this.text(),
                value_string(&other).unwrap_or_default()
            ))
        });
    }
}

/// `ComboAddress` (`who`, `bestwho`, `newCA`).
#[derive(Clone, Copy)]
struct LCombo(IpAddr, u16);

impl UserData for LCombo {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("toString", |_, this, ()| Ok(this.0.to_string()));
        methods.add_method("toStringWithPort", |_, this, ()| {
            Ok(SocketAddr::new(this.0, this.1).to_string())
        });
        methods.add_method("getPort", |_, this, ()| Ok(this.1));
        methods.add_method("isIPv4", |_, this, ()| Ok(this.0.is_ipv4()));
        methods.add_method("isIPv6", |_, this, ()| Ok(this.0.is_ipv6()));
        methods.add_method("isMappedIPv4", |_, this, ()| {
            Ok(matches!(this.0, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()))
        });
        methods.add_method("mapToIPv4", |_, this, ()| {
            Ok(match this.0 {
                IpAddr::V6(v6) => LCombo(v6.to_ipv4_mapped().map_or(this.0, IpAddr::V4), this.1),
                v4 => LCombo(v4, this.1),
            })
        });
        methods.add_method_mut("truncate", |_, this, bits: u8| {
            this.0 = super::addr::truncate(&this.0, bits);
            Ok(())
        });
        methods.add_method("getRaw", |lua, this, ()| {
            let bytes = match this.0 {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            lua.create_string(bytes)
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
        methods.add_meta_method(MetaMethod::Eq, |_, this, other: AnyUserData| {
            Ok(other
                .borrow::<LCombo>()
                .is_ok_and(|o| o.0 == this.0 && o.1 == this.1))
        });
    }
}

/// `Netmask` (`ecswho`, `newNetmask`).
#[derive(Clone, Copy)]
struct LNetmask(Netmask);

fn addr_arg(v: &Value) -> mlua::Result<IpAddr> {
    if let Value::UserData(ud) = v {
        if let Ok(c) = ud.borrow::<LCombo>() {
            return Ok(c.0);
        }
    }
    let s = value_string(v)?;
    parse_combo(&s).ok_or_else(|| rt(format!("Unable to convert presentation address '{s}'")))
}

impl UserData for LNetmask {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("toString", |_, this, ()| Ok(this.0.to_string()));
        methods.add_method("getNetwork", |_, this, ()| Ok(LCombo(this.0.network, 0)));
        methods.add_method("getBits", |_, this, ()| Ok(this.0.bits));
        methods.add_method("isIPv4", |_, this, ()| Ok(this.0.network.is_ipv4()));
        methods.add_method("isIPv6", |_, this, ()| Ok(this.0.network.is_ipv6()));
        methods.add_method("empty", |_, _, ()| Ok(false));
        methods.add_method("match", |_, this, v: Value| {
            Ok(this.0.matches(&addr_arg(&v)?))
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
    }
}

/// `NetmaskGroup` (`newNMG`).
#[derive(Clone)]
struct LNmg(NetmaskGroup);

impl UserData for LNmg {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("addMask", |_, this, m: String| {
            this.0
                .add(&m)
                .ok_or_else(|| rt(format!("Not a netmask: '{m}'")))
        });
        methods.add_method_mut("addMasks", |_, this, v: Value| {
            for m in string_list(&v)? {
                this.0
                    .add(&m)
                    .ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
            }
            Ok(())
        });
        methods.add_method("match", |_, this, v: Value| {
            Ok(this.0.matches(&addr_arg(&v)?))
        });
        methods.add_method("size", |_, this, ()| Ok(this.0.len()));
        methods.add_method("empty", |_, this, ()| Ok(this.0.is_empty()));
        methods.add_method("toString", |_, this, ()| Ok(this.0.to_text()));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_text()));
    }
}

/// A read-only shim of PowerDNS's `dnsheader` (`dh`).
#[derive(Clone, Copy)]
struct LHeader((u16, bool, bool));

impl UserData for LHeader {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("getID", |_, this, ()| Ok(this.0 .0));
        methods.add_method("getRD", |_, this, ()| Ok(this.0 .1));
        methods.add_method("getCD", |_, this, ()| Ok(this.0 .2));
        methods.add_method("getTC", |_, _, ()| Ok(false));
        methods.add_method("getOPCODE", |_, _, ()| Ok(0));
    }
}
