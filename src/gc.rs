//! Garbage collection of a binary cache that never breaks a closure.
//!
//! Roots come from pins stored in the cache itself (`narscope/roots/<name>`, a list of store
//! paths each, shared by everyone who operates the bucket), from a file, from the local Nix
//! store's GC roots, and from age (every narinfo newer than a duration). The closure of the
//! roots through References is marked; everything else is a candidate. Nothing whose object is
//! younger than the grace period is deleted, and a young narinfo counts as a root, so a push
//! that is running (NARs first, narinfos last) loses nothing.
//!
//! [`plan`] is pure: it works on a complete [`Index`] (and the extra listings of `log/` and
//! `debuginfo/`). Execution reuses [`crate::jobs::delete::execute`]: narinfos first, referrers
//! before what they reference, in batches of 1000, then NARs, listings and the rest. Re-running
//! after an interruption converges: what was left behind is garbage again.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use crate::index::{Index, RowId, flags, unix_secs};
use crate::jobs::delete::DeletePlan;
use crate::storage::{ObjectMeta, PutCondition, PutOptions, Store, StoreError, is_temp_litter};

/// Where pins live in the cache.
pub const PINS_PREFIX: &str = "narscope/roots/";

/// Default grace period.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(6 * 3600);

/// A named pin: a list of store paths kept with their closures.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pin {
    /// Its name.
    pub name: String,
    /// The store paths.
    pub paths: Vec<String>,
}

/// Why a pin name is refused.
pub fn check_pin_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a pin name (letters, digits and - _ . + @, not starting with a dot)"
        ))
    }
}

/// The text of a pin object.
pub fn pin_text(paths: &[String]) -> String {
    let mut t = String::from("# narscope pin: store paths kept, with their closures, by gc\n");
    for p in paths {
        t.push_str(p);
        t.push('\n');
    }
    t
}

/// Parse a pin object (store paths, one a line; `#` comments).
pub fn parse_pin(name: &str, text: &str) -> Result<Pin, String> {
    Ok(Pin {
        name: name.to_string(),
        paths: parse_paths(&format!("pin {name}"), text)?,
    })
}

/// Store paths one a line, blank lines and `#` comments skipped; errors name `what` and the
/// line.
fn parse_paths(what: &str, text: &str) -> Result<Vec<String>, String> {
    let mut paths = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        crate::nix::StorePath::parse_any(l).map_err(|e| format!("{what}, line {}: {e}", i + 1))?;
        paths.push(l.to_string());
    }
    Ok(paths)
}

/// Every pin of the cache.
pub async fn list_pins(store: &dyn Store) -> Result<Vec<Pin>, String> {
    let mut pins = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .list_page(PINS_PREFIX, token)
            .await
            .map_err(|e| e.to_string())?;
        for o in &page.objects {
            let name = o.key.strip_prefix(PINS_PREFIX).unwrap_or(&o.key);
            if name.contains('/') || is_temp_litter(name) || check_pin_name(name).is_err() {
                continue;
            }
            let obj = store
                .get(&o.key)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("pin {name} disappeared while being read"))?;
            pins.push(parse_pin(name, &String::from_utf8_lossy(&obj.bytes))?);
        }
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    pins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pins)
}

/// Create or replace a pin.
pub async fn write_pin(store: &dyn Store, name: &str, paths: &[String]) -> Result<(), String> {
    check_pin_name(name)?;
    for p in paths {
        crate::nix::StorePath::parse_any(p).map_err(|e| format!("{p}: {e}"))?;
    }
    store
        .put(
            &format!("{PINS_PREFIX}{name}"),
            pin_text(paths).into_bytes().into(),
            &PutOptions {
                content_type: Some("text/plain".into()),
                condition: PutCondition::None,
                ..PutOptions::default()
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Remove a pin; false if there was none.
pub async fn remove_pin(store: &dyn Store, name: &str) -> Result<bool, String> {
    check_pin_name(name)?;
    let key = format!("{PINS_PREFIX}{name}");
    if store.head(&key).await.map_err(|e| e.to_string())?.is_none() {
        return Ok(false);
    }
    let rep = store
        .delete_many(std::slice::from_ref(&key))
        .await
        .map_err(|e| e.to_string())?;
    if let Some((_, why)) = rep.failed.first() {
        return Err(why.clone());
    }
    Ok(true)
}

/// Where a root came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum RootSource {
    /// A pin in the cache.
    Pin(String),
    /// `--roots-file`.
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

/// Extra objects outside the index (`log/`, `debuginfo/`) with what keeps them.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// `log/<drv>` objects.
    pub logs: Vec<ObjectMeta>,
    /// `debuginfo/<id>` objects with the NAR key their `archive` points to.
    pub debuginfo: Vec<(ObjectMeta, Option<String>)>,
    /// Deriver base names of rows (for logs), by row.
    pub derivers: HashMap<RowId, String>,
    /// Objects under `.narscope-probe/` (scratch objects of conditional-write probes; those
    /// of killed probes are litter).
    pub probes: Vec<ObjectMeta>,
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
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GRACE,
            keep_younger: None,
            now: SystemTime::now(),
        }
    }
}

