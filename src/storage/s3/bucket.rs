//! A bucket's configuration on S3, as `narscope doctor` reads it: GetBucketLifecycleConfiguration,
//! GetObjectLockConfiguration, ListMultipartUploads with ListParts, AbortMultipartUpload, and an
//! unsigned GET (is the cache readable without credentials?).

use super::failure::{Failure, error_chain};
use super::lean::encode_path;
use super::{S3Store, size_of, to_system_time};
use crate::storage::bucket::{AnonymousRead, LifecycleRule, MultipartUpload, ObjectLock};
use crate::storage::retry::Failed;
use crate::storage::{StoreError, StoreErrorKind};
use aws_sdk_s3::types::{ExpirationStatus, ObjectLockEnabled};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::time::Duration;

/// Most incomplete uploads listed (ten pages); the rest are not looked at.
const MAX_UPLOADS: usize = 10_000;

impl S3Store {
    /// GetBucketLifecycleConfiguration; `None` when the bucket has none.
    pub(super) async fn lifecycle(&self) -> Result<Option<Vec<LifecycleRule>>, StoreError> {
        let s = &self.s;
        s.retry
            .run(|| async {
                let out = s
                    .client
                    .get_bucket_lifecycle_configuration()
                    .bucket(&s.url.bucket)
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await;
                match out {
                    Ok(o) => Ok(Some(o.rules().iter().map(rule_of).collect())),
                    Err(e) => {
                        let f = Failure::from_sdk(&e);
                        if f.code_is("NoSuchLifecycleConfiguration") {
                            return Ok(None);
                        }
                        if f.not_implemented() {
                            return Err(Failed::from(self.unsupported("get lifecycle")));
                        }
                        Err(s.failed(f, "get lifecycle", None))
                    }
                }
            })
            .await
    }

