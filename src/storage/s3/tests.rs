//! Unit tests of the S3 backend that need no server: classification of failures, the Nix
//! missing rule, XML completeness, MD5 ETags, part sizing and URL parameters.

use super::failure::parse_retry_after;
use super::*;
use crate::storage::CacheUrl;

fn failure(status: u16, code: &str, region: Option<&str>) -> Failure {
    Failure {
        message: Some("the server's message".into()),
        bucket_region: region.map(str::to_string),
        ..Failure::http(status, code)
    }
}

async fn store() -> S3Store {
    let url = match CacheUrl::parse("s3://bkt/pfx?endpoint=http://127.0.0.1:9&region=us-east-1") {
        Ok(CacheUrl::S3(u)) => u,
        other => panic!("{other:?}"),
    };
    let opts = S3Options::default().with_static_credentials("AKID", "SECRET-VALUE");
    S3Store::connect(url, opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn wrong_region_names_the_region() {
    let s = store().await;
    let e = s.error(
        failure(301, "PermanentRedirect", Some("eu-west-1")),
        "list",
        Some(""),
    );
    assert_eq!(e.kind, StoreErrorKind::WrongRegion);
    let t = e.to_string();
    assert!(t.contains("add region=eu-west-1 to the URL"), "{t}");
    assert!(t.contains("not in region us-east-1"), "{t}");
    let e = s.error(
        failure(400, "AuthorizationHeaderMalformed", None),
        "GET",
        Some("k"),
    );
    assert_eq!(e.kind, StoreErrorKind::WrongRegion);
    assert!(e.to_string().contains("set region="), "{e}");
}

#[tokio::test]
async fn classification() {
    let s = store().await;
    for code in [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
    ] {
        let e = s.error(failure(403, code, None), "GET", Some("k"));
        assert_eq!(e.kind, StoreErrorKind::Credentials, "{code}");
        let t = e.to_string();
        assert!(t.contains("AWS_ACCESS_KEY_ID") && t.contains("bkt"), "{t}");
        assert!(!t.contains("SECRET-VALUE"), "{t}");
    }
    let e = s.error(failure(412, "PreconditionFailed", None), "PUT", Some("k"));
    assert!(e.is_precondition_failed());
    let e = s.error(failure(501, "NotImplemented", None), "PUT", Some("k"));
    assert_eq!(e.kind, StoreErrorKind::NotSupported);
    assert!(!e.is_transient());
    let e = s.error(failure(500, "InternalError", None), "PUT", Some("k"));
    assert_eq!(e.kind, StoreErrorKind::ServerError);
    assert!(e.is_transient());
    assert_eq!(
        e.to_string(),
        "PUT `k` at s3://bkt/pfx (endpoint http://127.0.0.1:9): server error at endpoint \
         http://127.0.0.1:9 (InternalError: the server's message)"
    );
    for (status, code) in [
        (503, "SlowDown"),
        (429, "TooManyRequests"),
        (400, "Throttling"),
        (503, "RequestLimitExceeded"),
    ] {
        let e = s.error(failure(status, code, None), "GET", Some("k"));
        assert_eq!(e.kind, StoreErrorKind::Throttled, "{code}");
        assert!(e.to_string().contains("is throttling requests"), "{e}");
    }
    let mut bare = Failure::http(429, "x");
    bare.code = None;
    assert_eq!(
        s.error(bare, "HEAD", Some("k")).kind,
        StoreErrorKind::Throttled
    );
    for status in [502, 503, 504] {
        let mut f = Failure::http(status, "x");
        f.code = None;
        let e = s.error(f, "GET", Some("k"));
        assert_eq!(e.kind, StoreErrorKind::ServerError, "{status}");
    }
    let e = s.error(failure(400, "RequestTimeout", None), "PUT", Some("k"));
    assert_eq!(e.kind, StoreErrorKind::Timeout);
    assert_eq!(s.describe(), "s3://bkt/pfx (endpoint http://127.0.0.1:9)");
    assert!(!format!("{:?}", s.opts).contains("SECRET-VALUE"));
}

#[tokio::test]
async fn transport_messages_say_what_happened() {
    let s = store().await;
    let t = |t: Transport| Failure::transport(t, "connection reset by peer".into(), String::new());
    let e = s.error(
        t(Transport::Body {
            got: Some(120),
            expected: Some(400),
        }),
        "GET",
        Some("x.narinfo"),
    );
    assert_eq!(e.kind, StoreErrorKind::Interrupted);
    assert_eq!(
        e.to_string(),
        "GET `x.narinfo` at s3://bkt/pfx (endpoint http://127.0.0.1:9): transport fault: the \
         connection to endpoint http://127.0.0.1:9 broke while reading the body (after 120 \
         of 400 bytes) (connection reset by peer)"
    );
    let e = s.error(t(Transport::Garbled), "list", Some("nar/"));
    assert_eq!(e.kind, StoreErrorKind::Interrupted);
    let text = e.to_string();
    assert!(
        text.contains("the listing from endpoint http://127.0.0.1:9 was cut short"),
        "{text}"
    );
    assert!(
        !text.contains("unexpected answer") && !text.contains("HTTP 200"),
        "{text}"
    );
    // A refused first connection: the endpoint is probably wrong.
    let e = s.error(t(Transport::Connect), "GET", Some("k"));
    assert_eq!(e.kind, StoreErrorKind::Unreachable);
    assert!(e.to_string().contains("check endpoint="), "{e}");
    // A reset in the middle of a session: no endpoint advice.
    let e = s.error(t(Transport::Reset), "GET", Some("k"));
    assert!(
        e.to_string().contains("broke before the answer arrived"),
        "{e}"
    );
    assert!(!e.to_string().contains("check endpoint="), "{e}");
    // Once the endpoint has answered, a refused connection is no configuration problem.
    s.s.retry.mark_connected();
    let e = s.error(t(Transport::Connect), "GET", Some("k"));
    assert!(!e.to_string().contains("check endpoint="), "{e}");
    assert!(e.to_string().contains("answered earlier"), "{e}");
    let e = s.error(
        t(Transport::Mismatch {
            etag: "\"0123\"".into(),
            got: 77,
        }),
        "GET",
        Some("k"),
    );
    assert!(
        e.to_string().contains("transport fault: the 77 bytes"),
        "{e}"
    );
}

#[test]
fn nix_missing_rule() {
    assert!(failure(404, "NoSuchKey", None).means_missing());
    assert!(failure(403, "AccessDenied", None).means_missing());
    assert!(!failure(404, "NoSuchBucket", None).means_missing());
    assert!(!failure(403, "SignatureDoesNotMatch", None).means_missing());
    let mut garage_bad_sig = failure(403, "AccessDenied", None);
    garage_bad_sig.message = Some("Forbidden: Invalid signature".into());
    assert!(!garage_bad_sig.means_missing());
    assert!(!failure(500, "InternalError", None).means_missing());
}

#[test]
fn xml_documents_must_be_closed() {
    let full = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"x\"><Name>b</Name></ListBucketResult>\n";
    assert_eq!(unclosed_xml_root(full), None);
    assert_eq!(
        unclosed_xml_root(&full[..60]).as_deref(),
        Some("ListBucketResult")
    );
    assert_eq!(
        unclosed_xml_root(b"<DeleteResult><Deleted><Key>a</Key></Deleted>").as_deref(),
        Some("DeleteResult")
    );
    assert_eq!(unclosed_xml_root(b"<DeleteResult/>"), None);
    assert_eq!(unclosed_xml_root(b"<!-- c --><A></A>"), None);
    assert_eq!(unclosed_xml_root(b""), None);
    assert_eq!(unclosed_xml_root(b"StorePath: /nix/store/x"), None);
}

#[test]
fn md5_etags() {
    let md5 = md5_of(b"hello");
    let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "5d41402abc4b2a76b9719d911017c592");
    assert_eq!(plain_md5(&format!("\"{hex}\"")), Some(md5));
    assert_eq!(plain_md5(&hex.to_uppercase()), Some(md5));
    assert_eq!(plain_md5(&format!("\"{hex}-3\"")), None, "multipart");
    assert_eq!(plain_md5("\"abc\""), None);
    assert_eq!(plain_md5(&format!("\"{}\"", "zz".repeat(16))), None);
    assert!(etag_not_md5(Some("aws:kms"), None));
    assert!(etag_not_md5(None, Some("AES256")));
    assert!(!etag_not_md5(Some("AES256"), None));
    assert!(!etag_not_md5(None, None));
}

#[test]
fn part_counts_stay_within_s3_limits_for_every_size_and_chunk_size() {
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    let chunk_sizes = [
        0,
        1,
        MIN_PART_SIZE - 1,
        MIN_PART_SIZE,
        PART_SIZE,
        64 * MIB,
        GIB,
        MAX_PUT_SIZE,
        MAX_PUT_SIZE + 1,
        u64::MAX,
    ];
    let mut sizes = vec![0, 1, MIN_PART_SIZE, 100 * MIB, MAX_PUT_SIZE + 1];
    // Around every size where the count would pass 10,000 parts for some chunk size.
    for c in [MIN_PART_SIZE, PART_SIZE, 64 * MIB] {
        let edge = c * MAX_PARTS;
        sizes.extend([edge - 1, edge, edge + 1]);
    }
    sizes.extend((1..=64).map(|i| MAX_OBJECT_SIZE / 64 * i));
    sizes.extend([MAX_OBJECT_SIZE - 1, MAX_OBJECT_SIZE]);
    for &size in &sizes {
        for &chunk in &chunk_sizes {
            let (part, count) = part_plan(size, chunk);
            let at = format!("size {size}, chunk size {chunk}: part {part} × {count}");
            assert!(count <= MAX_PARTS, "{at}: too many parts");
            assert!((MIN_PART_SIZE..=MAX_PUT_SIZE).contains(&part), "{at}");
            assert!(part.saturating_mul(count) >= size, "{at}: does not cover");
            assert!(
                (count - 1) * part < size || size == 0,
                "{at}: an empty part"
            );
            if (MIN_PART_SIZE..=MAX_PUT_SIZE).contains(&chunk) && size <= chunk * MAX_PARTS {
                assert_eq!(part, chunk, "{at}: the asked part size is kept");
            }
        }
    }
    // At S3's 5 TiB object limit the smallest part size still fits 10,000 parts.
    assert_eq!(part_plan(MAX_OBJECT_SIZE, MIN_PART_SIZE).1, MAX_PARTS);
}

#[test]
fn url_parameters_set_the_multipart_bounds() {
    let opts = |q: &str| match CacheUrl::parse(&format!("s3://b?{q}")).unwrap() {
        CacheUrl::S3(u) => S3Options::from_params(&u.params),
        other => panic!("{other:?}"),
    };
    let d = opts("region=x");
    assert_eq!(
        (d.multipart_threshold, d.part_size),
        (MULTIPART_THRESHOLD, PART_SIZE)
    );
    let single = opts("multipart-upload=false");
    assert_eq!(single.multipart_threshold, MAX_PUT_SIZE);
    let on = opts("multipart-upload=true&multipart-threshold=1000&multipart-chunk-size=6000000");
    assert_eq!((on.multipart_threshold, on.part_size), (1000, 6_000_000));
    let t = opts("multipart-threshold=0&buffer-size=5242880");
    assert_eq!((t.multipart_threshold, t.part_size), (0, MIN_PART_SIZE));
}

#[test]
fn retry_after_values() {
    assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
        Some(Duration::ZERO),
        "a date in the past"
    );
    assert_eq!(parse_retry_after("soon"), None);
}

#[test]
fn key_summaries() {
    let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    assert_eq!(keys_summary(&keys), "`k0`, `k1`, `k2`, … (5 keys)");
    assert_eq!(keys_summary(&keys[..1]), "`k0` (1 key)");
}

#[tokio::test]
async fn aws_description_and_region_inference() {
    let url = S3Url {
        region: None,
        ..S3Url::new("bkt")
    };
    let mut url_b2 = S3Url::new("bkt");
    url_b2.endpoint = Some("https://s3.us-west-004.backblazeb2.com".into());
    let opts = S3Options::default().with_static_credentials("a", "b");
    let aws = S3Store::connect(
        S3Url {
            region: Some("eu-west-1".into()),
            ..url
        },
        opts.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(aws.describe(), "s3://bkt (AWS S3, region eu-west-1)");
    let b2 = S3Store::connect(url_b2, opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b2.region(), "us-west-004");
}
