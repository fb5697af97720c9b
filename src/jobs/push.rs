//! Pushing local store paths, with their closures, in Nix's order.
//!
//! The closure comes from the local Nix database ([`crate::localstore`]). Paths whose narinfo
//! is already in the cache are skipped, and so are those an upstream serves with a trusted
//! signature ([`PushOptions::upstreams`], asked concurrently; a reference an upstream serves
//! counts as present for the order below). The others go up level by level (a path after every
//! path it references), several at a time. At most one path per core is packed at once: its
//! NAR is dumped from the store and hashed, compressed (in memory and in one pass on that
//! thread up to 64 MiB, streamed through the codec's worker threads above) and written to a
//! temp file; its NarHash and NarSize must equal what the local database says. The other
//! paths in flight upload meanwhile: the NAR (unless an identical one is already there), and
//! only then the narinfo, signed as it goes. With a key configured no
//! narinfo goes up without a signature by it. `nix-cache-info` is written if missing.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::sign::NARINFO_CONTENT_TYPE;
use super::{JobError, JobHandle, JobNotify, Throttle, cores};
use crate::cache::Cache;
use crate::compression::{self, Compression};
use crate::lease::PushRegistration;
use crate::localstore::LocalPath;
use crate::nix::{CacheInfo, Hash, NarInfo, SecretKey, Signature, StorePath};
use crate::storage::PutCondition;
use crate::storage::params::StoreParams;
use crate::upstream::{Served, ServedTotals, Upstreams};

/// What a push does.
#[derive(Clone)]
pub struct PushOptions {
    /// Sign every narinfo with each of these keys.
    pub keys: Vec<Arc<SecretKey>>,
    /// How NARs are compressed before upload (the narinfo's `Compression`).
    pub compression: Compression,
    /// Where [`PushOptions::compression`] was chosen.
    pub compression_from: Chosen,
    /// Compression level (the codec's default when `None`).
    pub level: Option<i32>,
    /// `parallel-compression`: xz in independent blocks, zstd in independent frames, on
    /// every core.
    pub parallel: bool,
    /// `write-nar-listing`: write `<hash>.ls`.
    pub write_listing: bool,
    /// `index-debug-info`: write `debuginfo/<build-id>` links.
    pub index_debug_info: bool,
    /// The `nix-cache-info` written when the cache has none.
    pub cache_info: CacheInfo,
    /// Paths in flight at once ([`default_concurrency`] is a good choice); at most one per
    /// core is packed at a time.
    pub concurrency: usize,
    /// Where temp files go (default: `<cache>/nar` for a file:// cache, so they are renamed
    /// into place; the system temp dir otherwise).
    pub temp_dir: Option<PathBuf>,
    /// Upstreams asked before uploading: a path one of them serves with a trusted signature
    /// is skipped (none by default).
    pub upstreams: Arc<Upstreams>,
    /// narinfo requests to the upstreams in flight at once.
    pub upstream_concurrency: usize,
}

/// Where a setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Chosen {
    /// Neither the URL nor a flag said: narscope's default.
    Default,
    /// The cache URL's parameter.
    Url,
    /// A command-line flag.
    Flag,
}

/// What the user said besides the cache URL: command-line flags, and for the dashboard the
/// config's `signing-key-file`.
#[derive(Clone, Debug, Default)]
pub struct PushFlags {
    /// Secret key files, each with where it was named (`--key-file`, …).
    pub key_files: Vec<(PathBuf, String)>,
    /// `--compression`: must agree with the URL's `compression=` when both are given.
    pub compression: Option<Compression>,
    /// `--level`: must agree with the URL's `compression-level=` when both are given.
    pub level: Option<i32>,
    /// `--jobs` (default: [`default_concurrency`]).
    pub concurrency: Option<usize>,
}

/// `flag` and the URL's `url`, which must not contradict each other (`name`s say which
/// flag and parameter, for the error).
fn merge<T: PartialEq + std::fmt::Display + Copy>(
    flag: Option<T>,
    flag_name: &str,
    url: Option<T>,
    param: &str,
) -> Result<(Option<T>, Chosen), JobError> {
    match (flag, url) {
        (Some(f), Some(u)) if f != u => Err(JobError::Invalid(format!(
            "{flag_name} {f} contradicts {param}={u} in the cache URL; give one, or the same"
        ))),
        (Some(f), _) => Ok((Some(f), Chosen::Flag)),
        (None, Some(u)) => Ok((Some(u), Chosen::Url)),
        (None, None) => Ok((None, Chosen::Default)),
    }
}

/// The `nix-cache-info` narscope writes into a cache that has none: the URL's `priority=`
/// and `want-mass-query=`, merged with the flags `priority` and `want_mass_query` (a flag
/// that contradicts the URL is an error).
pub fn new_cache_info(
    params: &StoreParams,
    priority: Option<i64>,
    want_mass_query: Option<bool>,
) -> Result<CacheInfo, JobError> {
    let mut info = CacheInfo::new();
    info.priority = merge(priority, "--priority", params.priority, "priority")?.0;
    info.want_mass_query = merge(
        want_mass_query,
        "--want-mass-query",
        params.want_mass_query,
        "want-mass-query",
    )?
    .0;
    if let Some(p) = info.priority
        && i32::try_from(p).is_err()
    {
        return Err(JobError::Invalid(format!(
            "priority {p} is out of range (Nix reads it as an int)"
        )));
    }
    Ok(info)
}

