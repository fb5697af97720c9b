//! NAR writing, reading, validation and unpacking.
//!
//! A NAR (Nix ARchive) is a deterministic serialisation of a file-system tree made of
//! regular files (optionally executable), symlinks and directories. Everything here is
//! synchronous `std::io` code that streams: no function holds a whole NAR in memory
//! except [`encode_node`] and [`parse_tree`], which are meant for small NARs.

pub mod listing;
pub mod reader;
pub mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;

pub use listing::{listing, listing_to_nix_json};
pub use reader::{parse_tree, unpack, unpack_max, validate, validate_max};
pub use writer::{NarWriter, dump_path, encode_node};

/// The magic string every NAR starts with.
pub const NAR_MAGIC: &[u8] = b"nix-archive-1";
/// Longest tag (keyword token) accepted when reading (`narMaxTag`).
pub const MAX_TAG_LEN: u64 = 32;
/// Longest directory entry name accepted (`narMaxName`).
pub const MAX_NAME_LEN: u64 = 255;
/// Longest symlink target accepted (`narMaxTarget`).
pub const MAX_TARGET_LEN: u64 = 4095;
/// Nodes nested this deep or deeper are refused (`narMaxDepth`; the root is depth 0).
pub const MAX_DEPTH: usize = 64;

/// SHA-256 and length of an uncompressed NAR (a narinfo's `NarHash` and `NarSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NarSummary {
    /// Raw SHA-256 digest of the NAR bytes.
    pub nar_hash: [u8; 32],
    /// Length of the NAR in bytes.
    pub nar_size: u64,
}

impl NarSummary {
    /// The digest as lowercase hex.
    pub fn hash_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.nar_hash {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// An in-memory file-system tree, the content of a NAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NarNode {
    /// A regular file.
    Regular {
        /// Whether the file has the executable bit.
        executable: bool,
        /// The file's bytes.
        contents: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// The link target, stored as-is.
        target: Vec<u8>,
    },
    /// A directory; a `BTreeMap` keeps entries in NAR (bytewise) order.
    Directory(BTreeMap<Vec<u8>, NarNode>),
}

/// What went wrong while reading or writing a NAR.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NarErrorKind {
    /// Reading the NAR input failed.
    #[error("read error: {0}")]
    Io(#[source] io::Error),
    /// Writing the NAR output failed.
    #[error("write error: {0}")]
    Output(#[source] io::Error),
    /// A file-system operation on `path` failed.
    #[error("{}: {source}", path.display())]
    FileIo {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The input ended in the middle of the NAR.
    #[error("truncated NAR (input ended early)")]
    Truncated,
    /// The input does not start with `nix-archive-1`.
    #[error("bad magic: input doesn't look like a Nix archive")]
    BadMagic,
    /// A keyword other than the one the grammar requires.
    #[error("expected {expected}, found {found:?}")]
    UnexpectedToken {
        /// What the grammar allows here.
        expected: &'static str,
        /// What was read (lossily decoded, shortened).
        found: String,
    },
    /// A keyword longer than [`MAX_TAG_LEN`].
    #[error("token of {0} bytes is longer than the {MAX_TAG_LEN}-byte limit for tags")]
    TagTooLong(u64),
    /// An unknown node type.
    #[error("unknown file type {0:?}")]
    UnknownType(String),
    /// The value after `executable` was not the empty string.
    #[error("executable marker has a non-empty value")]
    ExecutableValueNotEmpty,
    /// Padding after a string was not all zero.
    #[error("non-zero padding")]
    NonZeroPadding,
    /// A directory entry's name is not greater than the previous one.
    #[error("directory entries not sorted: {name:?} after {previous:?}")]
    UnsortedEntries {
        /// The previous name.
        previous: String,
        /// The offending name.
        name: String,
    },
    /// The same name appears twice in a directory.
    #[error("duplicate directory entry {0:?}")]
    DuplicateEntry(String),
    /// A directory entry's name is not allowed.
    #[error("invalid file name: {0}")]
    BadName(String),
    /// The tree nests [`MAX_DEPTH`] levels or more.
    #[error("directory nesting exceeds the maximum depth of {MAX_DEPTH}")]
    TooDeep,
    /// A symlink target longer than [`MAX_TARGET_LEN`].
    #[error("symlink target of {0} bytes is longer than {MAX_TARGET_LEN}")]
    TargetTooLong(u64),
    /// An empty symlink target.
    #[error("empty symlink target")]
    EmptyTarget,
    /// A symlink target containing a NUL byte.
    #[error("symlink target contains a NUL byte")]
    TargetContainsNul,
    /// Bytes follow the root node.
    #[error("trailing data after the end of the NAR")]
    TrailingData,
    /// The NAR is larger than the caller's limit.
    #[error("NAR is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// A file that is not a regular file, symlink or directory (socket, FIFO, device).
    #[error("{}: unsupported file type (only regular files, symlinks and directories)", .0.display())]
    UnsupportedFileType(PathBuf),
    /// The unpack target already exists.
    #[error("{}: target already exists", .0.display())]
    TargetExists(PathBuf),
    /// A file changed size while it was being dumped.
    #[error("{}: file changed while it was being read", .0.display())]
    FileChanged(PathBuf),
    /// A name or target that the `.ls` JSON format cannot carry.
    #[error("{0} is not valid UTF-8, which the JSON listing cannot represent")]
    NotUtf8(String),
}

/// An error from NAR code: what happened, where in the NAR stream, and on which object.
///
/// Displays as `NAR <context>: at byte N: <cause>`.
#[derive(Debug)]
pub struct NarError {
    context: String,
    offset: u64,
    kind: NarErrorKind,
}

impl NarError {
    /// A new error at byte `offset` of the NAR.
    pub fn new(context: impl Into<String>, offset: u64, kind: NarErrorKind) -> Self {
        NarError {
            context: context.into(),
            offset,
            kind,
        }
    }

    /// Replace the context (for example with a cache key) that the message names.
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }

    /// Byte offset in the uncompressed NAR where the problem was found.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> &NarErrorKind {
        &self.kind
    }

    /// The object named in the message.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Take the kind out of the error.
    pub fn into_kind(self) -> NarErrorKind {
        self.kind
    }
}

impl fmt::Display for NarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NAR {}: at byte {}: {}",
            self.context, self.offset, self.kind
        )
    }
}

