//! The `<key name>:<base64>` text form that Nix uses for secret keys, public keys and
//! signatures: splitting and decoding it, and [`KeyError`], why such text was rejected.

use thiserror::Error;

use super::hash::base64_decode;

/// The advice given when a secret key turns up where a public key belongs.
pub const PUBLIC_HALF_ADVICE: &str = "give its public half instead: \
     `nix key convert-secret-to-public < FILE` (Nix ≥ 2.8, experimental nix-command) \
     or `narscope key public FILE`";

/// Why a key or signature was rejected. Never carries key material: at most a key's name (the
/// text of a malformed *signature* is shown, signatures being public).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// No `:` separating name and data.
    #[error("{what} has no ':' between key name and base64 data")]
    MissingColon {
        /// "secret key", "public key" or `"signature '<text>'"`.
        what: String,
    },
    /// Empty key name.
    #[error("{what} has an empty key name")]
    EmptyName {
        /// What was being parsed.
        what: String,
    },
    /// A key name for a new key containing ':' or nothing. Carries the name up to its first
    /// ':' only (a whole key given as a name is not echoed).
    #[error("invalid key name '{0}': must be non-empty and must not contain ':'")]
    BadName(String),
    /// Base64 that does not decode.
    #[error("{what} '{name}' is not valid base64: {cause}")]
    BadBase64 {
        /// What was being parsed.
        what: String,
        /// Name of the key or signature whose data is not base64.
        name: String,
        /// What was wrong (never includes secret bytes).
        cause: String,
    },
    /// Decoded data of the wrong length.
    #[error("{what} '{name}' is not valid: {len} bytes, expected {expected}")]
    WrongLength {
        /// What was being parsed.
        what: String,
        /// Name of the key or signature whose data has the wrong length.
        name: String,
        /// Number of bytes the base64 decoded to.
        len: usize,
        /// Number of bytes required.
        expected: usize,
    },
    /// The public half stored in a secret key file does not match its seed.
    #[error("secret key '{0}' is not valid: its public half does not match its seed")]
    PublicHalfMismatch(String),
    /// 32 bytes that are not an Ed25519 point (carries the key name).
    #[error("public key '{0}' is not a valid Ed25519 point")]
    BadPoint(String),
    /// A secret key given where a public key belongs (carries the key name only).
    #[error("'{0}' is a secret key (keep it private), not a public key; {PUBLIC_HALF_ADVICE}")]
    SecretNotPublic(String),
    /// The system random number generator failed.
    #[error("cannot generate key '{name}': random number generator failed: {cause}")]
    Random {
        /// Name of the key that could not be generated.
        name: String,
        /// The OS error.
        cause: String,
    },
}

/// Splits `<name>:<data>`, the name being everything before the first ':'.
pub(super) fn split_named<'a>(text: &'a str, what: &str) -> Result<(&'a str, &'a str), KeyError> {
    let (name, data) = text.split_once(':').ok_or_else(|| KeyError::MissingColon {
        what: what.to_owned(),
    })?;
    if name.is_empty() {
        return Err(KeyError::EmptyName {
            what: what.to_owned(),
        });
    }
    Ok((name, data))
}

/// Decodes base64 into exactly `N` bytes.
pub(super) fn decode_fixed<const N: usize>(
    data: &str,
    what: &str,
    name: &str,
) -> Result<[u8; N], KeyError> {
    let bytes = base64_decode(data).map_err(|cause| KeyError::BadBase64 {
        what: what.to_owned(),
        name: name.to_owned(),
        cause: cause.to_string(),
    })?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| KeyError::WrongLength {
        what: what.to_owned(),
        name: name.to_owned(),
        len: bytes.len(),
        expected: N,
    })
}
