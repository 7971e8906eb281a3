//! Real DNSSEC validators and zone verifiers, run as subprocesses against a pdm server or a
//! signed zone dump.
//!
//! - [`delv`]: BIND's validating lookup with a static-ds trust anchor (`+root=ZONE`).
//! - [`unbound_host`]: libunbound with a trust-anchor file and stub zones pointing at the server.
//! - [`verify_zone_file`]: ldns-verify-zone, dnssec-verify -z, kzonecheck -d on.
//! - [`dig_dnssec`]: a `dig` subprocess (DO bit and other flags under the caller's control).
//!
//! Tools missing: [`have_tools`] prints `SKIP: ...` and returns false outside CI, panics when `CI`
//! is set (same policy as Postgres in the harness).
//!
//! Each validator call writes its own config into a fresh temp directory, so calls can run
//! concurrently ([`par_map`]).

use super::{wait_for, PdmServer};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Upper bound for one validator / verifier run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Directories searched after `PATH` (several of these tools live in sbin on Debian).
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"];

/// Absolute path of `name` on `PATH` or in the sbin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether all `tools` are installed. Missing outside CI: prints `SKIP: ...` and returns false
/// (the caller returns early). Missing with `CI` set: panics.
pub fn have_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "DNSSEC validator tools missing but CI is set: {missing:?} \
             (scripts/test installs bind9-dnsutils, bind9-utils, unbound-host, ldnsutils, knot-dnssecutils)"
        );
    }
    eprintln!("SKIP: DNSSEC tools not installed: {missing:?} (test skipped)");
    false
}

/// Output of one tool run.
#[derive(Debug, Clone)]
pub struct ToolOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ToolOut {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout then stderr, for assertions and failure messages.
    pub fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Run `tool args...` in `cwd` with a clean stdin, bounded by [`TOOL_TIMEOUT`].
pub fn run_tool(tool: &str, args: &[String], cwd: &Path) -> ToolOut {
    let exe = find_tool(tool).unwrap_or_else(|| panic!("{tool} not installed"));
    let mut cmd = Command::new(&exe);
    cmd.args(args);
    let (code, stdout, stderr) =
        super::run_bounded(cmd, &format!("{tool} {args:?}"), cwd, TOOL_TIMEOUT);
    ToolOut {
        code,
        stdout,
        stderr,
    }
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

/// Map `f` over `items` with at most `workers` threads; results in input order.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                out.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item mapped"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Trust anchors
// ---------------------------------------------------------------------------------------------

/// One DS record parsed from `pdm key ds` output (`owner [ttl] [IN] DS tag alg dt hex`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsLine {
    pub owner: String,
    pub key_tag: u16,
    pub algorithm: u8,
    pub digest_type: u8,
    pub digest: String,
}

/// Parse DS presentation lines; panics on a line that is not a DS record (blank lines ignored).
pub fn parse_ds_lines(lines: &[String]) -> Vec<DsLine> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            let i = t
                .iter()
                .position(|x| x.eq_ignore_ascii_case("DS"))
                .unwrap_or_else(|| panic!("not a DS line: {l:?}"));
            assert!(i >= 1 && t.len() >= i + 5, "malformed DS line: {l:?}");
            let mut owner = t[0].to_lowercase();
            if !owner.ends_with('.') {
                owner.push('.');
            }
            DsLine {
                owner,
                key_tag: t[i + 1]
                    .parse()
                    .unwrap_or_else(|_| panic!("DS key tag in {l:?}")),
                algorithm: t[i + 2]
                    .parse()
                    .unwrap_or_else(|_| panic!("DS alg in {l:?}")),
                digest_type: t[i + 3]
                    .parse()
                    .unwrap_or_else(|_| panic!("DS digest type in {l:?}")),
                digest: t[i + 4..].concat(),
            }
        })
        .collect()
}

/// A BIND `trust-anchors { ... static-ds ... };` clause for delv `-a`.
pub fn delv_anchor_conf(anchor_ds_lines: &[String]) -> String {
    let ds = parse_ds_lines(anchor_ds_lines);
    assert!(!ds.is_empty(), "no DS lines for the trust anchor");
    let mut s = String::from("trust-anchors {\n");
    for d in ds {
        s.push_str(&format!(
            "  {} static-ds {} {} {} \"{}\";\n",
            d.owner, d.key_tag, d.algorithm, d.digest_type, d.digest
        ));
    }
    s.push_str("};\n");
    s
}

