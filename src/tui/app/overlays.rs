//! Keys while an overlay is open: each overlay's `key` says what it wants (stay, close,
//! confirm…), and this file carries it out on the app.

use crossterm::event::KeyEvent;

use crate::tui::app::{App, Level};
use crate::tui::input::{Edit, LineInput};
use crate::tui::keymap::{Key, Mode};
use crate::tui::msg::Effect;
use crate::tui::overlay::confirm::{Answer, Confirm};
use crate::tui::overlay::{Outcome, Overlay, help};

impl App {
    /// A key while `overlay` is open (taken out of the state; it is put back unless the key
    /// closes it).
    pub(crate) fn overlay_key(
        &mut self,
        overlay: Overlay,
        k: &KeyEvent,
        key: Option<Key>,
        fx: &mut Vec<Effect>,
    ) {
        match overlay {
            Overlay::None => {}
            Overlay::Help { mut scroll } => {
                let n = help::help_lines(&self.ctx()).len();
                let action = key.and_then(|k| self.keymap.action(Mode::Help, &k));
                if help::key(&mut scroll, n, action) == Outcome::Open {
                    self.overlay = Overlay::Help { scroll };
                }
            }
            Overlay::Info {
                title,
                lines,
                mut scroll,
            } => {
                let action = key.and_then(|k| self.keymap.action(Mode::Help, &k));
                if help::key(&mut scroll, lines.len(), action) == Outcome::Open {
                    self.overlay = Overlay::Info {
                        title,
                        lines,
                        scroll,
                    };
                }
            }
            Overlay::Doctor(mut v) => {
                let n = crate::tui::overlay::doctor::doctor_lines(&v).len();
                let action = key.and_then(|k| self.keymap.action(Mode::Help, &k));
                if help::key(&mut v.scroll, n, action) == Outcome::Open {
                    self.overlay = Overlay::Doctor(v);
                }
            }
            Overlay::Plans(v) => {
                let action = key.and_then(|k| self.keymap.action(Mode::Gc, &k));
                self.plans_key(v, action);
            }
            Overlay::Gc(v) => {
                let action = key.and_then(|k| self.keymap.action(Mode::Gc, &k));
                self.gc_key(v, action, fx);
            }
            Overlay::Space(v) => self.space_key(v, k, key, fx),
            Overlay::Command(input) => self.command_key(input, k, fx),
            Overlay::Confirm(c) => self.confirm_key(c, key, fx),
        }
    }

    /// A key on the `:` line: edit it, run it on Enter, drop it on Esc.
    fn command_key(&mut self, mut input: LineInput, k: &KeyEvent, fx: &mut Vec<Effect>) {
        match input.key(k) {
            Edit::Submit => self.command(&input.text.clone(), fx),
            Edit::Cancel => {}
            Edit::Changed | Edit::Unchanged => self.overlay = Overlay::Command(input),
        }
    }

    /// A key in a confirmation: start what it confirms, cancel, or keep asking.
    fn confirm_key(&mut self, mut c: Confirm, key: Option<Key>, fx: &mut Vec<Effect>) {
        match c.key(key.and_then(|k| self.keymap.action(Mode::Confirm, &k))) {
            Answer::Confirm => self.confirmed(c.then, fx),
            Answer::Cancel => self.notify(Level::Info, "cancelled"),
            Answer::Open => self.overlay = Overlay::Confirm(c),
        }
    }
}
