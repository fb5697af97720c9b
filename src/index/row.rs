//! One row of the index: a narinfo (or a phantom that is only referenced) in 96 bytes, its
//! verdict ([`RowStatus`]), compression ([`Comp`]) and [`flags`]; strings live in the index's
//! arena and are reached through [`Span`]s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::audit::Status;
use crate::compression::Compression;

/// A row's position in [`Index`](super::Index); stable for the index's lifetime.
pub type RowId = u32;

/// A row's verdict. `Pending` until its narinfo has been read and judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RowStatus {
    /// Listed, not judged yet.
    Pending = 0,
    /// A trusted signature verifies (see [`Status::Trusted`]).
    Trusted = 1,
    /// Unsigned by a trusted key but content-addressed (see [`Status::ContentAddressed`]).
    ContentAddressed = 2,
    /// Signed, but by no trusted key (see [`Status::Untrusted`]).
    Untrusted = 3,
    /// A trusted key's signature fails to verify (see [`Status::Invalid`]).
    Invalid = 4,
    /// No signatures at all (see [`Status::Unsigned`]).
    Unsigned = 5,
    /// See [`Status::Corrupt`] (set by a content check).
    Corrupt = 6,
    /// The narinfo could not be read or judged (see [`Status::Error`]).
    Error = 7,
}

impl RowStatus {
    /// Every status, in display order.
    pub const ALL: [RowStatus; 8] = [
        RowStatus::Trusted,
        RowStatus::ContentAddressed,
        RowStatus::Untrusted,
        RowStatus::Invalid,
        RowStatus::Unsigned,
        RowStatus::Corrupt,
        RowStatus::Error,
        RowStatus::Pending,
    ];

    /// The word used in output (`pending` for unjudged rows).
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Pending => "pending",
            RowStatus::Trusted => "trusted",
            RowStatus::ContentAddressed => "content-addressed",
            RowStatus::Untrusted => "untrusted",
            RowStatus::Invalid => "invalid",
            RowStatus::Unsigned => "unsigned",
            RowStatus::Corrupt => "corrupt",
            RowStatus::Error => "error",
        }
    }

    /// The status named `s`, the inverse of [`RowStatus::as_str`].
    pub fn parse(s: &str) -> Option<RowStatus> {
        RowStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub(super) fn from_u8(v: u8) -> Option<RowStatus> {
        RowStatus::ALL.into_iter().find(|r| *r as u8 == v)
    }

    /// Whether Nix would substitute a path with this verdict.
    pub fn is_good(self) -> bool {
        matches!(self, RowStatus::Trusted | RowStatus::ContentAddressed)
    }
}

impl From<Status> for RowStatus {
    fn from(s: Status) -> RowStatus {
        match s {
            Status::Trusted => RowStatus::Trusted,
            Status::ContentAddressed => RowStatus::ContentAddressed,
            Status::Untrusted => RowStatus::Untrusted,
            Status::Invalid => RowStatus::Invalid,
            Status::Unsigned => RowStatus::Unsigned,
            Status::Corrupt => RowStatus::Corrupt,
            Status::Error => RowStatus::Error,
        }
    }
}

/// Bits of [`Row::flags`]: what else is known about a row besides its verdict.
pub mod flags {
    /// Only referenced: no narinfo of this hash was listed.
    pub const PHANTOM: u8 = 1;
    /// Its narinfo was listed once and is gone now.
    pub const REMOVED: u8 = 2;
    /// A `<hash>.ls` listing exists.
    pub const HAS_LS: u8 = 4;
    /// The narinfo's StorePath has another hash part than its key.
    pub const KEY_MISMATCH: u8 = 8;
    /// The narinfo has a `CA` field.
    pub const CA: u8 = 16;
    /// The NARs were listed and this narinfo's URL is not among them.
    pub const NAR_MISSING: u8 = 32;
    /// A deriver is recorded.
    pub const DERIVER: u8 = 64;
    /// The narinfo was listed but could not be read or parsed: what it references (and
    /// which NAR it points to) is unknown.
    pub const UNREADABLE: u8 = 128;
}

/// The compression column: the narinfo's field as Nix reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Comp {
    /// Not known (unread narinfo).
    Unknown = 0,
    /// `none`: the NAR is stored uncompressed.
    None = 1,
    /// `xz`, what Nix writes by default.
    Xz = 2,
    /// `bzip2` (also a missing field).
    Bzip2 = 3,
    /// `zstd`: Zstandard, which Nix 2.8 writes with `compression=zstd`.
    Zstd = 4,
    /// `gzip`, which Nix reads through libarchive.
    Gzip = 5,
    /// `br`: Brotli, which Nix reads and writes with libbrotli.
    Br = 6,
    /// A name narscope cannot decode.
    Other = 7,
}

impl Comp {
    /// From a narinfo's `Compression` field.
    pub fn from_field(v: Option<&str>) -> Comp {
        match Compression::from_narinfo_field(v) {
            Ok(Compression::None) => Comp::None,
            Ok(Compression::Xz) => Comp::Xz,
            Ok(Compression::Bzip2) => Comp::Bzip2,
            Ok(Compression::Zstd) => Comp::Zstd,
            Ok(Compression::Gzip) => Comp::Gzip,
            Ok(Compression::Br) => Comp::Br,
            Err(_) => Comp::Other,
        }
    }

