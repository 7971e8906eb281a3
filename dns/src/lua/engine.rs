//! The LUA record engine: a lock-free pool of pre-warmed, sandboxed mlua
//! states (built in `sandbox.rs`), the counters, and one evaluation from
//! taking a state to turning its result into rdata.
//!
//! States go back to the queue after use (garbage-collected first when
//! they hit a limit).

use super::eval::{eval_in, map_error, EvalCtx};
use super::limits::{HIT_INSTRUCTIONS, HIT_TIME};
use super::sandbox::{build_worker, Worker};
use super::synth::{self, SynthError};
use super::{LuaAnswer, LuaConfig, LuaError, LuaRecord, QueryContext, LUA_TYPE_CODE};
use crossbeam_queue::ArrayQueue;
use hickory_proto::rr::{Name, RecordType};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    pub(super) fn stats(&self) -> LuaStats {
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
