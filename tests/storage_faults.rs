//! The S3 backend under network faults: real Garage (or s3s-fs) behind the fault-injecting
//! proxy of `common::faults`. Every request kind retries transient faults, a broken NAR stream
//! resumes (never splicing a replaced object), whole-object GETs check bodies against MD5
//! ETags, a store that fails everything gives up promptly, and messages name the key and the
//! kind of fault without Rust `Debug` dumps.

use crate::common;

use bytes::Bytes;
use common::Garage;
use common::faults::{Cut, Fault, FaultKind, FaultProxy, Rule};
use futures::StreamExt;
use narscope::storage::retry::RetryPolicy;
use narscope::storage::s3::{S3Options, S3Store};
use narscope::storage::{
    CacheUrl, PutCondition, PutOptions, S3Url, Store, StoreError, StoreErrorKind,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const MIB: usize = 1024 * 1024;
/// Timeouts of the stores under test, and a delay that exceeds them.
const TIMEOUT: Duration = Duration::from_millis(400);
const LONG_DELAY: Duration = Duration::from_millis(900);

fn s3_url(s: &str) -> S3Url {
    match CacheUrl::parse(s) {
        Ok(CacheUrl::S3(u)) => u,
        other => panic!("{s}: {other:?}"),
    }
}

fn url_at(endpoint: &str, bucket: &str) -> S3Url {
    s3_url(&format!(
        "s3://{bucket}?endpoint={endpoint}&region=us-east-1&addressing-style=path"
    ))
}

/// Short backoff and timeouts, so that a test runs in seconds; a small multipart threshold.
fn opts(lean: bool) -> S3Options {
    let mut o = S3Options::default().with_multipart(MIB as u64, 5 * MIB as u64);
    o.lean_client = lean;
    o.metadata_timeout = TIMEOUT;
    o.transfer_timeout = TIMEOUT;
    o.retry = RetryPolicy {
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(40),
        ..RetryPolicy::default()
    };
    o
}

/// A bucket on Garage, a proxy in front of it, stores through the proxy (lean client on and
/// off) and one straight to Garage (to set up and check).
struct Env {
    proxy: FaultProxy,
    lean: S3Store,
    sdk: S3Store,
    direct: S3Store,
}

async fn env() -> Option<Env> {
    let g = Garage::try_shared()?;
    let bucket = g.fresh_bucket();
    let proxy = FaultProxy::start(&g.endpoint).await;
    let connect = |endpoint: String, lean: bool| {
        let bucket = bucket.clone();
        async move {
            let opts = opts(lean).with_static_credentials(&g.access_key, &g.secret_key);
            S3Store::connect(url_at(&endpoint, &bucket), opts)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    Some(Env {
        lean: connect(proxy.endpoint().to_string(), true).await,
        sdk: connect(proxy.endpoint().to_string(), false).await,
        direct: connect(g.endpoint.clone(), false).await,
        proxy,
    })
}

fn plain() -> PutOptions {
    PutOptions::default()
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u64) -> Bytes {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    Bytes::from(v)
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Messages for people: no Rust Debug dumps, no "unexpected answer … HTTP 200".
fn assert_readable(text: &str) {
    for bad in ["Error {", "kind:", "Some(", "unexpected answer", "HTTP 200"] {
        assert!(!text.contains(bad), "{bad:?} in: {text}");
    }
}

/// The request kinds of S3Store, with the proxy rule that picks their requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    List,
    Get,
    GetSdk,
    Stream,
    Head,
    Put,
    PutSdk,
    PutFile,
    MultipartCreate,
    MultipartPart,
    MultipartComplete,
    Delete,
}

const OPS: [Op; 12] = [
    Op::List,
    Op::Get,
    Op::GetSdk,
    Op::Stream,
    Op::Head,
    Op::Put,
    Op::PutSdk,
    Op::PutFile,
    Op::MultipartCreate,
    Op::MultipartPart,
    Op::MultipartComplete,
    Op::Delete,
];

impl Op {
    /// A rule for this operation's request on `key` (path style: `/bucket/key?…`).
    fn rule(self, key: &str, fault: Fault) -> Rule {
        let r = Rule::new(fault);
        match self {
            Op::List => r.method("GET").path("list-type=2"),
            Op::Get | Op::GetSdk | Op::Stream => r.method("GET").path(&format!("*/{key}*")),
            Op::Head => r.method("HEAD").path(&format!("*/{key}*")),
            Op::Put | Op::PutSdk | Op::PutFile => r.method("PUT").path(&format!("*/{key}*")),
            Op::MultipartCreate => r.method("POST").path(&format!("*/{key}?uploads*")),
            Op::MultipartPart => r.method("PUT").path(&format!("*/{key}?*partNumber=*")),
            Op::MultipartComplete => r.method("POST").path(&format!("*/{key}?*uploadId=*")),
            Op::Delete => r.method("POST").path("*?delete*"),
        }
    }

    /// Whether the answer has a body (body faults apply).
    fn answer_has_body(self) -> bool {
        matches!(
            self,
            Op::List
                | Op::Get
                | Op::GetSdk
                | Op::Stream
                | Op::MultipartCreate
                | Op::MultipartComplete
                | Op::Delete
        )
    }

    /// Runs the operation on `key` through the proxy and checks the result against Garage.
    async fn run(self, env: &Env, key: &str, seed: u64) -> Result<(), String> {
        let body = noise(3000 + (seed as usize % 1000), seed);
        let direct = &env.direct;
        let err = |e: StoreError| e.to_string();
        match self {
            Op::List => {
                let keys: Vec<String> = (0..3).map(|i| format!("{key}/{i}")).collect();
                for k in &keys {
                    direct.put(k, body.clone(), &plain()).await.map_err(err)?;
                }
                let page = env
                    .lean
                    .list_page(&format!("{key}/"), None)
                    .await
                    .map_err(err)?;
                let got: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
                if got != keys {
                    return Err(format!("listed {got:?}, want {keys:?}"));
                }
            }
            Op::Get | Op::GetSdk | Op::Stream | Op::Head => {
                direct.put(key, body.clone(), &plain()).await.map_err(err)?;
                let store = if self == Op::GetSdk {
                    &env.sdk
                } else {
                    &env.lean
                };
                let got = match self {
                    Op::Head => {
                        let m = store.head(key).await.map_err(err)?.ok_or("HEAD: missing")?;
                        if m.size != body.len() as u64 {
                            return Err(format!("HEAD says {} bytes", m.size));
                        }
                        return Ok(());
                    }
                    Op::Stream => {
                        let (_, mut r) = store
                            .get_reader(key)
                            .await
                            .map_err(err)?
                            .ok_or("stream: missing")?;
                        let mut v = Vec::new();
                        r.read_to_end(&mut v).await.map_err(|e| e.to_string())?;
                        Bytes::from(v)
                    }
                    _ => {
                        store
                            .get(key)
                            .await
                            .map_err(err)?
                            .ok_or("GET: missing")?
                            .bytes
                    }
                };
                if got != body {
                    return Err(format!(
                        "read {} bytes, not the {} written",
                        got.len(),
                        body.len()
                    ));
                }
            }
            Op::Put | Op::PutSdk | Op::PutFile => {
                match self {
                    Op::Put => env.lean.put(key, body.clone(), &plain()).await,
                    Op::PutSdk => env.sdk.put(key, body.clone(), &plain()).await,
                    _ => {
                        let f = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
                        std::fs::write(f.path(), &body).map_err(|e| e.to_string())?;
                        env.lean.put_file(key, f.path(), &plain()).await
                    }
                }
                .map_err(err)?;
                let got = direct.get(key).await.map_err(err)?.ok_or("not written")?;
                if got.bytes != body {
                    return Err("wrong bytes written".into());
                }
            }
            Op::MultipartCreate | Op::MultipartPart | Op::MultipartComplete => {
                // Above the 1 MiB threshold: one part of 1.5 MiB.
                let body = noise(MIB + MIB / 2, seed);
                let f = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
                std::fs::write(f.path(), &body).map_err(|e| e.to_string())?;
                let m = env
                    .lean
                    .put_file(key, f.path(), &plain())
                    .await
                    .map_err(err)?;
                let got = direct.get(key).await.map_err(err)?.ok_or("not written")?;
                if got.bytes != body {
                    return Err("wrong bytes written".into());
                }
                if !got.meta.etag.as_deref().unwrap_or_default().contains('-') {
                    return Err(format!("not a multipart upload: ETag {:?}", got.meta.etag));
                }
                if m.etag != got.meta.etag {
                    return Err(format!("ETag {:?}, stored {:?}", m.etag, got.meta.etag));
                }
            }
            Op::Delete => {
                let keys: Vec<String> = (0..3).map(|i| format!("{key}/{i}")).collect();
                for k in &keys {
                    direct.put(k, body.clone(), &plain()).await.map_err(err)?;
                }
                let report = env.lean.delete_many(&keys).await.map_err(err)?;
                if !report.failed.is_empty() {
                    return Err(format!("failed: {:?}", report.failed));
                }
                for k in &keys {
                    if direct.head(k).await.map_err(err)?.is_some() {
                        return Err(format!("{k} is still there"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every request kind survives every fault kind: the first matching request fails, the
/// retry succeeds, and the bytes in the end are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_kind_survives_every_fault_kind() {
    let Some(env) = env().await else {
        return;
    };
    // The MD5 check of streamed bodies is on once a whole-object GET has confirmed that this
    // bucket's ETags are MD5s.
    env.direct
        .put("warm-up", noise(100, 1), &plain())
        .await
        .unwrap();
    env.lean
        .get("warm-up")
        .await
        .unwrap()
        .expect("warm-up object");
    let faults = [
        Fault::Status(500),
        Fault::Status(503),
        Fault::Status(429),
        Fault::Status(502),
        Fault::Reset,
        Fault::ResetAfterForward,
        Fault::ResetMidBody(Cut::Half),
        Fault::TruncateKeepLength(Cut::Half),
        Fault::TruncateFixLength(Cut::Half),
        Fault::Delay(LONG_DELAY),
    ];
    let mut failures = Vec::new();
    let mut cases = 0;
    for (i, op) in OPS.into_iter().enumerate() {
        for (j, fault) in faults.iter().enumerate() {
            let body_fault = matches!(
                fault,
                Fault::ResetMidBody(_) | Fault::TruncateKeepLength(_) | Fault::TruncateFixLength(_)
            );
            if body_fault && !op.answer_has_body() {
                continue;
            }
            cases += 1;
            let key = format!("case-{i}-{j}");
            env.proxy.reset_counters();
            env.proxy
                .set_rules(vec![op.rule(&key, fault.clone()).first()]);
            let res = op.run(&env, &key, (i * 100 + j) as u64).await;
            env.proxy.clear();
            let injected = env.proxy.injected().total();
            match res {
                Ok(()) if injected == 1 => {}
                Ok(()) => failures.push(format!("{op:?} / {fault:?}: {injected} faults injected")),
                Err(e) => failures.push(format!("{op:?} / {fault:?}: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed (seed {}):\n{}",
        failures.len(),
        env.proxy.seed(),
        failures.join("\n")
    );
}

/// A NAR stream whose connection breaks mid-way resumes where it broke and returns exactly the
/// object's bytes; the resume is a ranged GET conditional on the ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_stream_resumes_at_the_offset() {
    let Some(env) = env().await else {
        return;
    };
    let key = "nar/resume.nar.zst";
    let body = noise(2 * MIB + 77, 7);
    let put = env.direct.put(key, body.clone(), &plain()).await.unwrap();
    for fault in [
        Fault::ResetMidBody(Cut::At(300_000)),
        Fault::TruncateKeepLength(Cut::At(1_000_000)),
    ] {
        env.proxy.reset_counters();
        // The first GET breaks, and so does the first resume.
        env.proxy.set_rules(vec![
            Rule::new(fault.clone()).method("GET").path(key).at_most(2),
        ]);
        let (meta, mut r) = env.lean.get_reader(key).await.unwrap().expect("present");
        assert_eq!(meta.size, body.len() as u64);
        let mut got = Vec::new();
        r.read_to_end(&mut got)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert!(
            got == body,
            "{fault:?}: {} bytes, not the object's bytes",
            got.len()
        );
        assert_eq!(env.proxy.injected().total(), 2, "{fault:?}");
        let gets: Vec<_> = env.proxy.requests();
        assert_eq!(gets.len(), 3, "{gets:?}");
        assert_eq!(gets[0].range, None);
        for resumed in &gets[1..] {
            let range = resumed.range.as_deref().unwrap_or_default();
            assert!(
                range.starts_with("bytes=") && range.ends_with('-'),
                "{range}"
            );
            assert_eq!(resumed.if_match, put.etag, "{gets:?}");
        }
        assert_eq!(
            gets[1].range.as_deref(),
            Some(match fault {
                Fault::ResetMidBody(_) => "bytes=300000-",
                _ => "bytes=1000000-",
            })
        );
    }
}

/// If the object is replaced between the break and the resume, the read fails with a
/// transport error naming the key: the new object's bytes are never spliced onto the old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_object_is_never_spliced() {
    let Some(env) = env().await else {
        return;
    };
    let key = "nar/replaced.nar.xz";
    let old = noise(MIB, 1);
    env.direct.put(key, old.clone(), &plain()).await.unwrap();
    let cut = 200_000;
    env.proxy.set_rules(vec![
        Rule::new(Fault::ResetMidBody(Cut::At(cut)))
            .method("GET")
            .path(key)
            .first(),
    ]);
    let (_, mut r) = env.lean.get_reader(key).await.unwrap().expect("present");
    let mut first = vec![0u8; cut];
    r.read_exact(&mut first).await.unwrap();
    assert_eq!(first, old[..cut]);
    // The connection has broken after these bytes; replace the object before reading on.
    env.direct.put(key, noise(MIB, 2), &plain()).await.unwrap();
    let mut rest = Vec::new();
    let e = r
        .read_to_end(&mut rest)
        .await
        .expect_err("the object changed");
    let text = e.to_string();
    eprintln!("{text}");
    assert!(
        rest.is_empty(),
        "{} bytes of the new object spliced on",
        rest.len()
    );
    assert!(text.contains(key), "{text}");
    assert!(text.contains("changed"), "{text}");
    assert!(!text.contains("this request wrote"), "{text}");
    assert!(
        text.contains(&format!("after {cut} of {} bytes", MIB)),
        "{text}"
    );
    assert_readable(&text);
    assert!(narscope::storage::is_transport_fault(&e), "{text}");
}

/// A narinfo body cut short with a fixed Content-Length looks fine at the HTTP level; the MD5
/// of the body against the ETag catches it, and the GET is retried (lean client and SDK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_with_fixed_length_is_detected_and_retried() {
    let Some(env) = env().await else {
        return;
    };
    let key = "0123456789abcdfghijklmnpqrsvwxyz.narinfo";
    let body = Bytes::from(
        "StorePath: /nix/store/0123456789abcdfghijklmnpqrsvwxyz-x\nURL: nar/a.nar\n\
         References: 0123456789abcdfghijklmnpqrsvwxyz-x aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-y\n",
    );
    let put = env.direct.put(key, body.clone(), &plain()).await.unwrap();
    // Garage's ETag of a single-part PUT is the MD5 of the body.
    assert_eq!(
        put.etag.as_deref(),
        Some(format!("\"{}\"", md5_hex(&body)).as_str())
    );
    for store in [&env.lean, &env.sdk] {
        env.proxy.reset_counters();
        env.proxy.set_rules(vec![
            Rule::new(Fault::TruncateFixLength(Cut::Half))
                .method("GET")
                .path(key)
                .first(),
        ]);
        let got = store.get(key).await.unwrap().expect("present");
        assert_eq!(got.bytes, body, "lean: {}", store.lean_stats().is_some());
        assert_eq!(env.proxy.injected().get(FaultKind::TruncateFixLength), 1);
        assert_eq!(env.proxy.requests().len(), 2);
    }
    // A stream cut short the same way resumes once the bucket's ETags proved to be MD5s (the
    // GETs above), unless stream checks are off.
    let g = Garage::shared();
    let mut unchecked = opts(true).with_static_credentials(&g.access_key, &g.secret_key);
    unchecked.verify_streams = false;
    let unchecked = S3Store::connect(
        url_at(env.proxy.endpoint(), env.lean.url().bucket.as_str()),
        unchecked,
    )
    .await
    .unwrap();
    unchecked.get(key).await.unwrap().expect("present");
    for (store, want) in [
        (&env.lean, body.clone()),
        (&unchecked, body.slice(..body.len() / 2)),
    ] {
        env.proxy.reset_counters();
        env.proxy.set_rules(vec![
            Rule::new(Fault::TruncateFixLength(Cut::Half))
                .method("GET")
                .path(key)
                .first(),
        ]);
        let (_, mut r) = store.get_reader(key).await.unwrap().expect("present");
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, want);
        assert_eq!(env.proxy.injected().get(FaultKind::TruncateFixLength), 1);
    }
}

/// Where ETags are not MD5s (SSE-KMS, SSE-C, some providers), two identical bodies that do
/// not match their ETag are accepted, and the check is off for the rest of the store's life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_that_are_not_md5s_turn_the_check_off() {
    let Some(env) = env().await else {
        return;
    };
    let body = noise(500, 3);
    for k in ["a.narinfo", "b.narinfo"] {
        env.direct.put(k, body.clone(), &plain()).await.unwrap();
    }
    env.proxy.set_rules(vec![
        Rule::new(Fault::RewriteEtag(format!("\"{}\"", "ab".repeat(16)))).method("GET"),
    ]);
    let gets = |p: &FaultProxy| p.requests().iter().filter(|r| r.method == "GET").count();
    let got = env.lean.get("a.narinfo").await.unwrap().expect("present");
    assert_eq!(got.bytes, body);
    // The same bytes twice, and a HEAD shows they are all there: the ETag is no MD5.
    assert_eq!(gets(&env.proxy), 2, "read twice, then accepted");
    assert_eq!(env.proxy.requests().len(), 3, "{:?}", env.proxy.requests());
    env.proxy.reset_counters();
    let got = env.lean.get("b.narinfo").await.unwrap().expect("present");
    assert_eq!(got.bytes, body);
    assert_eq!(env.proxy.requests().len(), 1, "the check is off");
}

/// At a 20% fault rate on every method (every fault kind), a few hundred mixed requests all
/// succeed, with the right bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_requests_at_a_20_percent_fault_rate_all_succeed() {
    let Some(env) = env().await else {
        return;
    };
    let started = Instant::now();
    let n = 60;
    let bodies: Vec<Bytes> = (0..n).map(|i| noise(200 + i * 37, i as u64)).collect();
    let key = |i: usize| format!("mix/{i:03}.narinfo");
    env.proxy.set_rules(vec![
        Rule::new(Fault::every_kind(Duration::from_millis(30))).probability(0.2),
    ]);
    let env = Arc::new(env);
    let bodies = Arc::new(bodies);
    let mut requests = 0;
    // PUT (lean and SDK), then GET, stream, HEAD, list, delete half, check.
    let results: Vec<Result<(), String>> = futures::stream::iter(0..n)
        .map(|i| {
            let env = env.clone();
            let bodies = bodies.clone();
            async move {
                let store = if i % 2 == 0 { &env.lean } else { &env.sdk };
                let b = bodies[i].clone();
                store
                    .put(&key(i), b.clone(), &plain())
                    .await
                    .map_err(|e| e.to_string())?;
                let got = store.get(&key(i)).await.map_err(|e| e.to_string())?;
                if got.map(|g| g.bytes) != Some(b.clone()) {
                    return Err(format!("GET {}: wrong bytes", key(i)));
                }
                let (_, mut r) = store
                    .get_reader(&key(i))
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("stream: missing")?;
                let mut v = Vec::new();
                r.read_to_end(&mut v).await.map_err(|e| e.to_string())?;
                if v != b {
                    return Err(format!("stream {}: wrong bytes", key(i)));
                }
                let h = store.head(&key(i)).await.map_err(|e| e.to_string())?;
                if h.map(|m| m.size) != Some(b.len() as u64) {
                    return Err(format!("HEAD {}: wrong size", key(i)));
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    requests += 4 * n;
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failed.is_empty(), "seed {}: {failed:#?}", env.proxy.seed());
    // Listing in pages of 7 (9 pages), several times.
    for _ in 0..5 {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = env
                .lean
                .list_page_with(
                    "mix/",
                    token,
                    &narscope::storage::ListOptions {
                        max_keys: Some(7),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("seed {}: {e}", env.proxy.seed()));
            requests += 1;
            keys.extend(page.objects.into_iter().map(|o| o.key));
            token = page.next;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(keys, (0..n).map(key).collect::<Vec<_>>());
    }
    // Delete in batches of one key each (many DeleteObjects requests).
    for i in (0..n).step_by(2) {
        let r = env
            .sdk
            .delete_many(&[key(i)])
            .await
            .unwrap_or_else(|e| panic!("seed {}: {e}", env.proxy.seed()));
        assert!(r.failed.is_empty(), "{:?}", r.failed);
        requests += 1;
    }
    let injected = env.proxy.injected();
    env.proxy.clear();
    for i in 0..n {
        let there = env.direct.head(&key(i)).await.unwrap().is_some();
        assert_eq!(there, i % 2 == 1, "{}", key(i));
    }
    eprintln!(
        "{requests} requests, {} faults injected ({injected:?}) in {:?}",
        injected.total(),
        started.elapsed()
    );
    assert!(requests >= 300);
    assert!(injected.total() >= 40, "{injected:?}");
    // (Each kind alone is rare enough to be missing now and then; every_request_kind_…
    // covers each one on purpose.)
    assert!(injected.get(FaultKind::Status) > 0, "{injected:?}");
    assert!(injected.get(FaultKind::Reset) > 0, "{injected:?}");
    let body_faults = injected.get(FaultKind::ResetMidBody)
        + injected.get(FaultKind::TruncateKeepLength)
        + injected.get(FaultKind::TruncateFixLength);
    assert!(body_faults > 0, "{injected:?}");
}

/// Per-key transient errors inside a DeleteObjects answer are retried for those keys only;
/// a per-key permanent error is reported for its key and not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_retries_the_keys_the_server_could_not_delete_yet() {
    let Some(env) = env().await else {
        return;
    };
    let result = |errors: &[(&str, &str)]| {
        let errors: String = errors
            .iter()
            .map(|(k, code)| {
                format!(
                    "<Error><Key>{k}</Key><Code>{code}</Code><Message>injected</Message></Error>"
                )
            })
            .collect();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{errors}</DeleteResult>"
        )
    };
    let posts = |p: &FaultProxy| p.requests().iter().filter(|r| r.method == "POST").count();
    let keys: Vec<String> = (0..3).map(|i| format!("del/{i}")).collect();
    for k in &keys {
        env.direct.put(k, noise(10, 1), &plain()).await.unwrap();
    }
    env.proxy.set_rules(vec![
        Rule::new(Fault::ReplaceBody(result(&[
            ("del/1", "InternalError"),
            ("del/2", "SlowDown"),
        ])))
        .method("POST")
        .path("*?delete*")
        .first(),
    ]);
    let mut report = env.lean.delete_many(&keys).await.unwrap();
    report.deleted.sort();
    assert_eq!(report.deleted, keys);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(posts(&env.proxy), 2, "one retry, for two keys");
    for k in &keys {
        assert!(env.direct.head(k).await.unwrap().is_none(), "{k}");
    }
    env.proxy.reset_counters();
    env.proxy.set_rules(vec![
        Rule::new(Fault::ReplaceBody(result(&[("del/1", "AccessDenied")])))
            .method("POST")
            .path("*?delete*"),
    ]);
    let report = env.lean.delete_many(&keys).await.unwrap();
    assert_eq!(posts(&env.proxy), 1, "not retried");
    assert_eq!(report.deleted.len(), 2);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "del/1");
    assert!(
        report.failed[0].1.contains("AccessDenied"),
        "{:?}",
        report.failed
    );
}

/// When every request fails, requests give up within bounded time, the store's retry budget
/// stops the hammering, and the messages name the key and the fault in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_failing_stops_promptly_with_clear_messages() {
    let Some(env) = env().await else {
        return;
    };
    let policy = RetryPolicy::default();
    env.direct
        .put("there.narinfo", noise(300, 1), &plain())
        .await
        .unwrap();
    // The store has talked to the endpoint before the faults begin.
    env.lean.head("there.narinfo").await.unwrap();
    for (fault, words) in [
        (Fault::Status(500), "server error"),
        (Fault::Status(503), "throttl"),
        (Fault::Reset, "connection"),
        (Fault::ResetMidBody(Cut::Half), "connection"),
        (Fault::TruncateFixLength(Cut::Half), "transport"),
    ] {
        env.proxy.reset_counters();
        env.proxy
            .set_rules(vec![Rule::new(fault.clone()).method("GET")]);
        let e = env
            .lean
            .get("there.narinfo")
            .await
            .expect_err("always fails");
        let text = e.to_string();
        eprintln!("{fault:?}: {text}");
        assert!(e.is_transient(), "{text}");
        assert!(text.contains("`there.narinfo`"), "{text}");
        assert!(text.to_lowercase().contains(words), "{words:?} in: {text}");
        assert!(!text.contains("check endpoint="), "{text}");
        assert_readable(&text);
        assert!(text.contains("attempts"), "{text}");
    }
    // A listing whose body is always cut short says so.
    env.proxy.set_rules(vec![
        Rule::new(Fault::TruncateFixLength(Cut::Half)).method("GET"),
    ]);
    let e = env.lean.list_page("", None).await.expect_err("always cut");
    let text = e.to_string();
    eprintln!("{text}");
    assert_eq!(e.kind, StoreErrorKind::Interrupted, "{text}");
    assert!(
        text.contains("cut short") && text.contains("listing"),
        "{text}"
    );
    assert_readable(&text);
    // A failing batch delete names its keys.
    env.proxy.set_rules(vec![Rule::new(Fault::Status(500))]);
    let keys: Vec<String> = (0..40).map(|i| format!("gone/{i:02}.narinfo")).collect();
    let e = env.lean.delete_many(&keys).await.expect_err("fails");
    let text = e.to_string();
    eprintln!("{text}");
    assert!(
        text.contains("`gone/00.narinfo`") && text.contains("40 keys"),
        "{text}"
    );
    assert!(text.contains("server error"), "{text}");
    assert_readable(&text);

    // Every method fails now. Many requests at once: the budget runs dry and the rest fail
    // at once, instead of each retrying to its limit.
    env.proxy.reset_counters();
    // (Body faults only where answers have bodies: a HEAD or a PUT would pass them.)
    let always = vec![
        Fault::Status(500),
        Fault::Status(503),
        Fault::Status(429),
        Fault::Reset,
        Fault::ResetAfterForward,
    ];
    let mut on_bodies = always.clone();
    on_bodies.extend([
        Fault::ResetMidBody(Cut::Half),
        Fault::TruncateKeepLength(Cut::Half),
        Fault::TruncateFixLength(Cut::Half),
    ]);
    env.proxy.set_rules(vec![
        Rule::new(Fault::AnyOf(on_bodies)).method("GET"),
        Rule::new(Fault::AnyOf(always)),
    ]);
    let started = Instant::now();
    let n = 200;
    let errors: Vec<StoreError> = futures::stream::iter(0..n)
        .map(|i| {
            let store = &env.lean;
            async move {
                let key = format!("k{i}.narinfo");
                let r = match i % 4 {
                    0 => store.get("there.narinfo").await.map(|_| ()),
                    1 => store.head(&key).await.map(|_| ()),
                    2 => store.put(&key, noise(100, i), &plain()).await.map(|_| ()),
                    _ => store.list_page(&key, None).await.map(|_| ()),
                };
                r.expect_err("every request fails")
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let sent = env.proxy.requests().len();
    eprintln!("{n} requests failed after {sent} attempts in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    assert!(
        sent < n as usize * policy.max_attempts as usize / 3,
        "{sent} attempts for {n} requests: the retry budget did not stop the retries"
    );
    let exhausted = errors
        .iter()
        .filter(|e| e.to_string().contains("retry budget"))
        .count();
    assert!(exhausted > n as usize / 2, "{exhausted} of {n}");
    for (i, e) in errors.iter().enumerate() {
        let text = e.to_string();
        assert_readable(&text);
        assert!(!text.contains("check endpoint="), "{text}");
        let lower = text.to_lowercase();
        assert!(
            [
                "transport",
                "connection",
                "server error",
                "throttl",
                "did not answer"
            ]
            .iter()
            .any(|w| lower.contains(w)),
            "{i}: {text}"
        );
    }
}

/// A conditional PUT whose answer was lost is retried; the retry finds the object it wrote
/// itself and fails its condition: callers see PreconditionFailed ("someone else wrote it"),
/// and the object holds the bytes written. (s3s-fs: Garage ignores If-None-Match.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_put_with_a_lost_answer_reports_a_failed_condition() {
    let srv = common::s3s::start().await;
    let proxy = FaultProxy::start(&srv.endpoint).await;
    for lean in [true, false] {
        let o = opts(lean).with_static_credentials(&srv.access_key, &srv.secret_key);
        let store = S3Store::connect(url_at(proxy.endpoint(), &srv.bucket), o)
            .await
            .unwrap();
        let key = format!("cas-{lean}.narinfo");
        proxy.reset_counters();
        proxy.set_rules(vec![
            Rule::new(Fault::ResetAfterForward)
                .method("PUT")
                .path(&key)
                .first(),
        ]);
        let body = noise(200, 9);
        let create = PutOptions {
            content_type: None,
            condition: PutCondition::IfNoneMatch,
            ..PutOptions::default()
        };
        let e = store
            .put(&key, body.clone(), &create)
            .await
            .expect_err("412 on the retry");
        eprintln!("{e}");
        assert!(e.is_precondition_failed(), "{e}");
        assert!(
            e.to_string().contains("may be the one this request wrote"),
            "{e}"
        );
        assert_eq!(proxy.injected().get(FaultKind::ResetAfterForward), 1);
        proxy.clear();
        assert_eq!(store.get(&key).await.unwrap().expect("written").bytes, body);
    }
}

/// A refused first connection is not retried at length, and keeps its endpoint advice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_first_connection_fails_fast_with_endpoint_advice() {
    let port = common::free_port();
    let store = S3Store::connect(url_at(&format!("http://127.0.0.1:{port}"), "bkt"), {
        let mut o = opts(true).with_static_credentials("AKIDEXAMPLE", "secret-secret-secret");
        o.retry = RetryPolicy::default();
        o
    })
    .await
    .unwrap();
    let started = Instant::now();
    let e = store.get("x.narinfo").await.expect_err("nothing listens");
    let text = e.to_string();
    eprintln!("{text}");
    assert_eq!(e.kind, StoreErrorKind::Unreachable);
    assert!(text.contains("check endpoint="), "{text}");
    assert!(text.contains("`x.narinfo`"), "{text}");
    assert_readable(&text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
