//! One evaluation inside a state: the evaluation context the LUA functions
//! read, compiling (and caching) the record's chunk, running it under the
//! memory limit, `include()`, reading the returned value, and mapping Lua
//! errors to [`LuaError`].

use super::convert::{rt, value_string};
use super::limits::{Budget, HIT_NONE};
use super::rawlist;
use super::sandbox::{reset_env, Worker};
use super::{LuaConfig, LuaError, LuaRecord, QueryContext};
use hickory_proto::rr::Name;
use mlua::{Function, Lua, Table, Value};
use std::net::IpAddr;
use std::sync::atomic::Ordering;

/// Raised by geo functions when no provider is configured.
#[derive(Debug, thiserror::Error)]
#[error("no GeoIP database configured")]
pub(super) struct GeoMissing;

/// What the LUA functions may know about the current evaluation.
pub(super) struct EvalCtx {
    pub(super) qname: Name,
    pub(super) zone: Name,
    pub(super) bestwho: IpAddr,
    /// The rest of the preset variables (see [`preset`]).
    pub(super) zone_id: i64,
    pub(super) who: IpAddr,
    pub(super) ecs: Option<(IpAddr, u8)>,
    pub(super) header: (u16, bool, bool),
    pub(super) dnssec_ok: bool,
    pub(super) tcp: bool,
    pub(super) edns_size: u16,
    pub(super) config: LuaConfig,
    /// At zone load: register every health-check target, not just the
    /// ones the selection logic reaches.
    pub(super) priming: bool,
    /// An evaluation is running (the context stays in the state between
    /// evaluations, inactive).
    pub(super) active: bool,
}

/// Whether `code` declares a to-be-closed variable (`local x <close>`).
/// Its `__close` metamethod runs while the block unwinds, where a loop in
/// it escaped the instruction budget and held the thread for good (found by
/// the hostile corpus, dns/tests/lua_escapes.rs). Records have no use for
/// it; a false hit (the text inside a string) only refuses the record.
fn declares_to_be_closed(code: &str) -> bool {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("<close>")
}

/// The running evaluation's context (an error outside an evaluation).
pub(super) fn ctx_of(lua: &Lua) -> mlua::Result<mlua::AppDataRef<'_, EvalCtx>> {
    lua.app_data_ref::<EvalCtx>()
        .filter(|c| c.active)
        .ok_or_else(|| rt("LUA function called outside a record evaluation"))
}

/// Run the record in the state's environment (emptied afterwards when it
/// was written). Outer `Err` is a Lua error; inner
/// `Err` is a result of the wrong shape.
pub(super) fn eval_in(
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
            if declares_to_be_closed(&actual) {
                return Err(rt(
                    "to-be-closed variables (<close>) are not allowed in LUA records",
                ));
            }
            let f = lua
                .load(&actual)
                .set_name("LUA record")
                // Never bytecode: a crafted binary chunk can break the VM.
                .set_mode(mlua::ChunkMode::Text)
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

/// A Lua error as the [`LuaError`] the caller sees.
pub(super) fn map_error(e: &mlua::Error) -> LuaError {
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
