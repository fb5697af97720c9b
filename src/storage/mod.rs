//! Storage backends for binary caches: S3-compatible buckets ([`s3::S3Store`]), local
//! directories ([`file::FileStore`]) and read-only HTTP(S) caches ([`http::HttpStore`]),
//! behind one object-store trait, [`Store`].
//!
//! Keys are always relative to the cache root: for `s3://bkt/prefix` the S3 prefix is added on
//! the way out and stripped on the way back; for `file:///srv/cache` a key is a relative path.

pub mod bucket;
pub mod error;
pub mod file;
pub mod http;
pub mod params;
pub mod retry;
pub mod s3;
pub mod throttle;
pub mod url;
pub mod version_stats;
pub mod versions;

pub use error::{StoreError, StoreErrorKind, is_transport_fault, store_error_in};
pub use params::StoreParams;
pub use s3::lean::LeanStats;
pub use throttle::{Throttle, ThrottleStats};
pub use url::{AddressingStyle, CacheUrl, HttpUrl, S3Url, UrlError, UrlProblem};
pub use version_stats::{
    ByKind, CountBytes, KeyKind, VersionStats, list_versions_parallel, version_stats,
};
pub use versions::{ObjectVersion, VersionMarker, VersionPage, VersionRef, Versioning};

use futures::stream::{self, BoxStream, Stream, StreamExt};
use std::sync::Arc;
use std::time::SystemTime;

/// Metadata of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the cache root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, when the backend reports one.
    pub last_modified: Option<SystemTime>,
    /// Entity tag (S3: as sent by the server, quoted; file://: see [`file`](mod@file)).
    pub etag: Option<String>,
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// Objects, keys relative to the cache root (the S3 prefix stripped), in key order.
    pub objects: Vec<ObjectMeta>,
    /// Continuation token for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A whole object read into memory.
#[derive(Clone, Debug)]
pub struct GetResult {
    /// Its metadata (size, ETag, modification time).
    pub meta: ObjectMeta,
    /// Its bytes, exactly as stored (never decoded).
    pub bytes: bytes::Bytes,
    /// `Content-Encoding`, from the header or from `x-amz-meta-content-encoding`.
    pub content_encoding: Option<String>,
}

/// A streaming object body.
pub type ByteReader = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// Condition attached to a write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PutCondition {
    /// Write whatever is there (no condition).
    #[default]
    None,
    /// Create only: fail with [`StoreErrorKind::PreconditionFailed`] if the key exists.
    IfNoneMatch,
    /// Compare-and-swap: fail with [`StoreErrorKind::PreconditionFailed`] unless the current
    /// object has this etag.
    IfMatch(String),
}

impl PutCondition {
    /// The HTTP headers that carry the condition: (`If-Match`, `If-None-Match`).
    pub(crate) fn headers(&self) -> (Option<String>, Option<String>) {
        match self {
            PutCondition::None => (None, None),
            PutCondition::IfNoneMatch => (None, Some("*".to_string())),
            PutCondition::IfMatch(etag) => (Some(etag.clone()), None),
        }
    }
}

/// Options of a write.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    /// `Content-Type` (ignored by the file:// backend).
    pub content_type: Option<String>,
    /// The condition the write depends on (compare-and-swap), if any.
    pub condition: PutCondition,
    /// `Content-Encoding` stored with the object (its bytes are already encoded so); S3 only,
    /// a file:// cache has nowhere to keep it.
    pub content_encoding: Option<String>,
    /// S3 storage class (`x-amz-storage-class`) of the object; `None`: the bucket's default.
    pub storage_class: Option<String>,
}

/// Result of [`Store::delete_many`].
#[derive(Clone, Debug, Default)]
pub struct DeleteReport {
    /// Keys that are gone (including keys that did not exist).
    pub deleted: Vec<String>,
    /// Keys that could not be deleted, with the reason.
    pub failed: Vec<(String, String)>,
    /// On a versioned bucket: the delete markers the deletes wrote, as (key, the marker's
    /// version id). Empty where deletes are final.
    pub markers: Vec<VersionRef>,
}

/// What [`Store::probe_conditional_writes`] found out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConditionalSupport {
    /// `If-None-Match: *` on PUT is honoured.
    pub if_none_match: bool,
    /// `If-Match: <etag>` on PUT is honoured.
    pub if_match: bool,
}

