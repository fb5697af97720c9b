//! What the details and signatures panes show for one row, loaded off the UI thread.

use std::sync::{Arc, RwLock};

use crate::audit::{PathReport, Status};
use crate::cache::{Cache, CacheError};
use crate::index::{Index, RowId, flags};
use crate::nix::{NarInfo, PathVerdict, SigOutcome, TrustedKeys, check_path};

/// Whether the NAR object is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NarPresence {
    /// It exists, with this size.
    Exists(u64),
    /// It does not.
    Missing,
    /// It could not be checked.
    Unknown(String),
}

/// One file in a `.ls` listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingEntry {
    /// Path inside the store path (`/bin/hello`; `/` for the root).
    pub path: String,
    /// `regular`, `executable`, `symlink -> target` or `directory`.
    pub kind: String,
    /// Size of regular files.
    pub size: Option<u64>,
}

/// One signature, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigLine {
    /// The key name ("?" when unreadable).
    pub key_name: String,
    /// Whether a trusted key has this name.
    pub trusted_key: bool,
    /// `valid`, `valid only over unsorted references`, `does not verify`, `unknown key`,
    /// `malformed: …`.
    pub outcome: String,
    /// Whether it verifies under a trusted key.
    pub valid: bool,
}

/// Everything shown about one row.
#[derive(Clone, Debug)]
pub struct Detail {
    /// The row it describes (a detail for another row than the selected one is stale).
    pub id: RowId,
    /// Its narinfo key.
    pub key: String,
    /// The narinfo text, when it could be read.
    pub text: Option<String>,
    /// The parsed narinfo, or why it could not be read or parsed (typed: a store failure, a
    /// malformed narinfo, an encoding, or a missing narinfo).
    pub info: Result<NarInfo, Arc<CacheError>>,
    /// The verdict and its reasons.
    pub status: Status,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// Each Sig line with what checking it gave.
    pub sigs: Vec<SigLine>,
    /// The fingerprint that was checked.
    pub fingerprint: Option<String>,
    /// Whether the CA path recomputes (`None` without CA).
    pub ca_ok: Option<bool>,
    /// The NAR object.
    pub nar: NarPresence,
    /// Files from `<hash>.ls` (`None` when the cache has none for this path).
    pub listing: Option<Result<Vec<ListingEntry>, String>>,
    /// The closure: its paths, their NarSize and FileSize, and missing references.
    pub closure: crate::index::ClosureStats,
    /// Live rows referencing this one.
    pub referrers: Vec<RowId>,
    /// This row's references (row ids).
    pub references: Vec<RowId>,
}

/// Most listing entries kept.
const MAX_LISTING: usize = 2000;

/// Load the detail of `id`: narinfo text from the index (or the cache), its verdict, a HEAD
/// of its NAR, its `.ls`, closure and referrers.
pub async fn load(
    cache: Arc<Cache>,
    index: Arc<RwLock<Index>>,
    keys: Arc<TrustedKeys>,
    id: RowId,
) -> Detail {
    let (key, stored, has_ls, refs, store_dir) = {
        let idx = index.read().unwrap_or_else(|p| p.into_inner());
        (
            idx.narinfo_key(id),
            idx.read_text(id).ok().flatten(),
            idx.row(id).has(flags::HAS_LS),
            idx.refs(id).to_vec(),
            idx.store_dir().to_string(),
        )
    };
    let origin = cache.origin(&key);
    let (text, info) = match stored {
        Some(t) => {
            let info = NarInfo::parse(&t, &origin).map_err(|e| Arc::new(CacheError::from(e)));
            (Some(t), info)
        }
        // One GET: the text shown is the decoded narinfo, and it is what is judged.
        None => match cache.store().get(&key).await {
            Ok(Some(obj)) => match cache.narinfo_plain(&key, &obj) {
                Ok(plain) => {
                    let info = NarInfo::parse_bytes(&plain, &origin)
                        .map_err(|e| Arc::new(CacheError::from(e)));
                    (Some(String::from_utf8_lossy(&plain).into_owned()), info)
                }
                Err(e) => (
                    Some(String::from_utf8_lossy(&obj.bytes).into_owned()),
                    Err(Arc::new(e)),
                ),
            },
            Ok(None) => (None, Err(Arc::new(CacheError::Missing(origin.clone())))),
            Err(e) => (None, Err(Arc::new(CacheError::Store(e)))),
        },
    };
    let (status, reasons, sigs, fingerprint, ca_ok) = match &info {
        Ok(i) => {
            let v: PathVerdict = check_path(i, &keys);
            let mut report = PathReport::from_verdict(&key, i, v.clone());
            report.check_store_dir(i, &store_dir);
            let sigs = v
                .sigs
                .iter()
                .map(|s| {
                    let name = s.key_name.clone().unwrap_or_else(|| "?".into());
                    let trusted_key = keys.get(&name).is_some();
                    let (outcome, valid) = match &s.outcome {
                        SigOutcome::Valid => ("valid".to_string(), true),
                        SigOutcome::ValidLegacyOnly(how) => (how.clone(), false),
                        SigOutcome::Invalid => ("does not verify".to_string(), false),
                        SigOutcome::UnknownKey => ("unknown key".to_string(), false),
                        SigOutcome::Malformed(why) => (format!("malformed: {why}"), false),
                    };
                    SigLine {
                        key_name: name,
                        trusted_key,
                        outcome,
                        valid,
                    }
                })
                .collect();
            (
                report.status,
                report.reasons,
                sigs,
                Some(v.fingerprint),
                v.ca_path_ok,
            )
        }
        Err(e) => (Status::Error, vec![e.to_string()], Vec::new(), None, None),
    };
    let nar = match &info {
        Ok(i) => match crate::cache::nar_key(&i.url) {
            Ok(k) => match cache.store().head(&k).await {
                Ok(Some(m)) => NarPresence::Exists(m.size),
                Ok(None) => NarPresence::Missing,
                Err(e) => NarPresence::Unknown(e.to_string()),
            },
            Err(e) => NarPresence::Unknown(e.to_string()),
        },
        Err(_) => NarPresence::Unknown("no readable narinfo".into()),
    };
    let listing = if has_ls {
        let ls_key = format!("{}.ls", key.trim_end_matches(".narinfo"));
        Some(load_listing(&cache, &ls_key).await)
    } else {
        None
    };
    let (closure, referrers) = {
        let idx = index.read().unwrap_or_else(|p| p.into_inner());
        (idx.closure(id), idx.referrers(id))
    };
    Detail {
        id,
        key,
        text,
        info,
        status,
        reasons,
        sigs,
        fingerprint,
        ca_ok,
        nar,
        listing,
        closure,
        referrers,
        references: refs,
    }
}

