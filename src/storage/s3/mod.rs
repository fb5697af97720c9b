//! The S3 backend (AWS S3 and S3-compatible servers) on the AWS Rust SDK.
//!
//! - One shared client per store; its hyper connection pool serves many concurrent requests.
//! - Credentials: the standard AWS chain (environment, profile files, SSO, …); `profile=` picks a
//!   profile; [`S3Options::with_static_credentials`] overrides the chain.
//! - Region: `region=`, else the region encoded in a well-known provider endpoint host
//!   (Spaces, B2, R2, AWS), else the AWS chain, else `us-east-1`.
//! - Timeouts: connect 5 s; listing, HEAD, DELETE and bucket calls 60 s per attempt; transfers
//!   600 s until the response starts (like Nix).
//! - Retries: one policy for every request, ours ([`super::retry`]): transient faults
//!   (throttling, 5xx, broken connections, cut-short or garbled bodies, timeouts) are retried
//!   with jittered exponential backoff, within a per-request limit and a per-store retry
//!   budget. The SDK's own retries are off, so attempts are never multiplied. A whole-object GET
//!   is one attempt from request to last byte; a streamed GET that breaks resumes from where it
//!   broke (a ranged GET conditional on the ETag, so a replaced object is never spliced).
//!   Retried writes are what a lost answer calls for: an unconditional PUT writes the same bytes
//!   again, a conditional one that had landed fails its condition (`PreconditionFailed`, and
//!   the message says the object may be this request's own), a CompleteMultipartUpload that
//!   had landed is recognised by the object's size and part count.
//! - Integrity: a body shorter than its `Content-Length` is a transport fault, never accepted;
//!   a whole-object GET whose ETag is a plain MD5 is checked against it (a body cut short with
//!   a fixed `Content-Length` is invisible otherwise), and so is a streamed GET once this
//!   bucket's ETags have proved to be MD5s ([`S3Options::verify_streams`]); a 2xx XML answer (a listing, a DeleteObjects or
//!   multipart result) must be a complete document.
//! - Request checksums only where S3 requires them (many S3-compatible servers reject the
//!   newer default checksums).
//! - Like Nix, a 403 on GET/HEAD means "missing" (S3 answers 403 for missing keys when the
//!   caller lacks `s3:ListBucket`), unless the server says the credentials are wrong.
//!
//! This file holds [`S3Store`], its SDK client and the [`Store`] implementation. Beside it:
//! `options.rs` ([`S3Options`]), `failure.rs` (what a failed request means, and the advice
//! for it), `multipart.rs` (S3's size limits, [`part_plan`], multipart uploads) and `lean.rs`
//! (the lean GET/PUT client). `failure.rs` depends on neither client, so both can use it.

mod bucket;
mod failure;
pub(super) mod lean;
mod multipart;
mod options;
#[cfg(test)]
mod tests;
mod versions;

use super::retry::{Failed, Retrier};
use super::{
    ByteReader, ConditionalSupport, CopySource, DeleteReport, GetResult, ListOptions, ListPage,
    ObjectMeta, PAGE_SIZE, PutOptions, S3Url, Store, StoreError, StoreErrorKind,
};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier, StorageClass,
};
use bytes::Bytes;
use futures::StreamExt;
use md5::Digest as _;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use failure::{
    CutShort, Failure, SERVER_FAULT_CODES, THROTTLING_CODES, TIMEOUT_CODES, Transport,
    credentials_advice, error_chain,
};
pub use multipart::{
    MAX_OBJECT_SIZE, MAX_PARTS, MAX_PUT_SIZE, MIN_PART_SIZE, MULTIPART_THRESHOLD, PART_SIZE,
    part_plan,
};
pub use options::{S3Options, StaticCredentials};

/// A cache in an S3 bucket (below an optional key prefix).
pub struct S3Store {
    s: Arc<Shared>,
    opts: S3Options,
    lean: Option<lean::LeanClient>,
}

/// What the store's requests and its open streams share.
struct Shared {
    client: Client,
    url: S3Url,
    root: String,
    region: String,
    endpoint: String,
    desc: String,
    connect_timeout: Duration,
    metadata_timeout: Duration,
    retry: Retrier,
    md5: Md5Check,
}

/// Largest body a PUT sends through the lean client (narinfos, listings, pins).
const LEAN_PUT_MAX: u64 = 1 << 20;

/// Checks that a successful XML answer (a listing, a DeleteObjects or multipart result) is a
/// whole document. The SDK's parser accepts a document cut short between two elements, which
/// silently drops listing entries, delete errors or a multipart ETag.
#[derive(Debug)]
struct CompleteXml;

/// The root element's name if `body` is an XML document that is not closed.
fn unclosed_xml_root(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    // Skip the XML declaration, processing instructions, comments.
    loop {
        if let Some(r) = rest.strip_prefix("<?") {
            rest = r.split_once("?>")?.1.trim_start();
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = r.split_once("-->")?.1.trim_start();
        } else {
            break;
        }
    }
    let r = rest.strip_prefix('<')?;
    let name: String = r
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
        .collect();
    if name.is_empty() {
        return None;
    }
    let end = text.trim_end();
    let open_tag = &r[name.len()..];
    let self_closing = open_tag
        .split_once('>')
        .is_some_and(|(attrs, _)| attrs.trim_end().ends_with('/'));
    let closed = if self_closing {
        end.ends_with("/>")
    } else {
        end.ends_with(&format!("</{name}>"))
    };
    (!closed).then_some(name)
}

impl Intercept for CompleteXml {
    fn name(&self) -> &'static str {
        "narscope::CompleteXml"
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let resp = ctx.response();
        if !resp.status().is_success() {
            return Ok(());
        }
        // Streamed bodies (GetObject) are not loaded here; empty bodies need no check.
        let Some(body) = resp.body().bytes() else {
            return Ok(());
        };
        match unclosed_xml_root(body) {
            Some(root) => Err(Box::new(CutShort {
                root,
                len: body.len(),
            })),
            None => Ok(()),
        }
    }
}

/// Whether this store's ETags are MD5s of the bodies: unknown until a body matched, off once
/// a body did not match where a HEAD showed it complete (SSE-KMS, SSE-C, some providers).
#[derive(Debug, Default)]
struct Md5Check(AtomicU8);

