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

use crate::cache::{Cache, CacheError, Fetched, narinfo_key_for};
use crate::compression::{self, Compression};
use crate::nar;
use crate::nix::store_path::hash_part_from_narinfo_key;
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
    /// The narinfo could not be read or does not belong to its key.
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
    /// The verdict.
    pub status: Status,
    /// Each signature's outcome.
    pub signatures: Vec<SigReport>,
    /// Why the verdict is what it is, in words.
    pub reasons: Vec<String>,
    /// NarSize.
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
            store_path: Some(info.store_path.to_absolute()),
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
                    info.store_path
                ),
            );
        }
        report
    }
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
    Fetched(String, Box<Result<NarInfo, String>>),
    Unfetched(ObjectMeta),
}

/// Read (if needed), parse and judge a chunk of paths; signatures are batch-verified.
fn judge_chunk(
    cache: &Cache,
    keys: &TrustedKeys,
    chunk: Vec<Pending>,
) -> Vec<(PathReport, Option<NarInfo>)> {
    let resolved: Vec<(String, Result<NarInfo, String>)> = chunk
        .into_iter()
        .map(|item| match item {
            Pending::Fetched(key, res) => (key, *res),
            Pending::Unfetched(meta) => {
                let res = match cache.fetch_narinfo_blocking(&meta.key) {
                    Ok(Some((_, info))) => Ok(info),
                    Ok(None) => Err(CacheError::Missing(cache.origin(&meta.key)).to_string()),
                    Err(e) => Err(e.to_string()),
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
            Ok(info) => match verdicts.next() {
                Some(v) => (PathReport::from_verdict(&key, &info, v), Some(info)),
                None => (PathReport::judge(&key, &info, keys), Some(info)),
            },
            Err(e) => (PathReport::error(key, e), None),
        })
        .collect()
}

/// Audit every narinfo in the cache (`paths` empty) or the given store paths.
/// Reports come back in no particular order; a listing failure is an error for the whole run.
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
    let metas: std::pin::Pin<Box<dyn Stream<Item = Result<ObjectMeta, StoreError>> + Send>> =
        if paths.is_empty() {
            let p = progress.clone();
            let p2 = progress.clone();
            Box::pin(
                cache
                    .narinfo_key_stream(opts.concurrency)
                    .inspect(move |m| {
                        if m.is_ok() {
                            p.listed.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .chain(stream::poll_fn(move |_| {
                        p2.listing_done.store(true, Ordering::Relaxed);
                        std::task::Poll::Ready(None)
                    })),
            )
        } else {
            let mut metas = Vec::new();
            for p in paths {
                match narinfo_key_for(p) {
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
                f.map(|f| {
                    Pending::Fetched(f.meta.key, Box::new(f.result.map_err(|e| e.to_string())))
                })
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
                        .flat_map_iter(|chunk| judge_chunk(&cache, &keys, chunk))
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
        for (report, info) in reports {
            match (opts.contents, info) {
                (true, Some(info)) if report.status != Status::Error => {
                    to_check.push((report, info))
                }
                _ => out.push(report),
            }
        }
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

/// The storage key of a narinfo's `URL`, or why it cannot be followed.
pub fn nar_key(url: &str) -> Result<String, String> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() {
        return Err("URL is empty".into());
    }
    if path.contains("://") || path.starts_with('/') {
        return Err(format!(
            "URL {url} is absolute; narscope follows only URLs relative to the cache root"
        ));
    }
    if path
        .split('/')
        .any(|s| s == ".." || s == "." || s.is_empty())
    {
        return Err(format!("URL {url} has empty, '.' or '..' segments"));
    }
    Ok(path.to_string())
}

/// A reader that hashes and counts what passes through and remembers transport errors.
struct Tee<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    failed: Arc<std::sync::Mutex<Option<String>>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                if let Ok(mut f) = self.failed.lock() {
                    *f = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}

/// Download one NAR, decompress it by the narinfo's `Compression` field, check that it is a
/// canonical NAR, and compare FileSize, FileHash, NarSize and NarHash.
pub async fn check_contents(cache: &Cache, info: &NarInfo) -> ContentCheck {
    let key = match nar_key(&info.url) {
        Ok(k) => k,
        Err(e) => return ContentCheck::Error(format!("{}: {e}", info.store_path)),
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
    let res = tokio::task::spawn_blocking(move || {
        let failed = Arc::new(std::sync::Mutex::new(None));
        let mut tee = Tee {
            inner: reader,
            hasher: Sha256::new(),
            count: 0,
            failed: failed.clone(),
        };
        let summary = {
            let dec = compression::decoder(compression, &mut tee);
            nar::validate(dec)
        };
        let transport = failed.lock().ok().and_then(|f| f.clone());
        if let Some(t) = transport {
            return ContentCheck::Error(format!("{origin}: download failed: {t}"));
        }
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                return ContentCheck::Corrupt(format!(
                    "{origin}: not a valid {} NAR: {e}",
                    compression.name()
                ));
            }
        };
        // Count whatever follows the compressed stream too: FileSize covers the whole object.
        if let Err(e) = io::copy(&mut tee, &mut io::sink()) {
            return ContentCheck::Error(format!("{origin}: download failed: {e}"));
        }
        let file_hash: [u8; 32] = tee.hasher.finalize().into();
        compare(&info, &origin, tee.count, &file_hash, &summary)
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

    #[test]
    fn nar_urls_map_to_keys_safely() {
        assert_eq!(nar_key("nar/abc.nar.xz").unwrap(), "nar/abc.nar.xz");
        assert_eq!(nar_key("nar/abc.nar?hash=xyz").unwrap(), "nar/abc.nar");
        for bad in [
            "",
            "/etc/passwd",
            "nar/../x",
            "http://h/nar/x",
            "nar//x",
            "./nar/x",
        ] {
            assert!(nar_key(bad).is_err(), "{bad}");
        }
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
