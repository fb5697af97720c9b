//! Retention policies of gc on a file:// cache pushed by narscope from real Nix store paths
//! (signed): `gc --keep-versions N` and `gc --max-size SIZE`, checked by reading storage
//! directly (every remaining narinfo's NAR and references present, signatures verify) and
//! by real Nix 2.8 substituting each kept root with signature checking on.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::cmd::{narscope, ok, run};
use common::fs::{age_files, copy_dir};
use common::invariants::{Snapshot, Source};
use common::nix::{nix, skip_nix};
use narscope::nix::{SecretKey, StorePath};

/// Versions of two packages built by real Nix: `lib` 1.0, 2.0, 3.0 and `app` 1.0 (references
/// lib 1.0) and 2.0 (references lib 1.0 too, an older lib), 32 KiB of random bytes each.
struct Built {
    /// lib-1.0, lib-2.0, lib-3.0, app-1.0, app-2.0.
    paths: Vec<String>,
    /// The package names (`rlib<tag>`, `rapp<tag>`).
    lib: String,
    app: String,
}

const LIB1: usize = 0;
const LIB2: usize = 1;
const LIB3: usize = 2;
const APP1: usize = 3;
const APP2: usize = 4;

fn build(root: &Path) -> Built {
    let tag = common::random_hex(4);
    let (lib, app) = (format!("rlib{tag}"), format!("rapp{tag}"));
    let mk = |var: &str, name: &str, dep: Option<&str>| {
        let dep = dep.map_or(String::new(), |d| format!("echo ${{{d}}} > $out/dep; "));
        format!(
            "  {var} = derivation {{ name = \"{name}\"; system = builtins.currentSystem; \
             builder = \"/bin/sh\"; args = [ \"-c\" \"/bin/mkdir $out; {dep}/usr/bin/head -c \
             32768 /dev/urandom > $out/data\" ]; }};\n"
        )
    };
    let mut expr = String::from("let\n");
    expr.push_str(&mk("lib1", &format!("{lib}-1.0"), None));
    expr.push_str(&mk("lib2", &format!("{lib}-2.0"), None));
    expr.push_str(&mk("lib3", &format!("{lib}-3.0"), None));
    expr.push_str(&mk("app1", &format!("{app}-1.0"), Some("lib1")));
    expr.push_str(&mk("app2", &format!("{app}-2.0"), Some("lib1")));
    expr.push_str("in [ lib1 lib2 lib3 app1 app2 ]");
    let mut c = nix("nix-build", root);
    c.args(["--no-out-link", "-E", &expr]);
    let paths: Vec<String> = ok(c).lines().map(str::to_string).collect();
    assert_eq!(paths.len(), 5, "{paths:?}");
    Built { paths, lib, app }
}

/// The built paths pushed by narscope (signed by `key`) into `root/pristine`, everything
/// aged 60 days, then each narinfo dated: lib-1.0 50 days ago, lib-2.0 30, lib-3.0 10,
/// app-1.0 40, app-2.0 20.
fn pushed(root: &Path, state: &Path, b: &Built, key: &SecretKey) -> PathBuf {
    let dir = root.join("pristine");
    let kf = root.join("k.sec");
    std::fs::write(&kf, key.to_file_text()).unwrap();
    let url = format!("file://{}", dir.display());
    let mut args = vec!["push", &url, "--key-file", kf.to_str().unwrap()];
    args.extend(b.paths.iter().map(String::as_str));
    ok(narscope(&args, state));
    age_files(&dir, Duration::from_secs(60 * 86_400));
    for (i, days) in [50u64, 30, 10, 40, 20].into_iter().enumerate() {
        let f = std::fs::File::options()
            .write(true)
            .open(dir.join(narinfo(&b.paths[i])))
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
            .unwrap();
    }
    dir
}

fn narinfo(path: &str) -> String {
    StorePath::parse_any(path).unwrap().narinfo_key()
}

/// A fresh copy of the pushed cache in `root/name` (ages kept): its directory and URL.
fn fresh(root: &Path, pristine: &Path, name: &str) -> (PathBuf, String) {
    let dir = root.join(name);
    copy_dir(pristine, &dir);
    // copy_dir writes new files: copy the ages too.
    for (key, p) in common::fs::list_files(pristine) {
        let t = std::fs::metadata(&p).unwrap().modified().unwrap();
        let f = std::fs::File::options()
            .write(true)
            .open(dir.join(&key))
            .unwrap();
        f.set_modified(t).unwrap();
    }
    let url = format!("file://{}", dir.display());
    (dir, url)
}

/// Which of the built paths have a narinfo in `dir`.
fn present(dir: &Path, b: &Built) -> Vec<bool> {
    b.paths
        .iter()
        .map(|p| dir.join(narinfo(p)).exists())
        .collect()
}

/// Storage itself: every remaining narinfo's NAR and references are there and its
/// signatures by `pk` verify.
fn assert_sound(dir: &Path, pk: &str) {
    let snap = Snapshot::take(&Source::Dir(dir.to_path_buf()));
    let v = snap.violations(&[pk.to_string()]);
    assert!(v.is_empty(), "{v:#?}");
}

