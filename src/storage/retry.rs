//! One retry policy for every request of the S3 backend: list pages, GETs (request and body
//! together), HEADs, PUTs, multipart calls, DeleteObjects batches, bucket calls, and the resumes
//! of a broken download.
//!
//! - **What is retried**: transient faults only ([`StoreError::is_transient`]): throttling,
//!   server errors, broken connections and cut-short bodies, timeouts. A refused connection or
//!   a timeout is retried only once the store has had an answer from the endpoint (a server
//!   restarting, a busy moment); before that it is most likely a wrong `endpoint=` or a
//!   network that does not reach it, and is reported at once.
//! - **Backoff**: exponential with full jitter — before retry `n` a random wait in
//!   `[0, min(max_delay, base_delay · 2^(n-1))]` — or the server's `Retry-After`, if longer
//!   (capped by [`RetryPolicy::max_retry_after`]).
//! - **Per request**: at most [`RetryPolicy::max_attempts`] attempts, and no retry that would
//!   start later than [`RetryPolicy::max_elapsed`] after the first attempt.
//! - **Per store**: a retry budget, a token bucket in the spirit of the AWS SDKs' retry quota.
//!   Each retry costs [`RETRY_COST`] tokens ([`TIMEOUT_RETRY_COST`] after a timeout,
//!   [`THROTTLED_RETRY_COST`] after a throttled answer: the store's limiter slows down
//!   instead); a request
//!   that succeeds gives back what its retries cost, or [`SUCCESS_REFUND`] if it needed none.
//!   When the bucket is empty, failures are returned at once: a store that fails most
//!   requests gives up quickly instead of hammering the endpoint, and recovers as requests
//!   succeed again.
//!
//! - **Throttling**: every attempt waits for its turn in the store's [`Throttle`] first (an
//!   adaptive window of attempts in flight, an adaptive rate, and the `--max-rps` ceiling; see
//!   [`super::throttle`]), and tells it afterwards whether the server said "slow down".
//!
//! A final error's message says how it ended ("gave up after 8 attempts in 3.1 s", "not
//! retried: … retry budget exhausted"); each retry is logged at debug level.

use super::throttle::{Outcome, Throttle, ThrottlePolicy};
use super::{StoreError, StoreErrorKind};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Tokens a retry costs.
pub const RETRY_COST: u32 = 5;
/// Tokens a retry after a timeout costs.
pub const TIMEOUT_RETRY_COST: u32 = 10;
/// Tokens a retry after a throttled answer costs.
pub const THROTTLED_RETRY_COST: u32 = 1;

/// What a retry after a failure of this kind costs from the budget. A throttled answer costs
/// little ([`THROTTLED_RETRY_COST`]): the server is answering, and the store's limiter
/// ([`super::throttle`]) already slows the requests down; the full cost would empty the
/// budget during a throttling episode and fail requests that the slower pace gets through,
/// while an endpoint that only ever throttles still empties it in the end.
fn retry_cost(kind: StoreErrorKind) -> u32 {
    match kind {
        StoreErrorKind::Timeout => TIMEOUT_RETRY_COST,
        StoreErrorKind::Throttled => THROTTLED_RETRY_COST,
        _ => RETRY_COST,
    }
}

/// Tokens a request that succeeded on its first attempt gives back.
pub const SUCCESS_REFUND: u32 = 1;

/// How requests are retried. The defaults suit production; tests shorten the delays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The longest wait before the first retry; doubles with each retry.
    pub base_delay: Duration,
    /// The longest wait before any retry.
    pub max_delay: Duration,
    /// No retry starts later than this after the request's first attempt.
    pub max_elapsed: Duration,
    /// The longest wait a server's `Retry-After` can ask for.
    pub max_retry_after: Duration,
    /// Size of the store's retry budget, in tokens (see the module documentation).
    pub budget: u32,
    /// How attempts are spaced out when the server throttles, and the `--max-rps` ceiling.
    pub throttle: ThrottlePolicy,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(20),
            budget: 500,
            throttle: ThrottlePolicy::default(),
        }
    }
}

impl RetryPolicy {
    /// The longest wait before retry `retry` (1 = the first retry):
    /// `min(max_delay, base_delay · 2^(retry-1))`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// A random wait before retry `retry`, uniform in `[0, backoff_cap(retry)]` (full jitter).
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = u64::try_from(self.backoff_cap(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=cap))
    }
}

