//! Compression codecs named by a narinfo's `Compression` field.
//!
//! Decoding is chosen by that field (never by the NAR key's extension). We can read
//! and write `none`, `xz`, `bzip2`, `zstd`, `gzip` and `br`.
//! Everything here is synchronous, streaming `std::io` code.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A compression algorithm, spelt as Nix spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `none`: stored as-is.
    None,
    /// `xz` (Nix's default for `nix copy`).
    Xz,
    /// `bzip2` (what a narinfo without a `Compression` line means).
    Bzip2,
    /// `zstd` (Zstandard), what Nix 2.8 writes with `compression=zstd`.
    Zstd,
    /// `gzip` (a NAR key without an extension, as Nix 2.8 names it).
    Gzip,
    /// `br`: Brotli, which Nix reads and writes with libbrotli.
    Br,
}

/// Names Nix knows but this crate cannot decode.
const UNSUPPORTED: &[&str] = &["lz4", "lzip", "lzma", "lzop", "grzip", "lrzip", "compress"];

/// Why a compression name, level or stream was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// A name Nix accepts but narscope does not implement.
    #[error("compression {0:?} is valid for Nix but not supported by narscope")]
    Unsupported(String),
    /// A name that is no compression Nix knows.
    #[error("unknown compression {0:?}")]
    Unknown(String),
    /// We can decode this algorithm but not produce it.
    #[error("compression {0} can be read but not written")]
    NotWritable(Compression),
    /// A level outside the algorithm's range.
    #[error(
        "invalid {compression} compression level {level} (allowed: {min}..={max}, or -1 for the default)"
    )]
    InvalidLevel {
        /// The algorithm the level was given for.
        compression: Compression,
        /// The level asked for.
        level: i32,
        /// Lowest allowed level.
        min: i32,
        /// Highest allowed level.
        max: i32,
    },
    /// An HTTP `Content-Encoding` we cannot undo.
    #[error("{origin}: unsupported Content-Encoding {encoding:?}")]
    UnknownContentEncoding {
        /// The object concerned.
        origin: String,
        /// The header value.
        encoding: String,
    },
    /// Decoding failed: corrupt or truncated data.
    #[error("{origin}: cannot decode {compression} data: {source}")]
    Decode {
        /// The object concerned.
        origin: String,
        /// The codec used.
        compression: String,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },
    /// The decoded object is larger than the limit its caller set (see
    /// [`decode_content_encoding_max`]).
    #[error("{origin}: decodes to more than {limit} bytes: refusing (decompression bomb?)")]
    TooLarge {
        /// The object concerned.
        origin: String,
        /// The limit, in decoded bytes.
        limit: u64,
    },
    /// `parallel-compression` asked of a codec that has no parallel form.
    #[error("parallel-compression is available for xz and zstd only (as in Nix), not {0}")]
    NotParallel(Compression),
    /// Setting up an encoder failed.
    #[error("cannot start a {compression} encoder: {source}")]
    Encoder {
        /// The algorithm whose encoder failed to start.
        compression: Compression,
        /// The library's error.
        #[source]
        source: io::Error,
    },
}

/// Largest object [`decode_content_encoding`] will produce (guards against decompression
/// bombs): room for the `.ls` listing of a store path with a few hundred thousand files.
pub const MAX_DECODED_OBJECT: u64 = 64 * 1024 * 1024;

/// Largest narinfo or `nix-cache-info` that [`decode_content_encoding_max`] callers decode:
/// a narinfo with tens of thousands of references and signatures still fits.
pub const MAX_DECODED_NARINFO: u64 = 4 * 1024 * 1024;

impl Compression {
    /// Interpret a narinfo `Compression` value; missing or empty means `bzip2`, as in Nix.
    pub fn from_narinfo_field(v: Option<&str>) -> Result<Compression, CompressionError> {
        match v {
            None | Some("") => Ok(Compression::Bzip2),
            Some(name) => name.parse(),
        }
    }

    /// The name as Nix spells it (`none`, `xz`, `bzip2`, `zstd`, `gzip`, `br`).
    pub fn name(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::Br => "br",
        }
    }

    /// The compression as an adjective for messages: `uncompressed` for `none`,
    /// `xz-compressed`, `zstd-compressed`, ….
    pub fn describe(&self) -> String {
        match self {
            Compression::None => "uncompressed".to_string(),
            c => format!("{}-compressed", c.name()),
        }
    }

    /// What Nix appends after `.nar` in a NAR key (`.xz`, `.bz2`, `.zst`, `.br`, or nothing).
    pub fn extension(&self) -> &'static str {
        match self {
            Compression::Xz => ".xz",
            Compression::Bzip2 => ".bz2",
            Compression::Zstd => ".zst",
            Compression::Br => ".br",
            Compression::None | Compression::Gzip => "",
        }
    }

    /// Whether [`encoder`] can produce this format.
    pub fn can_write(&self) -> bool {
        Self::all_writable().contains(self)
    }

    /// Every format [`encoder`] can produce.
    pub fn all_writable() -> &'static [Compression] {
        Self::all()
    }

    /// Every format [`decoder`] can read.
    pub fn all() -> &'static [Compression] {
        &[
            Compression::None,
            Compression::Xz,
            Compression::Bzip2,
            Compression::Zstd,
            Compression::Gzip,
            Compression::Br,
        ]
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = CompressionError;

    /// Parse a Nix compression name (case-sensitive, as Nix is).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Compression::None),
            "xz" => Ok(Compression::Xz),
            "bzip2" => Ok(Compression::Bzip2),
            "zstd" => Ok(Compression::Zstd),
            "gzip" => Ok(Compression::Gzip),
            "br" => Ok(Compression::Br),
            other if UNSUPPORTED.contains(&other) => {
                Err(CompressionError::Unsupported(other.to_string()))
            }
            other => Err(CompressionError::Unknown(other.to_string())),
        }
    }
}

