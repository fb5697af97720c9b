//! What a versioned bucket keeps besides the current objects: noncurrent versions and delete
//! markers, counted and summed by kind of key from a parallel `ListObjectVersions`.
//!
//! The listing is split like the normal one ([`super::list_parallel_under`]): one scan per
//! nix32 first character, the `nar/` directory split the same way, and range scans for every
//! other key. Pages are folded into a [`VersionStats`] as they arrive; nothing per key is kept,
//! so memory stays bounded by the pages in flight.

use std::sync::Arc;

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};

use super::versions::{ObjectVersion, VersionMarker, VersionPage};
use super::{NIX32_CHARS, Store, StoreError, is_narinfo_key};
use crate::units::{human_size, thousands};

/// What a key holds, as the version statistics split it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A narinfo at the cache root (`<hash>.narinfo`).
    Narinfo,
    /// A NAR (anything under `nar/`).
    Nar,
    /// A file listing at the cache root (`<hash>.ls`).
    Listing,
    /// Anything else: `nix-cache-info`, logs, realisations, narscope's own objects, litter.
    Other,
}

/// What frees the bytes noncurrent versions hold, in words for the operator.
pub const FREES_NONCURRENT: &str =
    "`narscope gc purge`, or a lifecycle rule with NoncurrentVersionExpiration";

impl KeyKind {
    /// The plural name of the kind: `narinfos`, `NARs`, `listings`, `other`.
    pub fn plural(self) -> &'static str {
        match self {
            KeyKind::Narinfo => "narinfos",
            KeyKind::Nar => "NARs",
            KeyKind::Listing => "listings",
            KeyKind::Other => "other",
        }
    }

    /// The kind of `key` (relative to the cache root).
    pub fn of(key: &str) -> KeyKind {
        if is_narinfo_key(key) {
            KeyKind::Narinfo
        } else if key.starts_with("nar/") {
            KeyKind::Nar
        } else if !key.contains('/') && key.len() > 3 && key.ends_with(".ls") {
            KeyKind::Listing
        } else {
            KeyKind::Other
        }
    }
}

/// A number of objects and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CountBytes {
    /// How many.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl CountBytes {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }

    fn merge(&mut self, other: CountBytes) {
        self.count += other.count;
        self.bytes += other.bytes;
    }
}

/// One figure per [`KeyKind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ByKind<T> {
    /// Narinfos.
    pub narinfo: T,
    /// NARs.
    pub nar: T,
    /// File listings (`.ls`).
    pub listing: T,
    /// Everything else.
    pub other: T,
}

impl<T> ByKind<T> {
    /// The figure of `kind`.
    pub fn get(&self, kind: KeyKind) -> &T {
        match kind {
            KeyKind::Narinfo => &self.narinfo,
            KeyKind::Nar => &self.nar,
            KeyKind::Listing => &self.listing,
            KeyKind::Other => &self.other,
        }
    }

    fn get_mut(&mut self, kind: KeyKind) -> &mut T {
        match kind {
            KeyKind::Narinfo => &mut self.narinfo,
            KeyKind::Nar => &mut self.nar,
            KeyKind::Listing => &mut self.listing,
            KeyKind::Other => &mut self.other,
        }
    }

    /// The four figures with their kinds, in the order narinfo, NAR, listing, other.
    pub fn iter(&self) -> impl Iterator<Item = (KeyKind, &T)> {
        [
            KeyKind::Narinfo,
            KeyKind::Nar,
            KeyKind::Listing,
            KeyKind::Other,
        ]
        .into_iter()
        .map(move |k| (k, self.get(k)))
    }
}

impl ByKind<CountBytes> {
    /// The sum over all kinds.
    pub fn total(&self) -> CountBytes {
        let mut t = CountBytes::default();
        for (_, v) in self.iter() {
            t.merge(*v);
        }
        t
    }

    /// "N versions, B: narinfos n (b), NARs n (b), …" (kinds with none left out).
    pub fn describe(&self) -> String {
        let t = self.total();
        let total = format!("{} versions, {}", thousands(t.count), human_size(t.bytes));
        let parts: Vec<String> = self
            .iter()
            .filter(|(_, v)| v.count > 0)
            .map(|(k, v)| {
                format!(
                    "{} {} ({})",
                    k.plural(),
                    thousands(v.count),
                    human_size(v.bytes)
                )
            })
            .collect();
        if parts.is_empty() {
            total
        } else {
            format!("{total}: {}", parts.join(", "))
        }
    }
}

impl ByKind<u64> {
    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, v)| *v).sum()
    }

    /// "N: narinfos n, NARs n, …" (kinds with none left out).
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{} {}", k.plural(), thousands(*n)))
            .collect();
        let total = thousands(self.total());
        if parts.is_empty() {
            total
        } else {
            format!("{total}: {}", parts.join(", "))
        }
    }
}

