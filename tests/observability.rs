//! What an operator watches: `/metrics` on a live server passes
//! `promtool check metrics` and counts what happened (DNS answers by
//! transport/rcode/qtype, HTTP requests by route, allocations, the journal);
//! every HTTP request is logged once, as a JSON line with its request id,
//! which the answer echoes in `X-Request-Id`; and text logs written to a
//! file carry no ANSI escapes. Runs on SQLite and Postgres.

#[macro_use]
mod common;
use common::validators::find_tool;
use common::*;
use hickory_proto::rr::RecordType;
use std::process::Command;

/// The value of the series `name{labels}` (labels as written, in order), if exposed.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn scrape(srv: &PdmServer) -> String {
    let r = srv.request("GET", "/metrics", None, Body::None, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    let ct = r.content_type.clone().unwrap_or_default();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text
}

/// `promtool check metrics` on `text`: its exit status and output. `None`
/// when promtool is missing outside CI (scripts/test installs `prometheus`).
fn promtool(text: &str, dir: &std::path::Path) -> Option<(bool, String)> {
    let Some(exe) = find_tool("promtool") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool missing but CI is set (scripts/test installs the Debian package prometheus)"
        );
        eprintln!("SKIP: promtool not installed");
        return None;
    };
    let file = dir.join("scrape.prom");
    std::fs::write(&file, text).expect("write scrape");
    let stdin = std::fs::File::open(&file).expect("open scrape");
    let out = Command::new(exe)
        .args(["check", "metrics"])
        .stdin(stdin)
        .output()
        .expect("run promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success() && said.trim().is_empty(), said))
}

fn metrics_count_and_pass_promtool(b: Backend) {
    let srv = start_or_skip!(b, Config::default_test());
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    for _ in 0..3 {
        let r = srv.dig("www.acme.example.test", RecordType::A);
        assert_eq!(r.answer_data(RecordType::A), vec!["192.0.2.10"]);
    }
    assert!(srv.dig("nope.example.test", RecordType::AAAA).is_nxdomain());
    dig_tcp_at(srv.dns_addr, "example.test", RecordType::SOA).expect("TCP SOA");
    let (st, _) = srv.check("example.test", "other");
    assert_eq!(st, 200);

    let text = scrape(&srv);
    // DNS: three A answers and one NXDOMAIN over UDP, one SOA over TCP.
    let udp_a = sample(
        &text,
        r#"pdm_dns_queries_total{transport="udp",rcode="NOERROR",qtype="A"}"#,
    );
    assert!(udp_a >= Some(3.0), "{udp_a:?}\n{text}");
    let nx = sample(
        &text,
        r#"pdm_dns_queries_total{transport="udp",rcode="NXDOMAIN",qtype="AAAA"}"#,
    );
    assert_eq!(nx, Some(1.0), "{text}");
    let tcp = sample(
        &text,
        r#"pdm_dns_queries_total{transport="tcp",rcode="NOERROR",qtype="SOA"}"#,
    );
    assert_eq!(tcp, Some(1.0), "{text}");
    let answered = sample(
        &text,
        r#"pdm_dns_answer_duration_seconds_count{transport="udp"}"#,
    );
    assert!(answered >= Some(4.0), "{text}");
    let inf = sample(
        &text,
        r#"pdm_dns_answer_duration_seconds_bucket{transport="udp",le="+Inf"}"#,
    );
    assert_eq!(inf, answered, "{text}");
    // The second and third identical A queries come from the packet cache.
    assert!(
        sample(&text, "pdm_dns_packet_cache_hits_total") >= Some(2.0),
        "{text}"
    );
    assert!(
        sample(&text, "pdm_dns_packet_cache_misses_total") >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "pdm_dns_packet_cache_entries") >= Some(1.0),
        "{text}"
    );
    // Signed zones: the answers were signed through the cache.
    assert!(
        sample(&text, "pdm_dnssec_signature_cache_entries").is_some(),
        "{text}"
    );
    assert!(
        sample(&text, "pdm_lua_evaluations_total").is_some(),
        "{text}"
    );
    // HTTP by route template (the raw path names a tenant).
    let check = sample(
        &text,
        r#"pdm_http_requests_total{route="/api/v1/pool/{domain}/check",method="GET",code="200"}"#,
    );
    assert_eq!(check, Some(1.0), "{text}");
    let commits = sample(
        &text,
        r#"pdm_http_requests_total{route="/api/v1/pool/{domain}/commit",method="POST",code="200"}"#,
    );
    assert_eq!(commits, Some(1.0), "{text}");
    assert!(!text.contains("acme.example.test"), "no tenant in labels");
    // What the database knows.
    let active = sample(
        &text,
        r#"pdm_allocations{pool="example.test",state="active"}"#,
    );
    assert_eq!(active, Some(1.0), "{text}");
    assert!(sample(&text, "pdm_journal_head") >= Some(1.0), "{text}");
    assert!(text.contains("pdm_journal_lag_entries{replica="), "{text}");
    assert!(
        text.contains("pdm_dnssec_keys{role=\"csk\",state=\"active\"}"),
        "{text}"
    );

    // SQLite: the commit's pages reach the database file through the
    // checkpointer (a pass every 200 ms), not through a writer's COMMIT.
    let text = if matches!(b, Backend::Postgres) {
        assert_eq!(sample(&text, "pdm_store_wal_checkpoints_total"), None);
        text
    } else {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut text = text;
        while sample(&text, "pdm_store_wal_checkpoints_total") < Some(1.0) {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
            text = scrape(&srv);
        }
        assert!(sample(&text, "pdm_store_wal_pages") >= Some(1.0), "{text}");
        assert_eq!(
            sample(&text, "pdm_store_wal_checkpoint_failures_total"),
            Some(0.0)
        );
        text
    };

    if let Some((ok, said)) = promtool(&text, srv.dir.path()) {
        assert!(ok, "promtool check metrics: {said}\n{text}");
    }
    // promtool itself is not lenient: a counter without `_total` fails it.
    if let Some((ok, _)) = promtool(
        "# HELP bad_requests Bad.\n# TYPE bad_requests counter\nbad_requests 1\n",
        srv.dir.path(),
    ) {
        assert!(!ok, "promtool must flag a counter without _total");
    }
}

