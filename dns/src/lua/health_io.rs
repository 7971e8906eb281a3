//! The network side of the health checker: one timer-driven tokio task
//! that runs due checks with bounded concurrency (a semaphore for checks
//! in flight, a governor quota for checks started per second), and the TCP
//! and HTTP probes themselves.

use super::health::{CheckKind, HealthChecker, TargetKey, TargetState};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Longest sleep between rounds, so expiry runs even when nothing is due.
const MAX_IDLE: Duration = Duration::from_secs(1);

impl HealthChecker {
    /// Start the background task on the current tokio runtime (once; later
    /// calls return `None`). Checks of already registered targets begin at
    /// once; targets registered later wake the task.
    pub fn start(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return None;
        }
        let me = self.clone();
        Some(tokio::spawn(async move { me.run().await }))
    }

    async fn run(self) {
        let cfg = self.inner.config.clone();
        let sem = Arc::new(Semaphore::new(cfg.max_concurrent.max(1)));
        let per_sec = NonZeroU32::new(cfg.checks_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::direct(Quota::per_second(per_sec)));
        loop {
            let now = Instant::now();
            let (due, next) = self.take_due(now);
            for (key, state) in due {
                // Both waits happen here, in the loop, so a burst of new
                // targets is paced instead of spawning unbounded tasks.
                limiter.until_ready().await;
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = probe(&me, &key, &state).await;
                    me.record_result(&key, &state, result, started.elapsed());
                    state.in_flight.store(false, Ordering::Release);
                    drop(permit);
                });
            }
            let wake_at = next
                .map(|n| n.max(Instant::now() + Duration::from_millis(10)))
                .unwrap_or_else(|| Instant::now() + MAX_IDLE)
                .min(Instant::now() + MAX_IDLE);
            tokio::select! {
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake_at)) => {}
                _ = self.inner.wake.notified() => {}
            }
        }
    }
}

async fn probe(hc: &HealthChecker, key: &TargetKey, state: &TargetState) -> Result<(), String> {
    let timeout = Duration::from_secs(key.opts.timeout_secs.max(1));
    match &key.kind {
        CheckKind::Tcp(addr) => {
            let connect = async {
                let socket = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(|e| e.to_string())?;
                if let Some(src) = key.opts.source {
                    socket
                        .bind(std::net::SocketAddr::new(src, 0))
                        .map_err(|e| format!("bind {src}: {e}"))?;
                }
                socket.connect(*addr).await.map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            };
            match tokio::time::timeout(timeout, connect).await {
                Ok(r) => r,
                Err(_) => Err(format!("timeout after {}s", timeout.as_secs())),
            }
        }
        CheckKind::Http { url, addr } => {
            let client = match state.client.get() {
                Some(c) => c.clone(),
                None => {
                    let c = build_client(key, url, *addr, timeout)?;
                    let _ = state.client.set(c.clone());
                    c
                }
            };
            let limit = if key.opts.byteslimit > 0 {
                key.opts.byteslimit
            } else {
                hc.config().max_body_bytes
            };
            let (target, host) = pin_ip_literal(url, *addr);
            let fetch = async {
                let mut req = client.get(target.as_str());
                if let Some(h) = host {
                    req = req.header(reqwest::header::HOST, h);
                }
                let mut resp = req.send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                if status.as_u16() != 200 {
                    return Err(format!("Unable to retrieve URL ({})", status.as_u16()));
                }
                let mut body: Vec<u8> = Vec::new();
                while body.len() < limit {
                    match resp.chunk().await.map_err(|e| e.to_string())? {
                        Some(chunk) => {
                            body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
                        }
                        None => break,
                    }
                }
                if let Some(m) = &key.opts.stringmatch {
                    let hay = String::from_utf8_lossy(&body);
                    if !hay.contains(m.as_str()) {
                        return Err(format!("unable to match content with `{m}`"));
                    }
                }
                Ok(())
            };
            match tokio::time::timeout(timeout, fetch).await {
                Ok(r) => r,
                Err(_) => Err(format!("timeout after {}s", timeout.as_secs())),
            }
        }
    }
}

/// The URL to fetch and the Host header to send. `resolve()` only pins
/// host *names*; for an IP-literal host (`http://127.0.0.1:8080/`) with a
/// different check address, PowerDNS (curl `CURLOPT_RESOLVE`, which curl
/// consults before parsing literals) still connects to the check address,
/// so the address is put into the URL and the original host into `Host`.
fn pin_ip_literal(url: &str, addr: Option<std::net::IpAddr>) -> (String, Option<String>) {
    let Some(a) = addr else {
        return (url.to_string(), None);
    };
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return (url.to_string(), None);
    };
    let literal = parsed
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<std::net::IpAddr>().ok());
    if literal.is_none_or(|ip| ip == a) {
        return (url.to_string(), None);
    }
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return (url.to_string(), None),
    };
    if parsed.set_ip_host(a).is_err() {
        return (url.to_string(), None);
    }
    (parsed.to_string(), Some(host))
}

/// A client that connects to `addr` for the URL's host (curl's
/// `CURLOPT_RESOLVE` in PowerDNS), does not follow redirects and, like
/// PowerDNS's MiniCurl, does not verify certificates.
fn build_client(
    key: &TargetKey,
    url: &str,
    addr: Option<std::net::IpAddr>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let ua = key
        .opts
        .useragent
        .clone()
        .unwrap_or_else(|| "PowerDNS Authoritative Server".to_string());
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(ua)
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(0);
    if let Some(src) = key.opts.source {
        b = b.local_address(src);
    }
    if let (Some(a), Some(host)) = (addr, parsed.host_str()) {
        let port = parsed.port_or_known_default().unwrap_or(80);
        b = b.resolve(host, std::net::SocketAddr::new(a, port));
    }
    b.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::pin_ip_literal;

    #[test]
    fn ip_literal_urls_are_pinned_to_the_check_address() {
        let a = Some("127.0.0.2".parse().unwrap());
        assert_eq!(
            pin_ip_literal("http://127.0.0.1:8080/x?y", a),
            (
                "http://127.0.0.2:8080/x?y".to_string(),
                Some("127.0.0.1:8080".to_string())
            )
        );
        assert_eq!(pin_ip_literal("http://127.0.0.2/", a).1, None);
        assert_eq!(pin_ip_literal("http://example.test/", a).1, None);
        assert_eq!(pin_ip_literal("http://127.0.0.1/", None).1, None);
        let (u, h) = pin_ip_literal("https://[::1]:8443/", Some("::2".parse().unwrap()));
        assert_eq!(
            (u.as_str(), h.as_deref()),
            ("https://[::2]:8443/", Some("[::1]:8443"))
        );
    }
}
