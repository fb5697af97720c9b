//! Pushing local store paths, with their closures, in Nix's order.
//!
//! The closure comes from the local Nix database ([`crate::localstore`]). Paths whose narinfo
//! is already in the cache are skipped. The others go up level by level (a path after every
//! path it references), several at a time: the NAR is streamed from the store while it is
//! hashed, compressed on a second thread and written to a temp file; its NarHash and NarSize
//! must equal what the local database says; the NAR is uploaded (unless an identical one is
//! already there), and only then the narinfo, signed as it goes. With a key configured no
//! narinfo goes up without a signature by it. `nix-cache-info` is written if missing.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::sign::NARINFO_CONTENT_TYPE;
use super::{JobHandle, JobNotify, Throttle};
use crate::cache::Cache;
use crate::compression::{self, Compression};
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
    /// Paths processed at once.
    pub concurrency: usize,
    /// Where temp files go (default: the system temp dir).
    pub temp_dir: Option<PathBuf>,
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

/// A temp file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Dump `path` as a NAR and compress it into a temp file in `dir`, hashing both.
fn pack(
    path: &Path,
    c: Compression,
    level: Option<i32>,
    threads: u32,
    dir: &Path,
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
    // This thread reads the tree and hashes the NAR; with `threads` > 1 the codec compresses
    // on its own worker threads meanwhile.
    let mut enc = compression::encoder_threads(c, level, threads, hw).map_err(|e| e.to_string())?;
    let summary = crate::nar::writer::dump_path(path, &mut enc).map_err(|e| e.to_string())?;
    let mut hw = enc
        .finish()
        .map_err(|e| format!("compressing {}: {e}", path.display()))?;
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

/// Levels of `paths` by their references among themselves: level 0 references nothing in the
/// set, level n only paths of lower levels.
fn levels(paths: &[LocalPath]) -> Vec<Vec<usize>> {
    let pos: HashMap<&StorePath, usize> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (&p.path, i))
        .collect();
    let mut level: Vec<Option<usize>> = vec![None; paths.len()];
    fn depth(
        i: usize,
        paths: &[LocalPath],
        pos: &HashMap<&StorePath, usize>,
        level: &mut Vec<Option<usize>>,
        visiting: &mut HashSet<usize>,
    ) -> usize {
        if let Some(l) = level[i] {
            return l;
        }
        if !visiting.insert(i) {
            return 0;
        }
        let l = paths[i]
            .references
            .iter()
            .filter_map(|r| pos.get(r).copied())
            .filter(|&j| j != i)
            .map(|j| depth(j, paths, pos, level, visiting) + 1)
            .max()
            .unwrap_or(0);
        visiting.remove(&i);
        level[i] = Some(l);
        l
    }
    let mut visiting = HashSet::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in 0..paths.len() {
        let l = depth(i, paths, &pos, &mut level, &mut visiting);
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(i);
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

    p.set_current("checking which paths the cache has");
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
    for level in levels(&todo) {
        let results = futures::stream::iter(level)
            .map(|i| {
                let todo = todo.clone();
                let store = store.clone();
                let opts = opts.clone();
                let dir = dir.clone();
                let p = p.clone();
                async move {
                    let lp = &todo[i];
                    p.set_current(lp.path.to_absolute());
                    let r = push_one(&store, lp, &opts, &dir, inm).await;
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
            if throttle.ready() {
                notify(super::JobEvent::Progress(job.id));
            }
        }
        if failed > 0 {
            // Referrers of a failed path must not go up: their closure would be incomplete.
            return Err(format!(
                "{failed} path(s) failed; stopped before the paths that reference them"
            ));
        }
    }
    p.set_current(String::new());
    Ok(summary)
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
    if_none_match: bool,
) -> Result<OneResult, String> {
    let path = PathBuf::from(lp.path.to_absolute());
    let (c, level, d) = (opts.compression, opts.level, dir.to_path_buf());
    let src = path.clone();
    // Big NARs are compressed on every core; small ones on one (threads cost more than they
    // save there, and several paths are packed at once anyway).
    let threads = if lp.nar_size >= 8 << 20 {
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
    } else {
        1
    };
    let packed = tokio::task::spawn_blocking(move || pack(&src, c, level, threads, &d))
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
    let nar_reused = store
        .head(&url)
        .await
        .map_err(|e| e.to_string())?
        .is_some_and(|m| m.size == packed.file_size);
    if !nar_reused {
        store
            .put_owned_file(
                &url,
                &packed.file.0,
                &PutOptions {
                    content_type: Some("application/x-nix-nar".into()),
                    condition: PutCondition::None,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    drop(packed.file);
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
    let put = PutOptions {
        content_type: Some(NARINFO_CONTENT_TYPE.into()),
        condition: if if_none_match {
            PutCondition::IfNoneMatch
        } else {
            PutCondition::None
        },
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

    #[test]
    fn references_go_up_before_referrers() {
        let a = lp("a", &[]);
        let b = lp("b", &[&a.path]);
        let c = lp("c", &[&a.path, &b.path]);
        let mut selfref = lp("s", &[]);
        selfref.references = vec![selfref.path.clone(), c.path.clone()];
        let paths = vec![selfref, c, b, a];
        let l = levels(&paths);
        let names: Vec<Vec<&str>> = l
            .iter()
            .map(|lv| lv.iter().map(|&i| paths[i].path.name()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a"], vec!["b"], vec!["c"], vec!["s"]]);
    }

    #[test]
    fn packs_a_tree_and_its_hashes_match_an_independent_dump() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        crate::nar::testutil::materialize(&crate::nar::testutil::tree(), &root);
        let mut plain = Vec::new();
        let want = crate::nar::writer::dump_path(&root, &mut plain).unwrap();
        for c in [Compression::Zstd, Compression::Xz, Compression::None] {
            let packed = pack(&root, c, None, 2, dir.path()).unwrap();
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
    }
}
