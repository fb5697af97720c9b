//! `narscope gc`: garbage-collect a cache, keeping the closures of the roots.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use crate::cli::ctx::{
    CACHE_HELP, Ctx, EXIT_REFUSED, TrustArgs, UpstreamArgs, confirm, scanned_index,
};
use crate::cli::output::{kept_note, not_run_doc, print_unknown, report};
use crate::cli::progress::run_job;
use crate::index::Index;
use crate::index::scan::ScanOptions;
use crate::jobs::JobKind;
use crate::jobs::delete;
use crate::units::human_size;
use crate::versioned;

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
///
/// On a bucket that keeps versions, deleting only hides objects behind delete markers: gc
/// records what it hid as a plan (narscope/gc/<id>.json) that `gc restore` undoes and `gc
/// purge` frees; --permanent frees at once. `gc plans` lists the recorded plans.
///
/// With --upstream (or the cache's configured `upstreams`), the plan reports the paths an
/// upstream serves with a trusted signature; --prune-upstream deletes those that only
/// references keep (a root's own path, and anything younger than the grace period or the
/// retention age, stays). Kept paths may then reference a path only the upstream has: clients
/// must list both caches as substituters (Nix resolves a closure across substituters).
///
/// Retention policies keep more, or less, of what no root reaches (pins, roots files, local
/// Nix GC roots, the grace period and --keep-younger-than always hold, with their closures):
/// --keep-versions N keeps the newest N versions of each package (by LastModified; outputs
/// such as -dev are packages of their own) with their closures, and older versions go
/// unless a kept path references them. --max-size SIZE then evicts, least recently pushed
/// first, what no root reaches, only paths no kept path references, until the cache's
/// stored bytes (shared NARs once) fit; the plan says whether the budget was reached, or
/// how much the roots hold. With a policy, gc runs without roots.
#[derive(Debug, clap::Args)]
#[command(
    after_help = CACHE_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: Option<String>,
    /// Plans of past deletions on versioned buckets: restore, purge, list.
    #[command(subcommand)]
    pub action: Option<Action>,
    /// On a bucket that keeps versions, delete the hidden versions at once: frees the space
    /// and cannot be undone (without it, the deletion is recorded and can be restored).
    #[arg(long)]
    pub permanent: bool,
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
    /// Keep the newest N versions (by LastModified) of each package with their closures;
    /// older versions are garbage unless a root or a kept path references them. Packages
    /// are store path names without the version, outputs apart (openssl, openssl-dev).
    #[arg(long, value_name = "N", value_parser = crate::gc::parse_keep_versions)]
    pub keep_versions: Option<u32>,
    /// Evict paths no root reaches, least recently pushed first (never one a kept path
    /// references), until the cache's stored bytes (shared NARs once) fit SIZE: 10G,
    /// 500MiB, 1.5TB. Roots, pins and the grace period always hold; the plan says whether
    /// the budget is reached.
    #[arg(long, value_name = "SIZE", value_parser = crate::gc::parse_max_size)]
    pub max_size: Option<u64>,
    /// Collect even when there is no root at all.
    #[arg(long)]
    pub allow_no_roots: bool,
    /// Say why this path is garbage or kept: the root or policy (--keep-versions,
    /// --max-size) and the chain of references that keep it (repeatable; a store path,
    /// base name or hash).
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
    /// Upstreams whose trusted paths are reported (and pruned with --prune-upstream).
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// Delete the paths an upstream serves with a trusted signature, unless a root keeps
    /// them itself (not merely as a reference); clients must then list the upstream too.
    #[arg(long)]
    pub prune_upstream: bool,
}

/// Run `narscope gc`: plan from the roots, confirm, then collect under the lease (or one of
/// the plan subcommands).
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let cache = match &args.action {
        Some(Action::Restore(a)) => Some(&a.cache),
        Some(Action::Purge(a)) => Some(&a.cache),
        Some(Action::Plans(a)) => Some(&a.cache),
        None => args.cache.as_ref(),
    };
    if let Some(cache) = cache {
        ctx.require_writable(cache, "`narscope gc`")?;
    }
    match args.action {
        Some(Action::Restore(a)) => restore_cmd(ctx, a).await,
        Some(Action::Purge(a)) => purge_cmd(ctx, a).await,
        Some(Action::Plans(a)) => plans_cmd(ctx, a).await,
        None => gc_cmd(ctx, &args).await,
    }
}

