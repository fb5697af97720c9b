//! `.ls` NAR listings: `{"version":1,"root":<node>}`, as `nix copy` writes them with
//! `write-nar-listing=true`.
//!
//! A regular file is `{"type":"regular","size":N,"executable":true,"narOffset":N}` with
//! `executable` only when true (as Nix 2.8 writes it) and `narOffset` (the offset of the
//! contents in the uncompressed NAR) omitted when 0; a symlink is
//! `{"type":"symlink","target":"…"}`; a directory is `{"type":"directory","entries":{…}}`.

use std::io::Read;

use serde_json::{Map, Value, json};

use super::reader::{Visitor, parse};
use super::{NarError, NarErrorKind, NarSummary, show_bytes};

/// Build the `.ls` listing of the NAR in `r`, validating and hashing it on the way.
///
/// Names and symlink targets must be UTF-8, since JSON strings cannot carry other bytes
/// (Nix fails on them too); such a NAR gives [`NarErrorKind::NotUtf8`].
pub fn listing<R: Read>(r: R) -> Result<(Value, NarSummary), NarError> {
    let mut b = ListingBuilder::default();
    let summary = parse(r, &mut b, "stream".to_string(), u64::MAX)?;
    let root = b.root.unwrap_or(Value::Null);
    Ok((json!({"version": 1, "root": root}), summary))
}

/// Serialise a listing exactly as Nix 2.8 does: compact, keys of the top object in the
/// order `version`, `root`, node keys in the order `type`, `size`, `executable`,
/// `narOffset`, `target`, `entries`, directory entries sorted bytewise.
///
/// Unknown keys follow the known ones, sorted.
pub fn listing_to_nix_json(listing: &Value) -> String {
    let mut out = String::new();
    match listing {
        Value::Object(map) => write_object(&mut out, map, &["version", "root"], |out, key, v| {
            if key == "root" {
                write_node(out, v);
            } else {
                write_plain(out, v);
            }
        }),
        other => write_plain(&mut out, other),
    }
    out
}

fn write_plain(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => write_string(out, s),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string as Nix 2.8's `toJSON` writes it: `"` and `\\` escaped, `\n`, `\r`, `\t`,
/// every other control character as `\u00xx` (also backspace and form feed, which
/// serde_json would write as `\b` and `\f`), everything else as it is.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_key(out: &mut String, key: &str) {
    write_string(out, key);
    out.push(':');
}

/// Write `map` with the keys of `order` first (in that order), then the rest sorted.
fn write_object(
    out: &mut String,
    map: &Map<String, Value>,
    order: &[&str],
    mut write_value: impl FnMut(&mut String, &str, &Value),
) {
    out.push('{');
    let mut rest: Vec<&String> = map
        .keys()
        .filter(|k| !order.contains(&k.as_str()))
        .collect();
    rest.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let keys = order
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .chain(rest.into_iter().map(String::as_str));
    let mut first = true;
    for key in keys {
        if let Some(v) = map.get(key) {
            if !first {
                out.push(',');
            }
            first = false;
            write_key(out, key);
            write_value(out, key, v);
        }
    }
    out.push('}');
}

fn write_node(out: &mut String, node: &Value) {
    match node {
        Value::Object(map) => write_object(
            out,
            map,
            &[
                "type",
                "size",
                "executable",
                "narOffset",
                "target",
                "entries",
            ],
            |out, key, v| match (key, v) {
                ("entries", Value::Object(entries)) => {
                    write_object(out, entries, &[], |out, _, child| write_node(out, child));
                }
                _ => write_plain(out, v),
            },
        ),
        other => write_plain(out, other),
    }
}

#[derive(Default)]
struct ListingBuilder {
    dirs: Vec<(Option<String>, Map<String, Value>)>,
    file: Option<(Option<String>, Value)>,
    root: Option<Value>,
}

fn utf8_name(name: Option<&[u8]>) -> Result<Option<String>, NarErrorKind> {
    match name {
        None => Ok(None),
        Some(n) => String::from_utf8(n.to_vec())
            .map(Some)
            .map_err(|_| NarErrorKind::NotUtf8(format!("entry name {:?}", show_bytes(n)))),
    }
}

impl ListingBuilder {
    fn insert(&mut self, name: Option<String>, node: Value) {
        match (self.dirs.last_mut(), name) {
            (Some((_, entries)), Some(name)) => {
                entries.insert(name, node);
            }
            _ => self.root = Some(node),
        }
    }
}

impl Visitor for ListingBuilder {
    fn directory_start(&mut self, name: Option<&[u8]>) -> Result<(), NarErrorKind> {
        let name = utf8_name(name)?;
        self.dirs.push((name, Map::new()));
        Ok(())
    }

    fn directory_end(&mut self) -> Result<(), NarErrorKind> {
        if let Some((name, entries)) = self.dirs.pop() {
            self.insert(
                name,
                json!({"type": "directory", "entries": Value::Object(entries)}),
            );
        }
        Ok(())
    }

