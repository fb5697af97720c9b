//! `gc purge`: deletes for good the versions that narscope's plans hid (and, when asked, the
//! old versions that narinfo rewrites left), never a key's current version.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;

use super::record::{
    ObjectKind, PlanRecord, list, load, plan_id, record_key, versions_of, versions_of_keys,
};
use crate::jobs::JobError;
use crate::storage::{NIX32_CHARS, ObjectVersion, Store, StoreError, VersionMarker, VersionRef};

/// What to purge.
#[derive(Clone, Debug, Default)]
pub struct PurgeOptions {
    /// The plans (ids or keys); empty: every stored plan.
    pub plans: Vec<String>,
    /// Only plans older than this.
    pub older_than: Option<Duration>,
    /// Also the noncurrent versions of narinfos whose current version is a live narinfo
    /// (what `sign` rewrites leave).
    pub rewritten_narinfos: bool,
}

/// One version a purge deletes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeVersion {
    /// Key relative to the cache root.
    pub key: String,
    /// The version id.
    pub version_id: String,
    /// Its bytes.
    pub size: u64,
    /// What it is.
    pub kind: ObjectKind,
}

impl PurgeVersion {
    fn vref(&self) -> VersionRef {
        VersionRef {
            key: self.key.clone(),
            version_id: self.version_id.clone(),
        }
    }
}

/// What a purge would delete, shown before it runs.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgePlan {
    /// The plans purged (ids).
    pub plans: Vec<String>,
    /// Their hidden versions that are noncurrent now.
    pub versions: Vec<PurgeVersion>,
    /// Their delete markers with nothing below them once the versions are gone.
    pub markers: Vec<PurgeVersion>,
    /// Noncurrent versions of live narinfos (with `--rewritten-narinfos`).
    pub rewritten: Vec<PurgeVersion>,
    /// Every version of the plan records themselves (deleted last).
    pub record_versions: Vec<PurgeVersion>,
    /// Recorded versions that are current again (restored, or never hidden): kept.
    pub current: u64,
    /// Recorded versions that no longer exist.
    pub gone: u64,
    /// Stored records that could not be read: (key, why).
    pub unreadable: Vec<(String, String)>,
}

impl PurgePlan {
    /// Bytes the bucket stops storing.
    pub fn bytes(&self) -> u64 {
        self.versions
            .iter()
            .chain(&self.rewritten)
            .chain(&self.record_versions)
            .map(|v| v.size)
            .sum()
    }

    /// Nothing to delete.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
            && self.markers.is_empty()
            && self.rewritten.is_empty()
            && self.record_versions.is_empty()
    }
}

/// What [`purge`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeSummary {
    /// Plans purged completely (their records are gone).
    pub plans: Vec<String>,
    /// Hidden versions deleted.
    pub versions: u64,
    /// Delete markers deleted.
    pub markers: u64,
    /// Noncurrent narinfo versions deleted (`--rewritten-narinfos`).
    pub rewritten: u64,
    /// Bytes the bucket stopped storing.
    pub bytes: u64,
    /// Of those, the bytes of the plan records' own versions.
    pub record_bytes: u64,
    /// Versions that could not be deleted.
    pub failed: u64,
    /// Recorded versions kept because they are current (restored, or re-pushed).
    pub current: u64,
}

