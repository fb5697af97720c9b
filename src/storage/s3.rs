//! The S3 backend (AWS S3 and S3-compatible servers) on the AWS Rust SDK.
//!
//! - One shared client per store; its hyper connection pool serves many concurrent requests.
//! - Credentials: the standard AWS chain (environment, profile files, SSO, …); `profile=` picks a
//!   profile; [`S3Options::with_static_credentials`] overrides the chain.
//! - Region: `region=`, else the region encoded in a well-known provider endpoint host
//!   (Spaces, B2, R2, AWS), else the AWS chain, else `us-east-1`.
//! - Timeouts: connect 5 s; listing, HEAD, DELETE and bucket calls 60 s per attempt; transfers
//!   600 s until the response starts (like Nix). Retries: the SDK's standard mode.
//! - Request checksums only where S3 requires them (many S3-compatible servers reject the
//!   newer default checksums).
//! - Like Nix, a 403 on GET/HEAD means "missing" (S3 answers 403 for missing keys when the
//!   caller lacks `s3:ListBucket`), unless the server says the credentials are wrong.

use super::{
    ByteReader, ConditionalSupport, DeleteReport, GetResult, ListOptions, ListPage, ObjectMeta,
    PAGE_SIZE, PutOptions, S3Url, Store, StoreError, StoreErrorKind,
};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    Delete, ObjectIdentifier,
};
use futures::{StreamExt, TryStreamExt};
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Objects larger than this are uploaded with multipart upload by `put_file` (100 MiB).
pub const MULTIPART_THRESHOLD: u64 = 100 * 1024 * 1024;
/// Default multipart part size (16 MiB).
pub const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Smallest part size S3 accepts (except for the last part).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;

/// Access key and secret given explicitly instead of the AWS chain. `Debug` hides the secret.
#[derive(Clone)]
pub struct StaticCredentials {
    access_key: String,
    secret_key: String,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"** redacted **")
            .finish()
    }
}

/// Tuning of an [`S3Store`].
#[derive(Clone, Debug)]
pub struct S3Options {
    /// `put_file` uses multipart upload above this size.
    pub multipart_threshold: u64,
    /// Multipart part size (raised automatically to stay within 10 000 parts; at least 5 MiB).
    pub part_size: u64,
    /// Parts uploaded at once.
    pub part_concurrency: usize,
    /// Credentials overriding the AWS chain.
    pub credentials: Option<StaticCredentials>,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Per-attempt timeout of small requests (list, HEAD, DELETE, bucket calls).
    pub metadata_timeout: Duration,
    /// Time allowed until the response of a transfer (GET, PUT, part upload) starts.
    pub transfer_timeout: Duration,
    /// Small GETs and PUTs go through a lean SigV4 client first, falling back to the SDK for
    /// anything but a GET's 200 or `NoSuchKey`, a PUT's 2xx or a failed write condition (see
    /// `s3_lean`).
    /// Off: every request goes through the SDK.
    pub lean_client: bool,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: PART_SIZE,
            part_concurrency: 4,
            credentials: None,
            connect_timeout: Duration::from_secs(5),
            metadata_timeout: Duration::from_secs(60),
            transfer_timeout: Duration::from_secs(600),
            lean_client: true,
        }
    }
}

impl S3Options {
    /// Uses this access key and secret instead of the AWS credential chain.
    pub fn with_static_credentials(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> S3Options {
        self.credentials = Some(StaticCredentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        });
        self
    }

    /// Sets the multipart threshold and part size (the part size is raised to 5 MiB if smaller).
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> S3Options {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }
}

/// A cache in an S3 bucket (below an optional key prefix).
pub struct S3Store {
    client: Client,
    url: S3Url,
    root: String,
    region: String,
    endpoint: String,
    desc: String,
    opts: S3Options,
    lean: Option<super::s3_lean::LeanClient>,
}

