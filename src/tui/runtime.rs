//! The event loop: one inbox, drained in bursts; the reducer; the effects; a redraw at most
//! every 16 ms and only when something changed. Terminal input, scans, detail loads and jobs
//! all report through the inbox.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::app::{App, AppOptions};
use super::keymap::Keymap;
use super::msg::{Effect, Msg, PLAN_PURGE_TITLE, PLAN_RESTORE_TITLE, PinChange, VersionsUpdate};
use super::overlay::plans::{purge_job, read_plans, restore_job};
use super::theme::Theme;
use crate::cache::Cache;
use crate::index::scan::{Opened, ScanOptions, ScanProgress, open_index, scan};
use crate::jobs::{JobEvent, JobHandle, JobKind, JobNotify, Runner};
use crate::nix::TrustedKeys;

/// How the dashboard is started.
pub struct TuiOptions {
    /// The cache to show and act on.
    pub cache: Arc<Cache>,
    /// Its URL as shown.
    pub url: String,
    /// The keys whose signatures make a path trusted.
    pub keys: Arc<TrustedKeys>,
    /// Hide mutating actions.
    pub read_only: bool,
    /// Keep the index on disk.
    pub persist: bool,
    /// narinfo requests in flight.
    pub concurrency: usize,
    /// Which keys do what (the defaults merged with the user's keymap).
    pub keymap: Keymap,
    /// The colours (the defaults merged with the user's theme).
    pub theme: Theme,
    /// Where logs go (shown in help).
    pub log_path: Option<String>,
    /// Something to show in the status line at start.
    pub notice: Option<String>,
    /// How the dashboard pushes, decided by [`crate::jobs::push::PushOptions::resolve`] from
    /// the cache URL and the flags; its keys sign in `sign` too.
    pub push: crate::jobs::push::PushOptions,
    /// Root store paths (`--root`): when given, the index is filled from their closures
    /// instead of a listing (HTTP caches cannot be listed) and is not kept on disk.
    pub roots: Vec<String>,
}

/// Rows per answer of the upstream check.
const UPSTREAM_BATCH: usize = 512;

/// Debounce of detail loads while the cursor moves.
const DETAIL_DEBOUNCE: Duration = Duration::from_millis(40);
/// Shortest time between frames.
const FRAME: Duration = Duration::from_millis(16);
/// Tick while something runs.
const TICK: Duration = Duration::from_millis(100);

struct Runtime {
    tx: UnboundedSender<Msg>,
    cache: Arc<Cache>,
    keys: Arc<TrustedKeys>,
    opened: Arc<Opened>,
    runner: Runner,
    concurrency: usize,
    jobs: Vec<Arc<JobHandle>>,
    pending_detail: Option<(u32, Instant)>,
    copies: Vec<String>,
    push: crate::jobs::push::PushOptions,
    /// The running version listing (a new scan replaces it).
    versions_task: Option<tokio::task::JoinHandle<()>>,
    /// Root store paths whose closures replace the listing scan (`--root`).
    roots: Vec<String>,
    /// The running upstream check (a new one replaces it).
    upstream_task: Option<tokio::task::JoinHandle<()>>,
}

impl Runtime {
    /// The notify of a job starting now: its events go to the reducer, and when it ends, how
    /// the server throttled its requests, if it did.
    fn job_notify(&self) -> JobNotify {
        let tx = self.tx.clone();
        let store = self.cache.store().clone();
        let before = store.throttle().map(|t| t.stats());
        let started = Instant::now();
        Arc::new(move |e: JobEvent| {
            if let (JobEvent::Finished(id, _), Some(before), Some(t)) =
                (&e, before, store.throttle())
                && let Some(note) = t.stats().since(&before, started.elapsed()).note()
            {
                let _ = tx.send(Msg::JobThrottled(*id, note));
            }
            let _ = tx.send(Msg::Job(e));
        })
    }