impl PushOptions {
    /// The one place where a push's settings are decided, for the CLI and the dashboard
    /// alike: the cache URL's parameters (`params`) merged with `flags`. Key files are read
    /// and checked here, and the codec, level and parallel setting too, so that whatever
    /// cannot be honoured is refused before the cache is touched. A flag that contradicts
    /// the URL is an error naming both.
    pub fn resolve(params: &StoreParams, flags: &PushFlags) -> Result<PushOptions, JobError> {
        let (compression, compression_from) = merge(
            flags.compression,
            "--compression",
            params.compression,
            "compression",
        )?;
        let compression = compression.unwrap_or(Compression::Zstd);
        let (level, _) = merge(
            flags.level.filter(|&l| l != -1),
            "--level",
            params.compression_level,
            "compression-level",
        )?;
        if compression == Compression::None && level.is_some() {
            return Err(JobError::Invalid(
                "a compression level means nothing with compression none".into(),
            ));
        }
        crate::storage::params::check_write_settings(
            compression,
            level,
            params.parallel_compression,
        )
        .map_err(|e| JobError::Invalid(e.to_string()))?;
        let keys = super::sign::load_signing_keys(params, &flags.key_files)?;
        Ok(PushOptions {
            keys,
            compression,
            compression_from,
            level,
            parallel: params.parallel_compression,
            write_listing: params.write_nar_listing,
            index_debug_info: params.index_debug_info,
            cache_info: new_cache_info(params, None, None)?,
            concurrency: flags.concurrency.unwrap_or_else(default_concurrency).max(1),
            temp_dir: None,
            upstreams: Arc::new(Upstreams::default()),
            upstream_concurrency: crate::cache::DEFAULT_CONCURRENCY,
        })
    }

    /// One line on the NAR compression: which was used and where it came from; when
    /// narscope's default, that Nix's default is xz.
    pub fn compression_note(&self) -> String {
        let c = self.compression;
        match self.compression_from {
            Chosen::Default => format!(
                "NARs compressed with {c}, narscope's default (Nix's default is xz; choose with \
                 ?compression= in the cache URL or --compression)"
            ),
            Chosen::Url => format!("NARs compressed with {c} (compression= in the cache URL)"),
            Chosen::Flag => format!("NARs compressed with {c} (--compression)"),
        }
    }
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
    /// Paths whose NAR and narinfo were uploaded by this push.
    pub uploaded: u64,
    /// NARs that were already there (same FileHash).
    pub nars_reused: u64,
    /// Uncompressed NAR bytes uploaded.
    pub nar_bytes: u64,
    /// Compressed bytes uploaded.
    pub file_bytes: u64,
    /// Whether `nix-cache-info` was written.
    pub wrote_cache_info: bool,
    /// The NAR compression (as Nix names it).
    pub compression: String,
    /// `.ls` listings written.
    pub listings: u64,
    /// `debuginfo/` links written (existing ones are left as they are).
    pub debuginfo_links: u64,
    /// The upstreams asked (none: the push did not ask any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<String>,
    /// What the upstreams answered for the paths the cache lacked: `served` of them were
    /// skipped (not uploaded), the others were pushed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<ServedTotals>,
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
    /// The NAR's listing, when the push writes `.ls` files or debuginfo links.
    listing: Option<serde_json::Value>,
}

/// How a NAR is packed.
#[derive(Clone, Copy)]
struct Codec {
    c: Compression,
    level: Option<i32>,
    /// Worker threads of a streaming encoder (0: this thread).
    threads: u32,
    /// Parallel compression ([`compression::encoder_parallel`]).
    parallel: bool,
    /// Build the NAR's listing too.
    listing: bool,
}

