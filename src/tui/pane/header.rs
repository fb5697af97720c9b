//! The header line: the cache, how many paths, whether the bucket keeps versions, a spinner
//! with the scan's counters while it runs, running jobs, and read-only mode. The versions'
//! state ([`Versions`]) lives here too; the overview shows the rest of it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::index::scan::{Phase, ScanProgress, ScanSummary};
use crate::storage::{StoreError, VersionStats, Versioning};
use crate::tui::msg::VersionsUpdate;
use crate::tui::pane::ctx::Ctx;
use crate::units::thousands;

/// The scan as the dashboard sees it (the header shows it).
#[derive(Default)]
pub struct Scan {
    /// Whether a scan runs.
    pub running: bool,
    /// The running (or last) scan's counters.
    pub progress: Option<Arc<ScanProgress>>,
    /// How the last scan went.
    pub last: Option<Result<ScanSummary, crate::index::scan::ScanError>>,
}

/// What the dashboard knows about the bucket's versions: whether it keeps them (learnt once
/// at start) and what a version listing found (again with each scan).
#[derive(Clone, Debug, Default)]
pub struct Versions {
    /// The versioning state, or why it is unknown; `None` until learnt.
    pub state: Option<Result<Versioning, StoreError>>,
    /// What the version listing found (running figures while [`Versions::listing`]), or why
    /// it failed; `None` when none was made (an unversioned bucket).
    pub stats: Option<Result<VersionStats, StoreError>>,
    /// Whether a version listing runs.
    pub listing: bool,
}

impl Versions {
    /// Take in what the runtime learnt.
    pub fn apply(&mut self, u: VersionsUpdate) {
        match u {
            VersionsUpdate::State(r) => {
                // The runtime lists the versions of a bucket that keeps them, next.
                self.listing = matches!(&r, Ok(v) if v.keeps_versions());
                if !self.listing {
                    // No listing follows: figures of an earlier one no longer hold.
                    self.stats = None;
                }
                self.state = Some(r);
            }
            VersionsUpdate::Listing(s) => {
                self.listing = true;
                self.stats = Some(Ok(s));
            }
            VersionsUpdate::Listed(r) => {
                self.listing = false;
                self.stats = Some(r);
            }
        }
    }

    /// The header's badge: `versioned` / `versioning suspended` when the bucket keeps
    /// versions, `versioning unknown` when it could not be learnt, nothing otherwise.
    pub fn badge(&self) -> Option<&'static str> {
        match &self.state {
            Some(Ok(v)) if v.keeps_versions() => Some(v.label()),
            Some(Err(_)) => Some("versioning unknown"),
            _ => None,
        }
    }
}

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

/// What the header says: the cache, how many paths, the scan, how many jobs run.
pub(crate) struct HeaderInfo<'a> {
    /// The cache URL.
    pub(crate) url: &'a str,
    /// Paths in the cache.
    pub(crate) paths: u64,
    /// The scan: whether one runs and its counters.
    pub(crate) scan: &'a Scan,
    /// Ticks seen (the spinner's frame).
    pub(crate) ticks: u64,
    /// Jobs (other than scans) still running.
    pub(crate) running_jobs: usize,
    /// Whether the bucket keeps versions.
    pub(crate) versions: &'a Versions,
    /// What the upstreams serve (a badge when the cache has upstreams).
    pub(crate) upstream: &'a crate::tui::pane::list::query::UpstreamMarks,
}

pub(crate) fn draw_header(buf: &mut Buffer, area: Rect, ctx: &Ctx, h: &HeaderInfo) {
    buf.set_style(area, ctx.theme.header());
    let live = h.paths;
    let mut spans = vec![
        Span::styled(
            " narscope ",
            ctx.theme.header().add_modifier(Modifier::BOLD),
        ),
        Span::raw("│ "),
        Span::raw(h.url.to_string()),
        Span::raw(" │ "),
        Span::raw(format!("{} paths", thousands(live))),
    ];
    if let Some(b) = h.versions.badge() {
        let st = if h.versions.state.as_ref().is_some_and(|r| r.is_ok()) {
            ctx.theme.status_warn
        } else {
            ctx.theme.dim
        };
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(b, st));
    }
    if let Some(b) = h.upstream.badge(live) {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(b, ctx.theme.dim));
    }
    if h.scan.running {
        let sp = SPINNER[(h.ticks as usize) % SPINNER.len()];
        let text = match &h.scan.progress {
            Some(p) => match p.phase() {
                Phase::Nars => format!(
                    " │ {sp} listing NARs: {}",
                    thousands(p.nars.load(Ordering::Relaxed))
                ),
                _ => {
                    let listed = p.listed.load(Ordering::Relaxed);
                    let to_fetch = p.to_fetch.load(Ordering::Relaxed);
                    let fetched = p.fetched.load(Ordering::Relaxed);
                    format!(
                        " │ {sp} scanning: {} listed, {}/{} fetched",
                        thousands(listed),
                        thousands(fetched),
                        thousands(to_fetch)
                    )
                }
            },
            None => format!(" │ {sp} scanning"),
        };
        spans.push(Span::styled(text, ctx.theme.status_warn));
    } else if let Some(Err(_)) = &h.scan.last {
        spans.push(Span::styled(" │ scan failed", ctx.theme.status_error));
    }
    let running = h.running_jobs;
    if running > 0 {
        spans.push(Span::raw(format!(" │ {running} job(s)")));
    }
    if ctx.read_only {
        spans.push(Span::styled(" │ read-only", ctx.theme.status_warn));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}
