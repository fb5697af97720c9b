//! What a scan feeds into the index: listed objects ([`NarObject`], [`OtherObject`]), a read
//! narinfo ([`RowData`], [`NarInfoSummary`]), and the small encodings rows are keyed by.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Comp, RowStatus, TextRef};
use crate::nix::{NarInfo, TrustedKeys, nix32};

/// A NAR (or other object under `nar/`) as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NarObject {
    /// Its key, e.g. `nar/1w1fff….nar.xz`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// LastModified (Unix seconds; `i64::MIN` when unknown).
    pub mtime: i64,
}

/// An object at the cache root that is neither a narinfo nor `nix-cache-info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherObject {
    /// Its key, e.g. `nar/1w1fff….nar.xz`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// LastModified (Unix seconds; `i64::MIN` when unknown).
    pub mtime: i64,
}

/// What a judged narinfo contributes to its row.
#[derive(Clone, Debug)]
pub struct RowData {
    /// The narinfo key's hash part.
    pub hash_part: String,
    /// The narinfo object's size, mtime and etag.
    pub obj_size: u64,
    /// LastModified (Unix seconds; `i64::MIN` when unknown).
    pub mtime: i64,
    /// ETag hash (see [`etag_hash`]).
    pub etag: u64,
    /// The parsed narinfo, or `None` when it could not be read.
    pub info: Option<NarInfoSummary>,
    /// The verdict the scan gave it ([`RowStatus::Pending`] until judged).
    pub status: RowStatus,
    /// Where the text was stored.
    pub text: TextRef,
}

/// The parts of a narinfo the index keeps.
#[derive(Clone, Debug)]
pub struct NarInfoSummary {
    /// The name part of `StorePath` (after `<hash>-`).
    pub name: String,
    /// StorePath hash part (to detect a narinfo stored under another key).
    pub store_hash: String,
    /// The `URL` field: where the NAR file is, relative to the cache root.
    pub url: String,
    /// References (hash part and name).
    pub references: Vec<(String, String)>,
    /// The `NarSize` field: bytes of the uncompressed NAR.
    pub nar_size: u64,
    /// The `FileSize` field (compressed size), when the narinfo gives it.
    pub file_size: Option<u64>,
    /// The Compression field.
    pub comp: Comp,
    /// Whether the narinfo has a `CA` field.
    pub ca: bool,
    /// Whether the narinfo names a `Deriver`.
    pub deriver: bool,
}

impl NarInfoSummary {
    /// The summary of a parsed narinfo.
    pub fn of(info: &NarInfo) -> NarInfoSummary {
        NarInfoSummary {
            name: info.store_path.name().to_string(),
            store_hash: info.store_path.hash_part().to_string(),
            url: info.url.clone(),
            references: info
                .references
                .iter()
                .map(|r| (r.hash_part().to_string(), r.name().to_string()))
                .collect(),
            nar_size: info.nar_size,
            file_size: info.file_size,
            comp: Comp::from_field(info.compression.as_deref()),
            ca: info.ca.is_some(),
            deriver: info.deriver.is_some(),
        }
    }
}

/// A stable 64-bit hash of an ETag (FNV-1a; quotes and `W/` ignored), 0 for none.
pub fn etag_hash(etag: Option<&str>) -> u64 {
    let Some(e) = etag else { return 0 };
    let e = e.trim().trim_start_matches("W/").trim_matches('"');
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in e.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

/// Unix seconds of a time, `i64::MIN` for none.
pub fn unix_secs(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(i64::MIN)
}

/// A digest of a trusted key set: verdicts in an index are valid only under the same keys.
pub fn keys_id(keys: &TrustedKeys) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut names: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    names.sort();
    let mut h = Sha256::new();
    for n in names {
        h.update(n.as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

/// Decode a 32-character hash part.
pub fn digest_of(hash_part: &str) -> Option<[u8; 20]> {
    if hash_part.len() != 32 {
        return None;
    }
    nix32::decode(hash_part).ok()?.try_into().ok()
}
