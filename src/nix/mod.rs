//! Nix formats: nix32, hashes, store paths, narinfo, nix-cache-info, keys, signatures, and
//! Nix's trust rules.
//!
//! Pure code, no I/O. Byte-exact with what Nix reads and writes: each module names the Nix
//! 2.8 source (under `src/libstore/` and `src/libutil/`) whose behaviour it follows, and its
//! tests hold vectors that Nix 2.8 produced.
//!
//! Dependencies run one way: `fingerprint` ← `narinfo` ← `trust`; `key_error` ← `signature`
//! ← `keys`.

pub mod cache_info;
pub mod conf;
pub mod content_address;
pub mod fingerprint;
pub mod hash;
pub mod key_error;
pub mod keys;
pub mod narinfo;
pub mod nix32;
pub mod signature;
pub mod store_path;
#[cfg(test)]
pub(crate) mod testdata;
pub mod trust;

pub use cache_info::CacheInfo;
pub use content_address::ContentAddress;
pub use fingerprint::{fingerprint, fingerprint_in};
pub use hash::{Hash, HashAlgo};
pub use keys::{PublicKey, SecretKey, TrustedKeys};
pub use narinfo::NarInfo;
pub use signature::Signature;
pub use store_path::{STORE_DIR, StorePath};
pub use trust::{PathVerdict, SigCheck, SigOutcome, Verdict, check_path, check_paths};
