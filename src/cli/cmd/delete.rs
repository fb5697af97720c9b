//! `narscope delete`: delete paths from a cache, plan first, never breaking a referrer.

use std::sync::{Arc, RwLock};

use anyhow::{Result, bail};
use serde_json::json;

use crate::cli::ctx::{CACHE_HELP, Ctx, EXIT_REFUSED, TrustArgs, confirm, scanned_index};
use crate::cli::output::{kept_note, not_run_doc, print_unknown, report};
use crate::cli::progress::run_job;
use crate::index::scan::ScanOptions;
use crate::index::{Index, RowId, RowStatus};
use crate::jobs::JobKind;
use crate::jobs::delete::{self, DeletePlan};
use crate::units::human_size;

/// Delete paths from the cache, showing the plan first and never breaking a referrer.
///
/// narinfos go first (referrers before what they reference), then NARs and .ls listings
/// that no remaining narinfo needs. A path that something else still references is refused
/// unless --cascade deletes the referrers too; a pinned path is refused unless
/// --even-if-pinned. While any narinfo of the cache cannot be read (it might reference
/// what would go) nothing is deleted, except that narinfo itself when named. Just before
/// deleting, narscope takes the cache's deletion lease (pushes by narscope pause), looks
/// at the cache again and deletes only what the confirmed plan named.
///
/// On a bucket that keeps versions, deleting only hides objects behind delete markers: the
/// deletion is recorded as a plan that `narscope gc restore` undoes and `narscope gc purge`
/// frees; --permanent frees at once.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Store paths to delete (or base names, hashes, `<hash>.narinfo` keys).
    pub paths: Vec<String>,
    /// Every unsigned path.
    #[arg(long)]
    pub unsigned: bool,
    /// Every path whose signatures are all untrusted or invalid.
    #[arg(long)]
    pub untrusted: bool,
    /// Also delete every path that references a deleted one.
    #[arg(long)]
    pub cascade: bool,
    /// Delete paths that a pin names too (the pins keep naming them).
    #[arg(long)]
    pub even_if_pinned: bool,
    /// On a bucket that keeps versions, delete the hidden versions at once: frees the space
    /// and cannot be undone (without it, the deletion is recorded and can be restored).
    #[arg(long)]
    pub permanent: bool,
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

/// Run `narscope delete`: plan, confirm, then delete under the lease.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    ctx.require_writable(&args.cache, "`narscope delete`")?;
    delete_cmd(ctx, &args).await
}

/// Rows with these verdicts.
fn rows_with(idx: &Index, statuses: &[RowStatus]) -> Vec<RowId> {
    idx.live()
        .filter(|&r| statuses.contains(&idx.row(r).status))
        .collect()
}

/// The live rows of the paths named (each must be in the cache).
fn rows_of(idx: &Index, paths: &[String]) -> Result<Vec<RowId>> {
    paths
        .iter()
        .map(|p| {
            idx.find_path(p)
                .filter(|&r| idx.row(r).is_live())
                .ok_or_else(|| anyhow::anyhow!("{p} is not in the cache"))
        })
        .collect()
}

/// Print a deletion plan.
fn print_plan(idx: &Index, p: &DeletePlan, cascade: bool) {
    println!(
        "plan: delete {} narinfo(s){}, {} NAR(s) ({}), {} listing(s) in {} request(s)",
        p.narinfos(),
        if p.cascaded.is_empty() {
            String::new()
        } else {
            format!(" ({} because they reference the others)", p.cascaded.len())
        },
        p.nar_keys.len(),
        human_size(p.nar_bytes),
        p.ls_keys.len(),
        p.requests()
    );
    for r in p.rows() {
        if idx.row(r).has(crate::index::flags::UNREADABLE) {
            println!(
                "  delete {} (unreadable; its NAR is unknown and stays for a later gc)",
                idx.narinfo_key(r)
            );
        } else {
            println!("  delete {}", idx.store_path(r));
        }
    }
    for k in &p.shared_nars {
        println!("  keep   {k} (another narinfo uses it)");
    }
    if !p.broken.is_empty() && !cascade {
        println!(
            "these remaining paths would lose a reference ({}); add --cascade to delete them too:",
            p.broken.len()
        );
        for (r, t) in &p.broken {
            println!("  {} -> {}", idx.store_path(*r), idx.store_path(*t));
        }
    }
    println!("(the cache is looked at again just before deleting; only what this plan names goes)");
}