/// Makes the purge plan: reads the plans (all, or those named; only those older than
/// `older_than`), and looks at every recorded key's versions now.
pub async fn plan_purge(store: &dyn Store, opts: &PurgeOptions) -> Result<PurgePlan, JobError> {
    let mut p = PurgePlan::default();
    let mut records: Vec<PlanRecord> = Vec::new();
    if opts.plans.is_empty() {
        let (ok, bad) = list(store).await?;
        records = ok;
        p.unreadable = bad;
    } else {
        for id in &opts.plans {
            records.push(load(store, id).await?);
        }
    }
    if let Some(age) = opts.older_than {
        let now = SystemTime::now();
        records.retain(|r| r.age_secs(now) >= age.as_secs());
    }
    let mut keys: Vec<String> = records
        .iter()
        .flat_map(|r| r.objects.iter().map(|o| o.key.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let versions = versions_of_keys(store, &keys).await?;
    let mut taken: HashSet<VersionRef> = HashSet::new();
    for r in &records {
        for o in &r.objects {
            let vs = versions.get(&o.key).map(Vec::as_slice).unwrap_or_default();
            if let Some(v) = &o.version {
                match vs.iter().find(|x| &x.version_id == v && !x.delete_marker) {
                    None => p.gone += 1,
                    Some(x) if x.is_latest => p.current += 1,
                    Some(x) => {
                        let pv = PurgeVersion {
                            key: o.key.clone(),
                            version_id: x.version_id.clone(),
                            size: x.size,
                            kind: o.kind,
                        };
                        if taken.insert(pv.vref()) {
                            p.versions.push(pv);
                        }
                    }
                }
            }
        }
    }
    for r in &records {
        for o in &r.objects {
            let Some(m) = &o.marker else { continue };
            let vs = versions.get(&o.key).map(Vec::as_slice).unwrap_or_default();
            let Some(marker) = vs.iter().find(|x| &x.version_id == m && x.delete_marker) else {
                continue;
            };
            if marker_free(vs, marker, &taken) {
                let pv = PurgeVersion {
                    key: o.key.clone(),
                    version_id: m.clone(),
                    size: 0,
                    kind: o.kind,
                };
                if taken.insert(pv.vref()) {
                    p.markers.push(pv);
                }
            }
        }
    }
    if opts.rewritten_narinfos {
        for (key, vs) in narinfo_versions(store).await? {
            if super::record::current(&vs).is_none() {
                continue;
            }
            for x in vs.iter().filter(|x| !x.is_latest && !x.delete_marker) {
                let pv = PurgeVersion {
                    key: key.clone(),
                    version_id: x.version_id.clone(),
                    size: x.size,
                    kind: ObjectKind::Narinfo,
                };
                if taken.insert(pv.vref()) {
                    p.rewritten.push(pv);
                }
            }
        }
    }
    for r in &records {
        p.plans.push(r.id.clone());
        for x in versions_of(store, &r.key()).await? {
            p.record_versions.push(PurgeVersion {
                key: x.key,
                version_id: x.version_id,
                size: x.size,
                kind: ObjectKind::Other,
            });
        }
    }
    Ok(p)
}

/// Whether deleting `marker` uncovers nothing: no version of the key that is not being
/// deleted lies below it (a current marker over an older version would bring that version
/// back); a marker that is not current never changes what the key answers, and goes once no
/// noncurrent version stays besides it.
fn marker_free(vs: &[ObjectVersion], marker: &ObjectVersion, taken: &HashSet<VersionRef>) -> bool {
    let staying = |x: &&ObjectVersion| {
        !x.delete_marker
            && !taken.contains(&VersionRef {
                key: x.key.clone(),
                version_id: x.version_id.clone(),
            })
    };
    if marker.is_latest {
        !vs.iter().any(|x| staying(&x))
    } else {
        !vs.iter().any(|x| !x.is_latest && staying(&x))
    }
}

/// The versions of every narinfo key, by key (32 prefix listings, 8 at a time).
async fn narinfo_versions(
    store: &dyn Store,
) -> Result<HashMap<String, Vec<ObjectVersion>>, StoreError> {
    let pages: Vec<Result<Vec<ObjectVersion>, StoreError>> =
        futures::stream::iter(NIX32_CHARS.chars())
            .map(|c| async move {
                let prefix = c.to_string();
                let mut out = Vec::new();
                let mut marker: Option<VersionMarker> = None;
                loop {
                    let page = store.list_versions_page(&prefix, marker).await?;
                    out.extend(
                        page.versions
                            .into_iter()
                            .filter(|v| crate::storage::is_narinfo_key(&v.key)),
                    );
                    match page.next {
                        Some(m) => marker = Some(m),
                        None => break,
                    }
                }
                Ok(out)
            })
            .buffer_unordered(8)
            .collect()
            .await;
    let mut by_key: HashMap<String, Vec<ObjectVersion>> = HashMap::new();
    for p in pages {
        for v in p? {
            by_key.entry(v.key.clone()).or_default().push(v);
        }
    }
    Ok(by_key)
}

/// [`purge`] under the cache's deletion lease.
pub async fn purge_under_lease(
    store: Arc<dyn Store>,
    shown: &PurgePlan,
    opts: &PurgeOptions,
) -> Result<PurgeSummary, JobError> {
    let lease = crate::lease::DeletionLease::acquire(store.clone(), "gc purge")
        .await
        .map_err(JobError::from)?;
    let r = purge(store.as_ref(), shown, opts).await;
    lease.release().await;
    r
}

/// Carries out a purge shown as `shown` (the caller holds the deletion lease): looks at the
/// versions again and deletes only what both looks agree on (a version made current since,
/// by a restore or a push, stays), then the markers, then the records of the plans whose
/// versions all went.
pub async fn purge(
    store: &dyn Store,
    shown: &PurgePlan,
    opts: &PurgeOptions,
) -> Result<PurgeSummary, JobError> {
    let again = plan_purge(
        store,
        &PurgeOptions {
            plans: shown.plans.clone(),
            older_than: None,
            rewritten_narinfos: opts.rewritten_narinfos,
        },
    )
    .await?;
    let in_shown = |list: &[PurgeVersion]| -> HashSet<VersionRef> {
        list.iter().map(PurgeVersion::vref).collect()
    };
    let (shown_v, shown_r) = (in_shown(&shown.versions), in_shown(&shown.rewritten));
    let shown_m = in_shown(&shown.markers);
    let versions: Vec<&PurgeVersion> = again
        .versions
        .iter()
        .filter(|v| shown_v.contains(&v.vref()))
        .collect();
    let rewritten: Vec<&PurgeVersion> = again
        .rewritten
        .iter()
        .filter(|v| shown_r.contains(&v.vref()))
        .collect();
    let mut s = PurgeSummary {
        current: again.current,
        ..PurgeSummary::default()
    };
    let mut failed_keys: HashSet<String> = HashSet::new();
    let refs: Vec<VersionRef> = versions
        .iter()
        .chain(&rewritten)
        .map(|v| v.vref())
        .collect();
    let failed = delete(store, &refs, &mut failed_keys).await?;
    for v in &versions {
        if !failed.contains(&v.vref()) {
            s.versions += 1;
            s.bytes += v.size;
        }
    }
    for v in &rewritten {
        if !failed.contains(&v.vref()) {
            s.rewritten += 1;
            s.bytes += v.size;
        }
    }
    s.failed += failed.len() as u64;
    let markers: Vec<VersionRef> = again
        .markers
        .iter()
        .map(PurgeVersion::vref)
        .filter(|m| shown_m.contains(m) && !failed_keys.contains(&m.key))
        .collect();
    let failed = delete(store, &markers, &mut failed_keys).await?;
    s.markers += markers.len().saturating_sub(failed.len()) as u64;
    s.failed += failed.len() as u64;
    // A record goes once nothing it recorded failed.
    for id in &again.plans {
        let rec = match load(store, id).await {
            Ok(r) => r,
            Err(_) => continue,
        };
        if rec.objects.iter().any(|o| failed_keys.contains(&o.key)) {
            continue;
        }
        let key = record_key(&plan_id(id));
        let rvs: Vec<&PurgeVersion> = again
            .record_versions
            .iter()
            .filter(|v| v.key == key)
            .collect();
        let refs: Vec<VersionRef> = rvs.iter().map(|v| v.vref()).collect();
        let mut none = HashSet::new();
        let failed = delete(store, &refs, &mut none).await?;
        if failed.is_empty() {
            let b = rvs.iter().map(|v| v.size).sum::<u64>();
            s.bytes += b;
            s.record_bytes += b;
            s.plans.push(rec.id.clone());
        } else {
            s.failed += failed.len() as u64;
        }
    }
    if s.failed > 0 {
        return Err(JobError::Failed(format!(
            "purge: {} version(s) could not be deleted ({} deleted, {} freed); the plans they \
             belong to stay recorded",
            s.failed,
            s.versions + s.rewritten + s.markers,
            crate::units::human_size(s.bytes)
        )));
    }
    Ok(s)
}

/// Deletes exact versions; returns the ones that failed (and adds their keys to
/// `failed_keys`).
async fn delete(
    store: &dyn Store,
    refs: &[VersionRef],
    failed_keys: &mut HashSet<String>,
) -> Result<HashSet<VersionRef>, JobError> {
    let mut failed = HashSet::new();
    if refs.is_empty() {
        return Ok(failed);
    }
    let rep = store.delete_versions(refs).await?;
    let labels: HashSet<&String> = rep.failed.iter().map(|(k, _)| k).collect();
    for (what, why) in &rep.failed {
        tracing::warn!("{what}: not deleted: {why}");
    }
    for r in refs {
        let label = format!("{} (version {})", r.key, r.version_id);
        if labels.contains(&label) || labels.contains(&r.key) {
            failed_keys.insert(r.key.clone());
            failed.insert(r.clone());
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, latest: bool, marker: bool) -> ObjectVersion {
        ObjectVersion {
            key: "k".into(),
            version_id: id.into(),
            is_latest: latest,
            delete_marker: marker,
            size: if marker { 0 } else { 10 },
            last_modified: None,
            etag: None,
        }
    }

    fn r(id: &str) -> VersionRef {
        VersionRef {
            key: "k".into(),
            version_id: id.into(),
        }
    }

    #[test]
    fn a_current_marker_goes_only_when_nothing_would_come_back() {
        // m over our hidden v: once v goes, m covers nothing.
        let vs = [v("m", true, true), v("v", false, false)];
        let taken: HashSet<VersionRef> = [r("v")].into();
        assert!(marker_free(&vs, &vs[0], &taken));
        // An older version that is not purged would come back.
        let vs = [
            v("m", true, true),
            v("v", false, false),
            v("old", false, false),
        ];
        assert!(!marker_free(&vs, &vs[0], &taken));
        // Re-pushed since: the marker is noncurrent and goes once v is gone; new stays.
        let vs = [
            v("new", true, false),
            v("m", false, true),
            v("v", false, false),
        ];
        assert!(marker_free(&vs, &vs[1], &taken));
        assert!(!marker_free(&vs, &vs[1], &HashSet::new()));
    }
}
