//! The `file://` backend: a local directory used as a binary cache.
//!
//! - Keys are relative paths; absolute keys and `.`, `..` or empty segments are refused.
//! - **Objects stay inside the cache directory.** Every object and the directory of every write
//!   is opened relative to the cache directory without leaving it (Linux `openat2` with
//!   `RESOLVE_BENEATH`; elsewhere, or where `openat2` is missing, by resolving the path and
//!   checking that it stays below the cache directory, and on Linux that the opened file is
//!   there). Symbolic links whose target is inside the cache keep working, absolute or
//!   relative. A key that resolves outside — a narinfo or NAR linked to a file elsewhere, or a
//!   `nar/` linked to another disk — is refused with an [`StoreErrorKind::AccessDenied`] error
//!   saying so; nothing is read, written or deleted outside. Listings show such links (their
//!   own metadata, not their target's) so that reading them reports the refusal.
//! - Writes are atomic: the data goes to `<key>.tmp.<pid>.<n>` in the target directory (fsync'd
//!   unless disabled with [`FileStore::with_fsync`] or `NARSCOPE_FSYNC=0`) and is then renamed
//!   over the key, as Nix does (Nix does not fsync).
//!   Interrupted writers can leave such temp files; listings show them (see
//!   [`super::is_temp_litter`]) so a GC can remove them.
//! - **Etags** are `"<size hex>-<mtime in ns hex>-<inode hex>"`. Every write makes a new file
//!   (a new inode) and sets its mtime from the system clock with nanosecond precision (strictly
//!   increasing within the process), so a rewrite changes the etag even when the size does not,
//!   and two processes writing the same size in the same nanosecond still differ (the old
//!   file's inode number is in use until the new one replaces it). An unchanged file keeps its
//!   etag (nothing from `ctime`, which links and `chmod` change).
//! - `If-None-Match` uses `link(2)`, which fails atomically when the key exists.
//! - `If-Match` is atomic across processes: the etag is compared and the new file renamed into
//!   place while holding an exclusive `flock(2)` on the key's directory (opened read-only).
//!   Plain writes take the same lock for their rename and deletes for their unlink, so neither
//!   can slip between another narscope's compare and rename. **Protocol for other writers:**
//!   anything that takes the same exclusive `flock` on the object's directory around its own
//!   read-compare-rename (or rename, or unlink) is safe to run beside narscope; writers that
//!   take no lock (such as `nix copy`) can still be overwritten by a concurrent `If-Match`
//!   write, as on any store without compare-and-swap. The lock is on a new open of the
//!   directory each time, so it also orders threads of one process. On NFS, Linux emulates
//!   `flock` with byte-range locks, which work across clients.
//! - Listings walk the tree in S3 key order (a directory `d` sorts as `d/`), 1000 keys a page;
//!   the continuation token is the last key returned. Sorted directory contents are cached
//!   while the directory's mtime is unchanged.

use super::{
    ByteReader, CacheUrl, ConditionalSupport, DeleteReport, GetResult, ListOptions, ListPage,
    ObjectMeta, PAGE_SIZE, PutCondition, PutOptions, Store, StoreError, StoreErrorKind,
};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
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
        let desc = CacheUrl::file(root.clone()).to_string();
        FileStore {
            inner: Arc::new(Inner {
                root,
                desc,
                fsync: fsync_from_env(),
                dir_cache: Mutex::new(HashMap::new()),
                dir_read_lock: Mutex::new(()),
            }),
        }
    }

    /// Refuses a write that asks for what a directory cannot keep: a `Content-Encoding` (the
    /// bytes would be stored encoded with nothing saying so) or an S3 storage class. The URL
    /// parser refuses those parameters for file:// caches; this catches any other caller.
    fn refuse_object_metadata(&self, key: &str, opts: &PutOptions) -> Result<(), StoreError> {
        let what = match (&opts.content_encoding, &opts.storage_class) {
            (Some(ce), _) => format!("Content-Encoding `{ce}`"),
            (None, Some(class)) => format!("storage class `{class}`"),
            (None, None) => return Ok(()),
        };
        Err(StoreError::new(
            StoreErrorKind::NotSupported,
            &self.inner.desc,
            "PUT",
            format!(
                "a file:// cache cannot store a {what} with an object (S3 object metadata); \
                 nothing was written"
            ),
        )
        .with_key(key))
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

/// Why a key or a listing prefix is refused: it would leave the cache directory or name no
/// file (reported as [`StoreErrorKind::InvalidKey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum BadKey {
    /// An empty key.
    #[error("the key is empty")]
    Empty,
    /// A key starting with `/`.
    #[error("absolute keys are not allowed")]
    Absolute,
    /// A key with a NUL byte.
    #[error("the key contains a NUL byte")]
    Nul,
    /// A key with an empty, `.` or `..` segment.
    #[error("the key has an empty, `.` or `..` segment")]
    Segment,
    /// A prefix starting with `/` or holding a NUL byte.
    #[error("a prefix must be relative")]
    PrefixNotRelative,
    /// A prefix with a `.` or `..` segment.
    #[error("a prefix must not contain `.` or `..` segments")]
    PrefixSegment,
}

