//! Upstream-aware push, info and gc: an upstream made by real Nix (signed with its own key,
//! one narinfo signed by a forged key of the same name) and served over HTTP on 127.0.0.1 by
//! `python3 -m http.server`, `push --upstream` skipping exactly
//! what the upstream serves trusted, Nix 2.8 realising the closure from both caches, and
//! `gc --prune-upstream` deleting exactly the served paths no root keeps itself.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cmd::{narscope, ok, run};
use common::fs::age_files;
use common::http::PythonServer;
use common::invariants::{Snapshot, Source};
use common::nix::{keygen_in, nix, nix_chain, skip_nix};

/// One test's world: a local chain of five paths (each references the one before), an
/// upstream cache that serves the first two with a valid signature and the third with a
/// forged one, and the keys.
struct World {
    tmp: tempfile::TempDir,
    /// The chain, first (no references) first.
    chain: Vec<String>,
    /// The upstream's directory.
    up_dir: PathBuf,
    /// The upstream's public key.
    up_pk: String,
    /// The destination's secret key file and public key.
    dest_sk: PathBuf,
    dest_pk: String,
}

impl World {
    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn narscope(&self, args: &[&str]) -> std::process::Command {
        narscope(args, self.root())
    }

    fn nix(&self, program: &str) -> std::process::Command {
        nix(program, self.root())
    }
}

fn world(tag: &str) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let chain = nix_chain(&root, &format!("up{tag}{}", common::random_hex(4)), 5, 4);
    let keygen = |name: &str, file: &str| {
        let dir = root.join(file);
        std::fs::create_dir_all(&dir).unwrap();
        keygen_in(&dir, name, |args| {
            ok(narscope(args, &root));
        })
    };
    let (up_sk, up_pk) = keygen("upstream-1", "up-key");
    // Another key under the same name: its signatures name upstream-1 but do not verify.
    let (forged_sk, _) = keygen("upstream-1", "forged-key");
    let (dest_sk, dest_pk) = keygen("dest-1", "dest-key");
    let up_dir = root.join("upstream");
    let to = |sk: &Path| format!("file://{}?secret-key={}", up_dir.display(), sk.display());
    // The first two paths with the upstream's key, the third (its references are there
    // already) with the forged one.
    let mut c = nix("nix", &root);
    c.args(["copy", "--to", &to(&up_sk), &chain[1]]);
    ok(c);
    let mut c = nix("nix", &root);
    c.args(["copy", "--to", &to(&forged_sk), &chain[2]]);
    ok(c);
    World {
        tmp,
        chain,
        up_dir,
        up_pk,
        dest_sk,
        dest_pk,
    }
}

/// The upstream as a client sees it: its directory served over HTTP on 127.0.0.1.
fn serve(dir: &Path) -> (String, PythonServer) {
    let server = PythonServer::serve(dir);
    (server.url.clone(), server)
}

fn narinfo_key(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap();
    format!("{}.narinfo", &base[..32])
}

/// The narinfo keys of a file:// cache.
fn narinfos(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".narinfo"))
                .collect()
        })
        .unwrap_or_default()
}

/// NarSize of a local store path, as Nix records it.
fn nar_size(w: &World, path: &str) -> u64 {
    let mut c = w.nix("nix");
    c.args(["path-info", "--json", path]);
    let v: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
    v[0]["narSize"].as_u64().unwrap()
}

fn delete_local(w: &World, path: &str) {
    let mut q = w.nix("nix-store");
    q.args(["-q", "--referrers-closure", path]);
    let all = ok(q);
    let mut d = w.nix("nix-store");
    d.arg("--delete").args(all.lines());
    let _ = run(d);
    assert!(!Path::new(path).exists(), "{path} still in the local store");
}