const MD5_UNKNOWN: u8 = 0;
const MD5_CONFIRMED: u8 = 1;
const MD5_OFF: u8 = 2;

impl Md5Check {
    fn state(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }
    fn confirm(&self) {
        let _ = self.0.compare_exchange(
            MD5_UNKNOWN,
            MD5_CONFIRMED,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    fn turn_off(&self) {
        self.0.store(MD5_OFF, Ordering::Relaxed);
    }
}

/// The 16 bytes of an ETag that is a plain MD5 (32 hex digits, quoted or not, no `-N` part).
fn plain_md5(etag: &str) -> Option<[u8; 16]> {
    let hex = etag.trim().trim_start_matches("W/").trim_matches('"');
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn md5_of(b: &[u8]) -> [u8; 16] {
    md5::Md5::digest(b).into()
}

/// Whether the server says this object is encrypted in a way that makes its ETag no MD5.
fn etag_not_md5(sse: Option<&str>, sse_customer_algorithm: Option<&str>) -> bool {
    sse.is_some_and(|s| !s.eq_ignore_ascii_case("AES256")) || sse_customer_algorithm.is_some()
}

fn to_system_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|d| SystemTime::try_from(*d).ok())
}

fn size_of(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or_default()
}

/// "after 120 of 400 bytes", "after 120 bytes", or "".
fn progress(got: Option<u64>, expected: Option<u64>) -> String {
    match (got, expected) {
        (Some(g), Some(e)) => format!("after {g} of {e} bytes"),
        (Some(g), None) => format!("after {g} bytes"),
        (None, Some(e)) => format!("before all {e} bytes arrived"),
        (None, None) => String::new(),
    }
}

/// "`a`, `b`, `c`, … (40 keys)".
fn keys_summary(keys: &[String]) -> String {
    let mut s: Vec<String> = keys.iter().take(3).map(|k| format!("`{k}`")).collect();
    if keys.len() > 3 {
        s.push("…".to_string());
    }
    let n = keys.len();
    format!(
        "{} ({n} key{})",
        s.join(", "),
        if n == 1 { "" } else { "s" }
    )
}

impl Shared {
    fn metadata_override(&self) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::new().timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(self.connect_timeout)
                .read_timeout(self.metadata_timeout)
                .operation_attempt_timeout(self.metadata_timeout)
                .build(),
        )
    }

    fn relative(&self, full: &str) -> Option<String> {
        full.strip_prefix(self.root.as_str()).map(str::to_string)
    }

    /// A failed attempt, classified and worded.
    fn failed(&self, f: Failure, op: &'static str, key: Option<&str>) -> Failed {
        let retry_after = f.retry_after;
        Failed {
            error: self.error(f, op, key),
            retry_after,
        }
    }

    fn error(&self, f: Failure, op: &'static str, key: Option<&str>) -> StoreError {
        if f.status.is_some() {
            self.retry.mark_connected();
        }
        if !f.debug.is_empty() {
            tracing::debug!(
                "S3 {op} {} at {}: {}",
                key.unwrap_or_default(),
                self.desc,
                f.debug
            );
        }
        let b = &self.url.bucket;
        let ep = &self.endpoint;
        let answered_before = self.retry.connected();
        let detail = if f.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.detail)
        };
        let (kind, message, advice): (StoreErrorKind, String, Option<String>) = match &f.transport {
            Some(Transport::Timeout) => (
                StoreErrorKind::Timeout,
                format!("endpoint {ep} did not answer in time{detail}"),
                (!answered_before).then(|| {
                    "check the endpoint URL, the network, and that the server is up".to_string()
                }),
            ),
            Some(Transport::Connect) if answered_before => (
                StoreErrorKind::Unreachable,
                format!(
                    "transport fault: cannot connect to endpoint {ep} any more, though it answered \
                     earlier{detail}"
                ),
                None,
            ),
            Some(Transport::Connect) => (
                StoreErrorKind::Unreachable,
                format!("cannot reach endpoint {ep}{detail}"),
                Some(
                    "check endpoint= (host, port, http vs https) and that the server is running"
                        .into(),
                ),
            ),
            Some(Transport::Reset) => (
                StoreErrorKind::Interrupted,
                format!(
                    "transport fault: the connection to endpoint {ep} broke before the answer \
                     arrived{detail}"
                ),
                None,
            ),
            Some(Transport::Body { got, expected }) => {
                let p = progress(*got, *expected);
                let p = if p.is_empty() { p } else { format!(" ({p})") };
                (
                    StoreErrorKind::Interrupted,
                    format!(
                        "transport fault: the connection to endpoint {ep} broke while reading \
                         the body{p}{detail}"
                    ),
                    None,
                )
            }
            Some(Transport::Garbled) => {
                let what = if op == "list" { "listing" } else { "answer" };
                (
                    StoreErrorKind::Interrupted,
                    format!(
                        "transport fault: the {what} from endpoint {ep} was cut short or garbled \
                         in transit: it is not a complete S3 {what}{detail}"
                    ),
                    None,
                )
            }
            Some(Transport::Mismatch { etag, got }) => (
                StoreErrorKind::Interrupted,
                format!(
                    "transport fault: the {got} bytes from endpoint {ep} do not match the \
                     object's ETag {etag} (an MD5): the body was cut short or damaged in transit"
                ),
                None,
            ),
            Some(Transport::Other) if f.detail.to_ascii_lowercase().contains("credential") => (
                StoreErrorKind::Credentials,
                format!(
                    "no usable credentials for bucket `{b}` at endpoint {ep}: {}",
                    f.detail
                ),
                Some(credentials_advice(&self.url)),
            ),
            Some(Transport::Other) => (
                StoreErrorKind::Unreachable,
                format!("cannot send the request to endpoint {ep}{detail}"),
                Some("check endpoint= and the network".into()),
            ),
            None => self.classify_service(&f),
        };
        let mut e = StoreError::new(kind, &self.desc, op, message);
        e.key = key.map(str::to_string);
        e.advice = advice;
        e
    }

    fn classify_service(&self, f: &Failure) -> (StoreErrorKind, String, Option<String>) {
        let b = &self.url.bucket;
        let ep = &self.endpoint;
        let said = f.server_said();
        if f.credentials_problem() {
            return (
                StoreErrorKind::Credentials,
                format!(
                    "the server rejected the credentials for bucket `{b}` at endpoint {ep} ({said})"
                ),
                Some(credentials_advice(&self.url)),
            );
        }
        if f.code_is("NoSuchBucket") {
            return (
                StoreErrorKind::NoSuchBucket,
                format!("bucket `{b}` does not exist at endpoint {ep} ({said})"),
                Some(
                    "create it with `narscope init`, or check the bucket name and endpoint".into(),
                ),
            );
        }
        let wrong_region = f.code_is("PermanentRedirect")
            || f.code_is("AuthorizationHeaderMalformed")
            || f.code_is("IllegalLocationConstraintException")
            || f.code_is("IncorrectEndpoint")
            || f.status == Some(301);
        if wrong_region {
            let hint = match &f.bucket_region {
                Some(r) => format!("the bucket is in region {r}: add region={r} to the URL"),
                None => "set region= to the bucket's region".to_string(),
            };
            return (
                StoreErrorKind::WrongRegion,
                format!(
                    "bucket `{b}` is not in region {} at endpoint {ep} ({said})",
                    self.region
                ),
                Some(hint),
            );
        }
        if f.code_is("PreconditionFailed")
            || f.code_is("ConditionalRequestConflict")
            || f.status == Some(412)
        {
            return (
                StoreErrorKind::PreconditionFailed,
                format!("the write condition failed: the object exists or changed ({said})"),
                None,
            );
        }
        if f.code_in(THROTTLING_CODES) || f.status == Some(429) {
            return (
                StoreErrorKind::Throttled,
                format!("endpoint {ep} is throttling requests ({said})"),
                None,
            );
        }
        if f.code_in(TIMEOUT_CODES) {
            return (
                StoreErrorKind::Timeout,
                format!("endpoint {ep} gave up waiting for the request to arrive ({said})"),
                None,
            );
        }
        if f.code_is("AccessDenied") || f.code_is("AllAccessDisabled") || f.status == Some(403) {
            return (
                StoreErrorKind::AccessDenied,
                format!(
                    "access denied for bucket `{b}` at endpoint {ep} ({said}): the key is missing, \
                     or these credentials may not do this (S3 answers 403 for missing keys \
                     without s3:ListBucket)"
                ),
                Some(format!(
                    "the credentials may lack permission on this bucket (bucket policy / key \
                     permissions), or be wrong; {}",
                    credentials_advice(&self.url)
                )),
            );
        }
        if f.not_implemented() {
            return (
                StoreErrorKind::NotSupported,
                format!("the server at {ep} does not implement this ({said})"),
                None,
            );
        }
        if f.code_in(SERVER_FAULT_CODES) || f.status.is_some_and(|s| s >= 500) {
            return (
                StoreErrorKind::ServerError,
                format!("server error at endpoint {ep} ({said})"),
                None,
            );
        }
        (
            StoreErrorKind::Other,
            format!("unexpected answer from endpoint {ep} for bucket `{b}`: {said}"),
            None,
        )
    }

    /// A store error that is not about the network (a local file, a bad answer).
    fn plain(&self, kind: StoreErrorKind, op: &'static str, key: &str, msg: String) -> StoreError {
        StoreError::new(kind, &self.desc, op, msg).with_key(key)
    }

    /// Checks a whole body against its ETag where that is a plain MD5. `last` holds the MD5 of
    /// this request's previous mismatching body: the same bytes twice are either cut short the
    /// same way each time (a HEAD shows a larger size) or complete under an ETag that is not an
    /// MD5 (the check is then turned off for this store).
    async fn verify_body(
        &self,
        key: &str,
        full: &str,
        etag: Option<&str>,
        not_md5: bool,
        bytes: &Bytes,
        last: &Mutex<Option<[u8; 16]>>,
    ) -> Result<(), Failed> {
        if not_md5 || self.md5.state() == MD5_OFF {
            return Ok(());
        }
        let Some((etag, want)) = etag.and_then(|e| Some((e, plain_md5(e)?))) else {
            return Ok(());
        };
        let got = md5_of(bytes);
        if got == want {
            self.md5.confirm();
            return Ok(());
        }
        let mismatch = || {
            self.failed(
                Failure::transport(
                    Transport::Mismatch {
                        etag: etag.to_string(),
                        got: bytes.len() as u64,
                    },
                    String::new(),
                    String::new(),
                ),
                "GET",
                Some(key),
            )
        };
        let repeated = {
            let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
            let r = *l == Some(got);
            *l = Some(got);
            r
        };
        if !repeated {
            return Err(mismatch());
        }
        match self.head_once(key, full).await {
            Ok(Some(m)) if m.size == bytes.len() as u64 => {
                tracing::debug!(
                    "{}: `{key}` reads the same {} bytes twice under ETag {etag}, which is not \
                     their MD5: this bucket's ETags are not MD5s, body checks are off",
                    self.desc,
                    bytes.len()
                );
                self.md5.turn_off();
                Ok(())
            }
            _ => Err(mismatch()),
        }
    }

    /// One HeadObject, no retries; `None` when missing.
    async fn head_once(&self, key: &str, full: &str) -> Result<Option<ObjectMeta>, Failed> {
        match self
            .client
            .head_object()
            .bucket(&self.url.bucket)
            .key(full)
            .customize()
            .config_override(self.metadata_override())
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: size_of(out.content_length()),
                last_modified: to_system_time(out.last_modified()),
                etag: out.e_tag().map(str::to_string),
            })),
            Err(e) => {
                let f = Failure::from_sdk(&e);
                if f.means_missing() {
                    self.retry.mark_connected();
                    Ok(None)
                } else {
                    Err(self.failed(f, "HEAD", Some(key)))
                }
            }
        }
    }

    /// One GetObject (the answer's head only), no retries; `None` when missing.
    async fn get_object_once(
        &self,
        key: &str,
        full: &str,
    ) -> Result<Option<GetObjectOutput>, Failed> {
        match self
            .client
            .get_object()
            .bucket(&self.url.bucket)
            .key(full)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o)),
            Err(e) => {
                let f = Failure::from_sdk(&e);
                if f.means_missing() {
                    self.retry.mark_connected();
                    return Ok(None);
                }
                Err(self.failed(f, "GET", Some(key)))
            }
        }
    }

    /// One whole-object GET through the SDK: the request and the whole body.
    async fn sdk_get_once(
        &self,
        key: &str,
        full: &str,
        last: &Mutex<Option<[u8; 16]>>,
    ) -> Result<Option<GetResult>, Failed> {
        let Some(mut out) = self.get_object_once(key, full).await? else {
            return Ok(None);
        };
        let content_encoding = out.content_encoding().map(str::to_string).or_else(|| {
            out.metadata()
                .and_then(|m| m.get("content-encoding"))
                .cloned()
        });
        let expected = out.content_length().and_then(|n| u64::try_from(n).ok());
        let not_md5 = etag_not_md5(
            out.server_side_encryption().map(|s| s.as_str()),
            out.sse_customer_algorithm(),
        );
        let etag = out.e_tag().map(str::to_string);
        let last_modified = to_system_time(out.last_modified());
        let cap = usize::try_from(expected.unwrap_or(0).min(1 << 24)).unwrap_or(0);
        let mut buf = bytes::BytesMut::with_capacity(cap);
        loop {
            match out.body.next().await {
                None => break,
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    let f = Failure::transport(
                        Transport::Body {
                            got: Some(buf.len() as u64),
                            expected,
                        },
                        error_chain(&e),
                        format!("{e:?}"),
                    );
                    return Err(self.failed(f, "GET", Some(key)));
                }
            }
        }
        let bytes = buf.freeze();
        if let Some(exp) = expected
            && exp != bytes.len() as u64
        {
            let f = Failure::transport(
                Transport::Body {
                    got: Some(bytes.len() as u64),
                    expected: Some(exp),
                },
                String::new(),
                String::new(),
            );
            return Err(self.failed(f, "GET", Some(key)));
        }
        self.verify_body(key, full, etag.as_deref(), not_md5, &bytes, last)
            .await?;
        Ok(Some(GetResult {
            meta: ObjectMeta {
                key: key.to_string(),
                size: bytes.len() as u64,
                last_modified,
                etag,
            },
            bytes,
            content_encoding,
        }))
    }

    /// The error of a stream whose object changed (or vanished) while it was read.
    fn changed(&self, key: &str, offset: u64, total: Option<u64>, how: &str) -> Failed {
        self.plain(
            StoreErrorKind::PreconditionFailed,
            "GET",
            key,
            format!(
                "the object {how} on the server while it was being read ({}): the download \
                 stops here rather than splice two versions",
                progress(Some(offset), total)
            ),
        )
        .into()
    }

    /// One ranged GET resuming a broken download at `offset`, conditional on `etag`. Returns
    /// the body and how many bytes of it to skip (a server that ignores Range sends it all).
    async fn resume_once(
        &self,
        key: &str,
        full: &str,
        etag: &str,
        offset: u64,
        total: Option<u64>,
    ) -> Result<(ByteStream, u64), Failed> {
        let res = self
            .client
            .get_object()
            .bucket(&self.url.bucket)
            .key(full)
            .range(format!("bytes={offset}-"))
            .if_match(etag)
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) => {
                let f = Failure::from_sdk(&e);
                if f.code_is("PreconditionFailed") || f.status == Some(412) {
                    self.retry.mark_connected();
                    return Err(self.changed(key, offset, total, "changed"));
                }
                if f.means_missing() {
                    self.retry.mark_connected();
                    return Err(self.changed(key, offset, total, "was deleted"));
                }
                if f.status == Some(416) {
                    self.retry.mark_connected();
                    return Err(self
                        .plain(
                            StoreErrorKind::Other,
                            "GET",
                            key,
                            format!(
                                "all {offset} bytes arrived from endpoint {}, but they do not \
                                 match the object's ETag {etag} (an MD5): damaged in transit or \
                                 in storage",
                                self.endpoint
                            ),
                        )
                        .into());
                }
                return Err(self.failed(f, "GET", Some(key)));
            }
        };
        let same = |a: &str| a.trim_matches('"') == etag.trim_matches('"');
        if !out.e_tag().is_some_and(same) {
            return Err(self.changed(key, offset, total, "changed"));
        }
        match out.content_range() {
            None => Ok((out.body, offset)),
            Some(cr) => {
                let start = cr
                    .trim()
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(s, _)| s.trim().parse::<u64>().ok());
                if start == Some(offset) {
                    Ok((out.body, 0))
                } else {
                    Err(self
                        .plain(
                            StoreErrorKind::Other,
                            "GET",
                            key,
                            format!(
                                "endpoint {} resumed the download with range `{cr}`, not at byte \
                                 {offset}",
                                self.endpoint
                            ),
                        )
                        .into())
                }
            }
        }
    }
}

