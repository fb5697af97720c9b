//! The garbage-collection overlay: the plan grouped by reason ([`summary`]), opened group by
//! group, with a drill-down into the list ("why is this garbage / why is this kept"), and
//! the confirmation that collects it. The reducer half is here; [`draw`] draws it.

pub mod draw;
pub mod summary;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::tui::app::App;
use crate::tui::keymap::{Action, Mode};
use crate::tui::msg::{Effect, GcRequest};
use crate::tui::overlay::Overlay;
use crate::tui::overlay::confirm::{Confirm, Confirmed};
use crate::tui::overlay::gc::summary::GcSummary;
use crate::tui::pane::ctx::Focus;
use crate::tui::pane::footer::Level;
use crate::tui::pane::list::query::StatusFilter;
use crate::tui::scroll::Scroll;
use crate::units::{human_size, thousands};

/// The garbage-collection plan as the dashboard holds it between the overlay's openings.
#[derive(Default)]
pub struct GcState {
    /// The plan last made (consumed by collecting; dropped when a pin changes).
    pub plan: Option<Arc<GcSummary>>,
    /// Whether a plan is being made.
    pub planning: bool,
}

/// The GC overlay's state: which groups are open, and the cursor over the lines they make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcView {
    /// The line under the cursor and the window that shows it.
    pub scroll: Scroll,
    /// Expanded groups (by index in the summary).
    pub open: BTreeSet<usize>,
}

impl Default for GcView {
    /// All groups closed, the cursor on the first; ten lines until the first frame.
    fn default() -> GcView {
        GcView {
            scroll: Scroll::new(10),
            open: BTreeSet::new(),
        }
    }
}

impl App {
    /// A key in the GC view.
    pub(crate) fn gc_key(&mut self, mut v: GcView, action: Option<Action>, fx: &mut Vec<Effect>) {
        let Some(g) = self.gc.plan.clone() else {
            return;
        };
        let n = g.line_count(&v.open);
        let page = v.scroll.page();
        match action {
            Some(Action::Close) => return,
            Some(Action::Down) => v.scroll.cursor = (v.scroll.cursor + 1).min(n.saturating_sub(1)),
            Some(Action::Up) => v.scroll.cursor = v.scroll.cursor.saturating_sub(1),
            Some(Action::PageDown) => {
                v.scroll.cursor = (v.scroll.cursor + page).min(n.saturating_sub(1))
            }
            Some(Action::PageUp) => v.scroll.cursor = v.scroll.cursor.saturating_sub(page),
            Some(Action::Top) => v.scroll.cursor = 0,
            Some(Action::Bottom) => v.scroll.cursor = n.saturating_sub(1),
            Some(Action::Follow) => match g.line(&v.open, v.scroll.cursor) {
                Some(crate::tui::overlay::gc::summary::Line::Header(i, grp)) => {
                    if !v.open.remove(&i) {
                        if grp.items.is_empty() {
                            self.notify(Level::Info, format!("{}: none", grp.title));
                        } else {
                            v.open.insert(i);
                        }
                    }
                    v.scroll.cursor = g.header_line(&v.open, i);
                }
                Some(crate::tui::overlay::gc::summary::Line::Item(..)) => {
                    if let Some(r) = g.row_at(&v.open, v.scroll.cursor) {
                        // Drill into the path: the list shows it, Details says why.
                        if let Some(cur) = self.selected {
                            self.history.push(cur);
                        }
                        let why = g.prepared.plan.why(&self.idx(), r);
                        self.view.status = StatusFilter::All;
                        self.view.query.clear();
                        self.rebuild();
                        self.select_row(r, fx);
                        self.set_focus(Focus::Details);
                        let k = self.keymap.first(Mode::Normal, Action::Gc);
                        self.notify(Level::Info, format!("{why} ({k} reopens the plan)"));
                        return;
                    }
                }
                None => {}
            },
            Some(Action::Collect) => {
                self.overlay = Overlay::Gc(v);
                self.confirm_collect();
                return;
            }
            _ => {}
        }
        v.scroll.keep_cursor_visible(g.line_count(&v.open));
        self.overlay = Overlay::Gc(v);
    }

    pub(crate) fn confirm_collect(&mut self) {
        if self.read_only {
            self.notify(Level::Warn, "collect is disabled: read-only mode");
            return;
        }
        let Some(g) = self.gc.plan.clone() else {
            let k = self.keymap.first(Mode::Normal, Action::Gc);
            self.notify(
                Level::Info,
                format!("no plan: press {k} (or :gc) to make one"),
            );
            return;
        };
        if g.generation != self.idx().generation {
            // Still correct (the final plan re-checks), but say so.
            self.notify(
                Level::Warn,
                "the cache changed since this plan was made; collecting re-plans before deleting",
            );
        }
        if let Some(why) = g.prepared.plan.refusal() {
            let first = g
                .prepared
                .plan
                .unknown
                .first()
                .map(|u| format!(": {} ({}); {}", u.key, u.cause, u.advice()))
                .unwrap_or_default();
            self.notify(Level::Error, format!("{why}{first}"));
            return;
        }
        if !g.prepared.has_roots() && !g.allow_no_roots {
            self.notify(
                Level::Error,
                "no roots: everything older than the grace period would go. Add a pin \
                 (:pin add NAME), or plan with :gc --keep-younger-than D, --roots-file F, \
                 or --allow-no-roots",
            );
            return;
        }
        if g.prepared.is_empty() {
            self.notify(Level::Info, "nothing to collect");
            return;
        }
        let mut lines = vec![format!("{}.", g.totals()), String::new()];
        for grp in g.groups.iter().filter(|x| x.deleted && !x.items.is_empty()) {
            lines.push(format!(
                "  {:>9}  {:>10}  {}",
                thousands(grp.items.len() as u64),
                grp.bytes.map(human_size).unwrap_or_default(),
                grp.title
            ));
        }
        lines.push(String::new());
        lines.push(
            "Narinfos go first (referrers before what they reference), then NARs and the rest,"
                .into(),
        );
        lines.push(
            "in batches of 1000. Just before deleting, the cache is scanned and the pins are"
                .into(),
        );
        lines.push("read again: only what both looks call garbage goes.".into());
        let broken = g.prepared.plan.dangling.len() + g.prepared.plan.missing_refs.len();
        if broken > 0 {
            lines.push(format!(
                "{broken} problem(s) among what stays were there before and are left alone."
            ));
        }
        self.overlay = Confirm::ask(
            "Collect garbage",
            lines,
            "Collect",
            true,
            Confirmed::Collect,
        );
    }

    /// Plan a garbage collection (`C`, `:gc`).
    pub(crate) fn plan_gc(&mut self, req: GcRequest, fx: &mut Vec<Effect>) {
        if self.gc.planning {
            self.notify(Level::Info, "a gc plan is being made");
            return;
        }
        if self.scan.running || !self.idx().nars_listed {
            self.notify(
                Level::Warn,
                "wait for the scan to finish: a gc plan needs every narinfo and NAR listed",
            );
            return;
        }
        self.gc.planning = true;
        self.notify(
            Level::Info,
            "planning gc: reading pins, logs and debuginfo…",
        );
        fx.push(Effect::PlanGc(req));
    }
}
