//! Nix formats: nix32, hashes, store paths, narinfo, nix-cache-info, keys, signatures.
//!
//! Pure code, no I/O. Byte-exact with what Nix reads and writes; see
//! `/work/shared/docs/nix-binary-cache.md` §2–§4 for the rules and test vectors.

pub mod cache_info;
pub mod content_address;
pub mod hash;
pub mod keys;
pub mod narinfo;
pub mod nix32;
pub mod signature;
pub mod store_path;

pub use cache_info::CacheInfo;
pub use content_address::ContentAddress;
pub use hash::{Hash, HashAlgo};
pub use keys::{PublicKey, SecretKey, Signature, TrustedKeys};
pub use narinfo::NarInfo;
pub use signature::{
    PathVerdict, SigCheck, SigOutcome, Verdict, check_path, check_paths, fingerprint,
    fingerprint_in,
};
pub use store_path::{STORE_DIR, StorePath};
