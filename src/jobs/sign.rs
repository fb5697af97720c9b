//! Signing narinfos in place (and dropping a retired key's signatures).
//!
//! Each narinfo is read with its ETag, edited (only `Sig` lines change: a signature is added
//! unless the same one is there; signatures under the signing key's name that do not verify
//! are replaced; `--remove-key` drops a name), and written back. Where the server honours
//! `If-Match` the write is a compare-and-swap and a concurrent change makes it re-read and try
//! again; elsewhere the write is a plain overwrite, as `nix store sign` does, then read back:
//! only a narinfo found carrying the change counts as written (one that a concurrent writer
//! overwrote meanwhile is done again), and the job says that a later overwrite is possible.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use futures::StreamExt;

use super::{JobError, JobHandle, JobNotify, Throttle};
use crate::cache::Cache;
use crate::index::{self, Index, NarInfoSummary, RowData, RowStatus};
use crate::nix::{NarInfo, SecretKey, TrustedKeys};
use crate::storage::PutCondition;
use crate::storage::params::StoreParams;

/// Content type of narinfo objects, as Nix uploads them.
pub const NARINFO_CONTENT_TYPE: &str = "text/x-nix-narinfo";

/// Compare-and-swap attempts per narinfo before giving up on it.
const CAS_ATTEMPTS: usize = 5;

/// What a sign job does.
#[derive(Clone)]
pub struct SignOptions {
    /// The keys to sign with, each narinfo by every one (none: only remove signatures).
    pub keys: Vec<Arc<SecretKey>>,
    /// Drop every signature under this key name.
    pub remove_key: Option<String>,
    /// narinfos in flight.
    pub concurrency: usize,
    /// Compute the changes, write nothing.
    pub dry_run: bool,
}

/// What a sign job did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignSummary {
    /// narinfos rewritten (or that would be, with `dry_run`).
    pub changed: u64,
    /// narinfos that already had the signature and nothing to remove.
    pub unchanged: u64,
    /// Signatures added to narinfos (one per key and path that lacked it).
    pub added: u64,
    /// Signatures removed (retired key, or not verifying under the signing key's name).
    pub removed: u64,
    /// narinfos that could not be done (see the job's errors).
    pub failed: u64,
    /// Whether writes were compare-and-swap (`If-Match`).
    pub compare_and_swap: bool,
    /// Writes retried because the narinfo changed in between.
    pub retries: u64,
    /// Without compare-and-swap: narinfos read back after writing that carried the change
    /// (what is counted as written; a concurrent writer may still overwrite it later).
    pub verified: u64,
}

/// Reads the secret key file `path` (`origin` says where it was named, e.g. `--key-file`
/// or `secret-key= in the cache URL`). Errors name the file and its origin, never the key.
pub fn load_key_file(path: &Path, origin: &str) -> Result<SecretKey, JobError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        JobError::Local(format!(
            "cannot read the secret key file {} ({origin}): {e}",
            path.display()
        ))
    })?;
    SecretKey::parse(text.trim()).map_err(|e| {
        JobError::Invalid(format!(
            "secret key file {} ({origin}): {e}",
            path.display()
        ))
    })
}

/// The keys a writer signs with: the cache URL's `secret-key=` and `secret-keys=` files, then
/// `extra` (files with where each was named, e.g. `--key-file`). Every file is read and
/// checked here, so that a bad one stops the job before anything touches the cache. A key
/// named twice signs once.
pub fn load_signing_keys(
    params: &StoreParams,
    extra: &[(PathBuf, String)],
) -> Result<Vec<Arc<SecretKey>>, JobError> {
    let from_url = params.secret_keys.iter().map(|p| {
        let param = if params.get("secret-key") == p.to_str() {
            "secret-key="
        } else {
            "secret-keys="
        };
        (p.clone(), format!("{param} in the cache URL"))
    });
    let mut keys: Vec<Arc<SecretKey>> = Vec::new();
    for (path, origin) in from_url.chain(extra.iter().cloned()) {
        let k = load_key_file(&path, &origin)?;
        if !keys.iter().any(|o| o.public_key() == k.public_key()) {
            keys.push(Arc::new(k));
        }
    }
    Ok(keys)
}