/// Why a row is kept (or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Garbage.
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
}

impl GcPlan {
    /// "kept: pin 'release' → app-1 → lib-1" or "garbage: …", for one row.
    pub fn why(&self, idx: &Index, id: RowId) -> String {
        let mut chain = Vec::new();
        let mut cur = id;
        for _ in 0..1000 {
            match self.keep.get(cur as usize).copied().unwrap_or(Keep::No) {
                Keep::No => {
                    return if chain.is_empty() {
                        "garbage: no root reaches it and it is older than the grace period".into()
                    } else {
                        "kept".into()
                    };
                }
                Keep::Root(r) => {
                    let (src, _) = &self.roots[r as usize];
                    chain.push(idx.name(cur).to_string());
                    chain.reverse();
                    return format!("kept by {src}: {}", chain.join(" → "));
                }
                Keep::Young => {
                    chain.push(idx.name(cur).to_string());
                    chain.reverse();
                    return format!("kept: newer than the retention age: {}", chain.join(" → "));
                }
                Keep::Grace => {
                    chain.push(idx.name(cur).to_string());
                    chain.reverse();
                    return format!(
                        "kept: younger than the grace period (a push may be running): {}",
                        chain.join(" → ")
                    );
                }
                Keep::Ref(parent) => {
                    chain.push(idx.name(cur).to_string());
                    cur = parent;
                }
                Keep::Unknown => {
                    chain.push(idx.narinfo_key(cur));
                    chain.reverse();
                    return format!(
                        "kept: the narinfo could not be read, so nothing it might reference is \
                         collected: {}",
                        chain.join(" → ")
                    );
                }
            }
        }
        "kept".into()
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
    // Narinfos kept by grace alone (nothing else reaches them) are reported as such.
    p.kept_by_grace = idx
        .live()
        .filter(|&r| p.keep[r as usize] == Keep::Grace)
        .count() as u64;
    p.garbage = idx
        .live()
        .filter(|&r| p.keep[r as usize] == Keep::No)
        .collect();
    let mut del = crate::jobs::delete::plan(idx, &p.garbage, false);
    debug_assert!(del.broken.is_empty(), "garbage is closed under referrers");
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
        .filter(|(r, _)| p.keep.get(**r as usize).is_some_and(|k| *k != Keep::No))
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
        if p.keep[r as usize] == Keep::No {
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

/// How many debuginfo links [`gather_extras`] reads at once.
const DEBUGINFO_READS: usize = 32;

/// The objects under `log/` and `debuginfo/` (reading each debuginfo link's `archive`,
/// [`DEBUGINFO_READS`] at a time). Call [`Extras::read_derivers`] on the index afterwards.
pub async fn gather_extras(store: &dyn Store) -> Result<Extras, StoreError> {
    use futures::{StreamExt, TryStreamExt};
    let mut ex = Extras::default();
    for (prefix, is_log) in [("log/", true), ("debuginfo/", false)] {
        let mut token = None;
        loop {
            let page = store.list_page(prefix, token).await?;
            if is_log {
                ex.logs.extend(page.objects);
            } else {
                let links: Vec<_> = futures::stream::iter(page.objects)
                    .map(|o| async move {
                        let archive = store.get(&o.key).await?.and_then(|g| {
                            let v: serde_json::Value = serde_json::from_slice(&g.bytes).ok()?;
                            let a = v.get("archive")?.as_str()?;
                            // "../nar/…" relative to debuginfo/.
                            Some(a.trim_start_matches("../").to_string())
                        });
                        Ok::<_, StoreError>((o, archive))
                    })
                    .buffered(DEBUGINFO_READS)
                    .try_collect()
                    .await?;
                ex.debuginfo.extend(links);
            }
            match page.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    ex.probes = crate::storage::probe_objects(store).await?;
    Ok(ex)
}

impl Extras {
    /// The deriver of every row, from the stored narinfo texts; only needed when there are
    /// logs (they are named after derivations).
    pub fn read_derivers(&mut self, idx: &Index) {
        if self.logs.is_empty() {
            return;
        }
        for r in idx.live() {
            if !idx.row(r).has(flags::DERIVER) {
                continue;
            }
            let Ok(Some(text)) = idx.read_text(r) else {
                continue;
            };
            if let Some(d) = text
                .lines()
                .find_map(|l| l.strip_prefix("Deriver: "))
                .filter(|d| *d != "unknown-deriver")
            {
                self.derivers.insert(r, d.trim().to_string());
            }
        }
    }
}

/// Only what both plans delete: the plan made just before deleting may keep more (a push
/// arrived), never less.
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
    p.delete.nar_keys.retain(|k| first_keys.contains(k));
    p.delete.ls_keys.retain(|k| first_keys.contains(k));
    p.delete.extra_keys.retain(|k| first_keys.contains(k));
    p
}

/// Parse a duration: a number and a unit (`s`, `m`, `h`, `d`, `w`), e.g. `6h`, `30d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 6h, 30d, 90m)"))?;
    let mult = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" => return Err(format!("'{s}': give a unit (s, m, h, d or w)")),
        _ => return Err(format!("'{s}': unknown unit '{unit}' (s, m, h, d or w)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

/// A whole number of seconds as [`parse_duration`] reads it: "6h", "30d", "90s".
pub fn format_duration(s: u64) -> String {
    if s >= 86_400 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The store paths of a roots file (one a line; blank lines and `#` comments skipped).
pub fn read_roots_file(f: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(f)
        .map_err(|e| format!("cannot read roots file {}: {e}", f.display()))?;
    parse_paths(&f.display().to_string(), &text)
}

/// A plan with everything needed to carry it out safely later: the first look of a GC.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Every root (pins first, then the caller's).
    pub roots: Vec<(RootSource, String)>,
    /// Roots given by the caller (not pins).
    pub extra_roots: Vec<(RootSource, String)>,
    /// The pins read.
    pub pins: Vec<Pin>,
    /// `log/` and `debuginfo/`.
    pub extras: Extras,
    /// Options (the time is when the plan was made).
    pub opts: GcOptions,
    /// The plan.
    pub plan: GcPlan,
    /// Collecting without any root in the cache was allowed (`--allow-no-roots`).
    pub allow_no_roots: bool,
}

impl Prepared {
    /// Whether anything keeps paths alive besides the grace period: a root that is in the
    /// cache, or a retention age. Roots that name nothing in the cache are no roots.
    pub fn has_roots(&self) -> bool {
        !self.plan.roots.is_empty() || self.opts.keep_younger.is_some()
    }

    /// Why collecting would go ahead without roots: what the operator gave that named
    /// nothing, in words (for the refusal).
    pub fn no_roots_message(&self) -> String {
        let mut m = String::from(
            "no roots in the cache: every path older than the grace period would be deleted",
        );
        if !self.plan.missing_roots.is_empty() {
            m.push_str(&format!(
                "; none of the {} root path(s) given is in the cache",
                self.plan.missing_roots.len()
            ));
        }
        m
    }

    /// Nothing to delete.
    pub fn is_empty(&self) -> bool {
        self.plan.garbage.is_empty()
            && self.plan.delete.nar_keys.is_empty()
            && self.plan.delete.extra_keys.is_empty()
            && self.plan.delete.ls_keys.is_empty()
    }
}

/// First look: read the extra listings and plan over `index` (which must be a complete
/// scan, NARs listed), with `pins` (from [`list_pins`]) and `extra_roots` as roots.
pub async fn prepare(
    store: &dyn Store,
    index: &std::sync::RwLock<Index>,
    pins: Vec<Pin>,
    extra_roots: Vec<(RootSource, String)>,
    opts: GcOptions,
) -> Result<Prepared, String> {
    let mut extras = gather_extras(store).await.map_err(|e| e.to_string())?;
    let roots = roots_of(&pins, &extra_roots);
    let plan = {
        let idx = index.read().unwrap_or_else(|e| e.into_inner());
        extras.read_derivers(&idx);
        plan(&idx, &roots, &extras, &opts)
    };
    Ok(Prepared {
        roots,
        extra_roots,
        pins,
        extras,
        opts,
        plan,
        allow_no_roots: false,
    })
}

fn roots_of(pins: &[Pin], extra: &[(RootSource, String)]) -> Vec<(RootSource, String)> {
    let mut roots: Vec<(RootSource, String)> = pins
        .iter()
        .flat_map(|p| {
            p.paths
                .iter()
                .map(|x| (RootSource::Pin(p.name.clone()), x.clone()))
        })
        .collect();
    roots.extend(extra.iter().cloned());
    roots
}

/// Second look, just before deleting: `index` has been re-scanned (the same index, so row
/// ids are stable) and the pins are read again; only what both looks call garbage goes,
/// closed again under referrers, so a push or a new pin since the first look can only keep
/// more.
pub async fn final_plan(
    store: &dyn Store,
    index: &std::sync::RwLock<Index>,
    first: &Prepared,
) -> Result<GcPlan, String> {
    let pins = list_pins(store).await?;
    let mut roots = roots_of(&pins, &first.extra_roots);
    for r in &first.roots {
        if !roots.contains(r) {
            roots.push(r.clone());
        }
    }
    let opts = GcOptions {
        now: SystemTime::now(),
        ..first.opts.clone()
    };
    let idx = index.read().unwrap_or_else(|e| e.into_inner());
    let second = plan(&idx, &roots, &first.extras, &opts);
    let mut p = intersect(&first.plan, second);
    // Re-close: a row whose live referrer stays must stay too.
    let mut shrunk = false;
    loop {
        let d = crate::jobs::delete::plan(&idx, &p.garbage, false);
        if d.broken.is_empty() {
            if shrunk {
                // NARs and listings of the rows that stay after all stay too.
                let nars: HashSet<&String> = d.nar_keys.iter().chain(&p.orphan_nars).collect();
                let listings: HashSet<&String> = d.ls_keys.iter().collect();
                p.delete.nar_keys.retain(|k| nars.contains(k));
                p.delete.ls_keys.retain(|k| listings.contains(k));
            }
            break;
        }
        shrunk = true;
        let keep: HashSet<RowId> = d.broken.iter().map(|b| b.1).collect();
        p.garbage.retain(|r| !keep.contains(r));
        for l in &mut p.delete.levels {
            l.retain(|r| !keep.contains(r));
        }
        p.delete.levels.retain(|l| !l.is_empty());
    }
    Ok(p)
}

/// Collects the garbage of a confirmed first look, safely against concurrent writers: takes
/// the cache's deletion lease (see [`crate::lease`]), waits for pushes to pause, scans the
/// cache again into `index` and reads the pins again ([`final_plan`]: only what both looks
/// call garbage goes), and deletes. Refuses while any narinfo cannot be read, in either look.
/// The summary's `kept_since_planned` counts the narinfos the first plan listed that the
/// second look kept.
pub async fn collect(
    cache: std::sync::Arc<crate::cache::Cache>,
    index: std::sync::Arc<std::sync::RwLock<Index>>,
    keys: std::sync::Arc<crate::nix::TrustedKeys>,
    scan: crate::index::scan::ScanOptions,
    first: std::sync::Arc<Prepared>,
    job: std::sync::Arc<crate::jobs::JobHandle>,
    notify: crate::jobs::JobNotify,
) -> Result<crate::jobs::delete::DeleteSummary, String> {
    if let Some(why) = first.plan.refusal() {
        return Err(why);
    }
    if !first.has_roots() && !first.allow_no_roots {
        return Err(format!("refusing: {}", first.no_roots_message()));
    }
    let lease = crate::lease::DeletionLease::acquire(cache.store().clone(), "gc").await?;
    let p = job.progress.clone();
    let result = async {
        lease.wait_for_pushes(|s| p.set_current(s)).await?;
        crate::jobs::delete::second_look(&cache, &index, &keys, scan, &job).await?;
        let plan = final_plan(cache.store().as_ref(), &index, &first).await?;
        if let Some(why) = plan.refusal() {
            return Err(format!(
                "{why} (seen just before deleting; nothing was deleted): {}; {}",
                crate::index::describe_unknown(&plan.unknown),
                plan.unknown.first().map(|u| u.advice()).unwrap_or_default()
            ));
        }
        let kept = first.plan.garbage.len().saturating_sub(plan.garbage.len()) as u64;
        let mut s = crate::jobs::delete::execute(
            cache.clone(),
            index.clone(),
            plan.delete,
            job.clone(),
            notify.clone(),
            Some(&lease),
        )
        .await?;
        s.kept_since_planned = kept;
        Ok(s)
    }
    .await;
    lease.release().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testdata::info;
    use crate::index::{NarObject, OtherObject};
    use crate::nix::{NarInfo, TrustedKeys};

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn opts() -> GcOptions {
        GcOptions {
            grace: DEFAULT_GRACE,
            keep_younger: None,
            now: std::time::UNIX_EPOCH + Duration::from_secs(NOW as u64),
        }
    }

    /// lib ← app ← (pinned); tool → lib (unpinned); old orphan NAR; young orphan NAR; a
    /// shared NAR between `tool` and a kept path.
    fn cache() -> (Index, Vec<NarInfo>) {
        let lib = info("lib", "lib-1", &[]);
        let app = info("app", "app-1", &[&lib]);
        let tool = info("tool", "tool-1", &[&lib]);
        let mut twin = info("twin", "twin-1", &[]);
        twin.url = tool.url.clone();
        let extra = info("extra", "extra-1", &[]);
        let all = vec![lib, app, tool, twin, extra];
        let mut idx = Index::from_narinfos("file:///c", &TrustedKeys::new(), all.iter());
        for r in idx.rows_mut() {
            r.mtime = NOW - 30 * DAY;
        }
        let mut nars: Vec<NarObject> = all
            .iter()
            .map(|i| NarObject {
                key: i.url.clone(),
                size: 1000,
                mtime: NOW - 30 * DAY,
            })
            .collect();
        nars.push(NarObject {
            key: "nar/old-orphan.nar.xz".into(),
            size: 5,
            mtime: NOW - 30 * DAY,
        });
        nars.push(NarObject {
            key: "nar/young-orphan.nar.xz".into(),
            size: 7,
            mtime: NOW - 60,
        });
        idx.set_nars(nars);
        idx.others = vec![
            OtherObject {
                key: "0000000000000000000000000000000a.ls".into(),
                size: 3,
                mtime: NOW - 30 * DAY,
            },
            OtherObject {
                key: "x.narinfo.tmp.123.4".into(),
                size: 2,
                mtime: NOW - 30 * DAY,
            },
            OtherObject {
                key: "README".into(),
                size: 2,
                mtime: NOW - 30 * DAY,
            },
        ];
        (idx, all)
    }

    fn names(idx: &Index, rows: &[RowId]) -> Vec<String> {
        let mut v: Vec<String> = rows.iter().map(|&r| idx.name(r).to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn marks_the_closure_of_the_roots_and_collects_the_rest() {
        let (idx, all) = cache();
        let roots = vec![
            (
                RootSource::Pin("release".into()),
                all[1].store_path.to_absolute(),
            ),
            (RootSource::File, all[3].store_path.to_absolute()),
            (
                RootSource::File,
                "/nix/store/00000000000000000000000000000000-gone".to_string(),
            ),
        ];
        let p = plan(&idx, &roots, &Extras::default(), &opts());
        assert_eq!(names(&idx, &p.garbage), ["extra-1", "tool-1"]);
        assert_eq!(p.missing_roots.len(), 1);
        // tool's NAR is shared with twin (a root): kept. extra's goes, and the old orphan.
        assert!(!p.delete.nar_keys.contains(&all[2].url));
        assert!(p.delete.nar_keys.contains(&all[4].url));
        assert_eq!(p.orphan_nars, vec!["nar/old-orphan.nar.xz".to_string()]);
        assert_eq!(p.young_orphans, 1, "the young orphan NAR stays");
        let other: Vec<&str> = p.other.iter().map(|(k, _, _)| k.as_str()).collect();
        assert!(other.contains(&"0000000000000000000000000000000a.ls"));
        assert!(other.contains(&"x.narinfo.tmp.123.4"));
        assert!(
            !other.contains(&"README"),
            "unknown files are never deleted"
        );
        let lib = idx.find(all[0].store_path.hash_part()).unwrap();
        let why = p.why(&idx, lib);
        assert!(
            why.contains("pin 'release'") && why.contains("app-1") && why.contains("lib-1"),
            "{why}"
        );
        let tool = idx.find(all[2].store_path.hash_part()).unwrap();
        assert!(p.why(&idx, tool).starts_with("garbage"));
        assert_eq!(p.kept, 3);
        assert!(p.delete.is_safe());
    }

    #[test]
    fn young_paths_are_roots_and_retention_keeps_recent_closures() {
        let (mut idx, all) = cache();
        let tool = idx.find(all[2].store_path.hash_part()).unwrap();
        idx.rows_mut()[tool as usize].mtime = NOW - 3600; // pushed an hour ago
        let p = plan(&idx, &[], &Extras::default(), &opts());
        assert!(!p.garbage.contains(&tool));
        let lib = idx.find(all[0].store_path.hash_part()).unwrap();
        assert!(!p.garbage.contains(&lib), "a young path's references stay");
        assert!(p.why(&idx, lib).contains("grace"));
        let extra = idx.find(all[4].store_path.hash_part()).unwrap();
        idx.rows_mut()[extra as usize].mtime = NOW - 5 * DAY;
        let mut o = opts();
        o.keep_younger = Some(Duration::from_secs(7 * 86_400));
        let p = plan(&idx, &[], &Extras::default(), &o);
        assert!(!p.garbage.contains(&extra));
        assert!(p.why(&idx, extra).contains("retention"));
        // Unknown ages are never collected.
        idx.rows_mut()[extra as usize].mtime = i64::MIN;
        let p = plan(&idx, &[], &Extras::default(), &opts());
        assert!(!p.garbage.contains(&extra));
        // A young path a root reaches is explained by the root, not by its age.
        idx.rows_mut()[lib as usize].mtime = NOW - 60;
        let pinned = [(
            RootSource::Pin("release".into()),
            all[1].store_path.to_absolute(),
        )];
        let p = plan(&idx, &pinned, &Extras::default(), &opts());
        let why = p.why(&idx, lib);
        assert!(why.starts_with("kept by pin 'release'"), "{why}");
        assert_ne!(p.keep[lib as usize], Keep::Grace);
    }

    #[test]
    fn a_second_plan_can_only_shrink_the_deletion() {
        let (mut idx, all) = cache();
        let first = plan(&idx, &[], &Extras::default(), &opts());
        // Meanwhile a push makes `tool` young.
        let tool = idx.find(all[2].store_path.hash_part()).unwrap();
        idx.rows_mut()[tool as usize].mtime = NOW - 10;
        let second = plan(&idx, &[], &Extras::default(), &opts());
        let both = intersect(&first, second);
        assert!(!both.garbage.contains(&tool));
        assert!(both.delete.rows().all(|r| first.garbage.contains(&r)));
    }

    /// A listed narinfo of `hash` that could not be read, as the scan records it.
    fn unreadable(idx: &mut Index, hash: &str, why: &str) -> RowId {
        use crate::index::{ReadError, RowData, RowStatus, TextRef};
        idx.list_key(hash, 120, NOW - 30 * DAY, 7);
        let id = idx
            .apply(&RowData {
                hash_part: hash.to_string(),
                obj_size: 120,
                mtime: NOW - 30 * DAY,
                etag: 7,
                info: None,
                status: RowStatus::Error,
                text: TextRef::default(),
            })
            .unwrap();
        idx.set_read_error(
            id,
            ReadError {
                malformed: false,
                message: why.to_string(),
            },
        );
        id
    }

    #[test]
    fn an_unreadable_narinfo_is_kept_and_nothing_is_collected() {
        let (mut idx, all) = cache();
        let ghost = unreadable(
            &mut idx,
            "0123456789abcdfghijklmnpqrsvwxy0",
            "GET `0123456789abcdfghijklmnpqrsvwxy0.narinfo`: the connection broke",
        );
        let pinned = [(
            RootSource::Pin("release".into()),
            all[1].store_path.to_absolute(),
        )];
        let p = plan(&idx, &pinned, &Extras::default(), &opts());
        assert_eq!(p.keep[ghost as usize], Keep::Unknown);
        assert!(!p.garbage.contains(&ghost), "never garbage");
        assert_eq!(p.unknown.len(), 1);
        assert_eq!(p.unknown[0].state, "unreadable");
        assert!(p.unknown[0].cause.contains("the connection broke"));
        let why = p.refusal().expect("refused");
        assert!(
            why.starts_with("refusing to collect: 1 narinfo(s)"),
            "{why}"
        );
        assert!(p.why(&idx, ghost).contains("could not be read"));
        // Without it, the same cache collects.
        let (idx, _) = cache();
        assert_eq!(
            plan(&idx, &pinned, &Extras::default(), &opts()).refusal(),
            None
        );
    }

    #[test]
    fn roots_that_name_nothing_in_the_cache_are_no_roots() {
        let (idx, _) = cache();
        let gone = vec![(
            RootSource::Pin("old".into()),
            "/nix/store/00000000000000000000000000000000-gone".to_string(),
        )];
        let p = plan(&idx, &gone, &Extras::default(), &opts());
        let prepared = Prepared {
            roots: gone.clone(),
            extra_roots: Vec::new(),
            pins: Vec::new(),
            extras: Extras::default(),
            opts: opts(),
            plan: p,
            allow_no_roots: false,
        };
        assert!(!prepared.has_roots());
        assert!(
            prepared
                .no_roots_message()
                .contains("none of the 1 root path(s) given is in the cache"),
            "{}",
            prepared.no_roots_message()
        );
    }

    #[test]
    fn pins_parse_and_names_are_checked() {
        let p = parse_pin(
            "rel",
            "# c\n/nix/store/7mykfhyl4pazcsisxzsv1n1163xd1gzx-a\n\n",
        )
        .unwrap();
        assert_eq!(p.paths.len(), 1);
        assert!(
            parse_pin("rel", "not a path\n")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(check_pin_name("release-2026.12").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "sp ace"] {
            assert!(check_pin_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_pin(
                "x",
                &pin_text(&["/nix/store/7mykfhyl4pazcsisxzsv1n1163xd1gzx-a".into()])
            )
            .unwrap()
            .paths
            .len(),
            1
        );
    }

    #[tokio::test]
    async fn gather_extras_reads_every_debuginfo_link_in_listing_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::storage::file::FileStore::new(dir.path());
        let put = |key: &str, body: String| {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        };
        // More links than are read at once, so that the reads overlap.
        let n = DEBUGINFO_READS * 2 + 5;
        for i in 0..n {
            put(
                &format!("debuginfo/{i:040x}"),
                format!(r#"{{"archive":"../nar/n{i}.nar.xz","member":"lib/debug/{i}"}}"#),
            );
        }
        put("debuginfo/zz-broken", "not json".into());
        put("log/abc-hello.drv", "a log".into());
        let ex = gather_extras(&store).await.unwrap();
        assert_eq!(ex.logs.len(), 1);
        assert_eq!(ex.logs[0].key, "log/abc-hello.drv");
        assert_eq!(ex.debuginfo.len(), n + 1);
        let mut keys: Vec<&str> = ex.debuginfo.iter().map(|(o, _)| o.key.as_str()).collect();
        let listed = keys.clone();
        keys.sort_unstable();
        assert_eq!(keys, listed, "listing order kept");
        for (o, archive) in &ex.debuginfo {
            match o.key.strip_prefix("debuginfo/").unwrap() {
                "zz-broken" => assert_eq!(archive, &None),
                hex => {
                    let i = usize::from_str_radix(hex, 16).unwrap();
                    assert_eq!(
                        archive.as_deref(),
                        Some(format!("nar/n{i}.nar.xz").as_str())
                    );
                }
            }
        }
    }
}
