//! RFC 2136 UPDATE with real clients on 127.0.0.1, SQLite and Postgres:
//! BIND's `nsupdate` and Knot's `knsupdate` signed with TSIG keys from
//! pdm's key store (`pdm tsig create --policy`): adds, deletes, every
//! prerequisite kind both ways, bad keys (NOTAUTH), keys outside their
//! policy or without one (REFUSED), SOA updates (ignored), CNAME next to
//! other data (REFUSED, zone unchanged), the change served when the client
//! returns. Then ACME DNS-01 end to end: pebble resolving through pdm,
//! lego (`rfc2136` provider) and certbot (`certbot-dns-rfc2136`) obtain a
//! wildcard certificate with a key limited to `_acme-challenge` TXT.

#[macro_use]
mod common;
use common::validators::find_tool;
use common::*;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const POOL: &str = "example.test";
const ZONE: &str = "acme.example.test";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `tools` are installed; outside CI a missing one skips the test
/// (prints SKIP), in CI it fails it.
fn need(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tools missing but CI is set: {missing:?} (scripts/test installs them)"
    );
    eprintln!("SKIP: not installed: {missing:?}");
    false
}

/// A TSIG key as the clients take it.
#[derive(Clone)]
struct Key {
    alg: &'static str,
    name: String,
    secret: String,
}

impl Key {
    fn arg(&self) -> String {
        format!("{}:{}:{}", self.alg, self.name, self.secret)
    }
}

/// `pdm tsig create NAME --algorithm ALG [--policy JSON]`: the key.
fn create_key(srv: &PdmServer, name: &str, alg: &'static str, policy: Option<&str>) -> Key {
    let mut args = vec!["tsig", "create", name, "--algorithm", alg];
    if let Some(p) = policy {
        args.extend(["--policy", p]);
    }
    let out = srv.cli(&args);
    assert!(out.success(), "pdm tsig create {name}: {out:?}");
    Key {
        alg,
        name: name.to_string(),
        secret: out.stdout.trim().to_string(),
    }
}

/// A policy: write `types` (all when empty) at `owner` (all when none) in ZONE.
fn policy(owner: Option<&str>, types: &[&str]) -> String {
    let mut rule = json!({"zone": ZONE, "access": "write"});
    if let Some(o) = owner {
        rule["owner"] = json!(o);
    }
    if !types.is_empty() {
        rule["types"] = json!(types);
    }
    json!({ "rules": [rule] }).to_string()
}

/// Which client.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    /// BIND's nsupdate.
    Nsupdate,
    /// Knot's knsupdate.
    Knsupdate,
}

/// What a client run said.
struct Sent {
    ok: bool,
    out: String,
}

impl Sent {
    /// Assert the update failed with `rcode` in the client's words.
    fn failed_with(&self, rcode: &str) {
        assert!(
            !self.ok,
            "expected {rcode}, the update succeeded:\n{}",
            self.out
        );
        assert!(
            self.out.contains(rcode),
            "expected {rcode} in the client's output:\n{}",
            self.out
        );
    }

    fn succeeded(&self) {
        assert!(self.ok, "update failed:\n{}", self.out);
    }
}

/// Run one update: `lines` between `zone` and `send`, signed with `key`,
/// over UDP or (`tcp`) TCP.
fn send(
    client: Client,
    dir: &Path,
    addr: SocketAddr,
    zone: &str,
    key: Option<&Key>,
    tcp: bool,
    lines: &[&str],
) -> Sent {
    let script = format!(
        "server {} {}\nzone {zone}\n{}\nsend\n",
        addr.ip(),
        addr.port(),
        lines.join("\n")
    );
    let file = dir.join(format!("update-{}.txt", unique_id()));
    std::fs::write(&file, script).unwrap();
    let tool = match client {
        Client::Nsupdate => "nsupdate",
        Client::Knsupdate => "knsupdate",
    };
    let mut cmd = Command::new(find_tool(tool).expect("client installed"));
    if let Some(k) = key {
        cmd.arg("-y").arg(k.arg());
    }
    if tcp {
        cmd.arg("-v");
    }
    cmd.arg(&file);
    let (code, stdout, stderr) = run_bounded(cmd, tool, dir, CLIENT_TIMEOUT);
    Sent {
        ok: code == Some(0),
        out: format!("{stdout}{stderr}"),
    }
}