/// Largest body a PUT sends through the lean client (narinfos, listings, pins).
const LEAN_PUT_MAX: u64 = 1 << 20;

/// What an SDK error boils down to.
struct Failure {
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
    bucket_region: Option<String>,
    transport: Option<Transport>,
    detail: String,
}

enum Transport {
    Timeout,
    Unreachable,
    Other,
}

const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
    "InvalidClientTokenId",
];

impl Failure {
    fn from_sdk<E>(e: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let raw = e.raw_response();
        let status = raw.map(|r| r.status().as_u16());
        let bucket_region = raw
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string);
        let detail = error_chain(e);
        let transport = match e {
            SdkError::TimeoutError(_) => Some(Transport::Timeout),
            SdkError::DispatchFailure(d) if d.is_timeout() => Some(Transport::Timeout),
            SdkError::DispatchFailure(d) if d.is_io() => Some(Transport::Unreachable),
            SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
                Some(Transport::Other)
            }
            _ => None,
        };
        Failure {
            status,
            code: e.code().map(str::to_string),
            message: e.message().map(str::to_string),
            bucket_region,
            transport,
            detail,
        }
    }

    /// An HTTP answer with an S3 error code and no more to say (what the lean client saw).
    fn http(status: u16, code: &str) -> Failure {
        Failure {
            status: Some(status),
            code: Some(code.to_string()),
            message: None,
            bucket_region: None,
            transport: None,
            detail: format!("HTTP {status}"),
        }
    }

    fn code_is(&self, c: &str) -> bool {
        self.code.as_deref() == Some(c)
    }

    fn credentials_problem(&self) -> bool {
        if self
            .code
            .as_deref()
            .is_some_and(|c| CREDENTIAL_CODES.contains(&c))
        {
            return true;
        }
        // Garage (and others) answer AccessDenied for a bad signature or an unknown key id.
        let msg = self
            .message
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.code_is("AccessDenied")
            && (msg.contains("signature")
                || msg.contains("no such key: ")
                || msg.contains("access key"))
    }

    /// Nix's rule for GET/HEAD: 404 and 403 mean "missing", unless the bucket is missing or
    /// the credentials are rejected outright.
    fn means_missing(&self) -> bool {
        if self.code_is("NoSuchBucket") || self.credentials_problem() {
            return false;
        }
        matches!(self.status, Some(404) | Some(403))
            || self.code_is("NoSuchKey")
            || self.code_is("NotFound")
    }

    /// `Code: message` as the server said it.
    fn server_said(&self) -> String {
        match (&self.code, &self.message, self.status) {
            (Some(c), Some(m), _) => format!("{c}: {m}"),
            (Some(c), None, Some(s)) => format!("{c} (HTTP {s})"),
            (Some(c), None, None) => c.clone(),
            (None, Some(m), Some(s)) => format!("HTTP {s}: {m}"),
            (None, _, Some(s)) => format!("HTTP {s}"),
            (None, _, None) => self.detail.clone(),
        }
    }
}

fn to_system_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|d| SystemTime::try_from(*d).ok())
}

fn size_of(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or_default()
}

impl S3Store {
    /// Builds the client (no network traffic; credentials are resolved on first use).
    pub async fn connect(url: S3Url, opts: S3Options) -> Result<S3Store, StoreError> {
        let transfer_timeouts = TimeoutConfig::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.transfer_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(transfer_timeouts)
            .retry_config(RetryConfig::standard());
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
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        match &url.endpoint {
            Some(ep) => b = b.endpoint_url(ep),
            // the URL is the single source of truth: ignore AWS_ENDPOINT_URL & co.
            None => {
                b.set_endpoint_url(None);
            }
        }
        let client = Client::from_conf(b.build());
        let lean = if opts.lean_client {
            super::s3_lean::LeanClient::new(
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
            client,
            root: url.key_prefix(),
            url,
            region,
            endpoint,
            desc,
            opts,
            lean,
        })
    }

