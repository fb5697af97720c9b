//! Hashes as Nix writes and reads them: `algo:<nix32|hex|base64>` and SRI `algo-<base64>`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use sha2::Digest as _;
use thiserror::Error;

use super::nix32;

/// Largest digest we store (sha512).
const MAX_DIGEST: usize = 64;

/// A hash algorithm Nix supports in narinfos and content addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    /// MD5 (16 bytes).
    Md5,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlgo {
    /// The name Nix uses (`md5`, `sha1`, `sha256`, `sha512`).
    pub fn name(&self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(&self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }

    /// Length of the base16 form of a digest.
    pub fn base16_len(&self) -> usize {
        self.digest_len() * 2
    }

    /// Length of the nix32 form of a digest.
    pub fn nix32_len(&self) -> usize {
        nix32::encoded_len(self.digest_len())
    }

    /// Length of the padded base64 form of a digest.
    pub fn base64_len(&self) -> usize {
        self.digest_len().div_ceil(3) * 4
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgo {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, HashError> {
        match s {
            "md5" => Ok(HashAlgo::Md5),
            "sha1" => Ok(HashAlgo::Sha1),
            "sha256" => Ok(HashAlgo::Sha256),
            "sha512" => Ok(HashAlgo::Sha512),
            _ => Err(HashError::UnknownAlgo(s.to_owned())),
        }
    }
}

/// Why a hash string or digest was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashError {
    /// Algorithm name not one of md5, sha1, sha256, sha512.
    #[error("unknown hash algorithm '{0}'")]
    UnknownAlgo(String),
    /// Neither `algo:` nor SRI `algo-` prefix.
    #[error("hash '{0}' does not start with '<algo>:' or '<algo>-'")]
    MissingAlgo(String),
    /// Digest text length matches no encoding of this algorithm.
    #[error(
        "hash '{input}' has wrong length {len} for {algo} (expected {} nix32, {} base16 or {} base64 characters)",
        algo.nix32_len(), algo.base16_len(), algo.base64_len()
    )]
    WrongLength {
        /// The whole hash string.
        input: String,
        /// The algorithm named by its prefix.
        algo: HashAlgo,
        /// Length of the digest text.
        len: usize,
    },
    /// The digest text is not valid in the encoding its length implies.
    #[error("invalid {encoding} digest in hash '{input}': {cause}")]
    BadDigest {
        /// The whole hash string.
        input: String,
        /// Which encoding was tried.
        encoding: &'static str,
        /// What was wrong.
        cause: String,
    },
    /// Raw digest bytes of the wrong size.
    #[error("{algo} digest must be {} bytes, got {len}", algo.digest_len())]
    DigestLength {
        /// The algorithm whose digest length was expected.
        algo: HashAlgo,
        /// Number of bytes given.
        len: usize,
    },
}

/// How the digest of a hash string was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashEncoding {
    /// `algo:<nix32>`, what Nix writes in narinfos.
    Nix32,
    /// Base16, `algo:<hex>` (either case).
    Base16,
    /// Padded base64 after a colon, `algo:<base64>`.
    Base64,
    /// SRI form, `algo-<base64>`.
    Sri,
}

impl HashEncoding {
    /// Short name: `nix32`, `base16`, `base64` or `SRI`.
    pub fn name(&self) -> &'static str {
        match self {
            HashEncoding::Nix32 => "nix32",
            HashEncoding::Base16 => "base16",
            HashEncoding::Base64 => "base64",
            HashEncoding::Sri => "SRI",
        }
    }
}

impl fmt::Display for HashEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which encoding a hash string uses, judged from its prefix and digest length.
/// Returns `None` when the string is not a hash of a known algorithm. Does not
/// validate the digest characters; use [`Hash::parse`] for that.
pub fn detect_encoding(s: &str) -> Option<HashEncoding> {
    split_hash(s).ok().map(|(_, _, enc)| enc)
}

/// A hash: algorithm plus digest. Small, no heap allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash {
    algo: HashAlgo,
    bytes: [u8; MAX_DIGEST],
}

impl Hash {
    /// Builds a hash from raw digest bytes, which must have the algorithm's length.
    pub fn new(algo: HashAlgo, digest: Vec<u8>) -> Result<Hash, HashError> {
        Hash::from_slice(algo, &digest)
    }

