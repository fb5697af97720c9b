//! Parsing, round trips and minimal edits, on narinfos written by Nix 2.8.

use super::*;
use crate::nix::keys::SecretKey;
use crate::nix::testdata::{FOO, HELLO, TEST_SECRET, WITHREF, without_line};

const ORIGIN: &str = "s3://bkt/91mlnrh638d0910fq10ass8chinwpb58.narinfo";

fn sp(s: &str) -> StorePath {
    StorePath::parse_any(s).unwrap()
}

#[test]
fn parses_doc_narinfos() {
    let n = NarInfo::parse(WITHREF, ORIGIN).unwrap();
    assert_eq!(
        n.store_path,
        sp("/nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref")
    );
    assert_eq!(
        n.url,
        "nar/1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk.nar.xz"
    );
    assert_eq!(n.compression.as_deref(), Some("xz"));
    assert_eq!(n.compression_name(), "xz");
    assert_eq!(
        n.file_hash.as_ref().unwrap().nix32_digest(),
        "1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk"
    );
    assert_eq!(n.file_size, Some(172));
    assert_eq!(
        n.nar_hash.to_nix32(),
        "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39"
    );
    assert_eq!(n.nar_size, 160);
    assert_eq!(
        n.references,
        vec![sp("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo")]
    );
    assert_eq!(
        n.deriver,
        Some(sp("whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv"))
    );
    assert_eq!(n.system, None);
    assert_eq!(n.sigs.len(), 1);
    assert_eq!(n.ca, None);
    assert!(n.quirks().is_empty(), "{:?}", n.quirks());
    assert_eq!(n.narinfo_key(), "91mlnrh638d0910fq10ass8chinwpb58.narinfo");

    let foo = NarInfo::parse(FOO, "foo").unwrap();
    assert!(foo.references.is_empty());
    assert_eq!(
        foo.ca.as_ref().unwrap().to_string(),
        "text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw"
    );
    assert!(foo.quirks().is_empty());
    let hello = NarInfo::parse(HELLO, "hello").unwrap();
    assert!(matches!(hello.ca, Some(ContentAddress::Fixed { .. })));
    assert!(hello.quirks().is_empty());
}

#[test]
fn round_trips_byte_identical() {
    for text in [WITHREF, FOO, HELLO] {
        let n = NarInfo::parse(text, "x").unwrap();
        assert_eq!(n.to_text(), text);
        // A clone with unchanged values is also identical.
        let c = n.clone();
        assert_eq!(c.to_text(), text);
    }
    // Quirky files round-trip too.
    // Without the original text, the canonical form comes out (here: the same).
    let mut n = NarInfo::parse(WITHREF, "x").unwrap();
    assert!(n.has_original_text());
    n.forget_text();
    assert!(!n.has_original_text());
    assert_eq!(n.to_text(), WITHREF);
    let quirky = "Foo: bar\nStorePath: /nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref\nURL: u\nNarHash: sha256:1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13\nNarSize: 5\nDeriver: unknown-deriver\nSig: junk\nSig: junk\n";
    let n = NarInfo::parse(quirky, "x").unwrap();
    assert_eq!(n.to_text(), quirky);
}

#[test]
fn fresh_narinfo_in_nix_order() {
    let n = NarInfo::parse(WITHREF, ORIGIN).unwrap();
    let mut fresh = NarInfo::new(
        n.store_path.clone(),
        n.url.clone(),
        "xz",
        n.nar_hash.clone(),
        n.nar_size,
        n.references.clone(),
    )
    .with_file(n.file_hash.clone().unwrap(), 172)
    .with_deriver(n.deriver.clone().unwrap());
    assert!(fresh.sign(&SecretKey::parse(TEST_SECRET).unwrap()));
    assert_eq!(fresh.to_text(), WITHREF);
    assert_eq!(fresh, n);

    let h = NarInfo::parse(HELLO, "x").unwrap();
    let mut fresh = NarInfo::new(
        h.store_path.clone(),
        h.url.clone(),
        "xz",
        h.nar_hash.clone(),
        120,
        vec![],
    )
    .with_file(h.file_hash.clone().unwrap(), 128)
    .with_ca(h.ca.clone().unwrap());
    assert!(fresh.sign(&SecretKey::parse(TEST_SECRET).unwrap()));
    assert!(!fresh.sign(&SecretKey::parse(TEST_SECRET).unwrap()));
    assert_eq!(fresh.to_text(), HELLO);
    let back = NarInfo::parse(&fresh.to_text(), "x").unwrap();
    assert_eq!(back, fresh);
}

