//! The header line: the cache, how many paths, a spinner with the scan's counters while it
//! runs, running jobs, and read-only mode.

use std::sync::atomic::Ordering;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::index::scan::Phase;
use crate::tui::app::App;
use crate::units::thousands;

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

pub(crate) fn draw_header(buf: &mut Buffer, area: Rect, app: &App) {
    buf.set_style(area, app.theme.header());
    let live = app.view.total() as u64;
    let mut spans = vec![
        Span::styled(
            " narscope ",
            app.theme.header().add_modifier(Modifier::BOLD),
        ),
        Span::raw("│ "),
        Span::raw(app.url.clone()),
        Span::raw(" │ "),
        Span::raw(format!("{} paths", thousands(live))),
    ];
    if app.scan.running {
        let sp = SPINNER[(app.ticks as usize) % SPINNER.len()];
        let text = match &app.scan.progress {
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
        spans.push(Span::styled(text, app.theme.status_warn));
    } else if let Some(Err(_)) = &app.scan.last {
        spans.push(Span::styled(" │ scan failed", app.theme.status_error));
    }
    let running = app.running_jobs();
    if running > 0 {
        spans.push(Span::raw(format!(" │ {running} job(s)")));
    }
    if app.read_only {
        spans.push(Span::styled(" │ read-only", app.theme.status_warn));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}
