//! Signing races a concurrent writer: a store wrapper rewrites the narinfo right after the sign
//! job has read it. With compare-and-swap (file://, and s3s-fs over real HTTP with If-Match),
//! the job's write is refused, it reads again, and the result keeps both changes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use narscope::cache::Cache;
use narscope::jobs::sign::{SignOptions, sign};
use narscope::jobs::{JobKind, Runner};
use narscope::nix::{Hash, NarInfo, SecretKey, StorePath, TrustedKeys};
use narscope::storage::s3::{S3Options, S3Store};
use narscope::storage::{
    ByteReader, CacheUrl, ConditionalSupport, DeleteReport, GetResult, ListPage, ObjectMeta,
    PutOptions, Store, StoreError,
};

/// Passes everything through; the first GET of `key` is followed by a competing write.
struct Racy {
    inner: Arc<dyn Store>,
    key: String,
    raced: AtomicBool,
    rival: String,
}

#[async_trait::async_trait]
impl Store for Racy {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn list_page(&self, prefix: &str, token: Option<String>) -> Result<ListPage, StoreError> {
        self.inner.list_page(prefix, token).await
    }
    async fn get(&self, key: &str) -> Result<Option<GetResult>, StoreError> {
        let r = self.inner.get(key).await;
        if key == self.key && !self.raced.swap(true, Ordering::SeqCst) {
            // Someone else signs (with another key) between our read and our write.
            self.inner
                .put(
                    key,
                    self.rival.clone().into_bytes().into(),
                    &PutOptions::default(),
                )
                .await?;
        }
        r
    }
    async fn get_reader(&self, key: &str) -> Result<Option<(ObjectMeta, ByteReader)>, StoreError> {
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
        self.inner.put(key, body, opts).await
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
        self.inner.probe_conditional_writes().await
    }
}

fn narinfo() -> NarInfo {
    let sp = StorePath::from_base_name("7mykfhyl4pazcsisxzsv1n1163xd1gzx-race-1.0").unwrap();
    NarInfo::new(
        sp,
        "nar/x.nar.xz",
        "xz",
        Hash::sha256_of(b"race"),
        1234,
        Vec::new(),
    )
}

async fn race(inner: Arc<dyn Store>, url: CacheUrl) {
    let info = narinfo();
    let key = info.narinfo_key();
    inner
        .put(
            &key,
            info.to_text().into_bytes().into(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let theirs = SecretKey::from_seed("theirs-1", &[2; 32]).unwrap();
    let mut rival = info.clone();
    rival.sign(&theirs);
    let store = Arc::new(Racy {
        inner: inner.clone(),
        key: key.clone(),
        raced: AtomicBool::new(false),
        rival: rival.to_text(),
    });
    let cache = Arc::new(Cache::from_store(url, store));
    let ours = Arc::new(SecretKey::from_seed("ours-1", &[1; 32]).unwrap());
    let runner = Runner::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let out = Arc::new(std::sync::Mutex::new(None));
    let o2 = out.clone();
    let opts = SignOptions {
        key: Some(ours.clone()),
        remove_key: None,
        concurrency: 4,
        dry_run: false,
    };
    let keys = vec![key.clone()];
    runner.spawn(
        JobKind::Sign,
        "sign",
        Arc::new(move |e| {
            let _ = tx.send(e);
        }),
        move |job, notify| async move {
            let s = sign(
                cache,
                keys,
                opts,
                Arc::new(TrustedKeys::new()),
                None,
                job,
                notify,
            )
            .await?;
            *o2.lock().unwrap() = Some(s);
            Ok(())
        },
    );
    while let Some(e) = rx.recv().await {
        if matches!(e, narscope::jobs::JobEvent::Finished(..)) {
            break;
        }
    }
    let summary = out.lock().unwrap().clone().expect("the job succeeded");
    assert!(summary.compare_and_swap);
    assert_eq!(summary.retries, 1, "{summary:?}");
    assert_eq!(summary.changed, 1);
    let text = String::from_utf8(inner.get(&key).await.unwrap().unwrap().bytes.to_vec()).unwrap();
    assert!(
        text.contains("Sig: theirs-1:"),
        "the rival's signature survived:\n{text}"
    );
    assert!(text.contains("Sig: ours-1:"), "ours was added:\n{text}");
    let mut both = TrustedKeys::new();
    both.add(ours.public_key());
    both.add(theirs.public_key());
    let v = narscope::nix::check_path(&NarInfo::parse(&text, "t").unwrap(), &both);
    assert!(
        v.sigs
            .iter()
            .all(|s| s.outcome == narscope::nix::SigOutcome::Valid)
    );
}

#[tokio::test]
async fn signing_retries_on_a_concurrent_write_on_file() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(narscope::storage::file::FileStore::new(dir.path()));
    race(store, CacheUrl::File(dir.path().to_path_buf())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_retries_on_a_concurrent_write_on_s3s() {
    let srv = common::s3s::start().await;
    let url = match CacheUrl::parse(&srv.url_for(&srv.bucket, "")).unwrap() {
        CacheUrl::S3(u) => u,
        other => panic!("{other:?}"),
    };
    let opts = S3Options::default().with_static_credentials(&srv.access_key, &srv.secret_key);
    let store: Arc<dyn Store> = Arc::new(S3Store::connect(url.clone(), opts).await.unwrap());
    race(store, CacheUrl::S3(url)).await;
}
