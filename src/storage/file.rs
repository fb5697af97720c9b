//! The `file://` backend: a local directory used as a binary cache.
//!
//! - Keys are relative paths; absolute keys and `.`, `..` or empty segments are refused.
//! - Writes are atomic: the data goes to `<key>.tmp.<pid>.<n>` in the target directory (fsync'd
//!   unless disabled with [`FileStore::with_fsync`] or `NARSCOPE_FSYNC=0`) and is then renamed
//!   over the key, as Nix does (Nix does not fsync).
//!   Interrupted writers can leave such temp files; listings show them (see
//!   [`super::is_temp_litter`]) so a GC can remove them.
//! - **Etags** are `"<size hex>-<mtime in ns hex>"`. Every write sets the file's mtime from the
//!   system clock with nanosecond precision (strictly increasing within the process), so a
//!   rewrite changes the etag even when the size does not.
//! - `If-None-Match` uses `link(2)`, which fails atomically when the key exists. `If-Match`
//!   compares the etag and renames under a lock; the lock is per process, so two processes doing
//!   compare-and-swap on the same key at the same moment can still race.
//! - Listings walk the tree in S3 key order (a directory `d` sorts as `d/`), 1000 keys a page;
//!   the continuation token is the last key returned. Sorted directory contents are cached
//!   while the directory's mtime is unchanged.

use super::{
    ByteReader, CacheUrl, ConditionalSupport, DeleteReport, GetResult, ListOptions, ListPage,
    ObjectMeta, PAGE_SIZE, PutCondition, PutOptions, Store, StoreError, StoreErrorKind,
};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cache in a local directory.
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    desc: String,
    fsync: bool,
    dir_cache: Mutex<HashMap<PathBuf, CachedDir>>,
    /// Held while a directory is read, so concurrent listings read it once, not each.
    dir_read_lock: Mutex<()>,
    cas_lock: Mutex<()>,
}

struct CachedDir {
    mtime: SystemTime,
    entries: Arc<Vec<Entry>>,
    /// Whether the directory had been unchanged for a while when it was read.
    settled: bool,
    /// When it was read.
    read_at: std::time::Instant,
}

/// How long the listing of a directory that was still changing when read may be reused
/// (mtime ticks can be coarse, so a same-tick change could go unnoticed): long enough for
/// one paginated listing of a large cache, short enough for a later listing to see changes.
const UNSETTLED_REUSE: Duration = Duration::from_secs(10);

/// A directory entry; `sort_name` is the name, plus `/` for directories.
struct Entry {
    sort_name: String,
    is_dir: bool,
}

const DIR_CACHE_MAX: usize = 64;

/// `NARSCOPE_FSYNC=0` (or `false`, `no`, `off`) turns the fsync before each rename off, for
/// directories whose durability is handled elsewhere, or to write as `nix copy` does, which
/// does not fsync. A crash can then leave a renamed object empty or short.
fn fsync_from_env() -> bool {
    fsync_setting(std::env::var("NARSCOPE_FSYNC").ok().as_deref())
}

fn fsync_setting(v: Option<&str>) -> bool {
    !v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "false" | "no" | "off"
        )
    })
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
static LAST_MTIME_NS: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    /// A store rooted at `root` (which need not exist yet; see [`Store::ensure_container`]).
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        let root = root.into();
        let desc = CacheUrl::File(root.clone()).to_string();
        FileStore {
            inner: Arc::new(Inner {
                root,
                desc,
                fsync: fsync_from_env(),
                dir_cache: Mutex::new(HashMap::new()),
                dir_read_lock: Mutex::new(()),
                cas_lock: Mutex::new(()),
            }),
        }
    }

    /// Whether writes are fsync'd before the rename (default: yes, unless `NARSCOPE_FSYNC`
    /// is `0`, `false`, `no` or `off`).
    pub fn with_fsync(self, fsync: bool) -> FileStore {
        let old = self.inner;
        FileStore {
            inner: Arc::new(Inner {
                root: old.root.clone(),
                desc: old.desc.clone(),
                fsync,
                dir_cache: Mutex::new(HashMap::new()),
                dir_read_lock: Mutex::new(()),
                cas_lock: Mutex::new(()),
            }),
        }
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        key: Option<&str>,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(r) => r,
            Err(e) => {
                let mut err = StoreError::new(
                    StoreErrorKind::Other,
                    &self.inner.desc,
                    op,
                    format!("worker task failed: {e}"),
                );
                err.key = key.map(str::to_string);
                Err(err)
            }
        }
    }
}

