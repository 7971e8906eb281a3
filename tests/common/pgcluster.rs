//! [`PgCluster`]: a PostgreSQL cluster of a test's own (initdb + pg_ctl on a
//! free port, trust auth, as scripts/test starts the shared one), which the
//! test may stop and start again (fault tests). Stopped and removed on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::free_tcp_port;

/// A private PostgreSQL cluster on 127.0.0.1.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Its port.
    pub port: u16,
}

impl PgCluster {
    /// initdb and start a cluster; `None` when PostgreSQL's server binaries
    /// are not installed (outside CI: the caller skips).
    pub fn start() -> Option<PgCluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        let dir = tempfile::Builder::new()
            .prefix("pdm-pgfault-")
            .tempdir()
            .expect("tempdir");
        if is_root() {
            chown_postgres(dir.path());
        }
        let c = PgCluster {
            bin,
            dir,
            port: free_tcp_port(),
        };
        let data = c.data();
        assert!(
            c.as_pg(&[
                "initdb",
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync"
            ]),
            "initdb failed"
        );
        c.start_again();
        Some(c)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Start the (stopped) cluster on its port; waits until it accepts connections.
    pub fn start_again(&self) {
        let log = self.dir.path().join("postgres.log").display().to_string();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        assert!(
            self.as_pg(&[
                "pg_ctl",
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "30",
                "-o",
                &opts,
                "start"
            ]),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stop it (`-m fast`: sessions are ended, as in a restart or failover).
    pub fn stop(&self) {
        self.as_pg(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-m",
            "fast",
            "-w",
            "-t",
            "30",
            "stop",
        ]);
    }

    /// Run one of its binaries, as the `postgres` user when we are root.
    fn as_pg(&self, args: &[&str]) -> bool {
        let program = self.bin.join(args[0]);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.as_pg(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-m",
            "immediate",
            "-w",
            "-t",
            "10",
            "stop",
        ]);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn chown_postgres(path: &std::path::Path) {
    let _ = Command::new("chown").arg("postgres:").arg(path).status();
}
