//! Helpers for byo tests: fake registrars hosted in the test process (so a
//! test can inject failures and read their state), the TOML that points a
//! pdm at them, and a second pdm serving a "parent" zone whose delegation
//! the test rewrites with `pdm zone import`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pdm_adapters::fake::cloudflare::{FakeCloudflare, FakeToken};
use pdm_adapters::fake::dynadot::DynadotFake;
use pdm_adapters::fake::godaddy::FakeGoDaddy;
use pdm_adapters::fake::namecheap::FakeNamecheap;
use pdm_adapters::fake::FakeServer;

use super::{Backend, Config, PdmServer};

/// Credentials of the fake accounts (distinctive, so leak checks can grep for them).
pub const DYN_KEY: &str = "DYNKEY-leakcheck-7e1f";
pub const DYN_SECRET: &str = "DYNSECRET-leakcheck-0c9a";
pub const GD_KEY: &str = "gdkey-leakcheck";
pub const GD_SECRET: &str = "GDSECRET-leakcheck-55aa";
pub const NC_USER: &str = "alice";
pub const NC_KEY: &str = "NCKEY-leakcheck-9b3d";
pub const CF_TOKEN: &str = "CFTOKEN-leakcheck-1d2e";

/// The Dynadot token in the Go service's form.
pub fn dynadot_token() -> String {
    format!("{DYN_KEY}:{DYN_SECRET}")
}

/// A runtime that outlives every test in the binary, hosting the fakes.
pub fn fake_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fake runtime")
    })
}

/// One fake per registrar this suite uses, on loopback.
pub struct Fakes {
    pub dynadot: DynadotFake,
    pub godaddy: Arc<FakeGoDaddy>,
    pub namecheap: Arc<FakeNamecheap>,
    pub cloudflare: Arc<FakeCloudflare>,
    servers: Vec<FakeServer>,
}

impl Fakes {
    /// Starts the fakes; each account holds `domains` on old registrar NS.
    pub fn start(domains: &[&str]) -> Fakes {
        let old = ["ns1.old-registrar.net", "ns2.old-registrar.net"];
        fake_runtime().block_on(async {
            let dynadot = DynadotFake::start(DYN_KEY, DYN_SECRET).await.unwrap();
            let godaddy = FakeGoDaddy::new(GD_KEY, GD_SECRET, "cust-1");
            let namecheap = FakeNamecheap::new(NC_USER, NC_KEY);
            let cloudflare = FakeCloudflare::new("acc-1");
            cloudflare.add_token(CF_TOKEN, FakeToken::full());
            for d in domains {
                dynadot.add_domain(d, &old);
                godaddy.add_domain(d, &old);
                namecheap.add_domain(d);
                cloudflare
                    .add_registrar_domain(d, &["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"]);
                cloudflare.add_zone(d);
            }
            let servers = vec![
                godaddy.start().await.unwrap(),
                namecheap.start().await.unwrap(),
                cloudflare.start().await.unwrap(),
            ];
            Fakes {
                dynadot,
                godaddy,
                namecheap,
                cloudflare,
                servers,
            }
        })
    }

    /// `[registrars]` TOML pointing pdm at these fakes.
    pub fn toml(&self) -> String {
        format!(
            "[registrars]\ntimeout_secs = 10\n\
             [registrars.dynadot]\nbase_url = \"{}\"\n\
             [registrars.godaddy]\nbase_url = \"{}\"\n\
             [registrars.namecheap]\nbase_url = \"{}/xml.response\"\n\
             [registrars.cloudflare]\nbase_url = \"{}\"\n",
            self.dynadot.base_url(),
            self.servers[0].base_url(),
            self.servers[1].base_url(),
            self.servers[2].base_url(),
        )
    }
}

/// Fast worker and parent checks for tests; `parent` is the parent zone's server.
pub fn fast_ops_toml(parent: Option<std::net::SocketAddr>) -> String {
    fast_ops_toml_polling(parent, 1)
}

/// [`fast_ops_toml`] with the parent checked every `poll_secs`.
pub fn fast_ops_toml_polling(parent: Option<std::net::SocketAddr>, poll_secs: u64) -> String {
    let mut s = format!(
        "[operations]\nlease_secs = 3\ntick_ms = 100\nbackoff_initial_secs = 1\nbackoff_max_secs = 2\n\
         [delegation]\npoll_interval_secs = {poll_secs}\nquery_timeout_ms = 1000\n",
    );
    if let Some(p) = parent {
        s.push_str(&format!("parent_servers = [\"{p}\"]\n"));
    }
    s
}

/// A second pdm serving the parent zone `zone` (e.g. `co.uk`).
pub struct Parent {
    pub srv: PdmServer,
    pub zone: String,
}

impl Parent {
    /// Starts the parent server with `zone` delegating `child` to `ns` (no DS).
    pub fn start(backend: Backend, zone: &str, child: &str, ns: &[&str]) -> Option<Parent> {
        let cfg = Config::empty()
            .hostmaster("hostmaster.parent.test")
            .nameserver("ns1.parent.test", &["127.0.0.9"])
            .extra("[dnssec]\nenabled = false\n");
        let srv = PdmServer::start(backend, cfg)?;
        let p = Parent {
            srv,
            zone: zone.to_string(),
        };
        p.delegate(child, ns, &[]);
        Some(p)
    }

    /// Rewrites the parent zone: `child` delegated to `ns` with `ds` (rdata text).
    pub fn delegate(&self, child: &str, ns: &[&str], ds: &[String]) {
        let z = &self.zone;
        let mut text = format!(
            "$ORIGIN {z}.\n@ 3600 IN SOA ns1.parent.test. hostmaster.parent.test. 1 3600 600 86400 300\n\
             @ 3600 IN NS ns1.parent.test.\n"
        );
        for n in ns {
            text.push_str(&format!("{child}. 3600 IN NS {n}.\n"));
        }
        for d in ds {
            text.push_str(&format!("{child}. 3600 IN DS {d}\n"));
        }
        let path = self.srv.dir.path().join("parent.zone");
        std::fs::write(&path, text).unwrap();
        let out = self
            .srv
            .cli(&["zone", "import", "--zone", z, path.to_str().unwrap()]);
        assert!(out.success(), "parent zone import failed: {out:?}");
        // The parent's DNS follows its journal within a few ms; give it a moment.
        std::thread::sleep(Duration::from_millis(200));
    }
}
