//! Upstream caches: caches that already serve some of the paths a cache holds or is about to
//! receive (cache.nixos.org, a Cachix, harmonia or attic cache, another bucket).
//!
//! An upstream *serves* a path only when its narinfo for that path verifies under a trusted key
//! (or the path is content-addressed and its CA field recomputes), exactly as Nix decides
//! whether it may substitute from it: the signature is checked, not matched by key name. A
//! narinfo that is there but does not verify, names another path, or lies outside the store
//! directory counts as not served. Clients that rely on an upstream must list it as a
//! substituter too: Nix resolves a closure across all its substituters.
//!
//! [`Upstreams::check_all`] asks every upstream in order for each path, with bounded
//! concurrency, and stops at the first that serves it.

use std::sync::Arc;

use futures::{FutureExt, StreamExt};

use crate::audit::{PathReport, Status};
use crate::cache::Cache;
use crate::nix::{StorePath, TrustedKeys};

/// One upstream: an opened cache and the keys its signatures are judged under.
pub struct Upstream {
    /// The upstream cache (any readable store: http(s), s3, file).
    pub cache: Arc<Cache>,
    /// The keys a signature of this upstream must verify under.
    pub keys: Arc<TrustedKeys>,
}

/// What the upstreams answered for one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// Upstream number `upstream` serves the path with a trusted signature (or as a
    /// content-addressed path).
    Trusted {
        /// Index of the upstream in [`Upstreams`].
        upstream: usize,
        /// The upstream narinfo's FileSize, when it has one.
        file_size: Option<u64>,
        /// The upstream narinfo's NarSize.
        nar_size: u64,
        /// The upstream narinfo's References: what a client must also get from some
        /// substituter.
        references: Vec<StorePath>,
    },
    /// Some upstream has a narinfo for the path but none that Nix would accept: the first
    /// such upstream and why (e.g. "untrusted: no signature verifies under a trusted key").
    NotTrusted {
        /// Index of the upstream in [`Upstreams`].
        upstream: usize,
        /// The verdict on its narinfo.
        status: Status,
        /// Why, for people.
        reason: String,
    },
    /// No upstream has a narinfo for the path.
    Missing,
    /// An upstream could not be asked (after its retries); the path's standing is unknown.
    Error(String),
}

impl Served {
    /// Whether a client listing the upstream as a substituter gets the path from it.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Served::Trusted { .. })
    }
}

/// The upstreams of a cache, asked in order.
#[derive(Default)]
pub struct Upstreams {
    list: Vec<Upstream>,
}

