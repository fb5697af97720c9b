//! Overlays drawn over the panes; while one is open it takes every key. [`Overlay`] lists
//! them; `draw` and `App::overlay_key` dispatch to the file of each, which holds its
//! state, its keys and its drawing.

pub mod command;
pub mod confirm;
pub mod gc;
pub mod help;
pub mod info;

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::tui::app::App;
use crate::tui::input::LineInput;
use crate::tui::keymap::{Key, Mode};
use crate::tui::msg::Effect;
use crate::tui::overlay::confirm::Confirm;
use crate::tui::overlay::gc::GcView;
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
    /// The `:` command line.
    Command(LineInput),
    /// A confirmation dialog for something that changes the cache (or quits).
    Confirm(Confirm),
    /// The garbage-collection plan.
    Gc(GcView),
    /// Information to read (closes with the help keys).
    Info {
        /// What the overlay is about, in its border.
        title: String,
        /// The text, one entry per line.
        lines: Vec<String>,
        /// First line shown.
        scroll: usize,
    },
}

/// Draw the open overlay, if any, over the whole `area`.
pub(crate) fn draw(buf: &mut Buffer, area: Rect, app: &App) {
    match &app.overlay {
        Overlay::None | Overlay::Command(_) => {}
        Overlay::Help { scroll } => help::draw_help(buf, area, app, scroll),
        Overlay::Confirm(c) => confirm::draw_confirm(buf, area, app, c),
        Overlay::Gc(v) => gc::draw::draw_gc(buf, area, app, v),
        Overlay::Info {
            title,
            lines,
            scroll,
        } => info::draw_info(buf, area, app, title, lines, *scroll),
    }
}

impl App {
    /// A key while `overlay` is open (taken out of the state; each handler puts it back
    /// unless the key closes it).
    pub(crate) fn overlay_key(
        &mut self,
        overlay: Overlay,
        k: &KeyEvent,
        key: Option<Key>,
        fx: &mut Vec<Effect>,
    ) {
        match overlay {
            Overlay::None => {}
            Overlay::Help { scroll } => self.help_key(scroll, key),
            Overlay::Info {
                title,
                lines,
                scroll,
            } => self.info_key(title, lines, scroll, key),
            Overlay::Gc(v) => {
                let action = key.and_then(|k| self.keymap.action(Mode::Gc, &k));
                self.gc_key(v, action, fx);
            }
            Overlay::Command(input) => self.command_key(input, k, fx),
            Overlay::Confirm(c) => self.confirm_key(c, key, fx),
        }
    }
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
