//! Garbage collection on file:// and Garage: random reference graphs with known answers,
//! shared NARs, a GC killed midway and run again, a push running during GC, and real Nix
//! substituting a pinned closure after GC with signature checks.

use crate::common;

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use common::Garage;
use common::cmd::{narscope, ok, run};
use common::fs::{age_files, copy_dir};
use common::graph::{Graph, closure, write_graph};
use common::nix::{nix, skip_nix};
use common::rng::Rng;
use common::upload::{Upload, upload_to};
use narscope::nix::SecretKey;

/// The store paths whose narinfos are in a cache (through narscope's own listing).
fn contents(url: &str, state: &Path, env: &[(String, String)]) -> BTreeSet<String> {
    let mut c = narscope(&["ls", url, "--json"], state);
    c.envs(env.iter().cloned());
    let doc: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
    doc["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["storePath"].as_str().map(str::to_string))
        .collect()
}

fn check_gc(
    url: &str,
    state: &Path,
    env: &[(String, String)],
    g: &Graph,
    roots: &[usize],
    pk: &str,
) {
    let keep = closure(g, roots);
    let present = contents(url, state, env);
    for (i, p) in g.paths.iter().enumerate() {
        let here = present.contains(&p.to_absolute());
        assert_eq!(
            here,
            keep.contains(&i),
            "path {i} ({p}): present {here}, reachable {}",
            keep.contains(&i)
        );
    }
    // Every remaining narinfo has its NAR and verifies, contents included.
    let mut v = narscope(&["verify", url, "--contents", "--trusted-key", pk], state);
    v.envs(env.iter().cloned());
    let out = run(v);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn pin(url: &str, state: &Path, env: &[(String, String)], name: &str, paths: &[String]) {
    let mut args = vec!["pin", url, "add", name];
    args.extend(paths.iter().map(String::as_str));
    let mut c = narscope(&args, state);
    c.envs(env.iter().cloned());
    ok(c);
}

#[test]
fn random_graphs_keep_exactly_the_closures_of_their_roots_on_file() {
    for seed in [3u64, 17, 99] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let key = SecretKey::generate("gc-1").unwrap();
        let pk = key.public_key().to_string();
        let g = write_graph(&dir, 60, seed, &key);
        // Litter that GC cleans: an orphan NAR, an orphan listing, a temp file.
        std::fs::write(dir.join("nar/orphanorphanorphan.nar"), b"x").unwrap();
        std::fs::write(dir.join("0000000000000000000000000000000z.ls"), b"{}").unwrap();
        std::fs::write(dir.join("abc.narinfo.tmp.999.1"), b"half").unwrap();
        std::fs::write(dir.join("README"), b"not ours").unwrap();
        age_files(&dir, Duration::from_secs(30 * 86_400));
        let url = format!("file://{}", dir.display());
        let state = tmp.path().join("state");
        let mut rng = Rng(seed * 7 + 1);
        let roots: Vec<usize> = (0..3).map(|_| rng.below(60) as usize).collect();
        pin(&url, &state, &[], "a", &[g.paths[roots[0]].to_absolute()]);
        let roots_file = tmp.path().join("roots.txt");
        std::fs::write(
            &roots_file,
            format!(
                "# ci outputs\n{}\n{}\n",
                g.paths[roots[1]], g.paths[roots[2]]
            ),
        )
        .unwrap();
        // The pin object itself is young; the default grace would protect everything here
        // that is young, so the narinfos were aged above.
        let dry = ok(narscope(
            &[
                "gc",
                &url,
                "--roots-file",
                roots_file.to_str().unwrap(),
                "--dry-run",
            ],
            &state,
        ));
        assert!(dry.contains("keep "), "{dry}");
        assert!(
            dir.join("nar/orphanorphanorphan.nar").exists(),
            "dry run deletes nothing"
        );
        // --why names the root that keeps a path, and says when a path is garbage.
        let keep = closure(&g, &roots);
        let kept = g.paths[roots[0]].to_absolute();
        let gone = (0..60)
            .find(|i| !keep.contains(i))
            .map(|i| g.paths[i].to_absolute());
        let mut args = vec![
            "gc",
            &url,
            "--roots-file",
            roots_file.to_str().unwrap(),
            "--dry-run",
            "--why",
            &kept,
        ];
        if let Some(gp) = &gone {
            args.extend(["--why", gp.as_str()]);
        }
        let why = ok(narscope(&args, &state));
        assert!(
            why.contains(&format!("why {kept}: kept by pin 'a'"))
                || why.contains(&format!("why {kept}: kept by the roots file")),
            "{why}"
        );
        if let Some(gp) = &gone {
            assert!(why.contains(&format!("why {gp}: garbage")), "{why}");
        }
        ok(narscope(
            &[
                "gc",
                &url,
                "--roots-file",
                roots_file.to_str().unwrap(),
                "--yes",
            ],
            &state,
        ));
        check_gc(&url, &state, &[], &g, &roots, &pk);
        assert!(!dir.join("nar/orphanorphanorphan.nar").exists());
        assert!(!dir.join("0000000000000000000000000000000z.ls").exists());
        assert!(!dir.join("abc.narinfo.tmp.999.1").exists());
        assert!(dir.join("README").exists(), "unknown files stay");
        assert!(dir.join("narscope/roots/a").exists(), "pins stay");
        // Shared NARs: every remaining narinfo's NAR is there (verify --contents passed), and
        // a NAR shared with a garbage path survived if a kept path uses it.
        for i in &keep {
            assert!(dir.join(&g.urls[*i]).exists(), "NAR of kept path {i}");
        }
        // Running again changes nothing.
        let again = ok(narscope(
            &[
                "gc",
                &url,
                "--roots-file",
                roots_file.to_str().unwrap(),
                "--yes",
            ],
            &state,
        ));
        assert!(again.contains("nothing to collect"), "{again}");
    }
}

#[test]
fn young_objects_survive_and_no_roots_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let key = SecretKey::generate("gc-1").unwrap();
    let g = write_graph(&dir, 10, 5, &key);
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    let out = run(narscope(&["gc", &url, "--yes"], &state));
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no roots"));
    // Everything was just written: within the default grace period nothing goes.
    let out = ok(narscope(&["gc", &url, "--allow-no-roots", "--yes"], &state));
    assert!(out.contains("nothing to collect"), "{out}");
    for p in &g.paths {
        assert!(dir.join(p.narinfo_key()).exists());
    }
    // Retention by age keeps recent closures even with grace 0.
    let out = ok(narscope(
        &[
            "gc",
            &url,
            "--keep-younger-than",
            "1d",
            "--grace",
            "0s",
            "--yes",
        ],
        &state,
    ));
    assert!(out.contains("nothing to collect"), "{out}");
}