/// Extra listing options for [`Store::list_page_with`].
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Only keys without a `/` after the prefix (S3 `Delimiter=/`; no directory descent).
    pub top_level_only: bool,
    /// Start after this key (relative to the cache root); ignored when a continuation token is given.
    pub start_after: Option<String>,
    /// Page size, at most 1000 (the default).
    pub max_keys: Option<u32>,
}

/// Maximum page size of a listing.
pub const PAGE_SIZE: usize = 1000;

/// A blocking stream of an object's bytes.
pub type BlockingReader = Box<dyn std::io::Read + Send>;

fn no_blocking_reads(desc: String, key: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotSupported,
        desc,
        "GET",
        format!("blocking reads are not supported (key {key})"),
    )
}

/// The object at `key` as a blocking reader for a worker thread, or `Ok(None)` if it does
/// not exist: read directly where the store allows it, else bridged from
/// [`Store::get_reader`] (the bridge needs the runtime this is called on).
pub async fn blocking_reader(
    store: &dyn Store,
    key: &str,
) -> Result<Option<BlockingReader>, StoreError> {
    if store.supports_blocking_get() {
        return store.get_reader_blocking(key);
    }
    Ok(store
        .get_reader(key)
        .await?
        .map(|(_, r)| Box::new(tokio_util::io::SyncIoBridge::new(r)) as BlockingReader))
}

