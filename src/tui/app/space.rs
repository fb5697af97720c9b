//! The space view on the app: opening it (and building its report off the UI thread, again
//! whenever the index changed), carrying out what its keys ask ([`SpaceOutcome`]: list a
//! package's paths, select a root) and asking for the timeline of the package the chart
//! follows.

use std::sync::Arc;

use crossterm::event::KeyEvent;

use crate::space::Report;
use crate::space::timeline::Timeline;
use crate::tui::app::{App, Focus, Level};
use crate::tui::keymap::{Key, Mode};
use crate::tui::msg::{Effect, ReportHandle};
use crate::tui::overlay::Overlay;
use crate::tui::overlay::space::{SpaceOutcome, SpaceView};
use crate::tui::pane::list::query::{PKG_TERM, StatusFilter};
use crate::units::{human_size, thousands};

impl App {
    /// Open the space view (`W`, `:space`), building its report if there is none for the
    /// current index.
    pub(crate) fn open_space(&mut self, fx: &mut Vec<Effect>) {
        let mut v = SpaceView::default();
        if let Some(r) = &self.space.report {
            v.refresh(r);
        }
        self.overlay = Overlay::Space(v);
        self.space_check(fx);
    }

    /// While the view is open: build the report if there is none, or if the index changed
    /// since it was built (one build at a time; the last report stays shown meanwhile).
    pub(crate) fn space_check(&mut self, fx: &mut Vec<Effect>) {
        if !matches!(self.overlay, Overlay::Space(_)) || self.space.building {
            return;
        }
        let generation = self.idx().generation;
        if self
            .space
            .report
            .as_ref()
            .is_some_and(|r| r.generation == generation)
        {
            return;
        }
        self.space.building = true;
        fx.push(Effect::BuildSpace);
    }

    /// A report arrived.
    pub(crate) fn space_built(&mut self, r: Arc<Report>, fx: &mut Vec<Effect>) {
        self.space.building = false;
        if let Overlay::Space(v) = &mut self.overlay {
            v.refresh(&r);
        }
        self.space.report = Some(r);
        self.space_group_check(fx);
    }

    /// A package's timeline arrived.
    pub(crate) fn space_group_built(&mut self, generation: u64, name: String, t: Arc<Timeline>) {
        self.space.put_group(generation, name, t);
    }

    /// If the chart follows a package whose timeline is neither built nor being built, ask
    /// for it.
    pub(crate) fn space_group_check(&mut self, fx: &mut Vec<Effect>) {
        let (Overlay::Space(v), Some(r)) = (&self.overlay, &self.space.report) else {
            return;
        };
        let Some((i, p)) = v.chart_package(r) else {
            return;
        };
        let want = (r.generation, p.name.clone());
        if self.space.group(r.generation, &p.name).is_some()
            || self.space.group_pending.as_ref() == Some(&want)
        {
            return;
        }
        fx.push(Effect::SpaceGroupTimeline(ReportHandle(r.clone()), i));
        self.space.group_pending = Some(want);
    }

    /// A key while the space view is open.
    pub(crate) fn space_key(
        &mut self,
        mut v: SpaceView,
        k: &KeyEvent,
        key: Option<Key>,
        fx: &mut Vec<Effect>,
    ) {
        let report = self.space.report.clone();
        if v.typing.is_some() {
            v.type_key(report.as_deref(), k);
            self.overlay = Overlay::Space(v);
            return;
        }
        let action = key.and_then(|k| self.keymap.action(Mode::Space, &k));
        match v.key(report.as_deref(), action) {
            SpaceOutcome::Open => {
                self.overlay = Overlay::Space(v);
                self.space_group_check(fx);
            }
            SpaceOutcome::Close => {}
            SpaceOutcome::OpenGroup(name) => self.list_package(&name, fx),
            SpaceOutcome::FollowRoot(root) => {
                if let Some(cur) = self.list.selected {
                    self.history.push(cur);
                }
                self.list.view.status = StatusFilter::All;
                self.list.view.query.clear();
                self.set_focus(Focus::List);
                self.rebuild();
                self.select_row(root, fx);
                if let Some(c) = report
                    .as_deref()
                    .and_then(|r| r.closures.iter().find(|c| c.root == root))
                {
                    let text = format!(
                        "root {}: closure of {} path(s), {}; deleting it alone frees {}",
                        self.idx().name(root),
                        thousands(c.paths),
                        human_size(c.stored_bytes),
                        human_size(c.unshared_bytes)
                    );
                    self.notify(Level::Info, text);
                }
            }
        }
    }

    /// Restrict the list to exactly the paths of package `name` (the `pkg:` filter term;
    /// clear_filter removes it) and select the first.
    pub(crate) fn list_package(&mut self, name: &str, fx: &mut Vec<Effect>) {
        self.list.view.query = format!("{PKG_TERM}{name}");
        self.list.view.status = StatusFilter::All;
        self.set_focus(Focus::List);
        self.refilter(fx);
        self.select_pos(0, fx);
        let n = self.list.view.rows().len();
        let k = self
            .keymap
            .first(Mode::Normal, crate::tui::keymap::Action::ClearFilter);
        self.notify(
            Level::Info,
            format!("{n} path(s) of {name} ({k} shows every path)"),
        );
    }
}
