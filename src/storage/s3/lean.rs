//! A lean signed GET and PUT for small objects, beside the AWS SDK.
//!
//! An audit fetches one small narinfo per path and `sign` writes one back, and on a fast link
//! the SDK's per-request work (its interceptor and retry machinery) costs more CPU than the
//! request itself. This path signs a plain HTTP/1.1 request with SigV4 and sends it on a
//! pooled hyper client. It only ever answers the clear cases, and hands everything else to
//! the SDK, which then decides exactly as it does without this path:
//! - GET 200 with its whole body: the object; GET 404 whose body says `NoSuchKey`: missing;
//! - PUT 2xx: written; PUT 412: the write condition failed (nothing was written);
//! - transient faults — 5xx other than 501, 429, a connection that broke before or during the
//!   answer, a body shorter than its `Content-Length`, no answer in time —
//!   [`LeanOutcome::Failed`] / [`LeanPut::Failed`]: the attempt failed, and the caller's retry
//!   policy decides (see [`crate::storage::retry`]); the SDK would only have failed the same way;
//! - anything else (403, other 404s, 3xx, 501, a connection that cannot be made, credential
//!   errors): [`LeanOutcome::Fallback`], and the caller repeats the request through the SDK
//!   within the same attempt (error translation and advice included). A repeated PUT is what
//!   a retry would send: an unconditional one writes the same bytes again, and a conditional
//!   one that had in fact landed fails its condition, as after any retry.
//!
//! If the SDK keeps succeeding where this path fell back (an endpoint layout it does not know),
//! the caller turns it off for the rest of the session ([`LeanClient::strike`]).

use super::failure::{Failure, Transport, error_chain, parse_retry_after, transport_in_chain};
use crate::storage::{GetResult, ObjectMeta, S3Url};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Consecutive "fell back, then the SDK succeeded" events after which the lean path is off.
const STRIKES_TO_DISABLE: u32 = 8;
/// Credentials are refreshed this long before they expire.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(120);
/// Largest 404 body read to look for `NoSuchKey`.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// What a lean GET found.
pub(super) enum LeanOutcome {
    /// 200, with the object, and whether the server says its ETag is no MD5 (SSE-KMS, SSE-C).
    Found(GetResult, bool),
    /// A 404 whose body says `NoSuchKey`: the object is missing.
    Missing,
    /// A transient fault: this attempt failed.
    Failed(Failure),
    /// Anything else: ask the SDK. The string says why (for the debug log).
    Fallback(String),
}

/// What a lean PUT did.
pub(super) enum LeanPut {
    /// 2xx: written, with the new ETag.
    Written(Option<String>),
    /// 412: the condition failed, nothing was written.
    ConditionFailed,
    /// A transient fault: this attempt failed.
    Failed(Failure),
    /// Anything else: ask the SDK. The string says why (for the debug log).
    Fallback(String),
}

/// How a lean request ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Answered,
    Failed,
    Fallback,
}

/// How a lean request ended: settled here, failed, or handed to the SDK.
trait Answer {
    fn failed(f: Failure) -> Self;
    fn ending(&self) -> Ending;
}

impl Answer for LeanOutcome {
    fn failed(f: Failure) -> Self {
        LeanOutcome::Failed(f)
    }
    fn ending(&self) -> Ending {
        match self {
            LeanOutcome::Found(..) | LeanOutcome::Missing => Ending::Answered,
            LeanOutcome::Failed(_) => Ending::Failed,
            LeanOutcome::Fallback(_) => Ending::Fallback,
        }
    }
}

impl Answer for LeanPut {
    fn failed(f: Failure) -> Self {
        LeanPut::Failed(f)
    }
    fn ending(&self) -> Ending {
        match self {
            LeanPut::Written(_) | LeanPut::ConditionFailed => Ending::Answered,
            LeanPut::Failed(_) => Ending::Failed,
            LeanPut::Fallback(_) => Ending::Fallback,
        }
    }
}