    /// How the lean client has fared (`None` when this store does not use it).
    pub fn lean_stats(&self) -> Option<super::LeanStats> {
        self.lean.as_ref().map(|l| l.stats())
    }

    /// GetObject through the SDK; `None` when missing (403 counting as missing, as in Nix).
    async fn sdk_get_object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StoreError> {
        let full = self.full_key("GET", key)?;
        match self
            .client
            .get_object()
            .bucket(&self.url.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o)),
            Err(e) => {
                let f = Failure::from_sdk(&e);
                if f.means_missing() {
                    return Ok(None);
                }
                Err(self.error(f, "GET", Some(key)))
            }
        }
    }

    /// PUT through the SDK.
    async fn sdk_put(
        &self,
        key: &str,
        full: &str,
        body: ByteStream,
        size: u64,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.url.bucket)
            .key(full)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .body(body);
        if let Some(ct) = &opts.content_type {
            req = req.content_type(ct);
        }
        let (if_match, if_none_match) = opts.condition.headers();
        req = req.set_if_match(if_match).set_if_none_match(if_none_match);
        let out = req
            .send()
            .await
            .map_err(|e| self.error(Failure::from_sdk(&e), "PUT", Some(key)))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            last_modified: None,
            etag: out.e_tag().map(str::to_string),
        })
    }

    async fn sdk_get(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        let Some(out) = self.sdk_get_object(key).await? else {
            return Ok(None);
        };
        let content_encoding = out.content_encoding().map(str::to_string).or_else(|| {
            out.metadata()
                .and_then(|m| m.get("content-encoding"))
                .cloned()
        });
        let mut meta = ObjectMeta {
            key: key.to_string(),
            size: size_of(out.content_length()),
            last_modified: to_system_time(out.last_modified()),
            etag: out.e_tag().map(str::to_string),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.body_error("GET", key, e))?
            .into_bytes();
        meta.size = bytes.len() as u64;
        Ok(Some(GetResult {
            meta,
            bytes,
            content_encoding,
        }))
    }

    /// The URL this store was opened with.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    fn full_key(&self, op: &'static str, key: &str) -> Result<String, StoreError> {
        if key.is_empty() {
            return Err(StoreError::new(
                StoreErrorKind::InvalidKey,
                &self.desc,
                op,
                "the key is empty",
            )
            .with_key(key));
        }
        Ok(format!("{}{key}", self.root))
    }

    fn metadata_override(&self) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::new().timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(self.opts.connect_timeout)
                .read_timeout(self.opts.metadata_timeout)
                .operation_attempt_timeout(self.opts.metadata_timeout)
                .build(),
        )
    }

    fn error(&self, f: Failure, op: &'static str, key: Option<&str>) -> StoreError {
        let b = &self.url.bucket;
        let ep = &self.endpoint;
        let (kind, message, advice): (StoreErrorKind, String, Option<String>) = match &f.transport {
            Some(Transport::Timeout) => (
                StoreErrorKind::Timeout,
                format!("cannot reach endpoint {ep}: timed out ({})", f.detail),
                Some("check the endpoint URL, the network, and that the server is up".into()),
            ),
            Some(Transport::Unreachable) => (
                StoreErrorKind::Unreachable,
                format!("cannot reach endpoint {ep}: {}", f.detail),
                Some(
                    "check endpoint= (host, port, http vs https) and that the server is running"
                        .into(),
                ),
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
                format!("cannot reach endpoint {ep}: {}", f.detail),
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
        if f.code_is("NotImplemented") || f.status == Some(501) {
            return (
                StoreErrorKind::NotSupported,
                format!("the server at {ep} does not implement this ({said})"),
                None,
            );
        }
        (
            StoreErrorKind::Other,
            format!("unexpected answer from endpoint {ep} for bucket `{b}`: {said}"),
            None,
        )
    }

    fn body_error(
        &self,
        op: &'static str,
        key: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::new(
            StoreErrorKind::Unreachable,
            &self.desc,
            op,
            format!(
                "reading the body from endpoint {} failed: {}",
                self.endpoint,
                DisplayErrorContext(&e)
            ),
        )
        .with_key(key)
    }

    fn relative(&self, full: &str) -> Option<String> {
        full.strip_prefix(self.root.as_str()).map(str::to_string)
    }

    async fn put_multipart(
        &self,
        key: &str,
        full: &str,
        path: &Path,
        size: u64,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let bucket = &self.url.bucket;
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(full);
        if let Some(ct) = &opts.content_type {
            create = create.content_type(ct);
        }
        let created = create
            .customize()
            .config_override(self.metadata_override())
            .send()
            .await
            .map_err(|e| self.error(Failure::from_sdk(&e), "PUT", Some(key)))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                &self.desc,
                "PUT",
                format!("endpoint {} returned no multipart upload id", self.endpoint),
            )
            .with_key(key));
        };
        let res = self
            .upload_parts_and_complete(key, full, path, size, &upload_id, opts)
            .await;
        if res.is_err() {
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(full)
                .upload_id(&upload_id)
                .customize()
                .config_override(self.metadata_override())
                .send()
                .await;
            if let Err(e) = abort {
                tracing::warn!(
                    "aborting multipart upload {upload_id} of `{key}` at {} failed: {}",
                    self.desc,
                    DisplayErrorContext(&e)
                );
            }
        }
        res
    }

    async fn upload_parts_and_complete(
        &self,
        key: &str,
        full: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let part_size = self
            .opts
            .part_size
            .max(MIN_PART_SIZE)
            .max(size.div_ceil(MAX_PARTS));
        let count = size.div_ceil(part_size).max(1);
        let bucket = &self.url.bucket;
        let parts: Vec<CompletedPart> = futures::stream::iter(0..count)
            .map(|i| async move {
                let offset = i * part_size;
                let len = part_size.min(size - offset);
                let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                let body = ByteStream::read_from()
                    .path(path)
                    .offset(offset)
                    .length(Length::Exact(len))
                    .build()
                    .await
                    .map_err(|e| {
                        StoreError::new(
                            StoreErrorKind::Io,
                            &self.desc,
                            "PUT",
                            format!("reading {}: {e}", path.display()),
                        )
                        .with_key(key)
                    })?;
                let out = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| self.error(Failure::from_sdk(&e), "PUT", Some(key)))?;
                Ok::<_, StoreError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build(),
                )
            })
            .buffered(self.opts.part_concurrency.max(1))
            .try_collect()
            .await?;
        let complete = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        let (if_match, if_none_match) = opts.condition.headers();
        let out = complete
            .set_if_match(if_match)
            .set_if_none_match(if_none_match)
            .send()
            .await
            .map_err(|e| self.error(Failure::from_sdk(&e), "PUT", Some(key)))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            last_modified: None,
            etag: out.e_tag().map(str::to_string),
        })
    }

    async fn delete_batch(&self, batch: &[String]) -> Result<DeleteReport, StoreError> {
        let mut ids = Vec::with_capacity(batch.len());
        let mut report = DeleteReport::default();
        for key in batch {
            match self.full_key("delete", key).and_then(|full| {
                ObjectIdentifier::builder().key(full).build().map_err(|e| {
                    StoreError::new(
                        StoreErrorKind::InvalidKey,
                        &self.desc,
                        "delete",
                        e.to_string(),
                    )
                })
            }) {
                Ok(id) => ids.push(id),
                Err(e) => report.failed.push((key.clone(), e.message)),
            }
        }
        if ids.is_empty() {
            return Ok(report);
        }
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| {
                StoreError::new(StoreErrorKind::Other, &self.desc, "delete", e.to_string())
            })?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.url.bucket)
            .delete(delete)
            .customize()
            .config_override(self.metadata_override())
            .send()
            .await
            .map_err(|e| self.error(Failure::from_sdk(&e), "delete", None))?;
        let mut failed: std::collections::HashMap<String, String> = Default::default();
        for err in out.errors() {
            let code = err.code().unwrap_or("error");
            if code == "NoSuchKey" {
                continue;
            }
            if let Some(k) = err.key().and_then(|k| self.relative(k)) {
                failed.insert(k, format!("{code}: {}", err.message().unwrap_or_default()));
            }
        }
        for key in batch {
            if report.failed.iter().any(|(k, _)| k == key) {
                continue;
            }
            match failed.remove(key) {
                Some(why) => report.failed.push((key.clone(), why)),
                None => report.deleted.push(key.clone()),
            }
        }
        Ok(report)
    }
}

