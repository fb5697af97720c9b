//! The `:` command line while it is typed: its line in the footer. Its keys are
//! [`LineInput::key`]; on Enter the app parses and runs the text (`app/command/`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::tui::input::LineInput;
use crate::tui::pane::ctx::Ctx;

/// The `:` line being typed, drawn in the footer.
pub(crate) fn draw_line(buf: &mut Buffer, area: Rect, ctx: &Ctx, input: &LineInput) {
    let line = Line::from(vec![
        Span::styled(":", ctx.theme.status_warn),
        Span::raw(input.text.clone()),
        Span::styled("█", ctx.theme.dim),
    ]);
    buf.set_line(area.x, area.y, &line, area.width);
}
