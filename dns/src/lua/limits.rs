//! The per-state evaluation budget: instruction count and wall-clock
//! deadline, enforced by the instruction hook every [`HOOK_EVERY`]
//! instructions.

use super::LuaConfig;
use mlua::VmState;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

/// How often (in VM instructions) the hook checks the budgets.
pub(super) const HOOK_EVERY: u32 = 1000;

/// No limit was hit ([`Budget::hit`]).
pub(super) const HIT_NONE: u8 = 0;
/// The instruction limit was hit.
pub(super) const HIT_INSTRUCTIONS: u8 = 1;
/// The time limit was hit.
pub(super) const HIT_TIME: u8 = 2;

/// Per-state budget the instruction hook enforces.
#[derive(Debug)]
pub(super) struct Budget {
    epoch: Instant,
    deadline_us: AtomicU64,
    used: AtomicU64,
    max: AtomicU64,
    /// Which limit the current evaluation hit (`HIT_*`).
    pub(super) hit: AtomicU8,
}

impl Budget {
    /// A disarmed budget.
    pub(super) fn new() -> Self {
        Budget {
            epoch: Instant::now(),
            deadline_us: AtomicU64::new(u64::MAX),
            used: AtomicU64::new(0),
            max: AtomicU64::new(u64::MAX),
            hit: AtomicU8::new(HIT_NONE),
        }
    }

    /// Start an evaluation's budget from `cfg`.
    pub(super) fn arm(&self, cfg: &LuaConfig) {
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

    /// Lift the limits between evaluations.
    pub(super) fn disarm(&self) {
        self.deadline_us.store(u64::MAX, Ordering::Relaxed);
        self.max.store(u64::MAX, Ordering::Relaxed);
    }

    /// Called every [`HOOK_EVERY`] instructions. Once exceeded it keeps
    /// failing, so code that catches the error (pcall) fails again at once.
    pub(super) fn tick(&self) -> mlua::Result<VmState> {
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