/// Checks a key: relative, no `.`/`..`/empty segments, no NUL.
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.starts_with('/') {
        return Err("absolute keys are not allowed".into());
    }
    if key.contains('\0') {
        return Err("the key contains a NUL byte".into());
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("the key has an empty, `.` or `..` segment".into());
    }
    Ok(())
}

/// Prefixes may be empty or end with `/`, but must not escape the root.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.starts_with('/') || prefix.contains('\0') {
        return Err("a prefix must be relative".into());
    }
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err("a prefix must not contain `.` or `..` segments".into());
    }
    Ok(())
}

fn mtime_ns(md: &fs::Metadata) -> u64 {
    md.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// The etag of a file: `"<size hex>-<mtime ns hex>"`.
pub fn file_etag(md: &fs::Metadata) -> String {
    format!("\"{:x}-{:x}\"", md.len(), mtime_ns(md))
}

fn etag_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    norm(a) == norm(b)
}

fn meta_of(key: &str, md: &fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        key: key.to_string(),
        size: md.len(),
        last_modified: md.modified().ok(),
        etag: Some(file_etag(md)),
    }
}

/// A strictly increasing (within this process) "now" in ns, used as the mtime of new files.
fn unique_now() -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let mut prev = LAST_MTIME_NS.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev.saturating_add(1));
        match LAST_MTIME_NS.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => return UNIX_EPOCH + Duration::from_nanos(next),
            Err(p) => prev = p,
        }
    }
}

/// Missing-object errors (`NotFound`, or a path component that is a file / the key is a dir).
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

enum Source {
    Bytes(bytes::Bytes),
    File(PathBuf),
    /// A temp file of the caller's, moved (renamed) instead of copied where possible.
    Owned(PathBuf),
}

impl Inner {
    fn err(&self, kind: StoreErrorKind, op: &'static str, key: &str, msg: String) -> StoreError {
        StoreError::new(kind, &self.desc, op, msg).with_key(key)
    }

