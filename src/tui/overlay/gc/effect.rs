//! What a plan does to the space view: stored bytes and versions per package before and
//! after the collection ("Effect by package"), computed once with the plan (off the UI
//! thread, in [`super::summary::GcSummary::new`]) from the space core's grouping.
//!
//! Bytes are *stored* bytes (the NAR objects as listed), a NAR shared by several paths of a
//! package counted once in that package; the totals count a NAR shared by several packages
//! once for the whole cache, so they may be less than the sum of the rows.

use std::collections::HashMap;

use crate::index::{Index, RowId};
use crate::space::group::{by_package, by_package_where, stored_sum};
use crate::units::{human_size, thousands};

/// One package whose stored bytes or versions the plan changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageChange {
    /// The package (`openssl`, `openssl-dev`), as the space view names it.
    pub name: String,
    /// Stored bytes before the collection.
    pub before: u64,
    /// Stored bytes after it (0 when no version stays).
    pub after: u64,
    /// Versions (paths) before.
    pub versions_before: usize,
    /// Versions (paths) after.
    pub versions_after: usize,
}

impl PackageChange {
    /// Stored bytes the collection frees in this package.
    pub fn freed(&self) -> u64 {
        self.before.saturating_sub(self.after)
    }

    /// "3→1".
    pub fn versions(&self) -> String {
        format!("{}→{}", self.versions_before, self.versions_after)
    }
}

/// The plan's effect on the packages of the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageEffect {
    /// The packages that change, most freed bytes first (then most versions removed, then
    /// by name).
    pub changed: Vec<PackageChange>,
    /// Packages the plan leaves as they are.
    pub unchanged: usize,
    /// Their stored bytes.
    pub unchanged_bytes: u64,
    /// Stored bytes of the cache's paths before, shared NARs once.
    pub before: u64,
    /// The same after the collection.
    pub after: u64,
    /// Live paths before.
    pub paths_before: u64,
    /// Live paths after.
    pub paths_after: u64,
}

/// A line of the effect table (what the cursor can be on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectLine<'a> {
    /// A package that changes.
    Package(&'a PackageChange),
    /// The totals of the cache.
    Total,
    /// The packages that do not change, in one line.
    Unchanged,
}

impl PackageEffect {
    /// The effect of deleting `garbage` (a plan's garbage narinfos) from `idx`.
    pub fn compute(idx: &Index, garbage: &[RowId]) -> PackageEffect {
        let mut gone = vec![false; idx.len()];
        for &r in garbage {
            if let Some(g) = gone.get_mut(r as usize) {
                *g = true;
            }
        }
        let stays = |r: RowId| !gone.get(r as usize).copied().unwrap_or(false);
        let after: HashMap<String, (u64, usize)> = by_package_where(idx, stays)
            .into_iter()
            .map(|p| {
                let v = p.versions();
                (p.name, (p.stored_bytes, v))
            })
            .collect();
        let mut effect = PackageEffect::default();
        for p in by_package(idx) {
            let (a, va) = after.get(&p.name).copied().unwrap_or((0, 0));
            if a == p.stored_bytes && va == p.versions() {
                effect.unchanged += 1;
                effect.unchanged_bytes += p.stored_bytes;
                continue;
            }
            effect.changed.push(PackageChange {
                versions_before: p.versions(),
                versions_after: va,
                before: p.stored_bytes,
                after: a,
                name: p.name,
            });
        }
        effect.changed.sort_by(|a, b| {
            b.freed()
                .cmp(&a.freed())
                .then_with(|| {
                    (b.versions_before - b.versions_after.min(b.versions_before))
                        .cmp(&(a.versions_before - a.versions_after.min(a.versions_before)))
                })
                .then_with(|| a.name.cmp(&b.name))
        });
        effect.before = stored_sum(idx, idx.live());
        effect.after = stored_sum(idx, idx.live().filter(|&r| stays(r)));
        effect.paths_before = idx.live().count() as u64;
        effect.paths_after = idx.live().filter(|&r| stays(r)).count() as u64;
        effect
    }

    /// Stored bytes freed over the whole cache (shared NARs once).
    pub fn freed(&self) -> u64 {
        self.before.saturating_sub(self.after)
    }

    /// Lines of the table: the packages that change, the totals, then the unchanged ones in
    /// one line (when there are any).
    pub fn line_count(&self) -> usize {
        self.changed.len() + 1 + usize::from(self.unchanged > 0)
    }

    /// The line at `n`.
    pub fn line(&self, n: usize) -> Option<EffectLine<'_>> {
        match n.checked_sub(self.changed.len()) {
            None => self.changed.get(n).map(EffectLine::Package),
            Some(0) => Some(EffectLine::Total),
            Some(1) if self.unchanged > 0 => Some(EffectLine::Unchanged),
            Some(_) => None,
        }
    }

    /// The totals in one line: "stored 6.24 KiB → 1.10 KiB (−5.14 KiB) · 12 → 2 paths · 9
    /// package(s) change".
    pub fn totals(&self) -> String {
        format!(
            "stored {} → {} (−{}) · {} → {} paths · {} package(s) change",
            human_size(self.before),
            human_size(self.after),
            human_size(self.freed()),
            thousands(self.paths_before),
            thousands(self.paths_after),
            thousands(self.changed.len() as u64)
        )
    }

    /// What the line at `n` means, for the bottom of the view.
    pub fn why(&self, n: usize) -> String {
        match self.line(n) {
            Some(EffectLine::Package(p)) if p.versions_after == 0 => format!(
                "{}: every version goes ({}), freeing {} of stored bytes",
                p.name,
                p.versions_before,
                human_size(p.freed())
            ),
            Some(EffectLine::Package(p)) => format!(
                "{}: {} of {} version(s) stay; {} of {} stored bytes freed (a NAR shared by \
                 two of its paths counts once)",
                p.name,
                p.versions_after,
                p.versions_before,
                human_size(p.freed()),
                human_size(p.before)
            ),
            Some(EffectLine::Total) => format!(
                "the cache's paths before and after, a NAR shared by several packages counted \
                 once: {}",
                self.totals()
            ),
            Some(EffectLine::Unchanged) => format!(
                "{} package(s) keep every version ({})",
                thousands(self.unchanged as u64),
                human_size(self.unchanged_bytes)
            ),
            None => String::new(),
        }
    }

    /// The confirmation's lines: the totals and the `top` packages that free the most.
    pub fn confirm_lines(&self, top: usize) -> Vec<String> {
        // Short lines: the confirmation is narrow and does not wrap.
        let mut lines = vec![
            format!(
                "Effect: stored {} → {} (−{})",
                human_size(self.before),
                human_size(self.after),
                human_size(self.freed())
            ),
            format!(
                "{} → {} paths; {} package(s) change{}",
                thousands(self.paths_before),
                thousands(self.paths_after),
                thousands(self.changed.len() as u64),
                if self.changed.is_empty() {
                    "."
                } else {
                    ", most freed:"
                }
            ),
        ];
        for p in self.changed.iter().take(top) {
            lines.push(format!(
                "  {:>11}  {:>9}  {}",
                format!("−{}", human_size(p.freed())),
                p.versions(),
                p.name
            ));
        }
        if self.changed.len() > top {
            lines.push(format!(
                "  … and {} more (the GC view's Effect by package)",
                self.changed.len() - top
            ));
        }
        lines
    }
}
