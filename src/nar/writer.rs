//! Producing NARs: from a file-system tree ([`dump_path`]) or an in-memory [`NarNode`]
//! ([`encode_node`]), plus [`NarWriter`], a hashing and counting `Write` wrapper.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    MAX_DEPTH, MAX_TARGET_LEN, NAR_MAGIC, NarError, NarErrorKind, NarNode, NarSummary,
    name_problem, padding_len,
};

const COPY_BUF: usize = 64 * 1024;

/// A `Write` wrapper that hashes (SHA-256) and counts every byte written through it.
///
/// Wrap the destination of a NAR in it to get its [`NarSummary`] for free.
pub struct NarWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> NarWriter<W> {
    /// A writer that sends the NAR encoding to `inner`.
    pub fn new(inner: W) -> Self {
        NarWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.count
    }

    /// Hash and length of what was written so far.
    pub fn summary(&self) -> NarSummary {
        NarSummary {
            nar_hash: self.hasher.clone().finalize().into(),
            nar_size: self.count,
        }
    }

    /// The wrapped writer, and the hash and length of everything written.
    pub fn into_summary(self) -> (W, NarSummary) {
        let summary = NarSummary {
            nar_hash: self.hasher.finalize().into(),
            nar_size: self.count,
        };
        (self.inner, summary)
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for NarWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?.min(buf.len());
        let written = buf.get(..n).unwrap_or_default();
        self.hasher.update(written);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Append one NAR string token (length, bytes, zero padding) to `out`.
fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
    out.extend_from_slice(&[0u8; 8][..padding_len(s.len() as u64)]);
}

/// Serialise an in-memory tree as a NAR. Names are written as given (not validated).
pub fn encode_node(node: &NarNode) -> Vec<u8> {
    let mut out = Vec::new();
    push_str(&mut out, NAR_MAGIC);
    encode_into(node, &mut out);
    out
}

fn encode_into(node: &NarNode, out: &mut Vec<u8>) {
    push_str(out, b"(");
    push_str(out, b"type");
    match node {
        NarNode::Regular {
            executable,
            contents,
        } => {
            push_str(out, b"regular");
            if *executable {
                push_str(out, b"executable");
                push_str(out, b"");
            }
            push_str(out, b"contents");
            push_str(out, contents);
        }
        NarNode::Symlink { target } => {
            push_str(out, b"symlink");
            push_str(out, b"target");
            push_str(out, target);
        }
        NarNode::Directory(entries) => {
            push_str(out, b"directory");
            for (name, child) in entries {
                push_str(out, b"entry");
                push_str(out, b"(");
                push_str(out, b"name");
                push_str(out, name);
                push_str(out, b"node");
                encode_into(child, out);
                push_str(out, b")");
            }
        }
    }
    push_str(out, b")");
}

/// Ask the kernel to start reading the regular files under `path` into the page cache, in
/// the order [`dump_path`] reads them, until `budget` bytes are asked for; returns how many
/// were. A dump that comes later then finds its data in memory instead of waiting on the
/// disk. Best effort: what cannot be read is skipped (the dump reports it), symlinks are not
/// followed.
pub fn prefetch_tree(path: &Path, budget: u64) -> u64 {
    let mut asked = 0u64;
    for_each_file(path, |f, size| {
        let len = size.min(budget - asked);
        if let Some(n) = std::num::NonZeroU64::new(len)
            && rustix::fs::fadvise(f, 0, Some(n), rustix::fs::Advice::WillNeed).is_ok()
        {
            asked += len;
        }
        asked < budget
    });
    asked
}

/// Ask the kernel to drop the regular files under `path` from the page cache (clean pages
/// only: `sync` first), so that the next read comes from the disk. For benchmarks that time
/// a cold read. Best effort, like [`prefetch_tree`].
pub fn evict_tree(path: &Path) {
    for_each_file(path, |f, _| {
        let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed);
        true
    });
}