impl serde::Serialize for Compression {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Compression {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A streaming decoder for `c` over the compressed stream `r`.
///
/// Multi-stream xz, multi-member gzip and bzip2, and multi-frame zstd are read to the end.
/// Corrupt or truncated input shows up as an `io::Error` from `read`.
pub fn decoder<'a, R: Read + Send + 'a>(c: Compression, r: R) -> Box<dyn Read + Send + 'a> {
    match c {
        Compression::None => Box::new(r),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Compression::Zstd => match zstd::stream::read::Decoder::new(r) {
            Ok(d) => Box::new(d),
            Err(e) => Box::new(FailingReader(Some(e))),
        },
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Br => Box::new(brotli::Decompressor::new(r, 64 * 1024)),
    }
}

/// A reader whose first read reports a setup error.
struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("decoder could not be created")))
    }
}

/// Set once a [`Bounded`] reader has seen more bytes than its limit; shared with whoever
/// must tell that failure apart from others after the error went through a decoder or
/// parser that rewrapped it.
#[derive(Clone, Debug, Default)]
pub struct Tripwire(Arc<AtomicBool>);

impl Tripwire {
    /// Whether the limit was passed.
    pub fn tripped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a [`Bounded`] reader returns once its input goes on past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} bytes")]
pub struct LimitExceeded {
    /// The limit, in bytes.
    pub limit: u64,
}

/// A reader that hands out at most `limit` bytes and then fails if its input has more.
///
/// Unlike [`Read::take`], which ends quietly at the limit, a byte beyond it is an error
/// ([`LimitExceeded`], kind [`io::ErrorKind::FileTooLarge`]) and trips the [`Tripwire`]. Its
/// input is read at most one byte past the limit, and that byte is never handed out; an
/// input of exactly `limit` bytes reads to its end normally.
pub struct Bounded<R> {
    inner: R,
    limit: u64,
    count: u64,
    wire: Tripwire,
}

impl<R: Read> Bounded<R> {
    /// Bound `inner` to `limit` bytes.
    pub fn new(inner: R, limit: u64) -> Bounded<R> {
        Bounded {
            inner,
            limit,
            count: 0,
            wire: Tripwire::default(),
        }
    }

    /// The tripwire that says whether the limit was passed.
    pub fn tripwire(&self) -> Tripwire {
        self.wire.clone()
    }

    /// Bytes handed out so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.limit.saturating_sub(self.count);
        if left == 0 {
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => {
                    self.wire.0.store(true, Ordering::Relaxed);
                    Err(io::Error::new(
                        io::ErrorKind::FileTooLarge,
                        LimitExceeded { limit: self.limit },
                    ))
                }
            };
        }
        let max = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(buf.get_mut(..max).unwrap_or_default())?;
        self.count += n as u64;
        Ok(n)
    }
}

/// A streaming compressor; call [`Encoder::finish`] to write the trailer and get `W` back.
pub struct Encoder<W: Write> {
    inner: EncoderInner<W>,
}

enum EncoderInner<W: Write> {
    None(W),
    Xz(liblzma::write::XzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    ZstdFrames(ZstdFrames<W>),
    Gzip(flate2::write::GzEncoder<W>),
    Br(Box<brotli::CompressorWriter<W>>),
}

impl<W: Write> Encoder<W> {
    /// Finish the compressed stream, flush, and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let mut w = match self.inner {
            EncoderInner::None(w) => w,
            EncoderInner::Xz(e) => e.finish()?,
            EncoderInner::Bzip2(e) => e.finish()?,
            EncoderInner::Zstd(e) => e.finish()?,
            EncoderInner::ZstdFrames(e) => e.finish()?,
            EncoderInner::Gzip(e) => e.finish()?,
            EncoderInner::Br(mut e) => {
                e.flush()?;
                e.into_inner()
            }
        };
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            EncoderInner::None(w) => w.write(buf),
            EncoderInner::Xz(e) => e.write(buf),
            EncoderInner::Bzip2(e) => e.write(buf),
            EncoderInner::Zstd(e) => e.write(buf),
            EncoderInner::ZstdFrames(e) => e.write(buf),
            EncoderInner::Gzip(e) => e.write(buf),
            EncoderInner::Br(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            EncoderInner::None(w) => w.flush(),
            EncoderInner::Xz(e) => e.flush(),
            EncoderInner::Bzip2(e) => e.flush(),
            EncoderInner::Zstd(e) => e.flush(),
            EncoderInner::ZstdFrames(e) => e.flush(),
            EncoderInner::Gzip(e) => e.flush(),
            EncoderInner::Br(e) => e.flush(),
        }
    }
}