#[test]
fn fresh_sorts_references_and_sigs() {
    let a = sp("0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0");
    let b = sp("yxvjs9drzsphm9pcf42a4byzj1kb9m7k-openssl-1.1.1n");
    let mut n = NarInfo::new(
        sp("syd87l2rxw8cbsxmxl853h0r6pdwhwjr-curl-7.82.0-bin"),
        "nar/x.nar",
        "none",
        Hash::sha256_of(b"x"),
        8,
        vec![b.clone(), a.clone(), b.clone()],
    );
    assert_eq!(n.references, vec![a, b]);
    let s1 = Signature {
        key_name: "zz".into(),
        bytes: [1; 64],
    };
    let s2 = Signature {
        key_name: "aa".into(),
        bytes: [2; 64],
    };
    assert!(n.add_signature(&s1));
    assert!(n.add_signature(&s2));
    assert_eq!(n.sigs, vec![s2.to_string(), s1.to_string()]);
    let text = n.to_text();
    assert!(text.contains("\nReferences: 0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0 yxvjs9drzsphm9pcf42a4byzj1kb9m7k-openssl-1.1.1n\n"));
    assert_eq!(NarInfo::parse(&text, "x").unwrap(), n);
}

#[test]
fn other_store_directories_are_kept_and_signed_as_written() {
    let gnu = without_line(WITHREF, "Sig:").replace("/nix/store/", "/gnu/store/");
    let mut n = NarInfo::parse(&gnu, "x").unwrap();
    assert_eq!(n.store_dir(), "/gnu/store");
    assert_eq!(
        n.absolute_path(),
        "/gnu/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref"
    );
    let fp = n.fingerprint();
    assert!(
        fp.starts_with("1;/gnu/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref;"),
        "{fp}"
    );
    assert!(
        fp.ends_with(";160;/gnu/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo"),
        "{fp}"
    );
    assert_eq!(n.to_text(), gnu);
    let key = SecretKey::parse(TEST_SECRET).unwrap();
    assert!(n.sign(&key));
    let signed = n.to_text();
    assert!(signed.starts_with("StorePath: /gnu/store/"), "{signed}");
    // The signature is over the /gnu/store fingerprint, not the /nix/store one.
    let nix = NarInfo::parse(&without_line(WITHREF, "Sig:"), "x").unwrap();
    assert_ne!(nix.fingerprint(), fp);
    let sig = n.sigs.last().unwrap().clone();
    assert!(!WITHREF.contains(&sig));
    let back = NarInfo::parse(&signed, "x").unwrap();
    assert_eq!(back.store_dir(), "/gnu/store");
    assert_eq!(back, n);
    assert_ne!(back, NarInfo::parse(WITHREF, "x").unwrap());

    // Moving a fresh narinfo changes what is written and signed.
    let mut fresh = NarInfo::new(
        sp("91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref"),
        "nar/x.nar",
        "none",
        n.nar_hash.clone(),
        160,
        vec![],
    );
    let before = fresh.fingerprint();
    fresh.set_store_dir("/gnu/store").unwrap();
    assert_eq!(
        fresh.fingerprint(),
        before.replace("/nix/store/", "/gnu/store/")
    );
    assert!(fresh.to_text().starts_with("StorePath: /gnu/store/"));
    assert!(fresh.set_store_dir("gnu/store").is_err());
    assert!(fresh.set_store_dir("/gnu/store/").is_err());
    fresh.set_store_dir(crate::nix::STORE_DIR).unwrap();
    assert_eq!(fresh.fingerprint(), before);
}

