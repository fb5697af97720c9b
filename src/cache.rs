//! A binary cache opened through a storage backend: nix-cache-info, narinfo listing and fetching.

use std::sync::Arc;

use futures::{Stream, StreamExt};

use crate::compression::{self, CompressionError};
use crate::nix::narinfo::NarInfoError;
use crate::nix::store_path::{hash_part_from_narinfo_key, narinfo_key_problem};
use crate::nix::{CacheInfo, NarInfo, StorePath};
use crate::storage::{self, CacheUrl, ObjectMeta, PutCondition, PutOptions, Store, StoreError};

/// The key of the cache description file.
pub const CACHE_INFO_KEY: &str = "nix-cache-info";

/// Default number of narinfo requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Why a narinfo could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The storage backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The narinfo is malformed.
    #[error(transparent)]
    NarInfo(#[from] NarInfoError),
    /// The object carries a Content-Encoding narscope cannot undo.
    #[error(transparent)]
    Encoding(#[from] CompressionError),
    /// A narinfo that should exist does not.
    #[error("{0}: no such narinfo in the cache")]
    Missing(String),
    /// An argument that names no store path.
    #[error("'{0}' is not a store path, store path base name or 32-character hash part")]
    BadPathArg(String),
    /// An absolute store path argument in another store directory than the cache's.
    #[error(
        "'{path}' is not in this cache's store directory {store_dir} (its nix-cache-info's StoreDir)"
    )]
    OtherStoreDir {
        /// The store path as given, in the other store directory.
        path: String,
        /// The cache's store directory.
        store_dir: String,
    },
}

/// An open binary cache.
pub struct Cache {
    url: CacheUrl,
    store: Arc<dyn Store>,
    /// The store directory, once read (see [`Cache::store_dir`]).
    store_dir: std::sync::OnceLock<String>,
    /// Whether the bucket keeps versions, once learnt (see [`Cache::versioning`]).
    versioning: tokio::sync::OnceCell<storage::Versioning>,
}

impl Cache {
    /// Open the cache at `url` (no request is made yet).
    pub async fn open(url: &CacheUrl) -> Result<Cache, StoreError> {
        let store = storage::open(url).await?;
        Ok(Cache::from_store(url.clone(), store))
    }

    /// Wrap an already opened store.
    pub fn from_store(url: CacheUrl, store: Arc<dyn Store>) -> Cache {
        Cache {
            url,
            store,
            store_dir: std::sync::OnceLock::new(),
            versioning: tokio::sync::OnceCell::new(),
        }
    }

    /// The cache's URL.
    pub fn url(&self) -> &CacheUrl {
        &self.url
    }

    /// The storage backend.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A name for `key` in messages: the store's description and the key.
    pub fn origin(&self, key: &str) -> String {
        format!("{}: {key}", self.store.describe())
    }

    /// Read `nix-cache-info`, if present.
    pub async fn cache_info(&self) -> Result<Option<CacheInfo>, CacheError> {
        match self.store.get(CACHE_INFO_KEY).await? {
            None => Ok(None),
            Some(obj) => {
                let origin = self.origin(CACHE_INFO_KEY);
                let bytes = compression::decode_content_encoding_max(
                    &obj.bytes,
                    obj.content_encoding.as_deref(),
                    &origin,
                    compression::MAX_DECODED_NARINFO,
                )?;
                let text = String::from_utf8_lossy(&bytes);
                Ok(Some(CacheInfo::parse(&text)))
            }
        }
    }

    /// The store directory the cache's paths live in: `nix-cache-info`'s `StoreDir`, or
    /// `/nix/store` when the file or the line is missing (as Nix reads it). Read once.
    pub async fn store_dir(&self) -> Result<String, CacheError> {
        if let Some(d) = self.store_dir.get() {
            return Ok(d.clone());
        }
        let dir = self
            .cache_info()
            .await?
            .map(|c| c.store_dir)
            .unwrap_or_else(|| crate::nix::STORE_DIR.to_string());
        Ok(self.store_dir.get_or_init(|| dir).clone())
    }

