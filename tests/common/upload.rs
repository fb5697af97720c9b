//! Copying a cache directory into a store object by object, with narscope's storage layer
//! (the way a test puts a file:// cache made by Nix or narscope onto Garage).

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use narscope::storage::{PutOptions, Store};

/// How [`upload_dir`] uploads.
#[derive(Clone, Copy, Debug)]
pub struct Upload {
    /// Every `nar/…` object before any other, as a pusher writes them (a narinfo never
    /// names a NAR that is not there yet).
    pub nars_first: bool,
    /// Leave out secret key files (`*.sec`), which must never be in a cache.
    pub skip_secret_keys: bool,
    /// Objects in flight at once.
    pub concurrency: usize,
}

impl Default for Upload {
    /// In key order, every file, one at a time.
    fn default() -> Self {
        Upload {
            nars_first: false,
            skip_secret_keys: false,
            concurrency: 1,
        }
    }
}

/// Puts every file under `dir` into `store` under its relative path (`/` separators);
/// returns the number of objects uploaded. Panics naming the file on the first failure.
pub async fn upload_dir(store: &Arc<dyn Store>, dir: &Path, how: Upload) -> usize {
    let mut files = super::fs::list_files(dir);
    if how.skip_secret_keys {
        files.retain(|(k, _)| !k.ends_with(".sec"));
    }
    let (nars, rest): (Vec<_>, Vec<_>) = if how.nars_first {
        files.into_iter().partition(|(k, _)| k.starts_with("nar/"))
    } else {
        (Vec::new(), files)
    };
    let mut n = 0;
    for batch in [nars, rest] {
        n += batch.len();
        futures::stream::iter(batch)
            .map(|(key, path)| {
                let store = store.clone();
                async move {
                    let body =
                        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    store
                        .put(&key, body.into(), &PutOptions::default())
                        .await
                        .unwrap_or_else(|e| panic!("uploading {}: {e}", path.display()));
                }
            })
            .buffer_unordered(how.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
    }
    n
}

/// [`upload_dir`] from synchronous code: opens `url` with `g`'s credentials
/// ([`super::Garage::open`]) on a runtime of its own.
pub fn upload_to(g: &super::Garage, url: &str, dir: &Path, how: Upload) -> usize {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    rt.block_on(async {
        let store = g.open(url).await;
        upload_dir(&store, dir, how).await
    })
}
