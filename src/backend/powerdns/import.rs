//! `pdm import --from-powerdns`: adopts the child zones a PowerDNS server
//! already holds as active allocations.

use std::net::IpAddr;

use super::client::{canonical, PdnsClient};
use super::diff::child_label;
use crate::config::Config;
use crate::store::allocations as rows;
use crate::store::{now_ms, Store};

/// `pdm import --from-powerdns URL`: adopts every zone `label.pool.` on that
/// server (for each configured pool) that has no live allocation as an
/// active allocation, taking the load balancer from the apex (else `*`) A/AAAA
/// and the console load balancer from `console` when it differs. Returns
/// `label.pool (lb[, console])` per adopted zone. Records are not changed:
/// run `pdm reconcile --dry-run` next to see what the templates would change.
pub async fn import_from(
    config: &Config,
    store: &Store,
    url: &str,
    dry: bool,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let mut pcfg = match &config.backend.powerdns {
        Some(p) => p.clone(),
        None => {
            let key = std::env::var("PDM_POWERDNS_API_KEY")
                .map_err(|_| "set PDM_POWERDNS_API_KEY or configure [backend] for the API key")?;
            let raw = format!(
                "[backend]\nkind = \"powerdns\"\nurl = \"{}\"\napi_key = \"x\"\n[[nameservers]]\nname = \"ns.invalid\"\n",
                url.replace('"', "")
            );
            let mut c = Config::from_toml(&raw)?
                .backend
                .powerdns
                .ok_or("internal: no powerdns config")?;
            c.api_key = crate::config::ApiKey::from_secret(key);
            c
        }
    };
    pcfg.url = url.trim().trim_end_matches('/').to_string();
    let client = PdnsClient::new(&pcfg)?;
    let zones = client.list_zones().await?;
    let mut out = Vec::new();
    for pool in &config.pools {
        let pool_fqdn = pool.domain.fqdn();
        let pool_name = pool.domain.without_dot();
        for z in &zones {
            let name = canonical(&z.name);
            let Some(label) = child_label(&pool_fqdn, &name) else {
                continue;
            };
            let mut tx = store.begin().await?;
            if rows::live(&mut tx, "", &pool_name, label).await?.is_some() {
                continue;
            }
            let Some(detail) = client.zone(&name).await? else {
                continue;
            };
            let addr = |owner: &str| {
                detail
                    .rrsets
                    .iter()
                    .filter(|r| {
                        canonical(&r.name) == owner && (r.rtype == "A" || r.rtype == "AAAA")
                    })
                    .flat_map(|r| r.records.iter())
                    .find_map(|x| x.content.parse::<IpAddr>().ok())
            };
            let Some(lb) = addr(&name).or_else(|| addr(&format!("*.{name}"))) else {
                eprintln!("skip {name}: no apex or wildcard A/AAAA to take the load balancer from");
                continue;
            };
            let console = addr(&format!("console.{name}")).filter(|c| *c != lb);
            let fqdn = name.trim_end_matches('.').to_string();
            out.push(match console {
                Some(c) => format!("{fqdn} ({lb}, console {c})"),
                None => format!("{fqdn} ({lb})"),
            });
            if dry {
                continue;
            }
            let now = now_ms();
            let token = crate::store::sha256_hex(uuid::Uuid::new_v4().to_string().as_bytes());
            let Some(row) = rows::insert_reservation(
                &mut tx,
                &pool_name,
                label,
                "import",
                &token,
                now,
                now + 60_000,
            )
            .await?
            else {
                continue;
            };
            rows::activate(
                &mut tx,
                row.allocation.id,
                &fqdn,
                &lb.to_string(),
                console.map(|c| c.to_string()).as_deref(),
                now,
            )
            .await?;
            tx.commit().await?;
        }
    }
    Ok(out)
}
