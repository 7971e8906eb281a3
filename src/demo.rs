//! The demo's start-up printouts: the admin token and commands to try, and
//! the fake registrars' accounts (`--fake-registrars`).

use crate::config::Config;
use crate::store::{Store, StoreError};

/// Prints the demo banner with a fresh admin token and commands to try.
pub async fn print_demo(config: &Config, store: &Store) -> Result<(), StoreError> {
    // The demo token is rotated at every start: only its hash is stored, so
    // the previous one could not be shown again anyway.
    store.delete_tokens_named("demo").await?;
    let (token, _) = store.create_token("demo", &["admin".to_string()]).await?;
    let pool = config
        .pools
        .first()
        .map(|p| p.domain.without_dot())
        .unwrap_or_default();
    let http = config.http;
    let dns_port = config.dns.port();
    let dns_ip = config.dns.ip();
    println!(
        r#"
pdm demo is running (config: built-in demo, database: {db})
  DNS  {dns} (UDP+TCP)    HTTP {http}
  DNSSEC: zones are signed; private keys are sealed with the key in ./pdm.secret
  (or $PDM_SECRET_KEY). The pool's DS for its parent: pdm key ds {pool}

Admin token (shown once, valid until the next demo start):
  export PDM_TOKEN={token}

Try it:
  curl -s 'http://{http}/api/v1/pool/{pool}/check?sub=acme'
  curl -s -X POST http://{http}/api/v1/pool/{pool}/reserve -H "Authorization: Bearer $PDM_TOKEN" -d '{{"subdomain":"acme"}}'
  curl -s -X POST http://{http}/api/v1/pool/{pool}/commit  -H "Authorization: Bearer $PDM_TOKEN" \
       -d '{{"subdomain":"acme","reservationToken":"<token from reserve>","loadBalancerIP":"192.0.2.10"}}'
  dig @{dns_ip} -p {dns_port} acme.{pool} A +norec
  dig @{dns_ip} -p {dns_port} www.acme.{pool} A +norec +dnssec
  curl -s http://{http}/api/v1/zones/acme.{pool}/dnssec -H "Authorization: Bearer $PDM_TOKEN"
  curl -s -X DELETE http://{http}/api/v1/pool/{pool}/release -H "Authorization: Bearer $PDM_TOKEN" -d '{{"subdomain":"acme"}}'
"#,
        db = crate::store::redact_url(&config.database),
        dns = config.dns,
    );
    Ok(())
}

/// Prints the fake registrars' URLs and a byo-api walk-through.
#[cfg(feature = "fake-registrars")]
pub fn print_fake_registrars(config: &Config, fakes: &crate::delegation::fakes::FakeRegistrars) {
    let http = config.http;
    let mut lines = String::new();
    for (id, url) in fakes.urls() {
        lines.push_str(&format!("  {:<11} {url}\n", id.as_str()));
    }
    let a = &crate::delegation::fakes::DEMO_ACCOUNTS[1];
    println!(
        r#"
Fake registrars (--fake-registrars): registrar calls go to local fakes, nothing leaves this machine.
{lines}Try byo-api offline (demo accounts: {accounts}):
  curl -s -X POST http://{http}/api/v1/registrar/{r}/validate -H "Authorization: Bearer $PDM_TOKEN" \
       -d '{{"domain":"{d}","token":"{t}"}}'
  curl -s -X POST http://{http}/api/v1/domains -H "Authorization: Bearer $PDM_TOKEN" \
       -d '{{"domain":"{d}","mode":"byo-api","registrar":"{r}","credentials":"{t}"}}'
  curl -s http://{http}/api/v1/domains/{d} -H "Authorization: Bearer $PDM_TOKEN"
"#,
        accounts = crate::delegation::fakes::DEMO_ACCOUNTS
            .iter()
            .map(|a| format!("{} {} token {}", a.registrar, a.domain, a.token))
            .collect::<Vec<_>>()
            .join("; "),
        r = a.registrar,
        d = a.domain,
        t = a.token,
    );
}
