//! Why a narinfo was rejected ([`NarInfoError`]), and the oddities Nix tolerates ([`Quirk`]).

use std::fmt;

use thiserror::Error;

use crate::nix::content_address::CaError;
use crate::nix::hash::HashError;
use crate::nix::store_path::StorePathError;

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
        /// Why the value is not a store path.
        source: StorePathError,
    },
    /// A hash field that does not parse (Nix: "bad hash").
    #[error("bad {field}: {source}")]
    BadHash {
        /// `NarHash` or `FileHash`.
        field: &'static str,
        /// Why the value is not a hash.
        source: Box<HashError>,
    },
    /// A size that is not a decimal number.
    #[error("invalid {field} '{value}'")]
    BadNumber {
        /// `NarSize` or `FileSize`.
        field: &'static str,
        /// The value as written.
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
    /// An explicit `Deriver: unknown-deriver` line (read as no deriver).
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
