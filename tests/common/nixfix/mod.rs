//! Binary-cache fixtures made by real Nix 2.8 (Debian `nix-bin`), built once per test binary.
//!
//! [`fixture()`] creates, in a temp dir: two signing keys (`demo-1`, `other-1`); six store
//! paths (CA file, CA directory with an executable and a relative symlink, a fixed-output flat
//! file, a `builtins.toFile` text path with a reference, an input-addressed leaf and an
//! input-addressed path referencing the leaf, the CA dir and the text path); and a set of
//! `file://` caches written by `nix copy` in every compression, then signed, re-signed or
//! damaged. Every cache records, per path, what was done to it ([`SigState`], [`Content`]),
//! from which the expected Nix exit code and the expected narscope verdict follow.
//!
//! The local store paths are deleted again once the caches exist (they carry a random tag,
//! so runs never collide).

pub mod hash;
pub mod run;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub use run::{CMD_TIMEOUT, Output};

use super::nix::NIX_CONFIG;

/// One signing key pair made by `nix-store --generate-binary-cache-key`.
#[derive(Debug, Default)]
pub struct Keys {
    /// Key name, e.g. `demo-1`.
    pub name: String,
    /// Secret key file (never printed).
    pub secret_file: PathBuf,
    /// Public key file.
    pub public_file: PathBuf,
    /// Public key text, `name:base64`.
    pub public: String,
}

/// What kind of store path this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `nix-store --add` of a regular file (`CA: fixed:r:sha256:…`).
    CaFile,
    /// `nix-store --add` of a directory with an executable and a relative symlink.
    CaDir,
    /// `nix-store --add-fixed sha256` (flat, `CA: fixed:sha256:…`).
    FixedFlat,
    /// `builtins.toFile` referencing the CA file (`CA: text:sha256:…`).
    Text,
    /// Input-addressed derivation output without references.
    IaLeaf,
    /// Input-addressed output referencing the leaf, the CA dir and the text path.
    IaTop,
}

impl Kind {
    /// Content-addressed (self-certifying) paths.
    pub fn is_ca(self) -> bool {
        !matches!(self, Kind::IaLeaf | Kind::IaTop)
    }
}

/// One store path of the fixture.
#[derive(Debug, Clone)]
pub struct FxPath {
    /// Its kind.
    pub kind: Kind,
    /// Full store path, `/nix/store/<hash>-<name>`.
    pub path: String,
}

impl FxPath {
    /// The 32-character hash part.
    pub fn hash_part(&self) -> &str {
        self.path
            .strip_prefix("/nix/store/")
            .and_then(|b| b.get(..32))
            .unwrap_or("")
    }
}

/// The signatures a path's narinfo carries in one cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigState {
    /// A valid `demo-1` signature (the trusted key).
    Trusted,
    /// A valid `other-1` signature plus a valid `demo-1` one added later by `nix store sign`.
    TrustedAndOther,
    /// No `Sig:` line.
    Unsigned,
    /// Only a valid `other-1` signature (unknown key when trusting `demo-1`).
    OtherOnly,
    /// The `demo-1` signature with one base64 character flipped (still 64 bytes).
    Tampered,
    /// Only `Sig: demo-1:AAAA` (decodes to 3 bytes).
    MalformedOnly,
    /// A valid `demo-1` signature plus `Sig: demo-1:AAAA`.
    TrustedAndMalformed,
    /// Only `Sig: garbage` (no key name at all).
    Garbage,
}

/// The state of a path's NAR file in one cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// As Nix wrote it.
    Intact,
    /// Bytes flipped inside an uncompressed NAR (NarHash mismatch).
    Modified,
    /// The NAR file was deleted.
    Missing,
    /// A truncated xz NAR (cannot be decompressed).
    Truncated,
    /// NAR intact, but the narinfo's `FileHash` names another hash (its NarHash). Not covered
    /// by the signature, and ignored by Nix 2.8's `nix store verify`.
    FileHashWrong,
}

/// One cache directory and what was done to each of its paths.
#[derive(Debug)]
pub struct FxCache {
    /// Short name, e.g. `signed-zstd`.
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// The `compression=` used by `nix copy`.
    pub compression: &'static str,
    /// Store path → (signature state, NAR state).
    pub paths: BTreeMap<String, (SigState, Content)>,
}

