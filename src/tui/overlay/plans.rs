//! The past deletion plans of a versioned bucket (`:plans`, or its key): one row per stored
//! plan record (`narscope/gc/<id>.json`): id, age, command, objects, bytes, state. The
//! records are read off the UI thread (`Effect::ListPlans`); until they arrive the overlay
//! says so. Enter asks to restore the selected plan, the purge key asks to purge it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::jobs::{JobError, JobHandle};
use crate::storage::{Store, Versioning};
use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::centered;
use crate::tui::pane::ctx::Ctx;
use crate::units::{age, human_size};
use crate::versioned::{PlanRecord, RecordState};

/// One stored plan, as the overlay lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRow {
    /// The plan's id.
    pub id: String,
    /// When it was carried out, in seconds since the epoch.
    pub created_unix: u64,
    /// `gc` or `delete`.
    pub command: String,
    /// Objects it deleted.
    pub objects: u64,
    /// Bytes of the versions it hid.
    pub bytes: u64,
    /// Bytes of the versions still hidden (not restored): what a purge frees at most.
    pub hidden_bytes: u64,
    /// Where it stands.
    pub state: RecordState,
}

impl PlanRow {
    /// The row of a stored record.
    pub fn of(r: &PlanRecord) -> PlanRow {
        PlanRow {
            id: r.id.clone(),
            created_unix: r.created_unix,
            command: r.command.clone(),
            objects: r.totals.objects,
            bytes: r.totals.bytes,
            hidden_bytes: r
                .objects
                .iter()
                .filter(|o| !o.restored)
                .map(|o| o.size)
                .sum(),
            state: r.state,
        }
    }
}

/// What the runtime read: the bucket's versioning and the stored plans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanList {
    /// The bucket's versioning, or why it could not be read.
    pub versioning: Result<Versioning, String>,
    /// The plans, oldest first.
    pub plans: Vec<PlanRow>,
    /// Records that could not be read: (key, why).
    pub unreadable: Vec<(String, String)>,
}

/// Reads the bucket's versioning and the stored plan records of `cache` (what
/// `Effect::ListPlans` answers), or says why they could not be listed.
pub async fn read_plans(cache: &crate::cache::Cache) -> Result<PlanList, String> {
    let versioning = cache.versioning().await.map_err(|e| e.to_string());
    let (plans, unreadable) = crate::versioned::list(cache.store().as_ref())
        .await
        .map_err(|e| format!("{}: {e}", crate::versioned::PLANS_PREFIX))?;
    Ok(PlanList {
        versioning,
        plans: plans.iter().map(PlanRow::of).collect(),
        unreadable,
    })
}

/// The body of a job restoring plan `id` (`Effect::RestorePlan`): restores it, counts what
/// it restored, skipped or failed on `job`, and leaves the summary as the job's last line.
pub async fn restore_job(
    store: Arc<dyn Store>,
    id: String,
    job: Arc<JobHandle>,
) -> Result<(), JobError> {
    let p = &job.progress;
    p.set_current("removing the plan's delete markers");
    let s = crate::versioned::restore(store, &id).await?;
    let total = s.restored + s.already + s.skipped.len() as u64 + s.failed;
    p.total.store(total, Ordering::Relaxed);
    p.done.store(total, Ordering::Relaxed);
    for (k, why) in &s.skipped {
        p.error(format!("skipped {k}: {why}"));
    }
    p.failed.fetch_add(s.failed, Ordering::Relaxed);
    p.set_current(format!(
        "restored {} object(s) ({}, {} narinfo(s)) of plan {}; {} restored before, {} \
         skipped, {} failed",
        s.restored,
        human_size(s.bytes),
        s.narinfos,
        s.plan,
        s.already,
        s.skipped.len(),
        s.failed
    ));
    Ok(())
}

/// The body of a job purging plan `id` (`Effect::PurgePlan`): plans the purge, carries it
/// out under the deletion lease, counts what it deleted or failed on `job`, and leaves the
/// summary (bytes no longer stored) as the job's last line.
pub async fn purge_job(
    store: Arc<dyn Store>,
    id: String,
    job: Arc<JobHandle>,
) -> Result<(), JobError> {
    let p = &job.progress;
    let opts = crate::versioned::PurgeOptions {
        plans: vec![id],
        ..Default::default()
    };
    p.set_current("looking at the plan's versions");
    let plan = crate::versioned::plan_purge(store.as_ref(), &opts).await?;
    p.set_current("deleting the hidden versions");
    let s = crate::versioned::purge_under_lease(store, &plan, &opts).await?;
    let total = s.versions + s.markers + s.rewritten + s.failed;
    p.total.store(total, Ordering::Relaxed);
    p.done.store(total, Ordering::Relaxed);
    p.failed.fetch_add(s.failed, Ordering::Relaxed);
    p.set_current(format!(
        "deleted {} hidden version(s), {} delete marker(s): {} no longer stored; {} kept \
         (current again), {} failed",
        s.versions,
        s.markers,
        human_size(s.bytes),
        s.current,
        s.failed
    ));
    Ok(())
}

