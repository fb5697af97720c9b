//! Retention policies beyond roots and ages, pure (no I/O): `--keep-versions N` ranks the
//! live paths of each package group by LastModified ([`newest_versions`]), and `--max-size`
//! evicts the least recently pushed paths the hard roots do not reach until the stored bytes
//! fit ([`evict`]).
//!
//! Eviction only ever takes a *top* of what remains kept (a path no kept path references),
//! so what it evicts is closed under referrers and every kept closure stays complete. It
//! is a priority queue over the candidates' referrer counts: O((V + E) log V).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::index::{Index, RowId};
use crate::space::name::split;
use crate::space::stored_size;

use super::plan::Keep;

/// What `--max-size` reached: the budget, and the stored bytes (shared NARs once) of the
/// live paths before and after the plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetReport {
    /// The budget (`--max-size`), in bytes.
    pub budget: u64,
    /// Stored bytes of every live path before the plan.
    pub before: u64,
    /// Stored bytes of the live paths the plan keeps.
    pub after: u64,
    /// Whether `after` is within the budget.
    pub reached: bool,
    /// Stored bytes of what the hard roots hold (pins, roots files, local Nix GC roots, the
    /// grace period, `--keep-younger-than`, unreadable narinfos, with their closures): the
    /// least any plan can keep.
    pub held_by_roots: u64,
}

/// `--keep-versions N`: a whole number of versions, at least 1 (the CLI and the dashboard's
/// `:gc` read it alike).
pub fn parse_keep_versions(n: &str) -> Result<u32, String> {
    match n.parse::<u32>() {
        Ok(0) => Err("--keep-versions 0 would keep no version: give at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "--keep-versions needs a whole number of versions (e.g. 3), not '{n}'"
        )),
    }
}

/// `--max-size SIZE`: a size (`500M`, `10GiB`, `2TB`, see [`crate::units::parse_size`])
/// above zero.
pub fn parse_max_size(s: &str) -> Result<u64, String> {
    match crate::units::parse_size(s) {
        Ok(0) => Err(format!(
            "--max-size {s} would evict every unpinned path: give a budget above 0"
        )),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("--max-size: {e}; a size like 10G, 500MiB or 1.5TB")),
    }
}

impl BudgetReport {
    /// The budget in one line: reached, or what holds the bytes when it is not.
    pub fn line(&self) -> String {
        use crate::units::human_size;
        if self.reached {
            format!(
                "budget {}: reached (cache {} → {})",
                human_size(self.budget),
                human_size(self.before),
                human_size(self.after)
            )
        } else {
            format!(
                "budget {}: NOT reached: {} is held by pins, roots and the grace period \
                 (nothing else to evict; cache {} → {})",
                human_size(self.budget),
                human_size(self.held_by_roots),
                human_size(self.before),
                human_size(self.after)
            )
        }
    }
}

/// The order of versions in a group: newest first by LastModified (unknown ages count as
/// newest), ties by the greater name (`hello-2.12` before `hello-2.11`), then by the hash.
fn newer_first(idx: &Index, a: RowId, b: RowId) -> std::cmp::Ordering {
    let age = |r: RowId| match idx.row(r).mtime {
        i64::MIN => i64::MAX,
        m => m,
    };
    age(b)
        .cmp(&age(a))
        .then_with(|| idx.name(b).cmp(idx.name(a)))
        .then_with(|| idx.row(a).digest.cmp(&idx.row(b).digest))
}

/// The package group of a row (`openssl`, `openssl-dev`, `hello.drv`).
pub fn group_of(idx: &Index, r: RowId) -> String {
    split(idx.name(r)).group()
}

/// The live, readable rows among the newest `n` of their package group, each with its rank
/// (1 = newest).
pub fn newest_versions(idx: &Index, n: u32) -> Vec<(RowId, u32)> {
    let mut groups: HashMap<String, Vec<RowId>> = HashMap::new();
    for r in idx.live().filter(|&r| !idx.row(r).is_unknown()) {
        groups.entry(group_of(idx, r)).or_default().push(r);
    }
    let mut out = Vec::new();
    for rows in groups.values_mut() {
        rows.sort_by(|&a, &b| newer_first(idx, a, b));
        out.extend(rows.iter().take(n as usize).zip(1..).map(|(&r, k)| (r, k)));
    }
    out.sort_unstable();
    out
}

/// "1st", "2nd", "3rd", "4th", "11th", "21st".
pub fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// When a row's narinfo was pushed (its LastModified) as a UTC date: `2026-12-04`.
pub fn pushed_date(idx: &Index, r: RowId) -> String {
    date(idx.row(r).mtime)
}

