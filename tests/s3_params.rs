//! S3 object parameters on a real Garage, read back by real Nix 2.8 and by narscope:
//! narinfos and `.ls` listings stored compressed with `Content-Encoding`
//! (`narinfo-compression=`, `ls-compression=`) are substituted by Nix over Garage's website
//! endpoint and read by `ls`, `verify`, `show`, `sign` and the dashboard's detail loader;
//! `storage-class=` travels on every PUT and multipart create; `multipart-threshold=` and
//! `multipart-chunk-size=` force a multipart upload of a NAR that reads back intact;
//! `storage-class=GLACIER` warns once; a Content-Encoding narscope cannot undo is named.

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, RwLock};

use common::Garage;
use common::cmd::{ok, run};
use common::faults::FaultProxy;
use common::nix::{nix, nix_chain, skip_nix};
use narscope::nix::{PublicKey, TrustedKeys};
use narscope::storage::s3::{S3Options, S3Store};
use narscope::storage::{self, CacheUrl, PutCondition, PutOptions, Store};

/// The Garage of this test binary and a temp dir, or `None` when the Garage or Nix tests are
/// switched off.
fn setup(needs_nix: bool) -> Option<(&'static Garage, tempfile::TempDir)> {
    if needs_nix && skip_nix() {
        return None;
    }
    let g = Garage::try_shared()?;
    Some((g, tempfile::tempdir().unwrap()))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// narscope isolated under `root` ([`common::cmd::narscope`]) with Garage's credentials.
fn narscope(g: &Garage, root: &Path, args: &[&str]) -> Command {
    let mut c = common::cmd::narscope(args, root);
    c.envs(g.env());
    c
}

/// A fresh key pair made by `narscope keygen`: (secret key file, public key text).
fn keygen(g: &Garage, root: &Path, name: &str) -> (PathBuf, String) {
    common::nix::keygen_in(root, name, |args| {
        ok(narscope(g, root, args));
    })
}

/// The NAR hashes of `paths` as they are in the store.
fn nar_hashes(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            narscope::nar::dump_path(Path::new(p), std::io::sink())
                .unwrap()
                .hash_hex()
        })
        .collect()
}

fn hash_part(path: &str) -> String {
    let base = Path::new(path).file_name().unwrap().to_string_lossy();
    base[..32].to_string()
}

fn nar_of(path: &str) -> Vec<u8> {
    let mut nar = Vec::new();
    narscope::nar::dump_path(Path::new(path), &mut nar).unwrap();
    nar
}

fn s3_url(s: &str) -> storage::S3Url {
    match CacheUrl::parse(s) {
        Ok(CacheUrl::S3(u)) => u,
        other => panic!("{s}: {other:?}"),
    }
}

/// A store on `url` that never uses the lean client: every request goes through the SDK.
async fn sdk_only_store(g: &Garage, url: &str) -> Arc<dyn Store> {
    let u = s3_url(url);
    let mut opts =
        S3Options::from_params(&u.params).with_static_credentials(&g.access_key, &g.secret_key);
    opts.lean_client = false;
    Arc::new(S3Store::connect(u, opts).await.unwrap())
}

/// The AWS SDK on Garage, for raw HEADs.
fn sdk_client(g: &Garage) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&g.endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            &g.access_key,
            &g.secret_key,
            None,
            None,
            "s3-params-test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A plain HTTP GET (Garage's website endpoint): status, `Content-Encoding`, body as sent.
async fn http_get(url: &str) -> (u16, Option<String>, Vec<u8>) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let resp = client
        .get(url.parse().unwrap())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let ce = resp
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ce, body)
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .expect("brotli data");
    out
}

