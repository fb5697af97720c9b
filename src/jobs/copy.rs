//! Copying paths, with their closures, from one cache to another, bytes verbatim.
//!
//! A copy is planned first ([`plan`]): the narinfos of the requested paths and of everything
//! they reference are read from the source and judged under the trusted keys (a
//! content-addressed path counts as trusted, as for `pull`), and the destination is asked
//! which of them it already has: a path counts as there only when its narinfo *and* the NAR
//! that narinfo names are there (a narinfo whose NAR is missing is repaired by copying the
//! NAR). Nothing is written while planning; untrusted paths refuse the whole copy unless the
//! caller says otherwise ([`CopyOptions::no_check_sigs`]).
//!
//! Then [`copy`] writes in Nix's order: per path its NAR (and `.ls` listing) first, its
//! narinfo last, and a narinfo only once the narinfos of all its references are at the
//! destination; so at no instant does the destination hold a narinfo without its NAR or its
//! references, and an interrupted copy run again converges. The narinfo text and the
//! compressed NAR are copied as they are (URL, FileHash and every signature stay valid):
//! on the server where both caches allow it ([`Store::copy_from`](crate::storage::Store::copy_from): S3 CopyObject between
//! buckets of one endpoint and credentials, hard links between two directories), streamed
//! through a temp file otherwise (bounded memory). Build logs (`log/<deriver>`) and
//! `debuginfo/` links to the copied NARs go along where the source has them.
//!
//! Not verbatim on request: `keys` add a signature to each narinfo in the same single write
//! (the other lines stay byte for byte), `recompress` decompresses and recompresses each
//! NAR and rewrites URL, Compression, FileHash and FileSize.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::sign::NARINFO_CONTENT_TYPE;
use super::{JobError, JobHandle, JobNotify, Throttle};
use crate::audit::{ContentCheck, PathReport, Status};
use crate::cache::{CACHE_INFO_KEY, Cache, nar_key, narinfo_key_in};
use crate::compression::{self, Compression};
use crate::lease::PushRegistration;
use crate::nix::{Hash, NarInfo, SecretKey, TrustedKeys};
use crate::storage::{CopySource, ObjectMeta, PutCondition, StoreErrorKind};

/// Content type of NAR objects, as Nix uploads them.
const NAR_CONTENT_TYPE: &str = "application/x-nix-nar";

/// Buffer of a streamed NAR, each side (memory stays bounded by a few of these per path in
/// flight).
const STREAM_BUFFER: usize = 1 << 20;

/// The largest object one S3 CopyObject copies; larger NARs are streamed.
const MAX_SERVER_COPY: u64 = 5 << 30;

/// Which paths to copy (each with its closure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// These store paths (absolute, base names or hash parts).
    Paths(Vec<String>),
    /// Every narinfo of the source (it must be listable).
    All,
    /// The paths of the source's pin of this name.
    Pin(String),
}

/// How a copy runs.
#[derive(Clone, Default)]
pub struct CopyOptions {
    /// Copy paths that are not trusted too (as Nix's `--no-check-sigs`).
    pub no_check_sigs: bool,
    /// Add a signature by each of these keys to every narinfo written.
    pub keys: Vec<Arc<SecretKey>>,
    /// Decompress and recompress every NAR with this codec and level (not verbatim).
    pub recompress: Option<(Compression, Option<i32>)>,
    /// After writing, download and hash every copied NAR at the destination.
    pub verify: bool,
    /// Paths in flight at once.
    pub concurrency: usize,
}

/// What the plan says about one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PathState {
    /// Not at the destination: NAR, then narinfo.
    Copy,
    /// Narinfo and NAR at the destination: skipped.
    Present,
    /// The destination's narinfo is there but its NAR is not: the NAR is copied.
    RepairNar,
}

/// One path of a plan.
#[derive(Clone, Debug)]
pub struct PlannedPath {
    /// Its narinfo key.
    pub key: String,
    /// The source's narinfo.
    pub info: NarInfo,
    /// What is done with it.
    pub state: PathState,
}

/// A path the copy refuses (not trusted).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedPath {
    /// The store path.
    pub store_path: String,
    /// Its verdict under the trusted keys.
    pub status: String,
    /// Why.
    pub reasons: Vec<String>,
}

/// What a copy will do, decided before any byte moves ([`plan`]).
#[derive(Clone, Debug)]
pub struct CopyPlan {
    /// Every path of the closures, references before referrers (level by level).
    pub paths: Vec<PlannedPath>,
    /// Indices into `paths`, by level: a level references only lower ones.
    pub levels: Vec<Vec<usize>>,
    /// Paths refused for lack of trust (copied anyway with `no_check_sigs`, and then empty).
    pub refused: Vec<RefusedPath>,
    /// Whether both caches allow a server-side copy (whether the server implements it is
    /// learnt at the first NAR).
    pub server_side: bool,
    /// Whether the copy is verbatim (no recompression; added signatures do not count).
    pub verbatim: bool,
    /// The destination has no `nix-cache-info` (the source's is copied).
    pub needs_cache_info: bool,
}

