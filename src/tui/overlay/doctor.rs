//! The bucket doctor's findings (`:doctor`, or its key): worst first, a symbol per severity,
//! the fix indented below; scrolled with the help keys. The checks run off the UI thread
//! (`Effect::Doctor`); until they answer the overlay says so.

use std::sync::Arc;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::doctor::{Report, Severity};
use crate::index::RowStatus;
use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::centered;
use crate::tui::pane::ctx::Ctx;
use crate::tui::scroll::Scroll;

/// The doctor overlay's state.
#[derive(Clone, Debug)]
pub struct DoctorView {
    /// The findings, once the checks have run (`None`: still running).
    pub report: Option<Arc<Report>>,
    /// The checks could not run at all: why.
    pub error: Option<String>,
    /// The first line shown and the window's height.
    pub scroll: Scroll,
}

impl Default for DoctorView {
    fn default() -> Self {
        DoctorView {
            report: None,
            error: None,
            scroll: Scroll::new(10),
        }
    }
}

impl PartialEq for DoctorView {
    fn eq(&self, other: &Self) -> bool {
        let same_report = match (&self.report, &other.report) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_report && self.error == other.error && self.scroll == other.scroll
    }
}

impl Eq for DoctorView {}

/// The overlay's lines with their severity (for the colour of the symbol): worst first.
pub fn doctor_lines(view: &DoctorView) -> Vec<(Option<Severity>, String)> {
    if let Some(e) = &view.error {
        return vec![(
            Some(Severity::Error),
            format!("the doctor could not run: {e}"),
        )];
    }
    let Some(r) = &view.report else {
        return vec![(None, "checking the bucket…".to_string())];
    };
    let (ok, info, warn, err) = r.counts();
    let mut out = vec![(
        None,
        format!("{err} errors, {warn} warnings, {info} notes, {ok} ok"),
    )];
    let mut sorted: Vec<_> = r.findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in sorted {
        out.push((
            Some(f.severity),
            format!("{} [{}] {}", f.severity.symbol(), f.check, f.summary),
        ));
        if let Some(fix) = &f.fix {
            let mut lines = fix.lines();
            if let Some(first) = lines.next() {
                out.push((None, format!("    fix: {first}")));
            }
            out.extend(lines.map(|l| (None, format!("      {l}"))));
        }
    }
    let unprobed = r
        .findings
        .iter()
        .any(|f| f.check == "conditional_writes" && f.summary == "not probed");
    if unprobed {
        out.push((
            None,
            "(the conditional-write probe writes: run `narscope doctor` for it)".to_string(),
        ));
    }
    out
}

/// Draws the overlay.
pub(crate) fn draw_doctor(buf: &mut Buffer, area: Rect, ctx: &Ctx, view: &DoctorView) {
    let r = centered(area, 90, 80, 50, 8);
    Clear.render(r, buf);
    let close = ctx.keymap.first(Mode::Help, Action::Close);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(ctx.theme.border(true))
        .title(format!(" Bucket doctor ({close} closes) "));
    let inner = block.inner(r);
    block.render(r, buf);
    let lines = doctor_lines(view);
    let top = view.scroll.view(lines.len(), inner.height as usize);
    let shown: Vec<Line> = lines
        .into_iter()
        .skip(top)
        .take(inner.height as usize)
        .map(|(sev, text)| match sev {
            Some(s) => Line::from(vec![Span::styled(text, severity_style(ctx, s))]),
            None => Line::raw(text),
        })
        .collect();
    Paragraph::new(shown).render(inner, buf);
}

fn severity_style(ctx: &Ctx, s: Severity) -> Style {
    match s {
        Severity::Error => ctx.theme.danger(),
        Severity::Warning => ctx.theme.status(RowStatus::Untrusted),
        Severity::Info | Severity::Ok => Style::default(),
    }
}
