//! Finding Nix secret keys stored in a cache, where anyone who can read the cache can take
//! them and sign as their owner.
//!
//! Which objects are read: every object at the cache root that is not a narinfo, a `.ls`
//! listing or `nix-cache-info` and is at most [`MAX_KEY_OBJECT_SIZE`] bytes (a Nix secret key
//! file is about 100), plus every object the listing saw whose name ends in `.sec`, `.key` or
//! `.secret`, of the same size. Those with such names go first; at most [`MAX_KEY_PROBES`]
//! objects are read per look (each one small GET, never more than the size limit plus one
//! byte), and the rest are counted as not checked. An object whose text parses as a secret
//! key ([`SecretKey::parse`]) is reported by its key and the secret key's *name*; the key
//! itself is never kept, printed or logged.

use std::sync::Arc;

use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::cache::CACHE_INFO_KEY;
use crate::nix::SecretKey;
use crate::nix::store_path::hash_part_from_narinfo_key;
use crate::storage::Store;

/// Largest object read as a possible secret key.
pub const MAX_KEY_OBJECT_SIZE: u64 = 1024;
/// Most objects read per look at a cache.
pub const MAX_KEY_PROBES: usize = 100;
/// Reads in flight.
const PROBE_CONCURRENCY: usize = 8;

/// A secret key found in a cache.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeakedKey {
    /// The object's key in the cache.
    pub object: String,
    /// The secret key's name (the part before `:`), never its data.
    pub key_name: String,
}

impl LeakedKey {
    /// The problem in words, naming the object and the key's name only.
    pub fn message(&self) -> String {
        format!(
            "secret key in the cache: {}; anyone who can read the cache can sign as {}; \
             delete it and rotate the key",
            self.object, self.key_name
        )
    }
}

/// What one look found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyProbe {
    /// Secret keys found, by object key.
    pub found: Vec<LeakedKey>,
    /// Objects that were read and checked.
    pub checked: usize,
    /// Candidates left unread: past [`MAX_KEY_PROBES`], or their read failed.
    pub not_checked: usize,
}