impl Upstreams {
    /// The upstreams, in the order they are asked.
    pub fn new(list: Vec<Upstream>) -> Upstreams {
        Upstreams { list }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The upstreams, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Upstream> {
        self.list.iter()
    }

    /// Upstream number `i`'s location, for messages (`?` when there is no such upstream).
    pub fn describe(&self, i: usize) -> String {
        self.list
            .get(i)
            .map(|u| u.cache.store().describe())
            .unwrap_or_else(|| "?".to_string())
    }

    /// Asks each upstream in order whether it serves `path` (see [`Served`]): the first that
    /// serves it with a trusted signature wins; otherwise the first narinfo found that is not
    /// trusted is reported; an upstream that cannot be asked makes the answer an error unless a
    /// later one serves the path.
    pub async fn check(&self, path: &StorePath) -> Served {
        let key = path.narinfo_key();
        let mut first_bad: Option<Served> = None;
        let mut error: Option<String> = None;
        for (i, up) in self.list.iter().enumerate() {
            let store_dir = match up.cache.store_dir().await {
                Ok(d) => d,
                Err(e) => {
                    error.get_or_insert_with(|| format!("{}: {e}", up.cache.store().describe()));
                    continue;
                }
            };
            let info = match up.cache.fetch_narinfo(&key).await {
                Ok(Some((_, info))) => info,
                Ok(None) => continue,
                Err(e) => {
                    error.get_or_insert_with(|| format!("{}: {e}", up.cache.origin(&key)));
                    continue;
                }
            };
            if info.store_path != *path {
                first_bad.get_or_insert_with(|| Served::NotTrusted {
                    upstream: i,
                    status: Status::Error,
                    reason: format!(
                        "{} describes {}, not {}",
                        up.cache.origin(&key),
                        info.store_path.base_name(),
                        path.base_name()
                    ),
                });
                continue;
            }
            let mut report = PathReport::judge(&key, &info, &up.keys);
            report.check_store_dir(&info, &store_dir);
            match report.status {
                Status::Trusted | Status::ContentAddressed => {
                    return Served::Trusted {
                        upstream: i,
                        file_size: info.file_size,
                        nar_size: info.nar_size,
                        references: info.references,
                    };
                }
                status => {
                    first_bad.get_or_insert_with(|| Served::NotTrusted {
                        upstream: i,
                        status,
                        reason: if report.reasons.is_empty() {
                            status.to_string()
                        } else {
                            format!("{status}: {}", report.reasons.join("; "))
                        },
                    });
                }
            }
        }
        first_bad
            .or(error.map(Served::Error))
            .unwrap_or(Served::Missing)
    }

    /// [`Upstreams::check`] for every path, `concurrency` at a time (at least 1); the answers
    /// in the order of `paths`. `done` is called once per answered path (progress).
    pub async fn check_all(
        &self,
        paths: &[StorePath],
        concurrency: usize,
        done: &(dyn Fn(&StorePath, &Served) + Sync),
    ) -> Vec<Served> {
        let mut out = vec![Served::Missing; paths.len()];
        if self.list.is_empty() {
            return out;
        }
        // By index and boxed as Send here, where the lifetimes are concrete, so that callers
        // can run this inside spawned jobs.
        let mut answers = futures::stream::iter(0..paths.len())
            .map(|i| async move { (i, self.check(&paths[i]).await) }.boxed())
            .buffer_unordered(concurrency.max(1));
        while let Some((i, served)) = answers.next().await {
            done(&paths[i], &served);
            out[i] = served;
        }
        out
    }
}

impl Upstreams {
    /// Every upstream's location, in order (for messages and JSON).
    pub fn describe_all(&self) -> Vec<String> {
        (0..self.list.len()).map(|i| self.describe(i)).collect()
    }
}

impl Upstreams {
    /// Asks the upstreams about every live row of `index` (`concurrency` at a time): the rows
    /// served, each with the upstream that serves it, and the totals by the cache's own
    /// NarSize and FileSize. Rows whose name is not a store path are left out.
    pub async fn check_index(
        &self,
        index: &std::sync::RwLock<crate::index::Index>,
        concurrency: usize,
    ) -> (
        std::collections::HashMap<crate::index::RowId, usize>,
        ServedTotals,
    ) {
        let (rows, paths, sizes): (Vec<_>, Vec<_>, Vec<_>) = {
            let idx = index.read().unwrap_or_else(|e| e.into_inner());
            let mut rows = Vec::new();
            let mut paths = Vec::new();
            let mut sizes = Vec::new();
            for r in idx.live() {
                if let Ok(p) = StorePath::from_base_name(&idx.base_name(r)) {
                    let row = idx.row(r);
                    rows.push(r);
                    paths.push(p);
                    sizes.push((row.nar_size, row.file_size));
                }
            }
            (rows, paths, sizes)
        };
        let answers = self.check_all(&paths, concurrency, &|_, _| {}).await;
        let mut served = std::collections::HashMap::new();
        let mut totals = ServedTotals::default();
        for (i, a) in answers.iter().enumerate() {
            totals.add(&paths[i], a, sizes[i].0, sizes[i].1);
            if let Served::Trusted { upstream, .. } = a {
                served.insert(rows[i], *upstream);
            }
        }
        (served, totals)
    }
}

/// How many of a set of paths the upstreams serve, and what that is worth: the totals
/// `push`, `info` and `gc` report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedTotals {
    /// Paths asked about.
    pub checked: u64,
    /// Paths an upstream serves with a trusted signature.
    pub served: u64,
    /// Their NarSize, summed.
    pub nar_bytes: u64,
    /// Their FileSize (compressed size), summed.
    pub file_bytes: u64,
    /// Paths an upstream has a narinfo for that does not verify (not served).
    pub not_trusted: u64,
    /// Paths whose standing is unknown because an upstream could not be asked.
    pub errors: u64,
    /// The first few reasons of the two above, for people (at most [`ServedTotals::EXAMPLES`]).
    pub examples: Vec<String>,
}

impl ServedTotals {
    /// How many reasons [`ServedTotals::examples`] keeps.
    pub const EXAMPLES: usize = 5;

