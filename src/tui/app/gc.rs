//! Carrying out what a key in the GC view asks ([`GcOutcome`]), planning a collection and
//! asking to collect it.

use crate::tui::app::{App, Focus, Level};
use crate::tui::keymap::{Action, Mode};
use crate::tui::msg::{Effect, GcRequest};
use crate::tui::overlay::Overlay;
use crate::tui::overlay::confirm::{Confirm, Confirmed};
use crate::tui::overlay::gc::{GcOutcome, GcView, collect_lines};
use crate::tui::pane::list::query::StatusFilter;

impl App {
    /// A key in the GC view.
    pub(crate) fn gc_key(&mut self, mut v: GcView, action: Option<Action>, fx: &mut Vec<Effect>) {
        let Some(g) = self.gc.plan.clone() else {
            return;
        };
        match v.key(&g, action) {
            GcOutcome::Close => {}
            GcOutcome::Open => self.overlay = Overlay::Gc(v),
            GcOutcome::Empty(title) => {
                self.notify(Level::Info, format!("{title}: none"));
                self.overlay = Overlay::Gc(v);
            }
            GcOutcome::Drill(r) => {
                // Drill into the path: the list shows it, Details says why.
                if let Some(cur) = self.list.selected {
                    self.history.push(cur);
                }
                let why = g.prepared.plan.why(&self.idx(), r);
                self.list.view.status = StatusFilter::All;
                self.list.view.query.clear();
                self.rebuild();
                self.select_row(r, fx);
                self.set_focus(Focus::Details);
                let k = self.keymap.first(Mode::Normal, Action::Gc);
                self.notify(Level::Info, format!("{why} ({k} reopens the plan)"));
            }
            GcOutcome::Collect => {
                self.overlay = Overlay::Gc(v);
                self.confirm_collect();
            }
        }
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
        let mut lines = collect_lines(&g);
        let deleted = g.groups.iter().filter(|x| x.deleted);
        let (objects, bytes) = deleted.fold((0u64, 0u64), |(n, b), x| {
            (n + x.items.len() as u64, b + x.bytes.unwrap_or(0))
        });
        lines.extend(self.deletion_meaning(objects, bytes));
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