    /// Whether the bucket keeps versions (S3 GetBucketVersioning; file:// never does), asked
    /// once per open cache: a success is remembered, a failure (e.g. access denied to
    /// GetBucketVersioning) is asked again next time. Callers treat an error as "versioning
    /// unknown", never as fatal.
    pub async fn versioning(&self) -> Result<storage::Versioning, StoreError> {
        self.versioning
            .get_or_try_init(|| self.store.versioning())
            .await
            .copied()
    }

    /// Write `nix-cache-info` (as the URL says: its storage class).
    pub async fn write_cache_info(&self, info: &CacheInfo) -> Result<(), StoreError> {
        self.put_object(
            CACHE_INFO_KEY,
            info.to_text().into_bytes().into(),
            "text/x-nix-cache-info",
            PutCondition::None,
        )
        .await?;
        Ok(())
    }

    /// The content coding the URL asks for on the object at `key`, as Nix chooses it: a
    /// `.narinfo` takes `narinfo-compression`, a `.ls` `ls-compression`, anything under
    /// `log/` `log-compression`.
    pub fn object_coding(&self, key: &str) -> Option<compression::Compression> {
        let p = self.url.params();
        if key.ends_with(".narinfo") {
            p.narinfo_compression
        } else if key.ends_with(".ls") {
            p.ls_compression
        } else if key.starts_with("log/") {
            p.log_compression
        } else {
            None
        }
    }

    /// The write options of an object under this cache's URL: its `content_type`, the
    /// `condition`, and the URL's `storage-class`.
    pub fn put_options(&self, content_type: &str, condition: PutCondition) -> PutOptions {
        PutOptions {
            content_type: Some(content_type.to_string()),
            condition,
            content_encoding: None,
            storage_class: self.url.params().storage_class.clone(),
        }
    }

