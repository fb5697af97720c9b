//! Pushing local store paths, with their closures, in Nix's order.
//!
//! The closure comes from the local Nix database ([`crate::localstore`]). Paths whose narinfo
//! is already in the cache are skipped. The others go up level by level (a path after every
//! path it references), several at a time. At most one path per core is packed at once: its
//! NAR is dumped from the store and hashed, compressed (in memory and in one pass on that
//! thread up to 64 MiB, streamed through the codec's worker threads above) and written to a
//! temp file; its NarHash and NarSize must equal what the local database says. The other
//! paths in flight upload meanwhile: the NAR (unless an identical one is already there), and
//! only then the narinfo, signed as it goes. With a key configured no
//! narinfo goes up without a signature by it. `nix-cache-info` is written if missing.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::sign::NARINFO_CONTENT_TYPE;
use super::{JobHandle, JobNotify, Throttle, cores};
use crate::cache::Cache;
use crate::compression::{self, Compression};
use crate::lease::PushRegistration;
use crate::localstore::LocalPath;
use crate::nix::{CacheInfo, Hash, NarInfo, SecretKey, Signature, StorePath};
use crate::storage::{PutCondition, PutOptions};

/// What a push does.
#[derive(Clone)]
pub struct PushOptions {
    /// Sign every narinfo with this key.
    pub key: Option<Arc<SecretKey>>,
    /// NAR compression.
    pub compression: Compression,
    /// Compression level (the codec's default when `None`).
    pub level: Option<i32>,
    /// Paths in flight at once ([`default_concurrency`] is a good choice); at most one per
    /// core is packed at a time.
    pub concurrency: usize,
    /// Where temp files go (default: `<cache>/nar` for a file:// cache, so they are renamed
    /// into place; the system temp dir otherwise).
    pub temp_dir: Option<PathBuf>,
}

/// Paths in flight by default: twice the cores, so that uploads and disk waits overlap
/// packing, which runs on at most one path per core.
pub fn default_concurrency() -> usize {
    2 * cores()
}

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushSummary {
    /// Paths in the closure.
    pub closure: u64,
    /// Paths already in the cache.
    pub present: u64,
    /// Paths uploaded.
    pub uploaded: u64,
    /// NARs that were already there (same FileHash).
    pub nars_reused: u64,
    /// Uncompressed NAR bytes uploaded.
    pub nar_bytes: u64,
    /// Compressed bytes uploaded.
    pub file_bytes: u64,
    /// Whether `nix-cache-info` was written.
    pub wrote_cache_info: bool,
}

/// Writes through to `inner`, hashing and counting.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A NAR dumped, compressed and hashed into a temp file.
struct Packed {
    file: TempFile,
    nar_hash: [u8; 32],
    nar_size: u64,
    file_hash: [u8; 32],
    file_size: u64,
}

