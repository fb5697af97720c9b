//! Everything that changes the cache asks first: the confirmation dialogs of sign, delete and
//! deep-verify, the deletion plan they show, and what a confirmed dialog starts.

use crate::index::{Index, RowId};
use crate::tui::app::{App, Level};
use crate::tui::msg::{CopyHandle, DeleteProposal, Effect, PlanHandle};
use crate::tui::overlay::confirm::{Confirm, Confirmed};
use crate::units::human_size;

/// Plan the deletion of `ids` with their referrers, and say what it does: the referrers
/// first, then the counts and the paths. `pins` are the cache's pins: a plan that deletes a
/// pinned path is refused, as is one while any other narinfo cannot be read. At a million
/// rows this takes about a second, so the runtime calls it off the UI thread
/// ([`Effect::PlanDelete`]).
pub fn propose_delete(idx: &Index, ids: &[RowId], pins: &[crate::pins::Pin]) -> DeleteProposal {
    let plan = crate::jobs::delete::plan(idx, ids, true);
    let refusal = plan
        .refusal()
        .map(|why| match plan.unknown.first() {
            Some(u) => format!("{why}: {} ({}); {}", u.key, u.cause, u.advice()),
            None => why,
        })
        .or_else(|| {
            crate::jobs::delete::pinned_refusal(idx, &plan, pins)
                .map(|why| why.replace("or pass --even-if-pinned", "(:pin rm NAME)"))
        });
    let mut lines = Vec::new();
    if !plan.cascaded.is_empty() {
        lines.push(format!(
            "{} path(s) reference these and go too:",
            plan.cascaded.len()
        ));
        let names = sample_names(plan.cascaded.iter().copied(), 500, |r| idx.base_name(r));
        lines.extend(names.iter().map(|name| format!("  + {name}")));
        lines.push(String::new());
    }
    lines.push(format!(
        "Delete {} narinfo(s), {} NAR(s) ({}) and {} listing(s) in {} request(s):",
        plan.narinfos(),
        plan.nar_keys.len(),
        human_size(plan.nar_bytes),
        plan.ls_keys.len(),
        plan.requests()
    ));
    let rows: Vec<RowId> = plan.rows().collect();
    let names = sample_names(rows.iter().copied(), 500, |r| idx.base_name(r));
    lines.extend(names.iter().map(|name| format!("  - {name}")));
    if rows.len() > 500 {
        lines.push(format!("  … and {} more", rows.len() - 500));
    }
    for k in &plan.shared_nars {
        lines.push(format!("  kept: {k} (shared with a remaining path)"));
    }
    lines.push(String::new());
    lines.push(
        "Just before deleting, the cache is looked at again; only what this plan names goes."
            .into(),
    );
    DeleteProposal {
        confirmed: crate::jobs::delete::Confirmed {
            targets: ids.to_vec(),
            cascade: true,
            even_if_pinned: false,
            plan,
        },
        lines,
        refusal,
    }
}

impl App {
    pub(crate) fn confirmed(&mut self, what: Confirmed, fx: &mut Vec<Effect>) {
        match what {
            Confirmed::Quit => {
                self.quit = true;
                fx.push(Effect::Quit);
            }
            Confirmed::VerifyContents(ids) => fx.push(Effect::VerifyContents(ids)),
            Confirmed::Sign(ids) => fx.push(Effect::Sign(ids)),
            Confirmed::Push(paths) => fx.push(Effect::Push(paths)),
            Confirmed::Delete(plan) => {
                self.list.marks.clear();
                fx.push(Effect::Delete(plan))
            }
            Confirmed::Collect => {
                // The plan is consumed: a later one is made afresh.
                if let Some(g) = self.gc.plan.take() {
                    fx.push(Effect::Collect(PlanHandle(g.prepared.clone())));
                }
            }
            Confirmed::PinRemove(name) => fx.push(Effect::PinRemove(name)),
            Confirmed::RestorePlan(id) => fx.push(Effect::RestorePlan(id)),
            Confirmed::PurgePlan(id) => fx.push(Effect::PurgePlan(id)),
            Confirmed::CopyTo(h) => fx.push(Effect::CopyTo(h)),
        }
    }

