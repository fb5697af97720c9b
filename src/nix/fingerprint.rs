//! The fingerprint Nix signs for a store path (`ValidPathInfo::fingerprint` in Nix 2.8's
//! `src/libstore/store-api.cc`): `1;<path>;<algo>:<nix32>;<size>;<references>`.

use std::fmt::Write as _;

use super::hash::Hash;
use super::store_path::{STORE_DIR, StorePath};

/// The string Nix signs: `1;<path>;<algo>:<nix32>;<size>;<sorted ref paths joined by ','>`.
/// References are deduplicated and sorted bytewise, whatever order they come in.
pub fn fingerprint(
    path: &StorePath,
    nar_hash: &Hash,
    nar_size: u64,
    references: &[StorePath],
) -> String {
    fingerprint_in(STORE_DIR, path, nar_hash, nar_size, references)
}

/// [`fingerprint`] of paths in the store directory `store_dir` (Nix signs full paths, so a
/// `/gnu/store` path's fingerprint names `/gnu/store`).
pub fn fingerprint_in(
    store_dir: &str,
    path: &StorePath,
    nar_hash: &Hash,
    nar_size: u64,
    references: &[StorePath],
) -> String {
    let mut refs: Vec<&StorePath> = references.iter().collect();
    refs.sort_unstable();
    refs.dedup();
    fingerprint_with(store_dir, path, nar_hash, nar_size, refs.into_iter())
}

/// The fingerprint with references in the given order (no sorting).
pub(super) fn fingerprint_with<'a>(
    store_dir: &str,
    path: &StorePath,
    nar_hash: &Hash,
    nar_size: u64,
    refs: impl ExactSizeIterator<Item = &'a StorePath>,
) -> String {
    let per_path = store_dir.len() + 1 + 32 + 1 + 40;
    let mut s = String::with_capacity(2 + per_path + 60 + 22 + refs.len() * per_path);
    s.push_str("1;");
    s.push_str(store_dir);
    s.push('/');
    s.push_str(path.as_base_name());
    s.push(';');
    s.push_str(nar_hash.algo().name());
    s.push(':');
    s.push_str(&nar_hash.nix32_digest());
    // Writing to a String cannot fail.
    let _ = write!(s, ";{nar_size};");
    for (i, r) in refs.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(store_dir);
        s.push('/');
        s.push_str(r.as_base_name());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::keys::{PublicKey, SecretKey};
    use crate::nix::testdata::{FINGERPRINT_VECTORS as VECTORS, TEST_PUBLIC, TEST_SECRET};

    fn sp(s: &str) -> StorePath {
        StorePath::parse_any(s).unwrap()
    }

    const CURL_FP: &str = "1;/nix/store/syd87l2rxw8cbsxmxl853h0r6pdwhwjr-curl-7.82.0-bin;sha256:1b4sb93wp679q4zx9k1ignby1yna3z7c4c2ri3wphylbc2dwsys0;196040;/nix/store/0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0,/nix/store/6w8g7njm4mck5dmjxws0z1xnrxvl81xa-glibc-2.34-115,/nix/store/j5jxw3iy7bbz4a57fh9g2xm2gxmyal8h-zlib-1.2.12,/nix/store/yxvjs9drzsphm9pcf42a4byzj1kb9m7k-openssl-1.1.1n";

    #[test]
    fn fingerprints_and_signatures_match_nix() {
        let sk = SecretKey::parse(TEST_SECRET).unwrap();
        let pk = PublicKey::parse(TEST_PUBLIC).unwrap();
        for (fp, path, hash, size, refs, sig) in VECTORS {
            let refs: Vec<StorePath> = refs.iter().map(|r| sp(r)).collect();
            let got = fingerprint(&sp(path), &Hash::parse(hash).unwrap(), *size, &refs);
            assert_eq!(&got, fp);
            let s = sk.sign(fp);
            assert_eq!(s.to_string(), *sig);
            assert!(pk.verify(fp, &s));
        }
    }

    #[test]
    fn curl_fingerprint_sorts_references() {
        // References given out of order and with a duplicate: fingerprint sorts and dedups.
        let refs: Vec<StorePath> = [
            "yxvjs9drzsphm9pcf42a4byzj1kb9m7k-openssl-1.1.1n",
            "0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0",
            "j5jxw3iy7bbz4a57fh9g2xm2gxmyal8h-zlib-1.2.12",
            "6w8g7njm4mck5dmjxws0z1xnrxvl81xa-glibc-2.34-115",
            "0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0",
        ]
        .iter()
        .map(|r| sp(r))
        .collect();
        let fp = fingerprint(
            &sp("/nix/store/syd87l2rxw8cbsxmxl853h0r6pdwhwjr-curl-7.82.0-bin"),
            &Hash::parse("sha256:1b4sb93wp679q4zx9k1ignby1yna3z7c4c2ri3wphylbc2dwsys0").unwrap(),
            196040,
            &refs,
        );
        assert_eq!(fp, CURL_FP);
        let sk = SecretKey::parse(TEST_SECRET).unwrap();
        assert_eq!(
            sk.sign(&fp).to_string(),
            "cache.example.com-1:/hcsy64xvXyJC+CZfBquZ6pwnjJVuZ/Ik2tVJraDcLbPmJbjoptCBQ3FO1D5RQRAzjkOp/efwrMthhLoyKM/CA=="
        );
    }
}