/// A store's retry budget (token bucket).
#[derive(Debug)]
pub(crate) struct Budget {
    capacity: u32,
    tokens: Mutex<u32>,
}

impl Budget {
    pub(crate) fn new(capacity: u32) -> Budget {
        Budget {
            capacity,
            tokens: Mutex::new(capacity),
        }
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, u32> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `n` tokens if there are that many.
    pub(crate) fn take(&self, n: u32) -> bool {
        let mut t = self.tokens();
        if *t >= n {
            *t -= n;
            true
        } else {
            false
        }
    }

    /// Gives `n` tokens back (never above the capacity).
    pub(crate) fn give(&self, n: u32) {
        let mut t = self.tokens();
        *t = t.saturating_add(n).min(self.capacity);
    }

    /// Tokens left in the retry budget.
    #[cfg(test)]
    pub(crate) fn available(&self) -> u32 {
        *self.tokens()
    }
}

/// A failed attempt: the error, and how long the server asked us to wait.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: StoreError,
    pub(crate) retry_after: Option<Duration>,
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Failed {
        Failed {
            error,
            retry_after: None,
        }
    }
}

/// Why a request is not retried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    NotRetryable,
    Attempts,
    Elapsed,
    Budget,
}

/// The retry policy and budget of one store.
#[derive(Debug)]
pub(crate) struct Retrier {
    policy: RetryPolicy,
    budget: Budget,
    connected: AtomicBool,
    throttle: Throttle,
}

/// What a kind of failure was, in words, for "after …" notes.
fn described(kind: StoreErrorKind) -> &'static str {
    match kind {
        StoreErrorKind::Throttled => "throttling",
        StoreErrorKind::ServerError => "a server error",
        StoreErrorKind::Interrupted => "a broken connection",
        StoreErrorKind::Timeout => "a timeout",
        StoreErrorKind::Unreachable => "a refused connection",
        _ => "an error",
    }
}

