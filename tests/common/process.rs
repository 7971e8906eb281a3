//! Subprocesses and ports: running the pdm CLI and other tools bounded in time, stopping them
//! by PID, polling, and free loopback ports.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{unique_id, PDM};

/// Upper bound for any CLI invocation.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Ports handed out by this test process: never handed out twice, since a
/// server that is down for a restart leaves its port free to bind meanwhile.
static PORTS_GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Where test ports come from: below the kernel's ephemeral range, so no
/// outgoing socket (a Postgres client, a NOTIFY sender, a resolver) can take a
/// server's port between its stop and its restart on the same port. A port
/// from `bind(:0)` is ephemeral and could, which once failed a restart in CI
/// for twenty seconds.
fn port_range() -> std::ops::Range<u16> {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    10000..ephemeral_low.max(20000)
}

/// A port from [`port_range`] for which `usable` holds, starting at a random
/// point so that test processes running side by side rarely try the same one.
fn pick_port(usable: impl Fn(u16) -> bool) -> u16 {
    let mut given = PORTS_GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let range = port_range();
    let span = u32::from(range.end - range.start);
    let start = rand::random::<u32>() % span;
    for i in 0..span {
        let p = range.start + ((start + i) % span) as u16;
        if !given.contains(&p) && usable(p) {
            given.insert(p);
            return p;
        }
    }
    panic!("no free port in {range:?} on 127.0.0.1");
}

/// A TCP port free on 127.0.0.1 (for HTTP).
pub fn free_tcp_port() -> u16 {
    pick_port(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

/// A port free on 127.0.0.1 for both UDP and TCP (for DNS).
pub fn free_udp_tcp_port() -> u16 {
    pick_port(|p| {
        UdpSocket::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
    })
}

/// Output of one CLI invocation.
#[derive(Debug, Clone)]
pub struct CliOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The secret key test servers seal DNSSEC private keys with.
pub const TEST_SECRET_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub(super) fn scrub_env(cmd: &mut Command) {
    for k in ["PDM_CONFIG", "PDM_DATABASE_URL", "PDM_HTTP", "PDM_DNS"] {
        cmd.env_remove(k);
    }
    // DNSSEC private keys are sealed with this; the same key across restarts.
    if std::env::var_os("PDM_SECRET_KEY").is_none() {
        cmd.env("PDM_SECRET_KEY", TEST_SECRET_KEY);
    }
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
}

/// Last `n` bytes of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    format!("...{}", &s[i..])
}

/// Run the pdm binary with `args` in `cwd`, bounded by [`CLI_TIMEOUT`].
pub fn run_cli(args: &[String], cwd: &Path) -> CliOut {
    let mut cmd = Command::new(PDM);
    cmd.args(args);
    scrub_env(&mut cmd);
    let (code, stdout, stderr) = run_bounded(cmd, &format!("pdm {args:?}"), cwd, CLI_TIMEOUT);
    CliOut {
        code,
        stdout,
        stderr,
    }
}

/// Run `cmd` in `cwd` with a null stdin, its output captured through files
/// (no pipe can fill up), killed and panicking after `timeout`.
/// Returns (exit code, stdout, stderr).
pub fn run_bounded(
    mut cmd: Command,
    what: &str,
    cwd: &Path,
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let id = unique_id();
    let out_p = cwd.join(format!("run-{id}.out"));
    let err_p = cwd.join(format!("run-{id}.err"));
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(File::create(&out_p).unwrap())
        .stderr(File::create(&err_p).unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let rd = |p: &Path| {
        let mut s = String::new();
        if let Ok(mut f) = File::open(p) {
            let _ = f.read_to_string(&mut s);
        }
        let _ = fs::remove_file(p);
        s
    };
    (code, rd(&out_p), rd(&err_p))
}

/// Poll `cond` every 20 ms until it is true or `timeout` passes. Returns whether it became true.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stop a server the test started: SIGTERM by its PID, up to 5 s to exit, then SIGKILL through
/// the same handle (never by name).
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
