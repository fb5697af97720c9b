//! Reading NARs under Nix's canonical-form rules: [`validate`], [`unpack`], [`parse_tree`].
//!
//! One streaming parser drives a visitor; it enforces the grammar and every rule recent
//! Nix applies (sorted unique names, valid names ≤ 255 bytes, tags ≤ 32 bytes, symlink
//! targets 1–4095 bytes without NUL, depth < 64, zero padding, no trailing data).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    MAX_DEPTH, MAX_NAME_LEN, MAX_TAG_LEN, MAX_TARGET_LEN, NAR_MAGIC, NarError, NarErrorKind,
    NarNode, NarSummary, name_problem, show_bytes,
};

const READ_BUF: usize = 64 * 1024;

/// Receives the events of a NAR parse. `name` is `None` for the root node.
///
/// Every method defaults to doing nothing, so a validator is an empty impl.
pub(crate) trait Visitor {
    /// A directory starts; its entries follow until [`Visitor::directory_end`].
    fn directory_start(&mut self, _name: Option<&[u8]>) -> Result<(), NarErrorKind> {
        Ok(())
    }
    /// The innermost open directory ends.
    fn directory_end(&mut self) -> Result<(), NarErrorKind> {
        Ok(())
    }
    /// A symlink pointing at `target` (its bytes as stored, not checked to exist).
    fn symlink(&mut self, _name: Option<&[u8]>, _target: &[u8]) -> Result<(), NarErrorKind> {
        Ok(())
    }
    /// A regular file of `size` bytes whose contents start at `nar_offset`.
    fn file_start(
        &mut self,
        _name: Option<&[u8]>,
        _executable: bool,
        _size: u64,
        _nar_offset: u64,
    ) -> Result<(), NarErrorKind> {
        Ok(())
    }
    /// The next chunk of the current file's contents.
    fn file_data(&mut self, _data: &[u8]) -> Result<(), NarErrorKind> {
        Ok(())
    }
    /// The current file is complete.
    fn file_end(&mut self) -> Result<(), NarErrorKind> {
        Ok(())
    }
}

/// Buffered, hashing, position-tracking input.
struct Input<R> {
    r: BufReader<R>,
    hasher: Sha256,
    pos: u64,
    limit: u64,
    context: String,
}

impl<R: Read> Input<R> {
    fn err(&self, offset: u64, kind: NarErrorKind) -> NarError {
        NarError::new(self.context.clone(), offset, kind)
    }

    /// Refuse to go past the caller's size limit.
    fn need(&self, n: u64) -> Result<(), NarError> {
        if self.pos.saturating_add(n) > self.limit {
            return Err(self.err(self.pos, NarErrorKind::TooLarge(self.limit)));
        }
        Ok(())
    }

    /// Whether any byte is left, without consuming it.
    fn at_eof(&mut self) -> Result<bool, NarError> {
        loop {
            match self.r.fill_buf() {
                Ok(b) => return Ok(b.is_empty()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.err(self.pos, NarErrorKind::Io(e))),
            }
        }
    }

    /// Read exactly `out.len()` bytes (hashed); `Truncated` if the input ends first.
    fn read_exact(&mut self, out: &mut [u8]) -> Result<(), NarError> {
        self.need(out.len() as u64)?;
        let mut filled = 0;
        while filled < out.len() {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(NarError::new(
                        self.context.clone(),
                        self.pos,
                        NarErrorKind::Io(e),
                    ));
                }
            };
            if buf.is_empty() {
                return Err(self.err(self.pos, NarErrorKind::Truncated));
            }
            let dst = out.get_mut(filled..).unwrap_or_default();
            let n = buf.len().min(dst.len());
            let (src, dst) = (
                buf.get(..n).unwrap_or_default(),
                dst.get_mut(..n).unwrap_or_default(),
            );
            dst.copy_from_slice(src);
            self.hasher.update(src);
            self.r.consume(n);
            self.pos += n as u64;
            filled += n;
        }
        Ok(())
    }

    fn read_u64(&mut self) -> Result<u64, NarError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Read the zero padding after a string of `len` bytes.
    fn read_padding(&mut self, len: u64) -> Result<(), NarError> {
        let mut pad = [0u8; 8];
        let pad = pad.get_mut(..super::padding_len(len)).unwrap_or_default();
        let start = self.pos;
        self.read_exact(pad)?;
        if let Some(i) = pad.iter().position(|&b| b != 0) {
            return Err(self.err(start + i as u64, NarErrorKind::NonZeroPadding));
        }
        Ok(())
    }

    /// Read a string token of at most `max` bytes; `too_long` builds the error otherwise.
    /// Returns the token's start offset and its bytes.
    fn read_string(
        &mut self,
        max: u64,
        too_long: impl FnOnce(u64) -> NarErrorKind,
    ) -> Result<(u64, Vec<u8>), NarError> {
        let start = self.pos;
        let len = self.read_u64()?;
        if len > max {
            return Err(self.err(start, too_long(len)));
        }
        // len <= max, and every max used here is small.
        let mut s = vec![0u8; len as usize];
        self.read_exact(&mut s)?;
        self.read_padding(len)?;
        Ok((start, s))
    }

    fn read_tag(&mut self) -> Result<(u64, Vec<u8>), NarError> {
        self.read_string(MAX_TAG_LEN, NarErrorKind::TagTooLong)
    }
}

