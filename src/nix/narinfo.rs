//! `.narinfo` files: parsing like Nix 2.8–HEAD, byte-exact round trips, minimal edits.

use std::fmt;

use thiserror::Error;

use super::content_address::{CaError, ContentAddress};
use super::hash::{Hash, HashAlgo, HashEncoding, HashError, detect_encoding};
use super::keys::{SecretKey, Signature};
use super::signature::fingerprint_in;
use super::store_path::{STORE_DIR, StorePath, StorePathError};

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
    /// `CA`.
    pub ca: Option<ContentAddress>,
    raw: Option<String>,
    quirks: Vec<Quirk>,
    nar_hash_encoding: HashEncoding,
    /// The store directory of `StorePath` when it is not `/nix/store`.
    store_dir: Option<Box<str>>,
}

/// A parse error: `<origin>: line N: <cause>` (no line for missing fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarInfoError {
    /// Where the narinfo came from, e.g. `s3://bkt/<hash>.narinfo`.
    pub origin: String,
    /// 1-based line number, when the problem is on one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub kind: NarInfoErrorKind,
}

impl fmt::Display for NarInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "{}: line {n}: {}", self.origin, self.kind),
            None => write!(f, "{}: {}", self.origin, self.kind),
        }
    }
}

impl std::error::Error for NarInfoError {}

/// The cause of a [`NarInfoError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NarInfoErrorKind {
    /// The bytes are not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The last line has no `\n` (Nix: "expecting '\n'").
    #[error("missing final newline")]
    MissingFinalNewline,
    /// A line ends in `\r`.
    #[error("line ends with '\\r' (CRLF line endings are not accepted)")]
    CrLf,
    /// An empty line.
    #[error("blank line")]
    BlankLine,
    /// A line without `:`.
    #[error("expecting ':' in '{0}'")]
    MissingColon(String),
    /// Nothing (or a multi-byte character) right after the `:`.
    #[error("field '{0}' is not followed by ': <value>'")]
    BadSeparator(String),
    /// A store path field that does not parse.
    #[error("bad {field}: {source}")]
    BadStorePath {
        /// `StorePath`, `References` or `Deriver`.
        field: &'static str,
        /// Why.
        source: StorePathError,
    },
    /// A hash field that does not parse (Nix: "bad hash").
    #[error("bad {field}: {source}")]
    BadHash {
        /// `NarHash` or `FileHash`.
        field: &'static str,
        /// Why.
        source: Box<HashError>,
    },
    /// A size that is not a decimal number.
    #[error("invalid {field} '{value}'")]
    BadNumber {
        /// `NarSize` or `FileSize`.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// A non-empty `References` line followed by another one.
    #[error("extra References")]
    ExtraReferences,
    /// A second non-empty `CA` line.
    #[error("extra CA")]
    ExtraCa,
    /// `CA` does not parse.
    #[error("bad CA: {0}")]
    BadCa(Box<CaError>),
    /// No `StorePath` line.
    #[error("StorePath missing")]
    StorePathMissing,
    /// No `NarHash` line.
    #[error("NarHash missing")]
    NarHashMissing,
    /// No `URL` line, or an empty one.
    #[error("URL missing")]
    UrlMissing,
    /// No `NarSize`, or `NarSize: 0`.
    #[error("NarSize missing or zero")]
    NarSizeMissing,
}

/// Something unusual in a parsed narinfo that Nix tolerates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Quirk {
    /// `NarHash` written in hex, base64 or SRI (the fingerprint re-encodes it).
    NarHashNotNix32,
    /// `FileHash` written in hex, base64 or SRI.
    FileHashNotNix32,
    /// `NarHash` is not sha256.
    NarHashNotSha256,
    /// `References` not sorted; Nix sorts them for the fingerprint.
    ReferencesOutOfOrder,
    /// A reference listed twice.
    DuplicateReference,
    /// `Deriver: unknown-deriver`.
    ExplicitUnknownDeriver,
    /// No `References` line (harmonia omits it).
    ReferencesMissing,
    /// `Compression` missing or empty: Nix assumes bzip2.
    CompressionDefault,
    /// A field Nix ignores (kept on rewrite).
    UnknownField(String),
    /// A single-valued field written more than once; the last one wins.
    DuplicateField(String),
    /// The same `Sig` value on two lines.
    DuplicateSig,
    /// A `Sig` that is not `<name>:<base64 of 64 bytes>` (Nix ≥ 2.34 rejects the file).
    MalformedSig(String),
    /// `Name:value` without the space; Nix drops the value's first character.
    NoSpaceAfterColon(usize),
    /// `CA: ` with an empty value.
    EmptyCa,
    /// Known fields not in the order Nix writes them.
    NonCanonicalOrder,
}

