//! The `:` command line: one command per line, arguments split at spaces.

use crate::index::RowId;
use crate::tui::app::{App, Level};
use crate::tui::keymap::Action;
use crate::tui::msg::{Effect, GcRequest};
use crate::tui::overlay::confirm::{Confirm, Confirmed};
use crate::tui::pane::list::query::{SortKey, StatusFilter};

impl App {
    /// Run a `:` command.
    pub fn command(&mut self, line: &str, fx: &mut Vec<Effect>) {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else { return };
        let rest: Vec<&str> = words.collect();
        let arg = rest.join(" ");
        match cmd {
            "q" | "quit" => self.act(Action::Quit, fx),
            "q!" | "quit!" => self.act(Action::ForceQuit, fx),
            "help" | "h" | "keys" => self.act(Action::Help, fx),
            "sort" => {
                let key = rest.first().and_then(|k| SortKey::parse(k));
                match key {
                    Some(k) => {
                        self.view.sort = k;
                        self.view.desc = match rest.get(1).copied() {
                            Some("desc") => true,
                            Some("asc") => false,
                            _ => matches!(k, SortKey::NarSize | SortKey::FileSize),
                        };
                        self.refilter(fx);
                    }
                    None => self.notify(
                        Level::Error,
                        "usage: sort name|size|stored|age|verdict [asc|desc]",
                    ),
                }
            }
            "only" | "status" => match StatusFilter::parse(arg.trim()) {
                Some(f) => {
                    self.view.status = f;
                    self.refilter(fx);
                }
                None => self.notify(
                    Level::Error,
                    "usage: only all|problems|trusted|content-addressed|untrusted|invalid|unsigned|corrupt|error|pending",
                ),
            },
            "all" => {
                self.view.status = StatusFilter::All;
                self.refilter(fx);
            }
            "filter" | "f" => {
                self.view.query = arg;
                self.refilter(fx);
            }
            "fuzzy" => {
                self.view.fuzzy = match rest.first().copied() {
                    Some("off") => false,
                    Some("on") | None => true,
                    Some(_) => !self.view.fuzzy,
                };
                self.refilter(fx);
            }
            "goto" | "g" | "show" => {
                let found = self.idx().find_path(arg.trim());
                match found {
                    Some(id) => {
                        if let Some(cur) = self.selected {
                            self.history.push(cur);
                        }
                        self.select_row(id, fx)
                    }
                    None => self.notify(Level::Error, format!("'{arg}' is not in the cache")),
                }
            }
            "refresh" | "r" => self.act(Action::Refresh, fx),
            "verify" => {
                let ids: Vec<RowId> = match rest.first().copied() {
                    Some("view") | Some("all") => self.view.rows().to_vec(),
                    Some("selected") => self.selected.into_iter().collect(),
                    Some("marked") => self.marks.iter().copied().collect(),
                    None if !self.marks.is_empty() => self.marks.iter().copied().collect(),
                    None => self.selected.into_iter().collect(),
                    Some(other) => {
                        self.notify(
                            Level::Error,
                            format!("usage: verify [marked|selected|view] (not '{other}')"),
                        );
                        return;
                    }
                };
                self.confirm_verify(ids);
            }
            "sign" | "delete" => {
                let mutating = if cmd == "sign" { Action::Sign } else { Action::Delete };
                if self.read_only {
                    self.notify(Level::Warn, format!("{cmd} is disabled: read-only mode"));
                    return;
                }
                let which = rest.iter().copied().find(|w| !w.starts_with("--"));
                let ids: Vec<RowId> = match which {
                    Some("view") | Some("all") => self.view.rows().to_vec(),
                    Some("selected") => self.selected.into_iter().collect(),
                    Some("marked") => self.marks.iter().copied().collect(),
                    Some("unsigned") => {
                        let idx = self.idx();
                        self.view
                            .rows()
                            .iter()
                            .copied()
                            .filter(|&r| idx.row(r).status == crate::index::RowStatus::Unsigned)
                            .collect()
                    }
                    None => self.targets(),
                    Some(other) => {
                        self.notify(
                            Level::Error,
                            format!("usage: {cmd} [marked|selected|view|unsigned] (not '{other}')"),
                        );
                        return;
                    }
                };
                if mutating == Action::Sign {
                    self.confirm_sign(ids);
                } else {
                    self.confirm_delete(ids, fx);
                }
            }
            "push" => {
                if self.read_only {
                    self.notify(Level::Warn, "push is disabled: read-only mode");
                } else if rest.is_empty() {
                    self.notify(Level::Error, "usage: push STORE-PATH…");
                } else {
                    let paths: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
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
            }
            "pull" => {
                let to = rest.iter().position(|w| *w == "--to");
                let (paths, dir): (Vec<String>, Option<std::path::PathBuf>) = match to {
                    Some(i) => (
                        rest[..i].iter().map(|s| s.to_string()).collect(),
                        rest.get(i + 1).map(std::path::PathBuf::from),
                    ),
                    None => (rest.iter().map(|s| s.to_string()).collect(), None),
                };
                let paths = if paths.is_empty() {
                    self.targets().iter().map(|&r| self.idx().store_path(r)).collect()
                } else {
                    paths
                };
                match dir {
                    Some(d) if !paths.is_empty() => fx.push(Effect::Pull(paths, d)),
                    _ => self.notify(Level::Error, "usage: pull [STORE-PATH…] --to DIR (default: the marked or selected paths)"),
                }
            }
            "gc" => {
                let mut req = GcRequest::default();
                let mut it = rest.iter().copied();
                while let Some(w) = it.next() {
                    let r = match w {
                        "--allow-no-roots" => {
                            req.allow_no_roots = true;
                            Ok(())
                        }
                        "--grace" => it
                            .next()
                            .ok_or_else(|| "--grace needs a duration".to_string())
                            .and_then(crate::gc::parse_duration)
                            .map(|d| req.grace = d),
                        "--keep-younger-than" | "--keep" => it
                            .next()
                            .ok_or_else(|| format!("{w} needs a duration"))
                            .and_then(crate::gc::parse_duration)
                            .map(|d| req.keep_younger = Some(d)),
                        "--roots-file" => it
                            .next()
                            .ok_or_else(|| "--roots-file needs a file".to_string())
                            .map(|f| req.roots_files.push(f.into())),
                        other => Err(format!("unknown option '{other}'")),
                    };
                    if let Err(e) = r {
                        self.notify(
                            Level::Error,
                            format!("{e}; usage: gc [--grace D] [--keep-younger-than D] [--roots-file F] [--allow-no-roots]"),
                        );
                        return;
                    }
                }
                self.plan_gc(req, fx);
            }
            "pins" => fx.push(Effect::ListPins),
            "pin" => match rest.first().copied() {
                Some("ls") | Some("list") | None => fx.push(Effect::ListPins),
                Some(verb @ ("add" | "rm" | "remove")) if self.read_only => {
                    self.notify(Level::Warn, format!("pin {verb} is disabled: read-only mode"))
                }
                Some("add") => {
                    let Some(name) = rest.get(1) else {
                        self.notify(Level::Error, "usage: pin add NAME [STORE-PATH…]");
                        return;
                    };
                    if let Err(e) = crate::gc::check_pin_name(name) {
                        self.notify(Level::Error, e);
                        return;
                    }
                    let paths: Vec<String> = if rest.len() > 2 {
                        rest[2..].iter().map(|s| s.to_string()).collect()
                    } else {
                        let idx = self.idx();
                        self.targets().iter().map(|&r| idx.store_path(r)).collect()
                    };
                    if paths.is_empty() {
                        self.notify(Level::Error, "pin add: nothing marked or selected");
                        return;
                    }
                    fx.push(Effect::PinAdd(name.to_string(), paths));
                }
                Some("rm") | Some("remove") => match rest.get(1) {
                    Some(name) => {
                        self.overlay = Confirm::ask("Remove a pin", vec![
                                format!("Remove pin '{name}' from {}?", self.url),
                                "Its paths stay in the cache, but the next gc no longer keeps them (unless another root does).".into(),
                            ], "Remove", true, Confirmed::PinRemove(name.to_string()))
                    }
                    None => self.notify(Level::Error, "usage: pin rm NAME"),
                },
                Some(other) => self.notify(
                    Level::Error,
                    format!("usage: pin ls | add NAME [PATH…] | rm NAME (not '{other}')"),
                ),
            },
            "mark" => match rest.first().copied() {
                Some("all") | Some("view") => self.act(Action::MarkAllInView, fx),
                Some("none") | Some("clear") => self.act(Action::ClearMarks, fx),
                _ => self.notify(Level::Error, "usage: mark all|none"),
            },
            "copy" | "y" => self.act(Action::CopyPath, fx),
            "cancel" => match rest.first().and_then(|s| s.trim_start_matches('#').parse::<u64>().ok()) {
                Some(id) => {
                    if self.jobs.iter().any(|j| j.id == id && j.is_running()) {
                        fx.push(Effect::CancelJob(id));
                    } else {
                        self.notify(Level::Error, format!("no running job #{id}"));
                    }
                }
                None => self.act(Action::CancelJob, fx),
            },
            other => {
                if let Some(a) = Action::from_name(other) {
                    self.act(a, fx);
                } else {
                    self.notify(
                        Level::Error,
                        format!("unknown command '{other}' (see ? for commands)"),
                    );
                }
            }
        }
    }
}
