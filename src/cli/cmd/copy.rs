//! `narscope copy`: copy paths with their closures from one cache to another, bytes verbatim.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::json;

use crate::cli::ctx::{CACHE_HELP, Ctx, EXIT_ERROR, EXIT_REFUSED, TrustArgs};
use crate::cli::output::{not_run_doc, report};
use crate::cli::progress::run_job;
use crate::compression::Compression;
use crate::jobs::JobKind;
use crate::jobs::copy::{self, CopyOptions, CopyPlan, PathState, Selection};
use crate::units::human_size;

/// Copy paths with their closures from one cache to another, bytes verbatim.
///
/// The narinfo text and the compressed NAR (and the `.ls` listing, the build log and the
/// debuginfo links) are copied as they are, so URL, FileHash and every signature stay valid.
/// Every path of the closures is judged under the trusted keys first: untrusted paths are
/// refused (listed; exit 2) before any byte moves, unless --no-check-sigs. At the
/// destination NARs go before narinfos and references before referrers; paths already there
/// (narinfo and NAR) are skipped, so an interrupted copy run again converges. Between two
/// buckets of one endpoint and credentials NARs are copied on the server (CopyObject),
/// between two directories hard-linked; otherwise streamed through a temp file.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache to copy from: a store URL or the name of a cache in the config file.
    pub src: String,
    /// The cache to copy to: a store URL or the name of a cache in the config file.
    pub dst: String,
    /// Store paths (or hashes) to copy, each with its closure.
    pub paths: Vec<String>,
    /// Copy every path of the source.
    #[arg(long, conflicts_with_all = ["paths", "pin"])]
    pub all: bool,
    /// Copy the paths of the source's pin NAME.
    #[arg(long, value_name = "NAME", conflicts_with = "paths")]
    pub pin: Option<String>,
    /// Copy paths that are not trusted too (as Nix's --no-check-sigs).
    #[arg(long)]
    pub no_check_sigs: bool,
    /// Add a signature with this secret key to every narinfo copied (repeatable).
    #[arg(long, value_name = "FILE")]
    pub key_file: Vec<PathBuf>,
    /// Decompress and recompress every NAR with this codec (zstd, xz, bzip2, gzip, br,
    /// none): not verbatim; narinfos are rewritten and must be signed (--key-file).
    #[arg(long, value_name = "CODEC")]
    pub recompress: Option<String>,
    /// Compression level for --recompress.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        requires = "recompress"
    )]
    pub level: Option<i32>,
    /// After writing, download every copied NAR at the destination and check its hashes.
    #[arg(long)]
    pub verify: bool,
    /// Print the plan (paths to copy, already there, refused; bytes; requests) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Paths in flight at once [default: 16].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// The plan as JSON fields.
fn plan_doc(plan: &CopyPlan, dry_run: bool) -> serde_json::Value {
    let by = |s: PathState| -> Vec<String> {
        plan.paths
            .iter()
            .filter(|p| p.state == s)
            .map(|p| p.info.absolute_path())
            .collect()
    };
    json!({
        "dryRun": dry_run,
        "plan": plan.counts(),
        "toCopy": by(PathState::Copy),
        "alreadyThere": by(PathState::Present),
        "repairs": by(PathState::RepairNar),
        "refused": plan.refused,
    })
}

fn print_plan(plan: &CopyPlan, dry_run: bool) {
    if dry_run {
        for p in &plan.paths {
            let word = match p.state {
                PathState::Copy => "copy",
                PathState::Present => "there",
                PathState::RepairNar => "repair",
            };
            println!(
                "{word:6} {} ({})",
                p.info.absolute_path(),
                human_size(p.info.file_size.unwrap_or(p.info.nar_size))
            );
        }
    }
    for r in &plan.refused {
        println!(
            "refused {} ({}: {})",
            r.store_path,
            r.status,
            r.reasons.join("; ")
        );
    }
    println!("{}", plan.summary_line());
}