fn json(c: std::process::Command) -> serde_json::Value {
    let out = run(c);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn push_skips_exactly_what_the_upstream_serves_trusted_and_nix_realises_across_both() {
    if skip_nix() {
        return;
    }
    let w = world("push");
    let (up_url, _server) = serve(&w.up_dir);
    let dest = w.root().join("dest");
    let dest_url = format!("file://{}", dest.display());
    let top = w.chain[4].clone();
    let doc = json(w.narscope(&[
        "push",
        &dest_url,
        &top,
        "--key-file",
        w.dest_sk.to_str().unwrap(),
        "--upstream",
        &up_url,
        "--upstream-key",
        &w.up_pk,
        "--json",
    ]));
    assert_eq!(doc["exitCode"], 0, "{doc}");
    let s = &doc["summary"];
    // Skipped: the two paths the upstream signed; the forged one is pushed.
    let skipped_bytes = nar_size(&w, &w.chain[0]) + nar_size(&w, &w.chain[1]);
    assert_eq!(s["closure"], 5, "{doc}");
    assert_eq!(s["uploaded"], 3, "{doc}");
    assert_eq!(s["upstream"]["served"], 2, "{doc}");
    assert_eq!(s["upstream"]["notTrusted"], 1, "{doc}");
    assert_eq!(s["upstream"]["errors"], 0, "{doc}");
    assert_eq!(s["upstream"]["narBytes"], skipped_bytes, "{doc}");
    let up_files: u64 = w.chain[..2]
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(w.up_dir.join(narinfo_key(p))).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("FileSize: "))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(s["upstream"]["fileBytes"], up_files, "{doc}");
    assert_eq!(s["upstreams"].as_array().map(Vec::len), Some(1), "{doc}");
    let want: BTreeSet<String> = w.chain[2..].iter().map(|p| narinfo_key(p)).collect();
    assert_eq!(narinfos(&dest), want);
    // Text summary says it too; a second push skips nothing new and uploads nothing.
    let out = ok(w.narscope(&[
        "push",
        &dest_url,
        &top,
        "--upstream",
        &up_url,
        "--upstream-key",
        &w.up_pk,
    ]));
    assert!(
        out.contains("0 uploaded") && out.contains("2 path(s) skipped"),
        "{out}"
    );
    // Without the upstream's key nothing is served (a signature is verified, never trusted
    // for its name): everything is pushed.
    let dest2 = w.root().join("dest2");
    let doc = json(w.narscope(&[
        "push",
        &format!("file://{}", dest2.display()),
        &top,
        "--upstream",
        &up_url,
        "--json",
    ]));
    assert_eq!(doc["summary"]["uploaded"], 5, "{doc}");
    assert_eq!(doc["summary"]["upstream"]["served"], 0, "{doc}");
    assert_eq!(doc["summary"]["upstream"]["notTrusted"], 3, "{doc}");
    // An upstream that cannot be asked serves nothing: everything is pushed, and the summary
    // says why.
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let dest3 = w.root().join("dest3");
    let doc = json(w.narscope(&[
        "push",
        &format!("file://{}", dest3.display()),
        &top,
        "--upstream",
        &dead,
        "--upstream-key",
        &w.up_pk,
        "--json",
    ]));
    assert_eq!(doc["exitCode"], 0, "{doc}");
    assert_eq!(doc["summary"]["uploaded"], 5, "{doc}");
    assert_eq!(doc["summary"]["upstream"]["errors"], 5, "{doc}");
    assert_eq!(doc["summary"]["upstream"]["served"], 0, "{doc}");
    assert_eq!(narinfos(&dest3).len(), 5);
    // The destination holds referrers of paths only the upstream has: apart from those
    // references every invariant holds.
    let snap = Snapshot::take(&Source::Dir(dest.clone()));
    let allowed: Vec<String> = w.chain[..2].iter().map(|p| narinfo_key(p)).collect();
    let v: Vec<String> = snap
        .violations(std::slice::from_ref(&w.dest_pk))
        .into_iter()
        .filter(|v| !allowed.iter().any(|a| v.contains(&a[..32])))
        .collect();
    assert!(v.is_empty(), "{v:?}");
    // Nix 2.8 with both substituters realises the whole closure in a store that lost it.
    delete_local(&w, &w.chain[0]);
    let mut r = w.nix("nix-store");
    r.args([
        "-r",
        &top,
        "--option",
        "substituters",
        &format!("{up_url} {dest_url}"),
        "--option",
        "trusted-public-keys",
        &format!("{} {}", w.up_pk, w.dest_pk),
    ]);
    ok(r);
    for p in &w.chain {
        assert!(Path::new(p).join("data").exists(), "{p} realised");
    }
}

