//! HTTP binary caches (issue 16 §1): `file://` caches made by real Nix 2.8 (`nixfix`), served on
//! 127.0.0.1 by `python3 -m http.server` or by the in-process [`CacheServer`] (Content-Encoding,
//! Basic auth, 503/429, redirects, HEAD refused), read by narscope as `http://` caches.
//!
//! narscope's verdicts over HTTP must equal its verdicts over `file://` and agree with Nix 2.8's
//! `nix store verify --store http://…`; the bytes read through a server that encodes must be the
//! stored bytes; credentials come from netrc; writing and listing are refused before any
//! request.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use common::cmd::{narscope, run};
use common::http::{CacheServer, PythonServer, ServeOptions};
use common::nixfix::{Fixture, FxCache, expected_nix_rc, expected_status, fixture};

/// A store path no fixture cache holds.
const ABSENT: &str = "/nix/store/0000000000000000000000000000000a-absent";

fn root() -> &'static Path {
    static ROOT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")))
        .path()
}

fn ns(args: &[&str]) -> Command {
    narscope(args, root())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One path's verdict: its status and its signatures' outcomes (the reasons name the cache,
/// so they differ between URLs).
type Verdicts = BTreeMap<String, (String, String)>;

/// `narscope verify URL PATHS… --trusted-key KEY --json [--contents]`: exit code, verdicts,
/// and the whole document.
fn verify(url: &str, key: &str, paths: &[&str], contents: bool) -> (i32, Verdicts, Value) {
    let mut args = vec!["verify", url, "--trusted-key", key, "--json"];
    if contents {
        args.push("--contents");
    }
    args.extend_from_slice(paths);
    let o = run(ns(&args));
    let doc: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("verify {url}: no JSON ({e}):\n{}", text(&o)));
    let mut out = BTreeMap::new();
    for p in doc["paths"].as_array().cloned().unwrap_or_default() {
        let name = p["storePath"]
            .as_str()
            .or(p["key"].as_str())
            .unwrap_or_default()
            .to_string();
        let status = p["status"].as_str().unwrap_or_default().to_string();
        out.insert(name, (status, p["signatures"].to_string()));
    }
    (o.status.code().unwrap_or(-1), out, doc)
}

fn paths_of(c: &FxCache) -> Vec<&str> {
    c.paths.keys().map(String::as_str).collect()
}

/// `nix store verify --store URL` of one path: Nix 2.8's exit code.
fn nix_verify(fx: &Fixture, url: &str, path: &str, contents: bool) -> i32 {
    let mut args = vec![
        "store",
        "verify",
        "--store",
        url,
        "--trusted-public-keys",
        &fx.demo.public,
    ];
    if !contents {
        args.push("--no-contents");
    }
    args.push(path);
    match fx.run_nix("nix", &args) {
        Ok(o) => o.rc(),
        Err(e) => panic!("{e}"),
    }
}

/// Which of Nix 2.8's verdicts over HTTP are compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NixCheck {
    /// None.
    No,
    /// Signatures only (`--no-contents`).
    Signatures,
    /// With and without contents.
    All,
}