    fn run(&mut self, fx: Effect) -> bool {
        match fx {
            Effect::Quit => return false,
            Effect::Scan => self.start_scan(),
            Effect::CheckUpstream => self.start_upstream(),
            Effect::BuildSpace => {
                let (index, tx) = (self.opened.index.clone(), self.tx.clone());
                tokio::task::spawn_blocking(move || {
                    let report = {
                        let idx = index.read().unwrap_or_else(|e| e.into_inner());
                        crate::space::Report::build(&idx, crate::space::timeline::Granularity::Day)
                    };
                    let _ = tx.send(Msg::SpaceBuilt(Arc::new(report)));
                });
            }
            Effect::SpaceGroupTimeline(report, i) => {
                let (index, tx) = (self.opened.index.clone(), self.tx.clone());
                tokio::task::spawn_blocking(move || {
                    let Some(p) = report.0.packages.get(i) else {
                        return;
                    };
                    let timeline = {
                        let idx = index.read().unwrap_or_else(|e| e.into_inner());
                        crate::space::timeline::build_sized(
                            &idx,
                            &report.0.sizes,
                            &p.rows,
                            crate::space::timeline::Granularity::Day,
                        )
                    };
                    let _ = tx.send(Msg::SpaceGroupTimeline {
                        generation: report.0.generation,
                        name: p.name.clone(),
                        timeline: Arc::new(timeline),
                    });
                });
            }
            Effect::LoadDetail(id) => {
                self.pending_detail = Some((id, Instant::now() + DETAIL_DEBOUNCE));
            }
            Effect::VerifyContents(ids) => {
                let n = ids.len();
                let cache = self.cache.clone();
                let index = self.opened.index.clone();
                let keys = self.keys.clone();
                let h = self.runner.spawn(
                    JobKind::VerifyContents,
                    format!("deep-verify {n} path(s)"),
                    self.job_notify(),
                    move |job, notify| {
                        crate::jobs::verify_contents(cache, index, keys, ids, 8, job, notify)
                    },
                );
                self.jobs.push(h.clone());
                let _ = self.tx.send(Msg::JobStarted(h));
            }
            Effect::Sign(ids) => {
                if self.push.keys.is_empty() {
                    return true;
                }
                let keys: Vec<String> = {
                    let idx = self.opened.index.read().unwrap_or_else(|e| e.into_inner());
                    ids.iter().map(|&i| idx.narinfo_key(i)).collect()
                };
                let n = keys.len();
                let (cache, index, trusted) = (
                    self.cache.clone(),
                    self.opened.index.clone(),
                    self.keys.clone(),
                );
                let opts = crate::jobs::sign::SignOptions {
                    keys: self.push.keys.clone(),
                    remove_key: None,
                    concurrency: self.concurrency,
                    dry_run: false,
                };
                let h = self.runner.spawn(
                    JobKind::Sign,
                    format!("sign {n} narinfo(s)"),
                    self.job_notify(),
                    move |job, notify| async move {
                        crate::jobs::sign::sign(
                            cache,
                            keys,
                            opts,
                            trusted,
                            Some(index),
                            job,
                            notify,
                        )
                        .await
                        .map(|_| ())
                    },
                );
                self.started(h);
            }
            Effect::Delete(confirmed) => {
                let n = confirmed.plan.narinfos();
                let (cache, index, keys) = (
                    self.cache.clone(),
                    self.opened.index.clone(),
                    self.keys.clone(),
                );
                let scan = ScanOptions {
                    concurrency: self.concurrency,
                    list_nars: true,
                };
                let h = self.runner.spawn(
                    JobKind::Delete,
                    format!("delete {n} path(s)"),
                    self.job_notify(),
                    move |job, notify| async move {
                        let at = crate::jobs::delete::Rescan {
                            cache,
                            index,
                            keys,
                            scan,
                            permanent: false,
                        };
                        crate::jobs::delete::execute_confirmed(at, *confirmed, job, notify)
                            .await
                            .map(|_| ())
                    },
                );
                self.started(h);
            }
            Effect::Push(paths) => {
                let cache = self.cache.clone();
                let opts = self.push.clone();
                let n = paths.len();
                let h = self.runner.spawn(
                    JobKind::Push,
                    format!("push {n} path(s) with their closures"),
                    self.job_notify(),
                    move |job, notify| async move {
                        let closure =
                            tokio::task::spawn_blocking(move || crate::localstore::closure(&paths))
                                .await
                                .map_err(|e| crate::jobs::JobError::Failed(e.to_string()))??;
                        crate::jobs::push::push(cache, closure, opts, job, notify)
                            .await
                            .map(|_| ())
                    },
                );
                self.started(h);
            }
            Effect::Pull(paths, dir) => {
                let (cache, keys) = (self.cache.clone(), self.keys.clone());
                let opts = crate::jobs::pull::PullOptions {
                    to: Some(dir.clone()),
                    recursive: true,
                    into_store: false,
                    concurrency: 8,
                };
                let h = self.runner.spawn(
                    JobKind::Pull,
                    format!("pull {} path(s) into {}", paths.len(), dir.display()),
                    self.job_notify(),
                    move |job, notify| async move {
                        crate::jobs::pull::pull(cache, paths, keys, opts, job, notify)
                            .await
                            .map(|_| ())
                    },
                );
                self.started(h);
            }
            Effect::PlanCopyTo(dst, paths) => {
                let (src, keys, tx) = (self.cache.clone(), self.keys.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let r = async {
                        let url =
                            crate::storage::CacheUrl::parse(&dst).map_err(|e| e.to_string())?;
                        if url.is_http() {
                            return Err(format!(
                                "{} is an HTTP cache: narscope reads it but cannot write to it",
                                url.short()
                            ));
                        }
                        let dst = Arc::new(Cache::open(&url).await.map_err(|e| e.to_string())?);
                        let sel = crate::jobs::copy::Selection::Paths(paths);
                        let opts = crate::jobs::copy::CopyOptions::default();
                        let plan = crate::jobs::copy::plan(&src, &dst, &sel, &keys, &opts)
                            .await
                            .map_err(|e| e.to_string())?;
                        Ok(super::msg::CopyHandle(Arc::new((dst, plan))))
                    }
                    .await;
                    let _ = tx.send(Msg::CopyPlanned(r));
                });
            }
            Effect::CopyTo(h) => {
                let src = self.cache.clone();
                let (dst, plan) = (h.0.0.clone(), h.0.1.clone());
                let opts = crate::jobs::copy::CopyOptions {
                    concurrency: 16,
                    ..Default::default()
                };
                let h = self.runner.spawn(
                    JobKind::Copy,
                    format!("copy {} path(s) to {}", plan.counts().to_copy, dst.url()),
                    self.job_notify(),
                    move |job, notify| async move {
                        crate::jobs::copy::copy(src, dst, plan, opts, job, notify)
                            .await
                            .map(|_| ())
                    },
                );
                self.started(h);
            }
            Effect::CancelJob(id) => {
                if let Some(j) = self.jobs.iter().find(|j| j.id == id) {
                    j.cancel.cancel();
                }
            }
            Effect::Copy(text) => self.copies.push(text),
            Effect::PlanDelete(ids) => {
                let (store, index, tx) = (
                    self.cache.store().clone(),
                    self.opened.index.clone(),
                    self.tx.clone(),
                );
                tokio::spawn(async move {
                    let pins = match crate::pins::list_pins(store.as_ref()).await {
                        Ok(p) => p,
                        Err(e) => {
                            let _ =
                                tx.send(Msg::DeletePlanned(Box::new(super::app::DeleteProposal {
                                    confirmed: crate::jobs::delete::Confirmed {
                                        targets: ids,
                                        cascade: true,
                                        even_if_pinned: false,
                                        plan: Default::default(),
                                    },
                                    lines: Vec::new(),
                                    refusal: Some(format!(
                                        "cannot read the pins, so nothing is deleted: {e}"
                                    )),
                                })));
                            return;
                        }
                    };
                    let _ = tokio::task::spawn_blocking(move || {
                        let idx = index.read().unwrap_or_else(|e| e.into_inner());
                        let p = super::app::propose_delete(&idx, &ids, &pins);
                        let _ = tx.send(Msg::DeletePlanned(Box::new(p)));
                    })
                    .await;
                });
            }
            Effect::PlanGc(req) => {
                let (store, index, tx) = (
                    self.cache.store().clone(),
                    self.opened.index.clone(),
                    self.tx.clone(),
                );
                tokio::spawn(async move {
                    let r = async {
                        let prepared =
                            crate::gc::prepare_request(store.as_ref(), &index, &req).await?;
                        let prepared = Arc::new(prepared);
                        // Grouping sorts every candidate: off the UI thread too.
                        tokio::task::spawn_blocking(move || {
                            let idx = index.read().unwrap_or_else(|e| e.into_inner());
                            Arc::new(super::overlay::gc::summary::GcSummary::new(
                                prepared,
                                &idx,
                                req.allow_no_roots,
                            ))
                        })
                        .await
                        .map_err(|e| {
                            crate::gc::GcError::Failed(format!("gc planning stopped: {e}"))
                        })
                    }
                    .await;
                    let _ = tx.send(Msg::GcPlanned(r));
                });
            }
            Effect::Collect(plan) => {
                let n = plan.0.plan.garbage.len();
                let (cache, index, keys) = (
                    self.cache.clone(),
                    self.opened.index.clone(),
                    self.keys.clone(),
                );
                let opts = ScanOptions {
                    concurrency: self.concurrency,
                    list_nars: true,
                };
                let h = self.runner.spawn(
                    JobKind::Gc,
                    format!("gc: up to {n} path(s)"),
                    self.job_notify(),
                    move |job, notify| async move {
                        let at = crate::jobs::delete::Rescan {
                            cache,
                            index,
                            keys,
                            scan: opts,
                            permanent: false,
                        };
                        crate::gc::collect(at, plan.0, job, notify)
                            .await
                            .map(|_| ())
                    },
                );
                self.started(h);
            }
            Effect::PinAdd(name, paths) => {
                let (store, tx) = (self.cache.store().clone(), self.tx.clone());
                tokio::spawn(async move {
                    let result = crate::pins::write_pin(store.as_ref(), &name, &paths)
                        .await
                        .map(|_| PinChange::Written(paths.len()));
                    let _ = tx.send(Msg::PinDone { name, result });
                });
            }
            Effect::PinRemove(name) => {
                let (store, tx) = (self.cache.store().clone(), self.tx.clone());
                tokio::spawn(async move {
                    let result =
                        crate::pins::remove_pin(store.as_ref(), &name)
                            .await
                            .map(|found| {
                                if found {
                                    PinChange::Removed
                                } else {
                                    PinChange::Missing
                                }
                            });
                    let _ = tx.send(Msg::PinDone { name, result });
                });
            }
            Effect::Doctor => {
                let (cache, tx) = (self.cache.clone(), self.tx.clone());
                let concurrency = self.concurrency;
                tokio::spawn(async move {
                    // The config's `public` setting is the CLI's: here anonymous reads are
                    // reported as they are.
                    let opts = crate::doctor::DoctorOptions {
                        no_write_probe: true,
                        concurrency,
                        ..Default::default()
                    };
                    let r = crate::doctor::diagnose(&cache, &opts).await;
                    let _ = tx.send(Msg::Doctor(Arc::new(r)));
                });
            }
            Effect::ListPlans => {
                let (cache, tx) = (self.cache.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let r = read_plans(&cache).await;
                    let _ = tx.send(Msg::Plans(r));
                });
            }
            Effect::RestorePlan(id) => {
                let store = self.cache.store().clone();
                let h = self.runner.spawn(
                    JobKind::Gc,
                    format!("{PLAN_RESTORE_TITLE} {id}"),
                    self.job_notify(),
                    move |job, _notify| restore_job(store, id, job),
                );
                self.started(h);
            }
            Effect::PurgePlan(id) => {
                let store = self.cache.store().clone();
                let h = self.runner.spawn(
                    JobKind::Gc,
                    format!("{PLAN_PURGE_TITLE} {id}"),
                    self.job_notify(),
                    move |job, _notify| purge_job(store, id, job),
                );
                self.started(h);
            }
            Effect::ListPins => {
                let (store, tx) = (self.cache.store().clone(), self.tx.clone());
                tokio::spawn(async move {
                    let r = crate::pins::list_pins(store.as_ref()).await;
                    let _ = tx.send(Msg::Pins(r));
                });
            }
            Effect::Save => {
                let opened = self.opened.clone();
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let r = opened.save();
                    let _ = tx.send(Msg::Saved(r));
                });
            }
        }
        true
    }

    /// Asks the upstreams (the push options', see [`TuiOptions::push`]) about every live row,
    /// off the UI thread, in batches of [`UPSTREAM_BATCH`]: each batch's answers come back as
    /// a [`Msg::UpstreamChecked`].
    fn start_upstream(&mut self) {
        if let Some(t) = self.upstream_task.take() {
            t.abort();
        }
        let ups = self.push.upstreams.clone();
        let (index, tx, concurrency) =
            (self.opened.index.clone(), self.tx.clone(), self.concurrency);
        self.upstream_task = Some(tokio::spawn(async move {
            let (rows, paths): (Vec<_>, Vec<_>) = {
                let idx = index.read().unwrap_or_else(|e| e.into_inner());
                idx.live()
                    .filter_map(|r| {
                        crate::nix::StorePath::from_base_name(&idx.base_name(r))
                            .ok()
                            .map(|p| (r, p))
                    })
                    .unzip()
            };
            for start in (0..rows.len()).step_by(UPSTREAM_BATCH) {
                let end = (start + UPSTREAM_BATCH).min(rows.len());
                let answers = ups
                    .check_all(&paths[start..end], concurrency, &|_, _| {})
                    .await;
                let batch = rows[start..end]
                    .iter()
                    .zip(&answers)
                    .map(|(&r, a)| (r, a.is_trusted()))
                    .collect();
                if tx
                    .send(Msg::UpstreamChecked {
                        rows: batch,
                        done: false,
                    })
                    .is_err()
                {
                    return;
                }
            }
            let _ = tx.send(Msg::UpstreamChecked {
                rows: Vec::new(),
                done: true,
            });
        }));
    }

    fn started(&mut self, h: Arc<JobHandle>) {
        self.jobs.push(h.clone());
        let _ = self.tx.send(Msg::JobStarted(h));
    }

    fn start_scan(&mut self) {
        let progress = Arc::new(ScanProgress::default());
        let cache = self.cache.clone();
        let index = self.opened.index.clone();
        let keys = self.keys.clone();
        let tx = self.tx.clone();
        let opts = ScanOptions {
            concurrency: self.concurrency,
            list_nars: true,
        };
        let p2 = progress.clone();
        let tx_changed = self.tx.clone();
        let changed: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = tx_changed.send(Msg::IndexChanged);
        });
        let roots = self.roots.clone();
        let title = if roots.is_empty() {
            format!("scan {}", self.cache.url())
        } else {
            format!("closure of {} root(s) in {}", roots.len(), self.cache.url())
        };
        let h = self.runner.spawn(
            JobKind::Scan,
            title,
            self.job_notify(),
            move |job, _| async move {
                let r = if roots.is_empty() {
                    scan(cache, index, keys, opts, p2, changed, job.cancel.clone()).await
                } else {
                    crate::closure::scan_roots(
                        cache,
                        index,
                        keys,
                        roots,
                        opts.concurrency,
                        p2,
                        changed,
                    )
                    .await
                };
                let out = r.as_ref().map(|_| ()).map_err(crate::jobs::JobError::from);
                if let Ok(s) = &r {
                    job.progress
                        .done
                        .store(s.listed, std::sync::atomic::Ordering::Relaxed);
                }
                let _ = tx.send(Msg::ScanFinished(r));
                out
            },
        );
        self.jobs.push(h.clone());
        let _ = self.tx.send(Msg::ScanStarted(progress, h));
        if self.roots.is_empty() {
            self.start_versions();
        }
    }

    /// Learn whether the bucket keeps versions (once per open cache) and, if it does, list
    /// them in the background; the figures come back as [`Msg::Versions`].
    fn start_versions(&mut self) {
        if let Some(t) = self.versions_task.take() {
            t.abort();
        }
        let (cache, tx) = (self.cache.clone(), self.tx.clone());
        let concurrency = self.concurrency.clamp(1, 32);
        self.versions_task = Some(tokio::spawn(async move {
            let state = cache.versioning().await;
            let keeps = matches!(&state, Ok(v) if v.keeps_versions());
            let _ = tx.send(Msg::Versions(VersionsUpdate::State(state)));
            if !keeps {
                return;
            }
            let mut last = Instant::now();
            let r = crate::storage::version_stats(cache.store().clone(), concurrency, |s| {
                if last.elapsed() >= Duration::from_millis(250) {
                    last = Instant::now();
                    let _ = tx.send(Msg::Versions(VersionsUpdate::Listing(*s)));
                }
            })
            .await;
            let _ = tx.send(Msg::Versions(VersionsUpdate::Listed(r)));
        }));
    }

    fn start_detail(&mut self, id: u32) {
        let cache = self.cache.clone();
        let index = self.opened.index.clone();
        let keys = self.keys.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let d = super::pane::details::load::load(cache, index, keys, id).await;
            let _ = tx.send(Msg::DetailLoaded(Box::new(d)));
        });
    }
}

