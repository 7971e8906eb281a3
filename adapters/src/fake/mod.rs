//! Fake registrar servers (feature `fake`): each submodule is an axum router
//! that enforces what the real API enforces (registrars.md §8). This module has
//! what they share: a loopback server that stops on drop, request and write
//! counters, a request budget per window, and failure injection.
//!
//! A fake handler starts with [`FakeCommon::admit`], which counts the request
//! and says whether to answer normally, with the registrar's rate-limit
//! response, or with a 5xx; the handler renders that in the registrar's own
//! envelope.

// Fake handlers bail out early with a finished `Response` (`Result<_, Response>`);
// boxing it would only add noise to test-only code where size does not matter.
#![allow(clippy::result_large_err)]

pub mod cloudflare;
pub mod dynadot;
pub mod godaddy;
pub mod namecheap;
pub mod ovh;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A fake server on `127.0.0.1:<random port>`; stops when dropped.
#[derive(Debug)]
pub struct FakeServer {
    base_url: String,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Serves `router` on a fresh loopback port. Handlers can extract
    /// `ConnectInfo<SocketAddr>` (Namecheap checks the source IP).
    pub async fn start(router: Router) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "fake server stopped with an error");
            }
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // The task ends once open connections finish; detaching it is enough.
        drop(self.task.take());
    }
}

/// Requests per route and writes per domain, for tests to assert on.
#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<CountersInner>,
}

#[derive(Debug, Default)]
struct CountersInner {
    requests: BTreeMap<String, u64>,
    writes: BTreeMap<String, u64>,
}

impl Counters {
    fn lock(&self) -> std::sync::MutexGuard<'_, CountersInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one request to `route` (e.g. `GET /v1/domains`, or a Namecheap command).
    pub fn record_request(&self, route: &str) {
        *self.lock().requests.entry(route.to_string()).or_default() += 1;
    }

    /// Counts one state-changing write to `domain`.
    pub fn record_write(&self, domain: &str) {
        *self
            .lock()
            .writes
            .entry(domain.to_ascii_lowercase())
            .or_default() += 1;
    }

    /// Requests seen for `route`.
    pub fn requests(&self, route: &str) -> u64 {
        self.lock().requests.get(route).copied().unwrap_or(0)
    }

    /// Requests seen in total.
    pub fn total_requests(&self) -> u64 {
        self.lock().requests.values().sum()
    }

    /// Every route with its request count.
    pub fn all_requests(&self) -> BTreeMap<String, u64> {
        self.lock().requests.clone()
    }

    /// Writes made to `domain`.
    pub fn writes(&self, domain: &str) -> u64 {
        self.lock()
            .writes
            .get(&domain.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Writes made in total.
    pub fn total_writes(&self) -> u64 {
        self.lock().writes.values().sum()
    }
}

/// What a fake handler should answer, decided by [`FakeCommon::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Serve the request.
    Pass,
    /// Answer with the registrar's rate-limit response; `retry_after` is the
    /// remaining window (whole seconds, at least one).
    RateLimited {
        /// How long until the window has room again.
        retry_after: Duration,
    },
    /// Answer with this 5xx status (injected failure).
    ServerError(u16),
}

/// Shared state of every fake: counters, request budget and failure injection.
#[derive(Debug, Default)]
pub struct FakeCommon {
    /// Requests per route and writes per domain.
    pub counters: Counters,
    state: Mutex<CommonState>,
}

#[derive(Debug, Default)]
struct CommonState {
    budget: Option<Budget>,
    rate_limit_next: u32,
    rate_limit_retry_after: Duration,
    fail_next: u32,
    fail_status: u16,
    fail_route: Option<String>,
    rate_limited: u64,
    peak_in_window: u32,
}

#[derive(Debug)]
struct Budget {
    max: u32,
    window: Duration,
    window_start: Option<Instant>,
    in_window: u32,
}

impl FakeCommon {
    fn lock(&self) -> std::sync::MutexGuard<'_, CommonState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Allows at most `max` requests per fixed `window` (the first window
    /// starts at the next request); past that, the registrar's rate-limit answer.
    pub fn set_budget(&self, max: u32, window: Duration) {
        let mut s = self.lock();
        s.budget = Some(Budget {
            max,
            window,
            window_start: None,
            in_window: 0,
        });
        s.peak_in_window = 0;
    }

    /// Removes the request budget.
    pub fn clear_budget(&self) {
        self.lock().budget = None;
    }

