//! The plan: pure (no I/O, no async). It works on a complete [`Index`] and the extra
//! listings of `log/` and `debuginfo/` already read ([`Extras`]), at the time given in
//! [`GcOptions::now`]; the same inputs always give the same plan.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::index::{Index, RowId, flags, unix_secs};
use crate::jobs::delete::DeletePlan;
use crate::storage::{ObjectMeta, is_temp_litter};
use crate::units::human_size;

use super::retention::{self, BudgetReport};

/// Where a root came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum RootSource {
    /// A pin in the cache.
    Pin(String),
    /// A file of store paths given with `--roots-file` (or the dashboard's `:gc --roots`).
    File,
    /// The local Nix store's GC roots.
    Nix,
}

impl std::fmt::Display for RootSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootSource::Pin(n) => write!(f, "pin '{n}'"),
            RootSource::File => f.write_str("the roots file"),
            RootSource::Nix => f.write_str("a local Nix GC root"),
        }
    }
}

/// Default grace period.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(6 * 3600);

/// Extra objects outside the index (`log/`, `debuginfo/`) with what keeps them.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// Build logs (`log/<drv>`): deleted with the last narinfo whose Deriver names them.
    pub logs: Vec<ObjectMeta>,
    /// `debuginfo/<id>` objects with the NAR key their `archive` points to.
    pub debuginfo: Vec<(ObjectMeta, Option<String>)>,
    /// Deriver base names of rows (for logs), by row.
    pub derivers: HashMap<RowId, String>,
    /// Objects under `.narscope-probe/` (scratch objects of conditional-write probes; those
    /// of killed probes are litter).
    pub probes: Vec<ObjectMeta>,
}

/// Retention policies beyond roots and ages (`gc --keep-versions`, `--max-size`).
///
/// The hard roots always hold: pins, roots files, local Nix GC roots, the grace period
/// (young and undatable narinfos), `--keep-younger-than`, with their closures. Without a
/// policy, everything else is garbage. With `keep_versions`, the newest N live paths of each
/// package group ([`crate::space::name::Split::group`]: `openssl` and `openssl-dev` apart)
/// are kept too, with their closures, and only the rest is garbage. With `max_size`, what
/// would be kept beyond the hard roots is evicted, least recently pushed first and only
/// where no kept path references it, until the stored bytes (shared NARs once) fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N versions (by LastModified) of each package, with their closures.
    pub keep_versions: Option<u32>,
    /// Evict unpinned closures, least recently pushed first, until the stored bytes (shared
    /// NARs once) fit this budget.
    pub max_size: Option<u64>,
}

impl Retention {
    /// Whether any policy is set (then a request without roots is not refused: the policy
    /// says what to keep).
    pub fn is_set(&self) -> bool {
        self.keep_versions.is_some() || self.max_size.is_some()
    }

    /// The policies in words, as flags: "--keep-versions 3 --max-size 10 GiB".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.keep_versions {
            parts.push(format!("--keep-versions {n}"));
        }
        if let Some(b) = self.max_size {
            parts.push(format!("--max-size {}", crate::units::human_size(b)));
        }
        parts.join(" ")
    }
}

/// What collecting does.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Nothing younger than this is deleted (and young narinfos are roots).
    pub grace: Duration,
    /// Keep every narinfo newer than this, with its closure.
    pub keep_younger: Option<Duration>,
    /// The time the ages are measured from.
    pub now: SystemTime,
    /// The paths an upstream serves, and whether to prune them (`gc --upstream`).
    pub upstream: Arc<UpstreamRows>,
    /// Retention policies (`--keep-versions`, `--max-size`).
    pub retention: Retention,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GRACE,
            keep_younger: None,
            now: SystemTime::now(),
            upstream: Arc::default(),
            retention: Retention::default(),
        }
    }
}

