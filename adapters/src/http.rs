//! HTTP plumbing shared by every adapter: one reqwest client per adapter
//! (30 s timeout, configurable base URL), a client-side rate limiter per
//! (registrar, base URL, credential identity) built on `governor`, and a send
//! helper that maps transport failures, timeouts and 5xx to
//! [`RegistrarError::Unavailable`], honours rate-limit answers (`Retry-After`
//! in seconds or as an HTTP-date, or a registrar-specific signal) up to a cap,
//! and retries with backoff only requests that are safe to repeat.
//!
//! Typical use in an adapter:
//!
//! ```ignore
//! let http = HttpClient::new(RegistrarId::Godaddy, &config, &credential_identity(&creds))?
//!     .with_rate_limit_detector(godaddy_rate_limit)
//!     .with_secrets([secret.clone()]);
//! let resp = http.send(http.request(Method::GET, "/v1/domains"), Safety::Idempotent).await?;
//! ```

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use crate::credentials::{Credentials, Secret};
use crate::error::{RegistrarError, Result};
use crate::types::RegistrarId;

/// Request timeout every adapter uses unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A budget of at most `max` requests in any sliding `window`, of which up to
/// `burst` may go back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub max: u32,
    /// The window length.
    pub window: Duration,
    /// How many requests may be sent without spacing (1 = evenly spaced).
    pub burst: u32,
}

impl RateLimit {
    /// `max` requests per `window`, evenly spaced (burst 1).
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            burst: 1,
        }
    }

    /// The same budget, letting `burst` requests go back to back (clamped to `max`).
    pub fn with_burst(self, burst: u32) -> Self {
        Self {
            burst: burst.clamp(1, self.max.max(1)),
            ..self
        }
    }

    /// The limits each registrar documents (registrars.md §1-§5 "Rate limits"),
    /// with bursts chosen so that no sliding window can exceed the budget.
    pub fn documented(registrar: RegistrarId) -> Vec<RateLimit> {
        let min = Duration::from_secs(60);
        match registrar {
            // 1200 requests / 5 minutes per token.
            RegistrarId::Cloudflare => {
                vec![RateLimit::new(1200, Duration::from_secs(300)).with_burst(50)]
            }
            // 20/min, 700/hour, 8000/day per user; all three are enforced.
            RegistrarId::Namecheap => vec![
                RateLimit::new(20, min).with_burst(5),
                RateLimit::new(700, Duration::from_secs(3600)).with_burst(100),
                RateLimit::new(8000, Duration::from_secs(86_400)).with_burst(1000),
            ],
            // 60/min (per endpoint in practice; per credential here, which is stricter).
            RegistrarId::Godaddy => vec![RateLimit::new(60, min).with_burst(5)],
            // Undocumented; an OVH maintainer: "not over 60 req/min by consumer key".
            RegistrarId::Ovh => vec![RateLimit::new(60, min).with_burst(5)],
            // Regular tier: 60/min, one thread.
            RegistrarId::Dynadot => vec![RateLimit::new(60, min).with_burst(1)],
        }
    }

    /// The GCRA quota: with burst `b` and emission interval `t`, any half-open
    /// window `w` sees at most `b - 1 + w / t` requests, so `t = w / (max - b + 1)`
    /// (plus headroom) keeps every sliding window within `max`.
    fn quota(&self) -> Option<Quota> {
        let max = self.max.max(1);
        let burst = self.burst.clamp(1, max);
        let slots = max - burst + 1;
        // 5% headroom: network jitter can move an arrival across the registrar's
        // window edge, so spacing exactly at the limit occasionally overshoots.
        let period = self.window.checked_div(slots)?.mul_f64(1.05);
        if period.is_zero() {
            return None;
        }
        Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?))
    }
}