fn input_task(tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(ev) = events.next().await {
            let msg = match ev {
                Ok(Event::Key(k)) => Msg::Key(k),
                Ok(Event::Mouse(m)) => Msg::Mouse(m),
                Ok(Event::Resize(_, _)) => Msg::Resize,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!("terminal input failed: {e}");
                    break;
                }
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
}

/// Restores the terminal however the loop ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        ratatui::restore();
    }
}

/// Run the dashboard until the user quits.
pub async fn run(opts: TuiOptions) -> Result<()> {
    // On roots the index holds a closure, not the cache: it is not kept.
    let opened = Arc::new(open_index(&opts.url, opts.persist && opts.roots.is_empty()));
    let (tx, mut rx) = unbounded_channel::<Msg>();
    let mut app = App::new(
        opened.index.clone(),
        AppOptions {
            read_only: opts.read_only,
            log_path: opts.log_path,
            warm: opened.loaded,
            signing_key: (!opts.push.keys.is_empty())
                .then(|| crate::jobs::sign::key_names(&opts.push.keys)),
            upstreams: opts.push.upstreams.describe_all(),
            ..AppOptions::new(&opts.url, opts.keymap, opts.theme)
        },
    );
    if let Some(w) = opened.warning.clone().or(opts.notice) {
        app.notify(super::app::Level::Warn, w);
    }
    let mut rt = Runtime {
        tx: tx.clone(),
        cache: opts.cache,
        keys: opts.keys,
        opened: opened.clone(),
        runner: Runner::new(),
        concurrency: opts.concurrency,
        jobs: Vec::new(),
        pending_detail: None,
        copies: Vec::new(),
        push: opts.push.clone(),
        versions_task: None,
        roots: opts.roots.clone(),
        upstream_task: None,
    };

    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let _guard = TerminalGuard;
    crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture).ok();
    // ratatui's hook restores the screen on a panic; mouse reporting must go off too.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        previous(info);
    }));
    input_task(tx.clone());

    if let Some(id) = app.list.selected {
        rt.run(Effect::LoadDetail(id));
    }
    rt.run(Effect::Scan);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    'outer: loop {
        if dirty {
            let wait = last_draw
                .map(|t| FRAME.saturating_sub(t.elapsed()))
                .unwrap_or_default();
            if wait.is_zero() {
                draw(&mut terminal, &app)?;
                for text in rt.copies.drain(..) {
                    let _ = tx.send(Msg::Copied(osc52(&text)));
                }
                last_draw = Some(Instant::now());
                dirty = false;
            }
        }
        let busy = app.scan.running || app.running_jobs() > 0;
        let mut timeout = if dirty {
            FRAME.saturating_sub(last_draw.map(|t| t.elapsed()).unwrap_or_default())
        } else if busy {
            TICK
        } else {
            Duration::from_secs(3600)
        };
        if let Some((_, at)) = rt.pending_detail {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        let first = tokio::time::timeout(timeout, rx.recv()).await;
        let mut msgs = Vec::new();
        match first {
            Ok(Some(m)) => msgs.push(m),
            Ok(None) => break,
            Err(_) if busy && !dirty => msgs.push(Msg::Tick),
            Err(_) => {}
        }
        drain(&mut rx, &mut msgs);
        for m in msgs {
            for fx in app.update(m) {
                if !rt.run(fx) {
                    break 'outer;
                }
            }
            dirty = true;
        }
        if let Some((id, at)) = rt.pending_detail
            && Instant::now() >= at
        {
            rt.pending_detail = None;
            rt.start_detail(id);
        }
        if app.quit {
            break;
        }
    }
    // Leave: stop jobs, keep what the scan learnt.
    for j in &rt.jobs {
        j.cancel.cancel();
    }
    drop(terminal);
    let save = tokio::task::spawn_blocking(move || opened.save());
    if let Ok(Err(e)) = save.await {
        tracing::warn!("index not saved: {e}");
    }
    Ok(())
}

fn drain(rx: &mut UnboundedReceiver<Msg>, msgs: &mut Vec<Msg>) {
    while msgs.len() < 10_000 {
        match rx.try_recv() {
            Ok(m) => msgs.push(m),
            Err(_) => break,
        }
    }
}

fn draw(terminal: &mut ratatui::DefaultTerminal, app: &App) -> Result<()> {
    let mut out = std::io::stdout();
    crossterm::queue!(out, crossterm::terminal::BeginSynchronizedUpdate).ok();
    terminal
        .draw(|f| super::app::draw(f, app))
        .context("drawing failed")?;
    crossterm::queue!(out, crossterm::terminal::EndSynchronizedUpdate).ok();
    out.flush().ok();
    Ok(())
}

/// Put text on the clipboard through the terminal (OSC 52; works over ssh and in tmux with
/// `set-clipboard on`).
fn osc52(text: &str) -> std::io::Result<()> {
    let b64 = crate::nix::hash::base64_encode(text.as_bytes());
    let mut out = std::io::stdout();
    write!(out, "\x1b]52;c;{b64}\x07").and_then(|_| out.flush())
}