/// The Display texts of an error and its sources, joined with `: ` (repetitions dropped).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        let text = c.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

fn credentials_advice(url: &S3Url) -> String {
    let profile = match &url.profile {
        Some(p) => format!("profile `{p}` (profile= in the URL)"),
        None => "the profile (profile= in the URL or AWS_PROFILE)".to_string(),
    };
    format!(
        "check the credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, {profile}, or \
         ~/.aws/credentials; the access key must belong to this endpoint"
    )
}

#[async_trait::async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        self.desc.clone()
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
        let full_prefix = format!("{}{prefix}", self.root);
        let max = opts
            .max_keys
            .map(|m| m.clamp(1, PAGE_SIZE as u32))
            .unwrap_or(PAGE_SIZE as u32);
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(&self.url.bucket)
            .max_keys(i32::try_from(max).unwrap_or(1000));
        if !full_prefix.is_empty() {
            req = req.prefix(&full_prefix);
        }
        if opts.top_level_only {
            req = req.delimiter("/");
        }
        match (token, &opts.start_after) {
            (Some(t), _) => req = req.continuation_token(t),
            (None, Some(sa)) => req = req.start_after(format!("{}{sa}", self.root)),
            (None, None) => {}
        }
        let out = req
            .customize()
            .config_override(self.metadata_override())
            .send()
            .await
            .map_err(|e| {
                let mut err = self.error(Failure::from_sdk(&e), "list", Some(prefix));
                if err.kind == StoreErrorKind::AccessDenied {
                    err.message = format!(
                        "access denied listing bucket `{}` at endpoint {} ({}): these credentials \
                         may not list it (s3:ListBucket), or they are wrong",
                        self.url.bucket,
                        self.endpoint,
                        Failure::from_sdk(&e).server_said()
                    );
                }
                err
            })?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                let key = self.relative(o.key()?)?;
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

    async fn get(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        use super::s3_lean::LeanOutcome;
        let Some(lean) = self.lean.as_ref().filter(|l| l.enabled()) else {
            return self.sdk_get(key).await;
        };
        self.full_key("GET", key)?;
        match lean.get(key).await {
            LeanOutcome::Found(r) => Ok(Some(r)),
            LeanOutcome::Missing => Ok(None),
            LeanOutcome::Fallback(why) => {
                tracing::trace!("lean GET of {key} fell back to the SDK: {why}");
                let r = self.sdk_get(key).await;
                if matches!(r, Ok(Some(_))) {
                    lean.strike(&why);
                }
                r
            }
        }
    }

    async fn get_reader(&self, key: &str) -> Result<Option<(ObjectMeta, ByteReader)>, StoreError> {
        let Some(out) = self.sdk_get_object(key).await? else {
            return Ok(None);
        };
        let meta = ObjectMeta {
            key: key.to_string(),
            size: size_of(out.content_length()),
            last_modified: to_system_time(out.last_modified()),
            etag: out.e_tag().map(str::to_string),
        };
        Ok(Some((meta, Box::pin(out.body.into_async_read()))))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let full = self.full_key("HEAD", key)?;
        match self
            .client
            .head_object()
            .bucket(&self.url.bucket)
            .key(&full)
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
                    Ok(None)
                } else {
                    Err(self.error(f, "HEAD", Some(key)))
                }
            }
        }
    }

    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let full = self.full_key("PUT", key)?;
        let size = body.len() as u64;
        if let Some(lean) = self
            .lean
            .as_ref()
            .filter(|l| l.enabled() && size <= LEAN_PUT_MAX)
        {
            use super::s3_lean::LeanPut;
            match lean
                .put(
                    key,
                    body.clone(),
                    opts.content_type.as_deref(),
                    &opts.condition,
                )
                .await
            {
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
                    return Err(self.error(f, "PUT", Some(key)));
                }
                LeanPut::Fallback(why) => {
                    tracing::trace!("lean PUT of {key} fell back to the SDK: {why}");
                    let r = self
                        .sdk_put(key, &full, ByteStream::from(body), size, opts)
                        .await;
                    if r.is_ok() {
                        lean.strike(&why);
                    }
                    return r;
                }
            }
        }
        self.sdk_put(key, &full, ByteStream::from(body), size, opts)
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
            StoreError::new(
                StoreErrorKind::Io,
                &self.desc,
                "PUT",
                format!("reading {}: {e}", path.display()),
            )
            .with_key(key)
        };
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| io_err(&e))?
            .len();
        if size > self.opts.multipart_threshold {
            return self.put_multipart(key, &full, path, size, opts).await;
        }
        let body = ByteStream::from_path(path).await.map_err(|e| io_err(&e))?;
        self.sdk_put(key, &full, body, size, opts).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<DeleteReport, StoreError> {
        let mut report = DeleteReport::default();
        let chunks: Vec<Vec<String>> = keys.chunks(PAGE_SIZE).map(<[String]>::to_vec).collect();
        let mut batches = futures::stream::iter(chunks)
            .map(|b| async move {
                let res = self.delete_batch(&b).await;
                (b, res)
            })
            .buffered(4);
        let mut any_ok = false;
        while let Some((batch, res)) = batches.next().await {
            match res {
                Ok(r) => {
                    any_ok = true;
                    report.deleted.extend(r.deleted);
                    report.failed.extend(r.failed);
                }
                Err(e) if !any_ok => return Err(e),
                Err(e) => {
                    let why = e.to_string();
                    report
                        .failed
                        .extend(batch.iter().map(|k| (k.clone(), why.clone())));
                }
            }
        }
        Ok(report)
    }

    async fn ensure_container(&self) -> Result<bool, StoreError> {
        let mut req = self.client.create_bucket().bucket(&self.url.bucket);
        if self.url.endpoint.is_none() && self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match req
            .customize()
            .config_override(self.metadata_override())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let f = Failure::from_sdk(&e);
                if f.code_is("BucketAlreadyOwnedByYou") {
                    return Ok(false);
                }
                if f.code_is("BucketAlreadyExists") {
                    // some servers say this for their own buckets too: check that we can use it
                    let head = self
                        .client
                        .head_bucket()
                        .bucket(&self.url.bucket)
                        .customize()
                        .config_override(self.metadata_override())
                        .send()
                        .await;
                    if head.is_ok() {
                        return Ok(false);
                    }
                    return Err(StoreError::new(
                        StoreErrorKind::AccessDenied,
                        &self.desc,
                        "create bucket",
                        format!(
                            "bucket `{}` already exists at endpoint {} and belongs to someone else",
                            self.url.bucket, self.endpoint
                        ),
                    )
                    .with_advice("bucket names are global on AWS: pick another name"));
                }
                Err(self.error(f, "create bucket", None))
            }
        }
    }

    async fn probe_conditional_writes(&self) -> Result<ConditionalSupport, StoreError> {
        super::probe_conditional(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str, region: Option<&str>) -> Failure {
        Failure {
            message: Some("the server's message".into()),
            bucket_region: region.map(str::to_string),
            ..Failure::http(status, code)
        }
    }

    async fn store() -> S3Store {
        let url = match super::super::CacheUrl::parse(
            "s3://bkt/pfx?endpoint=http://127.0.0.1:9&region=us-east-1",
        ) {
            Ok(super::super::CacheUrl::S3(u)) => u,
            other => panic!("{other:?}"),
        };
        let opts = S3Options::default().with_static_credentials("AKID", "SECRET-VALUE");
        S3Store::connect(url, opts)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn wrong_region_names_the_region() {
        let s = store().await;
        let e = s.error(
            failure(301, "PermanentRedirect", Some("eu-west-1")),
            "list",
            Some(""),
        );
        assert_eq!(e.kind, StoreErrorKind::WrongRegion);
        let t = e.to_string();
        assert!(t.contains("add region=eu-west-1 to the URL"), "{t}");
        assert!(t.contains("not in region us-east-1"), "{t}");
        let e = s.error(
            failure(400, "AuthorizationHeaderMalformed", None),
            "GET",
            Some("k"),
        );
        assert_eq!(e.kind, StoreErrorKind::WrongRegion);
        assert!(e.to_string().contains("set region="), "{e}");
    }

    #[tokio::test]
    async fn classification() {
        let s = store().await;
        for code in [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
        ] {
            let e = s.error(failure(403, code, None), "GET", Some("k"));
            assert_eq!(e.kind, StoreErrorKind::Credentials, "{code}");
            let t = e.to_string();
            assert!(t.contains("AWS_ACCESS_KEY_ID") && t.contains("bkt"), "{t}");
            assert!(!t.contains("SECRET-VALUE"), "{t}");
        }
        let e = s.error(failure(412, "PreconditionFailed", None), "PUT", Some("k"));
        assert!(e.is_precondition_failed());
        let e = s.error(failure(501, "NotImplemented", None), "PUT", Some("k"));
        assert_eq!(e.kind, StoreErrorKind::NotSupported);
        let e = s.error(failure(500, "InternalError", None), "PUT", Some("k"));
        assert_eq!(e.kind, StoreErrorKind::Other);
        assert!(
            e.to_string()
                .contains("InternalError: the server's message"),
            "{e}"
        );
        assert_eq!(s.describe(), "s3://bkt/pfx (endpoint http://127.0.0.1:9)");
        assert!(!format!("{:?}", s.opts).contains("SECRET-VALUE"));
    }

    #[test]
    fn nix_missing_rule() {
        assert!(failure(404, "NoSuchKey", None).means_missing());
        assert!(failure(403, "AccessDenied", None).means_missing());
        assert!(!failure(404, "NoSuchBucket", None).means_missing());
        assert!(!failure(403, "SignatureDoesNotMatch", None).means_missing());
        let mut garage_bad_sig = failure(403, "AccessDenied", None);
        garage_bad_sig.message = Some("Forbidden: Invalid signature".into());
        assert!(!garage_bad_sig.means_missing());
        assert!(!failure(500, "InternalError", None).means_missing());
    }

    #[tokio::test]
    async fn aws_description_and_region_inference() {
        let url = S3Url {
            region: None,
            ..S3Url::new("bkt")
        };
        let mut url_b2 = S3Url::new("bkt");
        url_b2.endpoint = Some("https://s3.us-west-004.backblazeb2.com".into());
        let opts = S3Options::default().with_static_credentials("a", "b");
        let aws = S3Store::connect(
            S3Url {
                region: Some("eu-west-1".into()),
                ..url
            },
            opts.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(aws.describe(), "s3://bkt (AWS S3, region eu-west-1)");
        let b2 = S3Store::connect(url_b2, opts)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b2.region(), "us-west-004");
    }
}
