//! Plan records: what a deletion on a versioned bucket hid, stored in the bucket itself under
//! `narscope/gc/<id>.json` so that anyone operating the bucket can restore or purge it.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::jobs::JobError;
use crate::storage::{ObjectVersion, PutOptions, Store, StoreError, VersionMarker};

/// Where plan records live, relative to the cache root.
pub const PLANS_PREFIX: &str = "narscope/gc/";

/// How many version listings run at once when the current versions of keys are learnt.
pub const VERSION_LOOKUPS: usize = 32;

/// What kind of cache object a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// `<hash>.narinfo`.
    Narinfo,
    /// `nar/…`.
    Nar,
    /// `<hash>.ls`.
    Listing,
    /// Anything else (logs, debuginfo links, temp files).
    Other,
}

impl ObjectKind {
    /// The kind of `key`.
    pub fn of(key: &str) -> ObjectKind {
        if crate::storage::is_narinfo_key(key) {
            ObjectKind::Narinfo
        } else if key.starts_with("nar/") {
            ObjectKind::Nar
        } else if key.ends_with(".ls") && !key.contains('/') {
            ObjectKind::Listing
        } else {
            ObjectKind::Other
        }
    }
}

/// Where a plan record stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordState {
    /// Written before deleting; the deletion has not finished (or was interrupted).
    Deleting,
    /// Every object was hidden behind a delete marker.
    Hidden,
    /// The deletion stopped partway (some objects could not be deleted).
    Partial,
    /// Some of the plan's delete markers were removed again.
    PartlyRestored,
    /// Every delete marker the plan wrote was removed again.
    Restored,
    /// The hidden versions were deleted for good (the record goes next).
    Purged,
}

impl RecordState {
    /// The state in words, for tables.
    pub fn label(self) -> &'static str {
        match self {
            RecordState::Deleting => "deleting",
            RecordState::Hidden => "hidden",
            RecordState::Partial => "partial",
            RecordState::PartlyRestored => "partly restored",
            RecordState::Restored => "restored",
            RecordState::Purged => "purged",
        }
    }
}

/// One object a plan deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordObject {
    /// Key relative to the cache root.
    pub key: String,
    /// What it is.
    pub kind: ObjectKind,
    /// Bytes of the hidden version.
    pub size: u64,
    /// The version the delete made noncurrent (`None`: the key had no current version).
    pub version: Option<String>,
    /// The delete marker the delete wrote (`None` until deleted, or when the delete failed).
    pub marker: Option<String>,
    /// For narinfos: the deletion level (referrers first, level 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// Its delete marker was removed by a restore.
    #[serde(default)]
    pub restored: bool,
}

/// Totals of a plan record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Objects.
    pub objects: u64,
    /// Bytes of the hidden versions.
    pub bytes: u64,
    /// Narinfos.
    pub narinfos: u64,
    /// NARs.
    pub nars: u64,
    /// Listings.
    pub listings: u64,
    /// Other objects.
    pub other: u64,
}

/// What one deletion on a versioned bucket hid (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanRecord {
    /// `<UTC timestamp>-<random>`; the record's key is `narscope/gc/<id>.json`.
    pub id: String,
    /// When the plan was carried out (RFC 3339, UTC).
    pub created: String,
    /// The same, in seconds since the epoch.
    pub created_unix: u64,
    /// `gc` or `delete`.
    pub command: String,
    /// The cache's URL (without parameters).
    pub cache: String,
    /// Where it stands.
    pub state: RecordState,
    /// Asked to delete permanently (`--permanent`): purged right after deleting.
    #[serde(default)]
    pub permanent: bool,
    /// The objects, in deletion order.
    pub objects: Vec<RecordObject>,
    /// Totals over the objects.
    pub totals: Totals,
}