fn check_level(
    compression: Compression,
    level: Option<i32>,
    default: i32,
    min: i32,
    max: i32,
) -> Result<i32, CompressionError> {
    match level {
        // -1 is Nix's `compression-level` default, meaning "library default".
        None | Some(-1) => Ok(default),
        Some(l) if (min..=max).contains(&l) => Ok(l),
        Some(level) => Err(CompressionError::InvalidLevel {
            compression,
            level,
            min,
            max,
        }),
    }
}

/// The level [`encoder`] uses for `c` and `level`: the codec's default for `None` (or
/// `-1`), else `level` when it is in range (`none` ignores the level).
fn level_for(c: Compression, level: Option<i32>) -> Result<i32, CompressionError> {
    let (default, min, max) = match c {
        Compression::None => return Ok(0),
        Compression::Xz | Compression::Gzip => (6, 0, 9),
        Compression::Bzip2 => (9, 1, 9),
        Compression::Zstd => {
            let range = zstd::compression_level_range();
            (3, *range.start(), *range.end())
        }
        Compression::Br => (11, 0, 11),
    };
    check_level(c, level, default, min, max)
}

/// Checks `level` for `c` as [`encoder`] would, without starting an encoder (so that a bad
/// level is refused before anything is written).
pub fn validate_level(c: Compression, level: Option<i32>) -> Result<(), CompressionError> {
    level_for(c, level).map(|_| ())
}

/// A compressor for `c` writing into `w`.
///
/// `level` `None` (or `Some(-1)`, Nix's default) picks xz 6, zstd 3, bzip2 9, gzip 6, br 11
/// (what Nix's libarchive and brotli sinks use); explicit levels must be in range (xz 0–9,
/// bzip2 1–9, gzip 0–9, br 0–11, zstd's own range); `none` ignores the level.
pub fn encoder<W: Write + Send>(
    c: Compression,
    level: Option<i32>,
    w: W,
) -> Result<Encoder<W>, CompressionError> {
    encoder_threads(c, level, 0, w)
}

/// [`encoder`] that compresses on `workers` worker threads where the format allows it (xz
/// and zstd; the output is still one standard stream that any reader, Nix included,
/// decodes). `0` compresses on the calling thread.
///
/// Even one worker pays for itself with zstd: the calling thread goes on producing input
/// meanwhile, and the worker compresses whole contiguous jobs instead of a streaming window
/// that wraps around (zstd's slower "external dictionary" path), about a quarter less CPU.
pub fn encoder_threads<W: Write + Send>(
    c: Compression,
    level: Option<i32>,
    workers: u32,
    w: W,
) -> Result<Encoder<W>, CompressionError> {
    let err = |source| CompressionError::Encoder {
        compression: c,
        source,
    };
    let inner = match c {
        Compression::None => EncoderInner::None(w),
        Compression::Xz if workers > 0 => {
            let l = level_for(c, level)?;
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(workers)
                .preset(l.unsigned_abs())
                .check(liblzma::stream::Check::Crc64)
                .encoder()
                .map_err(|e| err(io::Error::other(e)))?;
            EncoderInner::Xz(liblzma::write::XzEncoder::new_stream(w, stream))
        }
        Compression::Xz => {
            let l = level_for(c, level)?;
            EncoderInner::Xz(liblzma::write::XzEncoder::new(w, l.unsigned_abs()))
        }
        Compression::Bzip2 => {
            let l = level_for(c, level)?;
            EncoderInner::Bzip2(bzip2::write::BzEncoder::new(
                w,
                bzip2::Compression::new(l.unsigned_abs()),
            ))
        }
        Compression::Zstd => {
            let l = level_for(c, level)?;
            let mut e = zstd::stream::write::Encoder::new(w, l).map_err(err)?;
            // Like the zstd CLI: a frame checksum, so corruption is detected when reading.
            e.include_checksum(true).map_err(err)?;
            if workers > 0 {
                e.multithread(workers).map_err(err)?;
            }
            EncoderInner::Zstd(e)
        }
        Compression::Gzip => {
            let l = level_for(c, level)?;
            EncoderInner::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(l.unsigned_abs()),
            ))
        }
        Compression::Br => {
            let l = level_for(c, level)?;
            // lgwin 22: brotli's default window (4 MiB), as the `brotli` tool writes.
            EncoderInner::Br(Box::new(brotli::CompressorWriter::new(
                w,
                64 * 1024,
                l.unsigned_abs(),
                22,
            )))
        }
    };
    Ok(Encoder { inner })
}

/// Input bytes per independent zstd frame written by [`encoder_parallel`].
pub const ZSTD_FRAME_INPUT: usize = 8 << 20;

