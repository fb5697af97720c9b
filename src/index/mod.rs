//! The local index of one cache: a compact row per narinfo, the NAR objects, and the narinfo
//! texts on disk. It lets the dashboard reopen a cache at once and refresh only what changed,
//! and it is what later whole-cache work (garbage collection) plans from.
//!
//! Rows are never reordered or reused: a [`RowId`] stays valid for the index's lifetime, so
//! views can keep sorted id vectors. Rows for paths that are only *referenced* (no narinfo
//! listed) exist as phantoms, so references are plain row ids; removed narinfos are flagged.
//!
//! No I/O here except reading narinfo texts back from the blob file ([`Index::read_text`]);
//! [`file`] saves and loads, [`scan`] fills an index from a store.

pub mod file;
pub mod scan;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::audit::Status;
use crate::compression::Compression;
use crate::nix::{NarInfo, TrustedKeys, nix32};

pub use file::Blob;

/// A row's position in [`Index`]; stable for the index's lifetime.
pub type RowId = u32;

/// A row's verdict. `Pending` until its narinfo has been read and judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RowStatus {
    /// Listed, not judged yet.
    Pending = 0,
    /// See [`Status::Trusted`].
    Trusted = 1,
    /// See [`Status::ContentAddressed`].
    ContentAddressed = 2,
    /// See [`Status::Untrusted`].
    Untrusted = 3,
    /// See [`Status::Invalid`].
    Invalid = 4,
    /// See [`Status::Unsigned`].
    Unsigned = 5,
    /// See [`Status::Corrupt`] (set by a content check).
    Corrupt = 6,
    /// See [`Status::Error`].
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

    /// Parse [`RowStatus::as_str`].
    pub fn parse(s: &str) -> Option<RowStatus> {
        RowStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    fn from_u8(v: u8) -> Option<RowStatus> {
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

/// Row flags.
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
    /// `none`.
    None = 1,
    /// `xz`.
    Xz = 2,
    /// `bzip2` (also a missing field).
    Bzip2 = 3,
    /// `zstd`.
    Zstd = 4,
    /// `gzip`.
    Gzip = 5,
    /// `br`.
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

    fn from_u8(v: u8) -> Comp {
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
    off: u32,
    len: u32,
}

/// Where a narinfo's text lives in the blob file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextRef {
    /// Byte offset.
    pub off: u64,
    /// Length; 0 when no text is stored.
    pub len: u32,
}

/// One narinfo (or phantom) in the index. 96 bytes; strings live in the arena.
#[derive(Clone, Debug)]
pub struct Row {
    /// The hash part, decoded (20 bytes).
    pub digest: [u8; 20],
    name: Span,
    url: Span,
    refs: Span,
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
    /// The verdict.
    pub status: RowStatus,
    /// The compression.
    pub comp: Comp,
    /// [`flags`].
    pub flags: u8,
}

impl Row {
    fn phantom(digest: [u8; 20]) -> Row {
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
}

/// A NAR (or other object under `nar/`) as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NarObject {
    /// Its key, e.g. `nar/1w1fff….nar.xz`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// LastModified (Unix seconds; `i64::MIN` when unknown).
    pub mtime: i64,
}

/// An object at the cache root that is neither a narinfo nor `nix-cache-info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherObject {
    /// Its key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// LastModified (Unix seconds; `i64::MIN` when unknown).
    pub mtime: i64,
}

/// What a judged narinfo contributes to its row.
#[derive(Clone, Debug)]
pub struct RowData {
    /// The narinfo key's hash part.
    pub hash_part: String,
    /// The narinfo object's size, mtime and etag.
    pub obj_size: u64,
    /// LastModified (Unix seconds; `i64::MIN` when unknown).
    pub mtime: i64,
    /// ETag hash (see [`etag_hash`]).
    pub etag: u64,
    /// The parsed narinfo, or `None` when it could not be read.
    pub info: Option<NarInfoSummary>,
    /// The verdict.
    pub status: RowStatus,
    /// Where the text was stored.
    pub text: TextRef,
}

/// The parts of a narinfo the index keeps.
#[derive(Clone, Debug)]
pub struct NarInfoSummary {
    /// StorePath name.
    pub name: String,
    /// StorePath hash part (to detect a narinfo stored under another key).
    pub store_hash: String,
    /// URL.
    pub url: String,
    /// References (hash part and name).
    pub references: Vec<(String, String)>,
    /// NarSize.
    pub nar_size: u64,
    /// FileSize.
    pub file_size: Option<u64>,
    /// The Compression field.
    pub comp: Comp,
    /// CA present.
    pub ca: bool,
    /// Deriver present.
    pub deriver: bool,
}

