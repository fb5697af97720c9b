//! Background jobs: ids, progress, cancellation and per-item errors.
//!
//! A job is a future spawned on tokio with a [`JobHandle`]: a cancellation token and shared
//! [`JobProgress`] counters (items, bytes, the current item, errors). Jobs report through a
//! callback, so the same job runs under the dashboard (which redraws on each report) and the
//! CLI. A per-item failure is recorded and the job goes on; a panic or error of the job
//! itself ends it as failed, never takes the process down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub mod copy;
pub mod delete;
mod error;
pub mod pull;
pub mod push;
pub mod sign;
mod verify;

pub use error::{ErrorKind, JobError};
pub use verify::verify_contents;

/// A job's id, unique within a process.
pub type JobId = u64;

/// Most per-item errors a job keeps (the count goes on).
const MAX_ERRORS: usize = 1000;

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Download and check NARs against their narinfos.
    VerifyContents,
    /// (Re)build the local index from the cache.
    Scan,
    /// Add or remove signatures.
    Sign,
    /// Upload local store paths.
    Push,
    /// Download paths from the cache (and unpack or import them).
    Pull,
    /// Delete paths from the cache (`delete` or a garbage collection).
    Delete,
    /// Garbage collection (re-scan, re-plan, delete).
    Gc,
    /// Copy paths to another cache.
    Copy,
}

impl JobKind {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::VerifyContents => "verify",
            JobKind::Scan => "scan",
            JobKind::Sign => "sign",
            JobKind::Push => "push",
            JobKind::Pull => "pull",
            JobKind::Delete => "delete",
            JobKind::Gc => "gc",
            JobKind::Copy => "copy",
        }
    }
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// The job has not ended yet.
    Running,
    /// Finished; some items may have failed (see the progress).
    Done,
    /// Stopped by an error of its own.
    Failed(String),
    /// The job stopped because it was cancelled; what it did until then stays done.
    Cancelled,
}

/// Live counters of a job.
#[derive(Debug, Default)]
pub struct JobProgress {
    /// Items to do (0 when unknown).
    pub total: AtomicU64,
    /// Items done (failed ones included).
    pub done: AtomicU64,
    /// Items that failed.
    pub failed: AtomicU64,
    /// Bytes to transfer (0 when unknown).
    pub bytes_total: AtomicU64,
    /// Bytes uploaded, downloaded or hashed so far.
    pub bytes_done: AtomicU64,
    current: Mutex<String>,
    errors: Mutex<Vec<String>>,
}

impl JobProgress {
    /// Record a failed item.
    pub fn error(&self, e: impl Into<String>) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < MAX_ERRORS {
            errs.push(e.into());
        }
    }

    /// Set what is being worked on.
    pub fn set_current(&self, what: impl Into<String>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = what.into();
    }

    /// The errors kept so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What is being worked on.
    pub fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A running or finished job.
#[derive(Debug)]
pub struct JobHandle {
    /// The job's id, unique within this runner.
    pub id: JobId,
    /// What it does.
    pub kind: JobKind,
    /// A one-line description.
    pub title: String,
    /// The job's live counters, read by the front ends when they draw.
    pub progress: Arc<JobProgress>,
    /// Cancelling this token asks the job to stop at its next safe point.
    pub cancel: CancellationToken,
    started: Instant,
    finished: Mutex<Option<(Instant, JobState)>>,
    failure: Mutex<Option<ErrorKind>>,
    running: AtomicBool,
}

impl JobHandle {
    /// What kind of failure ended the job, when its work returned an error (`None` while it
    /// runs, and when it ended otherwise: done, cancelled or panicked).
    pub fn failure_kind(&self) -> Option<ErrorKind> {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How it stands.
    pub fn state(&self) -> JobState {
        match &*self.finished.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((_, s)) => s.clone(),
            None => JobState::Running,
        }
    }

    /// Whether it is still running.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Time spent so far (or in all, once finished).
    pub fn elapsed(&self) -> Duration {
        match &*self.finished.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((t, _)) => t.duration_since(self.started),
            None => self.started.elapsed(),
        }
    }

    /// Items per second so far.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed().as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.progress.done.load(Ordering::Relaxed) as f64 / secs
    }

    /// Estimated time left, when the total is known and something is done.
    pub fn eta(&self) -> Option<Duration> {
        let total = self.progress.total.load(Ordering::Relaxed);
        let done = self.progress.done.load(Ordering::Relaxed);
        let rate = self.rate();
        (self.is_running() && total > done && rate > 0.0)
            .then(|| Duration::from_secs_f64((total - done) as f64 / rate))
    }

    fn finish(&self, state: JobState) {
        *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), state));
        self.running.store(false, Ordering::Relaxed);
    }
}

/// What a job says while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// Counters moved (throttled by the job to about 10 per second).
    Progress(JobId),
    /// The job ended.
    Finished(JobId, JobState),
}

/// Receives job events.
pub type JobNotify = Arc<dyn Fn(JobEvent) + Send + Sync>;

/// Starts jobs and hands out ids.
#[derive(Default)]
pub struct Runner {
    next: AtomicU64,
}