/// An object store holding one binary cache.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Human description naming the location, e.g. `s3://bkt/prefix (endpoint http://127.0.0.1:3900)`
    /// or `file:///srv/cache`.
    fn describe(&self) -> String;

    /// Whether [`Store::get_blocking`] works: local backends, where a small read is cheaper
    /// than a hop through the async runtime.
    fn supports_blocking_get(&self) -> bool {
        false
    }

    /// `get` without the async runtime, callable from any thread (CPU-bound pipelines read
    /// small objects where they process them). Only where [`Store::supports_blocking_get`].
    fn get_blocking(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        Err(no_blocking_reads(self.describe(), key))
    }

    /// [`Store::get_reader`] as a plain blocking reader, for the CPU-bound pipelines that
    /// stream a NAR on a worker thread (pull, deep verify): no hop through the async runtime
    /// per read. Only where [`Store::supports_blocking_get`]; see [`blocking_reader`].
    fn get_reader_blocking(&self, key: &str) -> Result<Option<BlockingReader>, StoreError> {
        Err(no_blocking_reads(self.describe(), key))
    }

    /// One page (≤ 1000 keys) of the recursive listing of `prefix` (relative to the cache root,
    /// may be `""`), in key order.
    async fn list_page(&self, prefix: &str, token: Option<String>) -> Result<ListPage, StoreError>;

    /// Like [`Store::list_page`] with [`ListOptions`]. The default implementation filters
    /// `list_page` (correct, but it walks everything); both backends implement it natively.
    async fn list_page_with(
        &self,
        prefix: &str,
        token: Option<String>,
        opts: &ListOptions,
    ) -> Result<ListPage, StoreError> {
        let start_after = if token.is_none() {
            opts.start_after.clone()
        } else {
            None
        };
        let mut page = self.list_page(prefix, token).await?;
        page.objects.retain(|o| {
            let rest = o.key.get(prefix.len()..).unwrap_or_default();
            !(opts.top_level_only && rest.contains('/'))
                && start_after.as_deref().is_none_or(|sa| o.key.as_str() > sa)
        });
        Ok(page)
    }

    /// The whole object, or `Ok(None)` if it does not exist. Like Nix, S3 answers 403 for a
    /// GET count as "missing" (S3 says 403 for missing keys without `s3:ListBucket`), except
    /// when the server says the credentials themselves are wrong.
    async fn get(&self, key: &str) -> Result<Option<GetResult>, StoreError>;

    /// The object as a stream (for NARs), or `Ok(None)` if it does not exist.
    async fn get_reader(&self, key: &str) -> Result<Option<(ObjectMeta, ByteReader)>, StoreError>;

    /// The object's metadata, or `Ok(None)` if it does not exist (HTTP 403 counts as missing,
    /// as in Nix).
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;

    /// Writes the object. A failed condition gives [`StoreErrorKind::PreconditionFailed`].
    /// A backend that retries (S3) may repeat a conditional write whose answer was lost; the
    /// repeat then fails its condition against what the first attempt wrote, and callers see
    /// `PreconditionFailed`, as for any concurrent writer (the message says so).
    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError>;

    /// Writes the object from a local file (S3: multipart above the threshold; file://:
    /// copy to a temp file and rename).
    async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError>;

    /// [`Store::put_file`] for a temp file of the caller's that may be moved into the store
    /// (file://: renamed when on the same file system) instead of copied. The caller removes
    /// `path` afterwards if it is still there.
    async fn put_owned_file(
        &self,
        key: &str,
        path: &std::path::Path,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        self.put_file(key, path, opts).await
    }

    /// The directory of a local store (where temp files can be renamed into place).
    fn local_root(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// The store's request limiter ([`throttle`](mod@throttle): adaptive concurrency and rate
    /// against a server that throttles, the `--max-rps` ceiling): its stats
    /// ([`Throttle::stats`]) and the ceiling ([`Throttle::set_max_rps`]). `None` for a store
    /// that sends no requests (file://).
    fn throttle(&self) -> Option<&Throttle> {
        None
    }

    /// Deletes keys (S3: DeleteObjects in batches of 1000). Missing keys count as deleted.
    async fn delete_many(&self, keys: &[String]) -> Result<DeleteReport, StoreError>;

    /// Creates the bucket or directory; `Ok(true)` if it was created, `Ok(false)` if it existed.
    async fn ensure_container(&self) -> Result<bool, StoreError>;

    /// Finds out whether conditional writes work, by writing and deleting a scratch key under
    /// `.narscope-probe/`.
    async fn probe_conditional_writes(&self) -> Result<ConditionalSupport, StoreError>;

    /// Whether the bucket keeps versions (S3 GetBucketVersioning). A file:// cache is
    /// [`Versioning::Unversioned`].
    async fn versioning(&self) -> Result<Versioning, StoreError> {
        Ok(Versioning::Unversioned)
    }

    /// One page (≤ 1000 entries) of the version listing under `prefix` (relative to the cache
    /// root), delete markers included (S3 ListObjectVersions). Unsupported where there are no
    /// versions (file://).
    async fn list_versions_page(
        &self,
        prefix: &str,
        marker: Option<VersionMarker>,
    ) -> Result<VersionPage, StoreError> {
        let _ = marker;
        Err(not_supported(self.describe(), "list versions", prefix))
    }

    /// Deletes exact versions (S3 DeleteObjects with `VersionId`, in batches of 1000): the only
    /// delete that frees bytes on a versioned bucket. Deleting a delete marker that is the
    /// current version makes the version below it current again. A version that does not exist
    /// counts as deleted; the report's keys are `key` strings, failures name the version.
    async fn delete_versions(&self, versions: &[VersionRef]) -> Result<DeleteReport, StoreError> {
        let key = versions.first().map(|v| v.key.clone()).unwrap_or_default();
        Err(not_supported(self.describe(), "delete versions", &key))
    }

    /// The bucket's lifecycle rules; `Ok(None)` when it has no lifecycle configuration.
    async fn lifecycle_rules(&self) -> Result<Option<Vec<bucket::LifecycleRule>>, StoreError> {
        Err(not_supported(self.describe(), "get lifecycle", ""))
    }

    /// The bucket's object lock configuration (disabled when it has none).
    async fn object_lock(&self) -> Result<bucket::ObjectLock, StoreError> {
        Err(not_supported(self.describe(), "get object lock", ""))
    }

    /// Multipart uploads under the cache root that were started and never completed nor
    /// aborted, with the bytes of their parts.
    async fn incomplete_uploads(&self) -> Result<Vec<bucket::MultipartUpload>, StoreError> {
        Err(not_supported(self.describe(), "list multipart uploads", ""))
    }

    /// Aborts one incomplete multipart upload (its parts' bytes are freed).
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let _ = upload_id;
        Err(not_supported(
            self.describe(),
            "abort multipart upload",
            key,
        ))
    }

    /// What an unauthenticated GET of `key` answers (is the cache publicly readable?).
    async fn anonymous_read(&self, key: &str) -> Result<bucket::AnonymousRead, StoreError> {
        Err(not_supported(self.describe(), "anonymous GET", key))
    }
}

fn not_supported(desc: String, op: &'static str, key: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotSupported,
        desc,
        op,
        "this kind of store has no such thing",
    )
    .with_key(key)
}

