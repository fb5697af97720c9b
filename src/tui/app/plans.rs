//! The past plans overlay on the app (`:plans`, its key): opening it, its keys, the restore
//! and purge confirmations; and what deleting means on this bucket, for the delete and gc
//! confirmations.

use crate::tui::app::{App, Level};
use crate::tui::msg::Effect;
use crate::tui::overlay::Overlay;
use crate::tui::overlay::confirm::{Confirm, Confirmed};
use crate::tui::overlay::plans::{PlanRow, PlansOutcome, PlansView};
use crate::tui::pane::overview::wrap_words;
use crate::units::human_size;
use crate::versioned::Meaning;

/// Width the confirmation's notes are wrapped to.
const NOTE_WIDTH: usize = 64;

impl App {
    /// Open the plans overlay and read the stored plans off the UI thread.
    pub(crate) fn open_plans(&mut self, fx: &mut Vec<Effect>) {
        self.overlay = Overlay::Plans(PlansView {
            now_unix: self.now_unix(),
            ..PlansView::default()
        });
        fx.push(Effect::ListPlans);
    }

    fn now_unix(&self) -> u64 {
        self.now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// A key's action in the plans overlay.
    pub(crate) fn plans_key(
        &mut self,
        mut v: PlansView,
        action: Option<crate::tui::keymap::Action>,
    ) {
        match v.key(action) {
            PlansOutcome::Open => self.overlay = Overlay::Plans(v),
            PlansOutcome::Close => {}
            PlansOutcome::Restore(_) | PlansOutcome::Purge(_) if self.read_only => {
                self.notify(
                    Level::Warn,
                    "restore and purge are disabled: read-only mode",
                );
                self.overlay = Overlay::Plans(v);
            }
            PlansOutcome::Restore(p) => self.confirm_restore(&p),
            PlansOutcome::Purge(p) => self.confirm_purge(&p),
        }
    }

    fn confirm_restore(&mut self, p: &PlanRow) {
        let lines = vec![
            format!(
                "Restore plan {} ({}, {} object(s), {}, {}):",
                p.id,
                p.command,
                p.objects,
                human_size(p.bytes),
                p.state.label()
            ),
            String::new(),
            "Its delete markers are removed where no newer version was".into(),
            "written since: NARs and listings first, then the narinfos.".into(),
            "The index is refreshed afterwards.".into(),
        ];
        self.overlay = Confirm::ask(
            "Restore a past plan",
            lines,
            "Restore",
            false,
            Confirmed::RestorePlan(p.id.clone()),
        );
    }

    fn confirm_purge(&mut self, p: &PlanRow) {
        let lines = vec![
            format!(
                "Purge plan {} ({}, {} object(s), {}):",
                p.id,
                p.command,
                p.objects,
                p.state.label()
            ),
            String::new(),
            format!(
                "Its hidden versions are deleted for good: this frees up to {}.",
                human_size(p.hidden_bytes)
            ),
            "Versions that are current again (restored, re-pushed) stay.".into(),
            "This cannot be undone.".into(),
        ];
        self.overlay = Confirm::ask(
            "Purge a past plan",
            lines,
            "Purge",
            true,
            Confirmed::PurgePlan(p.id.clone()),
        );
    }

    /// What deleting `objects` objects of `bytes` bytes means on this bucket, as lines for a
    /// confirmation: the CLI's [`Meaning`] note, and on a versioned bucket where the
    /// dashboard lists the plans.
    pub(crate) fn deletion_meaning(&self, objects: u64, bytes: u64) -> Vec<String> {
        let m = match &self.versions.state {
            Some(Ok(v)) => Meaning::of(Ok(*v), false, objects, bytes),
            Some(Err(e)) => Meaning::of(Err(e), false, objects, bytes),
            None => {
                let mut out = vec![String::new()];
                out.extend(wrap_words(
                    "The bucket's versioning is not known yet: on a bucket that keeps \
                     versions this deletion is recorded as a plan (:plans); otherwise it is \
                     final.",
                    NOTE_WIDTH,
                ));
                return out;
            }
        };
        let mut chars = m.note.chars();
        let mut note: String = chars
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default();
        note.push_str(chars.as_str());
        note.push('.');
        let mut out = vec![String::new()];
        out.extend(wrap_words(&note, NOTE_WIDTH));
        if m.reversible {
            out.extend(wrap_words(
                "Here: :plans lists the plans (Enter restores, p purges).",
                NOTE_WIDTH,
            ));
        }
        out
    }
}
