//! Paths grouped by package (see [`super::name`]).

use std::collections::{HashMap, HashSet};

use super::name::split;
use super::{nar_identity, stored_size};
use crate::index::{Index, RowId};

/// One package: the paths whose names split to the same group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    /// The group (`openssl`, `openssl-dev`).
    pub name: String,
    /// Its paths, newest first (by LastModified; unknown ages last).
    pub rows: Vec<RowId>,
    /// Sum of NarSize.
    pub nar_bytes: u64,
    /// Stored bytes, shared NARs once.
    pub stored_bytes: u64,
    /// LastModified of the newest and oldest path (Unix seconds; `i64::MIN` when unknown).
    pub newest: i64,
    /// See `newest`.
    pub oldest: i64,
}

impl Package {
    /// Number of versions (paths).
    pub fn versions(&self) -> usize {
        self.rows.len()
    }
}

/// Stored bytes of some rows, shared NARs once.
pub fn stored_sum(idx: &Index, rows: impl Iterator<Item = RowId>) -> u64 {
    let mut seen: HashSet<&str> = HashSet::new();
    rows.filter(|&r| {
        let id = nar_identity(idx, r);
        id.is_empty() || seen.insert(id)
    })
    .map(|r| stored_size(idx, r))
    .sum()
}

/// The live rows grouped by package, biggest stored bytes first (then by name).
pub fn by_package(idx: &Index) -> Vec<Package> {
    by_package_where(idx, |_| true)
}

/// Like [`by_package`], over the live rows `keep` accepts (a plan's survivors, say).
pub fn by_package_where(idx: &Index, keep: impl Fn(RowId) -> bool) -> Vec<Package> {
    let mut groups: HashMap<String, Vec<RowId>> = HashMap::new();
    for r in idx.live().filter(|&r| keep(r)) {
        groups
            .entry(split(idx.name(r)).group())
            .or_default()
            .push(r);
    }
    let mut out: Vec<Package> = groups
        .into_iter()
        .map(|(name, mut rows)| {
            rows.sort_by_key(|&r| std::cmp::Reverse(idx.row(r).mtime));
            let known = rows
                .iter()
                .map(|&r| idx.row(r).mtime)
                .filter(|&m| m != i64::MIN);
            Package {
                nar_bytes: rows.iter().map(|&r| idx.row(r).nar_size).sum(),
                stored_bytes: stored_sum(idx, rows.iter().copied()),
                newest: known.clone().max().unwrap_or(i64::MIN),
                oldest: known.min().unwrap_or(i64::MIN),
                name,
                rows,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.stored_bytes
            .cmp(&a.stored_bytes)
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}