/// The verdicts over `http_url` equal those over the cache's `file://` URL, each path's is the
/// one the fixture prescribes, and Nix 2.8 reading `http_url` agrees (as `nix` says).
fn same_as_file(fx: &Fixture, c: &FxCache, http_url: &str, nix: NixCheck) -> Vec<String> {
    let mut errs = Vec::new();
    let mut paths = paths_of(c);
    paths.push(ABSENT);
    for contents in [false, true] {
        let (rc_file, file, _) = verify(&c.url(), &fx.demo.public, &paths, contents);
        let (rc_http, http, doc) = verify(http_url, &fx.demo.public, &paths, contents);
        let label = format!("[{} over {http_url}, contents={contents}]", c.name);
        if file != http || rc_file != rc_http {
            errs.push(format!(
                "{label} file:// gave {rc_file} {file:?}, http gave {rc_http} {http:?}"
            ));
        }
        // An unreadable narinfo is reported under its key.
        let absent_key = format!("{}.narinfo", &ABSENT[11..43]);
        match http.get(ABSENT).or(http.get(&absent_key)) {
            Some((s, _)) if s == "error" => {}
            other => errs.push(format!("{label} the absent path: {other:?} in {http:?}")),
        }
        let absent = doc["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["storePath"].as_str() == Some(ABSENT)
                    || p["key"].as_str().is_some_and(|k| k.starts_with("0000"))
            })
            .map(|p| p["reasons"].to_string())
            .unwrap_or_default();
        if !absent.contains("no such narinfo") {
            errs.push(format!("{label} the absent path's reasons: {absent}"));
        }
        for (sp, &(sig, content)) in &c.paths {
            let Some(kind) = fx.kind_of(sp) else { continue };
            let want = expected_status(kind, sig, content, contents);
            if http.get(sp).map(|v| v.0.as_str()) != Some(want) {
                errs.push(format!("{label} {sp}: {:?}, expected {want}", http.get(sp)));
            }
            if nix == NixCheck::All || (nix == NixCheck::Signatures && !contents) {
                let rc = nix_verify(fx, http_url, sp, contents);
                let want = expected_nix_rc(kind, sig, content, contents);
                if rc != want {
                    errs.push(format!(
                        "{label} Nix 2.8 over HTTP: {sp} ({kind:?} {sig:?} {content:?}) exit {rc}, expected {want}"
                    ));
                }
            }
        }
    }
    errs
}