/// Bytes of the NAR objects in `dir`.
fn nar_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("nar"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Real Nix substitutes each of `tops` from `url` (after deleting them and their referrers
/// from the local store), checking signatures against `pk`.
fn nix_substitutes(root: &Path, url: &str, pk: &str, b: &Built, tops: &[usize]) {
    for p in &b.paths {
        let mut q = nix("nix-store", root);
        q.args(["-q", "--referrers-closure", p]);
        let out = run(q);
        let all = String::from_utf8_lossy(&out.stdout);
        let mut d = nix("nix-store", root);
        d.arg("--delete").args(all.lines());
        let _ = run(d);
    }
    for &t in tops {
        let mut s = nix("nix-store", root);
        s.args([
            "-r",
            &b.paths[t],
            "--option",
            "substituters",
            url,
            "--option",
            "trusted-public-keys",
            pk,
        ]);
        ok(s);
        let data = Path::new(&b.paths[t]).join("data");
        assert_eq!(std::fs::metadata(&data).unwrap().len(), 32768);
    }
}

#[test]
fn keep_versions_and_max_size_keep_what_nix_can_still_substitute() {
    if skip_nix() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let state = root.join("state");
    let b = build(root);
    let key = SecretKey::generate("gcret-1").unwrap();
    let pk = key.public_key().to_string();
    let pristine = pushed(root, &state, &b, &key);

    // --keep-versions 1: the newest lib (3.0) and app (2.0), and lib-1.0 that app-2.0
    // references; lib-2.0 and app-1.0 go. No pins: the policy says what to keep.
    let (dir, url) = fresh(root, &pristine, "versions");
    let why = ok(narscope(
        &[
            "gc",
            &url,
            "--keep-versions",
            "1",
            "--dry-run",
            "--why",
            &b.paths[LIB1],
            "--why",
            &b.paths[APP1],
        ],
        &state,
    ));
    assert!(
        why.contains(&format!(
            "why {}: kept: the newest version of {}: {}-2.0 → {}-1.0",
            b.paths[LIB1], b.app, b.app, b.lib
        )),
        "{why}"
    );
    assert!(
        why.contains(&format!(
            "why {}: garbage: older than the 1 newest version(s) of {}",
            b.paths[APP1], b.app
        )),
        "{why}"
    );
    assert!(
        why.contains("retention: --keep-versions 1 drops 2 older version(s)"),
        "{why}"
    );
    assert_eq!(present(&dir, &b), [true; 5], "a dry run deletes nothing");
    let out = ok(narscope(
        &["gc", &url, "--keep-versions", "1", "--yes"],
        &state,
    ));
    assert!(out.contains("collected 2 narinfo(s), 2 NAR(s)"), "{out}");
    assert_eq!(present(&dir, &b), [true, false, true, false, true]);
    assert_sound(&dir, &pk);
    nix_substitutes(root, &url, &pk, &b, &[APP2, LIB3]);

    // --max-size: a budget of three NARs. Least recently pushed tops go first: app-1.0
    // (40 days), then lib-2.0 (30 days; lib-1.0, older, is referenced by both apps).
    let (dir, url) = fresh(root, &pristine, "budget");
    let before = nar_bytes(&dir);
    let size = |i: usize| {
        let text = std::fs::read_to_string(dir.join(narinfo(&b.paths[i]))).unwrap();
        let u = text
            .lines()
            .find_map(|l| l.strip_prefix("URL: "))
            .unwrap()
            .to_string();
        std::fs::metadata(dir.join(u)).unwrap().len()
    };
    let budget = size(LIB1) + size(LIB3) + size(APP2);
    let out = ok(narscope(
        &[
            "gc",
            &url,
            "--max-size",
            &budget.to_string(),
            "--yes",
            "--why",
            &b.paths[APP1],
        ],
        &state,
    ));
    assert!(out.contains("budget "), "{out}");
    assert!(out.contains(": reached (cache "), "{out}");
    assert!(
        out.contains(&format!(
            "why {}: garbage: evicted by --max-size",
            b.paths[APP1]
        )),
        "{out}"
    );
    assert_eq!(present(&dir, &b), [true, false, true, false, true]);
    let after = nar_bytes(&dir);
    assert!(after <= budget, "{after} bytes stored, budget {budget}");
    assert!(after < before);
    assert_sound(&dir, &pk);
    nix_substitutes(root, &url, &pk, &b, &[APP2, LIB3]);

    // A budget the pins do not allow: stated plainly, not an error; what may go goes.
    let (dir, url) = fresh(root, &pristine, "pinned");
    ok(narscope(
        &[
            "pin",
            &url,
            "add",
            "release",
            &b.paths[APP1],
            &b.paths[LIB2],
        ],
        &state,
    ));
    let out = run(narscope(
        &["gc", &url, "--max-size", "1K", "--yes", "--json"],
        &state,
    ));
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "done", "{doc:#}");
    let budget = &doc["summary"]["budget"];
    assert_eq!(budget["reached"], false, "{doc:#}");
    assert_eq!(budget["budget"], 1024, "{doc:#}");
    assert!(budget["heldByRoots"].as_u64().unwrap() > 1024, "{doc:#}");
    assert_eq!(doc["summary"]["narinfos"], 2, "{doc:#}");
    let out = ok(narscope(
        &["gc", &url, "--max-size", "1K", "--dry-run", "--json"],
        &state,
    ));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["budget"]["reached"], false, "{doc:#}");
    assert_eq!(doc["retention"]["maxSize"], 1024, "{doc:#}");
    let out = ok(narscope(
        &["gc", &url, "--max-size", "1K", "--dry-run"],
        &state,
    ));
    assert!(
        out.contains("budget 1 KiB: NOT reached:") && out.contains("is held by pins"),
        "{out}"
    );
    assert_eq!(present(&dir, &b), [true, true, false, true, false]);
    assert_sound(&dir, &pk);

    // A size that is not one: the flag and the value are named.
    let out = run(narscope(&["gc", &url, "--max-size", "10X"], &state));
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-size") && err.contains("10X"), "{err}");
    let out = run(narscope(&["gc", &url, "--keep-versions", "0"], &state));
    assert_ne!(out.status.code(), Some(0));
}
