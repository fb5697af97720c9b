//! Information to read (the pins, for now): a title and lines, scrolled with the help keys.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::{Outcome, centered};
use crate::tui::pane::ctx::Ctx;

/// A key while an information overlay (`n` lines long) is open: scroll, or close.
pub(crate) fn key(scroll: &mut usize, n: usize, action: Option<Action>) -> Outcome {
    match action {
        Some(Action::Close) => return Outcome::Close,
        Some(Action::Down) => *scroll = (*scroll + 1).min(n.saturating_sub(1)),
        Some(Action::Up) => *scroll = scroll.saturating_sub(1),
        Some(Action::PageDown) => *scroll = (*scroll + 10).min(n.saturating_sub(1)),
        Some(Action::PageUp) => *scroll = scroll.saturating_sub(10),
        _ => {}
    }
    Outcome::Open
}

pub(crate) fn draw_info(
    buf: &mut Buffer,
    area: Rect,
    ctx: &Ctx,
    title: &str,
    lines: &[String],
    scroll: usize,
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
    let shown: Vec<Line> = lines
        .iter()
        .skip(scroll)
        .take(inner.height as usize)
        .map(|l| Line::raw(l.clone()))
        .collect();
    Paragraph::new(shown).render(inner, buf);
}
