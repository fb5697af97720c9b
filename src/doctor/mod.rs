//! The bucket doctor: reads a cache's bucket and judges it, each finding with its fix.
//!
//! Checks (their ids are stable, for scripts): `endpoint`, `credentials`, `region`, `bucket`,
//! `addressing` (what narscope advises on errors, run as checks), `cache_info`, `versioning`,
//! `noncurrent_expiration`, `lifecycle`, `lifecycle_expiration`, `lifecycle_transition`,
//! `lifecycle_abort_multipart`, `multipart_uploads`, `object_lock`, `conditional_writes`,
//! `anonymous_read`, `secret_keys`. A file:// cache gets the checks that apply to it
//! (`cache_info`, `secret_keys`); the others are reported as not applicable.
//!
//! The doctor only reads, except for the conditional-write probe (it writes and deletes one
//! scratch object) and [`abort_uploads`], which the caller runs after asking.

pub mod judge;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;

use crate::cache::{CACHE_INFO_KEY, Cache};
use crate::storage::bucket::MultipartUpload;
use crate::storage::{
    self, CacheUrl, ListOptions, Store, StoreError, StoreErrorKind, Versioning, is_narinfo_key,
};
use crate::units::{age, human_size};
use judge::VersionTotals;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Checked and fine.
    Ok,
    /// Worth knowing; nothing to do (or not applicable).
    Info,
    /// Costs money or risks trouble; the cache works.
    Warning,
    /// The cache or narscope's operations on it are broken (exit code non-zero).
    Error,
}

impl Severity {
    /// The one-character symbol the text output and the dashboard show.
    pub fn symbol(self) -> &'static str {
        match self {
            Severity::Ok => "✓",
            Severity::Info => "i",
            Severity::Warning => "!",
            Severity::Error => "✗",
        }
    }

    /// The lower-case word (`ok`, `info`, `warning`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding of the doctor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The check that found it (stable snake_case id, e.g. `lifecycle_expiration`).
    pub check: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// One line, naming the object or the setting.
    pub summary: String,
    /// Why it matters (may be empty).
    pub details: String,
    /// What to do about it (for lifecycle problems: the S3 lifecycle JSON rule to add).
    pub fix: Option<String>,
}

impl Finding {
    /// A finding.
    pub fn new(
        check: &'static str,
        severity: Severity,
        summary: String,
        details: impl Into<String>,
        fix: Option<String>,
    ) -> Finding {
        Finding {
            check,
            severity,
            summary,
            details: details.into(),
            fix,
        }
    }

    fn not_applicable(check: &'static str, why: &str) -> Finding {
        Finding::new(
            check,
            Severity::Info,
            format!("not applicable: {why}"),
            "",
            None,
        )
    }

    /// A check that could not run: a warning naming the cause.
    fn failed(check: &'static str, what: &str, e: &StoreError) -> Finding {
        Finding::new(
            check,
            Severity::Warning,
            format!("could not check {what}: {e}"),
            "",
            e.advice.clone(),
        )
    }
}

/// What the doctor is told.
#[derive(Clone, Debug, Default)]
pub struct DoctorOptions {
    /// The operator's intent (`public = …` of the named cache in the config); `None`: unset.
    pub public: Option<bool>,
    /// Incomplete multipart uploads older than this are reported as to abort.
    pub abort_older_than: Option<Duration>,
    /// Requests in flight for the listing.
    pub concurrency: usize,
    /// Skip the conditional-write probe (it writes one scratch object).
    pub no_write_probe: bool,
}

/// What the doctor found.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The cache URL.
    pub cache: String,
    /// The findings, in the order the checks ran.
    pub findings: Vec<Finding>,
    /// Noncurrent versions and delete markers (versioned buckets).
    pub versions: Option<VersionTotals>,
    /// Incomplete multipart uploads, as listed.
    #[serde(skip)]
    pub uploads: Vec<MultipartUpload>,
    /// Those of `uploads` older than `--abort-older-than` (to abort after confirmation).
    #[serde(skip)]
    pub to_abort: Vec<MultipartUpload>,
}

