//! The `:` command line while it is typed: its keys and its line in the footer. Enter hands
//! the text to [`App::command`], which parses and runs it (`app/command.rs`).

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::tui::app::App;
use crate::tui::input::{Edit, LineInput};
use crate::tui::msg::Effect;
use crate::tui::overlay::Overlay;

impl App {
    /// A key on the `:` line: edit it, run it on Enter, drop it on Esc.
    pub(crate) fn command_key(&mut self, mut input: LineInput, k: &KeyEvent, fx: &mut Vec<Effect>) {
        match input.key(k) {
            Edit::Submit => self.command(&input.text.clone(), fx),
            Edit::Cancel => {}
            Edit::Changed | Edit::Unchanged => self.overlay = Overlay::Command(input),
        }
    }
}

/// The `:` line being typed, drawn in the footer.
pub(crate) fn draw_line(buf: &mut Buffer, area: Rect, app: &App, input: &LineInput) {
    let line = Line::from(vec![
        Span::styled(":", app.theme.status_warn),
        Span::raw(input.text.clone()),
        Span::styled("█", app.theme.dim),
    ]);
    buf.set_line(area.x, area.y, &line, area.width);
}
