//! Pulling paths out of a cache: trust first, then bytes.
//!
//! Every narinfo of the requested paths (with `recursive`, of their closures) is fetched and
//! judged under the trusted keys *before* any NAR is downloaded; one path that is not trusted
//! (or content-addressed), or whose StorePath is outside the cache's store directory, stops
//! the pull with nothing downloaded. Then each NAR is streamed, decompressed by its
//! `Compression` field and unpacked under Nix's canonical rules into a temp directory beside
//! the target while FileHash, FileSize, NarHash and NarSize are computed; only when all four
//! match is it renamed into place. The narinfo's sizes bound the work: no more than FileSize
//! bytes are downloaded and no more than NarSize bytes decoded or written, so a
//! decompression bomb is refused at once ([`read_nar`]). A target that already exists is
//! never overwritten: its tree is serialised and must have the narinfo's NarHash, or the
//! path fails. Paths of any store directory can be unpacked into a directory; with
//! `into_store` (only from a cache for `/nix/store`) the verified NARs and narinfos are put
//! in a temp binary cache and imported with `nix copy --from`, so Nix checks them again.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;

use super::{JobError, JobHandle, JobNotify, Throttle};
use crate::audit::{NarSink, PathReport, read_nar};
use crate::cache::{Cache, nar_key, narinfo_key_in};
use crate::compression::Compression;
use crate::nix::{HashAlgo, NarInfo, STORE_DIR, TrustedKeys};

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
    /// Paths not downloaded because the target already exists (each one checked: its tree
    /// has the narinfo's NarHash; one that does not is an error, never overwritten).
    pub existing: u64,
    /// Of `existing`, how many were checked against their NarHash (all of them: the count
    /// says so explicitly in the JSON).
    pub existing_verified: u64,
    /// Compressed bytes downloaded.
    pub file_bytes: u64,
    /// NAR bytes unpacked or imported.
    pub nar_bytes: u64,
    /// Whether the paths were imported into the local store.
    pub imported: bool,
}

