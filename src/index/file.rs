//! Saving and loading an [`Index`], and the blob file that keeps narinfo texts.
//!
//! Each cache gets a directory under the platform cache dir (`~/.cache/narscope/index/<id>/`
//! on Linux, or `$NARSCOPE_CACHE_DIR/index/<id>/`) holding:
//! - `index.bin`: the rows, arenas and NAR listing, replaced atomically (temp file + rename);
//! - `narinfos-<n>.blob`: narinfo texts, only ever appended to while in use;
//! - `lock`: held (flock) by the process using the directory. A second process on the same
//!   cache works without persistence instead of sharing the files.
//!
//! `index.bin` layout, little-endian: the magic line, a u32 length and a JSON header, then the
//! fixed-size rows, the string arena, the reference arena, the NAR and stray-object lists, and
//! a trailer with the total length. Anything unexpected makes [`load`] refuse the file, and
//! the cache is simply scanned again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Index, NarObject, OtherObject, Row, RowId, StoredRow, TextRef};

const MAGIC: &[u8; 16] = b"NARSCOPE-INDEX2\n";
const TRAILER: &[u8; 8] = b"IDX-END\n";
const ROW_SIZE: usize = 96;
/// Largest header accepted.
const MAX_HEADER: usize = 1 << 20;

/// The narinfo texts of an index, in one file read by offset.
pub struct Blob {
    path: PathBuf,
    file: File,
    len: Mutex<u64>,
    /// Delete the file when dropped (a blob without persistence).
    temporary: bool,
}

