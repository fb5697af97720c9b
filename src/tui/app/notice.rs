//! The status line: one [`Notice`] at a time. Errors and warnings stay until the next key;
//! background news (an [`Level::Info`] that arrives while no key is being handled) does not
//! push away a warning the user has not seen yet.

use crate::tui::app::App;

/// Status line severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Information; goes away at the next key.
    Info,
    /// A warning; goes away at the next key.
    Warn,
    /// An error; stays until a key is pressed.
    Error,
}

/// A status line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// How serious it is (its colour, and whether background news may replace it).
    pub level: Level,
    /// What the status line says.
    pub text: String,
    /// Which notice it is (each `notify` numbers them), so that the one a later message
    /// answers can be told from a newer one.
    pub id: u64,
}

impl App {
    /// Show `text` on the status line.
    pub(crate) fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notify_id(level, text);
    }

    /// Like [`App::notify`]; the notice's id, unless it was not shown.
    pub(crate) fn notify_id(&mut self, level: Level, text: impl Into<String>) -> Option<u64> {
        // Background news does not push away a warning the user has not seen.
        if level == Level::Info
            && self.notice.as_ref().is_some_and(|n| n.level != Level::Info)
            && !self.in_key
        {
            return None;
        }
        self.notices += 1;
        self.notice = Some(Notice {
            level,
            text: text.into(),
            id: self.notices,
        });
        Some(self.notices)
    }
}