/// Fetch and judge the narinfos of `paths` (and with `recursive` their closures). Fails on
/// the first path that is missing, unreadable or not trusted.
pub async fn resolve(
    cache: &Cache,
    paths: &[String],
    keys: &TrustedKeys,
    recursive: bool,
) -> Result<Vec<NarInfo>, JobError> {
    let store_dir = cache.store_dir().await?;
    let mut queue: VecDeque<String> = VecDeque::new();
    for p in paths {
        queue.push_back(narinfo_key_in(p, &store_dir)?);
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
                Ok(None) => {
                    return Err(JobError::Missing(format!(
                        "{}: no such narinfo",
                        cache.origin(&key)
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let mut report = PathReport::judge(&key, &info, keys);
            report.check_store_dir(&info, &store_dir);
            if !matches!(
                report.status,
                crate::audit::Status::Trusted | crate::audit::Status::ContentAddressed
            ) {
                return Err(JobError::Refused(format!(
                    "refusing to download {}: it is {} ({}); nothing was downloaded",
                    info.absolute_path(),
                    report.status,
                    report.reasons.join("; ")
                )));
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
/// compressed NAR is also written there (for `into_store`). No more than the narinfo's
/// FileSize is downloaded and no more than its NarSize unpacked (see [`read_nar`]).
async fn fetch_one(
    cache: &Cache,
    info: &NarInfo,
    target: Option<PathBuf>,
    keep: Option<PathBuf>,
) -> Result<(u64, u64), JobError> {
    let key = nar_key(&info.url)
        .map_err(|e| JobError::Invalid(format!("{}: {e}", info.absolute_path())))?;
    let origin = cache.origin(&key);
    let c = Compression::from_narinfo_field(info.compression.as_deref())
        .map_err(|e| JobError::Invalid(format!("{origin}: {e}")))?;
    let reader = match crate::storage::blocking_reader(cache.store().as_ref(), &key).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(JobError::Missing(format!("NAR {origin} is missing"))),
        Err(e) => return Err(e.into()),
    };
    let info = info.clone();
    let store = cache.store().describe();
    tokio::task::spawn_blocking(move || -> Result<(u64, u64), JobError> {
        let copy = match &keep {
            Some(p) => Some(
                std::fs::File::create(p)
                    .map_err(|e| JobError::Local(format!("cannot create {}: {e}", p.display())))?,
            ),
            None => None,
        };
        let staging = target.as_ref().map(|t| {
            let name = t
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            t.with_file_name(format!(".{name}.narscope-{}", crate::storage::random_hex()))
        });
        let cleanup = || {
            if let Some(s) = &staging {
                let _ = std::fs::remove_dir_all(s).or_else(|_| std::fs::remove_file(s));
            }
            if let Some(k) = &keep {
                let _ = std::fs::remove_file(k);
            }
        };
        let sink = match &staging {
            Some(s) => NarSink::Unpack(s),
            None => NarSink::Check,
        };
        let read = match read_nar(reader, &info, &store, &key, c, copy, sink) {
            Ok(r) => r,
            Err(e) => {
                cleanup();
                return Err(JobError::Failed(format!(
                    "{}: {e}; nothing was kept",
                    info.absolute_path()
                )));
            }
        };
        let mut problems = Vec::new();
        if info.file_size.is_some_and(|s| s != read.file_size) {
            problems.push(format!(
                "FileSize is {} but {} bytes arrived",
                info.file_size.unwrap_or(0),
                read.file_size
            ));
        }
        if let Some(fh) = &info.file_hash
            && fh.algo() == HashAlgo::Sha256
            && fh.digest() != read.file_hash
        {
            problems.push("FileHash does not match".to_string());
        }
        if info.nar_size != read.nar.nar_size {
            problems.push(format!(
                "NarSize is {} but the NAR has {} bytes",
                info.nar_size, read.nar.nar_size
            ));
        }
        if info.nar_hash.algo() != HashAlgo::Sha256 || info.nar_hash.digest() != read.nar.nar_hash {
            problems.push("NarHash does not match".to_string());
        }
        if !problems.is_empty() {
            cleanup();
            return Err(JobError::Invalid(format!(
                "{}: {} ({origin}); nothing was kept",
                info.absolute_path(),
                problems.join("; ")
            )));
        }
        if let (Some(s), Some(t)) = (&staging, &target) {
            std::fs::rename(s, t).map_err(|e| {
                cleanup();
                JobError::Local(format!("cannot move into {}: {e}", t.display()))
            })?;
        }
        Ok((read.file_size, read.nar.nar_size))
    })
    .await
    .map_err(|e| JobError::Failed(format!("pull of a NAR failed: {e}")))?
}

/// Check a tree that is already at `target` against `info`: its NAR serialisation must have
/// the narinfo's NarHash and NarSize. `Err` says why it does not (or cannot be read).
async fn check_existing(target: PathBuf, info: &NarInfo) -> Result<(), JobError> {
    let want_hash = info.nar_hash.clone();
    let want_size = info.nar_size;
    let path = info.absolute_path();
    tokio::task::spawn_blocking(move || {
        let shown = target.display();
        let have = crate::nar::dump_path(&target, std::io::sink()).map_err(|e| {
            JobError::Local(format!("{shown} already exists but cannot be read to check it against {path}: {e}; it was left alone"))
        })?;
        if want_hash.algo() != HashAlgo::Sha256 {
            return Err(JobError::Refused(format!(
                "{shown} already exists and cannot be checked: the NarHash of {path} uses {}, narscope checks only sha256; it was left alone",
                want_hash.algo().name()
            )));
        }
        if want_hash.digest() != have.nar_hash || want_size != have.nar_size {
            return Err(JobError::Refused(format!(
                "{shown} already exists but is not {path}: its NAR serialisation hashes to {} ({} bytes), the narinfo says {want_hash} ({want_size} bytes); it was left alone (remove it to pull again)",
                crate::nix::Hash::sha256(have.nar_hash),
                have.nar_size
            )));
        }
        Ok(())
    })
    .await
    .map_err(|e| JobError::Failed(format!("checking an existing path failed: {e}")))?
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
) -> Result<PullSummary, JobError> {
    let p = job.progress.clone();
    if opts.to.is_none() && !opts.into_store {
        return Err(JobError::Invalid(
            "nowhere to pull to: give a directory (--to) or --into-store".into(),
        ));
    }
    if opts.into_store {
        // As Nix: a cache for another store directory cannot feed this store.
        let dir = cache.store_dir().await?;
        if dir != STORE_DIR {
            return Err(JobError::Refused(format!(
                "{}: binary cache is for Nix stores with prefix '{dir}', not '{STORE_DIR}': refusing to import into the local Nix store (pull --to DIR unpacks paths of any store directory)",
                cache.url()
            )));
        }
    }
    if let Some(to) = &opts.to {
        std::fs::create_dir_all(to)
            .map_err(|e| JobError::Local(format!("cannot create {}: {e}", to.display())))?;
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
        std::fs::create_dir_all(d.join("nar"))
            .map_err(|e| JobError::Local(format!("{}: {e}", d.display())))?;
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
                p.set_current(info.absolute_path());
                let exists = target
                    .as_ref()
                    .is_some_and(|t| t.symlink_metadata().is_ok());
                let keep = match (&staging_cache, nar_key(&info.url)) {
                    (Some(d), Ok(k)) => Some(d.join(k)),
                    _ => None,
                };
                let checked = match (&target, exists) {
                    (Some(t), true) => check_existing(t.clone(), &info).await,
                    _ => Ok(()),
                };
                let r = match checked {
                    Err(e) => Err(e),
                    Ok(()) if exists && keep.is_none() => Ok(None),
                    Ok(()) => fetch_one(&cache, &info, target.filter(|_| !exists), keep)
                        .await
                        .map(Some),
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
                summary.existing_verified += u64::from(exists);
                summary.file_bytes += file;
                summary.nar_bytes += nar;
                if let Some(d) = &staging_cache {
                    let _ = std::fs::write(d.join(info.store_path.narinfo_key()), info.to_text());
                }
            }
            Ok(None) => {
                summary.existing += 1;
                summary.existing_verified += 1;
            }
            Err(e) => {
                failed += 1;
                p.error(e.to_string());
            }
        }
        if throttle.ready() {
            notify(super::JobEvent::Progress(job.id));
        }
    }
    let result = if failed > 0 {
        Err(JobError::Failed(format!(
            "{failed} path(s) could not be pulled"
        )))
    } else if let Some(d) = &staging_cache {
        p.set_current("importing into the Nix store");
        let _ = std::fs::write(d.join("nix-cache-info"), "StoreDir: /nix/store\n");
        let key_texts: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let wanted: Vec<String> = infos.iter().map(|i| i.absolute_path()).collect();
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            crate::localstore::import_from_cache(&d, &wanted, &key_texts)
        })
        .await
        .map_err(|e| JobError::Failed(e.to_string()))?
        .map_err(JobError::from)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::{Hash, SecretKey, StorePath};
    use crate::storage::CacheUrl;
    use crate::storage::file::FileStore;
    use std::path::Path;

    /// A file:// cache holding `tree` (uncompressed) as `<hash>-tree`, signed by `sk`.
    fn cache_with(root: &Path, tree: &Path, sk: &SecretKey) -> (Arc<Cache>, NarInfo) {
        std::fs::create_dir_all(root.join("nar")).unwrap();
        let mut nar = Vec::new();
        let s = crate::nar::dump_path(tree, &mut nar).unwrap();
        let p = StorePath::from_base_name("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-tree").unwrap();
        let url = format!("nar/{}.nar", crate::nix::nix32::encode(&s.nar_hash));
        std::fs::write(root.join(&url), &nar).unwrap();
        let mut info = NarInfo::new(p, url, "none", Hash::sha256(s.nar_hash), s.nar_size, vec![])
            .with_file(Hash::sha256(s.nar_hash), s.nar_size);
        info.sign(sk);
        std::fs::write(root.join(info.narinfo_key()), info.to_text()).unwrap();
        std::fs::write(root.join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
        let store = Arc::new(FileStore::new(root));
        (
            Arc::new(Cache::from_store(CacheUrl::file(root.to_path_buf()), store)),
            info,
        )
    }

    async fn run_pull(
        cache: Arc<Cache>,
        keys: TrustedKeys,
        path: String,
        to: &Path,
    ) -> (Result<PullSummary, String>, Vec<String>) {
        let runner = super::super::Runner::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let notify: JobNotify = Arc::new(move |e| {
            let _ = tx.send(e);
        });
        let out = Arc::new(std::sync::Mutex::new(None));
        let out2 = out.clone();
        let opts = PullOptions {
            to: Some(to.to_path_buf()),
            recursive: false,
            into_store: false,
            concurrency: 2,
        };
        let job = runner.spawn(
            super::super::JobKind::Pull,
            "pull",
            notify,
            move |job, notify| async move {
                let r = pull(cache, vec![path], Arc::new(keys), opts, job, notify).await;
                *out2.lock().unwrap() =
                    Some(r.as_ref().map(|s| s.clone()).map_err(|e| e.to_string()));
                r.map(|_| ())
            },
        );
        while let Some(e) = rx.recv().await {
            if matches!(e, super::super::JobEvent::Finished(..)) {
                break;
            }
        }
        let r = out.lock().unwrap().take().unwrap();
        (r, job.progress.errors())
    }

    fn tree(at: &Path, text: &[u8]) {
        std::fs::create_dir_all(at.join("bin")).unwrap();
        std::fs::write(at.join("bin/hello"), text).unwrap();
        std::os::unix::fs::symlink("hello", at.join("bin/hi")).unwrap();
    }

    #[tokio::test]
    async fn an_existing_target_is_checked_by_its_nar_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        tree(&src, b"#!/bin/sh\necho hi\n");
        let sk = SecretKey::from_seed("pull-test-1", &[3; 32]).unwrap();
        let mut keys = TrustedKeys::new();
        keys.add(sk.public_key());
        let (cache, info) = cache_with(&tmp.path().join("cache"), &src, &sk);
        let out = tmp.path().join("out");
        let path = info.absolute_path();

        // Nothing there yet: pulled.
        let (r, errs) = run_pull(cache.clone(), keys.clone(), path.clone(), &out).await;
        let s = r.unwrap();
        assert_eq!(
            (s.paths, s.existing, s.existing_verified),
            (1, 0, 0),
            "{errs:?}"
        );
        let target = out.join(info.store_path.base_name());
        assert_eq!(
            crate::nar::dump_path(&target, std::io::sink())
                .unwrap()
                .nar_hash,
            info.nar_hash.digest()
        );

        // There and right: counted as already there, checked.
        let (r, _) = run_pull(cache.clone(), keys.clone(), path.clone(), &out).await;
        let s = r.unwrap();
        assert_eq!((s.paths, s.existing, s.existing_verified), (0, 1, 1));

        // There and tampered with: refused, and left exactly as it is.
        std::fs::write(target.join("bin/hello"), b"#!/bin/sh\necho pwned\n").unwrap();
        let (r, errs) = run_pull(cache.clone(), keys.clone(), path.clone(), &out).await;
        assert_eq!(r.unwrap_err(), "1 path(s) could not be pulled");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("already exists but is not")
                && errs[0].contains(&path)
                && errs[0].contains("left alone"),
            "{}",
            errs[0]
        );
        assert_eq!(
            std::fs::read(target.join("bin/hello")).unwrap(),
            b"#!/bin/sh\necho pwned\n"
        );
        // Something else altogether (a plain file) is refused the same way.
        std::fs::remove_dir_all(&target).unwrap();
        std::fs::write(&target, b"x").unwrap();
        let (r, errs) = run_pull(cache, keys, path, &out).await;
        assert!(r.is_err());
        assert!(errs[0].contains("already exists but is not"), "{errs:?}");
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
    }
}