/// Calls `visit` with each regular file under `path` (opened for reading) and its size, in
/// dump order, until it returns false. Unreadable entries are skipped; symlinks are not
/// followed.
fn for_each_file(path: &Path, mut visit: impl FnMut(&File, u64) -> bool) {
    // Depth first, entries in bytewise order, like the dump; a stack, so no recursion.
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_file() {
            if let Ok(f) = File::open(&p)
                && !visit(&f, meta.len())
            {
                return;
            }
        } else if meta.is_dir()
            && let Ok(rd) = fs::read_dir(&p)
        {
            let mut names: Vec<OsString> =
                rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
            names.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
            stack.extend(names.into_iter().map(|n| p.join(n)));
        }
    }
}

/// Stream the NAR of the file-system tree at `path` into `out`, hashing as it goes.
///
/// Regular files (executable when the owner has `x`), symlinks (stored as-is, never
/// followed) and directories (entries sorted bytewise) are supported; sockets, FIFOs and
/// devices are refused with an error naming the path, and so is a file that changes size
/// while it is read. `out` is written through a buffer and flushed at the end.
pub fn dump_path<W: Write>(path: &Path, out: W) -> Result<NarSummary, NarError> {
    let mut dumper = Dumper {
        out: NarWriter::new(BufWriter::with_capacity(COPY_BUF, out)),
        buf: vec![0u8; COPY_BUF],
    };
    let context = || format!("dump of {}", path.display());
    let result = dumper.token(NAR_MAGIC).and_then(|()| dumper.node(path, 0));
    if let Err(kind) = result {
        return Err(NarError::new(context(), dumper.out.bytes_written(), kind));
    }
    let (buffered, summary) = dumper.out.into_summary();
    buffered.into_inner().map_err(|e| {
        NarError::new(
            context(),
            summary.nar_size,
            NarErrorKind::Output(e.into_error()),
        )
    })?;
    Ok(summary)
}

struct Dumper<W: Write> {
    out: NarWriter<BufWriter<W>>,
    buf: Vec<u8>,
}

fn file_err(path: &Path) -> impl FnOnce(io::Error) -> NarErrorKind + '_ {
    move |source| NarErrorKind::FileIo {
        path: path.to_path_buf(),
        source,
    }
}

