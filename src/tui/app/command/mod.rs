//! The `:` command line. [`parse`] turns a line into a [`Command`] without looking at the
//! state; [`App::run_command`] carries it out, resolving what needs the state (which rows
//! "marked" means, whether a path is in the cache). A command that changes the cache is
//! refused in read-only mode in one place, [`Command::mutating`].

mod parse;

pub use parse::{Command, Switch, Target, Usage, parse};

use parse::PULL_USAGE;

use crate::index::{RowId, RowStatus};
use crate::tui::app::{App, Level};
use crate::tui::keymap::Action;
use crate::tui::msg::Effect;
use crate::tui::overlay::confirm::{Confirm, Confirmed};
use crate::tui::pane::list::query::SortKey;

impl App {
    /// Run a `:` line: parse it, then carry it out (a usage error goes to the status line).
    pub fn command(&mut self, line: &str, fx: &mut Vec<Effect>) {
        match parse(line) {
            Ok(c) => self.run_command(c, fx),
            Err(Usage(u)) => self.notify(Level::Error, u),
        }
    }

    /// The rows a target names; no target means the marked rows, else the selected one.
    fn target_rows(&self, target: Option<Target>) -> Vec<RowId> {
        match target {
            None => self.targets(),
            Some(Target::View) => self.list.view.rows().to_vec(),
            Some(Target::Selected) => self.list.selected.into_iter().collect(),
            Some(Target::Marked) => self.list.marks.iter().copied().collect(),
            Some(Target::Unsigned) => {
                let idx = self.idx();
                self.list
                    .view
                    .rows()
                    .iter()
                    .copied()
                    .filter(|&r| idx.row(r).status == RowStatus::Unsigned)
                    .collect()
            }
        }
    }

    /// The store paths given, or else those of the marked (or selected) rows.
    fn paths_or_targets(&self, paths: Vec<String>) -> Vec<String> {
        if !paths.is_empty() {
            return paths;
        }
        let idx = self.idx();
        self.targets().iter().map(|&r| idx.store_path(r)).collect()
    }

    /// Carry out a parsed command.
    pub fn run_command(&mut self, c: Command, fx: &mut Vec<Effect>) {
        if self.read_only
            && let Some(name) = c.mutating()
        {
            self.notify(Level::Warn, format!("{name} is disabled: read-only mode"));
            return;
        }
        match c {
            Command::Nothing => {}
            Command::Action(a) => self.act(a, fx),
            Command::Sort(k, desc) => {
                self.list.view.sort = k;
                self.list.view.desc =
                    desc.unwrap_or(matches!(k, SortKey::NarSize | SortKey::FileSize));
                self.refilter(fx);
            }
            Command::Only(f) => {
                self.list.view.status = f;
                self.refilter(fx);
            }
            Command::Filter(q) => {
                self.list.view.query = q;
                self.refilter(fx);
            }
            Command::Fuzzy(s) => {
                self.list.view.fuzzy = match s {
                    Switch::On => true,
                    Switch::Off => false,
                    Switch::Toggle => !self.list.view.fuzzy,
                };
                self.refilter(fx);
            }
            Command::Goto(arg) => {
                let found = self.idx().find_path(arg.trim());
                match found {
                    Some(id) => {
                        if let Some(cur) = self.list.selected {
                            self.history.push(cur);
                        }
                        self.select_row(id, fx)
                    }
                    None => self.notify(Level::Error, format!("'{arg}' is not in the cache")),
                }
            }
            Command::Verify(t) => {
                let ids = self.target_rows(t);
                self.confirm_verify(ids);
            }
            Command::Sign(t) => {
                let ids = self.target_rows(t);
                self.confirm_sign(ids);
            }
            Command::Delete(t) => {
                let ids = self.target_rows(t);
                self.confirm_delete(ids, fx);
            }
            Command::Push(paths) => {
                let mut lines = vec![format!(
                    "Upload these local store path(s) and their closures to {}, NARs before \
                     narinfos{}:",
                    self.url,
                    match &self.signing_key {
                        Some(k) => format!(", signed by {k}"),
                        None => ", unsigned (no signing key)".to_string(),
                    }
                )];
                lines.extend(paths.iter().map(|p| format!("  {p}")));
                self.overlay = Confirm::ask("Push", lines, "Push", false, Confirmed::Push(paths));
            }
            Command::Pull(paths, dir) => {
                let paths = self.paths_or_targets(paths);
                if paths.is_empty() {
                    self.notify(Level::Error, PULL_USAGE);
                } else {
                    fx.push(Effect::Pull(paths, dir));
                }
            }
            Command::Gc(req) => self.plan_gc(req, fx),
            Command::Pins => fx.push(Effect::ListPins),
            Command::Doctor => self.open_doctor(fx),
            Command::Plans => self.open_plans(fx),
            Command::PinAdd(name, paths) => {
                let paths = self.paths_or_targets(paths);
                if paths.is_empty() {
                    self.notify(Level::Error, "pin add: nothing marked or selected");
                } else {
                    fx.push(Effect::PinAdd(name, paths));
                }
            }
            Command::PinRemove(name) => {
                self.overlay = Confirm::ask(
                    "Remove a pin",
                    vec![
                        format!("Remove pin '{name}' from {}?", self.url),
                        "Its paths stay in the cache, but the next gc no longer keeps them \
                         (unless another root does)."
                            .into(),
                    ],
                    "Remove",
                    true,
                    Confirmed::PinRemove(name),
                )
            }
            Command::Cancel(Some(id)) => {
                if self.jobs.get(id).is_some_and(|j| j.is_running()) {
                    fx.push(Effect::CancelJob(id));
                } else {
                    self.notify(Level::Error, format!("no running job #{id}"));
                }
            }
            Command::Cancel(None) => self.act(Action::CancelJob, fx),
            Command::CopyTo(dst) => {
                let paths = self.paths_or_targets(Vec::new());
                if paths.is_empty() {
                    self.notify(Level::Error, "copy: nothing marked or selected");
                } else {
                    self.planning_notice = self.notify_id(
                        Level::Info,
                        format!("planning the copy of {} path(s) to {dst}…", paths.len()),
                    );
                    fx.push(Effect::PlanCopyTo(dst, paths));
                }
            }
        }
    }
}