fn json_logs_one_line_per_request(b: Backend) {
    let Some(srv) =
        PdmServer::start_with_env(b, Config::default_test(), &[("PDM_LOG_FORMAT", "json")])
    else {
        return;
    };
    let r = srv.request(
        "GET",
        "/api/v1/pool/example.test/check?sub=acme",
        None,
        Body::None,
        &[("X-Request-Id", "test-req-0001")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let client = reqwest::blocking::Client::new();
    let raw = client
        .get(format!("{}/api/v1/reserved", srv.http_base()))
        .send()
        .expect("GET reserved");
    let echoed = raw
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .expect("a fresh request id is echoed");
    assert_eq!(echoed.len(), 36, "a UUID: {echoed}");
    let weird = client
        .get(format!("{}/livez", srv.http_base()))
        .header("X-Request-Id", "has space")
        .send()
        .expect("GET livez");
    let replaced = weird.headers().get("x-request-id").expect("echoed");
    assert_ne!(replaced, "has space", "an unusable id is replaced");

    // The request line is written after the answer: give it a moment.
    let mut lines = Vec::new();
    let found = wait_for(std::time::Duration::from_secs(5), || {
        lines = request_lines(&srv.log());
        lines.iter().any(|l| l["span"]["request_id"] == echoed)
    });
    assert!(found, "no request line for {echoed}:\n{}", srv.log());
    let mine: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "test-req-0001")
        .collect();
    assert_eq!(mine.len(), 1, "one line per request: {mine:?}");
    let line = mine[0];
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["route"], "/api/v1/pool/{domain}/check", "{line}");
    assert_eq!(line["path"], "/api/v1/pool/example.test/check", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(line["duration_ms"].is_number(), "{line}");
    assert!(
        !srv.log().contains('\u{1b}'),
        "no ANSI escapes in a log file"
    );
}

/// Every stderr line of the JSON log that is a request line (all lines must parse).
fn request_lines(log: &str) -> Vec<Value> {
    let stderr = log.split("[stderr").nth(1).unwrap_or_default();
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["message"] == "request")
        .collect()
}

fn text_logs_have_no_ansi(b: Backend) {
    let srv = start_or_skip!(b, Config::default_test());
    let (st, _) = srv.get("/api/v1/reserved", None);
    assert_eq!(st, 200);
    let found = wait_for(std::time::Duration::from_secs(5), || {
        srv.log().contains("request")
    });
    assert!(found, "{}", srv.log());
    assert!(!srv.log().contains('\u{1b}'), "{}", srv.log());
}

backend_tests!(
    metrics_count_and_pass_promtool,
    json_logs_one_line_per_request,
    text_logs_have_no_ansi
);