/// What a version listing found: current versions for reference, and what the bucket keeps
/// beyond them (noncurrent versions and delete markers), by kind of key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VersionStats {
    /// Current versions (the objects a normal listing sees).
    pub current: CountBytes,
    /// Noncurrent versions: hidden by a newer version or a delete marker, still stored.
    pub noncurrent: ByKind<CountBytes>,
    /// Delete markers (current or not), which hold no bytes.
    pub delete_markers: ByKind<u64>,
}

impl VersionStats {
    /// Count one entry of a version listing.
    pub fn add(&mut self, v: &ObjectVersion) {
        let kind = KeyKind::of(&v.key);
        if v.delete_marker {
            *self.delete_markers.get_mut(kind) += 1;
        } else if v.is_latest {
            self.current.add(v.size);
        } else {
            self.noncurrent.get_mut(kind).add(v.size);
        }
    }

    /// Count every entry of a page.
    pub fn add_page(&mut self, page: &VersionPage) {
        for v in &page.versions {
            self.add(v);
        }
    }

    /// Whether the bucket keeps anything beyond its current versions.
    pub fn keeps_anything(&self) -> bool {
        self.noncurrent.total().count > 0 || self.delete_markers.total() > 0
    }
}

/// Lists every version and delete marker of the cache (S3 ListObjectVersions) in up to
/// `concurrency` simultaneous scans, and folds them into a [`VersionStats`]. `progress` is
/// called with the running figures after every page. The first error ends the listing.
pub async fn version_stats(
    store: Arc<dyn Store>,
    concurrency: usize,
    mut progress: impl FnMut(&VersionStats),
) -> Result<VersionStats, StoreError> {
    let mut stats = VersionStats::default();
    let mut pages = std::pin::pin!(list_versions_parallel(store, concurrency));
    while let Some(page) = pages.next().await {
        stats.add_page(&page?);
        progress(&stats);
    }
    Ok(stats)
}

/// Every version and delete marker of the cache, exactly once, as pages from up to
/// `concurrency` simultaneous scans: one per nix32 first character (and `e`, `o`, `t`, `u`) at
/// the root, with `nar/` split the same way, plus range scans for the keys no prefix covers.
/// Pages come in no particular order (each is in key order). The stream ends after the first
/// error.
pub fn list_versions_parallel(
    store: Arc<dyn Store>,
    concurrency: usize,
) -> impl Stream<Item = Result<VersionPage, StoreError>> + Send {
    let mut scans: Vec<BoxStream<'static, Result<VersionPage, StoreError>>> = Vec::new();
    for base in ["", "nar/"] {
        for c in NIX32_CHARS.chars().chain("eotu".chars()) {
            let prefix = format!("{base}{c}");
            if prefix == "n" {
                // `n…` at the root, except `nar/…` (scanned on its own below): the keys before
                // `nar/`, then those after it.
                let below = VScan {
                    prefix: "n".into(),
                    upper: Some("nar/".into()),
                    ..VScan::default()
                };
                let above = VScan {
                    prefix: "n".into(),
                    after: Some("nar/\u{10FFFF}".into()),
                    skip: Some("nar/".into()),
                    ..VScan::default()
                };
                scans.push(vscan(store.clone(), below).boxed());
                scans.push(vscan(store.clone(), above).boxed());
                continue;
            }
            let s = VScan {
                prefix,
                ..VScan::default()
            };
            scans.push(vscan(store.clone(), s).boxed());
        }
        // First characters no prefix scan covers; `after` is the greatest string starting
        // with the previous scanned character (the filter keeps the result exact anyway).
        let ranges: [(Option<&str>, Option<&str>); 3] = [
            (None, Some("0")),
            (Some("9\u{10FFFF}"), Some("a")),
            (Some("z\u{10FFFF}"), None),
        ];
        for (after, upper) in ranges {
            let s = VScan {
                prefix: base.to_string(),
                after: after.map(|a| format!("{base}{a}")),
                upper: upper.map(|u| format!("{base}{u}")),
                covered_under: Some(base.to_string()),
                skip: None,
            };
            scans.push(vscan(store.clone(), s).boxed());
        }
    }
    stream::iter(scans).flatten_unordered(Some(concurrency.max(1)))
}

/// One version scan: a prefix, where to start and stop, and what to drop.
#[derive(Clone, Default)]
struct VScan {
    /// The prefix listed.
    prefix: String,
    /// Start after this key.
    after: Option<String>,
    /// Stop before this key.
    upper: Option<String>,
    /// Drop keys whose first character after this base a prefix scan covers (range scans).
    covered_under: Option<String>,
    /// Drop keys under this prefix (scanned elsewhere).
    skip: Option<String>,
}