/// Opens the store a URL names (no network traffic yet; S3 credentials are resolved lazily).
/// An S3 store takes its multipart bounds from the URL's store parameters
/// ([`s3::S3Options::from_params`]); the parameters' warnings (e.g. an archive storage class)
/// are logged, unless the caller has shown them already ([`StoreParams::take_warnings`]).
pub async fn open(url: &CacheUrl) -> Result<Arc<dyn Store>, StoreError> {
    for w in url.params().take_warnings() {
        tracing::warn!("{w}");
    }
    match url {
        CacheUrl::S3(u) => Ok(Arc::new(
            s3::S3Store::connect(u.clone(), s3::S3Options::from_params(&u.params)).await?,
        )),
        CacheUrl::File(p, _) => Ok(Arc::new(file::FileStore::new(p.clone()))),
        CacheUrl::Http(u) => Ok(Arc::new(http::HttpStore::open(
            u.clone(),
            http::HttpOptions::default(),
        )?)),
    }
}

/// The 32 characters of Nix's base-32 alphabet, in order.
pub const NIX32_CHARS: &str = "0123456789abcdfghijklmnpqrsvwxyz";

/// True if `key` has the shape of a narinfo key: 32 nix32 characters + `.narinfo`, at the root.
pub fn is_narinfo_key(key: &str) -> bool {
    key.len() == 40
        && key
            .strip_suffix(".narinfo")
            .is_some_and(|h| h.chars().all(|c| NIX32_CHARS.contains(c)))
}

/// True if `key` looks like a temp file left by an interrupted file:// writer
/// (`<key>.tmp.<pid>.<counter>`, the naming Nix and narscope use).
pub fn is_temp_litter(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let mut parts = name.rsplitn(3, '.');
    let counter = parts.next().unwrap_or_default();
    let pid = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(counter) && digits(pid) && rest.ends_with(".tmp") && rest.len() > 4
}

/// Which keys [`list_root_parallel_with`] returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RootKeys {
    /// Keys at the cache root only (no `/`): narinfos, `.ls`, `nix-cache-info`, temp litter.
    /// S3 scans use `Delimiter=/`, so `nar/`, `log/`, … are never walked.
    #[default]
    TopLevelOnly,
    /// Every key of the cache, including `nar/…`, `log/…`, `realisations/…`.
    All,
}

/// Page-by-page listing of one prefix (recursive) as a stream. Empty pages are skipped; the
/// stream ends after the first error.
pub fn list_prefix(
    store: Arc<dyn Store>,
    prefix: String,
) -> impl Stream<Item = Result<ListPage, StoreError>> + Send {
    scan(store, prefix, ListOptions::default(), None)
}

/// [`list_root_parallel_with`] with [`RootKeys::TopLevelOnly`]: every key at the cache root,
/// exactly once, listed by up to `concurrency` simultaneous scans.
pub fn list_root_parallel(
    store: Arc<dyn Store>,
    concurrency: usize,
) -> impl Stream<Item = Result<ListPage, StoreError>> + Send {
    list_root_parallel_with(store, concurrency, RootKeys::TopLevelOnly)
}

/// Lists the cache as 32 prefix scans, one per nix32 first character (where every narinfo
/// lives), plus 7 cheap scans that cover every other first character (`e`, `o`, `t`, `u`, and
/// the key ranges below `0`, between `9` and `a`, and above `z`), so that every key of the
/// selected kind is returned exactly once. Up to `concurrency` scans run at once; pages are
/// yielded as they arrive, in no particular order (each page is in key order; its `next` token
/// belongs to its scan and is only informative). The stream ends after the first error.
pub fn list_root_parallel_with(
    store: Arc<dyn Store>,
    concurrency: usize,
    keys: RootKeys,
) -> impl Stream<Item = Result<ListPage, StoreError>> + Send {
    list_parallel_under(store, "", concurrency, keys == RootKeys::TopLevelOnly)
}

