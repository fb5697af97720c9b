//! A fault-injecting HTTP/1.1 proxy for S3 tests: [`FaultProxy`].
//!
//! The proxy listens on `127.0.0.1:0` in front of an upstream S3 endpoint (Garage, s3s-fs) and
//! forwards every request verbatim — method, path and query as sent, every header including
//! `Host`, the body — so SigV4 signatures made for the proxy's address stay valid upstream. Point
//! a store at [`FaultProxy::endpoint`] instead of the server's endpoint:
//!
//! ```ignore
//! let proxy = FaultProxy::start(&garage.endpoint).await;
//! let url = format!("s3://bkt?endpoint={}&region=us-east-1&addressing-style=path", proxy.endpoint());
//! proxy.set_rules(vec![Rule::new(Fault::Status(503)).method("GET").path("*.narinfo").first()]);
//! // … the first GET of a narinfo answers 503 SlowDown, everything else is forwarded …
//! assert_eq!(proxy.injected().get(FaultKind::Status), 1);
//! ```
//!
//! **Rules** ([`Rule`]) pick requests by method, by a pattern on the request target (path and
//! query exactly as sent, e.g. `/bkt/abc.narinfo` or `/bkt?list-type=2&prefix=nar%2F`; a pattern
//! with `*` is a glob over the whole target, one without is a substring). Each rule has a
//! [`Fault`], a probability, and a budget: every matching request (the default), at most N
//! faults ([`Rule::at_most`]), or only the Nth matching request ([`Rule::nth`],
//! [`Rule::first`]). Rules are tried in order; the first one that matches, is within its budget
//! and wins its dice roll injects its fault; a request no rule picks is forwarded unchanged.
//! Rules can be replaced at any time ([`FaultProxy::set_rules`], [`FaultProxy::clear`]).
//!
//! **Faults**: an S3-style error status without forwarding (500 `InternalError`, 503 `SlowDown`,
//! 429 `TooManyRequests`, 502/504 from a "load balancer"); a connection reset (TCP RST) before
//! any answer, either without forwarding the request or after the upstream handled it (a lost
//! answer); a connection closed in the middle of the body; a body cut short with the original
//! `Content-Length` (the client sees the connection end early) or with `Content-Length` fixed to
//! the shorter length (invisible at the HTTP level); a delay before forwarding; an `ETag` header
//! replaced (a provider whose ETags are not MD5s); the answer's body replaced (per-key errors
//! in a DeleteObjects result). Body faults apply only to answers with a body
//! (never HEAD, never an empty body); where they do not apply the request is forwarded unchanged
//! and nothing is counted.
//!
//! **Rate limit** ([`FaultProxy::set_rate_limit`]): like a provider that throttles (B2 at
//! about 500 requests/s per account, S3 per prefix), the proxy forwards at most N requests in
//! any sliding second and answers every other request at once with 503 `SlowDown`, before
//! the rules are consulted; [`FaultProxy::rate_limited`] counts those answers (they are also
//! [`FaultKind::RateLimit`] in [`FaultProxy::injected`]).
//!
//! **Randomness** is seeded: `NARSCOPE_FAULT_SEED=<u64>` reproduces a run; otherwise a random seed
//! is chosen and printed on stderr ([`FaultProxy::seed`]).
//!
//! **Counters**: [`FaultProxy::injected`] counts the faults injected by kind;
//! [`FaultProxy::requests`] logs every request seen (method, target, `Range`, `If-Match`,
//! `Content-Encoding`, `x-amz-storage-class`, and the fault injected, if any).
//!
//! The proxy runs on the calling test's tokio runtime and stops with it.

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where a body fault cuts the body.
#[derive(Clone, Copy, Debug)]
pub enum Cut {
    /// After half of the bytes (rounded down; at least 1 byte is always withheld).
    Half,
    /// After this many bytes (fewer if the body is shorter; at least 1 byte is withheld).
    At(usize),
}

impl Cut {
    fn keep(self, len: usize) -> usize {
        let n = match self {
            Cut::Half => len / 2,
            Cut::At(n) => n,
        };
        n.min(len.saturating_sub(1))
    }
}

