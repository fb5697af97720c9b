//! Overlays drawn over the panes; while one is open it takes every key. [`Overlay`] lists
//! them; the file of each holds its state, its keys (a `key` function that says what the app
//! must do, as an [`Outcome`] or an enum beside it) and its drawing. The app dispatches to
//! them (`app/draw.rs`, `app/overlays.rs`); nothing here knows the app.

pub mod confirm;
pub mod doctor;
pub mod gc;
pub mod help;
pub mod info;
pub mod plans;
pub mod space;

use ratatui::layout::Rect;

use crate::tui::input::LineInput;
use crate::tui::overlay::confirm::Confirm;
use crate::tui::overlay::doctor::DoctorView;
use crate::tui::overlay::gc::GcView;
use crate::tui::overlay::plans::PlansView;
use crate::tui::overlay::space::SpaceView;
use crate::tui::scroll::Scroll;

/// An overlay on top of the panes; it takes the keys while open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// No overlay: keys go to the panes.
    None,
    /// Help, scrolled within its lines.
    Help {
        /// The first line shown and the window's height.
        scroll: Scroll,
    },
    /// The `:` command line: [`LineInput::key`] edits it, the app runs it on Enter
    /// (`app/command/`), the footer draws it.
    Command(LineInput),
    /// A confirmation dialog for something that changes the cache (or quits).
    Confirm(Confirm),
    /// The garbage-collection plan.
    Gc(GcView),
    /// The bucket doctor's findings (scrolled with the help keys).
    Doctor(DoctorView),
    /// The past deletion plans of a versioned bucket (keys of the gc view).
    Plans(PlansView),
    /// The space view: packages, bytes over time, biggest closures (it takes the screen
    /// between the header and the footer).
    Space(SpaceView),
    /// Information to read (closes with the help keys).
    Info {
        /// What the overlay is about, in its border.
        title: String,
        /// The text, one entry per line.
        lines: Vec<String>,
        /// The first line shown and the window's height.
        scroll: Scroll,
    },
}

/// What a key did to an overlay that decides nothing but whether it stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The overlay stays, with its new state.
    Open,
    /// The key closed it.
    Close,
}

pub(crate) fn centered(area: Rect, w_pct: u16, h_pct: u16, min_w: u16, min_h: u16) -> Rect {
    let w = (area.width * w_pct / 100).max(min_w).min(area.width);
    let h = (area.height * h_pct / 100).max(min_h).min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Clears `area` and draws a focused border titled `title` around it; returns the inside.
pub(crate) fn frame(
    buf: &mut ratatui::buffer::Buffer,
    area: Rect,
    theme: &crate::tui::theme::Theme,
    title: String,
) -> Rect {
    use ratatui::widgets::{Block, Borders, Clear, Widget};
    Clear.render(area, buf);
    let st = theme.border(true);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(st)
        .title(ratatui::text::Span::styled(title, st));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}
