//! `narscope info` knows the bucket: on a versioned Ceph RGW bucket it reports versioning
//! "enabled" and exactly the noncurrent versions and delete markers that `sign` and `delete`
//! left, by kind (refereed by a plain ListObjectVersions and by the gateway's stored bytes); on
//! unversioned Garage and file:// it reports "unversioned" and lists no versions.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::cmd::{narscope, ok};
use crate::common::upload::{Upload, upload_dir};
use crate::common::{Garage, Rgw};

/// The kind of a key as the test counts it (independently of narscope's classification).
fn kind(key: &str) -> &'static str {
    let root = !key.contains('/');
    if root && key.len() == 40 && key.ends_with(".narinfo") {
        "narinfo"
    } else if key.starts_with("nar/") {
        "nar"
    } else if root && key.ends_with(".ls") {
        "listing"
    } else {
        "other"
    }
}

/// What a plain, sequential ListObjectVersions of `bucket` under `prefix` counts: noncurrent
/// (count, bytes) and delete markers by kind, and the bytes of current versions.
#[derive(Debug, Default)]
struct Referee {
    noncurrent: BTreeMap<&'static str, (u64, u64)>,
    markers: BTreeMap<&'static str, u64>,
    current_bytes: u64,
}

async fn referee(rgw: &Rgw, bucket: &str, prefix: &str) -> Referee {
    let client = rgw.client();
    let mut r = Referee::default();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let out = client
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("list versions of {bucket}: {e:?}"));
        for v in out.versions() {
            let key = v.key().unwrap().strip_prefix(prefix).unwrap();
            let size = v.size().unwrap_or(0) as u64;
            if v.is_latest() == Some(true) {
                r.current_bytes += size;
            } else {
                let e = r.noncurrent.entry(kind(key)).or_default();
                e.0 += 1;
                e.1 += size;
            }
        }
        for m in out.delete_markers() {
            let key = m.key().unwrap().strip_prefix(prefix).unwrap();
            *r.markers.entry(kind(key)).or_default() += 1;
        }
        if out.is_truncated() != Some(true) {
            return r;
        }
        key_marker = out.next_key_marker().map(str::to_string);
        version_marker = out.next_version_id_marker().map(str::to_string);
    }
}

/// `narscope info URL --json` with `env`, parsed.
fn info_json(url: &str, root: &Path, env: &[(String, String)]) -> Value {
    let mut c: Command = narscope(&["info", url, "--json"], root);
    c.envs(env.iter().map(|(k, v)| (k, v)));
    let out = ok(c);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("info --json: {e}: {out}"))
}

/// `narscope info URL` (text) with `env`.
fn info_text(url: &str, root: &Path, env: &[(String, String)]) -> String {
    let mut c: Command = narscope(&["info", url], root);
    c.envs(env.iter().map(|(k, v)| (k, v)));
    ok(c)
}

fn run_with(args: &[&str], root: &Path, env: &[(String, String)]) -> String {
    let mut c: Command = narscope(args, root);
    c.envs(env.iter().map(|(k, v)| (k, v)));
    ok(c)
}

/// The demo cache in `root/demo`; returns its directory.
fn demo(root: &Path) -> std::path::PathBuf {
    let dir = root.join("demo");
    ok(narscope(
        &["demo", "--no-tui", "--dir", dir.to_str().unwrap()],
        root,
    ));
    dir
}