#[test]
fn a_gc_killed_midway_leaves_a_consistent_cache_and_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let key = SecretKey::generate("gc-1").unwrap();
    let pk = key.public_key().to_string();
    let g = write_graph(&dir, 3000, 11, &key);
    age_files(&dir, Duration::from_secs(86_400));
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    let roots = vec![2999usize, 1500];
    pin(
        &url,
        &state,
        &[],
        "keep",
        &[g.paths[2999].to_absolute(), g.paths[1500].to_absolute()],
    );
    // Kill the gc at a moment when it has deleted some garbage but not all: a copy of the
    // cache is restored for each try, the directory is watched while the gc runs, and the
    // gc is SIGKILLed as soon as the first narinfo is gone (a batch of deletions takes longer
    // than one look at the directory, so the kill lands inside it; a try that misses is
    // repeated).
    let pristine = tmp.path().join("pristine");
    copy_dir(&dir, &pristine);
    let (total, keep) = (g.paths.len(), closure(&g, &roots).len());
    let narinfos = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".narinfo"))
                    .count()
            })
            .unwrap_or(0)
    };
    let kill_when_deleting = || -> usize {
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&pristine, &dir);
        age_files(&dir, Duration::from_secs(86_400));
        let mut child = narscope(&["gc", &url, "--yes"], &state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while narinfos(&dir) == total
            && child.try_wait().unwrap().is_none()
            && started.elapsed() < Duration::from_secs(120)
        {}
        let _ = child.kill();
        let _ = child.wait();
        let n = contents(&url, &state, &[]).len();
        assert!(
            n >= keep,
            "killed while deleting: only {n} of the {keep} kept paths are left"
        );
        n
    };
    let mut midway = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let n = kill_when_deleting();
        seen.push(n);
        if n > keep && n < total {
            eprintln!("killed mid-deletion: {n} of {total} paths left");
            midway = Some(n);
            break;
        }
    }
    assert!(
        midway.is_some(),
        "no kill landed mid-deletion ({total} paths, {keep} kept; paths left after each try: {seen:?})"
    );
    // Whatever was done: every remaining narinfo has its NAR and its references.
    let mut v = narscope(
        &["verify", &url, "--contents", "--json", "--trusted-key", &pk],
        &state,
    );
    v.stderr(std::process::Stdio::null());
    let doc: serde_json::Value = serde_json::from_slice(&run(v).stdout).unwrap();
    let present: HashSet<String> = doc["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["storePath"].as_str())
        .map(|p| p.trim_start_matches("/nix/store/").to_string())
        .collect();
    for p in doc["paths"].as_array().unwrap() {
        assert_eq!(p["status"], "trusted", "{p}");
        for r in p["references"].as_array().into_iter().flatten() {
            assert!(
                present.contains(r.as_str().unwrap()),
                "{} lost {r}",
                p["storePath"]
            );
        }
    }
    ok(narscope(&["gc", &url, "--yes"], &state));
    check_gc(&url, &state, &[], &g, &roots, &pk);
}