#[test]
fn info_counts_and_gc_prunes_exactly_the_served_paths_no_root_keeps_itself() {
    if skip_nix() {
        return;
    }
    let w = world("gc");
    let (up_url, _server) = serve(&w.up_dir);
    let dest = w.root().join("dest");
    let dest_url = format!("file://{}", dest.display());
    // The whole chain in the cache, pushed without an upstream.
    ok(w.narscope(&[
        "push",
        &dest_url,
        &w.chain[4],
        "--key-file",
        w.dest_sk.to_str().unwrap(),
    ]));
    let doc = json(w.narscope(&[
        "info",
        &dest_url,
        "--upstream",
        &up_url,
        "--upstream-key",
        &w.up_pk,
        "--json",
    ]));
    let bytes = nar_size(&w, &w.chain[0]) + nar_size(&w, &w.chain[1]);
    assert_eq!(doc["upstream"]["checked"], 5, "{doc}");
    assert_eq!(doc["upstream"]["served"], 2, "{doc}");
    assert_eq!(doc["upstream"]["notTrusted"], 1, "{doc}");
    assert_eq!(doc["upstream"]["narBytes"], bytes, "{doc}");
    // Pins: the top, and the second path (served, but pinned itself).
    ok(w.narscope(&["pin", &dest_url, "add", "release", &w.chain[4]]));
    ok(w.narscope(&["pin", &dest_url, "add", "keep", &w.chain[1]]));
    age_files(&dest, Duration::from_secs(10 * 86_400));
    let before = Snapshot::take(&Source::Dir(dest.clone()));
    let gc = |extra: &[&str]| {
        let mut args = vec![
            "gc",
            dest_url.as_str(),
            "--upstream",
            up_url.as_str(),
            "--upstream-key",
            w.up_pk.as_str(),
            "--json",
        ];
        args.extend(extra);
        json(w.narscope(&args))
    };
    // Reported without --prune-upstream: nothing to collect.
    let doc = gc(&["--dry-run"]);
    assert_eq!(doc["upstream"]["served"], 2, "{doc}");
    assert_eq!(doc["garbage"].as_array().unwrap().len(), 0, "{doc}");
    // The plan names what goes and why.
    let doc = gc(&["--dry-run", "--prune-upstream", "--why", &w.chain[0]]);
    assert_eq!(doc["pruned"], serde_json::json!([w.chain[0]]), "{doc}");
    let why = doc["why"][0]["reason"].as_str().unwrap();
    assert!(why.contains("served by upstream"), "{why}");
    assert_eq!(narinfos(&dest).len(), 5, "a dry run deletes nothing");
    let doc = gc(&["--prune-upstream", "--yes"]);
    assert_eq!(doc["exitCode"], 0, "{doc}");
    let want: BTreeSet<String> = w.chain[1..].iter().map(|p| narinfo_key(p)).collect();
    assert_eq!(
        narinfos(&dest),
        want,
        "exactly the served, unpinned path went"
    );
    let after = Snapshot::take(&Source::Dir(dest.clone()));
    let served = &narinfo_key(&w.chain[0])[..32];
    let v: Vec<String> = after
        .violations(std::slice::from_ref(&w.dest_pk))
        .into_iter()
        .filter(|v| !v.contains(served))
        .collect();
    assert!(v.is_empty(), "{v:?}");
    let lost: Vec<String> = after
        .lost_pinned(&before)
        .into_iter()
        .filter(|l| !l.contains(served))
        .collect();
    assert!(lost.is_empty(), "{lost:?}");
    // And the pinned closure still realises from both caches.
    delete_local(&w, &w.chain[0]);
    let mut r = w.nix("nix-store");
    r.args([
        "-r",
        &w.chain[4],
        "--option",
        "substituters",
        &format!("{up_url} {dest_url}"),
        "--option",
        "trusted-public-keys",
        &format!("{} {}", w.up_pk, w.dest_pk),
    ]);
    ok(r);
}
