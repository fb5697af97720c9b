//! Auditing a cache: one verdict per path, following Nix's trust rules, optionally with the
//! NAR contents downloaded and hashed (`verify --contents`).
//!
//! The pipeline streams: listing pages feed bounded-concurrency narinfo fetches, which feed
//! signature checks batched onto the blocking pool (both cores), so a large remote cache is
//! bound by bandwidth rather than round trips, and memory holds one small report per path.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{Stream, StreamExt, stream};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cache::{Cache, CacheError, Fetched, nar_key, narinfo_key_in};
use crate::compression::{self, Compression};
use crate::nar;
use crate::nix::store_path::{hash_part_from_narinfo_key, narinfo_key_problem};
use crate::nix::{
    HashAlgo, NarInfo, PathVerdict, SigOutcome, TrustedKeys, Verdict, check_path, check_paths,
};
use crate::storage::ObjectMeta;
use crate::storage::StoreError;

/// The verdict for one path, as `narscope verify` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// At least one signature verifies under a trusted key.
    Trusted,
    /// No trusted signature, but the store path recomputes from its CA field.
    ContentAddressed,
    /// Signatures present, none valid under a trusted key.
    Untrusted,
    /// A signature under a trusted key's name does not verify.
    Invalid,
    /// No signatures at all.
    Unsigned,
    /// The NAR is missing or does not match the narinfo (`--contents`).
    Corrupt,
    /// The narinfo could not be read, does not belong to its key, or names a path outside
    /// the cache's store directory.
    Error,
}

impl Status {
    /// Every status, in report order.
    pub const ALL: [Status; 7] = [
        Status::Trusted,
        Status::ContentAddressed,
        Status::Untrusted,
        Status::Invalid,
        Status::Unsigned,
        Status::Corrupt,
        Status::Error,
    ];

    /// The word used in output.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Trusted => "trusted",
            Status::ContentAddressed => "content-addressed",
            Status::Untrusted => "untrusted",
            Status::Invalid => "invalid",
            Status::Unsigned => "unsigned",
            Status::Corrupt => "corrupt",
            Status::Error => "error",
        }
    }

    /// The bits this status contributes to the exit code, as `nix store verify`:
    /// 1 corrupt, 2 not trusted, 4 other error.
    pub fn exit_bits(&self) -> i32 {
        match self {
            Status::Trusted | Status::ContentAddressed => 0,
            Status::Untrusted | Status::Invalid | Status::Unsigned => 2,
            Status::Corrupt => 1,
            Status::Error => 4,
        }
    }

    fn from_verdict(v: Verdict) -> Status {
        match v {
            Verdict::Trusted => Status::Trusted,
            Verdict::ContentAddressed => Status::ContentAddressed,
            Verdict::Untrusted => Status::Untrusted,
            Verdict::Invalid => Status::Invalid,
            Verdict::Unsigned => Status::Unsigned,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One signature's outcome in a report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigReport {
    /// The key name before the first `:` (empty when the signature is malformed).
    pub key_name: String,
    /// `valid`, `valid-legacy-only`, `invalid`, `unknown-key` or `malformed`.
    pub outcome: &'static str,
    /// Details for legacy-only and malformed signatures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything `verify`, `ls` and `info` need to know about one path.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathReport {
    /// The store path (absent when the narinfo could not be read).
    pub store_path: Option<String>,
    /// The narinfo's key.
    pub key: String,
    /// The verdict under the trusted keys (or why none could be given).
    pub status: Status,
    /// Each signature's outcome.
    pub signatures: Vec<SigReport>,
    /// Why the verdict is what it is, in words.
    pub reasons: Vec<String>,
    /// The narinfo's NarSize, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nar_size: Option<u64>,
    /// FileSize (compressed size), when the narinfo gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// The Compression field as Nix reads it (missing means bzip2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// URL of the NAR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// References, as base names (`hash-name`), in narinfo order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

impl PathReport {
    fn error(key: String, reason: String) -> PathReport {
        PathReport {
            store_path: None,
            key,
            status: Status::Error,
            signatures: Vec::new(),
            reasons: vec![reason],
            nar_size: None,
            file_size: None,
            compression: None,
            url: None,
            references: Vec::new(),
        }
    }

    /// Judge one parsed narinfo found at `key`.
    pub fn judge(key: &str, info: &NarInfo, keys: &TrustedKeys) -> PathReport {
        Self::from_verdict(key, info, check_path(info, keys))
    }

    /// The report for a narinfo found at `key`, given its verdict.
    pub fn from_verdict(key: &str, info: &NarInfo, v: PathVerdict) -> PathReport {
        let mut report = PathReport {
            store_path: Some(info.absolute_path()),
            key: key.to_string(),
            status: Status::from_verdict(v.verdict),
            signatures: v
                .sigs
                .into_iter()
                .map(|s| {
                    let (outcome, detail) = match s.outcome {
                        SigOutcome::Valid => ("valid", None),
                        SigOutcome::ValidLegacyOnly(why) => ("valid-legacy-only", Some(why)),
                        SigOutcome::Invalid => ("invalid", None),
                        SigOutcome::UnknownKey => ("unknown-key", None),
                        SigOutcome::Malformed(why) => ("malformed", Some(why)),
                    };
                    SigReport {
                        key_name: s.key_name.unwrap_or_default(),
                        outcome,
                        detail,
                    }
                })
                .collect(),
            reasons: v.reasons,
            nar_size: Some(info.nar_size),
            file_size: info.file_size,
            compression: Some(info.compression_name().to_string()),
            url: Some(info.url.clone()),
            references: info.references.iter().map(|r| r.base_name()).collect(),
        };
        if hash_part_from_narinfo_key(key) != Some(info.store_path.hash_part()) {
            report.status = Status::Error;
            report.reasons.insert(
                0,
                format!(
                    "narinfo {key} holds StorePath {}, whose hash part does not match its key",
                    info.absolute_path()
                ),
            );
        }
        report
    }

    /// Make this report an [`Status::Error`] if the narinfo's `StorePath` is not in
    /// `store_dir`, the store directory of the cache it was read from: Nix refuses such a
    /// narinfo ("path … is not in the Nix store").
    pub fn check_store_dir(&mut self, info: &NarInfo, store_dir: &str) {
        if let Some(why) = store_dir_problem(info, store_dir) {
            self.status = Status::Error;
            self.reasons.insert(0, why);
        }
    }
}

/// Why `info` does not belong in a cache whose store directory is `store_dir`, if it does not.
pub fn store_dir_problem(info: &NarInfo, store_dir: &str) -> Option<String> {
    (info.store_dir() != store_dir).then(|| {
        format!(
            "StorePath {} is not in the cache's store directory {store_dir} (nix-cache-info's StoreDir); Nix refuses this narinfo",
            info.absolute_path()
        )
    })
}

/// What an audit should do.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// narinfo requests in flight.
    pub concurrency: usize,
    /// Also download and hash every NAR.
    pub contents: bool,
    /// NAR downloads in flight with `contents`.
    pub nar_concurrency: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            concurrency: crate::cache::DEFAULT_CONCURRENCY,
            contents: false,
            nar_concurrency: 8,
        }
    }
}