/// Checks a key: relative, no `.`/`..`/empty segments, no NUL.
fn check_key(key: &str) -> Result<(), BadKey> {
    if key.is_empty() {
        return Err(BadKey::Empty);
    }
    if key.starts_with('/') {
        return Err(BadKey::Absolute);
    }
    if key.contains('\0') {
        return Err(BadKey::Nul);
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(BadKey::Segment);
    }
    Ok(())
}

/// Prefixes may be empty or end with `/`, but must not escape the root.
fn check_prefix(prefix: &str) -> Result<(), BadKey> {
    if prefix.starts_with('/') || prefix.contains('\0') {
        return Err(BadKey::PrefixNotRelative);
    }
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err(BadKey::PrefixSegment);
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

/// The etag of a file: `"<size hex>-<mtime ns hex>-<inode hex>"`.
pub fn file_etag(md: &fs::Metadata) -> String {
    format!("\"{:x}-{:x}-{:x}\"", md.len(), mtime_ns(md), md.ino())
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

/// What an object below the root is opened for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Reading its bytes.
    Read,
    /// Its metadata only (`O_PATH` on Linux: no read permission needed).
    Meta,
    /// A directory to work in: read-only, for `*at` calls, `flock` and `fsync`.
    Dir,
}

/// Why an object below the root could not be opened.
enum Refused {
    /// Nothing there (or a path component is not a directory).
    Missing,
    /// It resolves outside the cache directory.
    Outside,
    /// Another I/O error.
    Io(io::Error),
}

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Refused {
        if is_missing(&e) {
            Refused::Missing
        } else {
            Refused::Io(e)
        }
    }
}

impl From<rustix::io::Errno> for Refused {
    fn from(e: rustix::io::Errno) -> Refused {
        Refused::from(io::Error::from(e))
    }
}

/// Whether `openat2` may work here; cleared when the kernel says it has none (ENOSYS).
#[cfg(target_os = "linux")]
static OPENAT2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// The open flags for `want`.
fn oflags(want: Want) -> OFlags {
    match want {
        // Non-blocking, so that a FIFO in the cache cannot hang a read.
        Want::Read => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        #[cfg(target_os = "linux")]
        Want::Meta => OFlags::PATH | OFlags::CLOEXEC,
        #[cfg(not(target_os = "linux"))]
        Want::Meta => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Want::Dir => OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
    }
}

/// The directory part (`""` for the root) and the file name of a checked key.
fn split_key(key: &str) -> (&str, &str) {
    match key.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", key),
    }
}

/// An exclusive `flock` on a directory, released when dropped.
struct DirLock<'a>(&'a fs::File);