/// Writes everything to both `a` and `b`.
struct Tee<A, B>(A, B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// Dumps `path` as a NAR into `out` while another thread builds its listing from the same
/// bytes (through a pipe). A listing error (a name that is not UTF-8) wins over the broken
/// pipe it causes in the dump.
fn dump_with_listing<W: Write>(
    path: &Path,
    out: W,
) -> Result<(crate::nar::NarSummary, serde_json::Value), JobError> {
    let (reader, writer) = std::io::pipe()
        .map_err(|e| JobError::Local(format!("cannot make a pipe for the NAR listing: {e}")))?;
    std::thread::scope(|s| {
        let lister = s
            .spawn(move || crate::nar::listing(std::io::BufReader::with_capacity(1 << 16, reader)));
        let mut tee = Tee(out, writer);
        let dumped = crate::nar::writer::dump_path(path, &mut tee);
        drop(tee);
        let listed = lister.join().map_err(|_| {
            JobError::Failed(format!("listing {}: the thread panicked", path.display()))
        })?;
        match (dumped, listed) {
            (Ok(summary), Ok((ls, _))) => Ok((summary, ls)),
            (_, Err(e)) => Err(JobError::Invalid(format!(
                "{}: cannot write its .ls listing (write-nar-listing / index-debug-info): {e}",
                path.display()
            ))),
            (Err(e), _) => Err(JobError::Local(e.to_string())),
        }
    })
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

/// Dump `path` as a NAR and compress it into a temp file in `dir`, hashing both (and
/// listing it, when `codec.listing`). `size_hint` is the NAR size the local database records.
fn pack(
    path: &Path,
    size_hint: u64,
    codec: Codec,
    dir: &Path,
    buffers: &Buffers,
) -> Result<Packed, JobError> {
    let Codec {
        c,
        level,
        threads,
        parallel,
        ..
    } = codec;
    // Named like the store's own temp files, so a crash leaves recognisable litter.
    let tmp = TempFile(dir.join(format!(
        ".narscope-push-{}.tmp.{}.0",
        crate::storage::random_hex(),
        std::process::id()
    )));
    let out = std::fs::File::create(&tmp.0)
        .map_err(|e| JobError::Local(format!("cannot create {}: {e}", tmp.0.display())))?;
    let hw = HashWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, out),
        hasher: Sha256::new(),
        count: 0,
    };
    let (summary, listing, mut hw) =
        if c == Compression::Zstd && !parallel && size_hint <= WHOLE_NAR_MAX {
            // Small enough to hold: dump, then compress it in one pass on this thread.
            let (mut nar, mut packed) = buffers.take();
            nar.clear();
            nar.reserve(size_hint as usize);
            let mut capped = Capped(nar, size_hint);
            let dumped = crate::nar::writer::dump_path(path, &mut capped)
                .map_err(|e| JobError::Local(e.to_string()));
            let nar = capped.0;
            let result = dumped.and_then(|summary| {
                let listing = if codec.listing {
                    let (ls, _) = crate::nar::listing(&nar[..]).map_err(|e| {
                        JobError::Invalid(format!(
                            "{}: cannot write its .ls listing (write-nar-listing / \
                             index-debug-info): {e}",
                            path.display()
                        ))
                    })?;
                    Some(ls)
                } else {
                    None
                };
                compression::compress_all(c, level, &nar, &mut packed)
                    .map_err(|e| JobError::Local(format!("compressing {}: {e}", path.display())))?;
                let mut hw = hw;
                hw.write_all(&packed)
                    .map_err(|e| JobError::Local(format!("writing {}: {e}", tmp.0.display())))?;
                Ok((summary, listing, hw))
            });
            buffers.give((nar, packed));
            result?
        } else {
            // This thread reads the tree and hashes the NAR; with `threads` > 0 (or in
            // parallel) the codec compresses on its own worker threads meanwhile.
            let mut enc = if parallel {
                compression::encoder_parallel(c, level, cores() as u32, hw)
            } else {
                compression::encoder_threads(c, level, threads, hw)
            }
            .map_err(|e| JobError::Local(e.to_string()))?;
            let (summary, listing) = if codec.listing {
                let (summary, ls) = dump_with_listing(path, &mut enc)?;
                (summary, Some(ls))
            } else {
                let summary = crate::nar::writer::dump_path(path, &mut enc)
                    .map_err(|e| JobError::Local(e.to_string()))?;
                (summary, None)
            };
            let hw = enc
                .finish()
                .map_err(|e| JobError::Local(format!("compressing {}: {e}", path.display())))?;
            (summary, listing, hw)
        };
    hw.flush()
        .map_err(|e| JobError::Local(format!("writing {}: {e}", tmp.0.display())))?;
    Ok(Packed {
        nar_hash: summary.nar_hash,
        nar_size: summary.nar_size,
        file_hash: hw.hasher.finalize().into(),
        file_size: hw.count,
        file: tmp,
        listing,
    })
}

/// The `debuginfo/` links Nix 2.8 writes for a NAR with this `listing` (Nix's
/// `index-debug-info`): for every regular file `lib/debug/.build-id/<2 hex>/<38 hex>.debug`
/// (each level a real directory, no symlink followed), the key `debuginfo/<2 hex><38
/// hex>.debug` and the member path `lib/debug/.build-id/<2 hex>/<38 hex>.debug`.
fn debug_links(listing: &serde_json::Value) -> Vec<(String, String)> {
    use serde_json::Value;
    fn is(node: &Value, t: &str) -> bool {
        node.get("type").is_some_and(|v| v == t)
    }
    /// The child `name` of the directory `node`, when it is a directory itself.
    fn subdir<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
        let child = node.get("entries")?.get(name)?;
        is(child, "directory").then_some(child)
    }
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let root = &listing["root"];
    if !is(root, "directory") {
        return Vec::new();
    }
    let Some(build_ids) = subdir(root, "lib")
        .and_then(|n| subdir(n, "debug"))
        .and_then(|n| subdir(n, ".build-id"))
    else {
        return Vec::new();
    };
    let Some(ids) = build_ids.get("entries").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (s1, sub) in ids {
        if s1.len() != 2 || !hex(s1) || !is(sub, "directory") {
            continue;
        }
        let Some(files) = sub.get("entries").and_then(Value::as_object) else {
            continue;
        };
        for (s2, f) in files {
            let ok = s2
                .strip_suffix(".debug")
                .is_some_and(|h| h.len() == 38 && hex(h));
            if ok && is(f, "regular") {
                out.push((
                    format!("debuginfo/{s1}{s2}"),
                    format!("lib/debug/.build-id/{s1}/{s2}"),
                ));
            }
        }
    }
    out
}

