//! Deletion that means what it says on versioned buckets.
//!
//! On a bucket that keeps versions (B2 always; AWS, Spaces, Ceph, MinIO, R2 when enabled) a
//! delete only hides an object behind a delete marker: its bytes stay, and stay billed. So
//! every deletion there is *recorded*: before deleting, narscope learns each key's current
//! version id and writes a plan record ([`PlanRecord`], `narscope/gc/<id>.json`, state
//! `deleting`); after deleting it adds the delete markers written and the outcome. With that
//! record, [`restore`] removes the markers again (only where no newer version was written
//! since, NARs and listings before the narinfos that need them), and [`purge`] deletes the
//! hidden versions for good (never a key's current version) and then the record itself.
//! `--permanent` purges right after deleting. On unversioned buckets and file:// nothing
//! changes: deletion is final, and plans say so ([`Meaning`]).
//!
//! Files: `record.rs` (the record, version look-ups), `restore.rs`, `purge.rs`.

mod purge;
mod record;
mod restore;

pub use purge::{PurgeOptions, PurgePlan, PurgeSummary, plan_purge, purge, purge_under_lease};
pub use record::{
    ObjectKind, PLANS_PREFIX, PlanRecord, RecordObject, RecordState, Totals, VERSION_LOOKUPS,
    current, list, load, plan_id, record_key, rfc3339, versions_of, versions_of_keys,
};
pub use restore::{RestoreSummary, restore};

use crate::storage::{Store, StoreError, StoreErrorKind, Versioning};
use crate::units::human_size;

/// What deleting means on a cache, as a plan shows it before confirmation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meaning {
    /// The bucket's versioning (`None`: it could not be read).
    pub versioning: Option<Versioning>,
    /// Deleting only hides objects, and a plan record makes it undoable.
    pub reversible: bool,
    /// `--permanent` was asked for.
    pub permanent: bool,
    /// Whether the deleted bytes stop being stored by the deletion itself.
    pub frees_space: bool,
    /// The sentence shown with the plan.
    pub note: String,
}

impl Meaning {
    /// What deleting `objects` objects of `bytes` bytes means, given the bucket's versioning
    /// (or why it could not be read) and whether `--permanent` was asked for.
    pub fn of(
        versioning: Result<Versioning, &StoreError>,
        permanent: bool,
        objects: u64,
        bytes: u64,
    ) -> Meaning {
        let size = human_size(bytes);
        match versioning {
            Ok(v) if v.keeps_versions() && permanent => Meaning {
                versioning: Some(v),
                reversible: false,
                permanent,
                frees_space: true,
                note: format!(
                    "this bucket keeps versions; with --permanent the {objects} object(s) ({size}) \
                     are hidden and then their versions deleted at once: this frees the space \
                     and cannot be undone"
                ),
            },
            Ok(v) if v.keeps_versions() => Meaning {
                versioning: Some(v),
                reversible: true,
                permanent,
                frees_space: false,
                note: format!(
                    "this bucket keeps versions: deleting hides {objects} object(s) ({size}) \
                     behind delete markers and frees no space by itself; the deletion is \
                     recorded as a plan: `narscope gc purge CACHE <plan>` frees it, `narscope gc \
                     restore CACHE <plan>` undoes it; --permanent frees at once and cannot be \
                     undone"
                ),
            },
            Ok(v) => Meaning {
                versioning: Some(v),
                reversible: false,
                permanent,
                frees_space: true,
                note: "deletion is final".into(),
            },
            Err(e) => Meaning {
                versioning: None,
                reversible: false,
                permanent,
                frees_space: true,
                note: format!(
                    "deletion is final unless the bucket keeps versions (its versioning could \
                     not be read: {e})"
                ),
            },
        }
    }
}

/// Why deleting from this bucket is refused because of object lock (`None`: no lock). A
/// store without object lock (file://, or a server that does not implement it) has none; an
/// error reading the configuration is logged and counts as none.
pub async fn lock_refusal(store: &dyn Store) -> Option<String> {
    match store.object_lock().await {
        Ok(l) if l.enabled || l.default_days.is_some() => {
            let retention = match (&l.default_mode, l.default_days) {
                (Some(m), Some(d)) => format!(" with a default {m} retention of {d} day(s)"),
                (None, Some(d)) => format!(" with a default retention of {d} day(s)"),
                _ => String::new(),
            };
            Some(format!(
                "refusing to delete: {} has object lock enabled{retention}: locked versions \
                 cannot be deleted before their retention ends, so a deletion would fail partway \
                 or free nothing; nothing was deleted (delete by lifecycle rules, or disable the \
                 default retention first)",
                store.describe()
            ))
        }
        Ok(_) => None,
        Err(e) if e.kind == StoreErrorKind::NotSupported => None,
        Err(e) => {
            tracing::warn!("object lock configuration not read: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_say_what_deleting_means() {
        let m = Meaning::of(Ok(Versioning::Enabled), false, 3, 2048);
        assert!(m.reversible && !m.frees_space);
        assert!(
            m.note.contains("hides 3 object(s) (2 KiB)")
                && m.note.contains("frees no space")
                && m.note.contains("gc purge")
                && m.note.contains("gc restore")
                && m.note.contains("cannot be undone"),
            "{}",
            m.note
        );
        let m = Meaning::of(Ok(Versioning::Suspended), true, 3, 2048);
        assert!(!m.reversible && m.frees_space && m.note.contains("cannot be undone"));
        let m = Meaning::of(Ok(Versioning::Unversioned), false, 3, 2048);
        assert_eq!(m.note, "deletion is final");
        let e = StoreError::new(StoreErrorKind::Other, "s3://b", "get versioning", "boom");
        let m = Meaning::of(Err(&e), false, 1, 1);
        assert!(m.note.starts_with("deletion is final unless") && m.versioning.is_none());
    }
}