impl FxCache {
    /// `file:///abs/dir`.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }
}

/// Everything [`fixture()`] builds.
#[derive(Debug)]
pub struct Fixture {
    /// Root of this run's directory (`$CARGO_TARGET_TMPDIR/nixfix-<pid>-<tag>`; statics are
    /// never dropped, so the next run removes it once this process is gone).
    pub root: PathBuf,
    /// Random tag in every derivation name.
    pub tag: String,
    /// The trusted key.
    pub demo: Keys,
    /// The other (unknown) key.
    pub other: Keys,
    /// The six store paths, in [`Kind`] order.
    pub paths: Vec<FxPath>,
    /// All caches.
    pub caches: Vec<FxCache>,
}

impl Fixture {
    /// A `Command` for a Nix program with the tests' settings ([`super::nix::nix`]) under this
    /// run's root: its own nix.conf (holding [`NIX_CONFIG`]) and narinfo cache.
    pub fn nix(&self, program: &str) -> Command {
        super::nix::nix(program, &self.root)
    }

    /// Run a Nix command (with the time limit); `Err` carries Nix's stderr.
    pub fn run_nix(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let mut c = self.nix(program);
        c.args(args);
        run::run(&mut c, CMD_TIMEOUT)
    }

    /// The fixture path of a kind.
    pub fn path(&self, kind: Kind) -> &FxPath {
        self.paths
            .iter()
            .find(|p| p.kind == kind)
            .unwrap_or_else(|| panic!("fixture has no {kind:?} path"))
    }

    /// The kind of a store path.
    pub fn kind_of(&self, store_path: &str) -> Option<Kind> {
        self.paths
            .iter()
            .find(|p| p.path == store_path)
            .map(|p| p.kind)
    }

    /// The cache with this name.
    pub fn cache(&self, name: &str) -> &FxCache {
        self.caches
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("fixture has no cache {name}"))
    }

    /// A new empty directory under the fixture root.
    pub fn scratch_dir(&self, name: &str) -> PathBuf {
        let mut n = 0u32;
        loop {
            let p = self.root.join(format!("scratch-{name}-{n}"));
            if fs::create_dir(&p).is_ok() {
                return p;
            }
            n += 1;
        }
    }
}

/// The fixture, built on first use. `None` when `NARSCOPE_SKIP_NIX=1`; panics (with Nix's
/// stderr) when Nix is missing or a fixture step fails.
pub fn fixture() -> Option<&'static Fixture> {
    static FX: OnceLock<Result<Option<Fixture>, String>> = OnceLock::new();
    let r = FX.get_or_init(|| {
        if super::nix::skip_nix() {
            Ok(None)
        } else {
            build().map(Some)
        }
    });
    match r {
        Ok(fx) => fx.as_ref(),
        Err(e) => panic!("Nix fixture could not be built:\n{e}"),
    }
}

fn random_tag() -> String {
    hash::nix32_encode(&super::random_bytes(5))
}

fn io<T>(r: std::io::Result<T>, what: impl std::fmt::Display) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn last_line(o: &Output) -> Result<String, String> {
    o.stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("/nix/store/"))
        .map(str::to_owned)
        .ok_or_else(|| o.failure("printed no store path"))
}

/// Remove run directories left by test processes that have exited.
fn remove_stale_runs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("nixfix-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn build() -> Result<Fixture, String> {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    remove_stale_runs(&base);
    let tag = random_tag();
    let root = base.join(format!("nixfix-{}-{tag}", std::process::id()));
    io(fs::create_dir_all(&root), root.display())?;
    let nix_conf_dir = root.join("nix-conf");
    io(fs::create_dir_all(&nix_conf_dir), nix_conf_dir.display())?;
    io(
        fs::write(nix_conf_dir.join("nix.conf"), NIX_CONFIG),
        "writing nix.conf",
    )?;

    let mut fx = Fixture {
        root: root.clone(),
        tag: tag.clone(),
        demo: Keys::default(),
        other: Keys::default(),
        paths: Vec::new(),
        caches: Vec::new(),
    };
    fx.run_nix("nix-store", &["--init"])?.ok()?;
    fx.demo = make_keys(&fx, "demo-1")?;
    fx.other = make_keys(&fx, "other-1")?;
    let result = make_paths(&fx).and_then(|paths| {
        fx.paths = paths;
        make_caches(&fx)
    });
    // The caches hold everything now (or a step failed); remove this run's local paths.
    let cleanup = delete_local_paths(&fx);
    fx.caches = result?;
    cleanup?;
    Ok(fx)
}

