//! Interop between narscope and real Nix 2.8 (Debian `nix-bin`).
//!
//! The caches come from `nixfix` (built once per test binary with real Nix). For every cache
//! and every path, Nix's verdict (`nix store verify`, per path, with and without contents) is
//! compared with narscope's (`narscope verify --json`), on `file://` caches and on copies in a
//! Garage bucket. Keys made by `narscope keygen`, caches made by `narscope init`, and
//! `narscope show`/`ls` are checked against Nix too.
//!
//! Needs `nix` (set `NARSCOPE_SKIP_NIX=1` to skip) and, for the S3 part, the Garage harness in
//! `tests/common` (`NARSCOPE_SKIP_GARAGE=1` skips that part).

use crate::common;
use crate::common::nixfix;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use common::fs::copy_dir;
use common::upload::{Upload, upload_to};

use nixfix::{
    CMD_TIMEOUT, Content, Fixture, FxCache, Kind, Output, SigState, expected_nix_phrase,
    expected_nix_rc, expected_sig_outcomes, expected_status, fixture, hash, run,
};

// ---------------------------------------------------------------------------------------------
// Nix's verdicts
// ---------------------------------------------------------------------------------------------

/// `nix store verify` of one path in one cache.
#[derive(Debug, Clone)]
struct NixVerdict {
    rc: i32,
    stderr: String,
}

type VerdictKey = (String, String, bool); // (cache name, store path, contents)

/// Nix's verdict for every (cache, path, contents?) — computed once, three at a time.
fn nix_verdicts(fx: &'static Fixture) -> &'static BTreeMap<VerdictKey, NixVerdict> {
    static V: OnceLock<Result<BTreeMap<VerdictKey, NixVerdict>, String>> = OnceLock::new();
    let r = V.get_or_init(|| {
        let jobs: Vec<(&FxCache, &str, bool)> = fx
            .caches
            .iter()
            .flat_map(|c| {
                c.paths
                    .keys()
                    .flat_map(move |p| [(c, p.as_str(), true), (c, p.as_str(), false)])
            })
            .collect();
        let results: Vec<Result<(VerdictKey, NixVerdict), String>> = std::thread::scope(|s| {
            let chunks: Vec<_> = jobs.chunks(jobs.len().div_ceil(3).max(1)).collect();
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|&(c, p, contents)| {
                                let v = nix_verify(fx, &c.url(), &fx.demo.public, p, contents)?;
                                Ok(((c.name.clone(), p.to_owned(), contents), v))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| vec![Err("a nix verify worker panicked".into())])
                })
                .collect()
        });
        results.into_iter().collect()
    });
    match r {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

/// Run `nix store verify` for one path; any exit code is a verdict, a timeout is an error.
fn nix_verify(
    fx: &Fixture,
    store: &str,
    key: &str,
    path: &str,
    contents: bool,
) -> Result<NixVerdict, String> {
    let mut args = vec![
        "store",
        "verify",
        "--store",
        store,
        "--trusted-public-keys",
        key,
    ];
    if !contents {
        args.push("--no-contents");
    }
    args.push(path);
    let o = fx.run_nix("nix", &args)?;
    Ok(NixVerdict {
        rc: o.rc(),
        stderr: o.stderr,
    })
}

// ---------------------------------------------------------------------------------------------
// narscope's verdicts
// ---------------------------------------------------------------------------------------------

/// narscope isolated under one root for this module ([`common::cmd::narscope`]).
fn narscope() -> Command {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    common::cmd::narscope(&[], root.path())
}

fn run_narscope(args: &[&str], envs: &[(String, String)]) -> Output {
    let mut c = narscope();
    c.args(args);
    c.envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    run::run(&mut c, CMD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Debug)]
struct NsPath {
    status: String,
    /// (keyName, outcome), sorted.
    sigs: Vec<(String, String)>,
}

#[derive(Debug)]
struct NsReport {
    out: Output,
    paths: BTreeMap<String, NsPath>,
    summary: BTreeMap<String, u64>,
}

fn parse_report(out: Output) -> Result<NsReport, String> {
    let v: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| out.failure(&format!("printed no JSON document ({e})")))?;
    let bad = |what: &str| out.failure(&format!("JSON: {what}"));
    let cache = v.get("cache").and_then(Value::as_str).unwrap_or("");
    if cache.is_empty() {
        return Err(bad("no \"cache\" string"));
    }
    let mut paths = BTreeMap::new();
    for p in v
        .get("paths")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no \"paths\" array"))?
    {
        let sp = p
            .get("storePath")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a path without \"storePath\""))?;
        let status = p
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("{sp}: no \"status\"")))?;
        let mut sigs = Vec::new();
        for s in p
            .get("signatures")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(&format!("{sp}: no \"signatures\" array")))?
        {
            let name = s.get("keyName").and_then(Value::as_str).unwrap_or("");
            let outcome = s
                .get("outcome")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{sp}: a signature without \"outcome\"")))?;
            sigs.push((name.to_owned(), outcome.to_owned()));
        }
        sigs.sort();
        if !p.get("reasons").is_some_and(Value::is_array) {
            return Err(bad(&format!("{sp}: no \"reasons\" array")));
        }
        if paths
            .insert(
                sp.to_owned(),
                NsPath {
                    status: status.to_owned(),
                    sigs,
                },
            )
            .is_some()
        {
            return Err(bad(&format!("{sp} listed twice")));
        }
    }
    let mut summary = BTreeMap::new();
    for (k, n) in v
        .get("summary")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no \"summary\" object"))?
    {
        let n = n
            .as_u64()
            .ok_or_else(|| bad(&format!("summary.{k} is not a count")))?;
        summary.insert(k.clone(), n);
    }
    Ok(NsReport {
        out,
        paths,
        summary,
    })
}

