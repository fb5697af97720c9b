//! `narscope gc`: garbage-collect a cache, keeping the closures of the roots.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use crate::cli::ctx::{CACHE_HELP, Ctx, EXIT_REFUSED, TrustArgs, confirm, scanned_index};
use crate::cli::output::{kept_note, not_run_doc, print_unknown, report};
use crate::cli::progress::run_job;
use crate::index::Index;
use crate::index::scan::ScanOptions;
use crate::jobs::JobKind;
use crate::jobs::delete;

/// Garbage-collect the cache: keep the closures of the roots, delete the rest.
///
/// Roots: the pins stored in the cache (narscope pin), --roots-file, --roots-from-nix, and
/// with --keep-younger-than every newer narinfo. Roots that name nothing in the cache are
/// no roots: without one in the cache gc refuses (unless --allow-no-roots). Nothing
/// younger than --grace is deleted, and young narinfos count as roots. The plan is shown
/// first (provisional: just before deleting, narscope takes the cache's deletion lease,
/// pushes by narscope pause, the cache is looked at again and only what both looks call
/// garbage goes). While any narinfo cannot be read nothing is collected. Narinfos go
/// before their NARs, referrers before what they reference.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// A file of store paths to keep (one a line; repeatable).
    #[arg(long = "roots-file", value_name = "FILE")]
    pub roots_files: Vec<PathBuf>,
    /// Keep the closures of the local Nix store's GC roots (nix-store --gc --print-roots).
    #[arg(long)]
    pub roots_from_nix: bool,
    /// Keep every narinfo newer than this (e.g. 30d), with its closure.
    #[arg(long, value_name = "DURATION")]
    pub keep_younger_than: Option<String>,
    /// Never delete an object younger than this (by LastModified).
    #[arg(long, value_name = "DURATION", default_value = "6h")]
    pub grace: String,
    /// Collect even when there is no root at all.
    #[arg(long)]
    pub allow_no_roots: bool,
    /// Say why this path is garbage or kept: the root and the chain of references that
    /// keep it (repeatable; a store path, base name or hash).
    #[arg(long, value_name = "PATH")]
    pub why: Vec<String>,
    /// Print the plan only.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before deleting.
    #[arg(long)]
    pub yes: bool,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run `narscope gc`: plan from the roots, confirm, then collect under the lease.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    gc_cmd(ctx, &args).await
}

/// Print a GC plan: roots, what is kept and deleted, and what was already broken.
fn print_gc_plan(idx: &Index, p: &crate::gc::GcPlan) {
    use crate::units::human_size;
    println!(
        "roots: {} in the cache{}",
        p.roots.len(),
        if p.missing_roots.is_empty() {
            String::new()
        } else {
            format!(", {} not in the cache", p.missing_roots.len())
        }
    );
    println!(
        "keep {} path(s); delete {} narinfo(s), {} NAR(s) ({} of them orphans), {} other object(s): {} in {} request(s)",
        p.kept,
        p.garbage.len(),
        p.delete.nar_keys.len(),
        p.orphan_nars.len(),
        p.other.len(),
        human_size(p.bytes),
        p.requests()
    );
    if p.kept_by_grace > 0 || p.young_orphans > 0 {
        println!(
            "kept for now, younger than the grace period: {} narinfo(s) and {} other object(s)",
            p.kept_by_grace, p.young_orphans
        );
    }
    for r in &p.garbage {
        println!("  garbage  {}", idx.store_path(*r));
    }
    for k in &p.orphan_nars {
        println!("  orphan   {k}");
    }
    for (k, why, _) in &p.other {
        println!("  {why:<8} {k}");
    }
    if !p.dangling.is_empty() || !p.missing_refs.is_empty() {
        println!(
            "already broken among what stays (gc changes nothing there): {} narinfo(s) without their NAR, {} missing reference(s)",
            p.dangling.len(),
            p.missing_refs.len()
        );
    }
    for (src, path) in &p.missing_roots {
        println!("  root not in the cache: {path} (from {src})");
    }
    if !p.unknown.is_empty() {
        println!(
            "{} narinfo(s) could not be read: nothing is collected while they exist",
            p.unknown.len()
        );
    }
    println!(
        "(provisional: just before deleting, the cache is looked at again and only what both \
         looks call garbage goes)"
    );
}

/// What to do about having no roots.
const NO_ROOTS_ADVICE: &str = "add pins (narscope pin CACHE add NAME PATH…), --roots-file, \
     --roots-from-nix or --keep-younger-than; or --allow-no-roots if deleting every path older \
     than the grace period is really what you want";