impl Blob {
    /// Open (or create) the blob at `path`; its current length is where appends go.
    pub fn open(path: &Path) -> io::Result<Blob> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(Blob {
            path: path.to_path_buf(),
            file,
            len: Mutex::new(len),
            temporary: false,
        })
    }

    /// A blob in the temp directory, deleted when dropped.
    pub fn temporary() -> io::Result<Blob> {
        let name = format!(
            "narscope-{}-{}.blob",
            std::process::id(),
            crate::storage::random_hex()
        );
        let mut b = Blob::open(&std::env::temp_dir().join(name))?;
        b.temporary = true;
        Ok(b)
    }

    /// Its file name (within the index directory).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        *self.len.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether nothing has been stored yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append texts in one write; their references, in order.
    pub fn append_many(&self, texts: &[&[u8]]) -> io::Result<Vec<TextRef>> {
        let mut buf = Vec::with_capacity(texts.iter().map(|t| t.len()).sum());
        let mut len = self.len.lock().unwrap_or_else(|p| p.into_inner());
        let mut refs = Vec::with_capacity(texts.len());
        for t in texts {
            refs.push(TextRef {
                off: *len + buf.len() as u64,
                len: u32::try_from(t.len()).unwrap_or(u32::MAX),
            });
            buf.extend_from_slice(t);
        }
        self.file.write_all_at(&buf, *len)?;
        *len += buf.len() as u64;
        Ok(refs)
    }

    /// One stored text.
    pub fn read(&self, t: TextRef) -> io::Result<String> {
        let mut buf = vec![0; t.len as usize];
        self.file.read_exact_at(&mut buf, t.off)?;
        String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        if self.temporary {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The exclusive use of an index directory, released when dropped.
pub struct DirLock {
    _file: File,
    /// The index directory that is held.
    pub dir: PathBuf,
}

/// narscope's own cache directory: `$NARSCOPE_CACHE_DIR`, else the platform's
/// (`~/.cache/narscope` on Linux).
pub fn cache_base() -> Option<PathBuf> {
    match std::env::var_os("NARSCOPE_CACHE_DIR") {
        Some(p) => Some(PathBuf::from(p)),
        None => Some(
            directories::ProjectDirs::from("", "", "narscope")?
                .cache_dir()
                .to_path_buf(),
        ),
    }
}

/// The index directory of a cache URL: `$NARSCOPE_CACHE_DIR/index/<id>`, else the platform
/// cache dir's `index/<id>`; `<id>` is a digest of the URL.
pub fn index_dir(url: &str) -> Option<PathBuf> {
    Some(index_dir_in(&cache_base()?, url))
}

/// The index directory of a cache URL under a given cache directory: `base/index/<id>`.
pub fn index_dir_in(base: &Path, url: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let d: [u8; 32] = Sha256::digest(url.as_bytes()).into();
    let id: String = d.iter().take(10).map(|b| format!("{b:02x}")).collect();
    base.join("index").join(id)
}

/// Take the directory for this process; `Ok(None)` when another process holds it.
pub fn lock_dir(dir: &Path) -> io::Result<Option<DirLock>> {
    fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(DirLock {
            _file: file,
            dir: dir.to_path_buf(),
        })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    url: String,
    keys_id: String,
    blob: String,
    scanned_at: Option<u64>,
    cache_info: Option<String>,
    nars_listed: bool,
    rows: u64,
    strings: u64,
    refs: u64,
    nars: u64,
    others: u64,
    /// Secret keys found in the cache (object and key name only).
    #[serde(default)]
    secret_keys: Vec<crate::keyprobe::LeakedKey>,
    #[serde(default)]
    keys_not_checked: usize,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Write the index into `dir/index.bin` (atomically). The blob must already hold every text
/// the rows point to.
pub fn save(index: &Index, dir: &Path) -> io::Result<()> {
    let (rows, strings, refs) = index.raw_parts();
    let header = Header {
        url: index.url.clone(),
        keys_id: hex(&index.keys_id),
        blob: index.blob().map(|b| b.file_name()).unwrap_or_default(),
        scanned_at: index
            .scanned_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        cache_info: index.cache_info.clone(),
        nars_listed: index.nars_listed,
        rows: rows.len() as u64,
        strings: strings.len() as u64,
        refs: refs.len() as u64,
        nars: index.nars().len() as u64,
        others: index.others.len() as u64,
        secret_keys: index.secret_keys.clone(),
        keys_not_checked: index.keys_not_checked,
    };
    let head = serde_json::to_vec(&header).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(
        64 + head.len() + rows.len() * ROW_SIZE + strings.len() + refs.len() * 4,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    for r in rows {
        let start = out.len();
        out.extend_from_slice(&r.digest);
        for (off, len) in r.spans() {
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(&r.nar_size.to_le_bytes());
        out.extend_from_slice(&r.file_size.to_le_bytes());
        out.extend_from_slice(&r.mtime.to_le_bytes());
        out.extend_from_slice(&r.etag.to_le_bytes());
        out.extend_from_slice(&r.obj_size.to_le_bytes());
        out.extend_from_slice(&r.text.off.to_le_bytes());
        out.extend_from_slice(&r.text.len.to_le_bytes());
        out.extend_from_slice(&[r.status as u8, r.comp as u8, r.flags, 0]);
        debug_assert_eq!(out.len() - start, ROW_SIZE);
    }
    out.extend_from_slice(strings);
    for r in refs {
        out.extend_from_slice(&r.to_le_bytes());
    }
    let mut put_obj = |key: &str, size: u64, mtime: i64| {
        let k = key.as_bytes();
        let n = k.len().min(u16::MAX as usize);
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(&k[..n]);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&mtime.to_le_bytes());
    };
    for n in index.nars() {
        put_obj(&n.key, n.size, n.mtime);
    }
    for o in &index.others {
        put_obj(&o.key, o.size, o.mtime);
    }
    let total = out.len() as u64 + 16;
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(TRAILER);

    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("index.bin.tmp.{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&out)?;
        f.sync_data()?;
    }
    fs::rename(&tmp, dir.join("index.bin"))?;
    // Blobs of earlier generations are no longer referenced.
    if let Ok(rd) = fs::read_dir(dir) {
        let keep = header.blob.as_str();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".blob") && name != keep {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(bad("truncated")),
        }
    }
    fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().map_err(|_| bad("u16"))?,
        ))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| bad("u32"))?,
        ))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| bad("u64"))?,
        ))
    }
    fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| bad("i64"))?,
        ))
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("index file: {what}"))
}

/// Load `dir/index.bin` for `url`. `Ok(None)` when there is none; an error when it is
/// unreadable or belongs to another URL or format (the caller scans afresh).
pub fn load(dir: &Path, url: &str) -> io::Result<Option<Index>> {
    let bytes = match fs::read(dir.join("index.bin")) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    parse(&bytes, dir, url).map(Some)
}