/// Every key under `base` (`""` or a directory such as `nar/`), exactly once, listed as one
/// scan per nix32 character after `base` plus range scans for everything else, as
/// [`list_root_parallel_with`] does at the root. NAR keys (`nar/<nix32 FileHash>.nar.xz`) spread
/// evenly over these scans. With `top_only`, keys below a further `/` are skipped.
pub fn list_parallel_under(
    store: Arc<dyn Store>,
    base: &str,
    concurrency: usize,
    top_only: bool,
) -> impl Stream<Item = Result<ListPage, StoreError>> + Send {
    let mut scans: Vec<BoxStream<'static, Result<ListPage, StoreError>>> = Vec::new();
    for c in NIX32_CHARS.chars().chain("eotu".chars()) {
        let opts = ListOptions {
            top_level_only: top_only,
            ..ListOptions::default()
        };
        scans.push(scan(store.clone(), format!("{base}{c}"), opts, None).boxed());
    }
    // Ranges of first characters not covered by the prefix scans above; start_after is the
    // greatest string starting with the previous scanned character (keys are ≤ 1024 bytes and
    // no real key continues with U+10FFFF; the range filter keeps the result exact anyway).
    let ranges: [(Option<&str>, Option<&str>); 3] = [
        (None, Some("0")),
        (Some("9\u{10FFFF}"), Some("a")),
        (Some("z\u{10FFFF}"), None),
    ];
    for (after, upper) in ranges {
        let opts = ListOptions {
            top_level_only: top_only,
            start_after: match after {
                Some(a) => Some(format!("{base}{a}")),
                // Everything under `base` sorts after `base` itself.
                None if base.is_empty() => None,
                None => Some(base.to_string()),
            },
            max_keys: Some(100),
        };
        let range = Range {
            base: base.to_string(),
            upper: upper.map(|u| format!("{base}{u}")),
        };
        scans.push(scan(store.clone(), base.to_string(), opts, Some(range)).boxed());
    }
    stream::iter(scans).flatten_unordered(Some(concurrency.max(1)))
}

/// Upper bound of a range scan; keys whose first character is covered by a prefix scan are
/// dropped from it.
#[derive(Clone)]
struct Range {
    /// The directory scanned (`""` or `nar/`).
    base: String,
    upper: Option<String>,
}

fn covered_by_prefix_scan(base: &str, key: &str) -> bool {
    key.strip_prefix(base)
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| NIX32_CHARS.contains(c) || "eotu".contains(c))
}

struct ScanState {
    store: Arc<dyn Store>,
    prefix: String,
    opts: ListOptions,
    range: Option<Range>,
    token: Option<String>,
    done: bool,
}

fn scan(
    store: Arc<dyn Store>,
    prefix: String,
    opts: ListOptions,
    range: Option<Range>,
) -> impl Stream<Item = Result<ListPage, StoreError>> + Send {
    let st = ScanState {
        store,
        prefix,
        opts,
        range,
        token: None,
        done: false,
    };
    stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let page = st
                .store
                .list_page_with(&st.prefix, st.token.take(), &st.opts)
                .await;
            match page {
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Ok(mut page) => {
                    st.token = page.next.clone();
                    if st.token.is_none() {
                        st.done = true;
                    }
                    if let Some(r) = &st.range {
                        if let Some(upper) = &r.upper
                            && page
                                .objects
                                .iter()
                                .any(|o| o.key.as_str() >= upper.as_str())
                        {
                            st.done = true;
                            page.objects.retain(|o| o.key.as_str() < upper.as_str());
                        }
                        page.objects
                            .retain(|o| !covered_by_prefix_scan(&r.base, &o.key));
                    }
                    if page.objects.is_empty() {
                        continue;
                    }
                    return Some((Ok(page), st));
                }
            }
        }
    })
}

/// Where the conditional-write probe writes its scratch objects: `.narscope-probe/<unix secs>-<random>`.
pub const PROBE_PREFIX: &str = ".narscope-probe/";

/// A probe object this old was left by a probe that was killed: probes take seconds, so the
/// next probe (and `gc`) removes it.
pub const PROBE_LITTER_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// When the probe object `meta` was written: the Unix time its name starts with, or (for a
/// name without one, as older narscope versions wrote) its modification time.
pub fn probe_written_at(meta: &ObjectMeta) -> Option<SystemTime> {
    let name = meta.key.strip_prefix(PROBE_PREFIX).unwrap_or(&meta.key);
    name.split_once('-')
        .and_then(|(secs, _)| secs.parse::<u64>().ok())
        .map(|s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s))
        .or(meta.last_modified)
}

/// Whether the probe object `meta` is litter at `now`: written [`PROBE_LITTER_AGE`] or more
/// ago. One of unknown age is not.
pub fn is_probe_litter(meta: &ObjectMeta, now: SystemTime) -> bool {
    probe_written_at(meta)
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|age| age >= PROBE_LITTER_AGE)
}