/// Live counters an audit updates as it goes (for progress displays).
#[derive(Debug, Default)]
pub struct AuditProgress {
    /// narinfo keys listed so far.
    pub listed: AtomicU64,
    /// narinfos fetched (or failed) so far.
    pub fetched: AtomicU64,
    /// Paths judged so far.
    pub judged: AtomicU64,
    /// Set once the listing has finished.
    pub listing_done: std::sync::atomic::AtomicBool,
}

/// A path on its way to judgement: its narinfo already fetched (remote stores), or to be read
/// by the judging thread (local stores).
enum Pending {
    Fetched(String, Box<Result<NarInfo, CacheError>>),
    Unfetched(ObjectMeta),
}

/// Read (if needed), parse and judge a chunk of paths; signatures are batch-verified.
fn judge_chunk(
    cache: &Cache,
    keys: &TrustedKeys,
    store_dir: &str,
    chunk: Vec<Pending>,
) -> Vec<(PathReport, Option<NarInfo>)> {
    let resolved: Vec<(String, Result<NarInfo, CacheError>)> = chunk
        .into_iter()
        .map(|item| match item {
            Pending::Fetched(key, res) => (key, *res),
            Pending::Unfetched(meta) => {
                let res = match cache.fetch_narinfo_blocking(&meta.key) {
                    Ok(Some((_, info))) => Ok(info),
                    Ok(None) => Err(CacheError::Missing(cache.origin(&meta.key))),
                    Err(e) => Err(e),
                };
                (meta.key, res)
            }
        })
        .collect();
    let infos: Vec<&NarInfo> = resolved
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .collect();
    let mut verdicts = check_paths(&infos, keys).into_iter();
    resolved
        .into_iter()
        .map(|(key, res)| match res {
            Ok(info) => {
                let mut report = match verdicts.next() {
                    Some(v) => PathReport::from_verdict(&key, &info, v),
                    None => PathReport::judge(&key, &info, keys),
                };
                report.check_store_dir(&info, store_dir);
                (report, Some(info))
            }
            Err(e) => (PathReport::error(key, e.to_string()), None),
        })
        .collect()
}