#[test]
fn encoded_narinfos_and_listings_are_substituted_by_nix_and_read_by_narscope() {
    let Some((g, dir)) = setup(true) else { return };
    let root = dir.path();
    let tag = common::random_hex(4);
    let paths = nix_chain(root, &format!("enc{tag}"), 2, 4);
    let (leaf, top) = (paths[0].clone(), paths[1].clone());
    let hashes_before = nar_hashes(&paths);
    let (sk, pk) = keygen(g, root, &format!("enc-{tag}"));
    let prefix = format!("enc{tag}");
    let enc_url = format!(
        "{}&narinfo-compression=zstd&ls-compression=br&write-nar-listing=true",
        g.url(&g.default_bucket, &prefix)
    );
    let out = ok(narscope(
        g,
        root,
        &["push", &enc_url, &top, "--key-file", sk.to_str().unwrap()],
    ));
    assert!(out.contains("2 uploaded"), "{out}");

    let r = rt();
    let cache = r.block_on(g.cache(&enc_url));
    // The push wrote the narinfos and the listings itself (Cache::put_object): the checks
    // below judge its objects. The expected listing is computed from the NAR here.
    let mut listings = Vec::new();
    for p in &paths {
        let (listing, _) = narscope::nar::listing::listing(&nar_of(p)[..]).unwrap();
        let json = narscope::nar::listing::listing_to_nix_json(&listing);
        listings.push(json);
    }

    // Raw reads, through the lean client and through the SDK: the bytes are stored encoded,
    // and the Content-Encoding header says how.
    let sdk_store = r.block_on(sdk_only_store(g, &enc_url));
    for (p, listing) in paths.iter().zip(&listings) {
        let h = hash_part(p);
        for store in [cache.store(), &sdk_store] {
            let ni = r
                .block_on(store.get(&format!("{h}.narinfo")))
                .unwrap()
                .unwrap();
            assert_eq!(ni.content_encoding.as_deref(), Some("zstd"), "{p}");
            assert!(ni.bytes.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]), "{p}: zstd");
            let plain = zstd::decode_all(&ni.bytes[..]).unwrap();
            let plain = String::from_utf8(plain).unwrap();
            assert!(plain.starts_with(&format!("StorePath: {p}\n")), "{plain}");
            let ls = r.block_on(store.get(&format!("{h}.ls"))).unwrap().unwrap();
            assert_eq!(ls.content_encoding.as_deref(), Some("br"), "{p}");
            assert_ne!(&ls.bytes[..], listing.as_bytes(), "{p}: stored compressed");
            assert_eq!(unbrotli(&ls.bytes), listing.as_bytes(), "{p}");
        }
        // Garage's website endpoint, where Nix reads, sends the header along.
        let (status, ce, body) =
            r.block_on(http_get(&format!("{}/{prefix}/{h}.narinfo", g.web_url)));
        assert_eq!((status, ce.as_deref()), (200, Some("zstd")), "{p}");
        assert!(body.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]), "{p}");
    }

    // narscope reads them: ls, verify (with the NARs), show.
    let out = ok(narscope(
        g,
        root,
        &["ls", &enc_url, "--trusted-key", &pk, "--json"],
    ));
    for p in &paths {
        assert!(out.contains(p.as_str()), "{p} in ls: {out}");
    }
    assert!(!out.contains("\"error\""), "{out}");
    let out = ok(narscope(
        g,
        root,
        &["verify", &enc_url, "--trusted-key", &pk, "--contents"],
    ));
    assert!(!out.contains("error") && !out.contains("corrupt"), "{out}");
    let out = ok(narscope(
        g,
        root,
        &["show", &enc_url, &top, "--trusted-key", &pk],
    ));
    assert!(out.contains(&top) && out.contains(&leaf), "{out}");

    // The dashboard's detail loader: the narinfo judged and the listing decoded.
    r.block_on(async {
        let cache = Arc::new(g.cache(&enc_url).await);
        let mut keys = TrustedKeys::new();
        keys.add(PublicKey::parse(&pk).unwrap());
        let keys = Arc::new(keys);
        let opened = narscope::index::scan::open_index(&enc_url, false);
        narscope::index::scan::scan(
            cache.clone(),
            opened.index.clone(),
            keys.clone(),
            narscope::index::scan::ScanOptions::default(),
            Arc::new(narscope::index::scan::ScanProgress::default()),
            Arc::new(|| {}),
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        let index: Arc<RwLock<_>> = opened.index.clone();
        let id = index.read().unwrap().find(&hash_part(&top)).expect("a row");
        let d = narscope::tui::pane::details::load::load(cache, index, keys, id).await;
        let info = d.info.as_ref().expect("the narinfo parses");
        assert_eq!(info.absolute_path(), top);
        assert_eq!(
            d.status,
            narscope::audit::Status::Trusted,
            "{:?}",
            d.reasons
        );
        let entries = d.listing.expect("a listing").expect("the listing decodes");
        let data = entries
            .iter()
            .find(|e| e.path == "/data")
            .unwrap_or_else(|| panic!("{entries:?}"));
        assert_eq!(data.size, Some(4096));
        assert!(entries.iter().any(|e| e.path == "/prev"), "{entries:?}");
    });

    // sign reads the encoded narinfos, and what it writes is read back by everyone.
    let (sk2, pk2) = keygen(g, root, &format!("enc2-{tag}"));
    ok(narscope(
        g,
        root,
        &[
            "sign",
            &enc_url,
            "--all",
            "--key-file",
            sk2.to_str().unwrap(),
        ],
    ));
    // sign rewrote them through the URL's narinfo-compression: still zstd-encoded.
    for p in &paths {
        let ni = r
            .block_on(cache.store().get(&format!("{}.narinfo", hash_part(p))))
            .unwrap()
            .unwrap();
        assert_eq!(ni.content_encoding.as_deref(), Some("zstd"), "{p}");
        let plain = String::from_utf8(zstd::decode_all(&ni.bytes[..]).unwrap()).unwrap();
        assert!(plain.contains(&format!("Sig: enc2-{tag}:")), "{plain}");
    }
    let out = ok(narscope(
        g,
        root,
        &["verify", &enc_url, "--trusted-key", &pk2, "--no-config"],
    ));
    assert!(!out.contains("error"), "{out}");

    // Nix 2.8 substitutes both paths over the website endpoint, decoding the narinfos.
    for p in [&top, &leaf] {
        let mut d = nix("nix-store", root);
        d.args(["--delete", p]);
        ok(d);
        assert!(!Path::new(p).exists(), "{p}");
    }
    let mut sub = nix("nix-store", root);
    sub.args([
        "-r",
        &top,
        "--option",
        "substituters",
        &format!("{}/{prefix}", g.web_url),
        "--option",
        "trusted-public-keys",
        &pk,
    ]);
    ok(sub);
    let hashes_after = nar_hashes(&paths);
    assert_eq!(hashes_after, hashes_before);
}