impl NarInfoSummary {
    /// The summary of a parsed narinfo.
    pub fn of(info: &NarInfo) -> NarInfoSummary {
        NarInfoSummary {
            name: info.store_path.name().to_string(),
            store_hash: info.store_path.hash_part().to_string(),
            url: info.url.clone(),
            references: info
                .references
                .iter()
                .map(|r| (r.hash_part().to_string(), r.name().to_string()))
                .collect(),
            nar_size: info.nar_size,
            file_size: info.file_size,
            comp: Comp::from_field(info.compression.as_deref()),
            ca: info.ca.is_some(),
            deriver: info.deriver.is_some(),
        }
    }
}

/// A stable 64-bit hash of an ETag (FNV-1a; quotes and `W/` ignored), 0 for none.
pub fn etag_hash(etag: Option<&str>) -> u64 {
    let Some(e) = etag else { return 0 };
    let e = e.trim().trim_start_matches("W/").trim_matches('"');
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in e.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

/// Unix seconds of a time, `i64::MIN` for none.
pub fn unix_secs(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(i64::MIN)
}

/// A digest of a trusted key set: verdicts in an index are valid only under the same keys.
pub fn keys_id(keys: &TrustedKeys) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut names: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    names.sort();
    let mut h = Sha256::new();
    for n in names {
        h.update(n.as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

/// Decode a 32-character hash part.
pub fn digest_of(hash_part: &str) -> Option<[u8; 20]> {
    if hash_part.len() != 32 {
        return None;
    }
    nix32::decode(hash_part).ok()?.try_into().ok()
}

/// Counts and sizes over the live rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Live narinfos.
    pub paths: u64,
    /// Sum of NarSize.
    pub nar_bytes: u64,
    /// Sum of FileSize (where given).
    pub file_bytes: u64,
    /// Rows per status, indexed by `RowStatus as usize`.
    pub by_status: [u64; 8],
    /// Rows and FileSize bytes per compression, indexed by `Comp as usize`.
    pub by_comp: [(u64, u64); 8],
    /// Bytes of all NAR objects listed.
    pub nar_object_bytes: u64,
    /// NAR objects listed.
    pub nar_objects: u64,
}

/// Problems an operator should know about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems {
    /// Narinfos whose NAR is not in the listing (only when NARs were listed).
    pub dangling: Vec<RowId>,
    /// NAR objects no narinfo points to.
    pub orphan_nars: Vec<usize>,
    /// (row, referenced row) pairs whose reference is not in the cache.
    pub missing_refs: Vec<(RowId, RowId)>,
    /// Narinfos whose StorePath does not match their key.
    pub key_mismatch: Vec<RowId>,
    /// Narinfos that could not be read.
    pub unreadable: Vec<RowId>,
    /// `.ls` listings without a narinfo, temp files and other stray objects at the root
    /// (indices into [`Index::others`]; misnamed narinfos and secret keys are not counted here).
    pub stray: Vec<usize>,
    /// Objects at the root named like a narinfo that name no store path (indices into
    /// [`Index::others`], see [`crate::nix::store_path::narinfo_key_problem`]). They are no
    /// rows: nothing references them, and gc and delete leave them alone.
    pub misnamed: Vec<usize>,
    /// Secret keys stored in the cache (indices into [`Index::secret_keys`]).
    pub secret_keys: Vec<usize>,
    /// What is wrong with `nix-cache-info`, in words.
    pub cache_info: Vec<String>,
}

/// The index of one cache.
#[derive(Default)]
pub struct Index {
    /// The cache URL, as given.
    pub url: String,
    /// The trusted-key set the verdicts were computed under ([`keys_id`]).
    pub keys_id: [u8; 32],
    rows: Vec<Row>,
    strings: Vec<u8>,
    refs: Vec<RowId>,
    by_digest: HashMap<[u8; 20], RowId>,
    /// Listed NAR objects, sorted by key once [`Index::nars_listed`].
    nars: Vec<NarObject>,
    /// Whether `nar/` has been listed completely.
    pub nars_listed: bool,
    /// Stray root objects from the last listing.
    pub others: Vec<OtherObject>,
    /// Secret keys the last scan found in the cache (see [`crate::keyprobe`]).
    pub secret_keys: Vec<crate::keyprobe::LeakedKey>,
    /// Objects the last scan could have read for secret keys but did not (over the bound, or
    /// the read failed).
    pub keys_not_checked: usize,
    /// `nix-cache-info` as read (`None` when missing or not read yet).
    pub cache_info: Option<String>,
    /// When the last complete scan finished.
    pub scanned_at: Option<SystemTime>,
    /// Bumped on every change.
    pub generation: u64,
    /// Arena bytes no row refers to any more (compacted on save).
    garbage: u64,
    blob: Option<Arc<Blob>>,
    /// Why unreadable rows could not be read, as the last scan saw it (not saved: rows
    /// without a stored text are read again by every scan, and a stored text that does not
    /// parse says why again, see [`Index::unknown_rows`]).
    read_errors: HashMap<RowId, ReadError>,
}

/// Why a listed narinfo could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// The text was read but does not parse (a re-run reads the same); else the read itself
    /// failed (after retries), which a re-run may get past.
    pub malformed: bool,
    /// The cause, naming the object.
    pub message: String,
}