/// A NAR in memory that may not grow past what the local database says its size is (then
/// the store path is not what the database records, and the push of it fails anyway).
struct Capped(Vec<u8>, u64);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.0.len() + buf.len()) as u64 > self.1 {
            return Err(std::io::Error::other(format!(
                "the NAR is larger than the {} bytes the Nix database records",
                self.1
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A temp file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// NARs up to this size (by the local database) are dumped into memory and compressed in
/// one pass; bigger ones stream.
const WHOLE_NAR_MAX: u64 = 64 << 20;

/// Buffers for NARs packed in memory and their compressed bytes, kept for the next path
/// (fresh allocations of tens of MB cost a page fault per 4 KiB). There are at most as
/// many as paths packed at once.
#[derive(Default)]
struct Buffers(std::sync::Mutex<Vec<(Vec<u8>, Vec<u8>)>>);

impl Buffers {
    fn take(&self) -> (Vec<u8>, Vec<u8>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }
    fn give(&self, bufs: (Vec<u8>, Vec<u8>)) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(bufs);
    }
}

/// Dump `path` as a NAR and compress it into a temp file in `dir`, hashing both.
/// `size_hint` is the NAR size the local database records.
fn pack(
    path: &Path,
    size_hint: u64,
    c: Compression,
    level: Option<i32>,
    threads: u32,
    dir: &Path,
    buffers: &Buffers,
) -> Result<Packed, String> {
    // Named like the store's own temp files, so a crash leaves recognisable litter.
    let tmp = TempFile(dir.join(format!(
        ".narscope-push-{}.tmp.{}.0",
        crate::storage::random_hex(),
        std::process::id()
    )));
    let out = std::fs::File::create(&tmp.0)
        .map_err(|e| format!("cannot create {}: {e}", tmp.0.display()))?;
    let hw = HashWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, out),
        hasher: Sha256::new(),
        count: 0,
    };
    let (summary, mut hw) = if c == Compression::Zstd && size_hint <= WHOLE_NAR_MAX {
        // Small enough to hold: dump, then compress it in one pass on this thread.
        let (mut nar, mut packed) = buffers.take();
        nar.clear();
        nar.reserve(size_hint as usize);
        let mut capped = Capped(nar, size_hint);
        let dumped = crate::nar::writer::dump_path(path, &mut capped).map_err(|e| e.to_string());
        let nar = capped.0;
        let result = dumped.and_then(|summary| {
            compression::compress_all(c, level, &nar, &mut packed)
                .map_err(|e| format!("compressing {}: {e}", path.display()))?;
            let mut hw = hw;
            hw.write_all(&packed)
                .map_err(|e| format!("writing {}: {e}", tmp.0.display()))?;
            Ok((summary, hw))
        });
        buffers.give((nar, packed));
        result?
    } else {
        // This thread reads the tree and hashes the NAR; with `threads` > 0 the codec
        // compresses on its own worker threads meanwhile.
        let mut enc =
            compression::encoder_threads(c, level, threads, hw).map_err(|e| e.to_string())?;
        let summary = crate::nar::writer::dump_path(path, &mut enc).map_err(|e| e.to_string())?;
        let hw = enc
            .finish()
            .map_err(|e| format!("compressing {}: {e}", path.display()))?;
        (summary, hw)
    };
    hw.flush()
        .map_err(|e| format!("writing {}: {e}", tmp.0.display()))?;
    Ok(Packed {
        nar_hash: summary.nar_hash,
        nar_size: summary.nar_size,
        file_hash: hw.hasher.finalize().into(),
        file_size: hw.count,
        file: tmp,
    })
}

/// Per path: its references among `paths`, by index, itself left out; sorted, without
/// duplicates.
fn references_among(paths: &[LocalPath]) -> Vec<Vec<usize>> {
    let pos: HashMap<&StorePath, usize> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (&p.path, i))
        .collect();
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut refs: Vec<usize> = p
                .references
                .iter()
                .filter_map(|r| pos.get(r).copied())
                .filter(|&j| j != i)
                .collect();
            refs.sort_unstable();
            refs.dedup();
            refs
        })
        .collect()
}

