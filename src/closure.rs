//! The closure walk behind `narscope verify -r` (the closure gate) and the dashboard opened on
//! chosen roots (`narscope CACHE --root PATH`).
//!
//! Starting from the roots, every path's narinfo is fetched from the cache, breadth-first, one
//! batch per level with a bounded number of requests in flight, and its `References` are
//! followed. Unlike a pull the walk never stops at the first problem: every path ends up with
//! a [`Found`] answer and the chain of references that led to it (the first, hence shortest,
//! one found).
//!
//! A path the cache does not have, or has without a signature Nix would accept, is asked of the
//! upstreams ([`Upstreams::check`]): one that serves it with a trusted signature satisfies it,
//! and the walk goes on through *that upstream's* narinfo references, because Nix needs the
//! whole closure from some substituter: a hole behind an upstream path is found too. A path
//! that neither the cache nor an upstream has, but the local Nix store does (a root not pushed
//! yet, or a path of a closure that was never pushed or was deleted), takes its references from
//! the local store (`nix path-info --recursive`), so the holes behind it are found too; it is
//! still reported as missing, since a client could not substitute it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;

use crate::audit::{PathReport, Status};
use crate::cache::{Cache, CacheError, narinfo_key_in};
use crate::nix::{NarInfo, StorePath, TrustedKeys};
use crate::storage::ObjectMeta;
use crate::upstream::{Served, Upstreams};

/// Where a path of a closure was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// In the cache itself.
    Cache,
    /// In upstream number `0` of the [`Upstreams`] (its location in `1`).
    Upstream(usize, String),
    /// Nowhere a client could substitute it from.
    Missing,
}

/// What the walk found for one path.
#[derive(Clone, Debug)]
pub struct Found {
    /// The store path.
    pub path: StorePath,
    /// Where it was found.
    pub source: Source,
    /// The verdict on the narinfo that serves it (`None` when it is missing).
    pub status: Option<Status>,
    /// Why the verdict is what it is, in words (also why a path is missing).
    pub reasons: Vec<String>,
    /// The node that first referenced this one (`None` for a root).
    pub parent: Option<usize>,
    /// The path's references, as the walk followed them.
    pub references: Vec<StorePath>,
    /// Whether its references came from the local Nix store (a root not pushed yet, or a path
    /// of its closure that is missing too).
    pub from_local_store: bool,
    /// The cache's narinfo and its object metadata, when the cache has it.
    pub cached: Option<(ObjectMeta, NarInfo)>,
}

impl Found {
    /// Whether a client listing the cache and the upstreams as substituters gets this path
    /// with a signature it accepts (or as a content-addressed path).
    pub fn is_ok(&self) -> bool {
        matches!(
            self.status,
            Some(Status::Trusted | Status::ContentAddressed)
        )
    }

    /// The exit-code bits of this path, as `nix store verify` counts them: a missing path is
    /// an error (4: Nix says "path … is not valid"), a path without a trusted signature is
    /// "not trusted" (2), a corrupt NAR (with contents checks) is 1.
    pub fn exit_bits(&self) -> i32 {
        match self.status {
            None => 4,
            Some(s) => s.exit_bits(),
        }
    }

    /// The word for its standing: the verdict, or `missing`.
    pub fn status_str(&self) -> &'static str {
        self.status.map(|s| s.as_str()).unwrap_or("missing")
    }
}

/// The closures of some roots, as the walk found them.
#[derive(Clone, Debug, Default)]
pub struct Closure {
    /// Every path reached, in the order found (roots first).
    pub nodes: Vec<Found>,
    /// The roots' indexes in `nodes` (a root given twice appears once).
    pub roots: Vec<usize>,
}

impl Closure {
    /// The chain of references from a root to node `i`: root first, node `i` last.
    pub fn chain(&self, i: usize) -> Vec<&StorePath> {
        let mut out = Vec::new();
        let mut cur = Some(i);
        while let Some(c) = cur {
            // Parents are always found before their children: this ends.
            if out.len() > self.nodes.len() {
                break;
            }
            out.push(&self.nodes[c].path);
            cur = self.nodes[c].parent;
        }
        out.reverse();
        out
    }

