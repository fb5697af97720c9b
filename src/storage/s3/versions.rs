//! Bucket versioning on S3: GetBucketVersioning, ListObjectVersions, and DeleteObjects with
//! version ids (the only delete that frees bytes on a versioned bucket).

use super::failure::{Failure, SERVER_FAULT_CODES, THROTTLING_CODES, TIMEOUT_CODES};
use super::{S3Store, size_of, to_system_time};
use crate::storage::retry::Failed;
use crate::storage::versions::{ObjectVersion, VersionMarker, VersionPage, VersionRef, Versioning};
use crate::storage::{DeleteReport, PAGE_SIZE, StoreError, StoreErrorKind};
use aws_sdk_s3::types::{BucketVersioningStatus, Delete, ObjectIdentifier};
use futures::StreamExt;
use std::sync::Mutex;

impl S3Store {
    /// GetBucketVersioning. A server that does not implement it has no versions.
    pub(super) async fn versioning_status(&self) -> Result<Versioning, StoreError> {
        let s = &self.s;
        s.retry
            .run(|| async {
                let out = s
                    .client
                    .get_bucket_versioning()
                    .bucket(&s.url.bucket)
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await;
                match out {
                    Ok(o) => Ok(match o.status() {
                        Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
                        Some(BucketVersioningStatus::Suspended) => Versioning::Suspended,
                        _ => Versioning::Unversioned,
                    }),
                    Err(e) => {
                        let f = Failure::from_sdk(&e);
                        if f.not_implemented() {
                            return Ok(Versioning::Unversioned);
                        }
                        Err(s.failed(f, "get versioning", None))
                    }
                }
            })
            .await
    }

    /// One page of ListObjectVersions under `prefix`.
    pub(super) async fn versions_page(
        &self,
        prefix: &str,
        marker: Option<VersionMarker>,
    ) -> Result<VersionPage, StoreError> {
        let s = &self.s;
        let full_prefix = format!("{}{prefix}", s.root);
        s.retry
            .run(|| async {
                let mut req = s
                    .client
                    .list_object_versions()
                    .bucket(&s.url.bucket)
                    .prefix(&full_prefix)
                    .max_keys(PAGE_SIZE as i32);
                if let Some(m) = &marker {
                    req = req.key_marker(format!("{}{}", s.root, m.key));
                    if let Some(v) = &m.version_id {
                        req = req.version_id_marker(v);
                    }
                }
                let out = req
                    .customize()
                    .config_override(s.metadata_override())
                    .send()
                    .await
                    .map_err(|e| s.failed(Failure::from_sdk(&e), "list versions", Some(prefix)))?;
                let mut versions: Vec<ObjectVersion> = Vec::new();
                for v in out.versions() {
                    let Some(key) = v.key().and_then(|k| s.relative(k)) else {
                        continue;
                    };
                    versions.push(ObjectVersion {
                        key,
                        version_id: v.version_id().unwrap_or("null").to_string(),
                        is_latest: v.is_latest().unwrap_or(false),
                        delete_marker: false,
                        size: size_of(v.size()),
                        last_modified: to_system_time(v.last_modified()),
                        etag: v.e_tag().map(str::to_string),
                    });
                }
                for m in out.delete_markers() {
                    let Some(key) = m.key().and_then(|k| s.relative(k)) else {
                        continue;
                    };
                    versions.push(ObjectVersion {
                        key,
                        version_id: m.version_id().unwrap_or("null").to_string(),
                        is_latest: m.is_latest().unwrap_or(false),
                        delete_marker: true,
                        size: 0,
                        last_modified: to_system_time(m.last_modified()),
                        etag: None,
                    });
                }
                // The SDK splits versions and markers; put them back in S3's order: keys in
                // order, each key's current version first, then newest to oldest.
                versions.sort_by(|a, b| {
                    a.key
                        .cmp(&b.key)
                        .then(b.is_latest.cmp(&a.is_latest))
                        .then(b.last_modified.cmp(&a.last_modified))
                });
                let next = if out.is_truncated() == Some(true) {
                    let key = out.next_key_marker().and_then(|k| s.relative(k));
                    match key {
                        Some(key) => Some(VersionMarker {
                            key,
                            version_id: out.next_version_id_marker().map(str::to_string),
                        }),
                        None => {
                            return Err(Failed::from(StoreError::new(
                                StoreErrorKind::Other,
                                &s.desc,
                                "list versions",
                                "the server said the listing goes on but gave no marker",
                            )));
                        }
                    }
                } else {
                    None
                };
                Ok(VersionPage { versions, next })
            })
            .await
    }

