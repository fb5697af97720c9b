//! `gc restore`: removes a plan's delete markers again, so the hidden versions are current
//! and the paths whole again.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::record::{ObjectKind, PlanRecord, RecordState, load, versions_of_keys};
use crate::jobs::JobError;
use crate::storage::{Store, VersionRef};

/// What [`restore`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSummary {
    /// The plan's id.
    pub plan: String,
    /// Objects made current again.
    pub restored: u64,
    /// Narinfos among them (store paths back in the cache).
    pub narinfos: u64,
    /// Bytes made current again.
    pub bytes: u64,
    /// Objects restored before (their marker is gone and the hidden version is current).
    pub already: u64,
    /// Objects not restored, with why (a newer version was written since, the version is
    /// gone).
    pub skipped: Vec<(String, String)>,
    /// Objects whose marker could not be removed.
    pub failed: u64,
    /// The record's state afterwards.
    pub state: Option<RecordState>,
}

/// Restores the plan `id` under the cache's deletion lease: removes each delete marker the
/// plan wrote where it is still the key's latest version (else the key is skipped: a newer
/// version was written since), NARs, listings and other objects first, then the narinfos,
/// most-referenced first (the reverse of deletion), so a narinfo never reappears before its
/// NAR. Stops before the narinfos when a NAR could not be restored. The record is updated.
pub async fn restore(store: Arc<dyn Store>, id: &str) -> Result<RestoreSummary, JobError> {
    let lease = crate::lease::DeletionLease::acquire(store.clone(), "gc restore")
        .await
        .map_err(JobError::from)?;
    let result = restore_held(store.as_ref(), id, &lease).await;
    lease.release().await;
    result
}

async fn restore_held(
    store: &dyn Store,
    id: &str,
    lease: &crate::lease::DeletionLease,
) -> Result<RestoreSummary, JobError> {
    let mut rec = load(store, id).await?;
    let mut s = RestoreSummary {
        plan: rec.id.clone(),
        ..RestoreSummary::default()
    };
    let keys: Vec<String> = rec
        .objects
        .iter()
        .filter(|o| o.marker.is_some() && !o.restored)
        .map(|o| o.key.clone())
        .collect();
    let versions = versions_of_keys(store, &keys).await?;
    // Stages: everything but narinfos, then narinfos by level, highest first.
    let mut stages: BTreeMap<(u8, std::cmp::Reverse<u32>), Vec<usize>> = BTreeMap::new();
    let mut already = Vec::new();
    for (i, o) in rec.objects.iter().enumerate() {
        let Some(m) = &o.marker else { continue };
        if o.restored {
            continue;
        }
        let vs = versions.get(&o.key).map(Vec::as_slice).unwrap_or_default();
        let latest = vs.iter().find(|v| v.is_latest);
        let ours = vs.iter().any(|v| v.delete_marker && &v.version_id == m);
        if latest.is_some_and(|v| v.delete_marker && &v.version_id == m) {
            let stage = match o.kind {
                ObjectKind::Narinfo => (1, std::cmp::Reverse(o.level.unwrap_or(0))),
                _ => (0, std::cmp::Reverse(0)),
            };
            stages.entry(stage).or_default().push(i);
        } else if !ours
            && o.version.is_some()
            && latest.is_some_and(|v| Some(&v.version_id) == o.version.as_ref())
        {
            already.push(i);
        } else if ours || latest.is_some() {
            s.skipped.push((
                o.key.clone(),
                "a newer version was written since; it stays".into(),
            ));
        } else {
            s.skipped.push((
                o.key.clone(),
                "its delete marker is gone and it has no current version".into(),
            ));
        }
    }
    for i in already {
        s.already += 1;
        rec.objects[i].restored = true;
    }
    let mut stopped = None;
    for ((stage, _), idxs) in stages {
        if stage == 1 && s.failed > 0 {
            stopped = Some(format!(
                "{} NAR(s) or listing(s) could not be restored; stopped before the narinfos",
                s.failed
            ));
            break;
        }
        if !lease.holds() {
            stopped = Some(crate::lease::LeaseError::Lost.to_string());
            break;
        }
        let refs: Vec<VersionRef> = idxs
            .iter()
            .map(|&i| VersionRef {
                key: rec.objects[i].key.clone(),
                version_id: rec.objects[i].marker.clone().unwrap_or_default(),
            })
            .collect();
        let rep = store.delete_versions(&refs).await?;
        for (what, why) in &rep.failed {
            tracing::warn!("{what}: delete marker not removed: {why}");
        }
        let deleted: HashSet<&String> = rep.deleted.iter().collect();
        for &i in &idxs {
            let o = &mut rec.objects[i];
            if !deleted.contains(&o.key) {
                s.failed += 1;
                continue;
            }
            o.restored = true;
            s.restored += 1;
            s.bytes += o.size;
            if o.kind == ObjectKind::Narinfo {
                s.narinfos += 1;
            }
        }
    }
    rec.state = rec.restore_state();
    s.state = Some(rec.state);
    save(store, &rec).await?;
    match stopped {
        Some(why) => Err(JobError::Failed(format!(
            "restoring plan {}: {why} ({} object(s) restored)",
            rec.id, s.restored
        ))),
        None if s.failed > 0 => Err(JobError::Failed(format!(
            "restoring plan {}: {} delete marker(s) could not be removed ({} object(s) restored)",
            rec.id, s.failed, s.restored
        ))),
        None => Ok(s),
    }
}

async fn save(store: &dyn Store, rec: &PlanRecord) -> Result<(), JobError> {
    rec.save(store)
        .await
        .map_err(|e| JobError::store_in(format!("updating plan record {}", rec.key()), e))
}
