//! Paths grouped by package (see [`super::name`]).

use std::collections::{HashMap, HashSet};

use super::name::split;
use super::{Sizes, nar_identity, stored_size};
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
    by_package_sized(idx, &Sizes::of(idx), keep)
}

/// [`by_package_where`] with the NAR sizes already known.
pub fn by_package_sized(idx: &Index, sizes: &Sizes, keep: impl Fn(RowId) -> bool) -> Vec<Package> {
    let mut marks = sizes.marks();
    // Keyed by the borrowed parts (no string per path); the group's name is made once.
    let mut groups: HashMap<(&str, Option<&str>), Vec<RowId>> = HashMap::new();
    for r in idx.live().filter(|&r| keep(r)) {
        let s = split(idx.name(r));
        groups.entry((s.name, s.output)).or_default().push(r);
    }
    let mut out: Vec<Package> = groups
        .into_iter()
        .map(|((name, output), mut rows)| {
            rows.sort_by_key(|&r| std::cmp::Reverse(idx.row(r).mtime));
            let known = rows
                .iter()
                .map(|&r| idx.row(r).mtime)
                .filter(|&m| m != i64::MIN);
            Package {
                nar_bytes: rows.iter().map(|&r| idx.row(r).nar_size).sum(),
                stored_bytes: sizes.sum(idx, rows.iter().copied(), &mut marks),
                newest: known.clone().max().unwrap_or(i64::MIN),
                oldest: known.min().unwrap_or(i64::MIN),
                name: super::name::Split {
                    name,
                    version: "",
                    output,
                }
                .group(),
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

/// A column packages can be sorted by (the space view's columns, `info --by-package --sort`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Column {
    /// The group's name.
    Name,
    /// Number of versions (paths).
    Versions,
    /// Sum of NarSize.
    Nar,
    /// Stored bytes, shared NARs once.
    #[default]
    Stored,
    /// The newest path's age.
    Newest,
    /// The oldest path's age.
    Oldest,
}

impl Column {
    /// Every column, in the order the space view shows them.
    pub const ALL: [Column; 6] = [
        Column::Name,
        Column::Versions,
        Column::Nar,
        Column::Stored,
        Column::Newest,
        Column::Oldest,
    ];

    /// The column's name (as `--sort` takes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Versions => "versions",
            Column::Nar => "nar",
            Column::Stored => "stored",
            Column::Newest => "newest",
            Column::Oldest => "oldest",
        }
    }

    /// The column named `s` (see [`Column::as_str`]).
    pub fn parse(s: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The order a first sort by this column takes: names A→Z, ages youngest first (the
    /// most recent push on top), sizes and counts biggest first.
    pub fn natural_descending(self) -> bool {
        !matches!(self, Column::Name)
    }
}

/// Sorts `packages` by `column` (descending: biggest, most versions, newest, Z→A first);
/// ties by name, so the order is stable across rebuilds.
pub fn sort_packages(packages: &mut [Package], column: Column, descending: bool) {
    packages.sort_by(|a, b| {
        let o = match column {
            Column::Name => a.name.cmp(&b.name),
            Column::Versions => a.rows.len().cmp(&b.rows.len()),
            Column::Nar => a.nar_bytes.cmp(&b.nar_bytes),
            Column::Stored => a.stored_bytes.cmp(&b.stored_bytes),
            Column::Newest => a.newest.cmp(&b.newest),
            Column::Oldest => a.oldest.cmp(&b.oldest),
        };
        let o = if descending { o.reverse() } else { o };
        o.then_with(|| a.name.cmp(&b.name))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testdata::info;
    use crate::nix::TrustedKeys;

    #[test]
    fn packages_group_versions_apart_from_outputs_and_sort_by_any_column() {
        let all = [
            info("o1", "openssl-3.0.13", &[]),
            info("o2", "openssl-3.0.14", &[]),
            info("od", "openssl-3.0.14-dev", &[]),
            info("h", "hello-2.12.1", &[]),
            info("hd", "hello-2.12.1.drv", &[]),
            info("f", "foo-unstable-2024-01-01", &[]),
            info("s", "source", &[]),
        ];
        let mut idx = Index::from_narinfos("file:///c", &TrustedKeys::new(), all.iter());
        for (i, r) in idx.rows_mut().iter_mut().enumerate() {
            r.mtime = 1_000 + i as i64;
        }
        let mut p = by_package(&idx);
        let names = |p: &[Package]| p.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
        // Stored bytes first (openssl has two paths), then by name.
        assert_eq!(
            names(&p),
            [
                "openssl",
                "foo-unstable",
                "hello",
                "hello.drv",
                "openssl-dev",
                "source"
            ]
        );
        let ossl = &p[0];
        assert_eq!((ossl.versions(), ossl.stored_bytes), (2, 800));
        assert_eq!((ossl.newest, ossl.oldest), (1_001, 1_000));
        assert_eq!(idx.name(ossl.rows[0]), "openssl-3.0.14", "newest first");
        sort_packages(&mut p, Column::Newest, true);
        assert_eq!(p[0].name, "source");
        sort_packages(&mut p, Column::Name, false);
        assert_eq!(p[0].name, "foo-unstable");
        sort_packages(&mut p, Column::Versions, false);
        assert_eq!(p.last().unwrap().name, "openssl");
        assert_eq!(Column::parse("nar"), Some(Column::Nar));
        assert_eq!(Column::parse("size"), None);
        // A plan's survivors: only what `keep` accepts.
        let kept = by_package_where(&idx, |r| idx.name(r) != "openssl-3.0.13");
        assert_eq!(kept[0].name, "foo-unstable");
        let o = kept.iter().find(|x| x.name == "openssl").unwrap();
        assert_eq!(o.versions(), 1);
    }
}
