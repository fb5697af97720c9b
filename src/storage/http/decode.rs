//! Streaming `Content-Encoding` decoding for [`super::HttpStore::get_reader`]: the body is
//! decoded on a blocking thread (the codecs are synchronous) and handed back in chunks through
//! a small channel, so memory stays bounded whatever the object's size.

use std::io::{self, Read};

use bytes::Bytes;
use futures::Stream;

use crate::compression::{self, Compression};
use crate::storage::{ByteReader, StoreError, StoreErrorKind, store_error_in};

/// Size of one decoded chunk.
const CHUNK: usize = 64 * 1024;
/// Decoded chunks buffered ahead of the reader.
const AHEAD: usize = 4;

/// One `Content-Encoding` token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Coding {
    /// `deflate` (zlib).
    Deflate,
    /// A codec of [`crate::compression`].
    Algo(Compression),
}

/// The codings of a `Content-Encoding` header, in the order they were applied; `identity`
/// and empty tokens are dropped. `Err` names the first token that is no coding narscope knows.
pub(super) fn parse_codings(header: &str) -> Result<Vec<Coding>, String> {
    let mut out = Vec::new();
    for token in header.split(',') {
        let t = token.trim().to_ascii_lowercase();
        out.push(match t.as_str() {
            "" | "identity" | "none" => continue,
            "gzip" | "x-gzip" => Coding::Algo(Compression::Gzip),
            "br" => Coding::Algo(Compression::Br),
            "zstd" => Coding::Algo(Compression::Zstd),
            "xz" => Coding::Algo(Compression::Xz),
            "bzip2" => Coding::Algo(Compression::Bzip2),
            "deflate" => Coding::Deflate,
            _ => return Err(token.trim().to_string()),
        });
    }
    Ok(out)
}

/// `r` decoded from `coding`. A coding whose magic bytes are absent from the body is taken as
/// already undone (a transport or proxy that decoded but kept the header), as
/// [`compression::decode_content_encoding`] does for small objects.
fn decoding<'a>(
    coding: Coding,
    r: Box<dyn Read + Send + 'a>,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    match coding {
        Coding::Deflate => Ok(Box::new(flate2::read::ZlibDecoder::new(r))),
        Coding::Algo(c) => {
            let has_magic = matches!(
                c,
                Compression::Zstd | Compression::Xz | Compression::Bzip2 | Compression::Gzip
            );
            if !has_magic {
                return Ok(compression::decoder(c, r));
            }
            let mut r = r;
            let mut head = Vec::with_capacity(6);
            let mut buf = [0u8; 6];
            while head.len() < 6 {
                let n = r.read(&mut buf[..6 - head.len()])?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let plain = compression::sniff(&head) != Some(c);
            let joined: Box<dyn Read + Send + 'a> = Box::new(io::Cursor::new(head).chain(r));
            Ok(if plain {
                joined
            } else {
                compression::decoder(c, joined)
            })
        }
    }
}

/// Wraps an error of the decoders so that callers tell it apart from bad NAR bytes: a
/// transport fault passes as it is; anything else is the server's encoded body that does not
/// decode, an error of the store (not of the object's contents).
fn store_fault(e: io::Error, store: &str, key: &str, header: &str) -> io::Error {
    if store_error_in(&e).is_some() {
        return e;
    }
    io::Error::other(
        StoreError::new(
            StoreErrorKind::Other,
            store,
            "GET",
            format!(
                "the body the server sent with Content-Encoding: {header} does not decode: {e}"
            ),
        )
        .with_key(key),
    )
}

/// What to decode, and where the errors point.
pub(super) struct Decode {
    /// The codings, in the order they were applied.
    pub(super) codings: Vec<Coding>,
    /// The header as sent (for messages).
    pub(super) header: String,
    /// The store's description.
    pub(super) store: String,
    /// The key read.
    pub(super) key: String,
}

/// `body` decoded as `d` says, as an async reader (see the module docs). Must be called
/// within the runtime.
pub(super) fn decoded_reader<S>(body: S, d: Decode) -> ByteReader
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let raw = tokio_util::io::StreamReader::new(Box::pin(body));
    let bridge = tokio_util::io::SyncIoBridge::new(raw);
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut r: Box<dyn Read + Send> = Box::new(bridge);
        for c in d.codings.iter().rev() {
            r = match decoding(*c, r) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Err(store_fault(e, &d.store, &d.key, &d.header)));
                    return;
                }
            };
        }
        let mut buf = vec![0u8; CHUNK];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                    if tx.blocking_send(Ok(chunk)).is_err() {
                        return; // the reader was dropped
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(store_fault(e, &d.store, &d.key, &d.header)));
                    return;
                }
            }
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Box::pin(tokio_util::io::StreamReader::new(Box::pin(chunks)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn codings() {
        assert_eq!(
            parse_codings("gzip, identity,zstd").unwrap(),
            vec![
                Coding::Algo(Compression::Gzip),
                Coding::Algo(Compression::Zstd)
            ]
        );
        assert_eq!(parse_codings("").unwrap(), vec![]);
        assert_eq!(
            parse_codings("X-GZIP").unwrap(),
            vec![Coding::Algo(Compression::Gzip)]
        );
        assert_eq!(parse_codings("gzip, lz4").unwrap_err(), "lz4");
    }

    async fn decode_all(bytes: Vec<u8>, header: &str) -> io::Result<Vec<u8>> {
        let body = futures::stream::iter(
            bytes
                .chunks(1000)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        let mut r = decoded_reader(
            body,
            Decode {
                codings: parse_codings(header).unwrap(),
                header: header.into(),
                store: "http://h".into(),
                key: "k".into(),
            },
        );
        let mut out = Vec::new();
        r.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn streams_decode_and_bad_bodies_are_store_errors() {
        let plain: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Br,
            Compression::Xz,
            Compression::Bzip2,
        ] {
            let mut enc = Vec::new();
            compression::compress_all(c, None, &plain, &mut enc).unwrap();
            assert_eq!(decode_all(enc, c.name()).await.unwrap(), plain, "{c}");
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &plain).unwrap();
        assert_eq!(
            decode_all(z.finish().unwrap(), "deflate").await.unwrap(),
            plain
        );
        // a header whose coding was already undone: the bytes pass as they are
        assert_eq!(decode_all(plain.clone(), "gzip").await.unwrap(), plain);
        // a gzip body cut short is the server's fault, not the object's
        let mut enc = Vec::new();
        compression::compress_all(Compression::Gzip, None, &plain, &mut enc).unwrap();
        enc.truncate(enc.len() / 2);
        let e = decode_all(enc, "gzip").await.unwrap_err();
        let se = store_error_in(&e).expect("a store error");
        assert!(se.message.contains("Content-Encoding: gzip"), "{se}");
    }
}