/// The plan in numbers, for the CLI, the dashboard and `--json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanCounts {
    /// Paths in the closures.
    pub paths: u64,
    /// Paths to copy.
    pub to_copy: u64,
    /// Paths already at the destination (checked: narinfo and NAR).
    pub already_there: u64,
    /// Paths whose narinfo is at the destination without its NAR.
    pub repairs: u64,
    /// Paths refused.
    pub refused: u64,
    /// Compressed NAR bytes to copy.
    pub bytes: u64,
    /// Requests to the destination, about (NAR, narinfo, listing probe per path).
    pub requests: u64,
    /// Server-side copy possible.
    pub server_side: bool,
    /// Bytes verbatim.
    pub verbatim: bool,
}

impl CopyPlan {
    /// The plan's numbers.
    pub fn counts(&self) -> PlanCounts {
        let mut c = PlanCounts {
            paths: self.paths.len() as u64,
            refused: self.refused.len() as u64,
            server_side: self.server_side,
            verbatim: self.verbatim,
            ..PlanCounts::default()
        };
        for p in &self.paths {
            let size = p.info.file_size.unwrap_or(p.info.nar_size);
            match p.state {
                PathState::Present => c.already_there += 1,
                PathState::Copy => {
                    c.to_copy += 1;
                    c.bytes += size;
                    c.requests += 4;
                }
                PathState::RepairNar => {
                    c.repairs += 1;
                    c.bytes += size;
                    c.requests += 1;
                }
            }
        }
        c
    }

    /// One line: what the copy will do.
    pub fn summary_line(&self) -> String {
        let c = self.counts();
        let mut t = format!(
            "plan: {} path(s) in the closure: {} to copy, {} already there",
            c.paths, c.to_copy, c.already_there
        );
        if c.repairs > 0 {
            t.push_str(&format!(", {} NAR(s) to repair", c.repairs));
        }
        t.push_str(&format!(
            "; {} to transfer, about {} request(s)",
            crate::units::human_size(c.bytes),
            c.requests
        ));
        t.push_str(if c.server_side {
            "; server-side copy where the server allows it"
        } else {
            "; streamed"
        });
        if !c.verbatim {
            t.push_str("; NOT verbatim: NARs are recompressed and narinfos rewritten");
        }
        if c.refused > 0 {
            t.push_str(&format!("; {} refused (not trusted)", c.refused));
        }
        t
    }
}

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CopySummary {
    /// Paths in the closures.
    pub paths: u64,
    /// Paths copied (narinfo written).
    pub copied: u64,
    /// Paths already at the destination.
    pub present: u64,
    /// NARs copied again under a narinfo that was there.
    pub repaired: u64,
    /// NARs copied on the server (CopyObject or hard link).
    pub server_side: u64,
    /// NARs streamed through narscope.
    pub streamed: u64,
    /// NARs recompressed.
    pub recompressed: u64,
    /// Compressed NAR bytes written.
    pub file_bytes: u64,
    /// `.ls` listings copied.
    pub listings: u64,
    /// Build logs copied.
    pub logs: u64,
    /// `debuginfo/` links copied.
    pub debuginfo_links: u64,
    /// Signatures added.
    pub signatures_added: u64,
    /// NARs downloaded and hashed at the destination (`verify`).
    pub verified: u64,
    /// Why server-side copies stopped, when the server refused one (then NARs were streamed).
    pub server_side_note: Option<String>,
    /// Whether `nix-cache-info` was written.
    pub wrote_cache_info: bool,
}

/// The narinfo text of `key` in `cache` (decoded where it is stored compressed) and the
/// narinfo; `None` when there is none.
async fn read_narinfo(cache: &Cache, key: &str) -> Result<Option<(String, NarInfo)>, JobError> {
    let Some(obj) = cache.store().get(key).await? else {
        return Ok(None);
    };
    let plain = cache
        .narinfo_plain(key, &obj)
        .map_err(|e| JobError::Cache(Box::new(e)))?;
    let info = NarInfo::parse_bytes(&plain, &cache.origin(key))?;
    Ok(Some((String::from_utf8_lossy(&plain).into_owned(), info)))
}