    /// GetObjectLockConfiguration; disabled when the bucket has none.
    pub(super) async fn lock_config(&self) -> Result<ObjectLock, StoreError> {
        let s = &self.s;
        s.retry
            .run(|| async {
                let out = s
                    .client
                    .get_object_lock_configuration()
                    .bucket(&s.url.bucket)
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await;
                match out {
                    Ok(o) => {
                        let Some(c) = o.object_lock_configuration() else {
                            return Ok(ObjectLock::default());
                        };
                        let retention = c.rule().and_then(|r| r.default_retention());
                        Ok(ObjectLock {
                            enabled: c.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled),
                            default_mode: retention
                                .and_then(|r| r.mode())
                                .map(|m| m.as_str().to_string()),
                            default_days: retention.and_then(|r| {
                                r.days()
                                    .or_else(|| r.years().map(|y| y.saturating_mul(365)))
                            }),
                        })
                    }
                    Err(e) => {
                        let f = Failure::from_sdk(&e);
                        if f.code_is("ObjectLockConfigurationNotFoundError")
                            || f.code_is("ObjectLockConfigurationNotFound")
                        {
                            return Ok(ObjectLock::default());
                        }
                        if f.not_implemented() {
                            return Err(Failed::from(self.unsupported("get object lock")));
                        }
                        Err(s.failed(f, "get object lock", None))
                    }
                }
            })
            .await
    }

    /// ListMultipartUploads under the cache root, and ListParts of each for its bytes.
    pub(super) async fn uploads(&self) -> Result<Vec<MultipartUpload>, StoreError> {
        let s = &self.s;
        let mut found: Vec<MultipartUpload> = Vec::new();
        let mut marker: Option<(String, Option<String>)> = None;
        loop {
            let m = marker.clone();
            let (page, next) = s
                .retry
                .run(|| async {
                    let mut req = s
                        .client
                        .list_multipart_uploads()
                        .bucket(&s.url.bucket)
                        .prefix(&s.root);
                    if let Some((k, u)) = &m {
                        req = req.key_marker(k);
                        if let Some(u) = u {
                            req = req.upload_id_marker(u);
                        }
                    }
                    let out = req
                        .customize()
                        .config_override(s.metadata_override())
                        .send()
                        .await
                        .map_err(|e| {
                            let f = Failure::from_sdk(&e);
                            if f.not_implemented() {
                                return Failed::from(self.unsupported("list multipart uploads"));
                            }
                            s.failed(f, "list multipart uploads", None)
                        })?;
                    let page: Vec<MultipartUpload> = out
                        .uploads()
                        .iter()
                        .filter_map(|u| {
                            Some(MultipartUpload {
                                key: s.relative(u.key()?)?,
                                upload_id: u.upload_id()?.to_string(),
                                initiated: to_system_time(u.initiated()),
                                bytes: 0,
                                parts: 0,
                            })
                        })
                        .collect();
                    let next = match (out.is_truncated(), out.next_key_marker()) {
                        (Some(true), Some(k)) if !k.is_empty() => Some((
                            k.to_string(),
                            out.next_upload_id_marker().map(str::to_string),
                        )),
                        _ => None,
                    };
                    Ok((page, next))
                })
                .await?;
            found.extend(page);
            if next.is_none() || next == marker || found.len() >= MAX_UPLOADS {
                break;
            }
            marker = next;
        }
        for u in &mut found {
            let (bytes, parts) = self.parts_of(&u.key, &u.upload_id).await?;
            u.bytes = bytes;
            u.parts = parts;
        }
        Ok(found)
    }

    /// ListParts of one upload: (bytes, parts).
    async fn parts_of(&self, key: &str, upload_id: &str) -> Result<(u64, u64), StoreError> {
        let s = &self.s;
        let full = self.full_key("list parts", key)?;
        let mut bytes = 0u64;
        let mut parts = 0u64;
        let mut marker: Option<String> = None;
        loop {
            let m = marker.clone();
            let res = s
                .retry
                .run(|| async {
                    let mut req = s
                        .client
                        .list_parts()
                        .bucket(&s.url.bucket)
                        .key(&full)
                        .upload_id(upload_id);
                    if let Some(m) = &m {
                        req = req.part_number_marker(m);
                    }
                    let out = req
                        .customize()
                        .config_override(s.metadata_override())
                        .send()
                        .await;
                    match out {
                        Ok(out) => {
                            let b: u64 = out.parts().iter().map(|p| size_of(p.size())).sum();
                            let n = out.parts().len() as u64;
                            let next = match (out.is_truncated(), out.next_part_number_marker()) {
                                (Some(true), Some(k)) if !k.is_empty() => Some(k.to_string()),
                                _ => None,
                            };
                            Ok(Some((b, n, next)))
                        }
                        Err(e) => {
                            let f = Failure::from_sdk(&e);
                            // Completed or aborted since it was listed: nothing stored.
                            if f.code_is("NoSuchUpload") {
                                return Ok(None);
                            }
                            Err(s.failed(f, "list parts", Some(key)))
                        }
                    }
                })
                .await?;
            let Some((b, n, next)) = res else {
                return Ok((bytes, parts));
            };
            bytes += b;
            parts += n;
            if next.is_none() || next == marker {
                return Ok((bytes, parts));
            }
            marker = next;
        }
    }

    /// AbortMultipartUpload; an upload that is gone already counts as aborted.
    pub(super) async fn abort(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let s = &self.s;
        let full = self.full_key("abort multipart upload", key)?;
        s.retry
            .run(|| async {
                let out = s
                    .client
                    .abort_multipart_upload()
                    .bucket(&s.url.bucket)
                    .key(&full)
                    .upload_id(upload_id)
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await;
                match out {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let f = Failure::from_sdk(&e);
                        if f.code_is("NoSuchUpload") {
                            return Ok(());
                        }
                        Err(s.failed(f, "abort multipart upload", Some(key)))
                    }
                }
            })
            .await
    }

    /// An unsigned GET of `key`, addressed as the store addresses its requests.
    pub(super) async fn unsigned_get(&self, key: &str) -> Result<AnonymousRead, StoreError> {
        let s = &self.s;
        let fail = |kind: StoreErrorKind, msg: String| {
            StoreError::new(kind, &s.desc, "anonymous GET", msg).with_key(key)
        };
        let url = self
            .public_url(key)
            .map_err(|m| fail(StoreErrorKind::Other, m))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(s.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| fail(StoreErrorKind::Other, format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client: Client<_, Full<Bytes>> =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        let req = http::Request::builder()
            .method(http::Method::GET)
            .uri(&url)
            .header(http::header::RANGE, "bytes=0-0")
            .body(Full::new(Bytes::new()))
            .map_err(|e| fail(StoreErrorKind::Other, format!("request for {url}: {e}")))?;
        let timeout = s.metadata_timeout.max(Duration::from_secs(5));
        let resp = match tokio::time::timeout(timeout, client.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Err(fail(
                    StoreErrorKind::Unreachable,
                    format!("GET {url} without credentials: {}", error_chain(&e)),
                ));
            }
            Err(_) => {
                return Err(fail(
                    StoreErrorKind::Timeout,
                    format!("GET {url} without credentials: no answer within {timeout:?}"),
                ));
            }
        };
        match resp.status().as_u16() {
            200 | 206 => Ok(AnonymousRead::Readable),
            401 | 403 => Ok(AnonymousRead::Denied),
            404 => Ok(AnonymousRead::NotFound),
            st => Err(fail(
                StoreErrorKind::Other,
                format!("GET {url} without credentials answered HTTP {st}"),
            )),
        }
    }

    /// The plain HTTP(S) URL of `key` (path style or virtual host, as the store addresses).
    fn public_url(&self, key: &str) -> Result<String, String> {
        let s = &self.s;
        let uri: http::Uri = s
            .endpoint
            .parse()
            .map_err(|e| format!("endpoint {}: {e}", s.endpoint))?;
        let scheme = uri.scheme_str().unwrap_or("https");
        let authority = uri
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| format!("endpoint {} has no host", s.endpoint))?;
        let base_path = uri.path().trim_end_matches('/');
        let object = encode_path(&format!("{}{key}", s.root));
        Ok(if s.url.path_style() {
            format!(
                "{scheme}://{authority}{base_path}/{}/{object}",
                encode_path(&s.url.bucket)
            )
        } else {
            format!(
                "{scheme}://{}.{authority}{base_path}/{object}",
                s.url.bucket
            )
        })
    }
}