/// Audit every narinfo in the cache (`paths` empty) or the given store paths.
/// Reports come back in no particular order; a listing failure is an error for the whole run.
/// Paths are judged under the cache's store directory ([`Cache::store_dir`]): a narinfo for
/// a path outside it is an error, as is an argument in another store directory.
pub async fn audit(
    cache: Arc<Cache>,
    paths: &[String],
    keys: Arc<TrustedKeys>,
    opts: &AuditOptions,
    progress: Arc<AuditProgress>,
) -> Result<Vec<PathReport>, CacheError> {
    let mut out = Vec::new();
    audit_each(cache, paths, keys, opts, progress, |r| out.push(r)).await?;
    Ok(out)
}

/// [`audit`], handing each report to `sink` as soon as it is final instead of collecting them,
/// so a caller that keeps only part of each report (or only some reports) stays small.
pub async fn audit_each(
    cache: Arc<Cache>,
    paths: &[String],
    keys: Arc<TrustedKeys>,
    opts: &AuditOptions,
    progress: Arc<AuditProgress>,
    mut sink: impl FnMut(PathReport) + Send,
) -> Result<(), CacheError> {
    let mut out = Sink(&mut sink);
    let store_dir: Arc<str> = cache.store_dir().await?.into();
    // Objects named like a narinfo that name no store path: reported as errors (never
    // fetched), so a whole-cache audit does not call such a cache clean.
    let misnamed: Arc<std::sync::Mutex<Vec<PathReport>>> = Arc::default();
    let metas: std::pin::Pin<Box<dyn Stream<Item = Result<ObjectMeta, StoreError>> + Send>> =
        if paths.is_empty() {
            let p = progress.clone();
            let p2 = progress.clone();
            let misnamed = misnamed.clone();
            Box::pin(
                cache
                    .narinfo_like_key_stream(opts.concurrency)
                    .inspect(move |m| {
                        if m.is_ok() {
                            p.listed.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .filter_map(move |m| {
                        let problem = m.as_ref().ok().and_then(|m| narinfo_key_problem(&m.key));
                        let keep = match (problem, m) {
                            (Some(why), Ok(m)) => {
                                misnamed
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(PathReport::error(m.key, why));
                                None
                            }
                            (_, m) => Some(m),
                        };
                        std::future::ready(keep)
                    })
                    .chain(stream::poll_fn(move |_| {
                        p2.listing_done.store(true, Ordering::Relaxed);
                        std::task::Poll::Ready(None)
                    })),
            )
        } else {
            let mut metas = Vec::new();
            for p in paths {
                match narinfo_key_in(p, &store_dir) {
                    Ok(key) => metas.push(Ok(ObjectMeta {
                        key,
                        size: 0,
                        last_modified: None,
                        etag: None,
                    })),
                    // An argument that names no path becomes an error report of its own.
                    Err(e) => out.push(PathReport::error(p.clone(), e.to_string())),
                }
            }
            progress
                .listed
                .fetch_add(metas.len() as u64, Ordering::Relaxed);
            progress.listing_done.store(true, Ordering::Relaxed);
            Box::pin(stream::iter(metas))
        };
    // Local stores read narinfos where they are judged (no runtime hop per object); remote
    // ones fetch with `concurrency` requests in flight first.
    let local = cache.store().supports_blocking_get();
    let p3 = progress.clone();
    let items: std::pin::Pin<Box<dyn Stream<Item = Result<Pending, CacheError>> + Send>> = if local
    {
        Box::pin(metas.map(|m| m.map(Pending::Unfetched).map_err(CacheError::from)))
    } else {
        Box::pin(cache.fetch_narinfos(metas, opts.concurrency).map(
            move |f: Result<Fetched, StoreError>| {
                p3.fetched.fetch_add(1, Ordering::Relaxed);
                f.map(|f| Pending::Fetched(f.meta.key, Box::new(f.result)))
                    .map_err(CacheError::from)
            },
        ))
    };

    // Judge in batches on the blocking pool, spread over the cores by rayon.
    let judged = items
        .ready_chunks(512)
        .map(|chunk| {
            let keys = keys.clone();
            let progress = progress.clone();
            let cache = cache.clone();
            let store_dir = store_dir.clone();
            async move {
                let mut errs = Vec::new();
                let mut ok = Vec::with_capacity(chunk.len());
                for r in chunk {
                    match r {
                        Ok(item) => ok.push(item),
                        Err(e) => errs.push(e),
                    }
                }
                let reports = tokio::task::spawn_blocking(move || {
                    let out: Vec<(PathReport, Option<NarInfo>)> = ok
                        .into_par_iter()
                        .chunks(256)
                        .flat_map_iter(|chunk| judge_chunk(&cache, &keys, &store_dir, chunk))
                        .collect();
                    progress
                        .judged
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                    out
                })
                .await
                .unwrap_or_default();
                (reports, errs)
            }
        })
        .buffered(4);

    let mut to_check = Vec::new();
    let mut judged = std::pin::pin!(judged);
    while let Some((reports, errs)) = judged.next().await {
        if let Some(e) = errs.into_iter().next() {
            return Err(e);
        }
        let found = std::mem::take(&mut *misnamed.lock().unwrap_or_else(|p| p.into_inner()));
        for report in found {
            progress.judged.fetch_add(1, Ordering::Relaxed);
            out.push(report);
        }
        for (report, info) in reports {
            match (opts.contents, info) {
                (true, Some(info)) if report.status != Status::Error => {
                    to_check.push((report, info))
                }
                _ => out.push(report),
            }
        }
    }
    // Misnamed objects listed after the last judged batch (or in a cache of nothing else).
    let found = std::mem::take(&mut *misnamed.lock().unwrap_or_else(|p| p.into_inner()));
    for report in found {
        progress.judged.fetch_add(1, Ordering::Relaxed);
        out.push(report);
    }

    if opts.contents {
        let cache2 = cache.clone();
        let checked = stream::iter(to_check)
            .map(|(mut report, info)| {
                let cache = cache2.clone();
                async move {
                    match check_contents(&cache, &info).await {
                        ContentCheck::Ok => {}
                        ContentCheck::Corrupt(why) => {
                            report.status = Status::Corrupt;
                            report.reasons.insert(0, why);
                        }
                        ContentCheck::Error(why) => {
                            report.status = Status::Error;
                            report.reasons.insert(0, why);
                        }
                    }
                    report
                }
            })
            .buffer_unordered(opts.nar_concurrency.max(1));
        let mut checked = std::pin::pin!(checked);
        while let Some(report) = checked.next().await {
            out.push(report);
        }
    }
    Ok(())
}

/// A report sink with `Vec`'s `push`.
struct Sink<'a, F: FnMut(PathReport)>(&'a mut F);

impl<F: FnMut(PathReport)> Sink<'_, F> {
    fn push(&mut self, r: PathReport) {
        (self.0)(r)
    }
}

/// The outcome of downloading and hashing one NAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentCheck {
    /// FileHash, FileSize, NarHash and NarSize all match.
    Ok,
    /// The NAR is missing, undecodable or does not match the narinfo.
    Corrupt(String),
    /// The check could not be done (network, unsupported compression or URL).
    Error(String),
}

