//! Filling and refreshing an [`Index`] from a cache.
//!
//! A scan lists the cache root as parallel prefix scans; each listed narinfo becomes a row at
//! once (pending), and only narinfos that are new or whose size, mtime or ETag changed are
//! fetched (64 in flight), parsed and judged in batches on the blocking pool. When the trusted
//! keys changed since the index was made, unchanged rows are judged again from their stored
//! text, without a request. Then `nar/` is listed to find dangling narinfos and orphan NARs.
//! The index is updated batch by batch under its write lock, and `notify` is called after each
//! batch, so a dashboard shows rows while the scan runs.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

use super::file::{self, Blob, DirLock};
use super::{
    Index, NarInfoSummary, NarObject, OtherObject, ReadError, RowData, RowId, RowStatus, TextRef,
};
use super::{etag_hash, keys_id, unix_secs};
use crate::audit::{PathReport, Status};
use crate::cache::{CACHE_INFO_KEY, Cache};
use crate::compression;
use crate::nix::narinfo::NarInfoError;
use crate::nix::store_path::hash_part_from_narinfo_key;
use crate::nix::{NarInfo, TrustedKeys, check_paths};
use crate::storage::{self, ObjectMeta, StoreError};

/// What a scan does.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// narinfo requests in flight.
    pub concurrency: usize,
    /// Also list `nar/` (finds dangling narinfos and orphan NARs).
    pub list_nars: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            concurrency: crate::cache::DEFAULT_CONCURRENCY,
            list_nars: true,
        }
    }
}

/// Where a scan is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// No scan has started yet.
    Idle = 0,
    /// Listing narinfos and fetching the changed ones.
    Narinfos = 1,
    /// Listing `nar/` to find dangling narinfos and orphan NARs.
    Nars = 2,
    /// The scan has finished.
    Done = 3,
}

/// Live counters of a scan.
#[derive(Debug, Default)]
pub struct ScanProgress {
    /// narinfo keys listed.
    pub listed: AtomicU64,
    /// narinfos to fetch (new or changed).
    pub to_fetch: AtomicU64,
    /// narinfos fetched and judged.
    pub fetched: AtomicU64,
    /// Rows judged again from their stored text.
    pub rejudged: AtomicU64,
    /// NAR objects listed.
    pub nars: AtomicU64,
    phase: AtomicU8,
}

impl ScanProgress {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Narinfos,
            2 => Phase::Nars,
            3 => Phase::Done,
            _ => Phase::Idle,
        }
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }
}

/// What a scan did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanSummary {
    /// narinfo keys listed.
    pub listed: u64,
    /// narinfos fetched (new or changed).
    pub fetched: u64,
    /// Rows judged again from stored text (trusted keys changed).
    pub rejudged: u64,
    /// Rows whose narinfo disappeared.
    pub removed: u64,
    /// NAR objects listed.
    pub nars: u64,
    /// Wall-clock seconds the scan took.
    pub seconds: f64,
}

/// Why a scan stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Listing failed (the index keeps what it had).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scan was cancelled before it finished; the index keeps what it read.
    #[error("scan cancelled")]
    Cancelled,
    /// The closure walk of the dashboard opened on roots (`--root`) could not be made.
    #[error("closure walk: {0}")]
    Closure(String),
}

/// An index opened for a session: loaded from its directory when this process could take it,
/// else empty and not persisted.
pub struct Opened {
    /// The index, shared with the scan that fills it.
    pub index: Arc<RwLock<Index>>,
    /// The directory lock (saving is possible only with it).
    pub lock: Option<DirLock>,
    /// Whether rows were loaded from disk.
    pub loaded: bool,
    /// Something the user should know (index unreadable, directory in use…).
    pub warning: Option<String>,
}

impl Opened {
    /// Save the index if this session owns its directory.
    pub fn save(&self) -> std::io::Result<bool> {
        let Some(lock) = &self.lock else {
            return Ok(false);
        };
        write(&self.index).compact();
        let idx = self.index.read().unwrap_or_else(|p| p.into_inner());
        file::save(&idx, &lock.dir)?;
        Ok(true)
    }
}