    /// A copy plan arrived ([`Effect::PlanCopyTo`]): refused when it names untrusted paths,
    /// a note when everything is there already, else a confirmation that shows the plan.
    pub(crate) fn copy_planned(&mut self, r: Result<CopyHandle, String>) {
        let planning = self.planning_notice.take();
        if self.notice.as_ref().is_some_and(|n| Some(n.id) == planning) {
            self.notice = None;
        }
        let h = match r {
            Ok(h) => h,
            Err(why) => return self.notify(Level::Error, format!("copy: {why}")),
        };
        let (dst, plan) = (&h.0.0, &h.0.1);
        if let Some(first) = plan.refused.first() {
            let why = format!(
                "refusing to copy {} untrusted path(s) (first: {}, {}); nothing was written",
                plan.refused.len(),
                first.store_path,
                first.status
            );
            return self.notify(Level::Error, why);
        }
        let c = plan.counts();
        if c.to_copy + c.repairs == 0 {
            return self.notify(
                Level::Info,
                format!("copy: all {} path(s) are already at {}", c.paths, dst.url()),
            );
        }
        let mut lines = vec![
            format!(
                "Copy to {} (NARs before narinfos, references first):",
                dst.url()
            ),
            plan.summary_line(),
        ];
        let names: Vec<String> = plan
            .paths
            .iter()
            .filter(|p| p.state != crate::jobs::copy::PathState::Present)
            .take(200)
            .map(|p| format!("  {}", p.info.store_path.base_name()))
            .collect();
        lines.extend(names);
        if c.to_copy + c.repairs > 200 {
            lines.push(format!("… and {} more", c.to_copy + c.repairs - 200));
        }
        self.overlay = Confirm::ask(
            "Copy to another cache",
            lines,
            "Copy",
            false,
            Confirmed::CopyTo(h),
        );
    }

    /// The marked rows, else the selected one.
    pub(crate) fn targets(&self) -> Vec<RowId> {
        if self.list.marks.is_empty() {
            self.list.selected.into_iter().collect()
        } else {
            self.list.marks.iter().copied().collect()
        }
    }

    pub(crate) fn confirm_sign(&mut self, ids: Vec<RowId>) {
        let Some(key) = self.signing_key.clone() else {
            self.notify(
                Level::Error,
                "no signing key: start narscope with --key-file SK (or set signing-key-file in the config)",
            );
            return;
        };
        if ids.is_empty() {
            self.notify(Level::Info, "nothing selected to sign");
            return;
        }
        let mut lines = vec![format!(
            "Add a signature by {key} to {} narinfo(s); only their Sig lines change \
             (compare-and-swap where the server supports it):",
            ids.len()
        )];
        {
            let idx = self.idx();
            let names = sample_names(ids.iter().copied(), 200, |i| idx.base_name(i));
            lines.extend(names.iter().map(|name| format!("  {name}")));
        }
        if ids.len() > 200 {
            lines.push(format!("… and {} more", ids.len() - 200));
        }
        self.overlay = Confirm::ask("Sign narinfos", lines, "Sign", false, Confirmed::Sign(ids));
    }

    /// The plan always includes the referrers (transitively), listed first, so that nothing
    /// left behind is broken. It is made off the UI thread; [`Msg::DeletePlanned`] opens the
    /// confirmation.
    pub(crate) fn confirm_delete(&mut self, ids: Vec<RowId>, fx: &mut Vec<Effect>) {
        if ids.is_empty() {
            self.notify(Level::Info, "nothing selected to delete");
            return;
        }
        if !self.idx().nars_listed {
            self.notify(
                Level::Warn,
                "wait for the scan to list the NARs before deleting",
            );
            return;
        }
        self.planning_notice = self.notify_id(
            Level::Info,
            format!("planning the deletion of {} path(s)…", ids.len()),
        );
        fx.push(Effect::PlanDelete(ids));
    }

    pub(crate) fn confirm_verify(&mut self, ids: Vec<RowId>) {
        if ids.is_empty() {
            self.notify(Level::Info, "nothing selected to verify");
            return;
        }
        let (bytes, sample): (u64, Vec<String>) = {
            let idx = self.idx();
            let bytes = ids
                .iter()
                .map(|&i| idx.row(i).file_size().unwrap_or(idx.row(i).nar_size))
                .sum();
            let sample = sample_names(ids.iter().copied(), 200, |i| idx.store_path(i));
            (bytes, sample)
        };
        let mut lines = vec![format!(
            "Download and check {} NAR(s), about {}:",
            ids.len(),
            human_size(bytes)
        )];
        lines.extend(sample);
        if ids.len() > 200 {
            lines.push(format!("… and {} more", ids.len() - 200));
        }
        self.overlay = Confirm::ask(
            "Deep-verify NARs",
            lines,
            "Verify",
            false,
            Confirmed::VerifyContents(ids),
        );
    }
}

/// Up to `limit` names for a confirmation list, sorted so the dialog reads the
/// same every time (row ids follow listing order). Huge selections are not
/// sorted in full on the UI thread: the first `limit` are shown as they come.
pub(crate) fn sample_names(
    ids: impl ExactSizeIterator<Item = RowId>,
    limit: usize,
    name: impl Fn(RowId) -> String,
) -> Vec<String> {
    let sortable = ids.len() <= 20_000;
    let mut names: Vec<String> = if sortable {
        ids.map(name).collect()
    } else {
        ids.take(limit).map(name).collect()
    };
    names.sort_unstable();
    names.truncate(limit);
    names
}
