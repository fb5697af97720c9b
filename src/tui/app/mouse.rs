//! The mouse: the wheel scrolls the pane under the pointer, a click focuses a pane and
//! selects a list row, using the rectangles the last frame recorded in [`Areas`].

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use crate::tui::app::{App, Focus};
use crate::tui::msg::Effect;
use crate::tui::overlay::Overlay;

impl App {
    pub(crate) fn on_mouse(&mut self, m: MouseEvent, fx: &mut Vec<Effect>) {
        if self.overlay != Overlay::None {
            return;
        }
        let a = self.areas.get();
        let pos = Position::new(m.column, m.row);
        let pane = [
            (a.list, Focus::List),
            (a.details, Focus::Details),
            (a.signatures, Focus::Signatures),
            (a.overview, Focus::Overview),
            (a.jobs, Focus::Jobs),
        ]
        .into_iter()
        .find(|(r, _)| r.contains(pos))
        .map(|(_, f)| f);
        match m.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let d = if m.kind == MouseEventKind::ScrollDown {
                    3
                } else {
                    -3
                };
                let prev = self.focus;
                if let Some(p) = pane {
                    self.focus = p;
                }
                self.move_by(d, fx);
                self.focus = prev;
            }
            MouseEventKind::Down(MouseButton::Left) => {
                let Some(p) = pane else { return };
                self.set_focus(p);
                if p == Focus::List && m.row >= a.list_rows_top {
                    let row = self.list.scroll.offset() + usize::from(m.row - a.list_rows_top);
                    if row < self.list.view.rows().len() {
                        self.select_pos(row, fx);
                    }
                }
            }
            _ => {}
        }
    }
}