impl PlanRecord {
    /// A new record (state [`RecordState::Deleting`]) of `objects`, made now.
    pub fn new(command: &str, cache: &str, objects: Vec<RecordObject>) -> PlanRecord {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let stamp = rfc3339(now);
        let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
        let id = format!("{compact}-{:08x}", fastrand::u32(..));
        let mut r = PlanRecord {
            id,
            created: stamp,
            created_unix: secs,
            command: command.to_string(),
            cache: cache.split('?').next().unwrap_or_default().to_string(),
            state: RecordState::Deleting,
            permanent: false,
            objects,
            totals: Totals::default(),
        };
        r.totals = r.compute_totals();
        r
    }

    /// Totals over the objects.
    pub fn compute_totals(&self) -> Totals {
        let mut t = Totals::default();
        for o in &self.objects {
            t.objects += 1;
            t.bytes += o.size;
            match o.kind {
                ObjectKind::Narinfo => t.narinfos += 1,
                ObjectKind::Nar => t.nars += 1,
                ObjectKind::Listing => t.listings += 1,
                ObjectKind::Other => t.other += 1,
            }
        }
        t
    }

    /// The record's key.
    pub fn key(&self) -> String {
        record_key(&self.id)
    }

    /// Writes the record into the bucket (each write is a new version of its key).
    pub async fn save(&self, store: &dyn Store) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(self).unwrap_or_default();
        let opts = PutOptions {
            content_type: Some("application/json".into()),
            ..PutOptions::default()
        };
        store.put(&self.key(), body.into(), &opts).await.map(|_| ())
    }

    /// The state after restoring: restored, partly restored, or as it was.
    pub fn restore_state(&self) -> RecordState {
        let with_marker = self.objects.iter().filter(|o| o.marker.is_some());
        let (n, restored) = with_marker.fold((0, 0), |(n, r), o| (n + 1, r + o.restored as u64));
        if n > 0 && restored == n {
            RecordState::Restored
        } else if restored > 0 {
            RecordState::PartlyRestored
        } else {
            self.state
        }
    }

    /// Age in seconds at `now`.
    pub fn age_secs(&self, now: SystemTime) -> u64 {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        now.saturating_sub(self.created_unix)
    }
}

/// The key of the record with this id.
pub fn record_key(id: &str) -> String {
    format!("{PLANS_PREFIX}{id}.json")
}

/// The id a PLAN argument names: an id, `<id>.json`, or the record's key.
pub fn plan_id(arg: &str) -> String {
    let a = arg.trim();
    let a = a.strip_prefix(PLANS_PREFIX).unwrap_or(a);
    a.strip_suffix(".json").unwrap_or(a).to_string()
}

/// Reads the record with this id (or PLAN argument).
pub async fn load(store: &dyn Store, id: &str) -> Result<PlanRecord, JobError> {
    let key = record_key(&plan_id(id));
    let Some(got) = store.get(&key).await? else {
        return Err(JobError::Missing(format!(
            "{}: no such plan record (list them with `narscope gc plans CACHE`)",
            key
        )));
    };
    parse(&key, &got.bytes)
}

fn parse(key: &str, bytes: &[u8]) -> Result<PlanRecord, JobError> {
    serde_json::from_slice(bytes)
        .map_err(|e| JobError::Invalid(format!("{key}: not a narscope plan record: {e}")))
}

