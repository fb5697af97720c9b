//! A bucket's configuration as far as a binary cache cares: lifecycle rules, object lock,
//! incomplete multipart uploads and anonymous access. Read by `narscope doctor`; the calls are
//! on [`super::Store`] and answer [`super::StoreErrorKind::NotSupported`] where a backend has no
//! such thing (file://).

use std::time::SystemTime;

/// One lifecycle rule (S3 `LifecycleRule`), the parts that can break or clean a cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LifecycleRule {
    /// The rule's `ID`, if it has one.
    pub id: Option<String>,
    /// `Status: Enabled` (a disabled rule never runs).
    pub enabled: bool,
    /// The key prefix it applies to (relative to the bucket, not the cache root; `""` = all).
    pub prefix: String,
    /// Whether the filter also has tags or object-size bounds (the rule may apply to fewer
    /// objects than its prefix says).
    pub narrowed: bool,
    /// `Expiration.Days`: current versions expire (are deleted or hidden) this many days after
    /// they were written.
    pub expiration_days: Option<i32>,
    /// `Expiration.Date`: current versions expire at this date.
    pub expiration_date: Option<SystemTime>,
    /// `Expiration.ExpiredObjectDeleteMarker`: delete markers with no versions left go.
    pub expired_object_delete_marker: bool,
    /// `NoncurrentVersionExpiration.NoncurrentDays`: noncurrent versions are deleted this many
    /// days after they became noncurrent.
    pub noncurrent_expiration_days: Option<i32>,
    /// `NoncurrentVersionExpiration.NewerNoncurrentVersions`: that many newer noncurrent versions
    /// are kept regardless.
    pub noncurrent_newer_versions: Option<i32>,
    /// `Transition`s of current versions: (days or none when by date, storage class).
    pub transitions: Vec<(Option<i32>, String)>,
    /// `NoncurrentVersionTransition`s: (noncurrent days, storage class).
    pub noncurrent_transitions: Vec<(Option<i32>, String)>,
    /// `AbortIncompleteMultipartUpload.DaysAfterInitiation`.
    pub abort_incomplete_multipart_days: Option<i32>,
}

/// The bucket's object lock configuration (S3 GetObjectLockConfiguration).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ObjectLock {
    /// `ObjectLockEnabled: Enabled`: objects can be locked (per object or by a default).
    pub enabled: bool,
    /// The default retention mode (`GOVERNANCE` or `COMPLIANCE`), if a default is set.
    pub default_mode: Option<String>,
    /// The default retention period, in days (a period in years is converted).
    pub default_days: Option<i32>,
}

/// One multipart upload that was started and neither completed nor aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartUpload {
    /// Key relative to the cache root.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// When it was started.
    pub initiated: Option<SystemTime>,
    /// Bytes of the parts uploaded so far (what the provider stores and bills).
    pub bytes: u64,
    /// Number of parts uploaded so far.
    pub parts: u64,
}

/// What an unauthenticated GET of one key answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnonymousRead {
    /// 200: anyone can read it.
    Readable,
    /// 403 (or 401): credentials are needed.
    Denied,
    /// 404: the server says the key does not exist (a public bucket without the key, or a
    /// provider that hides private keys behind 404).
    NotFound,
}