// ---------------------------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------------------------

/// What one validator said about one query.
#[derive(Debug, Clone)]
pub struct Validation {
    /// `delv` or `unbound-host`.
    pub tool: &'static str,
    /// `NAME TYPE`.
    pub query: String,
    /// A validated, non-empty answer (no failure, insecure or bogus text).
    pub secure_positive: bool,
    /// A validated denial: NXDOMAIN or NODATA (no failure, insecure or bogus text).
    pub secure_negative: bool,
    /// Everything the tool printed (stdout then stderr).
    pub raw: String,
}

impl Validation {
    #[track_caller]
    pub fn assert_secure_positive(&self) {
        self.assert_secure(self.secure_positive, "positive");
    }

    #[track_caller]
    pub fn assert_secure_negative(&self) {
        self.assert_secure(self.secure_negative, "negative");
    }

    #[track_caller]
    fn assert_secure(&self, validated: bool, kind: &str) {
        assert!(
            validated,
            "{} {}: want a validated (secure) {kind} answer, got:\n{}",
            self.tool, self.query, self.raw
        );
    }

    /// Assert the output mentions each of `needles` (case-insensitive), e.g. an address.
    #[track_caller]
    pub fn assert_mentions(&self, needles: &[&str]) {
        let l = self.raw.to_lowercase();
        for n in needles {
            assert!(
                l.contains(&n.to_lowercase()),
                "{} {}: output does not mention {n:?}:\n{}",
                self.tool,
                self.query,
                self.raw
            );
        }
    }

    /// One-line verdict for failure reports.
    pub fn verdict(&self) -> &'static str {
        match (self.secure_positive, self.secure_negative) {
            (true, _) => "secure positive",
            (_, true) => "secure negative",
            _ => "NOT VALIDATED",
        }
    }
}

/// Run the validator `tool` with `args` in `dir`; returns its output and the transcript
/// (`$ tool args`, exit code, stdout then stderr) that starts [`Validation::raw`].
fn run_validator(tool: &str, args: &[String], dir: &Path) -> (ToolOut, String) {
    let out = run_tool(tool, args, dir);
    let raw = format!(
        "$ {tool} {}\n[exit {:?}]\n{}",
        args.join(" "),
        out.code,
        out.both()
    );
    (out, raw)
}

/// `raw` lower-cased with the query name removed, so a name like `insecure.x.test` cannot
/// trigger (or hide) a failure marker.
fn scrub(raw: &str, name: &str) -> String {
    let n = name.trim_end_matches('.').to_lowercase();
    let l = raw.to_lowercase();
    if n.is_empty() {
        l
    } else {
        l.replace(&n, "<qname>")
    }
}

/// Text that means delv did not fully validate. delv reports every negative answer, validated
/// or not, as `;; resolution failed: ncache nxdomain` / `ncache nxrrset`: those lines are not
/// failures (the `; negative response, fully validated` line is what proves the denial).
fn delv_failed(raw: &str, name: &str) -> bool {
    let l: String = scrub(raw, name)
        .lines()
        .filter(|l| {
            let t = l.trim();
            t != ";; resolution failed: ncache nxdomain"
                && t != ";; resolution failed: ncache nxrrset"
        })
        .collect::<Vec<_>>()
        .join("\n");
    [
        "resolution failed",
        "validation failure",
        "insecure",
        "bogus",
        "unsigned answer",
        "broken trust chain",
        "no valid signature",
        "no valid rrsig",
        "failed",
    ]
    .iter()
    .any(|m| l.contains(m))
}