fn fail_if_any(errs: Vec<String>) {
    assert!(
        errs.is_empty(),
        "{} problems:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

#[test]
fn verdicts_over_http_equal_file_and_nix() {
    let Some(fx) = fixture() else { return };
    let mut errs = Vec::new();
    for name in [
        "signed-xz",
        "tampered",
        "corrupt-none",
        "missing-nar",
        "other-only",
        "truncated-xz",
    ] {
        let c = fx.cache(name);
        let server = PythonServer::serve(&c.dir);
        errs.extend(same_as_file(fx, c, &server.url, NixCheck::All));
    }
    fail_if_any(errs);
}

#[test]
fn content_encoding_gives_the_verdicts_of_the_plain_server() {
    let Some(fx) = fixture() else { return };
    let mut errs = Vec::new();
    for (name, enc) in [
        ("signed-xz", "gzip"),
        ("corrupt-none", "gzip"),
        ("missing-nar", "br"),
        ("signed-zstd", "zstd"),
        ("tampered", "deflate"),
    ] {
        let c = fx.cache(name);
        let server = CacheServer::serve(
            &c.dir,
            ServeOptions {
                encoding: Some(enc),
                ..ServeOptions::default()
            },
        );
        // Nix 2.8 undoes a gzip Content-Encoding with libarchive, which also strips the NAR's
        // own compression when it knows it: an xz NAR sent gzip-encoded then fails ("input
        // compression not recognized"). Its contents verdicts are compared only where the NAR
        // is not compressed; the other codings are narscope's alone.
        let nix = match (enc, c.compression) {
            ("gzip", "none") => NixCheck::All,
            ("gzip", _) => NixCheck::Signatures,
            _ => NixCheck::No,
        };
        errs.extend(same_as_file(fx, c, &server.url, nix));
        let encoded = server
            .seen()
            .iter()
            .filter(|s| s.status == 200 && s.path.contains("/nar/"))
            .count();
        if encoded == 0 {
            errs.push(format!(
                "{name}: no NAR was served with Content-Encoding: {enc}"
            ));
        }
    }
    fail_if_any(errs);
}

/// Every object's bytes (narinfos and `.ls` decoded as their readers do, NARs as streamed)
/// read through a server that encodes are the stored bytes.
#[tokio::test]
async fn content_encoding_bytes_are_the_stored_bytes() {
    let Some(fx) = fixture() else { return };
    let c = fx.cache("signed-xz");
    let server = CacheServer::serve(
        &c.dir,
        ServeOptions {
            encoding: Some("gzip"),
            redirect_nars: true,
            ..ServeOptions::default()
        },
    );
    let url = narscope::storage::CacheUrl::parse(&server.url).unwrap();
    let cache = narscope::cache::Cache::open(&url).await.unwrap();
    let store = cache.store().clone();
    let mut checked = 0;
    for (rel, file) in common::fs::list_files(&c.dir) {
        let want = std::fs::read(&file).unwrap();
        let got = if rel.starts_with("nar/") {
            use tokio::io::AsyncReadExt;
            let (_, mut r) = store.get_reader(&rel).await.unwrap().unwrap();
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).await.unwrap();
            buf
        } else {
            let obj = store.get(&rel).await.unwrap().unwrap();
            if rel.ends_with(".narinfo") || rel.ends_with(".ls") {
                assert_eq!(obj.content_encoding.as_deref(), Some("gzip"), "{rel}");
            }
            narscope::compression::decode_content_encoding(
                &obj.bytes,
                obj.content_encoding.as_deref(),
                &rel,
            )
            .unwrap()
        };
        assert_eq!(got, want, "{rel}");
        checked += 1;
    }
    assert!(checked > 10, "only {checked} objects");
    // nix-cache-info as Nix wrote it: store dir and priority
    let info = cache.cache_info().await.unwrap().unwrap();
    let plain =
        narscope::cache::Cache::open(&narscope::storage::CacheUrl::parse(&c.url()).unwrap())
            .await
            .unwrap()
            .cache_info()
            .await
            .unwrap()
            .unwrap();
    assert_eq!(info.store_dir, "/nix/store");
    assert_eq!(info.priority, plain.priority);
    assert!(
        server.seen().iter().any(|s| s.status == 302),
        "the NARs were not redirected"
    );
}

#[test]
fn netrc_credentials_as_nix() {
    let Some(fx) = fixture() else { return };
    let c = fx.cache("signed-zstd");
    let password = common::random_hex(12);
    let server = CacheServer::serve(
        &c.dir,
        ServeOptions {
            basic_auth: Some(("alice".into(), password.clone())),
            ..ServeOptions::default()
        },
    );
    let paths = paths_of(c);
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    let wrong = dir.path().join("wrong");
    std::fs::write(
        &netrc,
        format!("machine example.org login bob password x\nmachine 127.0.0.1\n  login alice\n  password {password}\n"),
    )
    .unwrap();
    std::fs::write(&wrong, "default login alice password not-it\n").unwrap();

    // Without credentials: a clear error, not a cache that looks empty.
    let mut args = vec!["verify", &server.url, "--trusted-key", &fx.demo.public];
    args.extend_from_slice(&paths);
    let o = run(ns(&args));
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("HTTP 401") && t.contains("netrc-file"), "{t}");

    // Refused credentials name the file, never the password.
    let url = format!("{}?netrc-file={}", server.url, wrong.display());
    let mut args = vec!["verify", &url, "--trusted-key", &fx.demo.public];
    args.extend_from_slice(&paths);
    let mut cmd = ns(&args);
    cmd.env("RUST_LOG", "narscope=debug");
    let o = run(cmd);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(
        t.contains("refused the credentials") && t.contains("wrong"),
        "{t}"
    );
    assert!(!t.contains("not-it"), "the password was printed: {t}");

    // With netrc-file=: the verdicts of the file:// cache.
    let url = format!("{}?netrc-file={}", server.url, netrc.display());
    let (rc, http, _) = verify(&url, &fx.demo.public, &paths, true);
    let (rc_file, file, _) = verify(&c.url(), &fx.demo.public, &paths, true);
    assert_eq!((rc, &http), (rc_file, &file));
    assert!(
        http.values()
            .all(|(s, _)| s == "trusted" || s == "content-addressed"),
        "{http:?}"
    );

    // From nix.conf's netrc-file, as Nix reads it.
    let conf = dir.path().join("nix-conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("nix.conf"),
        format!("netrc-file = {}\n", netrc.display()),
    )
    .unwrap();
    let mut args = vec!["verify", &server.url, "--trusted-key", &fx.demo.public];
    args.extend_from_slice(&paths);
    let mut cmd = ns(&args);
    cmd.env("NIX_CONF_DIR", &conf)
        .env("NIX_USER_CONF_FILES", conf.join("nix.conf"));
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(rc_file), "{}", text(&o));
    assert!(!text(&o).contains(&password));
}

