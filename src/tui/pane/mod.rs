//! The panes and the screen layout: a header line, the store-path list on the left (on top
//! when narrow), an inspector on the right (details and signatures, the overview, or the
//! jobs), and a footer line; overlays are drawn over them ([`super::overlay`]).
//!
//! The screen layout that places them is the app's (`app/draw.rs`); it records only where the
//! panes went ([`Areas`], for the mouse) and the window heights (through
//! [`crate::tui::scroll::Scroll`]). Only the visible rows of the list are built, so a million
//! rows draw as fast as a hundred.

pub mod ctx;
pub mod details;
pub mod footer;
pub mod header;
pub mod jobs;
pub mod list;
pub mod overview;
pub mod signatures;

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

use crate::tui::pane::ctx::{Ctx, Focus};

/// Where panes were drawn (for the mouse).
#[derive(Clone, Copy, Debug, Default)]
pub struct Areas {
    /// The list pane.
    pub list: Rect,
    /// The first row of the list (below the column header).
    pub list_rows_top: u16,
    /// The details pane (empty when not shown).
    pub details: Rect,
    /// The signatures pane (empty when not shown).
    pub signatures: Rect,
    /// The overview pane (empty when not shown).
    pub overview: Rect,
    /// The jobs pane (empty when not shown).
    pub jobs: Rect,
}

/// A pane's border and title, bold and in the focus colour when the pane has the keys.
pub(crate) fn pane<'a>(ctx: &Ctx, title: String, focus: Focus) -> Block<'a> {
    let focused = ctx.focus == focus;
    Block::default()
        .borders(Borders::ALL)
        .border_style(ctx.theme.border(focused))
        .title(Span::styled(
            title,
            ctx.theme.title.add_modifier(if focused {
                Modifier::BOLD
            } else {
                Modifier::empty()
            }),
        ))
}

/// A `label value` line with the label dimmed in a 12-character column.
pub(crate) fn kv<'a>(ctx: &Ctx, k: &str, v: impl Into<String>) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{k:<12}"), ctx.theme.dim),
        Span::raw(v.into()),
    ])
}
