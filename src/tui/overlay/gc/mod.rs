//! The garbage-collection overlay: the plan grouped by reason ([`summary`]), opened group by
//! group, with a drill-down into the list ("why is this garbage / why is this kept"), and
//! the confirmation that collects it. Its state and keys are here; [`draw`] draws it; the app
//! carries out what a key asks (`app/gc.rs`).

pub mod draw;
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
    /// A key in the GC view of plan `g`: move, open or close a group, drill into a path, or
    /// collect.
    pub(crate) fn key(&mut self, g: &GcSummary, action: Option<Action>) -> GcOutcome {
        let n = g.line_count(&self.open);
        let page = self.scroll.page();
        let mut outcome = GcOutcome::Open;
        let cursor = &mut self.scroll.cursor;
        match action {
            Some(Action::Close) => return GcOutcome::Close,
            Some(Action::Down) => *cursor = (*cursor + 1).min(n.saturating_sub(1)),
            Some(Action::Up) => *cursor = cursor.saturating_sub(1),
            Some(Action::PageDown) => *cursor = (*cursor + page).min(n.saturating_sub(1)),
            Some(Action::PageUp) => *cursor = cursor.saturating_sub(page),
            Some(Action::Top) => *cursor = 0,
            Some(Action::Bottom) => *cursor = n.saturating_sub(1),
            Some(Action::Follow) => match g.line(&self.open, *cursor) {
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
                    if let Some(r) = g.row_at(&self.open, *cursor) {
                        return GcOutcome::Drill(r);
                    }
                }
                None => {}
            },
            Some(Action::Collect) => return GcOutcome::Collect,
            _ => {}
        }
        self.scroll.keep_cursor_visible(g.line_count(&self.open));
        outcome
    }
}

/// What the confirmation of collecting plan `g` says: the totals, each group that goes,
/// and how the collection proceeds.
pub(crate) fn collect_lines(g: &GcSummary) -> Vec<String> {
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
