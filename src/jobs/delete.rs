//! Deleting paths from a cache without breaking anything that stays.
//!
//! A [`plan`] is made from a complete index: the narinfos to delete (with `cascade`, every path
//! that references them, transitively), the referrers that would be left broken otherwise, the
//! NARs and `.ls` listings that no remaining narinfo needs (NARs can be shared), and the bytes
//! freed. [`execute`] then deletes narinfos first, referrers before what they reference (level
//! by level, in batches of at most 1000), and only then the NARs and listings, so that a reader
//! never finds a narinfo whose NAR or references are gone.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use super::{JobError, JobHandle, JobNotify};
use crate::cache::Cache;
use crate::index::{Index, RowId, UnknownRow, flags};

/// What a deletion would do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeletePlan {
    /// Rows whose narinfo goes, in deletion order (referrers first), grouped by level.
    pub levels: Vec<Vec<RowId>>,
    /// Rows added because they reference a target (with cascade).
    pub cascaded: Vec<RowId>,
    /// (referrer, target): live referrers that would be left with a missing reference. A plan
    /// with any of these is refused unless cascading.
    pub broken: Vec<(RowId, RowId)>,
    /// NAR keys deleted (no remaining narinfo points to them).
    pub nar_keys: Vec<String>,
    /// NAR keys kept because a remaining narinfo shares them.
    pub shared_nars: Vec<String>,
    /// `.ls` listings deleted.
    pub ls_keys: Vec<String>,
    /// Other objects deleted after the NARs (garbage collection: orphan listings, logs,
    /// debuginfo links, temp files).
    pub extra_keys: Vec<String>,
    /// Bytes of NAR objects freed (listing sizes, else FileSize).
    pub nar_bytes: u64,
    /// Listed narinfos outside the deletion whose contents are unknown (unreadable, or not
    /// read yet): any of them may reference what would be deleted, so a plan with any of
    /// these is refused. An unknown narinfo named as a target is deleted itself (its NAR,
    /// being unknown, stays for a later gc).
    pub unknown: Vec<UnknownRow>,
}

impl DeletePlan {
    /// Every row whose narinfo goes.
    pub fn rows(&self) -> impl Iterator<Item = RowId> + '_ {
        self.levels.iter().flatten().copied()
    }

    /// Number of narinfos deleted.
    pub fn narinfos(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Whether the plan may run: nothing left broken, and no unknown narinfo that might
    /// reference what goes.
    pub fn is_safe(&self) -> bool {
        self.broken.is_empty() && self.unknown.is_empty()
    }

    /// Why the plan may not run, in one line (`None` when it is safe).
    pub fn refusal(&self) -> Option<String> {
        if !self.unknown.is_empty() {
            let (malformed, other): (Vec<&UnknownRow>, Vec<&UnknownRow>) =
                self.unknown.iter().partition(|u| u.state == "malformed");
            return Some(format!(
                "refusing to delete: {} narinfo(s) could not be read ({} malformed, {} unreadable or not read yet), \
                 and any of them may reference what would be deleted",
                self.unknown.len(),
                malformed.len(),
                other.len()
            ));
        }
        if !self.broken.is_empty() {
            return Some(format!(
                "refusing to delete: {} remaining path(s) reference what would be deleted (use \
                 cascade)",
                self.broken.len()
            ));
        }
        None
    }

    /// Delete requests it costs (batches of 1000 per level, then NARs and listings).
    pub fn requests(&self) -> usize {
        let per = |n: usize| n.div_ceil(1000);
        self.levels.iter().map(|l| per(l.len())).sum::<usize>()
            + per(self.nar_keys.len() + self.ls_keys.len() + self.extra_keys.len())
    }
}

/// Referrers of every live row, as one flat array (compressed rows: the referrers of `x` are
/// `flat[start[x]..start[x + 1]]`, ascending). A few bytes per reference, no hashing, so a
/// million-row plan stays small and fast.
pub struct Referrers {
    start: Vec<u32>,
    flat: Vec<RowId>,
}