/// A client-side limiter enforcing several [`RateLimit`]s at once.
pub struct Limiter {
    limits: Vec<RateLimit>,
    gates: Vec<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Limiter {
    /// A limiter for `limits` (an empty list never waits).
    pub fn new(limits: &[RateLimit]) -> Self {
        let gates = limits
            .iter()
            .filter_map(RateLimit::quota)
            .map(RateLimiter::direct)
            .collect();
        Self {
            limits: limits.to_vec(),
            gates,
        }
    }

    /// Waits until every budget has room for one more request, then takes it.
    pub async fn acquire(&self) {
        // Taking a slot from an earlier gate and then waiting on a later one only
        // makes us slower, never faster than allowed.
        for gate in &self.gates {
            gate.until_ready().await;
        }
    }

    /// The limits this limiter enforces.
    pub fn limits(&self) -> &[RateLimit] {
        &self.limits
    }
}

/// The process-wide limiter for `key` (registrar + base URL + credential
/// identity + limits), created on first use. Two adapters built for the same
/// account share one budget, which is what the registrar counts.
pub fn shared_limiter(registrar: RegistrarId, key: &str, limits: &[RateLimit]) -> Arc<Limiter> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Limiter>>>> = OnceLock::new();
    let full_key = format!("{registrar}\u{0}{key}\u{0}{limits:?}");
    let registry = REGISTRY.get_or_init(|| Mutex::new(HashMap::new()));
    // A poisoned lock only means another thread panicked while inserting; the map is still valid.
    let mut map = registry.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(full_key)
        .or_insert_with(|| Arc::new(Limiter::new(limits)))
        .clone()
}

/// A stable, non-reversible identity for a set of credentials (SHA-256 of the
/// whole credential, truncated), used to key rate limiters without holding secrets.
pub fn credential_identity(creds: &Credentials) -> String {
    let bytes = serde_json::to_vec(creds).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    hex::encode(&digest.as_ref()[..12])
}

/// How to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound for one backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` we sleep through; longer answers become
    /// [`RegistrarError::RateLimited`] for the caller to schedule.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff before attempt `attempt + 1` (attempt counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(16);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        // A little jitter so several workers that failed together do not retry in lockstep.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter_cap = (base.as_millis() as u64 / 10).max(1);
        base + Duration::from_millis(u64::from(nanos) % jitter_cap)
    }
}

/// Whether a request may be repeated after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Reads (and idempotent writes): retried on transport errors and 5xx.
    Idempotent,
    /// Writes: never retried on transport errors or 5xx, because the first
    /// attempt may have been applied (OVH/GoDaddy queue a task per write).
    /// Rate-limit answers are still retried: the registrar did not process them.
    Write,
}

/// Everything an adapter needs to build an [`HttpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Base URL, without a trailing slash (`https://api.godaddy.com`).
    pub base_url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Client-side budgets (default: [`RateLimit::documented`]).
    pub limits: Vec<RateLimit>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
}

impl HttpConfig {
    /// The defaults for `registrar` against `base_url`.
    pub fn new(registrar: RegistrarId, base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            timeout: DEFAULT_TIMEOUT,
            limits: RateLimit::documented(registrar),
            retry: RetryPolicy::default(),
        }
    }

    /// Replaces the client-side budgets.
    pub fn with_limits(mut self, limits: Vec<RateLimit>) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Decides whether a response is the registrar's "slow down": `None` when it
/// is not, `Some(retry_after)` when it is (with the wait it asked for, if any).
pub type RateLimitDetector = fn(StatusCode, &HeaderMap, &[u8]) -> Option<Option<Duration>>;

/// The common signal: HTTP 429 with an optional `Retry-After` header.
pub fn detect_429(
    status: StatusCode,
    headers: &HeaderMap,
    _body: &[u8],
) -> Option<Option<Duration>> {
    (status == StatusCode::TOO_MANY_REQUESTS).then(|| retry_after(headers))
}

/// Parses the `Retry-After` header of `headers` (seconds or HTTP-date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date (RFC 9110
/// §10.2.3), relative to `now`; a date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A reqwest client bound to one registrar, base URL and credential budget.
#[derive(Clone)]
pub struct HttpClient {
    registrar: RegistrarId,
    client: reqwest::Client,
    base_url: String,
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
    detector: RateLimitDetector,
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are deliberately left out (their Debug redacts anyway).
        f.debug_struct("HttpClient")
            .field("registrar", &self.registrar)
            .field("base_url", &self.base_url)
            .field("limiter", &self.limiter)
            .field("retry", &self.retry)
            .finish()
    }
}

