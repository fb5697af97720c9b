//! `narscope pull`: download paths, signatures checked before any NAR, hashes after.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cli::ctx::{CACHE_HELP, Ctx, TrustArgs};
use crate::cli::output::report;
use crate::cli::progress::run_job;
use crate::jobs::JobKind;
use crate::jobs::pull::{self, PullOptions};
use crate::units::human_size;

/// Download paths, checking their signatures before any NAR and their hashes after.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Store paths (or hashes) to pull.
    pub paths: Vec<String>,
    /// Unpack each path into DIR/<hash>-<name>.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Also pull everything the paths reference.
    #[arg(short, long)]
    pub recursive: bool,
    /// Import the closure into the local Nix store through `nix copy`, so Nix checks it too.
    #[arg(long)]
    pub into_store: bool,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// `narscope pull`: run the pull job and report.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let Args {
        cache: arg,
        paths,
        to,
        recursive,
        into_store,
        trust,
        json: json_out,
    } = args;
    let (arg, paths, trust) = (arg.as_str(), paths.as_slice(), &trust);
    if paths.is_empty() {
        bail!("give the store paths to pull");
    }
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let opts = PullOptions {
        to,
        // Nix needs the whole closure to import a path.
        recursive: recursive || into_store,
        into_store,
        concurrency: 8,
    };
    let wanted = paths.to_vec();
    let (job, state, summary) = run_job(
        JobKind::Pull,
        format!("pull {} path(s)", paths.len()),
        move |job, notify| pull::pull(cache, wanted, keys, opts, job, notify),
    )
    .await;
    report(
        json_out,
        "pull",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |s: &pull::PullSummary| {
            let mut t = format!(
                "pulled {} path(s): {} downloaded, {} unpacked and verified",
                s.paths,
                human_size(s.file_bytes),
                human_size(s.nar_bytes)
            );
            if s.existing > 0 {
                t.push_str(&format!(
                    "; {} already there ({} checked: NarHash matches)",
                    s.existing, s.existing_verified
                ));
            }
            if s.imported {
                t.push_str("; imported into the Nix store");
            }
            t
        },
    )
}
