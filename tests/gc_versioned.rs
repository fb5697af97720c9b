//! Deletion on versioned buckets, on a real Ceph RADOS Gateway: a reversible gc that hides and
//! records, `gc restore` after which Nix substitutes again, `gc purge` whose reported bytes are
//! the bytes the bucket stops storing (as `radosgw-admin bucket stats` counts them) and which
//! spares a path pushed again since, `--permanent`, and an object-locked bucket that makes gc
//! refuse before deleting anything. On file:// the plan says deletion is final and narscope's
//! own objects survive a gc.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::Rgw;
use common::cmd::{narscope, ok, run};
use common::nix::{nix, nix_chain, skip_nix};
use narscope::nix::{SecretKey, StorePath};
use narscope::storage::Store;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// narscope with the gateway's credentials.
fn ns(rgw: &Rgw, args: &[&str], state: &Path) -> std::process::Command {
    let mut c = narscope(args, state);
    c.envs(rgw.env());
    c
}

/// A JSON document printed by narscope.
fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Bytes of every version under `prefix` (the lease and push registrations under
/// `narscope/locks/` come and go with each deletion; they are not what a plan is about).
async fn version_bytes(store: &dyn Store, prefix: &str) -> u64 {
    let mut total = 0;
    let mut marker = None;
    loop {
        let page = store.list_versions_page(prefix, marker).await.unwrap();
        total += page.versions.iter().map(|v| v.size).sum::<u64>();
        match page.next {
            Some(m) => marker = Some(m),
            None => return total,
        }
    }
}

/// What the bucket stores besides narscope's lease objects and conditional-write probes
/// (written by every deletion, on a versioned bucket each write a version).
fn stored(rgw: &Rgw, bucket: &str, store: &dyn Store) -> u64 {
    let scratch = rt().block_on(async {
        version_bytes(store, "narscope/locks/").await
            + version_bytes(store, ".narscope-probe/").await
    });
    rgw.stored(bucket).0 - scratch
}

/// Lets anyone read the bucket (Nix substitutes over plain HTTP, path-style).
fn public_read(rgw: &Rgw, bucket: &str) {
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::{bucket}/*"]}}]}}"#
    );
    rt().block_on(async {
        rgw.client()
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .unwrap_or_else(|e| panic!("bucket policy on {bucket}: {e:?}"))
    });
}

fn delete_local(root: &Path, paths: &[&String]) {
    for p in paths {
        let mut q = nix("nix-store", root);
        q.args(["-q", "--referrers-closure", p]);
        let all = ok(q);
        let mut d = nix("nix-store", root);
        d.arg("--delete").args(all.lines());
        let _ = run(d);
    }
}

/// Whether Nix substitutes `path` from `http`, checking signatures with `pk`.
fn substitutes(root: &Path, path: &str, http: &str, pk: &str) -> bool {
    let mut s = nix("nix-store", root);
    s.args([
        "-r",
        path,
        "--option",
        "substituters",
        http,
        "--option",
        "trusted-public-keys",
        pk,
    ]);
    run(s).status.success()
}

fn narinfo_key(path: &str) -> String {
    StorePath::parse_any(path).unwrap().narinfo_key()
}

fn head(store: &Arc<dyn Store>, key: &str) -> bool {
    rt().block_on(store.head(key)).unwrap().is_some()
}

struct Setup {
    tmp: tempfile::TempDir,
    state: std::path::PathBuf,
    bucket: String,
    url: String,
    store: Arc<dyn Store>,
    key_file: std::path::PathBuf,
    pk: String,
}

fn setup(rgw: &Rgw, bucket: String) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let key = SecretKey::generate(&format!("ver-{}", common::random_hex(3))).unwrap();
    let key_file = tmp.path().join("k.sec");
    std::fs::write(&key_file, key.to_file_text()).unwrap();
    let pk = key.public_key().to_string();
    let url = rgw.url(&bucket, "c");
    let store = rt().block_on(rgw.open(&url));
    Setup {
        tmp,
        state,
        bucket,
        url,
        store,
        key_file,
        pk,
    }
}

impl Setup {
    fn push(&self, rgw: &Rgw, paths: &[&String]) {
        let mut args = vec!["push", &self.url];
        args.extend(paths.iter().map(|p| p.as_str()));
        args.extend(["--key-file", self.key_file.to_str().unwrap()]);
        ok(ns(rgw, &args, &self.state));
    }
}

#[test]
fn reversible_gc_restore_and_purge_on_rgw() {
    if skip_nix() {
        return;
    }
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let s = setup(rgw, rt().block_on(rgw.versioned_bucket()));
    public_read(rgw, &s.bucket);
    let root = s.tmp.path();
    let http = format!("{}/{}/c", rgw.endpoint, s.bucket);
    let tag = common::random_hex(4);
    // Garbage: a1 → a0. Kept: b0, pinned.
    let a = nix_chain(root, &format!("va{tag}"), 2, 64);
    let b = nix_chain(root, &format!("vb{tag}"), 1, 16);
    s.push(rgw, &[&a[1], &b[0]]);
    ok(ns(rgw, &["pin", &s.url, "add", "keep", &b[0]], &s.state));

    // The plan says what deleting means here.
    let out = run(ns(
        rgw,
        &["gc", &s.url, "--grace", "0s", "--dry-run", "--json"],
        &s.state,
    ));
    let doc = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(doc["deletion"]["reversible"], true, "{doc}");
    assert_eq!(doc["deletion"]["versioning"], "enabled", "{doc}");
    let note = doc["deletion"]["note"].as_str().unwrap();
    assert!(
        note.contains("frees no space") && note.contains("gc restore"),
        "{note}"
    );

    // gc: hidden, not freed.
    let before = stored(rgw, &s.bucket, s.store.as_ref());
    let out = ok(ns(
        rgw,
        &["gc", &s.url, "--grace", "0s", "--yes", "--json"],
        &s.state,
    ));
    let doc = json_of(&out);
    let plan1 = doc["summary"]["plan"].as_str().unwrap().to_string();
    assert_eq!(doc["summary"]["narinfos"], 2, "{doc}");
    for p in &a {
        assert!(!head(&s.store, &narinfo_key(p)), "{p} hidden");
    }
    assert!(head(&s.store, &narinfo_key(&b[0])), "the pinned path stays");
    let records = rt().block_on(version_bytes(s.store.as_ref(), "narscope/gc/"));
    assert!(records > 0);
    assert_eq!(
        stored(rgw, &s.bucket, s.store.as_ref()),
        before + records,
        "a reversible gc frees nothing (only its plan record is added)"
    );
    delete_local(root, &[&a[0]]);
    assert!(
        !substitutes(root, &a[1], &http, &s.pk),
        "Nix cannot substitute a hidden path"
    );
    let plans = json_of(&ok(ns(rgw, &["gc", "plans", &s.url, "--json"], &s.state)));
    assert_eq!(plans["plans"][0]["id"], plan1.as_str(), "{plans}");
    assert_eq!(plans["plans"][0]["state"], "hidden", "{plans}");

    // restore: Nix substitutes the closure again, with signature checks.
    let out = ok(ns(
        rgw,
        &["gc", "restore", &s.url, &plan1, "--json"],
        &s.state,
    ));
    let doc = json_of(&out);
    assert_eq!(doc["summary"]["narinfos"], 2, "{doc}");
    assert!(
        substitutes(root, &a[1], &http, &s.pk),
        "restored closure substitutes"
    );
    let plans = json_of(&ok(ns(rgw, &["gc", "plans", &s.url, "--json"], &s.state)));
    assert_eq!(plans["plans"][0]["state"], "restored", "{plans}");

    // gc again, then a0 is pushed again before the purge.
    let out = ok(ns(
        rgw,
        &["gc", &s.url, "--grace", "0s", "--yes", "--json"],
        &s.state,
    ));
    let plan2 = json_of(&out)["summary"]["plan"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(plan1, plan2);
    let plans = json_of(&ok(ns(rgw, &["gc", "plans", &s.url, "--json"], &s.state)));
    assert_eq!(
        plans["plans"].as_array().unwrap().len(),
        2,
        "gc never deletes plan records: {plans}"
    );
    s.push(rgw, &[&a[0]]);
    assert!(head(&s.store, &narinfo_key(&a[0])));

    // Restoring plan 2 now brings a1 back but leaves a0's new version alone.
    let doc = json_of(&ok(ns(
        rgw,
        &["gc", "restore", &s.url, &plan2, "--json"],
        &s.state,
    )));
    let skipped = doc["summary"]["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|k| k[0] == narinfo_key(&a[0]).as_str()
            && k[1]
                .as_str()
                .unwrap()
                .contains("a newer version was written since")),
        "{doc}"
    );
    assert_eq!(doc["summary"]["narinfos"], 1, "{doc}");
    assert!(head(&s.store, &narinfo_key(&a[1])));
    // And `delete` hides a1 again, recorded as a plan too.
    let doc = json_of(&ok(ns(
        rgw,
        &["delete", &s.url, &a[1], "--yes", "--json"],
        &s.state,
    )));
    assert!(doc["summary"]["plan"].is_string(), "{doc}");
    assert!(!head(&s.store, &narinfo_key(&a[1])));
    assert!(head(&s.store, &narinfo_key(&a[0])));

    // purge: the bucket stops storing what the purge reports.
    let before = stored(rgw, &s.bucket, s.store.as_ref());
    let out = ok(ns(
        rgw,
        &["gc", "purge", &s.url, "--yes", "--json"],
        &s.state,
    ));
    let doc = json_of(&out);
    let reported = doc["summary"]["bytes"].as_u64().unwrap();
    assert_eq!(
        doc["summary"]["plans"].as_array().unwrap().len(),
        3,
        "{doc}"
    );
    let after = stored(rgw, &s.bucket, s.store.as_ref());
    let dropped = before - after;
    assert!(reported > 64 * 1024, "{doc}");
    assert!(
        dropped.abs_diff(reported) * 100 <= reported,
        "stored bytes dropped by {dropped}, the purge reported {reported}"
    );
    // The path pushed again survives, and still substitutes; the rest is gone.
    assert!(head(&s.store, &narinfo_key(&a[0])));
    assert!(!head(&s.store, &narinfo_key(&a[1])));
    delete_local(root, &[&a[0]]);
    assert!(
        substitutes(root, &a[0], &http, &s.pk),
        "re-pushed path substitutes"
    );
    let plans = json_of(&ok(ns(rgw, &["gc", "plans", &s.url, "--json"], &s.state)));
    assert!(plans["plans"].as_array().unwrap().is_empty(), "{plans}");
}

#[test]
fn permanent_gc_frees_at_once_on_rgw() {
    if skip_nix() {
        return;
    }
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let s = setup(rgw, rt().block_on(rgw.versioned_bucket()));
    let root = s.tmp.path();
    let a = nix_chain(root, &format!("vp{}", common::random_hex(4)), 2, 64);
    s.push(rgw, &[&a[1]]);
    let before = stored(rgw, &s.bucket, s.store.as_ref());
    let out = ok(ns(
        rgw,
        &[
            "gc",
            &s.url,
            "--grace",
            "0s",
            "--allow-no-roots",
            "--permanent",
            "--yes",
            "--json",
        ],
        &s.state,
    ));
    let doc = json_of(&out);
    let freed = doc["summary"]["freedBytes"].as_u64().unwrap();
    assert!(doc["summary"]["plan"].is_null(), "purged at once: {doc}");
    let after = stored(rgw, &s.bucket, s.store.as_ref());
    assert!(freed > 2 * 64 * 1024, "{doc}");
    assert!(
        (before - after).abs_diff(freed) * 100 <= freed,
        "stored bytes dropped by {}, gc reported {freed}",
        before - after
    );
    // Nothing of the chain is left, not even a hidden version.
    let page = rt().block_on(s.store.list_versions_page("", None)).unwrap();
    for p in &a {
        let key = narinfo_key(p);
        assert!(
            !page.versions.iter().any(|v| v.key == key),
            "{key}: {page:?}"
        );
    }
}

#[test]
fn an_object_locked_bucket_makes_gc_refuse_before_deleting() {
    if skip_nix() {
        return;
    }
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let s = setup(rgw, rt().block_on(rgw.locked_bucket(Some(1))));
    let lock = rt()
        .block_on(s.store.object_lock())
        .unwrap_or_else(|e| panic!("object lock configuration of {}: {e}", s.bucket));
    assert!(lock.enabled, "{lock:?}");
    let root = s.tmp.path();
    let a = nix_chain(root, &format!("vl{}", common::random_hex(4)), 1, 16);
    s.push(rgw, &[&a[0]]);
    let before = rgw.stored(&s.bucket);
    let out = run(ns(
        rgw,
        &["gc", &s.url, "--grace", "0s", "--allow-no-roots", "--yes"],
        &s.state,
    ));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("object lock") && err.contains(&s.bucket),
        "{err}"
    );
    assert!(head(&s.store, &narinfo_key(&a[0])));
    assert_eq!(rgw.stored(&s.bucket), before, "nothing changed");
}

#[test]
fn on_file_the_plan_says_final_and_narscope_objects_survive_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let dir = tmp.path().join("cache");
    let key = SecretKey::generate("final-1").unwrap();
    let g = common::graph::write_graph(&dir, 6, 5, &key);
    common::fs::age_files(&dir, std::time::Duration::from_secs(10 * 86_400));
    let own = dir.join("narscope/gc/20260101T000000Z-0000abcd.json");
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    std::fs::write(&own, b"{}").unwrap();
    let url = format!("file://{}", dir.display());
    let out = ok(narscope(
        &["gc", &url, "--allow-no-roots", "--dry-run"],
        &state,
    ));
    assert!(out.contains("deletion: deletion is final"), "{out}");
    let doc = json_of(&ok(narscope(
        &["gc", &url, "--allow-no-roots", "--dry-run", "--json"],
        &state,
    )));
    assert_eq!(doc["deletion"]["reversible"], false, "{doc}");
    assert_eq!(doc["deletion"]["versioning"], "unversioned", "{doc}");
    let out = ok(narscope(&["gc", &url, "--allow-no-roots", "--yes"], &state));
    assert!(!out.contains("hidden"), "{out}");
    for p in &g.paths {
        assert!(!dir.join(p.narinfo_key()).exists(), "{p} collected");
    }
    assert!(own.exists(), "gc never touches narscope/");
    let out = ok(narscope(&["gc", "plans", &url], &state));
    assert!(out.contains("unreadable"), "{out}");
}

#[test]
fn purge_removes_what_narinfo_rewrites_left_on_rgw() {
    if skip_nix() {
        return;
    }
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let s = setup(rgw, rt().block_on(rgw.versioned_bucket()));
    let root = s.tmp.path();
    let a = nix_chain(root, &format!("vs{}", common::random_hex(4)), 2, 8);
    s.push(rgw, &[&a[1]]);
    // A second signature rewrites both narinfos: their first versions stay, hidden.
    let k2 = SecretKey::generate("ver-second-1").unwrap();
    let kf2 = root.join("k2.sec");
    std::fs::write(&kf2, k2.to_file_text()).unwrap();
    ok(ns(
        rgw,
        &["sign", &s.url, "--all", "--key-file", kf2.to_str().unwrap()],
        &s.state,
    ));
    // Nothing recorded: only the rewrites are purged, and only with the flag.
    let doc = json_of(&ok(ns(
        rgw,
        &["gc", "purge", &s.url, "--dry-run", "--json"],
        &s.state,
    )));
    assert_eq!(doc["state"], "empty", "{doc}");
    let before = stored(rgw, &s.bucket, s.store.as_ref());
    let doc = json_of(&ok(ns(
        rgw,
        &[
            "gc",
            "purge",
            &s.url,
            "--rewritten-narinfos",
            "--yes",
            "--json",
        ],
        &s.state,
    )));
    assert_eq!(doc["summary"]["rewritten"], 2, "{doc}");
    let reported = doc["summary"]["bytes"].as_u64().unwrap();
    let after = stored(rgw, &s.bucket, s.store.as_ref());
    assert_eq!(before - after, reported, "{doc}");
    // The current narinfos stay, with both signatures.
    for p in &a {
        let got = rt()
            .block_on(s.store.get(&narinfo_key(p)))
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&got.bytes).to_string();
        assert!(text.contains("Sig: ver-second-1:"), "{text}");
        let versions = rt()
            .block_on(narscope::versioned::versions_of(
                s.store.as_ref(),
                &narinfo_key(p),
            ))
            .unwrap();
        assert_eq!(versions.len(), 1, "{versions:?}");
    }
}