/// The rows of the cache an upstream serves with a trusted signature (see
/// [`crate::upstream`]), for `gc --upstream` and `--prune-upstream`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamRows {
    /// Served rows, each with the upstream that serves it (an index into `names`).
    pub served: HashMap<RowId, usize>,
    /// The upstreams' locations, in the order they were asked.
    pub names: Vec<String>,
    /// Delete the served rows that only references keep (`--prune-upstream`): what a root
    /// itself keeps (a pin's or a roots file's path, a young narinfo, one newer than the
    /// retention age) stays, and so does everything a kept path reaches that the upstream
    /// does not serve.
    pub prune: bool,
}

impl UpstreamRows {
    /// The location of the upstream that serves `row`, if one does.
    pub fn serving(&self, row: RowId) -> Option<&str> {
        self.served
            .get(&row)
            .map(|&i| self.names.get(i).map(String::as_str).unwrap_or("?"))
    }
}

/// Why a row is kept (or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Not kept: garbage, deleted by the collection.
    No,
    /// A root (index into [`GcPlan::roots`]).
    Root(u32),
    /// Newer than `keep_younger`.
    Young,
    /// Newer than the grace period (or of unknown age).
    Grace,
    /// Referenced by a kept row.
    Ref(RowId),
    /// A narinfo that could not be read (or not yet): what it references is unknown, so it
    /// is never garbage, and while one exists nothing is collected (see [`GcPlan::refusal`]).
    Unknown,
    /// One of the newest versions of its package group (`--keep-versions`); `rank` 1 is
    /// the newest.
    Version {
        /// Its place among the group's versions, newest first (1 = newest).
        rank: u32,
    },
    /// Beyond the hard roots, and within the `--max-size` budget (without
    /// `--keep-versions`: least recently pushed paths were evicted first).
    Budget,
}

/// A garbage-collection plan.
#[derive(Clone, Debug, Default)]
pub struct GcPlan {
    /// Why each row is kept, by row id.
    pub keep: Vec<Keep>,
    /// The roots found in the cache: (source, store path).
    pub roots: Vec<(RootSource, String)>,
    /// Roots that are not in the cache.
    pub missing_roots: Vec<(RootSource, String)>,
    /// What would be deleted, in order.
    pub delete: DeletePlan,
    /// Garbage narinfos (the rows of [`GcPlan::delete`]).
    pub garbage: Vec<RowId>,
    /// NARs no narinfo points to (old enough; part of the deletion).
    pub orphan_nars: Vec<String>,
    /// `.ls` listings, logs, debuginfo links and temp files deleted: (key, reason, bytes).
    pub other: Vec<(String, &'static str, u64)>,
    /// Garbage narinfos kept only because they are younger than the grace period.
    pub kept_by_grace: u64,
    /// Orphan objects kept only because they are younger than the grace period.
    pub young_orphans: u64,
    /// Live narinfos whose NAR is missing (already broken; GC does not touch them).
    pub dangling: Vec<RowId>,
    /// (live narinfo, missing reference) pairs already broken before GC.
    pub missing_refs: Vec<(RowId, RowId)>,
    /// Live paths that stay.
    pub kept: u64,
    /// Bytes of objects deleted.
    pub bytes: u64,
    /// Listed narinfos that could not be read: while there is one, nothing is collected.
    pub unknown: Vec<crate::index::UnknownRow>,
    /// Rows that only references kept and an upstream serves, deleted with
    /// `--prune-upstream` (part of [`GcPlan::garbage`]); their referrers stay and rely on
    /// the upstream for them.
    pub pruned: Vec<RowId>,
    /// What the upstreams serve (from [`GcOptions::upstream`]).
    pub upstream: Arc<UpstreamRows>,
    /// The retention policies the plan applied (from [`GcOptions::retention`]).
    pub retention: Retention,
    /// What `--max-size` reached (`None` without it).
    pub budget: Option<BudgetReport>,
    /// Rows `--max-size` evicted (part of [`GcPlan::garbage`]), by row id.
    pub evicted: Vec<RowId>,
    /// Live paths that stay only because of a retention policy (the newest versions and
    /// their closures, or what fits the budget), not because a hard root reaches them.
    pub kept_by_policy: u64,
    /// Live paths `--keep-versions` leaves as garbage: older versions no root, young path
    /// or kept version reaches (not counting what `--max-size` evicted).
    pub dropped_by_versions: u64,
}

impl GcPlan {
    /// "kept: pin 'release' → app-1 → lib-1" or "garbage: …", for one row; a row an upstream
    /// serves says so (`served by upstream URL`).
    pub fn why(&self, idx: &Index, id: RowId) -> String {
        let Some(up) = self.upstream.serving(id) else {
            return self.why_kept(idx, id);
        };
        if self.pruned.contains(&id) {
            format!(
                "garbage: served by upstream {up} with a trusted signature (--prune-upstream); \
                 the paths that reference it get it from there"
            )
        } else {
            format!(
                "{}; served by upstream {up} with a trusted signature",
                self.why_kept(idx, id)
            )
        }
    }

