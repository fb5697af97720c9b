//! Where the space of a cache goes: paths grouped by package ([`group`]), bytes added over
//! time ([`timeline`]) and the biggest closures with what only they hold ([`closures`]), all
//! computed from the local [`Index`] without I/O. The dashboard's space view, `info
//! --by-package` and gc's retention policies (`--keep-versions`, `--max-size`) are built on it.
//!
//! Sizes: a path's *NAR bytes* are its NarSize; its *stored bytes* are the size of its NAR
//! object as listed, else its FileSize (see [`stored_size`]). Several narinfos may point to
//! one NAR object (the same contents under two store paths): every sum of stored bytes
//! counts such a NAR once ([`nar_identity`]).

pub mod closures;
pub mod group;
pub mod name;
pub mod timeline;

use crate::index::{Index, RowId};

/// Bytes the path's NAR takes in storage: the listed NAR object's size, else the narinfo's
/// FileSize, else 0 (neither known).
pub fn stored_size(idx: &Index, id: RowId) -> u64 {
    let row = idx.row(id);
    if idx.nars_listed
        && let Ok(k) = crate::cache::nar_key(idx.url_of(id))
        && let Some(n) = idx.nar(&k)
    {
        return n.size;
    }
    row.file_size().unwrap_or(0)
}

/// What identifies the stored NAR object of a path: its URL ("" when unknown; such paths
/// share nothing).
pub fn nar_identity(idx: &Index, id: RowId) -> &str {
    idx.url_of(id)
}

/// The stored size of every live path's NAR, computed once for a whole report: each NAR
/// object gets a slot (paths sharing a NAR share its slot), so sums that count a shared NAR
/// once need no hashing per path.
#[derive(Clone, Debug, Default)]
pub struct Sizes {
    /// Slot of each row's NAR (`u32::MAX`: no NAR URL, the row's own FileSize counts).
    slot: Vec<u32>,
    /// Stored size of each slot.
    size: Vec<u64>,
}

impl Sizes {
    /// The slots of the live rows of `idx`.
    pub fn of(idx: &Index) -> Sizes {
        use std::hash::BuildHasher;
        let mut slot = vec![u32::MAX; idx.len()];
        let mut size = Vec::new();
        // Rows by a 64-bit hash of their NAR URL, sorted: equal URLs end up next to each
        // other (a sort is a sequential pass; a hash map of a million URLs is a million
        // cache misses). Equal hashes are told apart by comparing the URLs.
        let hasher = foldhash::fast::FixedState::default();
        let mut keyed: Vec<(u64, RowId)> = idx
            .live()
            .filter_map(|r| {
                let id = nar_identity(idx, r);
                (!id.is_empty()).then(|| (hasher.hash_one(id), r))
            })
            .collect();
        keyed.sort_unstable();
        for run in keyed.chunk_by(|a, b| a.0 == b.0) {
            for (k, &(_, r)) in run.iter().enumerate() {
                if slot[r as usize] != u32::MAX {
                    continue;
                }
                let s = size.len() as u32;
                size.push(stored_size(idx, r));
                slot[r as usize] = s;
                let id = nar_identity(idx, r);
                for &(_, other) in &run[k + 1..] {
                    if slot[other as usize] == u32::MAX && nar_identity(idx, other) == id {
                        slot[other as usize] = s;
                    }
                }
            }
        }
        Sizes { slot, size }
    }

    /// The slot of a row's NAR, if it has a NAR URL.
    pub fn slot(&self, r: RowId) -> Option<u32> {
        self.slot
            .get(r as usize)
            .copied()
            .filter(|&s| s != u32::MAX)
    }

    /// How many NAR objects (slots) there are.
    pub fn slots(&self) -> usize {
        self.size.len()
    }

    /// The stored size of a slot.
    pub fn slot_size(&self, s: u32) -> u64 {
        self.size[s as usize]
    }

    /// Scratch marks over the slots, for [`Sizes::sum`].
    pub fn marks(&self) -> Marks {
        Marks {
            marks: vec![0; self.size.len()],
            round: 0,
        }
    }

    /// Stored bytes of `rows`, each NAR object once (`marks` from [`Sizes::marks`]; any
    /// earlier sum's marks are forgotten).
    pub fn sum(&self, idx: &Index, rows: impl Iterator<Item = RowId>, marks: &mut Marks) -> u64 {
        marks.next_round();
        rows.map(|r| match self.slot(r) {
            Some(s) if marks.first(s) => self.size[s as usize],
            Some(_) => 0,
            None => stored_size(idx, r),
        })
        .sum()
    }
}

/// Which slots a sum has counted (see [`Sizes::sum`]).
#[derive(Clone, Debug)]
pub struct Marks {
    marks: Vec<u32>,
    round: u32,
}

impl Marks {
    /// Forget every mark.
    pub fn next_round(&mut self) {
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.round = 1;
        }
    }

    /// Marks slot `s`; whether it was unmarked in this round.
    pub fn first(&mut self, s: u32) -> bool {
        let m = &mut self.marks[s as usize];
        let first = *m != self.round;
        *m = self.round;
        first
    }
}

/// Everything the space view shows, computed at once (see [`Report::build`]).
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Packages, biggest stored bytes first.
    pub packages: Vec<group::Package>,
    /// Bytes and paths added per period.
    pub timeline: timeline::Timeline,
    /// The roots (paths nothing in the cache references), biggest closure first.
    pub closures: Vec<closures::BigClosure>,
    /// Stored bytes of the whole cache (shared NARs once).
    pub stored_bytes: u64,
    /// NAR bytes of the whole cache.
    pub nar_bytes: u64,
    /// Live paths.
    pub paths: u64,
    /// The index generation it was built from.
    pub generation: u64,
    /// The NAR sizes it was built with (for one package's timeline later: see
    /// [`timeline::build_sized`]; rows added since count their own FileSize).
    pub sizes: std::sync::Arc<Sizes>,
}

impl Report {
    /// Only the packages and the totals (no timeline, no closures): what `info --by-package`
    /// prints.
    pub fn build_packages(idx: &Index) -> Report {
        let live: Vec<RowId> = idx.live().collect();
        let sizes = std::sync::Arc::new(Sizes::of(idx));
        Report {
            stored_bytes: sizes.sum(idx, live.iter().copied(), &mut sizes.marks()),
            nar_bytes: live.iter().map(|&r| idx.row(r).nar_size).sum(),
            paths: live.len() as u64,
            packages: group::by_package_sized(idx, &sizes, |_| true),
            generation: idx.generation,
            sizes,
            ..Report::default()
        }
    }

    /// Builds the whole report from the live rows of `idx`.
    pub fn build(idx: &Index, granularity: timeline::Granularity) -> Report {
        let sizes = std::sync::Arc::new(Sizes::of(idx));
        // The closures on a second thread: they take as long as the rest together.
        let (closures, packages) = std::thread::scope(|s| {
            let closures = s.spawn(|| closures::biggest_sized(idx, &sizes, closures::WALK_BUDGET));
            let packages = group::by_package_sized(idx, &sizes, |_| true);
            (
                closures
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
                packages,
            )
        });
        let live: Vec<RowId> = idx.live().collect();
        Report {
            stored_bytes: sizes.sum(idx, live.iter().copied(), &mut sizes.marks()),
            nar_bytes: live.iter().map(|&r| idx.row(r).nar_size).sum(),
            paths: live.len() as u64,
            timeline: timeline::build_sized(idx, &sizes, &live, granularity),
            closures,
            sizes,
            packages,
            generation: idx.generation,
        }
    }
}
