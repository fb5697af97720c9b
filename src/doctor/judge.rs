//! The judgements of the doctor that need no store: what a lifecycle configuration, an object
//! lock, the conditional-write probe, anonymous reads and `nix-cache-info` mean for a cache.

use super::{Finding, Severity};
use crate::nix::CacheInfo;
use crate::storage::bucket::{AnonymousRead, LifecycleRule, ObjectLock};
use crate::storage::{ConditionalSupport, NIX32_CHARS, Versioning};
use crate::units::human_size;

/// Storage classes whose objects cannot be read by a plain GET (it fails with
/// InvalidObjectState until the object is restored).
pub const ARCHIVE_CLASSES: &[&str] = &["GLACIER", "DEEP_ARCHIVE"];

/// Days a noncurrent version is kept by the rule the doctor suggests.
pub const SUGGESTED_NONCURRENT_DAYS: u32 = 30;

/// Days after which the suggested rule aborts an incomplete multipart upload.
pub const SUGGESTED_ABORT_DAYS: u32 = 7;

/// Which of a cache's objects a rule prefix (bucket-relative) covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Some or all narinfos (and the other objects at the cache root).
    pub narinfos: bool,
    /// Some or all of `nar/`.
    pub nars: bool,
    /// Every key of the cache (the prefix is the cache root or above it).
    pub all: bool,
}

/// What objects of the cache at `root` (`""` or `"prefix/"`) a rule with `prefix` covers.
pub fn coverage(prefix: &str, root: &str) -> Coverage {
    if root.starts_with(prefix) {
        return Coverage {
            narinfos: true,
            nars: true,
            all: true,
        };
    }
    let Some(rest) = prefix.strip_prefix(root) else {
        return Coverage::default();
    };
    let nars = "nar/".starts_with(rest) || rest.starts_with("nar/");
    // A narinfo is `<32 nix32 chars>.narinfo` at the root.
    let narinfos = match rest.split_once('.') {
        None => rest.len() <= 32 && rest.chars().all(|c| NIX32_CHARS.contains(c)),
        Some((hash, ext)) => {
            hash.len() == 32
                && hash.chars().all(|c| NIX32_CHARS.contains(c))
                && "narinfo".starts_with(ext)
        }
    };
    Coverage {
        narinfos,
        nars,
        all: false,
    }
}