/// The encoder of Nix's `parallel-compression=true`: compressed on `threads` threads (at
/// least one) in pieces that readers can also decode in parallel. xz is written by liblzma's
/// multi-threaded encoder (independent blocks in one stream); zstd as a concatenation of
/// independent frames, one per [`ZSTD_FRAME_INPUT`] bytes of input, each with its
/// checksum. Any reader of the format (Nix's included) decodes either as one stream. Other
/// codecs are refused ([`CompressionError::NotParallel`]), as Nix documents the setting.
pub fn encoder_parallel<W: Write + Send>(
    c: Compression,
    level: Option<i32>,
    threads: u32,
    w: W,
) -> Result<Encoder<W>, CompressionError> {
    match c {
        Compression::Xz => encoder_threads(c, level, threads.max(1), w),
        Compression::Zstd => Ok(Encoder {
            inner: EncoderInner::ZstdFrames(ZstdFrames {
                inner: w,
                level: level_for(c, level)?,
                batch: (threads as usize).clamp(1, 16),
                pending: Vec::new(),
                wrote: false,
            }),
        }),
        other => Err(CompressionError::NotParallel(other)),
    }
}

/// Independent zstd frames (see [`encoder_parallel`]): input is gathered into a batch of
/// up to `batch` frames, whose frames are compressed at once on rayon's threads and written
/// in order.
pub struct ZstdFrames<W: Write> {
    inner: W,
    level: i32,
    batch: usize,
    pending: Vec<u8>,
    /// Whether a frame was written.
    wrote: bool,
}

impl<W: Write> ZstdFrames<W> {
    /// Compresses the whole frames in `pending` (all of it when `last`) and writes them.
    fn drain(&mut self, last: bool) -> io::Result<()> {
        use rayon::prelude::*;
        let whole = if last {
            self.pending.len()
        } else {
            self.pending.len() / ZSTD_FRAME_INPUT * ZSTD_FRAME_INPUT
        };
        if whole == 0 && !last {
            return Ok(());
        }
        let level = self.level;
        let frames: Vec<io::Result<Vec<u8>>> = self.pending[..whole]
            .par_chunks(ZSTD_FRAME_INPUT)
            .map(|chunk| {
                let mut out = Vec::new();
                compress_all(Compression::Zstd, Some(level), chunk, &mut out)
                    .map_err(io::Error::other)?;
                Ok(out)
            })
            .collect();
        // An empty input is still one (empty) frame: a valid zstd stream.
        if whole == 0 && !self.wrote {
            let mut out = Vec::new();
            compress_all(Compression::Zstd, Some(level), &[], &mut out)
                .map_err(io::Error::other)?;
            self.inner.write_all(&out)?;
        }
        for f in frames {
            self.inner.write_all(&f?)?;
        }
        self.wrote = true;
        self.pending.drain(..whole);
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.drain(true)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ZstdFrames<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.batch * ZSTD_FRAME_INPUT - self.pending.len();
        let n = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() >= self.batch * ZSTD_FRAME_INPUT {
            self.drain(false)?;
        }
        Ok(n)
    }

    /// Writes out the whole frames gathered so far (a partial frame waits for more input:
    /// cutting it would change the frame layout).
    fn flush(&mut self) -> io::Result<()> {
        self.drain(false)?;
        self.inner.flush()
    }
}

/// Compress all of `data`, which is in memory, into `out` (cleared first; pass the same
/// `out` again to reuse its allocation).
///
/// zstd compresses it in one pass on the calling thread: no copy into a window that wraps
/// around, and the match tables stay in this core's cache; for a NAR of tens of MB that is
/// about a fifth less CPU than [`encoder`] or [`encoder_threads`]. Other formats stream
/// through [`encoder`]. The output is the same format either way.
pub fn compress_all(
    c: Compression,
    level: Option<i32>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let err = |source| CompressionError::Encoder {
        compression: c,
        source,
    };
    out.clear();
    if c != Compression::Zstd {
        let mut e = encoder(c, level, &mut *out)?;
        e.write_all(data).map_err(err)?;
        e.finish().map_err(err)?;
        return Ok(());
    }
    let l = level_for(c, level)?;
    let mut z = zstd::bulk::Compressor::new(l).map_err(err)?;
    // Like `encoder`: a frame checksum.
    z.include_checksum(true).map_err(err)?;
    out.reserve(zstd::zstd_safe::compress_bound(data.len()));
    z.compress_to_buffer(data, out).map_err(err)?;
    Ok(())
}

/// Recognise a compressed object by its magic bytes (zstd, xz, bzip2, gzip).
///
/// Brotli has no magic and `None` means "no known magic", not [`Compression::None`].
pub fn sniff(bytes: &[u8]) -> Option<Compression> {
    if bytes.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        Some(Compression::Zstd)
    } else if bytes.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Compression::Xz)
    } else if bytes.starts_with(b"BZh") {
        Some(Compression::Bzip2)
    } else if bytes.starts_with(&[0x1F, 0x8B]) {
        Some(Compression::Gzip)
    } else {
        None
    }
}

/// One `Content-Encoding` token, mapped to what we can undo.
enum Coding {
    Identity,
    Algo(Compression),
    Deflate,
}