/// BIND's `dig +short` of `name` `qtype`: the presentation form of its
/// answers, with non-text bytes as `\DDD`.
fn dig_short(dir: &Path, addr: SocketAddr, name: &str, qtype: &str) -> String {
    let mut cmd = Command::new(find_tool("dig").expect("dig installed"));
    cmd.args(["+short", "+norec", "+time=5", "+tries=2"])
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), name, qtype]);
    let (code, stdout, stderr) = run_bounded(cmd, "dig", dir, CLIENT_TIMEOUT);
    assert_eq!(code, Some(0), "dig {name} {qtype}: {stderr}");
    stdout.trim().to_string()
}

/// The zone's SOA (serial included) and its export: what must not move
/// after a refusal.
fn state(srv: &PdmServer) -> (String, String) {
    let r = srv.request(
        "GET",
        &format!("/api/v1/zones/{ZONE}/export"),
        Some(&srv.admin_token()),
        Body::None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    (soa(srv), r.text)
}

fn soa(srv: &PdmServer) -> String {
    srv.dig(&format!("{ZONE}."), RecordType::SOA)
        .answer_data(RecordType::SOA)
        .join(" ")
}

fn serial(srv: &PdmServer) -> u32 {
    soa(srv)
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no serial in {:?}", soa(srv)))
}

fn answers(srv: &PdmServer, name: &str, t: RecordType) -> Vec<String> {
    let mut v = srv.dig(name, t).answer_data(t);
    v.sort();
    v
}

/// Whether `name` has no `t` RRset of its own (the template's wildcard
/// may still answer for it).
fn absent(srv: &PdmServer, name: &str, t: RecordType) -> bool {
    answers(srv, name, t) == answers(srv, &format!("no-such-name.{ZONE}."), t)
}

/// A server with the zone, the keys, and the keys in force (the server
/// re-reads keys every 2 s).
struct Setup {
    srv: PdmServer,
    /// Writes anything in ZONE.
    all: Key,
    /// hmac-sha512, writes anything in ZONE.
    all512: Key,
    /// `_acme-challenge.*` TXT only.
    acme: Key,
    /// No policy at all.
    bare: Key,
}

fn setup(b: Backend) -> Option<Setup> {
    let srv = PdmServer::start(b, Config::default_test())?;
    srv.allocate(POOL, "acme", "192.0.2.10", None);
    let all = create_key(&srv, "upd", "hmac-sha256", Some(&policy(None, &[])));
    let all512 = create_key(&srv, "upd512", "hmac-sha512", Some(&policy(None, &[])));
    let acme = create_key(
        &srv,
        "acme-dns01",
        "hmac-sha256",
        Some(&policy(Some("_acme-challenge.*"), &["TXT"])),
    );
    let bare = create_key(&srv, "bare", "hmac-sha256", None);
    let dir = srv.dir.path().to_path_buf();
    let addr = srv.dns_addr;
    let probe = format!("update delete probe.{ZONE}. TXT");
    let in_force = wait_for(Duration::from_secs(10), || {
        [&all, &all512, &acme].iter().all(|k| {
            let s = send(
                Client::Nsupdate,
                &dir,
                addr,
                ZONE,
                Some(k),
                false,
                &[&probe],
            );
            !s.out.contains("NOTAUTH") && !s.out.contains("BADKEY")
        })
    });
    assert!(in_force, "keys not in force:\n{}", tail(&srv.log(), 3000));
    Some(Setup {
        srv,
        all,
        all512,
        acme,
        bare,
    })
}

fn nsupdate_and_knsupdate(b: Backend) {
    if !need(&["nsupdate", "knsupdate", "dig"]) {
        return;
    }
    let Some(Setup {
        srv,
        all,
        all512,
        acme,
        bare,
    }) = setup(b)
    else {
        return;
    };
    let dir = srv.dir.path().to_path_buf();
    let addr = srv.dns_addr;
    let z = |s: &str| format!("{s}.{ZONE}.");
    for client in [Client::Nsupdate, Client::Knsupdate] {
        let tag = match client {
            Client::Nsupdate => "ns",
            Client::Knsupdate => "kn",
        };
        let www = z(&format!("www-{tag}"));
        let txt = z(&format!("txt-{tag}"));
        let fresh = z(&format!("fresh-{tag}"));
        let run = |key: Option<&Key>, tcp: bool, lines: &[&str]| {
            send(client, &dir, addr, ZONE, key, tcp, lines)
        };

        // Add over UDP: served when the client returns (no wait here).
        let before = serial(&srv);
        run(
            Some(&all),
            false,
            &[
                &format!("update add {www} 300 A 192.0.2.1"),
                &format!("update add {www} 300 A 192.0.2.2"),
                &format!("update add {txt} 300 TXT \"hello world\""),
            ],
        )
        .succeeded();
        assert_eq!(
            answers(&srv, &www, RecordType::A),
            ["192.0.2.1", "192.0.2.2"],
            "{client:?}"
        );
        assert_eq!(answers(&srv, &txt, RecordType::TXT), ["hello world"]);
        // A string that is not UTF-8 keeps its bytes, as served and as
        // stored (a change is applied from its stored form).
        let bin = z(&format!("bin-{tag}"));
        run(
            Some(&all),
            false,
            &[&format!("update add {bin} 300 TXT \"\\255A\\195\" \"ok\"")],
        )
        .succeeded();
        assert_eq!(dig_short(&dir, addr, &bin, "TXT"), "\"\\255A\\195\" \"ok\"");
        let after = serial(&srv);
        assert!(after > before, "serial {before} -> {after}");

        // The same over TCP, with the hmac-sha512 key.
        run(
            Some(&all512),
            true,
            &[&format!("update add {txt} 300 TXT \"second\"")],
        )
        .succeeded();
        assert_eq!(
            answers(&srv, &txt, RecordType::TXT),
            ["hello world", "second"]
        );

        // Prerequisites, each kind both ways; a failed one changes nothing.
        let add_fresh = format!("update add {fresh} 300 A 192.0.2.7");
        let cases: Vec<(String, Option<&str>)> = vec![
            (format!("prereq nxdomain {fresh}"), None),
            (format!("prereq nxdomain {www}"), Some("YXDOMAIN")),
            (format!("prereq yxdomain {www}"), None),
            (
                format!("prereq yxdomain {}", z("nowhere")),
                Some("NXDOMAIN"),
            ),
            (format!("prereq yxrrset {www} A"), None),
            (format!("prereq yxrrset {www} MX"), Some("NXRRSET")),
            (format!("prereq nxrrset {www} MX"), None),
            (format!("prereq nxrrset {www} A"), Some("YXRRSET")),
            (
                format!("prereq yxrrset {txt} TXT \"hello world\""),
                Some("NXRRSET"),
            ),
        ];
        for (prereq, fails) in &cases {
            let st = state(&srv);
            let sent = run(Some(&all), false, &[prereq, &add_fresh]);
            match fails {
                Some(rcode) => {
                    sent.failed_with(rcode);
                    assert_eq!(state(&srv), st, "{prereq}: the zone moved");
                }
                None => {
                    sent.succeeded();
                    assert_eq!(answers(&srv, &fresh, RecordType::A), ["192.0.2.7"]);
                    run(Some(&all), false, &[&format!("update delete {fresh}")]).succeeded();
                    assert!(absent(&srv, &fresh, RecordType::A), "{prereq}");
                }
            }
        }
        // The RRset-equals prerequisite holds with the whole RRset.
        let st = state(&srv);
        run(
            Some(&all),
            false,
            &[
                &format!("prereq yxrrset {www} A 192.0.2.2"),
                &format!("prereq yxrrset {www} A 192.0.2.1"),
                &format!("update add {www} 300 A 192.0.2.3"),
            ],
        )
        .succeeded();
        assert_eq!(answers(&srv, &www, RecordType::A).len(), 3);
        assert_ne!(state(&srv), st);

        // Delete one RR, an RRset, a name.
        run(
            Some(&all),
            false,
            &[&format!("update delete {www} A 192.0.2.3")],
        )
        .succeeded();
        assert_eq!(
            answers(&srv, &www, RecordType::A),
            ["192.0.2.1", "192.0.2.2"]
        );
        run(Some(&all), true, &[&format!("update delete {txt} TXT")]).succeeded();
        assert!(absent(&srv, &txt, RecordType::TXT));
        run(Some(&all), false, &[&format!("update delete {www}")]).succeeded();
        assert!(absent(&srv, &www, RecordType::A));

        // An SOA update is ignored: NOERROR, the SOA and serial unchanged.
        let st = state(&srv);
        run(
            Some(&all),
            false,
            &[&format!(
                "update add {ZONE}. 300 SOA ns9.example.test. h.example.test. 4000000000 1 1 1 1"
            )],
        )
        .succeeded();
        run(Some(&all), false, &[&format!("update delete {ZONE}. SOA")]).succeeded();
        assert_eq!(state(&srv), st, "an SOA update moved the zone");

        // CNAME next to other data: REFUSED, nothing changed.
        run(
            Some(&all),
            false,
            &[&format!("update add {www} 300 A 192.0.2.1")],
        )
        .succeeded();
        let st = state(&srv);
        run(
            Some(&all),
            false,
            &[
                &format!("update add {} 300 TXT \"part of it\"", z("other")),
                &format!("update add {www} 300 CNAME target.example.net."),
            ],
        )
        .failed_with("REFUSED");
        assert_eq!(state(&srv), st, "a refused update moved the zone");
        assert!(absent(&srv, &z("other"), RecordType::TXT));

        // Adding an apex NS, any DNSSEC type: REFUSED (pdm's records).
        run(
            Some(&all),
            false,
            &[&format!("update add {ZONE}. 300 NS ns9.example.net.")],
        )
        .failed_with("REFUSED");
        run(
            Some(&all),
            false,
            &[&format!(
                "update add {} 300 CDS 12345 13 2 {}",
                z("sub"),
                "AB".repeat(32)
            )],
        )
        .failed_with("REFUSED");
        run(
            Some(&all),
            false,
            &[&format!("update delete {ZONE}. RRSIG")],
        )
        .failed_with("REFUSED");
        // Deleting the apex NS is ignored (RFC 2136 §3.4.2.3/4): NOERROR, unchanged.
        run(Some(&all), true, &[&format!("update delete {ZONE}. NS")]).succeeded();
        assert_eq!(state(&srv), st);
        assert!(!answers(&srv, &format!("{ZONE}."), RecordType::NS).is_empty());

        // A bad secret and an unknown key: NOTAUTH.
        let wrong = Key {
            secret: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            ..all.clone()
        };
        let unknown = Key {
            name: "nobody".into(),
            ..all.clone()
        };
        // nsupdate prints the rcode (NOTAUTH), knsupdate the TSIG error
        // the NOTAUTH answer carries.
        for (k, tsig_error) in [(&wrong, "BADSIG"), (&unknown, "BADKEY")] {
            let sent = run(
                Some(k),
                false,
                &[&format!("update add {www} 300 A 192.0.2.9")],
            );
            sent.failed_with(match client {
                Client::Nsupdate => "NOTAUTH",
                Client::Knsupdate => tsig_error,
            });
        }
        // Unsigned, without a policy, outside the policy: REFUSED.
        for k in [None, Some(&bare), Some(&acme)] {
            run(k, false, &[&format!("update add {www} 300 A 192.0.2.9")]).failed_with("REFUSED");
        }
        assert_eq!(state(&srv), st, "a rejected update moved the zone");
        // The ACME key writes its TXT.
        let challenge = z(&format!("_acme-challenge.{tag}"));
        run(
            Some(&acme),
            false,
            &[&format!("update add {challenge} 60 TXT \"token\"")],
        )
        .succeeded();
        assert_eq!(answers(&srv, &challenge, RecordType::TXT), ["token"]);

        // A zone pdm does not serve: NOTAUTH.
        send(
            client,
            &dir,
            addr,
            "elsewhere.test",
            Some(&all),
            false,
            &["update add x.elsewhere.test. 300 A 192.0.2.1"],
        )
        .failed_with("NOTAUTH");
    }

    // Counted in /metrics, audited with the key as the author.
    let text = srv.request("GET", "/metrics", None, Body::None, &[]).text;
    for rcode in ["NOERROR", "REFUSED", "NOTAUTH", "YXDOMAIN", "NXRRSET"] {
        assert!(
            text.contains(&format!("pdm_dns_updates_total{{rcode=\"{rcode}\"}}")),
            "no {rcode} in /metrics:\n{text}"
        );
    }
    let log = srv.log();
    assert!(log.contains("rfc2136 update"), "no update log line");
    assert!(
        !log.contains(&all.secret) && !log.contains(&acme.secret),
        "a TSIG secret in the log"
    );
}

/// pebble, the ACME test server, validating DNS-01 through `dns`; stopped
/// (by its PID) when dropped.
struct Pebble {
    child: std::process::Child,
    /// The directory URL.
    url: String,
    /// The CA bundle that trusts pebble's HTTPS listener.
    cert: std::path::PathBuf,
}

impl Pebble {
    fn start(dir: &Path, dns: SocketAddr) -> Pebble {
        let cert = dir.join("pebble-cert.pem");
        let key = dir.join("pebble-key.pem");
        let mut openssl = Command::new("openssl");
        openssl.args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ]);
        openssl.args(["-subj", "/CN=localhost", "-addext"]);
        openssl.arg("subjectAltName=DNS:localhost,IP:127.0.0.1");
        openssl.arg("-keyout").arg(&key).arg("-out").arg(&cert);
        let (code, _, err) = run_bounded(openssl, "openssl", dir, CLIENT_TIMEOUT);
        assert_eq!(code, Some(0), "openssl: {err}");
        let port = free_tcp_port();
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{}", free_tcp_port()),
            "certificate": cert, "privateKey": key,
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_file = dir.join("pebble.json");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
        let child = Command::new(find_tool("pebble").expect("pebble"))
            .arg("-config")
            .arg(&config_file)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn pebble");
        let up = wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "pebble did not listen");
        Pebble {
            child,
            url: format!("https://127.0.0.1:{port}/dir"),
            cert,
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// The certificate at `path` covers `name` (openssl reads it).
fn assert_cert_for(path: &Path, name: &str, dir: &Path) {
    let mut cmd = Command::new("openssl");
    cmd.args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(path);
    let (code, out, err) = run_bounded(cmd, "openssl x509", dir, CLIENT_TIMEOUT);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("DNS:{name}")), "{out}");
}