/// Every object under [`PROBE_PREFIX`].
pub async fn probe_objects(store: &dyn Store) -> Result<Vec<ObjectMeta>, StoreError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = store.list_page(PROBE_PREFIX, token).await?;
        out.extend(page.objects);
        match page.next {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// Shared implementation of [`Store::probe_conditional_writes`]: write a scratch key with
/// If-None-Match twice, then If-Match with a wrong and the right etag; delete it.
pub(crate) async fn probe_conditional(store: &dyn Store) -> Result<ConditionalSupport, StoreError> {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let key = format!("{PROBE_PREFIX}{secs}-{}", random_hex());
    let res = probe_inner(store, &key).await;
    let cleanup = store.delete_many(std::slice::from_ref(&key)).await;
    remove_probe_litter(store, now).await;
    let support = res?;
    cleanup?;
    Ok(support)
}

/// Delete what killed probes left (one listing page of [`PROBE_PREFIX`]); best effort: a
/// failure is only logged, the probe's answer stands.
async fn remove_probe_litter(store: &dyn Store, now: SystemTime) {
    let old: Vec<String> = match store.list_page(PROBE_PREFIX, None).await {
        Ok(page) => page
            .objects
            .into_iter()
            .filter(|o| is_probe_litter(o, now))
            .map(|o| o.key)
            .collect(),
        Err(e) => {
            tracing::debug!("listing {PROBE_PREFIX} for old probe objects failed: {e}");
            return;
        }
    };
    if old.is_empty() {
        return;
    }
    match store.delete_many(&old).await {
        Ok(r) => {
            for (k, why) in r.failed {
                tracing::debug!("cannot delete old probe object {k}: {why}");
            }
        }
        Err(e) => tracing::debug!("deleting old probe objects failed: {e}"),
    }
}

fn unsupported(e: &StoreError) -> bool {
    matches!(e.kind, StoreErrorKind::NotSupported | StoreErrorKind::Other)
}

async fn probe_inner(store: &dyn Store, key: &str) -> Result<ConditionalSupport, StoreError> {
    let inm = PutOptions {
        content_type: Some("text/plain".into()),
        condition: PutCondition::IfNoneMatch,
        ..PutOptions::default()
    };
    let plain = PutOptions {
        content_type: Some("text/plain".into()),
        condition: PutCondition::None,
        ..PutOptions::default()
    };
    let if_none_match = match store.put(key, "probe 1\n".into(), &inm).await {
        Ok(_) => match store.put(key, "probe 2\n".into(), &inm).await {
            Ok(_) => false,
            Err(e) if e.is_precondition_failed() => true,
            Err(e) if unsupported(&e) => false,
            Err(e) => return Err(e),
        },
        Err(e) if unsupported(&e) => {
            store.put(key, "probe 1\n".into(), &plain).await?;
            false
        }
        Err(e) => return Err(e),
    };
    let wrong = PutOptions {
        content_type: Some("text/plain".into()),
        condition: PutCondition::IfMatch("\"narscope-probe-mismatch\"".into()),
        ..PutOptions::default()
    };
    let if_match = match store.put(key, "probe 3\n".into(), &wrong).await {
        Ok(_) => false,
        Err(e) if unsupported(&e) => false,
        Err(e) if e.is_precondition_failed() => {
            // a mismatch is refused; the right etag must be accepted
            let etag = store.head(key).await?.and_then(|m| m.etag);
            match etag {
                Some(etag) => {
                    let right = PutOptions {
                        content_type: Some("text/plain".into()),
                        condition: PutCondition::IfMatch(etag),
                        ..PutOptions::default()
                    };
                    match store.put(key, "probe 4\n".into(), &right).await {
                        Ok(_) => true,
                        Err(e) if e.is_precondition_failed() || unsupported(&e) => false,
                        Err(e) => return Err(e),
                    }
                }
                None => false,
            }
        }
        Err(e) => return Err(e),
    };
    Ok(ConditionalSupport {
        if_none_match,
        if_match,
    })
}

/// 16 random hex digits (time-based if the OS generator fails).
pub(crate) fn random_hex() -> String {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_err() {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        buf = (t as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shapes() {
        assert!(is_narinfo_key("0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r.narinfo"));
        assert!(!is_narinfo_key("0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5e.narinfo"));
        assert!(!is_narinfo_key(
            "0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r.narinfo.tmp.12.3"
        ));
        assert!(!is_narinfo_key("nar/0a1b2c3d4f5g6h7i8j9k0l1m.narinfo"));
        assert!(is_temp_litter("0a1b.narinfo.tmp.1234.0"));
        assert!(is_temp_litter("nar/xyz.nar.xz.tmp.77.12"));
        assert!(!is_temp_litter("nar/xyz.nar.xz"));
        assert!(!is_temp_litter(".tmp.1.2"));
        assert!(!is_temp_litter("a.tmp.x.2"));
        assert_eq!(NIX32_CHARS.len(), 32);
    }
}
