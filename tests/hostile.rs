//! Hostile and unusual caches, end to end through the `narscope` binary on file:// caches:
//! decompression bombs (zstd and xz) behind correctly signed narinfos that claim a tiny
//! NarSize; a NAR object larger than its FileSize; data that is not a NAR; existing pull
//! targets (checked by NarHash, never overwritten); a garbage `nix-cache-info`; a cache for
//! the store directory `/gnu/store` made by real Nix 2.8 (skipped with NARSCOPE_SKIP_NIX=1);
//! and the litter of killed conditional-write probes.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use narscope::compression::{self, Compression};
use narscope::nix::{Hash, NarInfo, SecretKey, StorePath};
use serde_json::Value;

use common::cmd::{ok, run};
use common::fs::copy_dir;
use common::nix::{nix, skip_nix};

/// narscope isolated under one root for this module ([`common::cmd::narscope`]).
fn narscope_cmd(args: &[&str]) -> Command {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| tempfile::tempdir().unwrap());
    common::cmd::narscope(args, root.path())
}

fn narscope(args: &[&str]) -> Output {
    run(narscope_cmd(args))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The key the hand-made caches are signed with, and its public half as Nix writes it.
fn key() -> (SecretKey, String) {
    let sk = SecretKey::from_seed("hostile-1", &[9; 32]).unwrap();
    let pk = sk.public_key().to_string();
    (sk, pk)
}

/// Publish `file` at `url` in the cache at `root` with a narinfo for `base` that says
/// NarHash and NarSize are `(nar_hash, nar_size)` (whatever the file really holds) and the file's true FileHash and
/// FileSize, signed by `sk`.
fn publish(
    root: &Path,
    base: &str,
    url: &str,
    compression: &str,
    (nar_hash, nar_size): ([u8; 32], u64),
    file: &[u8],
    sk: &SecretKey,
) -> NarInfo {
    std::fs::create_dir_all(root.join("nar")).unwrap();
    if !root.join("nix-cache-info").exists() {
        std::fs::write(root.join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    }
    std::fs::write(root.join(url), file).unwrap();
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(file).into();
    let mut info = NarInfo::new(
        StorePath::from_base_name(base).unwrap(),
        url,
        compression,
        Hash::sha256(nar_hash),
        nar_size,
        vec![],
    )
    .with_file(Hash::sha256(digest), file.len() as u64);
    info.sign(sk);
    std::fs::write(root.join(info.narinfo_key()), info.to_text()).unwrap();
    info
}

/// A NAR string token: length, bytes, zero padding to 8.
fn token(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
    out.extend(std::iter::repeat_n(0u8, (8 - s.len() % 8) % 8));
}

/// A NAR of one regular file of `size` zero bytes, compressed with `c` as concatenated
/// streams (header, then one stream of 16 MiB of zeros repeated, then the tail), the way a
/// bomb can be built in milliseconds: the object is small, what it decodes to is not.
fn bomb(c: Compression, size: u64) -> Vec<u8> {
    const CHUNK: u64 = 16 << 20;
    assert_eq!(size % CHUNK, 0);
    let pack = |data: &[u8], zeros: u64| {
        let mut e = compression::encoder(c, Some(1), Vec::new()).unwrap();
        e.write_all(data).unwrap();
        std::io::copy(&mut std::io::repeat(0).take(zeros), &mut e).unwrap();
        e.finish().unwrap()
    };
    use std::io::Read;
    let mut head = Vec::new();
    token(&mut head, b"nix-archive-1");
    for t in [&b"("[..], b"type", b"regular", b"contents"] {
        token(&mut head, t);
    }
    head.extend_from_slice(&size.to_le_bytes());
    let mut tail = Vec::new();
    token(&mut tail, b")");
    let zeros = pack(&[], CHUNK);
    let mut out = pack(&head, 0);
    for _ in 0..size / CHUNK {
        out.extend_from_slice(&zeros);
    }
    out.extend(pack(&tail, 0));
    out
}

/// Bytes of regular files under `dir` (all depths, hidden staging directories included).
fn bytes_under(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.path().symlink_metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// Run `cmd`, sampling the bytes under `dir` every millisecond; kill it and fail after
/// `limit`. Returns its output and the most bytes seen under `dir`.
fn run_watching(mut cmd: Command, dir: &Path, limit: Duration) -> (Output, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn narscope");
    let start = Instant::now();
    let mut peak = 0;
    loop {
        peak = peak.max(bytes_under(dir));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?} (peak {peak} bytes under {}): {}",
                dir.display(),
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let out = child.wait_with_output().unwrap();
    (out, peak.max(bytes_under(dir)))
}

#[test]
fn pull_refuses_bombs_and_never_writes_more_than_nar_size() {
    let tmp = tempfile::tempdir().unwrap();
    let (sk, pk) = key();
    let cache = tmp.path().join("cache");
    let url = format!("file://{}", cache.display());
    for (c, base) in [
        (Compression::Zstd, "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-zbomb"),
        (Compression::Xz, "91mlnrh638d0910fq10ass8chinwpb58-xbomb"),
    ] {
        // 1 GiB of zeros in a few tens of KB, behind a signed narinfo claiming 216 bytes.
        let file = bomb(c, 1 << 30);
        assert!(file.len() < 300_000, "{c}: {}", file.len());
        let nar_url = format!("nar/{base}.nar{}", c.extension());
        publish(&cache, base, &nar_url, c.name(), ([1; 32], 216), &file, &sk);
        let to = tmp.path().join(format!("out-{c}"));
        let cmd = narscope_cmd(&[
            "pull",
            &url,
            base,
            "--to",
            to.to_str().unwrap(),
            "--no-config",
            "--trusted-key",
            &pk,
        ]);
        let (out, peak) = run_watching(cmd, &to, Duration::from_secs(60));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{c}: {err}");
        assert!(
            err.contains(&format!(
                "{nar_url} decompresses to more than the 216 bytes its narinfo's NarSize says: refusing (decompression bomb?)"
            )),
            "{c}: {err}"
        );
        assert!(
            !err.contains("not a valid"),
            "{c}: a bomb is not reported as invalid data: {err}"
        );
        assert!(
            peak <= 216,
            "{c}: {peak} bytes were written under {} for a NarSize of 216",
            to.display()
        );
        let left: Vec<_> = std::fs::read_dir(&to).unwrap().flatten().collect();
        assert!(left.is_empty(), "{c}: left behind: {left:?}");
    }
    // Real Nix refuses the zstd one too (a hash mismatch, once it has unpacked a GiB), into
    // a scratch store of its own.
    if let Some(nix_tmp) = nix_root() {
        let mut n = nix("nix-store", nix_tmp.path());
        n.args([
            "--store",
            &format!("local?root={}/chroot", nix_tmp.path().display()),
            "--option",
            "substituters",
            &url,
            "--option",
            "trusted-public-keys",
            &pk,
            "--realise",
            "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-zbomb",
        ]);
        let out = n.output().unwrap();
        assert!(!out.status.success(), "Nix accepted the bomb");
        let err = text(&out.stderr);
        assert!(err.contains("hash mismatch"), "{err}");
    }
}

/// `verify --contents --json` on `url`, killed (and failed) after `limit`.
fn verify_contents(url: &str, pk: &str, limit: Duration) -> (Value, Duration) {
    let start = Instant::now();
    let scratch = tempfile::tempdir().unwrap();
    let cmd = narscope_cmd(&[
        "verify",
        url,
        "--contents",
        "--json",
        "--no-config",
        "--trusted-key",
        pk,
    ]);
    let (out, _) = run_watching(cmd, scratch.path(), limit);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    (doc, start.elapsed())
}

fn reports_by_path(doc: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = doc["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["storePath"].as_str().unwrap_or("?").to_string(),
                p["status"].as_str().unwrap().to_string(),
                p["reasons"][0].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn verify_contents_refuses_bombs_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (sk, pk) = key();
    let cache = tmp.path().join("cache");
    // 16 GiB each: hashing that much alone would take far longer than the time allowed.
    for (c, base) in [
        (Compression::Zstd, "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-zbomb"),
        (Compression::Xz, "91mlnrh638d0910fq10ass8chinwpb58-xbomb"),
    ] {
        let file = bomb(c, 16 << 30);
        let nar_url = format!("nar/{base}.nar{}", c.extension());
        publish(&cache, base, &nar_url, c.name(), ([1; 32], 216), &file, &sk);
    }
    let (doc, took) = verify_contents(
        &format!("file://{}", cache.display()),
        &pk,
        Duration::from_secs(5),
    );
    let got = reports_by_path(&doc);
    assert_eq!(got.len(), 2, "{got:?}");
    for (path, status, reason) in &got {
        assert_eq!(status, "corrupt", "{path}: {reason}");
        assert!(
            reason.contains("decompresses to more than the 216 bytes its narinfo's NarSize says: refusing (decompression bomb?)"),
            "{path}: {reason}"
        );
    }
    assert_eq!(doc["exitCode"], 1);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn oversized_objects_and_non_nars_are_named_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let (sk, pk) = key();
    let cache = tmp.path().join("cache");
    // A valid uncompressed NAR, but FileSize says less than the object holds.
    let dir = tmp.path().join("tree");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), b"hello\n").unwrap();
    let mut nar = Vec::new();
    let s = narscope::nar::dump_path(&dir, &mut nar).unwrap();
    let info = publish(
        &cache,
        "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-short",
        "nar/short.nar",
        "none",
        (s.nar_hash, s.nar_size),
        &nar,
        &sk,
    );
    let mut lying = info.clone();
    lying.file_size = Some(nar.len() as u64 - 8);
    lying.sigs.clear();
    lying.sign(&sk);
    std::fs::write(cache.join(lying.narinfo_key()), lying.to_text()).unwrap();
    // Not a NAR at all, uncompressed.
    publish(
        &cache,
        "91mlnrh638d0910fq10ass8chinwpb58-junk",
        "nar/junk.nar",
        "none",
        ([2; 32], 64),
        b"this is not a Nix archive, just text that is long enough to read",
        &sk,
    );
    let (doc, _) = verify_contents(
        &format!("file://{}", cache.display()),
        &pk,
        Duration::from_secs(30),
    );
    let got = reports_by_path(&doc);
    assert_eq!(got.len(), 2, "{got:?}");
    let junk = &got[0];
    assert!(junk.0.ends_with("-junk"), "{got:?}");
    assert_eq!(junk.1, "corrupt");
    assert!(
        junk.2
            .contains("nar/junk.nar: not a valid uncompressed NAR: at byte 0: bad magic"),
        "{}",
        junk.2
    );
    assert!(!junk.2.contains("none NAR"), "{}", junk.2);
    let short = &got[1];
    assert_eq!(short.1, "corrupt");
    assert!(
        short.2.contains(&format!(
            "nar/short.nar is larger than the {} bytes its narinfo's FileSize says: refusing",
            nar.len() - 8
        )),
        "{}",
        short.2
    );
}

#[test]
fn pull_checks_an_existing_target_and_never_overwrites_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (sk, pk) = key();
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("bin/x"), b"#!/bin/sh\necho x\n").unwrap();
    let mut nar = Vec::new();
    let s = narscope::nar::dump_path(&src, &mut nar).unwrap();
    let base = "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-tree";
    publish(
        &cache,
        base,
        "nar/tree.nar",
        "none",
        (s.nar_hash, s.nar_size),
        &nar,
        &sk,
    );
    let url = format!("file://{}", cache.display());
    let to = tmp.path().join("out");
    let pull = |json: bool| {
        let mut args = vec![
            "pull",
            &url,
            base,
            "--to",
            to.to_str().unwrap(),
            "--no-config",
            "--trusted-key",
            &pk,
        ];
        if json {
            args.push("--json");
        }
        narscope(&args)
    };
    let out = pull(false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = pull(false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 already there (1 checked: NarHash matches)"),
        "{}",
        text(&out.stdout)
    );
    let out = pull(true);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &doc["summary"];
    assert_eq!(summary["existing"], 1, "{doc}");
    assert_eq!(summary["existingVerified"], 1, "{doc}");
    // Tampered with: refused, left alone.
    std::fs::write(to.join(base).join("bin/x"), b"#!/bin/sh\necho evil\n").unwrap();
    let out = pull(false);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("already exists but is not /nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-tree"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(to.join(base).join("bin/x")).unwrap(),
        b"#!/bin/sh\necho evil\n"
    );
}

#[test]
fn garbage_nix_cache_info_is_reported_never_as_a_store_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(
        cache.join("nix-cache-info"),
        "<html>\n<body>403 Forbidden</body>\n</html>\n",
    )
    .unwrap();
    let out = narscope(&["info", cache.to_str().unwrap(), "--no-config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(
        o.contains("BROKEN: line 1: '<html>' is not a 'Name: value' line; line 2: '<body>403 Forbidden</body>' is not a 'Name: value' line"),
        "{o}"
    );
    assert!(o.contains("no StoreDir line"), "{o}");
    assert!(!o.contains("StoreDir /nix/store"), "{o}");
    let out = narscope(&["info", cache.to_str().unwrap(), "--no-config", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["cacheInfo"]["storeDir"], Value::Null, "{doc}");
    assert_eq!(
        doc["cacheInfo"]["problems"].as_array().unwrap().len(),
        4,
        "{doc}"
    );
    // A sound one has no problems and says its StoreDir.
    std::fs::write(
        cache.join("nix-cache-info"),
        "StoreDir: /gnu/store\nPriority: 30\n",
    )
    .unwrap();
    let out = narscope(&["info", cache.to_str().unwrap(), "--no-config"]);
    let o = text(&out.stdout);
    assert!(o.contains("StoreDir /gnu/store, Priority 30"), "{o}");
    assert!(!o.contains("BROKEN"), "{o}");
}

#[tokio::test]
async fn probes_clean_up_what_killed_probes_left_and_gc_collects_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cache");
    std::fs::create_dir_all(root.join(".narscope-probe")).unwrap();
    std::fs::write(root.join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = format!(".narscope-probe/{}-0123456789abcdef", now - 7200);
    let fresh = format!(".narscope-probe/{}-fedcba9876543210", now - 60);
    for k in [&old, &fresh] {
        std::fs::write(root.join(k), "probe 1\n").unwrap();
    }
    // gc sees the old one as litter (the fresh one may belong to a probe still running).
    let out = narscope(&[
        "gc",
        root.to_str().unwrap(),
        "--dry-run",
        "--json",
        "--allow-no-roots",
        "--grace",
        "1h",
        "--no-config",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let other: Vec<(String, String)> = doc["plan"]["other"]
        .as_array()
        .or(doc["other"].as_array())
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_string(),
                o["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        other,
        vec![(old.clone(), "probe litter".to_string())],
        "{doc}"
    );
    // A probe removes the old one and its own scratch key, and leaves the fresh one.
    let store = narscope::storage::file::FileStore::new(&root);
    use narscope::storage::Store;
    store.probe_conditional_writes().await.unwrap();
    assert!(!root.join(&old).exists());
    assert!(root.join(&fresh).exists());
    let left: Vec<_> = std::fs::read_dir(root.join(".narscope-probe"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_probe_removes_old_probe_objects_too() {
    use narscope::storage::s3::{S3Options, S3Store};
    use narscope::storage::{CacheUrl, PutOptions, Store};
    let srv = common::s3s::start().await;
    let Ok(CacheUrl::S3(u)) = CacheUrl::parse(&srv.url("")) else {
        panic!("{}", srv.url(""))
    };
    let store = S3Store::connect(
        u,
        S3Options::default().with_static_credentials(&srv.access_key, &srv.secret_key),
    )
    .await
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = format!(".narscope-probe/{}-0123456789abcdef", now - 3 * 3600);
    let fresh = format!(".narscope-probe/{}-fedcba9876543210", now - 5);
    for k in [&old, &fresh] {
        store
            .put(k, "probe 1\n".into(), &PutOptions::default())
            .await
            .unwrap();
    }
    store.probe_conditional_writes().await.unwrap();
    let left: Vec<String> = narscope::storage::probe_objects(&store)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        left,
        vec![fresh],
        "the old one and the probe's own key are gone"
    );
}

/// A scratch directory for real Nix, or `None` with NARSCOPE_SKIP_NIX=1.
fn nix_root() -> Option<tempfile::TempDir> {
    (!skip_nix()).then(|| tempfile::tempdir().unwrap())
}

#[test]
fn a_gnu_store_cache_made_by_nix_is_judged_shown_and_pulled_under_its_store_dir() {
    let Some(tmp) = nix_root() else { return };
    let r = tmp.path();
    // Real Nix makes a /gnu/store cache: a chroot store whose store directory is /gnu/store,
    // copied to a file:// cache for that store directory, signed.
    let mut g = nix("nix-store", r);
    g.current_dir(r)
        .args(["--generate-binary-cache-key", "gnu-1", "sk", "pk"]);
    ok(g);
    let pk = std::fs::read_to_string(r.join("pk")).unwrap();
    let store = format!("local?root={}/chroot&store=/gnu/store", r.display());
    std::fs::write(r.join("hello.txt"), "hello\n").unwrap();
    let mut add = nix("nix-store", r);
    add.args(["--store", &store, "--add"])
        .arg(r.join("hello.txt"));
    let hello = ok(add);
    let mut ev = nix("nix", r);
    ev.args([
        "eval",
        "--store",
        &store,
        "--raw",
        "--expr",
        "let b = builtins.toFile \"b\" \"x\"; in builtins.toFile \"a\" \"uses ${b}\"",
    ]);
    let a = ok(ev);
    assert!(hello.starts_with("/gnu/store/") && a.starts_with("/gnu/store/"));
    let cache = r.join("cache");
    for (p, comp) in [(&hello, "zstd"), (&a, "xz")] {
        let mut cp = nix("nix", r);
        cp.args([
            "copy",
            "--from",
            &store,
            "--to",
            &format!(
                "file://{}?store=/gnu/store&secret-key={}&compression={comp}",
                cache.display(),
                r.join("sk").display()
            ),
            p,
        ]);
        ok(cp);
    }
    let url = format!("file://{}", cache.display());
    let base = |p: &str| p.rsplit('/').next().unwrap().to_string();
    let b = {
        let mut q = nix("nix", r);
        q.args([
            "path-info",
            "--store",
            &format!("{url}?store=/gnu/store"),
            "--json",
            &a,
        ]);
        let doc: Value = serde_json::from_str(&ok(q)).unwrap();
        doc[0]["references"][0].as_str().unwrap().to_string()
    };

    // verify: signatures over /gnu/store fingerprints, contents checked, CA recomputed.
    let (doc, _) = verify_contents(&url, pk.trim(), Duration::from_secs(60));
    let got = reports_by_path(&doc);
    let mut want: Vec<String> = vec![hello.clone(), a.clone(), b.clone()];
    want.sort();
    assert_eq!(
        got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
        want,
        "{doc}"
    );
    assert!(got.iter().all(|g| g.1 == "trusted"), "{got:?}");
    let out = narscope(&["verify", &url, "--json", "--no-config"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        reports_by_path(&doc)
            .iter()
            .all(|g| g.1 == "content-addressed"),
        "without keys, Nix's CA paths recompute under /gnu/store: {doc}"
    );
    // ls and info.
    let out = narscope(&["ls", &url, "--no-config", "--trusted-key", pk.trim()]);
    let o = text(&out.stdout);
    assert!(
        o.contains(&a) && o.contains(&hello) && !o.contains("/nix/store"),
        "{o}"
    );
    let out = narscope(&["info", &url, "--no-config"]);
    assert!(
        text(&out.stdout).contains("StoreDir /gnu/store"),
        "{}",
        text(&out.stdout)
    );
    // show: the path and fingerprint as Nix signed them.
    let out = narscope(&["show", &url, &a, "--no-config", "--trusted-key", pk.trim()]);
    let o = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        o.lines()
            .any(|l| l.starts_with("StorePath:") && l.ends_with(&format!(" {a}"))),
        "{o}"
    );
    assert!(o.contains(&format!("Fingerprint: 1;{a};")), "{o}");
    assert!(o.contains(&format!(";{b}")), "{o}");
    assert!(o.contains("Verdict: trusted"), "{o}");
    let nix_a = format!("/nix/store/{}", base(&a));
    let out = narscope(&["show", &url, &nix_a, "--no-config"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "'{nix_a}' is not in this cache's store directory /gnu/store"
        )),
        "{}",
        text(&out.stderr)
    );

    // pull --to: any store directory unpacks.
    let to = r.join("out");
    let out = narscope(&[
        "pull",
        &url,
        &a,
        "-r",
        "--to",
        to.to_str().unwrap(),
        "--no-config",
        "--trusted-key",
        pk.trim(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("pulled 2 path(s)"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(to.join(base(&a))).unwrap(),
        format!("uses {b}")
    );
    // pull --into-store: refused as Nix refuses the cache for a /nix/store store.
    let out = narscope(&[
        "pull",
        &url,
        &a,
        "--into-store",
        "--no-config",
        "--trusted-key",
        pk.trim(),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("binary cache is for Nix stores with prefix '/gnu/store', not '/nix/store'"),
        "{err}"
    );
    let mut q = nix("nix", r);
    q.args(["path-info", "--store", &url, &nix_a]);
    let nix_out = q.output().unwrap();
    assert!(!nix_out.status.success());
    assert!(
        text(&nix_out.stderr)
            .contains("is for Nix stores with prefix '/gnu/store', not '/nix/store'"),
        "Nix's own words: {}",
        text(&nix_out.stderr)
    );

    // A narinfo for a /nix/store path in this cache is an error, as Nix cannot read it.
    let stray = r.join("stray");
    copy_dir(&cache, &stray);
    let key = format!("{}.narinfo", &base(&hello)[..32]);
    let t = std::fs::read_to_string(stray.join(&key)).unwrap();
    std::fs::write(
        stray.join(&key),
        t.replace("StorePath: /gnu/store/", "StorePath: /nix/store/"),
    )
    .unwrap();
    let surl = format!("file://{}", stray.display());
    let out = narscope(&[
        "verify",
        &surl,
        "--json",
        "--no-config",
        "--trusted-key",
        pk.trim(),
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = reports_by_path(&doc);
    let bad = got.iter().find(|g| g.0.starts_with("/nix/store/")).unwrap();
    assert_eq!(bad.1, "error", "{got:?}");
    assert!(
        bad.2
            .contains("is not in the cache's store directory /gnu/store"),
        "{}",
        bad.2
    );
    let mut q = nix("nix", r);
    q.args([
        "path-info",
        "--store",
        &format!("{surl}?store=/gnu/store"),
        &hello,
    ]);
    assert!(!q.output().unwrap().status.success(), "Nix refuses it too");

    // sign: narscope's signatures over /gnu/store fingerprints satisfy Nix.
    let unsigned = r.join("unsigned");
    copy_dir(&cache, &unsigned);
    for e in std::fs::read_dir(&unsigned).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "narinfo") {
            let t = std::fs::read_to_string(&p).unwrap();
            let kept: String = t
                .lines()
                .filter(|l| !l.starts_with("Sig:"))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&p, kept).unwrap();
        }
    }
    let nsk = r.join("narscope.sec");
    let npk = r.join("narscope.pub");
    let out = narscope(&[
        "keygen",
        "narscope-gnu-1",
        "--secret-key-file",
        nsk.to_str().unwrap(),
        "--public-key-file",
        npk.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let uurl = format!("file://{}", unsigned.display());
    let out = narscope(&[
        "sign",
        &uurl,
        "--all",
        "--key-file",
        nsk.to_str().unwrap(),
        "--no-config",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut v = nix("nix", r);
    v.args([
        "store",
        "verify",
        "--store",
        &format!("{uurl}?store=/gnu/store"),
        "--trusted-public-keys",
        std::fs::read_to_string(&npk).unwrap().trim(),
        "-r",
        &a,
        &hello,
    ]);
    ok(v);

    // gc: roots in the cache's store directory are found; /nix/store ones are not.
    let roots = r.join("roots");
    std::fs::write(
        &roots,
        format!(
            "{a}
/nix/store/{}
",
            base(&hello)
        ),
    )
    .unwrap();
    let out = narscope(&[
        "gc",
        &url,
        "--dry-run",
        "--json",
        "--roots-file",
        roots.to_str().unwrap(),
        "--grace",
        "0s",
        "--no-config",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = if doc["plan"].is_object() {
        &doc["plan"]
    } else {
        &doc
    };
    let paths = |k: &str| -> Vec<String> {
        plan[k]
            .as_array()
            .unwrap_or_else(|| panic!("{k}: {doc}"))
            .iter()
            .map(|v| v["path"].as_str().or(v.as_str()).unwrap().to_string())
            .collect()
    };
    assert_eq!(paths("roots"), vec![a.clone()], "{doc}");
    assert_eq!(
        paths("missingRoots"),
        vec![format!("/nix/store/{}", base(&hello))],
        "{doc}"
    );
    assert_eq!(paths("garbage"), vec![hello.clone()], "{doc}");
}