fn make_keys(fx: &Fixture, name: &str) -> Result<Keys, String> {
    let secret_file = fx.root.join(format!("{name}.sec"));
    let public_file = fx.root.join(format!("{name}.pub"));
    let (s, p) = (
        secret_file.display().to_string(),
        public_file.display().to_string(),
    );
    fx.run_nix("nix-store", &["--generate-binary-cache-key", name, &s, &p])?
        .ok()?;
    let public = io(fs::read_to_string(&public_file), &p)?;
    Ok(Keys {
        name: name.to_owned(),
        secret_file,
        public_file,
        public,
    })
}

fn make_paths(fx: &Fixture) -> Result<Vec<FxPath>, String> {
    let src = fx.root.join("src");
    let t = &fx.tag;
    let file = src.join(format!("narscope-file-{t}.txt"));
    let dir = src.join(format!("narscope-dir-{t}"));
    let flat = src.join(format!("narscope-flat-{t}.bin"));
    io(fs::create_dir_all(dir.join("bin")), dir.display())?;
    io(fs::write(&file, format!("hello {t}\n")), file.display())?;
    let exe = dir.join("bin/hello");
    io(
        fs::write(&exe, format!("#!/bin/sh\necho hello {t}\n")),
        exe.display(),
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        io(
            fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)),
            exe.display(),
        )?;
    }
    io(
        std::os::unix::fs::symlink("bin/hello", dir.join("hello-link")),
        "symlink",
    )?;
    io(fs::write(dir.join("README"), "data\n"), "README")?;
    let flat_bytes: Vec<u8> = (0..=255u8).chain(t.bytes()).collect();
    io(fs::write(&flat, flat_bytes), flat.display())?;

    let add = |args: &[&str]| -> Result<String, String> {
        last_line(&fx.run_nix("nix-store", args)?.ok()?)
    };
    let ca_file = add(&["--add", &file.display().to_string()])?;
    let ca_dir = add(&["--add", &dir.display().to_string()])?;
    let fixed = add(&["--add-fixed", "sha256", &flat.display().to_string()])?;

    let expr = format!(
        r#"let
  file = builtins.storePath "{ca_file}";
  dir = builtins.storePath "{ca_dir}";
  text = builtins.toFile "narscope-text-{t}" "file is at ${{file}}\n";
  leaf = derivation {{
    name = "narscope-leaf-{t}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo leaf {t} > $out" ];
  }};
  top = derivation {{
    name = "narscope-top-{t}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "/bin/mkdir $out && /bin/ln -s ${{leaf}} $out/leaf && /bin/ln -s ${{dir}}/bin/hello $out/hello && /bin/ln -s ${{text}} $out/text" ];
  }};
in {{ inherit leaf top; }}
"#
    );
    let nix_file = fx.root.join("fixture.nix");
    io(fs::write(&nix_file, expr), nix_file.display())?;
    let nf = nix_file.display().to_string();
    let built = fx
        .run_nix(
            "nix-build",
            &["--no-out-link", &nf, "-A", "leaf", "-A", "top"],
        )?
        .ok()?;
    let outs: Vec<&str> = built
        .stdout
        .lines()
        .filter(|l| l.starts_with("/nix/store/"))
        .collect();
    let [leaf, top] = outs[..] else {
        return Err(built.failure("did not print two output paths"));
    };
    let refs = fx
        .run_nix("nix-store", &["-q", "--references", top])?
        .ok()?;
    let text = refs
        .stdout
        .lines()
        .find(|l| l.ends_with(&format!("-narscope-text-{t}")))
        .map(str::to_owned)
        .ok_or_else(|| refs.failure("lists no text path among top's references"))?;
    for want in [leaf, ca_dir.as_str()] {
        if !refs.stdout.lines().any(|l| l == want) {
            return Err(refs.failure(&format!("does not list {want}")));
        }
    }
    Ok(vec![
        FxPath {
            kind: Kind::CaFile,
            path: ca_file,
        },
        FxPath {
            kind: Kind::CaDir,
            path: ca_dir,
        },
        FxPath {
            kind: Kind::FixedFlat,
            path: fixed,
        },
        FxPath {
            kind: Kind::Text,
            path: text,
        },
        FxPath {
            kind: Kind::IaLeaf,
            path: leaf.to_owned(),
        },
        FxPath {
            kind: Kind::IaTop,
            path: top.to_owned(),
        },
    ])
}