/// Open the local index of `url` (see [`file`](mod@file)), ready for [`scan`]. `persist: false` keeps
/// everything in memory and a temporary blob.
pub fn open_index(url: &str, persist: bool) -> Opened {
    if !persist {
        return fresh_index(url, None);
    }
    match file::cache_base() {
        Some(base) => open_index_in(&base, url),
        None => fresh_index(
            url,
            Some("no cache directory: the index is not kept".into()),
        ),
    }
}

/// [`open_index`] with narscope's cache directory given (`base/index/<id>`), instead of
/// `$NARSCOPE_CACHE_DIR` or the platform's: for callers that keep several apart in one process.
pub fn open_index_in(base: &std::path::Path, url: &str) -> Opened {
    let fresh = |warning: Option<String>| fresh_index(url, warning);
    let dir = file::index_dir_in(base, url);
    let lock = match file::lock_dir(&dir) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return fresh(Some(format!(
                "{} is in use by another narscope: this session keeps its index in memory",
                dir.display()
            )));
        }
        Err(e) => {
            return fresh(Some(format!(
                "cannot use the index directory {}: {e}",
                dir.display()
            )));
        }
    };
    let (mut idx, loaded, warning) = match file::load(&dir, url) {
        Ok(Some(idx)) => (idx, true, None),
        Ok(None) => (Index::new(url, [0; 32]), false, None),
        Err(e) => (
            Index::new(url, [0; 32]),
            false,
            Some(format!("{}: {e}; scanning afresh", dir.display())),
        ),
    };
    if idx.blob().is_none() {
        match Blob::open(&file::new_blob_path(&dir)) {
            Ok(b) => idx.set_blob(Arc::new(b)),
            Err(e) => {
                return fresh(Some(format!(
                    "cannot create a blob in {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    Opened {
        index: Arc::new(RwLock::new(idx)),
        lock: Some(lock),
        loaded,
        warning,
    }
}

/// An empty index in memory (with a temporary blob file), and why it is not the kept one.
fn fresh_index(url: &str, warning: Option<String>) -> Opened {
    let mut idx = Index::new(url, [0; 32]);
    let warning = match Blob::temporary() {
        Ok(b) => {
            idx.set_blob(Arc::new(b));
            warning
        }
        Err(e) => Some(format!(
            "cannot create a temporary file for narinfo texts: {e}"
        )),
    };
    Opened {
        index: Arc::new(RwLock::new(idx)),
        lock: None,
        loaded: false,
        warning,
    }
}

/// One piece of work for the judge stage.
enum Work {
    /// Fetch (or, for local stores, read) this narinfo.
    Fetch(ObjectMeta),
    /// Judge again from the stored text.
    Rejudge(ObjectMeta, TextRef),
}

/// Why a listed narinfo could not be read or parsed in a scan (it becomes the row's
/// [`ReadError`]).
#[derive(Debug, thiserror::Error)]
enum TextError {
    /// The GET failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its `Content-Encoding` (or sniffed compression) does not decode.
    #[error(transparent)]
    Decode(#[from] compression::CompressionError),
    /// The text stored in the blob file could not be read back.
    #[error("stored text of {key} is unreadable: {cause}")]
    Stored {
        /// The narinfo's key.
        key: String,
        /// The read error.
        cause: std::io::Error,
    },
    /// Listed, but gone when it was fetched (carries the origin).
    #[error("{0}: no such narinfo (deleted meanwhile)")]
    Gone(String),
    /// The text does not parse.
    #[error(transparent)]
    Parse(#[from] NarInfoError),
}

/// A narinfo's bytes, once obtained.
enum Got {
    Bytes(ObjectMeta, Result<Option<storage::GetResult>, StoreError>),
    Unread(ObjectMeta),
    Stored(ObjectMeta, TextRef),
}

fn read(index: &RwLock<Index>) -> std::sync::RwLockReadGuard<'_, Index> {
    index.read().unwrap_or_else(|p| p.into_inner())
}

fn write(index: &RwLock<Index>) -> std::sync::RwLockWriteGuard<'_, Index> {
    index.write().unwrap_or_else(|p| p.into_inner())
}

/// Scan `cache` into `index` (see the module docs). Verdicts follow `keys`.
pub async fn scan(
    cache: Arc<Cache>,
    index: Arc<RwLock<Index>>,
    keys: Arc<TrustedKeys>,
    opts: ScanOptions,
    progress: Arc<ScanProgress>,
    notify: Arc<dyn Fn() + Send + Sync>,
    cancel: CancellationToken,
) -> Result<ScanSummary, ScanError> {
    let work = scan_inner(cache, index, keys, opts, progress.clone(), notify.clone());
    let res = tokio::select! {
        r = work => r,
        _ = cancel.cancelled() => Err(ScanError::Cancelled),
    };
    progress.set_phase(Phase::Done);
    notify();
    res
}

async fn scan_inner(
    cache: Arc<Cache>,
    index: Arc<RwLock<Index>>,
    keys: Arc<TrustedKeys>,
    opts: ScanOptions,
    progress: Arc<ScanProgress>,
    notify: Arc<dyn Fn() + Send + Sync>,
) -> Result<ScanSummary, ScanError> {
    let started = Instant::now();
    progress.set_phase(Phase::Narinfos);
    let kid = keys_id(&keys);
    let (rejudge_all, blob) = {
        let mut idx = write(&index);
        let rejudge = idx.keys_id != kid;
        idx.keys_id = kid;
        if idx.blob().is_none() {
            let b = Blob::temporary().map_err(|e| {
                StoreError::new(
                    storage::StoreErrorKind::Io,
                    "local index".to_string(),
                    "write",
                    format!("cannot create a temporary file: {e}"),
                )
            })?;
            idx.set_blob(Arc::new(b));
        }
        (rejudge, idx.blob().cloned())
    };
    let blob = blob.expect("blob set above");

    // nix-cache-info first: small, and the dashboard shows it.
    let info_text = match cache.store().get(CACHE_INFO_KEY).await? {
        None => None,
        Some(obj) => {
            let origin = cache.origin(CACHE_INFO_KEY);
            let bytes = compression::decode_content_encoding_max(
                &obj.bytes,
                obj.content_encoding.as_deref(),
                &origin,
                compression::MAX_DECODED_NARINFO,
            )
            .map(|b| b.to_vec())
            .unwrap_or_else(|_| obj.bytes.to_vec());
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    write(&index).cache_info = info_text;

    let local = cache.store().supports_blocking_get();
    let scans = if local {
        2
    } else {
        opts.concurrency.clamp(1, 32)
    };
    let seen = Arc::new(std::sync::Mutex::new(Vec::<bool>::new()));
    let ls = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let others = Arc::new(std::sync::Mutex::new(Vec::<OtherObject>::new()));
    let listing_failed: Arc<std::sync::Mutex<Option<StoreError>>> = Arc::default();

    let pages = storage::list_root_parallel(cache.store().clone(), scans);
    let works = {
        let index = index.clone();
        let progress = progress.clone();
        let notify = notify.clone();
        let seen = seen.clone();
        let ls = ls.clone();
        let others = others.clone();
        let failed = listing_failed.clone();
        pages
            .map(move |page| {
                let page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return stream::iter(Vec::new());
                    }
                };
                let mut out = Vec::new();
                {
                    let mut idx = write(&index);
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    for o in page.objects {
                        if let Some(h) = hash_part_from_narinfo_key(&o.key) {
                            let mtime = unix_secs(o.last_modified);
                            let etag = etag_hash(o.etag.as_deref());
                            let Some((id, changed)) = idx.list_key(h, o.size, mtime, etag) else {
                                continue;
                            };
                            if seen.len() <= id as usize {
                                seen.resize(id as usize + 1, false);
                            }
                            seen[id as usize] = true;
                            progress.listed.fetch_add(1, Ordering::Relaxed);
                            if changed {
                                progress.to_fetch.fetch_add(1, Ordering::Relaxed);
                                out.push(Work::Fetch(o));
                            } else if rejudge_all {
                                let t = idx.row(id).text;
                                out.push(Work::Rejudge(o, t));
                            }
                        } else if o.key == CACHE_INFO_KEY {
                        } else if let Some(h) = o.key.strip_suffix(".ls")
                            && h.len() == 32
                        {
                            ls.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(h.to_string());
                            others
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(other(&o));
                        } else {
                            others
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(other(&o));
                        }
                    }
                }
                notify();
                stream::iter(out)
            })
            .flatten()
    };

    // Fetch remote narinfos with `concurrency` requests in flight; local ones are read where
    // they are judged.
    let got: std::pin::Pin<Box<dyn futures::Stream<Item = Got> + Send>> = if local {
        Box::pin(works.map(|w| match w {
            Work::Fetch(m) => Got::Unread(m),
            Work::Rejudge(m, t) => Got::Stored(m, t),
        }))
    } else {
        let store = cache.store().clone();
        Box::pin(
            works
                .map(move |w| {
                    let store = store.clone();
                    async move {
                        match w {
                            Work::Fetch(m) => {
                                let r = store.get(&m.key).await;
                                Got::Bytes(m, r)
                            }
                            Work::Rejudge(m, t) => Got::Stored(m, t),
                        }
                    }
                })
                .buffer_unordered(opts.concurrency.max(1)),
        )
    };

    let store_dir: Arc<str> = read(&index).store_dir().into();
    let judged = got
        .ready_chunks(256)
        .map(|chunk| {
            let cache = cache.clone();
            let keys = keys.clone();
            let blob = blob.clone();
            let store_dir = store_dir.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    judge_batch(&cache, &keys, &blob, &store_dir, chunk)
                })
                .await
                .unwrap_or_default()
            }
        })
        .buffered(2);
    let mut judged = std::pin::pin!(judged);
    let mut summary = ScanSummary::default();
    while let Some(batch) = judged.next().await {
        {
            let mut idx = write(&index);
            for (d, fetched, read_error) in &batch {
                if let (Some(id), Some(e)) = (idx.apply(d), read_error) {
                    idx.set_read_error(id, e.clone());
                }
                if *fetched {
                    summary.fetched += 1;
                } else {
                    summary.rejudged += 1;
                }
            }
        }
        let fetched = batch.iter().filter(|(_, f, _)| *f).count() as u64;
        progress.fetched.fetch_add(fetched, Ordering::Relaxed);
        progress
            .rejudged
            .fetch_add(batch.len() as u64 - fetched, Ordering::Relaxed);
        notify();
    }
    if let Some(e) = listing_failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(e.into());
    }
    summary.listed = progress.listed.load(Ordering::Relaxed);

    // The listing was complete: whatever was not seen is gone.
    {
        let mut idx = write(&index);
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        let before = idx.live().count() as u64;
        idx.retain_listed(&seen);
        summary.removed = before.saturating_sub(idx.live().count() as u64);
        let ls = ls.lock().unwrap_or_else(|p| p.into_inner());
        let with_ls: std::collections::HashSet<&str> = ls.iter().map(String::as_str).collect();
        let ids: Vec<RowId> = (0..idx.len() as RowId).collect();
        for id in ids {
            let h = idx.hash_part(id);
            idx.set_listing(&h, with_ls.contains(h.as_str()));
        }
        idx.others = std::mem::take(&mut *others.lock().unwrap_or_else(|p| p.into_inner()));
        idx.others.sort_by(|a, b| a.key.cmp(&b.key));
    }
    notify();

    if opts.list_nars {
        progress.set_phase(Phase::Nars);
        let mut nars = Vec::new();
        let mut pages = std::pin::pin!(storage::list_parallel_under(
            cache.store().clone(),
            "nar/",
            scans,
            false
        ));
        while let Some(page) = pages.next().await {
            let page = page?;
            progress
                .nars
                .fetch_add(page.objects.len() as u64, Ordering::Relaxed);
            nars.extend(page.objects.into_iter().map(|o| NarObject {
                mtime: unix_secs(o.last_modified),
                size: o.size,
                key: o.key,
            }));
        }
        summary.nars = nars.len() as u64;
        write(&index).set_nars(nars);
    }
    // Secret keys among the stray root objects and key-like names under nar/ (bounded).
    let candidates: Vec<(String, u64)> = {
        let idx = read(&index);
        idx.others
            .iter()
            .map(|o| (o.key.clone(), o.size))
            .chain(
                idx.nars()
                    .iter()
                    .filter(|n| crate::keyprobe::has_key_like_name(&n.key))
                    .map(|n| (n.key.clone(), n.size)),
            )
            .collect()
    };
    let keys = crate::keyprobe::probe(cache.store(), candidates).await;
    {
        let mut idx = write(&index);
        idx.secret_keys = keys.found;
        idx.keys_not_checked = keys.not_checked;
        idx.scanned_at = Some(SystemTime::now());
        idx.generation += 1;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn other(o: &ObjectMeta) -> OtherObject {
    OtherObject {
        key: o.key.clone(),
        size: o.size,
        mtime: unix_secs(o.last_modified),
    }
}

/// Obtain, parse and judge a batch; fetched texts are appended to the blob in one write.
/// Returns each row's data, whether it was fetched (vs. judged again from stored text), and
/// why it could not be read when it could not.
fn judge_batch(
    cache: &Cache,
    keys: &TrustedKeys,
    blob: &Blob,
    store_dir: &str,
    chunk: Vec<Got>,
) -> Vec<(RowData, bool, Option<ReadError>)> {
    struct Item {
        meta: ObjectMeta,
        text: Option<Vec<u8>>,
        stored: Option<TextRef>,
        parsed: Result<NarInfo, TextError>,
        fetched: bool,
    }
    let mut items: Vec<Item> = chunk
        .into_iter()
        .map(|g| {
            let (meta, raw, stored): (ObjectMeta, Result<Option<Vec<u8>>, TextError>, _) = match g {
                Got::Bytes(m, r) => {
                    let raw = r
                        .map_err(TextError::from)
                        .map(|o| o.map(|o| decode(cache, &m.key, o)));
                    (m, raw.and_then(|o| o.transpose()), None)
                }
                Got::Unread(m) => {
                    let raw = cache
                        .store()
                        .get_blocking(&m.key)
                        .map_err(TextError::from)
                        .map(|o| o.map(|o| decode(cache, &m.key, o)));
                    (m, raw.and_then(|o| o.transpose()), None)
                }
                Got::Stored(m, t) => {
                    let raw = blob.read(t).map(|s| Some(s.into_bytes())).map_err(|cause| {
                        TextError::Stored {
                            key: m.key.clone(),
                            cause,
                        }
                    });
                    (m, raw, Some(t))
                }
            };
            let origin = cache.origin(&meta.key);
            let (text, parsed) = match raw {
                Ok(Some(bytes)) => {
                    let parsed = NarInfo::parse_bytes(&bytes, &origin).map_err(TextError::from);
                    (Some(bytes), parsed)
                }
                Ok(None) => (None, Err(TextError::Gone(origin.clone()))),
                Err(e) => (None, Err(e)),
            };
            Item {
                fetched: stored.is_none(),
                meta,
                text,
                stored,
                parsed,
            }
        })
        .collect();

    // Store fetched texts (also unparseable ones: the dashboard shows them with the error).
    let to_store: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, it)| it.fetched && it.text.is_some())
        .map(|(i, _)| i)
        .collect();
    let texts: Vec<&[u8]> = to_store
        .iter()
        .filter_map(|&i| items[i].text.as_deref())
        .collect();
    match blob.append_many(&texts) {
        Ok(refs) => {
            for (&i, r) in to_store.iter().zip(refs) {
                items[i].stored = Some(r);
            }
        }
        Err(e) => tracing::warn!("cannot store narinfo texts: {e}"),
    }

    let infos: Vec<&NarInfo> = items
        .iter()
        .filter_map(|it| it.parsed.as_ref().ok())
        .collect();
    let mut verdicts = check_paths(&infos, keys).into_iter();
    items
        .iter()
        .map(|it| {
            let hash_part = hash_part_from_narinfo_key(&it.meta.key)
                .unwrap_or_default()
                .to_string();
            let mut read_error = None;
            let (info, status) = match &it.parsed {
                Ok(info) => {
                    let mut report = match verdicts.next() {
                        Some(v) => PathReport::from_verdict(&it.meta.key, info, v),
                        None => PathReport::judge(&it.meta.key, info, keys),
                    };
                    report.check_store_dir(info, store_dir);
                    (
                        Some(NarInfoSummary::of(info)),
                        RowStatus::from(report.status),
                    )
                }
                Err(e) => {
                    tracing::debug!("{e}");
                    read_error = Some(ReadError {
                        malformed: it.text.is_some(),
                        message: e.to_string(),
                    });
                    (None, RowStatus::from(Status::Error))
                }
            };
            let d = RowData {
                hash_part,
                obj_size: it.meta.size,
                mtime: unix_secs(it.meta.last_modified),
                etag: etag_hash(it.meta.etag.as_deref()),
                info,
                status,
                text: it.stored.unwrap_or_default(),
            };
            (d, it.fetched, read_error)
        })
        .collect()
}