/// The first I/O error of one kind (the object's reader, or the copy being written), kept
/// so that it is not taken for a fault of the data once a decoder or the NAR parser has
/// passed it on.
#[derive(Clone, Default)]
struct Fault(Arc<std::sync::Mutex<Option<String>>>);

impl Fault {
    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|f| f.clone())
    }

    fn set(&self, e: &io::Error) {
        if let Ok(mut f) = self.0.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

/// The object's bytes as they arrive: read errors are remembered in a [`Fault`].
struct Source<R> {
    inner: R,
    fault: Fault,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| self.fault.set(e))
    }
}

/// Hashes and counts what passes through; optionally writes a copy of it to `copy`
/// (whose write errors are remembered in `copy_fault`).
struct Tee<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    copy: Option<(std::fs::File, Fault)>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = buf.get(..n).unwrap_or_default();
        self.hasher.update(data);
        self.count += n as u64;
        if let Some((f, fault)) = &mut self.copy {
            io::Write::write_all(f, data).inspect_err(|e| fault.set(e))?;
        }
        Ok(n)
    }
}

/// Most bytes a NAR object may have when its narinfo gives no `FileSize`: the NarSize plus
/// an eighth plus 1 MiB, above the worst-case growth of every codec on incompressible data
/// (bzip2, the worst, adds about 1% plus 600 bytes).
pub fn max_file_size(nar_size: u64) -> u64 {
    nar_size
        .saturating_add(nar_size / 8)
        .saturating_add(1 << 20)
}

/// Where [`read_nar`] puts the NAR it checks.
pub enum NarSink<'a> {
    /// Nowhere: only check it.
    Check,
    /// Unpack it into this path, which must not exist (see [`nar::unpack_max`]).
    Unpack(&'a std::path::Path),
}

/// What [`read_nar`] measured of a NAR object that decoded to a canonical NAR within its
/// narinfo's sizes (whether the hashes match is for the caller to compare).
#[derive(Debug, Clone)]
pub struct NarRead {
    /// Bytes of the object (what `FileSize` counts).
    pub file_size: u64,
    /// SHA-256 of the object (what `FileHash` says).
    pub file_hash: [u8; 32],
    /// Hash and size of the decoded NAR.
    pub nar: nar::NarSummary,
}

/// Why [`read_nar`] failed, kept apart so that a broken download is never called corrupt data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NarReadError {
    /// Reading the object failed (network, disk): says nothing about its data.
    Download(String),
    /// The object, or what it decompresses to, is larger than its narinfo says; reading
    /// stopped there.
    TooLarge(String),
    /// The object is not valid compressed data, or does not decode to one canonical NAR.
    Invalid(String),
    /// Writing the unpacked tree failed (local file system).
    Unpack(String),
}