impl HttpClient {
    /// A client for `registrar` with `config`; `identity` keys the shared rate
    /// limiter (use [`credential_identity`]).
    pub fn new(registrar: RegistrarId, config: &HttpConfig, identity: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("pdm-adapters/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistrarError::unavailable(registrar, describe(&e)))?;
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let key = format!("{base_url}\u{0}{identity}");
        Ok(Self {
            registrar,
            client,
            limiter: shared_limiter(registrar, &key, &config.limits),
            base_url,
            retry: config.retry,
            detector: detect_429,
            secrets: Vec::new(),
        })
    }

    /// Uses `detector` to recognise the registrar's rate-limit answer.
    pub fn with_rate_limit_detector(mut self, detector: RateLimitDetector) -> Self {
        self.detector = detector;
        self
    }

    /// Secrets to scrub from every error detail this client produces.
    pub fn with_secrets(mut self, secrets: impl IntoIterator<Item = Secret>) -> Self {
        self.secrets
            .extend(secrets.into_iter().filter(|s| !s.expose().is_empty()));
        self
    }

    /// Which registrar this client talks to.
    pub fn registrar(&self) -> RegistrarId {
        self.registrar
    }

    /// The base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The underlying reqwest client, for requests [`HttpClient::request`] cannot express.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// The shared limiter this client waits on.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// `base_url + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A request builder for `method` on `base_url + path`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Replaces every configured secret in `text` with `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.expose(), "<redacted>");
        }
        out
    }

    /// An [`RegistrarError::Unavailable`] whose detail is scrubbed.
    pub fn unavailable(&self, detail: impl AsRef<str>) -> RegistrarError {
        RegistrarError::unavailable(self.registrar, self.scrub(detail.as_ref()))
    }

    /// `e` with every registrar-provided text scrubbed of the configured
    /// secrets (for errors built from a response body outside this client).
    pub fn scrub_error(&self, e: RegistrarError) -> RegistrarError {
        match e {
            RegistrarError::Rejected { registrar, message } => RegistrarError::Rejected {
                registrar,
                message: self.scrub(&message),
            },
            RegistrarError::AccountNotEligible { registrar, detail } => {
                RegistrarError::AccountNotEligible {
                    registrar,
                    detail: self.scrub(&detail),
                }
            }
            RegistrarError::IpNotWhitelisted { registrar, detail } => {
                RegistrarError::IpNotWhitelisted {
                    registrar,
                    detail: self.scrub(&detail),
                }
            }
            RegistrarError::Unavailable { registrar, detail } => RegistrarError::Unavailable {
                registrar,
                detail: self.scrub(&detail),
            },
            other => other,
        }
    }

    /// An [`RegistrarError::Rejected`] whose message is scrubbed.
    pub fn rejected(&self, message: impl AsRef<str>) -> RegistrarError {
        RegistrarError::Rejected {
            registrar: self.registrar,
            message: self.scrub(message.as_ref()),
        }
    }

    /// Sends `req` after taking a rate-limiter slot, and reads the whole body.
    ///
    /// - transport errors, timeouts and 5xx: retried with backoff when `safety`
    ///   is [`Safety::Idempotent`], else (or when attempts run out) `Unavailable`;
    /// - the registrar's rate-limit answer (see [`HttpClient::with_rate_limit_detector`]):
    ///   slept through and retried while the wait is within
    ///   [`RetryPolicy::max_retry_after`] and attempts remain, else `RateLimited`
    ///   carrying the wait the registrar asked for;
    /// - anything else is returned for the adapter to classify.
    pub async fn send(&self, req: RequestBuilder, safety: Safety) -> Result<HttpResponse> {
        let request = req
            .build()
            .map_err(|e| RegistrarError::InvalidInput(self.scrub(&describe(&e))))?;
        let method = request.method().clone();
        // Only the path is ever logged: queries can carry keys (Dynadot api3).
        let path = request.url().path().to_string();
        let mut attempt: u32 = 1;
        loop {
            // A request with a streaming body cannot be cloned; then it gets one attempt.
            let (this, retry_left) = match request.try_clone() {
                Some(r) => (r, attempt < self.retry.max_attempts),
                None if attempt == 1 => (clone_fallback(&request), false),
                None => return Err(self.unavailable("request body cannot be replayed")),
            };
            self.limiter.acquire().await;
            tracing::debug!(registrar = %self.registrar, %method, %path, attempt, "registrar request");
            let outcome = match self.client.execute(this).await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    resp.bytes().await.map(|b| (status, headers, b.to_vec()))
                }
                Err(e) => Err(e),
            };
            let (status, headers, body) = match outcome {
                Ok(parts) => parts,
                Err(e) => {
                    let detail = describe(&e);
                    if safety == Safety::Idempotent && retry_left {
                        let wait = self.retry.backoff(attempt);
                        tracing::warn!(registrar = %self.registrar, %method, %path, attempt, ?wait, error = %self.scrub(&detail), "transport error, retrying");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(self.unavailable(detail));
                }
            };
            if let Some(asked) = (self.detector)(status, &headers, &body) {
                let wait = asked.unwrap_or_else(|| self.retry.backoff(attempt));
                if retry_left && wait <= self.retry.max_retry_after {
                    tracing::warn!(registrar = %self.registrar, %method, %path, attempt, ?wait, "rate limited, waiting");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                return Err(RegistrarError::RateLimited {
                    registrar: self.registrar,
                    retry_after: asked,
                });
            }
            if status.is_server_error() {
                if safety == Safety::Idempotent && retry_left {
                    let wait = self.retry.backoff(attempt);
                    tracing::warn!(registrar = %self.registrar, %method, %path, attempt, %status, ?wait, "server error, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                return Err(self.unavailable(format!("HTTP {status} on {method} {path}")));
            }
            tracing::debug!(registrar = %self.registrar, %method, %path, %status, "registrar response");
            return Ok(HttpResponse {
                status,
                headers,
                body,
            });
        }
    }

    /// Parses a JSON body, mapping garbage to `Unavailable` (a proxy page or a
    /// truncated answer is not something the caller can fix).
    pub fn json<T: DeserializeOwned>(&self, resp: &HttpResponse) -> Result<T> {
        serde_json::from_slice(&resp.body).map_err(|e| {
            self.unavailable(format!("unparseable response (HTTP {}): {e}", resp.status))
        })
    }
}

/// Builds a body-less copy of a request whose body cannot be cloned; only used
/// for the first (and then only) attempt, so the original body is what counts.
fn clone_fallback(request: &reqwest::Request) -> reqwest::Request {
    let mut r = reqwest::Request::new(request.method().clone(), request.url().clone());
    *r.headers_mut() = request.headers().clone();
    *r.timeout_mut() = request.timeout().copied();
    r
}

/// Describes a reqwest error without its URL (queries can carry keys) and with
/// its source chain ("connection refused", "operation timed out").
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else if e.is_builder() {
        "bad request"
    } else {
        "request failed"
    };
    let mut out = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn quota_never_exceeds_the_window() {
        let q = RateLimit::new(20, Duration::from_secs(60)).with_burst(5);
        // Half-open 60 s window: 5 back to back + 15 more at 3.75 s (+5%) spacing <= 20.
        assert_eq!(
            q.quota().map(|q| q.replenish_interval()),
            Some(Duration::from_micros(3_937_500))
        );
        assert_eq!(
            RateLimit::new(5, Duration::from_secs(1))
                .with_burst(9)
                .burst,
            5
        );
        for r in RateLimit::documented(RegistrarId::Namecheap) {
            assert!(r.quota().is_some());
        }
    }

    #[tokio::test]
    async fn limiter_spaces_requests() {
        let l = Limiter::new(&[RateLimit::new(4, Duration::from_millis(400)).with_burst(2)]);
        let start = Instant::now();
        for _ in 0..4 {
            l.acquire().await;
        }
        // Two immediately, then one per 133 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn identity_hides_the_secret() {
        let c = Credentials::from_token(RegistrarId::Godaddy, "key:SUPERSECRET").unwrap();
        let id = credential_identity(&c);
        assert_eq!(id.len(), 24);
        assert!(!id.contains("SUPERSECRET"));
        let c2 = Credentials::from_token(RegistrarId::Godaddy, "key:OTHER").unwrap();
        assert_ne!(id, credential_identity(&c2));
    }
}