    /// Writes `bytes` at `key` as this cache's URL says (Nix's `upsertFile`): compressed and
    /// stored with that `Content-Encoding` where [`Cache::object_coding`] asks for it, with
    /// the URL's storage class. Readers undo the coding (see
    /// [`compression::decode_content_encoding`]).
    pub async fn put_object(
        &self,
        key: &str,
        bytes: bytes::Bytes,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<ObjectMeta, StoreError> {
        let mut opts = self.put_options(content_type, condition);
        let body = match self.object_coding(key) {
            None => bytes,
            Some(c) => {
                let mut out = Vec::new();
                compression::compress_all(c, None, &bytes, &mut out).map_err(|e| {
                    StoreError::new(
                        storage::StoreErrorKind::Other,
                        self.store.describe(),
                        "PUT",
                        format!("compressing `{key}` with {c}: {e}"),
                    )
                })?;
                opts.content_encoding = Some(c.name().to_string());
                out.into()
            }
        };
        self.store.put(key, body, &opts).await
    }

    /// Every narinfo key of the cache, page by page, listed as concurrent prefix scans.
    pub fn narinfo_keys(
        &self,
        concurrency: usize,
    ) -> impl Stream<Item = Result<Vec<ObjectMeta>, StoreError>> + Send + use<> {
        self.root_keys_where(concurrency, |k| hash_part_from_narinfo_key(k).is_some())
    }

    /// Every object at the cache root whose name ends in `.narinfo`, page by page: the
    /// narinfo keys of [`Cache::narinfo_keys`] and the misnamed ones that name no store path
    /// (see [`narinfo_key_problem`]), which a whole-cache audit reports.
    pub fn narinfo_like_keys(
        &self,
        concurrency: usize,
    ) -> impl Stream<Item = Result<Vec<ObjectMeta>, StoreError>> + Send + use<> {
        self.root_keys_where(concurrency, |k| {
            hash_part_from_narinfo_key(k).is_some() || narinfo_key_problem(k).is_some()
        })
    }

    fn root_keys_where(
        &self,
        concurrency: usize,
        keep: fn(&str) -> bool,
    ) -> impl Stream<Item = Result<Vec<ObjectMeta>, StoreError>> + Send + use<> {
        // Prefix scans pay off against network round trips; a local directory is read from
        // one cached listing, where many scans would only contend.
        let scans = if self.store.supports_blocking_get() {
            concurrency.clamp(1, 2)
        } else {
            concurrency.clamp(1, 32)
        };
        storage::list_root_parallel(self.store.clone(), scans)
            .map(move |page| page.map(|p| p.objects.into_iter().filter(|o| keep(&o.key)).collect()))
    }

    /// Fetch and parse one narinfo by key. `Ok(None)` when it does not exist.
    pub async fn fetch_narinfo(
        &self,
        key: &str,
    ) -> Result<Option<(ObjectMeta, NarInfo)>, CacheError> {
        match self.store.get(key).await? {
            None => Ok(None),
            Some(obj) => self.parse_narinfo(key, obj).map(Some),
        }
    }

    /// [`Cache::fetch_narinfo`] without the async runtime, for local stores
    /// (see [`Store::supports_blocking_get`]).
    pub fn fetch_narinfo_blocking(
        &self,
        key: &str,
    ) -> Result<Option<(ObjectMeta, NarInfo)>, CacheError> {
        match self.store.get_blocking(key)? {
            None => Ok(None),
            Some(obj) => self.parse_narinfo(key, obj).map(Some),
        }
    }

    fn parse_narinfo(
        &self,
        key: &str,
        obj: storage::GetResult,
    ) -> Result<(ObjectMeta, NarInfo), CacheError> {
        let plain = self.narinfo_plain(key, &obj)?;
        let info = NarInfo::parse_bytes(&plain, &self.origin(key))?;
        drop(plain);
        Ok((obj.meta, info))
    }

    /// The text of the narinfo object `obj` read from `key`: decoded when it is stored
    /// compressed (a Content-Encoding, or compression magic), which Nix allows.
    pub fn narinfo_plain<'a>(
        &self,
        key: &str,
        obj: &'a storage::GetResult,
    ) -> Result<std::borrow::Cow<'a, [u8]>, CacheError> {
        if obj.content_encoding.is_some() || compression::sniff(&obj.bytes).is_some() {
            let plain = compression::decode_content_encoding_max(
                &obj.bytes,
                obj.content_encoding.as_deref(),
                &self.origin(key),
                compression::MAX_DECODED_NARINFO,
            )?;
            Ok(std::borrow::Cow::Owned(plain))
        } else {
            Ok(std::borrow::Cow::Borrowed(&obj.bytes[..]))
        }
    }

    /// Fetch many narinfos with at most `concurrency` requests in flight, in completion order.
    /// Listing errors in the input pass through in-band.
    pub fn fetch_narinfos<S>(
        self: &Arc<Self>,
        keys: S,
        concurrency: usize,
    ) -> impl Stream<Item = Result<Fetched, StoreError>> + Send + use<S>
    where
        S: Stream<Item = Result<ObjectMeta, StoreError>> + Send,
    {
        let cache = self.clone();
        keys.map(move |meta| {
            let cache = cache.clone();
            async move {
                let meta = meta?;
                let result = match cache.fetch_narinfo(&meta.key).await {
                    Ok(Some((m, info))) => {
                        let meta = ObjectMeta { key: meta.key, ..m };
                        return Ok(Fetched {
                            meta,
                            result: Ok(info),
                        });
                    }
                    Ok(None) => Err(CacheError::Missing(cache.origin(&meta.key))),
                    Err(e) => Err(e),
                };
                Ok(Fetched { meta, result })
            }
        })
        .buffer_unordered(concurrency.max(1))
    }

    /// Every narinfo key as a flat stream of objects (listing errors in-band).
    pub fn narinfo_key_stream(
        &self,
        concurrency: usize,
    ) -> impl Stream<Item = Result<ObjectMeta, StoreError>> + Send + use<> {
        flatten_pages(self.narinfo_keys(concurrency))
    }

    /// [`Cache::narinfo_like_keys`] as a flat stream of objects (listing errors in-band).
    pub fn narinfo_like_key_stream(
        &self,
        concurrency: usize,
    ) -> impl Stream<Item = Result<ObjectMeta, StoreError>> + Send + use<> {
        flatten_pages(self.narinfo_like_keys(concurrency))
    }
}

fn flatten_pages(
    pages: impl Stream<Item = Result<Vec<ObjectMeta>, StoreError>> + Send,
) -> impl Stream<Item = Result<ObjectMeta, StoreError>> + Send {
    pages.flat_map(|page| match page {
        Ok(objs) => {
            futures::stream::iter(objs.into_iter().map(Ok).collect::<Vec<_>>()).left_stream()
        }
        Err(e) => futures::stream::iter(vec![Err(e)]).right_stream(),
    })
}