/// Levels of `paths` by their references among themselves (`refs`, from
/// [`references_among`]): level 0 references nothing in the set, level n only paths of
/// lower levels. Within a level the biggest NARs come first, so that the small ones fill the
/// cores at the end instead of one big one running alone. Iterative (Kahn's algorithm), so a
/// deep chain needs no stack; paths on a reference cycle, which Nix does not allow beyond
/// self-references, go last.
fn levels(paths: &[LocalPath], refs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut waiting: Vec<usize> = refs.iter().map(Vec::len).collect();
    let mut referrers: Vec<Vec<usize>> = vec![Vec::new(); paths.len()];
    for (i, rs) in refs.iter().enumerate() {
        for &j in rs {
            referrers[j].push(i);
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = (0..paths.len()).filter(|&i| waiting[i] == 0).collect();
    let mut placed = 0;
    while !current.is_empty() {
        placed += current.len();
        let mut next = Vec::new();
        for &j in &current {
            for &i in &referrers[j] {
                waiting[i] -= 1;
                if waiting[i] == 0 {
                    next.push(i);
                }
            }
        }
        out.push(std::mem::replace(&mut current, next));
    }
    if placed < paths.len() {
        out.push((0..paths.len()).filter(|&i| waiting[i] > 0).collect());
    }
    for level in &mut out {
        level.sort_by_key(|&i| (std::cmp::Reverse(paths[i].nar_size), i));
    }
    out
}

/// The narinfo Nix would write for `lp` stored as `url`, with its local signatures and,
/// with `key`, ours.
pub fn narinfo_for(
    lp: &LocalPath,
    url: &str,
    c: Compression,
    file_hash: Hash,
    file_size: u64,
    key: Option<&SecretKey>,
) -> NarInfo {
    let mut info = NarInfo::new(
        lp.path.clone(),
        url,
        c.name(),
        lp.nar_hash.clone(),
        lp.nar_size,
        lp.references.clone(),
    )
    .with_file(file_hash, file_size);
    if let Some(d) = &lp.deriver {
        info = info.with_deriver(d.clone());
    }
    if let Some(ca) = &lp.ca {
        info = info.with_ca(ca.clone());
    }
    for s in &lp.sigs {
        if let Ok(sig) = Signature::parse(s) {
            info.add_signature(&sig);
        }
    }
    if let Some(k) = key {
        info.sign(k);
    }
    info
}

/// Push `closure` (see the module docs).
pub async fn push(
    cache: Arc<Cache>,
    closure: Vec<LocalPath>,
    opts: PushOptions,
    job: Arc<JobHandle>,
    notify: JobNotify,
) -> Result<PushSummary, String> {
    if !opts.compression.can_write() {
        return Err(format!("cannot write {} NARs", opts.compression.name()));
    }
    let p = job.progress.clone();
    let mut summary = PushSummary {
        closure: closure.len() as u64,
        ..PushSummary::default()
    };
    let store = cache.store().clone();

    p.set_current("checking nix-cache-info");
    match cache.cache_info().await.map_err(|e| e.to_string())? {
        Some(ci) if !ci.is_nix_store() => {
            return Err(format!(
                "{}: nix-cache-info is for another store directory; not pushing /nix/store paths",
                store.describe()
            ));
        }
        Some(_) => {}
        None => {
            let _ = store.ensure_container().await;
            cache
                .write_cache_info(&CacheInfo::new())
                .await
                .map_err(|e| e.to_string())?;
            summary.wrote_cache_info = true;
        }
    }

    // Registered before looking at what the cache has: a deletion that starts later waits
    // for this push to pause, and one that runs now makes it wait (see crate::lease).
    p.set_current("registering with the cache (deletions wait for pushes)");
    let reg = Arc::new(PushRegistration::register(store.clone()).await?);
    let r = push_registered(&cache, closure, &opts, &job, &notify, &reg, summary).await;
    if let Ok(reg) = Arc::try_unwrap(reg) {
        reg.finish().await;
    }
    r
}

async fn push_registered(
    cache: &Arc<Cache>,
    closure: Vec<LocalPath>,
    opts: &PushOptions,
    job: &Arc<JobHandle>,
    notify: &JobNotify,
    reg: &Arc<PushRegistration>,
    mut summary: PushSummary,
) -> Result<PushSummary, String> {
    let p = job.progress.clone();
    let store = cache.store().clone();
    p.set_current("checking which paths the cache has");
    // What is found present now is relied on until the registration pauses.
    let checked_in = reg.epoch();
    let keys: Vec<String> = closure.iter().map(|l| l.path.narinfo_key()).collect();
    let present: Vec<bool> = futures::stream::iter(keys)
        .map(|k| {
            let store = store.clone();
            async move { store.head(&k).await.map(|m| m.is_some()) }
        })
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let todo: Vec<LocalPath> = closure
        .into_iter()
        .zip(&present)
        .filter(|(_, p)| !**p)
        .map(|(l, _)| l)
        .collect();
    summary.present = present.iter().filter(|p| **p).count() as u64;
    p.total.store(todo.len() as u64, Ordering::Relaxed);
    p.bytes_total
        .store(todo.iter().map(|l| l.nar_size).sum(), Ordering::Relaxed);
    if todo.is_empty() {
        return Ok(summary);
    }
    let inm = store
        .probe_conditional_writes()
        .await
        .map(|s| s.if_none_match)
        .unwrap_or(false);
    // Temp files beside a local cache are renamed into place instead of copied.
    let dir = opts
        .temp_dir
        .clone()
        .or_else(|| {
            store
                .local_root()
                .map(|r| r.join("nar"))
                .filter(|d| std::fs::create_dir_all(d).is_ok())
        })
        .unwrap_or_else(std::env::temp_dir);
    let throttle = Throttle::default();
    let todo = Arc::new(todo);
    let opts = opts.clone();
    // Paths in flight may wait on the disk or the network; only one per core packs (reads,
    // hashes, compresses) at a time, so they never fight over the CPU and its caches.
    let packers = Arc::new(tokio::sync::Semaphore::new(cores()));
    let buffers = Arc::new(Buffers::default());
    // One stream in dependency order: a path packs and uploads its NAR as soon as it has a
    // slot, and only its narinfo waits for those of its references, so a deep closure keeps
    // every core busy instead of draining at each level. Everything a path waits for comes
    // before it in the stream, so the oldest unfinished path never waits.
    let refs = references_among(&todo);
    let order = levels(&todo, &refs);
    let gate = Arc::new(Gate::new(&todo, &refs, &order));
    let results = futures::stream::iter(order.into_iter().flatten())
        .map(|i| {
            let todo = todo.clone();
            let store = store.clone();
            let opts = opts.clone();
            let dir = dir.clone();
            let p = p.clone();
            let gate = gate.clone();
            let packing = Packing {
                permits: packers.clone(),
                buffers: buffers.clone(),
            };
            let reg = reg.clone();
            async move {
                let lp = &todo[i];
                p.set_current(lp.path.to_absolute());
                let r = match gate.failed_reference(i) {
                    Some(why) => Err(why),
                    None => {
                        let relied = Relied {
                            reg: &reg,
                            since: checked_in,
                            if_none_match: inm,
                        };
                        push_one(&store, lp, &opts, &dir, packing, gate.wait(i), relied).await
                    }
                };
                gate.finish(i, r.is_ok());
                p.done.fetch_add(1, Ordering::Relaxed);
                p.bytes_done.fetch_add(lp.nar_size, Ordering::Relaxed);
                r
            }
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut results = std::pin::pin!(results);
    let mut failed = 0;
    while let Some(r) = results.next().await {
        match r {
            Ok(one) => {
                summary.uploaded += u64::from(one.uploaded);
                summary.present += u64::from(!one.uploaded);
                summary.nars_reused += u64::from(one.nar_reused);
                summary.nar_bytes += one.nar_bytes;
                summary.file_bytes += one.file_bytes;
            }
            Err(e) => {
                failed += 1;
                p.error(e);
            }
        }
        let paused = reg.status();
        if !paused.is_empty() {
            p.set_current(paused);
        }
        if throttle.ready() {
            notify(super::JobEvent::Progress(job.id));
        }
    }
    if failed > 0 {
        // Referrers of a failed path did not go up: their closure would be incomplete.
        return Err(format!(
            "{failed} path(s) failed (the paths that reference a failed one were not uploaded)"
        ));
    }
    p.set_current(String::new());
    Ok(summary)
}

/// Which references each path's narinfo waits for, and how each path ended.
struct Gate {
    /// Per path: its references in the set from lower levels (a path on a reference cycle
    /// does not wait for the others on it).
    waits_for: Vec<Vec<usize>>,
    /// Per path: `None` while it runs, then whether its narinfo is in the cache.
    ended: Vec<tokio::sync::watch::Sender<Option<bool>>>,
    names: Vec<String>,
}

impl Gate {
    fn new(paths: &[LocalPath], refs: &[Vec<usize>], levels: &[Vec<usize>]) -> Gate {
        let mut level_of = vec![0; paths.len()];
        for (l, level) in levels.iter().enumerate() {
            for &i in level {
                level_of[i] = l;
            }
        }
        let waits_for = refs
            .iter()
            .enumerate()
            .map(|(i, rs)| {
                rs.iter()
                    .copied()
                    .filter(|&j| level_of[j] < level_of[i])
                    .collect()
            })
            .collect();
        Gate {
            waits_for,
            ended: paths
                .iter()
                .map(|_| tokio::sync::watch::Sender::new(None))
                .collect(),
            names: paths.iter().map(|p| p.path.to_absolute()).collect(),
        }
    }

    fn refused(&self, i: usize, j: usize) -> String {
        format!(
            "{}: not uploaded, because {} (which it references) failed",
            self.names[i], self.names[j]
        )
    }

    /// Why `i` need not start: a reference of it has already failed.
    fn failed_reference(&self, i: usize) -> Option<String> {
        self.waits_for[i]
            .iter()
            .find(|&&j| *self.ended[j].borrow() == Some(false))
            .map(|&j| self.refused(i, j))
    }

    /// Waits until the narinfos of all references of `i` are in the cache; an error names a
    /// reference that failed.
    async fn wait(&self, i: usize) -> Result<(), String> {
        for &j in &self.waits_for[i] {
            let mut rx = self.ended[j].subscribe();
            let ok = rx
                .wait_for(Option::is_some)
                .await
                .map(|v| *v == Some(true))
                .unwrap_or(false);
            if !ok {
                return Err(self.refused(i, j));
            }
        }
        Ok(())
    }

    fn finish(&self, i: usize, ok: bool) {
        self.ended[i].send_replace(Some(ok));
    }
}

/// What packing a path needs: a permit (one per core) and the shared buffers.
struct Packing {
    permits: Arc<tokio::sync::Semaphore>,
    buffers: Arc<Buffers>,
}

/// What a path's narinfo relies on beyond what this push writes for it: the registration
/// (narinfos are written under its permit) and the epoch in which the cache was found to
/// hold the path's references.
struct Relied<'a> {
    reg: &'a PushRegistration,
    since: u64,
    /// Narinfos are written with If-None-Match (the store honours it).
    if_none_match: bool,
}

/// Whether the NAR already at `url` (`meta`) is the one packed, by more than its size where
/// the store says more: a local file is hashed against the FileHash (which its key names
/// too), and an S3 ETag that is a plain MD5 (a single-part upload) is compared with the
/// packed file's MD5. When the store says nothing more, the NAR is not reused: uploading the
/// same bytes again is safe, reusing an object of the right size but other bytes is not.
async fn same_nar(
    store: &Arc<dyn crate::storage::Store>,
    url: &str,
    meta: &crate::storage::ObjectMeta,
    packed: &Packed,
) -> Result<bool, String> {
    if meta.size != packed.file_size {
        return Ok(false);
    }
    if store.supports_blocking_get() {
        let Some(mut r) = crate::storage::blocking_reader(store.as_ref(), url)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(false);
        };
        let want = packed.file_hash;
        let origin = url.to_string();
        return tokio::task::spawn_blocking(move || -> Result<bool, String> {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = std::io::Read::read(&mut r, &mut buf)
                    .map_err(|e| format!("reading `{origin}`: {e}"))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(<[u8; 32]>::from(h.finalize()) == want)
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    let Some(etag) = meta
        .etag
        .as_deref()
        .map(|e| e.trim().trim_start_matches("W/").trim_matches('"'))
        .filter(|e| e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
    else {
        return Ok(false);
    };
    let path = packed.file.0.clone();
    let md5 = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use md5::Digest as _;
        let mut f = std::fs::File::open(&path)?;
        let mut h = md5::Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("hashing the packed NAR: {e}"))?;
    Ok(md5 == etag)
}

async fn upload_nar(
    store: &Arc<dyn crate::storage::Store>,
    url: &str,
    file: &Path,
) -> Result<(), String> {
    store
        .put_file(
            url,
            file,
            &PutOptions {
                content_type: Some("application/x-nix-nar".into()),
                condition: PutCondition::None,
                ..PutOptions::default()
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// After a pause for a deletion: what this narinfo relies on is checked again, under the
/// permit. A missing NAR is uploaded again from the packed file; a missing reference fails
/// the path (nothing is written for it; a new push uploads the reference).
async fn recheck(
    store: &Arc<dyn crate::storage::Store>,
    lp: &LocalPath,
    url: &str,
    packed: &Packed,
) -> Result<(), String> {
    if store.head(url).await.map_err(|e| e.to_string())?.is_none() {
        if !packed.file.0.exists() {
            return Err(format!(
                "{}: not uploaded, because its NAR `{url}` was deleted while this push was \
                 paused for a deletion; run the push again",
                lp.path.to_absolute()
            ));
        }
        upload_nar(store, url, &packed.file.0).await?;
    }
    for r in lp.references.iter().filter(|r| **r != lp.path) {
        if store
            .head(&r.narinfo_key())
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Err(format!(
                "{}: not uploaded, because its reference {} was deleted while this push was \
                 paused for a deletion; run the push again (it uploads the reference)",
                lp.path.to_absolute(),
                r.to_absolute()
            ));
        }
    }
    Ok(())
}

struct OneResult {
    uploaded: bool,
    nar_reused: bool,
    nar_bytes: u64,
    file_bytes: u64,
}

async fn push_one(
    store: &Arc<dyn crate::storage::Store>,
    lp: &LocalPath,
    opts: &PushOptions,
    dir: &Path,
    packing: Packing,
    references_up: impl std::future::Future<Output = Result<(), String>>,
    relied: Relied<'_>,
) -> Result<OneResult, String> {
    let path = PathBuf::from(lp.path.to_absolute());
    let (c, level, d) = (opts.compression, opts.level, dir.to_path_buf());
    let src = path.clone();
    let size = lp.nar_size;
    // When `pack` streams, big NARs are compressed on every core, small ones on this thread
    // (several paths are packed at once anyway).
    let threads = if lp.nar_size >= 8 << 20 {
        cores() as u32
    } else {
        0
    };
    // While this path waits for a core, the kernel reads its files in, so that packing it
    // does not wait on the disk (on a busy machine the page cache may have let them go).
    let ahead = path.clone();
    let _ = tokio::task::spawn_blocking(move || {
        crate::nar::writer::prefetch_tree(&ahead, WHOLE_NAR_MAX)
    })
    .await;
    let permit = packing
        .permits
        .acquire_owned()
        .await
        .map_err(|e| e.to_string())?;
    let buffers = packing.buffers;
    let packed = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        pack(&src, size, c, level, threads, &d, &buffers)
    })
    .await
    .map_err(|e| format!("packing {}: {e}", path.display()))??;
    let nar_hash = Hash::sha256(packed.nar_hash);
    if nar_hash != lp.nar_hash || packed.nar_size != lp.nar_size {
        return Err(format!(
            "{}: the store contents (NarHash {}, NarSize {}) differ from what the Nix database \
             records (NarHash {}, NarSize {}); run `nix-store --verify --check-contents`",
            path.display(),
            nar_hash,
            packed.nar_size,
            lp.nar_hash,
            lp.nar_size
        ));
    }
    let file_hash = Hash::sha256(packed.file_hash);
    let url = format!("nar/{}.nar{}", file_hash.nix32_digest(), c.extension());
    let nar_reused = match store.head(&url).await.map_err(|e| e.to_string())? {
        Some(meta) => same_nar(store, &url, &meta, &packed).await?,
        None => false,
    };
    if !nar_reused {
        // A local cache takes the temp file by rename (then `recheck` cannot upload it again).
        store
            .put_owned_file(
                &url,
                &packed.file.0,
                &PutOptions {
                    content_type: Some("application/x-nix-nar".into()),
                    condition: PutCondition::None,
                    ..PutOptions::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let info = narinfo_for(
        lp,
        &url,
        c,
        file_hash,
        packed.file_size,
        opts.key.as_deref(),
    );
    if let Some(k) = &opts.key {
        let signed = info
            .sigs
            .iter()
            .any(|s| Signature::parse(s).is_ok_and(|s| s.key_name == k.name()));
        if !signed {
            return Err(format!(
                "{}: refusing to upload an unsigned narinfo",
                path.display()
            ));
        }
    }
    // Nix's order: a narinfo goes up after those of its references.
    references_up.await?;
    // Narinfos go up only under the registration's permit; if the push paused for a deletion
    // since its checks, what it relies on is checked again first.
    let permit = relied.reg.permit().await;
    if permit.epoch != relied.since {
        recheck(store, lp, &url, &packed).await?;
    }
    drop(packed.file);
    let put = PutOptions {
        content_type: Some(NARINFO_CONTENT_TYPE.into()),
        condition: if relied.if_none_match {
            PutCondition::IfNoneMatch
        } else {
            PutCondition::None
        },
        ..PutOptions::default()
    };
    match store
        .put(
            &lp.path.narinfo_key(),
            info.to_text().into_bytes().into(),
            &put,
        )
        .await
    {
        Ok(_) => Ok(OneResult {
            uploaded: true,
            nar_reused,
            nar_bytes: lp.nar_size,
            file_bytes: packed.file_size,
        }),
        // Someone pushed the same path meanwhile: theirs stands.
        Err(e) if e.is_precondition_failed() => Ok(OneResult {
            uploaded: false,
            nar_reused,
            nar_bytes: 0,
            file_bytes: 0,
        }),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(name: &str, refs: &[&StorePath]) -> LocalPath {
        LocalPath {
            path: crate::demo::fake_store_path(name, name).unwrap(),
            nar_hash: Hash::sha256_of(name.as_bytes()),
            nar_size: 100,
            references: refs.iter().map(|r| (*r).clone()).collect(),
            deriver: None,
            ca: None,
            sigs: Vec::new(),
        }
    }

    fn levels_of(paths: &[LocalPath]) -> Vec<Vec<usize>> {
        levels(paths, &references_among(paths))
    }

    #[test]
    fn references_go_up_before_referrers() {
        let a = lp("a", &[]);
        let b = lp("b", &[&a.path]);
        let c = lp("c", &[&a.path, &b.path]);
        let mut selfref = lp("s", &[]);
        selfref.references = vec![selfref.path.clone(), c.path.clone()];
        let paths = vec![selfref, c, b, a];
        let l = levels_of(&paths);
        let names: Vec<Vec<&str>> = l
            .iter()
            .map(|lv| lv.iter().map(|&i| paths[i].path.name()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a"], vec!["b"], vec!["c"], vec!["s"]]);
    }

    #[test]
    fn levels_put_big_nars_first_and_survive_deep_chains_and_cycles() {
        let mut small = lp("small", &[]);
        small.nar_size = 10;
        let mut big = lp("big", &[]);
        big.nar_size = 1000;
        let top = lp("top", &[&small.path, &big.path]);
        let paths = vec![small, top, big];
        assert_eq!(levels_of(&paths), vec![vec![2, 0], vec![1]]);

        // 100,000 deep: one path per level, in order.
        let mut chain = vec![lp("c0", &[])];
        for i in 1..100_000 {
            let prev = chain[i - 1].path.clone();
            chain.push(lp(&format!("c{i}"), &[&prev]));
        }
        chain.reverse();
        let l = levels_of(&chain);
        assert_eq!(l.len(), 100_000);
        assert_eq!(l[0], vec![99_999]);
        assert_eq!(l[99_999], vec![0]);

        // A cycle (not valid in Nix) still places every path, after the others.
        let mut x = lp("x", &[]);
        let y = lp("y", &[&x.path]);
        x.references = vec![y.path.clone()];
        let z = lp("z", &[]);
        assert_eq!(levels_of(&[x, y, z]), vec![vec![2], vec![0, 1]]);
    }

    #[test]
    fn a_narinfo_waits_only_for_its_references_and_a_failure_stops_its_referrers() {
        use futures::FutureExt;
        let a = lp("a", &[]);
        let b = lp("b", &[&a.path]);
        let c = lp("c", &[&b.path, &a.path]);
        let lone = lp("lone", &[]);
        let paths = vec![c, lone, b, a];
        let refs = references_among(&paths);
        let order = levels(&paths, &refs);
        let gate = Gate::new(&paths, &refs, &order);
        assert_eq!(gate.waits_for, vec![vec![2, 3], vec![], vec![3], vec![]]);
        // Nothing waits for a path without references in the set; b waits for a.
        assert_eq!(gate.wait(3).now_or_never(), Some(Ok(())));
        assert_eq!(gate.wait(1).now_or_never(), Some(Ok(())));
        assert_eq!(gate.wait(2).now_or_never(), None);
        gate.finish(3, true);
        assert_eq!(gate.wait(2).now_or_never(), Some(Ok(())));
        // c waits for b; when b fails, c is refused, naming b, and need not even start.
        let waiting = gate.wait(0);
        let mut waiting = std::pin::pin!(waiting);
        assert_eq!((&mut waiting).now_or_never(), None);
        assert_eq!(gate.failed_reference(0), None);
        gate.finish(2, false);
        let why = waiting.now_or_never().unwrap().unwrap_err();
        assert!(why.contains(&paths[2].path.to_absolute()), "{why}");
        assert!(gate.failed_reference(0).is_some_and(|w| w == why));
        assert_eq!(gate.failed_reference(1), None);

        // Paths on a cycle wait for nobody on it (they would wait for ever).
        let mut x = lp("x", &[]);
        let y = lp("y", &[&x.path]);
        x.references = vec![y.path.clone()];
        let cyc = vec![x, y];
        let refs = references_among(&cyc);
        let gate = Gate::new(&cyc, &refs, &levels(&cyc, &refs));
        assert_eq!(gate.waits_for, vec![Vec::<usize>::new(), vec![]]);
    }

    #[test]
    fn packs_a_tree_and_its_hashes_match_an_independent_dump() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        crate::nar::testutil::materialize(&crate::nar::testutil::tree(), &root);
        let mut plain = Vec::new();
        let want = crate::nar::writer::dump_path(&root, &mut plain).unwrap();
        let size = want.nar_size;
        let bufs = Buffers::default();
        // (size hint, workers): in memory, then streamed on this thread, one and two workers.
        let ways = [(size, 0), (0, 0), (0, 1), (0, 2)];
        for (c, (hint, threads)) in [Compression::Zstd, Compression::Xz, Compression::None]
            .into_iter()
            .flat_map(|c| ways.iter().map(move |w| (c, *w)))
        {
            // A hint of 0 is below WHOLE_NAR_MAX too: stream by giving a huge one instead.
            let hint = if hint == 0 { WHOLE_NAR_MAX + 1 } else { hint };
            let packed = pack(&root, hint, c, None, threads, dir.path(), &bufs).unwrap();
            assert_eq!(packed.nar_hash, want.nar_hash, "{c:?}");
            assert_eq!(packed.nar_size, want.nar_size);
            let bytes = std::fs::read(&packed.file.0).unwrap();
            assert_eq!(bytes.len() as u64, packed.file_size);
            let d: [u8; 32] = Sha256::digest(&bytes).into();
            assert_eq!(d, packed.file_hash);
            let mut back = Vec::new();
            compression::decoder(c, &bytes[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, plain);
            let tmp = packed.file.0.clone();
            drop(packed);
            assert!(!tmp.exists(), "temp file removed");
        }
        // A tree larger than the database says is refused, not held in memory.
        let e = match pack(
            &root,
            size - 1,
            Compression::Zstd,
            None,
            0,
            dir.path(),
            &bufs,
        ) {
            Err(e) => e,
            Ok(_) => panic!("a NAR over its recorded size was packed"),
        };
        assert!(e.contains("larger than the"), "{e}");
    }
}
