//! Bucket versioning: what a versioned bucket keeps after a delete, as the storage layer sees it.
//!
//! On a versioned bucket (B2 always; AWS, Spaces, Ceph, MinIO, R2 when enabled) a delete without
//! a version id only writes a *delete marker*: the object answers 404, but its bytes stay (and
//! stay billed) as a *noncurrent version* until someone deletes that exact version. These types
//! describe versions ([`ObjectVersion`]) and pages of `ListObjectVersions`
//! ([`VersionPage`]); the calls are on [`super::Store`].

use std::time::SystemTime;

/// The versioning state of a bucket (S3 GetBucketVersioning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Versioning {
    /// Never enabled (or not a bucket at all: a file:// cache). Deletes are final.
    #[default]
    Unversioned,
    /// Enabled: deletes write delete markers, old versions stay until deleted by version id.
    Enabled,
    /// Suspended: new writes replace the `null` version, but versions kept while versioning was
    /// enabled stay, and deletes still write delete markers.
    Suspended,
}

impl Versioning {
    /// Whether a plain delete only hides objects (enabled or suspended).
    pub fn keeps_versions(self) -> bool {
        !matches!(self, Versioning::Unversioned)
    }

    /// A word for headers and tables: `unversioned`, `versioned`, `versioning suspended`.
    pub fn label(self) -> &'static str {
        match self {
            Versioning::Unversioned => "unversioned",
            Versioning::Enabled => "versioned",
            Versioning::Suspended => "versioning suspended",
        }
    }
}

/// One version of one key (an entry of `ListObjectVersions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Key relative to the cache root.
    pub key: String,
    /// The version id (`null` for an object written while versioning was off).
    pub version_id: String,
    /// Whether this is the key's current version (a delete marker may be current).
    pub is_latest: bool,
    /// Whether this version is a delete marker (no bytes).
    pub delete_marker: bool,
    /// Size in bytes (0 for a delete marker).
    pub size: u64,
    /// When this version was written.
    pub last_modified: Option<SystemTime>,
    /// Its ETag as sent by the server (none for delete markers).
    pub etag: Option<String>,
}

/// Where the next page of a version listing starts (S3 `NextKeyMarker` and
/// `NextVersionIdMarker`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionMarker {
    /// Key relative to the cache root.
    pub key: String,
    /// The version id to continue after, within that key.
    pub version_id: Option<String>,
}

/// One page (≤ 1000 entries) of a version listing: keys in order, each key's versions newest
/// first, delete markers and versions interleaved as the server orders them.
#[derive(Clone, Debug, Default)]
pub struct VersionPage {
    /// The versions and delete markers.
    pub versions: Vec<ObjectVersion>,
    /// The marker of the next page; `None` on the last page.
    pub next: Option<VersionMarker>,
}

/// One exact version to delete ([`super::Store::delete_versions`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionRef {
    /// Key relative to the cache root.
    pub key: String,
    /// The version id.
    pub version_id: String,
}
