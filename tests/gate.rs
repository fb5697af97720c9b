//! The closure gate, `narscope verify CACHE -r ROOT… [--upstream URL…]`, on closures built by
//! real Nix and pushed by narscope: a hole in the middle of a closure is found and named with
//! its chain; an upstream that serves the hole with a trusted signature closes it, one whose
//! signature does not verify does not; a root not pushed yet takes its closure from the local
//! store; the verdicts over HTTP are those over file://.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common;
use common::cmd::{narscope, ok, run};
use common::nix::{keygen_in, nix_chain, skip_nix};

/// A scratch directory with narscope's state, one key pair and a helper to run narscope.
struct Rig {
    tmp: tempfile::TempDir,
    state: PathBuf,
    tag: String,
}

impl Rig {
    fn new() -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        Rig {
            tmp,
            state,
            tag: common::random_hex(4),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn url(&self, name: &str) -> String {
        format!("file://{}", self.dir(name).display())
    }

    /// A key pair made by `narscope keygen`: (secret key file, public key).
    fn key(&self, name: &str) -> (String, String) {
        let (sk, pk) = keygen_in(self.tmp.path(), name, |args| {
            ok(narscope(args, &self.state));
        });
        (sk.to_str().unwrap().to_string(), pk)
    }

    fn chain(&self, what: &str, n: usize) -> Vec<String> {
        nix_chain(self.tmp.path(), &format!("{what}{}", self.tag), n, 1)
    }

    fn push(&self, cache: &str, path: &str, sk: &str) {
        ok(narscope(
            &["push", &self.url(cache), path, "--key-file", sk],
            &self.state,
        ));
    }

    fn verify(&self, args: &[&str]) -> Output {
        run(narscope(args, &self.state))
    }
}

fn hash_part(path: &str) -> &str {
    &path.rsplit('/').next().unwrap()[..32]
}

fn name_of(path: &str) -> &str {
    &path.rsplit('/').next().unwrap()[33..]
}

fn remove_narinfo(dir: &Path, path: &str) {
    let f = dir.join(format!("{}.narinfo", hash_part(path)));
    std::fs::remove_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The JSON entry for `path`.
fn entry<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["storePath"] == path)
        .unwrap_or_else(|| panic!("{path} not in {doc:#}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_hole_in_the_middle_of_a_closure_is_named_with_its_chain_and_an_upstream_closes_it() {
    if skip_nix() {
        return;
    }
    let rig = Rig::new();
    let (sk, pk) = rig.key("gate-1");
    let (other_sk, _) = rig.key("gate-1-forged");
    let chain = rig.chain("hole", 3);
    let (bottom, middle, root) = (&chain[0], &chain[1], &chain[2]);
    rig.push("cache", root, &sk);
    let cache = rig.url("cache");

    // The whole closure is there: the gate passes, NARs checked too.
    let out = rig.verify(&[
        "verify",
        &cache,
        "-r",
        root,
        "--trusted-key",
        &pk,
        "--contents",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("3 paths"), "{}", text(&out));
    // A NAR of the closure truncated: corrupt (1).
    let nar = std::fs::read_dir(rig.dir("cache").join("nar"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let bytes = std::fs::read(&nar).unwrap();
    std::fs::write(&nar, &bytes[..bytes.len() / 2]).unwrap();
    let out = rig.verify(&[
        "verify",
        &cache,
        "-r",
        root,
        "--trusted-key",
        &pk,
        "--contents",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    std::fs::write(&nar, &bytes).unwrap();
    // --upstream belongs to the gate.
    let out = rig.verify(&["verify", &cache, root, "--upstream", &cache]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out).contains("need -r"), "{}", text(&out));

    // The middle path's narinfo removed: a hole.
    remove_narinfo(&rig.dir("cache"), middle);
    let out = rig.verify(&["verify", &cache, "-r", root, "--trusted-key", &pk]);
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(4),
        "missing counts as 4, as in Nix: {t}"
    );
    assert!(t.contains("missing") && t.contains(middle.as_str()), "{t}");
    assert!(
        t.contains(&format!("{} → {}", name_of(root), name_of(middle))),
        "the chain root → middle: {t}"
    );
    let out = rig.verify(&["verify", &cache, "-r", root, "--trusted-key", &pk, "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let doc = json_of(&out);
    assert_eq!(doc["exitCode"], 4);
    assert_eq!(doc["roots"][0], root.as_str());
    let m = entry(&doc, middle);
    assert_eq!(m["status"], "missing");
    assert_eq!(m["where"], "missing");
    assert_eq!(m["chain"], serde_json::json!([root, middle]));
    assert_eq!(entry(&doc, root)["status"], "trusted");
    assert_eq!(entry(&doc, root)["where"], "cache");

    // An upstream holding the middle path (and what it references), signed by the trusted key.
    rig.push("up", middle, &sk);
    // The bottom path is only in the upstream's closure of the middle one: remove it from the
    // cache, so that the gate must follow the upstream's references to find it there.
    remove_narinfo(&rig.dir("cache"), bottom);
    let up = upstream_url(&rig, "up");
    let out = rig.verify(&[
        "verify",
        &cache,
        "-r",
        root,
        "--trusted-key",
        &pk,
        "--upstream",
        &up.url,
        "--json",
    ]);
    let doc = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    let m = entry(&doc, middle);
    assert_eq!(m["status"], "trusted");
    assert_ne!(m["where"], "cache");
    assert_ne!(m["where"], "missing");
    let b = entry(&doc, bottom);
    assert_eq!(b["status"], "trusted", "{doc:#}");
    assert_eq!(b["chain"], serde_json::json!([root, middle, bottom]));
    assert_eq!(doc["summary"]["fromUpstreams"], 2);

    // A hole behind the upstream path: the upstream lacks the bottom path too.
    remove_narinfo(&rig.dir("up"), bottom);
    let out = rig.verify(&[
        "verify",
        &cache,
        "-r",
        root,
        "--trusted-key",
        &pk,
        "--upstream",
        &up.url,
        "--json",
    ]);
    let doc = json_of(&out);
    assert_eq!(out.status.code(), Some(4), "{doc:#}");
    let b = entry(&doc, bottom);
    assert_eq!(b["status"], "missing");
    assert_eq!(b["chain"], serde_json::json!([root, middle, bottom]));

    // An upstream whose copy is signed by a key that is not trusted: not trusted (2).
    rig.push("forged", middle, &other_sk);
    let forged = upstream_url(&rig, "forged");
    let out = rig.verify(&[
        "verify",
        &cache,
        "-r",
        root,
        "--trusted-key",
        &pk,
        "--upstream",
        &forged.url,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("untrusted") && t.contains(middle.as_str()),
        "{t}"
    );
    assert!(
        t.contains(&format!("{} → {}", name_of(root), name_of(middle))),
        "{t}"
    );
}

#[test]
fn a_root_not_pushed_takes_its_closure_from_the_local_store() {
    if skip_nix() {
        return;
    }
    let rig = Rig::new();
    let (sk, pk) = rig.key("gate-2");
    let chain = rig.chain("local", 2);
    let (below, root) = (&chain[0], &chain[1]);
    rig.push("cache", below, &sk);
    let cache = rig.url("cache");
    let out = rig.verify(&["verify", &cache, "-r", root, "--trusted-key", &pk, "--json"]);
    let doc = json_of(&out);
    assert_eq!(out.status.code(), Some(4), "{doc:#}");
    let r = entry(&doc, root);
    assert_eq!(r["status"], "missing");
    assert_eq!(r["localStore"], true);
    let b = entry(&doc, below);
    assert_eq!(
        b["status"], "trusted",
        "the local store's references were followed"
    );
    assert_eq!(b["where"], "cache");
    assert_eq!(b["chain"], serde_json::json!([root, below]));
    assert_eq!(doc["summary"]["paths"], 2);
    // Pushed, the gate passes.
    rig.push("cache", root, &sk);
    let out = rig.verify(&["verify", &cache, "-r", root, "--trusted-key", &pk]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A served copy of cache `name`: its URL (and the server, which stops when dropped).
struct Served {
    url: String,
    _server: Option<common::http::PythonServer>,
}

fn upstream_url(rig: &Rig, name: &str) -> Served {
    upstream_dir_url(&rig.dir(name))
}

/// Whether this narscope reads http:// caches (the gate's tests then use them).
fn http_caches() -> bool {
    true
}

#[test]
fn the_verdicts_over_http_are_those_over_file() {
    if skip_nix() {
        return;
    }
    let rig = Rig::new();
    let (sk, pk) = rig.key("gate-3");
    let (other_sk, _) = rig.key("gate-3-other");
    let a = rig.chain("httpa", 3);
    let b = rig.chain("httpb", 2);
    rig.push("cache", &a[2], &sk);
    rig.push("cache", &b[1], &other_sk);
    remove_narinfo(&rig.dir("cache"), &a[1]);
    let served = common::http::PythonServer::serve(&rig.dir("cache"));
    let verdicts = |url: &str| -> (i32, Vec<(String, String, String, Value)>) {
        let out = rig.verify(&[
            "verify",
            url,
            "-r",
            &a[2],
            &b[1],
            "--trusted-key",
            &pk,
            "--json",
        ]);
        let doc = json_of(&out);
        let mut v: Vec<_> = doc["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["storePath"].as_str().unwrap().to_string(),
                    p["status"].as_str().unwrap().to_string(),
                    p["where"].as_str().unwrap().to_string(),
                    p["chain"].clone(),
                )
            })
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        (out.status.code().unwrap(), v)
    };
    let file = verdicts(&rig.url("cache"));
    let http = verdicts(&served.url);
    assert_eq!(file, http);
    assert_eq!(file.0, 4 | 2, "a missing path and untrusted ones: {file:?}");
    // a[0] is reached through the local store's references of the missing a[1].
    assert_eq!(file.1.len(), 5, "a[2], a[1], a[0], b[1], b[0]: {file:?}");
    let a0 = file.1.iter().find(|v| v.0 == a[0]).unwrap();
    assert_eq!((a0.1.as_str(), a0.2.as_str()), ("trusted", "cache"));
    assert_eq!(a0.3, serde_json::json!([a[2], a[1], a[0]]));
}

/// The store path whose name is `name` among the narinfos of the cache in `dir`.
fn store_path_named(dir: &Path, name: &str) -> String {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if let Some(p) = text
            .lines()
            .find_map(|l| l.strip_prefix("StorePath: "))
            .filter(|p| p.ends_with(&format!("-{name}")))
        {
            return p.to_string();
        }
    }
    panic!("no {name} in {}", dir.display());
}

/// A tmux session running one command line on a 120×40 screen; killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen passes `ok`; panics with the screen after 30 s.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let t = std::time::Instant::now();
        loop {
            let s = self.run(&["capture-pane", "-p", "-t", "gate"]);
            if ok(&s) {
                return s;
            }
            if t.elapsed() > std::time::Duration::from_secs(30) {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn the_dashboard_on_a_root_shows_its_closure_without_listing_the_cache() {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        panic!("tmux is needed for this test (apt-get install tmux)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let demo = narscope::demo::write_demo_cache(&tmp.path().join("demo")).unwrap();
    let python = store_path_named(&demo.dir, "python3-3.12.8");
    let served = upstream_dir_url(&demo.dir);
    let pk = demo.public_key.to_string();
    let ns = narscope(
        &[&served.url, "--root", &python, "--trusted-key", &pk],
        &tmp.path().join("state"),
    );
    let exit_file = tmp.path().join("exit");
    let cmd = format!(
        "{}; echo $? > {}",
        common::cmd::shell_line(&ns),
        exit_file.display()
    );
    let tmux = Tmux {
        socket: format!("narscope-gate-{}", common::random_hex(4)),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "gate",
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        &cmd,
    ]);
    // python's closure: itself, glibc, bash, openssl, zlib; nothing else of the demo cache.
    let s = tmux.wait("the closure", |s| s.contains("scanned 5 narinfos"));
    for name in [
        "python3-3.12.8",
        "glibc-2.40-66",
        "bash-5.2p37",
        "openssl-3.3.2",
        "zlib-1.3.1",
    ] {
        assert!(s.contains(name), "{name} missing:\n{s}");
    }
    for name in ["hello-2.12.1", "ripgrep-14.1.1", "curl-8.11.0"] {
        assert!(!s.contains(name), "{name} is not in the closure:\n{s}");
    }
    tmux.run(&["send-keys", "-t", "gate", "q"]);
    let t = std::time::Instant::now();
    while !exit_file.exists() && t.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let code = std::fs::read_to_string(&exit_file).unwrap_or_default();
    assert_eq!(code.trim(), "0", "the dashboard quits cleanly");
}

/// `dir` served over HTTP when narscope reads HTTP caches, else its file:// URL.
fn upstream_dir_url(dir: &Path) -> Served {
    if http_caches() {
        let s = common::http::PythonServer::serve(dir);
        Served {
            url: s.url.clone(),
            _server: Some(s),
        }
    } else {
        Served {
            url: format!("file://{}", dir.display()),
            _server: None,
        }
    }
}
