//! `pdm serve --fake-registrars`: the five fake registrar APIs from
//! `pdm_adapters::fake`, started on 127.0.0.1 with one demo account each, so
//! byo-api can be tried offline.

use std::sync::Arc;

use pdm_adapters::fake::cloudflare::{FakeCloudflare, FakeToken};
use pdm_adapters::fake::dynadot::DynadotFake;
use pdm_adapters::fake::godaddy::FakeGoDaddy;
use pdm_adapters::fake::namecheap::FakeNamecheap;
use pdm_adapters::fake::ovh::OvhFake;
use pdm_adapters::fake::FakeServer;
use pdm_adapters::RegistrarId;

use super::registry::Registrars;

/// One demo account on a fake registrar.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// The registrar.
    pub registrar: RegistrarId,
    /// Its credentials in the Go service's token form (fake, safe to print).
    pub token: &'static str,
    /// A domain in that account.
    pub domain: &'static str,
}

/// The demo accounts the fakes are started with.
pub const DEMO_ACCOUNTS: [DemoAccount; 5] = [
    DemoAccount {
        registrar: RegistrarId::Cloudflare,
        token: "fake-cloudflare-token",
        domain: "acme-cloudflare.com",
    },
    DemoAccount {
        registrar: RegistrarId::Dynadot,
        token: "fake-dynadot-key:fake-dynadot-secret",
        domain: "acme-dynadot.com",
    },
    DemoAccount {
        registrar: RegistrarId::Godaddy,
        token: "fake-godaddy-key:fake-godaddy-secret",
        domain: "acme-godaddy.com",
    },
    DemoAccount {
        registrar: RegistrarId::Namecheap,
        token: "demo:fake-namecheap-key:127.0.0.1",
        domain: "acme-namecheap.com",
    },
    DemoAccount {
        registrar: RegistrarId::Ovh,
        token: "fake-ovh-ak:fake-ovh-as:fake-ovh-ck",
        domain: "acme-ovh.com",
    },
];

/// The running fakes; they stop when this is dropped.
#[derive(Debug)]
pub struct FakeRegistrars {
    _servers: Vec<FakeServer>,
    _dynadot: DynadotFake,
    _ovh: OvhFake,
    _state: (Arc<FakeCloudflare>, Arc<FakeGoDaddy>, Arc<FakeNamecheap>),
    urls: Vec<(RegistrarId, String)>,
}

impl FakeRegistrars {
    /// Starts the five fakes with the [`DEMO_ACCOUNTS`].
    pub async fn start() -> std::io::Result<Self> {
        let registrar_ns = ["ns1.registrar-demo.net", "ns2.registrar-demo.net"];
        let cf = FakeCloudflare::new("fake-cloudflare-account");
        cf.add_token(DEMO_ACCOUNTS[0].token, FakeToken::full());
        cf.add_registrar_domain(
            DEMO_ACCOUNTS[0].domain,
            &["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        );
        cf.add_zone(DEMO_ACCOUNTS[0].domain);
        let cf_srv = cf.start().await?;

        let dynadot = DynadotFake::start("fake-dynadot-key", "fake-dynadot-secret").await?;
        dynadot.add_domain(DEMO_ACCOUNTS[1].domain, &registrar_ns);

        let gd = FakeGoDaddy::new("fake-godaddy-key", "fake-godaddy-secret", "fake-customer");
        gd.add_domain(DEMO_ACCOUNTS[2].domain, &registrar_ns);
        let gd_srv = gd.start().await?;

        let nc = FakeNamecheap::new("demo", "fake-namecheap-key");
        nc.add_domain(DEMO_ACCOUNTS[3].domain);
        let nc_srv = nc.start().await?;

        let ovh = OvhFake::start("fake-ovh-ak", "fake-ovh-as", "fake-ovh-ck").await?;
        ovh.add_domain(DEMO_ACCOUNTS[4].domain, &registrar_ns);
        ovh.set_task_polls(1);

        let urls = vec![
            (RegistrarId::Cloudflare, cf_srv.base_url().to_string()),
            (RegistrarId::Dynadot, dynadot.base_url()),
            (RegistrarId::Godaddy, gd_srv.base_url().to_string()),
            (
                RegistrarId::Namecheap,
                format!("{}/xml.response", nc_srv.base_url()),
            ),
            (RegistrarId::Ovh, ovh.base_url()),
        ];
        Ok(Self {
            _servers: vec![cf_srv, gd_srv, nc_srv],
            _dynadot: dynadot,
            _ovh: ovh,
            _state: (cf, gd, nc),
            urls,
        })
    }

    /// Points every registrar of `r` at its fake.
    pub fn apply(&self, r: &mut Registrars) {
        for (id, url) in &self.urls {
            r.set_base_url(*id, url.clone());
        }
    }

    /// Each registrar with its fake's base URL.
    pub fn urls(&self) -> &[(RegistrarId, String)] {
        &self.urls
    }
}
