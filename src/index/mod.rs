//! The local index of one cache: a compact row per narinfo, the NAR objects, and the narinfo
//! texts on disk. It lets the dashboard reopen a cache at once and refresh only what changed,
//! and it is what later whole-cache work (garbage collection) plans from.
//!
//! Rows are never reordered or reused: a [`RowId`] stays valid for the index's lifetime, so
//! views can keep sorted id vectors. Rows for paths that are only *referenced* (no narinfo
//! listed) exist as phantoms, so references are plain row ids; removed narinfos are flagged.
//!
//! No I/O here except reading narinfo texts back from the blob file ([`Index::read_text`]);
//! [`file`](mod@file) saves and loads, [`scan`] fills an index from a store. The arena ([`Index`]) is
//! here; `row.rs` holds the row encoding, `input.rs` what a scan feeds in, and `stats.rs` the
//! totals, problems and closures reported over it.

pub mod file;
mod input;
mod row;
pub mod scan;
mod stats;
#[cfg(test)]
pub(crate) mod testdata;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::nix::{NarInfo, TrustedKeys, nix32};

pub use file::Blob;
pub use input::{
    NarInfoSummary, NarObject, OtherObject, RowData, digest_of, etag_hash, keys_id, unix_secs,
};
pub(crate) use row::StoredRow;
pub use row::{Comp, Row, RowId, RowStatus, Span, TextRef, flags};
pub use stats::{ClosureStats, Problems, Totals};

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
    /// Its row in the index (not serialised).
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

    /// The row with id `id` (phantoms and removed rows included).
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

    /// The store path without its directory: `<hash>-<name>`.
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
                .and_then(|s| crate::cache::nar_key(&s.url).ok())
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
            let missing = match crate::cache::nar_key(self.span(row.url)) {
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

#[cfg(test)]
mod tests {
    use super::testdata::info;
    use super::*;
    use crate::nix::SecretKey;

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
        let ClosureStats {
            paths: n,
            nar_bytes: nar,
            file_bytes: file,
            missing,
        } = idx.closure(tool_id);
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
        assert_eq!(t.status(RowStatus::Trusted), 2);
        assert_eq!(t.comp(Comp::Xz), (3, 1200));
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