impl std::error::Error for NarError {}

/// Render bytes for an error message: lossy UTF-8, at most 64 characters.
pub(crate) fn show_bytes(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Number of zero bytes that follow a string of length `len`.
pub(crate) fn padding_len(len: u64) -> usize {
    // (8 - len % 8) % 8 is always < 8.
    ((8 - (len % 8)) % 8) as usize
}

/// Check a directory entry name against Nix's rules; returns the reason when it is bad.
///
/// A name containing `~nix~case~hack~` is an ordinary name, as for Nix on Linux: only with
/// `use-case-hack` (macOS) does Nix add or strip that suffix, and narscope never does.
pub(crate) fn name_problem(name: &[u8]) -> Option<String> {
    if name.is_empty() {
        Some("empty name".to_string())
    } else if name == b"." || name == b".." {
        Some(format!("{:?} is not allowed", show_bytes(name)))
    } else if name.contains(&b'/') {
        Some(format!("{:?} contains '/'", show_bytes(name)))
    } else if name.contains(&0) {
        Some(format!("{:?} contains a NUL byte", show_bytes(name)))
    } else if name.len() as u64 > MAX_NAME_LEN {
        Some(format!(
            "name of {} bytes is longer than {MAX_NAME_LEN}",
            name.len()
        ))
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Test trees and helpers shared by the NAR reader, writer and listing tests.

    use super::NarNode;
    use std::collections::BTreeMap;
    use std::path::Path;

    pub fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    pub fn reg(contents: &[u8]) -> NarNode {
        NarNode::Regular {
            executable: false,
            contents: contents.to_vec(),
        }
    }

    pub fn exe(contents: &[u8]) -> NarNode {
        NarNode::Regular {
            executable: true,
            contents: contents.to_vec(),
        }
    }

    pub fn link(target: &[u8]) -> NarNode {
        NarNode::Symlink {
            target: target.to_vec(),
        }
    }

    pub fn dir(entries: Vec<(&[u8], NarNode)>) -> NarNode {
        NarNode::Directory(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_vec(), v))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    /// The doc's `tree/` vector: 888 bytes, sha256 ab9e600c…60d4fc.
    pub fn tree() -> NarNode {
        dir(vec![
            (b"a.txt", reg(b"hello\n")),
            (b"link", link(b"a.txt")),
            (b"sub", dir(vec![(b"run.sh", exe(b"#!/bin/sh\necho hi\n"))])),
        ])
    }
    pub const TREE_SHA256: &str =
        "ab9e600c5a3d4f86783075f9ca16467e51d69a2780c8b8db76a21de48960d4fc";

    pub const HELLO_NAR_HEX: &str = "0d000000000000006e69782d617263686976652d3100000001000000000000002800000000000000040000000000000074797065000000000700000000000000726567756c6172000800000000000000636f6e74656e7473060000000000000068656c6c6f0a000001000000000000002900000000000000";
    pub const EMPTY_DIR_NAR_HEX: &str = "0d000000000000006e69782d617263686976652d31000000010000000000000028000000000000000400000000000000747970650000000009000000000000006469726563746f72790000000000000001000000000000002900000000000000";
    pub const EXEC_NAR_HEX: &str = "0d000000000000006e69782d617263686976652d3100000001000000000000002800000000000000040000000000000074797065000000000700000000000000726567756c6172000a0000000000000065786563757461626c6500000000000000000000000000000800000000000000636f6e74656e74730a0000000000000023212f62696e2f73680a00000000000001000000000000002900000000000000";

    /// Write `node` to the file system at `path` (which must not exist).
    pub fn materialize(node: &NarNode, path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::PermissionsExt;
        match node {
            NarNode::Regular {
                executable,
                contents,
            } => {
                std::fs::write(path, contents).unwrap();
                let mode = if *executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            NarNode::Symlink { target } => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path).unwrap()
            }
            NarNode::Directory(entries) => {
                std::fs::create_dir(path).unwrap();
                for (name, child) in entries {
                    materialize(child, &path.join(std::ffi::OsStr::from_bytes(name)));
                }
            }
        }
    }

    /// Builder for hand-made (possibly invalid) NAR byte streams.
    #[derive(Default)]
    pub struct Nb(pub Vec<u8>);

    impl Nb {
        /// Starts with the magic.
        pub fn new() -> Self {
            let mut b = Nb::default();
            b.s(b"nix-archive-1");
            b
        }
        pub fn pos(&self) -> u64 {
            self.0.len() as u64
        }
        pub fn s(&mut self, s: &[u8]) -> &mut Self {
            self.0.extend_from_slice(&(s.len() as u64).to_le_bytes());
            self.0.extend_from_slice(s);
            self.0
                .extend(std::iter::repeat_n(0u8, (8 - s.len() % 8) % 8));
            self
        }
        pub fn toks(&mut self, toks: &[&[u8]]) -> &mut Self {
            for t in toks {
                self.s(t);
            }
            self
        }
        pub fn raw(&mut self, b: &[u8]) -> &mut Self {
            self.0.extend_from_slice(b);
            self
        }
        /// An encoded node (no magic).
        pub fn node(&mut self, n: &NarNode) -> &mut Self {
            let enc = super::encode_node(n);
            self.raw(&enc[24..])
        }
        pub fn open_dir(&mut self) -> &mut Self {
            self.toks(&[b"(", b"type", b"directory"])
        }
        /// `entry ( name <name> node` — returns the offset of the name token.
        pub fn entry_head(&mut self, name: &[u8]) -> u64 {
            self.toks(&[b"entry", b"(", b"name"]);
            let at = self.pos();
            self.toks(&[name, b"node"]);
            at
        }
        pub fn entry(&mut self, name: &[u8], n: &NarNode) -> u64 {
            let at = self.entry_head(name);
            self.node(n).s(b")");
            at
        }
        pub fn close(&mut self) -> &mut Self {
            self.s(b")")
        }
    }
}
