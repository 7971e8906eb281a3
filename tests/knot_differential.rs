//! Differential test: the same zone (tests/data/diff.test.zone) served by pdm and by Knot DNS,
//! the same queries (tests/data/diff.queries) sent to both over UDP (and over TCP where both
//! truncate), answers compared header flag by header flag and section by section.
//!
//! Records are compared as sorted lists of normalised RRs: `owner ttl class type rdata` with
//! the owner (and domain names inside rdata) lowercased; TXT/HINFO strings are rendered
//! string by string so `"a" "b"` and `"ab"` differ. TTLs are compared, except that the SOA
//! TTL of a negative answer is normalised to `min(SOA TTL, SOA MINIMUM)` (RFC 2308 §3, §5).
//! The OPT record is ignored except for its presence.
//!
//! Where the two servers may legitimately differ, the difference is accepted only through
//! an entry of [`ALLOWANCES`] (each names the RFC that justifies it); everything else must
//! match. On failure the test prints a readable diff and writes the full report to
//! `$CARGO_TARGET_TMPDIR/knot_differential.report`.
//!
//! Needs `knotd` (Debian package `knot`). Without it the test is skipped with a loud
//! message, unless `CI` is set, in which case it fails.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

const ZONE_NAME: &str = "diff.test";
/// EDNS payload sent with every EDNS query: pdm caps its UDP answers at 1232 bytes, so
/// announcing the same size to both servers keeps the truncation decisions comparable.
const EDNS_PAYLOAD: u16 = 1232;
const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// Bound on the whole comparison (two servers, ~300 queries).
const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// Queries additionally sent without EDNS (512-byte limit applies), `(name, type, RD)`.
const NO_EDNS_QUERIES: &[(&str, &str, bool)] = &[
    ("diff.test", "SOA", false),
    ("diff.test", "NS", false),
    ("www.diff.test", "A", false),
    ("www.diff.test", "A", true),
    ("med.diff.test", "TXT", false),
    ("big.diff.test", "TXT", false),
    ("nope.diff.test", "A", false),
    ("host.sub.diff.test", "A", true),
    ("chain1.diff.test", "A", false),
    ("example.com", "A", false),
];

// ---------------------------------------------------------------------------------------
// Allow-list of legitimate differences.
// ---------------------------------------------------------------------------------------

/// One accepted class of difference between pdm and Knot.
struct Allowance {
    id: &'static str,
    rfc: &'static str,
    what: &'static str,
}

const ALLOW_ANY_MINIMAL: Allowance = Allowance {
    id: "any-minimal",
    rfc: "RFC 8482 §4.1-4.2",
    what: "QTYPE=ANY at a name with data: both may answer with a subset of the RRsets at the \
           name (Knot 3.2 returns one RRset) or a synthesised `HINFO \"RFC8482\" \"\"`. When \
           the choices differ, every RRset pdm returns must equal Knot's answer for that exact \
           type (asked over TCP), TC is not compared (the chosen RRset decides it) and neither \
           is the additional section; rcode, AA and authority must still match.",
};
const ALLOW_TRUNCATED: Allowance = Allowance {
    id: "truncated-sections",
    rfc: "RFC 2181 §9, RFC 6891 §7",
    what: "when both servers set TC=1 over UDP the sections are not compared (the client must \
           discard them and retry over TCP); the query is then re-asked over TCP and that \
           answer is compared strictly.",
};
const ALLOW_OPTIONAL_ADDITIONAL: Allowance = Allowance {
    id: "optional-additional",
    rfc: "RFC 1034 §4.3.2 step 6, RFC 2181 §5.4.1, RFC 9471 §3",
    what: "in authoritative (non-referral) answers the additional A/AAAA records for NS/MX/SRV \
           targets are optional: pdm's additional section may be a subset of Knot's \
           (A/AAAA only).",
};
const ALLOW_SIBLING_GLUE: Allowance = Allowance {
    id: "sibling-glue",
    rfc: "RFC 9471 §2.2",
    what: "in referrals, glue for name servers that are in the zone but not below the \
           delegation point (sibling glue) MAY be omitted; in-bailiwick glue below the cut \
           must match (RFC 9471 §2.1).",
};
const ALLOW_NEGATIVE_SOA_TTL: Allowance = Allowance {
    id: "negative-soa-ttl",
    rfc: "RFC 2308 §3, §5",
    what: "the TTL of the SOA in the authority section of NXDOMAIN/NODATA answers is compared \
           as min(SOA TTL, SOA MINIMUM), which is what a resolver caches either way.",
};