/// A failed exchange: a transient fault ([`Failure`]) when the connection broke or timed out
/// once made; `None` (hand it to the SDK) when no connection could be made or the cause is
/// unclear.
fn exchange_failure(e: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    match transport_in_chain(e)? {
        t @ (Transport::Reset | Transport::Timeout) => {
            Some(Failure::transport(t, error_chain(e), format!("{e:?}")))
        }
        _ => None,
    }
}

/// The text of the first `<tag>…</tag>` in an S3 error body.
fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&format!("</{tag}>"))?;
    Some(text[start..end].trim().to_string()).filter(|s| !s.is_empty())
}

/// Whether a status is a transient server fault: 5xx but 501, and 429.
fn transient_status(status: u16) -> bool {
    (status >= 500 && status != 501) || status == 429
}

/// The failure a transient status answer makes, with the server's code and message.
async fn status_failure(
    status: u16,
    headers: &http::HeaderMap,
    body: hyper::body::Incoming,
) -> Failure {
    let body = http_body_util::Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Failure {
        status: Some(status),
        code: xml_text(&body, "Code"),
        message: xml_text(&body, "Message"),
        bucket_region: None,
        transport: None,
        detail: format!("HTTP {status}"),
        debug: String::new(),
        retry_after: headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after),
    }
}

/// Counters, for tests and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeanStats {
    /// Requests answered by the lean path (found, missing, written or refused by a condition).
    pub answered: u64,
    /// Requests handed to the SDK.
    pub fallbacks: u64,
    /// Requests that failed with a transient fault (retried by the store's policy).
    pub failed: u64,
    /// Whether the lean path is still in use.
    pub enabled: bool,
}

/// The lean GET and PUT client of one [`super::S3Store`].
pub(super) struct LeanClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `scheme://authority` requests go to.
    origin: String,
    /// The Host header (signed and sent).
    host: String,
    /// Encoded path up to the object key: `/bucket/prefix/` (path style) or `/prefix/`.
    path_prefix: String,
    region: String,
    provider: SharedCredentialsProvider,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
    timeout: Duration,
    enabled: AtomicBool,
    strikes: AtomicU32,
    answered: AtomicU64,
    fallbacks: AtomicU64,
    failed: AtomicU64,
}