    /// The name shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Comp::Unknown => "",
            Comp::None => "none",
            Comp::Xz => "xz",
            Comp::Bzip2 => "bzip2",
            Comp::Zstd => "zstd",
            Comp::Gzip => "gzip",
            Comp::Br => "br",
            Comp::Other => "other",
        }
    }

    pub(super) fn from_u8(v: u8) -> Comp {
        [
            Comp::Unknown,
            Comp::None,
            Comp::Xz,
            Comp::Bzip2,
            Comp::Zstd,
            Comp::Gzip,
            Comp::Br,
            Comp::Other,
        ]
        .get(usize::from(v))
        .copied()
        .unwrap_or(Comp::Other)
    }
}

/// A range in one of the index's arenas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub(super) off: u32,
    pub(super) len: u32,
}

/// Where a narinfo's text lives in the blob file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextRef {
    /// Byte offset of the text in the blob file.
    pub off: u64,
    /// Length; 0 when no text is stored.
    pub len: u32,
}

/// One narinfo (or phantom) in the index. 96 bytes; strings live in the arena.
#[derive(Clone, Debug)]
pub struct Row {
    /// The hash part, decoded (20 bytes).
    pub digest: [u8; 20],
    pub(super) name: Span,
    pub(super) url: Span,
    pub(super) refs: Span,
    /// NarSize (0 when unknown).
    pub nar_size: u64,
    /// FileSize, or `u64::MAX` when the narinfo does not give one.
    pub file_size: u64,
    /// LastModified of the narinfo object (Unix seconds; `i64::MIN` when unknown).
    pub mtime: i64,
    /// A hash of the narinfo object's ETag (0 when none), for change detection.
    pub etag: u64,
    /// Size of the narinfo object.
    pub obj_size: u32,
    /// Where the narinfo text is kept.
    pub text: TextRef,
    /// The verdict ([`RowStatus::Pending`] until the narinfo has been judged).
    pub status: RowStatus,
    /// How the NAR file is compressed, from the `Compression` field.
    pub comp: Comp,
    /// Bits from [`flags`] (phantom, removed, has `.ls`, key mismatch, …).
    pub flags: u8,
}

impl Row {
    pub(super) fn phantom(digest: [u8; 20]) -> Row {
        Row {
            digest,
            name: Span::default(),
            url: Span::default(),
            refs: Span::default(),
            nar_size: 0,
            file_size: u64::MAX,
            mtime: i64::MIN,
            etag: 0,
            obj_size: 0,
            text: TextRef::default(),
            status: RowStatus::Pending,
            comp: Comp::Unknown,
            flags: flags::PHANTOM,
        }
    }

    /// Whether this row is a listed narinfo (neither phantom nor removed).
    pub fn is_live(&self) -> bool {
        self.flags & (flags::PHANTOM | flags::REMOVED) == 0
    }

    /// Whether a flag is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether this is a listed narinfo whose contents are unknown: not read yet, or
    /// unreadable. What it references is unknown, so nothing may be deleted on the strength
    /// of its silence.
    pub fn is_unknown(&self) -> bool {
        self.is_live() && (self.status == RowStatus::Pending || self.has(flags::UNREADABLE))
    }

    /// FileSize, when known.
    pub fn file_size(&self) -> Option<u64> {
        (self.file_size != u64::MAX).then_some(self.file_size)
    }

    /// LastModified, when known.
    pub fn modified(&self) -> Option<SystemTime> {
        (self.mtime != i64::MIN)
            .then(|| UNIX_EPOCH + Duration::from_secs(u64::try_from(self.mtime).unwrap_or(0)))
    }

    pub(crate) fn spans(&self) -> [(u32, u32); 3] {
        [
            (self.name.off, self.name.len),
            (self.url.off, self.url.len),
            (self.refs.off, self.refs.len),
        ]
    }

    /// The row that [`StoredRow`] describes; `None` when its status byte is not a
    /// [`RowStatus`].
    pub(crate) fn from_stored(s: StoredRow) -> Option<Row> {
        let sp = |(off, len): (u32, u32)| Span { off, len };
        Some(Row {
            digest: s.digest,
            name: sp(s.spans[0]),
            url: sp(s.spans[1]),
            refs: sp(s.spans[2]),
            nar_size: s.nar_size,
            file_size: s.file_size,
            mtime: s.mtime,
            etag: s.etag,
            obj_size: s.obj_size,
            text: s.text,
            status: RowStatus::from_u8(s.status)?,
            comp: Comp::from_u8(s.comp),
            flags: s.flags,
        })
    }
}

/// A row as the index file stores it: the fields of [`Row`] (same names, same meaning), with
/// the arena spans as `(offset, length)` pairs and the status and compression still as their
/// bytes.
pub(crate) struct StoredRow {
    /// The hash part, decoded.
    pub(crate) digest: [u8; 20],
    /// The name, URL and references spans, in that order.
    pub(crate) spans: [(u32, u32); 3],
    pub(crate) nar_size: u64,
    pub(crate) file_size: u64,
    pub(crate) mtime: i64,
    pub(crate) etag: u64,
    pub(crate) obj_size: u32,
    pub(crate) text: TextRef,
    /// A [`RowStatus`] as its byte.
    pub(crate) status: u8,
    /// A [`Comp`] as its byte.
    pub(crate) comp: u8,
    pub(crate) flags: u8,
}