/// `narscope verify CACHE --no-config --trusted-key KEY --json [--contents] [PATHS…]`.
fn narscope_verify(
    cache: &str,
    key: &str,
    contents: bool,
    paths: &[&str],
    envs: &[(String, String)],
) -> NsReport {
    let mut args = vec!["verify", cache, "--trusted-key", key, "--json"];
    if contents {
        args.push("--contents");
    }
    args.extend_from_slice(paths);
    let out = run_narscope(&args, envs);
    parse_report(out).unwrap_or_else(|e| panic!("{e}"))
}

/// Every status word narscope may print (`error`: a narinfo that cannot be read; no fixture
/// path should ever get it).
const ALL_STATUSES: [&str; 7] = [
    "trusted",
    "content-addressed",
    "untrusted",
    "invalid",
    "unsigned",
    "corrupt",
    "error",
];

fn status_bits(status: &str) -> i32 {
    match status {
        "trusted" | "content-addressed" => 0,
        "corrupt" => 1,
        "untrusted" | "invalid" | "unsigned" => 2,
        _ => 4,
    }
}

/// Does narscope's word agree with Nix's exit code (and message) for this path?
fn agrees_with_nix(
    kind: Kind,
    content: Content,
    contents: bool,
    nix: &NixVerdict,
    status: &str,
) -> Result<(), String> {
    let ok = match nix.rc {
        // The one deliberate difference: Nix 2.8 never checks FileHash; narscope's --contents
        // does (the contract lists a FileHash mismatch as corrupt).
        0 if contents && content == Content::FileHashWrong => status == "corrupt",
        0 => status == "trusted" || (status == "content-addressed" && kind.is_ca()),
        1 => status == "corrupt",
        2 => matches!(status, "untrusted" | "invalid" | "unsigned"),
        4 if nix.stderr.contains("does not exist in binary cache")
            || nix.stderr.contains("Failed to open archive") =>
        {
            status == "corrupt"
        }
        // Nix 2.8 throws on a malformed signature under a trusted key's name; narscope must
        // still give a verdict (trusted if another signature is valid, else not trusted).
        4 if nix.stderr.contains("signature is not valid") => {
            matches!(status, "trusted" | "invalid" | "untrusted")
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Nix exit {} ({}) vs narscope {status:?}",
            nix.rc,
            nix.stderr.lines().last().unwrap_or("").trim()
        ))
    }
}

