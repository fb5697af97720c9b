//! What must never be lost, under bad input and races: a narinfo that cannot be read protects
//! whatever it might reference; roots that name nothing are no roots; a pinned path is not
//! deleted by accident; a push that reuses an orphan NAR never loses it to a gc running at the
//! same time; a deletion interrupted by SIGKILL leaves a lease that does not block the next
//! run. Every test checks the cache with the invariant checker, which reads the directory
//! itself.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::cmd::{narscope, ok, run};
use common::fs::age_files;
use common::graph::write_edges;
use common::invariants::{Snapshot, Source};
use narscope::nix::SecretKey;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Breaks a narinfo on disk: its NarHash line no longer parses. Returns that line's number.
fn make_malformed(dir: &Path, narinfo_key: &str) -> usize {
    let p = dir.join(narinfo_key);
    let text = std::fs::read_to_string(&p).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("NarHash: "))
        .unwrap();
    let broken: String = text
        .lines()
        .map(|l| {
            if l.starts_with("NarHash: ") {
                "NarHash: sha256:not-a-hash".to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&p, broken).unwrap();
    line
}

/// r (pinned) → m (its narinfo malformed) → q; x unreferenced; all of it old.
///   0: q   1: m → q   2: r → m   3: x
fn pinned_chain(dir: &Path, key: &SecretKey) -> common::graph::Graph {
    let refs = vec![vec![], vec![0], vec![1], vec![]];
    let g = write_edges(dir, &refs, 41, key);
    age_files(dir, Duration::from_secs(30 * 86_400));
    g
}

#[test]
fn a_malformed_narinfo_protects_what_it_might_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let key = SecretKey::generate("safe-1").unwrap();
    let pk = key.public_key().to_string();
    let g = pinned_chain(&dir, &key);
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    ok(narscope(
        &["pin", &url, "add", "release", &g.paths[2].to_absolute()],
        &state,
    ));
    let m_key = g.paths[1].narinfo_key();
    let line = make_malformed(&dir, &m_key);
    let src = Source::Dir(dir.clone());
    let before = Snapshot::take(&src);

    // gc: the malformed narinfo's references (q) and its NAR are unknown: refused, exit 2,
    // naming the object and the line.
    let out = run(narscope(&["gc", &url, "--grace", "0s", "--yes"], &state));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}\n{err}", stdout(&out));
    assert!(err.contains("refusing to collect"), "{err}");
    assert!(
        err.contains(&m_key) && err.contains(&format!("line {line}")),
        "{err}"
    );
    assert!(err.contains("delete it explicitly"), "{err}");
    let after = Snapshot::take(&src);
    assert_eq!(before.keys, after.keys, "nothing deleted");

    // The JSON document says the same.
    let out = run(narscope(
        &["gc", &url, "--grace", "0s", "--dry-run", "--json"],
        &state,
    ));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "refused");
    assert_eq!(doc["exitCode"], 2);
    assert_eq!(doc["unknown"][0]["key"], m_key.as_str());
    assert_eq!(doc["unknown"][0]["state"], "malformed");

    // delete of q (which only the malformed narinfo references): refused too.
    let out = run(narscope(
        &["delete", &url, &g.paths[0].to_absolute(), "--yes"],
        &state,
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&m_key), "{}", stderr(&out));
    // Even a path nothing readable references (x) is refused: m might reference it.
    let out = run(narscope(
        &["delete", &url, &g.paths[3].to_absolute(), "--yes"],
        &state,
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let after = Snapshot::take(&src);
    assert_eq!(before.keys, after.keys, "nothing deleted");
    // Only the narinfo broken by hand fails its signature.
    let v: Vec<String> = after
        .violations(&[pk])
        .into_iter()
        .filter(|v| !v.starts_with(&m_key))
        .collect();
    assert!(v.is_empty(), "{v:?}");
}

#[test]
fn a_malformed_narinfo_can_be_deleted_explicitly_and_then_gc_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let key = SecretKey::generate("safe-1").unwrap();
    let pk = key.public_key().to_string();
    let g = pinned_chain(&dir, &key);
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    ok(narscope(
        &["pin", &url, "add", "release", &g.paths[2].to_absolute()],
        &state,
    ));
    // x, referenced by nothing, is the malformed one here.
    let x_key = g.paths[3].narinfo_key();
    make_malformed(&dir, &x_key);
    let out = ok(narscope(&["delete", &url, &x_key, "--yes"], &state));
    assert!(out.contains("deleted 1 narinfo(s)"), "{out}");
    assert!(!dir.join(&x_key).exists());
    // Now everything is readable: gc collects (x's NAR is an orphan now), keeps the pin.
    let src = Source::Dir(dir.clone());
    let before = Snapshot::take(&src);
    let out = ok(narscope(&["gc", &url, "--grace", "0s", "--yes"], &state));
    assert!(out.contains("collected"), "{out}");
    let after = Snapshot::take(&src);
    assert!(
        after.violations(&[pk]).is_empty(),
        "{:?}",
        after.violations(&[])
    );
    assert!(after.lost_pinned(&before).is_empty());
    assert!(!after.keys.contains(&g.urls[3]), "x's NAR collected");
}