/// The narinfo keys a selection names.
async fn roots(
    src: &Arc<Cache>,
    sel: &Selection,
    store_dir: &str,
) -> Result<Vec<String>, JobError> {
    match sel {
        Selection::Paths(ps) => ps
            .iter()
            .map(|p| narinfo_key_in(p, store_dir).map_err(|e| JobError::Invalid(e.to_string())))
            .collect(),
        Selection::All => {
            let mut keys = Vec::new();
            let mut s = std::pin::pin!(src.narinfo_key_stream(16));
            while let Some(m) = s.next().await {
                keys.push(m?.key);
            }
            Ok(keys)
        }
        Selection::Pin(name) => {
            // Read by its key (no listing: this works on an HTTP cache too).
            crate::pins::check_pin_name(name)?;
            let key = format!("{}{name}", crate::pins::PINS_PREFIX);
            let obj = src.store().get(&key).await?.ok_or_else(|| {
                JobError::Missing(format!("{}: no pin named {name}", src.origin(&key)))
            })?;
            let pin = crate::pins::parse_pin(name, &String::from_utf8_lossy(&obj.bytes))?;
            pin.paths
                .iter()
                .map(|p| narinfo_key_in(p, store_dir).map_err(|e| JobError::Invalid(e.to_string())))
                .collect()
        }
    }
}

/// Plan a copy from `src` to `dst` (see the module docs): reads only, writes nothing.
pub async fn plan(
    src: &Arc<Cache>,
    dst: &Arc<Cache>,
    sel: &Selection,
    keys: &TrustedKeys,
    opts: &CopyOptions,
) -> Result<CopyPlan, JobError> {
    let store_dir = src.store_dir().await?;
    let dst_info = dst.cache_info().await?;
    if let Some(ci) = &dst_info
        && ci.store_dir != store_dir
    {
        return Err(JobError::Refused(format!(
            "refusing to copy: {} is for the store directory {}, {} for {store_dir}",
            dst.store().describe(),
            ci.store_dir,
            src.store().describe()
        )));
    }
    let mut queue: VecDeque<String> = roots(src, sel, &store_dir).await?.into();
    let mut seen: HashSet<String> = queue.iter().cloned().collect();
    let mut infos: BTreeMap<String, NarInfo> = BTreeMap::new();
    let mut refused = Vec::new();
    while !queue.is_empty() {
        let batch: Vec<String> = queue.drain(..).collect();
        let fetched = futures::stream::iter(batch)
            .map(|k| async move { (k.clone(), read_narinfo(src, &k).await) })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await;
        for (key, r) in fetched {
            let Some((_, info)) = r? else {
                return Err(JobError::Missing(format!(
                    "{}: no such narinfo (a path to copy or a reference of one); nothing was written",
                    src.origin(&key)
                )));
            };
            let mut report = PathReport::judge(&key, &info, keys);
            report.check_store_dir(&info, &store_dir);
            let trusted = matches!(report.status, Status::Trusted | Status::ContentAddressed);
            if !trusted && !opts.no_check_sigs {
                refused.push(RefusedPath {
                    store_path: info.absolute_path(),
                    status: report.status.to_string(),
                    reasons: report.reasons.clone(),
                });
            }
            if opts.recompress.is_some() && opts.keys.is_empty() && info.ca.is_none() {
                return Err(JobError::Refused(format!(
                    "refusing to recompress {} without --key-file: a rewritten narinfo must be \
                     signed (only content-addressed paths may go unsigned); nothing was written",
                    info.absolute_path()
                )));
            }
            for r in &info.references {
                let k = r.narinfo_key();
                if seen.insert(k.clone()) {
                    queue.push_back(k);
                }
            }
            infos.insert(key, info);
        }
    }
    refused.sort_by(|a, b| a.store_path.cmp(&b.store_path));
    // What the destination has: a narinfo counts only with the NAR it names.
    let keys_list: Vec<String> = infos.keys().cloned().collect();
    let states = futures::stream::iter(keys_list)
        .map(|k| {
            let dst = dst.clone();
            let src_url = infos.get(&k).map(|i| i.url.clone()).unwrap_or_default();
            async move {
                let state = match read_narinfo(&dst, &k).await {
                    Ok(Some((_, have))) => match nar_key(&have.url) {
                        Ok(nk) => match dst.store().head(&nk).await? {
                            Some(_) => PathState::Present,
                            None if have.url == src_url => PathState::RepairNar,
                            None => PathState::Copy,
                        },
                        Err(_) => PathState::Copy,
                    },
                    Ok(None) => PathState::Copy,
                    // An unreadable narinfo at the destination is replaced.
                    Err(JobError::NarInfo(_) | JobError::Cache(_)) => PathState::Copy,
                    Err(e) => return Err(e),
                };
                Ok::<_, JobError>((k, state))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let mut state_of = HashMap::new();
    for r in states {
        let (k, s) = r?;
        state_of.insert(k, s);
    }
    let paths: Vec<PlannedPath> = infos
        .into_iter()
        .map(|(key, info)| PlannedPath {
            state: state_of.get(&key).copied().unwrap_or(PathState::Copy),
            key,
            info,
        })
        .collect();
    let levels = levels(&paths);
    let server_side = opts.recompress.is_none()
        && src
            .store()
            .copy_source()
            .is_some_and(|cs| dst.store().can_copy_from(&cs));
    Ok(CopyPlan {
        paths,
        levels,
        refused,
        server_side,
        verbatim: opts.recompress.is_none(),
        needs_cache_info: dst_info.is_none(),
    })
}

/// Levels of `paths` by their references among themselves (Kahn's algorithm): level 0
/// references nothing in the set, level n only lower levels; paths on a cycle go last.
fn levels(paths: &[PlannedPath]) -> Vec<Vec<usize>> {
    let pos: HashMap<&str, usize> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key.as_str(), i))
        .collect();
    let refs: Vec<Vec<usize>> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut refs: Vec<usize> = p
                .info
                .references
                .iter()
                .filter_map(|r| pos.get(r.narinfo_key().as_str()).copied())
                .filter(|&j| j != i)
                .collect();
            refs.sort_unstable();
            refs.dedup();
            refs
        })
        .collect();
    super::reference_levels(&refs)
}