    /// The nodes a client could not get as they are (missing, or not trusted).
    pub fn problems(&self) -> impl Iterator<Item = (usize, &Found)> {
        self.nodes.iter().enumerate().filter(|(_, f)| !f.is_ok())
    }

    /// The exit code of the gate: the bits of every path, as `nix store verify`.
    pub fn exit_code(&self) -> i32 {
        self.nodes.iter().fold(0, |c, f| c | f.exit_bits())
    }
}

/// Why a closure walk could not be made at all (problems with single paths are answers, not
/// errors).
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The cache's `nix-cache-info` could not be read.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A root is not a store path (or is in another store directory).
    #[error("root '{0}': {1}")]
    BadRoot(String, String),
}

/// Options of a walk.
#[derive(Clone, Debug)]
pub struct WalkOptions {
    /// Narinfo requests in flight (at least 1).
    pub concurrency: usize,
    /// Ask the local Nix store for the closure of a path that neither the cache nor an
    /// upstream has.
    pub local_store: bool,
    /// Counters for a progress display: `listed` counts the paths found so far, `judged` those
    /// answered, and `listing_done` is set at the end.
    pub progress: Option<Arc<crate::audit::AuditProgress>>,
}

/// One path's answer before it becomes a node.
struct Answer {
    source: Source,
    status: Option<Status>,
    reasons: Vec<String>,
    references: Vec<StorePath>,
    cached: Option<(ObjectMeta, NarInfo)>,
}

/// Adds the local store's closures of `paths` (those it has) to `local`; `false` when Nix
/// cannot be run (no use asking again).
async fn ask_local_store(
    paths: Vec<String>,
    local: &mut HashMap<StorePath, Vec<StorePath>>,
) -> bool {
    use crate::localstore::{LocalStoreError, closure};
    // Only paths on disk can be valid in the local store: the others are not asked about
    // (Nix may spend seconds on substituters before it says "not valid").
    let paths: Vec<String> = paths
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    if paths.is_empty() {
        return true;
    }
    // All at once; when Nix refuses (one of them is not in the store), one by one.
    let all = paths.clone();
    let first = tokio::task::spawn_blocking(move || closure(&all)).await;
    let per_path = match first {
        Ok(Ok(found)) => {
            for lp in found {
                local.insert(lp.path, lp.references);
            }
            return true;
        }
        Ok(Err(LocalStoreError::NoNix(cmd, e))) => {
            tracing::info!("no local store to ask: cannot run {cmd}: {e}");
            return false;
        }
        Ok(Err(_)) => paths.len() > 1,
        Err(e) => {
            tracing::warn!("asking the local store: {e}");
            return false;
        }
    };
    if !per_path {
        return true;
    }
    for p in paths {
        let q = p.clone();
        match tokio::task::spawn_blocking(move || closure(&[q])).await {
            Ok(Ok(found)) => {
                for lp in found {
                    local.insert(lp.path, lp.references);
                }
            }
            Ok(Err(e)) => tracing::debug!("{p} is not in the local store: {e}"),
            Err(e) => tracing::warn!("asking the local store about {p}: {e}"),
        }
    }
    true
}