fn parse_coding(token: &str) -> Option<Coding> {
    match token.trim().to_ascii_lowercase().as_str() {
        "" | "identity" | "none" => Some(Coding::Identity),
        "gzip" | "x-gzip" => Some(Coding::Algo(Compression::Gzip)),
        "br" => Some(Coding::Algo(Compression::Br)),
        "zstd" => Some(Coding::Algo(Compression::Zstd)),
        "xz" => Some(Coding::Algo(Compression::Xz)),
        "bzip2" => Some(Coding::Algo(Compression::Bzip2)),
        "deflate" => Some(Coding::Deflate),
        _ => None,
    }
}

fn read_limited(
    r: impl Read,
    origin: &str,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    let mut bounded = Bounded::new(r, limit);
    let wire = bounded.tripwire();
    if let Err(source) = bounded.read_to_end(&mut out) {
        if wire.tripped() {
            return Err(CompressionError::TooLarge {
                origin: origin.to_string(),
                limit,
            });
        }
        return Err(CompressionError::Decode {
            origin: origin.to_string(),
            compression: what.to_string(),
            source,
        });
    }
    Ok(out)
}

fn decode_one(
    bytes: &[u8],
    coding: &Coding,
    origin: &str,
    limit: u64,
) -> Result<Vec<u8>, CompressionError> {
    match coding {
        Coding::Identity => Ok(bytes.to_vec()),
        Coding::Deflate => read_limited(
            flate2::read::ZlibDecoder::new(bytes),
            origin,
            "deflate",
            limit,
        ),
        Coding::Algo(c) => {
            // A transport (or the SDK) may already have undone the encoding while leaving the
            // header: if the codec has magic bytes and they are absent, the data is plain.
            let has_magic = matches!(
                c,
                Compression::Zstd | Compression::Xz | Compression::Bzip2 | Compression::Gzip
            );
            if has_magic && sniff(bytes) != Some(*c) {
                return Ok(bytes.to_vec());
            }
            match read_limited(decoder(*c, bytes), origin, c.name(), limit) {
                // Brotli has no magic: plain UTF-8 text that fails to decode was not encoded.
                Err(CompressionError::Decode { .. })
                    if *c == Compression::Br && std::str::from_utf8(bytes).is_ok() =>
                {
                    Ok(bytes.to_vec())
                }
                other => other,
            }
        }
    }
}

/// Undo the encoding of a small object (narinfo, `.ls`, log) and return its plain bytes.
///
/// `content_encoding` is the `Content-Encoding` header or `x-amz-meta-content-encoding`
/// metadata (a comma-separated list is undone last-first). Without one, magic bytes decide
/// (zstd, xz, bzip2, gzip); otherwise the bytes are returned as they are. Errors name
/// `origin`. Nothing decodes to more than [`MAX_DECODED_OBJECT`] bytes: decoding stops
/// there with [`CompressionError::TooLarge`].
pub fn decode_content_encoding(
    bytes: &[u8],
    content_encoding: Option<&str>,
    origin: &str,
) -> Result<Vec<u8>, CompressionError> {
    decode_content_encoding_max(bytes, content_encoding, origin, MAX_DECODED_OBJECT)
}