/// Whether the server said it does not implement the request.
impl S3Store {
    /// The error of a bucket call the server does not implement.
    fn unsupported(&self, op: &'static str) -> StoreError {
        StoreError::new(
            StoreErrorKind::NotSupported,
            &self.s.desc,
            op,
            "the server does not implement this request",
        )
    }
}

/// Our view of one SDK lifecycle rule.
fn rule_of(r: &aws_sdk_s3::types::LifecycleRule) -> LifecycleRule {
    let filter = r.filter();
    let and = filter.and_then(|f| f.and());
    #[allow(deprecated)]
    let legacy_prefix = r.prefix();
    let prefix = filter
        .and_then(|f| f.prefix())
        .or_else(|| and.and_then(|a| a.prefix()))
        .or(legacy_prefix)
        .unwrap_or_default()
        .to_string();
    let narrowed = filter.is_some_and(|f| {
        f.tag().is_some()
            || f.object_size_greater_than().is_some()
            || f.object_size_less_than().is_some()
    }) || and.is_some_and(|a| {
        !a.tags().is_empty()
            || a.object_size_greater_than().is_some()
            || a.object_size_less_than().is_some()
    });
    let exp = r.expiration();
    LifecycleRule {
        id: r.id().map(str::to_string),
        enabled: *r.status() == ExpirationStatus::Enabled,
        prefix,
        narrowed,
        expiration_days: exp.and_then(|e| e.days()),
        expiration_date: to_system_time(exp.and_then(|e| e.date())),
        expired_object_delete_marker: exp
            .and_then(|e| e.expired_object_delete_marker())
            .unwrap_or(false),
        noncurrent_expiration_days: r
            .noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days()),
        noncurrent_newer_versions: r
            .noncurrent_version_expiration()
            .and_then(|n| n.newer_noncurrent_versions()),
        transitions: r
            .transitions()
            .iter()
            .map(|t| {
                (
                    t.days(),
                    t.storage_class()
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect(),
        noncurrent_transitions: r
            .noncurrent_version_transitions()
            .iter()
            .map(|t| {
                (
                    t.noncurrent_days(),
                    t.storage_class()
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect(),
        abort_incomplete_multipart_days: r
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
    }
}