/// A Unix time as a UTC date, `2026-12-04` ("an unknown date" for `i64::MIN`).
pub fn date(secs: i64) -> String {
    if secs == i64::MIN {
        return "an unknown date".into();
    }
    let (y, m, d, _) = crate::units::civil(secs);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The stored NAR object of each live row, shared NARs once (a row without a URL has one of
/// its own).
struct Nars {
    /// The identity of each row (`u32::MAX` for rows that are not live).
    ident: Vec<u32>,
    /// Stored bytes of each identity.
    size: Vec<u64>,
}

impl Nars {
    fn new(idx: &Index) -> Nars {
        let sizes = crate::space::Sizes::of(idx);
        let mut size: Vec<u64> = (0..sizes.slots() as u32)
            .map(|s| sizes.slot_size(s))
            .collect();
        let mut ident = vec![u32::MAX; idx.len()];
        for r in idx.live() {
            ident[r as usize] = match sizes.slot(r) {
                Some(s) => s,
                None => {
                    size.push(stored_size(idx, r));
                    (size.len() - 1) as u32
                }
            };
        }
        Nars { ident, size }
    }

    /// Stored bytes of the live rows `kept` accepts, and the users of each identity among
    /// them.
    fn stored(&self, idx: &Index, kept: impl Fn(RowId) -> bool) -> Stored<'_> {
        let mut s = Stored {
            nars: self,
            users: vec![0; self.size.len()],
            total: 0,
        };
        for r in idx.live().filter(|&r| kept(r)) {
            let i = self.ident[r as usize] as usize;
            if s.users[i] == 0 {
                s.total += self.size[i];
            }
            s.users[i] += 1;
        }
        s
    }
}

/// Stored bytes of what is kept, shared NARs once, kept up to date as paths leave.
struct Stored<'a> {
    nars: &'a Nars,
    /// Kept users of each identity.
    users: Vec<u32>,
    /// Stored bytes of what is kept.
    total: u64,
}

impl Stored<'_> {
    /// A kept row leaves: its NAR's bytes leave with the NAR's last kept user.
    fn remove(&mut self, r: RowId) {
        let i = self.nars.ident[r as usize] as usize;
        self.users[i] = self.users[i].saturating_sub(1);
        if self.users[i] == 0 {
            self.total = self.total.saturating_sub(self.nars.size[i]);
        }
    }
}

/// What [`evict`] did.
#[derive(Debug, Default)]
pub(super) struct Eviction {
    /// The evicted rows, by row id.
    pub evicted: Vec<RowId>,
    /// The budget reached (or not).
    pub report: BudgetReport,
}

/// `--max-size`: the kept live rows (`keep` not [`Keep::No`], not `pruned`) that no hard
/// root reaches (`hard`) are candidates; the least recently pushed candidate that no kept
/// row references is evicted (its `keep` becomes [`Keep::No`]), again and again, until the
/// stored bytes of what is kept fit `budget`.
pub(super) fn evict(
    idx: &Index,
    keep: &mut [Keep],
    hard: &[bool],
    pruned: &[bool],
    budget: u64,
) -> Eviction {
    let n = idx.len();
    let kept = |keep: &[Keep], r: RowId| keep[r as usize] != Keep::No && !pruned[r as usize];
    let nars = Nars::new(idx);
    let before = nars.stored(idx, |_| true).total;
    let held_by_roots = nars
        .stored(idx, |r| hard[r as usize] && !pruned[r as usize])
        .total;
    let mut stored = nars.stored(idx, |r| kept(keep, r));
    let mut candidate = vec![false; n];
    for r in idx.live() {
        candidate[r as usize] = kept(keep, r) && !hard[r as usize];
    }
    // Referrers of each candidate among the kept rows: hard rows reference only hard rows
    // (their closure is marked), so only candidates can refer to candidates.
    let mut referrers = vec![0u32; n];
    for r in idx.live().filter(|&r| candidate[r as usize]) {
        for &t in idx.refs(r) {
            if t != r && (t as usize) < n && candidate[t as usize] {
                referrers[t as usize] += 1;
            }
        }
    }
    let mut tops: BinaryHeap<Reverse<(i64, &str, RowId)>> = idx
        .live()
        .filter(|&r| candidate[r as usize] && referrers[r as usize] == 0)
        .map(|r| Reverse((idx.row(r).mtime, idx.name(r), r)))
        .collect();
    let mut evicted = Vec::new();
    while stored.total > budget {
        let Some(Reverse((_, _, c))) = tops.pop() else {
            break;
        };
        keep[c as usize] = Keep::No;
        candidate[c as usize] = false;
        evicted.push(c);
        stored.remove(c);
        for &t in idx.refs(c) {
            if t != c && (t as usize) < n && candidate[t as usize] {
                referrers[t as usize] -= 1;
                if referrers[t as usize] == 0 {
                    tops.push(Reverse((idx.row(t).mtime, idx.name(t), t)));
                }
            }
        }
    }
    // What a now evicted path kept (as a reference) and stays is explained again: by a
    // kept version that still reaches it, else by the budget alone.
    if !evicted.is_empty() {
        let mut queue = Vec::new();
        for r in idx.live().filter(|&r| candidate[r as usize]) {
            match keep[r as usize] {
                Keep::Ref(_) => keep[r as usize] = Keep::Budget,
                Keep::Version { .. } => queue.push(r),
                _ => {}
            }
        }
        while let Some(x) = queue.pop() {
            for &t in idx.refs(x) {
                if t != x
                    && (t as usize) < n
                    && candidate[t as usize]
                    && keep[t as usize] == Keep::Budget
                {
                    keep[t as usize] = Keep::Ref(x);
                    queue.push(t);
                }
            }
        }
    }
    evicted.sort_unstable();
    Eviction {
        evicted,
        report: BudgetReport {
            budget,
            before,
            after: stored.total,
            reached: stored.total <= budget,
            held_by_roots,
        },
    }
}