#[test]
fn add_signature_changes_one_line() {
    let unsigned = without_line(WITHREF, "Sig:");
    let mut n = NarInfo::parse(&unsigned, "x").unwrap();
    assert!(n.sigs.is_empty());
    let key = SecretKey::parse(TEST_SECRET).unwrap();
    assert!(n.sign(&key));
    assert_eq!(n.to_text(), WITHREF);

    // With an existing Sig and an unknown field after it: one new line after the Sig.
    let text = format!("{WITHREF}X-Extra: keep me\n");
    let mut n = NarInfo::parse(&text, "x").unwrap();
    let other = SecretKey::from_seed("other-1", &[7; 32]).unwrap();
    assert!(n.sign(&other));
    assert!(!n.sign(&other));
    let new_text = n.to_text();
    let old: Vec<&str> = text.lines().collect();
    let new: Vec<&str> = new_text.lines().collect();
    assert_eq!(new.len(), old.len() + 1);
    assert_eq!(new[..10], old[..10]);
    assert!(new[10].starts_with("Sig: other-1:"));
    assert_eq!(new[11], "X-Extra: keep me");

    // Odd encodings elsewhere are untouched by adding a signature.
    let hex = unsigned.replace(
        "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39",
        &Hash::parse("sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39")
            .unwrap()
            .to_hex(),
    );
    let mut n = NarInfo::parse(&hex, "x").unwrap();
    assert_eq!(n.quirks(), vec![Quirk::NarHashNotNix32]);
    assert!(n.sign(&key));
    let out = n.to_text();
    assert_eq!(
        out,
        format!("{hex}{}", WITHREF.lines().last().unwrap().to_owned() + "\n")
    );
}

#[test]
fn remove_signatures() {
    let mut n = NarInfo::parse(WITHREF, "x").unwrap();
    let other = SecretKey::from_seed("other-1", &[7; 32]).unwrap();
    n.sign(&other);
    assert_eq!(n.remove_signatures_by_key("nope"), 0);
    assert_eq!(n.remove_signatures_by_key("cache.example.com-1"), 1);
    let text = n.to_text();
    assert!(!text.contains("cache.example.com-1"));
    assert!(text.contains("Sig: other-1:"));
    assert_eq!(n.remove_signatures_by_key("other-1"), 1);
    assert_eq!(n.to_text(), without_line(WITHREF, "Sig:"));
}

#[test]
fn edits_touch_only_their_lines() {
    let text = "StorePath: /nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref\nZ: z\nURL: a\nURL: b\nNarHash: sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39\nNarSize: 160\n";
    let mut n = NarInfo::parse(text, "x").unwrap();
    assert_eq!(n.url, "b");
    assert_eq!(
        n.quirks(),
        vec![
            Quirk::UnknownField("Z".into()),
            Quirk::DuplicateField("URL".into()),
            Quirk::ReferencesMissing,
            Quirk::CompressionDefault
        ]
    );
    assert_eq!(n.compression_name(), "bzip2");
    n.url = "c".into();
    n.compression = Some("zstd".into());
    n.deriver = Some(sp("whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv"));
    n.references = vec![sp("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo")];
    assert_eq!(
        n.to_text(),
        "StorePath: /nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref\nZ: z\nURL: c\nCompression: zstd\nNarHash: sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39\nNarSize: 160\nReferences: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo\nDeriver: whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv\n"
    );
    assert_eq!(NarInfo::parse(&n.to_text(), "x").unwrap(), n);
    assert_eq!(n.unknown_fields(), vec![("Z", "z")]);
}

