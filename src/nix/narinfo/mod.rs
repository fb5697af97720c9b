//! `.narinfo` files: parsing like Nix 2.8–HEAD, byte-exact round trips, minimal edits.
//!
//! `parse.rs` reads the text, `render.rs` writes it back (touching only changed lines), and
//! `error.rs` says why a narinfo was rejected or what Nix tolerates in it.

use std::fmt;

use super::content_address::ContentAddress;
use super::fingerprint::fingerprint_in;
use super::hash::{Hash, HashEncoding};
use super::keys::SecretKey;
use super::signature::Signature;
use super::store_path::{STORE_DIR, StorePath, StorePathError};

mod error;
mod parse;
mod render;
#[cfg(test)]
mod tests;

pub use error::{NarInfoError, NarInfoErrorKind, Quirk};
use parse::{Field, lines, parse_fields};

/// A parsed narinfo. Public fields hold the values; a parsed narinfo also keeps its
/// original text so that [`NarInfo::to_text`] reproduces it byte for byte when
/// nothing changed, and touches only the changed lines otherwise.
#[derive(Clone)]
pub struct NarInfo {
    /// `StorePath`, without its store directory (see [`NarInfo::store_dir`]).
    pub store_path: StorePath,
    /// `URL` of the (compressed) NAR, relative to the cache root.
    pub url: String,
    /// `Compression` as written; `None` when the line is absent.
    pub compression: Option<String>,
    /// `FileHash` of the file at `url`.
    pub file_hash: Option<Hash>,
    /// `FileSize` of the file at `url`.
    pub file_size: Option<u64>,
    /// `NarHash` of the uncompressed NAR.
    pub nar_hash: Hash,
    /// `NarSize` of the uncompressed NAR (never 0 after parsing).
    pub nar_size: u64,
    /// `References`, in narinfo order.
    pub references: Vec<StorePath>,
    /// `Deriver`; `unknown-deriver` reads as `None`.
    pub deriver: Option<StorePath>,
    /// `System` (written by old tools, ignored by Nix).
    pub system: Option<String>,
    /// Raw `Sig` values in file order, duplicates collapsed.
    pub sigs: Vec<String>,
    /// The `CA` field: the content address of a content-addressed path.
    pub ca: Option<ContentAddress>,
    raw: Option<String>,
    quirks: Vec<Quirk>,
    nar_hash_encoding: HashEncoding,
    /// The store directory of `StorePath` when it is not `/nix/store`.
    store_dir: Option<Box<str>>,
}

/// The key name of a `Sig` value (`name:base64`), if it has one.
pub(crate) fn sig_key_name(s: &str) -> Option<&str> {
    s.split_once(':').map(|(n, _)| n)
}

impl NarInfo {
    /// A fresh narinfo; references are sorted and deduplicated as Nix writes them.
    /// `compression` is the `Compression` value (`xz`, `zstd`, `none`, …).
    pub fn new(
        store_path: StorePath,
        url: impl Into<String>,
        compression: &str,
        nar_hash: Hash,
        nar_size: u64,
        mut references: Vec<StorePath>,
    ) -> NarInfo {
        references.sort_unstable();
        references.dedup();
        NarInfo {
            store_path,
            url: url.into(),
            compression: Some(compression.to_owned()),
            file_hash: None,
            file_size: None,
            nar_hash,
            nar_size,
            references,
            deriver: None,
            system: None,
            sigs: Vec::new(),
            ca: None,
            raw: None,
            quirks: Vec::new(),
            nar_hash_encoding: HashEncoding::Nix32,
            store_dir: None,
        }
    }

    /// The store directory of `StorePath` (`/nix/store`, `/gnu/store`, …): a parsed
    /// narinfo's is the one its `StorePath` line names.
    pub fn store_dir(&self) -> &str {
        self.store_dir.as_deref().unwrap_or(STORE_DIR)
    }

    /// Moves the path to the store directory `dir` (references and `Deriver` follow, as
    /// they are written as base names). The fingerprint and any content address depend on
    /// it. Fails when `dir` cannot be a store directory.
    pub fn set_store_dir(&mut self, dir: &str) -> Result<(), StorePathError> {
        if !super::store_path::is_store_dir(dir) {
            return Err(StorePathError::NotAStorePath(self.store_path.in_dir(dir)));
        }
        self.store_dir = (dir != STORE_DIR).then(|| Box::from(dir));
        Ok(())
    }

    /// `StorePath` as written: `<store dir>/<hash>-<name>`.
    pub fn absolute_path(&self) -> String {
        self.store_path.in_dir(self.store_dir())
    }

    /// Sets `FileHash` and `FileSize`.
    pub fn with_file(mut self, file_hash: Hash, file_size: u64) -> NarInfo {
        self.file_hash = Some(file_hash);
        self.file_size = Some(file_size);
        self
    }