/// Compare one narscope report of `cache` (reachable as `label`) with Nix and the fixture.
fn check_report(
    fx: &'static Fixture,
    cache: &FxCache,
    label: &str,
    contents: bool,
    rep: &NsReport,
) -> Vec<String> {
    let verdicts = nix_verdicts(fx);
    let mut errs = Vec::new();
    let mut err = |m: String| errs.push(format!("[{label} contents={contents}] {m}"));
    let want: BTreeSet<&String> = cache.paths.keys().collect();
    let got: BTreeSet<&String> = rep.paths.keys().collect();
    if want != got {
        err(format!(
            "paths differ: expected {want:?}, narscope listed {got:?}"
        ));
    }
    let mut bits = 0;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (sp, ns) in &rep.paths {
        bits |= status_bits(&ns.status);
        *counts.entry(ns.status.clone()).or_default() += 1;
        if !ALL_STATUSES.contains(&ns.status.as_str()) {
            err(format!("{sp}: unknown status {:?}", ns.status));
        }
        let (Some(kind), Some(&(sig, content))) = (fx.kind_of(sp), cache.paths.get(sp)) else {
            continue;
        };
        let key = (cache.name.clone(), sp.clone(), contents);
        match verdicts.get(&key) {
            Some(nix) => {
                if let Err(m) = agrees_with_nix(kind, content, contents, nix, &ns.status) {
                    err(format!("{sp} ({kind:?}, {sig:?}, {content:?}): {m}"));
                }
            }
            None => err(format!("{sp}: no Nix verdict recorded")),
        }
        let want_status = expected_status(kind, sig, content, contents);
        if ns.status != want_status {
            err(format!(
                "{sp} ({kind:?}, {sig:?}, {content:?}): status {:?}, expected {want_status:?}",
                ns.status
            ));
        }
        let want_sigs = expected_sig_outcomes(sig);
        let got_sigs: Vec<(&str, &str)> = ns
            .sigs
            .iter()
            .map(|(k, o)| {
                let k = if sig == SigState::Garbage { "*" } else { k };
                (k, o.as_str())
            })
            .collect();
        if got_sigs != want_sigs {
            err(format!(
                "{sp} ({sig:?}): signatures {got_sigs:?}, expected {want_sigs:?}"
            ));
        }
    }
    if rep.out.rc() != bits {
        err(format!(
            "exit code {} but the per-path bits OR to {bits}\n{}",
            rep.out.rc(),
            rep.out.stderr.trim_end()
        ));
    }
    for s in ALL_STATUSES {
        let n = rep.summary.get(s).copied().unwrap_or(0);
        let c = counts.get(s).copied().unwrap_or(0);
        if n != c {
            err(format!("summary.{s} = {n}, but {c} paths have that status"));
        }
    }
    for (k, n) in &rep.summary {
        if !ALL_STATUSES.contains(&k.as_str()) && *n != 0 {
            err(format!("summary has unknown status {k:?} = {n}"));
        }
    }
    errs
}