#[test]
fn throttling_and_server_errors_are_retried_and_reported() {
    let Some(fx) = fixture() else { return };
    let c = fx.cache("signed-bzip2");
    let server = CacheServer::serve(
        &c.dir,
        ServeOptions {
            fail_first: 6,
            ..ServeOptions::default()
        },
    );
    let paths = paths_of(c);
    let (rc, http, doc) = verify(&server.url, &fx.demo.public, &paths, true);
    let (rc_file, file, _) = verify(&c.url(), &fx.demo.public, &paths, true);
    assert_eq!((rc, &http), (rc_file, &file), "{doc}");
    let throttled = doc["throttle"]["throttled"].as_u64().unwrap_or_default();
    assert!(
        throttled >= 3,
        "the 503/429 answers were not counted: {}",
        doc["throttle"]
    );
    let failed = server
        .seen()
        .iter()
        .filter(|s| s.status >= 500 || s.status == 429)
        .count();
    assert_eq!(failed, 6);
}

#[test]
fn redirects_and_refused_head_work_for_show_and_contents() {
    let Some(fx) = fixture() else { return };
    let c = fx.cache("signed-gzip");
    let server = CacheServer::serve(
        &c.dir,
        ServeOptions {
            redirect_nars: true,
            refuse_head: true,
            ..ServeOptions::default()
        },
    );
    fail_if_any(same_as_file(fx, c, &server.url, NixCheck::No));
    let sp = paths_of(c)[0].to_string();
    let o = run(ns(&[
        "show",
        &server.url,
        &sp,
        "--trusted-key",
        &fx.demo.public,
    ]));
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("exists"), "{t}");
    let seen = server.seen();
    assert!(
        seen.iter().any(|s| s.method == "HEAD" && s.status == 405),
        "{seen:?}"
    );
    assert!(seen.iter().any(|s| s.status == 302), "{seen:?}");
}

#[test]
fn pull_from_an_http_cache_into_the_local_store() {
    let Some(fx) = fixture() else { return };
    let tag = common::random_hex(4);
    let chain = common::nix::nix_chain(&fx.root, &format!("http{tag}"), 3, 8);
    let top = chain.last().unwrap().clone();
    let dir = fx.scratch_dir("http-pull");
    let to = format!(
        "file://{}?compression=zstd&secret-key={}",
        dir.display(),
        fx.demo.secret_file.display()
    );
    fx.run_nix("nix", &["copy", "--to", &to, &top])
        .and_then(|o| o.ok())
        .unwrap_or_else(|e| panic!("{e}"));
    let server = PythonServer::serve(&dir);
    let mut del = vec!["--delete"];
    del.extend(chain.iter().rev().map(String::as_str));
    fx.run_nix("nix-store", &del)
        .and_then(|o| o.ok())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(chain.iter().all(|p| !Path::new(p).exists()), "not deleted");
    let cmd = narscope(
        &[
            "pull",
            &server.url,
            &top,
            "-r",
            "--into-store",
            "--trusted-key",
            &fx.demo.public,
        ],
        &fx.root,
    );
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut valid = vec!["--check-validity"];
    valid.extend(chain.iter().map(String::as_str));
    fx.run_nix("nix-store", &valid)
        .and_then(|o| o.ok())
        .unwrap_or_else(|e| panic!("not in the local store after pull: {e}"));
}

#[test]
fn writing_and_listing_are_refused_before_any_request() {
    let Some(fx) = fixture() else { return };
    let c = fx.cache("signed-xz");
    let server = CacheServer::serve(&c.dir, ServeOptions::default());
    let sp = paths_of(c)[0].to_string();
    let key = fx.demo.secret_file.to_str().unwrap().to_string();
    let u = server.url.as_str();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["push", u, &sp, "--key-file", &key],
            "cannot write to it",
        ),
        (
            vec!["sign", u, &sp, "--key-file", &key],
            "cannot write to it",
        ),
        (vec!["init", u], "cannot write to it"),
        (vec!["gc", u], "cannot write to it"),
        (vec!["delete", u, &sp], "cannot write to it"),
        (vec!["pin", u, "ls"], "cannot write to it"),
        (vec!["ls", u], "cannot be listed"),
        (vec!["info", u], "cannot be listed"),
        (vec!["verify", u], "cannot be listed"),
    ];
    for (args, want) in cases {
        let o = run(ns(&args));
        let t = text(&o);
        assert_ne!(o.status.code(), Some(0), "{args:?}: {t}");
        assert!(
            t.contains(want) && t.contains("HTTP cache"),
            "{args:?}: {t}"
        );
        assert!(
            server.seen().is_empty(),
            "{args:?} sent {:?}",
            server.seen()
        );
    }
}
