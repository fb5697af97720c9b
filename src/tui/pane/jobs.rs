//! The jobs pane: every job with a gauge, counts, rate or duration and its state; the
//! selected one also shows what it is doing now and its errors.

use crate::jobs::JobState;
use crate::tui::app::{App, Focus};
use crate::tui::pane::pane;
use crate::units::{human_size, thousands};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use std::sync::atomic::Ordering;

pub(crate) fn draw_jobs(buf: &mut Buffer, area: Rect, app: &App) {
    let block = pane(app, " 5 Jobs ".into(), Focus::Jobs);
    let inner = block.inner(area);
    block.render(area, buf);
    if app.jobs.is_empty() {
        buf.set_string(inner.x + 1, inner.y, "no jobs yet", app.theme.dim);
        return;
    }
    let mut lines = Vec::new();
    let gauge_w = (inner.width as usize).saturating_sub(50).clamp(6, 30);
    for (i, j) in app.jobs.iter().enumerate() {
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
            JobState::Running => ("running".to_string(), app.theme.status_warn),
            JobState::Done if failed > 0 => {
                (format!("done, {failed} failed"), app.theme.status_error)
            }
            JobState::Done => ("done".to_string(), app.theme.trusted),
            JobState::Failed(e) => (format!("failed: {e}"), app.theme.status_error),
            JobState::Cancelled => ("cancelled".to_string(), app.theme.dim),
        };
        let sel = app.focus == Focus::Jobs && i == app.job_cursor;
        let base = if sel {
            app.theme.selected()
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
            Span::styled(format!("  {gauge} "), app.theme.gauge),
            Span::raw(format!("{counts}{extra}  ")),
            Span::styled(state, st),
        ]));
        if sel {
            let cur = p.current();
            if !cur.is_empty() {
                lines.push(Line::styled(format!("  now: {cur}"), app.theme.dim));
            }
            for e in p.errors().iter().take(50) {
                lines.push(Line::styled(format!("  ✗ {e}"), app.theme.status_error));
            }
        }
    }
    Paragraph::new(lines)
        .wrap(ratatui::widgets::Wrap { trim: false })
        .render(inner, buf);
}