/// A streamed object body that resumes where its connection broke.
struct Resuming {
    s: Arc<Shared>,
    key: String,
    full: String,
    etag: Option<String>,
    /// The object's size (the first answer's Content-Length).
    total: Option<u64>,
    /// Bytes delivered so far.
    offset: u64,
    body: Option<ByteStream>,
    /// Bytes of `body` to drop (already delivered).
    skip: u64,
    /// Running MD5 and the ETag's, when the body is checked.
    md5: Option<(md5::Md5, [u8; 16])>,
    /// Attempts since the last progress.
    attempts: u32,
    /// Offset of the last break.
    last_break: Option<u64>,
    done: bool,
}

impl Resuming {
    async fn step(mut self) -> Option<(std::io::Result<Bytes>, Resuming)> {
        loop {
            if self.done {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                self.done = true;
                return None;
            };
            let fault = match body.next().await {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let n = usize::try_from(self.skip)
                            .unwrap_or(usize::MAX)
                            .min(chunk.len());
                        chunk = chunk.slice(n..);
                        self.skip -= n as u64;
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    self.offset += chunk.len() as u64;
                    if let Some((h, _)) = &mut self.md5 {
                        h.update(&chunk);
                    }
                    return Some((Ok(chunk), self));
                }
                Some(Err(e)) => Failure::transport(
                    Transport::Body {
                        got: Some(self.offset),
                        expected: self.total,
                    },
                    error_chain(&e),
                    format!("{e:?}"),
                ),
                None if self.total.is_some_and(|t| self.offset < t) => Failure::transport(
                    Transport::Body {
                        got: Some(self.offset),
                        expected: self.total,
                    },
                    String::new(),
                    String::new(),
                ),
                None => match &self.md5 {
                    Some((h, want)) if <[u8; 16]>::from(h.clone().finalize()) != *want => {
                        // Cut short under a Content-Length that says so: see if more follows.
                        Failure::transport(
                            Transport::Mismatch {
                                etag: self.etag.clone().unwrap_or_default(),
                                got: self.offset,
                            },
                            String::new(),
                            String::new(),
                        )
                    }
                    _ => {
                        self.done = true;
                        return None;
                    }
                },
            };
            self.body = None;
            if let Err(e) = self.resume(fault).await {
                self.done = true;
                let kind = match e.kind {
                    StoreErrorKind::Timeout => std::io::ErrorKind::TimedOut,
                    StoreErrorKind::Interrupted => std::io::ErrorKind::ConnectionReset,
                    _ => std::io::ErrorKind::Other,
                };
                return Some((Err(std::io::Error::new(kind, e)), self));
            }
        }
    }

    async fn resume(&mut self, fault: Failure) -> Result<(), StoreError> {
        let first = self.s.failed(fault, "GET", Some(&self.key));
        let Some(etag) = self.etag.clone() else {
            let mut e = first.error;
            e.message
                .push_str("; the download cannot be resumed: the server sent no ETag");
            return Err(e);
        };
        let progressed = self.last_break.is_none_or(|o| self.offset > o);
        let done = if progressed { 1 } else { self.attempts };
        self.last_break = Some(self.offset);
        let (s, key, full, offset, total) = (
            self.s.clone(),
            self.key.as_str(),
            self.full.as_str(),
            self.offset,
            self.total,
        );
        let ((body, skip), attempts) = s
            .retry
            .run_after(done, first, || {
                s.resume_once(key, full, &etag, offset, total)
            })
            .await?;
        tracing::debug!("{}: resumed `{key}` at byte {offset}", s.desc);
        self.attempts = attempts;
        self.body = Some(body);
        self.skip = skip;
        Ok(())
    }
}

