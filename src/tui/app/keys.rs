//! Keys: the `/` filter input first, then the open overlay, else the key's [`Action`] in
//! normal mode; [`App::act`] performs an action (keys and the command line both end there).

use crossterm::event::KeyEvent;

use crate::index::RowId;
use crate::tui::app::{App, Focus, Level};
use crate::tui::input::{Edit, LineInput};
use crate::tui::keymap::{Action, Key, Mode};
use crate::tui::msg::{Effect, GcRequest};
use crate::tui::overlay::Overlay;
use crate::tui::overlay::confirm::{Confirm, Confirmed};
use crate::tui::overlay::gc::GcView;
use crate::tui::pane::list::query::{SortKey, StatusFilter};
use crate::tui::scroll::Scroll;

impl App {
    pub(crate) fn on_key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) {
        // Errors stay until a key; everything else goes with it.
        if self.notice.is_some() {
            self.notice = None;
        }
        if let Some(mut input) = self.filter_input.take() {
            let fuzzy_key = Key::from_event(&k)
                .and_then(|key| self.keymap.action(Mode::Normal, &key))
                == Some(Action::ToggleFuzzy);
            if fuzzy_key {
                self.filter_input = Some(input);
                self.act(Action::ToggleFuzzy, fx);
                return;
            }
            match input.key(&k) {
                Edit::Submit => {}
                Edit::Cancel => {
                    self.list.view.query.clear();
                    self.refilter(fx);
                }
                Edit::Changed => {
                    self.list.view.query = input.text.clone();
                    self.refilter(fx);
                    self.filter_input = Some(input);
                }
                Edit::Unchanged => self.filter_input = Some(input),
            }
            return;
        }
        let key = Key::from_event(&k);
        let overlay = std::mem::replace(&mut self.overlay, Overlay::None);
        if overlay != Overlay::None {
            self.overlay_key(overlay, &k, key, fx);
            return;
        }
        let Some(key) = key else { return };
        let Some(action) = self.keymap.action(Mode::Normal, &key) else {
            return;
        };
        self.act(action, fx);
    }

    /// Open the doctor overlay and run the checks off the UI thread.
    pub(crate) fn open_doctor(&mut self, fx: &mut Vec<Effect>) {
        self.overlay = Overlay::Doctor(crate::tui::overlay::doctor::DoctorView::default());
        fx.push(Effect::Doctor);
    }

    /// Perform an action (keys and the command line both end here).
    pub fn act(&mut self, action: Action, fx: &mut Vec<Effect>) {
        if self.read_only && action.is_mutating() {
            self.notify(Level::Warn, format!("{action} is disabled: read-only mode"));
            return;
        }
        match action {
            Action::Quit => {
                let n = self.running_jobs();
                if n > 0 {
                    self.overlay = Confirm::ask(
                        "Quit?",
                        vec![format!(
                            "{n} job(s) are still running; quitting cancels them."
                        )],
                        "Quit",
                        false,
                        Confirmed::Quit,
                    );
                } else {
                    self.quit = true;
                    fx.push(Effect::Quit);
                }
            }
            Action::ForceQuit => {
                self.quit = true;
                fx.push(Effect::Quit);
            }
            Action::Help => {
                self.overlay = Overlay::Help {
                    scroll: Scroll::new(10),
                }
            }
            Action::Down => self.move_by(1, fx),
            Action::Up => self.move_by(-1, fx),
            Action::PageDown => self.move_by(self.page() as isize, fx),
            Action::PageUp => self.move_by(-(self.page() as isize), fx),
            Action::HalfPageDown => self.move_by((self.page() / 2).max(1) as isize, fx),
            Action::HalfPageUp => self.move_by(-((self.page() / 2).max(1) as isize), fx),
            Action::Top => self.move_to_end(false, fx),
            Action::Bottom => self.move_to_end(true, fx),
            Action::NextPane | Action::PrevPane => {
                let i = Focus::CYCLE
                    .iter()
                    .position(|f| *f == self.focus)
                    .unwrap_or(0);
                let n = Focus::CYCLE.len();
                let j = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.set_focus(Focus::CYCLE[j]);
            }
            Action::FocusList => self.set_focus(Focus::List),
            Action::FocusDetails => self.set_focus(Focus::Details),
            Action::FocusSignatures => self.set_focus(Focus::Signatures),
            Action::FocusOverview => self.set_focus(Focus::Overview),
            Action::FocusJobs => self.set_focus(Focus::Jobs),
            Action::Filter => {
                self.focus = Focus::List;
                self.filter_input = Some(LineInput::with(&self.list.view.query));
            }
            Action::ClearFilter => {
                if self.list.view.query.is_empty() && self.list.view.status == StatusFilter::All {
                    if self.focus != Focus::List {
                        self.focus = Focus::List;
                    }
                    return;
                }
                self.list.view.query.clear();
                self.list.view.status = StatusFilter::All;
                self.refilter(fx);
                self.notify(Level::Info, "filters cleared");
            }
            Action::ToggleFuzzy => {
                self.list.view.fuzzy = !self.list.view.fuzzy;
                self.refilter(fx);
                let how = if self.list.view.fuzzy {
                    "fuzzy"
                } else {
                    "substring"
                };
                self.notify(Level::Info, format!("filter: {how} matching"));
            }
            Action::CycleStatusFilter => {
                self.list.view.status = self.list.view.status.next();
                self.refilter(fx);
            }
            Action::OnlyProblems => {
                self.list.view.status = if self.list.view.status == StatusFilter::Problems {
                    StatusFilter::All
                } else {
                    StatusFilter::Problems
                };
                self.refilter(fx);
            }
            Action::SortNext => {
                self.list.view.sort = self.list.view.sort.next();
                self.list.view.desc =
                    matches!(self.list.view.sort, SortKey::NarSize | SortKey::FileSize);
                self.refilter(fx);
            }
            Action::SortReverse => {
                self.list.view.desc = !self.list.view.desc;
                self.refilter(fx);
            }
            Action::ToggleMark => {
                if let Some(id) = self.list.selected {
                    if !self.list.marks.remove(&id) {
                        self.list.marks.insert(id);
                    }
                    self.move_by(1, fx);
                }
            }
            Action::MarkAllInView => {
                let rows: Vec<RowId> = self.list.view.rows().to_vec();
                let n = rows.len();
                self.list.marks.extend(rows);
                self.notify(
                    Level::Info,
                    format!("marked {n} rows ({} in all)", self.list.marks.len()),
                );
            }
            Action::ClearMarks => {
                let n = self.list.marks.len();
                self.list.marks.clear();
                self.notify(Level::Info, format!("{n} marks cleared"));
            }
            Action::Follow => self.follow(fx),
            Action::Back => {
                if let Some(id) = self.history.pop() {
                    self.select_row(id, fx);
                }
            }
            Action::CopyPath => {
                if let Some(id) = self.list.selected {
                    let p = self.idx().store_path(id);
                    self.notify(Level::Info, format!("copied {p}"));
                    fx.push(Effect::Copy(p));
                }
            }
            Action::CommandLine => self.overlay = Overlay::Command(LineInput::default()),
            Action::Refresh => {
                if self.scan.running {
                    self.notify(Level::Info, "a scan is already running");
                } else {
                    fx.push(Effect::Scan);
                }
            }
            Action::VerifyContents => {
                let ids = self.targets();
                self.confirm_verify(ids);
            }
            Action::Sign => {
                let ids = self.targets();
                self.confirm_sign(ids);
            }
            Action::Delete => {
                let ids = self.targets();
                self.confirm_delete(ids, fx);
            }
            Action::CancelJob => match self.jobs.to_cancel(self.focus == Focus::Jobs) {
                Some(j) => {
                    let id = j.id;
                    self.notify(Level::Info, format!("cancelling job #{id}"));
                    fx.push(Effect::CancelJob(id));
                }
                None => self.notify(Level::Info, "no running job to cancel"),
            },
            Action::Gc => match self.gc.plan.clone() {
                Some(g) if g.generation == self.idx().generation => {
                    self.overlay = Overlay::Gc(GcView::default())
                }
                _ => self.plan_gc(GcRequest::default(), fx),
            },
            Action::Collect => self.confirm_collect(),
            Action::Doctor => self.open_doctor(fx),
            Action::Plans => self.open_plans(fx),
            Action::SpaceView => self.open_space(fx),
            Action::Close
            | Action::Confirm
            | Action::Cancel
            | Action::ToggleChoice
            | Action::Purge
            | Action::Choose
            | Action::NextSection
            | Action::PrevSection
            | Action::TogglePeriod
            | Action::ChartFollow => {}
        }
    }

    pub(crate) fn move_by(&mut self, delta: isize, fx: &mut Vec<Effect>) {
        match self.focus {
            Focus::List => {
                let pos = self.list.scroll.cursor as isize + delta;
                self.select_pos(pos.max(0) as usize, fx);
            }
            Focus::Details => {
                let n = self.ref_targets().len();
                self.details.move_by(delta, n);
            }
            Focus::Signatures => {
                self.sig_scroll.scroll_drawn(delta);
            }
            Focus::Overview => {
                self.overview_scroll.scroll_drawn(delta);
            }
            Focus::Jobs => self.jobs.move_by(delta),
        }
    }

    pub(crate) fn move_to_end(&mut self, end: bool, fx: &mut Vec<Effect>) {
        match self.focus {
            Focus::List => {
                let n = self.list.view.rows().len();
                self.select_pos(if end { n.saturating_sub(1) } else { 0 }, fx);
            }
            Focus::Details => {
                let n = self.ref_targets().len();
                self.details.move_to_end(end, n);
            }
            Focus::Signatures => self.sig_scroll.reset(),
            Focus::Overview => self.overview_scroll.reset(),
            Focus::Jobs => self.jobs.move_to_end(end),
        }
    }
}