/// `narscope gc`: roots, pins, scan, plan, refuse or confirm, then run the collect job.
async fn gc_cmd(ctx: &Ctx, args: &Args) -> Result<i32> {
    let (arg, trust) = (args.cache.as_str(), &args.trust);
    use crate::gc;
    let grace =
        crate::units::parse_duration(&args.grace).map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
    let keep_younger = args
        .keep_younger_than
        .as_deref()
        .map(crate::units::parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--keep-younger-than: {e}"))?;
    let req = gc::GcRequest {
        roots_files: args.roots_files.clone(),
        roots_from_nix: args.roots_from_nix,
        grace,
        keep_younger,
        allow_no_roots: args.allow_no_roots,
    };
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let given = req.read_roots(cache.store().as_ref()).await?;
    if req.refuses_without(&given) {
        eprintln!(
            "error: refusing: no roots: every path older than the grace period would be \
             deleted; {NO_ROOTS_ADVICE}"
        );
        return Ok(EXIT_REFUSED);
    }
    let opened = scanned_index(ctx, &cache, &keys).await?;
    let prepared = gc::prepare_given(cache.store().as_ref(), &opened.index, &req, given).await?;
    let plan = &prepared.plan;
    let refusal = plan.refusal().or_else(|| {
        (!prepared.has_roots() && !args.allow_no_roots).then(|| {
            format!(
                "refusing: {}; {NO_ROOTS_ADVICE}",
                prepared.no_roots_message()
            )
        })
    });
    {
        let idx = opened.index.read().unwrap_or_else(|e| e.into_inner());
        let why: Vec<(String, String)> = args
            .why
            .iter()
            .map(|p| {
                let reason = match idx.find_path(p).filter(|&r| idx.row(r).is_live()) {
                    Some(r) => plan.why(&idx, r),
                    None => "not in the cache".to_string(),
                };
                (p.clone(), reason)
            })
            .collect();
        if args.json && (args.dry_run || prepared.is_empty() || refusal.is_some()) {
            let (state, code) = if refusal.is_some() {
                ("refused", EXIT_REFUSED)
            } else if prepared.is_empty() {
                ("empty", 0)
            } else {
                ("planned", 0)
            };
            let doc = json!({
                "dryRun": args.dry_run,
                "roots": plan.roots.iter().map(|(s, p)| json!({"source": s, "path": p})).collect::<Vec<_>>(),
                "missingRoots": plan.missing_roots.iter().map(|(s, p)| json!({"source": s, "path": p})).collect::<Vec<_>>(),
                "kept": plan.kept,
                "garbage": plan.garbage.iter().map(|&r| idx.store_path(r)).collect::<Vec<_>>(),
                "nars": plan.delete.nar_keys,
                "orphanNars": plan.orphan_nars,
                "other": plan.other.iter().map(|(k, why, size)| json!({"key": k, "reason": why, "bytes": size})).collect::<Vec<_>>(),
                "keptByGrace": plan.kept_by_grace,
                "youngOrphans": plan.young_orphans,
                "bytes": plan.bytes,
                "requests": plan.requests(),
                "alreadyBroken": {"dangling": plan.dangling.len(), "missingReferences": plan.missing_refs.len()},
                "why": why.iter().map(|(p, r)| json!({"path": p, "reason": r})).collect::<Vec<_>>(),
                "refusal": refusal,
                "unknown": plan.unknown,
                "provisional": true,
            });
            println!("{}", not_run_doc("gc", state, code, Some(doc)));
        } else if !args.json {
            print_gc_plan(&idx, plan);
            for (p, r) in &why {
                println!("why {p}: {r}");
            }
        }
    }
    if let Some(why) = refusal {
        if !args.json {
            eprintln!("error: {why}");
            print_unknown(&plan.unknown);
            for (src, path) in plan.missing_roots.iter().take(20) {
                eprintln!("  root not in the cache: {path} (from {src})");
            }
        }
        return Ok(EXIT_REFUSED);
    }
    if prepared.is_empty() {
        if !args.json {
            println!("nothing to collect");
        }
        return Ok(0);
    }
    if args.dry_run {
        return Ok(0);
    }
    if !args.yes
        && !confirm(
            "collecting",
            &format!("collect this garbage from {}?", cache.url()),
        )?
    {
        if args.json {
            println!("{}", not_run_doc("gc", "declined", 0, None));
        } else {
            println!("nothing deleted");
        }
        return Ok(0);
    }
    // Just before deleting the cache is looked at again under the deletion lease (the same
    // index: rows keep their ids; pins are read again), and only what both looks agree on
    // goes: a push or a pin since can only keep more.
    let index = opened.index.clone();
    let n = prepared.plan.garbage.len();
    let scan_opts = ScanOptions {
        concurrency: ctx.concurrency(),
        list_nars: true,
    };
    let prepared = Arc::new(prepared);
    let (job, state, summary) = run_job(
        JobKind::Gc,
        format!("gc: {n} path(s)"),
        move |job, notify| {
            let at = delete::Rescan {
                cache,
                index,
                keys,
                scan: scan_opts,
            };
            gc::collect(at, prepared, job, notify)
        },
    )
    .await;
    if let Err(e) = opened.save() {
        tracing::warn!("index not saved: {e}");
    }
    report(
        args.json,
        "gc",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |s: &delete::DeleteSummary| {
            format!(
                "collected {} narinfo(s), {} NAR(s), {} listing(s), {} other object(s); {} failed{}",
                s.narinfos,
                s.nars,
                s.listings,
                s.others,
                s.failed,
                kept_note(s.kept_since_planned)
            )
        },
    )
}
