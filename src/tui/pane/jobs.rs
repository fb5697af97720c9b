//! The jobs pane: every job with a gauge, counts, rate or duration and its state; the
//! selected one also shows what it is doing now and its errors. [`Jobs`] is its state: the
//! reducer adds jobs and moves the cursor through it, the runtime updates the jobs' progress
//! counters, and drawing reads them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::jobs::{JobHandle, JobId, JobKind, JobState};
use crate::tui::pane::ctx::{Ctx, Focus};
use crate::tui::pane::pane;
use crate::units::{human_size, thousands};

/// The jobs started this session and the jobs pane's cursor.
#[derive(Default)]
pub struct Jobs {
    /// Every job started this session (scans too), oldest first.
    pub list: Vec<Arc<JobHandle>>,
    /// The job under the cursor.
    pub cursor: usize,
}

impl Jobs {
    /// Add a job; `select` puts the cursor on it.
    pub fn push(&mut self, job: Arc<JobHandle>, select: bool) {
        self.list.push(job);
        if select {
            self.cursor = self.list.len() - 1;
        }
    }

    /// The job with this id.
    pub fn get(&self, id: JobId) -> Option<&Arc<JobHandle>> {
        self.list.iter().find(|j| j.id == id)
    }

    /// How many jobs other than scans are still running (quitting asks first then).
    pub fn running(&self) -> usize {
        self.list
            .iter()
            .filter(|j| j.is_running() && j.kind != JobKind::Scan)
            .count()
    }

    /// The job Cancel stops: the one under the cursor when the pane has the focus (if it
    /// runs), else the newest running one.
    pub fn to_cancel(&self, focused: bool) -> Option<&Arc<JobHandle>> {
        if focused {
            self.list.get(self.cursor).filter(|j| j.is_running())
        } else {
            self.list.iter().rev().find(|j| j.is_running())
        }
    }

    /// Move the cursor by `delta` jobs, staying on the list.
    pub fn move_by(&mut self, delta: isize) {
        let n = self.list.len();
        if n > 0 {
            let c = self.cursor as isize + delta;
            self.cursor = c.clamp(0, n as isize - 1) as usize;
        }
    }

    /// Put the cursor on the last job (`end`) or the first.
    pub fn move_to_end(&mut self, end: bool) {
        self.cursor = if end {
            self.list.len().saturating_sub(1)
        } else {
            0
        };
    }
}

/// Draw the jobs pane into `area`.
impl Jobs {
    /// Draw the jobs, newest last, the one under the cursor highlighted when focused.
    pub(crate) fn draw(&self, buf: &mut Buffer, area: Rect, ctx: &Ctx) {
        let block = pane(ctx, " 5 Jobs ".into(), Focus::Jobs);
        let inner = block.inner(area);
        block.render(area, buf);
        if self.list.is_empty() {
            buf.set_string(inner.x + 1, inner.y, "no jobs yet", ctx.theme.dim);
            return;
        }
        let mut lines = Vec::new();
        let gauge_w = (inner.width as usize).saturating_sub(50).clamp(6, 30);
        for (i, j) in self.list.iter().enumerate() {
            let p = &j.progress;
            let total = p.total.load(Ordering::Relaxed);
            let done = p.done.load(Ordering::Relaxed);
            let failed = p.failed.load(Ordering::Relaxed);
            let frac = if total > 0 {
                done as f64 / total as f64
            } else {
                0.0
            };
            let filled = ((frac * gauge_w as f64).round() as usize).min(gauge_w);
            let gauge = format!("▕{}{}▏", "█".repeat(filled), "░".repeat(gauge_w - filled));
            let (state, st) = match j.state() {
                JobState::Running => ("running".to_string(), ctx.theme.status_warn),
                JobState::Done if failed > 0 => {
                    (format!("done, {failed} failed"), ctx.theme.status_error)
                }
                JobState::Done => ("done".to_string(), ctx.theme.trusted),
                JobState::Failed(e) => (format!("failed: {e}"), ctx.theme.status_error),
                JobState::Cancelled => ("cancelled".to_string(), ctx.theme.dim),
            };
            let sel = ctx.focus == Focus::Jobs && i == self.cursor;
            let base = if sel {
                ctx.theme.selected()
            } else {
                Style::default()
            };
            let counts = if total > 0 {
                format!("{}/{}", thousands(done), thousands(total))
            } else {
                thousands(done)
            };
            let mut extra = if j.is_running() {
                let mut e = format!(" {:.1}/s", j.rate());
                if let Some(eta) = j.eta() {
                    e.push_str(&format!(" ETA {}s", eta.as_secs()));
                }
                e
            } else {
                format!(" in {:.1} s", j.elapsed().as_secs_f64())
            };
            let bytes = p.bytes_done.load(Ordering::Relaxed);
            if bytes > 0 {
                extra.push_str(&format!(" {}", human_size(bytes)));
            }
            lines.push(Line::from(vec![
                Span::styled(
                    format!("#{} {} ", j.id, j.kind.as_str()),
                    base.add_modifier(Modifier::BOLD),
                ),
                Span::styled(j.title.clone(), base),
            ]));
            lines.push(Line::from(vec![
                Span::styled(format!("  {gauge} "), ctx.theme.gauge),
                Span::raw(format!("{counts}{extra}  ")),
                Span::styled(state, st),
            ]));
            if sel {
                let cur = p.current();
                if !cur.is_empty() {
                    lines.push(Line::styled(format!("  now: {cur}"), ctx.theme.dim));
                }
                for e in p.errors().iter().take(50) {
                    lines.push(Line::styled(format!("  ✗ {e}"), ctx.theme.status_error));
                }
            }
        }
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .render(inner, buf);
    }
}
