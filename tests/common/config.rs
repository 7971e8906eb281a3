//! The test `Config` builder: pools, nameservers and extra TOML, written as the server's config file.

use super::pdns;

/// One `[[pools]]` entry.
#[derive(Debug, Clone)]
pub struct PoolCfg {
    pub domain: String,
    pub reservation_ttl_secs: Option<u64>,
    pub public_check: Option<bool>,
}

/// One `[[nameservers]]` entry.
#[derive(Debug, Clone)]
pub struct NsCfg {
    pub name: String,
    pub addresses: Vec<String>,
}

/// Builder for the TOML config file (contract.md "Config").
/// `http`, `dns` and `database` are never written: the harness passes them as flags.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub hostmaster: Option<String>,
    pub nameservers: Vec<NsCfg>,
    pub pools: Vec<PoolCfg>,
    /// Extra raw TOML appended verbatim (for keys the builder does not know).
    pub extra: String,
}

impl Config {
    /// No pools, no nameservers.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Two nameservers in `example.test` (glue 127.0.0.1 / 127.0.0.2), hostmaster set,
    /// and the pool `example.test` (TTL 600, public check).
    pub fn default_test() -> Self {
        Self::empty()
            .hostmaster("hostmaster.example.test")
            .nameserver("ns1.example.test", &["127.0.0.1"])
            .nameserver("ns2.example.test", &["127.0.0.2"])
            .pool("example.test")
    }

    pub fn hostmaster(mut self, h: &str) -> Self {
        self.hostmaster = Some(h.to_string());
        self
    }

    pub fn nameserver(mut self, name: &str, addrs: &[&str]) -> Self {
        self.nameservers.push(NsCfg {
            name: name.to_string(),
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Pool with defaults (TTL and public_check keys omitted).
    pub fn pool(mut self, domain: &str) -> Self {
        self.pools.push(PoolCfg {
            domain: domain.to_string(),
            reservation_ttl_secs: None,
            public_check: None,
        });
        self
    }

    /// Pool with explicit TTL / public_check.
    pub fn pool_with(
        mut self,
        domain: &str,
        reservation_ttl_secs: Option<u64>,
        public_check: Option<bool>,
    ) -> Self {
        self.pools.push(PoolCfg {
            domain: domain.to_string(),
            reservation_ttl_secs,
            public_check,
        });
        self
    }

    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// This config with `[backend] kind = "powerdns"` pointed at `pdns`, operations tried
    /// inline for up to 3 s, no periodic reconcile, and (unless the config has its own
    /// `[operations]`) fast worker retries for tests.
    pub fn on_powerdns(self, pdns: &pdns::PdnsServer) -> Self {
        self.on_powerdns_with(pdns, &[])
    }

    /// [`Config::on_powerdns`] with `[backend]` keys set or overridden, e.g.
    /// `&[("inline_ms", "0"), ("timeout_ms", "20000")]` (values are TOML).
    pub fn on_powerdns_with(self, pdns: &pdns::PdnsServer, backend: &[(&str, &str)]) -> Self {
        assert!(
            !self.extra.contains("[backend]"),
            "config already has a [backend] section"
        );
        let fast_ops = !self.extra.contains("[operations]");
        let mut keys: Vec<(&str, &str)> =
            vec![("inline_ms", "3000"), ("reconcile_interval_secs", "0")];
        for (k, v) in backend {
            keys.retain(|(d, _)| d != k);
            keys.push((k, v));
        }
        let mut section = pdns.backend_toml();
        for (k, v) in keys {
            section.push_str(&format!("{k} = {v}\n"));
        }
        let mut c = self.extra(&section);
        if fast_ops {
            c = c.extra(
                "[operations]\ntick_ms = 100\nbackoff_initial_secs = 1\nbackoff_max_secs = 2",
            );
        }
        c
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml_str(s);
        let mut out = String::new();
        if let Some(h) = &self.hostmaster {
            out.push_str(&format!("hostmaster = {}\n", q(h)));
        }
        out.push_str(&self.extra);
        for ns in &self.nameservers {
            let addrs: Vec<String> = ns.addresses.iter().map(|a| q(a)).collect();
            out.push_str(&format!(
                "\n[[nameservers]]\nname = {}\naddresses = [{}]\n",
                q(&ns.name),
                addrs.join(", ")
            ));
        }
        for p in &self.pools {
            out.push_str(&format!("\n[[pools]]\ndomain = {}\n", q(&p.domain)));
            if let Some(t) = p.reservation_ttl_secs {
                out.push_str(&format!("reservation_ttl_secs = {t}\n"));
            }
            if let Some(pc) = p.public_check {
                out.push_str(&format!("public_check = {pc}\n"));
            }
        }
        out
    }
}

fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
