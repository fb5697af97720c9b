//! Pulling paths out of a cache: trust first, then bytes.
//!
//! Every narinfo of the requested paths (with `recursive`, of their closures) is fetched and
//! judged under the trusted keys *before* any NAR is downloaded; one path that is not trusted
//! (or content-addressed) stops the pull with nothing downloaded. Then each NAR is streamed,
//! decompressed by its `Compression` field and unpacked under Nix's canonical rules into a
//! temp directory beside the target while FileHash, FileSize, NarHash and NarSize are
//! computed; only when all four match is it renamed into place. With `into_store` the verified
//! NARs and narinfos are put in a temp binary cache and imported with `nix copy --from`, so
//! Nix checks them again.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{JobHandle, JobNotify, Throttle};
use crate::audit::{PathReport, nar_key};
use crate::cache::{Cache, narinfo_key_for};
use crate::compression::{self, Compression};
use crate::nix::{HashAlgo, NarInfo, TrustedKeys};

/// What a pull does.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Unpack each path into `to/<hash>-<name>`.
    pub to: Option<PathBuf>,
    /// Include every path the requested ones reference, transitively.
    pub recursive: bool,
    /// Import the paths into the local Nix store through `nix copy --from`.
    pub into_store: bool,
    /// NARs downloaded at once.
    pub concurrency: usize,
}

/// What a pull did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullSummary {
    /// Paths pulled (verified).
    pub paths: u64,
    /// Paths skipped because the target already exists.
    pub existing: u64,
    /// Compressed bytes downloaded.
    pub file_bytes: u64,
    /// NAR bytes unpacked or imported.
    pub nar_bytes: u64,
    /// Whether the paths were imported into the local store.
    pub imported: bool,
}

/// Hashes and counts what is read through it.
struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Fetch and judge the narinfos of `paths` (and with `recursive` their closures). Fails on
/// the first path that is missing, unreadable or not trusted.
pub async fn resolve(
    cache: &Cache,
    paths: &[String],
    keys: &TrustedKeys,
    recursive: bool,
) -> Result<Vec<NarInfo>, String> {
    let mut queue: VecDeque<String> = VecDeque::new();
    for p in paths {
        queue.push_back(narinfo_key_for(p).map_err(|e| e.to_string())?);
    }
    let mut seen: HashSet<String> = queue.iter().cloned().collect();
    let mut out = BTreeMap::new();
    while !queue.is_empty() {
        let batch: Vec<String> = queue.drain(..).collect();
        let fetched = futures::stream::iter(batch)
            .map(|k| async move { (k.clone(), cache.fetch_narinfo(&k).await) })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await;
        for (key, r) in fetched {
            let info = match r {
                Ok(Some((_, i))) => i,
                Ok(None) => return Err(format!("{}: no such narinfo", cache.origin(&key))),
                Err(e) => return Err(e.to_string()),
            };
            let report = PathReport::judge(&key, &info, keys);
            if !matches!(
                report.status,
                crate::audit::Status::Trusted | crate::audit::Status::ContentAddressed
            ) {
                return Err(format!(
                    "refusing to download {}: it is {} ({}); nothing was downloaded",
                    info.store_path,
                    report.status,
                    report.reasons.join("; ")
                ));
            }
            if recursive {
                for r in &info.references {
                    let k = r.narinfo_key();
                    if seen.insert(k.clone()) {
                        queue.push_back(k);
                    }
                }
            }
            out.insert(key, info);
        }
    }
    Ok(out.into_values().collect())
}