impl NarReadError {
    /// The error in words, naming the object.
    pub fn message(&self) -> &str {
        match self {
            NarReadError::Download(m)
            | NarReadError::TooLarge(m)
            | NarReadError::Invalid(m)
            | NarReadError::Unpack(m) => m,
        }
    }
}

impl std::fmt::Display for NarReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Read the NAR object `reader` of `info` (the object `key` of the store described as
/// `store`, as messages name it), decompress it by `compression`, check that it is one
/// canonical NAR, and unpack it where `sink` says, with a copy of the object's bytes written
/// to `copy` if given.
///
/// The narinfo's sizes bound everything: the object is read up to its `FileSize` (or
/// [`max_file_size`] of `NarSize` when it has none) and the decoded NAR up to its `NarSize`;
/// one byte more stops the read with [`NarReadError::TooLarge`], so a decompression bomb
/// costs no more than the narinfo announced, in memory and on disk. Whatever follows the
/// NAR in the object is read too (it counts for `FileSize` and `FileHash`).
pub fn read_nar(
    reader: impl Read + Send,
    info: &NarInfo,
    store: &str,
    key: &str,
    compression: Compression,
    copy: Option<std::fs::File>,
    sink: NarSink<'_>,
) -> Result<NarRead, NarReadError> {
    let origin = format!("{store}: {key}");
    let fault = Fault::default();
    let copy_fault = Fault::default();
    let file_limit = info
        .file_size
        .unwrap_or_else(|| max_file_size(info.nar_size));
    let file = compression::Bounded::new(
        Source {
            inner: reader,
            fault: fault.clone(),
        },
        file_limit,
    );
    let file_wire = file.tripwire();
    let mut tee = Tee {
        inner: file,
        hasher: Sha256::new(),
        count: 0,
        copy: copy.map(|f| (f, copy_fault.clone())),
    };
    // The faults that are not the data's, most telling first.
    let not_the_data = || {
        if let Some(cause) = fault.get() {
            return Some(NarReadError::Download(format!(
                "{store}: download of {key} failed: {cause}"
            )));
        }
        if let Some(cause) = copy_fault.get() {
            return Some(NarReadError::Unpack(format!(
                "{origin}: cannot write a copy of it: {cause}"
            )));
        }
        if file_wire.tripped() {
            return Some(NarReadError::TooLarge(match info.file_size {
                Some(n) => format!(
                    "{origin} is larger than the {n} bytes its narinfo's FileSize says: refusing"
                ),
                None => format!(
                    "{origin} is larger than any compression of the {} bytes its narinfo's NarSize says could be: refusing",
                    info.nar_size
                ),
            }));
        }
        None
    };
    let parsed = {
        let decoded =
            compression::Bounded::new(compression::decoder(compression, &mut tee), info.nar_size);
        let nar_wire = decoded.tripwire();
        let res = match sink {
            NarSink::Check => nar::validate_max(decoded, info.nar_size),
            NarSink::Unpack(to) => nar::unpack_max(decoded, to, info.nar_size),
        };
        res.map_err(|e| (e, nar_wire.tripped()))
    };
    let summary = match parsed {
        Ok(s) => s,
        Err((e, nar_tripped)) => {
            if let Some(e) = not_the_data() {
                return Err(e);
            }
            if nar_tripped || matches!(e.kind(), nar::NarErrorKind::TooLarge(_)) {
                let n = info.nar_size;
                return Err(NarReadError::TooLarge(match compression {
                    Compression::None => format!(
                        "{origin} holds a NAR of more than the {n} bytes its narinfo's NarSize says: refusing"
                    ),
                    _ => format!(
                        "{origin} decompresses to more than the {n} bytes its narinfo's NarSize says: refusing (decompression bomb?)"
                    ),
                }));
            }
            let at = e.offset();
            return Err(match e.into_kind() {
                nar::NarErrorKind::Io(cause) => NarReadError::Invalid(format!(
                    "{origin}: not a valid {} NAR: the {} data does not decompress (after {at} bytes of NAR): {cause}",
                    compression.describe(),
                    compression.name()
                )),
                kind @ (nar::NarErrorKind::FileIo { .. }
                | nar::NarErrorKind::TargetExists(_)
                | nar::NarErrorKind::Output(_)) => {
                    NarReadError::Unpack(format!("{origin}: cannot unpack: {kind}"))
                }
                kind => NarReadError::Invalid(format!(
                    "{origin}: not a valid {} NAR: at byte {at}: {kind}",
                    compression.describe()
                )),
            });
        }
    };
    // Whatever follows the compressed stream counts too: FileSize covers the whole object.
    if let Err(e) = io::copy(&mut tee, &mut io::sink()) {
        return Err(not_the_data().unwrap_or_else(|| {
            NarReadError::Download(format!("{store}: download of {key} failed: {e}"))
        }));
    }
    Ok(NarRead {
        file_size: tee.count,
        file_hash: tee.hasher.finalize().into(),
        nar: summary,
    })
}

/// Download one NAR, decompress it by the narinfo's `Compression` field, check that it is a
/// canonical NAR, and compare FileSize, FileHash, NarSize and NarHash (see [`read_nar`]: no
/// more than the narinfo's sizes are ever read or decoded).
pub async fn check_contents(cache: &Cache, info: &NarInfo) -> ContentCheck {
    let key = match nar_key(&info.url) {
        Ok(k) => k,
        Err(e) => return ContentCheck::Error(format!("{}: {e}", info.absolute_path())),
    };
    let origin = cache.origin(&key);
    let compression = match Compression::from_narinfo_field(info.compression.as_deref()) {
        Ok(c) => c,
        Err(e) => return ContentCheck::Error(format!("{origin}: {e}")),
    };
    let reader = match crate::storage::blocking_reader(cache.store().as_ref(), &key).await {
        Ok(Some(r)) => r,
        Ok(None) => return ContentCheck::Corrupt(format!("NAR {origin} is missing")),
        Err(e) => return ContentCheck::Error(e.to_string()),
    };
    let info = info.clone();
    let store = cache.store().describe();
    let res = tokio::task::spawn_blocking(move || {
        match read_nar(
            reader,
            &info,
            &store,
            &key,
            compression,
            None,
            NarSink::Check,
        ) {
            Ok(r) => compare(&info, &origin, r.file_size, &r.file_hash, &r.nar),
            Err(e @ (NarReadError::Download(_) | NarReadError::Unpack(_))) => {
                ContentCheck::Error(e.to_string())
            }
            Err(e @ (NarReadError::TooLarge(_) | NarReadError::Invalid(_))) => {
                ContentCheck::Corrupt(e.to_string())
            }
        }
    })
    .await;
    res.unwrap_or_else(|e| ContentCheck::Error(format!("NAR check failed: {e}")))
}

fn compare(
    info: &NarInfo,
    origin: &str,
    file_size: u64,
    file_hash: &[u8; 32],
    nar: &nar::NarSummary,
) -> ContentCheck {
    let mut problems = Vec::new();
    if let Some(fs) = info.file_size
        && fs != file_size
    {
        problems.push(format!(
            "FileSize is {fs} but the object has {file_size} bytes"
        ));
    }
    if let Some(fh) = &info.file_hash
        && fh.algo() == HashAlgo::Sha256
        && fh.digest() != file_hash
    {
        {
            problems.push(format!(
                "FileHash is {fh} but the object hashes to {}",
                crate::nix::Hash::sha256(*file_hash)
            ));
        }
    }
    if info.nar_size != nar.nar_size {
        problems.push(format!(
            "NarSize is {} but the NAR has {} bytes",
            info.nar_size, nar.nar_size
        ));
    }
    if info.nar_hash.algo() != HashAlgo::Sha256 {
        return ContentCheck::Error(format!(
            "{origin}: NarHash uses {}, narscope checks only sha256",
            info.nar_hash.algo().name()
        ));
    }
    if info.nar_hash.digest() != nar.nar_hash {
        problems.push(format!(
            "NarHash is {} but the NAR hashes to {}",
            info.nar_hash,
            crate::nix::Hash::sha256(nar.nar_hash)
        ));
    }
    if problems.is_empty() {
        ContentCheck::Ok
    } else {
        ContentCheck::Corrupt(format!("{origin}: {}", problems.join("; ")))
    }
}

/// Counts per status, in report order, including zeros.
pub fn summarize(reports: &[PathReport]) -> Vec<(Status, usize)> {
    Status::ALL
        .iter()
        .map(|s| (*s, reports.iter().filter(|r| r.status == *s).count()))
        .collect()
}

/// The exit code for a set of reports: the OR of their bits.
pub fn exit_code(reports: &[PathReport]) -> i32 {
    reports.iter().fold(0, |acc, r| acc | r.status.exit_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::nar::encode_node;
    use crate::nar::testutil::{Nb, dir, reg};
    use crate::nix::{Hash, StorePath};

    const STORE: &str = "file:///c";
    const KEY: &str = "nar/x.nar.zst";
    const ORIGIN: &str = "file:///c: nar/x.nar.zst";

    fn info_for(c: Compression, nar_size: u64, file_size: Option<u64>) -> NarInfo {
        let p = StorePath::from_base_name("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-bomb").unwrap();
        let mut i = NarInfo::new(
            p,
            "nar/x.nar.zst",
            c.name(),
            Hash::sha256([7; 32]),
            nar_size,
            vec![],
        );
        i.file_size = file_size;
        i
    }

    /// `head`, `zeros` zero bytes and `tail` compressed with `c`, as concatenated streams
    /// (each 16 MiB of zeros compressed once and repeated: a bomb is quick to make).
    fn compressed(c: Compression, head: &[u8], zeros: u64, tail: &[u8]) -> Vec<u8> {
        const CHUNK: u64 = 16 << 20;
        let pack = |data: &[u8], zeros: u64| {
            let mut e = compression::encoder(c, Some(1), Vec::new()).unwrap();
            io::Write::write_all(&mut e, data).unwrap();
            io::copy(&mut io::repeat(0).take(zeros), &mut e).unwrap();
            e.finish().unwrap()
        };
        let mut out = pack(head, zeros % CHUNK);
        let chunk = pack(&[], CHUNK);
        for _ in 0..zeros / CHUNK {
            out.extend_from_slice(&chunk);
        }
        out.extend(pack(tail, 0));
        out
    }

    /// A NAR of one regular file of `size` zero bytes: (header, tail).
    fn big_file_nar(size: u64) -> (Vec<u8>, Vec<u8>) {
        let mut head = Nb::new();
        head.toks(&[b"(", b"type", b"regular", b"contents"]);
        head.raw(&size.to_le_bytes());
        let mut tail = Nb::default();
        tail.raw(&vec![0u8; crate::nar::padding_len(size)]).s(b")");
        (head.0, tail.0)
    }

    /// Counts the bytes read from the object.
    struct Counted<'a>(&'a [u8], Arc<AtomicU64>);
    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused_at_its_nar_size() {
        let (head, tail) = big_file_nar(1 << 30);
        for c in [Compression::Zstd, Compression::Xz] {
            let bomb = compressed(c, &head, 1 << 30, &tail);
            assert!(bomb.len() < 400_000, "{c}: {}", bomb.len());
            let info = info_for(c, 216, Some(bomb.len() as u64));
            let e = read_nar(&bomb[..], &info, STORE, KEY, c, None, NarSink::Check).unwrap_err();
            assert_eq!(
                e,
                NarReadError::TooLarge(format!(
                    "{ORIGIN} decompresses to more than the 216 bytes its narinfo's NarSize says: refusing (decompression bomb?)"
                ))
            );
        }
        // The same with data that does not compress: the object is not read past its first
        // megabyte, where its NarSize is passed.
        let (head, tail) = big_file_nar(24 << 20);
        let mut noise = vec![0u8; 24 << 20];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for c in [Compression::Zstd, Compression::Xz, Compression::None] {
            let mut e = compression::encoder(c, Some(0), Vec::new()).unwrap();
            for part in [&head[..], &noise, &tail] {
                io::Write::write_all(&mut e, part).unwrap();
            }
            let file = e.finish().unwrap();
            for (nar_size, file_size) in [(216, Some(file.len() as u64)), (1 << 20, None)] {
                let info = info_for(c, nar_size, file_size);
                let read = Arc::new(AtomicU64::new(0));
                let e = read_nar(
                    Counted(&file, read.clone()),
                    &info,
                    STORE,
                    KEY,
                    c,
                    None,
                    NarSink::Check,
                )
                .unwrap_err();
                assert!(matches!(e, NarReadError::TooLarge(_)), "{c}: {e}");
                let n = read.load(Ordering::Relaxed);
                assert!(n < 4 << 20, "{c}: read {n} of {} bytes", file.len());
            }
        }
    }

    #[test]
    fn unpacking_never_writes_more_than_nar_size() {
        // a and b fit in the claimed NarSize, c (64 MiB) does not.
        let small = dir(vec![(b"a", reg(&[1; 300])), (b"b", reg(&[2; 300]))]);
        let small_nar = encode_node(&small);
        let claimed = small_nar.len() as u64 + 200;
        let mut head = Nb::new();
        head.open_dir();
        head.entry(b"a", &reg(&[1; 300]));
        head.entry(b"b", &reg(&[2; 300]));
        head.entry_head(b"c");
        head.toks(&[b"(", b"type", b"regular", b"contents"]);
        head.raw(&(64u64 << 20).to_le_bytes());
        let mut tail = Nb::default();
        tail.s(b")").s(b")").s(b")");
        let bomb = compressed(Compression::Zstd, &head.0, 64 << 20, &tail.0);
        let info = info_for(Compression::Zstd, claimed, None);
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let e = read_nar(
            &bomb[..],
            &info,
            STORE,
            KEY,
            Compression::Zstd,
            None,
            NarSink::Unpack(&target),
        )
        .unwrap_err();
        assert!(matches!(e, NarReadError::TooLarge(_)), "{e}");
        let on_disk: u64 = ["a", "b", "c"]
            .iter()
            .filter_map(|f| std::fs::metadata(target.join(f)).ok())
            .map(|m| m.len())
            .sum();
        assert_eq!(
            on_disk, 600,
            "a and b were written, c was refused before it was created"
        );
        assert!(!target.join("c").exists());
        assert!(on_disk <= claimed);
    }

    #[test]
    fn an_object_larger_than_its_file_size_is_refused() {
        let nar = encode_node(&reg(b"hello\n"));
        let xz = compressed(Compression::Xz, &nar, 0, b"");
        let info = info_for(
            Compression::Xz,
            nar.len() as u64,
            Some(xz.len() as u64 - 10),
        );
        let e = read_nar(
            &xz[..],
            &info,
            STORE,
            KEY,
            Compression::Xz,
            None,
            NarSink::Check,
        )
        .unwrap_err();
        assert_eq!(
            e,
            NarReadError::TooLarge(format!(
                "{ORIGIN} is larger than the {} bytes its narinfo's FileSize says: refusing",
                xz.len() - 10
            ))
        );
        // Trailing bytes past FileSize are refused too, and counted when within it.
        let mut padded = xz.clone();
        padded.extend_from_slice(&[0; 100]);
        let info = info_for(Compression::Xz, nar.len() as u64, Some(xz.len() as u64));
        let e = read_nar(
            &padded[..],
            &info,
            STORE,
            KEY,
            Compression::Xz,
            None,
            NarSink::Check,
        );
        assert!(matches!(e, Err(NarReadError::TooLarge(_))), "{e:?}");
        let info = info_for(Compression::Xz, nar.len() as u64, None);
        let ok = read_nar(
            &padded[..],
            &info,
            STORE,
            KEY,
            Compression::Xz,
            None,
            NarSink::Check,
        )
        .unwrap();
        assert_eq!(ok.file_size, padded.len() as u64);
        assert_eq!(ok.nar.nar_size, nar.len() as u64);
        assert_eq!(ok.file_hash, <[u8; 32]>::from(Sha256::digest(&padded)));
    }

    /// Gives `data`, then fails as a broken connection does.
    struct Breaks<'a>(&'a [u8]);
    impl Read for Breaks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("connection to 127.0.0.1:9 broke"));
            }
            self.0.read(buf)
        }
    }

    #[test]
    fn a_broken_download_is_not_called_invalid_data() {
        let nar = encode_node(&reg(&[5; 100_000]));
        for c in [Compression::None, Compression::Zstd, Compression::Xz] {
            let whole = compressed(c, &nar, 0, b"");
            let info = info_for(c, nar.len() as u64, Some(whole.len() as u64));
            let half = &whole[..whole.len() / 2];
            let e = read_nar(Breaks(half), &info, STORE, KEY, c, None, NarSink::Check).unwrap_err();
            assert_eq!(
                e,
                NarReadError::Download(format!(
                    "{STORE}: download of {KEY} failed: connection to 127.0.0.1:9 broke"
                )),
                "{c}"
            );
            // Truncated data that ends cleanly is the data's fault, not the download's.
            let e = read_nar(half, &info, STORE, KEY, c, None, NarSink::Check).unwrap_err();
            assert!(matches!(e, NarReadError::Invalid(_)), "{c}: {e}");
        }
    }

    #[test]
    fn invalid_data_is_named_by_its_compression() {
        let info = info_for(Compression::None, 1000, None);
        let e = read_nar(
            &b"not a nar at all, clearly"[..],
            &info,
            STORE,
            KEY,
            Compression::None,
            None,
            NarSink::Check,
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(
            m.starts_with(&format!("{ORIGIN}: not a valid uncompressed NAR: at byte ")),
            "{m}"
        );
        assert!(!m.contains("none NAR"), "{m}");
        let info = info_for(Compression::Zstd, 1000, None);
        let e = read_nar(
            &b"not zstd at all"[..],
            &info,
            STORE,
            KEY,
            Compression::Zstd,
            None,
            NarSink::Check,
        )
        .unwrap_err();
        assert!(matches!(e, NarReadError::Invalid(_)), "{e}");
        assert!(
            e.to_string().contains(
                "not a valid zstd-compressed NAR: the zstd data does not decompress (after 0 bytes of NAR): "
            ),
            "{e}"
        );
    }

    #[test]
    fn exit_bits_follow_nix_store_verify() {
        assert_eq!(Status::Trusted.exit_bits(), 0);
        assert_eq!(Status::ContentAddressed.exit_bits(), 0);
        assert_eq!(Status::Untrusted.exit_bits(), 2);
        assert_eq!(Status::Invalid.exit_bits(), 2);
        assert_eq!(Status::Unsigned.exit_bits(), 2);
        assert_eq!(Status::Corrupt.exit_bits(), 1);
        assert_eq!(Status::Error.exit_bits(), 4);
        let r = |s| PathReport {
            status: s,
            ..PathReport::error(String::new(), String::new())
        };
        assert_eq!(exit_code(&[r(Status::Corrupt), r(Status::Unsigned)]), 3);
        assert_eq!(exit_code(&[r(Status::Trusted)]), 0);
        assert_eq!(exit_code(&[]), 0);
    }
}