    fn why_kept(&self, idx: &Index, id: RowId) -> String {
        let mut chain = Vec::new();
        let mut cur = id;
        for _ in 0..1000 {
            let done = |mut chain: Vec<String>, last: String| {
                chain.push(last);
                chain.reverse();
                chain.join(" → ")
            };
            match self.keep.get(cur as usize).copied().unwrap_or(Keep::No) {
                Keep::No => {
                    return if chain.is_empty() {
                        self.why_garbage(idx, id)
                    } else {
                        "kept".into()
                    };
                }
                Keep::Root(r) => {
                    let (src, _) = &self.roots[r as usize];
                    return format!("kept by {src}: {}", done(chain, idx.name(cur).into()));
                }
                Keep::Young => {
                    return format!(
                        "kept: newer than the retention age: {}",
                        done(chain, idx.name(cur).into())
                    );
                }
                Keep::Grace => {
                    return format!(
                        "kept: younger than the grace period (a push may be running): {}",
                        done(chain, idx.name(cur).into())
                    );
                }
                Keep::Ref(parent) => {
                    chain.push(idx.name(cur).to_string());
                    cur = parent;
                }
                Keep::Unknown => {
                    return format!(
                        "kept: the narinfo could not be read, so nothing it might reference is \
                         collected: {}",
                        done(chain, idx.narinfo_key(cur))
                    );
                }
                Keep::Version { rank } => {
                    let n = self.retention.keep_versions.unwrap_or(rank);
                    let group = retention::group_of(idx, cur);
                    let policy = if n == 1 {
                        format!("the newest version of {group}")
                    } else {
                        format!(
                            "one of the {n} newest versions of {group} ({} newest)",
                            retention::ordinal(rank)
                        )
                    };
                    let fits = match self.retention.max_size {
                        Some(b) => format!(
                            "; within the --max-size budget of {} (least recently pushed are \
                             evicted first)",
                            human_size(b)
                        ),
                        None => String::new(),
                    };
                    return format!(
                        "kept: {policy}: {}{fits}",
                        done(chain, idx.name(cur).into())
                    );
                }
                Keep::Budget => {
                    return format!(
                        "kept: fits the --max-size budget of {} (least recently pushed are \
                         evicted first): {}",
                        human_size(self.retention.max_size.unwrap_or(0)),
                        done(chain, idx.name(cur).into())
                    );
                }
            }
        }
        "kept".into()
    }

    /// Why a garbage row is garbage, naming the policy that drops it.
    fn why_garbage(&self, idx: &Index, id: RowId) -> String {
        if self.evicted.binary_search(&id).is_ok() {
            return format!(
                "garbage: evicted by --max-size {} (pushed {}, least recently pushed first)",
                human_size(self.retention.max_size.unwrap_or(0)),
                retention::pushed_date(idx, id)
            );
        }
        if let Some(n) = self.retention.keep_versions {
            return format!(
                "garbage: older than the {n} newest version(s) of {}, and no root, young path \
                 or kept version reaches it",
                retention::group_of(idx, id)
            );
        }
        "garbage: no root reaches it and it is older than the grace period".into()
    }

    /// Delete requests the plan costs.
    pub fn requests(&self) -> usize {
        self.delete.requests()
    }