async fn load_listing(cache: &Cache, key: &str) -> Result<Vec<ListingEntry>, String> {
    let origin = cache.origin(key);
    let obj = match cache.store().get(key).await {
        Ok(Some(o)) => o,
        Ok(None) => return Err(format!("{origin} is missing")),
        Err(e) => return Err(e.to_string()),
    };
    let bytes = crate::compression::decode_content_encoding(
        &obj.bytes,
        obj.content_encoding.as_deref(),
        &origin,
    )
    .map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{origin}: not JSON: {e}"))?;
    let root = v
        .get("root")
        .ok_or_else(|| format!("{origin}: no \"root\" in the listing"))?;
    let mut out = Vec::new();
    walk(root, String::new(), &mut out);
    Ok(out)
}

fn walk(node: &serde_json::Value, path: String, out: &mut Vec<ListingEntry>) {
    if out.len() >= MAX_LISTING {
        return;
    }
    let shown = if path.is_empty() {
        "/".to_string()
    } else {
        path.clone()
    };
    match node.get("type").and_then(|t| t.as_str()) {
        Some("regular") => {
            let exe = node.get("executable").and_then(|e| e.as_bool()) == Some(true);
            out.push(ListingEntry {
                path: shown,
                kind: if exe { "executable" } else { "regular" }.into(),
                size: node.get("size").and_then(|s| s.as_u64()),
            });
        }
        Some("symlink") => {
            let target = node.get("target").and_then(|t| t.as_str()).unwrap_or("?");
            out.push(ListingEntry {
                path: shown,
                kind: format!("symlink -> {target}"),
                size: None,
            });
        }
        Some("directory") => {
            out.push(ListingEntry {
                path: shown,
                kind: "directory".into(),
                size: None,
            });
            if let Some(entries) = node.get("entries").and_then(|e| e.as_object()) {
                let mut names: Vec<&String> = entries.keys().collect();
                names.sort();
                for n in names {
                    walk(&entries[n], format!("{path}/{n}"), out);
                }
            }
        }
        _ => out.push(ListingEntry {
            path: shown,
            kind: "unknown".into(),
            size: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_flatten_in_order() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"type":"directory","entries":{"lib":{"type":"directory","entries":{}},
            "bin":{"type":"directory","entries":{"hello":{"type":"regular","size":5,"executable":true}}},
            "share":{"type":"symlink","target":"/x"}}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        walk(&v, String::new(), &mut out);
        let got: Vec<(&str, &str)> = out
            .iter()
            .map(|e| (e.path.as_str(), e.kind.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("/", "directory"),
                ("/bin", "directory"),
                ("/bin/hello", "executable"),
                ("/lib", "directory"),
                ("/share", "symlink -> /x"),
            ]
        );
        assert_eq!(out[2].size, Some(5));
    }
}