fn parse(bytes: &[u8], dir: &Path, url: &str) -> io::Result<Index> {
    if bytes.len() < MAGIC.len() + 20 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad("not a narscope index of this version"));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - 16);
    if &trailer[8..] != TRAILER
        || u64::from_le_bytes(trailer[..8].try_into().map_err(|_| bad("trailer"))?)
            != bytes.len() as u64
    {
        return Err(bad("truncated (no trailer)"));
    }
    let mut c = Cursor {
        b: body,
        pos: MAGIC.len(),
    };
    let hlen = c.u32()? as usize;
    if hlen > MAX_HEADER {
        return Err(bad("header too large"));
    }
    let header: Header =
        serde_json::from_slice(c.take(hlen)?).map_err(|e| bad(&format!("header: {e}")))?;
    if header.url != url {
        return Err(bad(&format!("made for {}, not {url}", header.url)));
    }
    let keys_id = unhex32(&header.keys_id).ok_or_else(|| bad("keys id"))?;
    let n = usize::try_from(header.rows).map_err(|_| bad("rows"))?;
    let row_bytes = c.take(n.checked_mul(ROW_SIZE).ok_or_else(|| bad("rows"))?)?;
    let strings = c.take(usize::try_from(header.strings).map_err(|_| bad("strings"))?)?;
    let nrefs = usize::try_from(header.refs).map_err(|_| bad("refs"))?;
    let ref_bytes = c.take(nrefs.checked_mul(4).ok_or_else(|| bad("refs"))?)?;
    let refs: Vec<RowId> = ref_bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if refs.iter().any(|&r| r as usize >= n) {
        return Err(bad("reference out of range"));
    }
    let mut rows = Vec::with_capacity(n);
    for rb in row_bytes.chunks_exact(ROW_SIZE) {
        let mut rc = Cursor { b: rb, pos: 0 };
        let digest: [u8; 20] = rc.take(20)?.try_into().map_err(|_| bad("digest"))?;
        let mut spans = [(0u32, 0u32); 3];
        for s in &mut spans {
            *s = (rc.u32()?, rc.u32()?);
        }
        let [name, url_span, ref_span] = spans;
        for (off, len) in [name, url_span] {
            let end = u64::from(off) + u64::from(len);
            if end > strings.len() as u64
                || std::str::from_utf8(&strings[off as usize..end as usize]).is_err()
            {
                return Err(bad("string out of range"));
            }
        }
        if u64::from(ref_span.0) + u64::from(ref_span.1) > nrefs as u64 {
            return Err(bad("reference span out of range"));
        }
        let nar_size = rc.u64()?;
        let file_size = rc.u64()?;
        let mtime = rc.i64()?;
        let etag = rc.u64()?;
        let obj_size = rc.u32()?;
        let text = TextRef {
            off: rc.u64()?,
            len: rc.u32()?,
        };
        let tail = rc.take(4)?;
        let row = Row::from_stored(StoredRow {
            digest,
            spans,
            nar_size,
            file_size,
            mtime,
            etag,
            obj_size,
            text,
            status: tail[0],
            comp: tail[1],
            flags: tail[2],
        })
        .ok_or_else(|| bad("row status"))?;
        rows.push(row);
    }
    let mut objs = |count: u64| -> io::Result<Vec<(String, u64, i64)>> {
        let mut v = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 24));
        for _ in 0..count {
            let kl = c.u16()? as usize;
            let key = std::str::from_utf8(c.take(kl)?)
                .map_err(|_| bad("object key"))?
                .to_string();
            v.push((key, c.u64()?, c.i64()?));
        }
        Ok(v)
    };
    let nars: Vec<NarObject> = objs(header.nars)?
        .into_iter()
        .map(|(key, size, mtime)| NarObject { key, size, mtime })
        .collect();
    let others: Vec<OtherObject> = objs(header.others)?
        .into_iter()
        .map(|(key, size, mtime)| OtherObject { key, size, mtime })
        .collect();
    if nars.windows(2).any(|w| w[0].key >= w[1].key) {
        return Err(bad("NAR list not sorted"));
    }
    let mut index = Index::from_raw(url.to_string(), keys_id, rows, strings.to_vec(), refs);
    index.set_nars_sorted(nars, header.nars_listed);
    index.others = others;
    index.secret_keys = header.secret_keys;
    index.keys_not_checked = header.keys_not_checked;
    index.cache_info = header.cache_info;
    index.scanned_at = header
        .scanned_at
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    // Texts: only valid if the blob named in the header is there and long enough.
    let blob = if header.blob.is_empty() || header.blob.contains('/') {
        None
    } else {
        Blob::open(&dir.join(&header.blob)).ok()
    };
    match blob {
        Some(b) => {
            let len = b.len();
            index.clear_texts_beyond(len);
            index.set_blob(std::sync::Arc::new(b));
        }
        None => index.clear_texts_beyond(0),
    }
    Ok(index)
}