    /// Like [`Hash::new`] without taking ownership.
    pub fn from_slice(algo: HashAlgo, digest: &[u8]) -> Result<Hash, HashError> {
        if digest.len() != algo.digest_len() {
            return Err(HashError::DigestLength {
                algo,
                len: digest.len(),
            });
        }
        let mut bytes = [0u8; MAX_DIGEST];
        if let Some(dst) = bytes.get_mut(..digest.len()) {
            dst.copy_from_slice(digest);
        }
        Ok(Hash { algo, bytes })
    }

    /// A sha256 hash from its 32-byte digest.
    pub fn sha256(digest: [u8; 32]) -> Hash {
        let mut bytes = [0u8; MAX_DIGEST];
        if let Some(dst) = bytes.get_mut(..32) {
            dst.copy_from_slice(&digest);
        }
        Hash {
            algo: HashAlgo::Sha256,
            bytes,
        }
    }

    /// The sha256 hash of `data`.
    pub fn sha256_of(data: &[u8]) -> Hash {
        Hash::sha256(sha2::Sha256::digest(data).into())
    }

    /// Parses `algo:<digest>` (nix32, base16 in either case, or padded base64, told
    /// apart by length) or SRI `algo-<base64>`, like Nix's `Hash::parseAnyPrefixed`.
    pub fn parse(s: &str) -> Result<Hash, HashError> {
        let (algo, digest, enc) = split_hash(s)?;
        let mut bytes = [0u8; MAX_DIGEST];
        let n = algo.digest_len();
        let out = bytes.get_mut(..n).unwrap_or_default();
        match enc {
            HashEncoding::Nix32 => {
                nix32::decode_into(digest, out).map_err(|e| bad(s, "nix32", e.to_string()))?;
            }
            HashEncoding::Base16 => {
                decode_hex(digest, out).map_err(|c| bad(s, "base16", c.to_string()))?
            }
            HashEncoding::Base64 | HashEncoding::Sri => {
                let d = base64_decode(digest).map_err(|c| bad(s, "base64", c.to_string()))?;
                if d.len() != n {
                    return Err(bad(
                        s,
                        "base64",
                        format!("decodes to {} bytes, expected {n}", d.len()),
                    ));
                }
                out.copy_from_slice(&d);
            }
        }
        Ok(Hash { algo, bytes })
    }

    /// The hash algorithm (md5, sha1, sha256 or sha512).
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The raw digest bytes.
    pub fn digest(&self) -> &[u8] {
        self.bytes.get(..self.algo.digest_len()).unwrap_or_default()
    }

    /// `algo:<nix32>`, the form Nix writes in narinfos and fingerprints.
    pub fn to_nix32(&self) -> String {
        format!("{}:{}", self.algo.name(), self.nix32_digest())
    }

    /// SRI form `algo-<base64>`.
    pub fn to_sri(&self) -> String {
        format!(
            "{}-{}",
            self.algo.name(),
            base64::engine::general_purpose::STANDARD.encode(self.digest())
        )
    }

    /// `algo:<lowercase hex>` (prefixed, like Nix's base16 `to_string(.., true)`).
    pub fn to_hex(&self) -> String {
        format!("{}:{}", self.algo.name(), self.hex_digest())
    }

    /// The digest alone in lowercase hex.
    pub fn hex_digest(&self) -> String {
        let mut s = String::with_capacity(self.algo.base16_len());
        for b in self.digest() {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    /// The digest alone in nix32.
    pub fn nix32_digest(&self) -> String {
        nix32::encode(self.digest())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_nix32())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_nix32())
    }
}