#[test]
fn a_push_during_gc_on_garage_loses_nothing() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    if skip_nix() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let key = SecretKey::generate("gc-1").unwrap();
    let pk = key.public_key().to_string();
    // Old garbage (uploaded, then aged by waiting past a short grace period).
    let dir = tmp.path().join("garbage");
    let graph = write_graph(&dir, 40, 23, &key);
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    let env = g.env();
    upload_to(
        g,
        &url,
        &dir,
        Upload {
            nars_first: true,
            ..Upload::default()
        },
    );
    std::thread::sleep(Duration::from_secs(7));
    // A real closure pushed while GC runs (grace 6s: the push's objects are younger).
    let mut leaves = Vec::new();
    for i in 0..16 {
        let src = tmp.path().join(format!("leaf-{i}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("data"), vec![(i * 7) as u8; 400_000 + i * 999]).unwrap();
        let mut c = nix("nix-store", tmp.path());
        c.arg("--add").arg(&src);
        leaves.push(ok(c).trim().to_string());
    }
    let mut push = narscope(&["push", &url], &state);
    push.args(&leaves)
        .args(["--compression", "xz", "--level", "9", "--jobs", "1"])
        .envs(env.iter().cloned());
    let mut child = push.stdout(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut gc = narscope(
        &["gc", &url, "--grace", "6s", "--allow-no-roots", "--yes"],
        &state,
    );
    gc.envs(env.iter().cloned());
    let gc_out = ok(gc);
    assert!(child.wait().unwrap().success(), "the push succeeded");
    // The garbage went (at least partly; it was old enough), the push is complete.
    let present = contents(&url, &state, &env);
    for l in &leaves {
        assert!(present.contains(l), "pushed {l} survived GC:\n{gc_out}");
    }
    assert!(
        graph
            .paths
            .iter()
            .any(|p| !present.contains(&p.to_absolute())),
        "old garbage was collected:\n{gc_out}"
    );
    let mut v = narscope(
        &["verify", &url, "--contents", "--trusted-key", &pk],
        &state,
    );
    v.envs(env.iter().cloned());
    let out = run(v);
    // Local CA paths verify as content-addressed; remaining garbage signed by `pk`.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn nix_substitutes_a_pinned_closure_after_gc() {
    if skip_nix() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let nix = |p: &str| nix(p, tmp.path());
    let tag = common::random_hex(4);
    let src = tmp.path().join(format!("src-{tag}"));
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("bin/hello"), format!("#!/bin/sh\necho gc {tag}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        src.join("bin/hello"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut c = nix("nix-store");
    c.arg("--add").arg(&src);
    let leaf = ok(c).trim().to_string();
    let expr = format!(
        "let a = builtins.storePath \"{leaf}\"; in derivation {{ name = \"gctop-{tag}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"/bin/mkdir -p $out/bin; echo '#!/bin/sh' > $out/bin/run; echo 'exec ${{a}}/bin/hello' >> $out/bin/run; /bin/chmod +x $out/bin/run\" ]; }}"
    );
    let mut b = nix("nix-build");
    b.args(["--no-out-link", "-E", &expr]);
    let top = ok(b).trim().to_string();
    let key = SecretKey::generate("gcnix-1").unwrap();
    let pk = key.public_key().to_string();
    // Pushed by narscope, with garbage beside it; then everything aged.
    let (dir, url, g) = pushed_with_garbage(tmp.path(), &state, &top, &key, 20, 77);
    age_files(&dir, Duration::from_secs(10 * 86_400));
    pin(&url, &state, &[], "release", std::slice::from_ref(&top));
    ok(narscope(&["gc", &url, "--yes"], &state));
    for p in &g.paths {
        assert!(!dir.join(p.narinfo_key()).exists(), "garbage {p} collected");
    }
    // Nix substitutes the pinned closure from the collected cache, checking signatures.
    for p in [&top, &leaf] {
        let mut q = nix("nix-store");
        q.args(["-q", "--referrers-closure", p]);
        let all = ok(q);
        let mut d = nix("nix-store");
        d.arg("--delete").args(all.lines());
        let _ = d.output();
    }
    let mut s = nix("nix-store");
    s.args([
        "-r",
        &top,
        "--option",
        "substituters",
        &url,
        "--option",
        "trusted-public-keys",
        &pk,
    ]);
    ok(s);
    let out = ok(std::process::Command::new(format!("{top}/bin/run")));
    assert_eq!(out.trim(), format!("gc {tag}"));
}

#[test]
fn roots_from_nix_keep_the_closures_of_local_gc_roots() {
    if skip_nix() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let nix = |p: &str| nix(p, tmp.path());
    // A leaf and a top path referencing it; only the top is a GC root (nix-build -o).
    let tag = common::random_hex(4);
    let src = tmp.path().join(format!("leaf-{tag}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data"), format!("leaf {tag}\n")).unwrap();
    let mut c = nix("nix-store");
    c.arg("--add").arg(&src);
    let leaf = ok(c).trim().to_string();
    let expr = format!(
        "let a = builtins.storePath \"{leaf}\"; in derivation {{ name = \"gcroot-{tag}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo ${{a}} > $out\" ]; }}"
    );
    let result = tmp.path().join("result");
    let mut b = nix("nix-build");
    b.args(["-E", &expr, "-o"]).arg(&result);
    let top = ok(b).trim().to_string();
    let key = SecretKey::generate("gcnix-2").unwrap();
    let (dir, url, g) = pushed_with_garbage(tmp.path(), &state, &top, &key, 10, 91);
    // The root itself leaves the cache: its closure, from the local store, still counts.
    let top_sp = narscope::nix::StorePath::parse_any(&top).unwrap();
    std::fs::remove_file(dir.join(top_sp.narinfo_key())).unwrap();
    age_files(&dir, Duration::from_secs(10 * 86_400));
    let gc = narscope(&["gc", &url, "--roots-from-nix", "--yes"], &state);
    let out = ok(gc);
    assert!(out.contains("collected 10 narinfo(s)"), "{out}");
    let leaf_sp = narscope::nix::StorePath::parse_any(&leaf).unwrap();
    assert!(
        dir.join(leaf_sp.narinfo_key()).exists(),
        "{leaf} kept: it is in the closure of a local GC root"
    );
    for p in &g.paths {
        assert!(!dir.join(p.narinfo_key()).exists(), "garbage {p} collected");
    }
    std::fs::remove_file(&result).ok();
}

/// `top` pushed by narscope (signed by `key`) into `tmp/cache`, with a random graph of `n`
/// unrelated paths copied beside it: (cache dir, its URL, the garbage graph).
fn pushed_with_garbage(
    tmp: &Path,
    state: &Path,
    top: &str,
    key: &SecretKey,
    n: usize,
    seed: u64,
) -> (std::path::PathBuf, String, Graph) {
    let dir = tmp.join("cache");
    let kf = tmp.join("k.sec");
    std::fs::write(&kf, key.to_file_text()).unwrap();
    let url = format!("file://{}", dir.display());
    ok(narscope(
        &["push", &url, top, "--key-file", kf.to_str().unwrap()],
        state,
    ));
    let other = tmp.join("other");
    let g = write_graph(&other, n, seed, key);
    for e in std::fs::read_dir(&other).unwrap().flatten() {
        if e.path().is_file() && e.file_name() != "nix-cache-info" {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    for e in std::fs::read_dir(other.join("nar")).unwrap().flatten() {
        std::fs::copy(e.path(), dir.join("nar").join(e.file_name())).unwrap();
    }
    (dir, url, g)
}

#[test]
fn a_cache_written_by_nix_copy_is_collected_and_nix_still_reads_it() {
    if skip_nix() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let nix = |p: &str| nix(p, tmp.path());
    let tag = common::random_hex(4);
    let add = |name: &str, text: &str| -> String {
        let d = tmp.path().join(format!("{name}-{tag}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("file"), text).unwrap();
        let mut c = nix("nix-store");
        c.arg("--add").arg(&d);
        ok(c).trim().to_string()
    };
    let leaf = add("keepleaf", "kept leaf\n");
    let junk = add("junk", "garbage\n");
    let expr = format!(
        "let a = builtins.storePath \"{leaf}\"; in derivation {{ name = \"keeptop-{tag}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo ${{a}} > $out\" ]; }}"
    );
    let mut b = nix("nix-build");
    b.args(["--no-out-link", "-E", &expr]);
    let top = ok(b).trim().to_string();
    // Nix writes the cache: xz, signed, with .ls listings.
    let key = SecretKey::generate("gcnixcopy-1").unwrap();
    let kf = tmp.path().join("k.sec");
    std::fs::write(&kf, key.to_file_text()).unwrap();
    let pk = key.public_key().to_string();
    let dir = tmp.path().join("cache");
    let to = format!(
        "file://{}?compression=xz&write-nar-listing=true&secret-key={}",
        dir.display(),
        kf.display()
    );
    let mut c = nix("nix");
    c.args(["copy", "--to", &to, &top, &junk]);
    ok(c);
    let hash = |p: &str| narscope::nix::StorePath::parse_any(p).unwrap();
    let (top_sp, leaf_sp, junk_sp) = (hash(&top), hash(&leaf), hash(&junk));
    let ls = |sp: &narscope::nix::StorePath| dir.join(format!("{}.ls", sp.hash_part()));
    assert!(ls(&junk_sp).exists(), "Nix wrote listings");
    let junk_nar = std::fs::read_dir(dir.join("nar")).unwrap().count();
    age_files(&dir, Duration::from_secs(10 * 86_400));
    let url = format!("file://{}", dir.display());
    pin(&url, &state, &[], "release", std::slice::from_ref(&top));
    let out = ok(narscope(&["gc", &url, "--yes"], &state));
    assert!(
        out.contains("collected 1 narinfo(s), 1 NAR(s), 1 listing(s)"),
        "{out}"
    );
    assert!(!dir.join(junk_sp.narinfo_key()).exists());
    assert!(!ls(&junk_sp).exists());
    assert_eq!(
        std::fs::read_dir(dir.join("nar")).unwrap().count(),
        junk_nar - 1
    );
    for sp in [&top_sp, &leaf_sp] {
        assert!(dir.join(sp.narinfo_key()).exists());
        assert!(ls(sp).exists(), "listings of kept paths stay");
    }
    // Nix still verifies the collected cache, signatures and contents.
    let mut v = nix("nix");
    v.args([
        "store",
        "verify",
        "--store",
        &url,
        "--trusted-public-keys",
        &pk,
        "-r",
        &top,
    ]);
    ok(v);
}