/// How NARs move: on the server while it lets us, streamed otherwise.
struct Mover {
    src: Arc<Cache>,
    dst: Arc<Cache>,
    source: Option<CopySource>,
    server_side: AtomicBool,
    note: std::sync::Mutex<Option<String>>,
}

/// How one NAR moved.
enum Moved {
    ServerSide(u64),
    Streamed(u64),
}

impl Mover {
    /// Copies the object `key` (of `size` bytes when known) verbatim.
    async fn copy_object(
        &self,
        key: &str,
        size: Option<u64>,
        content_type: &str,
    ) -> Result<Moved, JobError> {
        let opts = self.dst.put_options(content_type, PutCondition::None);
        if let Some(cs) = &self.source
            && self.server_side.load(Ordering::Relaxed)
            && size.is_none_or(|s| s <= MAX_SERVER_COPY)
        {
            match self.dst.store().copy_from(cs, key, key, &opts).await {
                Ok(_) => return Ok(Moved::ServerSide(size.unwrap_or(0))),
                Err(e)
                    if matches!(e.kind, StoreErrorKind::NotSupported | StoreErrorKind::Other) =>
                {
                    // Probed once: the first refusal turns server-side copies off.
                    if self.server_side.swap(false, Ordering::Relaxed) {
                        let why = format!(
                            "{} refused a server-side copy ({e}); NARs are streamed instead",
                            self.dst.store().describe()
                        );
                        tracing::warn!("{why}");
                        *self.note.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.stream(key, size, content_type)
            .await
            .map(Moved::Streamed)
    }

    /// Streams `key` through a temp file (memory stays bounded whatever the size).
    async fn stream(
        &self,
        key: &str,
        size: Option<u64>,
        content_type: &str,
    ) -> Result<u64, JobError> {
        let Some((_, mut reader)) = self.src.store().get_reader(key).await? else {
            return Err(JobError::Missing(format!(
                "{} is missing at the source",
                self.src.origin(key)
            )));
        };
        let mut tmp = self.temp_file()?;
        // Big buffers on both sides: each write to the file is one blocking call.
        let mut f = tokio::io::BufWriter::with_capacity(
            STREAM_BUFFER,
            tokio::fs::File::from_std(
                tmp.reopen()
                    .map_err(|e| JobError::Local(format!("{}: {e}", tmp.path().display())))?,
            ),
        );
        let mut r = tokio::io::BufReader::with_capacity(STREAM_BUFFER, &mut reader);
        let n = tokio::io::copy_buf(&mut r, &mut f)
            .await
            .map_err(|e| JobError::Failed(format!("reading {}: {e}", self.src.origin(key))))?;
        tokio::io::AsyncWriteExt::flush(&mut f)
            .await
            .map_err(|e| JobError::Local(format!("{}: {e}", tmp.path().display())))?;
        drop(f);
        if let Some(s) = size
            && s != n
        {
            return Err(JobError::Invalid(format!(
                "{}: FileSize is {s} but {n} bytes arrived; nothing was written",
                self.src.origin(key)
            )));
        }
        self.dst
            .store()
            .put_owned_file(
                key,
                tmp.path(),
                &self.dst.put_options(content_type, PutCondition::None),
            )
            .await?;
        Ok(n)
    }

    /// A temp file beside a local destination (renamed into place), else in the temp dir;
    /// removed when dropped.
    fn temp_file(&self) -> Result<TempFile, JobError> {
        let dir = self
            .dst
            .store()
            .local_root()
            .map(|r| r.join("nar"))
            .filter(|d| std::fs::create_dir_all(d).is_ok())
            .unwrap_or_else(std::env::temp_dir);
        // Named as interrupted writers' temp files are, so that gc finds one left by a kill.
        let path = dir.join(format!(
            "narscope-copy-{}.nar.tmp.{}.0",
            crate::storage::random_hex(),
            std::process::id()
        ));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map(|f| TempFile {
                path,
                file: Some(f),
            })
            .map_err(|e| {
                JobError::Local(format!(
                    "cannot create a temp file in {}: {e}",
                    dir.display()
                ))
            })
    }

    /// Decompresses the NAR of `info`, checks its NarHash and NarSize, recompresses it with
    /// `c`, writes it under its new key; returns the rewritten narinfo fields.
    async fn recompress(
        &self,
        info: &NarInfo,
        c: Compression,
        level: Option<i32>,
    ) -> Result<(String, Hash, u64), JobError> {
        let key = nar_key(&info.url)
            .map_err(|e| JobError::Invalid(format!("{}: {e}", info.absolute_path())))?;
        let from = Compression::from_narinfo_field(info.compression.as_deref())
            .map_err(|e| JobError::Invalid(format!("{}: {e}", self.src.origin(&key))))?;
        let Some(reader) = crate::storage::blocking_reader(self.src.store().as_ref(), &key).await?
        else {
            return Err(JobError::Missing(format!(
                "{} is missing at the source",
                self.src.origin(&key)
            )));
        };
        let mut tmp = self.temp_file()?;
        let out = tmp
            .reopen()
            .map_err(|e| JobError::Local(format!("{}: {e}", tmp.path().display())))?;
        let want = (info.nar_hash.clone(), info.nar_size);
        let origin = self.src.origin(&key);
        let (file_hash, file_size) =
            tokio::task::spawn_blocking(move || -> Result<([u8; 32], u64), JobError> {
                let limit = want.1;
                let mut dec = compression::Bounded::new(compression::decoder(from, reader), limit + 1);
                let hashing = HashWriter::new(std::io::BufWriter::new(out));
                let mut enc = compression::encoder(c, level, hashing)
                    .map_err(|e| JobError::Invalid(e.to_string()))?;
                let mut nar = Sha256::new();
                let mut n = 0u64;
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let k = dec
                        .read(&mut buf)
                        .map_err(|e| JobError::Failed(format!("{origin}: {e}")))?;
                    if k == 0 {
                        break;
                    }
                    nar.update(&buf[..k]);
                    n += k as u64;
                    enc.write_all(&buf[..k])
                        .map_err(|e| JobError::Local(format!("recompressing {origin}: {e}")))?;
                }
                let hashing = enc
                    .finish()
                    .map_err(|e| JobError::Local(format!("recompressing {origin}: {e}")))?;
                let digest: [u8; 32] = nar.finalize().into();
                if n != want.1 || want.0.digest() != digest {
                    return Err(JobError::Invalid(format!(
                        "{origin}: the NAR does not match the narinfo's NarHash/NarSize; nothing was written"
                    )));
                }
                hashing.finish()
            })
            .await
            .map_err(|e| JobError::Failed(format!("recompressing a NAR failed: {e}")))??;
        let fh = Hash::sha256(file_hash);
        let url = format!("nar/{}.nar{}", fh.nix32_digest(), c.extension());
        self.dst
            .store()
            .put_owned_file(
                &url,
                tmp.path(),
                &self.dst.put_options(NAR_CONTENT_TYPE, PutCondition::None),
            )
            .await?;
        Ok((url, fh, file_size))
    }
}

/// A temp file, removed when dropped (unless a store moved it into place).
struct TempFile {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl TempFile {
    fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The open file (once).
    fn reopen(&mut self) -> std::io::Result<std::fs::File> {
        match self.file.take() {
            Some(f) => Ok(f),
            None => std::fs::OpenOptions::new().write(true).open(&self.path),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A writer that hashes and counts what goes through.
struct HashWriter<W: Write> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hash: Sha256::new(),
            n: 0,
        }
    }

    fn finish(mut self) -> Result<([u8; 32], u64), JobError> {
        self.inner
            .flush()
            .map_err(|e| JobError::Local(format!("writing a temp file: {e}")))?;
        Ok((self.hash.finalize().into(), self.n))
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hash.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Counters shared by the paths in flight.
#[derive(Default)]
struct Counts {
    copied: AtomicU64,
    repaired: AtomicU64,
    server_side: AtomicU64,
    streamed: AtomicU64,
    recompressed: AtomicU64,
    file_bytes: AtomicU64,
    listings: AtomicU64,
    logs: AtomicU64,
    signatures: AtomicU64,
    verified: AtomicU64,
}

/// Copy what `plan` says (see the module docs). Refuses when the plan refused paths.
pub async fn copy(
    src: Arc<Cache>,
    dst: Arc<Cache>,
    plan: CopyPlan,
    opts: CopyOptions,
    job: Arc<JobHandle>,
    notify: JobNotify,
) -> Result<CopySummary, JobError> {
    if !plan.refused.is_empty() {
        return Err(JobError::Refused(format!(
            "refusing to copy {} untrusted path(s) (first: {}); nothing was written",
            plan.refused.len(),
            plan.refused[0].store_path
        )));
    }
    let p = job.progress.clone();
    let mut summary = CopySummary {
        paths: plan.paths.len() as u64,
        ..CopySummary::default()
    };
    let work: Vec<usize> = plan
        .levels
        .iter()
        .flatten()
        .copied()
        .filter(|&i| plan.paths[i].state != PathState::Present)
        .collect();
    summary.present = (plan.paths.len() - work.len()) as u64;
    p.total.store(work.len() as u64, Ordering::Relaxed);
    p.bytes_total.store(
        work.iter()
            .map(|&i| {
                let info = &plan.paths[i].info;
                info.file_size.unwrap_or(info.nar_size)
            })
            .sum(),
        Ordering::Relaxed,
    );
    if work.is_empty() {
        return Ok(summary);
    }
    if plan.needs_cache_info {
        p.set_current("writing nix-cache-info");
        let _ = dst.store().ensure_container().await;
        if dst.store().head(CACHE_INFO_KEY).await?.is_none() {
            let text: bytes::Bytes = match src.store().get(CACHE_INFO_KEY).await? {
                Some(o) => compression::decode_content_encoding_max(
                    &o.bytes,
                    o.content_encoding.as_deref(),
                    &src.origin(CACHE_INFO_KEY),
                    compression::MAX_DECODED_NARINFO,
                )
                .map_err(|e| JobError::Cache(Box::new(e.into())))?
                .into(),
                None => crate::nix::CacheInfo::new().to_text().into_bytes().into(),
            };
            dst.put_object(
                CACHE_INFO_KEY,
                text,
                "text/x-nix-cache-info",
                PutCondition::None,
            )
            .await?;
            summary.wrote_cache_info = true;
        }
    }
    // Registered, as a push is: a deletion waits for this copy, and one that runs makes it wait.
    p.set_current("registering with the destination (deletions wait for writers)");
    let reg = PushRegistration::register(dst.store().clone())
        .await
        .map_err(JobError::from)?;
    let mover = Arc::new(Mover {
        src: src.clone(),
        dst: dst.clone(),
        source: if plan.server_side {
            src.store().copy_source()
        } else {
            None
        },
        server_side: AtomicBool::new(plan.server_side),
        note: std::sync::Mutex::new(None),
    });
    let r = copy_registered(mover, &plan, &opts, &job, &notify, &reg, &work).await;
    reg.finish().await;
    let (counts, note) = r?;
    summary.copied = counts.copied.load(Ordering::Relaxed);
    summary.repaired = counts.repaired.load(Ordering::Relaxed);
    summary.server_side = counts.server_side.load(Ordering::Relaxed);
    summary.streamed = counts.streamed.load(Ordering::Relaxed);
    summary.recompressed = counts.recompressed.load(Ordering::Relaxed);
    summary.file_bytes = counts.file_bytes.load(Ordering::Relaxed);
    summary.listings = counts.listings.load(Ordering::Relaxed);
    summary.logs = counts.logs.load(Ordering::Relaxed);
    summary.signatures_added = counts.signatures.load(Ordering::Relaxed);
    summary.verified = counts.verified.load(Ordering::Relaxed);
    summary.server_side_note = note;
    p.set_current("copying debuginfo links");
    let nar_urls: HashSet<String> = work
        .iter()
        .map(|&i| plan.paths[i].info.url.clone())
        .collect();
    if plan.verbatim {
        summary.debuginfo_links = copy_debuginfo(&src, &dst, &nar_urls).await?;
    }
    p.set_current(String::new());
    Ok(summary)
}

/// The paths of `work`, level by level; returns the counters and the server-side note.
async fn copy_registered(
    mover: Arc<Mover>,
    plan: &CopyPlan,
    opts: &CopyOptions,
    job: &Arc<JobHandle>,
    notify: &JobNotify,
    reg: &PushRegistration,
    work: &[usize],
) -> Result<(Counts, Option<String>), JobError> {
    let p = job.progress.clone();
    let checked_in = reg.epoch();
    let counts = Counts::default();
    let throttle = Throttle::default();
    let todo: HashSet<usize> = work.iter().copied().collect();
    let mut failed: HashSet<usize> = HashSet::new();
    let pos: HashMap<String, usize> = plan
        .paths
        .iter()
        .enumerate()
        .map(|(i, pp)| (pp.key.clone(), i))
        .collect();
    for level in &plan.levels {
        let this: Vec<usize> = level.iter().copied().filter(|i| todo.contains(i)).collect();
        let mut level_failed = Vec::new();
        {
            let results = futures::stream::iter(this)
                .map(|i| {
                    let pp = &plan.paths[i];
                    let mover = mover.clone();
                    let counts = &counts;
                    let p = p.clone();
                    let failed = &failed;
                    let pos = &pos;
                    async move {
                        p.set_current(pp.info.absolute_path());
                        let bad_ref = pp.info.references.iter().find_map(|r| {
                            pos.get(&r.narinfo_key())
                                .filter(|j| failed.contains(j))
                                .map(|&j| plan.paths[j].info.absolute_path())
                        });
                        let r = match bad_ref {
                            Some(r) => Err(JobError::Failed(format!(
                                "{}: not copied, because {r} (which it references) failed",
                                pp.info.absolute_path()
                            ))),
                            None => copy_one(&mover, pp, opts, counts, reg, checked_in).await,
                        };
                        p.done.fetch_add(1, Ordering::Relaxed);
                        p.bytes_done.fetch_add(
                            pp.info.file_size.unwrap_or(pp.info.nar_size),
                            Ordering::Relaxed,
                        );
                        (i, r)
                    }
                })
                .buffer_unordered(opts.concurrency.max(1));
            let mut results = std::pin::pin!(results);
            while let Some((i, r)) = results.next().await {
                if let Err(e) = r {
                    p.error(e.to_string());
                    level_failed.push(i);
                }
                if throttle.ready() {
                    notify(super::JobEvent::Progress(job.id));
                }
            }
        }
        failed.extend(level_failed);
    }
    if !failed.is_empty() {
        return Err(JobError::Failed(format!(
            "{} path(s) failed (the paths that reference a failed one were not copied)",
            failed.len()
        )));
    }
    let note = mover.note.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((counts, note))
}

/// One path: NAR (and listing), then narinfo (and log).
async fn copy_one(
    mover: &Mover,
    pp: &PlannedPath,
    opts: &CopyOptions,
    counts: &Counts,
    reg: &PushRegistration,
    checked_in: u64,
) -> Result<(), JobError> {
    let (src, dst) = (&mover.src, &mover.dst);
    let info = &pp.info;
    let key = nar_key(&info.url)
        .map_err(|e| JobError::Invalid(format!("{}: {e}", info.absolute_path())))?;
    let mut out = info.clone();
    // The NAR first.
    let nar_at = match (pp.state, opts.recompress) {
        (PathState::Copy, Some((c, level))) => {
            let (url, fh, size) = mover.recompress(info, c, level).await?;
            out.url = url.clone();
            out.compression = Some(c.name().to_string());
            out.file_hash = Some(fh);
            out.file_size = Some(size);
            counts.recompressed.fetch_add(1, Ordering::Relaxed);
            counts.file_bytes.fetch_add(size, Ordering::Relaxed);
            url
        }
        _ => {
            let moved = mover
                .copy_object(&key, info.file_size, NAR_CONTENT_TYPE)
                .await?;
            let n = match moved {
                Moved::ServerSide(n) => {
                    counts.server_side.fetch_add(1, Ordering::Relaxed);
                    n
                }
                Moved::Streamed(n) => {
                    counts.streamed.fetch_add(1, Ordering::Relaxed);
                    n
                }
            };
            counts.file_bytes.fetch_add(n, Ordering::Relaxed);
            key.clone()
        }
    };
    if pp.state == PathState::RepairNar {
        counts.repaired.fetch_add(1, Ordering::Relaxed);
        return verify_one(dst, &out, opts, counts).await;
    }
    // The listing, before the narinfo, as Nix writes it.
    let ls = format!("{}.ls", info.store_path.hash_part());
    if let Some(obj) = src.store().get(&ls).await? {
        let plain = compression::decode_content_encoding_max(
            &obj.bytes,
            obj.content_encoding.as_deref(),
            &src.origin(&ls),
            compression::MAX_DECODED_NARINFO.max(64 << 20),
        )
        .map_err(|e| JobError::Cache(Box::new(e.into())))?;
        dst.put_object(&ls, plain.into(), "application/json", PutCondition::None)
            .await?;
        counts.listings.fetch_add(1, Ordering::Relaxed);
    }
    // Signed as it goes: the source's text plus one Sig line per key.
    for k in &opts.keys {
        if out.sign(k) {
            counts.signatures.fetch_add(1, Ordering::Relaxed);
        }
    }
    let text = out.to_text();
    {
        let permit = reg.permit().await;
        if permit.epoch != checked_in {
            // A deletion ran meanwhile: what this narinfo relies on is checked again.
            if dst.store().head(&nar_at).await?.is_none() {
                return Err(JobError::Failed(format!(
                    "{}: not copied, because its NAR was deleted while this copy was paused for a deletion; run the copy again",
                    info.absolute_path()
                )));
            }
            for r in info.references.iter().filter(|r| **r != info.store_path) {
                if dst.store().head(&r.narinfo_key()).await?.is_none() {
                    return Err(JobError::Failed(format!(
                        "{}: not copied, because its reference {} was deleted while this copy was paused for a deletion; run the copy again",
                        info.absolute_path(),
                        r.to_absolute()
                    )));
                }
            }
        }
        dst.put_object(
            &pp.key,
            text.into_bytes().into(),
            NARINFO_CONTENT_TYPE,
            PutCondition::None,
        )
        .await?;
    }
    counts.copied.fetch_add(1, Ordering::Relaxed);
    // The build log, where the source has one.
    if let Some(d) = &info.deriver {
        let log = format!("log/{}", d.base_name());
        if let Some(obj) = src.store().get(&log).await? {
            let plain = compression::decode_content_encoding_max(
                &obj.bytes,
                obj.content_encoding.as_deref(),
                &src.origin(&log),
                1 << 30,
            )
            .map_err(|e| JobError::Cache(Box::new(e.into())))?;
            dst.put_object(
                &log,
                plain.into(),
                "text/plain; charset=utf-8",
                PutCondition::None,
            )
            .await?;
            counts.logs.fetch_add(1, Ordering::Relaxed);
        }
    }
    verify_one(dst, &out, opts, counts).await
}

/// With `verify`: the NAR at the destination is downloaded and hashed against `info`.
async fn verify_one(
    dst: &Cache,
    info: &NarInfo,
    opts: &CopyOptions,
    counts: &Counts,
) -> Result<(), JobError> {
    if !opts.verify {
        return Ok(());
    }
    match crate::audit::check_contents(dst, info).await {
        ContentCheck::Ok => {
            counts.verified.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        ContentCheck::Corrupt(why) => Err(JobError::Invalid(format!(
            "{}: verification at the destination failed: {why}",
            info.absolute_path()
        ))),
        ContentCheck::Error(why) => Err(JobError::Failed(format!(
            "{}: cannot verify at the destination: {why}",
            info.absolute_path()
        ))),
    }
}

/// The `debuginfo/` links of the source that point at one of `nar_urls`, written at the
/// destination where missing. A source that cannot be listed (HTTP) has none to offer.
async fn copy_debuginfo(
    src: &Arc<Cache>,
    dst: &Arc<Cache>,
    nar_urls: &HashSet<String>,
) -> Result<u64, JobError> {
    let mut token = None;
    let mut n = 0;
    loop {
        let page = match src.store().list_page("debuginfo/", token).await {
            Ok(p) => p,
            // Links are extras: a source that cannot be listed (HTTP) has none to offer, and
            // a listing that fails costs them, not the copy that is done.
            Err(e) => {
                if !matches!(e.kind, StoreErrorKind::NotSupported) {
                    tracing::warn!("debuginfo links not copied: {e}");
                }
                return Ok(n);
            }
        };
        for o in &page.objects {
            n += copy_link(src, dst, o, nar_urls).await?;
        }
        match page.next {
            Some(t) => token = Some(t),
            None => return Ok(n),
        }
    }
}

async fn copy_link(
    src: &Cache,
    dst: &Cache,
    o: &ObjectMeta,
    nar_urls: &HashSet<String>,
) -> Result<u64, JobError> {
    let Some(obj) = src.store().get(&o.key).await? else {
        return Ok(0);
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&obj.bytes) else {
        return Ok(0);
    };
    let target = v["archive"]
        .as_str()
        .map(|a| a.trim_start_matches("../").to_string())
        .unwrap_or_default();
    if !nar_urls.contains(&target) || dst.store().head(&o.key).await?.is_some() {
        return Ok(0);
    }
    dst.put_object(&o.key, obj.bytes, "application/json", PutCondition::None)
        .await?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::StorePath;

    fn planned(name: &str, refs: &[&str]) -> PlannedPath {
        let p = StorePath::from_base_name(name).unwrap();
        let refs = refs
            .iter()
            .map(|r| StorePath::from_base_name(r).unwrap())
            .collect();
        let info = NarInfo::new(
            p.clone(),
            "nar/x.nar",
            "none",
            Hash::sha256([1; 32]),
            1,
            refs,
        );
        PlannedPath {
            key: p.narinfo_key(),
            info,
            state: PathState::Copy,
        }
    }

    #[test]
    fn references_come_before_referrers() {
        let a = "00000000000000000000000000000000-a";
        let b = "11111111111111111111111111111111-b";
        let c = "22222222222222222222222222222222-c";
        // c → b → a, and c → a; a references itself.
        let paths = vec![planned(c, &[b, a]), planned(a, &[a]), planned(b, &[a])];
        let l = levels(&paths);
        assert_eq!(l, vec![vec![1], vec![2], vec![0]]);
    }

    #[test]
    fn counts_add_up() {
        let mut p1 = planned("00000000000000000000000000000000-a", &[]);
        p1.info.file_size = Some(10);
        let mut p2 = planned("11111111111111111111111111111111-b", &[]);
        p2.state = PathState::Present;
        let mut p3 = planned("22222222222222222222222222222222-c", &[]);
        p3.state = PathState::RepairNar;
        p3.info.file_size = Some(5);
        let plan = CopyPlan {
            levels: levels(&[p1.clone(), p2.clone(), p3.clone()]),
            paths: vec![p1, p2, p3],
            refused: vec![],
            server_side: false,
            verbatim: true,
            needs_cache_info: false,
        };
        let c = plan.counts();
        assert_eq!(
            (c.to_copy, c.already_there, c.repairs, c.bytes),
            (1, 1, 1, 15)
        );
        assert!(plan.summary_line().contains("1 to copy, 1 already there"));
    }
}