struct Parser<'v, R, V> {
    input: Input<R>,
    visitor: &'v mut V,
}

impl<R: Read, V: Visitor> Parser<'_, R, V> {
    fn visit(
        &mut self,
        f: impl FnOnce(&mut V) -> Result<(), NarErrorKind>,
    ) -> Result<(), NarError> {
        f(self.visitor).map_err(|kind| self.input.err(self.input.pos, kind))
    }

    fn expect(&mut self, expected: &'static str) -> Result<(), NarError> {
        let (start, tag) = self.input.read_tag()?;
        if tag != expected.as_bytes() {
            return Err(self.input.err(
                start,
                NarErrorKind::UnexpectedToken {
                    expected: quoted(expected),
                    found: show_bytes(&tag),
                },
            ));
        }
        Ok(())
    }

    fn magic(&mut self) -> Result<(), NarError> {
        let len = self.input.read_u64()?;
        if len != NAR_MAGIC.len() as u64 {
            return Err(self.input.err(0, NarErrorKind::BadMagic));
        }
        let mut m = [0u8; 13];
        self.input.read_exact(&mut m)?;
        if m != NAR_MAGIC {
            return Err(self.input.err(0, NarErrorKind::BadMagic));
        }
        self.input.read_padding(len)
    }

    fn node(&mut self, name: Option<&[u8]>, depth: usize) -> Result<(), NarError> {
        if depth >= MAX_DEPTH {
            return Err(self.input.err(self.input.pos, NarErrorKind::TooDeep));
        }
        self.expect("(")?;
        self.expect("type")?;
        let (type_start, ty) = self.input.read_tag()?;
        match ty.as_slice() {
            b"regular" => self.regular(name)?,
            b"symlink" => self.symlink(name)?,
            b"directory" => self.directory(name, depth)?,
            _ => {
                return Err(self
                    .input
                    .err(type_start, NarErrorKind::UnknownType(show_bytes(&ty))));
            }
        }
        Ok(())
    }

    fn regular(&mut self, name: Option<&[u8]>) -> Result<(), NarError> {
        let (mut start, mut tag) = self.input.read_tag()?;
        let mut executable = false;
        let mut expected = "\"executable\" or \"contents\"";
        if tag == b"executable" {
            self.input
                .read_string(0, |_| NarErrorKind::ExecutableValueNotEmpty)?;
            executable = true;
            (start, tag) = self.input.read_tag()?;
            expected = "\"contents\"";
        }
        if tag != b"contents" {
            return Err(self.input.err(
                start,
                NarErrorKind::UnexpectedToken {
                    expected,
                    found: show_bytes(&tag),
                },
            ));
        }
        let size = self.input.read_u64()?;
        self.input.need(size)?;
        let offset = self.input.pos;
        self.visit(|v| v.file_start(name, executable, size, offset))?;
        let mut remaining = size;
        while remaining > 0 {
            let buf = match self.input.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(NarError::new(
                        self.input.context.clone(),
                        self.input.pos,
                        NarErrorKind::Io(e),
                    ));
                }
            };
            if buf.is_empty() {
                return Err(self.input.err(self.input.pos, NarErrorKind::Truncated));
            }
            let n = (buf.len() as u64).min(remaining) as usize;
            let chunk = buf.get(..n).unwrap_or_default();
            self.input.hasher.update(chunk);
            if let Err(kind) = self.visitor.file_data(chunk) {
                return Err(NarError::new(
                    self.input.context.clone(),
                    self.input.pos,
                    kind,
                ));
            }
            self.input.r.consume(n);
            self.input.pos += n as u64;
            remaining -= n as u64;
        }
        self.visit(|v| v.file_end())?;
        self.input.read_padding(size)?;
        self.expect(")")
    }

    fn symlink(&mut self, name: Option<&[u8]>) -> Result<(), NarError> {
        self.expect("target")?;
        let (start, target) = self
            .input
            .read_string(MAX_TARGET_LEN, NarErrorKind::TargetTooLong)?;
        if target.is_empty() {
            return Err(self.input.err(start, NarErrorKind::EmptyTarget));
        }
        if target.contains(&0) {
            return Err(self.input.err(start, NarErrorKind::TargetContainsNul));
        }
        self.visit(|v| v.symlink(name, &target))?;
        self.expect(")")
    }

    fn directory(&mut self, name: Option<&[u8]>, depth: usize) -> Result<(), NarError> {
        self.visit(|v| v.directory_start(name))?;
        let mut prev: Option<Vec<u8>> = None;
        loop {
            let (start, tag) = self.input.read_tag()?;
            if tag == b")" {
                break;
            }
            if tag != b"entry" {
                return Err(self.input.err(
                    start,
                    NarErrorKind::UnexpectedToken {
                        expected: "\"entry\" or \")\"",
                        found: show_bytes(&tag),
                    },
                ));
            }
            self.expect("(")?;
            self.expect("name")?;
            let (name_start, entry) = self.input.read_string(MAX_NAME_LEN, |len| {
                NarErrorKind::BadName(format!("name of {len} bytes is longer than {MAX_NAME_LEN}"))
            })?;
            if let Some(reason) = name_problem(&entry) {
                return Err(self.input.err(name_start, NarErrorKind::BadName(reason)));
            }
            if let Some(p) = &prev {
                if entry == *p {
                    return Err(self
                        .input
                        .err(name_start, NarErrorKind::DuplicateEntry(show_bytes(&entry))));
                }
                if entry < *p {
                    return Err(self.input.err(
                        name_start,
                        NarErrorKind::UnsortedEntries {
                            previous: show_bytes(p),
                            name: show_bytes(&entry),
                        },
                    ));
                }
            }
            self.expect("node")?;
            self.node(Some(&entry), depth + 1)?;
            self.expect(")")?;
            prev = Some(entry);
        }
        self.visit(|v| v.directory_end())
    }
}