/// The plans overlay's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlansView {
    /// What was read (`None`: still reading), or why the plans could not be listed.
    pub list: Option<Result<PlanList, String>>,
    /// The selected plan (index into the list).
    pub selected: usize,
    /// Seconds since the epoch when drawn (ages are relative to it).
    pub now_unix: u64,
}

/// What a key in the plans overlay asks of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlansOutcome {
    /// The overlay stays.
    Open,
    /// The key closed it.
    Close,
    /// Ask to restore this plan.
    Restore(PlanRow),
    /// Ask to purge this plan.
    Purge(PlanRow),
}

impl PlansView {
    /// The plans listed (none while reading or after a failure).
    pub fn rows(&self) -> &[PlanRow] {
        match &self.list {
            Some(Ok(l)) => &l.plans,
            _ => &[],
        }
    }

    /// The selected plan, if any.
    pub fn selected_row(&self) -> Option<&PlanRow> {
        self.rows().get(self.selected)
    }

    /// Applies a key's action (the gc view's keys: up/down, Enter restores, the purge key
    /// purges, close closes).
    pub fn key(&mut self, action: Option<Action>) -> PlansOutcome {
        let n = self.rows().len();
        match action {
            Some(Action::Close) => return PlansOutcome::Close,
            Some(Action::Down) if n > 0 => self.selected = (self.selected + 1).min(n - 1),
            Some(Action::Up) => self.selected = self.selected.saturating_sub(1),
            Some(Action::Top) => self.selected = 0,
            Some(Action::Bottom) => self.selected = n.saturating_sub(1),
            Some(Action::Follow) => {
                if let Some(r) = self.selected_row() {
                    return PlansOutcome::Restore(r.clone());
                }
            }
            Some(Action::Purge) => {
                if let Some(r) = self.selected_row() {
                    return PlansOutcome::Purge(r.clone());
                }
            }
            _ => {}
        }
        PlansOutcome::Open
    }
}

/// The overlay's text lines, and which line is the selected plan's.
pub fn plans_lines(view: &PlansView) -> (Vec<String>, Option<usize>) {
    let list = match &view.list {
        None => return (vec!["reading the stored plans…".into()], None),
        Some(Err(e)) => return (vec![format!("the plans could not be listed: {e}")], None),
        Some(Ok(l)) => l,
    };
    let mut out = Vec::new();
    let keeps = matches!(&list.versioning, Ok(v) if v.keeps_versions());
    if list.plans.is_empty() {
        out.push("no stored plans.".into());
        match &list.versioning {
            Ok(v) if v.keeps_versions() => out.push(
                "Deletions on this bucket are recorded as plans; none is stored now (none was \
                 made, or all were purged)."
                    .into(),
            ),
            Ok(_) => out.push(
                "This cache does not keep versions: deletion is final there, so nothing is \
                 recorded and nothing can be restored."
                    .into(),
            ),
            Err(e) => out.push(format!("The bucket's versioning could not be read: {e}")),
        }
    } else {
        if !keeps {
            out.push(
                "This bucket does not keep versions now: restoring may find nothing to restore."
                    .into(),
            );
        }
        out.push(format!(
            "{:<25} {:>4} {:<6} {:>6} {:>9} state",
            "id", "age", "cmd", "objs", "bytes"
        ));
    }
    let first = out.len();
    for p in &list.plans {
        let at = |s: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        let age = age(at(view.now_unix), Some(at(p.created_unix)));
        out.push(format!(
            "{:<25} {:>4} {:<6} {:>6} {:>9} {}",
            p.id,
            age,
            p.command,
            p.objects,
            human_size(p.bytes),
            p.state.label()
        ));
    }
    for (k, why) in &list.unreadable {
        out.push(format!("unreadable: {k}: {why}"));
    }
    let sel = (!list.plans.is_empty()).then(|| first + view.selected.min(list.plans.len() - 1));
    (out, sel)
}

/// Draws the overlay.
pub(crate) fn draw_plans(buf: &mut Buffer, area: Rect, ctx: &Ctx, view: &PlansView) {
    let r = centered(area, 90, 80, 50, 8);
    Clear.render(r, buf);
    let k = |a| ctx.keymap.first(Mode::Gc, a);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(ctx.theme.border(true))
        .title(format!(
            " Past plans ({} restores, {} purges, {} closes) ",
            k(Action::Follow),
            k(Action::Purge),
            k(Action::Close)
        ));
    let inner = block.inner(r);
    block.render(r, buf);
    let (lines, sel) = plans_lines(view);
    let h = inner.height as usize;
    let top = match sel {
        Some(s) if s >= h => s + 1 - h,
        _ => 0,
    };
    let shown: Vec<Line> = lines
        .into_iter()
        .enumerate()
        .skip(top)
        .take(h)
        .map(|(i, text)| {
            if Some(i) == sel {
                Line::styled(text, ctx.theme.selected())
            } else {
                Line::raw(text)
            }
        })
        .collect();
    Paragraph::new(shown)
        .wrap(ratatui::widgets::Wrap { trim: false })
        .render(inner, buf);
}
