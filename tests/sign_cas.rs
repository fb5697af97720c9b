//! Signing races a concurrent writer: a store wrapper rewrites the narinfo right after the sign
//! job has read it. With compare-and-swap (file://, and s3s-fs over real HTTP with If-Match),
//! the job's write is refused, it reads again, and the result keeps both changes.

use crate::common;

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
        keys: vec![ours.clone()],
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
    race(store, CacheUrl::file(dir.path().to_path_buf())).await;
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

/// Two `narscope sign --all` processes with different keys on one file:// cache, at the same
/// time, round after round: every narinfo ends with both signatures (the If-Match commit is
/// atomic across processes, not only within one).
#[test]
fn two_sign_processes_on_one_file_cache_lose_no_signature() {
    const NARINFOS: usize = 60;
    const ROUNDS: usize = 10;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("nar")).unwrap();
    std::fs::write(
        cache.join("nix-cache-info"),
        "StoreDir: /nix/store\nWantMassQuery: 1\n",
    )
    .unwrap();
    let ns_root = tmp.path().join("ns");
    let keys: Vec<(SecretKey, std::path::PathBuf)> = [("alpha-1", 1u8), ("beta-1", 2u8)]
        .iter()
        .map(|(name, seed)| {
            let sk = SecretKey::from_seed(name, &[*seed; 32]).unwrap();
            let p = tmp.path().join(format!("{name}.sec"));
            std::fs::write(&p, sk.to_file_text()).unwrap();
            (sk, p)
        })
        .collect();
    let infos: Vec<NarInfo> = (0..NARINFOS)
        .map(|i| {
            // 32 characters of Nix's base-32 alphabet, distinct per i.
            let hash: String = format!("{i:0>32}")
                .chars()
                .map(|c| if c == '0' { 'a' } else { c })
                .collect();
            let sp = StorePath::from_base_name(&format!("{hash}-p{i}")).unwrap();
            NarInfo::new(
                sp,
                format!("nar/{i}.nar"),
                "none",
                Hash::sha256_of(format!("nar {i}").as_bytes()),
                1000 + i as u64,
                Vec::new(),
            )
        })
        .collect();
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        for info in &infos {
            std::fs::write(cache.join(info.narinfo_key()), info.to_text()).unwrap();
        }
        let children: Vec<std::process::Child> = keys
            .iter()
            .map(|(_, file)| {
                let args = ["sign", cache.to_str().unwrap(), "--all", "--key-file"];
                common::cmd::narscope(&args, &ns_root)
                    .arg(file)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("run narscope sign")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains(&format!("{NARINFOS} signature(s) added")),
                "{text}"
            );
        }
        for info in &infos {
            let key = info.narinfo_key();
            let text = std::fs::read_to_string(cache.join(&key)).unwrap();
            let got = NarInfo::parse(&text, &key).unwrap();
            for (sk, _) in &keys {
                let mut one = TrustedKeys::new();
                one.add(sk.public_key());
                let v = narscope::nix::check_path(&got, &one);
                if !v
                    .sigs
                    .iter()
                    .any(|s| s.outcome == narscope::nix::SigOutcome::Valid)
                {
                    lost.push(format!("round {round}: {key} lost {}", sk.name()));
                }
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} signature(s) lost:\n{}",
        lost.len(),
        lost.join("\n")
    );
}
