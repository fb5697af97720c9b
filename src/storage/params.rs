//! Nix's store parameters in a cache URL (`?compression=xz&secret-key=…`), typed and checked.
//!
//! Every parameter Nix's binary cache stores take is either honoured by narscope's writers
//! or refused when the URL is parsed, before any request: a URL is never accepted with a
//! setting that would be silently dropped. Parameters that only steer how a *reader* or Nix's
//! own client behaves (`trusted`, `local-nar-cache`, TLS options, …) are accepted and have
//! no effect on what narscope writes.
//!
//! The S3 connection parameters (`region`, `endpoint`, `scheme`, `profile`,
//! `addressing-style`) are parsed by [`super::url`]; everything else comes here.

use std::path::PathBuf;

use crate::compression::{Compression, CompressionError};

/// Where a parameter applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// An `s3://` URL (all S3 parameters allowed).
    S3,
    /// `file://` (or a plain path).
    File,
}

/// Storage classes readers cannot GET without a restore first.
pub const ARCHIVE_CLASSES: &[&str] = &["GLACIER", "DEEP_ARCHIVE"];

/// S3's smallest multipart part (every part but the last): 5 MiB, the least
/// `multipart-chunk-size` may be.
pub const S3_MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// S3's largest single PUT and largest multipart part: 5 GiB. A `multipart-chunk-size` or
/// `multipart-threshold` above it cannot be honoured.
pub const S3_MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The checked store parameters of a cache URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreParams {
    /// The parameters as given, in order (for printing the URL back).
    pub raw: Vec<(String, String)>,
    /// `secret-key=F` then each of `secret-keys=F1,F2`: every narinfo written is signed by
    /// each.
    pub secret_keys: Vec<PathBuf>,
    /// `compression=`: NAR compression (`None`: narscope's default, zstd).
    pub compression: Option<Compression>,
    /// `compression-level=` (`-1`, Nix's "default", is `None`).
    pub compression_level: Option<i32>,
    /// `parallel-compression=`: compress in independent blocks/frames on several threads.
    pub parallel_compression: bool,
    /// `write-nar-listing=`: write `<hash>.ls`.
    pub write_nar_listing: bool,
    /// `index-debug-info=`: write `debuginfo/<build-id>` links.
    pub index_debug_info: bool,
    /// `narinfo-compression=` (S3): compress narinfos, with `Content-Encoding`.
    pub narinfo_compression: Option<Compression>,
    /// `ls-compression=` (S3): compress `.ls` listings, with `Content-Encoding`.
    pub ls_compression: Option<Compression>,
    /// `log-compression=` (S3): compress `log/*`, with `Content-Encoding`.
    pub log_compression: Option<Compression>,
    /// `storage-class=` (S3): `x-amz-storage-class` of every object written.
    pub storage_class: Option<String>,
    /// `multipart-upload=` (S3): `false` uploads every object with one PUT up to S3's 5 GiB
    /// single-PUT limit (multipart only above it, where one PUT cannot); `true` or unset:
    /// multipart above [`StoreParams::multipart_threshold`].
    pub multipart_upload: Option<bool>,
    /// `multipart-threshold=` (S3), bytes: objects larger than this are uploaded in parts
    /// (at most 5 GiB; refused with `multipart-upload=false`, where it would mean nothing).
    pub multipart_threshold: Option<u64>,
    /// `multipart-chunk-size=` or `buffer-size=` (S3), bytes: the part size, 5 MiB to 5 GiB
    /// (S3's bounds); raised for an object that would otherwise need more than 10,000 parts.
    pub multipart_chunk_size: Option<u64>,
    /// `priority=`: written into a new `nix-cache-info`.
    pub priority: Option<i64>,
    /// `want-mass-query=`: written into a new `nix-cache-info`.
    pub want_mass_query: Option<bool>,
}

/// Parameters that steer Nix's (or a reader's) client side only: accepted, no effect on
/// what narscope writes.
const READ_SIDE: &[&str] = &[
    "trusted",
    "local-nar-cache",
    "path-info-cache-size",
    "tls-certificate",
    "tls-private-key",
    "system-features",
    "versionId",
];

/// Parameters for S3 caches only (Nix's file:// store does not know them).
const S3_ONLY: &[&str] = &[
    "narinfo-compression",
    "ls-compression",
    "log-compression",
    "storage-class",
    "multipart-upload",
    "multipart-threshold",
    "multipart-chunk-size",
    "buffer-size",
];