/// Every stored plan record, oldest first; records that cannot be read are returned as
/// (key, why).
pub async fn list(
    store: &dyn Store,
) -> Result<(Vec<PlanRecord>, Vec<(String, String)>), StoreError> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = store.list_page(PLANS_PREFIX, token).await?;
        keys.extend(
            page.objects
                .into_iter()
                .map(|o| o.key)
                .filter(|k| k.ends_with(".json")),
        );
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let got: Vec<_> = futures::stream::iter(keys)
        .map(|k| async move {
            let r = store.get(&k).await;
            (k, r)
        })
        .buffered(VERSION_LOOKUPS)
        .collect()
        .await;
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for (k, r) in got {
        match r {
            Ok(Some(g)) => match parse(&k, &g.bytes) {
                Ok(rec) => ok.push(rec),
                Err(e) => bad.push((k, e.to_string())),
            },
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    ok.sort_by(|a: &PlanRecord, b| a.created_unix.cmp(&b.created_unix).then(a.id.cmp(&b.id)));
    Ok((ok, bad))
}

/// Every version (and delete marker) of exactly `key`, newest first.
pub async fn versions_of(store: &dyn Store, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
    let mut out = Vec::new();
    let mut marker: Option<VersionMarker> = None;
    loop {
        let page = store.list_versions_page(key, marker).await?;
        let past = page.versions.iter().any(|v| v.key.as_str() > key);
        out.extend(page.versions.into_iter().filter(|v| v.key == key));
        match page.next {
            Some(m) if !past => marker = Some(m),
            _ => break,
        }
    }
    Ok(out)
}

/// Every version of each key (exactly), `VERSION_LOOKUPS` listings at a time.
pub async fn versions_of_keys(
    store: &dyn Store,
    keys: &[String],
) -> Result<HashMap<String, Vec<ObjectVersion>>, StoreError> {
    let got: Vec<_> = futures::stream::iter(keys.iter().cloned())
        .map(|k| async move {
            let v = versions_of(store, &k).await;
            (k, v)
        })
        .buffer_unordered(VERSION_LOOKUPS)
        .collect()
        .await;
    let mut map = HashMap::with_capacity(got.len());
    for (k, v) in got {
        map.insert(k, v?);
    }
    Ok(map)
}

/// The current version of a key (`None` when the latest is a delete marker or nothing).
pub fn current(versions: &[ObjectVersion]) -> Option<&ObjectVersion> {
    versions.iter().find(|v| v.is_latest && !v.delete_marker)
}

/// A time as RFC 3339 in UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    crate::units::rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_name_their_keys() {
        let objs = vec![
            RecordObject {
                key: "0123456789abcdfghijklmnpqrsvwxyz.narinfo".into(),
                kind: ObjectKind::of("0123456789abcdfghijklmnpqrsvwxyz.narinfo"),
                size: 500,
                version: Some("v1".into()),
                marker: Some("m1".into()),
                level: Some(0),
                restored: false,
            },
            RecordObject {
                key: "nar/abc.nar.xz".into(),
                kind: ObjectKind::of("nar/abc.nar.xz"),
                size: 1000,
                version: Some("v2".into()),
                marker: None,
                level: None,
                restored: false,
            },
        ];
        let r = PlanRecord::new("gc", "s3://bkt/p?endpoint=http://x", objs);
        assert_eq!(r.cache, "s3://bkt/p");
        assert_eq!(r.totals.bytes, 1500);
        assert_eq!((r.totals.narinfos, r.totals.nars), (1, 1));
        assert!(r.key().starts_with(PLANS_PREFIX) && r.key().ends_with(".json"));
        assert_eq!(plan_id(&r.key()), r.id);
        assert_eq!(plan_id(&format!("{}.json", r.id)), r.id);
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"kind\":\"narinfo\"") && text.contains("\"state\":\"deleting\""));
        let back: PlanRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(ObjectKind::of("abc.ls"), ObjectKind::Listing);
        assert_eq!(ObjectKind::of("log/x.drv"), ObjectKind::Other);
    }

    #[test]
    fn restore_state_counts_only_objects_with_markers() {
        let o = |marker: Option<&str>, restored| RecordObject {
            key: "k".into(),
            kind: ObjectKind::Other,
            size: 1,
            version: Some("v".into()),
            marker: marker.map(str::to_string),
            level: None,
            restored,
        };
        let mut r = PlanRecord::new(
            "delete",
            "file:///x",
            vec![o(Some("m"), true), o(None, false)],
        );
        r.state = RecordState::Hidden;
        assert_eq!(r.restore_state(), RecordState::Restored);
        r.objects.push(o(Some("m2"), false));
        assert_eq!(r.restore_state(), RecordState::PartlyRestored);
        r.objects.iter_mut().for_each(|o| o.restored = false);
        assert_eq!(r.restore_state(), RecordState::Hidden);
    }

    #[test]
    fn rfc3339_formats_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_764_072_000);
        assert_eq!(rfc3339(t), "2025-11-25T12:00:00Z");
    }
}
