//! `narscope push`: upload local store paths with their closures, as Nix's `nix copy --to`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};

use crate::cli::ctx::{Ctx, TrustArgs, UpstreamArgs, key_flag, write_help};
use crate::cli::output::report;
use crate::cli::progress::run_job;
use crate::compression::Compression;
use crate::jobs::JobKind;
use crate::jobs::push::{self, PushOptions};
use crate::units::human_size;

/// Upload local store paths with their whole closure, in Nix's order.
///
/// NARs are streamed from the store, compressed in parallel and uploaded before their
/// narinfos, references before referrers; paths already present are skipped, and
/// nix-cache-info is written if missing. Every narinfo is signed by each key (--key-file,
/// the URL's secret-key= and secret-keys=); the URL's compression=, compression-level=,
/// parallel-compression=, write-nar-listing= and index-debug-info= are honoured as Nix
/// does (see below). Key files are checked before anything touches the cache.
///
/// With --upstream (or the cache's `upstreams` in the config), every path the cache lacks is
/// first looked up in the upstreams, concurrently: a path an upstream serves with a signature
/// that verifies under a trusted key (--upstream-key, --trusted-key, the config's, nix.conf's)
/// is not uploaded; clients then need both caches as substituters. A narinfo that does not
/// verify, or an upstream that cannot be asked, does not skip the path.
#[derive(Debug, clap::Args)]
#[command(after_help = write_help())]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Store paths to push (with their closures).
    pub paths: Vec<String>,
    /// Sign with this secret key too (besides the URL's secret-key= and secret-keys=).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// NAR compression: zstd, xz, bzip2, gzip, br or none [default: the URL's
    /// compression=, else zstd]; must agree with the URL's compression= when both are given.
    #[arg(long, value_name = "NAME")]
    pub compression: Option<String>,
    /// Compression level (xz 0–9, zstd 1–22, bzip2 1–9, gzip 0–9, br 0–11); must agree
    /// with the URL's compression-level= when both are given.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub level: Option<i32>,
    /// Paths in flight at once [default: twice the number of cores]; at most one per
    /// core is compressed at a time, the others upload.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Upstreams: paths they serve with a trusted signature are not uploaded.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// Keys the upstreams' signatures are judged under (--trusted-key), besides the
    /// config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// `narscope push`: settle the options (key files checked first), compute the closure, run
/// the push job, report.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let (arg, paths, key_file, compression, level, jobs, json_out) = (
        args.cache.as_str(),
        args.paths.as_slice(),
        args.key_file.as_deref(),
        args.compression.as_deref(),
        args.level,
        args.jobs,
        args.json,
    );
    let compression: Option<Compression> = compression
        .map(|c| c.parse())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--compression: {e}"))?;
    ctx.require_writable(arg, "`narscope push`")?;
    if paths.is_empty() {
        bail!("give the store paths to push");
    }
    // What the URL and the flags say, key files included, is checked before the cache is
    // touched.
    let url = ctx.url(arg)?;
    let flags = push::PushFlags {
        key_files: key_flag(key_file),
        compression,
        level,
        concurrency: jobs,
    };
    let mut opts = PushOptions::resolve(url.params(), &flags).map_err(anyhow::Error::msg)?;
    let closure = {
        let p = paths.to_vec();
        tokio::task::spawn_blocking(move || crate::localstore::closure(&p)).await??
    };
    let (cache, named) = ctx.open(arg).await?;
    let trusted = ctx.keys(&args.trust, named)?;
    opts.upstreams = Arc::new(ctx.upstreams(&args.upstream, named, &trusted).await?);
    opts.upstream_concurrency = ctx.concurrency();
    let n = closure.len();
    let note = opts.compression_note();
    let c2 = cache.clone();
    let (job, state, summary) = run_job(
        JobKind::Push,
        format!("push {n} path(s)"),
        move |job, notify| push::push(c2, closure, opts, job, notify),
    )
    .await;
    report(
        json_out,
        "push",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |s: &push::PushSummary| {
            let mut t = format!(
                "closure of {} path(s): {} uploaded ({} NAR, {} compressed), {} already in {}",
                s.closure,
                s.uploaded,
                human_size(s.nar_bytes),
                human_size(s.file_bytes),
                s.present,
                cache.url()
            );
            if s.listings > 0 || s.debuginfo_links > 0 {
                t.push_str(&format!(
                    "\n{} .ls listing(s), {} debuginfo link(s) written",
                    s.listings, s.debuginfo_links
                ));
            }
            if let Some(u) = &s.upstream {
                t.push('\n');
                t.push_str(&upstream_note(u, &s.upstreams));
            }
            if s.uploaded > 0 {
                t.push('\n');
                t.push_str(&note);
            }
            t
        },
    )
}

/// What the upstreams saved a push, in words: the paths skipped and their bytes, and the
/// paths pushed although an upstream has them (a narinfo that does not verify, an error).
fn upstream_note(u: &crate::upstream::ServedTotals, upstreams: &[String]) -> String {
    let mut t = format!(
        "{} path(s) skipped ({} NAR, {} compressed): served by {} with a trusted signature",
        u.served,
        human_size(u.nar_bytes),
        human_size(u.file_bytes),
        upstreams.join(", ")
    );
    if u.not_trusted > 0 {
        t.push_str(&format!(
            "\n{} path(s) pushed although an upstream has a narinfo for them: it does not verify",
            u.not_trusted
        ));
    }
    if u.errors > 0 {
        t.push_str(&format!(
            "\n{} path(s) pushed because an upstream could not be asked about them",
            u.errors
        ));
    }
    for e in &u.examples {
        t.push_str(&format!("\n  {e}"));
    }
    t
}
