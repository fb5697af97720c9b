//! Nix's write parameters in the cache URL, with real Nix 2.8 as the referee: for each one,
//! `nix copy --to 'file://A?…'` and `narscope push 'file://B?…'` of the same closure write
//! the same object keys (NAR extensions, `.ls`, `debuginfo/`), byte-equal listings and
//! debuginfo links, narinfos with the same fields and signatures, and Nix reads B back
//! (`nix store verify` with the keys, checking contents, and `nix copy --from`). A parameter
//! narscope cannot honour, a flag that contradicts the URL and an unreadable or malformed key
//! file fail before anything is written: the cache directory stays byte for byte as it was.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::cmd::{ok, run};
use common::nix::{nix, nix_add, nix_build, skip_nix};

struct Fx {
    root: tempfile::TempDir,
    /// A source tree added to the store: a debug file under lib/debug/.build-id, awkward
    /// names, a symlink, an executable.
    leaf: String,
    /// A derivation output that references `leaf`.
    top: String,
    /// A path of about 9 MiB, so that parallel zstd writes more than one frame.
    big: String,
    /// Nix-made key pairs: (secret file, public key).
    k1: (PathBuf, String),
    k2: (PathBuf, String),
}

const BUILD_ID: &str = "ab/0123456789abcdef0123456789abcdef012345.debug";