fn fail_if_any(errs: Vec<String>) {
    assert!(
        errs.is_empty(),
        "{} disagreement(s):\n{}",
        errs.len(),
        errs.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Fixture self-checks against Nix alone
// ---------------------------------------------------------------------------------------------

/// Every fixture cache gets exactly the verdicts from Nix 2.8 that the fixture predicts, so the
/// comparisons below rest on observed Nix behaviour.
#[test]
fn fixture_caches_get_the_expected_nix_verdicts() {
    let Some(fx) = fixture() else { return };
    let verdicts = nix_verdicts(fx);
    let mut errs = Vec::new();
    for c in &fx.caches {
        for (sp, &(sig, content)) in &c.paths {
            let kind = fx.kind_of(sp).unwrap_or(Kind::IaTop);
            for contents in [true, false] {
                let Some(v) = verdicts.get(&(c.name.clone(), sp.clone(), contents)) else {
                    errs.push(format!("{}: {sp}: no verdict", c.name));
                    continue;
                };
                let want = expected_nix_rc(kind, sig, content, contents);
                if v.rc != want {
                    errs.push(format!(
                        "{} {sp} ({kind:?} {sig:?} {content:?} contents={contents}): nix rc {} expected {want}\n{}",
                        c.name, v.rc, v.stderr
                    ));
                }
                if let Some(phrase) = expected_nix_phrase(kind, sig, content, contents)
                    && !v.stderr.contains(phrase)
                {
                    errs.push(format!(
                        "{} {sp}: nix did not say {phrase:?}:\n{}",
                        c.name, v.stderr
                    ));
                }
            }
        }
    }
    fail_if_any(errs);
}

/// Shape of what Nix wrote: every path listed by `nix path-info --all`, the SRI narHash equal to
/// the narinfo's nix32 NarHash, gzip NARs without an extension, signatures as set up.
#[test]
fn fixture_caches_have_the_layout_nix_writes() {
    let Some(fx) = fixture() else { return };
    for c in &fx.caches {
        let infos = path_info_all(fx, &c.url());
        let listed: BTreeSet<&str> = infos.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = c.paths.keys().map(String::as_str).collect();
        assert_eq!(listed, want, "{}: nix path-info --all", c.name);
        for (sp, info) in &infos {
            let hp = &sp["/nix/store/".len()..][..32];
            let narinfo = fs::read_to_string(c.dir.join(format!("{hp}.narinfo")))
                .unwrap_or_else(|e| panic!("{}: {hp}.narinfo: {e}", c.name));
            let field = |k: &str| {
                narinfo
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap_or_else(|| panic!("{}: {hp}.narinfo has no {k}", c.name))
            };
            assert_eq!(
                hash::sha256_bytes(field("NarHash: ")),
                info.nar_hash,
                "{} {sp}: NarHash vs path-info narHash",
                c.name
            );
            assert_eq!(field("Compression: "), c.compression, "{} {sp}", c.name);
            let url = field("URL: ");
            let ext = match c.compression {
                "xz" => ".nar.xz",
                "zstd" => ".nar.zst",
                "bzip2" => ".nar.bz2",
                "br" => ".nar.br",
                _ => ".nar",
            };
            assert!(url.ends_with(ext), "{} {sp}: URL {url}", c.name);
            let sigs = narinfo.lines().filter(|l| l.starts_with("Sig: ")).count();
            let want_sigs = match c.paths.get(sp).map(|s| s.0) {
                Some(SigState::Unsigned) => 0,
                Some(SigState::TrustedAndOther | SigState::TrustedAndMalformed) => 2,
                _ => 1,
            };
            assert_eq!(sigs, want_sigs, "{} {sp}: Sig lines\n{narinfo}", c.name);
        }
    }
    // write-nar-listing=true wrote .ls files; the CA dir keeps its executable and symlink.
    let c = fx.cache("signed-xz");
    let dir = fx.path(Kind::CaDir);
    let ls = fs::read_to_string(c.dir.join(format!("{}.ls", dir.hash_part())))
        .unwrap_or_else(|e| panic!("signed-xz .ls: {e}"));
    let ls: Value = serde_json::from_str(&ls).unwrap_or_else(|e| panic!("{e}"));
    let entries = &ls["root"]["entries"];
    assert_eq!(entries["hello-link"]["type"], "symlink", "{ls}");
    assert_eq!(entries["hello-link"]["target"], "bin/hello", "{ls}");
    assert_eq!(
        entries["bin"]["entries"]["hello"]["executable"], true,
        "{ls}"
    );
}

#[derive(Debug)]
struct PathInfo {
    nar_hash: Option<Vec<u8>>,
    nar_size: Option<u64>,
}

fn path_info_all(fx: &Fixture, store: &str) -> BTreeMap<String, PathInfo> {
    let o = fx
        .run_nix("nix", &["path-info", "--store", store, "--json", "--all"])
        .and_then(Output::ok)
        .unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout));
    v.as_array()
        .unwrap_or_else(|| panic!("path-info --json is not an array: {}", o.stdout))
        .iter()
        .map(|e| {
            let p = e["path"].as_str().unwrap_or_default().to_owned();
            let info = PathInfo {
                nar_hash: e["narHash"].as_str().and_then(hash::sha256_bytes),
                nar_size: e["narSize"].as_u64(),
            };
            assert!(info.nar_hash.is_some(), "{p}: narHash {}", e["narHash"]);
            (p, info)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// narscope verify vs Nix
// ---------------------------------------------------------------------------------------------

/// Every `file://` cache, every path, with and without `--contents`: narscope and Nix agree,
/// with the specific word the fixture implies.
#[test]
fn narscope_verify_agrees_with_nix_on_file_caches() {
    let Some(fx) = fixture() else { return };
    let mut errs = Vec::new();
    for c in &fx.caches {
        for contents in [true, false] {
            let rep = narscope_verify(&c.url(), &fx.demo.public, contents, &[], &[]);
            errs.extend(check_report(fx, c, &c.name, contents, &rep));
        }
    }
    fail_if_any(errs);
}

/// A plain directory path works as CACHE; explicit store paths restrict the report. Trusting `other-1` instead flips the verdicts the way Nix does.
#[test]
fn narscope_verify_plain_dir_explicit_paths_and_other_key() {
    let Some(fx) = fixture() else { return };
    let c = fx.cache("other-then-demo");
    let leaf = &fx.path(Kind::IaLeaf).path;
    let top = &fx.path(Kind::IaTop).path;
    let dir = c.dir.display().to_string();
    let rep = narscope_verify(&dir, &fx.demo.public, false, &[leaf, top], &[]);
    let got: Vec<(&str, &str)> = rep
        .paths
        .iter()
        .map(|(p, n)| (p.as_str(), n.status.as_str()))
        .collect();
    let mut want = vec![(leaf.as_str(), "trusted"), (top.as_str(), "untrusted")];
    want.sort();
    assert_eq!(got, want, "{}", rep.out.stdout);
    assert_eq!(rep.out.rc(), 2, "{}", rep.out.stderr);

    // Trusting other-1 only: both IA paths are trusted, for Nix and for narscope.
    for p in [leaf, top] {
        let nix =
            nix_verify(fx, &c.url(), &fx.other.public, p, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(nix.rc, 0, "{}", nix.stderr);
    }
    let rep = narscope_verify(&c.url(), &fx.other.public, true, &[leaf, top], &[]);
    for p in [leaf, top] {
        assert_eq!(
            rep.paths.get(p.as_str()).map(|n| n.status.as_str()),
            Some("trusted"),
            "{}",
            rep.out.stdout
        );
    }
    assert_eq!(rep.out.rc(), 0, "{}", rep.out.stderr);

    // No trusted key at all: Nix says untrusted for both IA paths, and so does narscope
    // (every signature is by an unknown key); the CA paths stay content-addressed.
    let mut errs = Vec::new();
    let out = run_narscope(&["verify", &c.url(), "--json"], &[]);
    let rep = parse_report(out).unwrap_or_else(|e| panic!("{e}"));
    for p in fx.paths.iter() {
        let nix = nix_verify(fx, &c.url(), "", &p.path, false).unwrap_or_else(|e| panic!("{e}"));
        let want = if p.kind.is_ca() {
            (0, "content-addressed")
        } else {
            (2, "untrusted")
        };
        let got = rep.paths.get(&p.path).map(|n| n.status.as_str());
        if nix.rc != want.0 || got != Some(want.1) {
            errs.push(format!(
                "{} ({:?}) with no trusted key: nix rc {} (want {}), narscope {got:?} (want {})",
                p.path, p.kind, nix.rc, want.0, want.1
            ));
        }
    }
    if rep.out.rc() != 2 {
        errs.push(format!(
            "exit code {} with no trusted key, want 2",
            rep.out.rc()
        ));
    }
    fail_if_any(errs);
}

/// The same caches, synced into a Garage bucket and verified through `s3://`: same verdicts.
#[test]
fn narscope_verify_agrees_with_nix_through_garage() {
    let Some(fx) = fixture() else { return };
    let Some(g) = common::Garage::try_shared() else {
        return;
    };
    let bucket = g.fresh_bucket();
    let mut errs = Vec::new();
    for name in ["signed-xz", "tampered", "corrupt-none", "missing-nar"] {
        let c = fx.cache(name);
        let url = g.url(&bucket, name);
        assert!(
            c.dir.join("nix-cache-info").exists(),
            "{}: no nix-cache-info",
            c.dir.display()
        );
        upload_to(g, &url, &c.dir, Upload::default());
        for contents in [true, false] {
            let rep = narscope_verify(&url, &fx.demo.public, contents, &[], &g.env());
            errs.extend(check_report(fx, c, &url, contents, &rep));
        }
    }
    fail_if_any(errs);
}

// ---------------------------------------------------------------------------------------------
// keygen / init / show / ls
// ---------------------------------------------------------------------------------------------

/// Parse a key file the way Nix writes it: `name:base64`, no trailing newline.
fn key_file(path: &Path, len: usize) -> (String, Vec<u8>) {
    let raw = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8(raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        !text.ends_with('\n') && !text.contains(char::is_whitespace),
        "{}: {text:?}",
        path.display()
    );
    let (name, b64) = text
        .split_once(':')
        .unwrap_or_else(|| panic!("{}: no ':' in {text:?}", path.display()));
    let bytes = STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("{}: base64: {e}", path.display()));
    assert_eq!(bytes.len(), len, "{}", path.display());
    (name.to_owned(), bytes)
}

/// `narscope keygen` files have Nix's exact format, and Nix signs with the secret and trusts the
/// result with the public key (both via `nix store sign --key-file` and `nix copy ?secret-key=`).
#[test]
fn narscope_keygen_keys_work_with_nix() {
    let Some(fx) = fixture() else { return };
    // The checker accepts Nix's own files first.
    for k in [&fx.demo, &fx.other] {
        let (sn, sb) = key_file(&k.secret_file, 64);
        let (pn, pb) = key_file(&k.public_file, 32);
        assert_eq!(
            (sn.as_str(), pn.as_str()),
            (k.name.as_str(), k.name.as_str())
        );
        assert_eq!(
            &sb[32..],
            &pb[..],
            "Nix's secret key ends with its public key"
        );
    }
    let d = fx.scratch_dir("keygen");
    let (sk, pk) = (d.join("ns.sec"), d.join("ns.pub"));
    let (sks, pks) = (sk.display().to_string(), pk.display().to_string());
    let o = run_narscope(
        &[
            "keygen",
            "narscope-test-1",
            "--secret-key-file",
            &sks,
            "--public-key-file",
            &pks,
        ],
        &[],
    );
    assert_eq!(o.rc(), 0, "{}", o.failure("failed"));
    let secret = fs::read_to_string(&sk).unwrap_or_default();
    let secret_b64 = secret.split_once(':').map_or("", |x| x.1);
    assert!(
        !secret_b64.is_empty() && !o.stdout.contains(secret_b64) && !o.stderr.contains(secret_b64),
        "keygen must not print the secret key"
    );
    let (sn, sb) = key_file(&sk, 64);
    let (pn, pb) = key_file(&pk, 32);
    assert_eq!(sn, "narscope-test-1");
    assert_eq!(pn, "narscope-test-1");
    assert_eq!(
        &sb[32..],
        &pb[..],
        "secret key = seed ‖ public key (libsodium layout)"
    );
    let public = fs::read_to_string(&pk).unwrap_or_else(|e| panic!("{e}"));

    // Nix derives the very same public key file from narscope's secret key.
    let mut c = fx.nix("/bin/sh");
    c.args(["-c", "exec nix key convert-secret-to-public < \"$0\"", &sks]);
    let conv = run::run(&mut c, CMD_TIMEOUT)
        .and_then(Output::ok)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        conv.stdout, public,
        "nix key convert-secret-to-public vs narscope's .pub"
    );

    // nix store sign --key-file on a copy of the unsigned cache.
    let copy = fx.scratch_dir("keygen-cache");
    copy_dir(&fx.cache("unsigned").dir, &copy);
    let url = format!("file://{}", copy.display());
    let leaf = &fx.path(Kind::IaLeaf).path;
    let top = &fx.path(Kind::IaTop).path;
    let o = fx
        .run_nix(
            "nix",
            &["store", "sign", "--store", &url, "--key-file", &sks, leaf],
        )
        .and_then(Output::ok)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.stderr.contains("added 1 signatures"), "{}", o.stderr);
    let ok = nix_verify(fx, &url, &public, leaf, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.rc, 0, "nix trusts the narscope key: {}", ok.stderr);
    let no = nix_verify(fx, &url, &fx.demo.public, leaf, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(no.rc, 2, "{}", no.stderr);
    let rep = narscope_verify(&url, &public, true, &[leaf, top], &[]);
    let st = |p: &str| rep.paths.get(p).map(|n| (n.status.clone(), n.sigs.clone()));
    assert_eq!(
        st(leaf),
        Some((
            "trusted".into(),
            vec![("narscope-test-1".into(), "valid".into())]
        )),
        "{}",
        rep.out.stdout
    );
    assert_eq!(
        st(top).map(|s| s.0),
        Some("unsigned".into()),
        "{}",
        rep.out.stdout
    );

    // nix copy ?secret-key=<narscope secret> between caches signs every path of the closure.
    let signed = fx.scratch_dir("keygen-copy");
    let to = format!(
        "file://{}?compression=zstd&secret-key={sks}",
        signed.display()
    );
    fx.run_nix("nix", &["copy", "--from", &url, "--to", &to, top])
        .and_then(Output::ok)
        .unwrap_or_else(|e| panic!("{e}"));
    let url2 = format!("file://{}", signed.display());
    let rep = narscope_verify(&url2, &public, true, &[], &[]);
    assert_eq!(rep.paths.len(), 5, "closure of top: {}", rep.out.stdout);
    for (p, n) in &rep.paths {
        assert_eq!(n.status, "trusted", "{p}: {}", rep.out.stdout);
        let nix = nix_verify(fx, &url2, &public, p, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(nix.rc, 0, "{p}: {}", nix.stderr);
    }
    assert_eq!(rep.out.rc(), 0, "{}", rep.out.stderr);
}

fn cache_info_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A cache made by `narscope init --priority 30 --want-mass-query` is accepted by `nix copy`,
/// which leaves its nix-cache-info byte-for-byte intact; narscope then trusts what Nix put in.
#[test]
fn narscope_init_cache_is_accepted_by_nix_copy() {
    let Some(fx) = fixture() else { return };
    let dir = fx.scratch_dir("init").join("cache");
    let url = format!("file://{}", dir.display());
    let o = run_narscope(
        &["init", &url, "--priority", "30", "--want-mass-query"],
        &[],
    );
    assert_eq!(o.rc(), 0, "{}", o.failure("failed"));
    let info_file = dir.join("nix-cache-info");
    let before = fs::read(&info_file).unwrap_or_else(|e| panic!("{}: {e}", info_file.display()));
    let fields = cache_info_fields(&String::from_utf8_lossy(&before));
    assert_eq!(
        fields.get("StoreDir").map(String::as_str),
        Some("/nix/store"),
        "{fields:?}"
    );
    assert_eq!(
        fields.get("Priority").map(String::as_str),
        Some("30"),
        "{fields:?}"
    );
    assert_eq!(
        fields.get("WantMassQuery").map(String::as_str),
        Some("1"),
        "{fields:?}"
    );
    assert!(
        before.ends_with(b"\n"),
        "Nix's parser wants a final newline"
    );

    let from = fx.cache("signed-zstd").url();
    let mut args = vec!["copy", "--from", from.as_str(), "--to", url.as_str()];
    args.extend(fx.paths.iter().map(|p| p.path.as_str()));
    fx.run_nix("nix", &args)
        .and_then(Output::ok)
        .unwrap_or_else(|e| panic!("nix copy into the narscope-made cache: {e}"));
    let after = fs::read(&info_file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after, before, "nix copy rewrote nix-cache-info");
    let listed = path_info_all(fx, &url);
    assert_eq!(listed.len(), fx.paths.len());

    // Plain-path CACHE form.
    let rep = narscope_verify(&dir.display().to_string(), &fx.demo.public, true, &[], &[]);
    assert_eq!(rep.paths.len(), fx.paths.len(), "{}", rep.out.stdout);
    for (p, n) in &rep.paths {
        assert_eq!(n.status, "trusted", "{p}: {}", rep.out.stdout);
    }
    assert_eq!(rep.out.rc(), 0, "{}", rep.out.stderr);
}

/// Find the first value under `key` anywhere in a JSON document.
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

/// `narscope show --json` reports the narHash and narSize Nix's `path-info --json` reports,
/// looked up by full path or by hash part; `narscope ls --json` lists every path Nix put in.
/// Both give each path the same status word as `verify` (without contents).
#[test]
fn narscope_show_and_ls_match_nix_path_info() {
    let Some(fx) = fixture() else { return };
    let key = fx.demo.public.as_str();
    let mut errs = Vec::new();
    for name in [
        "signed-xz",
        "signed-gzip",
        "unsigned",
        "tampered",
        "other-only",
    ] {
        let c = fx.cache(name);
        let url = c.url();
        let infos = path_info_all(fx, &url);
        let expected = |sp: &str| {
            let kind = fx.kind_of(sp)?;
            let &(sig, content) = c.paths.get(sp)?;
            Some(expected_status(kind, sig, content, false))
        };
        for (i, (sp, info)) in infos.iter().enumerate() {
            let hp = &sp["/nix/store/".len()..][..32];
            let what = if i % 2 == 0 { sp.as_str() } else { hp };
            let o = run_narscope(&["show", &url, what, "--json", "--trusted-key", key], &[]);
            assert_eq!(o.rc(), 0, "{}", o.failure("failed"));
            let v: Value = serde_json::from_str(&o.stdout)
                .unwrap_or_else(|e| panic!("{}", o.failure(&format!("not JSON: {e}"))));
            let field = |k: &str| {
                find_key(&v, k).unwrap_or_else(|| panic!("{}", o.failure(&format!("has no {k}"))))
            };
            let nh = field("narHash").as_str().unwrap_or_default();
            if hash::sha256_bytes(nh) != info.nar_hash {
                errs.push(format!(
                    "{name} show {what}: narHash {nh:?} differs from nix path-info"
                ));
            }
            if field("narSize").as_u64() != info.nar_size {
                errs.push(format!(
                    "{name} show {what}: narSize {} vs nix {:?}",
                    field("narSize"),
                    info.nar_size
                ));
            }
            if field("storePath").as_str() != Some(sp.as_str()) {
                errs.push(format!(
                    "{name} show {what}: storePath {}",
                    field("storePath")
                ));
            }
            let st = field("status").as_str();
            if st != expected(sp) {
                errs.push(format!(
                    "{name} show {what}: status {st:?}, expected {:?}",
                    expected(sp)
                ));
            }
        }
        let o = run_narscope(&["ls", &url, "--json", "--trusted-key", key], &[]);
        assert_eq!(o.rc(), 0, "{}", o.failure("failed"));
        let v: Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("{}", o.failure(&format!("not JSON: {e}"))));
        let entries = find_key(&v, "paths")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{}", o.failure("has no \"paths\" array")));
        let listed: BTreeMap<&str, Option<&str>> = entries
            .iter()
            .filter_map(|e| {
                let sp = e.get("storePath")?.as_str()?;
                Some((sp, e.get("status").and_then(Value::as_str)))
            })
            .collect();
        let want: BTreeSet<&str> = infos.keys().map(String::as_str).collect();
        let got: BTreeSet<&str> = listed.keys().copied().collect();
        if got != want {
            errs.push(format!(
                "{name} ls: listed {got:?}, nix path-info has {want:?}"
            ));
        }
        for (sp, st) in &listed {
            if *st != expected(sp) {
                errs.push(format!(
                    "{name} ls {sp}: status {st:?}, expected {:?}",
                    expected(sp)
                ));
            }
        }
    }
    fail_if_any(errs);
}

/// The fixture covers every signature state, NAR state and compression.
#[test]
fn fixture_covers_every_state() {
    let Some(fx) = fixture() else { return };
    let mut sigs = BTreeSet::new();
    let mut contents = BTreeSet::new();
    let mut comps = BTreeSet::new();
    for c in &fx.caches {
        comps.insert(c.compression);
        for &(s, n) in c.paths.values() {
            sigs.insert(format!("{s:?}"));
            contents.insert(format!("{n:?}"));
        }
    }
    assert_eq!(sigs.len(), 8, "{sigs:?}");
    assert_eq!(contents.len(), 5, "{contents:?}");
    assert_eq!(comps.len(), 6, "{comps:?}");
}