/// The names of `keys`, for messages (`a-1, b-1`).
pub fn key_names(keys: &[Arc<SecretKey>]) -> String {
    keys.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

/// Whether `info` carries a signature by `key` that verifies.
pub fn signed_by(info: &NarInfo, key: &SecretKey) -> bool {
    let (public, fp) = (key.public_key(), info.fingerprint());
    info.sigs.iter().any(|s| {
        crate::nix::Signature::parse(s)
            .is_ok_and(|sig| sig.key_name == key.name() && public.verify(&fp, &sig))
    })
}

/// The change to one narinfo: its new text, or `None` when nothing changes. Each of `keys`
/// adds its signature.
pub fn edit(
    info: &mut NarInfo,
    keys: &[Arc<SecretKey>],
    remove_key: Option<&str>,
) -> (Option<String>, u64, u64) {
    // Only `Sig` lines change, so the text changes exactly when the signatures do.
    let before = info.sigs.clone();
    let mut removed = 0u64;
    if let Some(name) = remove_key {
        removed += info.remove_signatures_by_key(name) as u64;
    }
    let mut added = 0u64;
    for k in keys {
        // A signature under our name that does not verify is garbage: replace it.
        // The fingerprint is built only when there is a signature under our name to check.
        let ours = |s: &String| crate::nix::narinfo::sig_key_name(s) == Some(k.name());
        if info.sigs.iter().any(ours) {
            let (public, fp, n) = (k.public_key(), info.fingerprint(), info.sigs.len());
            info.sigs.retain(|s| {
                !crate::nix::Signature::parse(s).is_ok_and(|sig| {
                    sig.key_name == k.name()
                        && !public.verify(&fp, &sig)
                        // Another configured key of the same name may have made it.
                        && !keys.iter().any(|o| o.public_key().verify(&fp, &sig))
                })
            });
            removed += (n - info.sigs.len()) as u64;
        }
        if info.sign(k) {
            added += 1;
        }
    }
    let changed = info.sigs != before;
    (changed.then(|| info.to_text()), added, removed)
}

/// Sign the narinfos with keys `narinfo_keys` (see the module docs). When `index` is given,
/// its rows are updated with the new texts and verdicts (judged under `trusted`).
pub async fn sign(
    cache: Arc<Cache>,
    narinfo_keys: Vec<String>,
    opts: SignOptions,
    trusted: Arc<TrustedKeys>,
    index: Option<Arc<RwLock<Index>>>,
    job: Arc<JobHandle>,
    notify: JobNotify,
) -> Result<SignSummary, JobError> {
    let p = job.progress.clone();
    p.total.store(narinfo_keys.len() as u64, Ordering::Relaxed);
    let cas = if opts.dry_run {
        false
    } else {
        p.set_current("probing conditional writes");
        match cache.store().probe_conditional_writes().await {
            Ok(s) => s.if_match,
            Err(e) => {
                return Err(JobError::store_in(
                    format!("cannot write to {}", cache.store().describe()),
                    e,
                ));
            }
        }
    };
    if !cas && !opts.dry_run {
        tracing::warn!(
            "{} does not honour If-Match: narinfos are overwritten without compare-and-swap \
             (as nix store sign does); a concurrent writer could lose its change",
            cache.store().describe()
        );
    }
    let summary = Arc::new(std::sync::Mutex::new(SignSummary {
        compare_and_swap: cas,
        ..SignSummary::default()
    }));
    let throttle = Throttle::default();
    let work = futures::stream::iter(narinfo_keys)
        .map(|key| {
            let cache = cache.clone();
            let opts = opts.clone();
            let p = p.clone();
            let summary = summary.clone();
            let index = index.clone();
            let trusted = trusted.clone();
            async move {
                p.set_current(key.clone());
                match sign_one(&cache, &key, &opts, cas).await {
                    Ok(r) => {
                        let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
                        s.retries += r.retries;
                        s.verified += u64::from(r.verified);
                        s.added += r.added;
                        s.removed += r.removed;
                        match r.written {
                            Some((info, text, meta)) => {
                                s.changed += 1;
                                drop(s);
                                if let Some(index) = &index {
                                    update_index(index, &key, &info, &text, meta, &trusted);
                                }
                            }
                            None => s.unchanged += 1,
                        }
                    }
                    Err(e) => {
                        summary.lock().unwrap_or_else(|e| e.into_inner()).failed += 1;
                        p.error(e.to_string());
                    }
                }
                p.done.fetch_add(1, Ordering::Relaxed);
            }
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut work = std::pin::pin!(work);
    while work.next().await.is_some() {
        if throttle.ready() {
            notify(super::JobEvent::Progress(job.id));
        }
    }
    p.set_current(String::new());
    let s = summary.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(s)
}

struct OneResult {
    /// The narinfo written (or that would be), its text and the new object's metadata.
    written: Option<(NarInfo, String, Option<crate::storage::ObjectMeta>)>,
    added: u64,
    removed: u64,
    retries: u64,
    /// Written without compare-and-swap and found carrying the change when read back.
    verified: bool,
}

async fn sign_one(
    cache: &Cache,
    key: &str,
    opts: &SignOptions,
    cas: bool,
) -> Result<OneResult, JobError> {
    let origin = cache.origin(key);
    let mut retries = 0;
    for _ in 0..CAS_ATTEMPTS {
        let (meta, mut info) = match cache.fetch_narinfo(key).await {
            Ok(Some(o)) => o,
            Ok(None) => return Err(JobError::Missing(format!("{origin}: no such narinfo"))),
            Err(e) => return Err(e.into()),
        };
        if index::digest_of(info.store_path.hash_part())
            != key.strip_suffix(".narinfo").and_then(index::digest_of)
        {
            return Err(JobError::Refused(format!(
                "{origin} holds StorePath {}: refusing to sign a narinfo stored under another key",
                info.absolute_path()
            )));
        }
        let (text, added, removed) = edit(&mut info, &opts.keys, opts.remove_key.as_deref());
        let Some(text) = text else {
            return Ok(OneResult {
                written: None,
                added,
                removed,
                retries,
                verified: false,
            });
        };
        if opts.dry_run {
            return Ok(OneResult {
                written: Some((info, text, None)),
                added,
                removed,
                retries,
                verified: false,
            });
        }
        let condition = match (&meta.etag, cas) {
            (Some(e), true) => PutCondition::IfMatch(e.clone()),
            _ => PutCondition::None,
        };
        let swapped = condition != PutCondition::None;
        // As the URL says: narinfo-compression, storage-class.
        match cache
            .put_object(
                key,
                text.clone().into_bytes().into(),
                NARINFO_CONTENT_TYPE,
                condition,
            )
            .await
        {
            Ok(meta) if swapped => {
                return Ok(OneResult {
                    written: Some((info, text, Some(meta))),
                    added,
                    removed,
                    retries,
                    verified: false,
                });
            }
            Ok(_) => {
                // An overwrite: it counts once read back with the change in it.
                match cache.fetch_narinfo(key).await {
                    Ok(Some((now_meta, mut now))) => {
                        if edit(&mut now, &opts.keys, opts.remove_key.as_deref())
                            .0
                            .is_none()
                        {
                            return Ok(OneResult {
                                written: Some((info, text, Some(now_meta))),
                                added,
                                removed,
                                retries,
                                verified: true,
                            });
                        }
                        // A concurrent writer's version replaced ours: do it again.
                        retries += 1;
                        continue;
                    }
                    Ok(None) => {
                        return Err(JobError::Failed(format!(
                            "{origin}: deleted right after being signed; left as it is"
                        )));
                    }
                    Err(e) => {
                        return Err(JobError::Failed(format!(
                            "{origin}: written, but reading it back to check failed: {e}"
                        )));
                    }
                }
            }
            Err(e) if e.is_precondition_failed() => {
                retries += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(JobError::Failed(format!(
        "{origin}: changed {CAS_ATTEMPTS} times while being signed; left as it is"
    )))
}

fn update_index(
    index: &RwLock<Index>,
    key: &str,
    info: &NarInfo,
    text: &str,
    meta: Option<crate::storage::ObjectMeta>,
    trusted: &TrustedKeys,
) {
    let report = crate::audit::PathReport::judge(key, info, trusted);
    let mut idx = index.write().unwrap_or_else(|e| e.into_inner());
    let stored = idx
        .blob()
        .and_then(|b| b.append_many(&[text.as_bytes()]).ok())
        .and_then(|v| v.into_iter().next())
        .unwrap_or_default();
    let Some(hash) = key.strip_suffix(".narinfo") else {
        return;
    };
    let (obj_size, mtime, etag) = match &meta {
        Some(m) => (
            m.size,
            index::unix_secs(m.last_modified),
            index::etag_hash(m.etag.as_deref()),
        ),
        None => (text.len() as u64, i64::MIN, 0),
    };
    idx.apply(&RowData {
        hash_part: hash.to_string(),
        obj_size,
        mtime,
        etag,
        info: Some(NarInfoSummary::of(info)),
        status: RowStatus::from(report.status),
        text: stored,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::{Hash, StorePath};

    fn narinfo() -> NarInfo {
        let sp = StorePath::from_base_name("7mykfhyl4pazcsisxzsv1n1163xd1gzx-foo-1.0").unwrap();
        let text = format!(
            "StorePath: {}\nURL: nar/x.nar.xz\nCompression: xz\nNarHash: {}\nNarSize: 120\nReferences: \nSig: other-1:{}\n",
            sp,
            Hash::sha256_of(b"foo"),
            crate::nix::hash::base64_encode(&[7u8; 64])
        );
        NarInfo::parse(&text, "t").unwrap()
    }

    #[test]
    fn edits_touch_only_sig_lines_and_are_idempotent() {
        let k = Arc::new(SecretKey::from_seed("mine-1", &[1; 32]).unwrap());
        let ks = [k.clone()];
        let mut info = narinfo();
        let before = info.to_text();
        let (text, added, removed) = edit(&mut info, &ks, None);
        let text = text.expect("a signature was added");
        assert_eq!((added, removed), (1, 0));
        let old: Vec<&str> = before.lines().collect();
        let new: Vec<&str> = text.lines().collect();
        assert_eq!(new.len(), old.len() + 1);
        assert!(
            new.starts_with(&old),
            "only a Sig line is appended:\n{text}"
        );
        assert!(new.last().unwrap().starts_with("Sig: mine-1:"));
        // Signing again changes nothing.
        let mut again = NarInfo::parse(&text, "t").unwrap();
        assert_eq!(edit(&mut again, &ks, None), (None, 0, 0));
        // Dropping our own signature and signing again gives the same narinfo: no write.
        assert_eq!(edit(&mut again, &ks, Some("mine-1")), (None, 1, 1));
        assert_eq!(again.to_text(), text);
        // Key rotation: drop the other key.
        let (t2, a2, r2) = edit(&mut again, &[], Some("other-1"));
        assert_eq!((a2, r2), (0, 1));
        assert!(!t2.unwrap().contains("other-1:"));
    }

    #[test]
    fn a_bad_signature_under_our_name_is_replaced() {
        let k = Arc::new(SecretKey::from_seed("mine-1", &[1; 32]).unwrap());
        let mut info = narinfo();
        info.add_signature(
            &crate::nix::Signature::parse(&format!(
                "mine-1:{}",
                crate::nix::hash::base64_encode(&[9u8; 64])
            ))
            .unwrap(),
        );
        let (text, added, removed) = edit(&mut info, std::slice::from_ref(&k), None);
        assert_eq!((added, removed), (1, 1));
        let text = text.unwrap();
        assert_eq!(text.matches("Sig: mine-1:").count(), 1);
        let mut keys = TrustedKeys::new();
        keys.add(k.public_key());
        let v = crate::nix::check_path(&NarInfo::parse(&text, "t").unwrap(), &keys);
        assert_eq!(v.verdict, crate::nix::Verdict::Trusted);
    }
}

#[cfg(test)]
mod overwrite_tests {
    use super::*;
    use crate::storage::PutOptions;
    use crate::storage::file::FileStore;
    use crate::storage::{
        ByteReader, ConditionalSupport, DeleteReport, GetResult, ListPage, ObjectMeta, Store,
        StoreError,
    };
    use std::sync::atomic::AtomicUsize;

    /// A file:// store without compare-and-swap, where a concurrent writer puts the previous
    /// text back right after the first `overwrites` narinfo writes land.
    struct Racy {
        inner: FileStore,
        overwrites: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Store for Racy {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn list_page(&self, p: &str, t: Option<String>) -> Result<ListPage, StoreError> {
            self.inner.list_page(p, t).await
        }
        async fn get(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
            self.inner.get(key).await
        }
        async fn get_reader(
            &self,
            key: &str,
        ) -> Result<Option<(ObjectMeta, ByteReader)>, StoreError> {
            self.inner.get_reader(key).await
        }
        async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
            self.inner.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            body: bytes::Bytes,
            opts: &PutOptions,
        ) -> Result<ObjectMeta, StoreError> {
            let before = self.inner.get(key).await?;
            let meta = self.inner.put(key, body, opts).await?;
            if key.ends_with(".narinfo")
                && let Some(old) = before
                && self
                    .overwrites
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                self.inner
                    .put(key, old.bytes, &PutOptions::default())
                    .await?;
            }
            Ok(meta)
        }
        async fn put_file(
            &self,
            key: &str,
            path: &std::path::Path,
            opts: &PutOptions,
        ) -> Result<ObjectMeta, StoreError> {
            self.inner.put_file(key, path, opts).await
        }
        async fn delete_many(&self, keys: &[String]) -> Result<DeleteReport, StoreError> {
            self.inner.delete_many(keys).await
        }
        async fn ensure_container(&self) -> Result<bool, StoreError> {
            self.inner.ensure_container().await
        }
        async fn probe_conditional_writes(&self) -> Result<ConditionalSupport, StoreError> {
            Ok(ConditionalSupport {
                if_none_match: false,
                if_match: false,
            })
        }
    }

    #[tokio::test]
    async fn without_compare_and_swap_only_writes_read_back_count() {
        let tmp = tempfile::tempdir().unwrap();
        // A subdirectory: the demo keeps its keys beside the cache (`<dir>.keys/`), inside tmp.
        let dir = tmp.path().join("cache");
        crate::demo::write_demo_cache(&dir).unwrap();
        let store = Arc::new(Racy {
            inner: FileStore::new(&dir).with_fsync(false),
            overwrites: AtomicUsize::new(2),
        });
        let url = crate::storage::CacheUrl::file(dir.clone());
        let cache = Arc::new(Cache::from_store(url, store.clone()));
        let keys: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".narinfo"))
            .collect();
        assert!(keys.len() > 2);
        let key = Arc::new(SecretKey::from_seed("mine-1", &[3; 32]).unwrap());
        let opts = SignOptions {
            keys: vec![key.clone()],
            remove_key: None,
            concurrency: 1,
            dry_run: false,
        };
        let runner = super::super::Runner::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let notify: JobNotify = Arc::new(move |e| {
            let _ = tx.send(e);
        });
        let out = Arc::new(std::sync::Mutex::new(None));
        let o2 = out.clone();
        let c2 = cache.clone();
        let k2 = keys.clone();
        runner.spawn(
            super::super::JobKind::Sign,
            "t",
            notify,
            move |job, n| async move {
                let s = sign(c2, k2, opts, Arc::new(TrustedKeys::new()), None, job, n).await?;
                *o2.lock().unwrap() = Some(s);
                Ok(())
            },
        );
        while let Some(e) = rx.recv().await {
            if matches!(e, super::super::JobEvent::Finished(..)) {
                break;
            }
        }
        let s = out.lock().unwrap().clone().expect("the job ran");
        assert!(!s.compare_and_swap);
        // Two writes were undone by the "concurrent writer": each was done again.
        assert_eq!(s.retries, 2, "{s:?}");
        assert_eq!(s.verified, keys.len() as u64, "{s:?}");
        assert_eq!(s.changed, keys.len() as u64);
        for k in &keys {
            let text = std::fs::read_to_string(dir.join(k)).unwrap();
            assert!(text.contains("Sig: mine-1:"), "{k} lost its signature");
        }
    }
}