/// Looks one path up: the cache first, then (when the cache does not have it, or has it
/// without a signature Nix would accept) the upstreams.
async fn look_up(
    cache: &Cache,
    store_dir: &str,
    keys: &TrustedKeys,
    ups: &Upstreams,
    path: &StorePath,
) -> Answer {
    let key = path.narinfo_key();
    let mut answer = match cache.fetch_narinfo(&key).await {
        Ok(Some((meta, info))) => {
            let mut report = PathReport::judge(&key, &info, keys);
            report.check_store_dir(&info, store_dir);
            if info.store_path != *path {
                report.status = Status::Error;
                report.reasons.insert(
                    0,
                    format!(
                        "{} describes {}, not {}",
                        cache.origin(&key),
                        info.store_path.base_name(),
                        path.base_name()
                    ),
                );
            }
            Answer {
                source: Source::Cache,
                status: Some(report.status),
                reasons: report.reasons,
                references: info.references.clone(),
                cached: Some((meta, info)),
            }
        }
        Ok(None) => Answer {
            source: Source::Missing,
            status: None,
            reasons: vec![format!("{}: no such narinfo", cache.origin(&key))],
            references: Vec::new(),
            cached: None,
        },
        Err(e) => Answer {
            source: Source::Cache,
            status: Some(Status::Error),
            reasons: vec![format!("{}: {e}", cache.origin(&key))],
            references: Vec::new(),
            cached: None,
        },
    };
    let good = matches!(
        answer.status,
        Some(Status::Trusted | Status::ContentAddressed)
    );
    if good || ups.is_empty() {
        return answer;
    }
    match ups.check(path).await {
        Served::Trusted {
            upstream,
            references,
            ..
        } => {
            let at = ups.describe(upstream);
            let mut reasons = Vec::new();
            if answer.cached.is_some() {
                reasons.push(format!(
                    "the cache's copy is {} ({}); upstream {at} serves it trusted",
                    answer.status.map(|s| s.as_str()).unwrap_or("missing"),
                    answer.reasons.join("; ")
                ));
            }
            // The walk follows the upstream's own references: Nix needs them from some
            // substituter.
            Answer {
                source: Source::Upstream(upstream, at),
                status: Some(Status::Trusted),
                reasons,
                references,
                cached: answer.cached.take(),
            }
        }
        Served::NotTrusted {
            upstream,
            status,
            reason,
        } if answer.cached.is_none() => Answer {
            source: Source::Upstream(upstream, ups.describe(upstream)),
            status: Some(status),
            reasons: vec![format!("upstream {}: {reason}", ups.describe(upstream))],
            references: Vec::new(),
            cached: None,
        },
        Served::Error(e) => {
            answer.reasons.push(format!("upstream: {e}"));
            if answer.cached.is_none() {
                answer.status = Some(Status::Error);
            }
            answer
        }
        _ => {
            if answer.cached.is_none() {
                answer.reasons.push("no upstream has it".to_string());
            }
            answer
        }
    }
}

/// Walk the closures of `roots` (store paths, base names or hash parts) in `cache`, asking
/// `ups` for what the cache lacks; see the module docs.
pub async fn walk(
    cache: &Cache,
    roots: &[String],
    keys: &TrustedKeys,
    ups: &Upstreams,
    opts: &WalkOptions,
) -> Result<Closure, WalkError> {
    let store_dir = cache.store_dir().await?;
    let mut root_paths = Vec::new();
    for r in roots {
        let key = narinfo_key_in(r, &store_dir)
            .map_err(|e| WalkError::BadRoot(r.clone(), e.to_string()))?;
        let trimmed = r.trim().trim_end_matches('/');
        let path = StorePath::parse_any(trimmed).map_err(|_| {
            WalkError::BadRoot(
                r.clone(),
                format!("give the whole store path (its narinfo would be {key})"),
            )
        })?;
        root_paths.push(path);
    }
    let mut closure = Closure::default();
    let mut seen: HashMap<StorePath, usize> = HashMap::new();
    let mut queue: VecDeque<(StorePath, Option<usize>)> = VecDeque::new();
    for p in root_paths {
        if !seen.contains_key(&p) {
            seen.insert(p.clone(), usize::MAX);
            queue.push_back((p, None));
        }
    }
    // Paths whose references come from the local store (closures of unpushed roots).
    let mut local: HashMap<StorePath, Vec<StorePath>> = HashMap::new();
    let mut local_ok = opts.local_store;
    while !queue.is_empty() {
        let batch: Vec<(StorePath, Option<usize>)> = queue.drain(..).collect();
        let paths: Vec<StorePath> = batch.iter().map(|(p, _)| p.clone()).collect();
        let store_dir = store_dir.as_str();
        let progress = opts.progress.as_deref();
        if let Some(pr) = progress {
            pr.listed.fetch_add(paths.len() as u64, Ordering::Relaxed);
        }
        let answers: Vec<Answer> = futures::stream::iter(paths)
            .map(|p| async move {
                let a = look_up(cache, store_dir, keys, ups, &p).await;
                if let Some(pr) = progress {
                    pr.judged.fetch_add(1, Ordering::Relaxed);
                }
                a
            })
            .buffered(opts.concurrency.max(1))
            .collect()
            .await;
        if local_ok {
            let unknown: Vec<String> = batch
                .iter()
                .zip(&answers)
                .filter(|((p, _), a)| a.status.is_none() && !local.contains_key(p))
                .map(|((p, _), _)| p.in_dir(store_dir))
                .collect();
            local_ok = ask_local_store(unknown, &mut local).await;
        }
        for ((path, parent), mut a) in batch.into_iter().zip(answers) {
            let mut from_local_store = false;
            if a.status.is_none()
                && let Some(refs) = local.get(&path)
            {
                a.references = refs.clone();
                from_local_store = true;
                a.reasons
                    .push("the local Nix store has it (not pushed, or deleted from the cache): its references come from there".to_string());
            }
            let id = closure.nodes.len();
            seen.insert(path.clone(), id);
            if parent.is_none() {
                closure.roots.push(id);
            }
            for r in &a.references {
                if *r != path && !seen.contains_key(r) {
                    seen.insert(r.clone(), usize::MAX);
                    queue.push_back((r.clone(), Some(id)));
                }
            }
            closure.nodes.push(Found {
                path,
                source: a.source,
                status: a.status,
                reasons: a.reasons,
                parent,
                references: a.references,
                from_local_store,
                cached: a.cached,
            });
        }
    }
    if let Some(pr) = &opts.progress {
        pr.listing_done.store(true, Ordering::Relaxed);
    }
    Ok(closure)
}