impl Referrers {
    /// Build from the index.
    pub fn of(idx: &Index) -> Referrers {
        let n = idx.len();
        let mut start = vec![0u32; n + 1];
        for r in idx.live() {
            for &t in idx.refs(r) {
                if t != r && (t as usize) < n {
                    start[t as usize + 1] += 1;
                }
            }
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill: Vec<u32> = start[..n].to_vec();
        let mut flat = vec![0; start[n] as usize];
        for r in idx.live() {
            for &t in idx.refs(r) {
                if t != r && (t as usize) < n {
                    flat[fill[t as usize] as usize] = r;
                    fill[t as usize] += 1;
                }
            }
        }
        Referrers { start, flat }
    }

    /// The live rows that reference `x`.
    pub fn of_row(&self, x: RowId) -> &[RowId] {
        let x = x as usize;
        match (self.start.get(x), self.start.get(x + 1)) {
            (Some(&a), Some(&b)) => &self.flat[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Plan deleting `targets` (live rows). With `cascade`, their referrers go too.
pub fn plan(idx: &Index, targets: &[RowId], cascade: bool) -> DeletePlan {
    let n = idx.len();
    let referrers = Referrers::of(idx);
    let mut in_set = vec![false; n];
    for &t in targets {
        if (t as usize) < n && idx.row(t).is_live() {
            in_set[t as usize] = true;
        }
    }
    let mut p = DeletePlan::default();
    if cascade {
        let mut stack: Vec<RowId> = (0..n as RowId).filter(|&r| in_set[r as usize]).collect();
        while let Some(x) = stack.pop() {
            for &r in referrers.of_row(x) {
                if !in_set[r as usize] {
                    in_set[r as usize] = true;
                    p.cascaded.push(r);
                    stack.push(r);
                }
            }
        }
        p.cascaded.sort_unstable();
    } else {
        for t in (0..n as RowId).filter(|&r| in_set[r as usize]) {
            for &r in referrers.of_row(t) {
                if !in_set[r as usize] {
                    p.broken.push((r, t));
                }
            }
        }
        p.broken.sort_unstable();
    }
    let set: Vec<RowId> = (0..n as RowId).filter(|&r| in_set[r as usize]).collect();
    // Levels: a row goes after every referrer of it in the set (depth-first, no recursion).
    const UNKNOWN: u32 = u32::MAX;
    let mut level = vec![UNKNOWN; n];
    let mut visiting = vec![false; n];
    let mut stack: Vec<(RowId, usize)> = Vec::new();
    for &x in &set {
        if level[x as usize] != UNKNOWN {
            continue;
        }
        visiting[x as usize] = true;
        stack.push((x, 0));
        while let Some((node, i)) = stack.last_mut() {
            let rs = referrers.of_row(*node);
            if let Some(&child) = rs.get(*i) {
                *i += 1;
                let c = child as usize;
                // A cycle (only self-references exist in Nix; be safe anyway) adds nothing.
                if in_set[c] && level[c] == UNKNOWN && !visiting[c] {
                    visiting[c] = true;
                    stack.push((child, 0));
                }
                continue;
            }
            let l = rs
                .iter()
                .filter(|&&r| in_set[r as usize] && level[r as usize] != UNKNOWN)
                .map(|&r| level[r as usize] + 1)
                .max()
                .unwrap_or(0);
            level[*node as usize] = l;
            visiting[*node as usize] = false;
            stack.pop();
        }
    }
    for &x in &set {
        let l = level[x as usize] as usize;
        if p.levels.len() <= l {
            p.levels.resize(l + 1, Vec::new());
        }
        p.levels[l].push(x);
    }
    // NARs: deleted unless a remaining narinfo points to the same key. Listed NARs are
    // tracked by their position in the listing; unlisted ones (no NAR listing yet) by key.
    let nars = idx.nars();
    let nar_pos = |k: &str| nars.binary_search_by(|o| o.key.as_str().cmp(k)).ok();
    let nar_of = |r: RowId| crate::cache::nar_key(idx.url_of(r)).ok();
    let mut kept = vec![false; nars.len()];
    let mut kept_unlisted: HashSet<String> = HashSet::new();
    for r in idx.live().filter(|&r| !in_set[r as usize]) {
        if let Some(k) = nar_of(r) {
            match nar_pos(&k) {
                Some(i) => kept[i] = true,
                None => {
                    kept_unlisted.insert(k);
                }
            }
        }
    }
    let mut taken = vec![false; nars.len()];
    let mut unlisted = BTreeSet::new();
    for &r in &set {
        if let Some(k) = nar_of(r) {
            let pos = nar_pos(&k);
            let shared = match pos {
                Some(i) => kept[i],
                None => kept_unlisted.contains(&k),
            };
            if shared {
                p.shared_nars.push(k);
            } else if !idx.row(r).has(flags::NAR_MISSING) {
                match pos {
                    Some(i) if !taken[i] => {
                        taken[i] = true;
                        p.nar_bytes += nars[i].size;
                    }
                    Some(_) => {}
                    None => {
                        p.nar_bytes += idx.row(r).file_size().unwrap_or(0);
                        unlisted.insert(k);
                    }
                }
            }
        }
        if idx.row(r).has(flags::HAS_LS) {
            p.ls_keys.push(format!("{}.ls", idx.hash_part(r)));
        }
    }
    p.shared_nars.sort();
    p.shared_nars.dedup();
    p.nar_keys = nars
        .iter()
        .zip(&taken)
        .filter(|(_, t)| **t)
        .map(|(o, _)| o.key.clone())
        .collect();
    if !unlisted.is_empty() {
        p.nar_keys.extend(unlisted);
        p.nar_keys.sort();
    }
    p.ls_keys.sort();
    p.unknown = idx
        .live()
        .filter(|&r| !in_set[r as usize] && idx.row(r).is_unknown())
        .map(|r| idx.unknown_row(r))
        .collect();
    p
}

/// The rows of `plan` that a pin names, each with the names of the pins that name it.
pub fn pinned_rows(
    idx: &Index,
    plan: &DeletePlan,
    pins: &[crate::pins::Pin],
) -> Vec<(RowId, Vec<String>)> {
    let mut by_row: std::collections::BTreeMap<RowId, Vec<String>> = Default::default();
    for pin in pins {
        for path in &pin.paths {
            if let Some(r) = idx.find_path(path) {
                let names = by_row.entry(r).or_default();
                if !names.contains(&pin.name) {
                    names.push(pin.name.clone());
                }
            }
        }
    }
    plan.rows()
        .filter_map(|r| by_row.get(&r).map(|n| (r, n.clone())))
        .collect()
}

/// What [`execute`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteSummary {
    /// How many narinfos were deleted (each one a store path gone from the cache).
    pub narinfos: u64,
    /// How many NAR objects were deleted (a NAR shared by a kept narinfo is never counted).
    pub nars: u64,
    /// `.ls` listings deleted.
    pub listings: u64,
    /// Other objects deleted (logs, debuginfo, temp files).
    pub others: u64,
    /// Keys that could not be deleted.
    pub failed: u64,
    /// Narinfos the confirmed plan listed that the look just before deleting kept (pushed
    /// again, pinned, referenced or changed since the plan was made).
    pub kept_since_planned: u64,
    /// On a bucket that keeps versions: the id of the plan record that makes this deletion
    /// undoable (`narscope gc restore`) and purgeable (`narscope gc purge`).
    pub plan: Option<String>,
    /// Bytes hidden behind delete markers (still stored) on a bucket that keeps versions.
    pub hidden_bytes: u64,
    /// Bytes the bucket stopped storing (NARs where deletes are final; with `--permanent`
    /// on a versioned bucket, every version purged).
    pub freed_bytes: u64,
}

/// A deletion the operator confirmed: what was named, and the plan that was shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmed {
    /// The rows named (before cascading).
    pub targets: Vec<RowId>,
    /// Whether referrers go too.
    pub cascade: bool,
    /// Pinned paths may go (the confirmation said which).
    pub even_if_pinned: bool,
    /// The plan shown.
    pub plan: DeletePlan,
}

/// The pinned rows of `plan` as a refusal (`None` when no pin names any of them).
pub fn pinned_refusal(idx: &Index, plan: &DeletePlan, pins: &[crate::pins::Pin]) -> Option<String> {
    let pinned = pinned_rows(idx, plan, pins);
    if pinned.is_empty() {
        return None;
    }
    let list: Vec<String> = pinned
        .iter()
        .take(10)
        .map(|(r, names)| format!("{} (pin {})", idx.store_path(*r), names.join(", ")))
        .collect();
    Some(format!(
        "refusing to delete {} pinned path(s): {}{}; remove them from their pins first \
         (narscope pin CACHE rm NAME), or pass --even-if-pinned",
        pinned.len(),
        list.join("; "),
        if pinned.len() > 10 { "; …" } else { "" }
    ))
}

/// The cache a deletion works on, with what the look just before deleting needs: the same
/// index to scan again (rows keep their ids), the trusted keys and the scan options.
#[derive(Clone)]
pub struct Rescan {
    /// The cache to look at again and delete from.
    pub cache: Arc<Cache>,
    /// Its scanned index, scanned again just before deleting.
    pub index: Arc<RwLock<Index>>,
    /// The trusted keys the scan checks signatures with.
    pub keys: Arc<crate::nix::TrustedKeys>,
    /// How the scan lists and reads (NARs listed).
    pub scan: crate::index::scan::ScanOptions,
    /// On a bucket that keeps versions, delete the hidden versions at once (`--permanent`):
    /// frees the space, cannot be undone.
    pub permanent: bool,
}

/// Carries out a confirmed deletion safely against concurrent writers: takes the cache's
/// deletion lease (see [`crate::lease`]), waits for pushes to pause, scans the cache again
/// into `index`, reads the pins again, and plans again from the same targets. It deletes
/// only when the new plan is safe and lies within the confirmed one (what is gone meanwhile
/// is simply not deleted again); otherwise it refuses, saying what changed.
pub async fn execute_confirmed(
    at: Rescan,
    confirmed: Confirmed,
    job: Arc<JobHandle>,
    notify: JobNotify,
) -> Result<DeleteSummary, JobError> {
    if let Some(why) = confirmed.plan.refusal() {
        return Err(JobError::Refused(why));
    }
    under_lease(&at, "delete", &job, &notify, || async {
        let pins = crate::pins::list_pins(at.cache.store().as_ref()).await?;
        let idx = at.index.read().unwrap_or_else(|e| e.into_inner());
        let targets: Vec<RowId> = confirmed
            .targets
            .iter()
            .copied()
            .filter(|&r| idx.row(r).is_live())
            .collect();
        let mut plan = self::plan(&idx, &targets, confirmed.cascade);
        if let Some(why) = plan.refusal() {
            return Err(JobError::Refused(format!(
                "{why} (seen just before deleting; nothing was deleted){}",
                if plan.unknown.is_empty() {
                    String::new()
                } else {
                    format!(": {}", crate::index::describe_unknown(&plan.unknown))
                }
            )));
        }
        if !confirmed.even_if_pinned
            && let Some(why) = pinned_refusal(&idx, &plan, &pins)
        {
            return Err(JobError::Refused(why));
        }
        let shown: HashSet<RowId> = confirmed.plan.rows().collect();
        let new: Vec<String> = plan
            .rows()
            .filter(|r| !shown.contains(r))
            .map(|r| idx.store_path(r))
            .collect();
        if !new.is_empty() {
            return Err(JobError::Refused(format!(
                "refusing to delete: the cache changed since the plan was made, and {} more \
                 path(s) would now go ({}); plan again",
                new.len(),
                new.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        // Only objects the confirmed plan named.
        let nars: HashSet<&String> = confirmed.plan.nar_keys.iter().collect();
        let listings: HashSet<&String> = confirmed.plan.ls_keys.iter().collect();
        plan.nar_keys.retain(|k| nars.contains(k));
        plan.ls_keys.retain(|k| listings.contains(k));
        let kept = confirmed.plan.narinfos().saturating_sub(plan.narinfos()) as u64;
        Ok((plan, kept))
    })
    .await
}

/// The tail every deletion shares (delete and gc): takes the cache's deletion lease as
/// `holder`, waits for pushes to pause, looks at the cache again ([`second_look`]), asks
/// `replan` for the plan to carry out and how many narinfos of the confirmed plan it keeps
/// (the summary's `kept_since_planned`), executes it under the lease, and releases the lease
/// whatever happened.
pub(crate) async fn under_lease<F, Fut>(
    at: &Rescan,
    holder: &str,
    job: &Arc<JobHandle>,
    notify: &JobNotify,
    replan: F,
) -> Result<DeleteSummary, JobError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(DeletePlan, u64), JobError>>,
{
    let lease = crate::lease::DeletionLease::acquire(at.cache.store().clone(), holder)
        .await
        .map_err(JobError::from)?;
    let p = job.progress.clone();
    let result = async {
        lease
            .wait_for_pushes(|s| p.set_current(s))
            .await
            .map_err(JobError::from)?;
        second_look(&at.cache, &at.index, &at.keys, at.scan.clone(), job).await?;
        let (plan, kept) = replan().await?;
        let how = ExecuteOptions {
            lease: Some(&lease),
            command: holder,
            permanent: at.permanent,
        };
        let mut s = execute(
            at.cache.clone(),
            at.index.clone(),
            plan,
            job.clone(),
            notify.clone(),
            how,
        )
        .await?;
        s.kept_since_planned = kept;
        Ok(s)
    }
    .await;
    lease.release().await;
    result
}

/// The look just before deleting: the same index scanned again (rows keep their ids).
pub(crate) async fn second_look(
    cache: &Arc<Cache>,
    index: &Arc<RwLock<Index>>,
    keys: &Arc<crate::nix::TrustedKeys>,
    scan: crate::index::scan::ScanOptions,
    job: &Arc<JobHandle>,
) -> Result<(), JobError> {
    job.progress
        .set_current("looking at the cache again before deleting");
    crate::index::scan::scan(
        cache.clone(),
        index.clone(),
        keys.clone(),
        scan,
        Arc::new(crate::index::scan::ScanProgress::default()),
        Arc::new(|| {}),
        job.cancel.clone(),
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        JobError::Failed(format!(
            "the look just before deleting failed, nothing was deleted: {e}"
        ))
    })
}

/// How [`execute`] deletes.
#[derive(Clone, Copy, Default)]
pub struct ExecuteOptions<'a> {
    /// The deletion lease held, checked before every request.
    pub lease: Option<&'a crate::lease::DeletionLease>,
    /// The command deleting (`gc` or `delete`), for the plan record.
    pub command: &'a str,
    /// On a bucket that keeps versions, purge what was hidden right away.
    pub permanent: bool,
}

/// Carry out a safe plan (see the module docs). Stops before the NARs if any narinfo could not
/// be deleted, so nothing a remaining narinfo needs is touched. Deleted rows are marked
/// removed in `index`. On a bucket that keeps versions it first refuses under object lock,
/// then learns each key's current version and writes a plan record
/// ([`crate::versioned::PlanRecord`]) before deleting, and completes it (delete markers,
/// outcome) afterwards; with [`ExecuteOptions::permanent`] it then purges the plan.
pub async fn execute(
    cache: Arc<Cache>,
    index: Arc<RwLock<Index>>,
    plan: DeletePlan,
    job: Arc<JobHandle>,
    notify: JobNotify,
    how: ExecuteOptions<'_>,
) -> Result<DeleteSummary, JobError> {
    if let Some(why) = plan.refusal() {
        return Err(JobError::Refused(why));
    }
    let p = job.progress.clone();
    let versioning = match cache.versioning().await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("bucket versioning not read (deleting as if deletes were final): {e}");
            crate::storage::Versioning::Unversioned
        }
    };
    let mut record = None;
    if versioning.keeps_versions() {
        if let Some(why) = crate::versioned::lock_refusal(cache.store().as_ref()).await {
            return Err(JobError::Refused(why));
        }
        p.set_current("learning the current versions before deleting");
        record = Some(begin_record(&cache, &index, &plan, how).await?);
    }
    let mut t = Tally::default();
    let result = delete_in_order(&cache, &index, &plan, (&job, &notify), how, &mut t).await;
    let (mut s, markers) = (t.summary, t.markers);
    let Some(mut rec) = record else {
        result?;
        s.freed_bytes = plan.nar_bytes;
        return Ok(s);
    };
    for o in &mut rec.objects {
        o.marker = markers.get(&o.key).cloned();
    }
    rec.state = if result.is_ok() && s.failed == 0 {
        crate::versioned::RecordState::Hidden
    } else {
        crate::versioned::RecordState::Partial
    };
    let saved = rec.save(cache.store().as_ref()).await;
    result?;
    saved.map_err(|e| {
        JobError::store_in(
            format!(
                "deleted, but the plan record {} could not be completed (restore and purge \
                 will not know the delete markers)",
                rec.key()
            ),
            e,
        )
    })?;
    s.plan = Some(rec.id.clone());
    s.hidden_bytes = rec.totals.bytes;
    if how.permanent {
        p.set_current("deleting the hidden versions (--permanent)");
        let opts = crate::versioned::PurgeOptions {
            plans: vec![rec.id.clone()],
            ..Default::default()
        };
        let store = cache.store().as_ref();
        let shown = crate::versioned::plan_purge(store, &opts).await?;
        let purged = crate::versioned::purge(store, &shown, &opts).await?;
        s.freed_bytes = purged.bytes.saturating_sub(purged.record_bytes);
        s.hidden_bytes = s.hidden_bytes.saturating_sub(s.freed_bytes);
        if purged.plans.contains(&rec.id) {
            s.plan = None;
        }
    }
    p.set_current(String::new());
    Ok(s)
}

/// Learns the current version of every key `plan` deletes and writes the plan record
/// (state `deleting`) before anything is deleted.
async fn begin_record(
    cache: &Arc<Cache>,
    index: &Arc<RwLock<Index>>,
    plan: &DeletePlan,
    how: ExecuteOptions<'_>,
) -> Result<crate::versioned::PlanRecord, JobError> {
    use crate::versioned::{ObjectKind, PlanRecord, RecordObject};
    let mut order: Vec<(String, Option<u32>)> = Vec::new();
    {
        let idx = index.read().unwrap_or_else(|e| e.into_inner());
        for (i, level) in plan.levels.iter().enumerate() {
            order.extend(level.iter().map(|&r| (idx.narinfo_key(r), Some(i as u32))));
        }
    }
    order.extend(
        plan.nar_keys
            .iter()
            .chain(&plan.ls_keys)
            .chain(&plan.extra_keys)
            .map(|k| (k.clone(), None)),
    );
    let store = cache.store().as_ref();
    let keys: Vec<String> = order.iter().map(|(k, _)| k.clone()).collect();
    let versions = crate::versioned::versions_of_keys(store, &keys)
        .await
        .map_err(|e| {
            JobError::store_in(
                "learning the current versions before deleting (nothing was deleted)",
                e,
            )
        })?;
    let objects = order
        .into_iter()
        .map(|(key, level)| {
            let cur = versions
                .get(&key)
                .and_then(|vs| crate::versioned::current(vs));
            RecordObject {
                kind: ObjectKind::of(&key),
                size: cur.map_or(0, |v| v.size),
                version: cur.map(|v| v.version_id.clone()),
                marker: None,
                level,
                restored: false,
                key,
            }
        })
        .collect();
    let command = if how.command.is_empty() {
        "delete"
    } else {
        how.command
    };
    let mut rec = PlanRecord::new(command, &cache.url().to_string(), objects);
    rec.permanent = how.permanent;
    rec.save(store).await.map_err(|e| {
        JobError::store_in(
            format!(
                "writing the plan record {} (nothing was deleted)",
                rec.key()
            ),
            e,
        )
    })?;
    Ok(rec)
}

/// What [`delete_in_order`] counted, even when it failed.
#[derive(Default)]
struct Tally {
    summary: DeleteSummary,
    /// The delete markers written: key → version id.
    markers: std::collections::HashMap<String, String>,
}

/// The deletes of [`execute`], in order; counts and collects the delete markers written into
/// `t`.
async fn delete_in_order(
    cache: &Arc<Cache>,
    index: &Arc<RwLock<Index>>,
    plan: &DeletePlan,
    (job, notify): (&Arc<JobHandle>, &JobNotify),
    how: ExecuteOptions<'_>,
    t: &mut Tally,
) -> Result<(), JobError> {
    let (s, markers) = (&mut t.summary, &mut t.markers);
    let still_ours = || match how.lease {
        Some(l) if !l.holds() => Err(JobError::from(crate::lease::LeaseError::Lost)),
        _ => Ok(()),
    };
    let p = job.progress.clone();
    let total = plan.narinfos() + plan.nar_keys.len() + plan.ls_keys.len() + plan.extra_keys.len();
    p.total.store(total as u64, Ordering::Relaxed);
    p.bytes_total.store(plan.nar_bytes, Ordering::Relaxed);
    let keys_of = |rows: &[RowId]| -> Vec<(RowId, String)> {
        let idx = index.read().unwrap_or_else(|e| e.into_inner());
        rows.iter().map(|&r| (r, idx.narinfo_key(r))).collect()
    };
    for (i, level) in plan.levels.iter().enumerate() {
        let keys = keys_of(level);
        for chunk in keys.chunks(1000) {
            still_ours()?;
            p.set_current(format!("narinfos, level {}", i + 1));
            let names: Vec<String> = chunk.iter().map(|(_, k)| k.clone()).collect();
            let rep = cache.store().delete_many(&names).await?;
            markers.extend(
                rep.markers
                    .iter()
                    .map(|m| (m.key.clone(), m.version_id.clone())),
            );
            let gone: HashSet<&String> = rep.deleted.iter().collect();
            {
                let mut idx = index.write().unwrap_or_else(|e| e.into_inner());
                for (r, k) in chunk {
                    if gone.contains(k) {
                        idx.mark_removed(*r);
                    }
                }
            }
            s.narinfos += rep.deleted.len() as u64;
            s.failed += rep.failed.len() as u64;
            for (k, why) in &rep.failed {
                p.error(format!("{}: {why}", cache.origin(k)));
            }
            p.done.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            notify(super::JobEvent::Progress(job.id));
        }
        if s.failed > 0 {
            return Err(JobError::Failed(format!(
                "{} narinfo(s) could not be deleted; stopped before their references and NARs",
                s.failed
            )));
        }
    }
    let rest: Vec<String> = plan
        .nar_keys
        .iter()
        .chain(&plan.ls_keys)
        .chain(&plan.extra_keys)
        .cloned()
        .collect();
    for chunk in rest.chunks(1000) {
        still_ours()?;
        p.set_current("NARs and listings");
        let rep = cache.store().delete_many(chunk).await?;
        markers.extend(
            rep.markers
                .iter()
                .map(|m| (m.key.clone(), m.version_id.clone())),
        );
        for k in &rep.deleted {
            if k.ends_with(".ls") {
                s.listings += 1;
            } else if k.starts_with("nar/") {
                s.nars += 1;
            } else {
                s.others += 1;
            }
        }
        s.failed += rep.failed.len() as u64;
        for (k, why) in &rep.failed {
            p.error(format!("{}: {why}", cache.origin(k)));
        }
        p.done.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        notify(super::JobEvent::Progress(job.id));
    }
    {
        let mut idx = index.write().unwrap_or_else(|e| e.into_inner());
        idx.forget_nars(&plan.nar_keys);
    }
    p.bytes_done.store(plan.nar_bytes, Ordering::Relaxed);
    p.set_current(String::new());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::NarObject;
    use crate::index::testdata::info;
    use crate::nix::TrustedKeys;

    #[test]
    fn a_long_reference_chain_is_levelled_without_recursion() {
        // p0 ← p1 ← … ← p(n-1): deleting all of it goes top first, one level per link.
        let keys = TrustedKeys::new();
        let n = 20_000;
        let mut chain: Vec<crate::nix::NarInfo> = Vec::with_capacity(n);
        for i in 0..n {
            let refs: Vec<&crate::nix::NarInfo> = chain.last().into_iter().collect();
            let ni = info(&format!("c{i}"), &format!("chain-{i}"), &refs);
            chain.push(ni);
        }
        let idx = Index::from_narinfos("file:///x", &keys, chain.iter());
        let all: Vec<RowId> = idx.live().collect();
        let p = plan(&idx, &all, false);
        assert!(p.is_safe());
        assert_eq!(p.levels.len(), n);
        let top = idx.find(chain[n - 1].store_path.hash_part()).unwrap();
        let bottom = idx.find(chain[0].store_path.hash_part()).unwrap();
        assert_eq!(p.levels[0], vec![top]);
        assert_eq!(p.levels[n - 1], vec![bottom]);
    }

    #[test]
    fn an_unreadable_narinfo_stops_deletions_but_can_be_deleted_itself() {
        use crate::index::{ReadError, RowData, RowStatus, TextRef};
        let keys = TrustedKeys::new();
        let lib = info("lib", "lib-1", &[]);
        let app = info("app", "app-1", &[&lib]);
        let mut idx = Index::from_narinfos("file:///x", &keys, [&lib, &app]);
        let hash = "0123456789abcdfghijklmnpqrsvwxy0";
        idx.list_key(hash, 10, 0, 1);
        let ghost = idx
            .apply(&RowData {
                hash_part: hash.into(),
                obj_size: 10,
                mtime: 0,
                etag: 1,
                info: None,
                status: RowStatus::Error,
                text: TextRef::default(),
            })
            .unwrap();
        idx.set_read_error(
            ghost,
            ReadError {
                malformed: true,
                message: format!("{hash}.narinfo: line 3: bad NarHash"),
            },
        );
        let app_id = idx.find(app.store_path.hash_part()).unwrap();
        // Deleting app: the unreadable narinfo might reference it.
        let p = plan(&idx, &[app_id], false);
        assert!(!p.is_safe());
        assert_eq!(p.unknown.len(), 1);
        assert_eq!(p.unknown[0].state, "malformed");
        assert!(p.unknown[0].advice().contains("delete it explicitly"));
        let why = p.refusal().unwrap();
        assert!(
            why.contains("could not be read (1 malformed, 0 unreadable or not read yet)"),
            "{why}"
        );
        // Named itself, it goes (and its NAR, being unknown, is not guessed).
        let p = plan(&idx, &[ghost], false);
        assert!(p.is_safe(), "{:?}", p.refusal());
        assert_eq!(p.narinfos(), 1);
        assert!(p.nar_keys.is_empty());
        // Named together with app, both go.
        assert!(plan(&idx, &[ghost, app_id], false).is_safe());
    }

    #[test]
    fn pinned_rows_are_named_with_their_pins() {
        let keys = TrustedKeys::new();
        let lib = info("lib", "lib-1", &[]);
        let app = info("app", "app-1", &[&lib]);
        let idx = Index::from_narinfos("file:///x", &keys, [&lib, &app]);
        let lib_id = idx.find(lib.store_path.hash_part()).unwrap();
        let pins = vec![crate::pins::Pin {
            name: "release".into(),
            paths: vec![app.store_path.to_absolute()],
        }];
        let p = plan(&idx, &[lib_id], true);
        let pinned = pinned_rows(&idx, &p, &pins);
        let app_id = idx.find(app.store_path.hash_part()).unwrap();
        assert_eq!(pinned, vec![(app_id, vec!["release".to_string()])]);
        let why = pinned_refusal(&idx, &p, &pins).unwrap();
        assert!(
            why.contains("pin release") && why.contains("app-1"),
            "{why}"
        );
        assert_eq!(pinned_refusal(&idx, &p, &[]), None);
    }

    #[test]
    fn plans_refuse_broken_referrers_and_cascade_in_order() {
        let keys = TrustedKeys::new();
        let lib = info("lib", "lib-1", &[]);
        let mid = info("mid", "mid-1", &[&lib]);
        let app = info("app", "app-1", &[&mid, &lib]);
        let other = info("other", "other-1", &[]);
        let mut twin = info("twin", "twin-1", &[]);
        twin.url = lib.url.clone(); // shares lib's NAR
        let mut idx = Index::from_narinfos("file:///x", &keys, [&lib, &mid, &app, &other, &twin]);
        idx.set_nars(
            [&lib, &mid, &app, &other]
                .iter()
                .map(|i| NarObject {
                    key: i.url.clone(),
                    size: 100,
                    mtime: 0,
                })
                .collect(),
        );
        let id = |i: &crate::nix::NarInfo| idx.find(i.store_path.hash_part()).unwrap();
        let (lib_id, mid_id, app_id, other_id) = (id(&lib), id(&mid), id(&app), id(&other));

        let p = plan(&idx, &[lib_id], false);
        assert!(!p.is_safe());
        assert_eq!(p.broken, {
            let mut b = vec![(mid_id, lib_id), (app_id, lib_id)];
            b.sort();
            b
        });

        let p = plan(&idx, &[lib_id], true);
        assert!(p.is_safe());
        assert_eq!(p.narinfos(), 3);
        // app (no referrer) first, then mid, then lib.
        assert_eq!(p.levels, vec![vec![app_id], vec![mid_id], vec![lib_id]]);
        // lib's NAR is shared with twin: kept.
        assert_eq!(p.shared_nars, vec![lib.url.clone()]);
        assert_eq!(p.nar_keys.len(), 2);
        assert!(!p.nar_keys.contains(&lib.url));
        assert_eq!(p.nar_bytes, 200);
        assert_eq!(p.requests(), 4);

        let p = plan(&idx, &[other_id], false);
        assert!(p.is_safe());
        assert_eq!(p.nar_keys, vec![other.url.clone()]);
    }
}
