//! A detached signature of a path's fingerprint, `<key name>:<base64 of 64 bytes>`, as written
//! in a narinfo's `Sig` lines.

use std::fmt;
use std::str::FromStr;

use super::hash::base64_encode;
use super::key_error::{KeyError, decode_fixed, split_named};

/// A detached signature `<key name>:<base64 of 64 bytes>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Name of the key that made it (text before the first ':').
    pub key_name: String,
    /// The Ed25519 signature.
    pub bytes: [u8; 64],
}

impl Signature {
    /// Parses `<name>:<base64>`: non-empty name, exactly 64 decoded bytes.
    pub fn parse(s: &str) -> Result<Signature, KeyError> {
        let what = || format!("signature '{s}'");
        let (name, data) = split_named(s, &what())?;
        let bytes: [u8; 64] = decode_fixed(data, "signature", name)?;
        Ok(Signature {
            key_name: name.to_owned(),
            bytes,
        })
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.key_name, base64_encode(&self.bytes))
    }
}

impl FromStr for Signature {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Signature::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_parse() {
        let s = "cache.example.com-1:5SLzsRkKi90vHor0O595UqtjbW7VpXluVVXETfgnelaILr40R1JRW8Dc7VmaeEJmjDICxb8oVCKmNm2sexSBCw==";
        let sig = Signature::parse(s).unwrap();
        assert_eq!(sig.key_name, "cache.example.com-1");
        assert_eq!(sig.to_string(), s);
        assert_eq!(
            Signature::parse("garbage").unwrap_err().to_string(),
            "signature 'garbage' has no ':' between key name and base64 data"
        );
        assert_eq!(
            Signature::parse("k:").unwrap_err().to_string(),
            "signature 'k' is not valid: 0 bytes, expected 64"
        );
        assert_eq!(
            Signature::parse(":abc").unwrap_err().to_string(),
            "signature ':abc' has an empty key name"
        );
    }
}