    /// DeleteObjects with version ids, in batches of 1000, four at a time.
    pub(super) async fn delete_exact(
        &self,
        versions: &[VersionRef],
    ) -> Result<DeleteReport, StoreError> {
        let chunks: Vec<Vec<VersionRef>> = versions
            .chunks(PAGE_SIZE)
            .map(<[VersionRef]>::to_vec)
            .collect();
        let results: Vec<Result<DeleteReport, StoreError>> = futures::stream::iter(chunks)
            .map(|b| async move { self.delete_exact_batch(&b).await })
            .buffered(4)
            .collect()
            .await;
        let mut report = DeleteReport::default();
        let mut first_err = None;
        let mut any_ok = false;
        for (batch, res) in versions.chunks(PAGE_SIZE).zip(results) {
            match res {
                Ok(r) => {
                    any_ok = true;
                    report.deleted.extend(r.deleted);
                    report.failed.extend(r.failed);
                }
                Err(e) => {
                    let why = e.to_string();
                    report.failed.extend(
                        batch
                            .iter()
                            .map(|v| (version_label(v), why.clone()))
                            .collect::<Vec<_>>(),
                    );
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if !any_ok => Err(e),
            _ => Ok(report),
        }
    }

    async fn delete_exact_batch(&self, batch: &[VersionRef]) -> Result<DeleteReport, StoreError> {
        let s = &self.s;
        let mut report = DeleteReport::default();
        let mut pending: Vec<VersionRef> = Vec::with_capacity(batch.len());
        for v in batch {
            match self.full_key("delete version", &v.key) {
                Ok(_) => pending.push(v.clone()),
                Err(e) => report.failed.push((version_label(v), e.message)),
            }
        }
        if pending.is_empty() {
            return Ok(report);
        }
        // Each lock update is one assignment: a poisoned lock still holds consistent data.
        let pending = Mutex::new(pending);
        let outcome = Mutex::new(DeleteReport::default());
        let res = s
            .retry
            .run(|| async {
                let items = pending.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let ids = items
                    .iter()
                    .map(|v| {
                        ObjectIdentifier::builder()
                            .key(format!("{}{}", s.root, v.key))
                            .version_id(&v.version_id)
                            .build()
                            .map_err(|e| {
                                s.plain(
                                    StoreErrorKind::InvalidKey,
                                    "delete version",
                                    &v.key,
                                    e.to_string(),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let delete = Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()
                    .map_err(|e| {
                        StoreError::new(
                            StoreErrorKind::Other,
                            &s.desc,
                            "delete version",
                            e.to_string(),
                        )
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
                    .map_err(|e| s.failed(Failure::from_sdk(&e), "delete version", None))?;
                let mut failed: std::collections::HashMap<(String, String), String> =
                    Default::default();
                let mut again: Vec<VersionRef> = Vec::new();
                let mut transient_why = String::new();
                for err in out.errors() {
                    let code = err.code().unwrap_or("error");
                    if code == "NoSuchKey" || code == "NoSuchVersion" {
                        continue;
                    }
                    let Some(key) = err.key().and_then(|k| s.relative(k)) else {
                        continue;
                    };
                    let version_id = err.version_id().unwrap_or("null").to_string();
                    let why = format!("{code}: {}", err.message().unwrap_or_default());
                    if THROTTLING_CODES.contains(&code)
                        || SERVER_FAULT_CODES.contains(&code)
                        || TIMEOUT_CODES.contains(&code)
                    {
                        transient_why = why;
                        again.push(VersionRef { key, version_id });
                    } else {
                        failed.insert((key, version_id), why);
                    }
                }
                {
                    let mut o = outcome.lock().unwrap_or_else(|e| e.into_inner());
                    for v in &items {
                        if again.contains(v) {
                            continue;
                        }
                        match failed.remove(&(v.key.clone(), v.version_id.clone())) {
                            Some(why) => o.failed.push((version_label(v), why)),
                            None => o.deleted.push(v.key.clone()),
                        }
                    }
                }
                if again.is_empty() {
                    return Ok(());
                }
                let e = StoreError::new(
                    StoreErrorKind::ServerError,
                    &s.desc,
                    "delete version",
                    format!(
                        "server error at endpoint {}: {} versions not deleted ({transient_why})",
                        s.endpoint,
                        again.len()
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
        match res {
            Ok(()) => Ok(report),
            Err(e) if report.deleted.is_empty() && report.failed.is_empty() => Err(e),
            Err(e) => {
                let why = e.to_string();
                report
                    .failed
                    .extend(pending.iter().map(|v| (version_label(v), why.clone())));
                Ok(report)
            }
        }
    }
}

/// `key (version V)`, how a failed version delete is named.
fn version_label(v: &VersionRef) -> String {
    format!("{} (version {})", v.key, v.version_id)
}
