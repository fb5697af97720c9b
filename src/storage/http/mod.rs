//! A read-only HTTP(S) binary cache ([`HttpStore`]), as Nix's `http://` and `https://`
//! stores read one: GET and HEAD below the URL's path.
//!
//! - **Answers**: 2xx is the object; 404 and 410 are "missing"; 403 is "missing" too, as in
//!   Nix's `HttpBinaryCacheStore` (S3 buckets served over HTTP answer 403 for keys that do not
//!   exist). 401 and 407 are an error naming the host and the netrc file used, if any (Nix
//!   counts them as missing as well, which makes a cache that needs credentials look empty).
//!   Redirects (301, 302, 303, 307, 308) are followed, at most [`MAX_REDIRECTS`] per request,
//!   as Cachix and CDNs redirect NAR downloads; credentials are looked up again for each host.
//!   A server that refuses HEAD (405, 501) is asked with GET instead, from then on.
//! - **Retries and throttling**: the same policy as the S3 backend ([`super::retry`]): 5xx
//!   but 501/505/511, 408, 429, broken connections and timeouts are transient and retried
//!   with backoff under the store's retry budget; 429 and 503 are "slow down" and shrink the
//!   store's [`Throttle`] window. At most [`HttpOptions::concurrency`] requests are in flight
//!   (a semaphore; a streamed object holds its slot until it is read or dropped).
//! - **`Content-Encoding`**: [`Store::get`] returns the body as sent, with its
//!   [`GetResult::content_encoding`], exactly as the S3 backend does for objects stored with
//!   a `Content-Encoding`: the readers of small objects (narinfos, `.ls`, `nix-cache-info`)
//!   decode it ([`crate::compression::decode_content_encoding`], bounded). [`Store::get_reader`]
//!   (NARs and other large objects) decodes it as it streams, on a blocking thread with a
//!   few chunks of buffer, so a NAR reads as the stored file whose `FileHash` and `FileSize`
//!   the narinfo gives. [`Store::head`]'s size is the `Content-Length` as sent (the encoded
//!   size when the server encodes).
//! - **Credentials**: Basic auth from a netrc file ([`netrc`]): the URL's `netrc-file=`, else
//!   nix.conf's `netrc-file`, else `$NIX_CONF_DIR/netrc`. Passwords are never printed.
//! - **Read-only**: listing ([`Store::list_page`]) and every write are
//!   [`StoreErrorKind::NotSupported`] with a message saying what to do instead.

mod decode;
pub mod netrc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use super::retry::{Failed, Retrier, RetryPolicy};
use super::{
    ByteReader, ConditionalSupport, DeleteReport, GetResult, HttpUrl, ListOptions, ListPage,
    ObjectMeta, PutOptions, Store, StoreError, StoreErrorKind, Throttle,
};
pub use netrc::{Netrc, NetrcCredentials, NetrcError, NetrcSource};

/// Redirects followed for one request at most (as curl's default in Nix).
pub const MAX_REDIRECTS: usize = 10;

/// Requests in flight at most, by default (narscope's default narinfo concurrency).
pub const DEFAULT_HTTP_CONCURRENCY: usize = 64;

/// The largest body [`Store::get`] reads into memory; larger objects are read with
/// [`Store::get_reader`].
pub const MAX_GET_BODY: u64 = 1 << 30;

/// Largest error body read (and dropped) before a connection is reused.
const MAX_DRAIN: usize = 64 * 1024;

/// How an [`HttpStore`] is set up.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Retries and throttling (the S3 backend's defaults).
    pub retry: RetryPolicy,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed from a request to its answer's headers, and between two pieces of a body.
    pub read_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            concurrency: DEFAULT_HTTP_CONCURRENCY,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A read-only HTTP(S) binary cache (see the module docs).
