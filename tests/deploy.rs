//! deploy/: the Helm chart renders with each shipped values file through
//! Helm's own engine and validates against the Kubernetes 1.30 schemas
//! (tests/deploy/render_chart.py), and the pdm.toml it renders is accepted by
//! the real binary; the systemd unit passes `systemd-analyze verify`; the
//! image built from scratch by deploy/build-image.sh holds the binary and its
//! libraries and nothing else, and its filesystem serves DNS on port 53 as
//! uid 65532 with CAP_NET_BIND_SERVICE. Where containers cannot run (this
//! sandbox refuses the runtime's setrlimit), the test says so and runs the
//! image's root filesystem under chroot instead.

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Whether `tool` runs; outside CI a missing tool skips the calling test,
/// in CI it fails it (scripts/test installs them all).
fn require(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing but CI is set (scripts/test installs it)"
        );
        eprintln!("SKIP: {tool} not available");
    }
    ok
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pdm-deploy-")
        .tempdir()
        .expect("tempdir")
}

#[test]
fn the_chart_renders_validates_and_configures_pdm() {
    if !require(
        "python3",
        &["-c", "import helm_python, kubernetes_validate, yaml"],
    ) {
        return;
    }
    let out = tempdir();
    let run = Command::new("python3")
        .arg(format!("{ROOT}/tests/deploy/render_chart.py"))
        .arg(format!("{ROOT}/deploy/helm/pdm"))
        .arg(out.path())
        .output()
        .expect("run render_chart.py");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}");
    assert!(said.contains("embedded, postgres-ha, powerdns"), "{said}");
    // The configuration each shape renders is one pdm accepts.
    for shape in ["embedded", "postgres-ha", "powerdns"] {
        let config = out.path().join(format!("{shape}.toml"));
        let db = out.path().join(format!("{shape}.db"));
        let mut cmd = Command::new(PDM);
        cmd.args(["migrate", "--config"])
            .arg(&config)
            .arg("--database")
            .arg(format!("sqlite://{}", db.display()))
            .env("PDM_POWERDNS_API_KEY", "from-the-secret");
        let (code, stdout, stderr) =
            run_bounded(cmd, "pdm migrate", out.path(), Duration::from_secs(30));
        assert_eq!(code, Some(0), "{shape}: {stdout}{stderr}");
    }
    // And pdm is not lenient about it: a broken one is refused.
    let broken = out.path().join("broken.toml");
    std::fs::write(&broken, "dns = \"nope\"\n").expect("write");
    let mut cmd = Command::new(PDM);
    cmd.args(["migrate", "--config"])
        .arg(&broken)
        .arg("--database")
        .arg(format!("sqlite://{}", out.path().join("b.db").display()));
    let (code, _, stderr) = run_bounded(cmd, "pdm migrate", out.path(), Duration::from_secs(30));
    assert_ne!(code, Some(0), "{stderr}");
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(format!("{ROOT}/deploy/systemd/pdm.service"))
        .expect("deploy/systemd/pdm.service");
    for line in [
        "DynamicUser=yes",
        "StateDirectory=pdm",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/local/bin/pdm serve",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}");
    }
    if !require("systemd-analyze", &["--version"]) {
        return;
    }
    let dir = tempdir();
    // verify checks that ExecStart exists: point it at the binary under test.
    let local = unit.replace("/usr/local/bin/pdm", PDM);
    let verify = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write unit");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .lines()
        // Not about the unit: this machine's own units.
        .filter(|l| l.contains(name))
        .collect::<Vec<_>>()
        .join("\n")
    };
    let said = verify("pdm.service", &local);
    assert!(said.is_empty(), "systemd-analyze verify: {said}");
    // The check is not blind: a wrong directive is reported.
    let said = verify(
        "pdm-broken.service",
        &local.replace("ProtectSystem=strict", "ProtectSystem=sometimes"),
    );
    assert!(
        said.contains("ProtectSystem") || said.contains("protect system"),
        "{said}"
    );
}

#[test]
fn the_containerfile_builds_a_small_nonroot_image() {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/Containerfile"))
        .expect("deploy/Containerfile");
    let stages = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "a multi-stage build");
    for line in [
        "FROM gcr.io/distroless/cc-debian12:nonroot",
        "USER 65532:65532",
        "ENTRYPOINT [\"/usr/local/bin/pdm\"]",
        "VOLUME [\"/var/lib/pdm\"]",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
}

/// `podman image mount` needs root; the copy is readable by uid 65532.
fn image_rootfs(image: &str, into: &Path) -> PathBuf {
    let out = Command::new("podman")
        .args(["image", "mount", image])
        .output()
        .expect("podman image mount");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mounted = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let root = into.join("rootfs");
    std::fs::create_dir(&root).expect("mkdir rootfs");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!("{mounted}/."))
        .arg(&root)
        .status()
        .expect("cp");
    assert!(cp.success());
    let _ = Command::new("podman")
        .args(["image", "unmount", image])
        .stdout(Stdio::null())
        .status();
    root
}

fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let p = e.path();
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                stack.push(p);
            } else {
                out.push(format!("/{}", p.strip_prefix(root).unwrap().display()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_image_built_from_scratch_serves_dns_as_nonroot() {
    if !require("buildah", &["--version"]) || !require("podman", &["--version"]) {
        return;
    }
    let dir = tempdir();
    let image = format!("localhost/pdm-test:{}", std::process::id());
    let build = Command::new(format!("{ROOT}/deploy/build-image.sh"))
        .arg(PDM)
        .arg(&image)
        .output()
        .expect("deploy/build-image.sh");
    assert!(
        build.status.success(),
        "build-image.sh: {}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let cleanup = scopeguard(&image);

    let inspect = Command::new("podman")
        .args(["image", "inspect", &image])
        .output()
        .expect("podman image inspect");
    let meta: Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
    let config = &meta[0]["Config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/pdm"]));
    assert_eq!(config["Cmd"], json!(["serve"]));
    assert!(config["ExposedPorts"]["53/udp"].is_object(), "{config}");
    assert!(config["Volumes"]["/var/lib/pdm"].is_object(), "{config}");
    let size = meta[0]["Size"].as_u64().expect("size");
    assert!(size < 150 << 20, "image of {size} bytes");

    // Contents: the binary, its loader and libraries, the user database.
    let root = image_rootfs(&image, dir.path());
    let files = files_under(&root);
    for want in ["/usr/local/bin/pdm", "/etc/passwd", "/etc/group"] {
        assert!(files.iter().any(|f| f == want), "{want} missing: {files:?}");
    }
    for f in &files {
        let allowed = f == "/usr/local/bin/pdm"
            || f == "/etc/passwd"
            || f == "/etc/group"
            || f.starts_with("/lib")
            || f.starts_with("/usr/lib");
        assert!(allowed, "unexpected file in the image: {f}");
    }
    assert!(
        !root.join("bin/sh").exists() && !root.join("usr/bin").exists(),
        "no shell"
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    assert!(passwd.contains("nonroot:x:65532:65532"), "{passwd}");

    // Containers, where they run here.
    let probe = Command::new("podman")
        .args(["run", "--rm", &image, "--version"])
        .output()
        .expect("podman run");
    if probe.status.success() {
        assert!(String::from_utf8_lossy(&probe.stdout).starts_with("pdm "));
    } else {
        eprintln!(
            "NOTE: containers cannot run on this machine ({}); running the image's root filesystem under chroot instead",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
    }

    // The image's filesystem, as the image runs it: uid 65532, no capability
    // but CAP_NET_BIND_SERVICE (and CAP_SYS_CHROOT for chroot itself), port 53.
    if !require("setpriv", &["--version"]) {
        return;
    }
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let dns: std::net::SocketAddr = "127.0.0.1:53".parse().expect("addr");
    // Free, and bindable by this (root) test process: then the only question
    // left is whether uid 65532 with the capability can.
    let free = std::net::UdpSocket::bind(dns).is_ok() && std::net::TcpListener::bind(dns).is_ok();
    if !free {
        eprintln!("SKIP: 127.0.0.1:53 is taken or not bindable here");
        return;
    }
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
            "--inh-caps=-all,+net_bind_service,+sys_chroot",
            "--ambient-caps=+net_bind_service,+sys_chroot",
            "--bounding-set=-all,+net_bind_service,+sys_chroot",
            "--",
            "/usr/sbin/chroot",
        ])
        .arg(&root)
        .args(["/usr/local/bin/pdm", "serve"])
        .env_clear()
        .env("PDM_HTTP", http.to_string())
        .env("PDM_DNS", dns.to_string())
        .env("PDM_DATABASE_URL", "sqlite:///var/lib/pdm/pdm.db")
        .env("PDM_LOG_FORMAT", "json")
        .env("PDM_SECRET_KEY", "33".repeat(32))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).expect("log"))
        .spawn()
        .expect("setpriv chroot pdm serve");
    let client = reqwest::blocking::Client::new();
    let ready = wait_for(Duration::from_secs(20), || {
        client
            .get(format!("http://{http}/readyz"))
            .send()
            .map(|r| r.status().as_u16() == 200)
            .unwrap_or(false)
    });
    let log = || std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    if !ready {
        terminate(&mut child);
        panic!("the image's pdm did not become ready:\n{}", log());
    }
    let answer = dig_at(dns, "example.test", RecordType::SOA);
    terminate(&mut child);
    let answer = answer.unwrap_or_else(|e| panic!("DNS on port 53: {e}\n{}", log()));
    assert_eq!(answer.rcode, "NOERROR", "{answer:?}");
    assert!(
        !answer.answer_data(RecordType::SOA).is_empty(),
        "{answer:?}"
    );
    assert!(
        log().lines().all(|l| l.starts_with('{')),
        "JSON logs: {}",
        log()
    );
    drop(cleanup);
}

/// Removes the test image when dropped (also when the test fails).
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn scopeguard(image: &str) -> ImageGuard {
    ImageGuard(image.to_string())
}

#[test]
fn the_composition_drives_a_real_pdm_like_provider_http() {
    if !require("python3", &["-c", "import jq, jsonschema, yaml"]) || !require("dig", &["-v"]) {
        return;
    }
    let srv = match PdmServer::start(Backend::Sqlite, Config::default_test().pool("omani.works")) {
        Some(s) => s,
        None => return,
    };
    let token = srv.token_with_scope("pool:omani.works");
    let out = Command::new("python3")
        .arg(format!("{ROOT}/tests/deploy/crossplane_harness.py"))
        .arg(ROOT)
        .arg(format!("{}/api/v1", srv.http_base()))
        .arg(&token)
        .arg(srv.dns_addr.ip().to_string())
        .arg(srv.dns_addr.port().to_string())
        .output()
        .expect("run crossplane_harness.py");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}\n{}", tail(&srv.log(), 3000));
    // Every scenario ran, with the calls provider-http makes.
    for want in [
        "round 2",
        "lost answers, round 2",
        "duplicated calls",
        "ok: ",
    ] {
        assert!(said.contains(want), "{want}: {said}");
    }
    assert!(
        said.contains("('PUT', 201)") && said.contains("('GET', 404)"),
        "{said}"
    );
}
