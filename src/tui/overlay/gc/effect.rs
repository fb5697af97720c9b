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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::NarObject;
    use crate::index::testdata::info;
    use crate::nix::TrustedKeys;

    /// curl goes entirely; jq stays, and shares its NAR object with curl-8.0 (another
    /// package): each package counts it, the cache's totals count it once, and deleting curl
    /// does not free it from the cache.
    #[test]
    fn a_package_that_goes_and_a_nar_shared_across_packages() {
        let curl_a = info("curl-a", "curl-8.0.0", &[]);
        let curl_b = info("curl-b", "curl-8.1.0", &[]);
        let mut jq = info("jq-a", "jq-1.7.1", &[]);
        jq.url = curl_a.url.clone();
        let all = [(&curl_a, 2000), (&curl_b, 3000), (&jq, 2000)];
        let mut idx =
            Index::from_narinfos("file:///c", &TrustedKeys::new(), all.iter().map(|x| x.0));
        idx.set_nars(
            all.iter()
                .map(|(i, size)| NarObject {
                    key: i.url.clone(),
                    size: *size,
                    mtime: 0,
                })
                .collect(),
        );
        let row = |n: &str| idx.live().find(|&r| idx.name(r) == n).unwrap();
        let e = PackageEffect::compute(&idx, &[row("curl-8.0.0"), row("curl-8.1.0")]);
        assert_eq!(
            e.changed,
            vec![PackageChange {
                name: "curl".into(),
                before: 5000,
                after: 0,
                versions_before: 2,
                versions_after: 0,
            }]
        );
        assert_eq!((e.unchanged, e.unchanged_bytes), (1, 2000));
        // 2000 (shared, once) + 3000 before; the shared NAR stays with jq.
        assert_eq!((e.before, e.after, e.freed()), (5000, 2000, 3000));
        assert_eq!((e.paths_before, e.paths_after), (3, 1));
        assert!(
            e.why(0).starts_with("curl: every version goes (2)"),
            "{}",
            e.why(0)
        );
        assert_eq!(
            e.confirm_lines(0)[1],
            "3 → 1 paths; 1 package(s) change, most freed:"
        );
        assert_eq!(
            e.confirm_lines(0)[2],
            "  … and 1 more (the GC view's Effect by package)"
        );

        // Nothing to delete: no package changes, the totals stay.
        let none = PackageEffect::compute(&idx, &[]);
        assert!(none.changed.is_empty());
        assert_eq!((none.before, none.after, none.unchanged), (5000, 5000, 2));
        assert_eq!(none.line(0), Some(EffectLine::Total));
        assert_eq!(none.line(1), Some(EffectLine::Unchanged));
        assert_eq!(
            none.confirm_lines(3)[1],
            "3 → 3 paths; 0 package(s) change."
        );
    }
}
