//! `push`, `pull`, `sign` and `delete` against real Nix 2.8 and a real Garage server:
//! narscope's pushes are accepted by `nix copy --from` (file:// and HTTP) and run; Nix's pushes
//! pull back byte-identical; `sign` makes an unsigned cache trusted by `nix store verify`;
//! `delete --unsigned` removes exactly the unsigned paths; an interrupted push leaves no
//! narinfo without its NAR or references; bad input fails clearly and changes nothing.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::Garage;
use common::cmd::{ok, run};
use common::fs::copy_dir;
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

/// A closure of two paths made by real Nix: a content-addressed directory with a script, and
/// an input-addressed path whose script runs it (so it references it). Names carry `tag`.
struct Closure {
    leaf: String,
    top: String,
    tag: String,
}

fn make_closure(e: &Env, tag: &str) -> Closure {
    let src = e.root.path().join(format!("src-{tag}"));
    std::fs::create_dir_all(src.join("bin")).unwrap();
    let script = src.join("bin/hello");
    std::fs::write(&script, format!("#!/bin/sh\necho hello {tag}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("hello", src.join("bin/hi")).unwrap();
    let mut c = nix("nix-store", e);
    c.arg("--add").arg(&src);
    let leaf = ok(c);
    let expr = format!(
        "let a = builtins.storePath \"{leaf}\"; in derivation {{ name = \"top-{tag}\"; \
         system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \
         \"/bin/mkdir -p $out/bin; echo '#!/bin/sh' > $out/bin/run; echo 'exec ${{a}}/bin/hello' >> $out/bin/run; /bin/chmod +x $out/bin/run\" ]; }}"
    );
    let mut c = nix("nix-build", e);
    c.args(["--no-out-link", "-E", &expr]);
    let top = ok(c);
    Closure {
        leaf,
        top,
        tag: tag.to_string(),
    }
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

fn nar_hash_of(path: &Path) -> String {
    let s = narscope::nar::dump_path(path, std::io::sink()).unwrap();
    s.hash_hex()
}

#[test]
fn push_is_accepted_by_nix_copy_and_runs() {
    let Some(e) = env() else { return };
    let c = make_closure(e, &format!("push{}", common::random_hex(4)));
    let (sk, pk) = keygen(e, "push-1");
    let cache = e.root.path().join(format!("cache-{}", c.tag));
    let url = format!("file://{}", cache.display());
    let out = ok(narscope(
        e,
        &[
            "push",
            &url,
            &c.top,
            "--key-file",
            sk.to_str().unwrap(),
            "--compression",
            "xz",
        ],
    ));
    assert!(out.contains("2 uploaded"), "{out}");
    // Pushing again uploads nothing.
    let out = ok(narscope(
        e,
        &["push", &url, &c.top, "--key-file", sk.to_str().unwrap()],
    ));
    assert!(
        out.contains("0 uploaded") && out.contains("2 already"),
        "{out}"
    );
    // Nix verifies the cache with the key, then copies and runs the closure.
    let mut v = nix("nix", e);
    v.args([
        "store",
        "verify",
        "--store",
        &url,
        "--all",
        "--trusted-public-keys",
        &pk,
    ]);
    ok(v);
    delete_local(e, &[&c.top, &c.leaf]);
    let mut cp = nix("nix", e);
    cp.args([
        "copy",
        "--from",
        &url,
        "--option",
        "trusted-public-keys",
        &pk,
        &c.top,
    ]);
    ok(cp);
    let run_out = ok(Command::new(format!("{}/bin/run", c.top)));
    assert_eq!(run_out, format!("hello {}", c.tag));
}

#[test]
fn push_to_garage_is_substituted_over_http_with_signature_checks() {
    let Some(e) = env() else { return };
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let c = make_closure(e, &format!("http{}", common::random_hex(4)));
    let (sk, pk) = keygen(e, "http-1");
    let prefix = format!("p{}", c.tag);
    let url = g.url(&g.default_bucket, &prefix);
    let mut push = narscope(
        e,
        &["push", &url, &c.top, "--key-file", sk.to_str().unwrap()],
    );
    push.envs(g.env());
    let out = ok(push);
    assert!(out.contains("2 uploaded"), "{out}");
    delete_local(e, &[&c.top, &c.leaf]);
    let http = format!("{}/{prefix}", g.web_url);
    // Without the key Nix refuses; with it, substitution works.
    let mut bad = nix("nix-store", e);
    bad.args([
        "-r",
        &c.top,
        "--option",
        "substituters",
        &http,
        "--option",
        "trusted-public-keys",
        "x-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ]);
    assert!(!run(bad).status.success());
    let mut good = nix("nix-store", e);
    good.args([
        "-r",
        &c.top,
        "--option",
        "substituters",
        &http,
        "--option",
        "trusted-public-keys",
        &pk,
    ]);
    ok(good);
    assert_eq!(
        ok(Command::new(format!("{}/bin/run", c.top))),
        format!("hello {}", c.tag)
    );
}

#[test]
fn nix_pushes_and_narscope_pulls_byte_identical_trees() {
    let Some(e) = env() else { return };
    let c = make_closure(e, &format!("pull{}", common::random_hex(4)));
    let (sk, pk) = keygen(e, "pull-1");
    let cache = e.root.path().join(format!("cache-{}", c.tag));
    let url = format!("file://{}", cache.display());
    for comp in ["xz", "zstd", "bzip2", "none"] {
        let to = format!(
            "file://{}-{comp}?compression={comp}&secret-key={}",
            cache.display(),
            sk.display()
        );
        let mut cp = nix("nix", e);
        cp.args(["copy", "--to", &to, &c.top]);
        ok(cp);
        let src = format!("file://{}-{comp}", cache.display());
        let dir = e.root.path().join(format!("out-{}-{comp}", c.tag));
        let out = ok(narscope(
            e,
            &[
                "pull",
                &src,
                &c.top,
                "--to",
                dir.to_str().unwrap(),
                "-r",
                "--trusted-key",
                &pk,
            ],
        ));
        assert!(out.contains("pulled 2 path(s)"), "{comp}: {out}");
        for p in [&c.top, &c.leaf] {
            let base = Path::new(p).file_name().unwrap();
            assert_eq!(
                nar_hash_of(&dir.join(base)),
                nar_hash_of(Path::new(p)),
                "{comp}: {p}"
            );
        }
    }
    // Untrusted: refused before any download, nothing written.
    let mut cp = nix("nix", e);
    cp.args(["copy", "--to", &url, &c.top]);
    ok(cp);
    let dir = e.root.path().join(format!("out-{}-untrusted", c.tag));
    let out = run(narscope(
        e,
        &["pull", &url, &c.top, "--to", dir.to_str().unwrap()],
    ));
    assert_eq!(
        out.status.code(),
        Some(2),
        "refused: the not-trusted bit; {out:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to download") && err.contains("nothing was downloaded"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn pull_into_store_goes_through_nix_and_a_corrupt_nar_is_refused() {
    let Some(e) = env() else { return };
    let c = make_closure(e, &format!("imp{}", common::random_hex(4)));
    let (sk, pk) = keygen(e, "imp-1");
    let cache = e.root.path().join(format!("cache-{}", c.tag));
    let url = format!("file://{}", cache.display());
    ok(narscope(
        e,
        &["push", &url, &c.top, "--key-file", sk.to_str().unwrap()],
    ));
    // Corrupt a copy of the cache: one NAR's bytes flipped.
    let bad = e.root.path().join(format!("bad-{}", c.tag));
    copy_dir(&cache, &bad);
    let nar = std::fs::read_dir(bad.join("nar"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&nar).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0xff;
    std::fs::write(&nar, bytes).unwrap();
    let dir = e.root.path().join(format!("out-{}-bad", c.tag));
    let out = run(narscope(
        e,
        &[
            "pull",
            &format!("file://{}", bad.display()),
            &c.top,
            "-r",
            "--to",
            dir.to_str().unwrap(),
            "--trusted-key",
            &pk,
        ],
    ));
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not match") || err.contains("not a valid"),
        "{err}"
    );
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|d| d.file_name())
        .collect();
    assert!(
        kept.len() < 2,
        "the corrupt path must not be kept: {kept:?}"
    );

    delete_local(e, &[&c.top, &c.leaf]);
    let out = ok(narscope(
        e,
        &["pull", &url, &c.top, "--into-store", "--trusted-key", &pk],
    ));
    assert!(out.contains("imported into the Nix store"), "{out}");
    assert_eq!(
        ok(Command::new(format!("{}/bin/run", c.top))),
        format!("hello {}", c.tag)
    );
}

#[test]
fn sign_makes_nix_trust_an_unsigned_cache_and_rotates_keys() {
    let Some(e) = env() else { return };
    let c = make_closure(e, &format!("sign{}", common::random_hex(4)));
    let cache = e.root.path().join(format!("cache-{}", c.tag));
    let url = format!("file://{}", cache.display());
    let mut cp = nix("nix", e);
    cp.args(["copy", "--to", &url, &c.top]);
    ok(cp);
    let (sk, pk) = keygen(e, "sign-1");
    let verify = |k: &str| {
        let mut v = nix("nix", e);
        v.args([
            "store",
            "verify",
            "--store",
            &url,
            "--all",
            "--trusted-public-keys",
            k,
        ]);
        run(v).status.code()
    };
    assert_eq!(
        verify(&pk),
        Some(2),
        "unsigned: Nix does not trust the input-addressed path"
    );
    let top_ni = cache.join(format!(
        "{}.narinfo",
        &Path::new(&c.top).file_name().unwrap().to_string_lossy()[..32]
    ));
    let before = std::fs::read_to_string(&top_ni).unwrap();
    let sign_unsigned = || {
        let args = [
            "sign",
            &url,
            "--unsigned",
            "--key-file",
            sk.to_str().unwrap(),
        ];
        ok(narscope(e, &args))
    };
    let out = sign_unsigned();
    assert!(out.contains("changed 2 narinfo(s)"), "{out}");
    assert_eq!(verify(&pk), Some(0));
    let after = std::fs::read_to_string(&top_ni).unwrap();
    assert!(
        after.starts_with(&before),
        "only a Sig line was added:\n{before}\n---\n{after}"
    );
    assert_eq!(after.lines().count(), before.lines().count() + 1);
    // Again: nothing to do.
    let out = sign_unsigned();
    assert!(out.contains("changed 0"), "{out}");
    // Rotation: sign with a new key, drop the old one; Nix trusts the new key only.
    let (sk2, pk2) = keygen(e, "sign-2");
    ok(narscope(
        e,
        &[
            "sign",
            &url,
            "--all",
            "--key-file",
            sk2.to_str().unwrap(),
            "--remove-key",
            "sign-1",
        ],
    ));
    assert_eq!(verify(&pk2), Some(0));
    assert_eq!(verify(&pk), Some(2));
    // A wrong key file is a clear error and changes nothing.
    let junk = e.root.path().join("junk.sec");
    std::fs::write(&junk, "not a key").unwrap();
    let snapshot = std::fs::read_to_string(&top_ni).unwrap();
    let out = run(narscope(
        e,
        &["sign", &url, "--all", "--key-file", junk.to_str().unwrap()],
    ));
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.sec"), "{err}");
    assert!(err.contains("no ':' between key name"), "the cause: {err}");
    assert!(
        !err.contains("not a key"),
        "the key file's contents are never printed: {err}"
    );
    assert_eq!(std::fs::read_to_string(&top_ni).unwrap(), snapshot);
}

#[test]
fn delete_unsigned_removes_exactly_those_and_breaks_nothing() {
    let Some(e) = env() else { return };
    let signed = make_closure(e, &format!("keep{}", common::random_hex(4)));
    let loose = make_closure(e, &format!("loose{}", common::random_hex(4)));
    let (sk, pk) = keygen(e, "del-1");
    let cache = e.root.path().join(format!("cache-del-{}", signed.tag));
    let url = format!("file://{}", cache.display());
    ok(narscope(
        e,
        &[
            "push",
            &url,
            &signed.top,
            "--key-file",
            sk.to_str().unwrap(),
        ],
    ));
    ok(narscope(e, &["push", &url, &loose.top]));
    // loose.leaf is content-addressed, so it counts as trusted; loose.top is unsigned.
    let dry = ok(narscope(
        e,
        &[
            "delete",
            &url,
            "--unsigned",
            "--dry-run",
            "--trusted-key",
            &pk,
        ],
    ));
    assert!(dry.contains("delete 1 narinfo(s)"), "{dry}");
    assert!(dry.contains(&loose.top), "{dry}");
    // Without --yes off a terminal: refused.
    let out = run(narscope(
        e,
        &["delete", &url, "--unsigned", "--trusted-key", &pk],
    ));
    assert_ne!(out.status.code(), Some(0));
    ok(narscope(
        e,
        &["delete", &url, "--unsigned", "--yes", "--trusted-key", &pk],
    ));
    let hash = |p: &str| Path::new(p).file_name().unwrap().to_string_lossy()[..32].to_string();
    assert!(!cache.join(format!("{}.narinfo", hash(&loose.top))).exists());
    for p in [&signed.top, &signed.leaf, &loose.leaf] {
        assert!(
            cache.join(format!("{}.narinfo", hash(p))).exists(),
            "{p} kept"
        );
    }
    let mut v = nix("nix", e);
    v.args([
        "store",
        "verify",
        "--store",
        &url,
        "--all",
        "--trusted-public-keys",
        &pk,
    ]);
    ok(v);
    // Deleting a path something references is refused, and the cache is unchanged.
    let out = run(narscope(e, &["delete", &url, &signed.leaf, "--yes"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        cache
            .join(format!("{}.narinfo", hash(&signed.leaf)))
            .exists()
    );
    // Every NAR of what remains is there.
    let v = ok(narscope(
        e,
        &["verify", &url, "--contents", "--trusted-key", &pk],
    ));
    assert!(v.contains("3 "), "{v}");
}

#[test]
fn an_interrupted_push_leaves_no_narinfo_without_its_nar_or_references() {
    let Some(e) = env() else { return };
    let Some(g) = Garage::try_shared() else {
        return;
    };
    // A wider closure: one top path referencing many leaves.
    let tag = format!("int{}", common::random_hex(4));
    let mut leaves = Vec::new();
    for i in 0..24 {
        let src = e.root.path().join(format!("leaf-{tag}-{i}"));
        std::fs::create_dir_all(&src).unwrap();
        // Incompressible, so that xz -9 takes a good part of a second per path.
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64 + 1);
        let data: Vec<u8> = (0..1_000_000 + i * 1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(src.join("data"), data).unwrap();
        let mut c = nix("nix-store", e);
        c.arg("--add").arg(&src);
        leaves.push(ok(c));
    }
    let list = leaves
        .iter()
        .map(|l| format!("(builtins.storePath \"{l}\")"))
        .collect::<Vec<_>>()
        .join(" ");
    let expr = format!(
        "derivation {{ name = \"wide-{tag}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; \
         args = [ \"-c\" \"echo ${{toString [ {list} ]}} > $out\" ]; }}"
    );
    let mut b = nix("nix-build", e);
    b.args(["--no-out-link", "-E", &expr]);
    let top = ok(b);
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    let mut push = narscope(
        e,
        &[
            "push",
            &url,
            &top,
            "--compression",
            "xz",
            "--level",
            "9",
            "--jobs",
            "1",
        ],
    );
    push.envs(g.env());
    let mut child = push.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    send_sigint(child.id());
    let _ = child.wait();
    // Whatever made it: each narinfo's NAR exists and its references are narinfos too.
    let mut v = narscope(e, &["verify", &url, "--contents", "--json"]);
    v.envs(g.env());
    let out = run(v);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&out.stderr)));
    let paths = doc["paths"].as_array().unwrap();
    let present: std::collections::HashSet<String> = paths
        .iter()
        .filter_map(|p| p["storePath"].as_str())
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for p in paths {
        assert_ne!(p["status"], "corrupt", "a narinfo without its NAR: {p}");
        for r in p["references"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            assert!(
                present.contains(r),
                "{} references {r}, which is missing",
                p["storePath"]
            );
        }
    }
    // The interrupt came mid-push (else this tested nothing): xz -9 of 25 MB, one path at a
    // time, takes several seconds.
    assert!(
        present.len() < 25,
        "the push finished before the interrupt ({} paths)",
        present.len()
    );
    // And pushing again completes the closure, every NAR whole.
    let mut again = narscope(e, &["push", &url, &top]);
    again.envs(g.env());
    ok(again);
    let mut v = narscope(e, &["verify", &url, "--contents", "--json"]);
    v.envs(g.env());
    let doc: serde_json::Value = serde_json::from_slice(&run(v).stdout).unwrap();
    let paths = doc["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 25, "{doc}");
    for p in paths {
        assert_ne!(p["status"], "corrupt", "{p}");
    }
}

/// SIGINT, as ctrl-c.
fn send_sigint(pid: u32) {
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
}

#[test]
fn bad_input_fails_clearly() {
    let Some(e) = env() else { return };
    let cache = e.root.path().join("cache-bad");
    let url = format!("file://{}", cache.display());
    let out = run(narscope(
        e,
        &[
            "push",
            &url,
            "/nix/store/00000000000000000000000000000000-nope",
        ],
    ));
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nix path-info") && err.contains("00000000000000000000000000000000-nope"),
        "{err}"
    );
    let out = run(narscope(
        e,
        &[
            "push",
            "s3://b?endpoint=http://127.0.0.1:1&region=x",
            "/nix/store/00000000000000000000000000000000-nope",
            "--compression",
            "lz4",
        ],
    ));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--compression"),
        "{out:?}"
    );
    let out = run(narscope(e, &["delete", &url]));
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("say what to delete"));
    let out = run(narscope(
        e,
        &[
            "pull",
            "s3://nobucket?endpoint=http://127.0.0.1:1&region=x",
            "/nix/store/00000000000000000000000000000000-nope",
            "--to",
            "/tmp/x",
        ],
    ));
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}