impl Index {
    /// Forget text references past `len` (a blob that lost its tail); those rows are fetched
    /// again at the next scan.
    fn clear_texts_beyond(&mut self, len: u64) {
        for r in self.rows_mut() {
            if r.text.off + u64::from(r.text.len) > len {
                r.text = TextRef::default();
            }
        }
    }
}

/// The name for a new blob file in `dir`, after the ones present.
pub fn new_blob_path(dir: &Path) -> PathBuf {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    dir.join(format!("narinfos-{now:x}.blob"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testdata::info;
    use crate::index::{RowData, RowStatus};
    use crate::nix::TrustedKeys;
    use std::sync::Arc;

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TrustedKeys::new();
        let a = info("a", "a-1", &[]);
        let b = info("b", "b-1", &[&a]);
        let mut idx = Index::from_narinfos("file:///c", &keys, [&a, &b]);
        let blob = Arc::new(Blob::open(&new_blob_path(dir.path())).unwrap());
        let text = b.to_text();
        let t = blob.append_many(&[text.as_bytes()]).unwrap()[0];
        let bid = idx.find(b.store_path.hash_part()).unwrap();
        let mut d = RowData {
            hash_part: b.store_path.hash_part().to_string(),
            obj_size: text.len() as u64,
            mtime: 1_700_000_000,
            etag: 42,
            info: Some(crate::index::NarInfoSummary::of(&b)),
            status: RowStatus::Unsigned,
            text: t,
        };
        idx.apply(&d).unwrap();
        idx.set_blob(blob);
        idx.cache_info = Some("StoreDir: /nix/store\n".into());
        idx.set_nars(vec![NarObject {
            key: a.url.clone(),
            size: 400,
            mtime: 3,
        }]);
        save(&idx, dir.path()).unwrap();

        let back = load(dir.path(), "file:///c").unwrap().unwrap();
        assert_eq!(back.len(), idx.len());
        assert_eq!(back.name(bid), "b-1");
        assert_eq!(back.refs(bid), idx.refs(bid));
        assert_eq!(back.row(bid).mtime, 1_700_000_000);
        assert_eq!(back.read_text(bid).unwrap().as_deref(), Some(text.as_str()));
        assert_eq!(back.nar_exists(bid), Some(false));
        assert_eq!(back.cache_info, idx.cache_info);
        assert_eq!(back.problems(), idx.problems());

        // Another URL, a truncated file and garbage are refused, never misread.
        assert!(load(dir.path(), "file:///other").is_err());
        let bytes = fs::read(dir.path().join("index.bin")).unwrap();
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            fs::write(dir.path().join("index.bin"), &bytes[..cut]).unwrap();
            assert!(load(dir.path(), "file:///c").is_err(), "cut at {cut}");
        }
        // A blob that lost its tail drops only the texts that were in it.
        fs::write(dir.path().join("index.bin"), &bytes).unwrap();
        d.text = TextRef::default();
        let blob_path = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".blob"))
            .unwrap()
            .path();
        fs::write(&blob_path, b"").unwrap();
        let back = load(dir.path(), "file:///c").unwrap().unwrap();
        assert_eq!(back.read_text(bid).unwrap(), None);
    }

    #[test]
    fn a_directory_is_locked_by_one_process_object() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        assert!(first.is_some());
        assert!(lock_dir(dir.path()).unwrap().is_none());
        drop(first);
        assert!(lock_dir(dir.path()).unwrap().is_some());
    }
}