#[test]
fn roots_that_name_nothing_are_refused_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let key = SecretKey::generate("safe-1").unwrap();
    let _g = pinned_chain(&dir, &key);
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    let gone = "/nix/store/00000000000000000000000000000000-gone-1.0";
    ok(narscope(&["pin", &url, "add", "old", gone], &state));
    let roots = tmp.path().join("roots.txt");
    std::fs::write(
        &roots,
        "/nix/store/11111111111111111111111111111111-also-gone\n",
    )
    .unwrap();
    let src = Source::Dir(dir.clone());
    let before = Snapshot::take(&src);
    let out = run(narscope(
        &[
            "gc",
            &url,
            "--grace",
            "0s",
            "--roots-file",
            roots.to_str().unwrap(),
            "--yes",
        ],
        &state,
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}\n{err}", stdout(&out));
    assert!(err.contains("no roots in the cache"), "{err}");
    assert!(err.contains(gone) && err.contains("also-gone"), "{err}");
    assert_eq!(before.keys, Snapshot::take(&src).keys, "nothing deleted");
    // Said explicitly, it goes ahead.
    let out = ok(narscope(
        &["gc", &url, "--grace", "0s", "--allow-no-roots", "--yes"],
        &state,
    ));
    assert!(out.contains("collected 4 narinfo(s)"), "{out}");
}

#[test]
fn deleting_a_pinned_path_is_refused_naming_the_pin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let key = SecretKey::generate("safe-1").unwrap();
    let pk = key.public_key().to_string();
    let g = pinned_chain(&dir, &key);
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    ok(narscope(
        &["pin", &url, "add", "release", &g.paths[2].to_absolute()],
        &state,
    ));
    // Directly, and through --cascade from what it references.
    for args in [
        vec![g.paths[2].to_absolute()],
        vec![g.paths[0].to_absolute(), "--cascade".into()],
    ] {
        let mut a = vec!["delete", &url];
        a.extend(args.iter().map(String::as_str));
        a.extend(["--yes"]);
        let out = run(narscope(&a, &state));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("pinned path") && err.contains("pin release"),
            "{err}"
        );
        assert!(dir.join(g.paths[2].narinfo_key()).exists());
    }
    // Overridden explicitly, it goes (and says so).
    let out = run(narscope(
        &[
            "delete",
            &url,
            &g.paths[2].to_absolute(),
            "--even-if-pinned",
            "--yes",
        ],
        &state,
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("pinned path"), "{}", stderr(&out));
    assert!(!dir.join(g.paths[2].narinfo_key()).exists());
    let after = Snapshot::take(&Source::Dir(dir.clone()));
    assert!(after.violations(&[pk]).is_empty());
}

#[test]
fn a_lease_left_by_a_killed_deletion_does_not_block_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let key = SecretKey::generate("safe-1").unwrap();
    let g = pinned_chain(&dir, &key);
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    // A deletion on another host that is still renewing its lease: refused.
    std::fs::create_dir_all(dir.join("narscope/locks")).unwrap();
    let lease = dir.join("narscope/locks/deletion");
    std::fs::write(
        &lease,
        r#"{"id":"x","what":"gc","host":"another-host","pid":1,"started":0}"#,
    )
    .unwrap();
    let out = run(narscope(
        &["delete", &url, &g.paths[3].to_absolute(), "--yes"],
        &state,
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another deletion holds this cache's lease"),
        "{}",
        stderr(&out)
    );
    assert!(dir.join(g.paths[3].narinfo_key()).exists());
    // One left by a process of this host that is gone (SIGKILLed): taken over at once.
    let mut child = std::process::Command::new("sleep")
        .arg("0")
        .spawn()
        .unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    std::fs::write(
        &lease,
        format!(
            r#"{{"id":"y","what":"gc","host":"{}","pid":{dead},"started":0}}"#,
            host.trim()
        ),
    )
    .unwrap();
    let out = run(narscope(
        &["delete", &url, &g.paths[3].to_absolute(), "--yes"],
        &state,
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!dir.join(g.paths[3].narinfo_key()).exists());
    assert!(!lease.exists(), "the lease is given back");
}

/// The narinfo key of a store path.
fn narinfo_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap();
    format!("{}.narinfo", &base[..32])
}