    fn symlink(&mut self, name: Option<&[u8]>, target: &[u8]) -> Result<(), NarErrorKind> {
        let name = utf8_name(name)?;
        let target = String::from_utf8(target.to_vec()).map_err(|_| {
            NarErrorKind::NotUtf8(format!("symlink target {:?}", show_bytes(target)))
        })?;
        self.insert(name, json!({"type": "symlink", "target": target}));
        Ok(())
    }

    fn file_start(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
        nar_offset: u64,
    ) -> Result<(), NarErrorKind> {
        let name = utf8_name(name)?;
        let mut node = Map::new();
        node.insert("type".into(), "regular".into());
        node.insert("size".into(), size.into());
        if executable {
            node.insert("executable".into(), true.into());
        }
        if nar_offset != 0 {
            node.insert("narOffset".into(), nar_offset.into());
        }
        self.file = Some((name, Value::Object(node)));
        Ok(())
    }

    fn file_end(&mut self) -> Result<(), NarErrorKind> {
        if let Some((name, node)) = self.file.take() {
            self.insert(name, node);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nar::encode_node;
    use crate::nar::testutil::*;

    /// The `.ls` listing Nix 2.8 writes (`write-nar-listing=true`) for the `tree/` vector, verbatim.
    const TREE_LS: &str = r#"{"version":1,"root":{"type":"directory","entries":{"a.txt":{"type":"regular","size":6,"narOffset":232},"link":{"type":"symlink","target":"a.txt"},"sub":{"type":"directory","entries":{"run.sh":{"type":"regular","size":18,"executable":true,"narOffset":784}}}}}}"#;

    #[test]
    fn tree_listing_matches_nix() {
        let nar = encode_node(&tree());
        let (ls, summary) = listing(&nar[..]).unwrap();
        assert_eq!(summary.hash_hex(), TREE_SHA256);
        assert_eq!(summary.nar_size, 888);
        assert_eq!(listing_to_nix_json(&ls), TREE_LS);
        assert_eq!(ls, serde_json::from_str::<Value>(TREE_LS).unwrap());
        // The offsets really point at the contents.
        assert_eq!(&nar[232..238], b"hello\n");
        assert_eq!(&nar[784..802], b"#!/bin/sh\necho hi\n");
    }

    #[test]
    fn single_file_listing_matches_nix() {
        let (ls, summary) = listing(&unhex(HELLO_NAR_HEX)[..]).unwrap();
        assert_eq!(summary.nar_size, 120);
        assert_eq!(
            listing_to_nix_json(&ls),
            r#"{"version":1,"root":{"type":"regular","size":6,"narOffset":96}}"#
        );
    }

    #[test]
    fn other_roots_and_awkward_names() {
        let (ls, _) = listing(&encode_node(&link(b"/nix/store/somewhereelse"))[..]).unwrap();
        assert_eq!(
            listing_to_nix_json(&ls),
            r#"{"version":1,"root":{"type":"symlink","target":"/nix/store/somewhereelse"}}"#
        );
        let (ls, _) = listing(&unhex(EMPTY_DIR_NAR_HEX)[..]).unwrap();
        assert_eq!(
            listing_to_nix_json(&ls),
            r#"{"version":1,"root":{"type":"directory","entries":{}}}"#
        );
        // Entry names that look like node keys are not reordered; quotes are escaped.
        let node = dir(vec![
            (b"type", reg(b"")),
            (b"entries", dir(vec![])),
            (b"q\"uote", link(b"x")),
        ]);
        let (ls, _) = listing(&encode_node(&node)[..]).unwrap();
        let s = listing_to_nix_json(&ls);
        assert_eq!(
            s,
            r#"{"version":1,"root":{"type":"directory","entries":{"entries":{"type":"directory","entries":{}},"q\"uote":{"type":"symlink","target":"x"},"type":{"type":"regular","size":0,"narOffset":592}}}}"#
        );
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), ls);
        // Control characters as Nix's toJSON escapes them (no \b or \f short forms).
        let node = dir(vec![(b"a\x08\x0c\x01\n\t\\\x7f\xc3\xa9", link(b"x\ry"))]);
        let (ls, _) = listing(&encode_node(&node)[..]).unwrap();
        let s = listing_to_nix_json(&ls);
        assert_eq!(
            s,
            "{\"version\":1,\"root\":{\"type\":\"directory\",\"entries\":{\"a\\u0008\\u000c\\u0001\\n\\t\\\\\x7f\u{e9}\":{\"type\":\"symlink\",\"target\":\"x\\ry\"}}}}"
        );
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), ls);
    }

    #[test]
    fn non_utf8_name_is_an_error() {
        let node = dir(vec![(b"\xff", reg(b""))]);
        let err = listing(&encode_node(&node)[..]).unwrap_err();
        assert!(matches!(err.kind(), NarErrorKind::NotUtf8(_)), "{err}");
    }
}