    /// Counts one answer for `path`; `nar_bytes` and `file_bytes` are the path's sizes as
    /// the counting side knows them (they are added when the path is served).
    pub fn add(&mut self, path: &StorePath, served: &Served, nar_bytes: u64, file_bytes: u64) {
        self.checked += 1;
        let example = match served {
            Served::Trusted { .. } => {
                self.served += 1;
                self.nar_bytes += nar_bytes;
                self.file_bytes += file_bytes;
                None
            }
            Served::NotTrusted { reason, .. } => {
                self.not_trusted += 1;
                Some(format!("{}: {reason}", path.to_absolute()))
            }
            Served::Error(e) => {
                self.errors += 1;
                Some(format!("{}: {e}", path.to_absolute()))
            }
            Served::Missing => None,
        };
        if let Some(e) = example
            && self.examples.len() < Self::EXAMPLES
        {
            self.examples.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::{NarInfo, SecretKey};
    use crate::storage::CacheUrl;

    const STORE: &str = "/nix/store";

    /// A file:// cache in `dir` with `nix-cache-info`.
    async fn cache_in(dir: &std::path::Path) -> Arc<Cache> {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("nix-cache-info"),
            format!("StoreDir: {STORE}\nWantMassQuery: 1\nPriority: 40\n"),
        )
        .unwrap();
        let url = CacheUrl::parse(&format!("file://{}", dir.display())).unwrap();
        Arc::new(Cache::open(&url).await.unwrap())
    }

    fn narinfo(path: &StorePath, key: Option<&SecretKey>) -> NarInfo {
        let text = format!(
            "StorePath: {}\nURL: nar/{}.nar\nCompression: none\nNarHash: sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s\nNarSize: 120\nReferences: \n",
            path.to_absolute(),
            path.hash_part()
        );
        let mut info = NarInfo::parse(&text, "test").unwrap();
        if let Some(k) = key {
            let fp = info.fingerprint();
            info.sigs.push(k.sign(&fp).to_string());
        }
        info
    }

    fn write(dir: &std::path::Path, info: &NarInfo) {
        std::fs::write(dir.join(info.store_path.narinfo_key()), info.to_text()).unwrap();
    }

    fn path(c: char, name: &str) -> StorePath {
        StorePath::from_parts(&c.to_string().repeat(32), name).unwrap()
    }

    #[tokio::test]
    async fn the_first_upstream_with_a_verifying_signature_serves_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let good = SecretKey::generate("up-1").unwrap();
        let forged = SecretKey::generate("up-1").unwrap(); // same name, other key
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let (ca, cb) = (cache_in(&a).await, cache_in(&b).await);
        let signed = path('0', "signed");
        let bad_sig = path('1', "bad-sig");
        let only_b = path('2', "only-b");
        let nowhere = path('3', "nowhere");
        let unsigned = path('4', "unsigned");
        write(&a, &narinfo(&signed, Some(&good)));
        write(&a, &narinfo(&bad_sig, Some(&forged)));
        write(&a, &narinfo(&only_b, None));
        write(&b, &narinfo(&only_b, Some(&good)));
        write(&a, &narinfo(&unsigned, None));
        let keys: Arc<TrustedKeys> = Arc::new([good.public_key()].into_iter().collect());
        let ups = Upstreams::new(vec![
            Upstream {
                cache: ca,
                keys: keys.clone(),
            },
            Upstream { cache: cb, keys },
        ]);
        let paths = [signed, bad_sig, only_b, nowhere, unsigned];
        let count = std::sync::atomic::AtomicUsize::new(0);
        let got = ups
            .check_all(&paths, 3, &|_, _| {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .await;
        assert_eq!(count.into_inner(), 5);
        assert!(matches!(got[0], Served::Trusted { upstream: 0, .. }));
        assert!(
            matches!(
                got[1],
                Served::NotTrusted {
                    upstream: 0,
                    status: Status::Invalid,
                    ..
                }
            ),
            "{:?}",
            got[1]
        );
        assert!(matches!(got[2], Served::Trusted { upstream: 1, .. }));
        assert_eq!(got[3], Served::Missing);
        assert!(matches!(
            got[4],
            Served::NotTrusted {
                status: Status::Unsigned,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_narinfo_for_another_path_under_the_same_hash_is_not_served() {
        let tmp = tempfile::tempdir().unwrap();
        let k = SecretKey::generate("up-1").unwrap();
        let ca = cache_in(tmp.path()).await;
        let ours = path('5', "ours");
        write(tmp.path(), &narinfo(&path('5', "theirs"), Some(&k)));
        let ups = Upstreams::new(vec![Upstream {
            cache: ca,
            keys: Arc::new([k.public_key()].into_iter().collect()),
        }]);
        let got = ups.check(&ours).await;
        assert!(
            matches!(got, Served::NotTrusted { ref reason, .. } if reason.contains("theirs")),
            "{got:?}"
        );
    }
}