impl Quirk {
    /// A stable kebab-case identifier.
    pub fn code(&self) -> &'static str {
        match self {
            Quirk::NarHashNotNix32 => "nar-hash-not-nix32",
            Quirk::FileHashNotNix32 => "file-hash-not-nix32",
            Quirk::NarHashNotSha256 => "nar-hash-not-sha256",
            Quirk::ReferencesOutOfOrder => "references-out-of-order",
            Quirk::DuplicateReference => "duplicate-reference",
            Quirk::ExplicitUnknownDeriver => "explicit-unknown-deriver",
            Quirk::ReferencesMissing => "references-missing",
            Quirk::CompressionDefault => "compression-default",
            Quirk::UnknownField(_) => "unknown-field",
            Quirk::DuplicateField(_) => "duplicate-field",
            Quirk::DuplicateSig => "duplicate-sig",
            Quirk::MalformedSig(_) => "malformed-sig",
            Quirk::NoSpaceAfterColon(_) => "no-space-after-colon",
            Quirk::EmptyCa => "empty-ca",
            Quirk::NonCanonicalOrder => "non-canonical-order",
        }
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quirk::NarHashNotNix32 => f.write_str("NarHash is not written in nix32"),
            Quirk::FileHashNotNix32 => f.write_str("FileHash is not written in nix32"),
            Quirk::NarHashNotSha256 => f.write_str("NarHash is not sha256"),
            Quirk::ReferencesOutOfOrder => {
                f.write_str("References are not sorted (Nix sorts them for the fingerprint)")
            }
            Quirk::DuplicateReference => f.write_str("a reference is listed more than once"),
            Quirk::ExplicitUnknownDeriver => {
                f.write_str("Deriver is 'unknown-deriver' (read as no deriver)")
            }
            Quirk::ReferencesMissing => f.write_str("no References line (read as none)"),
            Quirk::CompressionDefault => {
                f.write_str("Compression missing or empty (Nix assumes bzip2)")
            }
            Quirk::UnknownField(n) => write!(f, "unknown field '{n}' (ignored by Nix)"),
            Quirk::DuplicateField(n) => {
                write!(f, "field '{n}' appears more than once (the last one wins)")
            }
            Quirk::DuplicateSig => f.write_str("a Sig line is repeated"),
            Quirk::MalformedSig(s) => write!(
                f,
                "malformed Sig '{s}' (kept by Nix up to 2.33, rejected by Nix 2.34 and later)"
            ),
            Quirk::NoSpaceAfterColon(n) => write!(
                f,
                "line {n}: no space after ':' (Nix drops the first character of the value)"
            ),
            Quirk::EmptyCa => f.write_str("empty CA field"),
            Quirk::NonCanonicalOrder => f.write_str("fields are not in the order Nix writes them"),
        }
    }
}

/// Known fields, in the order Nix writes them (`NarInfo::to_string`, with the
/// `System` line of older versions after `Deriver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    StorePath,
    Url,
    Compression,
    FileHash,
    FileSize,
    NarHash,
    NarSize,
    References,
    Deriver,
    System,
    Sig,
    Ca,
}

const FIELDS: [Field; 12] = [
    Field::StorePath,
    Field::Url,
    Field::Compression,
    Field::FileHash,
    Field::FileSize,
    Field::NarHash,
    Field::NarSize,
    Field::References,
    Field::Deriver,
    Field::System,
    Field::Sig,
    Field::Ca,
];

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        FIELDS.iter().copied().find(|f| f.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Field::StorePath => "StorePath",
            Field::Url => "URL",
            Field::Compression => "Compression",
            Field::FileHash => "FileHash",
            Field::FileSize => "FileSize",
            Field::NarHash => "NarHash",
            Field::NarSize => "NarSize",
            Field::References => "References",
            Field::Deriver => "Deriver",
            Field::System => "System",
            Field::Sig => "Sig",
            Field::Ca => "CA",
        }
    }

    fn rank(self) -> usize {
        self as usize
    }
}

/// One line of a narinfo, split the way Nix splits it.
struct Line<'a> {
    no: usize,
    text: &'a str,
    name: &'a str,
    value: &'a str,
    space: bool,
}

/// Splits narinfo text into lines, applying the per-line checks.
fn lines(text: &str) -> impl Iterator<Item = Result<Line<'_>, (usize, NarInfoErrorKind)>> {
    let mut rest = text;
    let mut no = 0usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        no += 1;
        let Some((line, after)) = rest.split_once('\n') else {
            rest = "";
            return Some(Err((no, NarInfoErrorKind::MissingFinalNewline)));
        };
        rest = after;
        Some(split_line(no, line))
    })
}

