//! The signatures pane: the verdict with its reasons, each Sig line with what checking it
//! under the trusted keys gave, and the fingerprint that was signed.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::index::RowStatus;
use crate::tui::pane::ctx::{Ctx, Focus};
use crate::tui::pane::details::load::Detail;
use crate::tui::pane::pane;
use crate::tui::scroll::Scroll;
use crate::tui::theme::status_symbol;

/// The signatures of `detail` (the selected row's, once loaded), in the window `scroll` keeps.
pub(crate) fn draw_signatures(
    buf: &mut Buffer,
    area: Rect,
    ctx: &Ctx,
    detail: Option<&Detail>,
    scroll: &Scroll,
) {
    let block = pane(ctx, " 3 Signatures ".into(), Focus::Signatures);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(d) = detail else {
        return;
    };
    let status = RowStatus::from(d.status);
    let mut lines = vec![Line::from(vec![Span::styled(
        format!("{} {}", status_symbol(status), status.as_str()),
        ctx.theme.status(status),
    )])];
    for r in &d.reasons {
        lines.push(Line::raw(format!("  {r}")));
    }
    if d.sigs.is_empty() {
        lines.push(Line::styled("no Sig lines", ctx.theme.dim));
    }
    for s in &d.sigs {
        let (sym, st) = if s.valid {
            ("✓", ctx.theme.status(RowStatus::Trusted))
        } else if !s.trusted_key {
            ("?", ctx.theme.status(RowStatus::Untrusted))
        } else {
            ("✗", ctx.theme.status(RowStatus::Invalid))
        };
        let what = if s.trusted_key {
            format!("trusted key: {}", s.outcome)
        } else if s.outcome.starts_with("malformed") {
            s.outcome.clone()
        } else {
            "not a trusted key (not checked)".to_string()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{sym} "), st),
            Span::styled(
                s.key_name.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("  {what}")),
        ]));
    }
    if let Some(fp) = &d.fingerprint {
        lines.push(Line::styled("fingerprint:", ctx.theme.dim));
        // Wrap by hand: the fingerprint has no spaces.
        let w = inner.width.saturating_sub(2).max(10) as usize;
        let chars: Vec<char> = fp.chars().collect();
        for chunk in chars.chunks(w) {
            lines.push(Line::raw(format!("  {}", chunk.iter().collect::<String>())));
        }
    }
    let top = scroll.view(lines.len(), inner.height as usize);
    Paragraph::new(lines)
        .scroll((top.min(u16::MAX as usize) as u16, 0))
        .render(inner, buf);
}
