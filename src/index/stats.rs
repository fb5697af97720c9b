//! Reports over the index: [`Totals`] (counts and sizes), [`Problems`] (what looks broken)
//! and [`ClosureStats`] (one path's closure).

use super::{Comp, Index, RowId, RowStatus, flags};

/// How many [`Comp`] values there are (`Other` is the last).
const COMP_COUNT: usize = Comp::Other as usize + 1;

/// Counts and sizes over the live rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Live narinfos (listed now; phantoms and removed rows not counted).
    pub paths: u64,
    /// Sum of NarSize.
    pub nar_bytes: u64,
    /// Sum of FileSize (where given).
    pub file_bytes: u64,
    /// Rows per status (see [`Totals::status`]).
    by_status: [u64; RowStatus::ALL.len()],
    /// Rows and FileSize bytes per compression (see [`Totals::comp`]).
    by_comp: [(u64, u64); COMP_COUNT],
    /// Bytes of all NAR objects listed.
    pub nar_object_bytes: u64,
    /// NAR objects listed.
    pub nar_objects: u64,
}

/// Problems an operator should know about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems {
    /// Narinfos whose NAR is not in the listing (only when NARs were listed).
    pub dangling: Vec<RowId>,
    /// NAR objects no narinfo points to.
    pub orphan_nars: Vec<usize>,
    /// (row, referenced row) pairs whose reference is not in the cache.
    pub missing_refs: Vec<(RowId, RowId)>,
    /// Narinfos whose StorePath does not match their key.
    pub key_mismatch: Vec<RowId>,
    /// Narinfos that could not be read.
    pub unreadable: Vec<RowId>,
    /// `.ls` listings without a narinfo, temp files and other stray objects at the root
    /// (indices into [`Index::others`]; misnamed narinfos and secret keys are not counted here).
    pub stray: Vec<usize>,
    /// Objects at the root named like a narinfo that name no store path (indices into
    /// [`Index::others`], see [`crate::nix::store_path::narinfo_key_problem`]). They are no
    /// rows: nothing references them, and gc and delete leave them alone.
    pub misnamed: Vec<usize>,
    /// Secret keys stored in the cache (indices into [`Index::secret_keys`]).
    pub secret_keys: Vec<usize>,
    /// What is wrong with `nix-cache-info`, in words.
    pub cache_info: Vec<String>,
}

impl Totals {
    /// Live rows with verdict `s`.
    pub fn status(&self, s: RowStatus) -> u64 {
        self.by_status.get(s as usize).copied().unwrap_or(0)
    }

    /// Live rows with compression `c`, and the sum of their FileSize.
    pub fn comp(&self, c: Comp) -> (u64, u64) {
        self.by_comp.get(c as usize).copied().unwrap_or((0, 0))
    }

    /// The largest count over all verdicts (0 when there are no rows).
    pub fn max_status(&self) -> u64 {
        self.by_status.iter().copied().max().unwrap_or(0)
    }

    fn status_mut(&mut self, s: RowStatus) -> &mut u64 {
        &mut self.by_status[s as usize]
    }

    fn comp_mut(&mut self, c: Comp) -> &mut (u64, u64) {
        &mut self.by_comp[c as usize]
    }
}

/// The closure of one path through its References, as [`Index::closure`] counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClosureStats {
    /// Live paths in the closure, the path itself included.
    pub paths: u64,
    /// Sum of their NarSize.
    pub nar_bytes: u64,
    /// Sum of their FileSize (where given).
    pub file_bytes: u64,
    /// References in the closure whose narinfo is not in the cache.
    pub missing: u64,
}

impl Index {
    /// The closure of `id` through References (see [`ClosureStats`]).
    pub fn closure(&self, id: RowId) -> ClosureStats {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![id];
        let (mut n, mut nar, mut file, mut missing) = (0, 0, 0, 0);
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            let row = self.row(r);
            if !row.is_live() {
                missing += 1;
                continue;
            }
            n += 1;
            nar += row.nar_size;
            file += row.file_size().unwrap_or(0);
            stack.extend(self.refs(r).iter().copied().filter(|x| !seen.contains(x)));
        }
        ClosureStats {
            paths: n,
            nar_bytes: nar,
            file_bytes: file,
            missing,
        }
    }

    /// Totals over live rows.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for r in self.rows.iter().filter(|r| r.is_live()) {
            t.paths += 1;
            t.nar_bytes += r.nar_size;
            t.file_bytes += r.file_size().unwrap_or(0);
            *t.status_mut(r.status) += 1;
            let c = t.comp_mut(r.comp);
            c.0 += 1;
            c.1 += r.file_size().unwrap_or(0);
        }
        t.nar_objects = self.nars.len() as u64;
        t.nar_object_bytes = self.nars.iter().map(|n| n.size).sum();
        t
    }

    /// Everything that looks broken.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::default();
        let mut used = vec![false; self.nars.len()];
        for (i, r) in self.rows.iter().enumerate() {
            let id = i as RowId;
            if !r.is_live() {
                continue;
            }
            if r.has(flags::UNREADABLE) {
                p.unreadable.push(id);
            }
            if r.has(flags::KEY_MISMATCH) {
                p.key_mismatch.push(id);
            }
            if r.has(flags::NAR_MISSING) {
                p.dangling.push(id);
            }
            if r.url.len > 0
                && let Ok(k) = crate::cache::nar_key(self.span(r.url))
                && let Ok(pos) = self.nars.binary_search_by(|n| n.key.as_str().cmp(&k))
                && let Some(u) = used.get_mut(pos)
            {
                *u = true;
            }
            for &rf in self.refs(id) {
                if !self.row(rf).is_live() {
                    p.missing_refs.push((id, rf));
                }
            }
        }
        if self.nars_listed {
            p.orphan_nars = used
                .iter()
                .enumerate()
                .filter(|(_, u)| !**u)
                .map(|(i, _)| i)
                .collect();
        }
        p.secret_keys = (0..self.secret_keys.len()).collect();
        for (i, o) in self.others.iter().enumerate() {
            let ls_owner = o
                .key
                .strip_suffix(".ls")
                .and_then(|h| self.find(h))
                .is_some_and(|id| self.row(id).is_live());
            if crate::nix::store_path::narinfo_key_problem(&o.key).is_some() {
                p.misnamed.push(i);
            } else if self.secret_keys.iter().any(|k| k.object == o.key) {
                // A problem of its own, above.
            } else if !ls_owner {
                p.stray.push(i);
            }
        }
        match &self.cache_info {
            None if self.scanned_at.is_some() => {
                p.cache_info
                    .push("nix-cache-info is missing: Nix refuses to use the cache".into());
            }
            None => {}
            Some(text) => match crate::nix::CacheInfo::parse_strict(text) {
                Ok(ci) if !ci.is_nix_store() => p.cache_info.push(
                    "nix-cache-info's StoreDir is not /nix/store: Nix will not substitute from it"
                        .into(),
                ),
                Ok(_) => {}
                Err(e) => p.cache_info.push(format!("nix-cache-info: {e}")),
            },
        }
        p
    }
}
