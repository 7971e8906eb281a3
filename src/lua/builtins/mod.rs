//! The PowerDNS LUA functions, registered once per state in its base table.

mod geoip;
mod ifup;
mod pickers;

use super::addr::{ip_text, parse_combo, Netmask, NetmaskGroup};
use super::convert::{
    ip_list_of, ip_sets_of, options, rt, split_port, string_list, string_list_of, string_pairs,
    synth_err, value_string, Ret,
};
use super::eval::ctx_of;
use super::geo::{latlon_loc, latlon_text};
use super::health::{CheckKind, CheckOptions, Health, TargetKey};
use super::synth::{self, SynthError};
use super::userdata::{LCombo, LDnsName, LNetmask, LNmg};
use super::LUA_TYPE_CODE;
use geoip::{
    closest_of, g_asn, g_continent, g_country, g_region, geo_code, geo_compare, geo_lookup,
};
use hickory_proto::rr::{Name, RecordType};
use ifup::generic_if_up;
use mlua::{AnyUserData, Lua, Table, Value, Variadic};
use pickers::{pick_one, pick_weighted};
use rand::Rng;
use std::net::{IpAddr, SocketAddr};

pub(super) fn register_functions(lua: &Lua, base: &Table) -> mlua::Result<()> {
    macro_rules! reg {
        ($name:expr, $f:expr) => {
            base.raw_set($name, lua.create_function($f)?)?;
        };
    }

    reg!("all", |lua, v: Value| {
        let items = string_list_of(lua, &v)?;
        if items.is_empty() {
            return Err(rt("The IP list cannot be empty"));
        }
        Ok(Ret(items))
    });
    reg!("pickrandom", |lua, v: Value| {
        pick_one(lua, &v, |items| {
            synth::pick_random(items, &mut rand::thread_rng())
        })
    });
    reg!("pickrandomsample", |lua, (n, v): (i64, Value)| {
        synth::pick_random_sample(n, &string_list_of(lua, &v)?, &mut rand::thread_rng())
            .map(Ret)
            .map_err(synth_err)
    });
    reg!("pickhashed", |lua, v: Value| {
        let bestwho = ctx_of(lua)?.bestwho;
        pick_one(lua, &v, |items| synth::pick_hashed(&bestwho, items))
    });
    reg!("pickwrandom", |lua, v: Value| {
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_random(items, &mut rand::thread_rng())
        })
    });
    reg!("pickwhashed", |lua, v: Value| {
        let bestwho = ctx_of(lua)?.bestwho;
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_hashed(&bestwho, items)
        })
    });
    reg!("picknamehashed", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        let qname = ctx.qname.clone();
        drop(ctx);
        pick_weighted(lua, &v, |items| {
            synth::pick_weighted_name_hashed(&qname, items)
        })
    });
    reg!("pickclosest", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        Ok(Ret(ip_text(&closest_of(&ctx, &ip_list_of(lua, &v)?)?)))
    });

    reg!("ifportup", |lua,
                      (port, addrs, opts): (
        i64,
        Value,
        Option<Table>
    )| {
        let ctx = ctx_of(lua)?;
        let port = port.clamp(0, i64::from(u16::MAX)) as u16;
        let sets = ip_sets_of(lua, &addrs)?;
        let opts = options(&opts)?;
        let check = CheckOptions::from_opts(&opts).map_err(rt)?;
        generic_if_up(&ctx, &sets, &opts, &|ip| TargetKey {
            kind: CheckKind::Tcp(SocketAddr::new(ip, port)),
            opts: check.clone(),
        })
        .map(Ret)
    });
    reg!("ifurlup", |lua,
                     (url, addrs, opts): (
        String,
        Value,
        Option<Table>
    )| {
        let ctx = ctx_of(lua)?;
        let sets = ip_sets_of(lua, &addrs)?;
        let opts = options(&opts)?;
        let check = CheckOptions::from_opts(&opts).map_err(rt)?;
        generic_if_up(&ctx, &sets, &opts, &|ip| TargetKey {
            kind: CheckKind::Http {
                url: url.clone(),
                addr: Some(ip),
            },
            opts: check.clone(),
        })
        .map(Ret)
    });
    reg!(
        "ifurlextup",
        |lua, (groups, opts): (Table, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let opts = options(&opts)?;
            let check = CheckOptions::from_opts(&opts).map_err(rt)?;
            let hc = &ctx.config.health;
            let assume_up = hc.config().assume_up_before_first_check;
            let mut all = Vec::new();
            let mut incomplete = true;
            let mut rng = rand::thread_rng();
            let closest = |c: &[IpAddr]| closest_of(&ctx, c).map_err(|e| SynthError(e.to_string()));
            let selector_for =
                |name: &str| opts.get(name).map_or("random", String::as_str).to_string();
            let mut chosen = None;
            for group in groups.pairs::<Value, Table>() {
                let (_, unit) = group?;
                let mut available = Vec::new();
                for entry in unit.pairs::<String, String>() {
                    let (ip, url) = entry?;
                    let addr = parse_combo(&ip).ok_or_else(|| {
                        rt(format!("Unable to convert presentation address '{ip}'"))
                    })?;
                    all.push(addr);
                    let h = hc.status(&TargetKey {
                        kind: CheckKind::Http { url, addr: None },
                        opts: check.clone(),
                    });
                    if h != Health::Unknown {
                        incomplete = false;
                    }
                    if h == Health::Up || (h == Health::Unknown && assume_up) {
                        available.push(addr);
                    }
                }
                if !available.is_empty() && chosen.is_none() {
                    chosen = Some(available);
                    if !ctx.priming {
                        break;
                    }
                }
            }
            let picked = match chosen {
                Some(avail) => synth::use_selector(
                    &selector_for("selector"),
                    &ctx.bestwho,
                    &avail,
                    &mut rng,
                    &closest,
                ),
                None => {
                    if incomplete
                        && opts
                            .get("failOnIncompleteCheck")
                            .is_some_and(|v| v == "true")
                    {
                        return Err(rt("ifexturlup health check has not completed yet"));
                    }
                    synth::use_selector(
                        &selector_for("backupSelector"),
                        &ctx.bestwho,
                        &all,
                        &mut rng,
                        &closest,
                    )
                }
            };
            Ok(Ret(picked
                .map_err(synth_err)?
                .iter()
                .map(ip_text)
                .collect::<Vec<_>>()))
        }
    );

    reg!("netmask", |lua, v: Value| {
        let ctx = ctx_of(lua)?;
        for m in string_list_of(lua, &v)? {
            let nm = Netmask::parse(&m).ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
            if nm.matches(&ctx.bestwho) {
                return Ok(true);
            }
        }
        Ok(false)
    });
    reg!("view", |lua, rules: Table| {
        let ctx = ctx_of(lua)?;
        for rule in rules.pairs::<Value, Table>() {
            let (_, rule) = rule?;
            let masks = string_list(&rule.get::<Value>(1)?)?;
            let dests = string_list(&rule.get::<Value>(2)?)?;
            for m in masks {
                let nm = Netmask::parse(&m).ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
                if nm.matches(&ctx.bestwho) {
                    if dests.is_empty() {
                        return Err(rt(format!(
                            "The IP list cannot be empty (for netmask {nm})"
                        )));
                    }
                    return synth::pick_random(&dests, &mut rand::thread_rng()).map_err(synth_err);
                }
            }
        }
        Ok(String::new())
    });

    reg!("country", |lua, v: Value| geo_compare(lua, &v, g_country));
    reg!("continent", |lua, v: Value| geo_compare(
        lua,
        &v,
        g_continent
    ));
    reg!("region", |lua, v: Value| geo_compare(lua, &v, g_region));
    reg!("asnum", |lua, v: Value| geo_compare(lua, &v, g_asn));
    reg!("countryCode", |lua, ()| geo_code(lua, g_country));
    reg!("continentCode", |lua, ()| geo_code(lua, g_continent));
    reg!("regionCode", |lua, ()| geo_code(lua, g_region));
    reg!("latlon", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(latlon_text(
            geo_lookup(&ctx, &ctx.bestwho)?
                .location
                .unwrap_or((0.0, 0.0)),
        ))
    });
    reg!("latlonloc", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(geo_lookup(&ctx, &ctx.bestwho)?
            .location
            .map(latlon_loc)
            .unwrap_or_default())
    });
    reg!("closestMagic", |lua, ()| {
        let ctx = ctx_of(lua)?;
        let mut candidates = Vec::new();
        for label in synth::raw_labels(&ctx.qname) {
            match parse_combo(&label.replace('-', ".")) {
                Some(a) => candidates.push(a),
                None => break,
            }
        }
        Ok(closest_of(&ctx, &candidates)?.to_string())
    });
    reg!("latlonMagic", |lua, ()| {
        let ctx = ctx_of(lua)?;
        let l = synth::raw_labels(&ctx.qname);
        if l.len() < 4 {
            return Ok("unknown".to_string());
        }
        let ip = parse_combo(&format!("{}.{}.{}.{}", l[3], l[2], l[1], l[0]));
        let loc = match ip {
            Some(ip) => geo_lookup(&ctx, &ip)?.location,
            None => {
                geo_lookup(&ctx, &ctx.bestwho)?;
                None
            }
        };
        Ok(latlon_text(loc.unwrap_or((0.0, 0.0))))
    });
    reg!("geoiplookup", |lua, (ip, attr): (String, i64)| {
        let ctx = ctx_of(lua)?;
        let addr = parse_combo(&ip)
            .ok_or_else(|| rt(format!("Unable to convert presentation address '{ip}'")))?;
        let i = geo_lookup(&ctx, &addr)?;
        let unknown = || "unknown".to_string();
        Ok(match attr {
            0 => g_asn(&i).unwrap_or_else(unknown),
            1 => i.city.clone().unwrap_or_else(unknown),
            2 => i.continent.clone().unwrap_or_else(unknown),
            3 | 4 => i.country.clone().unwrap_or_else(unknown),
            6 => i.region.clone().unwrap_or_else(unknown),
            7 => i.location.map(latlon_text).unwrap_or_default(),
            _ => unknown(),
        })
    });
    let attrs = lua.create_table()?;
    for (i, n) in [
        "ASn",
        "City",
        "Continent",
        "Country",
        "Country2",
        "Name",
        "Region",
        "Location",
    ]
    .iter()
    .enumerate()
    {
        attrs.raw_set(*n, i as i64)?;
    }
    base.raw_set("GeoIPQueryAttribute", attrs)?;

    reg!("createForward", |lua, ()| {
        let ctx = ctx_of(lua)?;
        synth::create_forward(&ctx.qname, &ctx.zone)
            .map(Ret)
            .map_err(synth_err)
    });
    reg!("createForward6", |lua, ()| {
        let ctx = ctx_of(lua)?;
        Ok(Ret(synth::create_forward6(&ctx.qname, &ctx.zone)))
    });
    reg!(
        "createReverse",
        |lua, (fmt, exc): (String, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let exc = string_pairs(&exc)?;
            synth::create_reverse(&ctx.qname, &fmt, &exc)
                .map(Ret)
                .map_err(synth_err)
        }
    );
    reg!(
        "createReverse6",
        |lua, (fmt, exc): (String, Option<Table>)| {
            let ctx = ctx_of(lua)?;
            let exc = string_pairs(&exc)?;
            Ok(Ret(synth::create_reverse6(&ctx.qname, &fmt, &exc)))
        }
    );
    reg!("filterForward", |_,
                           (addr, nmg, fallback): (
        String,
        AnyUserData,
        Option<String>
    )| {
        let ip = parse_combo(&addr)
            .ok_or_else(|| rt(format!("Unable to convert presentation address '{addr}'")))?;
        let nmg = nmg.borrow::<LNmg>()?;
        if nmg.0.matches(&ip) {
            return Ok(vec![addr]);
        }
        Ok(match fallback {
            Some(f) if f.is_empty() => vec![],
            Some(f) => vec![f],
            None if ip.is_ipv4() => vec!["0.0.0.0".to_string()],
            None => vec!["::".to_string()],
        })
    });

    reg!("pdnslog", |_, (msg, level): (Value, Option<i64>)| {
        let msg = value_string(&msg).unwrap_or_else(|_| format!("{msg:?}"));
        match level.unwrap_or(6) {
            0..=3 => tracing::error!(target: "pdm::lua::record", "{msg}"),
            4 => tracing::warn!(target: "pdm::lua::record", "{msg}"),
            5 | 6 => tracing::info!(target: "pdm::lua::record", "{msg}"),
            _ => tracing::debug!(target: "pdm::lua::record", "{msg}"),
        }
        Ok(())
    });
    reg!("print", |_, args: Variadic<Value>| {
        let parts: Vec<String> = args
            .iter()
            .map(|v| value_string(v).unwrap_or_else(|_| v.type_name().to_string()))
            .collect();
        tracing::debug!(target: "pdm::lua::record", "{}", parts.join("\t"));
        Ok(())
    });
    reg!("pdnsrandom", |_, n: Option<i64>| {
        let mut rng = rand::thread_rng();
        Ok(match n {
            Some(n) if n > 0 => rng.gen_range(0..n),
            _ => i64::from(rng.gen::<u32>()),
        })
    });
    reg!("report", |_, _: Variadic<Value>| -> mlua::Result<()> {
        Err(rt("Script took too long"))
    });
    reg!("newCA", |_, s: String| {
        let (host, port) = split_port(&s);
        parse_combo(host)
            .map(|a| LCombo(a, port))
            .ok_or_else(|| rt(format!("Unable to convert presentation address '{s}'")))
    });
    reg!("newDN", |_, s: String| {
        let mut n = Name::from_ascii(&s).map_err(|e| rt(format!("bad name {s:?}: {e}")))?;
        n.set_fqdn(true);
        Ok(LDnsName(n))
    });
    reg!("newNetmask", |_, s: String| {
        Netmask::parse(&s)
            .map(LNetmask)
            .ok_or_else(|| rt(format!("Not a netmask: '{s}'")))
    });
    reg!("newNMG", |_, v: Option<Value>| {
        let mut g = NetmaskGroup::default();
        if let Some(v) = v {
            for m in string_list(&v)? {
                g.add(&m)
                    .ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
            }
        }
        Ok(LNmg(g))
    });
    let pdns = lua.create_table()?;
    for t in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::MX,
        RecordType::NS,
        RecordType::PTR,
        RecordType::SOA,
        RecordType::SRV,
        RecordType::TXT,
        RecordType::CAA,
        RecordType::HTTPS,
        RecordType::SVCB,
    ] {
        pdns.raw_set(t.to_string(), u16::from(t))?;
    }
    pdns.raw_set("LUA", LUA_TYPE_CODE)?;
    base.raw_set("pdns", pdns)?;
    Ok(())
}