/// A debuginfo link's JSON, as Nix 2.8 writes it (nlohmann's `dump()`: keys sorted,
/// compact). Both strings hold only characters JSON leaves as they are: a NAR URL and a
/// checked member path.
fn debug_link_json(nar_url: &str, member: &str) -> String {
    format!(r#"{{"archive":"../{nar_url}","member":"{member}"}}"#)
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
    let mut out = super::reference_levels(refs);
    for level in &mut out {
        level.sort_by_key(|&i| (std::cmp::Reverse(paths[i].nar_size), i));
    }
    out
}

/// The narinfo Nix would write for `lp` stored as `url`, with its local signatures and one
/// by each of `keys`.
pub fn narinfo_for(
    lp: &LocalPath,
    url: &str,
    c: Compression,
    file_hash: Hash,
    file_size: u64,
    keys: &[Arc<SecretKey>],
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
    for k in keys {
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
) -> Result<PushSummary, JobError> {
    if !opts.compression.can_write() {
        return Err(JobError::Refused(format!(
            "cannot write {} NARs",
            opts.compression.name()
        )));
    }
    let p = job.progress.clone();
    let mut summary = PushSummary {
        closure: closure.len() as u64,
        compression: opts.compression.name().to_string(),
        ..PushSummary::default()
    };
    let store = cache.store().clone();

    p.set_current("checking nix-cache-info");
    match cache.cache_info().await? {
        Some(ci) if !ci.is_nix_store() => {
            return Err(JobError::Refused(format!(
                "{}: nix-cache-info is for another store directory; not pushing /nix/store paths",
                store.describe()
            )));
        }
        Some(_) => {}
        None => {
            let _ = store.ensure_container().await;
            cache.write_cache_info(&opts.cache_info).await?;
            summary.wrote_cache_info = true;
        }
    }

    // Registered before looking at what the cache has: a deletion that starts later waits
    // for this push to pause, and one that runs now makes it wait (see crate::lease).
    p.set_current("registering with the cache (deletions wait for pushes)");
    let reg = Arc::new(
        PushRegistration::register(store.clone())
            .await
            .map_err(JobError::from)?,
    );
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
) -> Result<PushSummary, JobError> {
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
        .collect::<Result<_, _>>()?;
    let todo: Vec<LocalPath> = closure
        .into_iter()
        .zip(&present)
        .filter(|(_, p)| !**p)
        .map(|(l, _)| l)
        .collect();
    summary.present = present.iter().filter(|p| **p).count() as u64;
    let (todo, served_upstream) = skip_served(todo, opts, &p, &mut summary).await;
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
    let served_upstream = Arc::new(served_upstream);
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
            let cache = cache.clone();
            let opts = opts.clone();
            let dir = dir.clone();
            let p = p.clone();
            let gate = gate.clone();
            let packing = Packing {
                permits: packers.clone(),
                buffers: buffers.clone(),
            };
            let reg = reg.clone();
            let served_upstream = served_upstream.clone();
            async move {
                let lp = &todo[i];
                p.set_current(lp.path.to_absolute());
                let r = match gate.failed_reference(i) {
                    Some(why) => Err(JobError::Failed(why)),
                    None => {
                        let relied = Relied {
                            reg: &reg,
                            since: checked_in,
                            if_none_match: inm,
                            served_upstream: &served_upstream,
                        };
                        push_one(&cache, lp, &opts, &dir, packing, gate.wait(i), relied).await
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
                summary.listings += u64::from(one.listing);
                summary.debuginfo_links += one.debuginfo_links;
            }
            Err(e) => {
                failed += 1;
                p.error(e.to_string());
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
        return Err(JobError::Failed(format!(
            "{failed} path(s) failed (the paths that reference a failed one were not uploaded)"
        )));
    }
    p.set_current(String::new());
    Ok(summary)
}

/// Asks the upstreams (if any) about the paths the cache lacks (`todo`): those served with
/// a trusted signature are taken out (and returned as the second value: references that need
/// not be pushed), the others stay to be pushed, a narinfo that does not verify or an
/// upstream that cannot be asked included (counted in `summary.upstream`, with examples).
async fn skip_served(
    todo: Vec<LocalPath>,
    opts: &PushOptions,
    p: &super::JobProgress,
    summary: &mut PushSummary,
) -> (Vec<LocalPath>, HashSet<StorePath>) {
    let ups = &opts.upstreams;
    if ups.is_empty() {
        return (todo, HashSet::new());
    }
    summary.upstreams = ups.describe_all();
    let mut totals = ServedTotals::default();
    let mut served = HashSet::new();
    if todo.is_empty() {
        summary.upstream = Some(totals);
        return (todo, served);
    }
    p.set_current(format!(
        "asking {} upstream(s) about {} path(s)",
        ups.len(),
        todo.len()
    ));
    let paths: Vec<StorePath> = todo.iter().map(|l| l.path.clone()).collect();
    let answers = {
        use futures::FutureExt;
        ups.check_all(&paths, opts.upstream_concurrency, &|_, _| {})
            .boxed()
            .await
    };
    let mut keep = Vec::with_capacity(todo.len());
    for (lp, answer) in todo.into_iter().zip(answers) {
        let file = match &answer {
            Served::Trusted { file_size, .. } => file_size.unwrap_or(0),
            _ => 0,
        };
        totals.add(&lp.path, &answer, lp.nar_size, file);
        match answer {
            Served::Trusted { .. } => {
                served.insert(lp.path);
            }
            Served::Error(e) => {
                tracing::warn!(
                    "{}: pushed, because the upstream could not be asked: {e}",
                    lp.path.to_absolute()
                );
                keep.push(lp);
            }
            _ => keep.push(lp),
        }
    }
    summary.upstream = Some(totals);
    (keep, served)
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
    /// Paths an upstream serves (skipped by this push): references that need not be here.
    served_upstream: &'a HashSet<StorePath>,
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
) -> Result<bool, JobError> {
    if meta.size != packed.file_size {
        return Ok(false);
    }
    if store.supports_blocking_get() {
        let Some(mut r) = crate::storage::blocking_reader(store.as_ref(), url).await? else {
            return Ok(false);
        };
        let want = packed.file_hash;
        let origin = url.to_string();
        return tokio::task::spawn_blocking(move || -> Result<bool, JobError> {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = std::io::Read::read(&mut r, &mut buf)
                    .map_err(|e| JobError::Local(format!("reading `{origin}`: {e}")))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(<[u8; 32]>::from(h.finalize()) == want)
        })
        .await
        .map_err(|e| JobError::Failed(e.to_string()))?;
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
    .map_err(|e| JobError::Failed(e.to_string()))?
    .map_err(|e| JobError::Local(format!("hashing the packed NAR: {e}")))?;
    Ok(md5 == etag)
}

async fn upload_nar(cache: &Cache, url: &str, file: &Path) -> Result<(), JobError> {
    cache
        .store()
        .put_file(
            url,
            file,
            &cache.put_options(NAR_CONTENT_TYPE, PutCondition::None),
        )
        .await?;
    Ok(())
}

/// Content type of NAR objects, as Nix uploads them.
const NAR_CONTENT_TYPE: &str = "application/x-nix-nar";

/// What a path writes besides its NAR and narinfo: its `.ls` listing and debuginfo links.
struct Extras {
    /// The `.ls` key and text.
    listing: Option<(String, String)>,
    /// `debuginfo/` keys and their JSON.
    debug_links: Vec<(String, String)>,
}

impl Extras {
    fn of(
        lp: &LocalPath,
        opts: &PushOptions,
        listing: Option<&serde_json::Value>,
        url: &str,
    ) -> Extras {
        let Some(ls) = listing else {
            return Extras {
                listing: None,
                debug_links: Vec::new(),
            };
        };
        Extras {
            listing: opts.write_listing.then(|| {
                (
                    format!("{}.ls", lp.path.hash_part()),
                    crate::nar::listing_to_nix_json(ls),
                )
            }),
            debug_links: if opts.index_debug_info {
                debug_links(ls)
                    .into_iter()
                    .map(|(key, member)| (key, debug_link_json(url, &member)))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Writes them, in Nix's order (the listing, then the links); a link that exists is
    /// left as it is (never overwritten, as Nix does). With `only_missing`, a listing that
    /// exists is left too. Returns whether the listing was written and how many links.
    async fn write(
        &self,
        cache: &Cache,
        if_none_match: bool,
        only_missing: bool,
    ) -> Result<(bool, u64), JobError> {
        let store = cache.store();
        let mut wrote_listing = false;
        if let Some((key, text)) = &self.listing
            && !(only_missing && store.head(key).await?.is_some())
        {
            cache
                .put_object(
                    key,
                    text.clone().into_bytes().into(),
                    "application/json",
                    PutCondition::None,
                )
                .await?;
            wrote_listing = true;
        }
        let mut links = 0;
        for (key, json) in &self.debug_links {
            let condition = if if_none_match {
                PutCondition::IfNoneMatch
            } else if store.head(key).await?.is_some() {
                continue;
            } else {
                PutCondition::None
            };
            match cache
                .put_object(
                    key,
                    json.clone().into_bytes().into(),
                    "application/json",
                    condition,
                )
                .await
            {
                Ok(_) => links += 1,
                Err(e) if e.is_precondition_failed() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((wrote_listing, links))
    }
}

/// After a pause for a deletion: what this narinfo relies on is checked again, under the
/// permit. A missing NAR is uploaded again from the packed file, a missing listing or
/// debuginfo link written again; a missing reference fails the path (nothing is written
/// for it; a new push uploads the reference).
async fn recheck(
    cache: &Cache,
    lp: &LocalPath,
    url: &str,
    packed: &Packed,
    extras: &Extras,
    relied: &Relied<'_>,
) -> Result<(), JobError> {
    let store = cache.store();
    if store.head(url).await?.is_none() {
        if !packed.file.0.exists() {
            return Err(JobError::Failed(format!(
                "{}: not uploaded, because its NAR `{url}` was deleted while this push was \
                 paused for a deletion; run the push again",
                lp.path.to_absolute()
            )));
        }
        upload_nar(cache, url, &packed.file.0).await?;
    }
    extras.write(cache, relied.if_none_match, true).await?;
    for r in lp
        .references
        .iter()
        .filter(|r| **r != lp.path && !relied.served_upstream.contains(*r))
    {
        if store.head(&r.narinfo_key()).await?.is_none() {
            return Err(JobError::Failed(format!(
                "{}: not uploaded, because its reference {} was deleted while this push was \
                 paused for a deletion; run the push again (it uploads the reference)",
                lp.path.to_absolute(),
                r.to_absolute()
            )));
        }
    }
    Ok(())
}

struct OneResult {
    uploaded: bool,
    nar_reused: bool,
    nar_bytes: u64,
    file_bytes: u64,
    /// Whether a `.ls` listing was written.
    listing: bool,
    /// debuginfo links written.
    debuginfo_links: u64,
}

async fn push_one(
    cache: &Arc<Cache>,
    lp: &LocalPath,
    opts: &PushOptions,
    dir: &Path,
    packing: Packing,
    references_up: impl std::future::Future<Output = Result<(), String>>,
    relied: Relied<'_>,
) -> Result<OneResult, JobError> {
    let store = cache.store();
    let path = PathBuf::from(lp.path.to_absolute());
    let d = dir.to_path_buf();
    let c = opts.compression;
    let src = path.clone();
    let size = lp.nar_size;
    let codec = Codec {
        c,
        level: opts.level,
        // When `pack` streams, big NARs are compressed on every core, small ones on this
        // thread (several paths are packed at once anyway).
        threads: if lp.nar_size >= 8 << 20 {
            cores() as u32
        } else {
            0
        },
        parallel: opts.parallel,
        listing: opts.write_listing || opts.index_debug_info,
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
        .map_err(|e| JobError::Failed(e.to_string()))?;
    let buffers = packing.buffers;
    let packed = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        pack(&src, size, codec, &d, &buffers)
    })
    .await
    .map_err(|e| JobError::Failed(format!("packing {}: {e}", path.display())))??;
    let nar_hash = Hash::sha256(packed.nar_hash);
    if nar_hash != lp.nar_hash || packed.nar_size != lp.nar_size {
        return Err(JobError::Invalid(format!(
            "{}: the store contents (NarHash {}, NarSize {}) differ from what the Nix database \
             records (NarHash {}, NarSize {}); run `nix-store --verify --check-contents`",
            path.display(),
            nar_hash,
            packed.nar_size,
            lp.nar_hash,
            lp.nar_size
        )));
    }
    let file_hash = Hash::sha256(packed.file_hash);
    let url = format!("nar/{}.nar{}", file_hash.nix32_digest(), c.extension());
    let info = narinfo_for(lp, &url, c, file_hash, packed.file_size, &opts.keys);
    if let Some(k) = opts.keys.iter().find(|k| !super::sign::signed_by(&info, k)) {
        return Err(JobError::Refused(format!(
            "{}: refusing to upload a narinfo without a valid signature by {}",
            path.display(),
            k.name()
        )));
    }
    let extras = Extras::of(lp, opts, packed.listing.as_ref(), &url);
    let nar_reused = match store.head(&url).await? {
        Some(meta) => same_nar(store, &url, &meta, &packed).await?,
        None => false,
    };
    if !nar_reused {
        // A local cache takes the temp file by rename (then `recheck` cannot upload it again).
        store
            .put_owned_file(
                &url,
                &packed.file.0,
                &cache.put_options(NAR_CONTENT_TYPE, PutCondition::None),
            )
            .await?;
    }
    // The listing and debuginfo links go up before the narinfo (Nix's order).
    let (listing, debuginfo_links) = extras.write(cache, relied.if_none_match, false).await?;
    // Nix's order: a narinfo goes up after those of its references.
    references_up.await.map_err(JobError::Failed)?;
    // Narinfos go up only under the registration's permit; if the push paused for a deletion
    // since its checks, what it relies on is checked again first.
    let permit = relied.reg.permit().await;
    if permit.epoch != relied.since {
        recheck(cache, lp, &url, &packed, &extras, &relied).await?;
    }
    drop(packed.file);
    let condition = if relied.if_none_match {
        PutCondition::IfNoneMatch
    } else {
        PutCondition::None
    };
    // As the URL says: narinfo-compression, storage-class.
    let written = cache
        .put_object(
            &lp.path.narinfo_key(),
            info.to_text().into_bytes().into(),
            NARINFO_CONTENT_TYPE,
            condition,
        )
        .await;
    match written {
        Ok(_) => Ok(OneResult {
            uploaded: true,
            nar_reused,
            nar_bytes: lp.nar_size,
            file_bytes: packed.file_size,
            listing,
            debuginfo_links,
        }),
        // Someone pushed the same path meanwhile: theirs stands.
        Err(e) if e.is_precondition_failed() => Ok(OneResult {
            uploaded: false,
            nar_reused,
            nar_bytes: 0,
            file_bytes: 0,
            listing,
            debuginfo_links,
        }),
        Err(e) => Err(e.into()),
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

    fn params(q: &str) -> StoreParams {
        let pairs = url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        StoreParams::parse(pairs, crate::storage::params::Scheme::File).unwrap()
    }

    fn resolve(q: &str, flags: &PushFlags) -> Result<PushOptions, String> {
        PushOptions::resolve(&params(q), flags).map_err(|e| e.to_string())
    }

    #[test]
    fn push_settings_merge_the_url_and_the_flags() {
        let none = PushFlags::default();
        // Nothing said: zstd, narscope's default, and the note says Nix's is xz.
        let o = resolve("", &none).unwrap();
        assert_eq!(
            (o.compression, o.compression_from),
            (Compression::Zstd, Chosen::Default)
        );
        assert!(
            o.compression_note().contains("Nix's default is xz"),
            "{}",
            o.compression_note()
        );
        assert!(o.keys.is_empty() && !o.parallel && !o.write_listing && !o.index_debug_info);
        assert_eq!(o.cache_info, CacheInfo::new());
        // The URL says.
        let o = resolve(
            "compression=xz&compression-level=7&parallel-compression=1&write-nar-listing=1\
             &index-debug-info=1&priority=30&want-mass-query=1",
            &none,
        )
        .unwrap();
        assert_eq!(
            (o.compression, o.compression_from, o.level),
            (Compression::Xz, Chosen::Url, Some(7))
        );
        assert!(o.parallel && o.write_listing && o.index_debug_info);
        assert_eq!(
            (o.cache_info.priority, o.cache_info.want_mass_query),
            (Some(30), Some(true))
        );
        assert!(
            o.compression_note()
                .contains("compression= in the cache URL")
        );
        // A flag alone, or agreeing with the URL.
        let flag = |c, level| PushFlags {
            compression: Some(c),
            level,
            ..PushFlags::default()
        };
        let o = resolve("", &flag(Compression::Br, Some(5))).unwrap();
        assert_eq!(
            (o.compression, o.compression_from, o.level),
            (Compression::Br, Chosen::Flag, Some(5))
        );
        assert!(
            resolve(
                "compression=xz&compression-level=3",
                &flag(Compression::Xz, Some(3))
            )
            .is_ok()
        );
        // Contradictions name both sides.
        let e = resolve("compression=xz", &flag(Compression::Zstd, None))
            .err()
            .unwrap();
        assert!(
            e.contains("--compression zstd") && e.contains("compression=xz"),
            "{e}"
        );
        let e = resolve("compression-level=3", &flag(Compression::Zstd, Some(9)))
            .err()
            .unwrap();
        assert!(
            e.contains("--level 9") && e.contains("compression-level=3"),
            "{e}"
        );
        // What cannot be honoured: a level out of range for the codec chosen by the flag,
        // parallel compression of a codec that has none, a level with no compression.
        let e = resolve("compression-level=12", &flag(Compression::Gzip, None))
            .err()
            .unwrap();
        assert!(e.contains("invalid gzip compression level 12"), "{e}");
        let e = resolve("parallel-compression=true", &flag(Compression::Bzip2, None))
            .err()
            .unwrap();
        assert!(e.contains("xz and zstd only"), "{e}");
        let e = resolve("", &flag(Compression::None, Some(3)))
            .err()
            .unwrap();
        assert!(e.contains("compression none"), "{e}");
        // nix-cache-info fields: flags merge with the URL, contradictions are errors.
        let p = params("priority=30&want-mass-query=false");
        assert_eq!(
            new_cache_info(&p, Some(30), None).unwrap().priority,
            Some(30)
        );
        let e = new_cache_info(&p, Some(40), None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--priority 40") && e.contains("priority=30"),
            "{e}"
        );
        let e = new_cache_info(&p, None, Some(true))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--want-mass-query true") && e.contains("want-mass-query=false"),
            "{e}"
        );
        let e = new_cache_info(&params(""), Some(1 << 40), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn every_key_file_is_checked_and_named_with_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, seed: u8| {
            let k = SecretKey::from_seed(name, &[seed; 32]).unwrap();
            let f = dir.path().join(format!("{name}.sec"));
            std::fs::write(&f, k.to_file_text()).unwrap();
            (f, k)
        };
        let (a, ka) = write("a-1", 1);
        let (b, kb) = write("b-1", 2);
        let (c, kc) = write("c-1", 3);
        let q = format!(
            "secret-key={}&secret-keys={},{}",
            a.display(),
            b.display(),
            a.display()
        );
        let flags = PushFlags {
            key_files: vec![(c.clone(), "--key-file".into())],
            ..PushFlags::default()
        };
        let o = resolve(&q, &flags).unwrap();
        // a is named twice and signs once.
        let names: Vec<&str> = o.keys.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["a-1", "b-1", "c-1"]);
        let lpath = lp("signed", &[]);
        let info = narinfo_for(
            &lpath,
            "nar/x.nar.zst",
            Compression::Zstd,
            Hash::sha256_of(b"f"),
            1,
            &o.keys,
        );
        for k in [&ka, &kb, &kc] {
            assert!(super::super::sign::signed_by(&info, k), "{}", k.name());
        }
        // Unreadable and malformed files: the file and the parameter are named, the key never.
        let missing = dir.path().join("missing.sec");
        let bad = dir.path().join("bad.sec");
        let text = kb.to_file_text();
        std::fs::write(&bad, format!("{}x", &text[..text.len() - 4])).unwrap();
        for (q, flags, file, source) in [
            (
                format!("secret-key={}", missing.display()),
                PushFlags::default(),
                &missing,
                "secret-key= in the cache URL",
            ),
            (
                format!("secret-keys={},{}", a.display(), bad.display()),
                PushFlags::default(),
                &bad,
                "secret-keys= in the cache URL",
            ),
            (
                String::new(),
                PushFlags {
                    key_files: vec![(bad.clone(), "--key-file".into())],
                    ..PushFlags::default()
                },
                &bad,
                "--key-file",
            ),
        ] {
            let e = resolve(&q, &flags).err().unwrap().to_string();
            assert!(
                e.contains(&file.display().to_string()) && e.contains(source),
                "{e}"
            );
            assert!(!e.contains(&text[5..]), "{e}");
        }
    }

    #[test]
    fn debug_links_are_what_nix_indexes() {
        use crate::nar::testutil::{dir, link, reg};
        let id = "0123456789abcdef0123456789abcdef012345";
        let f = format!("{id}.debug");
        let node = dir(vec![(
            b"lib",
            dir(vec![(
                b"debug",
                dir(vec![(
                    b".build-id",
                    dir(vec![
                        (
                            b"ab",
                            dir(vec![
                                (f.as_bytes(), reg(b"elf")),
                                (b"short.debug", reg(b"")),
                                (b"0123456789abcdef0123456789abcdef01234X.debug", reg(b"")),
                            ]),
                        ),
                        (b"cd", dir(vec![(f.as_bytes(), link(b"elsewhere"))])),
                        (b"AB", dir(vec![(f.as_bytes(), reg(b""))])),
                        (b"abc", dir(vec![(f.as_bytes(), reg(b""))])),
                        (b"ef", link(b"ab")),
                    ]),
                )]),
            )]),
        )]);
        let (ls, _) = crate::nar::listing(&crate::nar::encode_node(&node)[..]).unwrap();
        let links = debug_links(&ls);
        assert_eq!(
            links,
            vec![(
                format!("debuginfo/ab{id}.debug"),
                format!("lib/debug/.build-id/ab/{id}.debug")
            )]
        );
        assert_eq!(
            debug_link_json("nar/x.nar.xz", &links[0].1),
            format!(
                r#"{{"archive":"../nar/x.nar.xz","member":"lib/debug/.build-id/ab/{id}.debug"}}"#
            )
        );
        // `lib` as a symlink, or a file at the root: nothing.
        let (ls, _) =
            crate::nar::listing(&crate::nar::encode_node(&dir(vec![(b"lib", link(b"x"))]))[..])
                .unwrap();
        assert!(debug_links(&ls).is_empty());
        let (ls, _) = crate::nar::listing(&crate::nar::encode_node(&reg(b"x"))[..]).unwrap();
        assert!(debug_links(&ls).is_empty());
    }

    #[test]
    fn packs_a_tree_and_its_hashes_match_an_independent_dump() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        crate::nar::testutil::materialize(&crate::nar::testutil::tree(), &root);
        let mut plain = Vec::new();
        let want = crate::nar::writer::dump_path(&root, &mut plain).unwrap();
        let size = want.nar_size;
        let (want_listing, _) = crate::nar::listing(&plain[..]).unwrap();
        let bufs = Buffers::default();
        // (size hint, workers, parallel): in memory, then streamed on this thread, one and two
        // workers, and in parallel pieces.
        let ways = [
            (size, 0, false),
            (0, 0, false),
            (0, 1, false),
            (0, 2, false),
            (0, 2, true),
        ];
        for (i, (c, (hint, threads, parallel))) in [
            Compression::Zstd,
            Compression::Xz,
            Compression::None,
            Compression::Gzip,
        ]
        .into_iter()
        .flat_map(|c| ways.iter().map(move |w| (c, *w)))
        .filter(|(c, w)| !w.2 || matches!(c, Compression::Xz | Compression::Zstd))
        .enumerate()
        {
            // A hint of 0 is below WHOLE_NAR_MAX too: stream by giving a huge one instead.
            let hint = if hint == 0 { WHOLE_NAR_MAX + 1 } else { hint };
            let codec = Codec {
                c,
                level: None,
                threads,
                parallel,
                // Every other way builds the listing too.
                listing: i % 2 == 0,
            };
            let packed = pack(&root, hint, codec, dir.path(), &bufs).unwrap();
            assert_eq!(packed.nar_hash, want.nar_hash, "{c:?}");
            assert_eq!(
                packed.listing.as_ref(),
                codec.listing.then_some(&want_listing),
                "{c:?} {hint} {threads} {parallel}"
            );
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
        let codec = Codec {
            c: Compression::Zstd,
            level: None,
            threads: 0,
            parallel: false,
            listing: false,
        };
        let e = match pack(&root, size - 1, codec, dir.path(), &bufs) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a NAR over its recorded size was packed"),
        };
        assert!(e.contains("larger than the"), "{e}");
    }
}