impl<W: Write> Dumper<W> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), NarErrorKind> {
        self.out.write_all(bytes).map_err(NarErrorKind::Output)
    }

    fn token(&mut self, s: &[u8]) -> Result<(), NarErrorKind> {
        self.write(&(s.len() as u64).to_le_bytes())?;
        self.write(s)?;
        self.write(&[0u8; 8][..padding_len(s.len() as u64)])
    }

    fn node(&mut self, path: &Path, depth: usize) -> Result<(), NarErrorKind> {
        if depth >= MAX_DEPTH {
            return Err(NarErrorKind::TooDeep);
        }
        let meta = fs::symlink_metadata(path).map_err(file_err(path))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(file_err(path))?;
            let target = target.as_os_str().as_bytes();
            if target.is_empty() {
                return Err(NarErrorKind::EmptyTarget);
            }
            if target.len() as u64 > MAX_TARGET_LEN {
                return Err(NarErrorKind::TargetTooLong(target.len() as u64));
            }
            for t in [&b"("[..], b"type", b"symlink", b"target", target, b")"] {
                self.token(t)?;
            }
            Ok(())
        } else if ft.is_file() {
            self.regular(path, &meta)
        } else if ft.is_dir() {
            self.directory(path, depth)
        } else {
            Err(NarErrorKind::UnsupportedFileType(path.to_path_buf()))
        }
    }

    fn regular(&mut self, path: &Path, lstat: &fs::Metadata) -> Result<(), NarErrorKind> {
        let mut file = File::open(path).map_err(file_err(path))?;
        let meta = file.metadata().map_err(file_err(path))?;
        // The path may have been swapped (e.g. for a symlink) between lstat and open.
        if meta.dev() != lstat.dev() || meta.ino() != lstat.ino() || !meta.is_file() {
            return Err(NarErrorKind::FileChanged(path.to_path_buf()));
        }
        let executable = meta.permissions().mode() & 0o100 != 0;
        let len = meta.len();
        for t in [&b"("[..], b"type", b"regular"] {
            self.token(t)?;
        }
        if executable {
            self.token(b"executable")?;
            self.token(b"")?;
        }
        self.token(b"contents")?;
        self.write(&len.to_le_bytes())?;
        let mut remaining = len;
        while remaining > 0 {
            let want = remaining.min(self.buf.len() as u64) as usize;
            let chunk = self.buf.get_mut(..want).unwrap_or_default();
            let n = match file.read(chunk) {
                Ok(0) => return Err(NarErrorKind::FileChanged(path.to_path_buf())),
                Ok(n) => n.min(want),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(file_err(path)(e)),
            };
            let data = self.buf.get(..n).unwrap_or_default();
            self.out.write_all(data).map_err(NarErrorKind::Output)?;
            remaining -= n as u64;
        }
        // The file must not have grown either.
        let mut probe = [0u8; 1];
        loop {
            match file.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => return Err(NarErrorKind::FileChanged(path.to_path_buf())),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(file_err(path)(e)),
            }
        }
        self.write(&[0u8; 8][..padding_len(len)])?;
        self.token(b")")
    }

    fn directory(&mut self, path: &Path, depth: usize) -> Result<(), NarErrorKind> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for entry in fs::read_dir(path).map_err(file_err(path))? {
            let entry = entry.map_err(file_err(path))?;
            names.push(entry.file_name().into_vec());
        }
        names.sort();
        for t in [&b"("[..], b"type", b"directory"] {
            self.token(t)?;
        }
        for name in names {
            let child: PathBuf = path.join(OsString::from_vec(name.clone()));
            if let Some(reason) = name_problem(&name) {
                return Err(NarErrorKind::BadName(format!(
                    "{}: {reason}",
                    child.display()
                )));
            }
            for t in [&b"entry"[..], b"(", b"name", &name, b"node"] {
                self.token(t)?;
            }
            self.node(&child, depth + 1)?;
            self.token(b")")?;
        }
        self.token(b")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nar::testutil::*;
    use sha2::{Digest, Sha256};

    /// (name, tree, NAR size, sha256 hex of the NAR): reference values from `nix-store --dump`
    /// (Nix 2.8) and from the NAR files in nix-compat's `src/nar/tests/`.
    fn vectors() -> Vec<(&'static str, NarNode, u64, &'static str)> {
        vec![
            (
                "hello",
                reg(b"hello\n"),
                120,
                "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13",
            ),
            (
                "empty file",
                reg(b""),
                112,
                "77ac62e2629d8e45f624589c0c8bf99e24b3a722349bf1e79bc186008534e246",
            ),
            (
                "empty dir",
                dir(vec![]),
                96,
                "a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a",
            ),
            (
                "executable",
                exe(b"#!/bin/sh\n"),
                160,
                "6283c1668260f903d1a895c0cd6b822fa4b68762bb0b17cedef2d39d97e26554",
            ),
            (
                "helloworld",
                reg(b"Hello World!"),
                128,
                "03e7f63be30b065d78bcf615f5473545fdb4eb69aa416f43495b4e05cdfb8040",
            ),
            (
                "symlink",
                link(b"/nix/store/somewhereelse"),
                136,
                "097d397e9b5826384eaa16c457715d1c1a51670313ead0f58566e0b232539cf1",
            ),
            (
                "complicated",
                dir(vec![
                    (b".keep", reg(b"")),
                    (b"aa", link(b"/nix/store/somewhereelse")),
                    (b"keep", dir(vec![(b".keep", reg(b""))])),
                ]),
                840,
                "ebd52279a8df024c9fd5718de4103bf5e760dc7f2cf49044ee7dea87ab16911a",
            ),
            ("tree", tree(), 888, TREE_SHA256),
        ]
    }

    #[test]
    fn encode_and_dump_match_vectors() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, node, size, sha) in vectors() {
            let enc = encode_node(&node);
            assert_eq!(enc.len() as u64, size, "{name}");
            assert_eq!(hex(&Sha256::digest(&enc)), sha, "{name}");

            let path = tmp.path().join(name);
            materialize(&node, &path);
            let mut out = Vec::new();
            let summary = dump_path(&path, &mut out).unwrap();
            assert_eq!(out, enc, "{name}: dump_path bytes");
            assert_eq!(summary.nar_size, size, "{name}");
            assert_eq!(summary.hash_hex(), sha, "{name}");
        }
    }

    #[test]
    fn exact_bytes_of_documented_vectors() {
        assert_eq!(hex(&encode_node(&reg(b"hello\n"))), HELLO_NAR_HEX);
        assert_eq!(hex(&encode_node(&dir(vec![]))), EMPTY_DIR_NAR_HEX);
        assert_eq!(hex(&encode_node(&exe(b"#!/bin/sh\n"))), EXEC_NAR_HEX);
        assert!(TREE_SHA256.starts_with("ab9e600c") && TREE_SHA256.ends_with("60d4fc"));
    }

    #[test]
    fn nar_writer_hashes_and_counts() {
        let mut w = NarWriter::new(Vec::new());
        w.write_all(&unhex(HELLO_NAR_HEX)).unwrap();
        assert_eq!(w.bytes_written(), 120);
        assert_eq!(w.summary().hash_hex(), vectors()[0].3);
        let (inner, s) = w.into_summary();
        assert_eq!(inner, unhex(HELLO_NAR_HEX));
        assert_eq!(s.nar_size, 120);
        assert_eq!(hex(&s.nar_hash), vectors()[0].3);
    }

    #[test]
    fn dump_sorts_entries_bytewise() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        let node = dir(vec![
            (b"B", reg(b"1")),
            (b"a", reg(b"2")),
            (b"_", reg(b"3")),
            (b"\xc3\xa9", reg(b"4")),
            (b"Z", reg(b"5")),
        ]);
        materialize(&node, &root);
        let mut out = Vec::new();
        dump_path(&root, &mut out).unwrap();
        assert_eq!(out, encode_node(&node));
    }

    #[test]
    fn dump_refuses_sockets_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("d");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a"), b"x").unwrap();
        let sock = root.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let err = dump_path(&root, Vec::new()).unwrap_err();
        match err.kind() {
            NarErrorKind::UnsupportedFileType(p) => assert_eq!(p, &sock),
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("NAR dump of {}: at byte ", root.display())),
            "{msg}"
        );
        assert!(msg.contains("sock: unsupported file type"), "{msg}");
    }

    #[test]
    fn dump_missing_path_is_file_error() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("nope");
        let err = dump_path(&p, Vec::new()).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::FileIo { path, .. } if path == &p));
        assert_eq!(err.offset(), 24);
    }

    #[test]
    fn dump_depth_limit() {
        let tmp = tempfile::tempdir().unwrap();
        // 63 nested directories below the root: deepest node at depth 63, allowed.
        let root = tmp.path().join("r");
        let mut p = root.clone();
        std::fs::create_dir(&p).unwrap();
        for _ in 0..63 {
            p = p.join("d");
            std::fs::create_dir(&p).unwrap();
        }
        let mut out = Vec::new();
        dump_path(&root, &mut out).unwrap();
        crate::nar::validate(&out[..]).unwrap();
        // One more level: depth 64 is refused.
        std::fs::create_dir(p.join("d")).unwrap();
        let err = dump_path(&root, Vec::new()).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::TooDeep), "{err}");
    }

    #[test]
    fn output_error_is_reported() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::other("disk full"))
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"hello\n").unwrap();
        let err = dump_path(&f, Broken).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::Output(_)), "{err}");
        assert!(err.to_string().contains("disk full"));
    }

    #[test]
    fn prefetch_asks_for_no_more_than_its_budget_and_follows_no_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("a"), vec![1u8; 1000]).unwrap();
        std::fs::write(root.join("b/c/d"), vec![2u8; 3000]).unwrap();
        std::fs::write(root.join("z"), vec![3u8; 5000]).unwrap();
        // A symlink to a file outside the tree: following it would add its 7000 bytes.
        std::fs::write(tmp.path().join("outside"), vec![4u8; 7000]).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("b/link")).unwrap();
        assert_eq!(prefetch_tree(&root, u64::MAX), 9000);
        assert_eq!(prefetch_tree(&root, 2500), 2500);
        assert_eq!(prefetch_tree(&root, 0), 0);
        // A single file, and what is not there.
        assert_eq!(prefetch_tree(&root.join("z"), 100), 100);
        assert_eq!(prefetch_tree(&tmp.path().join("missing"), 100), 0);
    }
}