/// The plan subcommands of `narscope gc`.
#[derive(Debug, clap::Subcommand)]
#[allow(missing_docs)]
pub enum Action {
    Restore(RestoreArgs),
    Purge(PurgeArgs),
    Plans(PlansArgs),
}

/// Undo a recorded deletion on a versioned bucket: remove the plan's delete markers.
///
/// Only where the marker is still the key's latest version (else a newer version was
/// written since, and it stays). NARs and listings come back first, then the narinfos,
/// most-referenced first, so a narinfo never reappears before its NAR. Runs under the
/// cache's deletion lease.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct RestoreArgs {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// The plan: its id (see `narscope gc plans`) or its key.
    pub plan: String,
    /// Print the result as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Free the space recorded deletions on a versioned bucket left: delete the hidden versions.
///
/// Deletes for good (by version id) the versions that the plans hid, only where they are
/// noncurrent now: never a key's current version, so a path pushed again since, or restored,
/// stays. Then the plans' delete markers where nothing is below them anymore, then the plan
/// records. Shows what it would delete first and asks, unless --yes.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct PurgeArgs {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// The plans (ids or keys); none: every recorded plan.
    pub plans: Vec<String>,
    /// Only plans older than this (e.g. 30d).
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Also delete the noncurrent versions of narinfos whose current version is live (what
    /// `sign` rewrites leave behind).
    #[arg(long)]
    pub rewritten_narinfos: bool,
    /// Print what would be deleted only.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before deleting.
    #[arg(long)]
    pub yes: bool,
    /// Print the result as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// List the recorded deletions (plans) of a versioned bucket.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct PlansArgs {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Print the plans as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `narscope gc restore`.
async fn restore_cmd(ctx: &Ctx, args: RestoreArgs) -> Result<i32> {
    let (cache, _) = ctx.open(&args.cache).await?;
    let store = cache.store().clone();
    let id = args.plan.clone();
    let (job, state, summary) = run_job(
        JobKind::Gc,
        format!("gc restore {id}"),
        move |_job, _notify| async move { versioned::restore(store, &id).await },
    )
    .await;
    if let Some(s) = &summary
        && !args.json
    {
        for (k, why) in s.skipped.iter().take(50) {
            println!("  skipped {k}: {why}");
        }
    }
    report(
        args.json,
        "gc restore",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |s: &versioned::RestoreSummary| {
            format!(
                "restored {} object(s) ({}, {} narinfo(s)) of plan {}; {} restored before, {} \
                 skipped{}",
                s.restored,
                human_size(s.bytes),
                s.narinfos,
                s.plan,
                s.already,
                s.skipped.len(),
                if s.skipped.is_empty() {
                    ""
                } else {
                    " (a newer version was written since, or the version is gone)"
                }
            )
        },
    )
}

/// Print a purge plan.
fn print_purge_plan(p: &versioned::PurgePlan) {
    println!(
        "purge {} plan(s): delete {} hidden version(s), {} delete marker(s), {} rewritten narinfo \
         version(s), {} plan record version(s): {} stop being stored",
        p.plans.len(),
        p.versions.len(),
        p.markers.len(),
        p.rewritten.len(),
        p.record_versions.len(),
        human_size(p.bytes())
    );
    if p.current > 0 || p.gone > 0 {
        println!(
            "kept: {} recorded version(s) that are current again (restored or pushed again); \
             {} already gone",
            p.current, p.gone
        );
    }
    for v in p.versions.iter().chain(&p.rewritten).take(200) {
        println!(
            "  version  {} ({}, {})",
            v.key,
            v.version_id,
            human_size(v.size)
        );
    }
    for (k, why) in &p.unreadable {
        println!("  unreadable plan record {k}: {why}");
    }
    println!("(deleted by version id: this cannot be undone)");
}

/// `narscope gc purge`.
async fn purge_cmd(ctx: &Ctx, args: PurgeArgs) -> Result<i32> {
    let older_than = args
        .older_than
        .as_deref()
        .map(crate::units::parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--older-than: {e}"))?;
    let (cache, _) = ctx.open(&args.cache).await?;
    if !cache.versioning().await?.keeps_versions() {
        if args.json {
            println!("{}", not_run_doc("gc purge", "empty", 0, None));
        } else {
            println!(
                "{} does not keep versions: deletion there is final, nothing to purge",
                cache.url()
            );
        }
        return Ok(0);
    }
    if let Some(why) = versioned::lock_refusal(cache.store().as_ref()).await {
        if args.json {
            let doc = json!({"refusal": why});
            println!(
                "{}",
                not_run_doc("gc purge", "refused", EXIT_REFUSED, Some(doc))
            );
        } else {
            eprintln!("error: {why}");
        }
        return Ok(EXIT_REFUSED);
    }
    let opts = versioned::PurgeOptions {
        plans: args.plans.clone(),
        older_than,
        rewritten_narinfos: args.rewritten_narinfos,
    };
    let plan = versioned::plan_purge(cache.store().as_ref(), &opts).await?;
    if args.json && (args.dry_run || plan.is_empty()) {
        let mut doc = serde_json::to_value(&plan)?;
        if let Some(d) = doc.as_object_mut() {
            d.insert("bytes".into(), json!(plan.bytes()));
            d.insert("dryRun".into(), json!(args.dry_run));
        }
        let state = if plan.is_empty() { "empty" } else { "planned" };
        println!("{}", not_run_doc("gc purge", state, 0, Some(doc)));
    } else if !args.json {
        print_purge_plan(&plan);
    }
    if plan.is_empty() {
        if !args.json {
            println!("nothing to purge");
        }
        return Ok(0);
    }
    if args.dry_run {
        return Ok(0);
    }
    if !args.yes
        && !confirm(
            "purging",
            &format!(
                "permanently delete these versions from {} ({})? This cannot be undone",
                cache.url(),
                human_size(plan.bytes())
            ),
        )?
    {
        if args.json {
            println!("{}", not_run_doc("gc purge", "declined", 0, None));
        } else {
            println!("nothing deleted");
        }
        return Ok(0);
    }
    let store = cache.store().clone();
    let (job, state, summary) = run_job(
        JobKind::Gc,
        format!("gc purge: {} plan(s)", plan.plans.len()),
        move |_job, _notify| async move { versioned::purge_under_lease(store, &plan, &opts).await },
    )
    .await;
    report(
        args.json,
        "gc purge",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |s: &versioned::PurgeSummary| {
            format!(
                "purged {} plan(s): deleted {} hidden version(s), {} delete marker(s), {} \
                 rewritten narinfo version(s); {} no longer stored{}",
                s.plans.len(),
                s.versions,
                s.markers,
                s.rewritten,
                human_size(s.bytes),
                if s.current > 0 {
                    format!(
                        "; {} recorded version(s) kept because they are current again",
                        s.current
                    )
                } else {
                    String::new()
                }
            )
        },
    )
}

/// `narscope gc plans`.
async fn plans_cmd(ctx: &Ctx, args: PlansArgs) -> Result<i32> {
    let (cache, _) = ctx.open(&args.cache).await?;
    let (plans, bad) = versioned::list(cache.store().as_ref()).await?;
    let now = std::time::SystemTime::now();
    if args.json {
        let doc = json!({
            "plans": plans.iter().map(|p| json!({
                "id": p.id,
                "created": p.created,
                "ageSeconds": p.age_secs(now),
                "command": p.command,
                "objects": p.totals.objects,
                "bytes": p.totals.bytes,
                "state": p.state,
                "permanent": p.permanent,
            })).collect::<Vec<_>>(),
            "unreadable": bad.iter().map(|(k, why)| json!({"key": k, "error": why})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    if plans.is_empty() && bad.is_empty() {
        println!("no recorded plans in {}", cache.url());
        return Ok(0);
    }
    println!(
        "{:<26} {:>8} {:<7} {:>8} {:>11}  state",
        "plan", "age", "command", "objects", "bytes"
    );
    for p in &plans {
        println!(
            "{:<26} {:>8} {:<7} {:>8} {:>11}  {}",
            p.id,
            crate::units::age(
                now,
                Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(p.created_unix))
            ),
            p.command,
            p.totals.objects,
            human_size(p.totals.bytes),
            p.state.label()
        );
    }
    for (k, why) in &bad {
        println!("unreadable: {k}: {why}");
    }
    Ok(0)
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
    if let Some(line) = retention_line(p) {
        println!("{line}");
    }
    if let Some(b) = &p.budget {
        println!("{}", b.line());
    }
    if p.kept_by_grace > 0 || p.young_orphans > 0 {
        println!(
            "kept for now, younger than the grace period: {} narinfo(s) and {} other object(s)",
            p.kept_by_grace, p.young_orphans
        );
    }
    let pruned: std::collections::HashSet<_> = p.pruned.iter().collect();
    for r in &p.garbage {
        match pruned.contains(r).then(|| p.upstream.serving(*r)).flatten() {
            Some(up) => println!("  upstream {} (served by {up})", idx.store_path(*r)),
            None if p.evicted.binary_search(r).is_ok() => println!(
                "  evicted  {} (pushed {})",
                idx.store_path(*r),
                crate::gc::pushed_date(idx, *r)
            ),
            None => println!("  garbage  {}", idx.store_path(*r)),
        }
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

/// How many paths each retention policy keeps and drops (`None` without a policy).
fn retention_line(p: &crate::gc::GcPlan) -> Option<String> {
    let r = p.retention;
    if !r.is_set() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(n) = r.keep_versions {
        parts.push(format!(
            "--keep-versions {n} drops {} older version(s) no kept path references",
            p.dropped_by_versions
        ));
    }
    if let Some(b) = r.max_size {
        parts.push(format!(
            "--max-size {} evicts {} path(s), least recently pushed first",
            human_size(b),
            p.evicted.len()
        ));
    }
    let kept_by = if r.keep_versions.is_some() {
        "the newest versions and their closures"
    } else {
        "within the budget"
    };
    Some(format!(
        "retention: {}; {} path(s) no root reaches stay ({kept_by})",
        parts.join("; "),
        p.kept_by_policy
    ))
}

/// What the upstreams serve of the cache, and what the plan prunes of it.
fn upstream_line(
    t: &crate::upstream::ServedTotals,
    plan: &crate::gc::GcPlan,
    prune: bool,
) -> String {
    let mut s = format!(
        "upstream: {} of {} path(s) served by {} with a trusted signature ({} NAR, {} file)",
        t.served,
        t.checked,
        plan.upstream.names.join(", "),
        human_size(t.nar_bytes),
        human_size(t.file_bytes)
    );
    if prune {
        s.push_str(&format!(
            "; {} of them pruned (the others are kept by a root itself or are young); clients \
             must list the upstream as a substituter too",
            plan.pruned.len()
        ));
    }
    if t.not_trusted > 0 || t.errors > 0 {
        s.push_str(&format!(
            "\n  not served: {} whose upstream narinfo does not verify, {} the upstream could \
             not be asked about",
            t.not_trusted, t.errors
        ));
    }
    for e in &t.examples {
        s.push_str(&format!("\n  {e}"));
    }
    s
}

/// What a deletion on a versioned bucket left: the plan that restores or purges it, or the
/// bytes freed at once.
pub(crate) fn deletion_note(s: &delete::DeleteSummary, cache: &str) -> String {
    match &s.plan {
        Some(id) => format!(
            "; {} hidden behind delete markers, still stored: plan {id} (`narscope gc restore \
             {cache} {id}` undoes it, `narscope gc purge {cache} {id}` frees the space)",
            human_size(s.hidden_bytes)
        ),
        None if s.freed_bytes > 0 => format!("; {} no longer stored", human_size(s.freed_bytes)),
        None => String::new(),
    }
}

/// What to do about having no roots.
const NO_ROOTS_ADVICE: &str = "add pins (narscope pin CACHE add NAME PATH…), --roots-file, \
     --roots-from-nix or --keep-younger-than; or --allow-no-roots if deleting every path older \
     than the grace period is really what you want";

/// `narscope gc`: roots, pins, scan, plan, refuse or confirm, then run the collect job.
async fn gc_cmd(ctx: &Ctx, args: &Args) -> Result<i32> {
    let arg = args
        .cache
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("say which cache to collect: narscope gc CACHE"))?;
    let trust = &args.trust;
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
        retention: gc::Retention {
            keep_versions: args.keep_versions,
            max_size: args.max_size,
        },
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
    let ups = ctx.upstreams(&args.upstream, named, &keys).await?;
    if args.prune_upstream && ups.is_empty() {
        anyhow::bail!(
            "--prune-upstream: no upstream: give --upstream URL or configure the cache's upstreams"
        );
    }
    let opened = scanned_index(ctx, &cache, &keys).await?;
    let mut opts = req.options();
    let mut served_totals = None;
    if !ups.is_empty() {
        let (served, totals) = ups.check_index(&opened.index, ctx.concurrency()).await;
        opts.upstream = Arc::new(gc::UpstreamRows {
            served,
            names: ups.describe_all(),
            prune: args.prune_upstream,
        });
        served_totals = Some(totals);
    }
    let mut prepared = gc::prepare(
        cache.store().as_ref(),
        &opened.index,
        given.pins,
        given.extra,
        opts,
    )
    .await?;
    prepared.allow_no_roots = req.allow_no_roots;
    let plan = &prepared.plan;
    let versioning = cache.versioning().await;
    let objects = (plan.delete.narinfos()
        + plan.delete.nar_keys.len()
        + plan.delete.ls_keys.len()
        + plan.delete.extra_keys.len()) as u64;
    let meaning = versioned::Meaning::of(
        versioning.as_ref().copied(),
        args.permanent,
        objects,
        plan.bytes,
    );
    let locked = match &versioning {
        Ok(v) if v.keeps_versions() && !prepared.is_empty() => {
            versioned::lock_refusal(cache.store().as_ref()).await
        }
        _ => None,
    };
    let refusal = plan.refusal().or(locked).or_else(|| {
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
                "upstreams": plan.upstream.names,
                "upstream": served_totals,
                "pruned": plan.pruned.iter().map(|&r| idx.store_path(r)).collect::<Vec<_>>(),
                "provisional": true,
                "deletion": meaning,
                "retention": {
                    "keepVersions": plan.retention.keep_versions,
                    "maxSize": plan.retention.max_size,
                    "keptByPolicy": plan.kept_by_policy,
                    "droppedByVersions": plan.dropped_by_versions,
                    "evicted": plan.evicted.len(),
                },
                "budget": plan.budget,
                "garbageWhy": plan.garbage.iter().map(|&r| json!({"path": idx.store_path(r), "why": plan.why(&idx, r)})).collect::<Vec<_>>(),
            });
            println!("{}", not_run_doc("gc", state, code, Some(doc)));
        } else if !args.json {
            print_gc_plan(&idx, plan);
            if let Some(t) = &served_totals {
                println!("{}", upstream_line(t, plan, args.prune_upstream));
            }
            println!("deletion: {}", meaning.note);
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
    let question = if args.permanent && meaning.versioning.is_some_and(|v| v.keeps_versions()) {
        format!(
            "collect this garbage from {} and delete its versions for good? This cannot be undone",
            cache.url()
        )
    } else {
        format!("collect this garbage from {}?", cache.url())
    };
    if !args.yes && !confirm("collecting", &question)? {
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
    let budget = prepared.plan.budget;
    let scan_opts = ScanOptions {
        concurrency: ctx.concurrency(),
        list_nars: true,
    };
    let prepared = Arc::new(prepared);
    let url = arg.to_string();
    let permanent = args.permanent;
    let (job, state, summary) = run_job(
        JobKind::Gc,
        format!("gc: {n} path(s)"),
        move |job, notify| {
            let at = delete::Rescan {
                cache,
                index,
                keys,
                scan: scan_opts,
                permanent,
            };
            gc::collect(at, prepared, job, notify)
        },
    )
    .await;
    if let Err(e) = opened.save() {
        tracing::warn!("index not saved: {e}");
    }
    let summary = summary
        .as_ref()
        .map(|collected| GcSummary { collected, budget });
    report(
        args.json,
        "gc",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |g: &GcSummary| {
            let s = g.collected;
            format!(
                "collected {} narinfo(s), {} NAR(s), {} listing(s), {} other object(s); {} failed{}{}",
                s.narinfos,
                s.nars,
                s.listings,
                s.others,
                s.failed,
                kept_note(s.kept_since_planned),
                deletion_note(s, &url)
            )
        },
    )
}

/// What `gc` reports when it ran: the deletion's summary, and with `--max-size` the budget
/// the plan reached (`budget` in the JSON).
#[derive(serde::Serialize)]
struct GcSummary<'a> {
    #[serde(flatten)]
    collected: &'a delete::DeleteSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<crate::gc::BudgetReport>,
}

#[cfg(test)]
mod tests {
    use super::Action;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn gc(args: &[&str]) -> super::Args {
        let mut argv = vec!["narscope", "gc"];
        argv.extend(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Gc(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gc_takes_a_cache_or_a_plan_subcommand() {
        let a = gc(&["s3://b", "--permanent", "--yes"]);
        assert_eq!(a.cache.as_deref(), Some("s3://b"));
        assert!(a.permanent && a.yes && a.action.is_none());
        let a = gc(&["restore", "s3://b", "20261203T120000Z-0000abcd", "--json"]);
        match a.action {
            Some(Action::Restore(r)) => {
                assert_eq!((r.cache.as_str(), r.json), ("s3://b", true));
                assert_eq!(r.plan, "20261203T120000Z-0000abcd");
            }
            other => panic!("{other:?}"),
        }
        let a = gc(&[
            "purge",
            "s3://b",
            "p1",
            "p2",
            "--older-than",
            "30d",
            "--dry-run",
        ]);
        match a.action {
            Some(Action::Purge(p)) => {
                assert_eq!(p.plans, ["p1", "p2"]);
                assert_eq!(p.older_than.as_deref(), Some("30d"));
                assert!(p.dry_run && !p.yes && !p.rewritten_narinfos);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            gc(&["plans", "s3://b"]).action,
            Some(Action::Plans(_))
        ));
    }

    #[test]
    fn retention_flags_parse_and_bad_values_name_the_flag() {
        let a = gc(&["s3://b", "--keep-versions", "3", "--max-size", "1.5GiB"]);
        assert_eq!((a.keep_versions, a.max_size), (Some(3), Some(3 << 29)));
        let a = gc(&["s3://b"]);
        assert_eq!((a.keep_versions, a.max_size), (None, None));
        let err = |args: &[&str]| {
            let mut argv = vec!["narscope", "gc", "s3://b"];
            argv.extend(args);
            Cli::try_parse_from(argv).unwrap_err().to_string()
        };
        let e = err(&["--max-size", "10X"]);
        assert!(e.contains("--max-size") && e.contains("'10X'"), "{e}");
        let e = err(&["--keep-versions", "0"]);
        assert!(e.contains("--keep-versions") && e.contains("'0'"), "{e}");
    }

    #[test]
    fn the_budget_line_says_reached_or_what_holds_the_bytes() {
        let mut b = crate::gc::BudgetReport {
            budget: 10 << 30,
            before: 14 << 30,
            after: 9 << 30,
            reached: true,
            held_by_roots: 2 << 30,
        };
        assert_eq!(b.line(), "budget 10 GiB: reached (cache 14 GiB → 9 GiB)");
        b.after = 12 << 30;
        b.held_by_roots = 12 << 30;
        b.reached = false;
        assert_eq!(
            b.line(),
            "budget 10 GiB: NOT reached: 12 GiB is held by pins, roots and the grace period \
             (nothing else to evict; cache 14 GiB → 12 GiB)"
        );
        let plan = crate::gc::GcPlan {
            retention: crate::gc::Retention {
                keep_versions: Some(2),
                max_size: Some(10 << 30),
            },
            evicted: vec![4, 5],
            kept_by_policy: 7,
            dropped_by_versions: 3,
            ..Default::default()
        };
        assert_eq!(
            super::retention_line(&plan).unwrap(),
            "retention: --keep-versions 2 drops 3 older version(s) no kept path references; \
             --max-size 10 GiB evicts 2 path(s), least recently pushed first; 7 path(s) no root \
             reaches stay (the newest versions and their closures)"
        );
        assert_eq!(super::retention_line(&crate::gc::GcPlan::default()), None);
    }
}
