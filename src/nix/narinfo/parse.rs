//! Reading narinfo text the way Nix does (`NarInfo::NarInfo` in Nix's `src/libstore/nar-info.cc`):
//! line splitting, the known fields and what each accepts.

use super::{NarInfo, NarInfoError, NarInfoErrorKind, Quirk};
use crate::nix::content_address::ContentAddress;
use crate::nix::hash::{Hash, HashAlgo, HashEncoding, detect_encoding};
use crate::nix::signature::Signature;
use crate::nix::store_path::{STORE_DIR, StorePath};

/// Known fields, in the order Nix writes them (`NarInfo::to_string`, with the
/// `System` line of older versions after `Deriver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
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

pub(super) const FIELDS: [Field; 12] = [
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
    pub(super) fn from_name(name: &str) -> Option<Field> {
        FIELDS.iter().copied().find(|f| f.name() == name)
    }

    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn rank(self) -> usize {
        self as usize
    }
}

/// One line of a narinfo, split the way Nix splits it.
pub(super) struct Line<'a> {
    pub(super) no: usize,
    pub(super) text: &'a str,
    pub(super) name: &'a str,
    pub(super) value: &'a str,
    pub(super) space: bool,
}

/// Splits narinfo text into lines, applying the per-line checks.
pub(super) fn lines(
    text: &str,
) -> impl Iterator<Item = Result<Line<'_>, (usize, NarInfoErrorKind)>> {
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

/// Parses `text` into a narinfo without keeping the text.
pub(super) fn parse_fields(text: &str, origin: &str) -> Result<NarInfo, NarInfoError> {
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