impl S3Store {
    /// Builds the client (no network traffic; credentials are resolved on first use).
    pub async fn connect(url: S3Url, opts: S3Options) -> Result<S3Store, StoreError> {
        let transfer_timeouts = TimeoutConfig::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.transfer_timeout)
            .build();
        // Our retry policy does all retries (see `retry`): one attempt per SDK call.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(transfer_timeouts)
            .retry_config(RetryConfig::disabled());
        if let Some(p) = &url.profile {
            loader = loader.profile_name(p);
        }
        let explicit_region = url.region.clone().or_else(|| url.inferred_region());
        if let Some(r) = &explicit_region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(c) = &opts.credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key.clone(),
                c.secret_key.clone(),
                None,
                None,
                "narscope-static",
            ));
        }
        let sdk = loader.load().await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        let mut b = aws_sdk_s3::config::Builder::from(&sdk)
            .region(Region::new(region.clone()))
            .force_path_style(url.path_style())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::disabled())
            .interceptor(CompleteXml);
        match &url.endpoint {
            Some(ep) => b = b.endpoint_url(ep),
            // the URL is the single source of truth: ignore AWS_ENDPOINT_URL & co.
            None => {
                b.set_endpoint_url(None);
            }
        }
        let client = Client::from_conf(b.build());
        let lean = if opts.lean_client {
            lean::LeanClient::new(
                &url,
                &region,
                sdk.credentials_provider(),
                opts.connect_timeout,
                opts.transfer_timeout,
            )
        } else {
            None
        };
        let endpoint = url
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let desc = match &url.endpoint {
            Some(ep) => format!("{} (endpoint {ep})", url.base()),
            None => format!("{} (AWS S3, region {region})", url.base()),
        };
        Ok(S3Store {
            s: Arc::new(Shared {
                client,
                root: url.key_prefix(),
                url,
                region,
                endpoint,
                desc,
                connect_timeout: opts.connect_timeout,
                metadata_timeout: opts.metadata_timeout,
                retry: Retrier::new(opts.retry.clone()),
                md5: Md5Check::default(),
            }),
            opts,
            lean,
        })
    }

    /// How the lean client has fared (`None` when this store does not use it).
    pub fn lean_stats(&self) -> Option<super::LeanStats> {
        self.lean.as_ref().map(|l| l.stats())
    }

    /// The URL this store was opened with.
    pub fn url(&self) -> &S3Url {
        &self.s.url
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.s.region
    }

    fn full_key(&self, op: &'static str, key: &str) -> Result<String, StoreError> {
        if key.is_empty() {
            return Err(StoreError::new(
                StoreErrorKind::InvalidKey,
                &self.s.desc,
                op,
                "the key is empty",
            )
            .with_key(key));
        }
        Ok(format!("{}{key}", self.s.root))
    }

    #[cfg(test)]
    fn error(&self, f: Failure, op: &'static str, key: Option<&str>) -> StoreError {
        self.s.error(f, op, key)
    }

    /// One whole-object GET: the lean client, or the SDK where it hands over.
    async fn get_once(
        &self,
        key: &str,
        full: &str,
        last: &Mutex<Option<[u8; 16]>>,
    ) -> Result<Option<GetResult>, Failed> {
        use lean::LeanOutcome;
        let Some(lean) = self.lean.as_ref().filter(|l| l.enabled()) else {
            return self.s.sdk_get_once(key, full, last).await;
        };
        match lean.get(key).await {
            LeanOutcome::Found(r, not_md5) => {
                self.s
                    .verify_body(key, full, r.meta.etag.as_deref(), not_md5, &r.bytes, last)
                    .await?;
                Ok(Some(r))
            }
            LeanOutcome::Missing => Ok(None),
            LeanOutcome::Failed(f) => Err(self.s.failed(f, "GET", Some(key))),
            LeanOutcome::Fallback(why) => {
                tracing::trace!("lean GET of {key} fell back to the SDK: {why}");
                let r = self.s.sdk_get_once(key, full, last).await;
                if matches!(r, Ok(Some(_))) {
                    lean.strike(&why);
                }
                r
            }
        }
    }

    /// One PutObject through the SDK.
    async fn sdk_put_once(
        &self,
        key: &str,
        full: &str,
        body: ByteStream,
        size: u64,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, Failed> {
        let mut req = self
            .s
            .client
            .put_object()
            .bucket(&self.s.url.bucket)
            .key(full)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .body(body);
        if let Some(ct) = &opts.content_type {
            req = req.content_type(ct);
        }
        let (if_match, if_none_match) = opts.condition.headers();
        req = req
            .set_if_match(if_match)
            .set_if_none_match(if_none_match)
            .set_content_encoding(opts.content_encoding.clone())
            .set_storage_class(opts.storage_class.as_deref().map(StorageClass::from));
        let out = req
            .send()
            .await
            .map_err(|e| self.s.failed(Failure::from_sdk(&e), "PUT", Some(key)))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            last_modified: None,
            etag: out.e_tag().map(str::to_string),
        })
    }

    /// The server and credentials of this store, as [`CopySource::account`] (no secret: the
    /// access key id at most).
    fn copy_account(&self) -> String {
        let creds = match &self.opts.credentials {
            Some(c) => format!("key {}", c.access_key),
            None => "the credential chain".to_string(),
        };
        format!(
            "s3 endpoint {} region {} profile {} {creds}",
            self.s.endpoint,
            self.s.region,
            self.s.url.profile.as_deref().unwrap_or("-")
        )
    }

    /// One CopyObject through the SDK (the source's metadata are kept).
    async fn copy_once(
        &self,
        source: &str,
        key: &str,
        full: &str,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, Failed> {
        let out = self
            .s
            .client
            .copy_object()
            .bucket(&self.s.url.bucket)
            .key(full)
            .copy_source(source)
            .set_storage_class(opts.storage_class.as_deref().map(StorageClass::from))
            .send()
            .await
            .map_err(|e| self.s.failed(Failure::from_sdk(&e), "COPY", Some(key)))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: 0,
            last_modified: None,
            etag: out
                .copy_object_result()
                .and_then(|r| r.e_tag())
                .map(str::to_string),
        })
    }

    /// One PUT of bytes: the lean client for small bodies, or the SDK where it hands over.
    async fn put_once(
        &self,
        key: &str,
        full: &str,
        body: &Bytes,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, Failed> {
        let size = body.len() as u64;
        if let Some(lean) = self
            .lean
            .as_ref()
            .filter(|l| l.enabled() && size <= LEAN_PUT_MAX)
        {
            use lean::LeanPut;
            match lean.put(key, body.clone(), opts).await {
                LeanPut::Written(etag) => {
                    return Ok(ObjectMeta {
                        key: key.to_string(),
                        size,
                        last_modified: None,
                        etag,
                    });
                }
                LeanPut::ConditionFailed => {
                    let f = Failure::http(412, "PreconditionFailed");
                    return Err(self.s.failed(f, "PUT", Some(key)));
                }
                LeanPut::Failed(f) => return Err(self.s.failed(f, "PUT", Some(key))),
                LeanPut::Fallback(why) => {
                    tracing::trace!("lean PUT of {key} fell back to the SDK: {why}");
                    let r = self
                        .sdk_put_once(key, full, ByteStream::from(body.clone()), size, opts)
                        .await;
                    if r.is_ok() {
                        lean.strike(&why);
                    }
                    return r;
                }
            }
        }
        self.sdk_put_once(key, full, ByteStream::from(body.clone()), size, opts)
            .await
    }

    /// One DeleteObjects batch, retried as a whole on transient faults, and for the keys the
    /// server reports transient per-key errors for.
    async fn delete_batch(&self, batch: &[String]) -> Result<DeleteReport, StoreError> {
        let s = &self.s;
        let mut report = DeleteReport::default();
        let mut pending: Vec<String> = Vec::with_capacity(batch.len());
        for key in batch {
            match self.full_key("delete", key) {
                Ok(_) => pending.push(key.clone()),
                Err(e) => report.failed.push((key.clone(), e.message)),
            }
        }
        if pending.is_empty() {
            return Ok(report);
        }
        // (A poisoned lock still holds consistent data here: each update is one assignment.)
        let pending = Mutex::new(pending);
        let outcome = Mutex::new(DeleteReport::default());
        let res = s
            .retry
            .run(|| async {
                let keys = pending.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let ids = keys
                    .iter()
                    .map(|k| {
                        ObjectIdentifier::builder()
                            .key(format!("{}{k}", s.root))
                            .build()
                            .map_err(|e| {
                                s.plain(StoreErrorKind::InvalidKey, "delete", k, e.to_string())
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // Not quiet: on a versioned bucket the answer names the delete markers written.
                let delete = Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(false)
                    .build()
                    .map_err(|e| {
                        StoreError::new(StoreErrorKind::Other, &s.desc, "delete", e.to_string())
                    })?;
                let out = s
                    .client
                    .delete_objects()
                    .bucket(&s.url.bucket)
                    .delete(delete)
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await
                    .map_err(|e| s.failed(Failure::from_sdk(&e), "delete", None))?;
                let mut failed: std::collections::HashMap<String, String> = Default::default();
                let mut again: Vec<String> = Vec::new();
                let mut transient_why = String::new();
                for err in out.errors() {
                    let code = err.code().unwrap_or("error");
                    if code == "NoSuchKey" {
                        continue;
                    }
                    let Some(k) = err.key().and_then(|k| s.relative(k)) else {
                        continue;
                    };
                    let why = format!("{code}: {}", err.message().unwrap_or_default());
                    if THROTTLING_CODES.contains(&code)
                        || SERVER_FAULT_CODES.contains(&code)
                        || TIMEOUT_CODES.contains(&code)
                    {
                        transient_why = why;
                        again.push(k);
                    } else {
                        failed.insert(k, why);
                    }
                }
                {
                    let mut o = outcome.lock().unwrap_or_else(|e| e.into_inner());
                    for d in out.deleted() {
                        if d.delete_marker() != Some(true) {
                            continue;
                        }
                        let key = d.key().and_then(|k| s.relative(k));
                        if let (Some(key), Some(v)) = (key, d.delete_marker_version_id()) {
                            o.markers.push(super::VersionRef {
                                key,
                                version_id: v.to_string(),
                            });
                        }
                    }
                    for k in &keys {
                        if again.contains(k) {
                            continue;
                        }
                        match failed.remove(k) {
                            Some(why) => o.failed.push((k.clone(), why)),
                            None => o.deleted.push(k.clone()),
                        }
                    }
                }
                if again.is_empty() {
                    return Ok(());
                }
                let e = StoreError::new(
                    StoreErrorKind::ServerError,
                    &s.desc,
                    "delete",
                    format!(
                        "server error at endpoint {}: {} not deleted ({transient_why})",
                        s.endpoint,
                        keys_summary(&again)
                    ),
                );
                *pending.lock().unwrap_or_else(|e| e.into_inner()) = again;
                Err(Failed::from(e))
            })
            .await;
        let outcome = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
        let pending = pending.into_inner().unwrap_or_else(|e| e.into_inner());
        report.deleted.extend(outcome.deleted);
        report.failed.extend(outcome.failed);
        report.markers.extend(outcome.markers);
        match res {
            Ok(()) => Ok(report),
            // Nothing came back for this batch: the whole batch failed.
            Err(mut e) if report.deleted.is_empty() && report.failed.is_empty() => {
                if e.key.is_none() {
                    e.message = format!("{} not deleted: {}", keys_summary(&pending), e.message);
                }
                Err(e)
            }
            Err(e) => {
                let why = e.to_string();
                report
                    .failed
                    .extend(pending.into_iter().map(|k| (k, why.clone())));
                Ok(report)
            }
        }
    }

    async fn list_once(
        &self,
        prefix: &str,
        token: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage, Failed> {
        let s = &self.s;
        let full_prefix = format!("{}{prefix}", s.root);
        let max = opts
            .max_keys
            .map(|m| m.clamp(1, PAGE_SIZE as u32))
            .unwrap_or(PAGE_SIZE as u32);
        let mut req = s
            .client
            .list_objects_v2()
            .bucket(&s.url.bucket)
            .max_keys(i32::try_from(max).unwrap_or(1000));
        if !full_prefix.is_empty() {
            req = req.prefix(&full_prefix);
        }
        if opts.top_level_only {
            req = req.delimiter("/");
        }
        match (token, &opts.start_after) {
            (Some(t), _) => req = req.continuation_token(t),
            (None, Some(sa)) => req = req.start_after(format!("{}{sa}", s.root)),
            (None, None) => {}
        }
        let out = req
            .customize()
            .config_override(s.metadata_override())
            .send()
            .await
            .map_err(|e| {
                let f = Failure::from_sdk(&e);
                let said = f.server_said();
                let mut failed = s.failed(f, "list", Some(prefix));
                if failed.error.kind == StoreErrorKind::AccessDenied {
                    failed.error.message = format!(
                        "access denied listing bucket `{}` at endpoint {} ({said}): these \
                         credentials may not list it (s3:ListBucket), or they are wrong",
                        s.url.bucket, s.endpoint,
                    );
                }
                failed
            })?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                let key = s.relative(o.key()?)?;
                Some(ObjectMeta {
                    key,
                    size: size_of(o.size()),
                    last_modified: to_system_time(o.last_modified()),
                    etag: o.e_tag().map(str::to_string),
                })
            })
            .collect();
        let next = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }
}

#[async_trait::async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        self.s.desc.clone()
    }

    fn throttle(&self) -> Option<&super::Throttle> {
        Some(self.s.retry.throttle())
    }

    fn copy_source(&self) -> Option<CopySource> {
        Some(CopySource {
            account: self.copy_account(),
            container: self.s.url.bucket.clone(),
            root: self.s.root.clone(),
        })
    }

    fn can_copy_from(&self, src: &CopySource) -> bool {
        src.account == self.copy_account()
    }

    async fn copy_from(
        &self,
        src: &CopySource,
        src_key: &str,
        key: &str,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        if !self.can_copy_from(src) {
            return Err(self.s.plain(
                StoreErrorKind::NotSupported,
                "COPY",
                key,
                format!(
                    "a server-side copy from bucket `{}` needs the same endpoint and credentials",
                    src.container
                ),
            ));
        }
        let full = self.full_key("COPY", key)?;
        // `bucket/key`, each segment percent-encoded (the keys of a cache are plain ASCII,
        // but a prefix may hold anything).
        let encoded: String = format!("{}/{}{src_key}", src.container, src.root)
            .split('/')
            .map(|seg| {
                seg.bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("/");
        self.s
            .retry
            .run(|| self.copy_once(&encoded, key, &full, opts))
            .await
    }

    async fn list_page(&self, prefix: &str, token: Option<String>) -> Result<ListPage, StoreError> {
        self.list_page_with(prefix, token, &ListOptions::default())
            .await
    }

    async fn list_page_with(
        &self,
        prefix: &str,
        token: Option<String>,
        opts: &ListOptions,
    ) -> Result<ListPage, StoreError> {
        self.s
            .retry
            .run(|| self.list_once(prefix, token.as_deref(), opts))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        let full = self.full_key("GET", key)?;
        let last = Mutex::new(None);
        self.s.retry.run(|| self.get_once(key, &full, &last)).await
    }

    async fn get_reader(&self, key: &str) -> Result<Option<(ObjectMeta, ByteReader)>, StoreError> {
        let full = self.full_key("GET", key)?;
        let s = &self.s;
        let Some(out) = s.retry.run(|| s.get_object_once(key, &full)).await? else {
            return Ok(None);
        };
        let total = out.content_length().and_then(|n| u64::try_from(n).ok());
        let meta = ObjectMeta {
            key: key.to_string(),
            size: total.unwrap_or_default(),
            last_modified: to_system_time(out.last_modified()),
            etag: out.e_tag().map(str::to_string),
        };
        // Streams are checked against MD5 ETags only once a whole GET has shown that this
        // bucket's ETags are MD5s: a stream cannot be read twice to find out.
        let not_md5 = etag_not_md5(
            out.server_side_encryption().map(|s| s.as_str()),
            out.sse_customer_algorithm(),
        );
        let md5 = meta
            .etag
            .as_deref()
            .and_then(plain_md5)
            .filter(|_| self.opts.verify_streams && !not_md5 && s.md5.state() == MD5_CONFIRMED)
            .map(|want| (md5::Md5::new(), want));
        let st = Resuming {
            s: s.clone(),
            key: key.to_string(),
            full,
            etag: meta.etag.clone(),
            total,
            offset: 0,
            body: Some(out.body),
            skip: 0,
            md5,
            attempts: 1,
            last_break: None,
            done: false,
        };
        let stream = Box::pin(futures::stream::unfold(st, Resuming::step));
        Ok(Some((
            meta,
            Box::pin(tokio_util::io::StreamReader::new(stream)),
        )))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let full = self.full_key("HEAD", key)?;
        self.s.retry.run(|| self.s.head_once(key, &full)).await
    }

    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let full = self.full_key("PUT", key)?;
        self.s
            .retry
            .run(|| self.put_once(key, &full, &body, opts))
            .await
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let full = self.full_key("PUT", key)?;
        let io_err = |e: &dyn fmt::Display| {
            self.s.plain(
                StoreErrorKind::Io,
                "PUT",
                key,
                format!("reading {}: {e}", path.display()),
            )
        };
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| io_err(&e))?
            .len();
        if size > MAX_OBJECT_SIZE {
            return Err(self.s.plain(
                StoreErrorKind::NotSupported,
                "PUT",
                key,
                format!(
                    "{} is {size} bytes, more than S3's largest object (5 TiB)",
                    path.display()
                ),
            ));
        }
        if size > self.opts.multipart_threshold.min(MAX_PUT_SIZE) {
            return self.put_multipart(key, &full, path, size, opts).await;
        }
        self.s
            .retry
            .run(|| async {
                let body = ByteStream::from_path(path).await.map_err(|e| io_err(&e))?;
                self.sdk_put_once(key, &full, body, size, opts).await
            })
            .await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<DeleteReport, StoreError> {
        let mut report = DeleteReport::default();
        let chunks: Vec<Vec<String>> = keys.chunks(PAGE_SIZE).map(<[String]>::to_vec).collect();
        let batches = chunks.len();
        let results: Vec<Result<DeleteReport, StoreError>> = futures::stream::iter(chunks)
            .map(|b| async move { self.delete_batch(&b).await })
            .buffered(4)
            .collect()
            .await;
        // An error only when no batch got anywhere; otherwise the keys of failed batches are
        // reported as failed, beside the ones that are gone.
        let mut first_err: Option<StoreError> = None;
        let mut failed_batches = 0;
        let mut any_ok = false;
        for (batch, res) in keys.chunks(PAGE_SIZE).zip(results) {
            match res {
                Ok(r) => {
                    any_ok = true;
                    report.deleted.extend(r.deleted);
                    report.failed.extend(r.failed);
                    report.markers.extend(r.markers);
                }
                Err(e) => {
                    failed_batches += 1;
                    let why = e.to_string();
                    report
                        .failed
                        .extend(batch.iter().map(|k| (k.clone(), why.clone())));
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(mut e) if !any_ok => {
                if batches > 1 {
                    e.message.push_str(&format!(
                        " (and {} more batches of keys failed the same way)",
                        failed_batches - 1
                    ));
                }
                Err(e)
            }
            _ => Ok(report),
        }
    }

    async fn ensure_container(&self) -> Result<bool, StoreError> {
        let s = &self.s;
        s.retry
            .run(|| async {
                let mut req = s.client.create_bucket().bucket(&s.url.bucket);
                if s.url.endpoint.is_none() && s.region != "us-east-1" {
                    req = req.create_bucket_configuration(
                        CreateBucketConfiguration::builder()
                            .location_constraint(BucketLocationConstraint::from(s.region.as_str()))
                            .build(),
                    );
                }
                let e = match req
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await
                {
                    Ok(_) => return Ok(true),
                    Err(e) => e,
                };
                let f = Failure::from_sdk(&e);
                if f.code_is("BucketAlreadyOwnedByYou") {
                    return Ok(false);
                }
                if !f.code_is("BucketAlreadyExists") {
                    return Err(s.failed(f, "create bucket", None));
                }
                // some servers say this for their own buckets too: check that we can use it
                let head = s
                    .client
                    .head_bucket()
                    .bucket(&s.url.bucket)
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await;
                match head {
                    Ok(_) => Ok(false),
                    Err(e) => {
                        let f = Failure::from_sdk(&e);
                        let failed = s.failed(f, "create bucket", None);
                        if failed.error.is_transient() {
                            return Err(failed);
                        }
                        Err(StoreError::new(
                            StoreErrorKind::AccessDenied,
                            &s.desc,
                            "create bucket",
                            format!(
                                "bucket `{}` already exists at endpoint {} and belongs to \
                                 someone else",
                                s.url.bucket, s.endpoint
                            ),
                        )
                        .with_advice("bucket names are global on AWS: pick another name")
                        .into())
                    }
                }
            })
            .await
    }

    async fn probe_conditional_writes(&self) -> Result<ConditionalSupport, StoreError> {
        super::probe_conditional(self).await
    }

    async fn versioning(&self) -> Result<super::Versioning, StoreError> {
        self.versioning_status().await
    }

    async fn list_versions_page(
        &self,
        prefix: &str,
        marker: Option<super::VersionMarker>,
    ) -> Result<super::VersionPage, StoreError> {
        self.versions_page(prefix, marker).await
    }

    async fn delete_versions(
        &self,
        versions: &[super::VersionRef],
    ) -> Result<DeleteReport, StoreError> {
        self.delete_exact(versions).await
    }

    async fn lifecycle_rules(
        &self,
    ) -> Result<Option<Vec<super::bucket::LifecycleRule>>, StoreError> {
        self.lifecycle().await
    }

    async fn object_lock(&self) -> Result<super::bucket::ObjectLock, StoreError> {
        self.lock_config().await
    }

    async fn incomplete_uploads(&self) -> Result<Vec<super::bucket::MultipartUpload>, StoreError> {
        self.uploads().await
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.abort(key, upload_id).await
    }

    async fn anonymous_read(&self, key: &str) -> Result<super::bucket::AnonymousRead, StoreError> {
        self.unsigned_get(key).await
    }
}