/// The S3 lifecycle JSON (PutBucketLifecycleConfiguration) of one rule for the cache root.
pub fn rule_json(id: &str, root: &str, action: serde_json::Value) -> String {
    let mut rule = serde_json::json!({
        "ID": id,
        "Status": "Enabled",
        "Filter": { "Prefix": root },
    });
    if let (Some(r), Some(a)) = (rule.as_object_mut(), action.as_object()) {
        for (k, v) in a {
            r.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_string_pretty(&serde_json::json!({ "Rules": [rule] })).unwrap_or_default()
}

/// How a fix that is a lifecycle rule is worded: the rule, and how to apply it.
fn lifecycle_fix(what: &str, json: &str, bucket: &str) -> String {
    format!(
        "{what}: add this rule to the bucket's lifecycle configuration (a \
         PutBucketLifecycleConfiguration replaces every rule: merge it with the rules the bucket \
         has), e.g. `aws s3api put-bucket-lifecycle-configuration --bucket {bucket} \
         --lifecycle-configuration file://lifecycle.json` with\n{json}"
    )
}

/// Findings on a bucket's lifecycle rules (`None`: it has no lifecycle configuration): rules
/// that expire or archive what closures need, and whether incomplete multipart uploads and
/// (on a versioned bucket) noncurrent versions are ever removed.
pub fn lifecycle(
    rules: Option<&[LifecycleRule]>,
    root: &str,
    bucket: &str,
    versioning: Versioning,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let rules = rules.unwrap_or_default();
    let enabled: Vec<&LifecycleRule> = rules.iter().filter(|r| r.enabled).collect();
    let name = |r: &LifecycleRule| match &r.id {
        Some(id) => format!("lifecycle rule `{id}`"),
        None => format!("the lifecycle rule on prefix `{}`", r.prefix),
    };
    let mut breaking = false;
    for r in &enabled {
        let cov = coverage(&r.prefix, root);
        if !(cov.narinfos || cov.nars) {
            continue;
        }
        let what = match (cov.narinfos, cov.nars) {
            (true, true) => "narinfos and NARs",
            (true, false) => "narinfos",
            _ => "NARs (nar/)",
        };
        let severity = if r.narrowed {
            Severity::Warning
        } else {
            Severity::Error
        };
        let maybe = if r.narrowed {
            " (its filter also has tags or size bounds: some of them)"
        } else {
            ""
        };
        if r.expiration_days.is_some() || r.expiration_date.is_some() {
            breaking = true;
            let when = match r.expiration_days {
                Some(d) => format!("{d} days after they are written"),
                None => "at a fixed date".to_string(),
            };
            out.push(Finding::new(
                "lifecycle_expiration",
                severity,
                format!("{} expires {what}{maybe} {when}", name(r)),
                "Expiration by age deletes (or, when versioned, hides) objects whatever refers \
                 to them: closures lose paths in the middle, Nix fails to substitute them, and a \
                 narinfo can outlive its NAR. A cache is cleaned by narscope gc, which keeps \
                 closures whole.",
                Some(format!(
                    "remove the Expiration from {} (or narrow its prefix to objects outside the \
                     cache root `{root}`), and run `narscope gc` instead",
                    name(r)
                )),
            ));
        }
        for (days, class) in &r.transitions {
            let after = days.map(|d| format!(" after {d} days")).unwrap_or_default();
            if ARCHIVE_CLASSES.contains(&class.as_str()) {
                breaking = true;
                out.push(Finding::new(
                    "lifecycle_transition",
                    severity,
                    format!("{} moves {what}{maybe} to {class}{after}", name(r)),
                    format!(
                        "Objects in {class} cannot be read by a GET: it fails with \
                         InvalidObjectState until each object is restored, so Nix cannot \
                         substitute those paths."
                    ),
                    Some(format!(
                        "remove the {class} Transition from {}, or restrict it to objects \
                         outside the cache root `{root}`",
                        name(r)
                    )),
                ));
            } else {
                out.push(Finding::new(
                    "lifecycle_transition",
                    Severity::Info,
                    format!("{} moves {what}{maybe} to {class}{after}", name(r)),
                    "GETs keep working in this class; reads may cost more and it may have a \
                     minimum storage duration.",
                    None,
                ));
            }
        }
    }
    if !breaking {
        out.push(Finding::new(
            "lifecycle_expiration",
            Severity::Ok,
            if enabled.is_empty() {
                "no lifecycle rule expires or archives the cache's objects".to_string()
            } else {
                format!(
                    "none of the {} enabled lifecycle rules expires or archives narinfos or NARs",
                    enabled.len()
                )
            },
            "",
            None,
        ));
    }
    // Incomplete multipart uploads.
    let abort = enabled
        .iter()
        .filter(|r| coverage(&r.prefix, root).all && !r.narrowed)
        .find_map(|r| r.abort_incomplete_multipart_days.map(|d| (r, d)));
    match abort {
        Some((r, d)) => out.push(Finding::new(
            "lifecycle_abort_multipart",
            Severity::Ok,
            format!(
                "{} aborts incomplete multipart uploads after {d} days",
                name(r)
            ),
            "",
            None,
        )),
        None => {
            let json = rule_json(
                "abort-incomplete-multipart-uploads",
                root,
                serde_json::json!({
                    "AbortIncompleteMultipartUpload": {
                        "DaysAfterInitiation": SUGGESTED_ABORT_DAYS
                    }
                }),
            );
            out.push(Finding::new(
                "lifecycle_abort_multipart",
                Severity::Warning,
                "no lifecycle rule aborts incomplete multipart uploads".to_string(),
                "An upload of a large NAR that is interrupted leaves its parts stored and billed \
                 but invisible to listings, until the upload is aborted.",
                Some(lifecycle_fix(
                    &format!("abort them {SUGGESTED_ABORT_DAYS} days after they start"),
                    &json,
                    bucket,
                )),
            ));
        }
    }
    // Noncurrent versions.
    if versioning.keeps_versions() {
        let noncurrent = enabled
            .iter()
            .filter(|r| coverage(&r.prefix, root).all && !r.narrowed)
            .find_map(|r| r.noncurrent_expiration_days.map(|d| (r, d)));
        match noncurrent {
            Some((r, d)) => out.push(Finding::new(
                "noncurrent_expiration",
                Severity::Ok,
                format!(
                    "{} deletes noncurrent versions {d} days after they become noncurrent",
                    name(r)
                ),
                "Deleted and overwritten objects stay recoverable for that long, then their \
                 bytes are freed.",
                None,
            )),
            None => {
                let json = rule_json(
                    "expire-noncurrent-versions",
                    root,
                    serde_json::json!({
                        "NoncurrentVersionExpiration": {
                            "NoncurrentDays": SUGGESTED_NONCURRENT_DAYS
                        },
                        "Expiration": { "ExpiredObjectDeleteMarker": true }
                    }),
                );
                out.push(Finding::new(
                    "noncurrent_expiration",
                    Severity::Warning,
                    "the bucket is versioned and no lifecycle rule ever removes noncurrent \
                     versions"
                        .to_string(),
                    "Every delete (gc) only hides objects behind a delete marker and every \
                     narinfo rewrite (sign) keeps the old version: their bytes stay stored and \
                     billed forever.",
                    Some(lifecycle_fix(
                        &format!(
                            "free them {SUGGESTED_NONCURRENT_DAYS} days after they become \
                             noncurrent (deletes stay reversible until then)"
                        ),
                        &json,
                        bucket,
                    )),
                ));
            }
        }
    }
    out
}

/// The finding on the bucket's object lock configuration.
pub fn object_lock(lock: &ObjectLock) -> Finding {
    if !lock.enabled {
        return Finding::new(
            "object_lock",
            Severity::Ok,
            "object lock is off: deletes can remove objects".to_string(),
            "",
            None,
        );
    }
    match (&lock.default_mode, lock.default_days) {
        (Some(mode), days) => Finding::new(
            "object_lock",
            Severity::Error,
            format!(
                "object lock is on with a default {mode} retention{}",
                days.map(|d| format!(" of {d} days")).unwrap_or_default()
            ),
            "Every new object is locked for the retention period: deleting a version (gc \
             --permanent, gc purge, aborting nothing else) fails with AccessDenied, and on this \
             versioned bucket a plain delete only hides objects. A gc cannot free space until \
             the retention of each object has passed.",
            Some(
                "use a bucket without object lock for the cache, or remove the default \
                 retention (PutObjectLockConfiguration without a Rule) if your compliance rules \
                 allow it; objects locked already stay locked until their retention ends"
                    .to_string(),
            ),
        ),
        (None, _) => Finding::new(
            "object_lock",
            Severity::Warning,
            "object lock is on, without a default retention".to_string(),
            "No object is locked by default, but any writer can lock objects one by one, and \
             deleting their versions then fails.",
            Some("use a bucket without object lock for the cache".to_string()),
        ),
    }
}

/// The finding on the conditional-write probe.
pub fn conditional(support: &ConditionalSupport) -> Finding {
    let quirks = "Real servers differ: Ceph RGW 16.2 ignores If-None-Match on versioned buckets \
                  and answers 412 to every If-Match with a quoted ETag.";
    match (support.if_none_match, support.if_match) {
        (true, true) => Finding::new(
            "conditional_writes",
            Severity::Ok,
            "conditional writes are honoured (If-None-Match and If-Match)".to_string(),
            "",
            None,
        ),
        (inm, im) => {
            let mut broken = Vec::new();
            if !inm {
                broken.push("If-None-Match (create only)");
            }
            if !im {
                broken.push("If-Match (compare and swap)");
            }
            Finding::new(
                "conditional_writes",
                Severity::Warning,
                format!("the server ignores {}", broken.join(" and ")),
                format!(
                    "narscope then cannot tell when two writers race: a concurrent push may \
                     overwrite a narinfo, and a sign or pin update may lose another writer's \
                     change; narscope falls back to read-after-write checks. {quirks}"
                ),
                Some(
                    "run one writer at a time (one push, sign or gc against this cache at \
                     once), or use a server that honours conditional writes"
                        .to_string(),
                ),
            )
        }
    }
}

/// The finding on an anonymous GET of `key` against the operator's intent (`public`).
pub fn anonymous(key: &str, read: AnonymousRead, public: Option<bool>) -> Finding {
    let readable = read == AnonymousRead::Readable;
    let what = match read {
        AnonymousRead::Readable => "readable without credentials",
        AnonymousRead::Denied => "not readable without credentials (403)",
        AnonymousRead::NotFound => "not readable without credentials (404)",
    };
    let summary = format!("{key} is {what}");
    match public {
        Some(true) if !readable => Finding::new(
            "anonymous_read",
            Severity::Error,
            summary,
            "The config says this cache is public (public = true), but Nix clients without \
             credentials cannot read it.",
            Some(
                "allow anonymous s3:GetObject on the cache root (a bucket policy), or set \
                 `public = false` for this cache in narscope's config"
                    .to_string(),
            ),
        ),
        Some(false) if readable => Finding::new(
            "anonymous_read",
            Severity::Error,
            summary,
            "The config says this cache is private (public = false), but anyone can read it.",
            Some(
                "remove the bucket policy or ACL that grants anonymous reads, or set \
                 `public = true` for this cache in narscope's config"
                    .to_string(),
            ),
        ),
        Some(_) => Finding::new(
            "anonymous_read",
            Severity::Ok,
            format!("{summary}, as the config intends"),
            "",
            None,
        ),
        None => Finding::new(
            "anonymous_read",
            Severity::Info,
            summary,
            "Set `public = true` or `public = false` for this cache in narscope's config and \
             the doctor checks that it stays so.",
            None,
        ),
    }
}

/// Findings on `nix-cache-info` (`None`: missing).
pub fn cache_info(info: Option<&CacheInfo>) -> Vec<Finding> {
    let Some(info) = info else {
        return vec![Finding::new(
            "cache_info",
            Severity::Warning,
            "nix-cache-info is missing".to_string(),
            "Nix reads it for the store directory, WantMassQuery and the cache's priority; \
             without it the defaults apply.",
            Some("`narscope init CACHE` writes one (Nix writes one on its first push)".to_string()),
        )];
    };
    let mut out = Vec::new();
    if !info.problems().is_empty() {
        out.push(Finding::new(
            "cache_info",
            Severity::Error,
            "nix-cache-info cannot be read as Nix reads it".to_string(),
            info.problems().join("; "),
            Some("rewrite it: `narscope init CACHE`".to_string()),
        ));
    }
    match info.declared_store_dir() {
        Some(d) if d != "/nix/store" => out.push(Finding::new(
            "cache_info",
            Severity::Warning,
            format!("nix-cache-info says StoreDir {d}"),
            "Nix with the default store (/nix/store) refuses this cache.",
            None,
        )),
        Some(_) => {}
        None => out.push(Finding::new(
            "cache_info",
            Severity::Info,
            "nix-cache-info has no StoreDir line (Nix assumes /nix/store)".to_string(),
            "",
            None,
        )),
    }
    if out.iter().all(|f| f.severity != Severity::Error) {
        let mut parts = vec![format!(
            "StoreDir {}",
            info.declared_store_dir().unwrap_or("/nix/store")
        )];
        match info.want_mass_query {
            Some(w) => parts.push(format!("WantMassQuery {}", u8::from(w))),
            None => parts.push("no WantMassQuery".to_string()),
        }
        match info.priority {
            Some(p) => parts.push(format!("Priority {p}")),
            None => parts.push("no Priority (Nix uses 50)".to_string()),
        }
        out.push(Finding::new(
            "cache_info",
            Severity::Ok,
            format!("nix-cache-info: {}", parts.join(", ")),
            "",
            None,
        ));
    }
    out
}

/// Totals of a version listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionTotals {
    /// Noncurrent versions (not delete markers).
    pub noncurrent: u64,
    /// Their bytes.
    pub noncurrent_bytes: u64,
    /// Delete markers.
    pub delete_markers: u64,
}

/// The finding on versioning with the totals of noncurrent versions.
pub fn versioning(v: Versioning, totals: &VersionTotals) -> Finding {
    match v {
        Versioning::Unversioned => Finding::new(
            "versioning",
            Severity::Ok,
            "the bucket is not versioned: deletes free space".to_string(),
            "",
            None,
        ),
        _ => {
            let state = if v == Versioning::Enabled {
                "enabled"
            } else {
                "suspended"
            };
            Finding::new(
                "versioning",
                Severity::Info,
                format!(
                    "versioning is {state}: {} noncurrent versions ({}), {} delete markers",
                    totals.noncurrent,
                    human_size(totals.noncurrent_bytes),
                    totals.delete_markers
                ),
                "Deletes only hide objects behind delete markers; noncurrent versions stay \
                 stored and billed until a lifecycle rule or a delete by version id removes \
                 them.",
                None,
            )
        }
    }
}