    /// Why this plan may not be carried out (`None` when it may). A narinfo that cannot be
    /// read might reference anything, and its NAR looks like an orphan: collecting anything
    /// then is a guess, so it is refused.
    pub fn refusal(&self) -> Option<String> {
        if self.unknown.is_empty() {
            return None;
        }
        let malformed = self
            .unknown
            .iter()
            .filter(|u| u.state == "malformed")
            .count();
        Some(format!(
            "refusing to collect: {} narinfo(s) could not be read ({} malformed, {} unreadable or not read yet); \
             what they reference, and which NARs are theirs, is unknown",
            self.unknown.len(),
            malformed,
            self.unknown.len() - malformed
        ))
    }
}

fn young(mtime: i64, now: i64, age: Duration) -> bool {
    // Unknown ages count as young: never delete what cannot be dated.
    mtime == i64::MIN || now.saturating_sub(mtime) < age.as_secs() as i64
}

/// Make the plan (see the module docs). `roots` are (source, store path); `extras` the
/// listings outside the index.
pub fn plan(
    idx: &Index,
    roots: &[(RootSource, String)],
    extras: &Extras,
    opts: &GcOptions,
) -> GcPlan {
    let now = unix_secs(Some(opts.now));
    let mut p = GcPlan {
        keep: vec![Keep::No; idx.len()],
        ..GcPlan::default()
    };
    let mut queue: Vec<RowId> = Vec::new();
    for r in idx.live() {
        if idx.row(r).is_unknown() {
            p.keep[r as usize] = Keep::Unknown;
        }
    }
    for (src, path) in roots {
        match idx.find_path(path).filter(|&r| idx.row(r).is_live()) {
            Some(r) => {
                if matches!(p.keep[r as usize], Keep::No | Keep::Unknown) {
                    p.keep[r as usize] = Keep::Root(p.roots.len() as u32);
                    queue.push(r);
                }
                p.roots.push((src.clone(), path.clone()));
            }
            None => p.missing_roots.push((src.clone(), path.clone())),
        }
    }
    // The roots' closures first, so a path a root reaches is explained by that root even
    // when it is young; then young paths (and what they reach) among the rest.
    let mark = |keep: &mut Vec<Keep>, queue: &mut Vec<RowId>| {
        while let Some(x) = queue.pop() {
            for &r in idx.refs(x) {
                if (r as usize) < keep.len() && keep[r as usize] == Keep::No {
                    keep[r as usize] = Keep::Ref(x);
                    queue.push(r);
                }
            }
        }
    };
    mark(&mut p.keep, &mut queue);
    for r in idx.live() {
        if p.keep[r as usize] != Keep::No {
            continue;
        }
        let m = idx.row(r).mtime;
        if young(m, now, opts.grace) {
            p.keep[r as usize] = Keep::Grace;
            queue.push(r);
        } else if let Some(k) = opts.keep_younger
            && young(m, now, k)
        {
            p.keep[r as usize] = Keep::Young;
            queue.push(r);
        }
    }
    mark(&mut p.keep, &mut queue);
    // What the hard roots hold; then the retention policies keep more of the rest.
    let hard: Vec<bool> = p.keep.iter().map(|k| *k != Keep::No).collect();
    p.retention = opts.retention;
    if let Some(n) = opts.retention.keep_versions {
        for (r, rank) in retention::newest_versions(idx, n) {
            if p.keep[r as usize] == Keep::No {
                p.keep[r as usize] = Keep::Version { rank };
                queue.push(r);
            }
        }
        mark(&mut p.keep, &mut queue);
    } else if opts.retention.max_size.is_some() {
        for r in idx.live() {
            if p.keep[r as usize] == Keep::No {
                p.keep[r as usize] = Keep::Budget;
            }
        }
    }
    // Served by an upstream and kept only as a reference (not young: a young narinfo is a
    // root, whatever reaches it): pruned, when asked. What they
    // reference stays kept (as the closure of the kept paths), unless served and pruned too.
    p.upstream = opts.upstream.clone();
    let mut pruned = vec![false; idx.len()];
    if opts.upstream.prune {
        for r in idx.live() {
            let m = idx.row(r).mtime;
            let rooted_by_age =
                young(m, now, opts.grace) || opts.keep_younger.is_some_and(|k| young(m, now, k));
            if matches!(p.keep[r as usize], Keep::Ref(_))
                && !rooted_by_age
                && opts.upstream.served.contains_key(&r)
            {
                pruned[r as usize] = true;
                p.pruned.push(r);
            }
        }
    }
    // --max-size: evict the least recently pushed of what the policies keep (never what a
    // hard root reaches), tops first, until the stored bytes fit.
    if opts.retention.keep_versions.is_some() {
        p.dropped_by_versions = idx
            .live()
            .filter(|&r| p.keep[r as usize] == Keep::No)
            .count() as u64;
    }
    if let Some(budget) = opts.retention.max_size {
        let ev = retention::evict(idx, &mut p.keep, &hard, &pruned, budget);
        p.evicted = ev.evicted;
        p.budget = Some(ev.report);
    }
    p.kept_by_policy = idx
        .live()
        .filter(|&r| !hard[r as usize] && p.keep[r as usize] != Keep::No && !pruned[r as usize])
        .count() as u64;
    // Narinfos kept by grace alone (nothing else reaches them) are reported as such.
    p.kept_by_grace = idx
        .live()
        .filter(|&r| p.keep[r as usize] == Keep::Grace)
        .count() as u64;
    p.garbage = idx
        .live()
        .filter(|&r| p.keep[r as usize] == Keep::No || pruned[r as usize])
        .collect();
    let mut del = crate::jobs::delete::plan(idx, &p.garbage, false);
    // Garbage is closed under referrers, but for pruned rows: their referrers stay, and get
    // them from the upstream.
    debug_assert!(
        del.broken.iter().all(|&(_, t)| pruned[t as usize]),
        "garbage is closed under referrers"
    );
    del.broken.clear();
    p.unknown = del.unknown.clone();
    // A garbage narinfo's NAR that is itself young stays (someone just uploaded it again).
    del.nar_keys.retain(|k| match idx.nar(k) {
        Some(n) if young(n.mtime, now, opts.grace) => {
            p.young_orphans += 1;
            del.nar_bytes = del.nar_bytes.saturating_sub(n.size);
            false
        }
        _ => true,
    });
    // NARs no live narinfo points to (by position in the sorted NAR listing).
    let nars = idx.nars();
    let nar_pos = |k: &str| nars.binary_search_by(|o| o.key.as_str().cmp(k)).ok();
    let mut used = vec![false; nars.len()];
    for r in idx.live() {
        if let Some(i) = crate::cache::nar_key(idx.url_of(r))
            .ok()
            .and_then(|k| nar_pos(&k))
        {
            used[i] = true;
        }
    }
    for (n, _) in nars.iter().zip(&used).filter(|(_, u)| !**u) {
        if young(n.mtime, now, opts.grace) {
            p.young_orphans += 1;
            continue;
        }
        p.orphan_nars.push(n.key.clone());
        del.nar_keys.push(n.key.clone());
        del.nar_bytes += n.size;
    }
    // Root-level leftovers: listings without a live narinfo, temp files.
    for o in &idx.others {
        let reason = if let Some(h) = o.key.strip_suffix(".ls") {
            let owner_live = idx.find(h).is_some_and(|r| idx.row(r).is_live());
            if owner_live {
                continue;
            }
            "listing without a narinfo"
        } else if is_temp_litter(&o.key) {
            "temp file"
        } else {
            continue;
        };
        if young(o.mtime, now, opts.grace) {
            p.young_orphans += 1;
            continue;
        }
        p.other.push((o.key.clone(), reason, o.size));
        del.extra_keys.push(o.key.clone());
        p.bytes += o.size;
    }
    // Logs of derivations whose outputs are all gone; debuginfo whose NAR goes.
    let live_derivers: HashSet<&str> = extras
        .derivers
        .iter()
        .filter(|(r, _)| {
            p.keep.get(**r as usize).is_some_and(|k| *k != Keep::No) && !pruned[**r as usize]
        })
        .map(|(_, d)| d.as_str())
        .collect();
    let all_derivers: HashSet<&str> = extras.derivers.values().map(String::as_str).collect();
    for l in &extras.logs {
        let drv = l.key.strip_prefix("log/").unwrap_or(&l.key);
        // Only logs of derivations we know produced a garbage path: unknown logs are kept.
        if live_derivers.contains(drv) || !all_derivers.contains(drv) {
            continue;
        }
        if young(unix_secs(l.last_modified), now, opts.grace) {
            p.young_orphans += 1;
            continue;
        }
        p.other
            .push((l.key.clone(), "build log of garbage", l.size));
        del.extra_keys.push(l.key.clone());
        p.bytes += l.size;
    }
    let final_nars: HashSet<&String> = del.nar_keys.iter().collect();
    for (d, archive) in &extras.debuginfo {
        let Some(a) = archive else { continue };
        if !final_nars.contains(a) {
            continue;
        }
        if young(unix_secs(d.last_modified), now, opts.grace) {
            p.young_orphans += 1;
            continue;
        }
        p.other
            .push((d.key.clone(), "debuginfo of a deleted NAR", d.size));
        del.extra_keys.push(d.key.clone());
        p.bytes += d.size;
    }
    // Scratch objects of killed conditional-write probes: past the grace period, and never
    // younger than a probe may take.
    for o in &extras.probes {
        let written = unix_secs(crate::storage::probe_written_at(o));
        if young(
            written,
            now,
            opts.grace.max(crate::storage::PROBE_LITTER_AGE),
        ) {
            p.young_orphans += 1;
            continue;
        }
        p.other.push((o.key.clone(), "probe litter", o.size));
        del.extra_keys.push(o.key.clone());
        p.bytes += o.size;
    }
    let ls_size: HashMap<&str, u64> = idx
        .others
        .iter()
        .filter(|o| o.key.ends_with(".ls"))
        .map(|o| (o.key.as_str(), o.size))
        .collect();
    for k in &del.ls_keys {
        let size = ls_size.get(k.as_str()).copied().unwrap_or(0);
        p.other.push((k.clone(), "listing of garbage", size));
        p.bytes += size;
    }
    // What is broken already, among what stays.
    for r in idx.live() {
        if p.keep[r as usize] == Keep::No || pruned[r as usize] {
            continue;
        }
        if idx.row(r).has(flags::NAR_MISSING) {
            p.dangling.push(r);
        }
        for &t in idx.refs(r) {
            if !idx.row(t).is_live() {
                p.missing_refs.push((r, t));
            }
        }
    }
    p.kept = idx.live().count() as u64 - p.garbage.len() as u64;
    p.bytes += del.nar_bytes;
    p.delete = del;
    p
}

/// Only what both plans delete: the plan made just before deleting may keep more (a push
/// arrived), never less. (The caller closes the result under referrers again, see
/// [`super::final_plan`].)
pub fn intersect(first: &GcPlan, second: GcPlan) -> GcPlan {
    let mut p = second;
    let first_rows: HashSet<RowId> = first.garbage.iter().copied().collect();
    let first_keys: HashSet<&String> = first
        .delete
        .nar_keys
        .iter()
        .chain(&first.delete.ls_keys)
        .chain(&first.delete.extra_keys)
        .collect();
    for level in &mut p.delete.levels {
        level.retain(|r| first_rows.contains(r));
    }
    p.delete.levels.retain(|l| !l.is_empty());
    p.garbage.retain(|r| first_rows.contains(r));
    p.pruned.retain(|r| first_rows.contains(r));
    // With --max-size the second look may evict other paths (a push arrived): only those
    // both looks evict go. The budget report stays the second look's.
    p.evicted.retain(|r| first_rows.contains(r));
    p.delete.nar_keys.retain(|k| first_keys.contains(k));
    p.delete.ls_keys.retain(|k| first_keys.contains(k));
    p.delete.extra_keys.retain(|k| first_keys.contains(k));
    p
}