fn acme_dns01(b: Backend) {
    if !need(&["pebble", "lego", "certbot", "openssl", "nsupdate"]) {
        return;
    }
    let Some(Setup { srv, acme, .. }) = setup(b) else {
        return;
    };
    let dir = srv.dir.path().to_path_buf();
    let addr = srv.dns_addr;
    let wildcard = format!("*.{ZONE}");
    let pebble = Pebble::start(&dir, addr);
    let pebble_log = || std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default();

    // The ACME key cannot write an A record.
    let st = state(&srv);
    send(
        Client::Nsupdate,
        &dir,
        addr,
        ZONE,
        Some(&acme),
        false,
        &[&format!("update add www.{ZONE}. 300 A 192.0.2.66")],
    )
    .failed_with("REFUSED");
    assert_eq!(state(&srv), st);

    // lego, rfc2136 provider.
    let mut lego = Command::new(find_tool("lego").expect("lego"));
    lego.env("RFC2136_NAMESERVER", addr.to_string())
        .env("RFC2136_TSIG_KEY", format!("{}.", acme.name))
        .env("RFC2136_TSIG_SECRET", &acme.secret)
        .env("RFC2136_TSIG_ALGORITHM", "hmac-sha256.")
        .env("RFC2136_TTL", "60")
        .env("LEGO_CA_CERTIFICATES", &pebble.cert)
        .args([
            "--server",
            &pebble.url,
            "--accept-tos",
            "--email",
            "t@example.net",
        ])
        .arg("--path")
        .arg(dir.join("lego"))
        .args(["--dns", "rfc2136", "--dns.resolvers", &addr.to_string()])
        .args(["--dns.disable-cp", "-d", &wildcard, "run"]);
    let (code, out, err) = run_bounded(lego, "lego", &dir, Duration::from_secs(120));
    assert_eq!(
        code,
        Some(0),
        "lego:\n{out}\n{err}\npebble:\n{}\npdm:\n{}",
        pebble_log(),
        tail(&srv.log(), 4000)
    );
    let crt = dir.join("lego/certificates").join(format!("_.{ZONE}.crt"));
    assert_cert_for(&crt, &wildcard, &dir);

    // certbot, certbot-dns-rfc2136.
    let creds = dir.join("rfc2136.ini");
    std::fs::write(
        &creds,
        format!(
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {}\n\
             dns_rfc2136_name = {}.\ndns_rfc2136_secret = {}\n\
             dns_rfc2136_algorithm = HMAC-SHA256\n",
            addr.port(),
            acme.name,
            acme.secret
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let certbot_dir = dir.join("certbot");
    let mut certbot = Command::new(find_tool("certbot").expect("certbot"));
    certbot
        .env("REQUESTS_CA_BUNDLE", &pebble.cert)
        .args(["certonly", "--non-interactive", "--agree-tos"])
        .args(["--email", "t@example.net", "--server", &pebble.url])
        .args(["--dns-rfc2136", "--dns-rfc2136-credentials"])
        .arg(&creds)
        .args(["--dns-rfc2136-propagation-seconds", "1"])
        .arg("--config-dir")
        .arg(certbot_dir.join("config"))
        .arg("--work-dir")
        .arg(certbot_dir.join("work"))
        .arg("--logs-dir")
        .arg(certbot_dir.join("logs"))
        .args(["-d", &wildcard]);
    let (code, out, err) = run_bounded(certbot, "certbot", &dir, Duration::from_secs(120));
    assert_eq!(
        code,
        Some(0),
        "certbot:\n{out}\n{err}\npebble:\n{}\npdm:\n{}",
        pebble_log(),
        tail(&srv.log(), 4000)
    );
    let live = certbot_dir.join(format!("config/live/{ZONE}/fullchain.pem"));
    assert_cert_for(&live, &wildcard, &dir);

    // Both cleaned up after themselves: the challenge RRset is gone.
    assert!(absent(
        &srv,
        &format!("_acme-challenge.{ZONE}."),
        RecordType::TXT
    ));
    let log = srv.log();
    assert!(
        log.contains("credential=tsig:acme-dns01"),
        "no audit of the key"
    );
    drop(pebble);
}

/// A key's cached policy never outlives the key: deleted by another
/// process (the CLI) or through the API, the next UPDATE with it changes
/// nothing; made again under its name with a narrower policy, the new
/// policy holds at once.
fn deleted_and_remade_keys_take_effect(b: Backend) {
    if !need(&["nsupdate"]) {
        return;
    }
    let Some(Setup { srv, all, .. }) = setup(b) else {
        return;
    };
    let dir = srv.dir.path().to_path_buf();
    let addr = srv.dns_addr;
    let run = |key: &Key, line: &str| {
        send(
            Client::Nsupdate,
            &dir,
            addr,
            ZONE,
            Some(key),
            false,
            &[line],
        )
    };
    let add_a = |n: &str| format!("update add {n}.{ZONE}. 300 A 192.0.2.9");
    let add_txt = format!("update add _acme-challenge.{ZONE}. 300 TXT \"tok\"");

    // Cached by two updates, then deleted behind the server's back.
    run(&all, &add_a("c1")).succeeded();
    run(&all, &add_a("c2")).succeeded();
    let out = srv.cli(&["tsig", "delete", &all.name]);
    assert!(out.success(), "{out:?}");
    let before = state(&srv);
    assert!(!run(&all, &add_a("c3")).ok, "a deleted key wrote");
    assert_eq!(state(&srv), before, "a deleted key changed the zone");

    // Made again under the same name, TXT at _acme-challenge only.
    let narrow = create_key(
        &srv,
        &all.name,
        "hmac-sha256",
        Some(&policy(Some("_acme-challenge.*"), &["TXT"])),
    );
    let in_force = wait_for(Duration::from_secs(10), || run(&narrow, &add_txt).ok);
    assert!(
        in_force,
        "the new key never worked:\n{}",
        tail(&srv.log(), 3000)
    );
    let before = state(&srv);
    run(&narrow, &add_a("c4")).failed_with("REFUSED");
    assert_eq!(state(&srv), before, "the old policy still applied");

    // Deleted through the API: refused from the next message on.
    let admin = srv.admin_token();
    let r = srv.request(
        "DELETE",
        &format!("/api/v1/tsig-keys/{}", narrow.name),
        Some(&admin),
        Body::None,
        &[],
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let before = state(&srv);
    assert!(!run(&narrow, &add_txt).ok, "a deleted key wrote");
    assert_eq!(state(&srv), before);
}

backend_tests!(
    nsupdate_and_knsupdate,
    acme_dns01,
    deleted_and_remade_keys_take_effect
);