/// A listed narinfo whose contents the index cannot vouch for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnknownRow {
    /// Its row.
    #[serde(skip)]
    pub row: RowId,
    /// Its key, e.g. `<hash>.narinfo`.
    pub key: String,
    /// `malformed` (the text does not parse), `unreadable` (the read failed) or `unread`
    /// (not judged yet).
    pub state: &'static str,
    /// Why, naming the object (and the line, for a malformed one).
    pub cause: String,
}

/// The unknown rows in one line for an error: each key with why, the first ten.
pub fn describe_unknown(rows: &[UnknownRow]) -> String {
    let mut parts: Vec<String> = rows
        .iter()
        .take(10)
        .map(|u| format!("`{}` ({}: {})", u.key, u.state, u.cause))
        .collect();
    if rows.len() > 10 {
        parts.push(format!("… and {} more", rows.len() - 10));
    }
    parts.join("; ")
}

impl UnknownRow {
    /// What the operator can do about it.
    pub fn advice(&self) -> String {
        match self.state {
            "malformed" => format!(
                "inspect it (narscope show CACHE {}), then delete it explicitly \
                 (narscope delete CACHE {}), which is planned and confirmed like any deletion",
                self.key, self.key
            ),
            _ => "run again: a read that failed in transit may succeed next time".to_string(),
        }
    }
}

impl Index {
    /// An empty index for `url`, judged under `keys_id`.
    pub fn new(url: &str, keys_id: [u8; 32]) -> Index {
        Index {
            url: url.to_string(),
            keys_id,
            ..Index::default()
        }
    }

    /// Number of rows, phantoms and removed rows included (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows at all.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A row.
    pub fn row(&self, id: RowId) -> &Row {
        &self.rows[id as usize]
    }