/// What the proxy does to a request a rule picked.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status without forwarding, with an S3 error body: 500 `InternalError`,
    /// 503 `SlowDown`, 429 `TooManyRequests`; 502 and 504 come with a plain-text body, as from
    /// a load balancer.
    Status(u16),
    /// Reset the connection (TCP RST) without forwarding the request.
    Reset,
    /// Forward the request, wait for the upstream's answer, then reset the connection instead
    /// of answering: the request took effect but its answer is lost.
    ResetAfterForward,
    /// Forward, send the status, the headers and the body up to the cut, then close the
    /// connection.
    ResetMidBody(Cut),
    /// Forward, send the body up to the cut with the original `Content-Length`, end the body.
    TruncateKeepLength(Cut),
    /// Forward, send the body up to the cut with `Content-Length` set to the shorter length.
    TruncateFixLength(Cut),
    /// Wait, then forward.
    Delay(Duration),
    /// Forward, with the answer's `ETag` header replaced by this value.
    RewriteEtag(String),
    /// Forward, then answer with the upstream's status and headers but this body (e.g. a
    /// DeleteObjects result with per-key errors).
    ReplaceBody(String),
    /// One of these, picked at random (seeded) for each request.
    AnyOf(Vec<Fault>),
}

/// The kind of a [`Fault`], for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// [`Fault::Status`].
    Status,
    /// [`Fault::Reset`].
    Reset,
    /// [`Fault::ResetAfterForward`].
    ResetAfterForward,
    /// [`Fault::ResetMidBody`].
    ResetMidBody,
    /// [`Fault::TruncateKeepLength`].
    TruncateKeepLength,
    /// [`Fault::TruncateFixLength`].
    TruncateFixLength,
    /// [`Fault::Delay`].
    Delay,
    /// [`Fault::RewriteEtag`].
    RewriteEtag,
    /// [`Fault::ReplaceBody`].
    ReplaceBody,
    /// A 503 `SlowDown` of the rate limit ([`FaultProxy::set_rate_limit`]).
    RateLimit,
}

impl Fault {
    fn kind(&self) -> Option<FaultKind> {
        Some(match self {
            Fault::Status(_) => FaultKind::Status,
            Fault::Reset => FaultKind::Reset,
            Fault::ResetAfterForward => FaultKind::ResetAfterForward,
            Fault::ResetMidBody(_) => FaultKind::ResetMidBody,
            Fault::TruncateKeepLength(_) => FaultKind::TruncateKeepLength,
            Fault::TruncateFixLength(_) => FaultKind::TruncateFixLength,
            Fault::Delay(_) => FaultKind::Delay,
            Fault::RewriteEtag(_) => FaultKind::RewriteEtag,
            Fault::ReplaceBody(_) => FaultKind::ReplaceBody,
            Fault::AnyOf(_) => return None,
        })
    }

    /// Every plain fault kind once, with short delays and half cuts: a good mix for random runs.
    pub fn every_kind(delay: Duration) -> Fault {
        Fault::AnyOf(vec![
            Fault::Status(500),
            Fault::Status(503),
            Fault::Status(429),
            Fault::Reset,
            Fault::ResetAfterForward,
            Fault::ResetMidBody(Cut::Half),
            Fault::TruncateKeepLength(Cut::Half),
            Fault::TruncateFixLength(Cut::Half),
            Fault::Delay(delay),
        ])
    }
}

#[derive(Clone, Copy, Debug)]
enum Budget {
    Always,
    AtMost(u64),
    Nth(u64),
}

/// Which requests get a fault, and which fault. See the module documentation.
#[derive(Clone, Debug)]
pub struct Rule {
    method: Option<String>,
    target: Option<String>,
    fault: Fault,
    probability: f64,
    budget: Budget,
    matched: u64,
    injected: u64,
}

impl Rule {
    /// Every request, always this fault (narrow it with the builder methods).
    pub fn new(fault: Fault) -> Rule {
        Rule {
            method: None,
            target: None,
            fault,
            probability: 1.0,
            budget: Budget::Always,
            matched: 0,
            injected: 0,
        }
    }

    /// Only requests with this method (`GET`, `PUT`, `HEAD`, `POST`, `DELETE`).
    pub fn method(mut self, m: &str) -> Rule {
        self.method = Some(m.to_ascii_uppercase());
        self
    }

