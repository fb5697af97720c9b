//! What each [`Msg`] does to the state, and when the list is rebuilt from the index (at once
//! after a key, throttled while a scan streams rows in).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crate::index::scan::ScanError;
use crate::jobs::{ErrorKind, JobEvent, JobState};
use crate::tui::app::{App, DeleteProposal, Focus, Level};
use crate::tui::msg::{Effect, Msg, PLAN_PURGE_TITLE, PLAN_RESTORE_TITLE, PinChange};
use crate::tui::overlay::Overlay;
use crate::tui::overlay::confirm::{Confirm, Confirmed};
use crate::tui::overlay::gc::GcView;
use crate::tui::scroll::Scroll;

impl App {
    /// Handle one message.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut fx = Vec::new();
        match msg {
            Msg::Key(k) => {
                if k.kind == crossterm::event::KeyEventKind::Press {
                    self.in_key = true;
                    self.on_key(k, &mut fx);
                    self.in_key = false;
                }
            }
            Msg::Mouse(m) => self.on_mouse(m, &mut fx),
            Msg::Resize => {}
            Msg::Versions(u) => self.versions.apply(u),
            Msg::IndexChanged => {
                self.view_dirty = true;
                self.maybe_rebuild(&mut fx, false);
            }
            Msg::Tick => {
                self.now = SystemTime::now();
                self.ticks += 1;
                self.maybe_rebuild(&mut fx, false);
            }
            Msg::ScanStarted(p, h) => {
                self.scan.progress = Some(p);
                self.scan.running = true;
                self.jobs.push(h, false);
            }
            Msg::ScanFinished(r) => {
                self.scan.running = false;
                match &r {
                    Ok(s) => {
                        let what = if self.warm && s.fetched == 0 && s.removed == 0 {
                            "nothing changed".to_string()
                        } else {
                            format!(
                                "{} fetched, {} re-judged, {} removed",
                                s.fetched, s.rejudged, s.removed
                            )
                        };
                        self.notify(
                            Level::Info,
                            format!(
                                "scanned {} narinfos and {} NARs in {:.1} s: {what}",
                                s.listed, s.nars, s.seconds
                            ),
                        );
                        fx.push(Effect::Save);
                        if self.list.view.upstream.configured() {
                            self.list.view.upstream.running = true;
                            fx.push(Effect::CheckUpstream);
                        }
                    }
                    // Cancelling is the user's own doing, not a failure.
                    Err(ScanError::Cancelled) => self.notify(Level::Warn, "scan cancelled"),
                    Err(e) => self.notify(Level::Error, format!("scan failed: {e}")),
                }
                self.scan.last = Some(r);
                self.view_dirty = true;
                self.maybe_rebuild(&mut fx, true);
            }
            Msg::UpstreamChecked { rows, done } => {
                let marks = &mut self.list.view.upstream;
                for (id, served) in rows {
                    marks.set(id, served);
                }
                if done {
                    marks.running = false;
                    let text = format!(
                        "upstream: {} of {} served by {} (filter: upstream:yes, upstream:no)",
                        crate::units::thousands(marks.served),
                        crate::units::thousands(marks.checked),
                        marks.names.join(", ")
                    );
                    self.notify(Level::Info, text);
                }
                self.view_dirty = true;
                self.maybe_rebuild(&mut fx, done);
            }
            Msg::DetailLoaded(d) => {
                if Some(d.id) == self.list.selected && self.details.show(*d) {
                    self.sig_scroll.reset();
                }
            }
            Msg::JobStarted(h) => {
                self.notify(Level::Info, format!("started job #{}: {}", h.id, h.title));
                self.jobs.push(h, true);
            }
            Msg::Job(JobEvent::Progress(_)) => {
                // The jobs pane redraws anyway; the list is rebuilt only when the job has
                // changed the index (a verdict, a deletion), not on every progress tick.
                if self.list.view.is_stale(&self.idx()) {
                    self.view_dirty = true;
                    self.maybe_rebuild(&mut fx, false);
                }
            }
            Msg::JobThrottled(id, note) => self.throttle_note = Some((id, note)),
            Msg::Job(JobEvent::Finished(id, state)) => {
                if let Some(j) = self.jobs.get(id) {
                    let failed = j.progress.failed.load(Ordering::Relaxed);
                    let done = j.progress.done.load(Ordering::Relaxed);
                    let (level, text) = match &state {
                        JobState::Done if failed > 0 => (
                            Level::Warn,
                            format!(
                                "job #{id} {}: {done} done, {failed} failed (see Jobs)",
                                j.title
                            ),
                        ),
                        JobState::Done => {
                            (Level::Info, format!("job #{id} {}: {done} done", j.title))
                        }
                        JobState::Failed(e) => (Level::Error, format!("job #{id} failed: {e}")),
                        JobState::Cancelled => (Level::Warn, format!("job #{id} cancelled")),
                        JobState::Running => (Level::Info, String::new()),
                    };
                    let text = match self.throttle_note.take() {
                        Some((of, note)) if of == id => format!("{text}; {note}"),
                        _ => text,
                    };
                    // A restore brings paths back, a purge changes the versions: re-read.
                    let plan_job = j.title.starts_with(PLAN_RESTORE_TITLE)
                        || j.title.starts_with(PLAN_PURGE_TITLE);
                    if j.kind != crate::jobs::JobKind::Scan {
                        self.notify(level, text);
                        fx.push(Effect::Save);
                    }
                    if plan_job && !self.scan.running {
                        fx.push(Effect::Scan);
                    }
                }
                self.view_dirty = true;
                self.maybe_rebuild(&mut fx, true);
                if let Some(id) = self.list.selected {
                    fx.push(Effect::LoadDetail(id));
                }
            }
            Msg::Saved(Err(e)) => self.notify(Level::Warn, format!("index not saved: {e}")),
            Msg::Saved(Ok(_)) => {}
            Msg::Copied(Err(e)) => self.notify(Level::Error, format!("copy failed: {e}")),
            Msg::Copied(Ok(())) => {}
            Msg::CopyPlanned(r) => self.copy_planned(r),
            Msg::DeletePlanned(p) => {
                let DeleteProposal {
                    confirmed,
                    lines,
                    refusal,
                } = *p;
                let planning = self.planning_notice.take();
                if self.notice.as_ref().is_some_and(|n| Some(n.id) == planning) {
                    self.notice = None;
                }
                match refusal {
                    Some(why) => self.notify(Level::Error, why),
                    None => {
                        let p = &confirmed.plan;
                        let objects = (p.narinfos() + p.nar_keys.len() + p.ls_keys.len()) as u64;
                        let mut lines = lines;
                        lines.extend(self.deletion_meaning(objects, p.nar_bytes));
                        self.overlay = Confirm::ask(
                            "Delete from the cache",
                            lines,
                            "Delete",
                            true,
                            Confirmed::Delete(Box::new(confirmed)),
                        )
                    }
                }
            }
            Msg::GcPlanned(r) => {
                self.gc.planning = false;
                match r {
                    Ok(summary) => {
                        self.notify(Level::Info, format!("gc plan: {}", summary.totals()));
                        self.gc.plan = Some(summary);
                        self.overlay = Overlay::Gc(GcView::default());
                    }
                    // A safety rule that refuses to plan (no roots, unreadable narinfos) is
                    // a warning to act on, not a failure of the cache.
                    Err(e) if e.kind() == ErrorKind::Refused => {
                        self.notify(Level::Warn, format!("gc refused: {e}"))
                    }
                    Err(e) => self.notify(Level::Error, format!("gc plan failed: {e}")),
                }
            }
            Msg::PinDone { name, result } => {
                // The roots changed: a plan shown is stale.
                self.gc.plan = None;
                if matches!(self.overlay, Overlay::Gc(_)) {
                    self.overlay = Overlay::None;
                }
                match result {
                    Ok(PinChange::Written(n)) => {
                        self.notify(Level::Info, format!("pinned {n} path(s) as '{name}'"))
                    }
                    Ok(PinChange::Removed) => {
                        self.notify(Level::Info, format!("removed pin '{name}'"))
                    }
                    Ok(PinChange::Missing) => {
                        self.notify(Level::Error, format!("there is no pin '{name}'"))
                    }
                    Err(e) => self.notify(Level::Error, format!("pin {name}: {e}")),
                }
            }
            Msg::Pins(Ok(pins)) => {
                let mut lines = Vec::new();
                if pins.is_empty() {
                    lines.push("No pins: gc keeps nothing but young paths. Add one with".into());
                    lines.push(
                        ":pin add NAME [STORE-PATH…] (default: the marked or selected paths)."
                            .into(),
                    );
                }
                for p in pins {
                    lines.push(format!("{} ({} path(s))", p.name, p.paths.len()));
                    lines.extend(p.paths.iter().map(|x| format!("  {x}")));
                }
                self.overlay = Overlay::Info {
                    title: format!("Pins in {}", self.url),
                    lines,
                    scroll: Scroll::new(10),
                };
            }
            Msg::Doctor(report) => {
                // Shown only if its overlay is still open (Esc while it ran drops it).
                if let Overlay::Doctor(v) = &mut self.overlay {
                    v.report = Some(report);
                }
            }
            Msg::Plans(r) => {
                // Shown only if its overlay is still open.
                if let Overlay::Plans(v) = &mut self.overlay {
                    v.list = Some(r);
                    v.selected = 0;
                }
            }
            Msg::Pins(Err(e)) => self.notify(Level::Error, format!("cannot list pins: {e}")),
            Msg::SpaceBuilt(r) => self.space_built(r, &mut fx),
            Msg::SpaceGroupTimeline {
                generation,
                name,
                timeline,
            } => self.space_group_built(generation, name, timeline),
        }
        // The space view follows the index: a report of an older generation is rebuilt.
        self.space_check(&mut fx);
        fx
    }

    /// Rebuild the view now if it is stale, or (while a scan streams rows in) if the last
    /// rebuild is old enough for its cost.
    pub(crate) fn maybe_rebuild(&mut self, fx: &mut Vec<Effect>, force: bool) {
        if !self.view_dirty && !force {
            return;
        }
        let throttle = if self.scan.running {
            (self.rebuild_cost * 4).max(Duration::from_millis(150))
        } else {
            Duration::ZERO
        };
        if !force && self.last_rebuild.is_some_and(|t| t.elapsed() < throttle) {
            return;
        }
        let before = self.list.selected;
        self.rebuild();
        if self.list.selected != before
            && let Some(id) = self.list.selected
        {
            self.request_detail(id, fx);
        }
    }

    /// Rebuild the view from the index, keeping the selected row.
    pub fn rebuild(&mut self) {
        let t = Instant::now();
        {
            let index = self.index.clone();
            let idx = index.read().unwrap_or_else(|p| p.into_inner());
            self.list.view.refresh(&idx);
            self.list
                .marks
                .retain(|&m| (m as usize) < idx.len() && idx.row(m).is_live());
        }
        if self.inspector == Focus::Overview {
            self.stats();
        }
        self.rebuild_cost = t.elapsed();
        self.last_rebuild = Some(Instant::now());
        self.view_dirty = false;
        let n = self.list.view.rows().len();
        if !self.user_moved {
            self.list.scroll.cursor = 0;
            self.list.selected = self.list.view.rows().first().copied();
        }
        match self
            .list
            .selected
            .and_then(|id| self.list.view.position(id))
        {
            Some(pos) => self.list.scroll.cursor = pos,
            None => {
                self.list.scroll.cursor = self.list.scroll.cursor.min(n.saturating_sub(1));
                self.list.selected = self.list.view.rows().get(self.list.scroll.cursor).copied();
            }
        }
        self.scroll_to_cursor();
    }

    pub(crate) fn refilter(&mut self, fx: &mut Vec<Effect>) {
        let before = self.list.selected;
        self.rebuild();
        if self.list.selected != before
            && let Some(id) = self.list.selected
        {
            self.request_detail(id, fx);
        }
    }
}