    /// All rows, by id.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Ids of live rows.
    pub fn live(&self) -> impl Iterator<Item = RowId> + '_ {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_live())
            .map(|(i, _)| i as RowId)
    }

    fn span(&self, s: Span) -> &str {
        let b = self
            .strings
            .get(s.off as usize..(s.off as usize + s.len as usize))
            .unwrap_or_default();
        std::str::from_utf8(b).unwrap_or_default()
    }

    fn push_str(&mut self, s: &str) -> Span {
        let off = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.extend_from_slice(s.as_bytes());
        Span {
            off,
            len: s.len() as u32,
        }
    }

    /// The store path name ("" for phantoms of unknown name).
    pub fn name(&self, id: RowId) -> &str {
        self.span(self.row(id).name)
    }

    /// The narinfo's URL ("" when unknown).
    pub fn url_of(&self, id: RowId) -> &str {
        self.span(self.row(id).url)
    }

    /// The 32-character hash part.
    pub fn hash_part(&self, id: RowId) -> String {
        nix32::encode(&self.row(id).digest)
    }

    /// `<hash>-<name>`.
    pub fn base_name(&self, id: RowId) -> String {
        format!("{}-{}", self.hash_part(id), self.name(id))
    }

    /// The cache's store directory: `nix-cache-info`'s `StoreDir`, `/nix/store` without one.
    pub fn store_dir(&self) -> &str {
        self.cache_info
            .as_deref()
            .and_then(crate::nix::cache_info::declared_store_dir)
            .unwrap_or(crate::nix::STORE_DIR)
    }

    /// `<store dir>/<hash>-<name>`, in the cache's store directory.
    pub fn store_path(&self, id: RowId) -> String {
        format!("{}/{}", self.store_dir(), self.base_name(id))
    }

    /// The narinfo key.
    pub fn narinfo_key(&self, id: RowId) -> String {
        format!("{}.narinfo", self.hash_part(id))
    }

    /// The row of a hash part.
    pub fn find(&self, hash_part: &str) -> Option<RowId> {
        self.by_digest.get(&digest_of(hash_part)?).copied()
    }

    /// The row of a store path (in the cache's store directory), base name, hash part or
    /// narinfo key.
    pub fn find_path(&self, arg: &str) -> Option<RowId> {
        let key = crate::cache::narinfo_key_in(arg, self.store_dir()).ok()?;
        self.find(key.strip_suffix(".narinfo")?)
    }

    /// A row's references (row ids, phantoms for paths not in the cache).
    pub fn refs(&self, id: RowId) -> &[RowId] {
        let s = self.row(id).refs;
        self.refs
            .get(s.off as usize..(s.off as usize + s.len as usize))
            .unwrap_or_default()
    }

    /// Live rows that reference `id` (a scan over all references).
    pub fn referrers(&self, id: RowId) -> Vec<RowId> {
        self.live()
            .filter(|&r| r != id && self.refs(r).contains(&id))
            .collect()
    }

    /// The closure of `id` through References: (live paths in it, NarSize sum, FileSize sum,
    /// references that are not in the cache).
    pub fn closure(&self, id: RowId) -> (u64, u64, u64, u64) {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![id];
        let (mut n, mut nar, mut file, mut missing) = (0, 0, 0, 0);
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            let row = self.row(r);
            if !row.is_live() {
                missing += 1;
                continue;
            }
            n += 1;
            nar += row.nar_size;
            file += row.file_size().unwrap_or(0);
            stack.extend(self.refs(r).iter().copied().filter(|x| !seen.contains(x)));
        }
        (n, nar, file, missing)
    }

    fn id_for_digest(&mut self, digest: [u8; 20]) -> RowId {
        if let Some(&id) = self.by_digest.get(&digest) {
            return id;
        }
        let id = self.rows.len() as RowId;
        self.rows.push(Row::phantom(digest));
        self.by_digest.insert(digest, id);
        id
    }

    /// A listed narinfo key with its object metadata. New keys become pending rows; known
    /// ones are revived if they had been removed. Returns the row and whether the object
    /// changed since it was judged (size, mtime or etag differ, or never judged).
    pub fn list_key(
        &mut self,
        hash_part: &str,
        obj_size: u64,
        mtime: i64,
        etag: u64,
    ) -> Option<(RowId, bool)> {
        let digest = digest_of(hash_part)?;
        let id = self.id_for_digest(digest);
        let row = &mut self.rows[id as usize];
        let was_live = row.is_live();
        row.flags &= !(flags::PHANTOM | flags::REMOVED);
        let same = row.status != RowStatus::Pending
            && u64::from(row.obj_size) == obj_size
            && row.mtime == mtime
            && row.etag == etag
            && row.text.len > 0;
        if !same {
            row.obj_size = u32::try_from(obj_size).unwrap_or(u32::MAX);
            row.mtime = mtime;
            row.etag = etag;
        }
        if !was_live || !same {
            self.generation += 1;
        }
        Some((id, !same))
    }

    /// Record a judged narinfo.
    pub fn apply(&mut self, d: &RowData) -> Option<RowId> {
        let digest = digest_of(&d.hash_part)?;
        let id = self.id_for_digest(digest);
        let old_len = {
            let r = self.row(id);
            u64::from(r.name.len + r.url.len) + u64::from(r.refs.len) * 4
        };
        self.garbage += old_len;
        let (name, url, refs, nar_size, file_size, comp, mut fl) = match &d.info {
            Some(s) => {
                let refs: Vec<RowId> = s
                    .references
                    .iter()
                    .filter_map(|(h, n)| {
                        let rd = digest_of(h)?;
                        let rid = self.id_for_digest(rd);
                        // A phantom learns its name from the first reference that names it.
                        if self.rows[rid as usize].name.len == 0 && !n.is_empty() {
                            let span = self.push_str(n);
                            self.rows[rid as usize].name = span;
                        }
                        Some(rid)
                    })
                    .collect();
                let mut fl = 0;
                if s.store_hash != d.hash_part {
                    fl |= flags::KEY_MISMATCH;
                }
                if s.ca {
                    fl |= flags::CA;
                }
                if s.deriver {
                    fl |= flags::DERIVER;
                }
                let name = self.push_str(&s.name);
                let url = self.push_str(&s.url);
                let off = u32::try_from(self.refs.len()).unwrap_or(u32::MAX);
                self.refs.extend_from_slice(&refs);
                let refs = Span {
                    off,
                    len: refs.len() as u32,
                };
                (
                    name,
                    url,
                    refs,
                    s.nar_size,
                    s.file_size.unwrap_or(u64::MAX),
                    s.comp,
                    fl,
                )
            }
            None => {
                let keep = self.row(id).name;
                (
                    keep,
                    Span::default(),
                    Span::default(),
                    0,
                    u64::MAX,
                    Comp::Unknown,
                    flags::UNREADABLE,
                )
            }
        };
        if d.info.is_some() {
            self.read_errors.remove(&id);
        }
        let nars_listed = self.nars_listed;
        let nar_missing = nars_listed && d.info.is_some() && {
            let key = d
                .info
                .as_ref()
                .and_then(|s| crate::audit::nar_key(&s.url).ok())
                .unwrap_or_default();
            self.nar(&key).is_none()
        };
        if nar_missing {
            fl |= flags::NAR_MISSING;
        }
        let row = &mut self.rows[id as usize];
        fl |= row.flags & flags::HAS_LS;
        row.name = name;
        row.url = url;
        row.refs = refs;
        row.nar_size = nar_size;
        row.file_size = file_size;
        row.comp = comp;
        row.status = d.status;
        row.text = d.text;
        row.obj_size = u32::try_from(d.obj_size).unwrap_or(u32::MAX);
        row.mtime = d.mtime;
        row.etag = d.etag;
        row.flags = fl;
        self.generation += 1;
        Some(id)
    }

    /// Set a row's verdict (e.g. after a content check).
    pub fn set_status(&mut self, id: RowId, status: RowStatus) {
        if let Some(r) = self.rows.get_mut(id as usize)
            && r.status != status
        {
            r.status = status;
            self.generation += 1;
        }
    }

    /// Set or clear `HAS_LS` for a hash part.
    pub fn set_listing(&mut self, hash_part: &str, present: bool) {
        if let Some(id) = self.find(hash_part) {
            let r = &mut self.rows[id as usize];
            let before = r.flags;
            if present {
                r.flags |= flags::HAS_LS;
            } else {
                r.flags &= !flags::HAS_LS;
            }
            if before != r.flags {
                self.generation += 1;
            }
        }
    }

    /// Mark one row removed (its narinfo was deleted).
    pub fn mark_removed(&mut self, id: RowId) {
        if let Some(r) = self.rows.get_mut(id as usize)
            && r.is_live()
        {
            r.flags |= flags::REMOVED;
            self.generation += 1;
        }
    }

    /// Drop deleted objects from the NAR listing.
    pub fn forget_nars(&mut self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let gone: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        self.nars.retain(|n| !gone.contains(n.key.as_str()));
        self.generation += 1;
    }

    /// Mark every live row whose id is not in `seen` as removed (after a complete listing).
    pub fn retain_listed(&mut self, seen: &[bool]) {
        let mut changed = false;
        for (i, r) in self.rows.iter_mut().enumerate() {
            if r.is_live() && !seen.get(i).copied().unwrap_or(false) {
                r.flags |= flags::REMOVED;
                changed = true;
            }
        }
        if changed {
            self.generation += 1;
        }
    }

    /// Replace the NAR listing (any order) and recompute `NAR_MISSING`.
    pub fn set_nars(&mut self, mut nars: Vec<NarObject>) {
        nars.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        nars.dedup_by(|a, b| a.key == b.key);
        self.nars = nars;
        self.nars_listed = true;
        for i in 0..self.rows.len() {
            let row = &self.rows[i];
            if row.status == RowStatus::Pending || row.url.len == 0 {
                self.rows[i].flags &= !flags::NAR_MISSING;
                continue;
            }
            let missing = match crate::audit::nar_key(self.span(row.url)) {
                Ok(k) => self.nar(&k).is_none(),
                Err(_) => true,
            };
            let r = &mut self.rows[i];
            if missing {
                r.flags |= flags::NAR_MISSING;
            } else {
                r.flags &= !flags::NAR_MISSING;
            }
        }
        self.generation += 1;
    }

    /// The listed NAR object with this key.
    pub fn nar(&self, key: &str) -> Option<&NarObject> {
        self.nars
            .binary_search_by(|n| n.key.as_str().cmp(key))
            .ok()
            .and_then(|i| self.nars.get(i))
    }

    /// All listed NAR objects, sorted by key.
    pub fn nars(&self) -> &[NarObject] {
        &self.nars
    }

    /// Whether a row's NAR object exists: `None` when unknown (NARs not listed, or no URL).
    pub fn nar_exists(&self, id: RowId) -> Option<bool> {
        let row = self.row(id);
        if !self.nars_listed || row.url.len == 0 {
            return None;
        }
        Some(!row.has(flags::NAR_MISSING))
    }

    /// The blob the narinfo texts are stored in.
    pub fn blob(&self) -> Option<&Arc<Blob>> {
        self.blob.as_ref()
    }

    /// Attach the blob the rows' [`TextRef`]s point into.
    pub fn set_blob(&mut self, blob: Arc<Blob>) {
        self.blob = Some(blob);
    }

    /// The stored narinfo text of a row, if any.
    pub fn read_text(&self, id: RowId) -> std::io::Result<Option<String>> {
        let t = self.row(id).text;
        match (&self.blob, t.len) {
            (_, 0) | (None, _) => Ok(None),
            (Some(b), _) => b.read(t).map(Some),
        }
    }

    /// Totals over live rows.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for r in self.rows.iter().filter(|r| r.is_live()) {
            t.paths += 1;
            t.nar_bytes += r.nar_size;
            t.file_bytes += r.file_size().unwrap_or(0);
            t.by_status[r.status as usize] += 1;
            let c = &mut t.by_comp[r.comp as usize];
            c.0 += 1;
            c.1 += r.file_size().unwrap_or(0);
        }
        t.nar_objects = self.nars.len() as u64;
        t.nar_object_bytes = self.nars.iter().map(|n| n.size).sum();
        t
    }

    /// Everything that looks broken.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::default();
        let mut used = vec![false; self.nars.len()];
        for (i, r) in self.rows.iter().enumerate() {
            let id = i as RowId;
            if !r.is_live() {
                continue;
            }
            if r.has(flags::UNREADABLE) {
                p.unreadable.push(id);
            }
            if r.has(flags::KEY_MISMATCH) {
                p.key_mismatch.push(id);
            }
            if r.has(flags::NAR_MISSING) {
                p.dangling.push(id);
            }
            if r.url.len > 0
                && let Ok(k) = crate::audit::nar_key(self.span(r.url))
                && let Ok(pos) = self.nars.binary_search_by(|n| n.key.as_str().cmp(&k))
                && let Some(u) = used.get_mut(pos)
            {
                *u = true;
            }
            for &rf in self.refs(id) {
                if !self.row(rf).is_live() {
                    p.missing_refs.push((id, rf));
                }
            }
        }
        if self.nars_listed {
            p.orphan_nars = used
                .iter()
                .enumerate()
                .filter(|(_, u)| !**u)
                .map(|(i, _)| i)
                .collect();
        }
        p.secret_keys = (0..self.secret_keys.len()).collect();
        for (i, o) in self.others.iter().enumerate() {
            let ls_owner = o
                .key
                .strip_suffix(".ls")
                .and_then(|h| self.find(h))
                .is_some_and(|id| self.row(id).is_live());
            if crate::nix::store_path::narinfo_key_problem(&o.key).is_some() {
                p.misnamed.push(i);
            } else if self.secret_keys.iter().any(|k| k.object == o.key) {
                // A problem of its own, above.
            } else if !ls_owner {
                p.stray.push(i);
            }
        }
        match &self.cache_info {
            None if self.scanned_at.is_some() => {
                p.cache_info
                    .push("nix-cache-info is missing: Nix refuses to use the cache".into());
            }
            None => {}
            Some(text) => match crate::nix::CacheInfo::parse_strict(text) {
                Ok(ci) if !ci.is_nix_store() => p.cache_info.push(
                    "nix-cache-info's StoreDir is not /nix/store: Nix will not substitute from it"
                        .into(),
                ),
                Ok(_) => {}
                Err(e) => p.cache_info.push(format!("nix-cache-info: {e}")),
            },
        }
        p
    }

    /// Records why a row could not be read (set by the scan after [`Index::apply`]).
    pub fn set_read_error(&mut self, id: RowId, e: ReadError) {
        self.read_errors.insert(id, e);
    }

    /// Every live narinfo whose contents are unknown (see [`Row::is_unknown`]), with why.
    pub fn unknown_rows(&self) -> Vec<UnknownRow> {
        self.live()
            .filter(|&r| self.row(r).is_unknown())
            .map(|r| self.unknown_row(r))
            .collect()
    }

    /// Why row `r` is unknown (see [`Index::unknown_rows`]).
    pub fn unknown_row(&self, r: RowId) -> UnknownRow {
        let key = self.narinfo_key(r);
        let row = self.row(r);
        let (state, cause) = if row.status == RowStatus::Pending {
            (
                "unread",
                format!("{key}: not read yet (the scan has not judged it)"),
            )
        } else if let Some(e) = self.read_errors.get(&r) {
            (
                if e.malformed {
                    "malformed"
                } else {
                    "unreadable"
                },
                e.message.clone(),
            )
        } else {
            match self.read_text(r) {
                Ok(Some(text)) => match NarInfo::parse(&text, &key) {
                    Err(e) => ("malformed", e.to_string()),
                    Ok(_) => ("unreadable", format!("{key}: could not be read")),
                },
                _ => (
                    "unreadable",
                    format!("{key}: could not be read in the last scan"),
                ),
            }
        };
        UnknownRow {
            row: r,
            key,
            state,
            cause,
        }
    }

    /// Build an index directly from narinfos (tests, benchmarks, demo data).
    pub fn from_narinfos<'a>(
        url: &str,
        keys: &TrustedKeys,
        infos: impl IntoIterator<Item = &'a NarInfo>,
    ) -> Index {
        let mut idx = Index::new(url, keys_id(keys));
        for info in infos {
            let key = info.narinfo_key();
            let report = crate::audit::PathReport::judge(&key, info, keys);
            let hash = info.store_path.hash_part().to_string();
            idx.list_key(&hash, info.to_text().len() as u64, i64::MIN, 0);
            idx.apply(&RowData {
                hash_part: hash,
                obj_size: info.to_text().len() as u64,
                mtime: i64::MIN,
                etag: 0,
                info: Some(NarInfoSummary::of(info)),
                status: report.status.into(),
                text: TextRef::default(),
            });
        }
        idx
    }

    pub(crate) fn rows_mut(&mut self) -> &mut [Row] {
        &mut self.rows
    }

    pub(crate) fn raw_parts(&self) -> (&[Row], &[u8], &[RowId]) {
        (&self.rows, &self.strings, &self.refs)
    }

    pub(crate) fn from_raw(
        url: String,
        keys_id: [u8; 32],
        rows: Vec<Row>,
        strings: Vec<u8>,
        refs: Vec<RowId>,
    ) -> Index {
        let mut rows = rows;
        // Indexes saved before the UNREADABLE flag existed: an error row without a URL.
        for r in &mut rows {
            if r.status == RowStatus::Error && r.url.len == 0 && r.flags & flags::PHANTOM == 0 {
                r.flags |= flags::UNREADABLE;
            }
        }
        let by_digest = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.digest, i as RowId))
            .collect();
        Index {
            url,
            keys_id,
            rows,
            strings,
            refs,
            by_digest,
            ..Index::default()
        }
    }

    pub(crate) fn set_nars_sorted(&mut self, nars: Vec<NarObject>, listed: bool) {
        self.nars = nars;
        self.nars_listed = listed;
    }

    /// Rebuild the arenas without garbage (strings and references of replaced rows).
    pub(crate) fn compact(&mut self) {
        if self.garbage == 0 {
            return;
        }
        let mut strings = Vec::with_capacity(self.strings.len());
        let mut refs = Vec::with_capacity(self.refs.len());
        for i in 0..self.rows.len() {
            let r = self.rows[i].clone();
            let move_span = |s: Span, strings: &mut Vec<u8>| {
                let off = strings.len() as u32;
                strings.extend_from_slice(
                    self.strings
                        .get(s.off as usize..(s.off + s.len) as usize)
                        .unwrap_or_default(),
                );
                Span { off, len: s.len }
            };
            let name = move_span(r.name, &mut strings);
            let url = move_span(r.url, &mut strings);
            let off = refs.len() as u32;
            refs.extend_from_slice(
                self.refs
                    .get(r.refs.off as usize..(r.refs.off + r.refs.len) as usize)
                    .unwrap_or_default(),
            );
            let row = &mut self.rows[i];
            row.name = name;
            row.url = url;
            row.refs = Span {
                off,
                len: r.refs.len,
            };
        }
        self.strings = strings;
        self.refs = refs;
        self.garbage = 0;
    }
}

