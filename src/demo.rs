//! Generated caches: the demo cache newcomers open with `narscope demo`, and large synthetic
//! caches for benchmarks. Both are real binary caches that Nix can read.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::compression::{self, Compression};
use crate::nar::{NarNode, encode_node};
use crate::nix::store_path::make_store_path;
use crate::nix::{CacheInfo, Hash, NarInfo, PublicKey, SecretKey, StorePath, fingerprint};

/// A marker file that says a directory is narscope's to rewrite.
const MARKER: &str = ".narscope-demo";

/// What `write_demo_cache` made.
#[derive(Debug)]
pub struct DemoCache {
    /// Where it is.
    pub dir: PathBuf,
    /// The key that signed the good paths (trust it to see them as trusted).
    pub public_key: PublicKey,
    /// The secret key file, beside the cache, never in it (see [`key_dir`]).
    pub secret_key_file: PathBuf,
    /// The public key file, beside the secret one.
    pub public_key_file: PathBuf,
    /// How many narinfos it holds.
    pub narinfos: usize,
}

/// The default demo location: `<data dir>/narscope/demo-cache`.
pub fn default_dir() -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "narscope")
        .context("cannot find a data directory (is $HOME set?)")?;
    Ok(dirs.data_dir().join("demo-cache"))
}

/// Where the demo keeps its keys for a demo cache in `dir`: the sibling directory
/// `<dir>.keys/`, beside the cache and never in it (a cache is meant to be served; a secret
/// key in it could be read by anyone who can read the cache).
pub fn key_dir(dir: &Path) -> Result<PathBuf> {
    let abs =
        std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => {
            let mut name = name.to_os_string();
            name.push(".keys");
            Ok(parent.join(name))
        }
        _ => bail!(
            "{} has no parent directory to keep the demo's keys beside it; choose another --dir",
            dir.display()
        ),
    }
}

/// Read the demo key kept in `file`, if there is a valid one.
fn read_key(file: &Path) -> Option<SecretKey> {
    SecretKey::parse(&std::fs::read_to_string(file).ok()?).ok()
}

/// A fake but well-formed store path for `name`, derived from `seed`.
pub fn fake_store_path(seed: &str, name: &str) -> Result<StorePath> {
    let inner = Hash::sha256_of(seed.as_bytes());
    Ok(make_store_path("output:out", &inner, name)?)
}

struct Writer<'a> {
    dir: &'a Path,
    key: &'a SecretKey,
    count: usize,
}

/// How one demo path is written.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Signed,
    Unsigned,
    UnknownKey,
    BadSignature,
    CorruptNar,
    Dangling,
}

impl Writer<'_> {
    fn write_file(&self, rel: &str, data: &[u8]) -> Result<()> {
        let path = self.dir.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let mut f = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(data)?;
        Ok(())
    }

    /// Compress a NAR and store it under its FileHash, as Nix names it.
    fn store_nar(&self, nar: &[u8], c: Compression) -> Result<(String, Hash, u64)> {
        let mut enc = compression::encoder(c, None, Vec::new())?;
        enc.write_all(nar)?;
        let file = enc.finish()?;
        let file_hash = Hash::sha256_of(&file);
        let url = format!("nar/{}.nar{}", file_hash.nix32_digest(), c.extension());
        self.write_file(&url, &file)?;
        Ok((url, file_hash, file.len() as u64))
    }

    fn path(
        &mut self,
        path: &StorePath,
        node: &NarNode,
        refs: &[&StorePath],
        c: Compression,
        kind: Kind,
        ca: Option<String>,
    ) -> Result<()> {
        let nar = encode_node(node);
        let nar_hash = Hash::sha256_of(&nar);
        let (url, file_hash, file_size) = if kind == Kind::CorruptNar {
            // Flip a byte inside the contents after hashing: the object no longer matches.
            let mut bad = nar.clone();
            let i = bad.len() / 2;
            bad[i] ^= 0x55;
            self.store_nar(&bad, c)?
        } else {
            self.store_nar(&nar, c)?
        };
        if kind == Kind::Dangling {
            std::fs::remove_file(self.dir.join(&url))?;
        }
        let mut refs: Vec<StorePath> = refs.iter().map(|r| (*r).clone()).collect();
        refs.sort();
        let mut text = format!(
            "StorePath: {path}\nURL: {url}\nCompression: {}\nFileHash: {file_hash}\nFileSize: {file_size}\nNarHash: {nar_hash}\nNarSize: {}\nReferences: {}\n",
            c.name(),
            nar.len(),
            refs.iter()
                .map(|r| r.base_name())
                .collect::<Vec<_>>()
                .join(" "),
        );
        if ca.is_none() {
            let drv = fake_store_path(&format!("drv:{path}"), &format!("{}.drv", path.name()))?;
            text.push_str(&format!("Deriver: {}\n", drv.base_name()));
        }
        if let Some(ca) = &ca {
            text.push_str(&format!("CA: {ca}\n"));
        }
        let origin = format!("demo {}", path.narinfo_key());
        let mut info = NarInfo::parse(&text, &origin)?;
        let fp = fingerprint(path, &nar_hash, nar.len() as u64, &refs);
        match kind {
            Kind::Unsigned => {}
            Kind::UnknownKey => {
                let other = SecretKey::generate("someone-else.example.org-1")?;
                info.add_signature(&other.sign(&fp));
            }
            Kind::BadSignature => {
                info.add_signature(&self.key.sign(&format!("{fp}tampered")));
            }
            _ => {
                info.add_signature(&self.key.sign(&fp));
            }
        }
        // A file listing, as `nix copy` writes with write-nar-listing=true, for signed paths.
        if kind == Kind::Signed {
            let (listing, _) = crate::nar::listing::listing(&nar[..])?;
            let key = format!("{}.ls", path.hash_part());
            self.write_file(
                &key,
                crate::nar::listing::listing_to_nix_json(&listing).as_bytes(),
            )?;
        }
        self.write_file(&path.narinfo_key(), info.to_text().as_bytes())?;
        self.count += 1;
        Ok(())
    }
}

