//! The garbage-collection overlay: the plan grouped by reason ([`summary`]), opened group by
//! group, with a drill-down into the list ("why is this garbage / why is this kept"); its
//! effect on the packages of the cache ([`effect`], a second section the switch key shows);
//! and the confirmation that collects it. Its state and keys are here; [`draw`] draws it; the
//! app carries out what a key asks (`app/gc.rs`).

pub mod draw;
pub mod effect;
pub mod summary;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::index::RowId;
use crate::tui::keymap::Action;
use crate::tui::overlay::gc::summary::GcSummary;
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

/// The sections of the GC view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Section {
    /// The plan grouped by reason.
    #[default]
    Plan,
    /// Stored bytes per package before and after.
    Effect,
}

/// The GC overlay's state: the section shown, which groups are open, and the cursors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcView {
    /// The section shown.
    pub section: Section,
    /// The plan's line under the cursor and the window that shows it.
    pub scroll: Scroll,
    /// Expanded groups (by index in the summary).
    pub open: BTreeSet<usize>,
    /// The effect table's line under the cursor and its window.
    pub effect: Scroll,
}

impl Default for GcView {
    /// The plan, all groups closed, the cursor on the first; ten lines until the first frame.
    fn default() -> GcView {
        GcView {
            section: Section::Plan,
            scroll: Scroll::new(10),
            open: BTreeSet::new(),
            effect: Scroll::new(10),
        }
    }
}

/// What a key in the GC view asks of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GcOutcome {
    /// The view stays, with its new state.
    Open,
    /// The key closed it.
    Close,
    /// The group with this title is empty and did not open; the view stays.
    Empty(String),
    /// Show this path in the list, with why the plan keeps or deletes it; the view closes.
    Drill(RowId),
    /// Ask to collect the plan; the view stays under the confirmation.
    Collect,
}

impl GcView {
    /// A key in the GC view of plan `g`: switch sections, move, open or close a group, drill
    /// into a path, or collect.
    pub(crate) fn key(&mut self, g: &GcSummary, action: Option<Action>) -> GcOutcome {
        match action {
            Some(Action::Close) => return GcOutcome::Close,
            Some(Action::Collect) => return GcOutcome::Collect,
            Some(Action::NextPane | Action::PrevPane) => {
                self.section = match self.section {
                    Section::Plan => Section::Effect,
                    Section::Effect => Section::Plan,
                };
                return GcOutcome::Open;
            }
            _ => {}
        }
        if self.section == Section::Effect {
            // The table only scrolls: Enter has nothing to open.
            let n = g.effect.line_count();
            move_cursor(&mut self.effect, n, action);
            self.effect.keep_cursor_visible(n);
            return GcOutcome::Open;
        }
        let mut outcome = GcOutcome::Open;
        match action {
            Some(Action::Follow) => match g.line(&self.open, self.scroll.cursor) {
                Some(summary::Line::Header(i, grp)) => {
                    if !self.open.remove(&i) {
                        if grp.items.is_empty() {
                            outcome = GcOutcome::Empty(grp.title.clone());
                        } else {
                            self.open.insert(i);
                        }
                    }
                    self.scroll.cursor = g.header_line(&self.open, i);
                }
                Some(summary::Line::Item(..)) => {
                    if let Some(r) = g.row_at(&self.open, self.scroll.cursor) {
                        return GcOutcome::Drill(r);
                    }
                }
                None => {}
            },
            _ => move_cursor(&mut self.scroll, g.line_count(&self.open), action),
        }
        self.scroll.keep_cursor_visible(g.line_count(&self.open));
        outcome
    }
}

/// Move the cursor of `scroll` over `n` lines as a movement key asks (other keys do nothing).
fn move_cursor(scroll: &mut Scroll, n: usize, action: Option<Action>) {
    let last = n.saturating_sub(1);
    let page = scroll.page();
    let cursor = &mut scroll.cursor;
    match action {
        Some(Action::Down) => *cursor = (*cursor + 1).min(last),
        Some(Action::Up) => *cursor = cursor.saturating_sub(1),
        Some(Action::PageDown) => *cursor = (*cursor + page).min(last),
        Some(Action::PageUp) => *cursor = cursor.saturating_sub(page),
        Some(Action::Top) => *cursor = 0,
        Some(Action::Bottom) => *cursor = last,
        _ => {}
    }
}

/// What the confirmation of collecting plan `g` says: the totals, what the budget reached,
/// the effect by package (totals and the packages that free most), each group that goes,
/// and how the collection proceeds.
pub(crate) fn collect_lines(g: &GcSummary) -> Vec<String> {
    let mut lines = vec![format!("{}.", g.totals())];
    if let Some(b) = summary::budget_line(&g.prepared.plan) {
        lines.push(format!("{b}."));
    }
    lines.push(String::new());
    lines.extend(g.effect.confirm_lines(3));
    lines.push(String::new());
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
        "Narinfos go first (referrers before what they reference), then NARs and the rest,".into(),
    );
    lines.push(
        "in batches of 1000. Just before deleting, the cache is scanned and the pins are".into(),
    );
    lines.push("read again: only what both looks call garbage goes.".into());
    let broken = g.prepared.plan.dangling.len() + g.prepared.plan.missing_refs.len();
    if broken > 0 {
        lines.push(format!(
            "{broken} problem(s) among what stays were there before and are left alone."
        ));
    }
    lines
}
