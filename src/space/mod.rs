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
}

impl Report {
    /// Builds the whole report from the live rows of `idx`.
    pub fn build(idx: &Index, granularity: timeline::Granularity) -> Report {
        let packages = group::by_package(idx);
        let live: Vec<RowId> = idx.live().collect();
        Report {
            stored_bytes: group::stored_sum(idx, live.iter().copied()),
            nar_bytes: live.iter().map(|&r| idx.row(r).nar_size).sum(),
            paths: live.len() as u64,
            timeline: timeline::build(idx, &live, granularity),
            closures: closures::biggest(idx),
            packages,
            generation: idx.generation,
        }
    }
}
