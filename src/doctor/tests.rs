use super::judge::{self, Coverage, VersionTotals, coverage};
use super::{Finding, Report, Severity};
use crate::nix::CacheInfo;
use crate::storage::bucket::{AnonymousRead, LifecycleRule, ObjectLock};
use crate::storage::{ConditionalSupport, Versioning};

fn rule(prefix: &str) -> LifecycleRule {
    LifecycleRule {
        id: Some("r".into()),
        enabled: true,
        prefix: prefix.into(),
        ..LifecycleRule::default()
    }
}

fn of<'a>(fs: &'a [Finding], check: &str) -> Vec<&'a Finding> {
    fs.iter().filter(|f| f.check == check).collect()
}

#[test]
fn coverage_of_rule_prefixes() {
    let all = Coverage {
        narinfos: true,
        nars: true,
        all: true,
    };
    assert_eq!(coverage("", ""), all);
    assert_eq!(coverage("", "cache/"), all);
    assert_eq!(coverage("cache/", "cache/"), all);
    assert_eq!(coverage("cac", "cache/"), all);
    assert_eq!(coverage("other/", "cache/"), Coverage::default());
    let nars = coverage("cache/nar/", "cache/");
    assert!(nars.nars && !nars.narinfos && !nars.all);
    assert!(coverage("nar", "").nars);
    assert!(coverage("nar/1abc", "").nars);
    let some = coverage("0", "");
    assert!(some.narinfos && !some.nars);
    assert!(!coverage("log/", "").narinfos && !coverage("log/", "").nars);
    assert!(!coverage("nix-cache-info", "").narinfos);
}

#[test]
fn expiring_nars_is_an_error_and_other_prefixes_are_fine() {
    let mut r = rule("nar/");
    r.expiration_days = Some(30);
    let fs = judge::lifecycle(Some(&[r.clone()]), "", "b", Versioning::Unversioned);
    let e = of(&fs, "lifecycle_expiration");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].severity, Severity::Error);
    assert!(e[0].summary.contains("NARs") && e[0].summary.contains("30 days"));
    // Disabled, or on another prefix: fine.
    r.enabled = false;
    let fs = judge::lifecycle(Some(&[r.clone()]), "", "b", Versioning::Unversioned);
    assert_eq!(of(&fs, "lifecycle_expiration")[0].severity, Severity::Ok);
    let mut other = rule("tmp/");
    other.expiration_days = Some(1);
    let fs = judge::lifecycle(Some(&[other]), "", "b", Versioning::Unversioned);
    assert_eq!(of(&fs, "lifecycle_expiration")[0].severity, Severity::Ok);
    // A tag filter narrows it: a warning.
    r.enabled = true;
    r.narrowed = true;
    let fs = judge::lifecycle(Some(&[r]), "", "b", Versioning::Unversioned);
    assert_eq!(
        of(&fs, "lifecycle_expiration")[0].severity,
        Severity::Warning
    );
}

#[test]
fn archive_transitions_break_gets_other_classes_do_not() {
    let mut r = rule("");
    r.transitions = vec![
        (Some(90), "GLACIER".into()),
        (Some(30), "STANDARD_IA".into()),
    ];
    let fs = judge::lifecycle(Some(&[r]), "", "b", Versioning::Unversioned);
    let t = of(&fs, "lifecycle_transition");
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].severity, Severity::Error);
    assert!(t[0].details.contains("InvalidObjectState"));
    assert_eq!(t[1].severity, Severity::Info);
}