/// What a failed attempt tells the limiter.
fn outcome_of(kind: StoreErrorKind) -> Outcome {
    match kind {
        StoreErrorKind::Throttled => Outcome::Throttled,
        StoreErrorKind::Interrupted | StoreErrorKind::Timeout | StoreErrorKind::Unreachable => {
            Outcome::NoAnswer
        }
        _ => Outcome::Answered,
    }
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy) -> Retrier {
        Retrier {
            budget: Budget::new(policy.budget),
            throttle: Throttle::new(&policy.throttle),
            policy,
            connected: AtomicBool::new(false),
        }
    }

    /// The store's limiter, which every attempt goes through.
    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    #[cfg(test)]
    pub(crate) fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Whether the endpoint has answered this store at least once.
    pub(crate) fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Notes that the endpoint answered (any HTTP status).
    pub(crate) fn mark_connected(&self) {
        self.connected.store(true, Ordering::Relaxed);
    }

    fn retryable(&self, kind: StoreErrorKind) -> bool {
        kind.is_transient()
            && (self.connected()
                || !matches!(kind, StoreErrorKind::Unreachable | StoreErrorKind::Timeout))
    }

    fn decide(&self, failed: &Failed, attempts: u32, started: Instant) -> Result<Duration, Stop> {
        if !self.retryable(failed.error.kind) {
            return Err(Stop::NotRetryable);
        }
        if attempts >= self.policy.max_attempts {
            return Err(Stop::Attempts);
        }
        let asked = failed
            .retry_after
            .map(|d| d.min(self.policy.max_retry_after))
            .unwrap_or_default();
        let delay = self.policy.backoff(attempts).max(asked);
        if started.elapsed() + delay > self.policy.max_elapsed {
            return Err(Stop::Elapsed);
        }
        let cost = retry_cost(failed.error.kind);
        if !self.budget.take(cost) {
            return Err(Stop::Budget);
        }
        Ok(delay)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy or the budget says
    /// stop. The final error's message says how the request ended.
    pub(crate) async fn run<T, F, Fut>(&self, attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failed>>,
    {
        self.drive(0, None, attempt).await.map(|(v, _)| v)
    }

    /// Continues a request whose attempt number `done` has just failed with `failed` (a
    /// download that broke mid-way): retries by the same rules, counting from `done`.
    /// Returns the value and the number of attempts made in all.
    pub(crate) async fn run_after<T, F, Fut>(
        &self,
        done: u32,
        failed: Failed,
        attempt: F,
    ) -> Result<(T, u32), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failed>>,
    {
        self.drive(done, Some(failed), attempt).await
    }

    async fn drive<T, F, Fut>(
        &self,
        mut attempts: u32,
        mut pending: Option<Failed>,
        mut attempt: F,
    ) -> Result<(T, u32), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failed>>,
    {
        let started = Instant::now();
        let mut spent = 0u32;
        let mut earlier: Option<StoreErrorKind> = None;
        loop {
            if let Some(failed) = pending.take() {
                match self.decide(&failed, attempts, started) {
                    Ok(delay) => {
                        spent += retry_cost(failed.error.kind);
                        tracing::debug!(
                            "{} — retry {} of {} in {delay:?}",
                            failed.error,
                            attempts,
                            self.policy.max_attempts.saturating_sub(1)
                        );
                        earlier = Some(failed.error.kind);
                        tokio::time::sleep(delay).await;
                    }
                    Err(stop) => {
                        return Err(self.annotate(failed.error, attempts, started, stop, earlier));
                    }
                }
            }
            attempts += 1;
            let permit = self.throttle.acquire().await;
            let result = attempt().await;
            permit.finish(match &result {
                Ok(_) => Outcome::Answered,
                Err(f) => outcome_of(f.error.kind),
            });
            match result {
                Ok(v) => {
                    self.mark_connected();
                    self.budget
                        .give(if spent > 0 { spent } else { SUCCESS_REFUND });
                    return Ok((v, attempts));
                }
                Err(failed) => pending = Some(failed),
            }
        }
    }

    fn annotate(
        &self,
        mut e: StoreError,
        attempts: u32,
        started: Instant,
        stop: Stop,
        earlier: Option<StoreErrorKind>,
    ) -> StoreError {
        let secs = started.elapsed().as_secs_f64();
        let note = match stop {
            Stop::NotRetryable => match earlier {
                Some(k)
                    if e.kind == StoreErrorKind::PreconditionFailed
                        && e.op == "PUT"
                        && matches!(k, StoreErrorKind::Interrupted | StoreErrorKind::Timeout) =>
                {
                    format!(
                        "; this was attempt {attempts}: the answer to an earlier attempt was \
                         lost ({}), so the object may be the one this request wrote",
                        described(k)
                    )
                }
                Some(k) => format!(
                    "; this was attempt {attempts}, after {} on the earlier ones",
                    described(k)
                ),
                None => String::new(),
            },
            Stop::Attempts => format!("; gave up after {attempts} attempts in {secs:.1} s"),
            Stop::Elapsed => format!(
                "; gave up after {attempts} attempts in {secs:.1} s (the time allowed for one \
                 request)"
            ),
            Stop::Budget if attempts <= 1 => "; not retried: too many requests to this endpoint \
                                              failed recently (retry budget exhausted)"
                .to_string(),
            Stop::Budget => format!(
                "; gave up after {attempts} attempts in {secs:.1} s: too many requests to this \
                 endpoint failed recently (retry budget exhausted)"
            ),
        };
        e.message.push_str(&note);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn fast(max_attempts: u32, budget: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            budget,
            ..RetryPolicy::default()
        }
    }

    fn err(kind: StoreErrorKind) -> Failed {
        StoreError::new(kind, "s3://b (endpoint http://e)", "PUT", "boom")
            .with_key("k")
            .into()
    }

    #[test]
    fn backoff_is_full_jitter_within_the_exponential_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_cap(1), Duration::from_millis(100));
        assert_eq!(p.backoff_cap(2), Duration::from_millis(200));
        assert_eq!(p.backoff_cap(6), Duration::from_millis(3200));
        assert_eq!(p.backoff_cap(7), Duration::from_secs(5));
        assert_eq!(p.backoff_cap(1000), Duration::from_secs(5));
        for retry in 1..12 {
            let cap = p.backoff_cap(retry);
            let samples: Vec<Duration> = (0..400).map(|_| p.backoff(retry)).collect();
            assert!(samples.iter().all(|d| *d <= cap), "retry {retry}");
            // full jitter: spread over the whole range, not clustered at the cap
            assert!(samples.iter().any(|d| *d < cap / 4), "retry {retry}");
            assert!(samples.iter().any(|d| *d > cap * 3 / 4), "retry {retry}");
        }
    }

    #[test]
    fn budget_accounting() {
        let b = Budget::new(12);
        assert!(b.take(5));
        assert!(b.take(5));
        assert!(!b.take(5), "only 2 left");
        assert_eq!(b.available(), 2);
        b.give(1);
        assert_eq!(b.available(), 3);
        b.give(100);
        assert_eq!(b.available(), 12, "never above the capacity");
    }

    #[tokio::test]
    async fn retries_transient_faults_and_refunds_on_success() {
        let r = Retrier::new(fast(8, 500));
        r.mark_connected();
        let calls = AtomicU32::new(0);
        let v = r
            .run(|| async {
                match calls.fetch_add(1, Ordering::Relaxed) {
                    0 => Err(err(StoreErrorKind::ServerError)),
                    1 => Err(err(StoreErrorKind::Timeout)),
                    2 => Err(err(StoreErrorKind::Interrupted)),
                    _ => Ok(7),
                }
            })
            .await
            .unwrap();
        assert_eq!((v, calls.load(Ordering::Relaxed)), (7, 4));
        assert_eq!(r.budget().available(), 500, "the retries' cost came back");
        assert!(r.connected());
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_says_so() {
        let r = Retrier::new(fast(4, 500));
        let calls = AtomicU32::new(0);
        let e = r
            .run(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(err(StoreErrorKind::Throttled))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        assert_eq!(e.kind, StoreErrorKind::Throttled);
        assert!(
            e.to_string().contains("boom; gave up after 4 attempts in "),
            "{e}"
        );
        assert_eq!(
            r.budget().available(),
            500 - 3 * THROTTLED_RETRY_COST,
            "no refund"
        );
        let e = r
            .run(|| async { Err::<(), _>(err(StoreErrorKind::ServerError)) })
            .await
            .unwrap_err();
        assert_eq!(e.kind, StoreErrorKind::ServerError);
        assert_eq!(
            r.budget().available(),
            500 - 3 * THROTTLED_RETRY_COST - 3 * RETRY_COST,
            "no refund"
        );
    }

    #[tokio::test]
    async fn throttling_that_ends_leaves_the_budget_whole() {
        // A small budget that two server errors empty: throttled retries that end in success
        // give back what they cost, so a throttling episode does not turn into failures the
        // limiter's slower pace avoids.
        let r = Retrier::new(fast(8, 12));
        r.mark_connected();
        let calls = AtomicU32::new(0);
        for _ in 0..20 {
            calls.store(0, Ordering::Relaxed);
            let v = r
                .run(|| async {
                    match calls.fetch_add(1, Ordering::Relaxed) {
                        0..=5 => Err(err(StoreErrorKind::Throttled)),
                        _ => Ok(1),
                    }
                })
                .await
                .unwrap();
            assert_eq!(v, 1);
        }
        assert_eq!(r.budget().available(), 12);
    }

    #[tokio::test]
    async fn an_empty_budget_stops_retries_at_once() {
        let r = Retrier::new(fast(8, 12));
        let calls = AtomicU32::new(0);
        let failing = || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(err(StoreErrorKind::ServerError))
        };
        let e = r.run(failing).await.unwrap_err();
        assert_eq!(calls.load(Ordering::Relaxed), 3, "two retries of 5 tokens");
        assert!(e.to_string().contains("retry budget exhausted"), "{e}");
        let e = r.run(failing).await.unwrap_err();
        assert_eq!(calls.load(Ordering::Relaxed), 4, "no retry left");
        assert!(e.message.ends_with("not retried: too many requests to this endpoint failed recently (retry budget exhausted)"), "{e}");
        // successes refill the bucket, one token each
        for _ in 0..5 {
            r.run(|| async { Ok::<_, Failed>(()) }).await.unwrap();
        }
        assert_eq!(r.budget().available(), 7);
    }

    #[tokio::test]
    async fn permanent_errors_and_first_refusals_are_not_retried() {
        let r = Retrier::new(fast(8, 500));
        for kind in [
            StoreErrorKind::AccessDenied,
            StoreErrorKind::PreconditionFailed,
            StoreErrorKind::Unreachable,
            StoreErrorKind::Timeout,
        ] {
            let calls = AtomicU32::new(0);
            let e = r
                .run(|| async {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Err::<(), _>(err(kind))
                })
                .await
                .unwrap_err();
            assert_eq!(calls.load(Ordering::Relaxed), 1, "{kind:?}");
            assert_eq!(e.message, "boom", "{kind:?}");
        }
        // once the endpoint has answered, a refused connection is a restart: retried (and a
        // timeout a busy moment)
        r.mark_connected();
        let calls = AtomicU32::new(0);
        r.run(|| async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 => Err(err(StoreErrorKind::Unreachable)),
                _ => Ok(()),
            }
        })
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_failed_condition_after_a_lost_answer_says_it_may_be_ours() {
        let r = Retrier::new(fast(8, 500));
        let calls = AtomicU32::new(0);
        let e = r
            .run(|| async {
                match calls.fetch_add(1, Ordering::Relaxed) {
                    0 => Err::<(), _>(err(StoreErrorKind::Interrupted)),
                    _ => Err(err(StoreErrorKind::PreconditionFailed)),
                }
            })
            .await
            .unwrap_err();
        assert!(e.is_precondition_failed());
        assert!(
            e.message.contains("attempt 2")
                && e.message.contains("may be the one this request wrote"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn retry_after_is_honoured_up_to_its_cap() {
        let mut p = fast(3, 500);
        p.max_retry_after = Duration::from_millis(120);
        let r = Retrier::new(p);
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        r.run(|| async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 => Err(Failed {
                    retry_after: Some(Duration::from_millis(60)),
                    ..err(StoreErrorKind::Throttled)
                }),
                1 => Err(Failed {
                    retry_after: Some(Duration::from_secs(3600)),
                    ..err(StoreErrorKind::Throttled)
                }),
                _ => Ok(()),
            }
        })
        .await
        .unwrap();
        let t = started.elapsed();
        assert!(t >= Duration::from_millis(180), "{t:?}");
        assert!(t < Duration::from_secs(2), "{t:?}");
    }

    #[tokio::test]
    async fn no_retry_starts_after_the_time_allowed() {
        let mut p = fast(100, 5000);
        p.max_elapsed = Duration::from_millis(50);
        let r = Retrier::new(p);
        let calls = AtomicU32::new(0);
        let e = r
            .run(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err::<(), _>(err(StoreErrorKind::ServerError))
            })
            .await
            .unwrap_err();
        let n = calls.load(Ordering::Relaxed);
        assert!((2..=4).contains(&n), "{n}");
        assert!(
            e.message.contains("the time allowed for one request"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn every_attempt_goes_through_the_limiter_and_throttling_shrinks_its_window() {
        let mut p = fast(8, 500);
        p.throttle.max_window = 16;
        let r = Retrier::new(p);
        r.mark_connected();
        let calls = AtomicU32::new(0);
        let v = r
            .run(|| async {
                match calls.fetch_add(1, Ordering::Relaxed) {
                    0 => Err(err(StoreErrorKind::Throttled)),
                    1 => Err(err(StoreErrorKind::Interrupted)),
                    _ => Ok(3),
                }
            })
            .await
            .unwrap();
        assert_eq!(v, 3);
        let s = r.throttle().stats();
        assert_eq!((s.requests, s.throttled), (3, 1));
        // Halved to 1 from the one attempt in flight; the broken connection says nothing; the
        // answer that followed, with the window full, grew it by one (1/window).
        assert_eq!((s.window, s.min_window), (2, 1));
        assert!(
            s.note()
                .unwrap()
                .starts_with("throttled: 1 answers 503/429")
        );
    }

    #[tokio::test]
    async fn run_after_continues_the_count() {
        let r = Retrier::new(fast(4, 500));
        let calls = AtomicU32::new(0);
        let e = r
            .run_after(2, err(StoreErrorKind::Interrupted), || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(err(StoreErrorKind::Interrupted))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::Relaxed), 2, "attempts 3 and 4");
        assert!(e.message.contains("gave up after 4 attempts"), "{e}");
    }
}
