//! What every subcommand shares: the loaded config, the cache a CACHE argument names, the
//! keys it trusts, the exit codes, the audit and the index scan several commands run.
//!
//! Within `cli`, `ctx` depends only on `progress`; `output` and every `cmd` depend on it,
//! never the other way round.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::progress::Progress;
use crate::audit::{self, AuditOptions, AuditProgress, PathReport};
use crate::cache::Cache;
use crate::config::{self, Config};
use crate::index::scan::{Opened, ScanOptions, ScanProgress, open_index, scan};
use crate::nix::TrustedKeys;
use crate::storage::{CacheUrl, Store, ThrottleStats};

/// Exit code for failures that are not verdicts (bit 4 of `nix store verify`).
pub const EXIT_ERROR: i32 = 4;

/// Exit code when something was refused (untrusted paths, a deletion that would break
/// referrers): the "not trusted" bit, as in `nix store verify`.
pub const EXIT_REFUSED: i32 = 2;

/// The `after_help` of the commands that take a CACHE: what a CACHE argument may be.
pub const CACHE_HELP: &str = "CACHE is a Nix store URL — s3://bucket[/prefix]?region=…&endpoint=…&scheme=…&profile=…&addressing-style=path|virtual|auto, file:///abs/path or a plain directory, or http(s)://host[/path][?netrc-file=FILE] (an HTTP cache: read-only, and it cannot be listed, so name store paths) — or the name of a cache in narscope's config file.";

/// `--help` text after the options of the commands that write (push, init, sign): the cache
/// URL and the Nix store parameters narscope honours in it.
pub fn write_help() -> String {
    format!("{CACHE_HELP}\n\n{}", crate::storage::params::HONOURED_HELP)
}

/// Options shared by commands that judge signatures.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct TrustArgs {
    /// Trust this public key, NAME:BASE64 as in nix.conf's trusted-public-keys (repeatable).
    #[arg(long = "trusted-key", value_name = "NAME:BASE64")]
    pub trusted_keys: Vec<String>,
}

/// Options of the commands that relate a cache to its upstreams.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct UpstreamArgs {
    /// An upstream cache (store URL or config name), e.g. https://cache.nixos.org; repeatable,
    /// asked in order. Default: the cache's `upstreams` in the config file.
    #[arg(long = "upstream", value_name = "URL")]
    pub upstreams: Vec<String>,
    /// A key the upstreams' signatures may verify under, NAME:BASE64 (repeatable), besides the
    /// trusted keys (--trusted-key, the config's, nix.conf's).
    #[arg(long = "upstream-key", value_name = "NAME:BASE64")]
    pub upstream_keys: Vec<String>,
}

/// The global options every subcommand runs under: narscope's config (unless --no-config),
/// the narinfo concurrency and the request ceiling (--max-rps).
pub struct Ctx {
    cfg: Config,
    no_config: bool,
    concurrency: usize,
    max_rps: Option<u32>,
    /// The stores [`Ctx::open`] opened, for the throttling note of the job summaries.
    opened: std::sync::Mutex<Vec<Arc<dyn Store>>>,
}

