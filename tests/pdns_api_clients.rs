//! Real clients of the PowerDNS API against pdm, on 127.0.0.1:
//! - octoDNS (`octodns` + `octodns-powerdns`, PyPI) syncs a YAML zone, a
//!   second run plans nothing, an edit applies exactly the diff;
//! - external-dns's `pdns` provider, its request sequence replayed from its
//!   source (kubernetes-sigs/external-dns provider/pdns/pdns.go and its
//!   client joeig/go-powerdns);
//! - lego's `pdns` provider obtains a wildcard certificate from pebble
//!   (DNS-01, pebble resolving through pdm) with a key scoped to
//!   `_acme-challenge` TXT, and that key cannot write an A record.
//!
//! The tools are installed by scripts/test; missing outside CI, a test
//! prints `SKIP: ...` and passes; with `CI` set it fails.

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const Z: &str = "/api/v1/servers/localhost/zones";

/// Whether `tools` are on PATH (and Python `modules` importable); SKIP or panic in CI.
fn require(tools: &[&str], modules: &[&str]) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|t| t.to_string())
        .collect();
    for m in modules {
        let ok = Command::new("python3")
            .args(["-c", &format!("import {m}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing.push(format!("python3 module {m}"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("PowerDNS-API client test cannot run in CI: missing {missing:?} (scripts/test installs them)");
    }
    eprintln!("SKIP: missing {missing:?} (scripts/test installs them)");
    false
}

/// A PowerDNS-API call to pdm with `key`.
fn pdns_call(srv: &PdmServer, key: &str, method: &str, path: &str, body: Option<&Value>) -> Resp {
    let mut h = vec![("X-API-Key", key)];
    if body.is_some() {
        h.push(("Accept", "application/json"));
    }
    srv.request(method, path, None, body.map_or(Body::None, Body::Json), &h)
}

fn token_with_policy(srv: &PdmServer, name: &str, policy: Value) -> String {
    let r = srv.request(
        "POST",
        "/api/v1/tokens",
        Some(&srv.admin_token()),
        Body::Json(&json!({"name": name, "policy": policy})),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

fn soa_serial(srv: &PdmServer, zone: &str) -> String {
    srv.dig(zone, RecordType::SOA)
        .answer_data(RecordType::SOA)
        .join(" ")
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------- octoDNS

const OCTO_ZONE: &str = "octo.test";

/// The YAML zone (keys sorted, records per name sorted by type, as octoDNS wants).
fn octo_yaml(app_ip: &str, with_caa: bool, extra: bool) -> String {
    let caa = if with_caa {
        "  - type: CAA\n    values:\n      - flags: 0\n        tag: issue\n        value: letsencrypt.org\n"
    } else {
        ""
    };
    let new = if extra {
        "new:\n  ttl: 120\n  type: TXT\n  value: added later\n"
    } else {
        ""
    };
    format!(
        "---\n\
'':\n{caa}  - type: MX\n    values:\n      - exchange: mail.octo.test.\n        preference: 10\n      - exchange: mx2.example.net.\n        preference: 20\n  - type: TXT\n    values:\n      - v=spf1 -all\n      - two words here\n\
_sip._tcp:\n  type: SRV\n  values:\n    - port: 5060\n      priority: 10\n      target: sip.octo.test.\n      weight: 5\n\
app:\n  - ttl: 300\n    type: A\n    values:\n      - {app_ip}\n      - 192.0.2.30\n  - type: AAAA\n    value: 2001:db8::30\n\
mail:\n  type: A\n  value: 192.0.2.25\n\
{new}\
www:\n  type: CNAME\n  value: app.octo.test.\n"
    )
}

fn octodns(dir: &Path, doit: bool) -> String {
    let mut cmd = Command::new("octodns-sync");
    cmd.arg("--config-file").arg(dir.join("config.yaml"));
    if doit {
        cmd.args(["--doit", "--force"]);
    }
    let (code, out, err) = run_bounded(cmd, "octodns-sync", dir, Duration::from_secs(120));
    assert_eq!(code, Some(0), "octodns-sync failed:\n{out}\n{err}");
    format!("{out}\n{err}")
}

#[test]
fn octodns_syncs_a_zone_through_the_powerdns_api() {
    if !require(&["octodns-sync"], &["octodns", "octodns_powerdns"]) {
        return;
    }
    let Some(srv) = PdmServer::start(Backend::Sqlite, Config::default_test()) else {
        return;
    };
    let admin = srv.admin_token();
    let r = pdns_call(
        &srv,
        &admin,
        "POST",
        Z,
        Some(&json!({"name": format!("{OCTO_ZONE}."), "kind": "Native"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("zones")).unwrap();
    let port = srv.http_addr.port();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "providers:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    directory: {zones}\n    enforce_order: true\n  pdns:\n    class: octodns_powerdns.PowerDnsProvider\n    host: 127.0.0.1\n    port: {port}\n    api_key: {admin}\n    scheme: http\n    timeout: 30\nzones:\n  {OCTO_ZONE}.:\n    sources: [config]\n    targets: [pdns]\n",
            zones = dir.path().join("zones").display()
        ),
    )
    .unwrap();
    let yaml = dir.path().join(format!("zones/{OCTO_ZONE}.yaml"));
    std::fs::write(&yaml, octo_yaml("192.0.2.20", true, false)).unwrap();

    // Apply, then plan: nothing left to do.
    octodns(dir.path(), true);
    let plan = octodns(dir.path(), false);
    assert!(
        plan.contains("No changes were planned"),
        "second run planned changes:\n{plan}"
    );
    // Applying again writes nothing (the serial stays).
    let serial = soa_serial(&srv, "octo.test.");
    octodns(dir.path(), true);
    assert_eq!(
        soa_serial(&srv, "octo.test."),
        serial,
        "a no-op --doit bumped the serial"
    );

    // Served as written.
    let q = |n: &str, t: RecordType| sorted(srv.dig(n, t).answer_data(t));
    assert_eq!(
        q("app.octo.test.", RecordType::A),
        ["192.0.2.20", "192.0.2.30"]
    );
    assert_eq!(q("app.octo.test.", RecordType::AAAA), ["2001:db8::30"]);
    assert_eq!(q("www.octo.test.", RecordType::CNAME), ["app.octo.test."]);
    assert_eq!(
        q("octo.test.", RecordType::MX),
        ["10 mail.octo.test.", "20 mx2.example.net."]
    );
    assert_eq!(
        q("octo.test.", RecordType::TXT),
        ["two words here", "v=spf1 -all"]
    );
    assert_eq!(
        q("_sip._tcp.octo.test.", RecordType::SRV),
        ["10 5 5060 sip.octo.test."]
    );
    assert_eq!(q("octo.test.", RecordType::CAA).len(), 1);

    // Edit: one update, one delete, one create; exactly that is applied.
    let before = pdns_call(&srv, &admin, "GET", &format!("{Z}/{OCTO_ZONE}."), None);
    std::fs::write(&yaml, octo_yaml("192.0.2.21", false, true)).unwrap();
    let out = octodns(dir.path(), true);
    assert!(out.contains("Creates=1, Updates=1, Deletes=1"), "{out}");
    assert_eq!(
        q("app.octo.test.", RecordType::A),
        ["192.0.2.21", "192.0.2.30"]
    );
    assert!(q("octo.test.", RecordType::CAA).is_empty());
    assert_eq!(q("new.octo.test.", RecordType::TXT), ["added later"]);
    let after = pdns_call(&srv, &admin, "GET", &format!("{Z}/{OCTO_ZONE}."), None);
    let sets = |v: &Value| -> Vec<(String, String, Value)> {
        let mut out: Vec<_> = v["rrsets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["type"] != json!("SOA"))
            .map(|s| {
                let mut recs: Vec<String> = s["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["content"].to_string())
                    .collect();
                recs.sort();
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["type"].as_str().unwrap().to_string(),
                    json!([s["ttl"], recs]),
                )
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    };
    let (b, a) = (sets(&before.body), sets(&after.body));
    let changed: Vec<String> = b
        .iter()
        .filter(|x| !a.contains(x))
        .chain(a.iter().filter(|x| !b.contains(x)))
        .map(|(n, t, _)| format!("{n} {t}"))
        .collect();
    assert_eq!(
        sorted(changed),
        [
            "app.octo.test. A",
            "app.octo.test. A",
            "new.octo.test. TXT",
            "octo.test. CAA"
        ],
        "exactly the diff changed\nbefore {b:?}\nafter {a:?}"
    );
    let plan = octodns(dir.path(), false);
    assert!(plan.contains("No changes were planned"), "{plan}");
}

// ---------------------------------------------------------- external-dns

const EXT_ZONE: &str = "acme.example.test.";

/// One request as go-powerdns sends it: `X-Api-Key` spelled so, GETs
/// without Accept, PATCH with JSON headers and a body ending in a newline.
fn go_powerdns(srv: &PdmServer, key: &str, method: &str, path: &str, body: Option<&Value>) -> Resp {
    let mut h = vec![("X-Api-Key", key), ("User-Agent", "go-powerdns")];
    let text;
    let b = match body {
        Some(v) => {
            h.push(("Accept", "application/json"));
            text = format!("{v}\n");
            Body::Raw(text.as_bytes())
        }
        None => Body::None,
    };
    srv.request(method, path, None, b, &h)
}

/// R1 (+R3) and R2 of a sync: the zones and the zone's RRsets, checked the
/// way go-powerdns decodes them.
fn read_zone(srv: &PdmServer, key: &str) -> Vec<Value> {
    let r = go_powerdns(srv, key, "GET", Z, None);
    assert_eq!(r.status, 200, "{}", r.text);
    let zones = r.body.as_array().expect("a zone array").clone();
    for z in &zones {
        assert!(
            z["name"].as_str().unwrap().ends_with('.') && z["id"].as_str().unwrap().ends_with('.'),
            "{z}"
        );
        assert!(
            z["serial"].is_u64(),
            "serial must be an unsigned integer: {z}"
        );
    }
    let id = zones
        .iter()
        .find(|z| z["name"] == json!(EXT_ZONE))
        .expect("the zone is listed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = go_powerdns(srv, key, "GET", &format!("{Z}/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text);
    for s in r.body["rrsets"].as_array().unwrap() {
        assert!(
            s["ttl"].is_u64() && s["name"].as_str().unwrap().ends_with('.'),
            "{s}"
        );
    }
    r.body["rrsets"].as_array().unwrap().clone()
}

fn owner(app: &str) -> String {
    format!("\"heritage=external-dns,external-dns/owner=acme-k8s,external-dns/resource=ingress/default/{app}\"")
}

fn rep(name: &str, t: &str, content: &str) -> Value {
    json!({"name": name, "type": t, "ttl": 300, "changetype": "REPLACE",
           "records": [{"content": content, "disabled": false}]})
}

fn del(name: &str, t: &str, content: &str) -> Value {
    json!({"name": name, "type": t, "changetype": "DELETE",
           "records": [{"content": content, "disabled": false}]})
}

/// Whether what the zone holds is what external-dns wants (its plan is then empty).
fn in_sync(rrsets: &[Value], want: &[(String, &str, String)]) -> bool {
    want.iter().all(|(n, t, c)| {
        rrsets.iter().any(|s| {
            s["name"] == json!(n)
                && s["type"] == json!(t)
                && s["ttl"] == json!(300)
                && s["records"]
                    .as_array()
                    .is_some_and(|r| r.len() == 1 && r[0]["content"] == json!(c))
        })
    })
}

#[test]
fn external_dns_pdns_provider_replay() {
    let Some(srv) = PdmServer::start(Backend::Sqlite, Config::default_test()) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    // The operator scopes external-dns to its Sovereign's zone.
    let key = token_with_policy(
        &srv,
        "external-dns",
        json!({"rules": [{"zone": "acme.example.test", "access": "write"}]}),
    );
    let zp = format!("{Z}/{EXT_ZONE}");
    let (a1, a2) = ("a-app1.acme.example.test.", "a-app2.acme.example.test.");
    let (h1, h2) = ("app1.acme.example.test.", "app2.acme.example.test.");

    // A wrong key: 401.
    assert_eq!(go_powerdns(&srv, "wrong", "GET", Z, None).status, 401);

    // S1: create.
    let rrsets = read_zone(&srv, &key);
    let want1 = vec![
        (a1.to_string(), "TXT", owner("app1")),
        (a2.to_string(), "TXT", owner("app2")),
        (h1.to_string(), "A", "192.0.2.10".to_string()),
        (h2.to_string(), "A", "192.0.2.20".to_string()),
    ];
    assert!(!in_sync(&rrsets, &want1));
    let s1 = json!({"rrsets": [rep(a1, "TXT", &owner("app1")), rep(a2, "TXT", &owner("app2")),
        rep(h1, "A", "192.0.2.10"), rep(h2, "A", "192.0.2.20")]});
    let r = go_powerdns(&srv, &key, "PATCH", &zp, Some(&s1));
    assert_eq!(r.status, 204, "{}", r.text);
    // Served on return.
    assert_eq!(
        srv.dig(h1, RecordType::A).answer_data(RecordType::A),
        ["192.0.2.10"]
    );
    assert_eq!(
        srv.dig(h2, RecordType::A).answer_data(RecordType::A),
        ["192.0.2.20"]
    );
    assert_eq!(
        srv.dig(a1, RecordType::TXT).answer_data(RecordType::TXT),
        [owner("app1").trim_matches('"').to_string()]
    );
    let serial = soa_serial(&srv, EXT_ZONE);
    // A retry of the same PATCH (go-powerdns resends on failure): 204, no change.
    let r = go_powerdns(&srv, &key, "PATCH", &zp, Some(&s1));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(soa_serial(&srv, EXT_ZONE), serial);

    // S2: the next sync reads back byte-identical TXT content and TTL 300,
    // so its plan is empty and no PATCH goes out: the serial stays.
    let rrsets = read_zone(&srv, &key);
    assert!(in_sync(&rrsets, &want1), "{rrsets:?}");
    assert_eq!(soa_serial(&srv, EXT_ZONE), serial);

    // S3: app1's address changes.
    let s3 = json!({"rrsets": [rep(a1, "TXT", &owner("app1")), rep(h1, "A", "192.0.2.11")]});
    let r = go_powerdns(&srv, &key, "PATCH", &zp, Some(&s3));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        srv.dig(h1, RecordType::A).answer_data(RecordType::A),
        ["192.0.2.11"]
    );

    // S4: app2 goes (DELETE with its old records, no ttl).
    let s4 = json!({"rrsets": [del(a2, "TXT", &owner("app2")), del(h2, "A", "192.0.2.20")]});
    let r = go_powerdns(&srv, &key, "PATCH", &zp, Some(&s4));
    assert_eq!(r.status, 204, "{}", r.text);
    // (The template's wildcard may still answer for app2; its own address is gone.)
    assert!(!srv
        .dig(h2, RecordType::A)
        .answer_data(RecordType::A)
        .contains(&"192.0.2.20".to_string()));
    let r = go_powerdns(&srv, &key, "PATCH", &zp, Some(&s4));
    assert_eq!(r.status, 204, "a retried DELETE: {}", r.text);
    let rrsets = read_zone(&srv, &key);
    let want4 = vec![
        (a1.to_string(), "TXT", owner("app1")),
        (h1.to_string(), "A", "192.0.2.11".to_string()),
    ];
    assert!(in_sync(&rrsets, &want4));
    assert!(!rrsets
        .iter()
        .any(|s| s["name"] == json!(h2) || s["name"] == json!(a2)));
    let serial = soa_serial(&srv, EXT_ZONE);
    let rrsets = read_zone(&srv, &key);
    assert!(in_sync(&rrsets, &want4));
    assert_eq!(
        soa_serial(&srv, EXT_ZONE),
        serial,
        "a sync with nothing to do changes nothing"
    );

    // A bad target (no trailing dot) is PowerDNS's 422 with a JSON error.
    let r = go_powerdns(
        &srv,
        &key,
        "PATCH",
        &zp,
        Some(&json!({"rrsets": [rep("c.acme.example.test.", "CNAME", "app1.acme.example.test")]})),
    );
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r
        .content_type
        .as_deref()
        .unwrap_or_default()
        .starts_with("application/json"));
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("c.acme.example.test./CNAME")),
        "{}",
        r.text
    );
}

// ------------------------------------------------------- lego + pebble

fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .expect("spawn")
}

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        terminate(&mut self.0);
    }
}

#[test]
fn lego_obtains_a_wildcard_certificate_with_a_scoped_key() {
    if !require(&["lego", "pebble", "openssl"], &[]) {
        return;
    }
    let Some(srv) = PdmServer::start(Backend::Sqlite, Config::default_test()) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let key = token_with_policy(
        &srv,
        "acme-dns01",
        json!({"rules": [{"zone": "acme.example.test", "owner": "_acme-challenge.*", "types": ["TXT"], "access": "write"}]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let (acme_port, mgmt_port) = (free_tcp_port(), free_tcp_port());
    std::fs::write(
        d.join("pebble.json"),
        json!({"pebble": {"listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": d.join("cert.pem"), "privateKey": d.join("key.pem"),
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": false}})
        .to_string(),
    )
    .unwrap();
    let dns = srv.zone_dns_addr();
    let _pebble = Reaped(spawn(
        Command::new("pebble")
            .arg("-config")
            .arg(d.join("pebble.json"))
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0"),
        &d.join("pebble.log"),
    ));
    let client = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("https://127.0.0.1:{acme_port}/dir"))
        .send()
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "pebble did not start:\n{}",
            std::fs::read_to_string(d.join("pebble.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut cmd = Command::new("lego");
    cmd.env("PDNS_API_URL", srv.http_base())
        .env("PDNS_API_KEY", &key)
        .env("LEGO_CA_CERTIFICATES", d.join("cert.pem"))
        .args([
            "--server",
            &format!("https://127.0.0.1:{acme_port}/dir"),
            "--accept-tos",
            "--email",
            "t@example.net",
            "--path",
        ])
        .arg(d.join("lego"))
        .args([
            "--dns",
            "pdns",
            "--dns.resolvers",
            &dns.to_string(),
            "--dns.disable-cp",
            "-d",
            "acme.example.test",
            "-d",
            "*.acme.example.test",
            "run",
        ]);
    let (code, out, err) = run_bounded(cmd, "lego", d, Duration::from_secs(120));
    assert_eq!(
        code,
        Some(0),
        "lego failed:\n{out}\n{err}\n--- pebble ---\n{}",
        std::fs::read_to_string(d.join("pebble.log")).unwrap_or_default()
    );
    let crt = std::fs::read_dir(d.join("lego/certificates"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy().ends_with(".crt") && !p.to_string_lossy().ends_with(".issuer.crt")
        })
        .expect("a certificate");
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&crt)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("DNS:*.acme.example.test"), "{text}");
    // lego cleaned up after itself.
    assert!(srv
        .dig("_acme-challenge.acme.example.test.", RecordType::TXT)
        .answer_data(RecordType::TXT)
        .is_empty());

    // The same key cannot write an A record.
    let serial = soa_serial(&srv, "acme.example.test.");
    let r = pdns_call(
        &srv,
        &key,
        "PATCH",
        &format!("{Z}/acme.example.test."),
        Some(&json!({"rrsets": [rep("www.acme.example.test.", "A", "192.0.2.66")]})),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(soa_serial(&srv, "acme.example.test."), serial);
    // The audit trail names the key and the path.
    let (st, audit) = srv.get("/api/v1/audit", Some(&srv.admin_token()));
    assert_eq!(st, 200, "{audit}");
    assert!(audit.to_string().contains("pdns-api"), "{audit}");
}