/// One line per honoured parameter, for `--help` and error messages.
pub const HONOURED_HELP: &str = "\
Nix store parameters in the cache URL (honoured by every writer, or refused):
  secret-key=FILE, secret-keys=F1,F2  sign every narinfo written with each key
  compression=xz|zstd|bzip2|br|gzip|none  NAR compression (default zstd; Nix's is xz)
  compression-level=N                 codec level (-1: the codec's default)
  parallel-compression=true           independent blocks/frames, compressed on every core
  write-nar-listing=true              write <hash>.ls, the NAR's file listing
  index-debug-info=true               write debuginfo/<build-id> links for lib/debug/.build-id
  narinfo-compression=, ls-compression=, log-compression=gzip|br|zstd
                                      (s3) compress that object, with Content-Encoding
  storage-class=CLASS                 (s3) x-amz-storage-class of every object written
  multipart-upload=, multipart-threshold=N, multipart-chunk-size=N (buffer-size=N)
                                      (s3) multipart bounds; parts stay at most 10,000
  priority=N, want-mass-query=true    used when narscope writes a missing nix-cache-info
Accepted, no effect on writes: trusted, local-nar-cache, path-info-cache-size,
  tls-certificate, tls-private-key, system-features, versionId, retry-*.
Any other parameter is an error.";

/// A store parameter in a cache URL that narscope refuses: each names the parameter and says
/// why (and what to write instead, where there is something).
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    /// A parameter (other than `secret-key(s)`) given twice.
    #[error("parameter `{0}` is given twice")]
    Twice(String),
    /// An S3-only parameter in a `file://` URL.
    #[error(
        "`{0}` applies to s3:// caches only (a file:// cache has no object \
         metadata or multipart uploads; Nix's file:// store does not know it either)"
    )]
    S3Only(String),
    /// `secret-key=` with no file.
    #[error("secret-key= is empty")]
    EmptySecretKey,
    /// `compression=` names no compression narscope can write.
    #[error("compression=`{value}`: {cause}")]
    Compression {
        /// The value as written.
        value: String,
        /// Why it is refused.
        cause: CompressionError,
    },
    /// `compression-level=` that is not an integer.
    #[error("compression-level=`{0}` is not a whole number")]
    LevelNotNumber(String),
    /// A boolean parameter with another value.
    #[error("{name}=`{value}` is not a boolean (true, false, yes, no, 1 or 0)")]
    NotBool {
        /// The parameter's name, as in the URL.
        name: String,
        /// The value as written.
        value: String,
    },
    /// A size parameter that is not a whole number of bytes.
    #[error("{name}=`{value}` is not a size in bytes (a whole number)")]
    NotSize {
        /// The parameter's name, as in the URL.
        name: String,
        /// The value as written.
        value: String,
    },
    /// An object compression (`narinfo-compression=` and friends) that only Nix could read.
    #[error(
        "{name}={value}: `{value}` is not an HTTP content coding (only Nix could read such objects, \
         no browser, proxy or other client); use gzip, br or zstd"
    )]
    NotContentCoding {
        /// The parameter's name, as in the URL.
        name: String,
        /// `xz` or `bzip2`.
        value: String,
    },
    /// An object compression that is no compression at all.
    #[error("{name}=`{value}`: use gzip, br or zstd (HTTP content codings), or none")]
    UnknownContentCoding {
        /// The parameter's name, as in the URL.
        name: String,
        /// The value as written.
        value: String,
    },
    /// `storage-class=` that cannot be an S3 storage class.
    #[error(
        "storage-class=`{0}` is not an S3 storage class (upper-case letters, \
         digits and `_`, e.g. STANDARD, STANDARD_IA, INTELLIGENT_TIERING)"
    )]
    StorageClass(String),
    /// `multipart-threshold=` above the largest single PUT.
    #[error(
        "multipart-threshold={0}: S3 takes at most 5 GiB ({S3_MAX_PUT_SIZE} \
         bytes) in one PUT, so larger objects must go in parts"
    )]
    ThresholdTooLarge(String),
    /// Both `multipart-chunk-size=` and `buffer-size=`.
    #[error("multipart-chunk-size and buffer-size say the same thing; give one")]
    ChunkSizeTwice,
    /// A part size outside S3's bounds.
    #[error(
        "{name}={value}: a multipart part must be 5 MiB ({S3_MIN_PART_SIZE} bytes) \
         to 5 GiB ({S3_MAX_PUT_SIZE} bytes), S3's bounds"
    )]
    PartSize {
        /// `multipart-chunk-size` or `buffer-size`.
        name: String,
        /// The value as written.
        value: String,
    },
    /// `priority=` that is not an `int`.
    #[error("priority=`{0}` is not a whole number (an int)")]
    PriorityNotInt(String),
    /// A parameter narscope does not honour (it would be ignored, so it is refused).
    #[error(
        "unknown parameter `{0}`; narscope honours these Nix store parameters \
         (anything else would be ignored, so it is refused):\n{HONOURED_HELP}"
    )]
    Unknown(String),
    /// `compression-level=` with `compression=none`.
    #[error("compression-level= means nothing with compression=none")]
    LevelWithoutCompression,
    /// `multipart-threshold=` with `multipart-upload=false`.
    #[error(
        "multipart-threshold= means nothing with multipart-upload=false (objects then go \
         in one PUT up to S3's 5 GiB limit); drop one of them"
    )]
    ThresholdWithoutMultipart,
    /// A compression level out of the codec's range.
    #[error("compression-level: {0}")]
    Level(CompressionError),
    /// `parallel-compression=true` with a codec that has no parallel form.
    #[error("parallel-compression=true is available for xz and zstd only (as in Nix), not {0}")]
    NotParallel(Compression),
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ParamError> {
    match v {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(ParamError::NotBool {
            name: name.to_string(),
            value: v.to_string(),
        }),
    }
}