    /// Sets `Deriver` to `deriver`.
    pub fn with_deriver(mut self, deriver: StorePath) -> NarInfo {
        self.deriver = Some(deriver);
        self
    }

    /// Sets `CA` to `ca`.
    pub fn with_ca(mut self, ca: ContentAddress) -> NarInfo {
        self.ca = Some(ca);
        self
    }

    /// Parses narinfo text. `origin` names the object in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<NarInfo, NarInfoError> {
        let mut info = parse_fields(text, origin)?;
        info.raw = Some(text.to_owned());
        Ok(info)
    }

    /// Like [`NarInfo::parse`] for raw bytes; non-UTF-8 input is an error.
    pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<NarInfo, NarInfoError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => NarInfo::parse(text, origin),
            Err(e) => {
                let upto = bytes.get(..e.valid_up_to()).unwrap_or_default();
                let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
                Err(NarInfoError {
                    origin: origin.to_owned(),
                    line: Some(line),
                    kind: NarInfoErrorKind::NotUtf8,
                })
            }
        }
    }

    /// Drops the kept original text to save memory. [`NarInfo::to_text`] then writes
    /// the values in Nix's field order instead of reproducing the file.
    pub fn forget_text(&mut self) {
        self.raw = None;
    }

    /// True if this narinfo still holds the text it was parsed from.
    pub fn has_original_text(&self) -> bool {
        self.raw.is_some()
    }

    /// The effective compression: the field, or `bzip2` when missing or empty.
    pub fn compression_name(&self) -> &str {
        match self.compression.as_deref() {
            None | Some("") => "bzip2",
            Some(c) => c,
        }
    }

    /// How `NarHash` was written in the parsed file (`Nix32` for fresh narinfos).
    pub fn nar_hash_encoding(&self) -> HashEncoding {
        self.nar_hash_encoding
    }

    /// The fingerprint Nix signs for this path.
    pub fn fingerprint(&self) -> String {
        fingerprint_in(
            self.store_dir(),
            &self.store_path,
            &self.nar_hash,
            self.nar_size,
            &self.references,
        )
    }

    /// The object key `<hash>.narinfo`.
    pub fn narinfo_key(&self) -> String {
        self.store_path.narinfo_key()
    }

    /// Quirks of the file as parsed (empty for fresh narinfos).
    pub fn quirks(&self) -> Vec<Quirk> {
        self.quirks.clone()
    }

    /// Lines with field names Nix ignores, as `(name, value)`, in file order.
    pub fn unknown_fields(&self) -> Vec<(&str, &str)> {
        let Some(raw) = &self.raw else {
            return Vec::new();
        };
        lines(raw)
            .filter_map(Result::ok)
            .filter(|l| Field::from_name(l.name).is_none())
            .map(|l| (l.name, l.value))
            .collect()
    }

    /// Adds a signature; false if the same signature is already there. On a parsed
    /// narinfo the new `Sig` line goes after the last `Sig` line and nothing else changes.
    pub fn add_signature(&mut self, sig: &Signature) -> bool {
        let already = self
            .sigs
            .iter()
            .any(|s| Signature::parse(s).is_ok_and(|p| p == *sig));
        if already {
            return false;
        }
        let text = sig.to_string();
        if self.raw.is_some() {
            self.sigs.push(text);
        } else {
            // Fresh narinfos keep Nix's sorted order.
            let pos = self.sigs.partition_point(|s| s.as_str() < text.as_str());
            self.sigs.insert(pos, text);
        }
        true
    }

    /// Signs this narinfo's fingerprint with `key` and adds the signature.
    pub fn sign(&mut self, key: &SecretKey) -> bool {
        let sig = key.sign(&self.fingerprint());
        self.add_signature(&sig)
    }

    /// Removes every signature whose key name is `key_name`; returns how many.
    pub fn remove_signatures_by_key(&mut self, key_name: &str) -> usize {
        let before = self.sigs.len();
        self.sigs.retain(|s| sig_key_name(s) != Some(key_name));
        before - self.sigs.len()
    }
}

impl PartialEq for NarInfo {
    /// Compares the values only, not the original text.
    fn eq(&self, other: &Self) -> bool {
        self.fields_eq(other)
    }
}

impl Eq for NarInfo {}

impl fmt::Debug for NarInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NarInfo")
            .field("store_dir", &self.store_dir())
            .field("store_path", &self.store_path)
            .field("url", &self.url)
            .field("compression", &self.compression)
            .field("file_hash", &self.file_hash)
            .field("file_size", &self.file_size)
            .field("nar_hash", &self.nar_hash)
            .field("nar_size", &self.nar_size)
            .field("references", &self.references)
            .field("deriver", &self.deriver)
            .field("system", &self.system)
            .field("sigs", &self.sigs)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}
