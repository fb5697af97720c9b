//! `narscope doctor` against real servers: lifecycle rules, versioning, stale multipart uploads,
//! object lock and a stored secret key on a Ceph RADOS Gateway; a clean cache on Garage and on
//! file:// passes (exit 0).

use std::path::Path;
use std::process::Output;

use crate::common::cmd::{describe, narscope, run};
use crate::common::upload::{Upload, upload_dir};
use crate::common::{Garage, Rgw};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, CompletedMultipartUpload, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter,
};

/// A demo cache (made by `narscope demo`) in `root/demo`.
fn demo_cache(root: &Path) -> std::path::PathBuf {
    let dir = root.join("demo");
    let d = dir.display().to_string();
    let out = run(narscope(&["demo", "--no-tui", "--dir", &d], root));
    assert!(out.status.success(), "demo: {}", text(&out));
    dir
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `narscope doctor URL --json [extra…]` with `env`: (exit code, parsed JSON, raw output).
fn doctor_json(
    root: &Path,
    url: &str,
    env: &[(String, String)],
    extra: &[&str],
) -> (i32, serde_json::Value, Output) {
    let mut args = vec!["doctor", url, "--json"];
    args.extend_from_slice(extra);
    let mut c = narscope(&args, root);
    c.envs(env.iter().map(|(k, v)| (k, v)));
    let what = describe(&c);
    let out = run(c);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`{what}` printed no JSON ({e}):\n{}", text(&out)));
    (out.status.code().unwrap_or(-1), doc, out)
}

/// The findings of `check` in a doctor's JSON.
fn findings<'a>(doc: &'a serde_json::Value, check: &str) -> Vec<&'a serde_json::Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

