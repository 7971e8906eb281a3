//! A read-only handle on the LUA records for the control plane: the
//! health-check targets, the checker's counters and the evaluation
//! counters, without the engines themselves.

use super::{HealthChecker, HealthCounters, LuaEngine, LuaStats, TargetStatus};

/// Reads the health checker and the evaluation counters of one or more
/// engines (cheap to clone; clones observe the same engines).
#[derive(Clone, Debug)]
pub struct LuaObserver {
    health: HealthChecker,
    engines: Vec<LuaEngine>,
}

impl LuaObserver {
    /// An observer of `engine` and its health checker.
    pub fn new(engine: &LuaEngine) -> Self {
        LuaObserver {
            health: engine.config().health.clone(),
            engines: vec![engine.clone()],
        }
    }

    /// Also count `other`'s evaluations (an engine sharing the checker).
    pub fn and(mut self, other: &LuaEngine) -> Self {
        self.engines.push(other.clone());
        self
    }

    /// Current status of every health-check target, sorted by target.
    pub fn targets(&self) -> Vec<TargetStatus> {
        self.health.snapshot()
    }

    /// The health checker's counters.
    pub fn health_counters(&self) -> HealthCounters {
        self.health.counters()
    }

    /// Evaluation counters, summed over the observed engines.
    pub fn stats(&self) -> LuaStats {
        self.engines
            .iter()
            .map(LuaEngine::stats)
            .fold(LuaStats::default(), |sum, s| LuaStats {
                evaluations: sum.evaluations + s.evaluations,
                errors: sum.errors + s.errors,
                limit_errors: sum.limit_errors + s.limit_errors,
                states_created: sum.states_created + s.states_created,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::health::{CheckKind, CheckOptions, TargetKey};
    use super::super::{LuaConfig, LuaRecord, QueryContext};
    use super::*;
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn sums_the_engines_and_reads_their_checker() {
        let config = LuaConfig {
            pool_size: 1,
            ..LuaConfig::default()
        };
        let main = LuaEngine::new(config.clone());
        let quick = LuaEngine::new(config);
        let observer = LuaObserver::new(&main).and(&quick);
        // One pre-warmed state each.
        let warm = LuaStats {
            states_created: 2,
            ..LuaStats::default()
        };
        assert_eq!(observer.stats(), warm);

        let ok = LuaRecord::parse(r#"A "'192.0.2.1'""#).expect("record");
        let bad = LuaRecord::parse(r#"A "nil""#).expect("record");
        let zone = Name::from_ascii("example.").expect("zone");
        let ctx = QueryContext::new(
            zone.clone(),
            RecordType::A,
            zone,
            "192.0.2.9".parse().expect("ip"),
        );
        assert!(main.evaluate(&ok, &ctx).is_ok());
        assert!(quick.evaluate(&ok, &ctx).is_ok());
        assert!(quick.evaluate(&bad, &ctx).is_err());
        let stats = observer.stats();
        assert_eq!((stats.evaluations, stats.errors), (3, 1));
        assert_eq!(LuaObserver::new(&main).stats().evaluations, 1);

        // The checker is the engines' (shared by clones of the config).
        assert!(observer.targets().is_empty());
        let key = TargetKey {
            kind: CheckKind::Tcp("192.0.2.1:443".parse().expect("addr")),
            opts: CheckOptions::default(),
        };
        main.config().health.status(&key);
        let targets = observer.clone().targets();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].target, "192.0.2.1:443");
        assert_eq!(observer.health_counters().targets_registered_total, 1);
    }
}