const ALLOWANCES: &[&Allowance] = &[
    &ALLOW_ANY_MINIMAL,
    &ALLOW_TRUNCATED,
    &ALLOW_OPTIONAL_ADDITIONAL,
    &ALLOW_SIBLING_GLUE,
    &ALLOW_NEGATIVE_SOA_TTL,
];

// ---------------------------------------------------------------------------------------
// Server processes, stopped by PID on drop.
// ---------------------------------------------------------------------------------------

struct ServerProcess {
    label: &'static str,
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    fn spawn(label: &'static str, mut cmd: Command, log: PathBuf) -> ServerProcess {
        let out = std::fs::File::create(&log).expect("create server log");
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e} ({cmd:?})"));
        ServerProcess { label, child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the server log if the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} (pid {}) exited early with {status}; log:\n{}",
                self.label,
                self.pid(),
                read_log(&self.log)
            );
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        common::terminate(&mut self.child);
    }
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(60);
    lines[start..].join("\n")
}

fn free_port() -> u16 {
    // A port free for both UDP and TCP on 127.0.0.1 (the servers bind both).
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn find_knotd() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KNOTD") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|d| Path::new(d).join("knotd"))
        .find(|p| p.is_file());
    found
}

fn start_knot(dir: &Path, zone_file: &Path, knotd: &Path) -> (ServerProcess, SocketAddr) {
    let port = free_port();
    let run = dir.join("knot-run");
    let db = dir.join("knot-db");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let conf = format!(
        r#"server:
    rundir: "{run}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{db}"
template:
  - id: default
    semantic-checks: on
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: {zone}
    file: "{file}"
"#,
        run = run.display(),
        db = db.display(),
        zone = ZONE_NAME,
        file = zone_file.display()
    );
    let conf_path = dir.join("knot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(knotd);
    cmd.arg("-c").arg(&conf_path);
    let proc_ = ServerProcess::spawn("knotd", cmd, dir.join("knotd.log"));
    (proc_, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Waits until `addr` answers `diff.test SOA` authoritatively.
fn wait_dns_ready(server: &mut ServerProcess, addr: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    let name = Name::from_ascii("diff.test.").unwrap();
    loop {
        server.assert_running();
        let q = build_query(1, &name, RecordType::SOA, true, false);
        if let Ok(resp) = udp_exchange(addr, &q, Duration::from_millis(300)) {
            if resp.metadata.response_code == ResponseCode::NoError && !resp.answers.is_empty() {
                return;
            }
        }
        if Instant::now() > deadline {
            panic!(
                "{} on {addr} did not serve {ZONE_NAME} within {within:?}; log:\n{}",
                server.label,
                read_log(&server.log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pdm_command(db_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pdm"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PDM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd.arg("--database").arg(db_url);
    cmd
}

fn run_checked(label: &str, mut cmd: Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{label}: cannot run: {e}"));
    if !out.status.success() {
        panic!(
            "{label} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn start_pdm(dir: &Path, zone_file: &Path) -> (ServerProcess, SocketAddr) {
    let db_url = format!("sqlite://{}", dir.join("pdm.db").display());
    let mut import = pdm_command(&db_url);
    import
        .current_dir(dir)
        .args(["zone", "import", "--zone", ZONE_NAME])
        .arg(zone_file);
    run_checked("pdm zone import", import);

    let dns_port = free_port();
    let http_port = free_port();
    let mut serve = pdm_command(&db_url);
    serve
        .current_dir(dir)
        .arg("serve")
        .arg("--dns")
        .arg(format!("127.0.0.1:{dns_port}"))
        .arg("--http")
        .arg(format!("127.0.0.1:{http_port}"));
    let mut proc_ = ServerProcess::spawn("pdm serve", serve, dir.join("pdm.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        proc_.assert_running();
        if http_status(http_port, "/readyz") == Some(200) {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "pdm: /readyz not 200 within 60 s; log:\n{}",
                read_log(&proc_.log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc_, SocketAddr::from(([127, 0, 0, 1], dns_port)))
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Wire exchange.
// ---------------------------------------------------------------------------------------

fn build_query(id: u16, name: &Name, rtype: RecordType, edns: bool, rd: bool) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = rd;
    let mut q = Query::query(name.clone(), rtype);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(EDNS_PAYLOAD);
        e.set_version(0);
        msg.set_edns(e);
    }
    msg.to_vec().expect("encode query")
}

fn query_id(wire: &[u8]) -> u16 {
    u16::from_be_bytes([wire[0], wire[1]])
}

fn udp_exchange(addr: SocketAddr, wire: &[u8], timeout: Duration) -> Result<Message, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    sock.send_to(wire, addr).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65535];
    let deadline = Instant::now() + timeout;
    loop {
        let (n, from) = sock.recv_from(&mut buf).map_err(|e| format!("udp: {e}"))?;
        if from != addr || n < 2 || query_id(&buf[..n]) != query_id(wire) {
            if Instant::now() > deadline {
                return Err("udp: no matching answer".into());
            }
            continue;
        }
        return Message::from_vec(&buf[..n]).map_err(|e| format!("unparsable answer: {e}"));
    }
}

fn tcp_exchange(addr: SocketAddr, wire: &[u8], timeout: Duration) -> Result<Message, String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("tcp: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(wire);
    s.write_all(&framed).map_err(|e| format!("tcp: {e}"))?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(|e| format!("tcp: {e}"))?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).map_err(|e| format!("tcp: {e}"))?;
    Message::from_vec(&buf).map_err(|e| format!("unparsable answer: {e}"))
}

fn exchange(addr: SocketAddr, wire: &[u8], tcp: bool) -> Result<Message, String> {
    let mut last = String::new();
    for _ in 0..2 {
        let r = if tcp {
            tcp_exchange(addr, wire, QUERY_TIMEOUT)
        } else {
            udp_exchange(addr, wire, QUERY_TIMEOUT)
        };
        match r {
            Ok(m) => return Ok(m),
            Err(e) => last = e,
        }
    }
    Err(last)
}

// ---------------------------------------------------------------------------------------
// Normalisation.
// ---------------------------------------------------------------------------------------

fn quote_bytes(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

fn rdata_text(rdata: &RData) -> String {
    match rdata {
        RData::TXT(txt) => {
            let mut s = String::new();
            for (i, part) in txt.txt_data.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                quote_bytes(&mut s, part);
            }
            s
        }
        RData::HINFO(h) => {
            let mut s = String::new();
            quote_bytes(&mut s, &h.cpu);
            s.push(' ');
            quote_bytes(&mut s, &h.os);
            s
        }
        RData::CNAME(_)
        | RData::NS(_)
        | RData::PTR(_)
        | RData::MX(_)
        | RData::SRV(_)
        | RData::SOA(_) => rdata.to_string().to_ascii_lowercase(),
        other => other.to_string(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct NormRr {
    owner: String,
    rtype: String,
    ttl: u32,
    class: String,
    rdata: String,
}

impl std::fmt::Display for NormRr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.owner, self.ttl, self.class, self.rtype, self.rdata
        )
    }
}

fn norm_rr(r: &Record) -> NormRr {
    NormRr {
        owner: r.name.to_ascii().to_ascii_lowercase(),
        rtype: r.record_type().to_string(),
        ttl: r.ttl,
        class: r.dns_class.to_string(),
        rdata: rdata_text(&r.data),
    }
}

fn norm_section(records: &[Record], negative: bool) -> (Vec<NormRr>, bool) {
    let mut adjusted = false;
    let mut v: Vec<NormRr> = records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| {
            let mut n = norm_rr(r);
            if negative {
                if let RData::SOA(soa) = &r.data {
                    let min = r.ttl.min(soa.minimum);
                    if min != n.ttl {
                        adjusted = true;
                        n.ttl = min;
                    }
                }
            }
            n
        })
        .collect();
    v.sort();
    (v, adjusted)
}

/// Everything we compare about one answer.
#[derive(Debug)]
struct Summary {
    rcode: ResponseCode,
    aa: bool,
    tc: bool,
    rd: bool,
    ra: bool,
    ad: bool,
    cd: bool,
    has_opt: bool,
    question: Vec<String>,
    answer: Vec<NormRr>,
    authority: Vec<NormRr>,
    additional: Vec<NormRr>,
    negative_ttl_adjusted: bool,
}

fn is_negative(m: &Message) -> bool {
    let rcode = m.metadata.response_code;
    rcode == ResponseCode::NXDomain
        || (rcode == ResponseCode::NoError
            && m.authorities
                .iter()
                .any(|r| r.record_type() == RecordType::SOA)
            && !m
                .authorities
                .iter()
                .any(|r| r.record_type() == RecordType::NS))
}

fn summarise(m: &Message) -> Summary {
    let negative = is_negative(m);
    let (answer, a1) = norm_section(&m.answers, false);
    let (authority, a2) = norm_section(&m.authorities, negative);
    let (additional, a3) = norm_section(&m.additionals, false);
    Summary {
        rcode: m.metadata.response_code,
        aa: m.metadata.authoritative,
        tc: m.metadata.truncation,
        rd: m.metadata.recursion_desired,
        ra: m.metadata.recursion_available,
        ad: m.metadata.authentic_data,
        cd: m.metadata.checking_disabled,
        has_opt: m.edns.is_some(),
        // Case-exact echo of the question (RFC 1035 §4.1.2; resolvers using 0x20 rely on it).
        question: m
            .queries
            .iter()
            .map(|q| format!("{} {} {}", q.name(), q.query_class(), q.query_type()))
            .collect(),
        answer,
        authority,
        additional,
        negative_ttl_adjusted: a1 || a2 || a3,
    }
}

// ---------------------------------------------------------------------------------------
// Comparison.
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Case {
    line: usize,
    name_text: String,
    name: Name,
    rtype: RecordType,
    edns: bool,
    rd: bool,
    tcp: bool,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} [{}{}{}]",
            self.name_text,
            self.rtype,
            if self.tcp { "tcp" } else { "udp" },
            if self.edns {
                format!(" edns={EDNS_PAYLOAD}")
            } else {
                " no-edns".to_string()
            },
            if self.rd { " rd" } else { "" }
        )?;
        if self.line > 0 {
            write!(f, " (diff.queries:{})", self.line)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Report {
    compared: usize,
    failures: Vec<String>,
    allowed: BTreeMap<&'static str, Vec<String>>,
    tcp_followups: Vec<Case>,
}

impl Report {
    fn allow(&mut self, a: &Allowance, case: &Case, note: &str) {
        self.allowed
            .entry(a.id)
            .or_default()
            .push(format!("{case}: {note}"));
    }
}

fn diff_lines(out: &mut String, section: &str, knot: &[NormRr], pdm: &[NormRr]) {
    let _ = writeln!(out, "    {section}:");
    for rr in knot {
        if !pdm.contains(rr) {
            let _ = writeln!(out, "      - knot only: {rr}");
        }
    }
    for rr in pdm {
        if !knot.contains(rr) {
            let _ = writeln!(out, "      + pdm only:  {rr}");
        }
    }
    if knot.len() != pdm.len() && knot.iter().all(|r| pdm.contains(r)) {
        let _ = writeln!(
            out,
            "      (duplicates: knot has {}, pdm has {})",
            knot.len(),
            pdm.len()
        );
    }
}

fn dump(out: &mut String, who: &str, s: &Summary) {
    let _ = writeln!(
        out,
        "    {who}: rcode={} aa={} tc={} rd={} ra={} ad={} cd={} opt={} question={:?}",
        s.rcode, s.aa, s.tc, s.rd, s.ra, s.ad, s.cd, s.has_opt, s.question
    );
    for (sec, rrs) in [
        ("ans", &s.answer),
        ("auth", &s.authority),
        ("add", &s.additional),
    ] {
        for rr in rrs.iter() {
            let _ = writeln!(out, "      {sec} {rr}");
        }
    }
}

fn is_hinfo_rfc8482(s: &Summary) -> bool {
    s.answer.len() == 1 && s.answer[0].rtype == "HINFO" && s.answer[0].rdata.contains("RFC8482")
}

fn is_referral(s: &Summary) -> bool {
    s.rcode == ResponseCode::NoError
        && !s.aa
        && s.answer.is_empty()
        && s.authority.iter().any(|r| r.rtype == "NS")
}

/// True if `owner` (lowercase, absolute) is at or below one of the delegation points `cuts`.
fn below_any(owner: &str, cuts: &[String]) -> bool {
    cuts.iter()
        .any(|c| owner == c || owner.ends_with(&format!(".{c}")))
}

struct Servers {
    knot: SocketAddr,
    pdm: SocketAddr,
}

fn compare_case(servers: &Servers, case: &Case, id: u16, report: &mut Report) {
    let wire = build_query(id, &case.name, case.rtype, case.edns, case.rd);
    let knot_msg = match exchange(servers.knot, &wire, case.tcp) {
        Ok(m) => m,
        Err(e) => {
            report
                .failures
                .push(format!("{case}\n    knot did not answer: {e}"));
            return;
        }
    };
    let pdm_msg = match exchange(servers.pdm, &wire, case.tcp) {
        Ok(m) => m,
        Err(e) => {
            report
                .failures
                .push(format!("{case}\n    pdm did not answer: {e}"));
            return;
        }
    };
    report.compared += 1;
    let knot = summarise(&knot_msg);
    let pdm = summarise(&pdm_msg);
    let mut problems = String::new();

    // Question echo must be byte-exact (case included) from both.
    let sent = format!("{} IN {}", case.name, case.rtype);
    for (who, s) in [("knot", &knot), ("pdm", &pdm)] {
        if s.question != [sent.clone()] {
            let _ = writeln!(
                problems,
                "    {who} question echo {:?} != sent {sent:?}",
                s.question
            );
        }
    }
    // RFC 8482 minimal ANY: both servers found data at the name but chose different
    // RRsets (or pdm synthesised HINFO). TC may then differ too (Knot picked a big RRset).
    let any_minimal = case.rtype == RecordType::ANY
        && knot.rcode == ResponseCode::NoError
        && knot.rcode == pdm.rcode
        && knot.aa
        && pdm.aa
        && (!knot.answer.is_empty() || knot.tc)
        && !pdm.answer.is_empty()
        && pdm.answer != knot.answer;

    // Header.
    let header = |s: &Summary, with_tc: bool| {
        format!(
            "rcode={} aa={} tc={} rd={} ra={} ad={} cd={} opt={}",
            s.rcode,
            s.aa,
            if with_tc {
                s.tc.to_string()
            } else {
                "*".into()
            },
            s.rd,
            s.ra,
            s.ad,
            s.cd,
            s.has_opt
        )
    };
    if header(&knot, !any_minimal) != header(&pdm, !any_minimal) {
        let _ = writeln!(
            problems,
            "    header: knot {}\n            pdm  {}",
            header(&knot, true),
            header(&pdm, true)
        );
    }
    if knot.negative_ttl_adjusted != pdm.negative_ttl_adjusted {
        report.allow(
            &ALLOW_NEGATIVE_SOA_TTL,
            case,
            &format!(
                "negative SOA TTL normalised (knot adjusted: {}, pdm adjusted: {})",
                knot.negative_ttl_adjusted, pdm.negative_ttl_adjusted
            ),
        );
    }

    if any_minimal {
        check_any_minimal(servers, case, id, &knot, &pdm, &mut problems, report);
    } else if knot.tc && pdm.tc && !case.tcp {
        report.allow(&ALLOW_TRUNCATED, case, "both TC=1; re-asked over TCP");
        let mut follow = case.clone();
        follow.tcp = true;
        report.tcp_followups.push(follow);
    } else {
        compare_sections(case, &knot, &pdm, &mut problems, report);
    }

    if !problems.is_empty() {
        let mut text = format!("{case}\n{problems}");
        dump(&mut text, "knot", &knot);
        dump(&mut text, "pdm ", &pdm);
        report.failures.push(text);
    }
}

/// RFC 8482: pdm's ANY answer must be `HINFO "RFC8482" ""` or complete RRsets that exist
/// at the name; each RRset is checked against Knot's answer for that exact type.
fn check_any_minimal(
    servers: &Servers,
    case: &Case,
    id: u16,
    knot: &Summary,
    pdm: &Summary,
    problems: &mut String,
    report: &mut Report,
) {
    if is_hinfo_rfc8482(pdm) {
        if pdm.answer[0].rdata != "\"RFC8482\" \"\"" {
            let _ = writeln!(
                problems,
                "    ANY: synthesised HINFO must be \"RFC8482\" \"\" (RFC 8482 §4.2), got {}",
                pdm.answer[0]
            );
        }
    } else {
        let mut by_type: BTreeMap<(String, String), Vec<NormRr>> = BTreeMap::new();
        for rr in &pdm.answer {
            by_type
                .entry((rr.owner.clone(), rr.rtype.clone()))
                .or_default()
                .push(rr.clone());
        }
        for ((owner, t), rrs) in by_type {
            let rt = RecordType::from_str(&t).unwrap_or(RecordType::NULL);
            let w = build_query(id ^ 0x5555, &case.name, rt, true, false);
            match exchange(servers.knot, &w, true) {
                Ok(m) => {
                    let k = summarise(&m);
                    let expect: Vec<NormRr> = k
                        .answer
                        .into_iter()
                        .filter(|r| r.rtype == t && r.owner == owner)
                        .collect();
                    if expect != rrs {
                        let _ = writeln!(
                            problems,
                            "    ANY: pdm's {owner} {t} RRset differs from knot's answer to {t} (TCP):"
                        );
                        diff_lines(problems, "answer", &expect, &rrs);
                    }
                }
                Err(e) => {
                    let _ = writeln!(problems, "    ANY: knot follow-up {t} failed: {e}");
                }
            }
        }
    }
    let types = |s: &Summary| {
        let mut t: Vec<&str> = s.answer.iter().map(|r| r.rtype.as_str()).collect();
        t.dedup();
        t.join(",")
    };
    report.allow(
        &ALLOW_ANY_MINIMAL,
        case,
        &format!(
            "knot: {}{}; pdm: {}",
            types(knot),
            if knot.tc { " (TC)" } else { "" },
            types(pdm)
        ),
    );
    if knot.authority != pdm.authority {
        diff_lines(problems, "authority", &knot.authority, &pdm.authority);
    }
}

fn compare_sections(
    case: &Case,
    knot: &Summary,
    pdm: &Summary,
    problems: &mut String,
    report: &mut Report,
) {
    if knot.answer != pdm.answer {
        diff_lines(problems, "answer", &knot.answer, &pdm.answer);
    }
    if knot.authority != pdm.authority {
        diff_lines(problems, "authority", &knot.authority, &pdm.authority);
    }
    if knot.additional == pdm.additional {
        return;
    }
    let pdm_subset = pdm.additional.iter().all(|r| knot.additional.contains(r));
    let missing: Vec<&NormRr> = knot
        .additional
        .iter()
        .filter(|r| !pdm.additional.contains(r))
        .collect();
    let only_addresses = missing.iter().all(|r| r.rtype == "A" || r.rtype == "AAAA");
    if pdm_subset && only_addresses {
        if is_referral(knot) && is_referral(pdm) {
            let cuts: Vec<String> = knot
                .authority
                .iter()
                .filter(|r| r.rtype == "NS")
                .map(|r| r.owner.clone())
                .collect();
            if missing.iter().all(|r| !below_any(&r.owner, &cuts)) {
                report.allow(
                    &ALLOW_SIBLING_GLUE,
                    case,
                    &format!(
                        "pdm omits {}",
                        missing
                            .iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                );
                return;
            }
            let _ = writeln!(
                problems,
                "    referral is missing in-bailiwick glue (RFC 9471 §2.1 MUST):"
            );
        } else if !is_referral(knot) && knot.aa && pdm.aa {
            report.allow(
                &ALLOW_OPTIONAL_ADDITIONAL,
                case,
                &format!("pdm omits {} additional A/AAAA", missing.len()),
            );
            return;
        }
    }
    diff_lines(problems, "additional", &knot.additional, &pdm.additional);
}

// ---------------------------------------------------------------------------------------
// Corpus.
// ---------------------------------------------------------------------------------------

fn load_corpus(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("read query corpus");
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(n), Some(t), None) = (it.next(), it.next(), it.next()) else {
            panic!("diff.queries:{}: expected `name type`: {line:?}", i + 1);
        };
        cases.push(make_case(i + 1, n, t, true, false));
    }
    cases
}

fn make_case(line: usize, n: &str, t: &str, edns: bool, rd: bool) -> Case {
    let fqdn = if n.ends_with('.') {
        n.to_string()
    } else {
        format!("{n}.")
    };
    let name = Name::from_ascii(&fqdn).unwrap_or_else(|e| panic!("bad name {n:?}: {e}"));
    let rtype = RecordType::from_str(t).unwrap_or_else(|e| panic!("bad type {t:?}: {e}"));
    Case {
        line,
        name_text: n.to_string(),
        name,
        rtype,
        edns,
        rd,
        tcp: false,
    }
}

// ---------------------------------------------------------------------------------------
// The test.
// ---------------------------------------------------------------------------------------

#[test]
fn pdm_answers_like_knot() {
    let Some(knotd) = find_knotd() else {
        let msg = "knotd not found (install the Debian package `knot`, or set KNOTD=/path)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}; CI is set, refusing to skip the Knot differential test");
        }
        eprintln!();
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("!!! SKIPPING knot_differential: {msg}");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        return;
    };

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let corpus = load_corpus(&data.join("diff.queries"));
    assert!(
        corpus.len() >= 200,
        "corpus has {} queries, want >= 200",
        corpus.len()
    );

    let tmp = tempfile::Builder::new()
        .prefix("pdm-knot-diff.")
        .tempdir()
        .expect("tempdir");
    let zone_file = tmp.path().join("diff.test.zone");
    std::fs::copy(data.join("diff.test.zone"), &zone_file).expect("copy zone file");

    let (mut knot, knot_addr) = start_knot(tmp.path(), &zone_file, &knotd);
    wait_dns_ready(&mut knot, knot_addr, Duration::from_secs(20));
    // KNOT_DIFF_PEER_ADDR=127.0.0.1:PORT compares Knot with an already running server that
    // serves tests/data/diff.test.zone (e.g. a second knotd, to check the harness itself)
    // instead of starting pdm.
    let (mut pdm, pdm_addr) = match std::env::var("KNOT_DIFF_PEER_ADDR") {
        Ok(addr) => {
            eprintln!("KNOT_DIFF_PEER_ADDR set: comparing Knot with {addr} instead of pdm");
            let addr: SocketAddr = addr.parse().expect("KNOT_DIFF_PEER_ADDR: ip:port");
            let mut cmd = Command::new("sleep");
            cmd.arg(RUN_DEADLINE.as_secs().to_string());
            let placeholder = ServerProcess::spawn("peer", cmd, tmp.path().join("peer.log"));
            (placeholder, addr)
        }
        Err(_) => start_pdm(tmp.path(), &zone_file),
    };
    wait_dns_ready(&mut pdm, pdm_addr, Duration::from_secs(20));
    eprintln!(
        "knotd pid {} on {knot_addr}, pdm pid {} on {pdm_addr}",
        knot.pid(),
        pdm.pid()
    );

    let servers = Servers {
        knot: knot_addr,
        pdm: pdm_addr,
    };
    let mut cases = corpus;
    for &(n, t, rd) in NO_EDNS_QUERIES {
        cases.push(make_case(0, n, t, false, rd));
    }

    let started = Instant::now();
    let mut report = Report::default();
    let mut consecutive_pdm_timeouts = 0;
    let mut id: u16 = 0x1000;
    let mut i = 0;
    while i < cases.len() {
        if started.elapsed() > RUN_DEADLINE {
            report.failures.push(format!(
                "run deadline {RUN_DEADLINE:?} exceeded after {} queries",
                i
            ));
            break;
        }
        let case = cases[i].clone();
        id = id.wrapping_add(1);
        let before = report.failures.len();
        compare_case(&servers, &case, id, &mut report);
        if report.failures.len() > before
            && report
                .failures
                .last()
                .unwrap()
                .contains("pdm did not answer")
        {
            consecutive_pdm_timeouts += 1;
            if consecutive_pdm_timeouts >= 5 {
                pdm.assert_running();
                report
                    .failures
                    .push("pdm stopped answering (5 consecutive timeouts); aborting".into());
                break;
            }
        } else {
            consecutive_pdm_timeouts = 0;
        }
        // TCP follow-ups for answers both servers truncated.
        for follow in std::mem::take(&mut report.tcp_followups) {
            id = id.wrapping_add(1);
            compare_case(&servers, &follow, id, &mut report);
        }
        i += 1;
    }

    // Report.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "knot differential: {} exchanges compared, {} differences, {:.1} s",
        report.compared,
        report.failures.len(),
        started.elapsed().as_secs_f64()
    );
    for a in ALLOWANCES {
        if let Some(hits) = report.allowed.get(a.id) {
            let _ = writeln!(
                out,
                "\nallowed [{}] ({}) x{}: {}",
                a.id,
                a.rfc,
                hits.len(),
                a.what
            );
            for h in hits {
                let _ = writeln!(out, "    {h}");
            }
        }
    }
    if !report.failures.is_empty() {
        let _ = writeln!(out, "\nDIFFERENCES (knot = reference):");
        for f in &report.failures {
            let _ = writeln!(out, "\n{f}");
        }
    }
    let report_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("knot_differential.report");
    let _ = std::fs::write(&report_path, &out);
    eprintln!("{out}");
    eprintln!("(full report: {})", report_path.display());

    knot.assert_running();
    pdm.assert_running();
    drop(pdm);
    drop(knot);
    assert!(
        report.failures.is_empty(),
        "{} differences between pdm and Knot (see the report above / {})",
        report.failures.len(),
        report_path.display()
    );
}