/// `nix copy` every fixture path (the closure of top + flat) into `dir` with `query`.
fn nix_copy(fx: &Fixture, dir: &Path, query: &str) -> Result<(), String> {
    let url = format!("file://{}{query}", dir.display());
    let mut args = vec!["copy", "--to", url.as_str()];
    args.push(&fx.path(Kind::IaTop).path);
    args.push(&fx.path(Kind::FixedFlat).path);
    fx.run_nix("nix", &args)?.ok()?;
    Ok(())
}

fn narinfo_file(dir: &Path, p: &FxPath) -> PathBuf {
    dir.join(format!("{}.narinfo", p.hash_part()))
}

fn edit_narinfo(
    dir: &Path,
    p: &FxPath,
    f: impl FnOnce(&str) -> Result<String, String>,
) -> Result<(), String> {
    let file = narinfo_file(dir, p);
    let old = io(fs::read_to_string(&file), file.display())?;
    let new = f(&old).map_err(|e| format!("{}: {e}", file.display()))?;
    if new == old {
        return Err(format!("{}: edit changed nothing", file.display()));
    }
    io(fs::write(&file, new), file.display())
}

/// The NAR file a narinfo points at.
pub fn nar_file(dir: &Path, hash_part: &str) -> Result<PathBuf, String> {
    let file = dir.join(format!("{hash_part}.narinfo"));
    let text = io(fs::read_to_string(&file), file.display())?;
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .ok_or_else(|| format!("{}: no URL line", file.display()))?;
    Ok(dir.join(url))
}

/// Flip one base64 character of the `demo-1` signature, keeping it valid base64 of 64 bytes.
fn tamper_sig(text: &str) -> Result<String, String> {
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| match l.strip_prefix("Sig: demo-1:") {
            Some(b64) if !done => {
                done = true;
                let mut chars: Vec<char> = b64.chars().collect();
                if let Some(c) = chars.get_mut(10) {
                    *c = if *c == 'A' { 'B' } else { 'A' };
                }
                format!("Sig: demo-1:{}", chars.into_iter().collect::<String>())
            }
            _ => l.to_owned(),
        })
        .collect();
    if !done {
        return Err("no demo-1 signature to tamper with".into());
    }
    let new = out.join("\n") + "\n";
    let sig = new
        .lines()
        .find_map(|l| l.strip_prefix("Sig: demo-1:"))
        .unwrap_or("");
    match STANDARD.decode(sig) {
        Ok(b) if b.len() == 64 => Ok(new),
        other => Err(format!(
            "tampered signature is not 64 bytes of base64: {other:?}"
        )),
    }
}

/// Replace all `Sig:` lines with `sigs` (placed where the first was, or before `CA:`/at the end).
fn set_sigs(text: &str, sigs: &[&str]) -> Result<String, String> {
    let mut out = Vec::new();
    let mut placed = false;
    for l in text.lines() {
        if l.starts_with("Sig: ") || (l.starts_with("CA: ") && !placed) {
            if !placed {
                out.extend(sigs.iter().map(|s| format!("Sig: {s}")));
                placed = true;
            }
            if l.starts_with("Sig: ") {
                continue;
            }
        }
        out.push(l.to_owned());
    }
    if !placed {
        out.extend(sigs.iter().map(|s| format!("Sig: {s}")));
    }
    Ok(out.join("\n") + "\n")
}