impl Ctx {
    /// Load the config (`--config`, else the default location; nothing with `--no-config`)
    /// and settle the concurrency: the flag, else the config's, else the default.
    pub fn load(config: Option<&Path>, no_config: bool, concurrency: Option<usize>) -> Result<Ctx> {
        let cfg = if no_config {
            Config::default()
        } else {
            Config::load(config)?
        };
        let concurrency = concurrency
            .or(cfg.concurrency)
            .unwrap_or(crate::cache::DEFAULT_CONCURRENCY)
            .max(1);
        Ok(Ctx {
            cfg,
            no_config,
            concurrency,
            max_rps: None,
            opened: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Sets the ceiling on requests per second to each S3 cache opened from now on
    /// (`--max-rps`; `None`: none).
    pub fn with_max_rps(mut self, max_rps: Option<u32>) -> Ctx {
        self.max_rps = max_rps;
        self
    }

    /// How the S3 caches opened so far were throttled: the first one the server throttled,
    /// else the first one opened; `None` when none was (file:// caches only).
    pub fn throttle_stats(&self) -> Option<ThrottleStats> {
        let opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        let stats: Vec<ThrottleStats> = opened
            .iter()
            .filter_map(|s| s.throttle().map(|t| t.stats()))
            .collect();
        stats
            .iter()
            .find(|s| s.was_throttled())
            .or(stats.first())
            .copied()
    }

    /// narinfo requests in flight.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The loaded config (empty with `--no-config`).
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Open the cache `arg` names, after printing what its URL's parameters will cost; also
    /// returns the named cache of the config it resolved to, if any.
    pub async fn open<'a>(
        &'a self,
        arg: &'a str,
    ) -> Result<(Arc<Cache>, Option<&'a config::NamedCache>)> {
        let url = self.url(arg)?;
        // Before anything is read or written: what the URL's parameters will cost.
        for w in url.params().take_warnings() {
            eprintln!("warning: {w}");
        }
        let cache = Cache::open(&url).await?;
        if let Some(t) = cache.store().throttle() {
            t.set_max_rps(self.max_rps);
        }
        self.opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cache.store().clone());
        Ok((Arc::new(cache), self.cfg.resolve_cache(arg).1))
    }

    /// The cache URL `arg` names (a URL, a directory or a name in the config), parsed and
    /// its parameters checked; no request is made.
    pub fn url(&self, arg: &str) -> Result<CacheUrl> {
        let (url, _) = self.cfg.resolve_cache(arg);
        CacheUrl::parse(url).with_context(|| format!("cache '{arg}'"))
    }

    /// Refuses, before any request, an http(s) cache for `command` (e.g. "`narscope ls`"),
    /// which must list the whole cache: an HTTP cache cannot be listed.
    pub fn require_listable(&self, arg: &str, command: &str) -> Result<()> {
        let url = self.url(arg)?;
        if url.is_http() {
            bail!(
                "{command} needs the list of every path in the cache, and {} is an HTTP cache, \
                 which cannot be listed; name store paths instead (`narscope verify {} \
                 /nix/store/…`, `show`, `pull`), or give the bucket or directory it serves \
                 (its s3:// or file:// URL)",
                url.short(),
                url.short()
            );
        }
        Ok(())
    }

    /// Refuses, before any request, an http(s) cache for `command` (e.g. "`narscope push`"),
    /// which writes to the cache: narscope only reads HTTP caches.
    pub fn require_writable(&self, arg: &str, command: &str) -> Result<()> {
        let url = self.url(arg)?;
        if url.is_http() {
            bail!(
                "{command} writes to the cache, and {} is an HTTP cache: narscope reads it but \
                 cannot write to it; write to the bucket or directory it serves (its s3:// or \
                 file:// URL)",
                url.short()
            );
        }
        Ok(())
    }

    /// The keys trusted for a cache: the `--trusted-key` flags, and unless `--no-config` the
    /// config's and nix.conf's (each source is logged at info level).
    pub fn keys(
        &self,
        trust: &TrustArgs,
        named: Option<&config::NamedCache>,
    ) -> Result<Arc<TrustedKeys>> {
        let (keys, sources) =
            config::trusted_keys(&trust.trusted_keys, &self.cfg, named, self.no_config)?;
        for s in &sources {
            tracing::info!("trusting {} (from {})", s.key, s.source);
        }
        Ok(Arc::new(keys))
    }
}

impl Ctx {
    /// The upstreams `args` name (else the named cache's configured `upstreams`), opened, each
    /// judged under `trusted` plus the `--upstream-key`s (and the config's `upstream-keys`).
    /// No request is made beyond what opening a cache makes.
    pub async fn upstreams(
        &self,
        args: &UpstreamArgs,
        named: Option<&config::NamedCache>,
        trusted: &TrustedKeys,
    ) -> Result<crate::upstream::Upstreams> {
        let (urls, cfg_keys): (&[String], &[String]) = match (args.upstreams.is_empty(), named) {
            (false, _) => (&args.upstreams, &[]),
            (true, Some(n)) => (&n.upstreams, &n.upstream_keys),
            (true, None) => (&[], &[]),
        };
        let mut keys = trusted.clone();
        for (i, k) in args.upstream_keys.iter().chain(cfg_keys).enumerate() {
            let key = crate::nix::PublicKey::parse(k)
                .with_context(|| format!("upstream key #{} is not NAME:BASE64", i + 1))?;
            keys.add(key);
        }
        let keys = Arc::new(keys);
        let mut list = Vec::new();
        for u in urls {
            let (cache, _) = self
                .open(u)
                .await
                .with_context(|| format!("upstream '{u}'"))?;
            list.push(crate::upstream::Upstream {
                cache,
                keys: keys.clone(),
            });
        }
        Ok(crate::upstream::Upstreams::new(list))
    }
}

/// A `--key-file` flag as a key source of [`crate::jobs::sign::load_signing_keys`].
pub fn key_flag(key_file: Option<&Path>) -> Vec<(PathBuf, String)> {
    key_file
        .map(|p| (p.to_path_buf(), "--key-file".to_string()))
        .into_iter()
        .collect()
}

/// Audit `paths` (every narinfo when empty) with a progress line on a terminal; the reports
/// sorted by name, then key.
pub async fn run_audit(
    cache: &Arc<Cache>,
    paths: &[String],
    keys: Arc<TrustedKeys>,
    opts: &AuditOptions,
) -> Result<Vec<PathReport>> {
    let progress = Arc::new(AuditProgress::default());
    let line = Progress::audit(progress.clone(), "checking");
    let res = audit::audit(cache.clone(), paths, keys, opts, progress).await;
    line.finish();
    let mut reports = res?;
    reports.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(reports)
}

/// The order of path reports: by name (the store path after its hash), then by key.
pub fn sort_key(r: &PathReport) -> (&str, &str) {
    let name = r
        .store_path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .and_then(|b| b.get(33..))
        .unwrap_or("");
    (name, r.key.as_str())
}

/// Fill an index of the cache (the persistent one when it is free) and return it.
pub async fn scanned_index(
    ctx: &Ctx,
    cache: &Arc<Cache>,
    keys: &Arc<TrustedKeys>,
) -> Result<Opened> {
    let opened = open_index(&cache.url().to_string(), true);
    if let Some(w) = &opened.warning {
        tracing::warn!("{w}");
    }
    rescan(ctx, cache, keys, &opened).await?;
    Ok(opened)
}

/// Bring an opened index up to date with the cache (rows keep their ids).
async fn rescan(
    ctx: &Ctx,
    cache: &Arc<Cache>,
    keys: &Arc<TrustedKeys>,
    opened: &Opened,
) -> Result<()> {
    let progress = Arc::new(ScanProgress::default());
    let line = Progress::scan(progress.clone());
    let r = scan(
        cache.clone(),
        opened.index.clone(),
        keys.clone(),
        ScanOptions {
            concurrency: ctx.concurrency(),
            list_nars: true,
        },
        progress,
        Arc::new(|| {}),
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    line.finish();
    r.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Ask `question` on the terminal (default no); without a terminal, refuse: scripts pass --yes.
pub fn confirm(doing: &str, question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("not {doing} without confirmation: run on a terminal, or add --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