    /// Only requests whose target (path and query as sent) matches: a glob over the whole
    /// target if `pattern` has a `*`, else a substring.
    pub fn path(mut self, pattern: &str) -> Rule {
        self.target = Some(pattern.to_string());
        self
    }

    /// Inject with this probability (0..=1) per matching request.
    pub fn probability(mut self, p: f64) -> Rule {
        self.probability = p;
        self
    }

    /// At most `n` faults from this rule.
    pub fn at_most(mut self, n: u64) -> Rule {
        self.budget = Budget::AtMost(n);
        self
    }

    /// Only the `n`th matching request (1-based).
    pub fn nth(mut self, n: u64) -> Rule {
        self.budget = Budget::Nth(n);
        self
    }

    /// Only the first matching request.
    pub fn first(self) -> Rule {
        self.nth(1)
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.target.as_deref().is_none_or(|p| {
                if p.contains('*') {
                    glob(p.as_bytes(), target.as_bytes())
                } else {
                    target.contains(p)
                }
            })
    }
}

/// `*` matches any run of bytes; everything else matches itself.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// Faults injected so far, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Injected(pub BTreeMap<FaultKind, u64>);

impl Injected {
    /// Faults of this kind.
    pub fn get(&self, k: FaultKind) -> u64 {
        self.0.get(&k).copied().unwrap_or_default()
    }

    /// All faults.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `PUT`, …
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// The `Range` header.
    pub range: Option<String>,
    /// The `If-Match` header.
    pub if_match: Option<String>,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<String>,
    /// The `x-amz-storage-class` header.
    pub storage_class: Option<String>,
    /// The fault injected, if any.
    pub fault: Option<FaultKind>,
}

/// The rate limit: at most `per_sec` requests forwarded in any sliding second.
struct RateLimit {
    per_sec: usize,
    /// When the requests of the last second were let through, oldest first.
    passed: std::collections::VecDeque<std::time::Instant>,
}

impl RateLimit {
    /// Whether a request arriving `now` may pass (and if so, counts it).
    fn admit(&mut self, now: std::time::Instant) -> bool {
        while self
            .passed
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.passed.pop_front();
        }
        if self.passed.len() < self.per_sec {
            self.passed.push_back(now);
            true
        } else {
            false
        }
    }
}

struct State {
    rate_limit: Option<RateLimit>,
    rules: Vec<Rule>,
    rng: fastrand::Rng,
    injected: Injected,
    seen: Vec<Seen>,
}

struct Inner {
    upstream: String,
    client: Client<HttpConnector, Incoming>,
    state: Mutex<State>,
}

/// A running fault-injecting proxy. See the module documentation.
pub struct FaultProxy {
    endpoint: String,
    seed: u64,
    inner: Arc<Inner>,
}

