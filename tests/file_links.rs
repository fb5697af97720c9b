//! A file:// cache never leads narscope outside its directory: a narinfo and a NAR that are
//! symbolic links to a file elsewhere (whose first line is a marker) are refused by `ls`,
//! `show`, `verify --contents` and `pull`, which name the key and never print the marker.
//! Links that stay inside the cache keep working.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common;

use narscope::nix::NarInfo;

const MARKER: &str = "TOP-SECRET-MARKER-7f3a: this line lives outside the cache";

/// narscope isolated under `root` ([`common::cmd::narscope`]), logging at debug level (the
/// marker must not show up even there).
fn narscope(args: &[&str], root: &Path) -> Output {
    let mut c = common::cmd::narscope(args, root);
    c.env("RUST_LOG", "debug");
    common::cmd::run(c)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The demo cache with hello's narinfo and zlib's NAR replaced by links to `outside/secret`.
struct Linked {
    tmp: tempfile::TempDir,
    cache: String,
    public_key: String,
    /// hello's store path and narinfo key.
    hello: (String, String),
    /// zlib's store path and NAR key.
    zlib: (String, String),
    /// glibc's store path (its NAR is a link that stays inside).
    glibc: String,
}

fn find(dir: &Path, name: &str) -> (PathBuf, NarInfo) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "narinfo") {
            let info = NarInfo::parse(&std::fs::read_to_string(&p).unwrap(), "t").unwrap();
            if info.store_path.to_absolute().ends_with(name) {
                return (p, info);
            }
        }
    }
    panic!("{name} not in the demo cache");
}

fn linked() -> Linked {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let out = narscope(
        &["demo", "--no-tui", "--dir", dir.to_str().unwrap()],
        &tmp.path().join("ns"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("secret");
    std::fs::write(&secret, format!("{MARKER}\nsecond line\n")).unwrap();
    let (hello_file, hello) = find(&dir, "-hello-2.12.1");
    let (_, zlib) = find(&dir, "-zlib-1.3.1");
    let (_, glibc) = find(&dir, "-glibc-2.40-66");
    std::fs::remove_file(&hello_file).unwrap();
    std::os::unix::fs::symlink(&secret, &hello_file).unwrap();
    let zlib_nar = dir.join(&zlib.url);
    std::fs::remove_file(&zlib_nar).unwrap();
    std::os::unix::fs::symlink("../../outside/secret", &zlib_nar).unwrap();
    // glibc's NAR moves to another directory inside the cache, behind a link.
    let glibc_nar = dir.join(&glibc.url);
    std::fs::create_dir(dir.join("moved")).unwrap();
    let moved = dir.join("moved").join(glibc_nar.file_name().unwrap());
    std::fs::rename(&glibc_nar, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &glibc_nar).unwrap();
    Linked {
        public_key: std::fs::read_to_string(
            narscope::demo::key_dir(&dir).unwrap().join("demo-key.pub"),
        )
        .unwrap(),
        cache: dir.display().to_string(),
        hello: (
            hello.store_path.to_absolute(),
            hello_file
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        ),
        zlib: (zlib.store_path.to_absolute(), zlib.url.clone()),
        glibc: glibc.store_path.to_absolute(),
        tmp,
    }
}

impl Linked {
    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = narscope(args, &self.tmp.path().join("ns"));
        let t = text(&out);
        assert!(
            !t.contains("TOP-SECRET"),
            "content from outside shown:\n{t}"
        );
        assert!(
            !t.contains("second line"),
            "content from outside shown:\n{t}"
        );
        (out.status.code(), t)
    }

    fn refusal(&self, key: &str) -> String {
        format!(
            "`{key}` at file://{}: the key resolves outside the cache directory",
            self.cache
        )
    }
}

#[test]
fn ls_and_verify_report_the_refusal_by_key() {
    let c = linked();
    let (code, out) = c.run(&["ls", &c.cache, "--trusted-key", &c.public_key, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out[..out.find("\n}\n").unwrap() + 3])
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    let row = doc["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == c.hello.1.as_str())
        .unwrap_or_else(|| panic!("{} listed: {out}", c.hello.1));
    assert_eq!(row["status"], "error", "{row}");
    assert!(
        row["reasons"][0]
            .as_str()
            .unwrap()
            .contains(&c.refusal(&c.hello.1)),
        "{row}"
    );
    let (_, out) = c.run(&["ls", &c.cache, "--trusted-key", &c.public_key]);
    assert!(out.contains(&c.hello.1), "{out}");

    let (code, out) = c.run(&[
        "verify",
        &c.cache,
        "--trusted-key",
        &c.public_key,
        "--contents",
    ]);
    // corrupt (1) | not trusted (2) | error (4)
    assert_eq!(code, Some(7), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
            .to_string()
    };
    let hello = line(&c.hello.1);
    assert!(hello.starts_with("error "), "{hello}");
    assert!(hello.contains(&c.refusal(&c.hello.1)), "{hello}");
    let zlib = line(&c.zlib.0);
    assert!(zlib.contains(&c.refusal(&c.zlib.1)), "{zlib}");
    // The NAR behind a link inside the cache checks out.
    assert!(
        !out.contains(&c.glibc),
        "glibc is fine, so not listed:\n{out}"
    );
    let (_, out) = c.run(&[
        "verify",
        &c.cache,
        &c.glibc,
        "--trusted-key",
        &c.public_key,
        "--contents",
        "--long",
    ]);
    assert!(
        out.contains(&format!("trusted           {}", c.glibc)),
        "{out}"
    );
}

#[test]
fn show_and_pull_refuse_by_key() {
    let c = linked();
    let (code, out) = c.run(&["show", &c.cache, &c.hello.0, "--trusted-key", &c.public_key]);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(&format!("error: GET {}", c.refusal(&c.hello.1))),
        "{out}"
    );
    let (code, out) = c.run(&["show", &c.cache, &c.zlib.0, "--trusted-key", &c.public_key]);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(&format!("error: HEAD {}", c.refusal(&c.zlib.1))),
        "{out}"
    );

    let to = c.tmp.path().join("pulled");
    for (path, key) in [(&c.hello.0, &c.hello.1), (&c.zlib.0, &c.zlib.1)] {
        let (code, out) = c.run(&[
            "pull",
            &c.cache,
            path,
            "--to",
            to.to_str().unwrap(),
            "--trusted-key",
            &c.public_key,
        ]);
        assert_ne!(code, Some(0), "{out}");
        assert!(out.contains(&c.refusal(key)), "{out}");
    }
    let (code, out) = c.run(&[
        "pull",
        &c.cache,
        &c.glibc,
        "--to",
        to.to_str().unwrap(),
        "--trusted-key",
        &c.public_key,
    ]);
    assert_eq!(code, Some(0), "{out}");
    let base = c.glibc.rsplit('/').next().unwrap();
    assert!(to.join(base).exists(), "{out}");
}
