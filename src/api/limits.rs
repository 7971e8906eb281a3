//! One layer around every route: the abuse limits of `[api]`. A request is
//! counted against its source address, then against the bearer token it
//! presents (valid or not: the limit comes before the lookup), and answered
//! 429 with `Retry-After` over either rate; a request that takes longer than
//! the timeout is answered 503 with `Retry-After`. Both in the house body.

use super::ApiError;
use crate::config::{ApiConfig, Prefix, Rate};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Requests between two sweeps of idle keys out of the limiters' tables.
const SWEEP_EVERY: u64 = 10_000;

/// The limiters, shared by every request.
pub(super) struct Limits {
    per_source: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Keyed by a keyed hash of the presented token, never the token.
    per_token: Option<DefaultKeyedRateLimiter<u64>>,
    hasher: RandomState,
    exempt: Vec<Prefix>,
    timeout: Option<Duration>,
    seen: AtomicU64,
}

impl Limits {
    /// The limiters `config` asks for.
    pub(super) fn new(config: &ApiConfig) -> Arc<Self> {
        Arc::new(Limits {
            per_source: quota(config.per_source).map(RateLimiter::keyed),
            per_token: quota(config.per_token).map(RateLimiter::keyed),
            hasher: RandomState::new(),
            exempt: config.exempt.clone(),
            timeout: (!config.request_timeout.is_zero()).then_some(config.request_timeout),
            seen: AtomicU64::new(0),
        })
    }

    /// `Err(wait)` when `source` or `token` is over its rate.
    fn admit(&self, source: Option<IpAddr>, token: Option<&str>) -> Result<(), Duration> {
        if source.is_some_and(|ip| self.exempt.iter().any(|p| p.contains(ip))) {
            return Ok(());
        }
        if self.seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        let now = DefaultClock::default().now();
        if let (Some(limiter), Some(ip)) = (&self.per_source, source) {
            limiter
                .check_key(&host(ip))
                .map_err(|not_until| not_until.wait_time_from(now))?;
        }
        if let (Some(limiter), Some(token)) = (&self.per_token, token) {
            limiter
                .check_key(&self.hasher.hash_one(token))
                .map_err(|not_until| not_until.wait_time_from(now))?;
        }
        Ok(())
    }

    /// Forget keys whose bucket has refilled (bounded memory under
    /// address or token spraying).
    fn sweep(&self) {
        if let Some(l) = &self.per_source {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_token {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// A governor quota for `rate` (`None`: no limit).
fn quota(rate: Rate) -> Option<Quota> {
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst.max(rate.per_second)).unwrap_or(per_second);
    Some(Quota::per_second(per_second).allow_burst(burst))
}

/// The key of a source: IPv4 as is, IPv6 by its /64 (one host's share).
fn host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// The bearer token a request presents, if any.
fn presented_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whole seconds to wait, at least 1 (the `Retry-After` value).
fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub(super) async fn layer(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    if let Err(wait) = limits.admit(source, presented_token(&req)) {
        let secs = retry_secs(wait);
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("too many requests; retry after {secs} s"),
        )
        .retry_after(secs)
        .into_response();
    }
    let Some(timeout) = limits.timeout else {
        return next.run(req).await;
    };
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(timeout_s = timeout.as_secs(), "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request-timeout",
                format!("the request took longer than {} s", timeout.as_secs()),
            )
            .retry_after(1)
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(source: u32, token: u32) -> ApiConfig {
        ApiConfig {
            per_source: Rate {
                per_second: source,
                burst: source,
            },
            per_token: Rate {
                per_second: token,
                burst: token,
            },
            exempt: vec![Prefix::parse("127.0.0.0/8").unwrap()],
            request_timeout: Duration::ZERO,
        }
    }

    #[test]
    fn sources_and_tokens_are_limited_apart_and_exempt_sources_never() {
        let l = Limits::new(&config(3, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| l.admit(Some(a), None).is_ok()));
        let wait = l.admit(Some(a), None).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // Another source is not affected; a token has its own budget.
        assert!(l.admit(Some(b), Some("t1")).is_ok());
        assert!(l.admit(Some(b), Some("t1")).is_ok());
        assert!(l.admit(Some(b), Some("t1")).is_err());
        assert!(l.admit(None, Some("t2")).is_ok());
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..100).all(|_| l.admit(Some(local), Some("t1")).is_ok()));
    }

    #[test]
    fn ipv6_sources_count_by_slash_64() {
        let l = Limits::new(&config(1, 0));
        assert!(l.admit(Some("2001:db8::1".parse().unwrap()), None).is_ok());
        assert!(l
            .admit(Some("2001:db8::ffff:1".parse().unwrap()), None)
            .is_err());
        assert!(l
            .admit(Some("2001:db8:0:1::1".parse().unwrap()), None)
            .is_ok());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_secs(Duration::ZERO), 1);
        assert_eq!(retry_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_secs(Duration::from_millis(2001)), 3);
    }
}
