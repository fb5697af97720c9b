//! Where narscope follows Nix 2.8 (Debian `nix-bin`) rather than its own rules, and keys where
//! users expect them:
//! - NAR entries named with `~nix~case~hack~` (Nix's own test NAR) are ordinary names, as for
//!   Nix on Linux: restored, dumped, pushed, verified and pulled literally, both ways;
//! - an object at the cache root named like a narinfo that names no store path is reported by
//!   a whole-cache audit (as Nix's `nix store verify --all` fails on it) and left alone by gc;
//! - secret keys stored in a cache are reported by `info`, never printed;
//! - after `keygen`, `config trust` makes a fresh push trusted in `ls` without --trusted-key.
//!
//! Needs `nix` (set `NARSCOPE_SKIP_NIX=1` to skip the parts that use it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use crate::common;
use common::cmd::{ok, run, run_as_set};
use common::nix::skip_nix;

/// Nix's own test NAR (see tests/data/README.md): entries `Test`, `Test~nix~case~hack~1`
/// (a symlink) and `test`.
const CASE_NAR: &[u8] = include_bytes!("data/nix-case-collision.nar");

struct Env {
    root: tempfile::TempDir,
    nix: bool,
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let nix = !skip_nix();
        let root = tempfile::tempdir().unwrap();
        Env { root, nix }
    })
}