impl LeanClient {
    /// A lean client for `url`, or `None` where the request layout is not one this path knows
    /// (an endpoint with a path, no credentials) or TLS cannot be set up; the SDK then does
    /// every request.
    pub(super) fn new(
        url: &S3Url,
        region: &str,
        provider: Option<SharedCredentialsProvider>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Option<LeanClient> {
        let provider = provider?;
        let (scheme, endpoint_host) = match &url.endpoint {
            Some(ep) => {
                let uri: http::Uri = ep.parse().ok()?;
                if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
                    return None;
                }
                (uri.scheme_str()?.to_string(), uri.authority()?.to_string())
            }
            None => {
                let suffix = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                ("https".to_string(), format!("s3.{region}.{suffix}"))
            }
        };
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let root = encode_path(&url.key_prefix());
        let (host, path_prefix) = if url.path_style() {
            (
                endpoint_host,
                format!("/{}/{root}", encode_path(&url.bucket)),
            )
        } else {
            (
                format!("{}.{endpoint_host}", url.bucket),
                format!("/{root}"),
            )
        };
        let provider_tls = rustls::crypto::aws_lc_rs::default_provider();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider_tls)
            .ok()?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(https);
        Some(LeanClient {
            client,
            origin: format!("{scheme}://{host}"),
            host,
            path_prefix,
            region: region.to_string(),
            provider,
            credentials: tokio::sync::Mutex::new(None),
            timeout,
            enabled: AtomicBool::new(true),
            strikes: AtomicU32::new(0),
            answered: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub(super) fn stats(&self) -> LeanStats {
        LeanStats {
            answered: self.answered.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            enabled: self.enabled(),
        }
    }

    /// Records that the SDK succeeded where this path fell back; enough of those in a row turn
    /// the lean path off.
    pub(super) fn strike(&self, why: &str) {
        let n = self.strikes.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= STRIKES_TO_DISABLE && self.enabled.swap(false, Ordering::Relaxed) {
            tracing::debug!(
                "lean S3 requests turned off after {n} fallbacks the SDK answered (last: {why})"
            );
        }
    }

    fn count(&self, ending: Ending) {
        match ending {
            Ending::Answered => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                self.strikes.store(0, Ordering::Relaxed);
            }
            Ending::Failed => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            Ending::Fallback => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs one request under the timeout and counts how it ended.
    async fn answer<A: Answer>(&self, request: impl std::future::Future<Output = A>) -> A {
        let a = match tokio::time::timeout(self.timeout, request).await {
            Ok(a) => a,
            Err(_) => A::failed(Failure::transport(
                Transport::Timeout,
                format!("no complete answer within {:?}", self.timeout),
                String::new(),
            )),
        };
        self.count(a.ending());
        a
    }

    /// GET `key` (relative to the cache root).
    pub(super) async fn get(&self, key: &str) -> LeanOutcome {
        self.answer(self.try_get(key)).await
    }

    /// PUT `body` at `key` (relative to the cache root) with the options' Content-Type,
    /// Content-Encoding, storage class and condition.
    pub(super) async fn put(
        &self,
        key: &str,
        body: Bytes,
        opts: &crate::storage::PutOptions,
    ) -> LeanPut {
        self.answer(self.try_put(key, body, opts)).await
    }

    async fn try_put(&self, key: &str, body: Bytes, opts: &crate::storage::PutOptions) -> LeanPut {
        let path = format!("{}{}", self.path_prefix, encode_path(key));
        let uri = format!("{}{path}", self.origin);
        let creds = match self.credentials().await {
            Ok(c) => c,
            Err(e) => return LeanPut::Fallback(e),
        };
        let mut b = http::Request::builder()
            .method(http::Method::PUT)
            .uri(&uri)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_LENGTH, body.len());
        if let Some(ct) = &opts.content_type {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some(ce) = &opts.content_encoding {
            b = b.header(http::header::CONTENT_ENCODING, ce);
        }
        if let Some(class) = &opts.storage_class {
            b = b.header("x-amz-storage-class", class);
        }
        let (if_match, if_none_match) = opts.condition.headers();
        if let Some(etag) = if_match {
            b = b.header(http::header::IF_MATCH, etag);
        }
        if let Some(any) = if_none_match {
            b = b.header(http::header::IF_NONE_MATCH, any);
        }
        let mut req = match b.body(Full::new(body.clone())) {
            Ok(r) => r,
            Err(e) => return LeanPut::Fallback(format!("request: {e}")),
        };
        if let Err(e) = self.sign(&mut req, "PUT", &uri, &body, creds) {
            return LeanPut::Fallback(e);
        }
        let resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => {
                return match exchange_failure(&e) {
                    Some(f) => LeanPut::Failed(f),
                    None => LeanPut::Fallback(format!("transport: {}", error_chain(&e))),
                };
            }
        };
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        if transient_status(status) {
            return LeanPut::Failed(status_failure(status, &parts.headers, body).await);
        }
        let etag = parts
            .headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Drain the body, so the connection goes back to the pool. A 2xx status is the
        // server's word that the object is written, whatever becomes of the body after it.
        let _ = http_body_util::Limited::new(body, MAX_ERROR_BODY)
            .collect()
            .await;
        match status {
            // 200 is S3's answer; some servers say 201 or 204, which mean the same.
            200..=299 => LeanPut::Written(etag),
            412 => LeanPut::ConditionFailed,
            s => LeanPut::Fallback(format!("HTTP {s}")),
        }
    }

    async fn try_get(&self, key: &str) -> LeanOutcome {
        let path = format!("{}{}", self.path_prefix, encode_path(key));
        let uri = format!("{}{path}", self.origin);
        let creds = match self.credentials().await {
            Ok(c) => c,
            Err(e) => return LeanOutcome::Fallback(e),
        };
        let mut req = match http::Request::builder()
            .method(http::Method::GET)
            .uri(&uri)
            .header(http::header::HOST, &self.host)
            .body(Full::new(Bytes::new()))
        {
            Ok(r) => r,
            Err(e) => return LeanOutcome::Fallback(format!("request: {e}")),
        };
        if let Err(e) = self.sign(&mut req, "GET", &uri, &[], creds) {
            return LeanOutcome::Fallback(e);
        }
        let resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => {
                return match exchange_failure(&e) {
                    Some(f) => LeanOutcome::Failed(f),
                    None => LeanOutcome::Fallback(format!("transport: {}", error_chain(&e))),
                };
            }
        };
        let status = resp.status().as_u16();
        let (parts, mut body) = resp.into_parts();
        match status {
            200 => {
                let h = &parts.headers;
                let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
                let expected = text("content-length").and_then(|v| v.parse::<u64>().ok());
                let cap = usize::try_from(expected.unwrap_or(0).min(1 << 24)).unwrap_or(0);
                let mut buf = bytes::BytesMut::with_capacity(cap);
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => {
                            if let Ok(d) = f.into_data() {
                                buf.extend_from_slice(&d);
                            }
                        }
                        Err(e) => {
                            return LeanOutcome::Failed(Failure::transport(
                                Transport::Body {
                                    got: Some(buf.len() as u64),
                                    expected,
                                },
                                error_chain(&e),
                                format!("{e:?}"),
                            ));
                        }
                    }
                }
                let bytes = buf.freeze();
                if let Some(len) = expected
                    && len != bytes.len() as u64
                {
                    return LeanOutcome::Failed(Failure::transport(
                        Transport::Body {
                            got: Some(bytes.len() as u64),
                            expected: Some(len),
                        },
                        String::new(),
                        String::new(),
                    ));
                }
                let not_md5 = text("x-amz-server-side-encryption")
                    .is_some_and(|v| !v.eq_ignore_ascii_case("AES256"))
                    || text("x-amz-server-side-encryption-customer-algorithm").is_some();
                let content_encoding = text("content-encoding")
                    .or_else(|| text("x-amz-meta-content-encoding"))
                    .map(str::to_string);
                let last_modified = text("last-modified").and_then(|v| {
                    aws_smithy_types::DateTime::from_str(
                        v,
                        aws_smithy_types::date_time::Format::HttpDate,
                    )
                    .ok()
                    .and_then(|d| SystemTime::try_from(d).ok())
                });
                LeanOutcome::Found(
                    GetResult {
                        meta: ObjectMeta {
                            key: key.to_string(),
                            size: bytes.len() as u64,
                            last_modified,
                            etag: text("etag").map(str::to_string),
                        },
                        bytes,
                        content_encoding,
                    },
                    not_md5,
                )
            }
            s if transient_status(s) => {
                LeanOutcome::Failed(status_failure(s, &parts.headers, body).await)
            }
            404 => {
                let limited = http_body_util::Limited::new(body, MAX_ERROR_BODY);
                match limited.collect().await.map(|b| b.to_bytes()) {
                    Ok(b) if contains(&b, b"<Code>NoSuchKey</Code>") => LeanOutcome::Missing,
                    _ => LeanOutcome::Fallback("404 without NoSuchKey".to_string()),
                }
            }
            s => LeanOutcome::Fallback(format!("HTTP {s}")),
        }
    }

    fn sign(
        &self,
        req: &mut http::Request<Full<Bytes>>,
        method: &str,
        uri: &str,
        body: &[u8],
        creds: Credentials,
    ) -> Result<(), String> {
        let mut settings = SigningSettings::default();
        // S3's rules: the path is signed as sent (encoded once, never normalised), and the
        // payload hash travels in x-amz-content-sha256.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("signing parameters: {e}"))?
            .into();
        let headers = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new(method, uri, headers, SignableBody::Bytes(body))
            .map_err(|e| format!("signing: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }

    /// Current credentials, refreshed from the provider shortly before they expire. Errors
    /// are only reasons to fall back: the SDK reports credential problems properly.
    async fn credentials(&self) -> Result<Credentials, String> {
        let mut cached = self.credentials.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = match c.expiry() {
                None => true,
                Some(t) => t > SystemTime::now() + CREDENTIALS_MARGIN,
            };
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| format!("credentials: {e}"))?;
        *cached = Some(c.clone());
        Ok(c)
    }
}

/// Percent-encodes a key path as S3 expects: everything but RFC 3986 unreserved characters and
/// `/`.
pub(super) fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback HTTP server that answers each request with `status`, an ETag and no body.
    async fn answering(status: u16) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let Ok(n) = conn.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        // Every request of the test has a one-byte body after its headers.
                        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n")
                            && seen.len() > end + 4
                        {
                            seen.clear();
                            let reply = format!(
                                "HTTP/1.1 {status} Whatever\r\nETag: \"e1\"\r\nContent-Length: 0\r\n\r\n"
                            );
                            if conn.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn any_2xx_to_a_put_is_a_write_5xx_fails_and_other_answers_go_to_the_sdk() {
        let creds =
            SharedCredentialsProvider::new(Credentials::new("id", "secret", None, None, "test"));
        for status in [200, 201, 204, 412, 301, 403, 500, 503] {
            let addr = answering(status).await;
            let url = match crate::storage::CacheUrl::parse(&format!(
                "s3://bkt?endpoint=http://{addr}"
            )) {
                Ok(crate::storage::CacheUrl::S3(u)) => u,
                other => panic!("not an S3 URL: {other:?}"),
            };
            let t = Duration::from_secs(10);
            let lean = LeanClient::new(&url, "us-east-1", Some(creds.clone()), t, t).unwrap();
            let opts = crate::storage::PutOptions {
                condition: crate::storage::PutCondition::IfMatch("\"e0\"".into()),
                ..Default::default()
            };
            let r = lean.put("k.narinfo", Bytes::from_static(b"x"), &opts).await;
            match (status, r) {
                (200..=299, LeanPut::Written(etag)) => assert_eq!(etag.as_deref(), Some("\"e1\"")),
                (412, LeanPut::ConditionFailed) => {}
                (500 | 503, LeanPut::Failed(f)) => assert_eq!(f.status, Some(status)),
                (300.., LeanPut::Fallback(why)) if status != 412 => {
                    assert_eq!(why, format!("HTTP {status}"));
                }
                (_, other) => panic!(
                    "HTTP {status} gave {}",
                    match other {
                        LeanPut::Written(_) => "a write",
                        LeanPut::ConditionFailed => "a failed condition",
                        LeanPut::Failed(_) => "a failure",
                        LeanPut::Fallback(_) => "a fallback",
                    }
                ),
            }
            let stats = lean.stats();
            assert_eq!(
                stats.answered + stats.fallbacks + stats.failed,
                1,
                "HTTP {status}"
            );
            assert_eq!(
                stats.answered == 1,
                status < 300 || status == 412,
                "HTTP {status}"
            );
            assert_eq!(stats.failed == 1, status >= 500, "HTTP {status}");
        }
    }

    #[test]
    fn encodes_like_s3() {
        assert_eq!(encode_path("a/b c+d%é~_.-"), "a/b%20c%2Bd%25%C3%A9~_.-");
        assert_eq!(encode_path("0123abc.narinfo"), "0123abc.narinfo");
    }

    #[test]
    fn finds_no_such_key() {
        assert!(contains(
            b"<?xml?><Error><Code>NoSuchKey</Code></Error>",
            b"<Code>NoSuchKey</Code>"
        ));
        assert!(!contains(
            b"<Error><Code>NoSuchBucket</Code></Error>",
            b"<Code>NoSuchKey</Code>"
        ));
    }
}