fn decode(cache: &Cache, key: &str, o: storage::GetResult) -> Result<Vec<u8>, TextError> {
    if o.content_encoding.is_some() || compression::sniff(&o.bytes).is_some() {
        compression::decode_content_encoding_max(
            &o.bytes,
            o.content_encoding.as_deref(),
            &cache.origin(key),
            compression::MAX_DECODED_NARINFO,
        )
        .map(|b| b.to_vec())
        .map_err(TextError::from)
    } else {
        Ok(o.bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::CacheUrl;

    async fn run(
        cache: Arc<Cache>,
        opened: &Opened,
        keys: Arc<TrustedKeys>,
        progress: Arc<ScanProgress>,
    ) -> ScanSummary {
        scan(
            cache,
            opened.index.clone(),
            keys,
            ScanOptions::default(),
            progress,
            Arc::new(|| {}),
            CancellationToken::new(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn scans_the_demo_cache_and_refreshes_only_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let demo = crate::demo::write_demo_cache(&dir).unwrap();
        let url = CacheUrl::parse(&format!("file://{}", dir.display())).unwrap();
        let cache = Arc::new(Cache::open(&url).await.unwrap());
        let mut keys = TrustedKeys::new();
        keys.add(demo.public_key.clone());
        let keys = Arc::new(keys);
        let opened = open_index(&url.to_string(), false);
        let progress = Arc::new(ScanProgress::default());
        let s = run(cache.clone(), &opened, keys.clone(), progress.clone()).await;
        assert_eq!(s.listed, s.fetched);
        assert!(s.listed >= 8, "{s:?}");
        assert!(s.nars > 0);
        {
            let idx = opened.index.read().unwrap();
            let t = idx.totals();
            assert_eq!(t.paths, s.listed);
            assert_eq!(t.status(RowStatus::Pending), 0);
            assert!(t.status(RowStatus::Trusted) > 0);
            assert!(t.status(RowStatus::Unsigned) > 0);
            let p = idx.problems();
            assert!(!p.dangling.is_empty(), "the demo has a narinfo without NAR");
            assert!(!p.orphan_nars.is_empty(), "the demo has an orphan NAR");
            assert!(p.cache_info.is_empty(), "{:?}", p.cache_info);
            // Every row's text was stored and reads back.
            for id in idx.live() {
                assert!(idx.read_text(id).unwrap().is_some());
            }
        }
        // A second scan fetches nothing; a changed narinfo is fetched again.
        let again = run(
            cache.clone(),
            &opened,
            keys.clone(),
            Arc::new(ScanProgress::default()),
        )
        .await;
        assert_eq!((again.fetched, again.rejudged, again.removed), (0, 0, 0));
        // Other trusted keys: everything is judged again from stored text, no fetch.
        let rejudge = run(
            cache.clone(),
            &opened,
            Arc::new(TrustedKeys::new()),
            Arc::new(ScanProgress::default()),
        )
        .await;
        assert_eq!(rejudge.fetched, 0);
        assert_eq!(rejudge.rejudged, s.listed);
        assert_eq!(
            opened
                .index
                .read()
                .unwrap()
                .totals()
                .status(RowStatus::Trusted),
            0
        );
        // Remove one narinfo: the rescan marks it removed.
        let victim = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".narinfo"))
            .unwrap()
            .path();
        std::fs::remove_file(&victim).unwrap();
        let after = run(cache, &opened, keys, Arc::new(ScanProgress::default())).await;
        assert_eq!(after.removed, 1);
        assert_eq!(after.listed, s.listed - 1);
    }
}
