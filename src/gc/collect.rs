//! The I/O around the plan: the first look ([`prepare`]: read the extra listings and plan),
//! the second look just before deleting ([`final_plan`]) and the collecting job ([`collect`])
//! under the deletion lease.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use crate::jobs::JobError;
use crate::jobs::delete::{DeleteSummary, Rescan};

use crate::index::{Index, RowId, flags};
use crate::storage::{Store, StoreError};

use super::GcError;
use super::plan::RootSource;
use super::plan::{Extras, GcOptions, GcPlan, intersect, plan};
use super::roots::{GcRequest, GivenRoots, roots_of};
use crate::pins::{Pin, list_pins};

/// How many debuginfo links [`gather_extras`] reads at once.
pub(super) const DEBUGINFO_READS: usize = 32;

/// The objects under `log/` and `debuginfo/` (reading each debuginfo link's `archive`,
/// `DEBUGINFO_READS` (32) at a time). Call [`Extras::read_derivers`] on the index afterwards.
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
    /// The plan of the first look: what would be deleted, and why everything else is kept.
    pub plan: GcPlan,
    /// Collecting without any root in the cache was allowed (`--allow-no-roots`).
    pub allow_no_roots: bool,
}

impl Prepared {
    /// Whether anything keeps paths alive besides the grace period: a root that is in the
    /// cache, a retention age, or a retention policy (`--keep-versions`, `--max-size`).
    /// Roots that name nothing in the cache are no roots.
    pub fn has_roots(&self) -> bool {
        !self.plan.roots.is_empty()
            || self.opts.keep_younger.is_some()
            || self.opts.retention.is_set()
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
) -> Result<Prepared, GcError> {
    let mut extras = gather_extras(store).await?;
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

/// The first look of a GC as both front ends ask for it: reads the request's roots and the
/// pins ([`GcRequest::read_roots`]) and plans over `index` ([`prepare_given`]).
pub async fn prepare_request(
    store: &dyn Store,
    index: &std::sync::RwLock<Index>,
    req: &GcRequest,
) -> Result<Prepared, GcError> {
    let given = req.read_roots(store).await?;
    prepare_given(store, index, req, given).await
}

/// The first look from roots already read (for a caller that refuses a request without
/// roots before scanning the cache): plans over `index` with the request's options, and
/// records whether collecting without roots was allowed.
pub async fn prepare_given(
    store: &dyn Store,
    index: &std::sync::RwLock<Index>,
    req: &GcRequest,
    given: GivenRoots,
) -> Result<Prepared, GcError> {
    let mut prepared = prepare(store, index, given.pins, given.extra, req.options()).await?;
    prepared.allow_no_roots = req.allow_no_roots;
    Ok(prepared)
}

/// Second look, just before deleting: `index` has been re-scanned (the same index, so row
/// ids are stable) and the pins are read again; only what both looks call garbage goes,
/// closed again under referrers, so a push or a new pin since the first look can only keep
/// more.
pub async fn final_plan(
    store: &dyn Store,
    index: &std::sync::RwLock<Index>,
    first: &Prepared,
) -> Result<GcPlan, GcError> {
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
        let mut d = crate::jobs::delete::plan(&idx, &p.garbage, false);
        // A pruned row's referrers stay: they get it from the upstream.
        let pruned: HashSet<RowId> = p.pruned.iter().copied().collect();
        d.broken.retain(|(_, t)| !pruned.contains(t));
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
        p.pruned.retain(|r| !keep.contains(r));
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
    at: Rescan,
    first: Arc<Prepared>,
    job: Arc<crate::jobs::JobHandle>,
    notify: crate::jobs::JobNotify,
) -> Result<DeleteSummary, JobError> {
    if let Some(why) = first.plan.refusal() {
        return Err(JobError::Refused(why));
    }
    if !first.has_roots() && !first.allow_no_roots {
        return Err(JobError::Refused(format!(
            "refusing: {}",
            first.no_roots_message()
        )));
    }
    crate::jobs::delete::under_lease(&at, "gc", &job, &notify, || async {
        let plan = final_plan(at.cache.store().as_ref(), &at.index, &first).await?;
        if let Some(why) = plan.refusal() {
            return Err(JobError::Refused(format!(
                "{why} (seen just before deleting; nothing was deleted): {}; {}",
                crate::index::describe_unknown(&plan.unknown),
                plan.unknown.first().map(|u| u.advice()).unwrap_or_default()
            )));
        }
        let kept = first.plan.garbage.len().saturating_sub(plan.garbage.len()) as u64;
        Ok((plan.delete, kept))
    })
    .await
}