fn demo_sig_line(text: &str) -> Result<String, String> {
    text.lines()
        .find_map(|l| l.strip_prefix("Sig: "))
        .filter(|s| s.starts_with("demo-1:"))
        .map(str::to_owned)
        .ok_or_else(|| "no demo-1 Sig line".into())
}

/// Flip one bit of the first byte of `needle` inside `file` (a NAR's file contents).
fn flip_in(file: &Path, needle: &str) -> Result<(), String> {
    let mut bytes = io(fs::read(file), file.display())?;
    let i = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .ok_or_else(|| format!("{} does not contain {needle:?}", file.display()))?;
    if let Some(b) = bytes.get_mut(i) {
        *b ^= 0x20;
    }
    io(fs::write(file, bytes), file.display())
}

fn make_caches(fx: &Fixture) -> Result<Vec<FxCache>, String> {
    let demo_sk = fx.demo.secret_file.display().to_string();
    let other_sk = fx.other.secret_file.display().to_string();
    let mut caches = Vec::new();
    let new_cache = |name: &str,
                     compression: &'static str,
                     query: String,
                     sig: SigState|
     -> Result<FxCache, String> {
        let dir = fx.root.join(format!("cache-{name}"));
        nix_copy(fx, &dir, &query)?;
        Ok(FxCache {
            name: name.to_owned(),
            dir,
            compression,
            paths: fx
                .paths
                .iter()
                .map(|p| (p.path.clone(), (sig, Content::Intact)))
                .collect(),
        })
    };

    // Signed with demo-1, one cache per compression; xz is the default (no parameter).
    caches.push(new_cache(
        "signed-xz",
        "xz",
        format!("?secret-key={demo_sk}&write-nar-listing=true"),
        SigState::Trusted,
    )?);
    for c in ["zstd", "bzip2", "none", "gzip", "br"] {
        caches.push(new_cache(
            &format!("signed-{c}"),
            c,
            format!("?compression={c}&secret-key={demo_sk}"),
            SigState::Trusted,
        )?);
    }
    caches.push(new_cache(
        "unsigned",
        "xz",
        String::new(),
        SigState::Unsigned,
    )?);
    caches.push(new_cache(
        "other-only",
        "zstd",
        format!("?compression=zstd&secret-key={other_sk}&write-nar-listing=true"),
        SigState::OtherOnly,
    )?);

    // Unsigned, then `nix store sign --all` rewrites every narinfo (§4.5).
    let mut c = new_cache(
        "signed-after",
        "bzip2",
        "?compression=bzip2".into(),
        SigState::Unsigned,
    )?;
    let out = fx
        .run_nix(
            "nix",
            &[
                "store",
                "sign",
                "--store",
                &c.url(),
                "--key-file",
                &demo_sk,
                "--all",
            ],
        )?
        .ok()?;
    if !out.stderr.contains("added 6 signatures") {
        return Err(out.failure("did not say 'added 6 signatures'"));
    }
    c.paths.values_mut().for_each(|v| v.0 = SigState::Trusted);
    caches.push(c);

    // other-1 at copy time, then demo-1 added by `nix store sign` on the leaf only.
    let mut c = new_cache(
        "other-then-demo",
        "br",
        format!("?compression=br&secret-key={other_sk}"),
        SigState::OtherOnly,
    )?;
    let leaf = fx.path(Kind::IaLeaf).path.clone();
    fx.run_nix(
        "nix",
        &["store", "sign", "--store", &c.url(), "-k", &demo_sk, &leaf],
    )?
    .ok()?;
    set_state(&mut c, &leaf, SigState::TrustedAndOther, Content::Intact)?;
    caches.push(c);

    // Tampered signatures on the leaf (input-addressed) and on the flat CA path.
    let mut c = new_cache(
        "tampered",
        "zstd",
        format!("?compression=zstd&secret-key={demo_sk}"),
        SigState::Trusted,
    )?;
    for k in [Kind::IaLeaf, Kind::FixedFlat] {
        let p = fx.path(k);
        edit_narinfo(&c.dir, p, tamper_sig)?;
        set_state(&mut c, &p.path, SigState::Tampered, Content::Intact)?;
    }
    caches.push(c);

    // Malformed signatures (Nix 2.8 throws "signature is not valid" for these).
    let mut c = new_cache(
        "malformed-sig",
        "gzip",
        format!("?compression=gzip&secret-key={demo_sk}"),
        SigState::Trusted,
    )?;
    let p = fx.path(Kind::IaLeaf);
    edit_narinfo(&c.dir, p, |t| set_sigs(t, &["demo-1:AAAA"]))?;
    set_state(&mut c, &p.path, SigState::MalformedOnly, Content::Intact)?;
    let p = fx.path(Kind::IaTop);
    edit_narinfo(&c.dir, p, |t| {
        let good = demo_sig_line(t)?;
        set_sigs(t, &["demo-1:AAAA", &good])
    })?;
    set_state(
        &mut c,
        &p.path,
        SigState::TrustedAndMalformed,
        Content::Intact,
    )?;
    let p = fx.path(Kind::Text);
    edit_narinfo(&c.dir, p, |t| set_sigs(t, &["garbage"]))?;
    set_state(&mut c, &p.path, SigState::Garbage, Content::Intact)?;
    caches.push(c);

    // Corrupted NARs in an uncompressed cache: flip a byte inside the leaf's file contents
    // and inside the CA dir's executable (the NAR stays well-formed, NarHash no longer matches).
    let c_none = {
        let mut c = new_cache(
            "corrupt-none",
            "none",
            format!("?compression=none&secret-key={demo_sk}"),
            SigState::Trusted,
        )?;
        let t = &fx.tag;
        for (k, needle) in [
            (Kind::IaLeaf, format!("leaf {t}")),
            (Kind::CaDir, format!("echo hello {t}")),
        ] {
            let p = fx.path(k);
            flip_in(&nar_file(&c.dir, p.hash_part())?, &needle)?;
            set_state(&mut c, &p.path, SigState::Trusted, Content::Modified)?;
        }
        c
    };
    caches.push(c_none);

    // A truncated xz NAR (top) and a missing NAR (leaf), both in signed xz caches.
    let mut c = new_cache(
        "truncated-xz",
        "xz",
        format!("?secret-key={demo_sk}"),
        SigState::Trusted,
    )?;
    let p = fx.path(Kind::IaTop);
    let nar = nar_file(&c.dir, p.hash_part())?;
    let len = io(fs::metadata(&nar), nar.display())?.len();
    let f = io(fs::OpenOptions::new().write(true).open(&nar), nar.display())?;
    io(f.set_len(len / 2), nar.display())?;
    set_state(&mut c, &p.path, SigState::Trusted, Content::Truncated)?;
    caches.push(c);

    // FileHash rewritten to another (well-formed) hash: Nix ignores it, narscope must not.
    let mut c = new_cache(
        "filehash-wrong",
        "zstd",
        format!("?compression=zstd&secret-key={demo_sk}"),
        SigState::Trusted,
    )?;
    let p = fx.path(Kind::IaTop);
    edit_narinfo(&c.dir, p, |t| {
        let nar_hash = t
            .lines()
            .find_map(|l| l.strip_prefix("NarHash: "))
            .ok_or("no NarHash")?
            .to_owned();
        Ok(t.lines()
            .map(|l| {
                if l.starts_with("FileHash: ") {
                    format!("FileHash: {nar_hash}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect())
    })?;
    set_state(&mut c, &p.path, SigState::Trusted, Content::FileHashWrong)?;
    caches.push(c);

    let mut c = new_cache(
        "missing-nar",
        "xz",
        format!("?secret-key={demo_sk}"),
        SigState::Trusted,
    )?;
    let p = fx.path(Kind::IaLeaf);
    let nar = nar_file(&c.dir, p.hash_part())?;
    io(fs::remove_file(&nar), nar.display())?;
    set_state(&mut c, &p.path, SigState::Trusted, Content::Missing)?;
    caches.push(c);

    Ok(caches)
}

fn set_state(c: &mut FxCache, path: &str, s: SigState, n: Content) -> Result<(), String> {
    match c.paths.get_mut(path) {
        Some(v) => {
            *v = (s, n);
            Ok(())
        }
        None => Err(format!("cache {} has no {path}", c.name)),
    }
}

/// Delete every local store path of this run (all carry the tag), including `.drv` files.
fn delete_local_paths(fx: &Fixture) -> Result<(), String> {
    let store = Path::new("/nix/store");
    let mut ours: Vec<String> = io(fs::read_dir(store), "/nix/store")?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&fx.tag) && !n.ends_with(".lock"))
        .map(|n| format!("/nix/store/{n}"))
        .collect();
    if ours.is_empty() {
        return Ok(());
    }
    ours.sort();
    let mut args = vec!["--delete"];
    args.extend(ours.iter().map(String::as_str));
    fx.run_nix("nix-store", &args)?.ok()?;
    Ok(())
}

/// The exit code Nix 2.8's `nix store verify` gives one path (observed behaviour).
///
/// With contents: a missing or undecodable NAR is an *error* (4) that stops the check before
/// signatures are looked at; a modified NAR is "was modified!" (1) and signatures are still
/// checked (so corrupt + untrusted would be 3); FileHash/FileSize are not checked at all.
/// CA paths need no signature. A malformed signature under a trusted key's name throws
/// "signature is not valid" (4), even next to a valid one.
pub fn expected_nix_rc(kind: Kind, sig: SigState, content: Content, contents: bool) -> i32 {
    let mut rc = 0;
    if contents {
        match content {
            Content::Missing | Content::Truncated => return 4,
            Content::Modified => rc |= 1,
            Content::Intact | Content::FileHashWrong => {}
        }
    }
    if !kind.is_ca() {
        match sig {
            SigState::Trusted | SigState::TrustedAndOther => {}
            SigState::MalformedOnly | SigState::TrustedAndMalformed => return rc | 4,
            SigState::Unsigned | SigState::OtherOnly | SigState::Tampered | SigState::Garbage => {
                rc |= 2
            }
        }
    }
    rc
}

/// A phrase Nix 2.8 prints on stderr for this outcome, if any.
pub fn expected_nix_phrase(
    kind: Kind,
    sig: SigState,
    content: Content,
    contents: bool,
) -> Option<&'static str> {
    if contents {
        match content {
            Content::Missing => return Some("does not exist in binary cache"),
            Content::Truncated => return Some("Failed to open archive"),
            Content::Modified => return Some("was modified!"),
            Content::Intact | Content::FileHashWrong => {}
        }
    }
    match expected_nix_rc(kind, sig, content, contents) {
        2 => Some("is untrusted"),
        4 => Some("signature is not valid"),
        _ => None,
    }
}

/// The narscope status word the contract prescribes for this path.
pub fn expected_status(
    kind: Kind,
    sig: SigState,
    content: Content,
    contents: bool,
) -> &'static str {
    if contents && content != Content::Intact {
        return "corrupt";
    }
    match sig {
        SigState::Trusted | SigState::TrustedAndOther | SigState::TrustedAndMalformed => "trusted",
        _ if kind.is_ca() => "content-addressed",
        SigState::Unsigned => "unsigned",
        SigState::OtherOnly | SigState::Garbage => "untrusted",
        SigState::Tampered | SigState::MalformedOnly => "invalid",
    }
}

/// The per-signature outcomes (`keyName`, `outcome`) narscope should report, sorted.
pub fn expected_sig_outcomes(sig: SigState) -> Vec<(&'static str, &'static str)> {
    let mut v = match sig {
        SigState::Trusted => vec![("demo-1", "valid")],
        SigState::TrustedAndOther => vec![("demo-1", "valid"), ("other-1", "unknown-key")],
        SigState::Unsigned => vec![],
        SigState::OtherOnly => vec![("other-1", "unknown-key")],
        SigState::Tampered => vec![("demo-1", "invalid")],
        SigState::MalformedOnly => vec![("demo-1", "malformed")],
        SigState::TrustedAndMalformed => vec![("demo-1", "malformed"), ("demo-1", "valid")],
        // No key name to report; only the outcome is checked.
        SigState::Garbage => vec![("*", "malformed")],
    };
    v.sort();
    v
}
