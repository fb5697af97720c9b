//! The status line: one [`Notice`] at a time. Errors and warnings stay until the next key;
//! background news (an [`Level::Info`] that arrives while no key is being handled) does not
//! push away a warning the user has not seen yet.

use crate::tui::app::App;
use crate::tui::pane::footer::{Level, Notice};

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
