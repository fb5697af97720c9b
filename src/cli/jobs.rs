//! The job commands: `sign`, `push`, `pull`, `delete`, `gc` (and `pin`). Each runs a background job of the
//! core, shows a progress bar on a terminal (stderr), stops cleanly on ctrl-c, and prints a
//! summary, or one JSON document with `--json`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use super::commands::Ctx;
use super::{EXIT_ERROR, TrustArgs};
use crate::cache::Cache;
use crate::compression::Compression;
use crate::index::scan::{Opened, ScanOptions, ScanProgress, open_index, scan};
use crate::index::{Index, RowId, RowStatus};
use crate::jobs::delete::{self, DeletePlan};
use crate::jobs::pull::{self, PullOptions};
use crate::jobs::push::{self, PushOptions};
use crate::jobs::sign::{self, SignOptions};
use crate::jobs::{JobHandle, JobKind, JobNotify, JobState, Runner};
use crate::nix::TrustedKeys;

/// Exit code when something was refused (untrusted paths, a deletion that would break
/// referrers): the "not trusted" bit, as in `nix store verify`.
pub const EXIT_REFUSED: i32 = 2;

/// A `--key-file` flag as a key source of [`sign::load_signing_keys`].
fn key_flag(key_file: Option<&Path>) -> Vec<(PathBuf, String)> {
    key_file
        .map(|p| (p.to_path_buf(), "--key-file".to_string()))
        .into_iter()
        .collect()
}

/// Run `work` as a job with a progress bar (on a terminal) until it ends or ctrl-c cancels it.
/// Returns the job, how it ended and what `work` produced.
async fn run_job<T, F, Fut>(
    kind: JobKind,
    title: String,
    work: F,
) -> (Arc<JobHandle>, JobState, Option<T>)
where
    T: Send + 'static,
    F: FnOnce(Arc<JobHandle>, JobNotify) -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::jobs::JobError>> + Send + 'static,
{
    let runner = Runner::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let notify: JobNotify = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let h = runner.spawn(kind, title, notify, move |job, notify| {
        let fut = work(job, notify);
        async move {
            let v = fut.await?;
            *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
            Ok(())
        }
    });
    let bar = Bar::start(h.clone());
    let state = loop {
        tokio::select! {
            e = rx.recv() => match e {
                Some(crate::jobs::JobEvent::Finished(_, s)) => break s,
                Some(_) => {}
                None => break h.state(),
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ncancelling (the cache stays consistent)…");
                h.cancel.cancel();
            }
        }
    };
    bar.finish();
    let v = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    (h, state, v)
}