/// `delv @ADDR -p PORT -a anchors +root=ROOT NAME QTYPE` with the DS lines as static-ds anchors.
/// delv exits 0 even when validation fails, so the verdict comes from its text only:
/// `; fully validated` (positive) or `; negative response, fully validated` (negative).
pub fn delv(
    addr: SocketAddr,
    anchor_ds_lines: &[String],
    root_zone: &str,
    name: &str,
    qtype: &str,
) -> Validation {
    let dir = tempdir("pdm-delv-");
    let anchor = dir.path().join("anchor.conf");
    fs::write(&anchor, delv_anchor_conf(anchor_ds_lines)).unwrap();
    let args: Vec<String> = vec![
        format!("@{}", addr.ip()),
        "-p".into(),
        addr.port().to_string(),
        "-a".into(),
        anchor.display().to_string(),
        format!("+root={}", root_zone.trim_end_matches('.')),
        name.to_string(),
        qtype.to_string(),
    ];
    let (out, raw) = run_validator("delv", &args, dir.path());
    let body = out.both();
    let failed = delv_failed(&body, name) || !out.success();
    let negative = body.contains("; negative response, fully validated");
    let positive = body.lines().any(|l| l.trim() == "; fully validated");
    Validation {
        tool: "delv",
        query: format!("{name} {qtype}"),
        secure_positive: !failed && positive && !negative,
        secure_negative: !failed && negative && !positive,
        raw,
    }
}

/// An unbound config for [`unbound_host`]: validator + iterator, the trust anchor file, `.test`
/// not locally served, and one stub zone per entry of `stub_zones`, all at `addr`.
pub fn unbound_conf(dir: &Path, addr: SocketAddr, ta_file: &Path, stub_zones: &[&str]) -> String {
    let mut s = format!(
        r#"server:
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-ip6: no
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor-file: "{ta}"
  val-log-level: 2
  local-zone: "test." nodefault
"#,
        dir = dir.display(),
        ta = ta_file.display(),
    );
    for z in stub_zones {
        s.push_str(&format!(
            "stub-zone:\n  name: \"{}\"\n  stub-addr: {}@{}\n",
            z.trim_end_matches('.'),
            addr.ip(),
            addr.port()
        ));
    }
    s
}

/// Text that means unbound-host did not validate securely.
fn unbound_failed(raw: &str, name: &str) -> bool {
    let l = scrub(raw, name);
    [
        "bogus",
        "insecure",
        "validation failure",
        "servfail",
        "error",
        "timed out",
    ]
    .iter()
    .any(|m| l.contains(m))
}

/// `unbound-host -C conf -v -t QTYPE NAME`: every output line must end with `(secure)`;
/// `not found` / `has no ... record` makes it a negative answer.
pub fn unbound_host(
    addr: SocketAddr,
    anchor_ds_lines: &[String],
    stub_zones: &[&str],
    name: &str,
    qtype: &str,
) -> Validation {
    let dir = tempdir("pdm-unbound-");
    let ta = dir.path().join("ta.ds");
    let mut ta_text = String::new();
    for l in anchor_ds_lines.iter().filter(|l| !l.trim().is_empty()) {
        parse_ds_lines(std::slice::from_ref(l)); // panics on a non-DS line
        ta_text.push_str(l.trim());
        ta_text.push('\n');
    }
    fs::write(&ta, ta_text).unwrap();
    let conf = dir.path().join("unbound.conf");
    fs::write(&conf, unbound_conf(dir.path(), addr, &ta, stub_zones)).unwrap();
    let args: Vec<String> = vec![
        "-C".into(),
        conf.display().to_string(),
        "-v".into(),
        "-t".into(),
        qtype.to_string(),
        name.to_string(),
    ];
    let (out, mut raw) = run_validator("unbound-host", &args, dir.path());
    let body = out.both();
    raw.push_str(&format!(
        "\n[config]\n{}",
        fs::read_to_string(&conf).unwrap_or_default()
    ));
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let all_secure = !lines.is_empty() && lines.iter().all(|l| l.ends_with("(secure)"));
    let denial = lines
        .iter()
        .any(|l| l.contains("not found") || l.contains(" has no "));
    let ok = out.success() && all_secure && !unbound_failed(&body, name);
    Validation {
        tool: "unbound-host",
        query: format!("{name} {qtype}"),
        secure_positive: ok && !denial,
        secure_negative: ok && denial,
        raw,
    }
}

/// Both validators on one query: delv with `+root=anchor zone`, unbound-host with `stub_zones`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    Delv,
    UnboundHost,
}