    fn io_err(&self, op: &'static str, key: &str, path: &Path, e: &io::Error) -> StoreError {
        let kind = match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StoreErrorKind::AccessDenied
            }
            _ => StoreErrorKind::Io,
        };
        let err = self.err(kind, op, key, format!("{}: {e}", path.display()));
        if kind == StoreErrorKind::AccessDenied {
            err.with_advice("check the directory's owner and permissions")
        } else {
            err
        }
    }

    fn path_of(&self, op: &'static str, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key).map_err(|m| self.err(StoreErrorKind::InvalidKey, op, key, m))?;
        Ok(self.root.join(key))
    }

    fn missing_root(&self, op: &'static str, key: &str) -> StoreError {
        self.err(
            StoreErrorKind::NoSuchBucket,
            op,
            key,
            format!("the cache directory {} does not exist", self.root.display()),
        )
        .with_advice("create it with `narscope init`")
    }

    fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.path_of("HEAD", key)?;
        match fs::metadata(&path) {
            Ok(md) if md.is_file() => Ok(Some(meta_of(key, &md))),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.io_err("HEAD", key, &path, &e)),
        }
    }

    /// The open file at `key`, its metadata and its path, or `None` if there is no file there.
    fn open(&self, key: &str) -> Result<Option<(fs::File, ObjectMeta, PathBuf)>, StoreError> {
        let path = self.path_of("GET", key)?;
        let f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(self.io_err("GET", key, &path, &e)),
        };
        let md = f
            .metadata()
            .map_err(|e| self.io_err("GET", key, &path, &e))?;
        if !md.is_file() {
            return Ok(None);
        }
        Ok(Some((f, meta_of(key, &md), path)))
    }

    fn get(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        use std::io::Read;
        let Some((mut f, meta, path)) = self.open(key)? else {
            return Ok(None);
        };
        // Read the size fstat gave, in as few calls as possible (read_to_end would stat again
        // and probe for more); an object is replaced by rename, so the open file keeps its size.
        let len = usize::try_from(meta.size).unwrap_or(0);
        let mut buf = vec![0u8; len];
        let mut n = 0;
        while n < len {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(r) => n += r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err("GET", key, &path, &e)),
            }
        }
        buf.truncate(n);
        Ok(Some(GetResult {
            meta,
            bytes: bytes::Bytes::from(buf),
            content_encoding: None,
        }))
    }

    /// Writes `src` to a temp file next to the key and moves it into place under `cond`.
    fn write(
        &self,
        op: &'static str,
        key: &str,
        src: Source,
        cond: &PutCondition,
    ) -> Result<ObjectMeta, StoreError> {
        let path = self.path_of(op, key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !self.root.is_dir() {
            return Err(self.missing_root(op, key));
        }
        fs::create_dir_all(&dir).map_err(|e| self.io_err(op, key, &dir, &e))?;
        let tmp = dir.join(format!(
            "{name}.tmp.{}.{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let res = self
            .write_tmp(&tmp, &src)
            .and_then(|()| self.commit(key, &tmp, &path, cond));
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res?;
        let md = fs::metadata(&path).map_err(|e| self.io_err(op, key, &path, &e))?;
        Ok(meta_of(key, &md))
    }

    fn write_tmp(&self, tmp: &Path, src: &Source) -> Result<(), StoreError> {
        let key = tmp.to_string_lossy();
        let e2 = |e: io::Error| self.io_err("PUT", &key, tmp, &e);
        if let Source::Owned(p) = src
            && fs::rename(p, tmp).is_ok()
        {
            let f = fs::File::options().write(true).open(tmp).map_err(e2)?;
            f.set_modified(unique_now()).map_err(e2)?;
            if self.fsync {
                f.sync_all().map_err(e2)?;
            }
            return Ok(());
        }
        let mut f = fs::File::create_new(tmp).map_err(e2)?;
        match src {
            Source::Bytes(b) => f.write_all(b).map_err(e2)?,
            Source::File(p) | Source::Owned(p) => {
                let mut from = fs::File::open(p).map_err(|e| self.io_err("PUT", &key, p, &e))?;
                io::copy(&mut from, &mut f).map_err(e2)?;
            }
        }
        f.set_modified(unique_now()).map_err(e2)?;
        if self.fsync {
            f.sync_all().map_err(e2)?;
        }
        Ok(())
    }

    fn commit(
        &self,
        key: &str,
        tmp: &Path,
        path: &Path,
        cond: &PutCondition,
    ) -> Result<(), StoreError> {
        let precondition = |msg: &str| {
            self.err(
                StoreErrorKind::PreconditionFailed,
                "PUT",
                key,
                msg.to_string(),
            )
        };
        match cond {
            PutCondition::None => {
                fs::rename(tmp, path).map_err(|e| self.io_err("PUT", key, path, &e))?
            }
            PutCondition::IfNoneMatch => {
                match fs::hard_link(tmp, path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(precondition("the key already exists (If-None-Match)"));
                    }
                    Err(e) => {
                        let err = self.io_err("PUT", key, path, &e);
                        return Err(StoreError {
                            kind: StoreErrorKind::NotSupported,
                            message: format!(
                                "create-only write needs hard links, which failed: {}",
                                err.message
                            ),
                            ..err
                        });
                    }
                }
                let _ = fs::remove_file(tmp);
            }
            PutCondition::IfMatch(want) => {
                let _guard = self.cas_lock.lock().unwrap_or_else(|p| p.into_inner());
                match fs::metadata(path) {
                    Ok(md) if md.is_file() && etag_eq(&file_etag(&md), want) => {}
                    Ok(md) if md.is_file() => {
                        return Err(precondition(&format!(
                            "the object changed: etag is {}, expected {want} (If-Match)",
                            file_etag(&md)
                        )));
                    }
                    Ok(_) => return Err(precondition("the key is a directory (If-Match)")),
                    Err(e) if is_missing(&e) => {
                        return Err(precondition("the key does not exist (If-Match)"));
                    }
                    Err(e) => return Err(self.io_err("PUT", key, path, &e)),
                }
                fs::rename(tmp, path).map_err(|e| self.io_err("PUT", key, path, &e))?;
            }
        }
        if self.fsync
            && let Some(dir) = path.parent()
            && let Ok(d) = fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> DeleteReport {
        let mut report = DeleteReport::default();
        for key in keys {
            let path = match self.path_of("delete", key) {
                Ok(p) => p,
                Err(e) => {
                    report.failed.push((key.clone(), e.message));
                    continue;
                }
            };
            match fs::remove_file(&path) {
                Ok(()) => report.deleted.push(key.clone()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => report.deleted.push(key.clone()),
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                    report.deleted.push(key.clone())
                }
                Err(e) => report
                    .failed
                    .push((key.clone(), format!("{}: {e}", path.display()))),
            }
        }
        report
    }

    /// Sorted entries of a directory, from the cache if the directory is unchanged.
    fn read_dir_sorted(&self, dir: &Path) -> io::Result<Arc<Vec<Entry>>> {
        let md = fs::metadata(dir)?;
        let mtime = md.modified()?;
        if let Ok(cache) = self.dir_cache.lock()
            && let Some(c) = cache.get(dir)
            && c.mtime == mtime
            && (c.settled || c.read_at.elapsed() < UNSETTLED_REUSE)
        {
            return Ok(c.entries.clone());
        }
        // Single flight: whoever gets the lock reads; the others then find it in the cache.
        let _reading = self.dir_read_lock.lock();
        if let Ok(cache) = self.dir_cache.lock()
            && let Some(c) = cache.get(dir)
            && c.mtime == mtime
            && (c.settled || c.read_at.elapsed() < UNSETTLED_REUSE)
        {
            return Ok(c.entries.clone());
        }
        let mut entries = Vec::new();
        for ent in fs::read_dir(dir)? {
            let ent = ent?;
            let Ok(name) = ent.file_name().into_string() else {
                tracing::warn!(
                    "skipping non-UTF-8 file name {:?} in {}",
                    ent.file_name(),
                    dir.display()
                );
                continue;
            };
            let ft = ent.file_type()?;
            let is_dir = if ft.is_symlink() {
                match fs::metadata(ent.path()) {
                    Ok(m) if m.is_file() => false,
                    _ => {
                        tracing::debug!("skipping symlink {}", ent.path().display());
                        continue;
                    }
                }
            } else if ft.is_dir() {
                true
            } else if ft.is_file() {
                false
            } else {
                continue;
            };
            let sort_name = if is_dir { format!("{name}/") } else { name };
            entries.push(Entry { sort_name, is_dir });
        }
        entries.sort_unstable_by(|a, b| a.sort_name.cmp(&b.sort_name));
        let entries = Arc::new(entries);
        // A directory that has not changed for a while is cached until its mtime changes; one
        // that was still changing only for UNSETTLED_REUSE (see there).
        let settled = SystemTime::now()
            .duration_since(mtime)
            .is_ok_and(|age| age > Duration::from_secs(2));
        if let Ok(mut cache) = self.dir_cache.lock() {
            if cache.len() >= DIR_CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                dir.to_path_buf(),
                CachedDir {
                    mtime,
                    entries: entries.clone(),
                    settled,
                    read_at: std::time::Instant::now(),
                },
            );
        }
        Ok(entries)
    }

    fn list(
        &self,
        prefix: &str,
        token: Option<String>,
        opts: &ListOptions,
    ) -> Result<ListPage, StoreError> {
        check_prefix(prefix)
            .map_err(|m| self.err(StoreErrorKind::InvalidKey, "list", prefix, m))?;
        match fs::metadata(&self.root) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(self.err(
                    StoreErrorKind::Io,
                    "list",
                    prefix,
                    format!("{} is not a directory", self.root.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.missing_root("list", prefix));
            }
            Err(e) => return Err(self.io_err("list", prefix, &self.root, &e)),
        }
        let after = token.or_else(|| opts.start_after.clone());
        let limit = opts
            .max_keys
            .map(|m| usize::try_from(m).unwrap_or(PAGE_SIZE))
            .unwrap_or(PAGE_SIZE)
            .clamp(1, PAGE_SIZE);
        let mut keys = Vec::new();
        let w = Walk {
            prefix,
            top_only: opts.top_level_only,
            limit,
        };
        self.walk(&w, &self.root, "", after.as_deref(), &mut keys)
            .map_err(|e| self.io_err("list", prefix, &self.root, &e))?;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next = if more { keys.last().cloned() } else { None };
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            let path = self.root.join(&key);
            match fs::metadata(&path) {
                Ok(md) => objects.push(meta_of(&key, &md)),
                Err(e) if is_missing(&e) => {} // deleted meanwhile
                Err(e) => return Err(self.io_err("list", &key, &path, &e)),
            }
        }
        Ok(ListPage { objects, next })
    }

    /// Collects up to `limit + 1` keys below `dir` (whose key prefix is `rel`, `""` or `a/b/`)
    /// that start with `w.prefix` and sort after `after`.
    fn walk(
        &self,
        w: &Walk<'_>,
        dir: &Path,
        rel: &str,
        after: Option<&str>,
        out: &mut Vec<String>,
    ) -> io::Result<()> {
        let entries = match self.read_dir_sorted(dir) {
            Ok(e) => e,
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        // prefix and resume point relative to this directory
        let p = w.prefix.strip_prefix(rel).unwrap_or("");
        let a = after.and_then(|a| a.strip_prefix(rel));
        let first_seg = |s: &str| -> String {
            match s.find('/') {
                Some(i) => s.get(..=i).unwrap_or(s).to_string(),
                None => s.to_string(),
            }
        };
        let lb_p = first_seg(p);
        let lb = match a {
            Some(a) => lb_p.max(first_seg(a)),
            None => lb_p,
        };
        let start = entries.partition_point(|e| e.sort_name.as_str() < lb.as_str());
        for e in entries.get(start..).unwrap_or_default() {
            if out.len() > w.limit {
                break;
            }
            let s = e.sort_name.as_str();
            let relevant = s.starts_with(p) || (e.is_dir && p.starts_with(s));
            if !relevant {
                if s > p {
                    break;
                }
                continue;
            }
            if e.is_dir {
                // With top_only, descend only into directories that are part of the prefix.
                if w.top_only && !p.starts_with(s) {
                    continue;
                }
                let sub_after = match a {
                    Some(a) if a.starts_with(s) => after,
                    Some(a) if s > a => None,
                    Some(_) => continue,
                    None => None,
                };
                let sub_rel = format!("{rel}{s}");
                let name = s.trim_end_matches('/');
                self.walk(w, &dir.join(name), &sub_rel, sub_after, out)?;
            } else {
                if a.is_some_and(|a| s <= a) {
                    continue;
                }
                out.push(format!("{rel}{s}"));
            }
        }
        Ok(())
    }
}

struct Walk<'a> {
    prefix: &'a str,
    top_only: bool,
    limit: usize,
}