/// One fetched narinfo (or why it could not be read).
pub struct Fetched {
    /// The object as listed (key, size, mtime, etag).
    pub meta: ObjectMeta,
    /// The parsed narinfo.
    pub result: Result<NarInfo, CacheError>,
}

/// Why a narinfo's `URL` is not followed (narscope reads only keys below the cache root).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NarUrlError {
    /// The URL is empty (or only a query).
    #[error("URL is empty")]
    Empty,
    /// The URL has a scheme or starts with `/` (carries the URL).
    #[error("URL {0} is absolute; narscope follows only URLs relative to the cache root")]
    Absolute(String),
    /// The URL has an empty, `.` or `..` path segment (carries the URL).
    #[error("URL {0} has empty, '.' or '..' segments")]
    BadSegments(String),
}

/// The storage key of a narinfo's `URL`, or why it cannot be followed.
pub fn nar_key(url: &str) -> Result<String, NarUrlError> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() {
        return Err(NarUrlError::Empty);
    }
    if path.contains("://") || path.starts_with('/') {
        return Err(NarUrlError::Absolute(url.to_string()));
    }
    if path
        .split('/')
        .any(|s| s == ".." || s == "." || s.is_empty())
    {
        return Err(NarUrlError::BadSegments(url.to_string()));
    }
    Ok(path.to_string())
}

/// [`narinfo_key_for`] for a cache whose store directory is `store_dir`: an absolute path
/// in another store directory is refused (Nix would not find it there either).
pub fn narinfo_key_in(arg: &str, store_dir: &str) -> Result<String, CacheError> {
    let key = narinfo_key_for(arg)?;
    let trimmed = arg.trim().trim_end_matches('/');
    if let Ok((dir, _)) = StorePath::split_absolute(trimmed)
        && dir != store_dir
    {
        return Err(CacheError::OtherStoreDir {
            path: trimmed.to_string(),
            store_dir: store_dir.to_string(),
        });
    }
    Ok(key)
}

/// Turn a user's argument into a narinfo key: an absolute store path (in any store
/// directory), a base name (`hash-name`), a bare 32-character hash part, or `hash.narinfo`.
pub fn narinfo_key_for(arg: &str) -> Result<String, CacheError> {
    let arg = arg.trim().trim_end_matches('/');
    if hash_part_from_narinfo_key(arg).is_some() {
        return Ok(arg.to_string());
    }
    if let Ok(p) = StorePath::parse_any(arg) {
        return Ok(p.narinfo_key());
    }
    let key = format!("{arg}.narinfo");
    if hash_part_from_narinfo_key(&key).is_some() {
        return Ok(key);
    }
    Err(CacheError::BadPathArg(arg.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nar_urls_map_to_keys_safely() {
        assert_eq!(nar_key("nar/abc.nar.xz").unwrap(), "nar/abc.nar.xz");
        assert_eq!(nar_key("nar/abc.nar?hash=xyz").unwrap(), "nar/abc.nar");
        for bad in [
            "",
            "/etc/passwd",
            "nar/../x",
            "http://h/nar/x",
            "nar//x",
            "./nar/x",
        ] {
            assert!(nar_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_arguments_resolve_to_narinfo_keys() {
        let k = "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo";
        for arg in [
            "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo",
            "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo/",
        ] {
            assert_eq!(narinfo_key_for(arg).unwrap(), k, "{arg}");
        }
        for bad in [
            "",
            "foo",
            "/nix/store/short-foo",
            "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
        ] {
            let e = narinfo_key_for(bad).unwrap_err().to_string();
            assert!(e.contains("is not a store path"), "{bad}: {e}");
        }
        let gnu = "/gnu/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo";
        assert_eq!(narinfo_key_for(gnu).unwrap(), k);
        assert_eq!(narinfo_key_in(gnu, "/gnu/store").unwrap(), k);
        assert_eq!(
            narinfo_key_in("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo", "/gnu/store").unwrap(),
            k
        );
        let e = narinfo_key_in(gnu, "/nix/store").unwrap_err().to_string();
        assert_eq!(
            e,
            "'/gnu/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo' is not in this cache's store directory /nix/store (its nix-cache-info's StoreDir)"
        );
        assert!(
            narinfo_key_in(
                "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
                "/gnu/store"
            )
            .is_err()
        );
    }
}
