//! `narscope copy` between real caches: a file:// cache made and signed by real Nix 2.8,
//! Garage buckets (server-side copies between two of them) and file:// again. Narinfos and
//! NARs arrive byte-identical and Nix 2.8 substitutes from the destination with the original
//! key; an interrupted copy leaves the destination consistent (checked on storage directly)
//! and converges when run again; untrusted paths are refused before any byte moves.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::Garage;
use common::cmd::{ok, run};
use common::fs::list_files;
use common::http::PythonServer;
use common::invariants::{Source, violations_now};
use common::nix::skip_nix;
use common::scratch::{Scratch as Env, keygen, narscope, nix};

/// This module's scratch root (narscope's and Nix's settings live under it), once per run.
fn env() -> Option<&'static Env> {
    if skip_nix() {
        return None;
    }
    static E: OnceLock<Env> = OnceLock::new();
    Some(E.get_or_init(Env::new))
}

/// Two paths made by real Nix (a content-addressed leaf with a script, an input-addressed top
/// that runs it), put by `nix copy` into a fresh file:// cache signed with `sk`. Returns the
/// top path, the leaf and the cache directory.
fn nix_cache(e: &Env, tag: &str, sk: &Path, compression: &str) -> (String, String, PathBuf) {
    let src = e.root.path().join(format!("src-{tag}"));
    std::fs::create_dir_all(src.join("bin")).unwrap();
    let script = src.join("bin/hello");
    std::fs::write(&script, format!("#!/bin/sh\necho hello {tag}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let leaf = common::nix::nix_add(e.root.path(), &src);
    let expr = format!(
        "let a = builtins.storePath \"{leaf}\"; in derivation {{ name = \"top-{tag}\"; \
         system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \
         \"/bin/mkdir -p $out/bin; echo '#!/bin/sh' > $out/bin/run; echo 'exec ${{a}}/bin/hello' >> $out/bin/run; /bin/chmod +x $out/bin/run\" ]; }}"
    );
    let top = common::nix::nix_build(e.root.path(), &expr);
    let dir = e.root.path().join(format!("cache-{tag}"));
    let to = format!(
        "file://{}?compression={compression}&write-nar-listing=true&secret-key={}",
        dir.display(),
        sk.display()
    );
    let mut cp = nix("nix", e);
    cp.args(["copy", "--to", &to, &top]);
    ok(cp);
    (top, leaf, dir)
}

/// The narinfos, `.ls` listings and NARs of a file:// cache, by key.
fn objects(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    list_files(dir)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".narinfo") || k.ends_with(".ls") || k.starts_with("nar/"))
        .map(|(k, p)| (k, std::fs::read(p).unwrap()))
        .collect()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `narscope copy … --json` with Garage's credentials; asserts success; returns the summary.
fn copy_ok(e: &Env, g: &Garage, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["copy"];
    all.extend_from_slice(args);
    all.push("--json");
    let mut c = narscope(e, &all);
    c.envs(g.env());
    let out = run(c);
    let doc = json_of(&out);
    assert_eq!(doc["exitCode"], 0, "{doc}");
    doc["summary"].clone()
}

fn delete_local(e: &Env, paths: &[&str]) {
    for p in paths {
        let mut q = nix("nix-store", e);
        q.args(["-q", "--referrers-closure", p]);
        let all = ok(q);
        let mut d = nix("nix-store", e);
        d.arg("--delete").args(all.lines());
        let _ = run(d);
    }
    for p in paths {
        assert!(!Path::new(p).exists(), "{p} still in the store");
    }
}

fn s3_source(g: &Garage, bucket: &str) -> Source {
    Source::S3 {
        endpoint: g.endpoint.clone(),
        bucket: bucket.to_string(),
        prefix: String::new(),
        access_key: g.access_key.clone(),
        secret_key: g.secret_key.clone(),
    }
}

#[test]
fn file_to_garage_to_garage_to_file_is_verbatim_and_nix_substitutes() {
    let Some(e) = env() else { return };
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let tag = format!("cp{}", common::random_hex(4));
    let (sk, pk) = keygen(e, "copy-1");
    let (top, leaf, a) = nix_cache(e, &tag, &sk, "xz");
    let a_url = format!("file://{}", a.display());
    let (b1, b2) = (g.fresh_bucket(), g.fresh_bucket());
    let (u1, u2) = (g.url(&b1, ""), g.url(&b2, ""));
    let c = e.root.path().join(format!("dest-{tag}"));
    let c_url = format!("file://{}", c.display());

    // A build log for the top path, as `nix store copy-log --to` leaves it in a cache.
    let top_info = std::fs::read_to_string(a.join(format!(
        "{}.narinfo",
        &Path::new(&top).file_name().unwrap().to_string_lossy()[..32]
    )))
    .unwrap();
    let deriver = top_info
        .lines()
        .find_map(|l| l.strip_prefix("Deriver: "))
        .expect("the top path has a deriver")
        .to_string();
    let log_key = format!("log/{deriver}");
    std::fs::create_dir_all(a.join("log")).unwrap();
    std::fs::write(a.join(&log_key), format!("building top-{tag}\n")).unwrap();

    let s = copy_ok(e, g, &[&a_url, &u1, &top, "--trusted-key", &pk]);
    assert_eq!(
        (s["copied"].as_u64(), s["present"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
    assert_eq!(
        (s["listings"].as_u64(), s["logs"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    // Between two buckets of one Garage: on the server.
    let s = copy_ok(e, g, &[&u1, &u2, &top, "--trusted-key", &pk]);
    assert_eq!(s["copied"], 2, "{s}");
    assert_eq!(
        s["serverSide"], 2,
        "the NARs are copied with CopyObject: {s}"
    );
    assert_eq!(s["streamed"], 0, "{s}");
    let s = copy_ok(e, g, &[&u2, &c_url, &top, "--trusted-key", &pk]);
    assert_eq!(s["copied"], 2, "{s}");
    assert_eq!(s["streamed"], 2, "{s}");
    // Again: nothing to do, each path checked.
    let s = copy_ok(e, g, &[&u2, &c_url, &top, "--trusted-key", &pk]);
    assert_eq!(
        (s["copied"].as_u64(), s["present"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );

    // Byte for byte: narinfos, listings and NARs.
    let (from, to) = (objects(&a), objects(&c));
    assert_eq!(
        from.len(),
        6,
        "2 narinfos, 2 listings, 2 NARs: {:?}",
        from.keys()
    );
    assert_eq!(from, to, "the destination holds exactly the source's bytes");
    assert_eq!(
        std::fs::read(c.join(&log_key)).unwrap(),
        std::fs::read(a.join(&log_key)).unwrap(),
        "the build log came along"
    );
    for bucket in [&b1, &b2] {
        assert!(violations_now(&s3_source(g, bucket), std::slice::from_ref(&pk)).is_empty());
    }

    // Nix 2.8 substitutes from the last destination, over HTTP, with the original key only.
    delete_local(e, &[&top, &leaf]);
    let server = PythonServer::serve(&c);
    let mut r = nix("nix-store", e);
    r.args([
        "-r",
        &top,
        "--option",
        "substituters",
        &server.url,
        "--option",
        "trusted-public-keys",
        &pk,
    ]);
    ok(r);
    assert_eq!(
        ok(Command::new(format!("{top}/bin/run"))),
        format!("hello {tag}")
    );
}

#[test]
fn untrusted_paths_are_refused_before_any_byte_moves_and_dry_run_writes_nothing() {
    let Some(e) = env() else { return };
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let tag = format!("un{}", common::random_hex(4));
    let (sk, pk) = keygen(e, "copy-2");
    let (top, _, a) = nix_cache(e, &tag, &sk, "zstd");
    let a_url = format!("file://{}", a.display());
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    let src = s3_source(g, &bucket);
    let empty = common::invariants::Snapshot::take(&src).keys;
    assert!(empty.is_empty(), "{empty:?}");

    // Not trusted (another key only): refused, listed, exit 2, nothing written.
    let mut c = narscope(
        e,
        &[
            "copy",
            &a_url,
            &url,
            &top,
            "--trusted-key",
            "other-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ],
    );
    c.envs(g.env());
    let out = run(c);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("refused {top}")), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing was written"),
        "{out:?}"
    );
    assert!(common::invariants::Snapshot::take(&src).keys.is_empty());

    // The same as JSON.
    let mut c = narscope(e, &["copy", &a_url, &url, &top, "--json"]);
    c.envs(g.env());
    let doc = json_of(&run(c));
    assert_eq!(doc["state"], "refused", "{doc}");
    // The leaf was added with `nix-store --add`: content-addressed, so trusted as it is.
    assert_eq!(doc["refused"].as_array().map(Vec::len), Some(1), "{doc}");
    assert_eq!(doc["refused"][0]["storePath"], top.as_str(), "{doc}");

    // A dry run with the key: the plan, and still nothing written.
    let mut c = narscope(
        e,
        &[
            "copy",
            &a_url,
            &url,
            &top,
            "--trusted-key",
            &pk,
            "--dry-run",
        ],
    );
    c.envs(g.env());
    let out = ok(c);
    assert!(out.contains(&format!("copy   {top}")), "{out}");
    assert!(out.contains("2 to copy, 0 already there"), "{out}");
    assert!(common::invariants::Snapshot::take(&src).keys.is_empty());

    // --no-check-sigs copies them anyway.
    let s = copy_ok(e, g, &[&a_url, &url, &top, "--no-check-sigs"]);
    assert_eq!(s["copied"], 2, "{s}");
    assert!(violations_now(&src, &[pk]).is_empty());
}

#[test]
fn key_file_adds_one_signature_and_recompress_and_verify_work() {
    let Some(e) = env() else { return };
    let tag = format!("ks{}", common::random_hex(4));
    let (sk1, pk1) = keygen(e, "copy-3a");
    let (sk2, pk2) = keygen(e, "copy-3b");
    let (top, _, a) = nix_cache(e, &tag, &sk1, "xz");
    let a_url = format!("file://{}", a.display());
    let d1 = e.root.path().join(format!("signed-{tag}"));
    let d1_url = format!("file://{}", d1.display());
    let c = narscope(
        e,
        &[
            "copy",
            &a_url,
            &d1_url,
            &top,
            "--trusted-key",
            &pk1,
            "--key-file",
            sk2.to_str().unwrap(),
            "--verify",
            "--json",
        ],
    );
    let doc = json_of(&run(c));
    let s = &doc["summary"];
    assert_eq!(doc["exitCode"], 0, "{doc}");
    assert_eq!(
        (s["signaturesAdded"].as_u64(), s["verified"].as_u64()),
        (Some(2), Some(2)),
        "{s}"
    );
    let (from, to) = (objects(&a), objects(&d1));
    for (k, bytes) in &from {
        let got = &to[k];
        if !k.ends_with(".narinfo") {
            assert_eq!(bytes, got, "{k}");
            continue;
        }
        let (old, new) = (String::from_utf8_lossy(bytes), String::from_utf8_lossy(got));
        let added: Vec<&str> = new
            .lines()
            .filter(|l| !old.lines().any(|o| o == *l))
            .collect();
        assert_eq!(added.len(), 1, "exactly one new line in {k}: {new}");
        assert!(
            added[0].starts_with("Sig: copy-3b-1:") || added[0].starts_with("Sig: copy-3b"),
            "{new}"
        );
        assert!(
            old.lines().all(|l| new.lines().any(|n| n == l)),
            "every old line kept: {new}"
        );
    }
    // Between two directories the NARs are hard links, not copies.
    use std::os::unix::fs::MetadataExt;
    for k in from.keys().filter(|k| k.starts_with("nar/")) {
        let (m1, m2) = (
            std::fs::metadata(a.join(k)).unwrap(),
            std::fs::metadata(d1.join(k)).unwrap(),
        );
        assert_eq!(
            (m1.dev(), m1.ino()),
            (m2.dev(), m2.ino()),
            "{k} is a hard link"
        );
    }
    assert_eq!(s["serverSide"], 2, "{s}");
    // Nix accepts the copy with only the new key.
    let mut v = nix("nix", e);
    v.args([
        "store",
        "verify",
        "--store",
        &d1_url,
        "--all",
        "--trusted-public-keys",
        &pk2,
    ]);
    ok(v);

    // Recompressed (zstd): refused unsigned, accepted signed; Nix checks it with the new key.
    let d2 = e.root.path().join(format!("zstd-{tag}"));
    let d2_url = format!("file://{}", d2.display());
    let out = run(narscope(
        e,
        &[
            "copy",
            &a_url,
            &d2_url,
            &top,
            "--trusted-key",
            &pk1,
            "--recompress",
            "zstd",
        ],
    ));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!d2.join("nar").exists());
    let c = narscope(
        e,
        &[
            "copy",
            &a_url,
            &d2_url,
            &top,
            "--trusted-key",
            &pk1,
            "--recompress",
            "zstd",
            "--key-file",
            sk2.to_str().unwrap(),
            "--verify",
            "--json",
        ],
    );
    let doc = json_of(&run(c));
    assert_eq!(doc["exitCode"], 0, "{doc}");
    assert_eq!(doc["summary"]["recompressed"], 2, "{doc}");
    assert_eq!(doc["summary"]["verified"], 2, "{doc}");
    let nars: Vec<String> = objects(&d2)
        .into_keys()
        .filter(|k| k.starts_with("nar/"))
        .collect();
    assert_eq!(nars.len(), 2);
    assert!(nars.iter().all(|k| k.ends_with(".nar.zst")), "{nars:?}");
    let mut v = nix("nix", e);
    v.args([
        "store",
        "verify",
        "--store",
        &d2_url,
        "--all",
        "--trusted-public-keys",
        &pk2,
    ]);
    ok(v);
}

#[test]
fn an_interrupted_copy_stays_consistent_and_converges() {
    let Some(e) = env() else { return };
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let tag = format!("ic{}", common::random_hex(4));
    let (sk, pk) = keygen(e, "copy-4");
    // A chain of 40 paths (each references the one before): copied one after the other.
    let chain = common::nix::nix_chain(e.root.path(), &tag, 40, 512);
    let top = chain.last().unwrap().clone();
    let a = e.root.path().join(format!("chain-{tag}"));
    let to = format!(
        "file://{}?compression=none&secret-key={}",
        a.display(),
        sk.display()
    );
    let mut cp = nix("nix", e);
    cp.args(["copy", "--to", &to, &top]);
    ok(cp);
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    copy_ok(
        e,
        g,
        &[
            &format!("file://{}", a.display()),
            &url,
            "--all",
            "--trusted-key",
            &pk,
        ],
    );
    // Garage → file://, interrupted once a few narinfos are there.
    let d = e.root.path().join(format!("int-{tag}"));
    let d_url = format!("file://{}", d.display());
    let mut c = narscope(
        e,
        &[
            "copy",
            &url,
            &d_url,
            &top,
            "--trusted-key",
            &pk,
            "--jobs",
            "1",
        ],
    );
    c.envs(g.env());
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let count = |d: &Path| {
        std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(Result::ok)
                    .filter(|f| f.file_name().to_string_lossy().ends_with(".narinfo"))
                    .count()
            })
            .unwrap_or(0)
    };
    let start = Instant::now();
    while count(&d) < 3 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let got = count(&d);
    assert!(
        (3..40).contains(&got),
        "interrupted mid-copy: {got} narinfos"
    );
    let dir = Source::Dir(d.clone());
    let v = violations_now(&dir, std::slice::from_ref(&pk));
    assert!(v.is_empty(), "after the interruption: {v:?}");
    // Run again: converges to the whole closure, byte for byte.
    let s = copy_ok(e, g, &[&url, &d_url, &top, "--trusted-key", &pk]);
    assert_eq!(s["present"].as_u64(), Some(got as u64), "{s}");
    assert_eq!(count(&d), 40);
    let v = violations_now(&dir, &[pk]);
    assert!(v.is_empty(), "after the re-run: {v:?}");
    let (from, to) = (objects(&a), objects(&d));
    assert_eq!(from, to);
}

#[test]
fn copy_from_an_http_cache_by_pin_is_verbatim() {
    let Some(e) = env() else { return };
    let tag = format!("ht{}", common::random_hex(4));
    let (sk, pk) = keygen(e, "copy-5");
    let (top, _, a) = nix_cache(e, &tag, &sk, "zstd");
    // A pin in the source, naming the top path (read by its key: HTTP cannot list).
    std::fs::create_dir_all(a.join("narscope/roots")).unwrap();
    std::fs::write(a.join("narscope/roots/release"), format!("{top}\n")).unwrap();
    let server = PythonServer::serve(&a);
    let d = e.root.path().join(format!("from-http-{tag}"));
    let d_url = format!("file://{}", d.display());
    let out = run(narscope(
        e,
        &[
            "copy",
            &server.url,
            &d_url,
            "--pin",
            "release",
            "--trusted-key",
            &pk,
            "--json",
        ],
    ));
    let doc = json_of(&out);
    assert_eq!(doc["exitCode"], 0, "{doc}");
    assert_eq!(doc["summary"]["copied"], 2, "{doc}");
    assert_eq!(doc["summary"]["streamed"], 2, "{doc}");
    assert_eq!(objects(&a), objects(&d), "byte for byte over HTTP");
    // Writing to an HTTP cache, or listing it for --all, is refused before any request.
    for args in [
        vec!["copy", d_url.as_str(), server.url.as_str(), top.as_str()],
        vec!["copy", server.url.as_str(), d_url.as_str(), "--all"],
    ] {
        let out = run(narscope(e, &args));
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("HTTP cache"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_copy_object_gets_the_nars_streamed_and_says_so() {
    let Some(e) = env() else { return };
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let tag = format!("nc{}", common::random_hex(4));
    let (sk, pk) = keygen(e, "copy-6");
    let (top, _, a) = nix_cache(e, &tag, &sk, "xz");
    let (b1, b2) = (g.fresh_bucket(), g.fresh_bucket());
    copy_ok(
        e,
        g,
        &[
            &format!("file://{}", a.display()),
            &g.url(&b1, ""),
            &top,
            "--trusted-key",
            &pk,
        ],
    );
    // Both buckets through one proxy (one endpoint, one set of credentials), which answers
    // the first write of a NAR, the CopyObject, as a server without it does: 501.
    let proxy = common::faults::FaultProxy::start(&g.endpoint).await;
    let via = |b: &str| {
        format!(
            "s3://{b}?endpoint={}&region=us-east-1&addressing-style=path",
            proxy.endpoint()
        )
    };
    proxy.set_rules(vec![
        common::faults::Rule::new(common::faults::Fault::Status(501))
            .method("PUT")
            .path("*/nar/*")
            .first(),
    ]);
    let (u1, u2) = (via(&b1), via(&b2));
    let pk2 = pk.clone();
    let top2 = top.clone();
    let s = tokio::task::spawn_blocking(move || {
        copy_ok(e, g, &[&u1, &u2, &top2, "--trusted-key", &pk2])
    })
    .await
    .unwrap();
    assert_eq!(proxy.injected().total(), 1, "the CopyObject was tried once");
    assert_eq!(
        (s["serverSide"].as_u64(), s["streamed"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );
    let note = s["serverSideNote"].as_str().unwrap_or_default();
    assert!(
        note.contains("refused a server-side copy") && note.contains("streamed"),
        "{s}"
    );
    // The checker runs its own runtime: on a thread of its own.
    let v = std::thread::spawn(move || violations_now(&s3_source(g, &b2), &[pk]))
        .join()
        .unwrap();
    assert!(v.is_empty(), "{v:?}");
}