/// The store path of the demo's path named `name` (its narinfo's StorePath).
fn demo_path(dir: &Path, name: &str) -> String {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "narinfo") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for l in text.lines() {
                if let Some(sp) = l.strip_prefix("StorePath: ")
                    && sp.ends_with(&format!("-{name}"))
                {
                    return sp.to_string();
                }
            }
        }
    }
    panic!("no {name} in the demo cache at {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_counts_noncurrent_versions_and_delete_markers_on_rgw() {
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = demo(root);
    let bucket = rgw.versioned_bucket().await;
    let url = rgw.url(&bucket, "cache");
    let store = rgw.open(&url).await;
    let how = Upload {
        nars_first: true,
        skip_secret_keys: true,
        concurrency: 4,
    };
    upload_dir(&store, &dir, how).await;
    // Keys in every kind of scan narscope splits the listing into, each written twice (one
    // noncurrent version each): below and above `nar/` among `n…`, the ranges outside nix32
    // at the root and under `nar/`, and a directory.
    let odd = [
        "n0-note",
        "narscope-note",
        "Upper-case",
        "~tilde",
        ".dot",
        "nar/Zed",
        "nar/~x",
        "log/abc",
    ];
    let opts = narscope::storage::PutOptions::default();
    for k in odd {
        store.put(k, "first".into(), &opts).await.unwrap();
        store.put(k, "second!".into(), &opts).await.unwrap();
    }
    let env = rgw.env();

    // Nothing hidden yet but the odd keys' first versions.
    let doc = info_json(&url, root, &env);
    assert_eq!(doc["versioning"], "enabled", "{doc}");
    let odd_nars = odd.iter().filter(|k| k.starts_with("nar/")).count() as u64;
    assert_eq!(doc["noncurrent"]["nar"]["count"], odd_nars, "{doc}");
    assert_eq!(doc["noncurrent"]["nar"]["bytes"], 5 * odd_nars, "{doc}");
    let others = odd.len() as u64 - odd_nars;
    assert_eq!(doc["noncurrent"]["other"]["count"], others, "{doc}");
    assert_eq!(doc["noncurrent"]["other"]["bytes"], 5 * others, "{doc}");
    assert_eq!(doc["noncurrent"]["narinfo"]["count"], 0, "{doc}");

    // Re-signing rewrites every narinfo (a noncurrent version each); deleting a path leaves
    // delete markers over its narinfo and NAR.
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (sk, pk) = (keys.join("k2.sec"), keys.join("k2.pub"));
    run_with(
        &[
            "keygen",
            "versions-test-2",
            "--secret-key-file",
            sk.to_str().unwrap(),
            "--public-key-file",
            pk.to_str().unwrap(),
        ],
        root,
        &env,
    );
    run_with(
        &["sign", &url, "--all", "--key-file", sk.to_str().unwrap()],
        root,
        &env,
    );
    let victim = demo_path(&dir, "greeting.txt");
    run_with(&["delete", &url, &victim, "--cascade", "--yes"], root, &env);

    let want = referee(rgw, &bucket, "cache/").await;
    let doc = info_json(&url, root, &env);
    assert_eq!(doc["versioning"], "enabled", "{doc}");
    assert!(doc.get("versionsError").is_none(), "{doc}");
    let mut total = (0u64, 0u64);
    for k in ["narinfo", "nar", "listing", "other"] {
        let (n, b) = want.noncurrent.get(k).copied().unwrap_or_default();
        assert_eq!(doc["noncurrent"][k]["count"], n, "noncurrent {k}: {doc}");
        assert_eq!(doc["noncurrent"][k]["bytes"], b, "noncurrent {k}: {doc}");
        let m = want.markers.get(k).copied().unwrap_or_default();
        assert_eq!(doc["deleteMarkers"][k], m, "delete markers {k}: {doc}");
        total.0 += n;
        total.1 += b;
    }
    assert_eq!(doc["noncurrent"]["total"]["count"], total.0, "{doc}");
    assert_eq!(doc["noncurrent"]["total"]["bytes"], total.1, "{doc}");
    // What sign and delete did is there: hidden narinfos, a hidden NAR, markers over both.
    let signed = doc["paths"].as_u64().unwrap();
    assert!(
        want.noncurrent["narinfo"].0 >= signed,
        "{want:?} after signing {signed} narinfos"
    );
    assert!(want.noncurrent["nar"].0 >= 1, "{want:?}");
    assert!(
        want.markers["narinfo"] >= 1 && want.markers["nar"] >= 1,
        "{want:?}"
    );
    // And the gateway stores exactly the current and the noncurrent bytes.
    let (stored, _) = rgw.stored(&bucket);
    assert_eq!(doc["currentVersions"]["bytes"], want.current_bytes, "{doc}");
    assert_eq!(stored, want.current_bytes + total.1, "{doc}");

    let text = info_text(&url, root, &env);
    assert!(
        text.contains("versioning:") && text.contains("versioned"),
        "{text}"
    );
    assert!(text.contains("delete markers:"), "{text}");
    assert!(text.contains("NoncurrentVersionExpiration"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_says_unversioned_on_garage_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = demo(root);
    let doc = info_json(dir.to_str().unwrap(), root, &[]);
    assert_eq!(doc["versioning"], "unversioned", "{doc}");
    assert!(doc.get("noncurrent").is_none(), "{doc}");
    assert!(doc.get("deleteMarkers").is_none(), "{doc}");
    let text = info_text(dir.to_str().unwrap(), root, &[]);
    assert!(text.contains("unversioned"), "{text}");
    assert!(!text.contains("noncurrent:"), "{text}");

    let Some(g) = Garage::try_shared() else {
        return;
    };
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    let store = g.open(&url).await;
    let how = Upload {
        nars_first: true,
        skip_secret_keys: true,
        concurrency: 4,
    };
    upload_dir(&store, &dir, how).await;
    let doc = info_json(&url, root, &g.env());
    assert_eq!(doc["versioning"], "unversioned", "{doc}");
    assert!(doc.get("noncurrent").is_none(), "{doc}");
    assert!(doc.get("versioningError").is_none(), "{doc}");
}