fn parse_size(name: &str, v: &str) -> Result<u64, ParamError> {
    v.parse::<u64>().map_err(|_| ParamError::NotSize {
        name: name.to_string(),
        value: v.to_string(),
    })
}

fn parse_nar_compression(v: &str) -> Result<Compression, ParamError> {
    v.parse().map_err(|cause| ParamError::Compression {
        value: v.to_string(),
        cause,
    })
}

/// An object compression with `Content-Encoding` (`narinfo-compression` and friends): an HTTP
/// content coding, so that every HTTP client can read the object (`none` or empty: off).
fn parse_content_coding(name: &str, v: &str) -> Result<Option<Compression>, ParamError> {
    match v {
        "" | "none" => Ok(None),
        "gzip" => Ok(Some(Compression::Gzip)),
        "br" => Ok(Some(Compression::Br)),
        "zstd" => Ok(Some(Compression::Zstd)),
        "xz" | "bzip2" => Err(ParamError::NotContentCoding {
            name: name.to_string(),
            value: v.to_string(),
        }),
        other => Err(ParamError::UnknownContentCoding {
            name: name.to_string(),
            value: other.to_string(),
        }),
    }
}

/// Whether NARs can be written with `c` at `level`, in parallel pieces when `parallel`
/// (Nix's `parallel-compression` is for xz and zstd only). The error says why not, naming the
/// setting.
pub fn check_write_settings(
    c: Compression,
    level: Option<i32>,
    parallel: bool,
) -> Result<(), ParamError> {
    crate::compression::validate_level(c, level).map_err(ParamError::Level)?;
    if parallel && !matches!(c, Compression::Xz | Compression::Zstd) {
        return Err(ParamError::NotParallel(c));
    }
    Ok(())
}

