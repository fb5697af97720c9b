//! Multipart uploads: S3's part and size limits, [`part_plan`] (the one place parts are sized),
//! and the upload itself (create, upload parts, complete; abort on failure).

use super::S3Store;
use super::failure::Failure;
use crate::storage::retry::Failed;
use crate::storage::{ObjectMeta, PutOptions, StoreError, StoreErrorKind};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, StorageClass};
use futures::{StreamExt, TryStreamExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Objects larger than this are uploaded with multipart upload by `put_file` (100 MiB), unless
/// the URL says otherwise (`multipart-threshold=`, `multipart-upload=false`).
pub const MULTIPART_THRESHOLD: u64 = 100 * 1024 * 1024;
/// Default multipart part size (16 MiB; `multipart-chunk-size=` in the URL sets another).
pub const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Smallest part size S3 accepts (except for the last part): 5 MiB.
pub const MIN_PART_SIZE: u64 = crate::storage::params::S3_MIN_PART_SIZE;
/// Largest single PUT, and largest part, S3 accepts: 5 GiB.
pub const MAX_PUT_SIZE: u64 = crate::storage::params::S3_MAX_PUT_SIZE;
/// Most parts one multipart upload may have.
pub const MAX_PARTS: u64 = 10_000;
/// Largest object S3 stores: 5 TiB.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

/// The part size and part count of a multipart upload of `size` bytes asked to use parts of
/// `part_size`: the part size is kept within S3's bounds (5 MiB to 5 GiB) and raised where
/// `size` would otherwise need more than [`MAX_PARTS`] parts. The one place parts are sized.
pub fn part_plan(size: u64, part_size: u64) -> (u64, u64) {
    let part = part_size
        .clamp(MIN_PART_SIZE, MAX_PUT_SIZE)
        .max(size.div_ceil(MAX_PARTS));
    (part, size.div_ceil(part).max(1))
}

impl S3Store {
    pub(super) async fn put_multipart(
        &self,
        key: &str,
        full: &str,
        path: &Path,
        size: u64,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let s = &self.s;
        let bucket = &s.url.bucket;
        // A create whose answer is lost leaves an upload behind that nobody aborts; bucket
        // lifecycle rules (AbortIncompleteMultipartUpload) clean those up.
        let upload_id = s
            .retry
            .run(|| async {
                let mut create = s
                    .client
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(full)
                    .set_content_encoding(opts.content_encoding.clone())
                    .set_storage_class(opts.storage_class.as_deref().map(StorageClass::from));
                if let Some(ct) = &opts.content_type {
                    create = create.content_type(ct);
                }
                let created = create
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await
                    .map_err(|e| s.failed(Failure::from_sdk(&e), "PUT", Some(key)))?;
                match created.upload_id() {
                    Some(id) => Ok(id.to_string()),
                    None => Err(Failed::from(s.plain(
                        StoreErrorKind::Other,
                        "PUT",
                        key,
                        format!("endpoint {} returned no multipart upload id", s.endpoint),
                    ))),
                }
            })
            .await?;
        let res = self
            .upload_parts_and_complete(key, full, path, size, &upload_id, opts)
            .await;
        if res.is_err() {
            let abort = s
                .retry
                .run(|| async {
                    match s
                        .client
                        .abort_multipart_upload()
                        .bucket(bucket)
                        .key(full)
                        .upload_id(&upload_id)
                        .customize()
                        .config_override(s.metadata_override())
                        .send()
                        .await
                    {
                        Ok(_) => Ok(()),
                        Err(e) => {
                            let f = Failure::from_sdk(&e);
                            // Gone already (an abort whose answer was lost, or completed).
                            if f.code_is("NoSuchUpload") {
                                return Ok(());
                            }
                            Err(s.failed(f, "abort upload", Some(key)))
                        }
                    }
                })
                .await;
            if let Err(e) = abort {
                tracing::warn!("aborting multipart upload {upload_id} of `{key}` failed: {e}");
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
        let s = &self.s;
        let (part_size, count) = part_plan(size, self.opts.part_size);
        let bucket = &s.url.bucket;
        let parts: Vec<CompletedPart> = futures::stream::iter(0..count)
            .map(|i| async move {
                let offset = i * part_size;
                let len = part_size.min(size - offset);
                let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                let out = s
                    .retry
                    .run(|| async {
                        let body = ByteStream::read_from()
                            .path(path)
                            .offset(offset)
                            .length(Length::Exact(len))
                            .build()
                            .await
                            .map_err(|e| {
                                s.plain(
                                    StoreErrorKind::Io,
                                    "PUT",
                                    key,
                                    format!("reading {}: {e}", path.display()),
                                )
                            })?;
                        s.client
                            .upload_part()
                            .bucket(bucket)
                            .key(full)
                            .upload_id(upload_id)
                            .part_number(number)
                            .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                            .body(body)
                            .send()
                            .await
                            .map_err(|e| s.failed(Failure::from_sdk(&e), "PUT", Some(key)))
                    })
                    .await?;
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
        let (if_match, if_none_match) = opts.condition.headers();
        // A retry after a lost answer finds the upload completed (NoSuchUpload): then the
        // object is ours if it has this upload's size and part count.
        let answer_lost = AtomicBool::new(false);
        s.retry
            .run(|| async {
                let res = s
                    .client
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts.clone()))
                            .build(),
                    )
                    .set_if_match(if_match.clone())
                    .set_if_none_match(if_none_match.clone())
                    .send()
                    .await;
                match res {
                    Ok(out) => Ok(ObjectMeta {
                        key: key.to_string(),
                        size,
                        last_modified: None,
                        etag: out.e_tag().map(str::to_string),
                    }),
                    Err(e) => {
                        let f = Failure::from_sdk(&e);
                        if f.code_is("NoSuchUpload") && answer_lost.load(Ordering::Relaxed) {
                            let suffix = format!("-{count}\"");
                            if let Ok(Some(m)) = s.head_once(key, full).await
                                && m.size == size
                                && m.etag.as_deref().is_some_and(|t| t.ends_with(&suffix))
                            {
                                tracing::debug!(
                                    "{}: the answer to completing `{key}` was lost; the \
                                     upload is complete",
                                    s.desc
                                );
                                return Ok(m);
                            }
                        }
                        let failed = s.failed(f, "PUT", Some(key));
                        if matches!(
                            failed.error.kind,
                            StoreErrorKind::Interrupted | StoreErrorKind::Timeout
                        ) {
                            answer_lost.store(true, Ordering::Relaxed);
                        }
                        Err(failed)
                    }
                }
            })
            .await
    }
}