#[test]
fn nix_tolerances() {
    let base = without_line(WITHREF, "Sig:");
    // Unknown fields kept; System read.
    let t = format!("{base}System: i686-linux\nFoo: bar\n");
    let n = NarInfo::parse(&t, "x").unwrap();
    assert_eq!(n.system.as_deref(), Some("i686-linux"));
    assert!(n.quirks().contains(&Quirk::UnknownField("Foo".into())));
    // NarSize:120 is read as 20, as Nix does.
    let t = base.replace("NarSize: 160", "NarSize:120");
    let n = NarInfo::parse(&t, "x").unwrap();
    assert_eq!(n.nar_size, 20);
    assert_eq!(n.quirks(), vec![Quirk::NoSpaceAfterColon(7)]);
    // Missing References / Compression accepted.
    let t = without_line(&without_line(&base, "References:"), "Compression:");
    let n = NarInfo::parse(&t, "x").unwrap();
    assert!(n.references.is_empty());
    assert_eq!(n.compression, None);
    assert_eq!(n.compression_name(), "bzip2");
    assert_eq!(
        n.quirks(),
        vec![Quirk::ReferencesMissing, Quirk::CompressionDefault]
    );
    // SRI NarHash accepted.
    let t = base.replace(
        "NarHash: sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39",
        &format!(
            "NarHash: {}",
            Hash::parse("sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39")
                .unwrap()
                .to_sri()
        ),
    );
    let n = NarInfo::parse(&t, "x").unwrap();
    assert_eq!(n.nar_hash_encoding(), HashEncoding::Sri);
    assert_eq!(n.to_text(), t);
    // Repeated StorePath: last wins.
    let t = format!(
        "StorePath: /nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo\n{}",
        base
    );
    let n = NarInfo::parse(&t, "x").unwrap();
    assert_eq!(n.store_path.name(), "tvtest-withref");
    // Empty References then non-empty: fine.
    let t = base.replace("References: vx", "References: \nReferences: vx");
    let n = NarInfo::parse(&t, "x").unwrap();
    assert_eq!(n.references.len(), 1);
    // Malformed and duplicate Sig lines are kept as opaque strings.
    let t = format!("{base}Sig: garbage\nSig: garbage\nSig: k:AAAA\n");
    let n = NarInfo::parse(&t, "x").unwrap();
    assert_eq!(n.sigs, vec!["garbage", "k:AAAA"]);
    assert_eq!(
        n.quirks(),
        vec![
            Quirk::DuplicateSig,
            Quirk::MalformedSig("garbage".into()),
            Quirk::MalformedSig("k:AAAA".into())
        ]
    );
    // Out-of-order and duplicate references, explicit unknown deriver.
    let t = base
        .replace(
            "References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
            "References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo 0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0 0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0",
        )
        .replace(
            "Deriver: whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv",
            "Deriver: unknown-deriver",
        );
    let n = NarInfo::parse(&t, "x").unwrap();
    assert_eq!(n.references.len(), 3);
    assert_eq!(n.deriver, None);
    assert_eq!(
        n.quirks(),
        vec![
            Quirk::ExplicitUnknownDeriver,
            Quirk::ReferencesOutOfOrder,
            Quirk::DuplicateReference
        ]
    );
    // Empty CA is no CA, and a later CA is then allowed (Nix's parseOpt).
    let t = format!("{base}CA: \n");
    let n = NarInfo::parse(&t, "x").unwrap();
    assert_eq!(n.ca, None);
    assert_eq!(n.quirks(), vec![Quirk::EmptyCa]);
    // Field order.
    let t = format!("Deriver: whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv\n{base}");
    let n = NarInfo::parse(&t, "x").unwrap();
    assert!(n.quirks().contains(&Quirk::NonCanonicalOrder));
}

