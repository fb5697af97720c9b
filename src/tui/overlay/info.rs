//! Information to read (the pins, for now): a title and lines, scrolled with the help keys.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::tui::app::App;
use crate::tui::keymap::{Action, Key, Mode};
use crate::tui::overlay::Overlay;
use crate::tui::overlay::centered;

impl App {
    /// A key while an information overlay is open: scroll within its lines, or close.
    pub(crate) fn info_key(
        &mut self,
        title: String,
        lines: Vec<String>,
        mut scroll: usize,
        key: Option<Key>,
    ) {
        match key.and_then(|k| self.keymap.action(Mode::Help, &k)) {
            Some(Action::Close) => return,
            Some(Action::Down) => scroll = (scroll + 1).min(lines.len().saturating_sub(1)),
            Some(Action::Up) => scroll = scroll.saturating_sub(1),
            Some(Action::PageDown) => scroll = (scroll + 10).min(lines.len().saturating_sub(1)),
            Some(Action::PageUp) => scroll = scroll.saturating_sub(10),
            _ => {}
        }
        self.overlay = Overlay::Info {
            title,
            lines,
            scroll,
        };
    }
}

pub(crate) fn draw_info(
    buf: &mut Buffer,
    area: Rect,
    app: &App,
    title: &str,
    lines: &[String],
    scroll: usize,
) {
    let r = centered(area, 75, 70, 50, 8);
    Clear.render(r, buf);
    let close = app.keymap.first(Mode::Help, Action::Close);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(true))
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