impl Row {
    pub(crate) fn spans(&self) -> [(u32, u32); 3] {
        [
            (self.name.off, self.name.len),
            (self.url.off, self.url.len),
            (self.refs.off, self.refs.len),
        ]
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        digest: [u8; 20],
        spans: [(u32, u32); 3],
        nar_size: u64,
        file_size: u64,
        mtime: i64,
        etag: u64,
        obj_size: u32,
        text: TextRef,
        status: u8,
        comp: u8,
        flags: u8,
    ) -> Option<Row> {
        let sp = |(off, len): (u32, u32)| Span { off, len };
        Some(Row {
            digest,
            name: sp(spans[0]),
            url: sp(spans[1]),
            refs: sp(spans[2]),
            nar_size,
            file_size,
            mtime,
            etag,
            obj_size,
            text,
            status: RowStatus::from_u8(status)?,
            comp: Comp::from_u8(comp),
            flags,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nix::{Hash, SecretKey};

    pub(crate) fn info(seed: &str, name: &str, refs: &[&NarInfo]) -> NarInfo {
        let sp = crate::demo::fake_store_path(seed, name).unwrap();
        NarInfo::new(
            sp,
            format!(
                "nar/{}.nar.xz",
                Hash::sha256_of(seed.as_bytes()).nix32_digest()
            ),
            "xz",
            Hash::sha256_of(name.as_bytes()),
            1000 + seed.len() as u64,
            refs.iter().map(|r| r.store_path.clone()).collect(),
        )
        .with_file(Hash::sha256_of(seed.as_bytes()), 400)
    }

    #[test]
    fn rows_references_referrers_and_closure() {
        let key = SecretKey::from_seed("t-1", &[7; 32]).unwrap();
        let mut keys = TrustedKeys::new();
        keys.add(key.public_key());
        let mut lib = info("lib", "libfoo-1.0", &[]);
        lib.sign(&key);
        let mut app = info("app", "app-2.0", &[&lib]);
        app.sign(&key);
        let ghost = info("ghost", "ghost-0.1", &[]);
        let tool = info("tool", "tool-3", &[&app, &ghost]);
        let idx = Index::from_narinfos("file:///x", &keys, [&lib, &app, &tool]);
        let lib_id = idx.find(lib.store_path.hash_part()).unwrap();
        let app_id = idx
            .find(lib.store_path.hash_part())
            .map(|_| 0)
            .and(idx.find(app.store_path.hash_part()))
            .unwrap();
        let tool_id = idx.find(tool.store_path.hash_part()).unwrap();
        let ghost_id = idx.find(ghost.store_path.hash_part()).unwrap();
        assert_eq!(idx.name(app_id), "app-2.0");
        assert_eq!(idx.store_path(lib_id), lib.store_path.to_absolute());
        assert_eq!(idx.refs(app_id), &[lib_id]);
        assert_eq!(idx.referrers(lib_id), vec![app_id]);
        assert_eq!(idx.row(lib_id).status, RowStatus::Trusted);
        assert_eq!(idx.row(tool_id).status, RowStatus::Unsigned);
        // The ghost is only referenced: a phantom that knows its name, and not live.
        assert!(!idx.row(ghost_id).is_live());
        assert_eq!(idx.name(ghost_id), "ghost-0.1");
        assert_eq!(idx.live().count(), 3);
        let (n, nar, file, missing) = idx.closure(tool_id);
        assert_eq!((n, missing), (3, 1));
        assert_eq!(nar, lib.nar_size + app.nar_size + tool.nar_size);
        assert_eq!(file, 1200);
        let p = idx.problems();
        assert_eq!(p.missing_refs, vec![(tool_id, ghost_id)]);
        assert!(
            p.dangling.is_empty(),
            "NARs not listed: nothing is known to dangle"
        );
        let t = idx.totals();
        assert_eq!(t.paths, 3);
        assert_eq!(t.by_status[RowStatus::Trusted as usize], 2);
        assert_eq!(t.by_comp[Comp::Xz as usize], (3, 1200));
    }

    #[test]
    fn nar_listing_finds_dangling_and_orphans() {
        let keys = TrustedKeys::new();
        let a = info("a", "a-1", &[]);
        let b = info("b", "b-1", &[]);
        let mut idx = Index::from_narinfos("file:///x", &keys, [&a, &b]);
        idx.set_nars(vec![
            NarObject {
                key: a.url.clone(),
                size: 400,
                mtime: 0,
            },
            NarObject {
                key: "nar/orphan.nar.xz".into(),
                size: 9,
                mtime: 0,
            },
        ]);
        let a_id = idx.find(a.store_path.hash_part()).unwrap();
        let b_id = idx.find(b.store_path.hash_part()).unwrap();
        assert_eq!(idx.nar_exists(a_id), Some(true));
        assert_eq!(idx.nar_exists(b_id), Some(false));
        let p = idx.problems();
        assert_eq!(p.dangling, vec![b_id]);
        assert_eq!(p.orphan_nars.len(), 1);
        assert_eq!(idx.nars()[p.orphan_nars[0]].key, "nar/orphan.nar.xz");
    }

    #[test]
    fn relisting_detects_changes_and_removals() {
        let keys = TrustedKeys::new();
        let a = info("a", "a-1", &[]);
        let b = info("b", "b-1", &[]);
        let mut idx = Index::from_narinfos("file:///x", &keys, [&a, &b]);
        let ha = a.store_path.hash_part().to_string();
        let size = a.to_text().len() as u64;
        // from_narinfos stores no text, so a row counts as changed until it has one.
        let (id, changed) = idx.list_key(&ha, size, i64::MIN, 0).unwrap();
        assert!(changed);
        idx.rows[id as usize].text = TextRef { off: 0, len: 10 };
        let (_, changed) = idx.list_key(&ha, size, i64::MIN, 0).unwrap();
        assert!(!changed, "same size, mtime and etag");
        let (_, changed) = idx.list_key(&ha, size, 5, 0).unwrap();
        assert!(changed, "mtime moved");
        let mut seen = vec![false; idx.len()];
        seen[id as usize] = true;
        idx.retain_listed(&seen);
        let b_id = idx.find(b.store_path.hash_part()).unwrap();
        assert!(idx.row(b_id).has(flags::REMOVED));
        assert_eq!(idx.live().collect::<Vec<_>>(), vec![id]);
    }

    #[test]
    fn etag_hash_ignores_quotes_and_weakness() {
        assert_eq!(etag_hash(Some("\"abc\"")), etag_hash(Some("W/\"abc\"")));
        assert_ne!(etag_hash(Some("\"abc\"")), etag_hash(Some("\"abd\"")));
        assert_eq!(etag_hash(None), 0);
    }
}
