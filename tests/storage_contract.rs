//! One contract suite for every storage backend (file://, Garage, s3s-fs), plus error-quality
//! tests against real servers.

use crate::common;

use bytes::Bytes;
use common::Garage;
use common::s3s::S3sServer;
use futures::{StreamExt, TryStreamExt};
use narscope::storage::file::FileStore;
use narscope::storage::s3::{S3Options, S3Store};
use narscope::storage::{
    self, CacheUrl, ConditionalSupport, ListOptions, PutCondition, PutOptions, RootKeys, S3Url,
    Store, StoreErrorKind,
};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

const MIB: u64 = 1024 * 1024;

fn s3_url(s: &str) -> S3Url {
    match CacheUrl::parse(s) {
        Ok(CacheUrl::S3(u)) => u,
        other => panic!("{s}: {other:?}"),
    }
}

/// Small multipart settings so that an 11 MiB file goes up in 3 parts.
fn test_opts() -> S3Options {
    S3Options::default().with_multipart(6 * MIB, 5 * MIB)
}

async fn s3s_store(srv: &S3sServer, bucket: &str, prefix: &str) -> Arc<dyn Store> {
    let opts = test_opts().with_static_credentials(&srv.access_key, &srv.secret_key);
    let store = S3Store::connect(s3_url(&srv.url_for(bucket, prefix)), opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(store)
}

/// [`test_opts`] signing with Garage's access key.
fn garage_opts(g: &Garage) -> S3Options {
    test_opts().with_static_credentials(&g.access_key, &g.secret_key)
}

async fn garage_store(g: &Garage, bucket: &str, prefix: &str) -> Arc<dyn Store> {
    let store = S3Store::connect(s3_url(&g.url(bucket, prefix)), garage_opts(g))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(store)
}

fn plain() -> PutOptions {
    PutOptions::default()
}

fn cond(c: PutCondition) -> PutOptions {
    PutOptions {
        content_type: Some("text/x-nix-narinfo".into()),
        condition: c,
        ..PutOptions::default()
    }
}

async fn put_many(store: &Arc<dyn Store>, keys: &[String]) {
    futures::stream::iter(keys.iter().cloned())
        .map(|k| {
            let store = store.clone();
            async move {
                let body = Bytes::from(format!("body of {k}\n"));
                store
                    .put(&k, body, &plain())
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

async fn all_keys(store: &Arc<dyn Store>, prefix: &str) -> Vec<String> {
    let pages: Vec<_> = storage::list_prefix(store.clone(), prefix.to_string())
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    pages
        .into_iter()
        .flat_map(|p| p.objects.into_iter().map(|o| o.key))
        .collect()
}

async fn root_keys(store: &Arc<dyn Store>, which: RootKeys) -> Vec<String> {
    let pages: Vec<_> = storage::list_root_parallel_with(store.clone(), 8, which)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut keys: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.objects.into_iter().map(|o| o.key))
        .collect();
    keys.sort();
    keys
}

/// Every key under `nar/`, listed by the parallel scans, sorted.
async fn nar_keys_parallel(store: Arc<dyn Store>, scans: usize) -> Vec<String> {
    let pages: Vec<_> = storage::list_parallel_under(store, "nar/", scans, false)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut keys: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.objects.into_iter().map(|o| o.key))
        .collect();
    keys.sort();
    keys
}

/// Deterministic pseudo-random bytes (xorshift), so multipart parts differ.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The suite every backend must pass. `expect` is what `probe_conditional_writes` must find.
async fn contract(store: Arc<dyn Store>, expect: ConditionalSupport) {
    let desc = store.describe();

    // --- missing keys ---
    assert!(store.head("missing.narinfo").await.unwrap().is_none());
    assert!(store.get("missing.narinfo").await.unwrap().is_none());
    assert!(store.get_reader("nar/missing.nar").await.unwrap().is_none());
    let e = store.get("").await.expect_err("empty key is refused");
    assert_eq!(e.kind, StoreErrorKind::InvalidKey, "{e}");

    // --- put / get / head / get_reader ---
    let info = Bytes::from_static(b"StoreDir: /nix/store\n");
    let m = store
        .put(
            "nix-cache-info",
            info.clone(),
            &PutOptions {
                content_type: Some("text/x-nix-cache-info".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.key, "nix-cache-info");
    assert_eq!(m.size, info.len() as u64);
    let got = store.get("nix-cache-info").await.unwrap().expect("present");
    assert_eq!(got.bytes, info);
    assert_eq!(got.meta.size, info.len() as u64);
    assert_eq!(got.meta.key, "nix-cache-info");
    assert_eq!(got.content_encoding, None);
    let head = store
        .head("nix-cache-info")
        .await
        .unwrap()
        .expect("present");
    assert_eq!(head.size, info.len() as u64);
    assert!(head.etag.is_some(), "{desc}: HEAD gives an etag");
    assert!(head.last_modified.is_some(), "{desc}: HEAD gives a date");
    let (meta, mut reader) = store
        .get_reader("nix-cache-info")
        .await
        .unwrap()
        .expect("present");
    assert_eq!(meta.size, info.len() as u64);
    let mut buf = Vec::new();
    reader.read_to_end(&mut buf).await.unwrap();
    assert_eq!(buf, info);
    // overwrite
    let info2 = Bytes::from_static(b"StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
    store
        .put("nix-cache-info", info2.clone(), &plain())
        .await
        .unwrap();
    assert_eq!(
        store.get("nix-cache-info").await.unwrap().unwrap().bytes,
        info2
    );

    // --- pagination past 1000 keys ---
    let pg: Vec<String> = (0..1100).map(|i| format!("pg/k{i:04}")).collect();
    put_many(&store, &pg).await;
    let p1 = store.list_page("pg/", None).await.unwrap();
    assert_eq!(p1.objects.len(), 1000, "{desc}: first page is full");
    let tok = p1.next.clone().expect("a continuation token");
    let p2 = store.list_page("pg/", Some(tok)).await.unwrap();
    assert_eq!(p2.objects.len(), 100);
    assert!(p2.next.is_none());
    let listed: Vec<String> = p1
        .objects
        .iter()
        .chain(p2.objects.iter())
        .map(|o| o.key.clone())
        .collect();
    assert_eq!(listed, pg, "{desc}: keys relative and in order");
    assert!(
        p1.objects
            .iter()
            .all(|o| o.size == format!("body of {}\n", o.key).len() as u64)
    );
    assert_eq!(all_keys(&store, "pg/").await, pg);

    // --- prefix listing ---
    let pfx: Vec<String> = ["pfx/a/1", "pfx/a/2", "pfx/ab", "pfx/b/1", "pfx/a.x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    put_many(&store, &pfx).await;
    assert_eq!(
        all_keys(&store, "pfx/a").await,
        ["pfx/a.x", "pfx/a/1", "pfx/a/2", "pfx/ab"]
    );
    assert_eq!(all_keys(&store, "pfx/a/").await, ["pfx/a/1", "pfx/a/2"]);
    assert_eq!(all_keys(&store, "pfx/zz").await, Vec::<String>::new());
    let top = store
        .list_page_with(
            "pfx/",
            None,
            &ListOptions {
                top_level_only: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let top: Vec<&str> = top.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(top, ["pfx/a.x", "pfx/ab"], "{desc}: delimiter listing");
    let after = store
        .list_page_with(
            "pfx/",
            None,
            &ListOptions {
                start_after: Some("pfx/a/1".into()),
                max_keys: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let after_keys: Vec<&str> = after.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        after_keys,
        ["pfx/a/2", "pfx/ab"],
        "{desc}: start_after + max_keys"
    );
    assert!(after.next.is_some());

    // --- list_root_parallel: every top-level key exactly once ---
    let top_level: Vec<String> = [
        "0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r.narinfo",
        "0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r.ls",
        "9zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz.narinfo",
        "n0000000000000000000000000000000.narinfo",
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz.narinfo",
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz.narinfo.tmp.123.0",
        "e-not-nix32",
        "tmp-not-nix32",
        "Upper-case",
        "_underscore",
        ".hidden",
        "~tilde",
        "\u{e9}t\u{e9}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let nested: Vec<String> = [
        "nar/0abc.nar.xz",
        "log/abc-foo.drv",
        "realisations/x!out.doi",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    put_many(&store, &top_level).await;
    put_many(&store, &nested).await;
    let mut want: Vec<String> = top_level.clone();
    want.push("nix-cache-info".into());
    want.sort();
    assert_eq!(
        root_keys(&store, RootKeys::TopLevelOnly).await,
        want,
        "{desc}"
    );
    let two_arg: Vec<_> = storage::list_root_parallel(store.clone(), 32)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        two_arg.iter().map(|p| p.objects.len()).sum::<usize>(),
        want.len()
    );
    let mut everything = all_keys(&store, "").await;
    assert!(
        everything.windows(2).all(|w| w[0] < w[1]),
        "{desc}: sorted, no duplicates"
    );
    everything.sort();
    assert_eq!(root_keys(&store, RootKeys::All).await, everything, "{desc}");
    assert!(everything.contains(&"nar/0abc.nar.xz".to_string()));

    // --- put_file: small and multipart ---
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let small_data = noise(100 * 1024, 1);
    std::fs::write(&small, &small_data).unwrap();
    let m = store
        .put_file("nar/small.nar", &small, &plain())
        .await
        .unwrap();
    assert_eq!(m.size, small_data.len() as u64);
    assert_eq!(
        store.get("nar/small.nar").await.unwrap().unwrap().bytes,
        small_data
    );
    let big = dir.path().join("big");
    let big_data = noise((11 * MIB) as usize, 2);
    std::fs::write(&big, &big_data).unwrap();
    let m = store.put_file("nar/big.nar", &big, &plain()).await.unwrap();
    assert_eq!(m.size, big_data.len() as u64);
    let head = store.head("nar/big.nar").await.unwrap().expect("uploaded");
    assert_eq!(head.size, big_data.len() as u64);
    if desc.starts_with("s3://") {
        // S3 etags of multipart objects end in -<number of parts>: 11 MiB in 5 MiB parts
        let etag = head.etag.clone().unwrap_or_default();
        assert!(
            etag.trim_matches('"').ends_with("-3"),
            "{desc}: multipart etag {etag}"
        );
    }
    let got = store.get("nar/big.nar").await.unwrap().unwrap();
    assert!(
        got.bytes == big_data,
        "{desc}: multipart content round-trips"
    );
    let (_, mut reader) = store.get_reader("nar/big.nar").await.unwrap().unwrap();
    let mut streamed = Vec::new();
    reader.read_to_end(&mut streamed).await.unwrap();
    assert!(streamed == big_data);
    let e = store
        .put_file("nar/x", &dir.path().join("does-not-exist"), &plain())
        .await
        .expect_err("missing source file");
    assert!(e.to_string().contains("does-not-exist"), "{e}");

    // --- delete: > 1000 keys in batches, missing keys count as deleted ---
    let mut doomed = pg.clone();
    doomed.push("pg/never-existed-1".into());
    doomed.push("pg/never-existed-2".into());
    let rep = store.delete_many(&doomed).await.unwrap();
    assert!(rep.failed.is_empty(), "{desc}: {:?}", rep.failed);
    assert_eq!(rep.deleted.len(), doomed.len());
    assert!(all_keys(&store, "pg/").await.is_empty());
    let missing = vec!["gone/a".to_string(), "gone/b".to_string()];
    let rep = store.delete_many(&missing).await.unwrap();
    assert_eq!(rep.deleted, missing);
    assert!(rep.failed.is_empty());
    assert!(
        store.get("nix-cache-info").await.unwrap().is_some(),
        "unrelated keys survive"
    );

    // --- conditional writes ---
    let support = store.probe_conditional_writes().await.unwrap();
    assert_eq!(support, expect, "{desc}");
    assert!(
        all_keys(&store, ".narscope-probe/").await.is_empty(),
        "probe cleans up"
    );
    let k = "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b.narinfo";
    let first = store
        .put(
            k,
            "StorePath: one\n".into(),
            &cond(PutCondition::IfNoneMatch),
        )
        .await
        .unwrap();
    let second = store
        .put(
            k,
            "StorePath: two\n".into(),
            &cond(PutCondition::IfNoneMatch),
        )
        .await;
    if expect.if_none_match {
        let e = second.expect_err("second create-only write fails");
        assert_eq!(e.kind, StoreErrorKind::PreconditionFailed, "{e}");
        assert!(e.to_string().contains(k), "{e}");
        assert_eq!(
            store.get(k).await.unwrap().unwrap().bytes,
            "StorePath: one\n"
        );
    } else {
        // the server ignores the condition: the second write wins
        second.unwrap();
        assert_eq!(
            store.get(k).await.unwrap().unwrap().bytes,
            "StorePath: two\n"
        );
    }
    if expect.if_match {
        let current = store.head(k).await.unwrap().unwrap().etag.unwrap();
        let stale = first.etag.clone().filter(|e| *e != current);
        let wrong = stale.unwrap_or_else(|| "\"0000\"".into());
        let e = store
            .put(
                k,
                "StorePath: three\n".into(),
                &cond(PutCondition::IfMatch(wrong)),
            )
            .await
            .expect_err("a wrong etag fails");
        assert_eq!(e.kind, StoreErrorKind::PreconditionFailed, "{e}");
        let m = store
            .put(
                k,
                "StorePath: four\n".into(),
                &cond(PutCondition::IfMatch(current.clone())),
            )
            .await
            .unwrap();
        assert_ne!(
            m.etag.as_deref(),
            Some(current.as_str()),
            "the etag changes"
        );
        assert_eq!(
            store.get(k).await.unwrap().unwrap().bytes,
            "StorePath: four\n"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_backend_contract() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = FileStore::new(&root);
    let e = store
        .list_page("", None)
        .await
        .expect_err("no directory yet");
    assert_eq!(e.kind, StoreErrorKind::NoSuchBucket);
    assert!(e.to_string().contains("narscope init"), "{e}");
    assert!(e.to_string().contains(&root.display().to_string()), "{e}");
    assert!(store.ensure_container().await.unwrap());
    assert!(!store.ensure_container().await.unwrap());
    let store: Arc<dyn Store> = Arc::new(store);
    assert_eq!(store.describe(), format!("file://{}", root.display()));
    contract(
        store.clone(),
        ConditionalSupport {
            if_none_match: true,
            if_match: true,
        },
    )
    .await;
    // atomic writes leave no temp files; keys may not escape the root
    let litter: Vec<String> = all_keys(&store, "")
        .await
        .into_iter()
        .filter(|k| storage::is_temp_litter(k) && !k.starts_with("zzzz"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
    for bad in ["../escape", "/etc/passwd", "a/../../b", "nar//x"] {
        let e = store.put(bad, "x".into(), &plain()).await.expect_err(bad);
        assert_eq!(e.kind, StoreErrorKind::InvalidKey, "{e}");
        assert!(e.to_string().contains(bad), "{e}");
    }
    assert!(!dir.path().join("escape").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3s_contract() {
    let srv = common::s3s::start().await;
    let store = s3s_store(&srv, &srv.bucket, "").await;
    assert_eq!(
        store.describe(),
        format!("s3://{} (endpoint {})", srv.bucket, srv.endpoint)
    );
    assert!(!store.ensure_container().await.unwrap(), "bucket exists");
    contract(
        store,
        ConditionalSupport {
            if_none_match: true,
            if_match: true,
        },
    )
    .await;
}

/// On a server that honours write conditions (s3s-fs), the lean PUT reports a failed one as
/// the SDK does, writes nothing, and swaps on the right ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_lean_put_keeps_write_conditions() {
    let srv = common::s3s::start().await;
    let opts = test_opts().with_static_credentials(&srv.access_key, &srv.secret_key);
    let lean = S3Store::connect(s3_url(&srv.url_for(&srv.bucket, "")), opts)
        .await
        .unwrap();
    let k = "2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c.narinfo";
    let first = lean
        .put(k, "one\n".into(), &cond(PutCondition::IfNoneMatch))
        .await
        .unwrap();
    let e = lean
        .put(k, "two\n".into(), &cond(PutCondition::IfNoneMatch))
        .await
        .unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::PreconditionFailed, "{e}");
    assert!(e.to_string().contains(k), "{e}");
    let e = lean
        .put(
            k,
            "three\n".into(),
            &cond(PutCondition::IfMatch("\"0000\"".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::PreconditionFailed, "{e}");
    assert_eq!(lean.get(k).await.unwrap().unwrap().bytes, "one\n");
    let etag = first.etag.expect("an ETag");
    lean.put(k, "four\n".into(), &cond(PutCondition::IfMatch(etag)))
        .await
        .unwrap();
    assert_eq!(lean.get(k).await.unwrap().unwrap().bytes, "four\n");
    // Four PUTs and two GETs, all answered by the lean path.
    let s = lean.lean_stats().unwrap();
    assert_eq!((s.answered, s.fallbacks), (6, 0), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garage_contract() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let bucket = g.fresh_bucket();
    let store = garage_store(g, &bucket, "").await;
    contract(
        store,
        ConditionalSupport {
            if_none_match: false,
            if_match: false,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garage_prefixed_store_and_open() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let bucket = g.fresh_bucket();
    let url = CacheUrl::parse(&g.url(&bucket, "team/cache")).unwrap();
    // What `storage::open` makes of a prefixed URL (it sends no request: the credentials
    // chain is resolved on first use, and the test process holds no credentials)...
    let opened = storage::open(&url).await.unwrap();
    assert_eq!(
        opened.describe(),
        format!("s3://{bucket}/team/cache (endpoint {})", g.endpoint)
    );
    // ...and the same store signing with Garage's key keeps every key below the prefix.
    let store = g.open(&g.url(&bucket, "team/cache")).await;
    assert_eq!(store.describe(), opened.describe());
    store
        .put("abc.narinfo", "x".into(), &plain())
        .await
        .unwrap();
    store
        .put("nar/abc.nar", "y".into(), &plain())
        .await
        .unwrap();
    let root = g.open(&g.url(&bucket, "")).await;
    root.put("outside.narinfo", "z".into(), &plain())
        .await
        .unwrap();
    assert_eq!(
        all_keys(&root, "").await,
        [
            "outside.narinfo",
            "team/cache/abc.narinfo",
            "team/cache/nar/abc.nar"
        ]
    );
    assert_eq!(all_keys(&store, "").await, ["abc.narinfo", "nar/abc.nar"]);
    assert_eq!(
        root_keys(&store, RootKeys::TopLevelOnly).await,
        ["abc.narinfo"]
    );
    let rep = store
        .delete_many(&["abc.narinfo".to_string()])
        .await
        .unwrap();
    assert_eq!(rep.deleted, ["abc.narinfo"]);
    assert!(root.head("team/cache/abc.narinfo").await.unwrap().is_none());
    assert!(root.head("outside.narinfo").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_ensure_container_and_missing_bucket() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let name = format!("new-{}", common::random_hex(4));
    let store = garage_store(g, &name, "").await;
    let e = store.list_page("", None).await.expect_err("no such bucket");
    eprintln!("{e}");
    assert_eq!(e.kind, StoreErrorKind::NoSuchBucket, "{e}");
    let text = e.to_string();
    for want in [
        name.as_str(),
        g.endpoint.as_str(),
        "does not exist",
        "narscope init",
    ] {
        assert!(text.contains(want), "missing {want:?} in: {text}");
    }
    assert!(store.ensure_container().await.unwrap(), "created");
    assert!(!store.ensure_container().await.unwrap(), "already there");
    let page = store.list_page("", None).await.unwrap();
    assert!(page.objects.is_empty() && page.next.is_none());
    // the default bucket exists and is ours too
    let default = garage_store(g, &g.default_bucket, "").await;
    assert!(!default.ensure_container().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_wrong_credentials() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let url = s3_url(&g.url(&g.default_bucket, ""));
    for (ak, sk) in [
        (
            g.access_key.as_str(),
            "0000000000000000000000000000000000000000",
        ),
        ("GKffffffffffffffffffffffff", g.secret_key.as_str()),
    ] {
        let opts = S3Options::default().with_static_credentials(ak, sk);
        let store = S3Store::connect(url.clone(), opts).await.unwrap();
        let e = store.list_page("", None).await.expect_err("refused");
        let text = e.to_string();
        eprintln!("{text}");
        assert_eq!(e.kind, StoreErrorKind::Credentials, "{text}");
        for want in [
            g.endpoint.as_str(),
            g.default_bucket.as_str(),
            "credentials",
        ] {
            assert!(text.contains(want), "missing {want:?} in: {text}");
        }
        assert!(
            !text.contains(&g.secret_key),
            "never print the secret: {text}"
        );
        // A GET with bad credentials is an error, not "missing", when the server says so.
        let e = store.get("nix-cache-info").await.expect_err("refused");
        assert_eq!(e.kind, StoreErrorKind::Credentials, "{e}");
    }
}

/// Nix's rule: a 403 on GET/HEAD means "missing"; a 403 on listing is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_forbidden_reads_count_as_missing() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let bucket = g.fresh_bucket();
    let owner = garage_store(g, &bucket, "").await;
    owner
        .put("secret.narinfo", "StorePath: x\n".into(), &plain())
        .await
        .unwrap();
    let (id, secret) = g.unprivileged_key();
    let opts = S3Options::default().with_static_credentials(id, secret);
    let stranger = S3Store::connect(s3_url(&g.url(&bucket, "")), opts)
        .await
        .unwrap();
    assert!(stranger.get("secret.narinfo").await.unwrap().is_none());
    assert!(stranger.head("secret.narinfo").await.unwrap().is_none());
    assert!(
        stranger
            .get_reader("secret.narinfo")
            .await
            .unwrap()
            .is_none()
    );
    let e = stranger
        .list_page("", None)
        .await
        .expect_err("listing is refused");
    eprintln!("{e}");
    assert_eq!(e.kind, StoreErrorKind::AccessDenied, "{e}");
    let text = e.to_string();
    for want in [
        "access denied",
        "s3:ListBucket",
        bucket.as_str(),
        g.endpoint.as_str(),
    ] {
        assert!(text.contains(want), "missing {want:?} in: {text}");
    }
    let e = stranger
        .put("new.narinfo", "x".into(), &plain())
        .await
        .expect_err("no write permission");
    assert_eq!(e.kind, StoreErrorKind::AccessDenied, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_wrong_credentials_and_missing_bucket() {
    let srv = common::s3s::start().await;
    let url = s3_url(&srv.url(""));
    let opts = S3Options::default().with_static_credentials(&srv.access_key, "not-the-secret");
    let store = S3Store::connect(url, opts).await.unwrap();
    let e = store.list_page("", None).await.expect_err("refused");
    eprintln!("{e}");
    assert_eq!(e.kind, StoreErrorKind::Credentials, "{e}");
    let text = e.to_string();
    for want in [srv.endpoint.as_str(), srv.bucket.as_str(), "credentials"] {
        assert!(text.contains(want), "missing {want:?} in: {text}");
    }
    // GET with a bad signature is an error, never "missing"
    let e = store.get("nix-cache-info").await.expect_err("refused");
    assert_eq!(e.kind, StoreErrorKind::Credentials, "{e}");

    let missing = s3s_store(&srv, "no-such-bucket", "").await;
    let e = missing.list_page("", None).await.expect_err("no bucket");
    eprintln!("{e}");
    assert_eq!(e.kind, StoreErrorKind::NoSuchBucket, "{e}");
    assert!(
        e.to_string()
            .contains("bucket `no-such-bucket` does not exist"),
        "{e}"
    );
    assert!(e.to_string().contains("narscope init"), "{e}");
    // s3s-fs answers NoSuchKey here, AWS NoSuchBucket: either way nothing is returned
    match missing.get("x.narinfo").await {
        Ok(got) => assert!(got.is_none()),
        Err(e) => assert_eq!(e.kind, StoreErrorKind::NoSuchBucket, "{e}"),
    }
    assert!(missing.ensure_container().await.unwrap());
    assert!(srv.root.path().join("no-such-bucket").is_dir());
    assert!(
        missing
            .list_page("", None)
            .await
            .unwrap()
            .objects
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint() {
    let port = common::free_port();
    let url = s3_url(&format!(
        "s3://bkt?endpoint=http://127.0.0.1:{port}&region=us-east-1"
    ));
    let opts = S3Options::default().with_static_credentials("AKIDEXAMPLE", "secret-secret-secret");
    let store = S3Store::connect(url, opts).await.unwrap();
    let started = std::time::Instant::now();
    let e = store
        .list_page("", None)
        .await
        .expect_err("nothing listens");
    eprintln!("{e}");
    assert_eq!(e.kind, StoreErrorKind::Unreachable, "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("cannot reach endpoint http://127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.contains("s3://bkt"), "{text}");
    let e = store.head("x.narinfo").await.expect_err("HEAD fails too");
    assert_eq!(e.kind, StoreErrorKind::Unreachable, "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// The harness's anonymous website endpoint serves the default bucket over plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_website_serves_default_bucket() {
    use std::io::{Read, Write};
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let store = garage_store(g, &g.default_bucket, "").await;
    let key = format!("web-{}.txt", common::random_hex(4));
    store
        .put(&key, "served anonymously\n".into(), &plain())
        .await
        .unwrap();
    let hostport = g.web_url.trim_start_matches("http://").to_string();
    let response = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&hostport).unwrap();
        write!(s, "GET /{key} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    assert!(response.ends_with("served anonymously\n"), "{response}");
}

/// The lean path answers plain GETs, misses, PUTs and failed write conditions itself, byte- and
/// metadata-exact with the SDK, for keys that need percent-encoding and under a key prefix; the
/// SDK still does the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_lean_client_matches_the_sdk() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    let bucket = g.fresh_bucket();
    let lean = S3Store::connect(s3_url(&g.url(&bucket, "pre fix")), garage_opts(g))
        .await
        .unwrap();
    let mut sdk_opts = garage_opts(g);
    sdk_opts.lean_client = false;
    let sdk = S3Store::connect(s3_url(&g.url(&bucket, "pre fix")), sdk_opts)
        .await
        .unwrap();
    assert_eq!(sdk.lean_stats(), None);
    let keys = [
        "0123456789abcdfghijklmnpqrsvwxyz.narinfo",
        "nar/a b+c%d~é.nar",
        "log/x=y&z",
    ];
    for (i, k) in keys.iter().enumerate() {
        let body = Bytes::from(noise(1000 + i, i as u64));
        let put = lean.put(k, body.clone(), &plain()).await.unwrap();
        // Written by the lean PUT: the SDK reads the same bytes under the ETag it returned.
        let back = sdk.get(k).await.unwrap().expect("written");
        assert_eq!(back.bytes, body, "{k}");
        assert_eq!(put.etag, back.meta.etag, "{k}");
    }
    for k in keys {
        let a = lean.get(k).await.unwrap().expect("found by the lean path");
        let b = sdk.get(k).await.unwrap().expect("found by the SDK");
        assert_eq!(a.bytes, b.bytes, "{k}");
        assert_eq!(a.meta, b.meta, "{k}");
    }
    assert!(lean.get("missing.narinfo").await.unwrap().is_none());
    let s = lean.lean_stats().unwrap();
    assert_eq!((s.answered, s.fallbacks, s.enabled), (7, 0, true), "{s:?}");
    // NARs are listed exactly once by the parallel scans under nar/.
    let mut want = all_keys(&(Arc::new(sdk) as Arc<dyn Store>), "nar/").await;
    want.sort();
    assert_eq!(nar_keys_parallel(Arc::new(lean), 8).await, want);
}

#[tokio::test]
async fn parallel_listing_under_a_directory_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path()));
    let mut keys: Vec<String> = Vec::new();
    for c in "0az~!Aeotu.-".chars() {
        keys.push(format!("nar/{c}{}.nar.xz", common::random_hex(6)));
    }
    keys.push("nar/sub/deep.nar".into());
    keys.push("narinfo-not-in-nar.narinfo".into());
    put_many(&store, &keys).await;
    let got = nar_keys_parallel(store.clone(), 4).await;
    let mut want: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("nar/"))
        .cloned()
        .collect();
    want.sort();
    assert_eq!(got, want);
}