impl Runner {
    /// A runner with no jobs yet; ids start at 1.
    pub fn new() -> Runner {
        Runner {
            next: AtomicU64::new(1),
        }
    }

    /// Spawn `work` as a job. It gets the handle (for progress and the cancellation token);
    /// its `Err` ends the job as failed; cancellation is noticed at once.
    pub fn spawn<F, Fut>(
        &self,
        kind: JobKind,
        title: impl Into<String>,
        notify: JobNotify,
        work: F,
    ) -> Arc<JobHandle>
    where
        F: FnOnce(Arc<JobHandle>, JobNotify) -> Fut,
        Fut: std::future::Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed).max(1);
        let handle = Arc::new(JobHandle {
            id,
            kind,
            title: title.into(),
            progress: Arc::new(JobProgress::default()),
            cancel: CancellationToken::new(),
            started: Instant::now(),
            finished: Mutex::new(None),
            failure: Mutex::new(None),
            running: AtomicBool::new(true),
        });
        let fut = work(handle.clone(), notify.clone());
        let h = handle.clone();
        tokio::spawn(async move {
            let cancel = h.cancel.clone();
            let task = tokio::spawn(fut);
            let abort = task.abort_handle();
            let state = tokio::select! {
                r = task => match r {
                    Ok(Ok(())) => JobState::Done,
                    Ok(Err(e)) => {
                        *h.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.kind());
                        JobState::Failed(e.to_string())
                    }
                    Err(e) if e.is_panic() => JobState::Failed(format!("the job panicked: {e}")),
                    Err(e) => JobState::Failed(e.to_string()),
                },
                _ = cancel.cancelled() => {
                    abort.abort();
                    JobState::Cancelled
                }
            };
            h.finish(state.clone());
            notify(JobEvent::Finished(h.id, state));
        });
        handle
    }
}

/// Calls `notify` at most every 100 ms.
pub struct Throttle {
    last: Mutex<Option<Instant>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            last: Mutex::new(None),
        }
    }
}

impl Throttle {
    /// Whether enough time passed since the last `true`.
    pub fn ready(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100)) {
            *last = Some(now);
            true
        } else {
            false
        }
    }
}

/// The cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Levels of a set of paths by their references among themselves: `refs[i]` are the indices
/// path `i` references (deduplicated, without itself). Level 0 references nothing in the set,
/// level n only paths of lower levels, so writing level after level puts references before
/// referrers (Nix's upload order). Iterative (Kahn's algorithm), so a deep chain needs no
/// stack; paths on a reference cycle, which Nix does not allow beyond self-references, form a
/// last level.
pub(crate) fn reference_levels(refs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = refs.len();
    let mut waiting: Vec<usize> = refs.iter().map(Vec::len).collect();
    let mut referrers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, rs) in refs.iter().enumerate() {
        for &j in rs {
            referrers[j].push(i);
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut placed = 0;
    while !current.is_empty() {
        placed += current.len();
        let mut next = Vec::new();
        for &j in &current {
            for &i in &referrers[j] {
                waiting[i] -= 1;
                if waiting[i] == 0 {
                    next.push(i);
                }
            }
        }
        out.push(std::mem::replace(&mut current, next));
    }
    if placed < n {
        out.push((0..n).filter(|&i| waiting[i] > 0).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_finish_fail_and_cancel() {
        let runner = Runner::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let notify: JobNotify = Arc::new(move |e| {
            let _ = tx.send(e);
        });
        let ok = runner.spawn(JobKind::Scan, "ok", notify.clone(), |h, _| async move {
            h.progress.total.store(2, Ordering::Relaxed);
            h.progress.done.store(2, Ordering::Relaxed);
            h.progress.error("item 2 failed");
            Ok(())
        });
        let bad = runner.spawn(JobKind::Scan, "bad", notify.clone(), |_, _| async move {
            Err(JobError::Failed("no such bucket".to_string()))
        });
        let slow = runner.spawn(JobKind::Scan, "slow", notify.clone(), |_, _| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        let boom = runner.spawn(JobKind::Scan, "boom", notify, |_, _| async move {
            if std::env::var_os("NARSCOPE_NEVER_SET_THIS").is_none() {
                panic!("boom");
            }
            Ok(())
        });
        slow.cancel.cancel();
        let mut ended = std::collections::HashMap::new();
        while ended.len() < 4 {
            if let Some(JobEvent::Finished(id, s)) = rx.recv().await {
                ended.insert(id, s);
            }
        }
        assert_eq!(ended[&ok.id], JobState::Done);
        assert_eq!(ok.progress.errors(), vec!["item 2 failed".to_string()]);
        assert_eq!(ended[&bad.id], JobState::Failed("no such bucket".into()));
        assert_eq!(
            bad.failure_kind(),
            Some(ErrorKind::Failed),
            "the kind is kept"
        );
        assert_eq!(ok.failure_kind(), None);
        assert_eq!(boom.failure_kind(), None, "a panic is no error of the work");
        assert_eq!(ended[&slow.id], JobState::Cancelled);
        assert!(matches!(&ended[&boom.id], JobState::Failed(m) if m.contains("panicked")));
        assert!(!slow.is_running());
        assert_ne!(ok.id, bad.id);
    }
}