impl StoreParams {
    /// Checks the parameters (`pairs`, in URL order) of a cache of `scheme`. Errors name the
    /// parameter and say why.
    pub fn parse(pairs: Vec<(String, String)>, scheme: Scheme) -> Result<StoreParams, ParamError> {
        let mut p = StoreParams::default();
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in &pairs {
            let k = k.as_str();
            if k != "secret-keys" && k != "secret-key" {
                if seen.contains(&k) {
                    return Err(ParamError::Twice(k.to_string()));
                }
                seen.push(k);
            }
            if scheme == Scheme::File && S3_ONLY.contains(&k) {
                return Err(ParamError::S3Only(k.to_string()));
            }
            match k {
                "secret-key" => {
                    if v.is_empty() {
                        return Err(ParamError::EmptySecretKey);
                    }
                    p.secret_keys.push(PathBuf::from(v));
                }
                "secret-keys" => {
                    for f in v.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                        p.secret_keys.push(PathBuf::from(f));
                    }
                }
                "compression" => p.compression = Some(parse_nar_compression(v)?),
                "compression-level" => {
                    let n: i32 = v
                        .parse()
                        .map_err(|_| ParamError::LevelNotNumber(v.clone()))?;
                    p.compression_level = (n != -1).then_some(n);
                }
                "parallel-compression" => p.parallel_compression = parse_bool(k, v)?,
                "write-nar-listing" => p.write_nar_listing = parse_bool(k, v)?,
                "index-debug-info" => p.index_debug_info = parse_bool(k, v)?,
                "narinfo-compression" => p.narinfo_compression = parse_content_coding(k, v)?,
                "ls-compression" => p.ls_compression = parse_content_coding(k, v)?,
                "log-compression" => p.log_compression = parse_content_coding(k, v)?,
                "storage-class" => {
                    if v.is_empty()
                        || !v
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    {
                        return Err(ParamError::StorageClass(v.clone()));
                    }
                    p.storage_class = Some(v.clone());
                }
                "multipart-upload" => p.multipart_upload = Some(parse_bool(k, v)?),
                "multipart-threshold" => {
                    let n = parse_size(k, v)?;
                    if n > S3_MAX_PUT_SIZE {
                        return Err(ParamError::ThresholdTooLarge(v.clone()));
                    }
                    p.multipart_threshold = Some(n);
                }
                "multipart-chunk-size" | "buffer-size" => {
                    if p.multipart_chunk_size.is_some() {
                        return Err(ParamError::ChunkSizeTwice);
                    }
                    let n = parse_size(k, v)?;
                    if !(S3_MIN_PART_SIZE..=S3_MAX_PUT_SIZE).contains(&n) {
                        return Err(ParamError::PartSize {
                            name: k.to_string(),
                            value: v.clone(),
                        });
                    }
                    p.multipart_chunk_size = Some(n);
                }
                "priority" => {
                    // Nix reads it as an `int`.
                    p.priority = Some(
                        v.parse::<i32>()
                            .map_err(|_| ParamError::PriorityNotInt(v.clone()))?
                            .into(),
                    )
                }
                "want-mass-query" => p.want_mass_query = Some(parse_bool(k, v)?),
                _ if READ_SIDE.contains(&k) || k.starts_with("retry-") => {}
                _ => {
                    return Err(ParamError::Unknown(k.to_string()));
                }
            }
        }
        if p.compression == Some(Compression::None) && p.compression_level.is_some() {
            return Err(ParamError::LevelWithoutCompression);
        }
        if p.multipart_upload == Some(false) && p.multipart_threshold.is_some() {
            return Err(ParamError::ThresholdWithoutMultipart);
        }
        if let Some(c) = p.compression {
            check_write_settings(c, p.compression_level, p.parallel_compression)?;
        }
        p.raw = pairs;
        Ok(p)
    }

    /// Whether the URL says anything about how objects are written.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The `storage-class` when readers cannot GET objects of it without a restore.
    pub fn archive_storage_class(&self) -> Option<&str> {
        self.storage_class
            .as_deref()
            .filter(|c| ARCHIVE_CLASSES.contains(c))
    }

    /// Warnings to show the user before anything is written with these parameters (each a
    /// full sentence naming the parameter); empty when there is nothing to say.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(class) = self.archive_storage_class() {
            out.push(format!(
                "storage-class={class}: readers (Nix) cannot GET objects in this class without a \
                 restore; the cache will not serve what is written to it"
            ));
        }
        out
    }

    /// [`StoreParams::warnings`] the first time any URL of this process has some, empty after
    /// that: whoever shows them first (the CLI on stderr, else [`super::open`] in the log)
    /// takes them, so that the user is told once.
    pub fn take_warnings(&self) -> Vec<String> {
        static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let w = self.warnings();
        if w.is_empty() || TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return Vec::new();
        }
        w
    }

    /// The value of a parameter as given, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn ok(q: &str, s: Scheme) -> StoreParams {
        StoreParams::parse(pairs(q), s).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn bad(q: &str, s: Scheme) -> String {
        match StoreParams::parse(pairs(q), s) {
            Err(e) => e.to_string(),
            Ok(p) => panic!("{q}: expected an error, got {p:?}"),
        }
    }

    #[test]
    fn write_parameters_are_typed() {
        let p = ok(
            "secret-key=/k/a.sec&secret-keys=/k/b.sec,/k/c.sec&compression=xz&compression-level=6\
             &parallel-compression=1&write-nar-listing=yes&index-debug-info=true\
             &narinfo-compression=zstd&ls-compression=br&log-compression=gzip\
             &storage-class=STANDARD_IA&multipart-upload=true&multipart-threshold=1000\
             &buffer-size=6000000&priority=30&want-mass-query=false&trusted=1&retry-attempts=3",
            Scheme::S3,
        );
        assert_eq!(
            p.secret_keys,
            ["/k/a.sec", "/k/b.sec", "/k/c.sec"].map(PathBuf::from)
        );
        assert_eq!(p.compression, Some(Compression::Xz));
        assert_eq!(p.compression_level, Some(6));
        assert!(p.parallel_compression && p.write_nar_listing && p.index_debug_info);
        assert_eq!(p.narinfo_compression, Some(Compression::Zstd));
        assert_eq!(p.ls_compression, Some(Compression::Br));
        assert_eq!(p.log_compression, Some(Compression::Gzip));
        assert_eq!(p.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(p.archive_storage_class(), None);
        assert_eq!(p.multipart_upload, Some(true));
        assert_eq!(p.multipart_threshold, Some(1000));
        assert_eq!(p.multipart_chunk_size, Some(6_000_000));
        assert_eq!(p.priority, Some(30));
        assert_eq!(p.want_mass_query, Some(false));
        assert_eq!(p.raw.len(), 18);
        assert_eq!(p.get("trusted"), Some("1"));
        assert_eq!(
            ok("compression-level=-1", Scheme::File).compression_level,
            None
        );
        assert_eq!(
            ok("storage-class=GLACIER", Scheme::S3).archive_storage_class(),
            Some("GLACIER")
        );
        assert!(ok("", Scheme::File).is_empty());
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        for (q, s, needle) in [
            (
                "compresion=xz",
                Scheme::S3,
                "unknown parameter `compresion`",
            ),
            ("compression=lzip", Scheme::File, "compression=`lzip`"),
            ("compression=rar", Scheme::File, "compression=`rar`"),
            (
                "narinfo-compression=xz",
                Scheme::S3,
                "not an HTTP content coding",
            ),
            (
                "ls-compression=bzip2",
                Scheme::S3,
                "not an HTTP content coding",
            ),
            (
                "narinfo-compression=zstd",
                Scheme::File,
                "s3:// caches only",
            ),
            ("storage-class=GLACIER", Scheme::File, "s3:// caches only"),
            (
                "storage-class=glacier",
                Scheme::S3,
                "storage-class=`glacier`",
            ),
            ("write-nar-listing=maybe", Scheme::File, "not a boolean"),
            ("multipart-threshold=5M", Scheme::S3, "not a size in bytes"),
            (
                "compression=xz&compression=zstd",
                Scheme::File,
                "given twice",
            ),
            (
                "compression=none&compression-level=3",
                Scheme::File,
                "compression=none",
            ),
            (
                "buffer-size=6000000&multipart-chunk-size=7000000",
                Scheme::S3,
                "give one",
            ),
            ("secret-key=", Scheme::File, "secret-key= is empty"),
            ("multipart-chunk-size=5242879", Scheme::S3, "5 MiB"),
            ("buffer-size=5368709121", Scheme::S3, "to 5 GiB"),
            (
                "multipart-threshold=5368709121",
                Scheme::S3,
                "at most 5 GiB",
            ),
            (
                "multipart-upload=false&multipart-threshold=1000",
                Scheme::S3,
                "means nothing with multipart-upload=false",
            ),
            (
                "compression=bzip2&parallel-compression=true",
                Scheme::File,
                "xz and zstd only",
            ),
            (
                "compression=xz&compression-level=12",
                Scheme::File,
                "invalid xz compression level 12",
            ),
            ("priority=99999999999", Scheme::File, "priority="),
        ] {
            let e = bad(q, s);
            assert!(e.contains(needle), "{q}: {e}");
        }
    }

    #[test]
    fn archive_storage_classes_warn_and_others_do_not() {
        for class in ["GLACIER", "DEEP_ARCHIVE"] {
            let w = ok(&format!("storage-class={class}"), Scheme::S3).warnings();
            assert_eq!(w.len(), 1, "{class}: {w:?}");
            assert!(
                w[0].contains(&format!("storage-class={class}"))
                    && w[0].contains("cannot GET objects in this class without a restore"),
                "{}",
                w[0]
            );
        }
        for q in ["storage-class=STANDARD", "storage-class=GLACIER_IR", ""] {
            assert!(ok(q, Scheme::S3).warnings().is_empty(), "{q}");
        }
        let bounds = ok(
            "multipart-chunk-size=5242880&multipart-threshold=5368709120",
            Scheme::S3,
        );
        assert_eq!(bounds.multipart_chunk_size, Some(S3_MIN_PART_SIZE));
        assert_eq!(bounds.multipart_threshold, Some(S3_MAX_PUT_SIZE));
    }
}
