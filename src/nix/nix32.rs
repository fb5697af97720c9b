//! Nix's "base32" encoding (nix32).
//!
//! Not RFC 4648: the alphabet omits `e o u t`, and the byte string is read as a
//! little-endian integer whose base-32 digits are printed most significant first.

use thiserror::Error;

/// The 32 nix32 digits, in value order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Maps an ASCII byte to its nix32 digit value, or 0xff when it is not a digit.
const DECODE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 32 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Why a nix32 string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Nix32Error {
    /// A character outside the nix32 alphabet.
    #[error("invalid character {ch:?} at position {pos} in nix32 string '{input}'")]
    InvalidChar {
        /// The whole input.
        input: String,
        /// The offending character.
        ch: char,
        /// Its character index in the input.
        pos: usize,
    },
    /// Bits set beyond the decoded length: not an encoding Nix can produce.
    #[error("invalid nix32 string '{input}': non-zero bits beyond {len} bytes")]
    NonZeroSpill {
        /// The whole input.
        input: String,
        /// The decoded length in bytes.
        len: usize,
    },
}

/// Length of the nix32 encoding of `byte_len` bytes: `(n*8 - 1)/5 + 1`, and 0 for 0.
pub fn encoded_len(byte_len: usize) -> usize {
    if byte_len == 0 {
        0
    } else {
        (byte_len * 8 - 1) / 5 + 1
    }
}

/// Number of bytes a nix32 string of `char_len` characters decodes to.
pub fn decoded_len(char_len: usize) -> usize {
    char_len * 5 / 8
}

/// Encodes bytes as nix32.
pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let lo = u16::from(bytes.get(i).copied().unwrap_or(0)) >> j;
        let hi = u16::from(bytes.get(i + 1).copied().unwrap_or(0)) << (8 - j);
        let c = ((lo | hi) & 0x1f) as usize;
        out.push(char::from(ALPHABET[c]));
    }
    out
}

/// Decodes a nix32 string into `s.len()*5/8` bytes.
///
/// Rejects characters outside the alphabet and encodings with bits set beyond the
/// decoded length (`"zz"` and `"c0"` are not valid encodings of one byte).
pub fn decode(s: &str) -> Result<Vec<u8>, Nix32Error> {
    let mut out = vec![0u8; decoded_len(s.len())];
    decode_into(s, &mut out)?;
    Ok(out)
}

/// Decodes `s` into `out`, which must be exactly `decoded_len(s.len())` bytes long
/// and zeroed. Shared by [`decode`] and fixed-size callers.
pub(crate) fn decode_into(s: &str, out: &mut [u8]) -> Result<(), Nix32Error> {
    let len = out.len();
    let bytes = s.as_bytes();
    for (n, &c) in bytes.iter().rev().enumerate() {
        let digit = DECODE[usize::from(c)];
        if digit == 0xff {
            let pos = bytes.len() - 1 - n;
            let ch = s
                .get(pos..)
                .and_then(|t| t.chars().next())
                .unwrap_or('\u{fffd}');
            return Err(Nix32Error::InvalidChar {
                input: s.to_owned(),
                ch,
                pos: s.get(..pos).map_or(pos, |p| p.chars().count()),
            });
        }
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let wide = u16::from(digit) << j;
        let spill = (wide >> 8) as u8;
        match out.get_mut(i) {
            Some(slot) => *slot |= wide as u8,
            None if digit != 0 => return Err(spill_err(s, len)),
            None => continue,
        }
        if spill != 0 {
            match out.get_mut(i + 1) {
                Some(slot) => *slot |= spill,
                None => return Err(spill_err(s, len)),
            }
        }
    }
    Ok(())
}

fn spill_err(s: &str, len: usize) -> Nix32Error {
    Nix32Error::NonZeroSpill {
        input: s.to_owned(),
        len,
    }
}

/// True if `c` is one of the 32 nix32 digits.
pub fn is_digit(c: u8) -> bool {
    DECODE[usize::from(c)] != 0xff
}

/// True if every byte of `s` is a nix32 digit.
pub fn is_nix32(s: &str) -> bool {
    s.bytes().all(|c| DECODE[usize::from(c)] != 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("1f", "0z"),
        (
            "8a12321522fd91efbd60ebb2481af88580f61600",
            "00bgd045z0d4icpbc2yyz4gx48ak44la",
        ),
        (
            "b3a24de97a8fdbc835b9833169501030b8977031bcb54b3b3ac13740f846ab30",
            "0c5b8vw40dy178xlpddw65q9gf1h2186jcc3p4swinwggbllv8mk",
        ),
        (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
        ),
        (
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
        ),
        (
            "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13",
            "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
        ),
    ];

    #[test]
    fn doc_vectors_encode_and_decode() {
        for (h, n32) in VECTORS {
            let bytes = hex(h);
            assert_eq!(encode(&bytes), *n32, "encode {h}");
            assert_eq!(decode(n32).unwrap(), bytes, "decode {n32}");
            assert_eq!(encoded_len(bytes.len()), n32.len());
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(encoded_len(20), 32);
        assert_eq!(encoded_len(32), 52);
        assert_eq!(encoded_len(16), 26);
        assert_eq!(encoded_len(64), 103);
        assert_eq!(decoded_len(52), 32);
        assert_eq!(decoded_len(103), 64);
    }

    #[test]
    fn rejects_spill_bits() {
        assert!(matches!(
            decode("zz"),
            Err(Nix32Error::NonZeroSpill { len: 1, .. })
        ));
        assert!(matches!(
            decode("c0"),
            Err(Nix32Error::NonZeroSpill { len: 1, .. })
        ));
        // The largest valid 1-byte encoding.
        assert_eq!(decode("7z").unwrap(), vec![0xff]);
        // A leading digit that lands past the end must be zero.
        assert_eq!(decode("00z").unwrap(), vec![31]);
        assert!(decode("10z").is_err());
    }

    #[test]
    fn rejects_bad_chars() {
        let err = decode("0e").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid character 'e' at position 1 in nix32 string '0e'"
        );
        for bad in ["0o", "0u", "0t", "0A", "0-", "é0"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roundtrip_all_lengths() {
        let data: Vec<u8> = (0u8..=255).map(|x| x.wrapping_mul(37) ^ 0x5a).collect();
        for n in 0..70 {
            let bytes = &data[..n];
            let s = encode(bytes);
            assert_eq!(s.len(), encoded_len(n));
            assert_eq!(decode(&s).unwrap(), bytes);
        }
    }
}
