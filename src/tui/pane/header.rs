//! The header line: the cache, how many paths, a spinner with the scan's counters while it
//! runs, running jobs, and read-only mode.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::index::scan::{Phase, ScanProgress, ScanSummary};
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