#[test]
fn an_encoding_narscope_cannot_undo_is_named() {
    let Some((g, dir)) = setup(false) else { return };
    let root = dir.path();
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    let key = "0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r.narinfo";
    rt().block_on(async {
        let store = g.open(&url).await;
        let opts = PutOptions {
            content_type: Some("text/x-nix-narinfo".into()),
            content_encoding: Some("compress".into()),
            ..PutOptions::default()
        };
        store
            .put(key, "StorePath: x\n".into(), &opts)
            .await
            .unwrap();
        let got = store.get(key).await.unwrap().unwrap();
        assert_eq!(got.content_encoding.as_deref(), Some("compress"));
    });
    let out = run(narscope(
        g,
        root,
        &["show", &url, "0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r"],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(key) && err.contains("unsupported Content-Encoding \"compress\""),
        "{err}"
    );
    let out = run(narscope(g, root, &["verify", &url]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("unsupported Content-Encoding \"compress\""),
        "{text}"
    );
}

/// Every request the proxy saw that writes an object (PutObject, CreateMultipartUpload).
fn object_writes(seen: &[common::faults::Seen]) -> Vec<&common::faults::Seen> {
    seen.iter()
        .filter(|s| {
            (s.method == "PUT" && !s.target.contains("partNumber="))
                || (s.method == "POST" && s.target.ends_with("?uploads"))
        })
        .collect()
}

#[test]
fn the_storage_class_travels_on_every_put_and_multipart_create() {
    let Some((g, dir)) = setup(false) else { return };
    let bucket = g.fresh_bucket();
    rt().block_on(async {
        let proxy = FaultProxy::start(&g.endpoint).await;
        let url = format!(
            "s3://{bucket}?endpoint={}&region=us-east-1&addressing-style=path\
             &storage-class=STANDARD&narinfo-compression=gzip&multipart-threshold=5242880\
             &multipart-chunk-size=5242880",
            proxy.endpoint()
        );
        let cache = g.cache(&url).await;
        let big = dir.path().join("big.nar");
        let small = dir.path().join("small.nar");
        std::fs::write(&big, vec![7u8; 6 * 1024 * 1024]).unwrap();
        std::fs::write(&small, b"small").unwrap();
        let key = "0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r.narinfo";
        cache
            .put_object(
                key,
                "StorePath: x\n".into(),
                "text/x-nix-narinfo",
                PutCondition::None,
            )
            .await
            .unwrap();
        let nar_opts = cache.put_options("application/x-nix-nar", PutCondition::None);
        let store = cache.store();
        store
            .put_file("nar/big.nar", &big, &nar_opts)
            .await
            .unwrap();
        store
            .put_file("nar/small.nar", &small, &nar_opts)
            .await
            .unwrap();
        // The SDK path of a small PUT, too.
        let sdk = sdk_only_store(g, &url).await;
        sdk.put("nar/sdk.nar", "sdk".into(), &nar_opts)
            .await
            .unwrap();

        let seen = proxy.requests();
        let writes = object_writes(&seen);
        assert_eq!(writes.len(), 4, "{seen:#?}");
        for w in &writes {
            assert_eq!(w.storage_class.as_deref(), Some("STANDARD"), "{w:?}");
        }
        let narinfo_put = writes
            .iter()
            .find(|w| w.target.ends_with(".narinfo"))
            .unwrap();
        assert_eq!(narinfo_put.content_encoding.as_deref(), Some("gzip"));
        assert!(
            writes
                .iter()
                .any(|w| w.method == "POST" && w.target.contains("/nar/big.nar")),
            "the big NAR went up in parts: {seen:#?}"
        );
        for w in writes.iter().filter(|w| w.target.contains("/nar/")) {
            assert_eq!(
                w.content_encoding, None,
                "NARs carry no Content-Encoding: {w:?}"
            );
        }

        // Garage keeps no storage classes (its S3 compatibility list has them unsupported):
        // HEAD reports none, so the request log above is what shows the class was sent.
        let client = sdk_client(g);
        for k in [key, "nar/big.nar", "nar/small.nar"] {
            let head = client
                .head_object()
                .bucket(&bucket)
                .key(k)
                .send()
                .await
                .unwrap();
            assert_eq!(head.storage_class(), None, "{k}");
            if k == key {
                assert_eq!(head.content_encoding(), Some("gzip"));
            }
        }
    });
}

#[test]
fn a_small_multipart_threshold_uploads_a_nar_in_parts_that_reads_back_intact() {
    let Some((g, dir)) = setup(true) else { return };
    let root = dir.path();
    let tag = common::random_hex(4);
    // 11 MiB of random bytes: in 5 MiB parts, a NAR of three parts.
    let paths = nix_chain(root, &format!("mp{tag}"), 1, 11 * 1024);
    let bucket = g.fresh_bucket();
    let url = format!(
        "{}&multipart-upload=true&multipart-threshold=5242880&multipart-chunk-size=5242880",
        g.url(&bucket, "")
    );
    let (sk, pk) = keygen(g, root, &format!("mp-{tag}"));
    let out = ok(narscope(
        g,
        root,
        &["push", &url, &paths[0], "--key-file", sk.to_str().unwrap()],
    ));
    assert!(out.contains("1 uploaded"), "{out}");
    let (nar_key, size, etag) = rt().block_on(async {
        let cache = g.cache(&url).await;
        let (_, info) = cache
            .fetch_narinfo(&format!("{}.narinfo", hash_part(&paths[0])))
            .await
            .unwrap()
            .unwrap();
        let nar_key = narscope::cache::nar_key(&info.url).unwrap();
        let head = cache.store().head(&nar_key).await.unwrap().unwrap();
        (nar_key, head.size, head.etag.unwrap_or_default())
    });
    let (_, parts) = storage::s3::part_plan(size, 5 * 1024 * 1024);
    assert_eq!(parts, 3, "{nar_key}: {size} bytes");
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{parts}")),
        "{nar_key}: a multipart ETag ends in -{parts}: {etag}"
    );
    // Read back whole and checked against the narinfo's hashes.
    let out = ok(narscope(
        g,
        root,
        &["verify", &url, "--trusted-key", &pk, "--contents"],
    ));
    assert!(!out.contains("corrupt") && !out.contains("error"), "{out}");

    // Without the parameters the same NAR goes up in one PUT (the default threshold is
    // 100 MiB): the ETag is a plain MD5.
    let bucket2 = g.fresh_bucket();
    let url2 = g.url(&bucket2, "");
    ok(narscope(
        g,
        root,
        &["push", &url2, &paths[0], "--key-file", sk.to_str().unwrap()],
    ));
    let etag2 = rt().block_on(async {
        let store = g.open(&url2).await;
        store
            .head(&nar_key)
            .await
            .unwrap()
            .unwrap()
            .etag
            .unwrap_or_default()
    });
    assert!(!etag2.contains('-'), "{etag2}");
}

#[test]
fn an_archive_storage_class_warns_once_before_anything_is_written() {
    let Some((g, dir)) = setup(true) else { return };
    let root = dir.path();
    let tag = common::random_hex(4);
    let paths = nix_chain(root, &format!("gl{tag}"), 1, 1);
    let bucket = g.fresh_bucket();
    let url = format!("{}&storage-class=GLACIER", g.url(&bucket, ""));
    let (sk, _) = keygen(g, root, &format!("gl-{tag}"));
    let out = run(narscope(
        g,
        root,
        &["push", &url, &paths[0], "--key-file", sk.to_str().unwrap()],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    let warning = "warning: storage-class=GLACIER: readers (Nix) cannot GET objects in this \
                   class without a restore";
    assert_eq!(err.matches(warning).count(), 1, "{err}");
    assert_eq!(
        err.matches("cannot GET objects").count(),
        1,
        "told once, not also in the log lines: {err}"
    );
    let first_line = err.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with(warning),
        "the warning comes first: {err}"
    );
    // A URL without an archive class says nothing.
    let out = run(narscope(
        g,
        root,
        &["ls", &g.url(&bucket, ""), "--no-config"],
    ));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("storage-class"));
}