impl FromStr for Hash {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, HashError> {
        Hash::parse(s)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn bad(input: &str, encoding: &'static str, cause: String) -> HashError {
    HashError::BadDigest {
        input: input.to_owned(),
        encoding,
        cause,
    }
}

/// Splits a hash string into algorithm, digest text and encoding (by length).
fn split_hash(s: &str) -> Result<(HashAlgo, &str, HashEncoding), HashError> {
    if let Some((algo, digest)) = s.split_once(':') {
        let algo: HashAlgo = algo.parse()?;
        let len = digest.len();
        let enc = if len == algo.base16_len() {
            HashEncoding::Base16
        } else if len == algo.nix32_len() {
            HashEncoding::Nix32
        } else if len == algo.base64_len() {
            HashEncoding::Base64
        } else {
            return Err(HashError::WrongLength {
                input: s.to_owned(),
                algo,
                len,
            });
        };
        Ok((algo, digest, enc))
    } else if let Some((algo, digest)) = s.split_once('-') {
        let algo: HashAlgo = algo.parse()?;
        Ok((algo, digest, HashEncoding::Sri))
    } else {
        Err(HashError::MissingAlgo(s.to_owned()))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why base16 digest text does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
enum HexError {
    /// Not twice as many digits as bytes wanted.
    #[error("expected {0} hex digits")]
    Length(usize),
    /// A pair of characters that are not both hex digits.
    #[error("invalid hex digit in '{0}'")]
    Digit(String),
}

fn decode_hex(s: &str, out: &mut [u8]) -> Result<(), HexError> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return Err(HexError::Length(out.len() * 2));
    }
    for (slot, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [h, l] => (hex_val(*h), hex_val(*l)),
            _ => (None, None),
        };
        match (hi, lo) {
            (Some(h), Some(l)) => *slot = (h << 4) | l,
            _ => {
                return Err(HexError::Digit(String::from_utf8_lossy(pair).into_owned()));
            }
        }
    }
    Ok(())
}

/// A character that is not in the base64 alphabet (nor `=` or `\n`), and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid base64 character {ch:?} at offset {offset}")]
pub struct Base64Error {
    /// The character that is not base64.
    pub ch: char,
    /// Its byte offset in the text.
    pub offset: usize,
}

/// Base64 decoding the way Nix does it: standard alphabet, stops at the first `=`,
/// skips `\n`, ignores leftover bits.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, Base64Error> {
    // 0..=63: a digit; SKIP: '\n'; STOP: '='; BAD: anything else.
    const SKIP: u8 = 0xfe;
    const STOP: u8 = 0xfd;
    const BAD: u8 = 0xff;
    const TABLE: [u8; 256] = {
        let mut t = [BAD; 256];
        let mut i = 0;
        while i < 26 {
            t[b'A' as usize + i] = i as u8;
            t[b'a' as usize + i] = 26 + i as u8;
            i += 1;
        }
        let mut d = 0;
        while d < 10 {
            t[b'0' as usize + d] = 52 + d as u8;
            d += 1;
        }
        t[b'+' as usize] = 62;
        t[b'/' as usize] = 63;
        t[b'\n' as usize] = SKIP;
        t[b'=' as usize] = STOP;
        t
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for (pos, &b) in s.as_bytes().iter().enumerate() {
        let v = TABLE[b as usize];
        match v {
            STOP => break,
            SKIP => continue,
            BAD => {
                let ch = s.get(pos..).and_then(|r| r.chars().next()).unwrap_or('?');
                return Err(Base64Error { ch, offset: pos });
            }
            _ => {}
        }
        acc = ((acc << 6) | u32::from(v)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// Standard padded base64, as Nix writes keys and signatures.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX_HELLO: &str = "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13";
    const N32_HELLO: &str = "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw";
    const B64_HELLO: &str = "HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=";

    #[test]
    fn all_forms_of_one_hash() {
        let forms = [
            format!("sha256:{N32_HELLO}"),
            format!("sha256:{HEX_HELLO}"),
            format!("sha256:{}", HEX_HELLO.to_uppercase()),
            format!("sha256:{B64_HELLO}"),
            format!("sha256-{B64_HELLO}"),
        ];
        let first = Hash::parse(&forms[0]).unwrap();
        for f in &forms {
            let h = Hash::parse(f).unwrap();
            assert_eq!(h, first, "{f}");
        }
        assert_eq!(first.to_nix32(), forms[0]);
        assert_eq!(first.to_string(), forms[0]);
        assert_eq!(first.to_hex(), forms[1]);
        assert_eq!(first.hex_digest(), HEX_HELLO);
        assert_eq!(first.to_sri(), forms[4]);
        assert_eq!(first.nix32_digest(), N32_HELLO);
        assert_eq!(first.algo(), HashAlgo::Sha256);
        assert_eq!(format!("{first:?}"), format!("Hash(sha256:{N32_HELLO})"));
        // The 120-byte NAR of a file containing "hello\n" as `nix-store --dump` writes it.
        let nar_hex = "0d000000000000006e69782d617263686976652d3100000001000000000000002800000000000000040000000000000074797065000000000700000000000000726567756c6172000800000000000000636f6e74656e7473060000000000000068656c6c6f0a000001000000000000002900000000000000";
        let mut nar = [0u8; 120];
        decode_hex(nar_hex, &mut nar).unwrap();
        assert_eq!(Hash::sha256_of(&nar), first);
    }

    #[test]
    fn detects_encodings() {
        assert_eq!(
            detect_encoding(&format!("sha256:{N32_HELLO}")),
            Some(HashEncoding::Nix32)
        );
        assert_eq!(
            detect_encoding(&format!("sha256:{HEX_HELLO}")),
            Some(HashEncoding::Base16)
        );
        assert_eq!(
            detect_encoding(&format!("sha256:{B64_HELLO}")),
            Some(HashEncoding::Base64)
        );
        assert_eq!(
            detect_encoding(&format!("sha256-{B64_HELLO}")),
            Some(HashEncoding::Sri)
        );
        assert_eq!(detect_encoding("sha256:abc"), None);
        assert_eq!(detect_encoding("blake3:abc"), None);
    }

    #[test]
    fn empty_string_and_abc() {
        assert_eq!(
            Hash::sha256_of(b"").nix32_digest(),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(
            Hash::sha256_of(b"abc").nix32_digest(),
            "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"
        );
        assert_eq!(
            Hash::sha256_of(b"bar").nix32_digest(),
            "1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw"
        );
    }

    #[test]
    fn other_algos() {
        let md5 = Hash::new(HashAlgo::Md5, vec![0xab; 16]).unwrap();
        assert_eq!(Hash::parse(&md5.to_nix32()).unwrap(), md5);
        assert_eq!(Hash::parse(&md5.to_hex()).unwrap(), md5);
        assert_eq!(Hash::parse(&md5.to_sri()).unwrap(), md5);
        let sha1 = Hash::new(HashAlgo::Sha1, (0..20).collect()).unwrap();
        assert_eq!(sha1.to_nix32().len(), 5 + 32);
        assert_eq!(Hash::parse(&sha1.to_nix32()).unwrap(), sha1);
        let sha512 = Hash::new(HashAlgo::Sha512, (0..64).collect()).unwrap();
        assert_eq!(sha512.nix32_digest().len(), 103);
        assert_eq!(Hash::parse(&sha512.to_nix32()).unwrap(), sha512);
        assert_eq!(Hash::parse(&sha512.to_sri()).unwrap(), sha512);
        assert_eq!(sha512.digest().len(), 64);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Hash::parse("sha256:abc").unwrap_err().to_string(),
            "hash 'sha256:abc' has wrong length 3 for sha256 (expected 52 nix32, 64 base16 or 44 base64 characters)"
        );
        assert_eq!(
            Hash::parse("blake3:abc").unwrap_err().to_string(),
            "unknown hash algorithm 'blake3'"
        );
        assert_eq!(
            Hash::parse("abc").unwrap_err().to_string(),
            "hash 'abc' does not start with '<algo>:' or '<algo>-'"
        );
        let bad_n32 = format!("sha256:{}e", &N32_HELLO[..51]);
        assert!(matches!(
            Hash::parse(&bad_n32),
            Err(HashError::BadDigest {
                encoding: "nix32",
                ..
            })
        ));
        let bad_hex = format!("sha256:{}g", &HEX_HELLO[..63]);
        assert!(matches!(
            Hash::parse(&bad_hex),
            Err(HashError::BadDigest {
                encoding: "base16",
                ..
            })
        ));
        assert!(Hash::parse("sha256-AAAA").is_err());
        assert!(Hash::new(HashAlgo::Sha256, vec![0; 31]).is_err());
        // Spill bits in nix32 are rejected like Nix does.
        assert!(Hash::parse(&format!("sha256:z{}", &N32_HELLO[1..])).is_err());
    }

    #[test]
    fn nix_base64_quirks() {
        assert_eq!(base64_decode("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8=garbage!").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert!(base64_decode("aGV sbG8=").is_err());
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
    }
}