    /// Answers the next `n` requests with the rate-limit response asking for `retry_after`.
    pub fn rate_limit_next(&self, n: u32, retry_after: Duration) {
        let mut s = self.lock();
        s.rate_limit_next = n;
        s.rate_limit_retry_after = retry_after;
    }

    /// Answers the next `n` requests with HTTP `status` (a 5xx).
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut s = self.lock();
        s.fail_next = n;
        s.fail_status = status;
        s.fail_route = None;
    }

    /// Answers the next `n` requests to `route` (as counted) with HTTP `status`.
    pub fn fail_next_on(&self, route: &str, n: u32, status: u16) {
        let mut s = self.lock();
        s.fail_next = n;
        s.fail_status = status;
        s.fail_route = Some(route.to_string());
    }

    /// How many requests were answered with the rate-limit response.
    pub fn rate_limited(&self) -> u64 {
        self.lock().rate_limited
    }

    /// The most requests served in one budget window so far.
    pub fn peak_in_window(&self) -> u32 {
        self.lock().peak_in_window
    }

    /// Counts a request to `route` and decides how to answer it.
    pub fn admit(&self, route: &str) -> Gate {
        self.counters.record_request(route);
        let mut s = self.lock();
        if s.fail_next > 0 && s.fail_route.as_deref().is_none_or(|r| r == route) {
            s.fail_next -= 1;
            return Gate::ServerError(s.fail_status);
        }
        if s.rate_limit_next > 0 {
            s.rate_limit_next -= 1;
            s.rate_limited += 1;
            return Gate::RateLimited {
                retry_after: s.rate_limit_retry_after,
            };
        }
        let now = Instant::now();
        let verdict = match s.budget.as_mut() {
            None => Ok(None),
            Some(b) => {
                let start = *b.window_start.get_or_insert(now);
                let elapsed = now.duration_since(start);
                if elapsed >= b.window {
                    // Realign to the window containing `now`, as a fixed-window counter does.
                    let windows = elapsed.as_nanos() / b.window.as_nanos().max(1);
                    let offset = b.window.as_nanos().saturating_mul(windows);
                    b.window_start = Some(start + Duration::from_nanos(offset as u64));
                    b.in_window = 0;
                }
                if b.in_window >= b.max {
                    let ends = b.window_start.unwrap_or(now) + b.window;
                    let left = ends.saturating_duration_since(now);
                    // Registrars answer whole seconds; round up so the client never comes back early.
                    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                    Err(Duration::from_secs(secs.max(1)))
                } else {
                    b.in_window += 1;
                    Ok(Some(b.in_window))
                }
            }
        };
        match verdict {
            Ok(Some(n)) => {
                s.peak_in_window = s.peak_in_window.max(n);
                Gate::Pass
            }
            Ok(None) => Gate::Pass,
            Err(retry_after) => {
                s.rate_limited += 1;
                Gate::RateLimited { retry_after }
            }
        }
    }
}

/// The bearer token of an `Authorization: Bearer <t>` header, if well-formed.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let t = v.strip_prefix("Bearer ")?;
    (!t.is_empty() && !t.contains(' ')).then_some(t)
}

/// Escapes text for an XML attribute or element body.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `h` is a syntactically valid host name (letters, digits, hyphens,
/// at least two labels, no trailing dot): what registries check on NS hosts.
pub fn valid_host(h: &str) -> bool {
    h.len() <= 253
        && h.contains('.')
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_answers_rate_limited_past_max() {
        let c = FakeCommon::default();
        c.set_budget(2, Duration::from_secs(10));
        assert_eq!(c.admit("a"), Gate::Pass);
        assert_eq!(c.admit("a"), Gate::Pass);
        assert!(
            matches!(c.admit("a"), Gate::RateLimited { retry_after } if retry_after.as_secs() >= 9)
        );
        assert_eq!(c.rate_limited(), 1);
        assert_eq!(c.peak_in_window(), 2);
        assert_eq!(c.counters.requests("a"), 3);
    }

    #[test]
    fn injection_comes_first() {
        let c = FakeCommon::default();
        c.fail_next(1, 503);
        c.rate_limit_next(1, Duration::from_secs(3));
        assert_eq!(c.admit("x"), Gate::ServerError(503));
        assert_eq!(
            c.admit("x"),
            Gate::RateLimited {
                retry_after: Duration::from_secs(3)
            }
        );
        assert_eq!(c.admit("x"), Gate::Pass);
    }
}