/// Download, check and unpack one path into `target` (see the module docs); with `keep`, the
/// compressed NAR is also written there (for `into_store`).
async fn fetch_one(
    cache: &Cache,
    info: &NarInfo,
    target: Option<PathBuf>,
    keep: Option<PathBuf>,
) -> Result<(u64, u64), String> {
    let key = nar_key(&info.url).map_err(|e| format!("{}: {e}", info.store_path))?;
    let origin = cache.origin(&key);
    let c = Compression::from_narinfo_field(info.compression.as_deref())
        .map_err(|e| format!("{origin}: {e}"))?;
    let reader = match crate::storage::blocking_reader(cache.store().as_ref(), &key).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(format!("NAR {origin} is missing")),
        Err(e) => return Err(e.to_string()),
    };
    let info = info.clone();
    tokio::task::spawn_blocking(move || -> Result<(u64, u64), String> {
        // The compressed stream, hashed; optionally copied to `keep` as it is read.
        struct Tee<R> {
            r: R,
            copy: Option<std::fs::File>,
        }
        impl<R: Read> Read for Tee<R> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.r.read(buf)?;
                if let Some(f) = &mut self.copy {
                    std::io::Write::write_all(f, &buf[..n])?;
                }
                Ok(n)
            }
        }
        let copy = match &keep {
            Some(p) => Some(
                std::fs::File::create(p)
                    .map_err(|e| format!("cannot create {}: {e}", p.display()))?,
            ),
            None => None,
        };
        let mut file = HashReader {
            inner: Tee { r: reader, copy },
            hasher: Sha256::new(),
            count: 0,
        };
        let staging = target.as_ref().map(|t| {
            let name = t
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            t.with_file_name(format!(".{name}.narscope-{}", crate::storage::random_hex()))
        });
        let summary = {
            let dec = compression::decoder(c, &mut file);
            match &staging {
                Some(s) => crate::nar::unpack(dec, s),
                None => crate::nar::validate(dec),
            }
        };
        let cleanup = |s: &Option<PathBuf>| {
            if let Some(s) = s {
                let _ = std::fs::remove_dir_all(s).or_else(|_| std::fs::remove_file(s));
            }
        };
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                cleanup(&staging);
                return Err(format!("{origin}: not a valid {} NAR: {e}", c.name()));
            }
        };
        // The rest of the object counts for FileSize and FileHash.
        if let Err(e) = std::io::copy(&mut file, &mut std::io::sink()) {
            cleanup(&staging);
            return Err(format!("{origin}: download failed: {e}"));
        }
        let file_hash: [u8; 32] = file.hasher.finalize().into();
        let mut problems = Vec::new();
        if info.file_size.is_some_and(|s| s != file.count) {
            problems.push(format!(
                "FileSize is {} but {} bytes arrived",
                info.file_size.unwrap_or(0),
                file.count
            ));
        }
        if let Some(fh) = &info.file_hash
            && fh.algo() == HashAlgo::Sha256
            && fh.digest() != file_hash
        {
            problems.push("FileHash does not match".to_string());
        }
        if info.nar_size != summary.nar_size {
            problems.push(format!(
                "NarSize is {} but the NAR has {} bytes",
                info.nar_size, summary.nar_size
            ));
        }
        if info.nar_hash.algo() != HashAlgo::Sha256 || info.nar_hash.digest() != summary.nar_hash {
            problems.push("NarHash does not match".to_string());
        }
        if !problems.is_empty() {
            cleanup(&staging);
            if let Some(k) = &keep {
                let _ = std::fs::remove_file(k);
            }
            return Err(format!(
                "{}: {} ({origin}); nothing was kept",
                info.store_path,
                problems.join("; ")
            ));
        }
        if let (Some(s), Some(t)) = (&staging, &target) {
            std::fs::rename(s, t).map_err(|e| {
                cleanup(&staging);
                format!("cannot move into {}: {e}", t.display())
            })?;
        }
        Ok((file.count, summary.nar_size))
    })
    .await
    .map_err(|e| format!("pull of a NAR failed: {e}"))?
}