#[async_trait::async_trait]
impl Store for FileStore {
    fn describe(&self) -> String {
        self.inner.desc.clone()
    }

    async fn list_page(&self, prefix: &str, token: Option<String>) -> Result<ListPage, StoreError> {
        self.list_page_with(prefix, token, &ListOptions::default())
            .await
    }

    async fn list_page_with(
        &self,
        prefix: &str,
        token: Option<String>,
        opts: &ListOptions,
    ) -> Result<ListPage, StoreError> {
        let prefix = prefix.to_string();
        let opts = opts.clone();
        let key = prefix.clone();
        self.blocking("list", Some(&key), move |i| i.list(&prefix, token, &opts))
            .await
    }

    fn supports_blocking_get(&self) -> bool {
        true
    }

    fn get_blocking(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        self.inner.get(key)
    }

    fn get_reader_blocking(&self, key: &str) -> Result<Option<super::BlockingReader>, StoreError> {
        Ok(self
            .inner
            .open(key)?
            .map(|(f, _, _)| Box::new(f) as super::BlockingReader))
    }

    async fn get(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        let k = key.to_string();
        self.blocking("GET", Some(key), move |i| i.get(&k)).await
    }

    async fn get_reader(&self, key: &str) -> Result<Option<(ObjectMeta, ByteReader)>, StoreError> {
        let k = key.to_string();
        let opened = self.blocking("GET", Some(key), move |i| i.open(&k)).await?;
        Ok(opened.map(|(f, meta, _)| (meta, Box::pin(tokio::fs::File::from_std(f)) as ByteReader)))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let k = key.to_string();
        self.blocking("HEAD", Some(key), move |i| i.head(&k)).await
    }

    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let k = key.to_string();
        let cond = opts.condition.clone();
        self.blocking("PUT", Some(key), move |i| {
            i.write("PUT", &k, Source::Bytes(body), &cond)
        })
        .await
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let k = key.to_string();
        let p = path.to_path_buf();
        let cond = opts.condition.clone();
        self.blocking("PUT", Some(key), move |i| {
            i.write("PUT", &k, Source::File(p), &cond)
        })
        .await
    }

    async fn put_owned_file(
        &self,
        key: &str,
        path: &Path,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        let k = key.to_string();
        let p = path.to_path_buf();
        let cond = opts.condition.clone();
        self.blocking("PUT", Some(key), move |i| {
            i.write("PUT", &k, Source::Owned(p), &cond)
        })
        .await
    }

    fn local_root(&self) -> Option<PathBuf> {
        Some(self.inner.root.clone())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<DeleteReport, StoreError> {
        let keys = keys.to_vec();
        self.blocking("delete", None, move |i| Ok(i.delete_many(&keys)))
            .await
    }

    async fn ensure_container(&self) -> Result<bool, StoreError> {
        self.blocking("create directory", None, |i| match fs::metadata(&i.root) {
            Ok(md) if md.is_dir() => Ok(false),
            Ok(_) => Err(StoreError::new(
                StoreErrorKind::Io,
                &i.desc,
                "create directory",
                format!("{} exists and is not a directory", i.root.display()),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&i.root)
                    .map_err(|e| i.io_err("create directory", "", &i.root, &e))?;
                Ok(true)
            }
            Err(e) => Err(i.io_err("create directory", "", &i.root, &e)),
        })
        .await
    }

    async fn probe_conditional_writes(&self) -> Result<ConditionalSupport, StoreError> {
        let res = super::probe_conditional(self).await;
        let _ = fs::remove_dir(self.inner.root.join(".narscope-probe"));
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_is_on_unless_turned_off() {
        for on in [None, Some("1"), Some("yes"), Some(""), Some("fast")] {
            assert!(fsync_setting(on), "{on:?}");
        }
        for off in ["0", "false", "No", " off "] {
            assert!(!fsync_setting(Some(off)), "{off:?}");
        }
    }

    #[test]
    fn keys_are_checked() {
        for bad in ["", "/abs", "a/../b", "..", "a//b", "./a", "a/", "a\0b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        for good in [
            "nix-cache-info",
            "nar/abc.nar.xz",
            "log/x-y.drv",
            "a.tmp.1.2",
        ] {
            assert!(check_key(good).is_ok(), "{good:?}");
        }
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("nar/").is_ok());
        assert!(check_prefix("../x").is_err());
        assert!(check_prefix("/x").is_err());
    }

    #[test]
    fn etags_compare_loosely() {
        assert!(etag_eq("\"1a-2b\"", "1a-2b"));
        assert!(etag_eq("W/\"1a-2b\"", "\"1a-2b\""));
        assert!(!etag_eq("\"1a-2b\"", "\"1a-2c\""));
    }

    #[test]
    fn unique_now_increases() {
        let a = unique_now();
        let b = unique_now();
        assert!(b > a);
    }
}
