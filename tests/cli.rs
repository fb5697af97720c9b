//! The `narscope` binary end to end on file:// caches: the demo cache's verdicts, bad input
//! (malformed narinfos, keys, URLs), and the small commands. S3 and real-Nix behaviour are
//! covered by `storage_contract.rs` and `nix_interop.rs`.

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use crate::common;
use common::cmd::run;

use serde_json::Value;

/// narscope isolated under one root for this module ([`common::cmd::narscope`]), run.
fn narscope(args: &[&str]) -> Output {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| tempfile::tempdir().unwrap());
    run(common::cmd::narscope(args, root.path()))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Write the demo cache into a fresh temp dir; returns (dir guard, cache path, public key).
fn demo() -> (tempfile::TempDir, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = narscope(&["demo", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "demo failed: {}", stderr(&out));
    // The keys are kept beside the cache (and the demo says where), never in it.
    let keys = tmp.path().join("demo.keys");
    assert!(
        stdout(&out).contains(&format!(
            "its keys are kept beside it, not in it: {}",
            keys.join("demo-key.sec").display()
        )),
        "{}",
        stdout(&out)
    );
    let pk = std::fs::read_to_string(keys.join("demo-key.pub")).unwrap();
    (tmp, dir.to_str().unwrap().to_string(), pk)
}

/// Every file under `dir` (recursively).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_demo_cache_holds_no_secret_key_and_its_key_is_beside_it() {
    let (tmp, dir, pk) = demo();
    let files = files_under(Path::new(&dir));
    assert!(files.len() > 20, "{files:?}");
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        assert!(
            narscope::nix::SecretKey::parse(&text).is_err(),
            "{} in the demo cache parses as a secret key",
            f.display()
        );
    }
    // The secret key is beside the cache, private, and its public half is the trusted one.
    let sec = tmp.path().join("demo.keys/demo-key.sec");
    let sk = narscope::nix::SecretKey::parse(&std::fs::read_to_string(&sec).unwrap()).unwrap();
    assert_eq!(sk.public_key().to_string(), pk);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A second demo in the same place reuses the key (so trusting it once is enough).
    let again = narscope(&["demo", "--dir", &dir]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("demo.keys/demo-key.pub")).unwrap(),
        pk
    );
    // And its overview problems are only the demo's own: `info` finds no secret key.
    let info = narscope(&["info", &dir, "--json"]);
    let doc: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(doc["secretKeys"], serde_json::json!([]), "{doc}");
}