/// `narscope delete`: scan, plan, refuse or confirm, then run the delete job.
async fn delete_cmd(ctx: &Ctx, args: &Args) -> Result<i32> {
    let (arg, trust) = (args.cache.as_str(), &args.trust);
    let json_out = args.json;
    if args.paths.is_empty() && !args.unsigned && !args.untrusted {
        bail!("say what to delete: STORE-PATH…, --unsigned and/or --untrusted");
    }
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let opened = scanned_index(ctx, &cache, &keys).await?;
    let pins = crate::pins::list_pins(cache.store().as_ref()).await?;
    let index: Arc<RwLock<Index>> = opened.index.clone();
    let versioning = cache.versioning().await;
    let locked = match &versioning {
        Ok(v) if v.keeps_versions() => crate::versioned::lock_refusal(cache.store().as_ref()).await,
        _ => None,
    };
    let (plan, targets, refusal, pinned_note, meaning) = {
        let idx = index.read().unwrap_or_else(|e| e.into_inner());
        let mut targets = rows_of(&idx, &args.paths)?;
        if args.unsigned {
            targets.extend(rows_with(&idx, &[RowStatus::Unsigned]));
        }
        if args.untrusted {
            targets.extend(rows_with(&idx, &[RowStatus::Untrusted, RowStatus::Invalid]));
        }
        let plan = delete::plan(&idx, &targets, args.cascade);
        let pinned = delete::pinned_rows(&idx, &plan, &pins);
        let refusal = plan.refusal().or(locked).or_else(|| {
            (!args.even_if_pinned)
                .then(|| delete::pinned_refusal(&idx, &plan, &pins))
                .flatten()
        });
        let objects = (plan.narinfos() + plan.nar_keys.len() + plan.ls_keys.len()) as u64;
        let meaning = crate::versioned::Meaning::of(
            versioning.as_ref().copied(),
            args.permanent,
            objects,
            plan.nar_bytes,
        );
        if json_out && (args.dry_run || refusal.is_some() || plan.narinfos() == 0) {
            let (state, code) = if refusal.is_some() {
                ("refused", EXIT_REFUSED)
            } else if plan.narinfos() == 0 {
                ("empty", 0)
            } else {
                ("planned", 0)
            };
            let doc = json!({
                "dryRun": args.dry_run,
                "safe": refusal.is_none(),
                "refusal": refusal,
                "narinfos": plan.rows().map(|r| idx.store_path(r)).collect::<Vec<_>>(),
                "cascaded": plan.cascaded.iter().map(|&r| idx.store_path(r)).collect::<Vec<_>>(),
                "broken": plan.broken.iter().map(|&(a, b)| json!({"referrer": idx.store_path(a), "reference": idx.store_path(b)})).collect::<Vec<_>>(),
                "unknown": plan.unknown,
                "pinned": pinned.iter().map(|(r, names)| json!({"path": idx.store_path(*r), "pins": names})).collect::<Vec<_>>(),
                "nars": plan.nar_keys,
                "sharedNars": plan.shared_nars,
                "listings": plan.ls_keys,
                "narBytes": plan.nar_bytes,
                "requests": plan.requests(),
                "deletion": meaning,
            });
            println!("{}", not_run_doc("delete", state, code, Some(doc)));
        } else if !json_out {
            print_plan(&idx, &plan, args.cascade);
            println!("deletion: {}", meaning.note);
        }
        let note = (!pinned.is_empty()).then(|| {
            let mut names: Vec<&String> = pinned.iter().flat_map(|(_, n)| n).collect();
            names.sort();
            names.dedup();
            format!(
                ", including {} pinned path(s) (pins {}, which will name missing paths)",
                pinned.len(),
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        (plan, targets, refusal, note, meaning)
    };
    if let Some(why) = refusal {
        if !json_out {
            eprintln!("error: {why}");
            print_unknown(&plan.unknown);
        }
        return Ok(EXIT_REFUSED);
    }
    if plan.narinfos() == 0 {
        if !json_out {
            println!("nothing to delete");
        }
        return Ok(0);
    }
    if args.dry_run {
        return Ok(0);
    }
    let question = format!(
        "delete these from {}{}?{}",
        cache.url(),
        pinned_note.as_deref().unwrap_or_default(),
        if args.permanent && meaning.versioning.is_some_and(|v| v.keeps_versions()) {
            " Their versions are deleted for good: this cannot be undone"
        } else {
            ""
        }
    );
    if !args.yes && !confirm("deleting", &question)? {
        if json_out {
            println!("{}", not_run_doc("delete", "declined", 0, None));
        } else {
            println!("nothing deleted");
        }
        return Ok(0);
    }
    if let Some(note) = &pinned_note
        && !json_out
    {
        eprintln!("warning: deleting{}", note.trim_start_matches(','));
    }
    let n = plan.narinfos();
    let idx2 = index.clone();
    let confirmed = delete::Confirmed {
        targets,
        cascade: args.cascade,
        even_if_pinned: args.even_if_pinned,
        plan,
    };
    let scan_opts = ScanOptions {
        concurrency: ctx.concurrency(),
        list_nars: true,
    };
    let permanent = args.permanent;
    let (job, state, summary) = run_job(
        JobKind::Delete,
        format!("delete {n} path(s)"),
        move |job, notify| {
            let at = delete::Rescan {
                cache,
                index: idx2,
                keys,
                scan: scan_opts,
                permanent,
            };
            delete::execute_confirmed(at, confirmed, job, notify)
        },
    )
    .await;
    if let Err(e) = opened.save() {
        tracing::warn!("index not saved: {e}");
    }
    report(
        json_out,
        "delete",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |s: &delete::DeleteSummary| {
            format!(
                "deleted {} narinfo(s), {} NAR(s), {} listing(s); {} failed{}{}",
                s.narinfos,
                s.nars,
                s.listings,
                s.failed,
                kept_note(s.kept_since_planned),
                super::gc::deletion_note(s, &args.cache)
            )
        },
    )
}