/// [`decode_content_encoding`] with a caller's limit on the decoded size (each layer of a
/// stacked encoding is held to it), e.g. [`MAX_DECODED_NARINFO`] for narinfos.
pub fn decode_content_encoding_max(
    bytes: &[u8],
    content_encoding: Option<&str>,
    origin: &str,
    limit: u64,
) -> Result<Vec<u8>, CompressionError> {
    let header = content_encoding.map(str::trim).unwrap_or_default();
    if header.is_empty() {
        return match sniff(bytes) {
            Some(c) => decode_one(bytes, &Coding::Algo(c), origin, limit),
            None => Ok(bytes.to_vec()),
        };
    }
    let mut codings = Vec::new();
    for token in header.split(',') {
        match parse_coding(token) {
            Some(c) => codings.push(c),
            None => {
                return Err(CompressionError::UnknownContentEncoding {
                    origin: origin.to_string(),
                    encoding: header.to_string(),
                });
            }
        }
    }
    let mut data = bytes.to_vec();
    for coding in codings.iter().rev() {
        data = decode_one(&data, coding, origin, limit)?;
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic, moderately compressible test data.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let words: [&[u8]; 6] = [
            b"nix ",
            b"store ",
            b"/nix/store/",
            b"narinfo\n",
            b"0123",
            b"zz ",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(3) {
                out.push((x >> 24) as u8);
            } else {
                out.extend_from_slice(words[(x % 6) as usize]);
            }
        }
        out.truncate(len);
        out
    }

    fn compress(c: Compression, level: Option<i32>, data: &[u8]) -> Vec<u8> {
        let mut e = encoder(c, level, Vec::new()).unwrap();
        // Several writes, as a streaming producer would do.
        for chunk in data.chunks(100_000) {
            e.write_all(chunk).unwrap();
        }
        e.finish().unwrap()
    }

    fn decompress(c: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decoder(c, data).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_every_writable_codec() {
        let big = sample(1 << 20);
        for &c in Compression::all_writable() {
            for data in [&big[..], &[][..]] {
                let enc = compress(c, None, data);
                if c != Compression::None {
                    // Brotli has no magic bytes.
                    let magic = (c != Compression::Br).then_some(c);
                    assert_eq!(sniff(&enc), magic, "{c}");
                    if !data.is_empty() {
                        assert!(enc.len() < data.len(), "{c} should compress");
                    }
                }
                assert_eq!(decompress(c, &enc).unwrap(), data, "{c} len {}", data.len());
            }
        }
    }

    #[test]
    fn levels() {
        let data = sample(20_000);
        for (c, level) in [
            (Compression::Xz, 0),
            (Compression::Xz, 3),
            (Compression::Bzip2, 1),
            (Compression::Zstd, 19),
            (Compression::Zstd, -5),
            (Compression::Zstd, -1),
            (Compression::None, 42),
            (Compression::Gzip, 1),
            (Compression::Gzip, 9),
            (Compression::Br, 0),
            (Compression::Br, 5),
        ] {
            let enc = compress(c, Some(level), &data);
            assert_eq!(decompress(c, &enc).unwrap(), data, "{c} {level}");
        }
        for (c, level) in [
            (Compression::Xz, 10),
            (Compression::Xz, -2),
            (Compression::Bzip2, 0),
            (Compression::Bzip2, 10),
            (Compression::Zstd, 23),
            (Compression::Gzip, 10),
            (Compression::Br, 12),
        ] {
            let err = encoder(c, Some(level), Vec::new()).err().unwrap();
            assert!(
                matches!(err, CompressionError::InvalidLevel { .. }),
                "{c} {level}: {err}"
            );
            // The same check without an encoder.
            assert!(validate_level(c, Some(level)).is_err(), "{c} {level}");
        }
        assert!(validate_level(Compression::Xz, Some(9)).is_ok());
        assert!(validate_level(Compression::None, Some(99)).is_ok());
        assert!(Compression::all().iter().all(Compression::can_write));
    }

    /// Splits a zstd stream into its frames (by each frame's compressed size).
    fn zstd_frames(mut data: &[u8]) -> Vec<&[u8]> {
        let mut frames = Vec::new();
        while !data.is_empty() {
            let n = zstd::zstd_safe::find_frame_compressed_size(data).unwrap();
            frames.push(&data[..n]);
            data = &data[n..];
        }
        frames
    }

    #[test]
    fn parallel_zstd_is_independent_frames_and_xz_still_one_stream() {
        let data = sample(2 * ZSTD_FRAME_INPUT + 12_345);
        for threads in [1, 2, 4] {
            let mut e = encoder_parallel(Compression::Zstd, Some(1), threads, Vec::new()).unwrap();
            // Odd write sizes, so frames are cut by input count, not by write calls.
            for piece in data.chunks(1_000_003) {
                e.write_all(piece).unwrap();
            }
            let enc = e.finish().unwrap();
            let frames = zstd_frames(&enc);
            assert_eq!(frames.len(), 3, "threads {threads}");
            // Each frame decodes on its own to its slice of the input.
            for (i, f) in frames.iter().enumerate() {
                let want =
                    &data[i * ZSTD_FRAME_INPUT..((i + 1) * ZSTD_FRAME_INPUT).min(data.len())];
                assert_eq!(zstd::stream::decode_all(*f).unwrap(), want, "frame {i}");
            }
            assert_eq!(decompress(Compression::Zstd, &enc).unwrap(), data);
        }
        // Empty input: one valid (empty) frame.
        let enc = encoder_parallel(Compression::Zstd, None, 2, Vec::new())
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(zstd_frames(&enc).len(), 1);
        assert!(decompress(Compression::Zstd, &enc).unwrap().is_empty());
        let mut e = encoder_parallel(Compression::Xz, Some(0), 2, Vec::new()).unwrap();
        e.write_all(&data[..100_000]).unwrap();
        let enc = e.finish().unwrap();
        assert_eq!(decompress(Compression::Xz, &enc).unwrap(), &data[..100_000]);
        for c in [
            Compression::Bzip2,
            Compression::Gzip,
            Compression::Br,
            Compression::None,
        ] {
            let err = encoder_parallel(c, None, 2, Vec::new()).err().unwrap();
            assert!(err.to_string().contains("xz and zstd only"), "{c}: {err}");
        }
        assert!(matches!(
            encoder_parallel(Compression::Zstd, Some(99), 2, Vec::new()),
            Err(CompressionError::InvalidLevel { .. })
        ));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).unwrap();
        }
        out
    }

    #[test]
    fn decodes_gzip_and_brotli_from_other_encoders() {
        let data = sample(300_000);
        assert_eq!(decompress(Compression::Gzip, &gzip(&data)).unwrap(), data);
        assert_eq!(decompress(Compression::Br, &brotli(&data)).unwrap(), data);
        assert_eq!(decompress(Compression::Br, &brotli(b"")).unwrap(), b"");
    }

    #[test]
    fn concatenated_streams_decode_fully() {
        let (a, b) = (sample(70_000), b"second part".to_vec());
        let whole = [a.clone(), b.clone()].concat();
        let mut zst = zstd::encode_all(&a[..], 3).unwrap();
        zst.extend(zstd::encode_all(&b[..], 1).unwrap());
        assert_eq!(decompress(Compression::Zstd, &zst).unwrap(), whole);
        let mut xz = compress(Compression::Xz, None, &a);
        xz.extend(compress(Compression::Xz, Some(1), &b));
        assert_eq!(decompress(Compression::Xz, &xz).unwrap(), whole);
        let mut bz = compress(Compression::Bzip2, None, &a);
        bz.extend(compress(Compression::Bzip2, None, &b));
        assert_eq!(decompress(Compression::Bzip2, &bz).unwrap(), whole);
        let mut gz = gzip(&a);
        gz.extend(gzip(&b));
        assert_eq!(decompress(Compression::Gzip, &gz).unwrap(), whole);
    }

    #[test]
    fn corrupt_and_truncated_streams_are_errors() {
        let data = sample(200_000);
        let encoded: Vec<(Compression, Vec<u8>)> = vec![
            (Compression::Xz, compress(Compression::Xz, None, &data)),
            (
                Compression::Bzip2,
                compress(Compression::Bzip2, None, &data),
            ),
            (Compression::Zstd, compress(Compression::Zstd, None, &data)),
            (Compression::Gzip, gzip(&data)),
            (Compression::Br, brotli(&data)),
        ];
        for (c, enc) in &encoded {
            let half = &enc[..enc.len() / 2];
            assert!(decompress(*c, half).is_err(), "{c}: truncated");
            let mut flipped = enc.clone();
            let mid = flipped.len() / 2;
            for b in &mut flipped[mid..mid + 16] {
                *b ^= 0x5A;
            }
            assert!(decompress(*c, &flipped).is_err(), "{c}: corrupted");
            let garbage = sample(5000);
            assert!(decompress(*c, &garbage).is_err(), "{c}: garbage");
        }
    }

    #[test]
    fn narinfo_field_names() {
        use Compression as C;
        let ok: &[(Option<&str>, C)] = &[
            (None, C::Bzip2),
            (Some(""), C::Bzip2),
            (Some("none"), C::None),
            (Some("xz"), C::Xz),
            (Some("bzip2"), C::Bzip2),
            (Some("zstd"), C::Zstd),
            (Some("gzip"), C::Gzip),
            (Some("br"), C::Br),
        ];
        for (field, want) in ok {
            assert_eq!(C::from_narinfo_field(*field).unwrap(), *want, "{field:?}");
        }
        for name in ["lz4", "lzip", "lzma", "lzop", "grzip", "lrzip", "compress"] {
            let err = C::from_narinfo_field(Some(name)).unwrap_err();
            assert!(
                matches!(&err, CompressionError::Unsupported(n) if n == name),
                "{err}"
            );
        }
        for name in ["brotli", "XZ", "zst", "7z"] {
            let err = C::from_narinfo_field(Some(name)).unwrap_err();
            assert!(
                matches!(&err, CompressionError::Unknown(n) if n == name),
                "{err}"
            );
        }
        let table = [
            (C::None, "none", ""),
            (C::Xz, "xz", ".xz"),
            (C::Bzip2, "bzip2", ".bz2"),
            (C::Zstd, "zstd", ".zst"),
            (C::Gzip, "gzip", ""),
            (C::Br, "br", ".br"),
        ];
        for (c, name, ext) in table {
            assert_eq!(c.name(), name);
            assert_eq!(c.extension(), ext);
            assert_eq!(name.parse::<C>().unwrap(), c);
            assert_eq!(c.to_string(), name);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<C>(&format!("\"{name}\"")).unwrap(),
                c
            );
        }
        assert!("".parse::<C>().is_err());
        assert_eq!(C::all().iter().filter(|c| c.can_write()).count(), 6);
    }

    #[test]
    fn encoders_and_decoders_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        for &c in Compression::all_writable() {
            assert_send(&encoder(c, None, Vec::new()).unwrap());
        }
        let d = decoder(Compression::Xz, std::io::empty());
        assert_send(&d);
    }

    #[test]
    fn sniff_table() {
        assert_eq!(sniff(&[0x28, 0xB5, 0x2F, 0xFD, 0]), Some(Compression::Zstd));
        assert_eq!(
            sniff(&[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 0]),
            Some(Compression::Xz)
        );
        assert_eq!(sniff(b"BZh91AY&SY"), Some(Compression::Bzip2));
        assert_eq!(sniff(&[0x1F, 0x8B, 8]), Some(Compression::Gzip));
        assert_eq!(sniff(&gzip(b"x")), Some(Compression::Gzip));
        assert_eq!(sniff(b"StorePath: /nix/store/x"), None);
        assert_eq!(sniff(b"{\"version\":1}"), None);
        assert_eq!(sniff(&[0x28, 0xB5, 0x2F]), None);
        assert_eq!(sniff(&[0xFD, 0x37, 0x7A, 0x58, 0x5A]), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn bounded_reads_up_to_the_limit_and_fails_past_it() {
        let data = sample(10_000);
        // Exactly the limit: read to the end, no error.
        let mut b = Bounded::new(&data[..], 10_000);
        let mut out = Vec::new();
        b.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert!(!b.tripwire().tripped());
        assert_eq!(b.count(), 10_000);
        // One byte less: the limit is handed out, then an error that says so.
        let mut b = Bounded::new(&data[..], 9_999);
        let wire = b.tripwire();
        let mut out = Vec::new();
        let e = b.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "more than 9999 bytes");
        assert!(wire.tripped());
        assert_eq!(out.len(), 9_999);
        assert_eq!(b.count(), 9_999);
        // A zero limit on empty input is fine.
        let mut b = Bounded::new(&b""[..], 0);
        assert_eq!(b.read(&mut [0u8; 8]).unwrap(), 0);
    }

    /// Counts the bytes read from a slice.
    struct Counted<'a>(&'a [u8], u64);
    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_bounded_decoder_stops_a_bomb_at_its_limit() {
        // 1 GiB of zeros: 64 frames of 16 MiB of zeros, a few hundred bytes each.
        let frame = compress(Compression::Zstd, Some(1), &vec![0u8; 16 << 20]);
        let bomb = frame.repeat(64);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let mut b = Bounded::new(decoder(Compression::Zstd, &bomb[..]), 216);
        let mut out = Vec::new();
        let e = b.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(out.len(), 216, "no more than the limit is handed out");

        // Over a large compressed stream, decoding stops early: most of it is never read.
        let big = compress(Compression::Zstd, Some(1), &sample(8 << 20));
        assert!(big.len() > 2 << 20, "{}", big.len());
        let mut src = Counted(&big, 0);
        let mut b = Bounded::new(decoder(Compression::Zstd, &mut src), 216);
        assert!(b.read_to_end(&mut Vec::new()).is_err());
        drop(b);
        assert!(src.1 < 1 << 20, "read {} of {} bytes", src.1, big.len());
    }

    #[test]
    fn content_encoding_is_bounded() {
        let origin = "s3://bucket/x.narinfo";
        let zeros = vec![0u8; 8 << 20];
        for c in [Compression::Zstd, Compression::Xz, Compression::Bzip2] {
            let bomb = compress(c, Some(1), &zeros);
            let e =
                decode_content_encoding_max(&bomb, Some(c.name()), origin, 1 << 20).unwrap_err();
            assert!(
                matches!(e, CompressionError::TooLarge { limit, .. } if limit == 1 << 20),
                "{c}: {e}"
            );
            assert_eq!(
                e.to_string(),
                "s3://bucket/x.narinfo: decodes to more than 1048576 bytes: refusing (decompression bomb?)"
            );
            // Sniffed (no header) too, and the default limit lets it through.
            assert!(decode_content_encoding_max(&bomb, None, origin, 1 << 20).is_err());
            assert_eq!(
                decode_content_encoding(&bomb, None, origin).unwrap().len(),
                zeros.len()
            );
        }
        // Stacked codings: every layer is held to the limit.
        let inner = compress(Compression::Zstd, Some(1), &zeros);
        let stacked = gzip(&inner);
        assert!(
            decode_content_encoding_max(&stacked, Some("zstd, gzip"), origin, 1 << 20).is_err()
        );
    }

    #[test]
    fn describe_says_uncompressed_for_none() {
        assert_eq!(Compression::None.describe(), "uncompressed");
        assert_eq!(Compression::Zstd.describe(), "zstd-compressed");
        assert_eq!(Compression::Xz.describe(), "xz-compressed");
    }

    #[test]
    fn content_encoding() {
        let plain = b"StorePath: /nix/store/abc-x\nURL: nar/x.nar\n".to_vec();
        let zst = compress(Compression::Zstd, None, &plain);
        let xz = compress(Compression::Xz, None, &plain);
        let origin = "s3://bucket/abc.narinfo";
        for (bytes, header) in [
            (&zst, Some("zstd")),
            (&zst, None),
            (&zst, Some(" ZSTD ")),
            (&xz, Some("xz")),
            (&xz, None),
            (&gzip(&plain), Some("gzip")),
            (&gzip(&plain), Some("x-gzip")),
            (&gzip(&plain), None),
            (&brotli(&plain), Some("br")),
            (&plain, None),
            (&plain, Some("identity")),
            (&plain, Some("")),
            // Already decoded by a transport but header kept.
            (&plain, Some("zstd")),
            (&plain, Some("br")),
        ] {
            assert_eq!(
                decode_content_encoding(bytes, header, origin).unwrap(),
                plain,
                "{header:?}"
            );
        }
        // Stacked codings are undone last-first.
        let stacked = gzip(&zst);
        assert_eq!(
            decode_content_encoding(&stacked, Some("zstd, gzip"), origin).unwrap(),
            plain
        );

        let err = decode_content_encoding(&plain, Some("lz4"), origin).unwrap_err();
        assert!(matches!(
            err,
            CompressionError::UnknownContentEncoding { .. }
        ));
        assert!(err.to_string().contains(origin), "{err}");

        let mut bad = zst.clone();
        bad.truncate(bad.len() - 3);
        let err = decode_content_encoding(&bad, Some("zstd"), origin).unwrap_err();
        assert!(matches!(err, CompressionError::Decode { .. }), "{err}");
        assert!(err.to_string().starts_with(origin), "{err}");

        let binary_garbage = [0x8Bu8, 0xFF, 0x00, 0x13, 0x99];
        let err = decode_content_encoding(&binary_garbage, Some("br"), origin).unwrap_err();
        assert!(matches!(err, CompressionError::Decode { .. }), "{err}");
    }
}
