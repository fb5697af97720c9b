//! Ed25519 secret and public keys in Nix's `<name>:<base64>` form, and the set of trusted
//! public keys (`trusted-public-keys`). Signatures are in [`super::signature`].

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::hash::base64_encode;
use super::key_error::{KeyError, decode_fixed, split_named};
use super::signature::Signature;

/// The default `trusted-public-keys` entry of Nix.
pub const CACHE_NIXOS_ORG_KEY: &str =
    "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";

fn check_new_name(name: &str) -> Result<(), KeyError> {
    if let Some((before, _)) = name.split_once(':') {
        return Err(KeyError::BadName(format!("{before}:…")));
    }
    if name.is_empty() {
        return Err(KeyError::BadName(String::new()));
    }
    Ok(())
}

/// An Ed25519 secret key with its name. `Debug` shows only the name.
#[derive(Clone)]
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

impl SecretKey {
    /// Parses a secret key file: `<name>:<base64 of seed(32) || public(32)>`.
    /// Surrounding whitespace and newlines inside the base64 are tolerated.
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let (name, data) = split_named(text.trim(), "secret key")?;
        // Never echo the base64 of a secret key in an error.
        let bytes: [u8; 64] = decode_fixed(data, "secret key", name).map_err(|e| match e {
            KeyError::BadBase64 { what, name, .. } => KeyError::BadBase64 {
                what,
                name,
                cause: "invalid character".to_owned(),
            },
            other => other,
        })?;
        let mut bytes = bytes;
        let mut seed = [0u8; 32];
        let mut public = [0u8; 32];
        let (s, p) = bytes.split_at(32);
        seed.copy_from_slice(s);
        public.copy_from_slice(p);
        bytes.fill(0);
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        if key.verifying_key().as_bytes() != &public {
            return Err(KeyError::PublicHalfMismatch(name.to_owned()));
        }
        Ok(SecretKey {
            name: name.to_owned(),
            key,
        })
    }

    /// Generates a fresh key from the OS random number generator.
    pub fn generate(name: &str) -> Result<SecretKey, KeyError> {
        check_new_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random {
            name: name.to_owned(),
            cause: e.to_string(),
        })?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(SecretKey {
            name: name.to_owned(),
            key,
        })
    }

    /// Builds a key from a 32-byte seed (deterministic; for tests and imports).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<SecretKey, KeyError> {
        check_new_name(name)?;
        Ok(SecretKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file contents `nix-store --generate-binary-cache-key` writes: no trailing newline.
    pub fn to_file_text(&self) -> String {
        let bytes = self.key.to_keypair_bytes();
        let mut s = String::with_capacity(self.name.len() + 89);
        s.push_str(&self.name);
        s.push(':');
        s.push_str(&base64_encode(&bytes));
        s
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs a fingerprint (Ed25519, deterministic, like libsodium's `crypto_sign_detached`).
    pub fn sign(&self, fingerprint: &str) -> Signature {
        Signature {
            key_name: self.name.clone(),
            bytes: self.key.sign(fingerprint.as_bytes()).to_bytes(),
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key with its name.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Parses `<name>:<base64 of 32 bytes>` (surrounding whitespace tolerated).
    ///
    /// Errors name the key at most, never its data: a secret key given by mistake (64 bytes
    /// whose second half is the public key of the first) is recognised as
    /// [`KeyError::SecretNotPublic`].
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let text = text.trim();
        let (name, data) = split_named(text, "public key")?;
        let bytes: [u8; 32] = match decode_fixed(data, "public key", name) {
            Ok(b) => b,
            Err(KeyError::WrongLength { len: 64, .. }) if SecretKey::parse(text).is_ok() => {
                return Err(KeyError::SecretNotPublic(name.to_owned()));
            }
            Err(e) => return Err(e),
        };
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadPoint(name.to_owned()))?;
        Ok(PublicKey {
            name: name.to_owned(),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Ed25519 key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Checks `sig` over `fingerprint` with strict Ed25519 verification. Ignores names.
    pub fn verify(&self, fingerprint: &str, sig: &Signature) -> bool {
        let s = ed25519_dalek::Signature::from_bytes(&sig.bytes);
        self.key.verify_strict(fingerprint.as_bytes(), &s).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, base64_encode(self.key.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        PublicKey::parse(s)
    }
}

/// A set of trusted public keys, looked up by name; the first key added under a name wins.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// An empty set.
    pub fn new() -> Self {
        TrustedKeys::default()
    }

    /// Parses a whitespace-separated list as in `trusted-public-keys`.
    pub fn parse_list(s: &str) -> Result<TrustedKeys, KeyError> {
        let mut keys = TrustedKeys::new();
        for k in s.split_whitespace() {
            keys.add(PublicKey::parse(k)?);
        }
        Ok(keys)
    }

    /// Adds a key unless one with the same name is already present.
    pub fn add(&mut self, k: PublicKey) {
        if self.get(k.name()).is_none() {
            self.keys.push(k);
        }
    }

    /// The key with this name.
    pub fn get(&self, name: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.iter()
    }
}

impl FromIterator<PublicKey> for TrustedKeys {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> Self {
        let mut keys = TrustedKeys::new();
        for k in iter {
            keys.add(k);
        }
        keys
    }
}

impl Extend<PublicKey> for TrustedKeys {
    fn extend<I: IntoIterator<Item = PublicKey>>(&mut self, iter: I) {
        for k in iter {
            self.add(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::hash::base64_decode;
    use crate::nix::testdata::{TEST_PUBLIC, TEST_SECRET, leaked_pieces};

    #[test]
    fn secret_key_roundtrip() {
        let sk = SecretKey::parse(TEST_SECRET).unwrap();
        assert_eq!(sk.name(), "cache.example.com-1");
        assert_eq!(sk.to_file_text(), TEST_SECRET);
        assert_eq!(sk.public_key().to_string(), TEST_PUBLIC);
        // Trailing newline / whitespace tolerated, newline inside base64 too.
        let with_nl = format!("{TEST_SECRET}\n");
        assert_eq!(
            SecretKey::parse(&with_nl).unwrap().to_file_text(),
            TEST_SECRET
        );
        let (a, b) = TEST_SECRET.split_at(40);
        assert_eq!(
            SecretKey::parse(&format!("{a}\n{b}  \n"))
                .unwrap()
                .to_file_text(),
            TEST_SECRET
        );
        let dbg = format!("{sk:?}");
        assert_eq!(dbg, "SecretKey { name: \"cache.example.com-1\", .. }");
    }

    #[test]
    fn secret_key_errors_hide_material() {
        // Public half of another key: mismatch.
        let mut bytes = base64_decode(TEST_SECRET.split_once(':').unwrap().1).unwrap();
        bytes[40] ^= 1;
        let bad = format!("cache.example.com-1:{}", base64_encode(&bytes));
        let err = SecretKey::parse(&bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret key 'cache.example.com-1' is not valid: its public half does not match its seed"
        );
        let short = format!("k:{}", base64_encode(&bytes[..63]));
        assert_eq!(
            SecretKey::parse(&short).unwrap_err().to_string(),
            "secret key 'k' is not valid: 63 bytes, expected 64"
        );
        let secret_b64 = TEST_SECRET.split_once(':').unwrap().1;
        let garbled = format!("k:{}!{}", &secret_b64[..20], &secret_b64[20..]);
        let msg = SecretKey::parse(&garbled).unwrap_err().to_string();
        assert_eq!(msg, "secret key 'k' is not valid base64: invalid character");
        assert!(!msg.contains(&secret_b64[..20]));
        assert_eq!(
            SecretKey::parse(secret_b64).unwrap_err().to_string(),
            "secret key has no ':' between key name and base64 data"
        );
        assert_eq!(
            SecretKey::parse(&format!(":{secret_b64}"))
                .unwrap_err()
                .to_string(),
            "secret key has an empty key name"
        );
    }

    #[test]
    fn generate_roundtrip() {
        let sk = SecretKey::generate("demo-1").unwrap();
        let text = sk.to_file_text();
        assert!(text.starts_with("demo-1:"));
        assert!(!text.ends_with('\n'));
        assert_eq!(text.len(), "demo-1:".len() + 88);
        let back = SecretKey::parse(&text).unwrap();
        assert_eq!(back.public_key(), sk.public_key());
        assert_eq!(sk.public_key().to_string().len(), 51);
        let other = SecretKey::generate("demo-1").unwrap();
        assert_ne!(other.public_key(), sk.public_key());
        assert!(SecretKey::generate("").is_err());
        assert_eq!(
            SecretKey::generate("a:b").unwrap_err().to_string(),
            "invalid key name 'a:…': must be non-empty and must not contain ':'"
        );
        // A whole secret key given as the name is not echoed.
        let msg = SecretKey::generate(TEST_SECRET).unwrap_err().to_string();
        assert_eq!(leaked_pieces(&msg, TEST_SECRET, 12), Vec::<String>::new());
    }

    #[test]
    fn public_key_parse() {
        let pk = PublicKey::parse(TEST_PUBLIC).unwrap();
        assert_eq!(pk.name(), "cache.example.com-1");
        assert_eq!(pk.to_string(), TEST_PUBLIC);
        assert_eq!(PublicKey::parse(&format!(" {TEST_PUBLIC}\n")).unwrap(), pk);
        let nixos = PublicKey::parse(CACHE_NIXOS_ORG_KEY).unwrap();
        assert_eq!(nixos.to_string(), CACHE_NIXOS_ORG_KEY);
        assert_eq!(
            PublicKey::parse("k:AAAA").unwrap_err().to_string(),
            "public key 'k' is not valid: 3 bytes, expected 32"
        );
        assert!(PublicKey::parse("nocolon").is_err());
    }

    #[test]
    fn a_secret_key_given_as_public_is_recognised_and_not_echoed() {
        for text in [
            TEST_SECRET.to_string(),
            format!("  {TEST_SECRET}\n"),
            TEST_SECRET.replace("==", ""),
        ] {
            let err = PublicKey::parse(&text).unwrap_err();
            assert_eq!(err, KeyError::SecretNotPublic("cache.example.com-1".into()));
            let msg = err.to_string();
            assert!(
                msg.starts_with("'cache.example.com-1' is a secret key (keep it private)"),
                "{msg}"
            );
            assert!(
                msg.contains("nix key convert-secret-to-public < FILE"),
                "{msg}"
            );
            assert!(msg.contains("narscope key public FILE"), "{msg}");
            assert_eq!(leaked_pieces(&msg, TEST_SECRET, 12), Vec::<String>::new());
            assert!(TrustedKeys::parse_list(&text).is_err());
        }
        // 64 bytes that are not a key pair (e.g. a signature): only a length error, no data.
        let sig = "k:5SLzsRkKi90vHor0O595UqtjbW7VpXluVVXETfgnelaILr40R1JRW8Dc7VmaeEJmjDICxb8oVCKmNm2sexSBCw==";
        assert_eq!(
            PublicKey::parse(sig).unwrap_err().to_string(),
            "public key 'k' is not valid: 64 bytes, expected 32"
        );
    }

    #[test]
    fn public_key_errors_never_echo_the_data() {
        let b64 = TEST_SECRET.split_once(':').unwrap().1;
        // No name: nothing of the text is shown.
        let msg = PublicKey::parse(b64).unwrap_err().to_string();
        assert_eq!(
            msg,
            "public key has no ':' between key name and base64 data"
        );
        assert_eq!(
            PublicKey::parse(&format!(":{b64}"))
                .unwrap_err()
                .to_string(),
            "public key has an empty key name"
        );
        // Not base64: the name and the offending character, not the data.
        let msg = PublicKey::parse(&format!("k:{}!{}", &b64[..30], &b64[30..]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "public key 'k' is not valid base64: invalid base64 character '!' at offset 30"
        );
        // 32 bytes that are not a curve point: the name only.
        let bad_point = (0u8..=255)
            .map(|b| [b; 32])
            .find(|b| VerifyingKey::from_bytes(b).is_err())
            .expect("some 32-byte pattern is not a point");
        let text = format!("k:{}", base64_encode(&bad_point));
        assert_eq!(
            PublicKey::parse(&text).unwrap_err().to_string(),
            "public key 'k' is not a valid Ed25519 point"
        );
    }

    #[test]
    fn trusted_keys_first_wins() {
        let a = PublicKey::parse(TEST_PUBLIC).unwrap();
        let other = SecretKey::generate("cache.example.com-1")
            .unwrap()
            .public_key();
        let mut keys = TrustedKeys::new();
        assert!(keys.is_empty());
        keys.add(a.clone());
        keys.add(other);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get("cache.example.com-1"), Some(&a));
        assert!(keys.get("nope").is_none());
        let list =
            TrustedKeys::parse_list(&format!("{TEST_PUBLIC} {CACHE_NIXOS_ORG_KEY}")).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list.iter().map(|k| k.name()).collect::<Vec<_>>(),
            ["cache.example.com-1", "cache.nixos.org-1"]
        );
    }
}