fn severities(doc: &serde_json::Value, check: &str) -> Vec<String> {
    findings(doc, check)
        .iter()
        .map(|f| f["severity"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn put_lifecycle(rgw: &Rgw, bucket: &str, rule: LifecycleRule) {
    rgw.client()
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .expect("lifecycle configuration"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("put lifecycle on {bucket}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_expiring_nars_is_an_error_with_a_fix_on_rgw() {
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = rgw.fresh_bucket().await;
    let url = rgw.url(&bucket, "cache");
    let cache = rgw.cache(&url).await;
    upload_dir(cache.store(), &demo_cache(tmp.path()), Upload::default()).await;
    let rule = LifecycleRule::builder()
        .id("expire-nars")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("cache/nar/").build())
        .expiration(LifecycleExpiration::builder().days(30).build())
        .build()
        .unwrap();
    put_lifecycle(rgw, &bucket, rule).await;

    let (code, doc, out) = doctor_json(tmp.path(), &url, &rgw.env(), &[]);
    assert_eq!(code, 1, "{}", text(&out));
    let exp = findings(&doc, "lifecycle_expiration");
    assert_eq!(exp.len(), 1, "{doc:#}");
    assert_eq!(exp[0]["severity"], "error");
    let summary = exp[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("expire-nars") && summary.contains("NARs"),
        "{summary}"
    );
    assert!(
        exp[0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("expire-nars"))
    );
    // The missing abort rule comes with the exact JSON to add.
    let abort = findings(&doc, "lifecycle_abort_multipart");
    assert_eq!(abort[0]["severity"], "warning", "{doc:#}");
    let fix = abort[0]["fix"].as_str().unwrap();
    let json = &fix[fix.find('{').expect("JSON in the fix")..];
    let rule: serde_json::Value = serde_json::from_str(json).expect("the fix's JSON parses");
    assert_eq!(
        rule["Rules"][0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"],
        7
    );
    assert_eq!(rule["Rules"][0]["Filter"]["Prefix"], "cache/");

    // Text output: the error grouped first, with its symbol and the fix indented.
    let mut c = narscope(&["doctor", &url], tmp.path());
    c.envs(rgw.env());
    let out = run(c);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout);
    let errors = s.find("errors:").expect("an errors group");
    let warnings = s.find("warnings:").expect("a warnings group");
    assert!(errors < warnings, "{s}");
    assert!(s.contains("✗ [lifecycle_expiration]"), "{s}");
    assert!(s.contains("      fix: "), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_bucket_without_noncurrent_expiration_is_a_warning_on_rgw() {
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = rgw.versioned_bucket().await;
    let url = rgw.url(&bucket, "");
    let store = rgw.open(&url).await;
    let demo = demo_cache(tmp.path());
    upload_dir(&store, &demo, Upload::default()).await;
    // A rewrite and a delete: one noncurrent version of 100 kB, one delete marker.
    let body = bytes::Bytes::from(vec![1u8; 100_000]);
    let opts = narscope::storage::PutOptions::default();
    store.put("log/x", body.clone(), &opts).await.unwrap();
    store.put("log/x", body.clone(), &opts).await.unwrap();
    store.delete_many(&["log/x".to_string()]).await.unwrap();

    let (code, doc, out) = doctor_json(tmp.path(), &url, &rgw.env(), &["--no-write-probe"]);
    assert_eq!(code, 0, "warnings only: {}", text(&out));
    assert_eq!(doc["versions"]["noncurrentBytes"], 200_000, "{doc:#}");
    assert_eq!(doc["versions"]["deleteMarkers"], 1, "{doc:#}");
    let nc = findings(&doc, "noncurrent_expiration");
    assert_eq!(nc.len(), 1, "{doc:#}");
    assert_eq!(nc[0]["severity"], "warning");
    let fix = nc[0]["fix"].as_str().unwrap();
    let rule: serde_json::Value =
        serde_json::from_str(&fix[fix.find('{').unwrap()..]).expect("the fix's JSON parses");
    assert_eq!(
        rule["Rules"][0]["NoncurrentVersionExpiration"]["NoncurrentDays"],
        30
    );
    assert_eq!(rule["Rules"][0]["Status"], "Enabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_multipart_upload_is_listed_and_aborted_on_rgw() {
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = rgw.fresh_bucket().await;
    let url = rgw.url(&bucket, "cache");
    let client = rgw.client();
    let up = client
        .create_multipart_upload()
        .bucket(&bucket)
        .key("cache/nar/stale.nar.xz")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    client
        .upload_part()
        .bucket(&bucket)
        .key("cache/nar/stale.nar.xz")
        .upload_id(&id)
        .part_number(1)
        .body(vec![9u8; 300_000].into())
        .send()
        .await
        .unwrap();
    // Listed with its bytes, not aborted without the flag.
    let (_, doc, out) = doctor_json(tmp.path(), &url, &rgw.env(), &["--no-write-probe"]);
    let ups = doc["incompleteUploads"]
        .as_array()
        .expect("incompleteUploads");
    assert_eq!(ups.len(), 1, "{}", text(&out));
    assert_eq!(ups[0]["key"], "nar/stale.nar.xz");
    assert_eq!(ups[0]["bytes"], 300_000);
    assert_eq!(severities(&doc, "multipart_uploads"), vec!["warning"]);
    assert!(doc.get("aborted").is_none());

    let (_, doc, out) = doctor_json(
        tmp.path(),
        &url,
        &rgw.env(),
        &["--no-write-probe", "--abort-older-than", "0s", "--yes"],
    );
    assert_eq!(doc["aborted"]["uploads"], 1, "{}", text(&out));
    assert_eq!(doc["aborted"]["bytes"], 300_000);
    let left = client
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(left.uploads().is_empty(), "{left:?}");
    // Nothing to complete any more.
    let gone = client
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("cache/nar/stale.nar.xz")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().build())
        .send()
        .await;
    assert!(gone.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_locked_bucket_is_an_error_on_rgw() {
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = rgw.locked_bucket(Some(1)).await;
    let url = rgw.url(&bucket, "");
    let (code, doc, out) = doctor_json(tmp.path(), &url, &rgw.env(), &["--no-write-probe"]);
    assert_eq!(code, 1, "{}", text(&out));
    let lock = findings(&doc, "object_lock");
    assert_eq!(lock.len(), 1, "{doc:#}");
    assert_eq!(lock[0]["severity"], "error");
    assert!(
        lock[0]["summary"].as_str().unwrap().contains("GOVERNANCE"),
        "{doc:#}"
    );
    assert_eq!(doc["worst"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_key_in_the_cache_is_named_never_printed_on_rgw() {
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = rgw.fresh_bucket().await;
    let url = rgw.url(&bucket, "");
    let store = rgw.open(&url).await;
    let demo = demo_cache(tmp.path());
    upload_dir(&store, &demo, Upload::default()).await;
    let key = narscope::nix::SecretKey::generate("leaky-cache-1").expect("a key");
    let secret = key.to_file_text();
    store
        .put(
            "keys/cache.sec",
            secret.clone().into_bytes().into(),
            &narscope::storage::PutOptions::default(),
        )
        .await
        .unwrap();
    let (code, doc, out) = doctor_json(tmp.path(), &url, &rgw.env(), &["--no-write-probe"]);
    assert_eq!(code, 1, "{}", text(&out));
    let found = findings(&doc, "secret_keys");
    assert_eq!(found.len(), 1, "{doc:#}");
    assert_eq!(found[0]["severity"], "error");
    let summary = found[0]["summary"].as_str().unwrap();
    assert!(summary.contains("keys/cache.sec") && summary.contains("leaky-cache-1"));
    let b64 = secret.split_once(':').unwrap().1;
    let mut c = narscope(&["doctor", &url, "--no-write-probe"], tmp.path());
    c.envs(rgw.env()).env("RUST_LOG", "debug");
    let text_out = run(c);
    for o in [&out, &text_out] {
        let all = text(o);
        for w in b64.as_bytes().windows(12) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(
                !all.contains(w),
                "12 characters of the secret key were printed"
            );
        }
    }
}

#[test]
fn clean_cache_on_garage_exits_zero() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_cache(tmp.path());
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    crate::common::upload::upload_to(g, &url, &demo, Upload::default());
    let (code, doc, out) = doctor_json(tmp.path(), &url, &g.env(), &[]);
    assert_eq!(code, 0, "{}", text(&out));
    assert_eq!(severities(&doc, "versioning"), vec!["ok"], "{doc:#}");
    assert_eq!(severities(&doc, "secret_keys"), vec!["ok"], "{doc:#}");
    assert_eq!(severities(&doc, "multipart_uploads"), vec!["ok"], "{doc:#}");
    assert!(
        findings(&doc, "cache_info")
            .iter()
            .any(|f| f["severity"] == "ok"),
        "{doc:#}"
    );
    // Every warning is one that holds on Garage: named here so a new one is looked at.
    for f in doc["findings"].as_array().unwrap() {
        if f["severity"] == "warning" {
            let check = f["check"].as_str().unwrap();
            assert!(
                [
                    "lifecycle_abort_multipart",
                    "lifecycle",
                    "object_lock",
                    "conditional_writes"
                ]
                .contains(&check),
                "unexpected warning on Garage: {f:#}"
            );
        }
    }
}

#[test]
fn clean_file_cache_exits_zero_and_a_stored_key_fails_it() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_cache(tmp.path());
    let url = demo.display().to_string();
    let (code, doc, out) = doctor_json(tmp.path(), &url, &[], &[]);
    assert_eq!(code, 0, "{}", text(&out));
    assert_eq!(severities(&doc, "secret_keys"), vec!["ok"], "{doc:#}");
    assert_eq!(severities(&doc, "object_lock"), vec!["info"], "{doc:#}");
    assert!(
        findings(&doc, "object_lock")[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("not applicable")
    );
    let key = narscope::nix::SecretKey::generate("file-leak-1").expect("a key");
    std::fs::write(demo.join("signing.key"), key.to_file_text()).unwrap();
    let (code, doc, out) = doctor_json(tmp.path(), &url, &[], &[]);
    assert_eq!(code, 1, "{}", text(&out));
    assert_eq!(severities(&doc, "secret_keys"), vec!["error"], "{doc:#}");
    let b64 = key.to_file_text().split_once(':').unwrap().1.to_string();
    assert!(!text(&out).contains(&b64[..16]));
}
