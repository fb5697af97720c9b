//! Progress on stderr, one mechanism for every command: an indicatif bar or spinner redrawn
//! a few times a second from the counters a core job, audit or scan publishes. Nothing is
//! drawn when stderr is not a terminal, and nothing ever goes to stdout, so pipes and
//! `--json` documents stay clean.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::audit::AuditProgress;
use crate::index::scan::ScanProgress;
use crate::jobs::{JobEvent, JobHandle, JobKind, JobNotify, JobState, Runner};

/// A progress display on stderr, fed by a task that reads counters; inert when stderr is not
/// a terminal. [`Progress::finish`] stops it and clears its line.
pub struct Progress {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Start drawing with `style`, calling `update` every `every` until it returns false.
    fn start(
        style: ProgressStyle,
        every: Duration,
        mut update: impl FnMut(&ProgressBar) -> bool + Send + 'static,
    ) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                task: None,
            };
        }
        let bar = ProgressBar::new(0);
        bar.set_style(style);
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if !update(&b) {
                    break;
                }
            }
        });
        Progress {
            bar: Some(bar),
            task: Some(task),
        }
    }

    /// A bar for a job: its kind, done/total, rate, ETA and the item at hand.
    pub fn job(job: Arc<JobHandle>) -> Progress {
        let style = ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▉ ");
        let kind = job.kind.as_str();
        let mut first = true;
        Progress::start(style, Duration::from_millis(100), move |b| {
            if first {
                b.set_prefix(kind);
                first = false;
            }
            let p = &job.progress;
            b.set_length(p.total.load(Ordering::Relaxed));
            b.set_position(p.done.load(Ordering::Relaxed));
            b.set_message(p.current());
            job.is_running()
        })
    }

    /// A spinner for an audit: `<what>: judged/listed paths` (`+` while listing goes on).
    pub fn audit(progress: Arc<AuditProgress>, what: &'static str) -> Progress {
        Progress::start(spinner(), Duration::from_millis(200), move |b| {
            let listed = progress.listed.load(Ordering::Relaxed);
            let done = progress.judged.load(Ordering::Relaxed);
            let more = if progress.listing_done.load(Ordering::Relaxed) {
                ""
            } else {
                "+"
            };
            b.set_message(format!("{what}: {done}/{listed}{more} paths"));
            b.tick();
            true
        })
    }

    /// A spinner for an index scan: narinfos listed and fetched so far.
    pub fn scan(progress: Arc<ScanProgress>) -> Progress {
        Progress::start(spinner(), Duration::from_millis(200), move |b| {
            b.set_message(format!(
                "scanning: {} narinfos listed, {} fetched",
                progress.listed.load(Ordering::Relaxed),
                progress.fetched.load(Ordering::Relaxed)
            ));
            b.tick();
            true
        })
    }

    /// Stop drawing and clear the line.
    pub fn finish(self) {
        if let Some(t) = self.task {
            t.abort();
        }
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// The style of the counters without a known total: a spinner and a message.
fn spinner() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Run `work` as a job with a progress bar (on a terminal) until it ends or ctrl-c cancels it.
/// Returns the job, how it ended and what `work` produced.
pub async fn run_job<T, F, Fut>(
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
    let bar = Progress::job(h.clone());
    let state = loop {
        tokio::select! {
            e = rx.recv() => match e {
                Some(JobEvent::Finished(_, s)) => break s,
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