impl Report {
    /// The worst severity among the findings (`Ok` when there are none).
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.worst() == Severity::Error
    }

    /// Number of findings of each severity: (ok, info, warning, error).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let n = |s: Severity| self.findings.iter().filter(|f| f.severity == s).count();
        (
            n(Severity::Ok),
            n(Severity::Info),
            n(Severity::Warning),
            n(Severity::Error),
        )
    }
}

/// Which access check a store error fails, and its wording.
fn access_check(e: &StoreError) -> (&'static str, &'static str) {
    match e.kind {
        StoreErrorKind::Credentials => ("credentials", "the credentials are refused"),
        StoreErrorKind::WrongRegion => ("region", "the bucket is in another region"),
        StoreErrorKind::NoSuchBucket => ("bucket", "the bucket does not exist"),
        StoreErrorKind::AccessDenied => ("credentials", "access is denied"),
        StoreErrorKind::Unreachable | StoreErrorKind::Timeout => {
            ("endpoint", "the endpoint cannot be reached")
        }
        _ => ("endpoint", "the endpoint answered with an error"),
    }
}

/// Run every check on `cache` (read-only but for the conditional-write probe).
pub async fn diagnose(cache: &Cache, opts: &DoctorOptions) -> Report {
    let store = cache.store().clone();
    let mut r = Report {
        cache: cache.url().to_string(),
        ..Report::default()
    };
    let s3 = match cache.url() {
        CacheUrl::S3(u) => Some(u.clone()),
        CacheUrl::File(..) | CacheUrl::Http(_) => None,
    };
    // Access: one small listing, then nix-cache-info.
    let probe = store
        .list_page_with(
            "",
            None,
            &ListOptions {
                top_level_only: true,
                max_keys: Some(1),
                ..ListOptions::default()
            },
        )
        .await;
    if let Err(e) = probe {
        let (check, what) = access_check(&e);
        r.findings.push(Finding::new(
            check,
            Severity::Error,
            format!("{what}: {e}"),
            "The other checks need a bucket narscope can list; they were not run.",
            e.advice.clone(),
        ));
        return r;
    }
    match &s3 {
        Some(u) => {
            let ep = u.endpoint.clone().unwrap_or_else(|| "AWS S3".to_string());
            r.findings.push(Finding::new(
                "endpoint",
                Severity::Ok,
                format!("{ep} answers and lists bucket `{}`", u.bucket),
                "",
                None,
            ));
            r.findings.push(Finding::new(
                "credentials",
                Severity::Ok,
                "the credentials are accepted".to_string(),
                "",
                None,
            ));
            r.findings.push(Finding::new(
                "region",
                Severity::Ok,
                format!(
                    "region {} is the bucket's",
                    u.region.as_deref().unwrap_or("(default)")
                ),
                "",
                None,
            ));
            r.findings.push(Finding::new(
                "addressing",
                Severity::Ok,
                if u.path_style() {
                    format!("path-style requests work (/{}/key)", u.bucket)
                } else {
                    format!("virtual-host requests work ({}.host/key)", u.bucket)
                },
                "",
                None,
            ));
        }
        None => r.findings.push(Finding::new(
            "endpoint",
            Severity::Ok,
            "the cache directory can be listed".to_string(),
            "",
            None,
        )),
    }
    match cache.cache_info().await {
        Ok(info) => r.findings.extend(judge::cache_info(info.as_ref())),
        Err(e) => r.findings.push(Finding::new(
            "cache_info",
            Severity::Error,
            format!("nix-cache-info cannot be read: {e}"),
            "",
            None,
        )),
    }
    // The listing: secret keys, and a narinfo for the anonymous read.
    let listed = list_all(&store, opts.concurrency.clamp(1, 32)).await;
    let mut sample_narinfo = None;
    match listed {
        Ok(objects) => {
            sample_narinfo = objects
                .iter()
                .map(|(k, _)| k)
                .find(|k| is_narinfo_key(k))
                .cloned();
            let leaked = crate::keyprobe::probe(&store, objects).await;
            if leaked.found.is_empty() {
                r.findings.push(Finding::new(
                    "secret_keys",
                    Severity::Ok,
                    format!(
                        "no secret key stored in the cache ({} small objects read)",
                        leaked.checked
                    ),
                    if leaked.not_checked > 0 {
                        format!("{} candidates were not read", leaked.not_checked)
                    } else {
                        String::new()
                    },
                    None,
                ));
            }
            for k in &leaked.found {
                r.findings.push(Finding::new(
                    "secret_keys",
                    Severity::Error,
                    format!(
                        "secret key `{}` is stored in the cache as {}",
                        k.key_name, k.object
                    ),
                    "Anyone who can read the cache can take it and sign store paths as its \
                     owner.",
                    Some(format!(
                        "delete {} from the cache, generate a new key pair (`narscope keygen`), \
                         re-sign with it and stop trusting `{}`",
                        k.object, k.key_name
                    )),
                ));
            }
        }
        Err(e) => r
            .findings
            .push(Finding::failed("secret_keys", "for secret keys", &e)),
    }
    let Some(u) = s3 else {
        for (check, what) in [
            ("versioning", "a directory has no versions"),
            ("lifecycle", "a directory has no lifecycle rules"),
            ("multipart_uploads", "a directory has no multipart uploads"),
            ("object_lock", "a directory has no object lock"),
            (
                "conditional_writes",
                "narscope writes a directory atomically",
            ),
            (
                "anonymous_read",
                "a directory is read through the file system",
            ),
        ] {
            r.findings.push(Finding::not_applicable(check, what));
        }
        return r;
    };
    let root = u.key_prefix();
    // Versioning, with totals of what it keeps.
    let versioning = match store.versioning().await {
        Ok(v) => v,
        Err(e) => {
            r.findings
                .push(Finding::failed("versioning", "versioning", &e));
            Versioning::Unversioned
        }
    };
    if versioning.keeps_versions() {
        match version_totals(store.as_ref()).await {
            Ok(t) => {
                r.findings.push(judge::versioning(versioning, &t));
                r.versions = Some(t);
            }
            Err(e) => r
                .findings
                .push(Finding::failed("versioning", "noncurrent versions", &e)),
        }
    } else {
        r.findings
            .push(judge::versioning(versioning, &VersionTotals::default()));
    }
    match store.lifecycle_rules().await {
        Ok(rules) => {
            let n = rules.as_ref().map(Vec::len).unwrap_or(0);
            r.findings.push(Finding::new(
                "lifecycle",
                Severity::Info,
                match &rules {
                    None => "the bucket has no lifecycle configuration".to_string(),
                    Some(_) => format!("the bucket has {n} lifecycle rules"),
                },
                "",
                None,
            ));
            r.findings.extend(judge::lifecycle(
                rules.as_deref(),
                &root,
                &u.bucket,
                versioning,
            ));
        }
        Err(e) if e.kind == StoreErrorKind::NotSupported => r.findings.push(
            Finding::not_applicable("lifecycle", "the server does not implement lifecycle rules"),
        ),
        Err(e) => r
            .findings
            .push(Finding::failed("lifecycle", "the lifecycle rules", &e)),
    }
    match store.incomplete_uploads().await {
        Ok(uploads) => {
            let now = SystemTime::now();
            r.findings
                .push(uploads_finding(&uploads, &u.to_string(), now));
            if let Some(d) = opts.abort_older_than {
                r.to_abort = uploads
                    .iter()
                    .filter(|m| {
                        m.initiated
                            .and_then(|t| now.duration_since(t).ok())
                            .is_none_or(|a| a >= d)
                    })
                    .cloned()
                    .collect();
            }
            r.uploads = uploads;
        }
        Err(e) if e.kind == StoreErrorKind::NotSupported => r.findings.push(
            Finding::not_applicable("multipart_uploads", "the server does not list them"),
        ),
        Err(e) => r.findings.push(Finding::failed(
            "multipart_uploads",
            "incomplete multipart uploads",
            &e,
        )),
    }
    match store.object_lock().await {
        Ok(l) => r.findings.push(judge::object_lock(&l)),
        Err(e) if e.kind == StoreErrorKind::NotSupported => r.findings.push(
            Finding::not_applicable("object_lock", "the server does not implement object lock"),
        ),
        Err(e) => r
            .findings
            .push(Finding::failed("object_lock", "object lock", &e)),
    }
    if opts.no_write_probe {
        r.findings.push(Finding::new(
            "conditional_writes",
            Severity::Info,
            "not probed".to_string(),
            "",
            None,
        ));
    } else {
        match store.probe_conditional_writes().await {
            Ok(c) => r.findings.push(judge::conditional(&c)),
            Err(e) => r.findings.push(Finding::failed(
                "conditional_writes",
                "conditional writes",
                &e,
            )),
        }
    }
    let mut anon_keys = vec![CACHE_INFO_KEY.to_string()];
    anon_keys.extend(sample_narinfo);
    for key in anon_keys {
        match store.anonymous_read(&key).await {
            Ok(a) => r.findings.push(judge::anonymous(&key, a, opts.public)),
            Err(e) => r
                .findings
                .push(Finding::failed("anonymous_read", "anonymous reads", &e)),
        }
    }
    r
}