/// Check the NAR of every path the cache serves itself (`verify -r --contents`): a corrupt
/// one becomes [`Status::Corrupt`], one that cannot be read [`Status::Error`].
pub async fn check_contents(cache: &Cache, closure: &mut Closure, concurrency: usize) {
    let todo: Vec<(usize, NarInfo)> = closure
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, f)| f.source == Source::Cache)
        .filter_map(|(i, f)| f.cached.as_ref().map(|(_, info)| (i, info.clone())))
        .collect();
    let results: Vec<(usize, crate::audit::ContentCheck)> = futures::stream::iter(todo)
        .map(|(i, info)| async move { (i, crate::audit::check_contents(cache, &info).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (i, r) in results {
        let f = &mut closure.nodes[i];
        match r {
            crate::audit::ContentCheck::Ok => {}
            crate::audit::ContentCheck::Corrupt(why) => {
                if f.is_ok() {
                    f.status = Some(Status::Corrupt);
                }
                f.reasons.push(why);
            }
            crate::audit::ContentCheck::Error(why) => {
                f.status = Some(Status::Error);
                f.reasons.push(why);
            }
        }
    }
}

/// Fill `index` with the cache's narinfos of a closure (a row per path the cache holds; the
/// paths it lacks become rows with a read error saying why), as a scan would: the dashboard
/// opened on roots. Returns how many rows were added.
pub fn fill_index(index: &mut crate::index::Index, closure: &Closure, keys: &TrustedKeys) -> u64 {
    use crate::index::{NarInfoSummary, ReadError, RowData, RowStatus, TextRef, etag_hash};
    let mut added = 0;
    for f in &closure.nodes {
        let hash = f.path.hash_part().to_string();
        match &f.cached {
            Some((meta, info)) => {
                let text = info.to_text();
                let stored: TextRef = index
                    .blob()
                    .and_then(|b| b.append_many(&[text.as_bytes()]).ok())
                    .and_then(|v| v.into_iter().next())
                    .unwrap_or_default();
                let mtime = crate::index::unix_secs(meta.last_modified);
                let etag = etag_hash(meta.etag.as_deref());
                index.list_key(&hash, meta.size, mtime, etag);
                let report = PathReport::judge(&info.narinfo_key(), info, keys);
                let status = match f.status {
                    Some(s) if f.source == Source::Cache => s,
                    _ => report.status,
                };
                index.apply(&RowData {
                    hash_part: hash,
                    obj_size: meta.size,
                    mtime,
                    etag,
                    info: Some(NarInfoSummary::of(info)),
                    status: RowStatus::from(status),
                    text: stored,
                });
                added += 1;
            }
            None => {
                if let Some((id, _)) = index.list_key(&hash, 0, i64::MIN, 0) {
                    index.set_status(id, RowStatus::from(Status::Error));
                    index.set_read_error(
                        id,
                        ReadError {
                            malformed: false,
                            message: format!(
                                "{} is not in this cache ({}): {}",
                                f.path.base_name(),
                                f.status_str(),
                                f.reasons.join("; ")
                            ),
                        },
                    );
                    added += 1;
                }
            }
        }
    }
    added
}

/// The dashboard's "scan" when it is opened on roots (`narscope CACHE --root PATH`): walk the
/// roots' closures (no listing, so HTTP caches work too) and fill `index` with them
/// ([`fill_index`]), counting in `progress` as a scan does; `changed` is called when rows
/// arrive.
pub async fn scan_roots(
    cache: Arc<Cache>,
    index: Arc<std::sync::RwLock<crate::index::Index>>,
    keys: Arc<TrustedKeys>,
    roots: Vec<String>,
    concurrency: usize,
    progress: Arc<crate::index::scan::ScanProgress>,
    changed: Arc<dyn Fn() + Send + Sync>,
) -> Result<crate::index::scan::ScanSummary, crate::index::scan::ScanError> {
    let started = std::time::Instant::now();
    let opts = WalkOptions {
        concurrency,
        local_store: true,
        progress: None,
    };
    let closure = walk(&cache, &roots, &keys, &Upstreams::default(), &opts)
        .await
        .map_err(|e| crate::index::scan::ScanError::Closure(e.to_string()))?;
    let n = closure.nodes.len() as u64;
    progress.listed.store(n, Ordering::Relaxed);
    progress.fetched.store(n, Ordering::Relaxed);
    {
        let mut idx = index.write().unwrap_or_else(|e| e.into_inner());
        fill_index(&mut idx, &closure, &keys);
    }
    changed();
    Ok(crate::index::scan::ScanSummary {
        listed: n,
        fetched: n,
        seconds: started.elapsed().as_secs_f64(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::SecretKey;
    use crate::storage::CacheUrl;
    use crate::upstream::Upstream;

    /// A file:// cache in `dir` with `nix-cache-info`.
    async fn cache_in(dir: &std::path::Path) -> Arc<Cache> {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("nix-cache-info"),
            "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n",
        )
        .unwrap();
        let url = CacheUrl::parse(&format!("file://{}", dir.display())).unwrap();
        Arc::new(Cache::open(&url).await.unwrap())
    }

    fn path(c: char, name: &str) -> StorePath {
        StorePath::from_parts(&c.to_string().repeat(32), name).unwrap()
    }

    /// Writes a narinfo for `p` referencing `refs` into `dir`, signed by `key`.
    fn put(dir: &std::path::Path, p: &StorePath, refs: &[&StorePath], key: &SecretKey) {
        let refs: Vec<String> = refs.iter().map(|r| r.base_name()).collect();
        let text = format!(
            "StorePath: {}\nURL: nar/{}.nar\nCompression: none\nNarHash: sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s\nNarSize: 120\nReferences: {}\n",
            p.to_absolute(),
            p.hash_part(),
            refs.join(" ")
        );
        let mut info = NarInfo::parse(&text, "test").unwrap();
        let fp = info.fingerprint();
        info.sigs.push(key.sign(&fp).to_string());
        std::fs::write(dir.join(p.narinfo_key()), info.to_text()).unwrap();
    }

    const OPTS: WalkOptions = WalkOptions {
        concurrency: 4,
        local_store: false,
        progress: None,
    };

    #[tokio::test]
    async fn holes_are_found_with_their_chains_also_behind_an_upstream() {
        let tmp = tempfile::tempdir().unwrap();
        let k = SecretKey::generate("c-1").unwrap();
        let keys: TrustedKeys = [k.public_key()].into_iter().collect();
        let (cd, ud) = (tmp.path().join("cache"), tmp.path().join("up"));
        let (cache, up) = (cache_in(&cd).await, cache_in(&ud).await);
        // root → lib → base; root → tool (missing in the cache, served upstream) → deep
        // (missing everywhere).
        let (root, lib, base, tool, deep) = (
            path('a', "root"),
            path('b', "lib"),
            path('c', "base"),
            path('d', "tool"),
            path('f', "deep"),
        );
        put(&cd, &root, &[&lib, &tool], &k);
        put(&cd, &lib, &[&base, &lib], &k);
        put(&cd, &base, &[], &k);
        put(&ud, &tool, &[&deep], &k);
        let roots = vec![root.to_absolute()];

        let c = walk(&cache, &roots, &keys, &Upstreams::default(), &OPTS)
            .await
            .unwrap();
        assert_eq!(c.nodes.len(), 4, "deep is behind the missing tool");
        let bad: Vec<_> = c
            .problems()
            .map(|(i, f)| (f.path.name(), c.chain(i)))
            .collect();
        assert_eq!(bad, vec![("tool", vec![&root, &tool])]);
        assert_eq!(c.exit_code(), 4);
        let chain_base = c.nodes.iter().position(|f| f.path == base).unwrap();
        assert_eq!(c.chain(chain_base), vec![&root, &lib, &base]);

        let ups = Upstreams::new(vec![Upstream {
            cache: up,
            keys: Arc::new(keys.clone()),
        }]);
        let c = walk(&cache, &roots, &keys, &ups, &OPTS).await.unwrap();
        assert_eq!(c.nodes.len(), 5);
        let tool_at = c.nodes.iter().find(|f| f.path == tool).unwrap();
        assert!(tool_at.is_ok());
        assert!(matches!(tool_at.source, Source::Upstream(0, _)));
        let bad: Vec<_> = c
            .problems()
            .map(|(i, f)| (f.path.name(), c.chain(i)))
            .collect();
        assert_eq!(bad, vec![("deep", vec![&root, &tool, &deep])]);

        // The dashboard on the root: a row per path of the closure, the missing one an error.
        let mut idx = crate::index::Index::new("file:///x", crate::index::keys_id(&keys));
        assert_eq!(fill_index(&mut idx, &c, &keys), 5);
        let live: Vec<&str> = idx.live().map(|id| idx.name(id)).collect();
        for n in ["root", "lib", "base", "tool", "deep"] {
            assert!(
                live.contains(&n) || idx.find(&path_of(&c, n)).is_some(),
                "{n}: {live:?}"
            );
        }
        let r = idx.find(root.hash_part()).unwrap();
        assert!(idx.row(r).status.is_good());
        let d = idx.find(deep.hash_part()).unwrap();
        assert!(idx.row(d).is_unknown() || !idx.row(d).status.is_good());
    }

    #[tokio::test]
    async fn an_untrusted_copy_in_the_cache_is_satisfied_by_a_trusted_upstream_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let k = SecretKey::generate("c-1").unwrap();
        let other = SecretKey::generate("other-1").unwrap();
        let keys: TrustedKeys = [k.public_key()].into_iter().collect();
        let (cd, ud) = (tmp.path().join("cache"), tmp.path().join("up"));
        let (cache, up) = (cache_in(&cd).await, cache_in(&ud).await);
        let (root, lib, alone) = (path('a', "root"), path('b', "lib"), path('c', "alone"));
        put(&cd, &root, &[&lib, &alone], &k);
        put(&cd, &lib, &[], &other);
        put(&cd, &alone, &[], &other);
        put(&ud, &lib, &[], &k);
        put(&ud, &alone, &[], &other);
        let ups = Upstreams::new(vec![Upstream {
            cache: up,
            keys: Arc::new(keys.clone()),
        }]);
        let c = walk(&cache, &[root.to_absolute()], &keys, &ups, &OPTS)
            .await
            .unwrap();
        let lib_at = c.nodes.iter().find(|f| f.path == lib).unwrap();
        assert!(lib_at.is_ok(), "{lib_at:?}");
        assert!(matches!(lib_at.source, Source::Upstream(0, _)));
        let bad: Vec<_> = c
            .problems()
            .map(|(_, f)| (f.path.name(), f.status))
            .collect();
        assert_eq!(bad, vec![("alone", Some(Status::Untrusted))]);
        assert_eq!(c.exit_code(), 2);
    }

    fn path_of(c: &Closure, name: &str) -> String {
        c.nodes
            .iter()
            .find(|f| f.path.name() == name)
            .map(|f| f.path.hash_part().to_string())
            .unwrap_or_default()
    }
}