pub struct HttpStore {
    url: HttpUrl,
    desc: String,
    client: HttpClient,
    netrc: Option<(NetrcSource, Netrc)>,
    retry: Retrier,
    slots: Arc<tokio::sync::Semaphore>,
    read_timeout: Duration,
    /// Set once the server refused a HEAD: existence is then asked with GET.
    no_head: AtomicBool,
}

impl std::fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStore")
            .field("url", &self.desc)
            .field("netrc", &self.netrc.as_ref().map(|(s, _)| s.to_string()))
            .finish_non_exhaustive()
    }
}

/// What one exchange (redirects followed) came to.
enum Reply {
    /// 2xx: the answer's headers and body, and the URL that answered.
    Found(http::response::Parts, Incoming),
    /// 404, 410 or 403.
    Missing,
    /// A HEAD refused with 405 or 501.
    HeadRefused,
}

/// A failed attempt.
fn failed(e: StoreError) -> Failed {
    Failed::from(e)
}

/// `scheme://host[:port]/path` of a URL, without its query (CDN redirect targets carry signed
/// tokens there): for messages.
fn without_query(u: &url::Url) -> String {
    let mut u = u.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The error's chain of causes, `a: b: c`.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(h: &http::HeaderMap) -> Option<Duration> {
    h.get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn header(h: &http::HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn meta_of(key: &str, h: &http::HeaderMap, size: u64) -> ObjectMeta {
    ObjectMeta {
        key: key.to_string(),
        size,
        last_modified: header(h, http::header::LAST_MODIFIED).and_then(|v| {
            aws_smithy_types::DateTime::from_str(v, aws_smithy_types::date_time::Format::HttpDate)
                .ok()
                .and_then(|d| SystemTime::try_from(d).ok())
        }),
        etag: header(h, http::header::ETAG).map(str::to_string),
    }
}

fn content_length(h: &http::HeaderMap) -> Option<u64> {
    header(h, http::header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}

fn content_encoding(h: &http::HeaderMap) -> Option<String> {
    let v = h
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    let v = v.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case("identity")).then(|| v.to_string())
}

impl HttpStore {
    /// Opens the cache at `url` (no network traffic yet): finds and reads its netrc file
    /// (an error when the URL's `netrc-file=` cannot be read or a netrc file does not parse).
    pub fn open(url: HttpUrl, opts: HttpOptions) -> Result<HttpStore, StoreError> {
        let desc = url.to_string();
        let netrc = netrc::find_netrc(url.netrc_file.as_deref()).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Credentials,
                desc.clone(),
                "open",
                e.to_string(),
            )
        })?;
        if let Some((src, _)) = &netrc {
            tracing::debug!("{desc}: credentials from netrc file {src}");
        }
        let tls = rustls::crypto::aws_lc_rs::default_provider();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(opts.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(tls)
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Unreachable,
                    desc.clone(),
                    "open",
                    format!("cannot set up TLS with the system's root certificates: {e}"),
                )
            })?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(opts.concurrency.max(1))
            .build(https);
        Ok(HttpStore {
            desc,
            client,
            netrc,
            retry: Retrier::new(opts.retry),
            slots: Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1))),
            read_timeout: opts.read_timeout,
            no_head: AtomicBool::new(false),
            url,
        })
    }

    /// The cache's URL.
    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// Where this store's credentials come from, if a netrc file applies.
    pub fn netrc_source(&self) -> Option<&NetrcSource> {
        self.netrc.as_ref().map(|(s, _)| s)
    }

    fn err(
        &self,
        kind: StoreErrorKind,
        op: &'static str,
        key: &str,
        msg: impl Into<String>,
    ) -> StoreError {
        StoreError::new(kind, self.desc.clone(), op, msg).with_key(key)
    }

    fn credentials_for(&self, host: &str) -> Option<&NetrcCredentials> {
        self.netrc.as_ref().and_then(|(_, n)| n.for_host(host))
    }

    /// One request, redirects followed.
    async fn exchange(&self, method: &http::Method, key: &str) -> Result<Reply, Failed> {
        let op = if *method == http::Method::HEAD {
            "HEAD"
        } else {
            "GET"
        };
        let first = self.url.object_url(key);
        let mut target = url::Url::parse(&first).map_err(|e| {
            failed(self.err(
                StoreErrorKind::InvalidKey,
                op,
                key,
                format!("not a URL: {first}: {e}"),
            ))
        })?;
        for _hop in 0..=MAX_REDIRECTS {
            let host = target.host_str().unwrap_or_default().to_string();
            let mut b = http::Request::builder()
                .method(method.clone())
                .uri(target.as_str())
                .header(
                    http::header::USER_AGENT,
                    concat!("narscope/", env!("CARGO_PKG_VERSION")),
                );
            let creds = self.credentials_for(&host);
            if let Some(c) = creds {
                let mut v = http::HeaderValue::from_str(&c.basic_auth()).map_err(|_| {
                    failed(self.err(
                        StoreErrorKind::Credentials,
                        op,
                        key,
                        format!("the netrc login for {host} cannot be sent in an HTTP header"),
                    ))
                })?;
                v.set_sensitive(true);
                b = b.header(http::header::AUTHORIZATION, v);
            }
            let req = b.body(Empty::<Bytes>::new()).map_err(|e| {
                failed(self.err(StoreErrorKind::InvalidKey, op, key, format!("request: {e}")))
            })?;
            let resp = match tokio::time::timeout(self.read_timeout, self.client.request(req)).await
            {
                Err(_) => {
                    return Err(failed(self.err(
                        StoreErrorKind::Timeout,
                        op,
                        key,
                        format!(
                            "no answer from {} in {} s",
                            without_query(&target),
                            self.read_timeout.as_secs()
                        ),
                    )));
                }
                Ok(Err(e)) => {
                    let kind = if e.is_connect() {
                        StoreErrorKind::Unreachable
                    } else {
                        StoreErrorKind::Interrupted
                    };
                    return Err(failed(self.err(
                        kind,
                        op,
                        key,
                        format!("{}: {}", without_query(&target), error_chain(&e)),
                    )));
                }
                Ok(Ok(r)) => r,
            };
            self.retry.mark_connected();
            let status = resp.status().as_u16();
            let (parts, body) = resp.into_parts();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let loc = header(&parts.headers, http::header::LOCATION).map(str::to_string);
                drain(body).await;
                let Some(loc) = loc else {
                    return Err(failed(self.err(
                        StoreErrorKind::Other,
                        op,
                        key,
                        format!(
                            "HTTP {status} without a Location from {}",
                            without_query(&target)
                        ),
                    )));
                };
                target = target.join(&loc).map_err(|e| {
                    failed(self.err(
                        StoreErrorKind::Other,
                        op,
                        key,
                        format!("HTTP {status} to a Location that is not a URL ({e})"),
                    ))
                })?;
                if !matches!(target.scheme(), "http" | "https") {
                    return Err(failed(self.err(
                        StoreErrorKind::Other,
                        op,
                        key,
                        format!(
                            "HTTP {status} to a {}: URL, which is not HTTP",
                            target.scheme()
                        ),
                    )));
                }
                continue;
            }
            return match status {
                200..=299 => Ok(Reply::Found(parts, body)),
                403 | 404 | 410 => {
                    drain(body).await;
                    Ok(Reply::Missing)
                }
                405 | 501 if op == "HEAD" => {
                    drain(body).await;
                    Ok(Reply::HeadRefused)
                }
                s => {
                    let after = retry_after(&parts.headers);
                    drain(body).await;
                    Err(Failed {
                        error: self.status_error(s, op, key, &target, creds.is_some()),
                        retry_after: after,
                    })
                }
            };
        }
        Err(failed(self.err(
            StoreErrorKind::Other,
            op,
            key,
            format!(
                "more than {MAX_REDIRECTS} redirects (last to {})",
                without_query(&target)
            ),
        )))
    }

    fn status_error(
        &self,
        status: u16,
        op: &'static str,
        key: &str,
        target: &url::Url,
        sent_credentials: bool,
    ) -> StoreError {
        let at = without_query(target);
        let host = target.host_str().unwrap_or_default();
        let (kind, what) = match status {
            401 | 407 => (StoreErrorKind::Credentials, "authentication required"),
            429 => (StoreErrorKind::Throttled, "too many requests"),
            503 => (StoreErrorKind::Throttled, "service unavailable"),
            408 => (
                StoreErrorKind::Timeout,
                "the server timed out waiting for the request",
            ),
            501 | 505 | 511 => (StoreErrorKind::NotSupported, "refused by the server"),
            500..=599 => (StoreErrorKind::ServerError, "server error"),
            _ => (StoreErrorKind::Other, "unexpected answer"),
        };
        let e = self.err(kind, op, key, format!("HTTP {status} ({what}) from {at}"));
        if kind != StoreErrorKind::Credentials {
            return e;
        }
        let advice = match (&self.netrc, sent_credentials) {
            (Some((src, _)), true) => {
                format!("the server refused the credentials for {host} from the netrc file {src}")
            }
            (Some((src, _)), false) => format!(
                "the netrc file {src} has no `machine {host}` (nor `default`) entry; add \
                 `machine {host} login USER password …`"
            ),
            (None, _) => format!(
                "no netrc file applies: write `machine {host} login USER password …` to a file \
                 and name it with ?netrc-file=/path in the cache URL, or set netrc-file in \
                 nix.conf (Nix's default is $NIX_CONF_DIR/netrc)"
            ),
        };
        e.with_advice(advice)
    }

    /// Runs `f` with a concurrency slot and the retry policy.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failed>>,
    {
        let _slot = self.slots.acquire().await;
        self.retry.run(f).await
    }

    async fn get_once(&self, key: &str) -> Result<Option<GetResult>, Failed> {
        let (parts, body) = match self.exchange(&http::Method::GET, key).await? {
            Reply::Found(p, b) => (p, b),
            _ => return Ok(None),
        };
        let expected = content_length(&parts.headers);
        if let Some(n) = expected
            && n > MAX_GET_BODY
        {
            return Err(failed(self.err(
                StoreErrorKind::Other,
                "GET",
                key,
                format!("the object has {n} bytes, more than the {MAX_GET_BODY} read into memory"),
            )));
        }
        let bytes = self.read_body(body, expected, key).await?;
        Ok(Some(GetResult {
            meta: meta_of(key, &parts.headers, bytes.len() as u64),
            content_encoding: content_encoding(&parts.headers),
            bytes,
        }))
    }

    /// A whole body, checked against its `Content-Length`.
    async fn read_body(
        &self,
        mut body: Incoming,
        expected: Option<u64>,
        key: &str,
    ) -> Result<Bytes, Failed> {
        let cap = usize::try_from(expected.unwrap_or(0).min(1 << 24)).unwrap_or(0);
        let mut buf = bytes::BytesMut::with_capacity(cap);
        loop {
            let frame = match tokio::time::timeout(self.read_timeout, body.frame()).await {
                Err(_) => {
                    return Err(failed(self.err(
                        StoreErrorKind::Timeout,
                        "GET",
                        key,
                        format!(
                            "the body stalled after {} bytes (nothing for {} s)",
                            buf.len(),
                            self.read_timeout.as_secs()
                        ),
                    )));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(failed(self.err(
                        StoreErrorKind::Interrupted,
                        "GET",
                        key,
                        format!(
                            "the body broke after {} bytes: {}",
                            buf.len(),
                            error_chain(&e)
                        ),
                    )));
                }
                Ok(Some(Ok(f))) => f,
            };
            if let Ok(d) = frame.into_data() {
                buf.extend_from_slice(&d);
                if buf.len() as u64 > MAX_GET_BODY {
                    return Err(failed(self.err(
                        StoreErrorKind::Other,
                        "GET",
                        key,
                        format!(
                            "the object is larger than the {MAX_GET_BODY} bytes read into memory"
                        ),
                    )));
                }
            }
        }
        if let Some(n) = expected
            && n != buf.len() as u64
        {
            return Err(failed(self.err(
                StoreErrorKind::Interrupted,
                "GET",
                key,
                format!(
                    "the body has {} bytes, its Content-Length says {n}",
                    buf.len()
                ),
            )));
        }
        Ok(buf.freeze())
    }

    async fn head_once(&self, key: &str) -> Result<Option<ObjectMeta>, Failed> {
        let method = if self.no_head.load(Ordering::Relaxed) {
            http::Method::GET
        } else {
            http::Method::HEAD
        };
        match self.exchange(&method, key).await? {
            Reply::Missing => Ok(None),
            Reply::Found(parts, body) => {
                // After a GET (HEAD refused), the body is dropped unread.
                drop(body);
                let size = content_length(&parts.headers).unwrap_or_default();
                Ok(Some(meta_of(key, &parts.headers, size)))
            }
            Reply::HeadRefused => {
                tracing::debug!("{}: HEAD refused; asking with GET from now on", self.desc);
                self.no_head.store(true, Ordering::Relaxed);
                match self.exchange(&http::Method::GET, key).await? {
                    Reply::Found(parts, body) => {
                        drop(body);
                        let size = content_length(&parts.headers).unwrap_or_default();
                        Ok(Some(meta_of(key, &parts.headers, size)))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    fn read_only(&self, op: &'static str, key: &str) -> StoreError {
        self.err(
            StoreErrorKind::NotSupported,
            op,
            key,
            "this is an HTTP cache: narscope reads it but cannot write to it; write to the \
             bucket or directory it serves (its s3:// or file:// URL)",
        )
    }
}

/// Reads and drops a small body, so its connection can be reused.
async fn drain(body: Incoming) {
    let _ = http_body_util::Limited::new(body, MAX_DRAIN)
        .collect()
        .await;
}

/// The state of a streamed body.
struct Streaming {
    body: Incoming,
    read_timeout: Duration,
    store: String,
    key: String,
    got: u64,
    expected: Option<u64>,
    done: bool,
    /// Held until the body is read or dropped.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Streaming {
    fn fault(&self, kind: StoreErrorKind, msg: String) -> std::io::Error {
        let e = StoreError::new(kind, self.store.clone(), "GET", msg).with_key(self.key.clone());
        let io_kind = if kind == StoreErrorKind::Timeout {
            std::io::ErrorKind::TimedOut
        } else {
            std::io::ErrorKind::ConnectionAborted
        };
        std::io::Error::new(io_kind, e)
    }

    async fn step(mut self) -> Option<(std::io::Result<Bytes>, Streaming)> {
        loop {
            if self.done {
                return None;
            }
            let frame = match tokio::time::timeout(self.read_timeout, self.body.frame()).await {
                Err(_) => {
                    self.done = true;
                    let e = self.fault(
                        StoreErrorKind::Timeout,
                        format!(
                            "the body stalled after {} bytes (nothing for {} s)",
                            self.got,
                            self.read_timeout.as_secs()
                        ),
                    );
                    return Some((Err(e), self));
                }
                Ok(None) => {
                    self.done = true;
                    if let Some(n) = self.expected
                        && n != self.got
                    {
                        let e = self.fault(
                            StoreErrorKind::Interrupted,
                            format!("the body ended after {} of its {n} bytes", self.got),
                        );
                        return Some((Err(e), self));
                    }
                    return None;
                }
                Ok(Some(Err(e))) => {
                    self.done = true;
                    let e = self.fault(
                        StoreErrorKind::Interrupted,
                        format!(
                            "the body broke after {} bytes: {}",
                            self.got,
                            error_chain(&e)
                        ),
                    );
                    return Some((Err(e), self));
                }
                Ok(Some(Ok(f))) => f,
            };
            if let Ok(d) = frame.into_data() {
                if d.is_empty() {
                    continue;
                }
                self.got += d.len() as u64;
                return Some((Ok(d), self));
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for HttpStore {
    fn describe(&self) -> String {
        self.desc.clone()
    }

    async fn list_page(
        &self,
        prefix: &str,
        _token: Option<String>,
    ) -> Result<ListPage, StoreError> {
        Err(self.err(
            StoreErrorKind::NotSupported,
            "list",
            prefix,
            "an HTTP cache cannot be listed; name store paths (e.g. `verify CACHE /nix/store/…`, \
             `show CACHE PATH`), or list the bucket or directory it serves",
        ))
    }

    async fn list_page_with(
        &self,
        prefix: &str,
        token: Option<String>,
        _opts: &ListOptions,
    ) -> Result<ListPage, StoreError> {
        self.list_page(prefix, token).await
    }

    async fn get(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        self.run(|| self.get_once(key)).await
    }

    async fn get_reader(&self, key: &str) -> Result<Option<(ObjectMeta, ByteReader)>, StoreError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.err(StoreErrorKind::Other, "GET", key, "the store is closed"))?;
        let reply = self
            .retry
            .run(|| async {
                match self.exchange(&http::Method::GET, key).await? {
                    Reply::Found(p, b) => Ok(Some((p, b))),
                    _ => Ok(None),
                }
            })
            .await?;
        let Some((parts, body)) = reply else {
            return Ok(None);
        };
        let encoding = content_encoding(&parts.headers);
        let length = content_length(&parts.headers);
        let st = Streaming {
            body,
            read_timeout: self.read_timeout,
            store: self.desc.clone(),
            key: key.to_string(),
            got: 0,
            expected: length,
            done: false,
            _slot: slot,
        };
        let stream = futures::stream::unfold(st, Streaming::step);
        let Some(header) = encoding else {
            let meta = meta_of(key, &parts.headers, length.unwrap_or_default());
            let reader: ByteReader = Box::pin(tokio_util::io::StreamReader::new(Box::pin(stream)));
            return Ok(Some((meta, reader)));
        };
        let codings = decode::parse_codings(&header).map_err(|token| {
            self.err(
                StoreErrorKind::NotSupported,
                "GET",
                key,
                format!(
                    "the server sent Content-Encoding: {header}, and `{token}` is no coding \
                     narscope can undo (gzip, deflate, br, zstd, xz, bzip2)"
                ),
            )
        })?;
        // The decoded size is known only once read.
        let meta = meta_of(key, &parts.headers, 0);
        let reader = decode::decoded_reader(
            stream,
            decode::Decode {
                codings,
                header,
                store: self.desc.clone(),
                key: key.to_string(),
            },
        );
        Ok(Some((meta, reader)))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.run(|| self.head_once(key)).await
    }

    async fn put(
        &self,
        key: &str,
        _body: Bytes,
        _opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        Err(self.read_only("PUT", key))
    }

    async fn put_file(
        &self,
        key: &str,
        _path: &std::path::Path,
        _opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        Err(self.read_only("PUT", key))
    }

    fn throttle(&self) -> Option<&Throttle> {
        Some(self.retry.throttle())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<DeleteReport, StoreError> {
        Err(self.read_only(
            "DELETE",
            keys.first().map(String::as_str).unwrap_or_default(),
        ))
    }

    async fn ensure_container(&self) -> Result<bool, StoreError> {
        Err(self.read_only("create", ""))
    }

    async fn probe_conditional_writes(&self) -> Result<ConditionalSupport, StoreError> {
        Err(self.read_only("probe conditional writes", ""))
    }
}