fn program(name: &str, version: &str) -> NarNode {
    let script = format!("#!/bin/sh\necho '{name} {version}'\n");
    let mut bin = std::collections::BTreeMap::new();
    bin.insert(
        name.as_bytes().to_vec(),
        NarNode::Regular {
            executable: true,
            contents: script.into_bytes(),
        },
    );
    let mut doc = std::collections::BTreeMap::new();
    doc.insert(
        b"README".to_vec(),
        NarNode::Regular {
            executable: false,
            contents: format!("{name} {version}, packaged for the narscope demo.\n")
                .repeat(40)
                .into_bytes(),
        },
    );
    let mut share = std::collections::BTreeMap::new();
    share.insert(b"doc".to_vec(), NarNode::Directory(doc));
    let mut root = std::collections::BTreeMap::new();
    root.insert(b"bin".to_vec(), NarNode::Directory(bin));
    root.insert(b"share".to_vec(), NarNode::Directory(share));
    NarNode::Directory(root)
}

/// Write the demo cache into `dir` (replacing an earlier demo there; refusing any other
/// non-empty directory): a realistic mix of signed, unsigned, unknown-key, badly signed,
/// corrupt, dangling and content-addressed paths, an orphan NAR, a closure with references,
/// and several compressions. The signing key is kept beside the cache, in
/// [`key_dir`]`/demo-key.sec` and `.pub` (reused by the next demo in the same place).
pub fn write_demo_cache(dir: &Path) -> Result<DemoCache> {
    if dir.exists() {
        let non_empty = std::fs::read_dir(dir)?.next().is_some();
        if non_empty && !dir.join(MARKER).exists() {
            bail!(
                "{} is not empty and was not made by narscope demo; choose another --dir",
                dir.display()
            );
        }
    }
    let keys = key_dir(dir)?;
    let key_file = keys.join("demo-key.sec");
    let pub_file = keys.join("demo-key.pub");
    // Earlier demos kept the key in the cache itself: reuse it (it goes with the old demo).
    let key = match read_key(&key_file).or_else(|| read_key(&dir.join("demo-key.sec"))) {
        Some(k) => k,
        None => SecretKey::generate("narscope-demo-1")?,
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot clear the old demo in {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("nar"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "This directory is rewritten by `narscope demo`.\n",
    )?;
    write_keys(&keys, &key_file, &pub_file, &key)?;
    let mut info = CacheInfo::new();
    info.want_mass_query = Some(true);
    info.priority = Some(50);
    std::fs::write(dir.join("nix-cache-info"), info.to_text())?;

    let mut w = Writer {
        dir,
        key: &key,
        count: 0,
    };
    let p = |n: &str| fake_store_path(&format!("narscope-demo:{n}"), n);
    let glibc = p("glibc-2.40-66")?;
    let bash = p("bash-5.2p37")?;
    let openssl = p("openssl-3.3.2")?;
    let zlib = p("zlib-1.3.1")?;
    let python = p("python3-3.12.8")?;
    let hello = p("hello-2.12.1")?;
    use Compression::{Bzip2, Xz, Zstd};
    use Kind::*;
    let plain = Compression::None;
    w.path(&glibc, &program("glibc", "2.40"), &[], Zstd, Signed, None)?;
    w.path(&bash, &program("bash", "5.2"), &[&glibc], Xz, Signed, None)?;
    w.path(
        &zlib,
        &program("zlib", "1.3.1"),
        &[&glibc],
        Bzip2,
        Signed,
        None,
    )?;
    w.path(
        &openssl,
        &program("openssl", "3.3.2"),
        &[&glibc],
        Xz,
        Unsigned,
        None,
    )?;
    w.path(
        &python,
        &program("python3", "3.12.8"),
        &[&glibc, &bash, &openssl, &zlib],
        Zstd,
        Signed,
        None,
    )?;
    w.path(
        &hello,
        &program("hello", "2.12.1"),
        &[&glibc, &hello],
        plain,
        Signed,
        None,
    )?;
    let rg = p("ripgrep-14.1.1")?;
    w.path(
        &rg,
        &program("rg", "14.1.1"),
        &[&glibc],
        Zstd,
        UnknownKey,
        None,
    )?;
    let node = p("nodejs-22.11.0")?;
    w.path(
        &node,
        &program("node", "22.11.0"),
        &[&glibc, &openssl],
        Xz,
        BadSignature,
        None,
    )?;
    let jq = p("jq-1.7.1")?;
    w.path(
        &jq,
        &program("jq", "1.7.1"),
        &[&glibc],
        plain,
        CorruptNar,
        None,
    )?;
    let curl = p("curl-8.11.0")?;
    w.path(
        &curl,
        &program("curl", "8.11.0"),
        &[&glibc, &openssl, &zlib],
        Xz,
        Dangling,
        None,
    )?;
    let missing_ref = p("libfoo-0.1")?;
    let tool = p("sometool-1.0")?;
    w.path(
        &tool,
        &program("sometool", "1.0"),
        &[&glibc, &missing_ref],
        Zstd,
        Signed,
        None,
    )?;

    // A content-addressed source file, unsigned, as `nix-store --add` makes it.
    let src = NarNode::Regular {
        executable: false,
        contents: b"Hello from a content-addressed path.\n".to_vec(),
    };
    let nar_hash = Hash::sha256_of(&encode_node(&src));
    let ca_path = make_store_path("source", &nar_hash, "greeting.txt")?;
    w.path(
        &ca_path,
        &src,
        &[],
        Xz,
        Unsigned,
        Some(format!("fixed:r:{nar_hash}")),
    )?;

    // An orphan NAR: uploaded, but no narinfo points at it.
    let orphan = encode_node(&program("orphan", "0.0"));
    w.store_nar(&orphan, Xz)?;

    Ok(DemoCache {
        dir: dir.to_path_buf(),
        public_key: key.public_key(),
        secret_key_file: key_file,
        public_key_file: pub_file,
        narinfos: w.count,
    })
}

/// Write the demo's key pair into `keys` (mode 0700), the secret one with mode 0600.
fn write_keys(keys: &Path, secret: &Path, public: &Path, key: &SecretKey) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(keys)
        .with_context(|| format!("cannot create {}", keys.display()))?;
    let _ = std::fs::remove_file(secret);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(secret)
        .with_context(|| format!("cannot write {}", secret.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(key.to_file_text().as_bytes())?;
    std::fs::write(public, key.public_key().to_string())
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok(())
}

/// Write `n` signed narinfos (no NARs) into `dir`, as fast as possible: the benchmark's
/// synthetic cache. Each path references up to three earlier ones. Returns the public key.
pub fn write_synthetic_cache(dir: &Path, n: usize, key: &SecretKey) -> Result<PublicKey> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("nix-cache-info"), CacheInfo::new().to_text())?;
    let mut paths: Vec<StorePath> = Vec::with_capacity(n);
    for i in 0..n {
        let path = fake_store_path(&format!("synthetic:{i}"), &format!("pkg-{i}-1.0"))?;
        let nar_hash = Hash::sha256_of(format!("nar {i}").as_bytes());
        let nar_size = 1000 + (i as u64 % 5000) * 8;
        let mut refs: Vec<StorePath> = [i / 2, i / 3, i / 7]
            .iter()
            .filter(|&&j| j < i)
            .map(|&j| paths[j].clone())
            .collect();
        refs.sort();
        refs.dedup();
        let file_hash = Hash::sha256_of(format!("file {i}").as_bytes());
        let text = format!(
            "StorePath: {path}\nURL: nar/{}.nar.zst\nCompression: zstd\nFileHash: {file_hash}\nFileSize: {}\nNarHash: {nar_hash}\nNarSize: {nar_size}\nReferences: {}\nSig: {}\n",
            file_hash.nix32_digest(),
            nar_size / 3,
            refs.iter()
                .map(|r| r.base_name())
                .collect::<Vec<_>>()
                .join(" "),
            key.sign(&fingerprint(&path, &nar_hash, nar_size, &refs)),
        );
        std::fs::write(dir.join(path.narinfo_key()), text)?;
        paths.push(path);
    }
    Ok(key.public_key())
}