/// Polls the invariants while `children` run; returns what broke at any instant.
fn watch(src: &Source, children: &mut [std::process::Child]) -> Vec<String> {
    let mut broken = Vec::new();
    loop {
        broken.extend(common::invariants::violations_now(src, &[]));
        let mut running = 0;
        for c in children.iter_mut() {
            if c.try_wait().ok().flatten().is_none() {
                running += 1;
            }
        }
        if running == 0 {
            return broken;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
}

#[test]
fn a_push_reusing_an_orphan_nar_never_loses_it_to_a_concurrent_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    let tag = common::random_hex(4);
    let path = common::nix::nix_chain(tmp.path(), &tag, 1, 64).remove(0);
    let narinfo = dir.join(narinfo_of(&path));
    let src = Source::Dir(dir.clone());
    let mut rng = common::rng::Rng(0x9e37_79b9 ^ u64::from(std::process::id()));
    for round in 0..8 {
        // A failed push's leftover: the NAR without its narinfo, a day old.
        if !dir.exists()
            || !std::fs::read_dir(dir.join("nar")).is_ok_and(|mut d| d.next().is_some())
        {
            ok(narscope(&["push", &url, &path], &state));
        }
        let _ = std::fs::remove_file(&narinfo);
        age_files(&dir.join("nar"), Duration::from_secs(86_400));
        let mut gc = narscope(
            &["gc", &url, "--grace", "1h", "--allow-no-roots", "--yes"],
            &state,
        );
        let mut push = narscope(&["push", &url, &path], &state);
        gc.stdout(std::process::Stdio::null());
        push.stdout(std::process::Stdio::null());
        let first_gc = rng.below(2) == 0;
        let mut children = Vec::new();
        children.push(if first_gc { gc.spawn() } else { push.spawn() }.unwrap());
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        children.push(if first_gc { push.spawn() } else { gc.spawn() }.unwrap());
        let broken = watch(&src, &mut children);
        assert!(broken.is_empty(), "round {round}: {broken:?}");
        for c in &mut children {
            let st = c.wait().unwrap();
            assert!(st.success(), "round {round}: a job failed: {st:?}");
        }
        assert!(narinfo.exists(), "round {round}: the push landed");
        let v = Snapshot::take(&src).violations(&[]);
        assert!(v.is_empty(), "round {round}: {v:?}");
    }
}

#[test]
fn a_push_killed_at_random_moments_converges_and_never_breaks_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let url = format!("file://{}", dir.display());
    let state = tmp.path().join("state");
    let tag = common::random_hex(4);
    let chain = common::nix::nix_chain(tmp.path(), &tag, 6, 512);
    let top = chain.last().unwrap().clone();
    let src = Source::Dir(dir.clone());
    let mut rng = common::rng::Rng(0x51ed ^ u64::from(std::process::id()));
    for round in 0..5 {
        let mut push = narscope(&["push", &url, &top], &state);
        push.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = push.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(20 + rng.below(300)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let v = Snapshot::take(&src).violations(&[]);
        assert!(v.is_empty(), "after kill {round}: {v:?}");
    }
    // A deletion right after the killed pushes is not held up by their registrations.
    let started = std::time::Instant::now();
    ok(narscope(
        &["gc", &url, "--grace", "1h", "--allow-no-roots", "--yes"],
        &state,
    ));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "dead pushes' registrations do not count"
    );
    // Re-running converges: the whole closure, consistent.
    ok(narscope(&["push", &url, &top], &state));
    let snap = Snapshot::take(&src);
    assert!(snap.violations(&[]).is_empty());
    for p in &chain {
        assert!(snap.has(p), "{p} pushed");
    }
}