/// Pull `paths` (see the module docs). `trusted_key_texts` are the keys as Nix spells them,
/// for `into_store`.
pub async fn pull(
    cache: Arc<Cache>,
    paths: Vec<String>,
    keys: Arc<TrustedKeys>,
    opts: PullOptions,
    job: Arc<JobHandle>,
    notify: JobNotify,
) -> Result<PullSummary, String> {
    let p = job.progress.clone();
    if opts.to.is_none() && !opts.into_store {
        return Err("nowhere to pull to: give a directory (--to) or --into-store".into());
    }
    if let Some(to) = &opts.to {
        std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    }
    p.set_current("checking signatures");
    let infos = resolve(&cache, &paths, &keys, opts.recursive).await?;
    p.total.store(infos.len() as u64, Ordering::Relaxed);
    p.bytes_total.store(
        infos
            .iter()
            .map(|i| i.file_size.unwrap_or(i.nar_size))
            .sum(),
        Ordering::Relaxed,
    );
    // The temp binary cache for `into_store`.
    let staging_cache = if opts.into_store {
        let d =
            std::env::temp_dir().join(format!("narscope-pull-{}", crate::storage::random_hex()));
        std::fs::create_dir_all(d.join("nar")).map_err(|e| format!("{}: {e}", d.display()))?;
        Some(d)
    } else {
        None
    };
    let mut summary = PullSummary::default();
    let throttle = Throttle::default();
    // From a local cache, fetching a NAR is all CPU (read, hash, decompress, unpack): one
    // per core at a time, biggest first, so that none runs alone at the end.
    let local = cache.store().supports_blocking_get();
    let concurrency = if local {
        opts.concurrency.clamp(1, super::cores())
    } else {
        opts.concurrency.max(1)
    };
    let mut order = infos.clone();
    if local {
        order.sort_by_key(|i| std::cmp::Reverse(i.nar_size));
    }
    let results = futures::stream::iter(order)
        .map(|info| {
            let cache = cache.clone();
            let p = p.clone();
            let target = opts
                .to
                .as_ref()
                .map(|d| d.join(info.store_path.base_name()));
            let staging_cache = staging_cache.clone();
            async move {
                p.set_current(info.store_path.to_absolute());
                let exists = target
                    .as_ref()
                    .is_some_and(|t| t.symlink_metadata().is_ok());
                let keep = match (&staging_cache, nar_key(&info.url)) {
                    (Some(d), Ok(k)) => Some(d.join(k)),
                    _ => None,
                };
                let r = if exists && keep.is_none() {
                    Ok(None)
                } else {
                    fetch_one(&cache, &info, target.filter(|_| !exists), keep)
                        .await
                        .map(Some)
                };
                p.done.fetch_add(1, Ordering::Relaxed);
                p.bytes_done
                    .fetch_add(info.file_size.unwrap_or(info.nar_size), Ordering::Relaxed);
                (info, exists, r)
            }
        })
        .buffer_unordered(concurrency);
    let mut results = std::pin::pin!(results);
    let mut failed = 0;
    while let Some((info, exists, r)) = results.next().await {
        match r {
            Ok(Some((file, nar))) => {
                summary.paths += 1;
                summary.existing += u64::from(exists);
                summary.file_bytes += file;
                summary.nar_bytes += nar;
                if let Some(d) = &staging_cache {
                    let _ = std::fs::write(d.join(info.store_path.narinfo_key()), info.to_text());
                }
            }
            Ok(None) => summary.existing += 1,
            Err(e) => {
                failed += 1;
                p.error(e);
            }
        }
        if throttle.ready() {
            notify(super::JobEvent::Progress(job.id));
        }
    }
    let result = if failed > 0 {
        Err(format!("{failed} path(s) could not be pulled"))
    } else if let Some(d) = &staging_cache {
        p.set_current("importing into the Nix store");
        let _ = std::fs::write(d.join("nix-cache-info"), "StoreDir: /nix/store\n");
        let key_texts: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let wanted: Vec<String> = infos.iter().map(|i| i.store_path.to_absolute()).collect();
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            crate::localstore::import_from_cache(&d, &wanted, &key_texts)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
        .map(|()| {
            summary.imported = true;
            summary.clone()
        })
    } else {
        Ok(summary.clone())
    };
    if let Some(d) = &staging_cache {
        let _ = std::fs::remove_dir_all(d);
    }
    p.set_current(String::new());
    result
}