fn fx() -> Option<&'static Fx> {
    static F: OnceLock<Option<Fx>> = OnceLock::new();
    F.get_or_init(|| {
        if skip_nix() {
            return None;
        }
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let tag = common::random_hex(4);
        let src = r.join(format!("src-{tag}"));
        let debug = src.join("lib/debug/.build-id").join(BUILD_ID);
        std::fs::create_dir_all(debug.parent().unwrap()).unwrap();
        std::fs::write(&debug, format!("ELF debug {tag}\n")).unwrap();
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::write(src.join("bin/hello"), format!("#!/bin/sh\necho {tag}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            src.join("bin/hello"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        // Names Nix writes into listings with escapes (backspace, form feed) and as UTF-8.
        std::fs::write(src.join("bin/a\u{8}b\u{c}"), "x").unwrap();
        std::fs::write(src.join("bin/é"), "").unwrap();
        std::os::unix::fs::symlink("hello", src.join("bin/hi")).unwrap();
        let leaf = nix_add(r, &src);
        let top = nix_build(
            r,
            &format!(
                "let a = builtins.storePath \"{leaf}\"; in derivation {{ name = \"top-{tag}\"; \
             system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \
             \"/bin/mkdir -p $out/bin; echo 'exec ${{a}}/bin/hello' > $out/bin/run\" ]; }}"
            ),
        );
        let big = nix_build(
            r,
            &format!(
                "derivation {{ name = \"big-{tag}\"; system = builtins.currentSystem; builder = \
             \"/bin/sh\"; args = [ \"-c\" \"/usr/bin/head -c 7000000 /dev/urandom | \
             /usr/bin/base64 > $out\" ]; }}"
            ),
        );
        let key = |name: &str| {
            let (sk, pk) = (r.join(format!("{name}.sec")), r.join(format!("{name}.pub")));
            let mut c = nix("nix-store", r);
            c.arg("--generate-binary-cache-key")
                .arg(name)
                .arg(&sk)
                .arg(&pk);
            ok(c);
            (sk, std::fs::read_to_string(&pk).unwrap().trim().to_string())
        };
        let (k1, k2) = (key("url-params-1"), key("url-params-2"));
        Some(Fx {
            root,
            leaf,
            top,
            big,
            k1,
            k2,
        })
    })
    .as_ref()
}

impl Fx {
    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn nix(&self, args: &[&str]) -> Output {
        let mut c = nix("nix", self.root.path());
        c.args(args);
        run(c)
    }

    fn narscope(&self, args: &[&str]) -> Output {
        run(common::cmd::narscope(args, &self.dir("narscope-state")))
    }
}

fn must(o: Output, what: &str) -> Output {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Every file under `root` (relative path → contents) and every directory (→ None).
fn snapshot(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn files(root: &Path) -> Vec<String> {
    snapshot(root)
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect()
}

/// `s` with the FileHash part of every NAR key (`nar/<52 nix32>`) blanked: it differs between
/// two compressors' bytes (zstd, br, gzip and the parallel encoders are not Nix's libraries).
fn blank_nar_hashes(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("nar/") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        if rest.len() >= 52 && rest[..52].bytes().all(|b| b.is_ascii_alphanumeric()) {
            out.push('*');
            rest = &rest[52..];
        }
    }
    out.push_str(rest);
    out
}

fn fields(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in text.lines() {
        if let Some((k, v)) = l.split_once(": ") {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

/// One parameter set: Nix writes A with `nix_query` (then `nix_after` runs on A), narscope
/// writes B with `query`; both must agree, and Nix must read B back with the keys trusted.
fn same_as_nix(name: &str, query: &str, nix_query: &str, paths: &[&str], nix_after: &[&str]) {
    let Some(f) = fx() else { return };
    let (a, b) = (f.dir(&format!("{name}-A")), f.dir(&format!("{name}-B")));
    let a_url = format!("file://{}?{nix_query}", a.display());
    let mut args = vec!["copy", "--to", &a_url];
    args.extend(paths);
    must(f.nix(&args), &format!("{name}: nix copy"));
    if !nix_after.is_empty() {
        let url = format!("file://{}", a.display());
        let mut args = nix_after.to_vec();
        args.extend(["--store", &url]);
        args.extend(paths);
        must(f.nix(&args), &format!("{name}: nix {nix_after:?}"));
    }
    let b_url = format!("file://{}?{query}", b.display());
    let mut args = vec!["push", &b_url];
    args.extend(paths);
    let out = must(f.narscope(&args), &format!("{name}: narscope push"));
    let stdout = String::from_utf8_lossy(&out.stdout);

    // The same objects (NAR keys up to their FileHash); Nix's own empty directories (log/,
    // realisations/) aside.
    let blanked = |d: &Path| {
        files(d)
            .iter()
            .map(|k| blank_nar_hashes(k))
            .collect::<Vec<_>>()
    };
    assert_eq!(blanked(&a), blanked(&b), "{name}: object keys");
    let keys = files(&b);
    for k in &keys {
        if k.starts_with("nar/") {
            continue;
        }
        let (x, y) = (
            std::fs::read(a.join(k)).unwrap(),
            std::fs::read(b.join(k)).unwrap(),
        );
        if k.starts_with("debuginfo/") {
            // The same bytes but for the NAR each cache holds.
            let (x, y) = (String::from_utf8_lossy(&x), String::from_utf8_lossy(&y));
            assert_eq!(blank_nar_hashes(&x), blank_nar_hashes(&y), "{name}: {k}");
            let url = &y[y.find("../").unwrap() + 3..y.find("\",\"member").unwrap()];
            assert!(b.join(url).is_file(), "{name}: {k} points at {url}");
        }
        if k.ends_with(".ls") {
            assert!(
                x == y,
                "{name}: {k} differs:\n{}\n{}",
                String::from_utf8_lossy(&x),
                String::from_utf8_lossy(&y)
            );
        }
        if k.ends_with(".narinfo") {
            let (fa, fb) = (
                fields(&String::from_utf8_lossy(&x)),
                fields(&String::from_utf8_lossy(&y)),
            );
            for field in [
                "StorePath",
                "NarHash",
                "NarSize",
                "References",
                "Deriver",
                "Compression",
                "CA",
                "Sig",
            ] {
                assert_eq!(fa.get(field), fb.get(field), "{name}: {k}: {field}");
            }
            // The NAR key has Nix's extension; FileHash and FileSize are B's own file's.
            let url = &fb["URL"][0];
            let ext = |u: &str| u.split_once(".nar").map(|(_, e)| e.to_string());
            assert_eq!(ext(&fa["URL"][0]), ext(url), "{name}: {k}: NAR extension");
            let nar = std::fs::read(b.join(url)).unwrap();
            assert_eq!(fb["FileSize"], [nar.len().to_string()], "{name}: {k}");
            let h = narscope::nix::Hash::sha256_of(&nar).to_string();
            assert_eq!(fb["FileHash"], [h], "{name}: {k}");
        }
    }
    let compression = fields(&String::from_utf8_lossy(
        &std::fs::read(b.join(keys.iter().find(|k| k.ends_with(".narinfo")).unwrap())).unwrap(),
    ))["Compression"][0]
        .clone();
    assert!(
        stdout.contains(&format!("NARs compressed with {compression}")),
        "{name}: {stdout}"
    );

    // Nix reads B back: signatures under the keys, NARs decoded and hashed.
    let b_plain = format!("file://{}", b.display());
    let trusted = format!("{} {}", f.k1.1, f.k2.1);
    let mut args = vec![
        "store",
        "verify",
        "--store",
        &b_plain,
        "--trusted-public-keys",
        &trusted,
        "-r",
    ];
    args.extend(paths);
    must(f.nix(&args), &format!("{name}: nix store verify of B"));
    let fresh = f.dir(&format!("{name}-fresh"));
    let to = format!("local?root={}", fresh.display());
    let mut args = vec![
        "copy",
        "--from",
        &b_plain,
        "--to",
        &to,
        "--trusted-public-keys",
        &trusted,
    ];
    args.extend(paths);
    must(f.nix(&args), &format!("{name}: nix copy --from B"));
}

fn k1() -> String {
    fx().map(|f| f.k1.0.display().to_string())
        .unwrap_or_default()
}

#[test]
fn compression_extensions_and_listings_as_nix_writes_them() {
    let Some(f) = fx() else { return };
    let k = k1();
    for c in ["xz", "zstd", "bzip2", "br", "gzip", "none"] {
        let q = format!("compression={c}&write-nar-listing=true&secret-key={k}");
        same_as_nix(&format!("c-{c}"), &q, &q, &[&f.top], &[]);
    }
    let q = format!("compression=xz&compression-level=1&secret-key={k}");
    same_as_nix("level", &q, &q, &[&f.top], &[]);
}

#[test]
fn index_debug_info_links_as_nix_writes_them_and_never_overwrites() {
    let Some(f) = fx() else { return };
    let q = format!("compression=xz&index-debug-info=true&secret-key={}", k1());
    same_as_nix("debuginfo", &q, &q, &[&f.top], &[]);
    let b = f.dir("debuginfo-B");
    let link = format!("debuginfo/{}", BUILD_ID.replace('/', ""));
    assert!(b.join(&link).is_file(), "{link}");
    // An existing link stays as it is when another cache's push indexes the same build ID.
    let c = f.dir("debuginfo-C");
    std::fs::create_dir_all(c.join("debuginfo")).unwrap();
    std::fs::write(c.join(&link), b"theirs").unwrap();
    let url = format!("file://{}?index-debug-info=true", c.display());
    must(f.narscope(&["push", &url, &f.leaf]), "push to C");
    assert_eq!(std::fs::read(c.join(&link)).unwrap(), b"theirs");
}

#[test]
fn parallel_compression_writes_what_readers_decode() {
    let Some(f) = fx() else { return };
    for c in ["xz", "zstd"] {
        let q = format!(
            "compression={c}&parallel-compression=true&secret-key={}",
            k1()
        );
        same_as_nix(&format!("par-{c}"), &q, &q, &[&f.big], &[]);
    }
    // zstd in independent frames (one per 8 MiB of NAR): the 9 MiB NAR is two.
    let b = f.dir("par-zstd-B");
    let nar = files(&b)
        .into_iter()
        .find(|k| k.ends_with(".nar.zst"))
        .unwrap();
    let bytes = std::fs::read(b.join(nar)).unwrap();
    let mut rest = &bytes[..];
    let mut frames = 0;
    while !rest.is_empty() {
        let n = zstd::zstd_safe::find_frame_compressed_size(rest).unwrap();
        rest = &rest[n..];
        frames += 1;
    }
    assert_eq!(frames, 2);
}

#[test]
fn every_secret_key_signs() {
    let Some(f) = fx() else { return };
    let (k1, k2) = (f.k1.0.display(), f.k2.0.display());
    // Nix 2.8 knows one secret-key; the second signature comes from `nix store sign`.
    let nix_q = format!("compression=zstd&secret-key={k1}");
    let k2s = f.k2.0.display().to_string();
    let sign = ["store", "sign", "--key-file", &k2s, "-r"];
    same_as_nix(
        "keys",
        &format!("compression=zstd&secret-keys={k1},{k2}"),
        &nix_q,
        &[&f.top],
        &sign,
    );
    same_as_nix(
        "keys-mixed",
        &format!("compression=zstd&secret-key={k1}&secret-keys={k2}"),
        &nix_q,
        &[&f.top],
        &sign,
    );
    for k in files(&f.dir("keys-B"))
        .iter()
        .filter(|k| k.ends_with(".narinfo"))
    {
        let text = std::fs::read_to_string(f.dir("keys-B").join(k)).unwrap();
        assert!(
            text.contains("Sig: url-params-1:") && text.contains("Sig: url-params-2:"),
            "{text}"
        );
    }
}

/// `args` (with `{url}` for the cache URL built from `query`) fails, naming every `needle`, and
/// leaves the cache directory as it was: an empty directory, and one holding a cache.
fn refused(name: &str, args: &[&str], query: &str, needles: &[&str]) {
    let Some(f) = fx() else { return };
    let empty = f.dir(&format!("refused-{name}-empty"));
    std::fs::create_dir_all(&empty).unwrap();
    let full = f.dir(&format!("refused-{name}-full"));
    let url = format!("file://{}", full.display());
    must(f.narscope(&["push", &url, &f.leaf]), "seed push");
    for dir in [&empty, &full] {
        let before = snapshot(dir);
        let url = format!("file://{}?{query}", dir.display());
        let args: Vec<String> = args.iter().map(|a| a.replace("{url}", &url)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = f.narscope(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {args:?} succeeded");
        for n in needles {
            assert!(err.contains(n), "{name}: {n:?} not in: {err}");
        }
        assert!(snapshot(dir) == before, "{name}: {} changed", dir.display());
    }
}

#[test]
fn what_cannot_be_honoured_is_refused_before_anything_is_written() {
    let Some(f) = fx() else { return };
    let top = f.top.as_str();
    let push = ["push", "{url}", top];
    refused(
        "unknown",
        &push,
        "compression=xz&compresion-level=3",
        &["unknown parameter `compresion-level`"],
    );
    refused("lz4", &push, "compression=lz4", &["compression=`lz4`"]);
    refused(
        "level",
        &push,
        "compression=xz&compression-level=12",
        &["compression level 12"],
    );
    refused(
        "parallel",
        &push,
        "compression=bzip2&parallel-compression=true",
        &["xz and zstd only"],
    );
    refused(
        "flag",
        &["push", "{url}", top, "--compression", "zstd"],
        "compression=xz",
        &["--compression zstd", "compression=xz"],
    );
    refused(
        "init-flag",
        &["init", "{url}", "--priority", "40"],
        "priority=30",
        &["--priority 40", "priority=30"],
    );

    // Key files: missing, malformed, a public key where the secret belongs. Never printed.
    let missing = f.dir("no-such.sec");
    let bad = f.dir("bad.sec");
    let secret = std::fs::read_to_string(&f.k2.0).unwrap();
    let (name, b64) = secret.trim().split_once(':').unwrap();
    let flipped = if b64.starts_with('A') { "B" } else { "A" };
    std::fs::write(&bad, format!("{name}:{flipped}{}", &b64[1..])).unwrap();
    let public = f.dir("public.sec");
    std::fs::write(&public, &f.k2.1).unwrap();
    let k1 = k1();
    for (label, q, file, param) in [
        (
            "missing",
            format!("secret-key={}", missing.display()),
            &missing,
            "secret-key=",
        ),
        (
            "malformed",
            format!("secret-keys={k1},{}", bad.display()),
            &bad,
            "secret-keys=",
        ),
        (
            "public",
            format!("secret-key={}", public.display()),
            &public,
            "secret-key=",
        ),
    ] {
        let file = file.display().to_string();
        refused(&format!("key-{label}"), &push, &q, &[&file, param]);
        refused(
            &format!("init-key-{label}"),
            &["init", "{url}"],
            &q,
            &[&file, param],
        );
        refused(
            &format!("sign-key-{label}"),
            &["sign", "{url}", "--all"],
            &q,
            &[&file, param],
        );
    }
    let flag = ["push", "{url}", top, "--key-file", bad.to_str().unwrap()];
    refused(
        "key-flag",
        &flag,
        "",
        &[bad.to_str().unwrap(), "--key-file"],
    );
    // No message carried the secret.
    let out = f.narscope(&[
        "push",
        &format!(
            "file://{}?secret-key={}",
            f.dir("x").display(),
            bad.display()
        ),
        top,
    ]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&b64[2..]));
}

#[test]
fn init_and_push_write_priority_and_want_mass_query_from_the_url() {
    let Some(f) = fx() else { return };
    let c = f.dir("init-url");
    let url = format!("file://{}?priority=30&want-mass-query=true", c.display());
    must(f.narscope(&["init", &url, "--priority", "30"]), "init");
    let info = std::fs::read_to_string(c.join("nix-cache-info")).unwrap();
    assert_eq!(
        info,
        "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n"
    );
    let p = f.dir("push-url");
    let url = format!("file://{}?priority=50&want-mass-query=false", p.display());
    must(f.narscope(&["push", &url, &f.leaf]), "push");
    let info = std::fs::read_to_string(p.join("nix-cache-info")).unwrap();
    assert_eq!(
        info,
        "StoreDir: /nix/store\nWantMassQuery: 0\nPriority: 50\n"
    );
    // And Nix reads it.
    let plain = format!("file://{}", p.display());
    must(
        f.nix(&["path-info", "--store", &plain, &f.leaf]),
        "nix path-info",
    );
}

#[test]
fn sign_signs_with_the_url_keys() {
    let Some(f) = fx() else { return };
    let c = f.dir("sign-url");
    let plain = format!("file://{}", c.display());
    must(f.narscope(&["push", &plain, &f.top]), "unsigned push");
    let url = format!(
        "file://{}?secret-keys={},{}",
        c.display(),
        f.k1.0.display(),
        f.k2.0.display()
    );
    must(f.narscope(&["sign", &url, "--all"]), "sign");
    let trusted = format!("{} {}", f.k1.1, f.k2.1);
    must(
        f.nix(&[
            "store",
            "verify",
            "--store",
            &plain,
            "--trusted-public-keys",
            &trusted,
            "--sigs-needed",
            "2",
            "-r",
            &f.top,
        ]),
        "nix store verify, two signatures needed",
    );
}