#[test]
fn bad_inputs() {
    let base = WITHREF;
    let withref_hash = "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39";
    let cases: Vec<(String, &str)> = vec![
        (
            base.trim_end_matches('\n').to_owned(),
            "line 10: missing final newline",
        ),
        (
            base.replace('\n', "\r\n"),
            "line 1: line ends with '\\r' (CRLF line endings are not accepted)",
        ),
        (
            base.replace("Compression: xz\n", "Compression: xz\n\n"),
            "line 4: blank line",
        ),
        (
            base.replace("NarSize: 160", "NarSize: 0"),
            "line 7: NarSize missing or zero",
        ),
        (without_line(base, "NarSize:"), "NarSize missing or zero"),
        (without_line(base, "StorePath:"), "StorePath missing"),
        (without_line(base, "URL:"), "URL missing"),
        (
            base.replace(
                "URL: nar/1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk.nar.xz",
                "URL: ",
            ),
            "URL missing",
        ),
        (without_line(base, "NarHash:"), "NarHash missing"),
        (
            base.replace(
                withref_hash,
                "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq3",
            ),
            "line 6: bad NarHash: hash 'sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq3' has wrong length 51 for sha256 (expected 52 nix32, 64 base16 or 44 base64 characters)",
        ),
        (
            base.replace("FileHash: sha256:1kj", "FileHash: sha256:ekj"),
            "line 4: bad FileHash: invalid nix32 digest in hash 'sha256:ekj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk': invalid character 'e' at position 0 in nix32 string 'ekj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk'",
        ),
        (
            format!(
                "{base}CA: text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw\nCA: text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw\n"
            ),
            "line 12: extra CA",
        ),
        (format!("{base}References: \n"), "line 11: extra References"),
        (
            base.replace("StorePath: /nix/store/91ml", "StorePath: /nix/store/e1ml"),
            "line 1: bad StorePath: store path '/nix/store/e1mlnrh638d0910fq10ass8chinwpb58-tvtest-withref' has an illegal character 'e' in its hash part",
        ),
        (
            base.replace("StorePath: /nix/store/", "StorePath: /gnu//store/"),
            "line 1: bad StorePath: path '/gnu//store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref' is not a store path (<store directory>/<hash>-<name>)",
        ),
        (
            base.replace("StorePath: /nix/store/", "StorePath: nix/store/"),
            "line 1: bad StorePath: path 'nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref' is not a store path (<store directory>/<hash>-<name>)",
        ),
        (
            base.replace(
                "References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
                "References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-f/oo",
            ),
            "line 8: bad References: store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-f/oo' contains illegal character '/' in its name",
        ),
        (
            base.replace("Deriver: whc", "Deriver: /nix/store/whc"),
            "line 9: bad Deriver: store path '/nix/store/whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv' has an illegal character '/' in its hash part",
        ),
        (
            base.replace("NarSize: 160", "NarSize: 16x"),
            "line 7: invalid NarSize '16x'",
        ),
        (
            base.replace("FileSize: 172", "FileSize: +172"),
            "line 5: invalid FileSize '+172'",
        ),
        (
            format!("{base}CA: nope\n"),
            "line 11: bad CA: content address 'nope' does not start with 'text:' or 'fixed:'",
        ),
        (
            format!("{base}garbage\n"),
            "line 11: expecting ':' in 'garbage'",
        ),
        (
            format!("{base}Foo:\n"),
            "line 11: field 'Foo' is not followed by ': <value>'",
        ),
        (String::new(), "StorePath missing"),
    ];
    for (text, msg) in &cases {
        let err = NarInfo::parse(text, ORIGIN).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{ORIGIN}: {msg}"),
            "input: {text:?}"
        );
    }
    let e = NarInfo::parse(&without_line(base, "URL:"), ORIGIN).unwrap_err();
    assert_eq!(e.line, None);
    assert_eq!(e.kind, NarInfoErrorKind::UrlMissing);
    assert_eq!(e.origin, ORIGIN);

    let mut bytes = base.as_bytes().to_vec();
    bytes.extend_from_slice(b"Foo: \xff\xfe\n");
    let e = NarInfo::parse_bytes(&bytes, ORIGIN).unwrap_err();
    assert_eq!(e.to_string(), format!("{ORIGIN}: line 11: not valid UTF-8"));
    assert_eq!(
        NarInfo::parse_bytes(WITHREF.as_bytes(), ORIGIN)
            .unwrap()
            .to_text(),
        WITHREF
    );
}