#[test]
fn missing_abort_and_noncurrent_rules_come_with_json() {
    let fs = judge::lifecycle(None, "cache/", "bkt", Versioning::Enabled);
    let a = of(&fs, "lifecycle_abort_multipart");
    assert_eq!(a[0].severity, Severity::Warning);
    let fix = a[0].fix.as_deref().unwrap();
    assert!(fix.contains("--bucket bkt"));
    let json: serde_json::Value = serde_json::from_str(&fix[fix.find('{').unwrap()..]).unwrap();
    assert_eq!(json["Rules"][0]["Filter"]["Prefix"], "cache/");
    let n = of(&fs, "noncurrent_expiration");
    assert_eq!(n[0].severity, Severity::Warning);
    let fix = n[0].fix.as_deref().unwrap();
    let json: serde_json::Value = serde_json::from_str(&fix[fix.find('{').unwrap()..]).unwrap();
    assert_eq!(
        json["Rules"][0]["NoncurrentVersionExpiration"]["NoncurrentDays"],
        30
    );
    // With the rules in place: ok; unversioned buckets get no noncurrent finding.
    let mut r = rule("");
    r.abort_incomplete_multipart_days = Some(3);
    r.noncurrent_expiration_days = Some(30);
    let fs = judge::lifecycle(Some(&[r]), "cache/", "bkt", Versioning::Enabled);
    assert_eq!(
        of(&fs, "lifecycle_abort_multipart")[0].severity,
        Severity::Ok
    );
    assert_eq!(of(&fs, "noncurrent_expiration")[0].severity, Severity::Ok);
    let fs = judge::lifecycle(None, "", "bkt", Versioning::Unversioned);
    assert!(of(&fs, "noncurrent_expiration").is_empty());
}

#[test]
fn object_lock_with_default_retention_is_an_error() {
    assert_eq!(
        judge::object_lock(&ObjectLock::default()).severity,
        Severity::Ok
    );
    let on = ObjectLock {
        enabled: true,
        default_mode: Some("GOVERNANCE".into()),
        default_days: Some(1),
    };
    let f = judge::object_lock(&on);
    assert_eq!(f.severity, Severity::Error);
    assert!(f.summary.contains("GOVERNANCE") && f.summary.contains("1 days"));
    let bare = ObjectLock {
        enabled: true,
        ..ObjectLock::default()
    };
    assert_eq!(judge::object_lock(&bare).severity, Severity::Warning);
}

#[test]
fn conditional_writes_and_anonymous_reads() {
    let both = ConditionalSupport {
        if_none_match: true,
        if_match: true,
    };
    assert_eq!(judge::conditional(&both).severity, Severity::Ok);
    let f = judge::conditional(&ConditionalSupport {
        if_none_match: false,
        if_match: true,
    });
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.summary.contains("If-None-Match") && f.details.contains("RGW 16.2"));

    let a = |r, p| judge::anonymous("x.narinfo", r, p).severity;
    assert_eq!(a(AnonymousRead::Readable, None), Severity::Info);
    assert_eq!(a(AnonymousRead::Readable, Some(true)), Severity::Ok);
    assert_eq!(a(AnonymousRead::Readable, Some(false)), Severity::Error);
    assert_eq!(a(AnonymousRead::Denied, Some(true)), Severity::Error);
    assert_eq!(a(AnonymousRead::NotFound, Some(false)), Severity::Ok);
}

#[test]
fn cache_info_sanity() {
    assert_eq!(judge::cache_info(None)[0].severity, Severity::Warning);
    let good = CacheInfo::parse("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
    let fs = judge::cache_info(Some(&good));
    assert_eq!(fs.len(), 1);
    assert_eq!(fs[0].severity, Severity::Ok);
    assert!(fs[0].summary.contains("Priority 40"));
    let other = CacheInfo::parse("StoreDir: /gnu/store\n");
    let fs = judge::cache_info(Some(&other));
    assert!(fs.iter().any(|f| f.severity == Severity::Warning));
}

#[test]
fn versioning_totals_and_report_worst() {
    let t = VersionTotals {
        noncurrent: 2,
        noncurrent_bytes: 2048,
        delete_markers: 1,
    };
    let f = judge::versioning(Versioning::Enabled, &t);
    assert!(f.summary.contains("2 noncurrent") && f.summary.contains("1 delete markers"));
    assert_eq!(
        judge::versioning(Versioning::Unversioned, &t).severity,
        Severity::Ok
    );
    let mut r = Report::default();
    assert!(!r.has_errors());
    r.findings.push(f);
    r.findings.push(judge::object_lock(&ObjectLock {
        enabled: true,
        default_mode: Some("COMPLIANCE".into()),
        default_days: None,
    }));
    assert!(r.has_errors());
    assert_eq!(r.counts(), (0, 1, 0, 1));
}