impl Env {
    fn dir(&self, name: &str) -> PathBuf {
        let d = self
            .root
            .path()
            .join(format!("{name}-{}", common::random_hex(4)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A Nix command under this module's root ([`common::nix::nix`]).
    fn nix(&self, program: &str) -> Command {
        common::nix::nix(program, self.root.path())
    }

    /// narscope under this module's root ([`common::cmd::narscope`]) with the narscope
    /// config file `config`.
    fn narscope(&self, config: &Path, args: &[&str]) -> Command {
        let mut c = common::cmd::narscope(args, self.root.path());
        c.env("NARSCOPE_CONFIG", config);
        c
    }

    /// A narscope config file that trusts nothing of its own.
    fn empty_config(&self) -> PathBuf {
        let p = self.dir("config").join("config.toml");
        std::fs::write(&p, "use-nix-conf = false\n").unwrap();
        p
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(c: Command) -> (Option<i32>, Value) {
    let o = run(c);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    (o.status.code(), v)
}

fn dump(e: &Env, path: &Path) -> Vec<u8> {
    let mut c = e.nix("nix-store");
    c.arg("--dump").arg(path);
    let o = run(c);
    assert!(o.status.success(), "{}", text(&o));
    o.stdout
}

fn delete_local(e: &Env, path: &str) {
    let mut q = e.nix("nix-store");
    q.args(["-q", "--referrers-closure", path]);
    let all = ok(q);
    let mut d = e.nix("nix-store");
    d.arg("--delete").args(all.lines());
    let _ = run(d);
    assert!(!Path::new(path).exists(), "{path} still in the store");
}

#[test]
fn case_hack_names_round_trip_between_nix_and_narscope() {
    let e = env();
    if !e.nix {
        return;
    }
    let work = e.dir("case");
    // Nix on Linux restores the NAR literally and dumps it back byte for byte.
    let tree = work.join(format!("case-hack-{}", common::random_hex(4)));
    let mut c = e.nix("nix-store");
    c.arg("--restore").arg(&tree);
    c.stdin(std::fs::File::open(write_nar(&work)).unwrap());
    let o = run_as_set(c);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::symlink_metadata(tree.join("Test~nix~case~hack~1"))
            .unwrap()
            .is_symlink()
    );
    assert!(dump(e, &tree) == CASE_NAR, "Nix's own round trip");
    // narscope's NAR writer agrees with Nix's, byte for byte.
    let mut mine = Vec::new();
    narscope::nar::dump_path(&tree, &mut mine).unwrap();
    assert!(mine == CASE_NAR, "narscope dumps Nix's bytes");

    // Into the store (content-addressed), pushed by narscope, checked by both.
    let mut add = e.nix("nix-store");
    add.arg("--add").arg(&tree);
    let path = ok(add);
    let cache = work.join("cache");
    let url = format!("file://{}", cache.display());
    let cfg = e.empty_config();
    let out = ok(e.narscope(&cfg, &["push", &url, &path]));
    assert!(out.contains("1 uploaded"), "{out}");
    let (code, doc) = json(e.narscope(&cfg, &["verify", &url, "--contents", "--json"]));
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["paths"][0]["status"], "content-addressed", "{doc}");
    // `ls` lists it; its .ls-free narinfo carries Nix's NarHash.
    let mut info = e.nix("nix");
    info.args(["path-info", "--json", &path]);
    let local: Value = serde_json::from_str(&ok(info)).unwrap();
    let mut info = e.nix("nix");
    info.args(["path-info", "--json", "--store", &url, &path]);
    let cached: Value = serde_json::from_str(&ok(info)).unwrap();
    assert_eq!(local[0]["narHash"], cached[0]["narHash"]);
    // Nix accepts narscope's cache: verify, then copy it back after deleting it locally.
    let mut v = e.nix("nix");
    v.args(["store", "verify", "--store", &url, "--all"]);
    ok(v);
    delete_local(e, &path);
    let mut cp = e.nix("nix");
    cp.args(["copy", "--from", &url, &path]);
    ok(cp);
    assert!(dump(e, Path::new(&path)) == CASE_NAR);

    // narscope pulls (and unpacks) Nix's own push of it, names restored literally.
    let nix_cache = work.join("nix-cache");
    let nix_url = format!("file://{}?write-nar-listing=true", nix_cache.display());
    let mut cp = e.nix("nix");
    cp.args(["copy", "--to", &nix_url, &path]);
    ok(cp);
    let plain = format!("file://{}", nix_cache.display());
    let (code, doc) = json(e.narscope(&cfg, &["verify", &plain, "--contents", "--json"]));
    assert_eq!(code, Some(0), "{doc}");
    let to = work.join("pulled");
    ok(e.narscope(&cfg, &["pull", &plain, &path, "--to", to.to_str().unwrap()]));
    let base = Path::new(&path).file_name().unwrap();
    let pulled = to.join(base);
    assert!(
        std::fs::symlink_metadata(pulled.join("Test~nix~case~hack~1"))
            .unwrap()
            .is_symlink()
    );
    assert!(
        dump(e, &pulled) == CASE_NAR,
        "pulled tree dumps to Nix's bytes"
    );
}

fn write_nar(dir: &Path) -> PathBuf {
    let p = dir.join("case-collision.nar");
    std::fs::write(&p, CASE_NAR).unwrap();
    p
}

/// A narinfo-shaped object whose hash part has a `u`. Nix 2.8 on such a file:// cache:
/// `nix store verify --all` exits 1 with
/// `error: store path 'u0000000000000000000000000000000-x' contains illegal base-32 character 'u'`
/// (Nix parses every 40-character `*.narinfo` name as `<hash>-x`; a name of another length it
/// skips, which narscope reports too).
#[test]
fn a_misnamed_narinfo_is_an_error_in_a_whole_cache_audit_and_left_alone_by_gc() {
    let e = env();
    let tmp = e.dir("misnamed");
    let dir = tmp.join("cache");
    let cfg = e.empty_config();
    let out = run(e.narscope(&cfg, &["demo", "--no-tui", "--dir", dir.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out));
    let pk = std::fs::read_to_string(tmp.join("cache.keys/demo-key.pub")).unwrap();
    let c = dir.to_str().unwrap();
    let (code, before) = json(e.narscope(&cfg, &["verify", c, "--trusted-key", &pk, "--json"]));
    let bad = "u0000000000000000000000000000000.narinfo";
    let short = "0000000000000000000000000000000.narinfo";
    std::fs::write(
        dir.join(bad),
        "StorePath: /nix/store/u0000000000000000000000000000000-x\n",
    )
    .unwrap();
    std::fs::write(dir.join(short), "x").unwrap();
    if e.nix {
        let mut v = e.nix("nix");
        v.args([
            "store",
            "verify",
            "--all",
            "--store",
            &format!("file://{c}"),
        ]);
        let o = run(v);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(
                "store path 'u0000000000000000000000000000000-x' contains illegal base-32 character 'u'"
            ),
            "{}",
            text(&o)
        );
    }
    // verify: one error per misnamed object, with the reason; exit bit 4 added.
    let (after_code, after) =
        json(e.narscope(&cfg, &["verify", c, "--trusted-key", &pk, "--json"]));
    assert_eq!(after_code, Some(code.unwrap() | 4), "{after}");
    assert_eq!(
        after["summary"]["error"].as_u64().unwrap(),
        before["summary"]["error"].as_u64().unwrap() + 2
    );
    let paths = after["paths"].as_array().unwrap();
    for (key, why) in [
        (
            bad,
            "contains 'u', which is not a character of Nix's base-32 alphabet",
        ),
        (short, "has 31 characters, not 32"),
    ] {
        let p = paths
            .iter()
            .find(|p| p["key"] == key)
            .unwrap_or_else(|| panic!("{key} not reported: {after}"));
        assert_eq!(p["status"], "error");
        assert_eq!(p["storePath"], Value::Null);
        let reason = p["reasons"][0].as_str().unwrap();
        assert!(
            reason.contains(key) && reason.contains(why) && reason.contains("remove it by hand"),
            "{reason}"
        );
    }
    // Human verify, ls and info name it too.
    let o = run(e.narscope(&cfg, &["verify", c, "--trusted-key", &pk]));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(bad),
        "{}",
        text(&o)
    );
    let ls = ok(e.narscope(&cfg, &["ls", c, "--trusted-key", &pk]));
    assert!(ls.contains(bad) && ls.contains(short), "{ls}");
    let (_, info) = json(e.narscope(&cfg, &["info", c, "--trusted-key", &pk, "--json"]));
    let problems = info["problems"].as_array().unwrap();
    for key in [bad, short] {
        assert!(
            problems
                .iter()
                .any(|p| p["object"] == key && p["kind"] == "misnamed-narinfo"),
            "{info}"
        );
    }
    let human = ok(e.narscope(&cfg, &["info", c, "--trusted-key", &pk]));
    assert!(
        human.contains(&format!("BROKEN: `{bad}` is named like a narinfo")),
        "{human}"
    );
    // gc neither refuses because of it nor plans to delete it.
    let gc = run(e.narscope(
        &cfg,
        &[
            "gc",
            c,
            "--allow-no-roots",
            "--grace",
            "0s",
            "--dry-run",
            "--trusted-key",
            &pk,
        ],
    ));
    let gc_text = text(&gc);
    assert!(gc.status.success(), "{gc_text}");
    assert!(
        !gc_text.contains(bad) && !gc_text.contains(short),
        "{gc_text}"
    );
    // delete cannot name it: it is no store path.
    let del = run(e.narscope(&cfg, &["delete", c, bad, "--yes"]));
    assert_eq!(del.status.code(), Some(4), "{}", text(&del));
    assert!(dir.join(bad).exists() && dir.join(short).exists());
}

/// A secret key stored in a cache (at the root under a stray name, and as `x.sec` in a
/// subdirectory) is reported by `info` by object and key name; the key is never printed.
#[test]
fn info_reports_secret_keys_stored_in_the_cache() {
    let e = env();
    let tmp = e.dir("leak");
    let dir = tmp.join("cache");
    let cfg = e.empty_config();
    ok(e.narscope(&cfg, &["demo", "--no-tui", "--dir", dir.to_str().unwrap()]));
    let sk = narscope::nix::SecretKey::generate("leaky.example.org-1").unwrap();
    let secret = sk.to_file_text();
    std::fs::write(dir.join("old-backup"), &secret).unwrap();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/x.sec"), format!("{secret}\n")).unwrap();
    // Its public half and a large .key file are no secret keys.
    std::fs::write(dir.join("keys/y.key"), sk.public_key().to_string()).unwrap();
    let c = dir.to_str().unwrap();
    let o = run(e.narscope(&cfg, &["info", c, "--json"]));
    let all = text(&o);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc["secretKeys"],
        serde_json::json!([
            {"object": "keys/x.sec", "keyName": "leaky.example.org-1"},
            {"object": "old-backup", "keyName": "leaky.example.org-1"},
        ]),
        "{doc}"
    );
    for object in ["keys/x.sec", "old-backup"] {
        let want = format!(
            "secret key in the cache: {object}; anyone who can read the cache can sign as leaky.example.org-1; delete it and rotate the key"
        );
        assert!(
            doc["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["kind"] == "secret-key" && p["message"] == want.as_str()),
            "{doc}"
        );
    }
    assert!(doc["keyCheck"]["checked"].as_u64().unwrap() >= 3, "{doc}");
    assert_eq!(doc["keyCheck"]["notChecked"], 0);
    let human = run(e.narscope(&cfg, &["info", c]));
    let human_text = text(&human);
    assert!(
        human_text.contains("problems:\n  - secret key in the cache: keys/x.sec;"),
        "{human_text}"
    );
    let b64 = secret.split_once(':').unwrap().1;
    for out in [&all, &human_text] {
        for piece in b64.as_bytes().chunks(12) {
            assert!(
                !out.contains(std::str::from_utf8(piece).unwrap()),
                "key data printed: {out}"
            );
        }
    }
}

/// `keygen` says what to do next (never the secret); `config trust` then makes a fresh push
/// trusted in `ls` without --trusted-key, by name and by URL; trusting twice changes nothing.
#[test]
fn keygen_next_steps_and_config_trust_make_a_fresh_push_trusted() {
    let e = env();
    let work = e.dir("trust");
    let cfg = work.join("conf dir/narscope.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "# my narscope settings\nuse-nix-conf = false\n").unwrap();
    let (sec, publ) = (work.join("my.sec"), work.join("my.pub"));
    let out = ok(e.narscope(
        &cfg,
        &[
            "keygen",
            "mine.example.org-1",
            "--secret-key-file",
            sec.to_str().unwrap(),
            "--public-key-file",
            publ.to_str().unwrap(),
        ],
    ));
    let pk = std::fs::read_to_string(&publ).unwrap();
    let secret = std::fs::read_to_string(&sec).unwrap();
    assert!(
        out.contains(&format!("extra-trusted-public-keys = {pk}"))
            && out.contains(&format!("narscope config trust CACHE {}", publ.display()))
            && out.contains(&format!("--key-file {}", sec.display())),
        "{out}"
    );
    let b64 = secret.split_once(':').unwrap().1;
    assert!(!out.contains(&b64[..16]), "secret printed: {out}");
    if !e.nix {
        return;
    }
    // An input-addressed path, signed as it is pushed.
    let t = common::random_hex(4);
    let expr = format!(
        "derivation {{ name = \"fresh-{t}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo {t} > $out\" ]; }}"
    );
    let mut b = e.nix("nix-build");
    b.args(["--no-out-link", "-E", &expr]);
    let path = ok(b);
    let cache = work.join("cache");
    let url = format!("file://{}", cache.display());
    ok(e.narscope(
        &cfg,
        &["push", &url, &path, "--key-file", sec.to_str().unwrap()],
    ));
    let status = |args: &[&str]| -> String {
        let (_, doc) = json(e.narscope(&cfg, args));
        doc["paths"][0]["status"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    };
    // Nothing trusts the key yet: the push is untrusted.
    assert_eq!(status(&["ls", &url, "--json"]), "untrusted");
    // A URL that is not named yet needs --name; nothing is written without it.
    let o = run(e.narscope(&cfg, &["config", "trust", &url, publ.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("give --name NAME"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "# my narscope settings\nuse-nix-conf = false\n"
    );
    let out = ok(e.narscope(
        &cfg,
        &[
            "config",
            "trust",
            &url,
            publ.to_str().unwrap(),
            "--name",
            "mine",
        ],
    ));
    assert!(
        out.contains(&format!("trusted {pk} for cache 'mine'")),
        "{out}"
    );
    let written = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        written.starts_with("# my narscope settings\nuse-nix-conf = false\n"),
        "{written}"
    );
    assert_eq!(status(&["ls", "mine", "--json"]), "trusted");
    assert_eq!(status(&["ls", &url, "--json"]), "trusted");
    // The secret key file works as KEY too (its public half); the second time changes nothing.
    let out = ok(e.narscope(&cfg, &["config", "trust", "mine", sec.to_str().unwrap()]));
    assert!(
        out.contains("already trusted") && !out.contains(&b64[..16]),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), written);
    let shown = ok(e.narscope(&cfg, &["config", "show"]));
    assert!(
        shown.contains(&format!("config file: {}", cfg.display()))
            && shown.contains(&format!("cache 'mine': {url}\n  {pk}")),
        "{shown}"
    );
    // --global, into a config that does not exist yet (created with its directory).
    let fresh = work.join("new/dir/config.toml");
    ok(e.narscope(&fresh, &["config", "trust", "--global", &pk]));
    std::fs::write(
        &fresh,
        std::fs::read_to_string(&fresh).unwrap() + "use-nix-conf = false\n",
    )
    .unwrap();
    assert_eq!(status_with(e, &fresh, &url), "trusted");
}

fn status_with(e: &Env, cfg: &Path, url: &str) -> String {
    let (_, doc) = json(e.narscope(cfg, &["ls", url, "--json"]));
    doc["paths"][0]["status"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}