impl<'a> DirLock<'a> {
    fn lock(dir: &'a fs::File) -> io::Result<DirLock<'a>> {
        loop {
            match rustix::fs::flock(dir, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(DirLock(dir)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for DirLock<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(self.0, FlockOperation::Unlock);
    }
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
        check_key(key).map_err(|m| self.err(StoreErrorKind::InvalidKey, op, key, m.to_string()))?;
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

    /// The error for a key that resolves outside the cache directory. Says nothing of what is
    /// there.
    fn outside(&self, op: &'static str, key: &str) -> StoreError {
        self.err(
            StoreErrorKind::AccessDenied,
            op,
            key,
            format!(
                "the key resolves outside the cache directory {} (through a symbolic link); \
                 refusing to follow it",
                self.root.display()
            ),
        )
        .with_advice(
            "links in a file:// cache must stay inside it: replace the link by the file, \
             or move its target into the cache directory",
        )
    }

    /// Opens `rel` (a checked key, or a key's directory; `""` is the root) without leaving the
    /// cache directory: a symbolic link may lead anywhere inside it, never out.
    fn open_beneath(&self, rel: &str, want: Want) -> Result<fs::File, Refused> {
        if rel.is_empty() {
            let fd = rustix::fs::open(&self.root, oflags(want), Mode::empty())?;
            return Ok(fs::File::from(fd));
        }
        // Fast path (narinfos): a name right in the root that is not a link is inside; one
        // open, as without any check. Links, and anything else unusual, go the careful way.
        if !rel.contains('/') && want != Want::Meta {
            let path = self.root.join(rel);
            match rustix::fs::open(&path, oflags(want) | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(fd) => return Ok(fs::File::from(fd)),
                Err(rustix::io::Errno::NOENT) => return Err(Refused::Missing),
                Err(_) => {}
            }
        }
        #[cfg(target_os = "linux")]
        if OPENAT2.load(Ordering::Relaxed) {
            use rustix::fs::ResolveFlags;
            use rustix::io::Errno;
            let root = rustix::fs::open(
                &self.root,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            let mut tries = 0;
            loop {
                match rustix::fs::openat2(&root, rel, oflags(want), Mode::empty(), how) {
                    Ok(fd) => return Ok(fs::File::from(fd)),
                    // A rename or mount raced with the lookup: try again, a few times.
                    Err(Errno::AGAIN) if tries < 3 => tries += 1,
                    // Outside, or through an absolute link (which may still point inside).
                    Err(Errno::XDEV) | Err(Errno::AGAIN) => break,
                    Err(Errno::NOSYS) => {
                        OPENAT2.store(false, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.open_checked(rel, want)
    }

    /// [`Inner::open_beneath`] without `openat2`: resolves the path, checks that it is below
    /// the resolved root, opens it, and (on Linux) checks where the opened file really is, so
    /// that a link swapped in meanwhile is caught too.
    fn open_checked(&self, rel: &str, want: Want) -> Result<fs::File, Refused> {
        let root = fs::canonicalize(&self.root)?;
        let real = fs::canonicalize(self.root.join(rel))?;
        if !real.starts_with(&root) {
            return Err(Refused::Outside);
        }
        let fd = rustix::fs::open(&real, oflags(want) | OFlags::NOFOLLOW, Mode::empty())?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
            if let Ok(at) = fs::read_link(proc)
                && !at.starts_with(&root)
            {
                return Err(Refused::Outside);
            }
        }
        Ok(fs::File::from(fd))
    }

    /// The metadata of the object at `key`, following links inside the cache only.
    fn stat_beneath(
        &self,
        op: &'static str,
        key: &str,
    ) -> Result<Option<fs::Metadata>, StoreError> {
        let path = self.path_of(op, key)?;
        // Fast path, as in `open_beneath`: a name right in the root that is not a link.
        if !key.contains('/') {
            match fs::symlink_metadata(&path) {
                Ok(md) if !md.file_type().is_symlink() => return Ok(Some(md)),
                Ok(_) => {}
                Err(e) if is_missing(&e) => return Ok(None),
                Err(e) => return Err(self.io_err(op, key, &path, &e)),
            }
        }
        match self.open_beneath(key, Want::Meta) {
            Ok(f) => f
                .metadata()
                .map(Some)
                .map_err(|e| self.io_err(op, key, &path, &e)),
            Err(Refused::Missing) => Ok(None),
            Err(Refused::Outside) => Err(self.outside(op, key)),
            Err(Refused::Io(e)) => Err(self.io_err(op, key, &path, &e)),
        }
    }

    fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(self
            .stat_beneath("HEAD", key)?
            .filter(|md| md.is_file())
            .map(|md| meta_of(key, &md)))
    }

    /// The open file at `key`, its metadata and its path, or `None` if there is no file there.
    fn open(&self, key: &str) -> Result<Option<(fs::File, ObjectMeta, PathBuf)>, StoreError> {
        let path = self.path_of("GET", key)?;
        let f = match self.open_beneath(key, Want::Read) {
            Ok(f) => f,
            Err(Refused::Missing) => return Ok(None),
            Err(Refused::Outside) => return Err(self.outside("GET", key)),
            Err(Refused::Io(e)) => return Err(self.io_err("GET", key, &path, &e)),
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

    /// The directory `dir` (a key's directory part, `""` for the root) below the root, opened
    /// for writing in it; created (one level at a time, never through a link that leads out)
    /// when `create` and missing. `Ok(None)`: missing and not created.
    fn dir_beneath(
        &self,
        op: &'static str,
        key: &str,
        dir: &str,
        create: bool,
    ) -> Result<Option<fs::File>, StoreError> {
        let fail = |r: Refused| match r {
            Refused::Outside => self.outside(op, key),
            Refused::Missing => self.io_err(
                op,
                key,
                &self.root.join(dir),
                &io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "a part of it exists and is not a directory",
                ),
            ),
            Refused::Io(e) => self.io_err(op, key, &self.root.join(dir), &e),
        };
        match self.open_beneath(dir, Want::Dir) {
            Ok(f) => return Ok(Some(f)),
            Err(Refused::Missing) if create => {}
            Err(Refused::Missing) => return Ok(None),
            Err(r) => return Err(fail(r)),
        }
        let mut parent = self.open_beneath("", Want::Dir).map_err(fail)?;
        let mut end = 0;
        for seg in dir.split('/') {
            end += seg.len();
            let sub = &dir[..end];
            end += 1;
            parent = match self.open_beneath(sub, Want::Dir) {
                Ok(f) => f,
                Err(Refused::Missing) => {
                    match rustix::fs::mkdirat(&parent, seg, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(fail(Refused::Io(e.into()))),
                    }
                    self.open_beneath(sub, Want::Dir).map_err(fail)?
                }
                Err(r) => return Err(fail(r)),
            };
        }
        Ok(Some(parent))
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
        if !self.root.is_dir() {
            return Err(self.missing_root(op, key));
        }
        let (dir_rel, name) = split_key(key);
        let Some(dir) = self.dir_beneath(op, key, dir_rel, true)? else {
            return Err(self.missing_root(op, key));
        };
        let tmp = format!(
            "{name}.tmp.{}.{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tmp_path = path.with_file_name(&tmp);
        let res = self
            .write_tmp(&dir, &tmp, &tmp_path, &src)
            .and_then(|f| self.commit(&dir, key, &tmp, &path, cond).map(|()| f));
        let f = match res {
            Ok(f) => f,
            Err(e) => {
                let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
                return Err(e);
            }
        };
        // The file just moved into place: its metadata are the object's as written.
        let md = f.metadata().map_err(|e| self.io_err(op, key, &path, &e))?;
        Ok(meta_of(key, &md))
    }

    /// Fills the temp file `tmp` in `dir` from `src`; returns it, open.
    fn write_tmp(
        &self,
        dir: &fs::File,
        tmp: &str,
        tmp_path: &Path,
        src: &Source,
    ) -> Result<fs::File, StoreError> {
        let key = tmp_path.to_string_lossy();
        let e2 = |e: io::Error| self.io_err("PUT", &key, tmp_path, &e);
        let open = |flags: OFlags| -> Result<fs::File, StoreError> {
            rustix::fs::openat(dir, tmp, flags, Mode::from_raw_mode(0o666))
                .map(|fd: OwnedFd| fs::File::from(fd))
                .map_err(|e| e2(e.into()))
        };
        if let Source::Owned(p) = src
            && rustix::fs::renameat(rustix::fs::CWD, p.as_path(), dir, tmp).is_ok()
        {
            let f = open(OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC)?;
            f.set_modified(unique_now()).map_err(e2)?;
            if self.fsync {
                f.sync_all().map_err(e2)?;
            }
            return Ok(f);
        }
        let mut f = open(OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC)?;
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
        Ok(f)
    }

    /// Moves the temp file `tmp` of `dir` to the key under `cond` (see the module doc for the
    /// locking protocol).
    fn commit(
        &self,
        dir: &fs::File,
        key: &str,
        tmp: &str,
        path: &Path,
        cond: &PutCondition,
    ) -> Result<(), StoreError> {
        let (_, name) = split_key(key);
        let precondition = |msg: &str| {
            self.err(
                StoreErrorKind::PreconditionFailed,
                "PUT",
                key,
                msg.to_string(),
            )
        };
        let io = |e: rustix::io::Errno| self.io_err("PUT", key, path, &e.into());
        let lock = |dir| DirLock::lock(dir).map_err(|e| self.io_err("PUT", key, path, &e));
        match cond {
            PutCondition::None => {
                let _lock = lock(dir)?;
                rustix::fs::renameat(dir, tmp, dir, name).map_err(io)?;
            }
            PutCondition::IfNoneMatch => {
                match rustix::fs::linkat(dir, tmp, dir, name, AtFlags::empty()) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        return Err(precondition("the key already exists (If-None-Match)"));
                    }
                    Err(e) => {
                        let err = io(e);
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
                let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
            }
            PutCondition::IfMatch(want) => {
                let _lock = lock(dir)?;
                match self.stat_beneath("PUT", key)? {
                    Some(md) if md.is_file() && etag_eq(&file_etag(&md), want) => {}
                    Some(md) if md.is_file() => {
                        return Err(precondition(&format!(
                            "the object changed: etag is {}, expected {want} (If-Match)",
                            file_etag(&md)
                        )));
                    }
                    Some(_) => return Err(precondition("the key is a directory (If-Match)")),
                    None => return Err(precondition("the key does not exist (If-Match)")),
                }
                rustix::fs::renameat(dir, tmp, dir, name).map_err(io)?;
            }
        }
        if self.fsync {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> DeleteReport {
        let mut report = DeleteReport::default();
        // The directory of the previous key, reused while keys share it.
        let mut open_dir: Option<(String, Option<fs::File>)> = None;
        for key in keys {
            if let Err(e) = self.path_of("delete", key) {
                report.failed.push((key.clone(), e.message));
                continue;
            }
            let (dir_rel, name) = split_key(key);
            if open_dir.as_ref().is_none_or(|(d, _)| d != dir_rel) {
                match self.dir_beneath("delete", key, dir_rel, false) {
                    Ok(d) => open_dir = Some((dir_rel.to_string(), d)),
                    Err(e) => {
                        open_dir = None;
                        report.failed.push((key.clone(), e.message));
                        continue;
                    }
                }
            }
            // No directory: nothing to delete.
            let Some((_, Some(dir))) = &open_dir else {
                report.deleted.push(key.clone());
                continue;
            };
            let path = self.root.join(key);
            let res = DirLock::lock(dir).and_then(|_lock| {
                rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(io::Error::from)
            });
            match res {
                Ok(()) => report.deleted.push(key.clone()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
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
            .map_err(|m| self.err(StoreErrorKind::InvalidKey, "list", prefix, m.to_string()))?;
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
            let md = match fs::symlink_metadata(&path) {
                // A link: its target's metadata if it stays inside the cache, else the link's
                // own (it is listed; reading it reports the refusal).
                Ok(md) if md.file_type().is_symlink() => {
                    match self.open_beneath(&key, Want::Meta) {
                        Ok(f) => match f.metadata() {
                            Ok(t) => t,
                            Err(e) => return Err(self.io_err("list", &key, &path, &e)),
                        },
                        Err(Refused::Outside) => md,
                        Err(Refused::Missing) => continue,
                        Err(Refused::Io(e)) => return Err(self.io_err("list", &key, &path, &e)),
                    }
                }
                Ok(md) => md,
                Err(e) if is_missing(&e) => continue, // deleted meanwhile
                Err(e) => return Err(self.io_err("list", &key, &path, &e)),
            };
            objects.push(meta_of(&key, &md));
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
        self.refuse_object_metadata(key, opts)?;
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
        self.refuse_object_metadata(key, opts)?;
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
        self.refuse_object_metadata(key, opts)?;
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

    fn copy_source(&self) -> Option<super::CopySource> {
        Some(super::CopySource {
            account: "file".to_string(),
            container: self.inner.root.to_string_lossy().into_owned(),
            root: String::new(),
        })
    }

    fn can_copy_from(&self, src: &super::CopySource) -> bool {
        src.account == "file"
    }

    async fn copy_from(
        &self,
        src: &super::CopySource,
        src_key: &str,
        key: &str,
        opts: &PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        self.refuse_object_metadata(key, opts)?;
        if !self.can_copy_from(src) {
            return Err(self.inner.err(
                StoreErrorKind::NotSupported,
                "COPY",
                key,
                format!("cannot copy from {} on the server", src.container),
            ));
        }
        let from = FileStore::new(PathBuf::from(&src.container));
        let (k, sk) = (key.to_string(), src_key.to_string());
        let cond = opts.condition.clone();
        self.blocking("COPY", Some(key), move |i| {
            let Some((f, _, path)) = from.inner.open(&sk)? else {
                return Err(i.err(
                    StoreErrorKind::Io,
                    "COPY",
                    &k,
                    format!("the source {} has no {sk}", from.inner.desc),
                ));
            };
            // A hard link to the very file opened (no race with a rename at the source),
            // made beside the cache root, then moved into place as any write.
            let name = k.rsplit('/').next().unwrap_or(&k);
            let link = i.root.join(format!(
                "{name}.tmp.{}.{}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let fd_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f));
            let linked = rustix::fs::linkat(
                rustix::fs::CWD,
                fd_path.as_str(),
                rustix::fs::CWD,
                &link,
                AtFlags::SYMLINK_FOLLOW,
            )
            .is_ok();
            let r = if linked {
                i.write("COPY", &k, Source::Owned(link.clone()), &cond)
            } else {
                i.write("COPY", &k, Source::File(path), &cond)
            };
            let _ = fs::remove_file(&link);
            r
        })
        .await
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

    const MARKER: &str = "TOP-SECRET-MARKER outside the cache";

    /// A cache directory `cache/` and, beside it, `outside/secret` (first line: [`MARKER`]) and
    /// `outside/dir/x`.
    fn cache_and_outside() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cache");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(root.join("nar")).unwrap();
        fs::create_dir_all(outside.join("dir")).unwrap();
        fs::write(outside.join("secret"), format!("{MARKER}\nmore\n")).unwrap();
        fs::write(outside.join("dir/x"), MARKER).unwrap();
        (tmp, root, outside)
    }

    fn assert_refused(r: Result<impl std::fmt::Debug, StoreError>, key: &str) {
        let e = r.expect_err("refused");
        assert_eq!(e.kind, StoreErrorKind::AccessDenied, "{e}");
        assert_eq!(e.key.as_deref(), Some(key));
        let msg = e.to_string();
        assert!(
            msg.contains("resolves outside the cache directory"),
            "{msg}"
        );
        assert!(!msg.contains("TOP-SECRET"), "{msg}");
    }

    /// Every read of `key` is refused, through `openat2` and through the fallback.
    fn assert_reads_refused(inner: &Inner, key: &str) {
        assert_refused(inner.get(key), key);
        assert_refused(inner.head(key), key);
        assert_refused(inner.open(key).map(|o| o.map(|(_, m, _)| m)), key);
        for want in [Want::Read, Want::Meta] {
            assert!(matches!(
                inner.open_checked(key, want),
                Err(Refused::Outside)
            ));
        }
    }

    /// Runs `check` with `openat2`, then (on Linux) with the fallback that resolves and
    /// compares paths, as on kernels without `openat2`.
    async fn both_ways<F: std::future::Future<Output = ()>>(check: impl Fn() -> F) {
        check().await;
        #[cfg(target_os = "linux")]
        {
            OPENAT2.store(false, Ordering::Relaxed);
            check().await;
            OPENAT2.store(true, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn links_out_of_the_cache_are_refused_for_reads_writes_and_deletes() {
        both_ways(links_out_are_refused).await;
    }

    async fn links_out_are_refused() {
        let (_tmp, root, outside) = cache_and_outside();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("abs.narinfo")).unwrap();
        std::os::unix::fs::symlink("../outside/secret", root.join("rel.narinfo")).unwrap();
        std::os::unix::fs::symlink("../../outside/secret", root.join("nar/a.nar")).unwrap();
        std::os::unix::fs::symlink(outside.join("dir"), root.join("linked")).unwrap();
        let store = FileStore::new(&root);
        let inner = &store.inner;
        for key in ["abs.narinfo", "rel.narinfo", "nar/a.nar", "linked/x"] {
            assert_reads_refused(inner, key);
            assert_refused(store.get(key).await, key);
            assert_refused(store.head(key).await, key);
            assert_refused(store.get_reader(key).await.map(|o| o.map(|(m, _)| m)), key);
            assert_refused(store.get_reader_blocking(key).map(|o| o.is_some()), key);
        }
        // Writes into a directory that leads out, and deletes through it, are refused too.
        for cond in [
            PutCondition::None,
            PutCondition::IfNoneMatch,
            PutCondition::IfMatch("\"x\"".into()),
        ] {
            let opts = PutOptions {
                condition: cond,
                ..PutOptions::default()
            };
            assert_refused(
                store.put("linked/new", "n".into(), &opts).await,
                "linked/new",
            );
            assert_refused(store.put("linked/x", "n".into(), &opts).await, "linked/x");
            assert_refused(
                store.put("linked/sub/new", "n".into(), &opts).await,
                "linked/sub/new",
            );
        }
        let report = store.delete_many(&["linked/x".to_string()]).await.unwrap();
        assert!(report.deleted.is_empty());
        assert!(
            report.failed[0].1.contains("resolves outside"),
            "{report:?}"
        );
        let left: Vec<_> = fs::read_dir(outside.join("dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["x"], "nothing written or deleted outside");
        assert_eq!(fs::read_to_string(outside.join("dir/x")).unwrap(), MARKER);
        // A plain write over a link that leads out replaces the link, not its target.
        store
            .put("abs.narinfo", "mine".into(), &PutOptions::default())
            .await
            .unwrap();
        assert!(
            fs::read_to_string(outside.join("secret"))
                .unwrap()
                .starts_with(MARKER)
        );
        assert_eq!(
            &store.get("abs.narinfo").await.unwrap().unwrap().bytes[..],
            b"mine"
        );
        // Deleting a link removes the link only.
        let report = store
            .delete_many(&["rel.narinfo".to_string()])
            .await
            .unwrap();
        assert_eq!(report.deleted, ["rel.narinfo"]);
        assert!(outside.join("secret").exists());
    }

    #[tokio::test]
    async fn links_that_stay_inside_work() {
        both_ways(links_inside_work).await;
    }

    async fn links_inside_work() {
        let (_tmp, root, _outside) = cache_and_outside();
        fs::create_dir_all(root.join("store/nar")).unwrap();
        fs::write(root.join("store/nar/a.nar"), "nar bytes").unwrap();
        fs::write(root.join("real.narinfo"), "StorePath: x").unwrap();
        std::os::unix::fs::symlink("real.narinfo", root.join("rel.narinfo")).unwrap();
        // Absolute links into the cache (through a link to the cache itself, too).
        std::os::unix::fs::symlink(root.join("real.narinfo"), root.join("abs.narinfo")).unwrap();
        std::os::unix::fs::symlink(root.join("store/nar"), root.join("absnar")).unwrap();
        fs::remove_dir(root.join("nar")).unwrap();
        std::os::unix::fs::symlink("store/nar", root.join("nar")).unwrap();
        let alias = root.parent().unwrap().join("alias");
        std::os::unix::fs::symlink(&root, &alias).unwrap();
        std::os::unix::fs::symlink(alias.join("real.narinfo"), root.join("via-alias.narinfo"))
            .unwrap();
        for store in [FileStore::new(&root), FileStore::new(&alias)] {
            for (key, want) in [
                ("rel.narinfo", "StorePath: x"),
                ("abs.narinfo", "StorePath: x"),
                ("via-alias.narinfo", "StorePath: x"),
                ("nar/a.nar", "nar bytes"),
                ("absnar/a.nar", "nar bytes"),
            ] {
                let got = store.get(key).await.unwrap().expect(key);
                assert_eq!(&got.bytes[..], want.as_bytes(), "{key}");
                assert!(store.head(key).await.unwrap().is_some(), "{key}");
                let f = store.inner.open_checked(key, Want::Read).ok().expect(key);
                assert_eq!(f.metadata().unwrap().len(), want.len() as u64);
            }
            // Writes through the inside links land inside.
            for key in ["nar/b.nar", "absnar/c.nar", "nar/deeper/d.nar"] {
                store
                    .put(key, "new".into(), &PutOptions::default())
                    .await
                    .unwrap();
                assert_eq!(&store.get(key).await.unwrap().unwrap().bytes[..], b"new");
            }
            assert!(root.join("store/nar/deeper/d.nar").is_file());
            assert!(store.get("missing/x").await.unwrap().is_none());
            assert!(store.head("real.narinfo/x").await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn listings_show_links_that_lead_out_with_their_own_metadata() {
        let (_tmp, root, outside) = cache_and_outside();
        fs::write(root.join("a.narinfo"), "inside").unwrap();
        std::os::unix::fs::symlink("a.narinfo", root.join("b.narinfo")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("c.narinfo")).unwrap();
        let store = FileStore::new(&root);
        let page = store.list_page("", None).await.unwrap();
        let got: Vec<(&str, u64)> = page
            .objects
            .iter()
            .map(|o| (o.key.as_str(), o.size))
            .collect();
        let link_len = outside.join("secret").as_os_str().len() as u64;
        assert_eq!(
            got,
            [("a.narinfo", 6), ("b.narinfo", 6), ("c.narinfo", link_len)]
        );
        assert_refused(store.get("c.narinfo").await, "c.narinfo");
    }

    #[tokio::test]
    async fn writes_with_s3_object_metadata_are_refused_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let src = dir.path().join("src.bin");
        fs::write(&src, "nar bytes").unwrap();
        let coded = PutOptions {
            content_encoding: Some("zstd".into()),
            ..PutOptions::default()
        };
        let classed = PutOptions {
            storage_class: Some("STANDARD".into()),
            ..PutOptions::default()
        };
        for (opts, needle) in [
            (&coded, "Content-Encoding `zstd`"),
            (&classed, "storage class `STANDARD`"),
        ] {
            let results = [
                store.put("a.narinfo", "x".into(), opts).await,
                store.put_file("nar/b.nar", &src, opts).await,
                store.put_owned_file("nar/c.nar", &src, opts).await,
            ];
            for r in results {
                let e = r.expect_err("a write with S3 metadata must be refused");
                assert_eq!(e.kind, StoreErrorKind::NotSupported, "{e}");
                let msg = e.to_string();
                assert!(
                    msg.contains(needle) && msg.contains("nothing was written"),
                    "{msg}"
                );
            }
        }
        assert!(src.is_file(), "the owned source file is left alone");
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["src.bin"]);
        // Plain writes still work.
        store
            .put("a.narinfo", "x".into(), &PutOptions::default())
            .await
            .unwrap();
    }

    #[test]
    fn etags_differ_between_files_and_stay_for_an_unchanged_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let t = unique_now();
        for p in [&a, &b] {
            let f = fs::File::create(p).unwrap();
            f.set_len(10).unwrap();
            f.set_modified(t).unwrap();
        }
        // Same size, same mtime to the nanosecond: different files still differ.
        let (ma, mb) = (fs::metadata(&a).unwrap(), fs::metadata(&b).unwrap());
        assert_eq!(
            (ma.len(), ma.modified().unwrap()),
            (mb.len(), mb.modified().unwrap())
        );
        assert_ne!(file_etag(&ma), file_etag(&mb));
        // Links, chmod and reads change the ctime, not the etag.
        fs::hard_link(&a, dir.path().join("c")).unwrap();
        let _ = fs::read(&a).unwrap();
        fs::set_permissions(&a, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert_eq!(file_etag(&fs::metadata(&a).unwrap()), file_etag(&ma));
    }

    /// A writer that follows the protocol (an exclusive `flock` on the key's directory around
    /// its own compare and rename) is never overwritten by an If-Match write that read the
    /// object before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn if_match_waits_for_the_directory_lock_of_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path()));
        let meta = store
            .put("x.narinfo", "v1".into(), &PutOptions::default())
            .await
            .unwrap();
        let etag = meta.etag.unwrap();
        // The other writer takes the lock (its own open of the directory)...
        let d = fs::File::open(dir.path()).unwrap();
        let lock = DirLock::lock(&d).unwrap();
        let s2 = store.clone();
        let ours = tokio::spawn(async move {
            let opts = PutOptions {
                condition: PutCondition::IfMatch(etag),
                ..PutOptions::default()
            };
            s2.put("x.narinfo", "ours".into(), &opts).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!ours.is_finished(), "the If-Match write waits for the lock");
        // ...and replaces the object, same size, before letting go.
        fs::write(dir.path().join("x.tmp"), "v2").unwrap();
        fs::rename(dir.path().join("x.tmp"), dir.path().join("x.narinfo")).unwrap();
        drop(lock);
        let err = ours.await.unwrap().unwrap_err();
        assert!(err.is_precondition_failed(), "{err}");
        assert_eq!(
            &store.get("x.narinfo").await.unwrap().unwrap().bytes[..],
            b"v2"
        );
    }

    #[test]
    fn unique_now_increases() {
        let a = unique_now();
        let b = unique_now();
        assert!(b > a);
    }
}
