//! Deep verification: download NARs and check them against their narinfos.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use futures::StreamExt;

use super::{JobError, JobEvent, JobHandle, JobNotify, Throttle};
use crate::audit::{ContentCheck, check_contents};
use crate::cache::Cache;
use crate::index::{Index, RowId, RowStatus};
use crate::nix::NarInfo;

/// Deep verification of `ids`: download each NAR, decompress it, check that it is a canonical
/// NAR and that FileSize, FileHash, NarSize and NarHash match. Corrupt paths get
/// [`RowStatus::Corrupt`] in the index; paths that pass keep (or get back) their signature
/// verdict. `nar_concurrency` NARs are checked at once.
pub async fn verify_contents(
    cache: Arc<Cache>,
    index: Arc<RwLock<Index>>,
    keys: Arc<crate::nix::TrustedKeys>,
    ids: Vec<RowId>,
    nar_concurrency: usize,
    job: Arc<JobHandle>,
    notify: JobNotify,
) -> Result<(), JobError> {
    let p = job.progress.clone();
    p.total.store(ids.len() as u64, Ordering::Relaxed);
    // Paths are judged under the cache's store directory, as `verify` judges them.
    let store_dir: Arc<str> = cache.store_dir().await?.into();
    {
        let idx = index.read().unwrap_or_else(|e| e.into_inner());
        let bytes: u64 = ids
            .iter()
            .filter(|&&id| (id as usize) < idx.len())
            .map(|&id| idx.row(id).file_size().unwrap_or(0))
            .sum();
        p.bytes_total.store(bytes, Ordering::Relaxed);
    }
    let throttle = Arc::new(Throttle::default());
    let checks = futures::stream::iter(ids)
        .map(|id| {
            let cache = cache.clone();
            let index = index.clone();
            let keys = keys.clone();
            let p = p.clone();
            let store_dir = store_dir.clone();
            async move {
                let (key, text, file_size) = {
                    let idx = index.read().unwrap_or_else(|e| e.into_inner());
                    if id as usize >= idx.len() {
                        return;
                    }
                    (
                        idx.narinfo_key(id),
                        idx.read_text(id).ok().flatten(),
                        idx.row(id).file_size().unwrap_or(0),
                    )
                };
                p.set_current(key.clone());
                let info = match text {
                    Some(t) => NarInfo::parse(&t, &cache.origin(&key)).map_err(|e| e.to_string()),
                    None => match cache.fetch_narinfo(&key).await {
                        Ok(Some((_, i))) => Ok(i),
                        Ok(None) => Err(format!("{}: no such narinfo", cache.origin(&key))),
                        Err(e) => Err(e.to_string()),
                    },
                };
                let status = match info {
                    Err(e) => {
                        p.error(e);
                        None
                    }
                    Ok(info) => match crate::audit::store_dir_problem(&info, &store_dir) {
                        Some(why) => {
                            p.error(why);
                            Some(RowStatus::Error)
                        }
                        None => match check_contents(&cache, &info).await {
                            ContentCheck::Ok => {
                                let r = crate::audit::PathReport::judge(&key, &info, &keys);
                                Some(RowStatus::from(r.status))
                            }
                            ContentCheck::Corrupt(why) => {
                                p.error(why);
                                Some(RowStatus::Corrupt)
                            }
                            ContentCheck::Error(why) => {
                                p.error(why);
                                None
                            }
                        },
                    },
                };
                if let Some(s) = status {
                    index
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .set_status(id, s);
                }
                p.bytes_done.fetch_add(file_size, Ordering::Relaxed);
                p.done.fetch_add(1, Ordering::Relaxed);
            }
        })
        .buffer_unordered(nar_concurrency.max(1));
    let mut checks = std::pin::pin!(checks);
    while checks.next().await.is_some() {
        if throttle.ready() {
            notify(JobEvent::Progress(job.id));
        }
    }
    p.set_current(String::new());
    Ok(())
}