/// The finding on incomplete multipart uploads.
fn uploads_finding(uploads: &[MultipartUpload], cache: &str, now: SystemTime) -> Finding {
    if uploads.is_empty() {
        return Finding::new(
            "multipart_uploads",
            Severity::Ok,
            "no incomplete multipart uploads".to_string(),
            "",
            None,
        );
    }
    let bytes: u64 = uploads.iter().map(|u| u.bytes).sum();
    let mut details: Vec<String> = uploads
        .iter()
        .take(20)
        .map(|u| {
            format!(
                "{} ({} in {} parts, started {} ago)",
                u.key,
                human_size(u.bytes),
                u.parts,
                age(now, u.initiated)
            )
        })
        .collect();
    if uploads.len() > 20 {
        details.push(format!("… and {} more", uploads.len() - 20));
    }
    Finding::new(
        "multipart_uploads",
        Severity::Warning,
        format!(
            "{} incomplete multipart uploads hold {}",
            uploads.len(),
            human_size(bytes)
        ),
        details.join("\n"),
        Some(format!(
            "abort the stale ones: `narscope doctor {cache} --abort-older-than 1d` (an upload \
             in progress is younger than that)"
        )),
    )
}

/// Every key and size of the cache.
async fn list_all(
    store: &Arc<dyn Store>,
    concurrency: usize,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut pages = std::pin::pin!(storage::list_root_parallel_with(
        store.clone(),
        concurrency,
        storage::RootKeys::All
    ));
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.extend(page?.objects.into_iter().map(|o| (o.key, o.size)));
    }
    Ok(out)
}

/// Noncurrent versions and delete markers under the cache root.
async fn version_totals(store: &dyn Store) -> Result<VersionTotals, StoreError> {
    let mut t = VersionTotals::default();
    let mut marker = None;
    loop {
        let page = store.list_versions_page("", marker).await?;
        for v in &page.versions {
            if v.delete_marker {
                t.delete_markers += 1;
            } else if !v.is_latest {
                t.noncurrent += 1;
                t.noncurrent_bytes += v.size;
            }
        }
        match page.next {
            Some(m) => marker = Some(m),
            None => return Ok(t),
        }
    }
}

/// Aborts `uploads`; returns (aborted, bytes freed, failures as "key: cause").
pub async fn abort_uploads(
    store: &dyn Store,
    uploads: &[MultipartUpload],
) -> (usize, u64, Vec<String>) {
    let mut done = 0;
    let mut bytes = 0;
    let mut failed = Vec::new();
    for u in uploads {
        match store.abort_upload(&u.key, &u.upload_id).await {
            Ok(()) => {
                done += 1;
                bytes += u.bytes;
            }
            Err(e) => failed.push(format!("{}: {e}", u.key)),
        }
    }
    (done, bytes, failed)
}