fn split_line(no: usize, line: &str) -> Result<Line<'_>, (usize, NarInfoErrorKind)> {
    if line.ends_with('\r') {
        return Err((no, NarInfoErrorKind::CrLf));
    }
    if line.is_empty() {
        return Err((no, NarInfoErrorKind::BlankLine));
    }
    let Some((name, after)) = line.split_once(':') else {
        return Err((no, NarInfoErrorKind::MissingColon(shorten(line))));
    };
    // Nix takes the value from colon + 2 whatever that character is.
    let mut chars = after.chars();
    let sep = chars.next();
    match sep {
        Some(c) if c.is_ascii() => Ok(Line {
            no,
            text: line,
            name,
            value: chars.as_str(),
            space: c == ' ',
        }),
        _ => Err((no, NarInfoErrorKind::BadSeparator(shorten(name)))),
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

fn parse_number(field: &'static str, value: &str) -> Result<u64, NarInfoErrorKind> {
    let bad = || NarInfoErrorKind::BadNumber {
        field,
        value: shorten(value),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

fn push_once(quirks: &mut Vec<Quirk>, q: Quirk) {
    if !quirks.contains(&q) {
        quirks.push(q);
    }
}

/// The key name of a `Sig` value (`name:base64`), if it has one.
pub(crate) fn sig_key_name(s: &str) -> Option<&str> {
    s.split_once(':').map(|(n, _)| n)
}

/// Parses `text` into a narinfo without keeping the text.
fn parse_fields(text: &str, origin: &str) -> Result<NarInfo, NarInfoError> {
    let err = |line: Option<usize>, kind| NarInfoError {
        origin: origin.to_owned(),
        line,
        kind,
    };

    let mut store_path = None;
    let mut store_dir = None;
    let mut url = String::new();
    let mut compression = None;
    let mut file_hash = None;
    let mut file_size = None;
    let mut nar_hash: Option<(Hash, HashEncoding)> = None;
    let mut nar_size = 0u64;
    let mut nar_size_line = None;
    let mut references: Vec<StorePath> = Vec::new();
    let mut saw_references = false;
    let mut deriver = None;
    let mut system = None;
    let mut sigs: Vec<String> = Vec::new();
    let mut ca = None;
    let mut quirks = Vec::new();
    let mut seen = [0u32; FIELDS.len()];
    let mut last_rank = 0usize;

    for line in lines(text) {
        let line = line.map_err(|(n, k)| err(Some(n), k))?;
        let at = |kind| err(Some(line.no), kind);
        if !line.space {
            quirks.push(Quirk::NoSpaceAfterColon(line.no));
        }
        let value = line.value;
        let Some(field) = Field::from_name(line.name) else {
            push_once(&mut quirks, Quirk::UnknownField(line.name.to_owned()));
            continue;
        };
        if let Some(count) = seen.get_mut(field.rank()) {
            *count += 1;
            if *count == 2 && !matches!(field, Field::Sig | Field::Ca) {
                push_once(&mut quirks, Quirk::DuplicateField(field.name().to_owned()));
            }
        }
        if field.rank() < last_rank {
            push_once(&mut quirks, Quirk::NonCanonicalOrder);
        }
        last_rank = last_rank.max(field.rank());

        match field {
            Field::StorePath => {
                // Any store directory: whether it is the cache's is for the reader to judge.
                let (dir, p) = StorePath::split_absolute(value).map_err(|source| {
                    at(NarInfoErrorKind::BadStorePath {
                        field: "StorePath",
                        source,
                    })
                })?;
                store_dir = (dir != STORE_DIR).then(|| Box::from(dir));
                store_path = Some(p);
            }
            Field::Url => url = value.to_owned(),
            Field::Compression => compression = Some(value.to_owned()),
            Field::FileHash | Field::NarHash => {
                let field_name = field.name();
                let h = Hash::parse(value).map_err(|source| {
                    at(NarInfoErrorKind::BadHash {
                        field: field_name,
                        source: Box::new(source),
                    })
                })?;
                let enc = detect_encoding(value).unwrap_or(HashEncoding::Nix32);
                if field == Field::NarHash {
                    nar_hash = Some((h, enc));
                } else {
                    file_hash = Some((h, enc));
                }
            }
            Field::FileSize => {
                file_size = Some(parse_number("FileSize", value).map_err(at)?);
            }
            Field::NarSize => {
                nar_size = parse_number("NarSize", value).map_err(at)?;
                nar_size_line = Some(line.no);
            }
            Field::References => {
                if !references.is_empty() {
                    return Err(at(NarInfoErrorKind::ExtraReferences));
                }
                saw_references = true;
                for r in value.split(' ').filter(|r| !r.is_empty()) {
                    let p = StorePath::from_base_name(r).map_err(|source| {
                        at(NarInfoErrorKind::BadStorePath {
                            field: "References",
                            source,
                        })
                    })?;
                    references.push(p);
                }
            }
            Field::Deriver => {
                if value == "unknown-deriver" {
                    push_once(&mut quirks, Quirk::ExplicitUnknownDeriver);
                } else {
                    let p = StorePath::from_base_name(value).map_err(|source| {
                        at(NarInfoErrorKind::BadStorePath {
                            field: "Deriver",
                            source,
                        })
                    })?;
                    deriver = Some(p);
                }
            }
            Field::System => system = Some(value.to_owned()),
            Field::Sig => {
                if sigs.iter().any(|s| s == value) {
                    push_once(&mut quirks, Quirk::DuplicateSig);
                } else {
                    sigs.push(value.to_owned());
                }
            }
            Field::Ca => {
                if ca.is_some() {
                    return Err(at(NarInfoErrorKind::ExtraCa));
                }
                if value.is_empty() {
                    push_once(&mut quirks, Quirk::EmptyCa);
                } else {
                    ca = Some(
                        ContentAddress::parse(value)
                            .map_err(|e| at(NarInfoErrorKind::BadCa(Box::new(e))))?,
                    );
                }
            }
        }
    }

    let Some(store_path) = store_path else {
        return Err(err(None, NarInfoErrorKind::StorePathMissing));
    };
    let Some((nar_hash, nar_hash_encoding)) = nar_hash else {
        return Err(err(None, NarInfoErrorKind::NarHashMissing));
    };
    if url.is_empty() {
        return Err(err(None, NarInfoErrorKind::UrlMissing));
    }
    if nar_size == 0 {
        // "NarSize: 0" is named by its line; a missing line by the object alone.
        return Err(err(nar_size_line, NarInfoErrorKind::NarSizeMissing));
    }

    if nar_hash_encoding != HashEncoding::Nix32 {
        quirks.push(Quirk::NarHashNotNix32);
    }
    if nar_hash.algo() != HashAlgo::Sha256 {
        quirks.push(Quirk::NarHashNotSha256);
    }
    if file_hash
        .as_ref()
        .is_some_and(|(_, e)| *e != HashEncoding::Nix32)
    {
        quirks.push(Quirk::FileHashNotNix32);
    }
    if !saw_references {
        quirks.push(Quirk::ReferencesMissing);
    }
    if !references.windows(2).all(|w| matches!(w, [a, b] if a < b)) {
        if references.windows(2).any(|w| matches!(w, [a, b] if a > b)) {
            quirks.push(Quirk::ReferencesOutOfOrder);
        }
        let mut sorted: Vec<&StorePath> = references.iter().collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
            quirks.push(Quirk::DuplicateReference);
        }
    }
    if compression.as_deref().is_none_or(str::is_empty) {
        quirks.push(Quirk::CompressionDefault);
    }
    for s in &sigs {
        if Signature::parse(s).is_err() {
            quirks.push(Quirk::MalformedSig(s.clone()));
        }
    }

    Ok(NarInfo {
        store_path,
        url,
        compression,
        file_hash: file_hash.map(|(h, _)| h),
        file_size,
        nar_hash,
        nar_size,
        references,
        deriver,
        system,
        sigs,
        ca,
        raw: None,
        quirks,
        nar_hash_encoding,
        store_dir,
    })
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

    /// Sets `Deriver`.
    pub fn with_deriver(mut self, deriver: StorePath) -> NarInfo {
        self.deriver = Some(deriver);
        self
    }

    /// Sets `CA`.
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

    /// The narinfo text. A parsed narinfo with unchanged values comes back byte for
    /// byte; changed values rewrite only their own lines (unknown lines, order and
    /// encodings of untouched fields are kept). A fresh one is written in Nix's order.
    pub fn to_text(&self) -> String {
        let Some(raw) = &self.raw else {
            return self.render_fresh();
        };
        let Ok(orig) = parse_fields(raw, "") else {
            return self.render_fresh();
        };
        if self.fields_eq(&orig) {
            return raw.clone();
        }
        self.render_edited(raw, &orig)
    }

    fn fields_eq(&self, o: &NarInfo) -> bool {
        FIELDS
            .iter()
            .all(|&f| f == Field::Sig || !self.field_changed(f, o))
            && self.sigs == o.sigs
    }

    fn field_changed(&self, f: Field, o: &NarInfo) -> bool {
        match f {
            Field::StorePath => {
                self.store_path != o.store_path || self.store_dir() != o.store_dir()
            }
            Field::Url => self.url != o.url,
            Field::Compression => self.compression != o.compression,
            Field::FileHash => self.file_hash != o.file_hash,
            Field::FileSize => self.file_size != o.file_size,
            Field::NarHash => self.nar_hash != o.nar_hash,
            Field::NarSize => self.nar_size != o.nar_size,
            Field::References => self.references != o.references,
            Field::Deriver => self.deriver != o.deriver,
            Field::System => self.system != o.system,
            Field::Sig => self.sigs != o.sigs,
            Field::Ca => self.ca != o.ca,
        }
    }

    /// The line for a single-valued field (without `\n`), or `None` if unset.
    fn render_field(&self, f: Field) -> Option<String> {
        let value = match f {
            Field::StorePath => self.absolute_path(),
            Field::Url => self.url.clone(),
            Field::Compression => self.compression.clone()?,
            Field::FileHash => self.file_hash.as_ref()?.to_nix32(),
            Field::FileSize => self.file_size?.to_string(),
            Field::NarHash => self.nar_hash.to_nix32(),
            Field::NarSize => self.nar_size.to_string(),
            Field::References => {
                let mut s = String::with_capacity(self.references.len() * 50);
                for (i, r) in self.references.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    s.push_str(r.as_base_name());
                }
                s
            }
            Field::Deriver => self.deriver.as_ref()?.base_name(),
            Field::System => self.system.clone()?,
            Field::Ca => self.ca.as_ref()?.to_string(),
            Field::Sig => return None,
        };
        Some(format!("{}: {value}", f.name()))
    }

    fn render_fresh(&self) -> String {
        let mut out = String::with_capacity(512 + self.references.len() * 50);
        for f in FIELDS {
            if f == Field::Sig {
                for s in &self.sigs {
                    out.push_str("Sig: ");
                    out.push_str(s);
                    out.push('\n');
                }
            } else if let Some(line) = self.render_field(f) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    fn render_edited(&self, raw: &str, orig: &NarInfo) -> String {
        let mut out: Vec<(Option<Field>, String)> = Vec::new();
        let mut handled = [false; FIELDS.len()];
        for line in lines(raw).filter_map(Result::ok) {
            let field = Field::from_name(line.name);
            match field {
                None => out.push((None, line.text.to_owned())),
                Some(Field::Sig) => {
                    if self.sigs.iter().any(|s| s == line.value) {
                        out.push((field, line.text.to_owned()));
                    }
                }
                Some(f) if !self.field_changed(f, orig) => {
                    out.push((field, line.text.to_owned()));
                }
                Some(f) => {
                    if let Some(done) = handled.get_mut(f.rank())
                        && !*done
                    {
                        *done = true;
                        if let Some(new) = self.render_field(f) {
                            out.push((field, new));
                        }
                    }
                }
            }
        }
        for f in FIELDS {
            let done = handled.get(f.rank()).copied().unwrap_or(true);
            if f != Field::Sig
                && !done
                && self.field_changed(f, orig)
                && let Some(new) = self.render_field(f)
            {
                insert_in_order(&mut out, f, new);
            }
        }
        for s in &self.sigs {
            if !orig.sigs.contains(s) {
                insert_in_order(&mut out, Field::Sig, format!("Sig: {s}"));
            }
        }
        let mut text = String::with_capacity(raw.len() + 128);
        for (_, l) in out {
            text.push_str(&l);
            text.push('\n');
        }
        text
    }
}

/// Inserts a line for `f`: after the last line of the same field, else after the
/// last known line that Nix writes before `f`, else before the first known line.
fn insert_in_order(out: &mut Vec<(Option<Field>, String)>, f: Field, line: String) {
    let pos = out
        .iter()
        .rposition(|(g, _)| *g == Some(f))
        .or_else(|| {
            out.iter()
                .rposition(|(g, _)| g.is_some_and(|g| g.rank() < f.rank()))
        })
        .map(|i| i + 1)
        .or_else(|| out.iter().position(|(g, _)| g.is_some()))
        .unwrap_or(out.len());
    out.insert(pos, (Some(f), line));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nix::keys::tests::TEST_SECRET;

    pub(crate) const WITHREF: &str = "StorePath: /nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref
URL: nar/1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk.nar.xz
Compression: xz
FileHash: sha256:1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk
FileSize: 172
NarHash: sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39
NarSize: 160
References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo
Deriver: whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv
Sig: cache.example.com-1:5SLzsRkKi90vHor0O595UqtjbW7VpXluVVXETfgnelaILr40R1JRW8Dc7VmaeEJmjDICxb8oVCKmNm2sexSBCw==
";

    pub(crate) const FOO: &str = "StorePath: /nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo
URL: nar/0kmghbql0czfkik5qj75lgzpdy376y8nwy003pw0z7a788ga40q6.nar.xz
Compression: xz
FileHash: sha256:0kmghbql0czfkik5qj75lgzpdy376y8nwy003pw0z7a788ga40q6
FileSize: 124
NarHash: sha256:1xngcmsdkdvaycaqjfzvq4gr3gib56p2l8illglnsqzhpss47pxz
NarSize: 120
References: 
Sig: cache.example.com-1:hLaVJbStfSEdJ53UbQlhyKT15y89/Dyi23MspK2/zQBB8eyemDelay8vUO8DFs0qla62aEyOmK4wcqnyhFivCg==
CA: text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw
";

    pub(crate) const HELLO: &str = "StorePath: /nix/store/i9pmrzmpshapij2kin22pff6fc2adavx-hello.txt
URL: nar/17gd6zzlkx90irc6qawagdkgh1d7qvlnq46yjf7xiqw9ycz7zq4a.nar.xz
Compression: xz
FileHash: sha256:17gd6zzlkx90irc6qawagdkgh1d7qvlnq46yjf7xiqw9ycz7zq4a
FileSize: 128
NarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
NarSize: 120
References: 
Sig: cache.example.com-1:kfonPOBv0s/TaXi5X5YcZU3TIoqrc4+aDd7q//+mxXXPxphDndqUnCzc3aaJ3v/DW1h3Y0RACyTVFr0TIyTJAQ==
CA: fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
";

    const ORIGIN: &str = "s3://bkt/91mlnrh638d0910fq10ass8chinwpb58.narinfo";

    fn sp(s: &str) -> StorePath {
        StorePath::parse_any(s).unwrap()
    }

    /// Removes the line starting with `prefix`.
    pub(crate) fn without_line(text: &str, prefix: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with(prefix))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn parses_doc_narinfos() {
        let n = NarInfo::parse(WITHREF, ORIGIN).unwrap();
        assert_eq!(
            n.store_path,
            sp("/nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref")
        );
        assert_eq!(
            n.url,
            "nar/1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk.nar.xz"
        );
        assert_eq!(n.compression.as_deref(), Some("xz"));
        assert_eq!(n.compression_name(), "xz");
        assert_eq!(
            n.file_hash.as_ref().unwrap().nix32_digest(),
            "1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk"
        );
        assert_eq!(n.file_size, Some(172));
        assert_eq!(
            n.nar_hash.to_nix32(),
            "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39"
        );
        assert_eq!(n.nar_size, 160);
        assert_eq!(
            n.references,
            vec![sp("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo")]
        );
        assert_eq!(
            n.deriver,
            Some(sp("whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv"))
        );
        assert_eq!(n.system, None);
        assert_eq!(n.sigs.len(), 1);
        assert_eq!(n.ca, None);
        assert!(n.quirks().is_empty(), "{:?}", n.quirks());
        assert_eq!(n.narinfo_key(), "91mlnrh638d0910fq10ass8chinwpb58.narinfo");

        let foo = NarInfo::parse(FOO, "foo").unwrap();
        assert!(foo.references.is_empty());
        assert_eq!(
            foo.ca.as_ref().unwrap().to_string(),
            "text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw"
        );
        assert!(foo.quirks().is_empty());
        let hello = NarInfo::parse(HELLO, "hello").unwrap();
        assert!(matches!(hello.ca, Some(ContentAddress::Fixed { .. })));
        assert!(hello.quirks().is_empty());
    }

    #[test]
    fn round_trips_byte_identical() {
        for text in [WITHREF, FOO, HELLO] {
            let n = NarInfo::parse(text, "x").unwrap();
            assert_eq!(n.to_text(), text);
            // A clone with unchanged values is also identical.
            let c = n.clone();
            assert_eq!(c.to_text(), text);
        }
        // Quirky files round-trip too.
        // Without the original text, the canonical form comes out (here: the same).
        let mut n = NarInfo::parse(WITHREF, "x").unwrap();
        assert!(n.has_original_text());
        n.forget_text();
        assert!(!n.has_original_text());
        assert_eq!(n.to_text(), WITHREF);
        let quirky = "Foo: bar\nStorePath: /nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref\nURL: u\nNarHash: sha256:1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13\nNarSize: 5\nDeriver: unknown-deriver\nSig: junk\nSig: junk\n";
        let n = NarInfo::parse(quirky, "x").unwrap();
        assert_eq!(n.to_text(), quirky);
    }

    #[test]
    fn fresh_narinfo_in_nix_order() {
        let n = NarInfo::parse(WITHREF, ORIGIN).unwrap();
        let mut fresh = NarInfo::new(
            n.store_path.clone(),
            n.url.clone(),
            "xz",
            n.nar_hash.clone(),
            n.nar_size,
            n.references.clone(),
        )
        .with_file(n.file_hash.clone().unwrap(), 172)
        .with_deriver(n.deriver.clone().unwrap());
        assert!(fresh.sign(&SecretKey::parse(TEST_SECRET).unwrap()));
        assert_eq!(fresh.to_text(), WITHREF);
        assert_eq!(fresh, n);

        let h = NarInfo::parse(HELLO, "x").unwrap();
        let mut fresh = NarInfo::new(
            h.store_path.clone(),
            h.url.clone(),
            "xz",
            h.nar_hash.clone(),
            120,
            vec![],
        )
        .with_file(h.file_hash.clone().unwrap(), 128)
        .with_ca(h.ca.clone().unwrap());
        assert!(fresh.sign(&SecretKey::parse(TEST_SECRET).unwrap()));
        assert!(!fresh.sign(&SecretKey::parse(TEST_SECRET).unwrap()));
        assert_eq!(fresh.to_text(), HELLO);
        let back = NarInfo::parse(&fresh.to_text(), "x").unwrap();
        assert_eq!(back, fresh);
    }

    #[test]
    fn fresh_sorts_references_and_sigs() {
        let a = sp("0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0");
        let b = sp("yxvjs9drzsphm9pcf42a4byzj1kb9m7k-openssl-1.1.1n");
        let mut n = NarInfo::new(
            sp("syd87l2rxw8cbsxmxl853h0r6pdwhwjr-curl-7.82.0-bin"),
            "nar/x.nar",
            "none",
            Hash::sha256_of(b"x"),
            8,
            vec![b.clone(), a.clone(), b.clone()],
        );
        assert_eq!(n.references, vec![a, b]);
        let s1 = Signature {
            key_name: "zz".into(),
            bytes: [1; 64],
        };
        let s2 = Signature {
            key_name: "aa".into(),
            bytes: [2; 64],
        };
        assert!(n.add_signature(&s1));
        assert!(n.add_signature(&s2));
        assert_eq!(n.sigs, vec![s2.to_string(), s1.to_string()]);
        let text = n.to_text();
        assert!(text.contains("\nReferences: 0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0 yxvjs9drzsphm9pcf42a4byzj1kb9m7k-openssl-1.1.1n\n"));
        assert_eq!(NarInfo::parse(&text, "x").unwrap(), n);
    }

    #[test]
    fn other_store_directories_are_kept_and_signed_as_written() {
        let gnu = without_line(WITHREF, "Sig:").replace("/nix/store/", "/gnu/store/");
        let mut n = NarInfo::parse(&gnu, "x").unwrap();
        assert_eq!(n.store_dir(), "/gnu/store");
        assert_eq!(
            n.absolute_path(),
            "/gnu/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref"
        );
        let fp = n.fingerprint();
        assert!(
            fp.starts_with("1;/gnu/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref;"),
            "{fp}"
        );
        assert!(
            fp.ends_with(";160;/gnu/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo"),
            "{fp}"
        );
        assert_eq!(n.to_text(), gnu);
        let key = SecretKey::parse(TEST_SECRET).unwrap();
        assert!(n.sign(&key));
        let signed = n.to_text();
        assert!(signed.starts_with("StorePath: /gnu/store/"), "{signed}");
        // The signature is over the /gnu/store fingerprint, not the /nix/store one.
        let nix = NarInfo::parse(&without_line(WITHREF, "Sig:"), "x").unwrap();
        assert_ne!(nix.fingerprint(), fp);
        let sig = n.sigs.last().unwrap().clone();
        assert!(!WITHREF.contains(&sig));
        let back = NarInfo::parse(&signed, "x").unwrap();
        assert_eq!(back.store_dir(), "/gnu/store");
        assert_eq!(back, n);
        assert_ne!(back, NarInfo::parse(WITHREF, "x").unwrap());

        // Moving a fresh narinfo changes what is written and signed.
        let mut fresh = NarInfo::new(
            sp("91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref"),
            "nar/x.nar",
            "none",
            n.nar_hash.clone(),
            160,
            vec![],
        );
        let before = fresh.fingerprint();
        fresh.set_store_dir("/gnu/store").unwrap();
        assert_eq!(
            fresh.fingerprint(),
            before.replace("/nix/store/", "/gnu/store/")
        );
        assert!(fresh.to_text().starts_with("StorePath: /gnu/store/"));
        assert!(fresh.set_store_dir("gnu/store").is_err());
        assert!(fresh.set_store_dir("/gnu/store/").is_err());
        fresh.set_store_dir(crate::nix::STORE_DIR).unwrap();
        assert_eq!(fresh.fingerprint(), before);
    }

    #[test]
    fn add_signature_changes_one_line() {
        let unsigned = without_line(WITHREF, "Sig:");
        let mut n = NarInfo::parse(&unsigned, "x").unwrap();
        assert!(n.sigs.is_empty());
        let key = SecretKey::parse(TEST_SECRET).unwrap();
        assert!(n.sign(&key));
        assert_eq!(n.to_text(), WITHREF);

        // With an existing Sig and an unknown field after it: one new line after the Sig.
        let text = format!("{WITHREF}X-Extra: keep me\n");
        let mut n = NarInfo::parse(&text, "x").unwrap();
        let other = SecretKey::from_seed("other-1", &[7; 32]).unwrap();
        assert!(n.sign(&other));
        assert!(!n.sign(&other));
        let new_text = n.to_text();
        let old: Vec<&str> = text.lines().collect();
        let new: Vec<&str> = new_text.lines().collect();
        assert_eq!(new.len(), old.len() + 1);
        assert_eq!(new[..10], old[..10]);
        assert!(new[10].starts_with("Sig: other-1:"));
        assert_eq!(new[11], "X-Extra: keep me");

        // Odd encodings elsewhere are untouched by adding a signature.
        let hex = unsigned.replace(
            "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39",
            &Hash::parse("sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39")
                .unwrap()
                .to_hex(),
        );
        let mut n = NarInfo::parse(&hex, "x").unwrap();
        assert_eq!(n.quirks(), vec![Quirk::NarHashNotNix32]);
        assert!(n.sign(&key));
        let out = n.to_text();
        assert_eq!(
            out,
            format!("{hex}{}", WITHREF.lines().last().unwrap().to_owned() + "\n")
        );
    }

    #[test]
    fn remove_signatures() {
        let mut n = NarInfo::parse(WITHREF, "x").unwrap();
        let other = SecretKey::from_seed("other-1", &[7; 32]).unwrap();
        n.sign(&other);
        assert_eq!(n.remove_signatures_by_key("nope"), 0);
        assert_eq!(n.remove_signatures_by_key("cache.example.com-1"), 1);
        let text = n.to_text();
        assert!(!text.contains("cache.example.com-1"));
        assert!(text.contains("Sig: other-1:"));
        assert_eq!(n.remove_signatures_by_key("other-1"), 1);
        assert_eq!(n.to_text(), without_line(WITHREF, "Sig:"));
    }

    #[test]
    fn edits_touch_only_their_lines() {
        let text = "StorePath: /nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref\nZ: z\nURL: a\nURL: b\nNarHash: sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39\nNarSize: 160\n";
        let mut n = NarInfo::parse(text, "x").unwrap();
        assert_eq!(n.url, "b");
        assert_eq!(
            n.quirks(),
            vec![
                Quirk::UnknownField("Z".into()),
                Quirk::DuplicateField("URL".into()),
                Quirk::ReferencesMissing,
                Quirk::CompressionDefault
            ]
        );
        assert_eq!(n.compression_name(), "bzip2");
        n.url = "c".into();
        n.compression = Some("zstd".into());
        n.deriver = Some(sp("whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv"));
        n.references = vec![sp("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo")];
        assert_eq!(
            n.to_text(),
            "StorePath: /nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref\nZ: z\nURL: c\nCompression: zstd\nNarHash: sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39\nNarSize: 160\nReferences: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo\nDeriver: whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv\n"
        );
        assert_eq!(NarInfo::parse(&n.to_text(), "x").unwrap(), n);
        assert_eq!(n.unknown_fields(), vec![("Z", "z")]);
    }

    #[test]
    fn nix_tolerances() {
        let base = without_line(WITHREF, "Sig:");
        // Unknown fields kept; System read.
        let t = format!("{base}System: i686-linux\nFoo: bar\n");
        let n = NarInfo::parse(&t, "x").unwrap();
        assert_eq!(n.system.as_deref(), Some("i686-linux"));
        assert!(n.quirks().contains(&Quirk::UnknownField("Foo".into())));
        // NarSize:120 is read as 20, as Nix does.
        let t = base.replace("NarSize: 160", "NarSize:120");
        let n = NarInfo::parse(&t, "x").unwrap();
        assert_eq!(n.nar_size, 20);
        assert_eq!(n.quirks(), vec![Quirk::NoSpaceAfterColon(7)]);
        // Missing References / Compression accepted.
        let t = without_line(&without_line(&base, "References:"), "Compression:");
        let n = NarInfo::parse(&t, "x").unwrap();
        assert!(n.references.is_empty());
        assert_eq!(n.compression, None);
        assert_eq!(n.compression_name(), "bzip2");
        assert_eq!(
            n.quirks(),
            vec![Quirk::ReferencesMissing, Quirk::CompressionDefault]
        );
        // SRI NarHash accepted.
        let t = base.replace(
            "NarHash: sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39",
            &format!(
                "NarHash: {}",
                Hash::parse("sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39")
                    .unwrap()
                    .to_sri()
            ),
        );
        let n = NarInfo::parse(&t, "x").unwrap();
        assert_eq!(n.nar_hash_encoding(), HashEncoding::Sri);
        assert_eq!(n.to_text(), t);
        // Repeated StorePath: last wins.
        let t = format!(
            "StorePath: /nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo\n{}",
            base
        );
        let n = NarInfo::parse(&t, "x").unwrap();
        assert_eq!(n.store_path.name(), "tvtest-withref");
        // Empty References then non-empty: fine.
        let t = base.replace("References: vx", "References: \nReferences: vx");
        let n = NarInfo::parse(&t, "x").unwrap();
        assert_eq!(n.references.len(), 1);
        // Malformed and duplicate Sig lines are kept as opaque strings.
        let t = format!("{base}Sig: garbage\nSig: garbage\nSig: k:AAAA\n");
        let n = NarInfo::parse(&t, "x").unwrap();
        assert_eq!(n.sigs, vec!["garbage", "k:AAAA"]);
        assert_eq!(
            n.quirks(),
            vec![
                Quirk::DuplicateSig,
                Quirk::MalformedSig("garbage".into()),
                Quirk::MalformedSig("k:AAAA".into())
            ]
        );
        // Out-of-order and duplicate references, explicit unknown deriver.
        let t = base
            .replace(
                "References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
                "References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo 0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0 0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0",
            )
            .replace(
                "Deriver: whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv",
                "Deriver: unknown-deriver",
            );
        let n = NarInfo::parse(&t, "x").unwrap();
        assert_eq!(n.references.len(), 3);
        assert_eq!(n.deriver, None);
        assert_eq!(
            n.quirks(),
            vec![
                Quirk::ExplicitUnknownDeriver,
                Quirk::ReferencesOutOfOrder,
                Quirk::DuplicateReference
            ]
        );
        // Empty CA is no CA, and a later CA is then allowed (Nix's parseOpt).
        let t = format!("{base}CA: \n");
        let n = NarInfo::parse(&t, "x").unwrap();
        assert_eq!(n.ca, None);
        assert_eq!(n.quirks(), vec![Quirk::EmptyCa]);
        // Field order.
        let t = format!("Deriver: whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv\n{base}");
        let n = NarInfo::parse(&t, "x").unwrap();
        assert!(n.quirks().contains(&Quirk::NonCanonicalOrder));
    }

    #[test]
    fn bad_inputs() {
        let base = WITHREF;
        let withref_hash = "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq39";
        let cases: Vec<(String, &str)> = vec![
            (
                base.trim_end_matches('\n').to_owned(),
                "line 10: missing final newline",
            ),
            (
                base.replace('\n', "\r\n"),
                "line 1: line ends with '\\r' (CRLF line endings are not accepted)",
            ),
            (
                base.replace("Compression: xz\n", "Compression: xz\n\n"),
                "line 4: blank line",
            ),
            (
                base.replace("NarSize: 160", "NarSize: 0"),
                "line 7: NarSize missing or zero",
            ),
            (without_line(base, "NarSize:"), "NarSize missing or zero"),
            (without_line(base, "StorePath:"), "StorePath missing"),
            (without_line(base, "URL:"), "URL missing"),
            (
                base.replace(
                    "URL: nar/1kj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk.nar.xz",
                    "URL: ",
                ),
                "URL missing",
            ),
            (without_line(base, "NarHash:"), "NarHash missing"),
            (
                base.replace(
                    withref_hash,
                    "sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq3",
                ),
                "line 6: bad NarHash: hash 'sha256:04a8wmxsrp4q0j3fx1wfj3i5vm6596vqlbfr8lrds75aid3hfq3' has wrong length 51 for sha256 (expected 52 nix32, 64 base16 or 44 base64 characters)",
            ),
            (
                base.replace("FileHash: sha256:1kj", "FileHash: sha256:ekj"),
                "line 4: bad FileHash: invalid nix32 digest in hash 'sha256:ekj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk': invalid character 'e' at position 0 in nix32 string 'ekj00ba0wg7aah6hh8iz77k533x20l1hcj4s76nm0sqbpwi5rmdk'",
            ),
            (
                format!(
                    "{base}CA: text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw\nCA: text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw\n"
                ),
                "line 12: extra CA",
            ),
            (format!("{base}References: \n"), "line 11: extra References"),
            (
                base.replace("StorePath: /nix/store/91ml", "StorePath: /nix/store/e1ml"),
                "line 1: bad StorePath: store path '/nix/store/e1mlnrh638d0910fq10ass8chinwpb58-tvtest-withref' has an illegal character 'e' in its hash part",
            ),
            (
                base.replace("StorePath: /nix/store/", "StorePath: /gnu//store/"),
                "line 1: bad StorePath: path '/gnu//store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref' is not a store path (<store directory>/<hash>-<name>)",
            ),
            (
                base.replace("StorePath: /nix/store/", "StorePath: nix/store/"),
                "line 1: bad StorePath: path 'nix/store/91mlnrh638d0910fq10ass8chinwpb58-tvtest-withref' is not a store path (<store directory>/<hash>-<name>)",
            ),
            (
                base.replace(
                    "References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
                    "References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-f/oo",
                ),
                "line 8: bad References: store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-f/oo' contains illegal character '/' in its name",
            ),
            (
                base.replace("Deriver: whc", "Deriver: /nix/store/whc"),
                "line 9: bad Deriver: store path '/nix/store/whc55aaa3pkkmp7nmk9dwwj83s614gbh-tvtest-withref.drv' has an illegal character '/' in its hash part",
            ),
            (
                base.replace("NarSize: 160", "NarSize: 16x"),
                "line 7: invalid NarSize '16x'",
            ),
            (
                base.replace("FileSize: 172", "FileSize: +172"),
                "line 5: invalid FileSize '+172'",
            ),
            (
                format!("{base}CA: nope\n"),
                "line 11: bad CA: content address 'nope' does not start with 'text:' or 'fixed:'",
            ),
            (
                format!("{base}garbage\n"),
                "line 11: expecting ':' in 'garbage'",
            ),
            (
                format!("{base}Foo:\n"),
                "line 11: field 'Foo' is not followed by ': <value>'",
            ),
            (String::new(), "StorePath missing"),
        ];
        for (text, msg) in &cases {
            let err = NarInfo::parse(text, ORIGIN).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{ORIGIN}: {msg}"),
                "input: {text:?}"
            );
        }
        let e = NarInfo::parse(&without_line(base, "URL:"), ORIGIN).unwrap_err();
        assert_eq!(e.line, None);
        assert_eq!(e.kind, NarInfoErrorKind::UrlMissing);
        assert_eq!(e.origin, ORIGIN);

        let mut bytes = base.as_bytes().to_vec();
        bytes.extend_from_slice(b"Foo: \xff\xfe\n");
        let e = NarInfo::parse_bytes(&bytes, ORIGIN).unwrap_err();
        assert_eq!(e.to_string(), format!("{ORIGIN}: line 11: not valid UTF-8"));
        assert_eq!(
            NarInfo::parse_bytes(WITHREF.as_bytes(), ORIGIN)
                .unwrap()
                .to_text(),
            WITHREF
        );
    }
}