type ProxyBody = BoxBody<Bytes, std::io::Error>;

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`), with no rules. The seed comes
    /// from `NARSCOPE_FAULT_SEED`, else at random; it is printed on stderr.
    pub async fn start(upstream: &str) -> FaultProxy {
        let seed = std::env::var("NARSCOPE_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        FaultProxy::start_seeded(upstream, seed).await
    }

    /// Starts a proxy with this seed (printed on stderr).
    pub async fn start_seeded(upstream: &str, seed: u64) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let endpoint = format!("http://{addr}");
        eprintln!(
            "fault proxy {endpoint} → {upstream}: seed {seed} (set NARSCOPE_FAULT_SEED={seed} to \
             repeat)"
        );
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(10))
            .build_http();
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_string(),
            client,
            state: Mutex::new(State {
                rate_limit: None,
                rules: Vec::new(),
                rng: fastrand::Rng::with_seed(seed),
                injected: Injected::default(),
                seen: Vec::new(),
            }),
        });
        let accept = inner.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let reset = Arc::new(AtomicBool::new(false));
                let io = TokioIo::new(Resettable {
                    inner: socket,
                    reset: reset.clone(),
                });
                let inner = accept.clone();
                let service = hyper::service::service_fn(move |req| {
                    let inner = inner.clone();
                    let reset = reset.clone();
                    async move { inner.handle(req, reset).await }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint,
            seed,
            inner,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The seed of the proxy's random numbers.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Replaces the rules.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.state().rules = rules;
    }

    /// Removes every rule: requests are forwarded unchanged.
    pub fn clear(&self) {
        self.set_rules(Vec::new());
    }

    /// Forward at most `per_sec` requests in any sliding second and answer the others with
    /// 503 `SlowDown` (see the module documentation); `None` (or 0) lifts the limit.
    pub fn set_rate_limit(&self, per_sec: Option<u32>) {
        self.state().rate_limit = per_sec.filter(|n| *n > 0).map(|n| RateLimit {
            per_sec: n as usize,
            passed: std::collections::VecDeque::new(),
        });
    }

    /// Requests the rate limit answered with 503 `SlowDown` since the start (or the last
    /// [`FaultProxy::reset_counters`]).
    pub fn rate_limited(&self) -> u64 {
        self.injected().get(FaultKind::RateLimit)
    }

    /// Requests seen since the start (or the last [`FaultProxy::reset_counters`]), refused
    /// ones included; cheaper than `requests().len()`.
    pub fn request_count(&self) -> u64 {
        self.state().seen.len() as u64
    }

    /// Faults injected since the start (or the last [`FaultProxy::reset_counters`]).
    pub fn injected(&self) -> Injected {
        self.state().injected.clone()
    }

    /// Every request seen since the start (or the last [`FaultProxy::reset_counters`]).
    pub fn requests(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// Zeroes the counters and the request log.
    pub fn reset_counters(&self) {
        let mut st = self.state();
        st.injected = Injected::default();
        st.seen.clear();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A TCP stream that is closed with a reset (SO_LINGER 0) once `reset` is set.
struct Resettable {
    inner: tokio::net::TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Resettable {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for Resettable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Resettable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The service's error: the connection is dropped without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

fn full(b: impl Into<Bytes>) -> ProxyBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Picks the fault for a request (if any) and logs the request; `true` when the rate
    /// limit refused it (the fault is then a 503).
    fn pick(&self, req: &Request<Incoming>) -> (Option<Fault>, bool) {
        let method = req.method().as_str().to_string();
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let mut st = self.state();
        let limited = st
            .rate_limit
            .as_mut()
            .is_some_and(|r| !r.admit(std::time::Instant::now()));
        let State { rules, rng, .. } = &mut *st;
        let mut chosen = limited.then_some(Fault::Status(503));
        for rule in rules.iter_mut().filter(|_| !limited) {
            if !rule.matches(&method, &target) {
                continue;
            }
            rule.matched += 1;
            let within = match rule.budget {
                Budget::Always => true,
                Budget::AtMost(n) => rule.injected < n,
                Budget::Nth(n) => rule.matched == n,
            };
            if within && rng.f64() < rule.probability {
                rule.injected += 1;
                let mut f = rule.fault.clone();
                while let Fault::AnyOf(options) = f {
                    if options.is_empty() {
                        return (None, false);
                    }
                    f = options[rng.usize(..options.len())].clone();
                }
                chosen = Some(f);
                break;
            }
        }
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        st.seen.push(Seen {
            method,
            target,
            range: header("range"),
            if_match: header("if-match"),
            content_encoding: header("content-encoding"),
            storage_class: header("x-amz-storage-class"),
            fault: None,
        });
        (chosen, limited)
    }

    /// Counts an injected fault and notes it on the request's log entry.
    fn count(&self, kind: FaultKind, seen_index: usize) {
        let mut st = self.state();
        *st.injected.0.entry(kind).or_default() += 1;
        if let Some(s) = st.seen.get_mut(seen_index) {
            s.fault = Some(kind);
        }
    }

    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Incoming>, Dropped> {
        let (mut parts, body) = req.into_parts();
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        parts.uri = format!("{}{target}", self.upstream)
            .parse()
            .map_err(|_| Dropped)?;
        self.client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|_| Dropped)
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        reset: Arc<AtomicBool>,
    ) -> Result<Response<ProxyBody>, Dropped> {
        let (fault, rate_limited) = self.pick(&req);
        let index = self.state().seen.len() - 1;
        let is_head = req.method() == hyper::Method::HEAD;
        let Some(fault) = fault else {
            let resp = self.forward(req).await?;
            return Ok(resp.map(|b| b.map_err(std::io::Error::other).boxed()));
        };
        let kind = if rate_limited {
            FaultKind::RateLimit
        } else {
            fault.kind().unwrap_or(FaultKind::Status)
        };
        match fault {
            Fault::Status(status) => {
                self.count(kind, index);
                let (code, xml) = match status {
                    503 => ("SlowDown", true),
                    429 => ("TooManyRequests", true),
                    502 | 504 => ("", false),
                    _ => ("InternalError", true),
                };
                let body = if is_head {
                    Bytes::new()
                } else if xml {
                    Bytes::from(format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                         <Message>injected by the fault proxy</Message>\
                         <RequestId>fault-{index}</RequestId></Error>"
                    ))
                } else {
                    Bytes::from_static(b"upstream unavailable\n")
                };
                Response::builder()
                    .status(status)
                    .header(
                        "content-type",
                        if xml { "application/xml" } else { "text/plain" },
                    )
                    .header("content-length", body.len())
                    .body(full(body))
                    .map_err(|_| Dropped)
            }
            Fault::Reset => {
                self.count(kind, index);
                reset.store(true, Ordering::Relaxed);
                Err(Dropped)
            }
            Fault::ResetAfterForward => {
                let resp = self.forward(req).await?;
                // Let the upstream finish its answer, so the request surely took effect.
                let _ = resp.into_body().collect().await;
                self.count(kind, index);
                reset.store(true, Ordering::Relaxed);
                Err(Dropped)
            }
            Fault::Delay(d) => {
                self.count(kind, index);
                tokio::time::sleep(d).await;
                let resp = self.forward(req).await?;
                Ok(resp.map(|b| b.map_err(std::io::Error::other).boxed()))
            }
            Fault::ReplaceBody(body) => {
                let resp = self.forward(req).await?;
                let (mut parts, old) = resp.into_parts();
                let _ = old.collect().await;
                self.count(kind, index);
                parts.headers.insert("content-length", body.len().into());
                Ok(Response::from_parts(parts, full(body)))
            }
            Fault::RewriteEtag(etag) => {
                let mut resp = self.forward(req).await?;
                if let Ok(v) = http::HeaderValue::from_str(&etag)
                    && resp.headers().contains_key("etag")
                {
                    self.count(kind, index);
                    resp.headers_mut().insert("etag", v);
                }
                Ok(resp.map(|b| b.map_err(std::io::Error::other).boxed()))
            }
            Fault::ResetMidBody(cut)
            | Fault::TruncateKeepLength(cut)
            | Fault::TruncateFixLength(cut) => {
                let resp = self.forward(req).await?;
                let (mut parts, body) = resp.into_parts();
                let bytes = body.collect().await.map_err(|_| Dropped)?.to_bytes();
                if is_head || bytes.is_empty() {
                    // Nothing to cut: forward unchanged, count nothing.
                    return Ok(Response::from_parts(parts, full(bytes)));
                }
                self.count(kind, index);
                let kept = bytes.slice(..cut.keep(bytes.len()));
                let body: ProxyBody = match kind {
                    FaultKind::TruncateFixLength => {
                        parts.headers.insert("content-length", kept.len().into());
                        full(kept)
                    }
                    FaultKind::TruncateKeepLength => {
                        parts.headers.insert("content-length", bytes.len().into());
                        let frames =
                            futures::stream::iter([Ok::<_, std::io::Error>(Frame::data(kept))]);
                        BodyExt::boxed(StreamBody::new(frames))
                    }
                    _ => {
                        parts.headers.insert("content-length", bytes.len().into());
                        // Send the kept bytes, give them time to leave, then break off.
                        let frames = futures::stream::iter([Ok(Frame::data(kept))]).chain(
                            futures::stream::once(async {
                                tokio::time::sleep(Duration::from_millis(30)).await;
                                Err(std::io::Error::other("fault proxy: connection broken"))
                            }),
                        );
                        BodyExt::boxed(StreamBody::new(frames))
                    }
                };
                Ok(Response::from_parts(parts, body))
            }
            // `pick` resolves every choice; an empty one injects nothing.
            Fault::AnyOf(_) => {
                let resp = self.forward(req).await?;
                Ok(resp.map(|b| b.map_err(std::io::Error::other).boxed()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs() {
        assert!(super::glob(b"/b/*.narinfo", b"/b/abc.narinfo"));
        assert!(!super::glob(b"/b/*.narinfo", b"/b/abc.narinfo.ls"));
        assert!(super::glob(b"*", b""));
    }
}
