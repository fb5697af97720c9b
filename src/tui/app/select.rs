//! Selecting rows: the list's cursor, jumping to a row (clearing filters that hide it), and
//! following the details pane's references.

use crate::index::RowId;
use crate::tui::app::{App, Focus, Level};
use crate::tui::msg::Effect;
use crate::tui::pane::list::query::StatusFilter;

impl App {
    pub(crate) fn scroll_to_cursor(&mut self) {
        let n = self.list.view.rows().len();
        self.list.scroll.keep_cursor_visible(n);
    }

    pub(crate) fn request_detail(&mut self, id: RowId, fx: &mut Vec<Effect>) {
        fx.push(Effect::LoadDetail(id));
    }

    pub(crate) fn select_pos(&mut self, pos: usize, fx: &mut Vec<Effect>) {
        self.user_moved = true;
        let n = self.list.view.rows().len();
        if n == 0 {
            self.list.scroll.cursor = 0;
            self.list.selected = None;
            return;
        }
        self.list.scroll.cursor = pos.min(n - 1);
        let id = self.list.view.rows()[self.list.scroll.cursor];
        self.scroll_to_cursor();
        if self.list.selected != Some(id) {
            self.list.selected = Some(id);
            self.request_detail(id, fx);
        }
    }

    /// Select a row by id, clearing filters if it is hidden by them.
    pub(crate) fn select_row(&mut self, id: RowId, fx: &mut Vec<Effect>) {
        let hidden = {
            let idx = self.idx();
            (id as usize) >= idx.len() || !idx.row(id).is_live()
        };
        if hidden {
            self.notify(Level::Warn, "that path is not in the cache");
            return;
        }
        if self.list.view.position(id).is_none() {
            self.list.view.query.clear();
            self.list.view.status = StatusFilter::All;
            self.rebuild();
            self.notify(Level::Info, "filters cleared to show the path");
        }
        if let Some(pos) = self.list.view.position(id) {
            self.list.selected = None;
            self.select_pos(pos, fx);
        }
    }

    /// References then referrers of the loaded detail, as the details pane lists them.
    pub fn ref_targets(&self) -> Vec<RowId> {
        self.details.ref_targets(self.list.selected)
    }

    pub(crate) fn follow(&mut self, fx: &mut Vec<Effect>) {
        if self.focus == Focus::List {
            self.set_focus(Focus::Details);
            return;
        }
        if self.focus != Focus::Details {
            return;
        }
        let targets = self.ref_targets();
        let Some(&target) = targets.get(self.details.ref_cursor) else {
            self.notify(Level::Info, "no reference to follow");
            return;
        };
        if let Some(cur) = self.list.selected {
            self.history.push(cur);
        }
        self.select_row(target, fx);
    }
}