/// `narscope copy`: plan (trust first), print the plan, run the copy job, report.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let sel = match (&args.pin, args.all) {
        (Some(name), _) => Selection::Pin(name.clone()),
        (None, true) => Selection::All,
        (None, false) if args.paths.is_empty() => {
            bail!("give the store paths to copy, --all or --pin NAME")
        }
        (None, false) => Selection::Paths(args.paths.clone()),
    };
    let recompress = match &args.recompress {
        Some(name) => {
            let c: Compression = name
                .parse()
                .map_err(|e| anyhow::anyhow!("--recompress {name}: {e}"))?;
            if !c.can_write() {
                bail!(
                    "--recompress {name}: narscope cannot write {} NARs",
                    c.name()
                );
            }
            crate::compression::validate_level(c, args.level)
                .map_err(|e| anyhow::anyhow!("--level: {e}"))?;
            Some((c, args.level))
        }
        None => None,
    };
    ctx.require_writable(&args.dst, "`narscope copy` (to DST)")?;
    if args.all {
        ctx.require_listable(&args.src, "`narscope copy --all`")?;
    }
    let (src, named) = ctx.open(&args.src).await?;
    let (dst, _) = ctx.open(&args.dst).await?;
    let keys = ctx.keys(&args.trust, named)?;
    let flags: Vec<(PathBuf, String)> = args
        .key_file
        .iter()
        .map(|p| (p.clone(), "--key-file".to_string()))
        .collect();
    let signing =
        crate::jobs::sign::load_signing_keys(&crate::storage::StoreParams::default(), &flags)?;
    let opts = CopyOptions {
        no_check_sigs: args.no_check_sigs,
        keys: signing,
        recompress,
        verify: args.verify,
        concurrency: args.jobs.unwrap_or(16).max(1),
    };
    let plan = match copy::plan(&src, &dst, &sel, &keys, &opts).await {
        Ok(p) => p,
        Err(e) => {
            let code = if e.kind() == crate::jobs::ErrorKind::Refused {
                EXIT_REFUSED
            } else {
                EXIT_ERROR
            };
            if args.json {
                let doc = json!({ "error": e.to_string() });
                println!("{}", not_run_doc("copy", "refused", code, Some(doc)));
            } else {
                eprintln!("error: {e}");
            }
            return Ok(code);
        }
    };
    let refused = !plan.refused.is_empty();
    let counts = plan.counts();
    if args.json && (args.dry_run || refused) {
        let (state, code) = if refused {
            ("refused", EXIT_REFUSED)
        } else {
            ("planned", 0)
        };
        println!(
            "{}",
            not_run_doc("copy", state, code, Some(plan_doc(&plan, args.dry_run)))
        );
        return Ok(code);
    }
    if !args.json {
        print_plan(&plan, args.dry_run);
    }
    if refused {
        eprintln!(
            "error: refusing to copy {} untrusted path(s) (listed above); nothing was written \
             (trust their keys with --trusted-key, or copy them anyway with --no-check-sigs)",
            plan.refused.len()
        );
        return Ok(EXIT_REFUSED);
    }
    if args.dry_run {
        return Ok(0);
    }
    let title = format!(
        "copy {} path(s) to {}",
        counts.to_copy + counts.repairs,
        dst.url()
    );
    let (job, state, summary) = run_job(JobKind::Copy, title, move |job, notify| {
        copy::copy(src, dst, plan, opts, job, notify)
    })
    .await;
    if state == crate::jobs::JobState::Cancelled && !args.json {
        let p = &job.progress;
        use std::sync::atomic::Ordering::Relaxed;
        println!(
            "copy cancelled after {} of {} path(s) ({} failed); what was written is consistent: run the copy again to finish",
            p.done.load(Relaxed),
            p.total.load(Relaxed),
            p.failed.load(Relaxed)
        );
    }
    report(
        args.json,
        "copy",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |s: &copy::CopySummary| {
            let mut t = format!(
                "copied {} path(s), {} already there; {} written ({} on the server, {} streamed",
                s.copied,
                s.present,
                human_size(s.file_bytes),
                s.server_side,
                s.streamed
            );
            if s.recompressed > 0 {
                t.push_str(&format!(", {} recompressed", s.recompressed));
            }
            t.push(')');
            if s.repaired > 0 {
                t.push_str(&format!("; {} missing NAR(s) repaired", s.repaired));
            }
            if s.listings + s.logs + s.debuginfo_links > 0 {
                t.push_str(&format!(
                    "; {} listing(s), {} log(s), {} debuginfo link(s)",
                    s.listings, s.logs, s.debuginfo_links
                ));
            }
            if s.signatures_added > 0 {
                t.push_str(&format!("; {} signature(s) added", s.signatures_added));
            }
            if s.verified > 0 {
                t.push_str(&format!(
                    "; {} NAR(s) verified at the destination",
                    s.verified
                ));
            }
            if let Some(n) = &s.server_side_note {
                t.push_str(&format!("\nnote: {n}"));
            }
            t
        },
    )
}