fn statuses(doc: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = doc["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["storePath"].as_str().unwrap_or("?");
            let name = name.rsplit('/').next().unwrap()[33..].to_string();
            (name, p["status"].as_str().unwrap().to_string())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn demo_cache_gets_every_verdict() {
    let (_tmp, cache, pk) = demo();
    let out = narscope(&[
        "verify",
        &cache,
        "--no-config",
        "--trusted-key",
        &pk,
        "--contents",
        "--json",
    ]);
    // corrupt (1) | not trusted (2)
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expect = [
        ("bash-5.2p37", "trusted"),
        ("curl-8.11.0", "corrupt"),
        ("glibc-2.40-66", "trusted"),
        ("greeting.txt", "content-addressed"),
        ("hello-2.12.1", "trusted"),
        ("jq-1.7.1", "corrupt"),
        ("nodejs-22.11.0", "invalid"),
        ("openssl-3.3.2", "unsigned"),
        ("python3-3.12.8", "trusted"),
        ("ripgrep-14.1.1", "untrusted"),
        ("sometool-1.0", "trusted"),
        ("zlib-1.3.1", "trusted"),
    ];
    let got = statuses(&doc);
    let want: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(doc["summary"]["trusted"], 6);
    assert_eq!(doc["exitCode"], 3);
    let jq = doc["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["storePath"].as_str().unwrap().ends_with("jq-1.7.1"))
        .unwrap();
    assert!(
        jq["reasons"][0]
            .as_str()
            .unwrap()
            .contains("NarHash is sha256:"),
        "{jq}"
    );

    // Without --contents the NAR problems are invisible and the exit code says only "untrusted".
    let out = narscope(&["verify", &cache, "--no-config", "--trusted-key", &pk]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains(
            "checked 12 paths: 8 trusted, 1 content-addressed, 1 untrusted, 1 invalid, 1 unsigned"
        ),
        "{text}"
    );

    // Trusting nothing: only the content-addressed path passes.
    let out = narscope(&["verify", &cache, "--no-config", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["content-addressed"], 1);
    assert_eq!(doc["summary"]["untrusted"], 10);

    // Explicit paths, by full path and by hash part; an argument that is no path is an error.
    let out = narscope(&["ls", &cache, "--no-config", "--json"]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let glibc = all["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["storePath"].as_str().unwrap().to_string())
        .find(|p| p.ends_with("glibc-2.40-66"))
        .unwrap();
    let hash = &glibc["/nix/store/".len().."/nix/store/".len() + 32];
    let out = narscope(&[
        "verify",
        &cache,
        &glibc,
        hash,
        "nonsense",
        "--no-config",
        "--trusted-key",
        &pk,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(4));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["trusted"], 2);
    assert_eq!(doc["summary"]["error"], 1);
}

#[test]
fn show_and_info_describe_the_demo() {
    let (_tmp, cache, pk) = demo();
    let out = narscope(&["ls", &cache, "--no-config", "--json"]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let python = all["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["storePath"].as_str().unwrap().to_string())
        .find(|p| p.ends_with("python3-3.12.8"))
        .unwrap();
    let out = narscope(&[
        "show",
        &cache,
        &python,
        "--no-config",
        "--trusted-key",
        &pk,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["storePath"], python.as_str());
    assert_eq!(s["status"], "trusted");
    assert_eq!(s["compression"], "zstd");
    assert_eq!(s["narExists"], true);
    assert_eq!(s["references"].as_array().unwrap().len(), 4);
    assert!(
        s["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with(&format!("1;{python};sha256:"))
    );
    let out = narscope(&["show", &cache, &python, "--no-config"]);
    let text = stdout(&out);
    assert!(text.contains("Verdict: untrusted"), "{text}");
    assert!(text.contains("narscope-demo-1"), "{text}");

    let out = narscope(&[
        "info",
        &cache,
        "--no-config",
        "--trusted-key",
        &pk,
        "--json",
    ]);
    let i: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(i["paths"], 12);
    assert_eq!(i["cacheInfo"]["priority"], 50);
    assert_eq!(i["compression"]["zstd"]["paths"], 4);
    assert_eq!(i["verdicts"]["trusted"], 8);
    assert!(i["storedBytes"].as_u64().unwrap() > i["fileBytes"].as_u64().unwrap() / 2);
}

#[test]
fn malformed_narinfos_are_named_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path();
    std::fs::write(c.join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    let good = "StorePath: /nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo\nURL: nar/x.nar\nCompression: none\nNarHash: sha256:1xngcmsdkdvaycaqjfzvq4gr3gib56p2l8illglnsqzhpss47pxz\nNarSize: 120\nReferences: \n";
    std::fs::write(c.join("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo"), good).unwrap();
    let cases = [
        (
            "0000000000000000000000000000000a",
            good.replace("NarSize: 120", "NarSize: 0"),
            "line 5",
        ),
        (
            "0000000000000000000000000000000b",
            good.replace('\n', "\r\n"),
            "line 1",
        ),
        (
            "0000000000000000000000000000000c",
            good.trim_end().to_string(),
            "line 6",
        ),
        (
            "0000000000000000000000000000000d",
            good.replace("URL: nar/x.nar\n", ""),
            "URL",
        ),
        (
            "0000000000000000000000000000000f",
            "\u{0}\u{1}garbage".to_string(),
            "",
        ),
    ];
    for (h, text, _) in &cases {
        std::fs::write(c.join(format!("{h}.narinfo")), text).unwrap();
    }
    let out = narscope(&["verify", c.to_str().unwrap(), "--no-config", "--json"]);
    // 4: errors; 0 for the CA path foo, which is untrusted without its CA line → 2.
    assert_eq!(out.status.code(), Some(4 | 2), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths = doc["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 6);
    for (h, _, needle) in &cases {
        let p = paths
            .iter()
            .find(|p| p["key"] == format!("{h}.narinfo"))
            .unwrap_or_else(|| panic!("{h} missing"));
        assert_eq!(p["status"], "error", "{p}");
        let reason = p["reasons"][0].as_str().unwrap();
        assert!(reason.contains(&format!("{h}.narinfo")), "{reason}");
        assert!(reason.contains(needle), "{h}: {reason}");
    }
    // A narinfo whose StorePath belongs to another key is an error too.
    std::fs::write(c.join("1111111111111111111111111111111a.narinfo"), good).unwrap();
    let out = narscope(&["verify", c.to_str().unwrap(), "--no-config", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = doc["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "1111111111111111111111111111111a.narinfo")
        .unwrap()
        .clone();
    assert_eq!(p["status"], "error");
    assert!(
        p["reasons"][0]
            .as_str()
            .unwrap()
            .contains("does not match its key"),
        "{p}"
    );
    // show names the object and the line.
    let out = narscope(&[
        "show",
        c.to_str().unwrap(),
        "0000000000000000000000000000000a",
        "--no-config",
    ]);
    assert_eq!(out.status.code(), Some(4));
    let e = stderr(&out);
    assert!(
        e.contains("0000000000000000000000000000000a.narinfo") && e.contains("line 5"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn bad_keys_urls_and_caches_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["verify", "/tmp", "--no-config", "--trusted-key", "nocolon"],
            "--trusted-key: public key has no ':' between key name and base64 data",
        ),
        (
            &["verify", "/tmp", "--no-config", "--trusted-key", "k:AAAA"],
            "--trusted-key: public key 'k' is not valid: 3 bytes, expected 32",
        ),
        (&["ls", "s3://", "--no-config"], "s3://"),
        (&["ls", "ftp://host/x", "--no-config"], "ftp://host/x"),
        (
            &[
                "ls",
                "s3://b?endpoint=https://b.nyc3.digitaloceanspaces.com",
                "--no-config",
            ],
            "endpoint=https://nyc3.digitaloceanspaces.com",
        ),
        (
            &["ls", "/nonexistent/narscope-cache", "--no-config"],
            "/nonexistent/narscope-cache",
        ),
        (
            &["show", "/tmp", "not-a-path", "--no-config"],
            "is not a store path",
        ),
    ];
    for (args, needle) in cases {
        let out = narscope(args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(e.starts_with("error: "), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
    // A config file that does not parse is named.
    let cfg = tmp.path().join("config.toml");
    std::fs::write(&cfg, "trusted-key = 1\n").unwrap();
    let out = narscope(&["ls", "/tmp", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("config.toml"), "{}", stderr(&out));
}

#[test]
fn keygen_writes_nix_format_and_never_prints_the_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let sk = tmp.path().join("k.sec");
    let pk = tmp.path().join("k.pub");
    let out = narscope(&[
        "keygen",
        "test-1",
        "--secret-key-file",
        sk.to_str().unwrap(),
        "--public-key-file",
        pk.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let secret = std::fs::read_to_string(&sk).unwrap();
    let public = std::fs::read_to_string(&pk).unwrap();
    assert!(secret.starts_with("test-1:") && !secret.ends_with('\n'));
    assert_eq!(secret.len(), "test-1:".len() + 88);
    assert!(public.starts_with("test-1:") && !public.ends_with('\n'));
    assert_eq!(public.len(), "test-1:".len() + 44);
    let b64 = &secret["test-1:".len()..];
    assert!(!stdout(&out).contains(b64) && !stderr(&out).contains(b64));
    assert!(stdout(&out).contains(&public));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Refuses to overwrite.
    let again = narscope(&[
        "keygen",
        "test-1",
        "--secret-key-file",
        sk.to_str().unwrap(),
        "--public-key-file",
        pk.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(4));
    assert!(stderr(&again).contains("exists"));
    assert_eq!(std::fs::read_to_string(&sk).unwrap(), secret);
}

#[test]
fn init_writes_cache_info_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new-cache");
    let d = dir.to_str().unwrap();
    let out = narscope(&["init", d, "--priority", "30", "--want-mass-query"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = std::fs::read_to_string(dir.join("nix-cache-info")).unwrap();
    assert!(info.starts_with("StoreDir: /nix/store\n"), "{info}");
    assert!(
        info.contains("WantMassQuery: 1\n") && info.contains("Priority: 30\n"),
        "{info}"
    );
    // Same settings: nothing to do; different ones: refused, file untouched.
    let out = narscope(&["init", d, "--priority", "30", "--want-mass-query"]);
    assert!(out.status.success());
    let out = narscope(&["init", d, "--priority", "10"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("refusing to overwrite"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("nix-cache-info")).unwrap(),
        info
    );
    assert!(Path::new(&dir).is_dir());
}

#[test]
fn delete_json_always_prints_one_job_document() {
    let (tmp, dir, _pk) = demo();
    let state = tmp.path().join("state");
    let run = |args: &[&str]| -> (Value, i32) {
        let out = run(common::cmd::narscope(args, &state));
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {}", stdout(&out)));
        let code = out.status.code().unwrap();
        assert_eq!(doc["exitCode"], code, "{args:?}: {doc}");
        assert_eq!(doc["job"], "delete", "{doc}");
        (doc, code)
    };
    // Without --cascade the plan is refused exactly when it would break a referrer.
    let (doc, code) = run(&["delete", &dir, "--unsigned", "--dry-run", "--json"]);
    let refused = doc["safe"] == false;
    assert_eq!(
        doc["state"],
        if refused { "refused" } else { "planned" },
        "{doc}"
    );
    assert_eq!(code, if refused { 2 } else { 0 });
    let (doc, code) = run(&[
        "delete",
        &dir,
        "--unsigned",
        "--cascade",
        "--dry-run",
        "--json",
    ]);
    assert_eq!((doc["state"].as_str(), code), (Some("planned"), 0), "{doc}");
    let planned = doc["narinfos"].as_array().unwrap().len();
    assert!(planned > 0, "the demo has unsigned paths: {doc}");
    let (doc, code) = run(&["delete", &dir, "--unsigned", "--cascade", "--yes", "--json"]);
    assert_eq!((doc["state"].as_str(), code), (Some("done"), 0), "{doc}");
    assert_eq!(doc["summary"]["narinfos"], planned, "{doc}");
    // Nothing left to delete: still a document, not silence.
    let (doc, code) = run(&["delete", &dir, "--unsigned", "--json"]);
    assert_eq!((doc["state"].as_str(), code), (Some("empty"), 0), "{doc}");
    assert_eq!(doc["narinfos"].as_array().map(Vec::len), Some(0), "{doc}");
}

#[test]
fn verify_json_is_one_document_even_when_the_listing_fails_and_warnings_have_no_colour() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-cache");
    let out = narscope(&["verify", missing.to_str().unwrap(), "--no-config", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", stdout(&out)));
    assert_eq!(doc["exitCode"], 4);
    let err = doc["error"].as_str().unwrap();
    assert!(err.contains("does not exist"), "{err}");
    // stderr is a pipe here: a warning carries no ANSI escape codes.
    let (_t, cache, _pk) = demo();
    let out = narscope(&["verify", &cache, "--no-config"]);
    let err = stderr(&out);
    assert!(err.contains("WARN"), "a warning is expected: {err}");
    assert!(!err.contains('\u{1b}'), "colour codes in {err:?}");
}

/// Writes a narinfo for `name` under hash `h` (32 nix32 characters) pointing at `nar`, and the
/// NAR object itself with `size` bytes (when not written yet).
fn put_path(c: &Path, h: &str, name: &str, nar: &str, size: usize, nar_size: u64) {
    let text = format!(
        "StorePath: /nix/store/{h}-{name}\nURL: {nar}\nCompression: none\n\
         NarHash: sha256:1xngcmsdkdvaycaqjfzvq4gr3gib56p2l8illglnsqzhpss47pxz\n\
         NarSize: {nar_size}\nReferences: \n"
    );
    std::fs::write(c.join(format!("{h}.narinfo")), text).unwrap();
    std::fs::create_dir_all(c.join("nar")).unwrap();
    if !c.join(nar).exists() {
        std::fs::write(c.join(nar), vec![0u8; size]).unwrap();
    }
}

#[test]
fn info_by_package_groups_versions_keeps_outputs_apart_and_counts_shared_nars_once() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path();
    std::fs::write(c.join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    put_path(
        c,
        "00000000000000000000000000000001",
        "openssl-3.0.13",
        "nar/a.nar",
        1000,
        5000,
    );
    put_path(
        c,
        "00000000000000000000000000000002",
        "openssl-3.0.14",
        "nar/b.nar",
        2000,
        6000,
    );
    put_path(
        c,
        "00000000000000000000000000000003",
        "openssl-3.0.14-dev",
        "nar/c.nar",
        300,
        900,
    );
    put_path(
        c,
        "00000000000000000000000000000004",
        "hello-2.12.1",
        "nar/d.nar",
        400,
        700,
    );
    // The same contents under a second name: one NAR object for two narinfos.
    put_path(
        c,
        "00000000000000000000000000000005",
        "hello-2.12.2",
        "nar/d.nar",
        400,
        700,
    );
    put_path(
        c,
        "00000000000000000000000000000006",
        "source",
        "nar/e.nar",
        50,
        60,
    );
    let dir = c.to_str().unwrap();
    let out = narscope(&["info", dir, "--by-package", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["paths"], 6);
    assert_eq!(doc["storedBytes"], 1000 + 2000 + 300 + 400 + 50);
    assert_eq!(doc["narBytes"], 5000 + 6000 + 900 + 700 + 700 + 60);
    let rows: Vec<(String, u64, u64, u64)> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["versions"].as_u64().unwrap(),
                p["narBytes"].as_u64().unwrap(),
                p["storedBytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("openssl".to_string(), 2, 11000, 3000),
            ("hello".to_string(), 2, 1400, 400),
            ("openssl-dev".to_string(), 1, 900, 300),
            ("source".to_string(), 1, 60, 50),
        ]
    );
    // --top and --sort; the text table names every column and the total.
    let out = narscope(&["info", dir, "--by-package", "--top", "2", "--sort", "name"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("PACKAGE") && lines[0].contains("STORED"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("hello ") && lines[2].starts_with("openssl "),
        "{text}"
    );
    assert!(
        lines[3].contains("6 path(s) in 4 package group(s) (2 more not shown)"),
        "{text}"
    );
    // A bad column is a usage error naming the choices.
    let out = narscope(&["info", dir, "--by-package", "--sort", "size"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("one of name, versions"),
        "{}",
        stderr(&out)
    );
}