/// Whether the object's name says it may hold a key: it ends in `.sec`, `.key` or `.secret`.
pub fn has_key_like_name(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    [".sec", ".key", ".secret"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

/// Whether an object of this key and size should be read (see the module docs).
pub fn is_candidate(key: &str, size: u64) -> bool {
    if size > MAX_KEY_OBJECT_SIZE {
        return false;
    }
    if has_key_like_name(key) {
        return true;
    }
    let listing = key
        .strip_suffix(".ls")
        .is_some_and(|h| hash_part_from_narinfo_key(&format!("{h}.narinfo")).is_some());
    !key.contains('/')
        && key != CACHE_INFO_KEY
        && hash_part_from_narinfo_key(key).is_none()
        && !listing
}

/// Read the candidates among `objects` (key and size, as listed) and report the secret keys
/// among them. Reads that fail are counted as not checked (and logged), never an error.
pub async fn probe(store: &Arc<dyn Store>, objects: Vec<(String, u64)>) -> KeyProbe {
    let mut cands: Vec<(bool, String)> = objects
        .into_iter()
        .filter(|(k, size)| is_candidate(k, *size))
        .map(|(k, _)| (!has_key_like_name(&k), k))
        .collect();
    cands.sort();
    cands.dedup();
    let mut out = KeyProbe {
        not_checked: cands.len().saturating_sub(MAX_KEY_PROBES),
        ..KeyProbe::default()
    };
    cands.truncate(MAX_KEY_PROBES);
    let results: Vec<(String, Result<Option<String>, ProbeError>)> =
        futures::stream::iter(cands.into_iter().map(|(_, key)| {
            let store = store.clone();
            async move {
                let r = read_key_name(store.as_ref(), &key).await;
                (key, r)
            }
        }))
        .buffer_unordered(PROBE_CONCURRENCY)
        .collect()
        .await;
    for (key, r) in results {
        match r {
            Ok(name) => {
                out.checked += 1;
                if let Some(key_name) = name {
                    out.found.push(LeakedKey {
                        object: key,
                        key_name,
                    });
                }
            }
            Err(e) => {
                out.not_checked += 1;
                tracing::warn!("could not check {key} for a secret key: {e}");
            }
        }
    }
    out.found.sort_by(|a, b| a.object.cmp(&b.object));
    out
}

/// Why one object could not be checked for a secret key (it is then counted as not checked).
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    /// The GET failed.
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    /// Reading the body failed.
    #[error(transparent)]
    Read(#[from] std::io::Error),
}

/// The name of the secret key the object holds, if it holds one.
async fn read_key_name(store: &dyn Store, key: &str) -> Result<Option<String>, ProbeError> {
    let Some((_, reader)) = store.get_reader(key).await? else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    reader
        .take(MAX_KEY_OBJECT_SIZE + 1)
        .read_to_end(&mut buf)
        .await?;
    let name = if buf.len() as u64 > MAX_KEY_OBJECT_SIZE {
        None
    } else {
        std::str::from_utf8(&buf)
            .ok()
            .and_then(|t| SecretKey::parse(t).ok())
            .map(|k| k.name().to_string())
    };
    buf.fill(0);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_small_root_strays_and_key_like_names() {
        let ok = [
            "demo-key.sec",
            "README",
            "some.narinfo.tmp.12.3",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2auu.narinfo",
            "keys/cache.key",
            "nar/x.secret",
        ];
        for k in ok {
            assert!(is_candidate(k, 100), "{k}");
            assert!(!is_candidate(k, MAX_KEY_OBJECT_SIZE + 1), "{k} too large");
        }
        let no = [
            "nix-cache-info",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.ls",
            "nar/1w1f.nar.xz",
            "log/x.drv",
            "nar/.sec",
        ];
        for k in no {
            assert!(!is_candidate(k, 100), "{k}");
        }
    }

    #[tokio::test]
    async fn finds_secret_keys_by_content_and_never_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let sk = SecretKey::generate("leaky-1").unwrap();
        let secret = sk.to_file_text();
        std::fs::create_dir_all(dir.path().join("nar")).unwrap();
        std::fs::write(dir.path().join("notes"), &secret).unwrap();
        std::fs::write(dir.path().join("nar/x.sec"), format!("{secret}\n")).unwrap();
        std::fs::write(dir.path().join("pub.key"), sk.public_key().to_string()).unwrap();
        std::fs::write(dir.path().join("hello"), "hello").unwrap();
        let store: Arc<dyn Store> = Arc::new(crate::storage::file::FileStore::new(
            dir.path().to_path_buf(),
        ));
        let objects: Vec<(String, u64)> = ["notes", "nar/x.sec", "pub.key", "hello"]
            .iter()
            .map(|k| (k.to_string(), 100))
            .collect();
        let p = probe(&store, objects).await;
        assert_eq!(
            p.found,
            vec![
                LeakedKey {
                    object: "nar/x.sec".into(),
                    key_name: "leaky-1".into()
                },
                LeakedKey {
                    object: "notes".into(),
                    key_name: "leaky-1".into()
                },
            ]
        );
        assert_eq!((p.checked, p.not_checked), (4, 0));
        let m = p.found[1].message();
        assert_eq!(
            m,
            "secret key in the cache: notes; anyone who can read the cache can sign as leaky-1; delete it and rotate the key"
        );
        let b64 = secret.split_once(':').unwrap().1;
        assert!(!format!("{p:?}").contains(&b64[..12]));
    }

    #[tokio::test]
    async fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut objects = Vec::new();
        for i in 0..MAX_KEY_PROBES + 5 {
            let k = format!("stray-{i:03}");
            std::fs::write(dir.path().join(&k), "x").unwrap();
            objects.push((k, 1));
        }
        let store: Arc<dyn Store> = Arc::new(crate::storage::file::FileStore::new(
            dir.path().to_path_buf(),
        ));
        let p = probe(&store, objects).await;
        assert_eq!((p.checked, p.not_checked), (MAX_KEY_PROBES, 5));
    }
}
