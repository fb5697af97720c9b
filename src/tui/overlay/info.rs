//! Information to read (the pins, for now): a title and lines, scrolled with the help keys.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::centered;
use crate::tui::pane::ctx::Ctx;
use crate::tui::scroll::Scroll;

/// An information overlay: its keys are help's ([`super::help::key`]), one scroll rule.
pub(crate) fn draw_info(
    buf: &mut Buffer,
    area: Rect,
    ctx: &Ctx,
    title: &str,
    lines: &[String],
    scroll: &Scroll,
) {
    let r = centered(area, 75, 70, 50, 8);
    Clear.render(r, buf);
    let close = ctx.keymap.first(Mode::Help, Action::Close);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(ctx.theme.border(true))
        .title(format!(" {title} ({close} closes) "));
    let inner = block.inner(r);
    block.render(r, buf);
    let top = scroll.view(lines.len(), inner.height as usize);
    let shown: Vec<Line> = lines
        .iter()
        .skip(top)
        .take(inner.height as usize)
        .map(|l| Line::raw(l.clone()))
        .collect();
    Paragraph::new(shown).render(inner, buf);
}