fn quoted(s: &'static str) -> &'static str {
    match s {
        "(" => "\"(\"",
        ")" => "\")\"",
        "type" => "\"type\"",
        "target" => "\"target\"",
        "name" => "\"name\"",
        "node" => "\"node\"",
        other => other,
    }
}

/// Parse a whole NAR from `r`, feeding `visitor`; checks there is nothing after the root.
pub(crate) fn parse<R: Read, V: Visitor>(
    r: R,
    visitor: &mut V,
    context: String,
    limit: u64,
) -> Result<NarSummary, NarError> {
    let mut parser = Parser {
        input: Input {
            r: BufReader::with_capacity(READ_BUF, r),
            hasher: Sha256::new(),
            pos: 0,
            limit,
            context,
        },
        visitor,
    };
    parser.magic()?;
    parser.node(None, 0)?;
    let end = parser.input.pos;
    if !parser.input.at_eof()? {
        return Err(parser.input.err(end, NarErrorKind::TrailingData));
    }
    Ok(NarSummary {
        nar_hash: parser.input.hasher.finalize().into(),
        nar_size: end,
    })
}

struct NullVisitor;
impl Visitor for NullVisitor {}

/// Check that `r` holds exactly one canonical NAR; returns its hash and size.
pub fn validate<R: Read>(r: R) -> Result<NarSummary, NarError> {
    validate_max(r, u64::MAX)
}

/// [`validate`] for a NAR of at most `max_bytes` bytes: reading stops with
/// [`NarErrorKind::TooLarge`] as soon as the NAR is known to be longer (at the latest when a
/// file's header announces more contents than are left), so never more than `max_bytes`
/// bytes of it are consumed.
pub fn validate_max<R: Read>(r: R, max_bytes: u64) -> Result<NarSummary, NarError> {
    parse(r, &mut NullVisitor, "stream".to_string(), max_bytes)
}

/// Unpack the NAR in `r` to `target`, which must not exist yet (its parent must).
///
/// A root regular file or symlink becomes `target` itself. Files are created with
/// `create_new` (mode 0o755 when executable, else 0o644), directories with `create_dir`
/// (0o755), symlinks as-is; nothing is ever written through a symlink and entry names are
/// validated, so nothing outside `target` is touched. On error, whatever was created so far
/// is left in place for the caller to remove.
pub fn unpack<R: Read>(r: R, target: &Path) -> Result<NarSummary, NarError> {
    unpack_max(r, target, u64::MAX)
}

/// [`unpack`] for a NAR of at most `max_bytes` bytes (a narinfo's `NarSize`): a NAR that is
/// longer fails with [`NarErrorKind::TooLarge`] before any byte past the limit is read, and
/// a file whose announced size does not fit in what is left is refused before it is created,
/// so the tree written never holds more than `max_bytes` bytes of file contents.
pub fn unpack_max<R: Read>(r: R, target: &Path, max_bytes: u64) -> Result<NarSummary, NarError> {
    let context = format!("unpack into {}", target.display());
    match fs::symlink_metadata(target) {
        Ok(_) => {
            return Err(NarError::new(
                context,
                0,
                NarErrorKind::TargetExists(target.to_path_buf()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(NarError::new(
                context,
                0,
                NarErrorKind::FileIo {
                    path: target.to_path_buf(),
                    source,
                },
            ));
        }
    }
    let mut v = Unpacker {
        root: target.to_path_buf(),
        dirs: Vec::new(),
        file: None,
    };
    parse(r, &mut v, context, max_bytes)
}

struct Unpacker {
    root: PathBuf,
    dirs: Vec<PathBuf>,
    file: Option<(File, PathBuf)>,
}

impl Unpacker {
    fn path_of(&self, name: Option<&[u8]>) -> PathBuf {
        match (self.dirs.last(), name) {
            (Some(dir), Some(n)) => dir.join(OsStr::from_bytes(n)),
            _ => self.root.clone(),
        }
    }
}

fn fs_err(path: &Path) -> impl FnOnce(io::Error) -> NarErrorKind + '_ {
    move |source| match source.kind() {
        io::ErrorKind::AlreadyExists => NarErrorKind::TargetExists(path.to_path_buf()),
        _ => NarErrorKind::FileIo {
            path: path.to_path_buf(),
            source,
        },
    }
}

impl Visitor for Unpacker {
    fn directory_start(&mut self, name: Option<&[u8]>) -> Result<(), NarErrorKind> {
        let path = self.path_of(name);
        DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(fs_err(&path))?;
        self.dirs.push(path);
        Ok(())
    }

    fn directory_end(&mut self) -> Result<(), NarErrorKind> {
        self.dirs.pop();
        Ok(())
    }

    fn symlink(&mut self, name: Option<&[u8]>, target: &[u8]) -> Result<(), NarErrorKind> {
        let path = self.path_of(name);
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &path).map_err(fs_err(&path))
    }

    fn file_start(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        _size: u64,
        _nar_offset: u64,
    ) -> Result<(), NarErrorKind> {
        let path = self.path_of(name);
        let mode = if executable { 0o755 } else { 0o644 };
        // create_new is O_CREAT|O_EXCL: it fails on any existing name, symlinks included.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(fs_err(&path))?;
        // The umask may have removed bits; set the mode exactly, on the open handle.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(fs_err(&path))?;
        self.file = Some((file, path));
        Ok(())
    }

    fn file_data(&mut self, data: &[u8]) -> Result<(), NarErrorKind> {
        if let Some((file, path)) = &mut self.file {
            file.write_all(data).map_err(fs_err(path))?;
        }
        Ok(())
    }

    fn file_end(&mut self) -> Result<(), NarErrorKind> {
        self.file = None;
        Ok(())
    }
}

/// Parse a NAR of at most `max_bytes` bytes into memory (for tests and small NARs).
pub fn parse_tree<R: Read>(r: R, max_bytes: u64) -> Result<(NarNode, NarSummary), NarError> {
    let mut b = TreeBuilder::default();
    let summary = parse(r, &mut b, "stream".to_string(), max_bytes)?;
    match b.root {
        Some(root) => Ok((root, summary)),
        // parse() succeeded, so the root node was emitted; this is unreachable in practice.
        None => Err(NarError::new(
            "stream",
            summary.nar_size,
            NarErrorKind::Truncated,
        )),
    }
}

/// An open directory: its name (`None` for the root) and the entries read so far.
type OpenDir = (Option<Vec<u8>>, BTreeMap<Vec<u8>, NarNode>);

#[derive(Default)]
struct TreeBuilder {
    dirs: Vec<OpenDir>,
    file: Option<(Option<Vec<u8>>, bool, Vec<u8>)>,
    root: Option<NarNode>,
}

impl TreeBuilder {
    fn insert(&mut self, name: Option<Vec<u8>>, node: NarNode) {
        match (self.dirs.last_mut(), name) {
            (Some((_, entries)), Some(name)) => {
                entries.insert(name, node);
            }
            _ => self.root = Some(node),
        }
    }
}

impl Visitor for TreeBuilder {
    fn directory_start(&mut self, name: Option<&[u8]>) -> Result<(), NarErrorKind> {
        self.dirs.push((name.map(<[u8]>::to_vec), BTreeMap::new()));
        Ok(())
    }

    fn directory_end(&mut self) -> Result<(), NarErrorKind> {
        if let Some((name, entries)) = self.dirs.pop() {
            self.insert(name, NarNode::Directory(entries));
        }
        Ok(())
    }

    fn symlink(&mut self, name: Option<&[u8]>, target: &[u8]) -> Result<(), NarErrorKind> {
        self.insert(
            name.map(<[u8]>::to_vec),
            NarNode::Symlink {
                target: target.to_vec(),
            },
        );
        Ok(())
    }

    fn file_start(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
        _nar_offset: u64,
    ) -> Result<(), NarErrorKind> {
        // Never trust the size for a pre-allocation beyond a small bound.
        let cap = size.min(1 << 20) as usize;
        self.file = Some((
            name.map(<[u8]>::to_vec),
            executable,
            Vec::with_capacity(cap),
        ));
        Ok(())
    }

    fn file_data(&mut self, data: &[u8]) -> Result<(), NarErrorKind> {
        if let Some((_, _, contents)) = &mut self.file {
            contents.extend_from_slice(data);
        }
        Ok(())
    }

    fn file_end(&mut self) -> Result<(), NarErrorKind> {
        if let Some((name, executable, contents)) = self.file.take() {
            self.insert(
                name,
                NarNode::Regular {
                    executable,
                    contents,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nar::testutil::*;
    use crate::nar::{dump_path, encode_node};
    use std::os::unix::fs::MetadataExt;

    fn hello() -> Vec<u8> {
        unhex(HELLO_NAR_HEX)
    }

    #[test]
    fn validate_vectors() {
        let s = validate(&hello()[..]).unwrap();
        assert_eq!(s.nar_size, 120);
        assert!(s.hash_hex().starts_with("1c37d01a") && s.hash_hex().ends_with("71fc13"));
        let s = validate(&unhex(EMPTY_DIR_NAR_HEX)[..]).unwrap();
        assert_eq!(s.nar_size, 96);
        assert!(s.hash_hex().starts_with("a50a5ab6") && s.hash_hex().ends_with("92526a"));
        let s = validate(&unhex(EXEC_NAR_HEX)[..]).unwrap();
        assert_eq!(s.nar_size, 160);
        assert!(s.hash_hex().starts_with("6283c166") && s.hash_hex().ends_with("e26554"));
        let s = validate(&encode_node(&tree())[..]).unwrap();
        assert_eq!(s.nar_size, 888);
        assert_eq!(s.hash_hex(), TREE_SHA256);
    }

    #[test]
    fn parse_tree_round_trips_and_respects_limit() {
        let nar = encode_node(&tree());
        let (node, s) = parse_tree(&nar[..], 888).unwrap();
        assert_eq!(node, tree());
        assert_eq!(s.hash_hex(), TREE_SHA256);
        let (node, _) = parse_tree(&hello()[..], 1 << 20).unwrap();
        assert_eq!(node, reg(b"hello\n"));
        let err = parse_tree(&nar[..], 887).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::TooLarge(887)), "{err}");
        // A huge declared file size is refused before anything is allocated.
        let mut b = Nb::new();
        b.toks(&[b"(", b"type", b"regular", b"contents"]);
        let at = b.pos();
        b.raw(&u64::MAX.to_le_bytes());
        let err = parse_tree(&b.0[..], 1 << 20).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::TooLarge(_)));
        assert_eq!(err.offset(), at + 8);
    }

    fn tree_meta_check(root: &Path) {
        assert_eq!(std::fs::read(root.join("a.txt")).unwrap(), b"hello\n");
        let a = std::fs::symlink_metadata(root.join("a.txt")).unwrap();
        assert_eq!(a.mode() & 0o777, 0o644);
        let run = std::fs::symlink_metadata(root.join("sub/run.sh")).unwrap();
        assert_eq!(run.mode() & 0o777, 0o755);
        let l = std::fs::symlink_metadata(root.join("link")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(
            std::fs::read_link(root.join("link")).unwrap(),
            Path::new("a.txt")
        );
    }

    #[test]
    fn dump_unpack_dump_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        materialize(&tree(), &src);
        let mut nar = Vec::new();
        let s1 = dump_path(&src, &mut nar).unwrap();
        let out = tmp.path().join("out");
        let s2 = unpack(&nar[..], &out).unwrap();
        assert_eq!(s1, s2);
        tree_meta_check(&out);
        let mut nar2 = Vec::new();
        let s3 = dump_path(&out, &mut nar2).unwrap();
        assert_eq!(nar, nar2);
        assert_eq!(s3.hash_hex(), TREE_SHA256);
        assert_eq!(s3.nar_size, 888);
    }

    /// Nix's own test NAR with a literal `Test~nix~case~hack~1` entry (tests/data/README.md):
    /// Nix on Linux restores and dumps such names literally, and so does narscope.
    #[test]
    fn case_hack_names_are_ordinary_names() {
        let nar: &[u8] = include_bytes!("../../tests/data/nix-case-collision.nar");
        let summary = validate(nar).unwrap();
        assert_eq!(summary.nar_size, nar.len() as u64);
        let (tree, _) = parse_tree(nar, nar.len() as u64).unwrap();
        let NarNode::Directory(entries) = &tree else {
            panic!("not a directory: {tree:?}")
        };
        let names: Vec<&[u8]> = entries.keys().map(Vec::as_slice).collect();
        assert_eq!(
            names,
            [&b"Test"[..], b"Test~nix~case~hack~1", b"test"],
            "names kept literally"
        );
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        assert_eq!(unpack(nar, &out).unwrap(), summary);
        assert!(
            std::fs::symlink_metadata(out.join("Test~nix~case~hack~1"))
                .unwrap()
                .is_symlink()
        );
        let mut again = Vec::new();
        assert_eq!(dump_path(&out, &mut again).unwrap(), summary);
        assert!(again == nar, "the dump is byte-equal to Nix's NAR");
        // A hand-made entry with the suffix in the middle of a name is fine too.
        let odd = dir(vec![(b"a~nix~case~hack~x", reg(b"1"))]);
        validate(&encode_node(&odd)[..]).unwrap();
    }

    #[test]
    fn unpack_root_file_and_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        unpack(&unhex(EXEC_NAR_HEX)[..], &f).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"#!/bin/sh\n");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o755);
        let l = tmp.path().join("l");
        unpack(&encode_node(&link(b"/nix/store/somewhereelse"))[..], &l).unwrap();
        assert_eq!(
            std::fs::read_link(&l).unwrap(),
            Path::new("/nix/store/somewhereelse")
        );
    }

    #[test]
    fn unpack_refuses_existing_target() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("t");
        std::fs::create_dir(&t).unwrap();
        let err = unpack(&encode_node(&tree())[..], &t).unwrap_err();
        assert!(
            matches!(err.kind(), NarErrorKind::TargetExists(p) if p == &t),
            "{err}"
        );
        assert_eq!(err.offset(), 0);
        assert_eq!(std::fs::read_dir(&t).unwrap().count(), 0);
        // A dangling symlink counts as existing too, and is not written through.
        let outside = tmp.path().join("outside");
        let dl = tmp.path().join("dl");
        std::os::unix::fs::symlink(&outside, &dl).unwrap();
        let err = unpack(&hello()[..], &dl).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::TargetExists(_)));
        assert!(!outside.exists());
    }

    #[test]
    fn unpack_absolute_symlink_is_stored_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        let outside_bytes = outside.as_os_str().as_bytes().to_vec();
        let node = dir(vec![
            (b"a", reg(b"first")),
            (b"link", link(&outside_bytes)),
            (b"z", dir(vec![(b"f", exe(b"x"))])),
        ]);
        let t = tmp.path().join("t");
        unpack(&encode_node(&node)[..], &t).unwrap();
        let l = std::fs::symlink_metadata(t.join("link")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(std::fs::read_link(t.join("link")).unwrap(), outside);
        assert!(!outside.exists(), "nothing outside the target is created");
        let entries: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("t")]);
        let (back, _) = {
            let mut nar = Vec::new();
            dump_path(&t, &mut nar).unwrap();
            parse_tree(&nar[..], 1 << 20).unwrap()
        };
        assert_eq!(back, node);
    }

    #[test]
    fn unpack_stops_at_bad_entry_without_escaping() {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = Nb::new();
        b.open_dir();
        b.entry(b"a", &reg(b"ok"));
        let at = b.entry(b"..", &reg(b"evil"));
        b.close();
        let t = tmp.path().join("t");
        let err = unpack(&b.0[..], &t).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::BadName(_)), "{err}");
        assert_eq!(err.offset(), at);
        assert_eq!(std::fs::read(t.join("a")).unwrap(), b"ok");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn every_truncation_is_truncated_at_its_length() {
        for nar in [hello(), encode_node(&tree()), unhex(EXEC_NAR_HEX)] {
            for len in 0..nar.len() {
                let err = validate(&nar[..len]).unwrap_err();
                assert!(
                    matches!(err.kind(), NarErrorKind::Truncated),
                    "len {len}: {err}"
                );
                assert_eq!(err.offset(), len as u64, "len {len}");
            }
        }
        let err = validate(&hello()[..100]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "NAR stream: at byte 100: truncated NAR (input ended early)"
        );
    }

    /// Expect `validate` to fail with a kind matching `check` at `offset`.
    fn bad(name: &str, nar: &[u8], offset: u64, check: impl Fn(&NarErrorKind) -> bool) {
        let err = validate(nar).unwrap_err();
        assert!(check(err.kind()), "{name}: wrong kind: {err}");
        assert_eq!(err.offset(), offset, "{name}: wrong offset: {err}");
        // parse_tree and listing use the same parser and must agree.
        let err2 = parse_tree(nar, u64::MAX).unwrap_err();
        assert_eq!(err2.offset(), offset, "{name} (parse_tree)");
        let err3 = crate::nar::listing(nar).unwrap_err();
        assert_eq!(err3.offset(), offset, "{name} (listing)");
    }

    #[test]
    fn bad_magic() {
        let mut b = Nb::default();
        b.s(b"nix-archive-2").node(&reg(b""));
        bad("magic 2", &b.0, 0, |k| matches!(k, NarErrorKind::BadMagic));
        let mut b = Nb::default();
        b.s(b"nix-archive").node(&reg(b""));
        bad("short magic", &b.0, 0, |k| {
            matches!(k, NarErrorKind::BadMagic)
        });
        bad("gzip data", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3], 0, |k| {
            matches!(k, NarErrorKind::BadMagic)
        });
    }

    #[test]
    fn non_zero_padding() {
        let mut nar = hello();
        nar[103] = 1; // second padding byte after "hello\n"
        bad("contents padding", &nar, 103, |k| {
            matches!(k, NarErrorKind::NonZeroPadding)
        });
        let mut nar = hello();
        nar[23] = b'x'; // padding after "nix-archive-1"
        bad("magic padding", &nar, 23, |k| {
            matches!(k, NarErrorKind::NonZeroPadding)
        });
        let mut nar = hello();
        nar[53] = 7; // padding after "type" (token at 40, bytes 48..52)
        bad("tag padding", &nar, 53, |k| {
            matches!(k, NarErrorKind::NonZeroPadding)
        });
    }

    #[test]
    fn unsorted_and_duplicate_entries() {
        let mut b = Nb::new();
        b.open_dir();
        b.entry(b"b", &reg(b""));
        let at = b.entry(b"a", &reg(b""));
        b.close();
        bad("unsorted", &b.0, at, |k| {
            matches!(k, NarErrorKind::UnsortedEntries { .. })
        });

        // Bytewise, not case-insensitive or locale order: "B" < "a".
        let mut b = Nb::new();
        b.open_dir();
        b.entry(b"a", &reg(b""));
        let at = b.entry(b"B", &reg(b""));
        b.close();
        bad("case order", &b.0, at, |k| {
            matches!(k, NarErrorKind::UnsortedEntries { .. })
        });

        let mut b = Nb::new();
        b.open_dir();
        b.entry(b"a", &reg(b""));
        let at = b.entry(b"a", &dir(vec![]));
        b.close();
        bad(
            "duplicate",
            &b.0,
            at,
            |k| matches!(k, NarErrorKind::DuplicateEntry(n) if n == "a"),
        );
    }

    #[test]
    fn bad_names() {
        let long = vec![b'x'; 256];
        let names: Vec<(&str, &[u8])> = vec![
            ("slash", b"/"),
            ("a/b", b"a/b"),
            ("dot", b"."),
            ("dotdot", b".."),
            ("empty", b""),
            ("nul", b"a\0b"),
            ("256 bytes", &long),
        ];
        for (what, name) in names {
            let mut b = Nb::new();
            b.open_dir();
            let at = b.entry(name, &reg(b""));
            b.close();
            bad(what, &b.0, at, |k| matches!(k, NarErrorKind::BadName(_)));
        }
        // 255 bytes is fine.
        let ok = dir(vec![(&[b'y'; 255][..], reg(b""))]);
        validate(&encode_node(&ok)[..]).unwrap();
    }

    #[test]
    fn executable_rules() {
        let mut b = Nb::new();
        b.toks(&[b"(", b"type", b"regular", b"contents", b"hi"]);
        let at = b.pos();
        b.toks(&[b"executable", b"", b")"]);
        bad(
            "executable after contents",
            &b.0,
            at,
            |k| matches!(k, NarErrorKind::UnexpectedToken { expected: "\")\"", found } if found == "executable"),
        );

        let mut b = Nb::new();
        b.toks(&[b"(", b"type", b"regular", b"executable"]);
        let at = b.pos();
        b.toks(&[b"yes", b"contents", b"hi", b")"]);
        bad("executable value", &b.0, at, |k| {
            matches!(k, NarErrorKind::ExecutableValueNotEmpty)
        });

        let mut b = Nb::new();
        b.toks(&[b"(", b"type", b"regular", b"executable", b""]);
        let at = b.pos();
        b.toks(&[b"executable", b"", b"contents", b"hi", b")"]);
        bad("executable twice", &b.0, at, |k| {
            matches!(k, NarErrorKind::UnexpectedToken { .. })
        });
    }

    #[test]
    fn grammar_order() {
        let mut b = Nb::new();
        b.s(b"(");
        let at = b.pos();
        b.toks(&[b"regular", b"type", b"contents", b"", b")"]);
        bad("type first", &b.0, at, |k| {
            matches!(
                k,
                NarErrorKind::UnexpectedToken {
                    expected: "\"type\"",
                    ..
                }
            )
        });

        let mut b = Nb::new();
        b.open_dir().toks(&[b"entry", b"("]);
        let at = b.pos();
        b.toks(&[b"node"])
            .node(&reg(b""))
            .toks(&[b"name", b"a", b")", b")"]);
        bad("name before node", &b.0, at, |k| {
            matches!(
                k,
                NarErrorKind::UnexpectedToken {
                    expected: "\"name\"",
                    ..
                }
            )
        });

        let mut b = Nb::new();
        b.toks(&[b"(", b"type"]);
        let at = b.pos();
        b.toks(&[b"fifo", b")"]);
        bad(
            "unknown type",
            &b.0,
            at,
            |k| matches!(k, NarErrorKind::UnknownType(t) if t == "fifo"),
        );

        let mut b = Nb::new();
        b.open_dir();
        let at = b.pos();
        b.toks(&[b"entri", b"(", b")"]);
        bad("bad dir tag", &b.0, at, |k| {
            matches!(k, NarErrorKind::UnexpectedToken { .. })
        });
    }

    #[test]
    fn tag_limits() {
        let mut b = Nb::new();
        b.toks(&[b"(", b"type"]);
        let at = b.pos();
        b.s(&[b'r'; 33]).close();
        bad("33-byte tag", &b.0, at, |k| {
            matches!(k, NarErrorKind::TagTooLong(33))
        });
        // A length prefix of u64::MAX for a tag fails fast, without allocating.
        let mut b = Nb::new();
        let at = b.pos();
        b.raw(&u64::MAX.to_le_bytes());
        bad("huge tag", &b.0, at, |k| {
            matches!(k, NarErrorKind::TagTooLong(u64::MAX))
        });
    }

    #[test]
    fn trailing_data() {
        let mut nar = hello();
        nar.push(0);
        bad("one byte", &nar, 120, |k| {
            matches!(k, NarErrorKind::TrailingData)
        });
        let mut nar = hello();
        nar.extend_from_slice(&hello());
        bad("two NARs", &nar, 120, |k| {
            matches!(k, NarErrorKind::TrailingData)
        });
    }

    fn nested(levels: usize) -> (Vec<u8>, u64) {
        let mut b = Nb::new();
        for _ in 0..levels {
            b.open_dir();
            b.entry_head(b"d");
        }
        let deepest = b.pos();
        b.open_dir().close();
        for _ in 0..levels {
            b.close().close();
        }
        (b.0, deepest)
    }

    #[test]
    fn depth_limit() {
        let (ok, _) = nested(63);
        validate(&ok[..]).unwrap();
        let (too_deep, at) = nested(64);
        bad("depth 64", &too_deep, at, |k| {
            matches!(k, NarErrorKind::TooDeep)
        });
        let (way_too_deep, _) = nested(1000);
        assert!(matches!(
            validate(&way_too_deep[..]).unwrap_err().kind(),
            NarErrorKind::TooDeep
        ));
    }

    #[test]
    fn symlink_target_rules() {
        let case = |target: &[u8]| {
            let mut b = Nb::new();
            b.toks(&[b"(", b"type", b"symlink", b"target"]);
            let at = b.pos();
            b.s(target).close();
            (b.0, at)
        };
        let (nar, at) = case(b"");
        bad("empty target", &nar, at, |k| {
            matches!(k, NarErrorKind::EmptyTarget)
        });
        let (nar, at) = case(&[b'a'; 4096]);
        bad("4096 target", &nar, at, |k| {
            matches!(k, NarErrorKind::TargetTooLong(4096))
        });
        let (nar, at) = case(b"a\0b");
        bad("nul target", &nar, at, |k| {
            matches!(k, NarErrorKind::TargetContainsNul)
        });
        let (nar, _) = case(&[b'a'; 4095]);
        validate(&nar[..]).unwrap();
    }

    #[test]
    fn io_errors_are_reported() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("network down"));
                }
                let n = self.0.min(buf.len()).min(24);
                let src = unhex(HELLO_NAR_HEX);
                buf[..n].copy_from_slice(&src[..n]);
                self.0 = 0;
                Ok(n)
            }
        }
        let err = validate(Failing(24)).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::Io(_)), "{err}");
        assert_eq!(err.offset(), 24);
        assert!(err.to_string().contains("network down"));
        let err = err.with_context("nar/abc.nar.xz");
        assert!(
            err.to_string()
                .starts_with("NAR nar/abc.nar.xz: at byte 24: read error: network down")
        );
    }
}
