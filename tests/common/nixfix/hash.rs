//! Hash-string normalisation, so Nix's SRI output and narscope's output can be compared.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const NIX32: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Decode Nix's base-32 ("nix32") text into `len` bytes.
pub fn nix32_decode(s: &str, len: usize) -> Option<Vec<u8>> {
    if s.len() != (len * 8).div_ceil(5) {
        return None;
    }
    let mut out = vec![0u8; len];
    for (idx, ch) in s.bytes().enumerate() {
        let digit = NIX32.iter().position(|&c| c == ch)? as u16;
        let n = s.len() - 1 - idx;
        let b = n * 5;
        let (i, j) = (b / 8, b % 8);
        let lo = (digit << j) & 0xff;
        *out.get_mut(i)? |= lo as u8;
        let hi = digit >> (8 - j);
        match out.get_mut(i + 1) {
            Some(byte) => *byte |= hi as u8,
            None if hi != 0 => return None,
            None => {}
        }
    }
    Some(out)
}

/// Encode bytes as Nix's base-32 text.
pub fn nix32_encode(bytes: &[u8]) -> String {
    let len = (bytes.len() * 8).div_ceil(5);
    let mut s = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let (i, j) = (b / 8, b % 8);
        let lo = u16::from(bytes.get(i).copied().unwrap_or(0)) >> j;
        let hi = u16::from(bytes.get(i + 1).copied().unwrap_or(0)) << (8 - j);
        s.push(char::from(NIX32[usize::from((lo | hi) & 0x1f)]));
    }
    s
}

/// Parse a sha256 hash written as `sha256:<nix32|hex|base64>`, `sha256-<base64>` (SRI) or
/// a bare nix32/hex/base64 digest, into its 32 raw bytes.
pub fn sha256_bytes(s: &str) -> Option<Vec<u8>> {
    let body = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("sha256-"))
        .unwrap_or(s);
    match body.len() {
        52 => nix32_decode(body, 32),
        64 => hex_decode(body),
        44 => STANDARD.decode(body).ok().filter(|b| b.len() == 32),
        _ => None,
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nix32_roundtrip_known_vector() {
        // The NarHash of a one-file store path (`hello.txt`, equal to its CA hash) and the SRI form
        // Nix 2.8's `nix path-info --json` printed for the same file.
        let nix32 = "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw";
        let sri = "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=";
        let a = super::sha256_bytes(&format!("sha256:{nix32}")).unwrap();
        let b = super::sha256_bytes(sri).unwrap();
        assert_eq!(a, b);
        assert_eq!(super::nix32_encode(&a), nix32);
        assert!(
            super::sha256_bytes("sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqe")
                .is_none()
        );
    }
}
