//! `[lua]`: LUA records, per zone, and the engine's limits.

use super::ConfigError;
use serde::Deserialize;

/// LUA records: the per-zone switch and the engine's limits (`[lua]`).
#[derive(Debug, Clone)]
pub struct LuaSettings {
    /// Serve LUA records (`lua_records`, default true: on for every zone
    /// that has LUA records).
    pub lua_records: bool,
    /// Per-zone overrides of `lua_records` (`[lua.zones]`, FQDN keys).
    pub zones: std::collections::BTreeMap<String, bool>,
    /// Lua VM instructions one evaluation may run.
    pub max_instructions: u64,
    /// Wall-clock budget of one evaluation, in milliseconds (default 10).
    pub timeout_ms: u64,
    /// Queries evaluating LUA records at once, more wait their turn
    /// (default: the number of CPUs, so runaway records cannot starve the
    /// threads answering static queries of more than that).
    pub concurrency: usize,
    /// Seconds between health checks of one target.
    pub health_interval_secs: u64,
    /// Report never-checked targets as up (PowerDNS reports them down).
    pub assume_up_before_first_check: bool,
    /// MaxMind databases for the geo functions (none: they fail).
    pub geoip_databases: Vec<std::path::PathBuf>,
    /// Evaluate on tokio's blocking pool (default) instead of inline on the
    /// reactor thread (cheaper per query; a runaway record then holds a
    /// reactor thread for up to `timeout_ms`).
    pub offload: bool,
    /// With `offload`: first try each evaluation inline with this budget
    /// (µs; 0 = always offload); only evaluations exceeding it are offloaded.
    pub inline_budget_us: u64,
}

impl Default for LuaSettings {
    fn default() -> Self {
        LuaSettings {
            lua_records: true,
            zones: std::collections::BTreeMap::new(),
            max_instructions: 1_000_000,
            timeout_ms: 10,
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            health_interval_secs: 5,
            assume_up_before_first_check: false,
            geoip_databases: Vec::new(),
            offload: true,
            inline_budget_us: 1000,
        }
    }
}

impl LuaSettings {
    /// Whether LUA records of zone `fqdn` are served.
    pub fn enabled_for(&self, fqdn: &str) -> bool {
        let key = fqdn.trim_end_matches('.').to_ascii_lowercase();
        self.zones
            .iter()
            .find(|(z, _)| z.trim_end_matches('.').eq_ignore_ascii_case(&key))
            .map_or(self.lua_records, |(_, on)| *on)
    }
}

/// `[lua]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLua {
    lua_records: Option<bool>,
    #[serde(default)]
    zones: std::collections::BTreeMap<String, bool>,
    max_instructions: Option<u64>,
    timeout_ms: Option<u64>,
    concurrency: Option<usize>,
    health_interval_secs: Option<u64>,
    assume_up_before_first_check: Option<bool>,
    #[serde(default)]
    geoip_databases: Vec<String>,
    offload: Option<bool>,
    inline_budget_us: Option<u64>,
}

/// `[lua]` resolved and checked.
pub(super) fn resolve_lua(raw: RawLua) -> Result<LuaSettings, ConfigError> {
    let d = LuaSettings::default();
    let l = LuaSettings {
        lua_records: raw.lua_records.unwrap_or(d.lua_records),
        zones: raw.zones,
        max_instructions: raw.max_instructions.unwrap_or(d.max_instructions),
        timeout_ms: raw.timeout_ms.unwrap_or(d.timeout_ms),
        concurrency: raw.concurrency.unwrap_or(d.concurrency),
        health_interval_secs: raw.health_interval_secs.unwrap_or(d.health_interval_secs),
        assume_up_before_first_check: raw
            .assume_up_before_first_check
            .unwrap_or(d.assume_up_before_first_check),
        geoip_databases: raw.geoip_databases.into_iter().map(Into::into).collect(),
        offload: raw.offload.unwrap_or(d.offload),
        inline_budget_us: raw.inline_budget_us.unwrap_or(d.inline_budget_us),
    };
    if l.max_instructions < 1000
        || !(1..=10_000).contains(&l.timeout_ms)
        || !(1..=1024).contains(&l.concurrency)
        || !(1..=86_400).contains(&l.health_interval_secs)
        || l.inline_budget_us > l.timeout_ms.saturating_mul(1000)
    {
        return Err(ConfigError::Invalid(
            "lua: max_instructions >= 1000, timeout_ms 1..=10000, concurrency 1..=1024, health_interval_secs 1..=86400, inline_budget_us <= timeout_ms * 1000".into(),
        ));
    }
    Ok(l)
}

#[cfg(test)]
mod lua_config_tests {
    use crate::config::Config;
    use crate::zone::template::TemplateTarget;

    const BASE: &str =
        "[[nameservers]]\nname = \"ns1.example.test\"\naddresses = [\"127.0.0.1\"]\n";

    #[test]
    fn lua_section_and_per_zone_switch() {
        let c = Config::from_toml(BASE).unwrap();
        assert!(c.lua.lua_records && c.lua.enabled_for("any.test."));
        let text = format!(
            "[lua]\nlua_records = false\ntimeout_ms = 5\nzones = {{ \"On.Example.\" = true }}\n{BASE}"
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.lua.timeout_ms, 5);
        assert!(!c.lua.enabled_for("other.test."));
        assert!(c.lua.enabled_for("on.example."));
        assert!(c.lua.enabled_for("on.example"));
        let bad = format!("[lua]\ntimeout_ms = 0\n{BASE}");
        assert!(Config::from_toml(&bad).is_err());
    }

    #[test]
    fn lua_template_record() {
        let text = format!(
            "{BASE}\n[[pools]]\ndomain = \"example.test\"\n[[pools.template]]\nname = \"www\"\ntype = \"LUA\"\nvalue = \"A \\\"pickrandom({{'192.0.2.1','192.0.2.2'}})\\\"\"\n"
        );
        let c = Config::from_toml(&text).unwrap();
        let t = &c.pools[0].template[0];
        assert!(
            matches!(&t.target, TemplateTarget::Literal(r) if r.record_type() == crate::zone::LUA)
        );
    }
}