impl Validator {
    pub fn tool(self) -> &'static str {
        match self {
            Validator::Delv => "delv",
            Validator::UnboundHost => "unbound-host",
        }
    }

    /// Validate `name qtype` against the server at `addr`, trusting `anchor_ds_lines`
    /// (whose owner is the trust-anchor zone); `stub_zones` only matter for unbound-host.
    pub fn validate(
        self,
        addr: SocketAddr,
        anchor_ds_lines: &[String],
        stub_zones: &[&str],
        name: &str,
        qtype: &str,
    ) -> Validation {
        match self {
            Validator::Delv => {
                let ds = parse_ds_lines(anchor_ds_lines);
                let root = ds.first().expect("anchor DS").owner.clone();
                delv(addr, anchor_ds_lines, &root, name, qtype)
            }
            Validator::UnboundHost => unbound_host(addr, anchor_ds_lines, stub_zones, name, qtype),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Zone-file verifiers
// ---------------------------------------------------------------------------------------------

/// Run ldns-verify-zone, `dnssec-verify -z -o ORIGIN` and `kzonecheck -o ORIGIN -d on` on a
/// signed master file; panics with every tool's output unless all three accept it.
#[track_caller]
pub fn verify_zone_file(path: &Path, origin: &str) {
    let origin = origin.trim_end_matches('.');
    let cwd = path.parent().unwrap_or(Path::new("."));
    let file = path.display().to_string();
    let runs: Vec<(&str, Vec<String>, Option<&str>)> = vec![
        (
            "ldns-verify-zone",
            vec![file.clone()],
            Some("Zone is verified and complete"),
        ),
        (
            "dnssec-verify",
            vec!["-z".into(), "-o".into(), origin.into(), file.clone()],
            Some("Zone fully signed"),
        ),
        (
            "kzonecheck",
            vec![
                "-o".into(),
                origin.into(),
                "-d".into(),
                "on".into(),
                file.clone(),
            ],
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (tool, args, want) in &runs {
        let out = run_tool(tool, args, cwd);
        let text = out.both();
        let ok = out.success() && want.map(|w| text.contains(w)).unwrap_or(true);
        if !ok {
            failures.push(format!(
                "$ {tool} {}\n[exit {:?}]\n{text}",
                args.join(" "),
                out.code
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "signed zone {origin} ({file}) rejected by {} verifier(s):\n{}\n--- zone file (first 6000 bytes) ---\n{}",
        failures.len(),
        failures.join("\n"),
        fs::read_to_string(path)
            .unwrap_or_default()
            .chars()
            .take(6000)
            .collect::<String>()
    );
}

// ---------------------------------------------------------------------------------------------
// dig subprocess
// ---------------------------------------------------------------------------------------------

/// One record line of `dig +noall +answer +authority +additional` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigLine {
    /// `ANSWER`, `AUTHORITY` or `ADDITIONAL`.
    pub section: String,
    pub owner: String,
    pub rtype: String,
    pub rdata: String,
}

/// A `dig` subprocess answer: rcode, header flags, records by section.
#[derive(Debug, Clone)]
pub struct DigOut {
    pub rcode: String,
    pub flags: Vec<String>,
    /// Whether the response carried an OPT record with the DO bit (`flags: do` in the OPT line).
    pub do_bit: bool,
    pub records: Vec<DigLine>,
    pub raw: String,
}

impl DigOut {
    pub fn types_in(&self, section: &str) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| r.section == section)
            .map(|r| r.rtype.clone())
            .collect()
    }

    pub fn has_type(&self, rtype: &str) -> bool {
        self.records.iter().any(|r| r.rtype == rtype)
    }
}

/// `dig @ADDR -p PORT +norec +time=2 +tries=3 FLAGS... NAME QTYPE`, parsed. `flags` are dig
/// options such as `+dnssec`, `+noedns`, `+tcp`.
pub fn dig_dnssec(addr: SocketAddr, name: &str, qtype: &str, flags: &[&str]) -> DigOut {
    let dir = tempdir("pdm-dig-");
    let mut args: Vec<String> = vec![
        format!("@{}", addr.ip()),
        "-p".into(),
        addr.port().to_string(),
        "+norec".into(),
        "+time=2".into(),
        "+tries=3".into(),
        "+nocmd".into(),
        "+nostats".into(),
        "+nomultiline".into(),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    args.push(name.into());
    args.push(qtype.into());
    let out = run_tool("dig", &args, dir.path());
    assert!(
        out.success(),
        "dig {} failed: {:?}\n{}",
        args.join(" "),
        out.code,
        out.both()
    );
    let raw = format!("$ dig {}\n{}", args.join(" "), out.stdout);
    let mut rcode = String::new();
    let mut flags_v = Vec::new();
    let mut do_bit = false;
    let mut section = String::new();
    let mut records = Vec::new();
    for line in out.stdout.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix(";; ->>HEADER<<-") {
            if let Some(i) = rest.find("status: ") {
                rcode = rest[i + 8..]
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
            }
        } else if let Some(rest) = l.strip_prefix(";; flags:") {
            let f = rest.split(';').next().unwrap_or("");
            flags_v = f.split_whitespace().map(|s| s.to_string()).collect();
        } else if l.starts_with("; EDNS:") {
            if let Some(i) = l.find("flags:") {
                do_bit = l[i + 6..]
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .any(|f| f == "do");
            }
        } else if let Some(sec) = l
            .strip_prefix(";; ")
            .and_then(|r| r.strip_suffix(" SECTION:"))
        {
            section = sec.to_string();
        } else if l.is_empty() || l.starts_with(';') {
            continue;
        } else if !section.is_empty() && section != "QUESTION" && section != "OPT PSEUDOSECTION" {
            let t: Vec<&str> = l.split_whitespace().collect();
            // owner ttl class type rdata...
            if t.len() >= 4 {
                records.push(DigLine {
                    section: section.clone(),
                    owner: t[0].to_lowercase(),
                    rtype: t[3].to_uppercase(),
                    rdata: t[4..].join(" "),
                });
            }
        }
    }
    DigOut {
        rcode,
        flags: flags_v,
        do_bit,
        records,
        raw,
    }
}

// ---------------------------------------------------------------------------------------------
// pdm helpers shared by the DNSSEC suites
// ---------------------------------------------------------------------------------------------

/// A zone change (import, commit, release) must be served within this long.
pub const SERVE_DEADLINE: Duration = Duration::from_secs(5);

/// `pdm key ds ZONE` lines (checked to be DS records for `zone`).
#[track_caller]
pub fn ds_lines(srv: &PdmServer, zone: &str) -> Vec<String> {
    let out = srv.cli(&["key", "ds", zone]);
    assert!(out.success(), "pdm key ds {zone} failed: {out:?}");
    let lines: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    assert!(
        !lines.is_empty(),
        "pdm key ds {zone} printed no DS: {out:?}"
    );
    for d in parse_ds_lines(&lines) {
        assert_eq!(d.owner, format!("{zone}."), "DS owner in {lines:?}");
    }
    lines
}

/// Import `file` as `zone`, signed with `denial`, and wait until the running server serves its
/// signed DNSKEY RRset.
#[track_caller]
pub fn import_signed(srv: &PdmServer, zone: &str, file: &Path, denial: &str) {
    let f = file.display().to_string();
    let out = srv.cli(&[
        "zone", "import", "--zone", zone, "--sign", "--denial", denial, &f,
    ]);
    assert!(
        out.success(),
        "pdm zone import --sign --denial {denial} {zone} failed: {out:?}"
    );
    let mut last = None;
    let served = wait_for(SERVE_DEADLINE, || {
        let r = dig_dnssec(srv.dns_addr, zone, "DNSKEY", &["+dnssec"]);
        let ok = r.rcode == "NOERROR"
            && r.types_in("ANSWER").contains(&"DNSKEY".to_string())
            && r.types_in("ANSWER").contains(&"RRSIG".to_string());
        last = Some(r);
        ok
    });
    assert!(
        served,
        "imported zone {zone} not served signed within {SERVE_DEADLINE:?}; last DNSKEY answer:\n{}",
        last.map(|r| r.raw).unwrap_or_default()
    );
}