impl VScan {
    fn keep(&self, key: &str) -> bool {
        if let Some(skip) = &self.skip
            && key.starts_with(skip.as_str())
        {
            return false;
        }
        if let Some(base) = &self.covered_under {
            let covered = key
                .strip_prefix(base.as_str())
                .and_then(|rest| rest.chars().next())
                .is_some_and(|c| NIX32_CHARS.contains(c) || "eotu".contains(c));
            // At the root, `nar/…` belongs to the `nar/` scans (and `n` is covered anyway).
            if covered {
                return false;
            }
        }
        true
    }
}

struct VState {
    store: Arc<dyn Store>,
    scan: VScan,
    marker: Option<VersionMarker>,
    done: bool,
}

fn vscan(
    store: Arc<dyn Store>,
    scan: VScan,
) -> impl Stream<Item = Result<VersionPage, StoreError>> + Send {
    let marker = scan.after.clone().map(|key| VersionMarker {
        key,
        version_id: None,
    });
    let st = VState {
        store,
        scan,
        marker,
        done: false,
    };
    stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let page = st
                .store
                .list_versions_page(&st.scan.prefix, st.marker.take())
                .await;
            match page {
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Ok(mut page) => {
                    st.marker = page.next.take();
                    if st.marker.is_none() {
                        st.done = true;
                    }
                    if let Some(upper) = &st.scan.upper
                        && page
                            .versions
                            .iter()
                            .any(|v| v.key.as_str() >= upper.as_str())
                    {
                        st.done = true;
                        page.versions.retain(|v| v.key.as_str() < upper.as_str());
                    }
                    page.versions.retain(|v| st.scan.keep(&v.key));
                    if page.versions.is_empty() {
                        continue;
                    }
                    return Some((Ok(page), st));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: &str, latest: bool, marker: bool, size: u64) -> ObjectVersion {
        ObjectVersion {
            key: key.into(),
            version_id: "v".into(),
            is_latest: latest,
            delete_marker: marker,
            size,
            last_modified: None,
            etag: None,
        }
    }

    #[test]
    fn kinds() {
        let h = "0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r";
        assert_eq!(KeyKind::of(&format!("{h}.narinfo")), KeyKind::Narinfo);
        assert_eq!(KeyKind::of(&format!("nar/{h}.nar.xz")), KeyKind::Nar);
        assert_eq!(KeyKind::of(&format!("{h}.ls")), KeyKind::Listing);
        assert_eq!(KeyKind::of("nix-cache-info"), KeyKind::Other);
        assert_eq!(KeyKind::of(&format!("log/{h}-x.drv")), KeyKind::Other);
        assert_eq!(KeyKind::of("narscope/gc/plan.json"), KeyKind::Other);
        assert_eq!(KeyKind::of("x/y.ls"), KeyKind::Other);
    }

    #[test]
    fn folds_versions() {
        let h = "0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r";
        let page = VersionPage {
            versions: vec![
                v(&format!("{h}.narinfo"), true, false, 500),
                v(&format!("{h}.narinfo"), false, false, 400),
                v(&format!("{h}.narinfo"), false, false, 300),
                v(&format!("nar/{h}.nar.xz"), true, true, 0),
                v(&format!("nar/{h}.nar.xz"), false, false, 9000),
                v(&format!("{h}.ls"), false, true, 0),
                v(&format!("{h}.ls"), false, false, 70),
                v("nix-cache-info", true, false, 20),
            ],
            next: None,
        };
        let mut s = VersionStats::default();
        s.add_page(&page);
        assert_eq!(
            s.current,
            CountBytes {
                count: 2,
                bytes: 520
            }
        );
        assert_eq!(
            s.noncurrent.narinfo,
            CountBytes {
                count: 2,
                bytes: 700
            }
        );
        assert_eq!(
            s.noncurrent.nar,
            CountBytes {
                count: 1,
                bytes: 9000
            }
        );
        assert_eq!(
            s.noncurrent.listing,
            CountBytes {
                count: 1,
                bytes: 70
            }
        );
        assert_eq!(s.noncurrent.other, CountBytes::default());
        assert_eq!(
            s.noncurrent.total(),
            CountBytes {
                count: 4,
                bytes: 9770
            }
        );
        assert_eq!(s.delete_markers.nar, 1);
        assert_eq!(s.delete_markers.listing, 1);
        assert_eq!(s.delete_markers.total(), 2);
        assert!(s.keeps_anything());
        assert!(!VersionStats::default().keeps_anything());
    }

    #[test]
    fn range_scans_drop_covered_keys() {
        let root = VScan {
            covered_under: Some(String::new()),
            ..VScan::default()
        };
        assert!(root.keep(".narscope-probe/1-2"));
        assert!(root.keep("Zebra"));
        assert!(!root.keep("nar/abc"));
        assert!(!root.keep("0abc"));
        let n_above = VScan {
            skip: Some("nar/".into()),
            ..VScan::default()
        };
        assert!(!n_above.keep("nar/x"));
        assert!(n_above.keep("narscope/gc/x"));
    }
}