/// An indicatif bar for a job, redrawn from its counters; nothing when stderr is no terminal.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Bar {
    fn start(job: Arc<JobHandle>) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar {
                bar: None,
                task: None,
            };
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("█▉ "),
        );
        bar.set_prefix(job.kind.as_str());
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let p = &job.progress;
                b.set_length(p.total.load(Ordering::Relaxed));
                b.set_position(p.done.load(Ordering::Relaxed));
                b.set_message(p.current());
                if !job.is_running() {
                    break;
                }
            }
        });
        Bar {
            bar: Some(bar),
            task: Some(task),
        }
    }

    fn finish(self) {
        if let Some(t) = self.task {
            t.abort();
        }
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// A job's per-item errors (printed by the caller, or put in the JSON).
fn errors(job: &JobHandle) -> Vec<String> {
    job.progress.errors()
}

fn state_word(s: &JobState) -> (&'static str, Option<String>) {
    match s {
        JobState::Running => ("running", None),
        JobState::Done => ("done", None),
        JobState::Failed(e) => ("failed", Some(e.clone())),
        JobState::Cancelled => ("cancelled", None),
    }
}

/// The JSON document of a job that did not run: `doc` (a plan, or nothing) with the fields
/// every job document has. `state` is `planned` (a dry run), `refused`, `empty` (nothing to
/// do) or `declined` (the user said no).
fn not_run_doc(what: &str, state: &str, code: i32, plan: Option<serde_json::Value>) -> String {
    let mut doc = json!({
        "job": what,
        "state": state,
        "error": null,
        "summary": null,
        "errors": [],
        "exitCode": code,
    });
    if let (Some(serde_json::Value::Object(plan)), Some(d)) = (plan, doc.as_object_mut()) {
        for (k, v) in plan {
            d.entry(k).or_insert(v);
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Print `summary` as text or JSON; returns the exit code.
fn report<T: serde::Serialize>(
    json_out: bool,
    what: &str,
    job: &JobHandle,
    state: &JobState,
    summary: Option<&T>,
    text: impl FnOnce(&T) -> String,
) -> Result<i32> {
    let errs = errors(job);
    let (word, err) = state_word(state);
    let code = if *state == JobState::Done && errs.is_empty() {
        0
    } else if err.as_deref().is_some_and(|e| e.starts_with("refusing")) {
        EXIT_REFUSED
    } else {
        EXIT_ERROR
    };
    if json_out {
        let doc = json!({
            "job": what,
            "state": word,
            "error": err,
            "summary": summary,
            "errors": errs,
            "exitCode": code,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(code);
    }
    let mut err_out = std::io::stderr().lock();
    for e in &errs {
        writeln!(err_out, "error: {e}")?;
    }
    if let Some(e) = &err {
        writeln!(err_out, "error: {e}")?;
    }
    if let Some(s) = summary {
        println!("{}", text(s));
    } else if *state == JobState::Cancelled {
        println!("{what} cancelled");
    }
    Ok(code)
}

/// Fill an index of the cache (the persistent one when it is free) and return it.
async fn scanned_index(ctx: &Ctx, cache: &Arc<Cache>, keys: &Arc<TrustedKeys>) -> Result<Opened> {
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
    let p = progress.clone();
    let line = if std::io::stderr().is_terminal() {
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                eprint!(
                    "\r\x1b[2Kscanning: {} narinfos listed, {} fetched",
                    p.listed.load(Ordering::Relaxed),
                    p.fetched.load(Ordering::Relaxed)
                );
            }
        }))
    } else {
        None
    };
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
    if let Some(l) = line {
        l.abort();
        eprint!("\r\x1b[2K");
    }
    r.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Rows with these verdicts.
fn rows_with(idx: &Index, statuses: &[RowStatus]) -> Vec<RowId> {
    idx.live()
        .filter(|&r| statuses.contains(&idx.row(r).status))
        .collect()
}

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

/// `narscope sign`.
#[allow(clippy::too_many_arguments)]
pub async fn sign_cmd(
    ctx: &Ctx,
    arg: &str,
    paths: &[String],
    key_file: Option<&Path>,
    all: bool,
    unsigned: bool,
    remove_key: Option<String>,
    dry_run: bool,
    trust: &TrustArgs,
    json_out: bool,
) -> Result<i32> {
    // Every key file (the flag's and the URL's) is checked before the cache is touched.
    let url = ctx.url(arg)?;
    let keys_to_sign =
        sign::load_signing_keys(url.params(), &key_flag(key_file)).map_err(anyhow::Error::msg)?;
    if keys_to_sign.is_empty() && remove_key.is_none() {
        bail!(
            "nothing to do: give --key-file (or secret-key= in the cache URL) to sign, or \
             --remove-key NAME to drop signatures"
        );
    }
    let selections = usize::from(all) + usize::from(unsigned) + usize::from(!paths.is_empty());
    if selections != 1 {
        bail!("say which paths: STORE-PATH…, --all or --unsigned (one of them)");
    }
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let targets: Vec<String> = if paths.is_empty() {
        // Every narinfo: the job reads each one and rewrites only those that lack a valid
        // signature by the key (or carry one of --remove-key), so --all and --unsigned
        // select the same writes; no separate audit is needed.
        use futures::StreamExt;
        let mut keys_out = Vec::new();
        let mut pages = std::pin::pin!(cache.narinfo_keys(ctx.concurrency()));
        while let Some(page) = pages.next().await {
            keys_out.extend(page?.into_iter().map(|o| o.key));
        }
        keys_out.sort();
        keys_out
    } else {
        paths
            .iter()
            .map(|p| crate::cache::narinfo_key_for(p).map_err(anyhow::Error::from))
            .collect::<Result<_>>()?
    };
    let n = targets.len();
    let opts = SignOptions {
        keys: keys_to_sign,
        remove_key,
        concurrency: ctx.concurrency(),
        dry_run,
    };
    let c2 = cache.clone();
    let (job, state, summary) = run_job(
        JobKind::Sign,
        format!("sign {n} narinfo(s)"),
        move |job, notify| sign::sign(c2, targets, opts, keys, None, job, notify),
    )
    .await;
    report(
        json_out,
        "sign",
        &job,
        &state,
        summary.as_ref(),
        |s: &sign::SignSummary| {
            let verb = if dry_run { "would change" } else { "changed" };
            let mut t = format!(
                "{verb} {} narinfo(s): {} signature(s) added, {} removed; {} already done; {} failed",
                s.changed, s.added, s.removed, s.unchanged, s.failed
            );
            if !dry_run && !s.compare_and_swap {
                t.push_str(&format!(
                    "\nnote: {} does not honour If-Match, so narinfos were overwritten without \
                     compare-and-swap; {} of them were read back carrying the change (a \
                     concurrent writer may still overwrite them later)",
                    cache.store().describe(),
                    s.verified
                ));
            }
            if s.retries > 0 {
                t.push_str(&format!(
                    "\n{} write(s) retried after a concurrent change",
                    s.retries
                ));
            }
            t
        },
    )
}

/// `narscope push`.
#[allow(clippy::too_many_arguments)]
pub async fn push_cmd(
    ctx: &Ctx,
    arg: &str,
    paths: &[String],
    key_file: Option<&Path>,
    compression: Option<&str>,
    level: Option<i32>,
    jobs: Option<usize>,
    json_out: bool,
) -> Result<i32> {
    let compression: Option<Compression> = compression
        .map(|c| c.parse())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--compression: {e}"))?;
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
    let opts = PushOptions::resolve(url.params(), &flags).map_err(anyhow::Error::msg)?;
    let closure = {
        let p = paths.to_vec();
        tokio::task::spawn_blocking(move || crate::localstore::closure(&p)).await??
    };
    let (cache, _) = ctx.open(arg).await?;
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
        &job,
        &state,
        summary.as_ref(),
        |s: &push::PushSummary| {
            let mut t = format!(
                "closure of {} path(s): {} uploaded ({} NAR, {} compressed), {} already in {}",
                s.closure,
                s.uploaded,
                super::output::size(s.nar_bytes),
                super::output::size(s.file_bytes),
                s.present,
                cache.url()
            );
            if s.listings > 0 || s.debuginfo_links > 0 {
                t.push_str(&format!(
                    "\n{} .ls listing(s), {} debuginfo link(s) written",
                    s.listings, s.debuginfo_links
                ));
            }
            if s.uploaded > 0 {
                t.push('\n');
                t.push_str(&note);
            }
            t
        },
    )
}

/// `narscope pull`.
#[allow(clippy::too_many_arguments)]
pub async fn pull_cmd(
    ctx: &Ctx,
    arg: &str,
    paths: &[String],
    to: Option<PathBuf>,
    recursive: bool,
    into_store: bool,
    trust: &TrustArgs,
    json_out: bool,
) -> Result<i32> {
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
        &job,
        &state,
        summary.as_ref(),
        |s: &pull::PullSummary| {
            let mut t = format!(
                "pulled {} path(s): {} downloaded, {} unpacked and verified",
                s.paths,
                super::output::size(s.file_bytes),
                super::output::size(s.nar_bytes)
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
        super::output::size(p.nar_bytes),
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

/// Print the narinfos that could not be read, each with why and what to do (stderr).
fn print_unknown(unknown: &[crate::index::UnknownRow]) {
    for u in unknown.iter().take(50) {
        eprintln!("  {} `{}`: {}", u.state, u.key, u.cause);
        eprintln!("    what to do: {}", u.advice());
    }
    if unknown.len() > 50 {
        eprintln!("  … and {} more", unknown.len() - 50);
    }
}

/// Options of `narscope delete`.
pub struct DeleteArgs {
    /// Paths named.
    pub paths: Vec<String>,
    /// Every unsigned path.
    pub unsigned: bool,
    /// Every untrusted or invalid path.
    pub untrusted: bool,
    /// Referrers go too.
    pub cascade: bool,
    /// Pinned paths may go.
    pub even_if_pinned: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Don't ask.
    pub yes: bool,
    /// JSON.
    pub json: bool,
}

/// `narscope delete`.
pub async fn delete_cmd(ctx: &Ctx, arg: &str, args: DeleteArgs, trust: &TrustArgs) -> Result<i32> {
    let json_out = args.json;
    if args.paths.is_empty() && !args.unsigned && !args.untrusted {
        bail!("say what to delete: STORE-PATH…, --unsigned and/or --untrusted");
    }
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let opened = scanned_index(ctx, &cache, &keys).await?;
    let pins = crate::gc::list_pins(cache.store().as_ref()).await?;
    let index: Arc<RwLock<Index>> = opened.index.clone();
    let (plan, targets, refusal, pinned_note) = {
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
        let refusal = plan.refusal().or_else(|| {
            (!args.even_if_pinned)
                .then(|| delete::pinned_refusal(&idx, &plan, &pins))
                .flatten()
        });
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
            });
            println!("{}", not_run_doc("delete", state, code, Some(doc)));
        } else if !json_out {
            print_plan(&idx, &plan, args.cascade);
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
        (plan, targets, refusal, note)
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
        "delete these from {}{}?",
        cache.url(),
        pinned_note.as_deref().unwrap_or_default()
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
    let (job, state, summary) = run_job(
        JobKind::Delete,
        format!("delete {n} path(s)"),
        move |job, notify| {
            let at = delete::Rescan {
                cache,
                index: idx2,
                keys,
                scan: scan_opts,
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
        &job,
        &state,
        summary.as_ref(),
        |s: &delete::DeleteSummary| {
            format!(
                "deleted {} narinfo(s), {} NAR(s), {} listing(s); {} failed{}",
                s.narinfos,
                s.nars,
                s.listings,
                s.failed,
                kept_note(s.kept_since_planned)
            )
        },
    )
}

/// "; 3 path(s) of the plan were kept: …" when the look just before deleting kept some.
fn kept_note(kept: u64) -> String {
    if kept == 0 {
        String::new()
    } else {
        format!(
            "; {kept} narinfo(s) of the plan were kept: the look just before deleting found \
             them pushed, pinned or referenced since"
        )
    }
}

/// Options of `narscope gc`.
pub struct GcArgs {
    /// Files of store paths.
    pub roots_files: Vec<PathBuf>,
    /// The local Nix store's GC roots.
    pub roots_from_nix: bool,
    /// Keep every narinfo newer than this.
    pub keep_younger: Option<String>,
    /// Grace period.
    pub grace: String,
    /// Collect even without any root.
    pub allow_no_roots: bool,
    /// Paths to explain.
    pub why: Vec<String>,
    /// Plan only.
    pub dry_run: bool,
    /// Don't ask.
    pub yes: bool,
    /// JSON.
    pub json: bool,
}

fn print_gc_plan(idx: &Index, p: &crate::gc::GcPlan) {
    use super::output::size;
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
        size(p.bytes),
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

/// `narscope gc`.
pub async fn gc_cmd(ctx: &Ctx, arg: &str, args: GcArgs, trust: &TrustArgs) -> Result<i32> {
    use crate::gc;
    let grace = gc::parse_duration(&args.grace).map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
    let keep_younger = args
        .keep_younger
        .as_deref()
        .map(gc::parse_duration)
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

/// `narscope pin`.
pub async fn pin_cmd(ctx: &Ctx, arg: &str, action: super::PinAction) -> Result<i32> {
    use crate::gc;
    let (cache, _) = ctx.open(arg).await?;
    let store = cache.store().clone();
    match action {
        super::PinAction::Ls { json: true } => {
            let pins = gc::list_pins(store.as_ref()).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "pins": pins }))?
            );
        }
        super::PinAction::Ls { json: false } => {
            let pins = gc::list_pins(store.as_ref()).await?;
            if pins.is_empty() {
                println!("no pins in {}", cache.url());
            }
            for p in pins {
                println!("{} ({} path(s))", p.name, p.paths.len());
                for x in p.paths {
                    println!("  {x}");
                }
            }
        }
        super::PinAction::Add { name, paths } => {
            if paths.is_empty() {
                bail!("give the store paths to pin");
            }
            for p in &paths {
                let key = crate::cache::narinfo_key_for(p)?;
                if store.head(&key).await?.is_none() {
                    eprintln!(
                        "warning: {p} is not in the cache (yet); the pin keeps it once it is"
                    );
                }
            }
            gc::write_pin(store.as_ref(), &name, &paths).await?;
            println!("pinned {} path(s) as '{name}'", paths.len());
        }
        super::PinAction::Rm { name } => {
            if gc::remove_pin(store.as_ref(), &name).await? {
                println!("removed pin '{name}'");
            } else {
                bail!("no pin '{name}' in {}", cache.url());
            }
        }
    }
    Ok(0)
}

/// Ask `question` on the terminal (default no); without a terminal, refuse: scripts pass --yes.
fn confirm(doing: &str, question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("not {doing} without confirmation: run on a terminal, or add --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
