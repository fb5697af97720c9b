//! The dashboard's state and its reducer: [`App::update`] takes a [`Msg`], changes the state
//! and returns the [`Effect`]s to run. It does no I/O and never waits; everything slow is an
//! effect whose result comes back as a message.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::detail::Detail;
use super::gcview::{GcSummary, GcView};
use super::keymap::{Action, Key, Keymap, Mode};
use super::theme::Theme;
use super::view::{SortKey, StatusFilter, View};
use crate::index::scan::{ScanProgress, ScanSummary};
use crate::index::{Index, Problems, RowId, Totals};
use crate::jobs::{JobEvent, JobHandle, JobId, JobState};

/// A pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// The store path list.
    List,
    /// The selected narinfo.
    Details,
    /// Its signatures.
    Signatures,
    /// Totals and problems.
    Overview,
    /// Background jobs.
    Jobs,
}

impl Focus {
    const CYCLE: [Focus; 5] = [
        Focus::List,
        Focus::Details,
        Focus::Signatures,
        Focus::Overview,
        Focus::Jobs,
    ];
}

/// A one-line text input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineInput {
    /// The text.
    pub text: String,
    /// Cursor position, in characters.
    pub cursor: usize,
}

/// What a key did to a [`LineInput`].
enum Edit {
    Changed,
    Unchanged,
    Submit,
    Cancel,
}

impl LineInput {
    fn with(text: &str) -> LineInput {
        LineInput {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    fn byte_at(&self, cursor: usize) -> usize {
        self.text
            .char_indices()
            .nth(cursor)
            .map(|(i, _)| i)
            .unwrap_or(self.text.len())
    }

    fn key(&mut self, k: &KeyEvent) -> Edit {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Enter => Edit::Submit,
            KeyCode::Esc => Edit::Cancel,
            KeyCode::Char('c') if ctrl => Edit::Cancel,
            KeyCode::Char('u') if ctrl => {
                let b = self.byte_at(self.cursor);
                self.text.replace_range(..b, "");
                self.cursor = 0;
                Edit::Changed
            }
            KeyCode::Char('w') if ctrl => {
                let b = self.byte_at(self.cursor);
                let head = &self.text[..b];
                let keep = head.trim_end().rfind(' ').map(|i| i + 1).unwrap_or(0);
                self.text.replace_range(keep..b, "");
                self.cursor = self.text[..keep].chars().count();
                Edit::Changed
            }
            KeyCode::Char(c) if !ctrl => {
                let b = self.byte_at(self.cursor);
                self.text.insert(b, c);
                self.cursor += 1;
                Edit::Changed
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let b = self.byte_at(self.cursor - 1);
                self.text.remove(b);
                self.cursor -= 1;
                Edit::Changed
            }
            KeyCode::Delete if self.cursor < self.text.chars().count() => {
                let b = self.byte_at(self.cursor);
                self.text.remove(b);
                Edit::Changed
            }
            KeyCode::Left => {
                self.cursor = self.cursor.saturating_sub(1);
                Edit::Unchanged
            }
            KeyCode::Right => {
                self.cursor = (self.cursor + 1).min(self.text.chars().count());
                Edit::Unchanged
            }
            KeyCode::Home => {
                self.cursor = 0;
                Edit::Unchanged
            }
            KeyCode::End => {
                self.cursor = self.text.chars().count();
                Edit::Unchanged
            }
            _ => Edit::Unchanged,
        }
    }
}

/// What a confirmed dialog starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Quit although jobs are running.
    Quit,
    /// Deep-verify these rows.
    VerifyContents(Vec<RowId>),
    /// Sign these rows.
    Sign(Vec<RowId>),
    /// Carry out this confirmed deletion.
    Delete(Box<crate::jobs::delete::Confirmed>),
    /// Push these local paths.
    Push(Vec<String>),
    /// Collect the garbage of the plan shown.
    Collect,
    /// Remove this pin.
    PinRemove(String),
}

/// A confirmation dialog. It defaults to Cancel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// Title.
    pub title: String,
    /// What will happen, one line each (scrollable).
    pub lines: Vec<String>,
    /// The confirm button's label.
    pub yes_label: String,
    /// Whether the confirm button is highlighted.
    pub yes_selected: bool,
    /// First line shown.
    pub scroll: usize,
    /// Whether this destroys something (drawn in the danger colour).
    pub destructive: bool,
    /// What confirming does.
    pub then: Confirmed,
}

impl Confirm {
    /// The overlay asking `title`, listing `lines`, with cancel selected.
    pub fn ask(
        title: &str,
        lines: Vec<String>,
        yes_label: &str,
        destructive: bool,
        then: Confirmed,
    ) -> Overlay {
        Overlay::Confirm(Confirm {
            title: title.into(),
            lines,
            yes_label: yes_label.into(),
            yes_selected: false,
            scroll: 0,
            destructive,
            then,
        })
    }
}

/// An overlay on top of the panes; it takes the keys while open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// None.
    None,
    /// Help, scrolled to a line.
    Help {
        /// First line shown.
        scroll: usize,
    },
    /// The `:` command line.
    Command(LineInput),
    /// A confirmation.
    Confirm(Confirm),
    /// The garbage-collection plan.
    Gc(GcView),
    /// Information to read (closes with the help keys).
    Info {
        /// Title.
        title: String,
        /// Lines.
        lines: Vec<String>,
        /// First line shown.
        scroll: usize,
    },
}

/// Status line severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Information; goes away at the next key.
    Info,
    /// A warning; goes away at the next key.
    Warn,
    /// An error; stays until a key is pressed.
    Error,
}

/// A status line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Severity.
    pub level: Level,
    /// Text.
    pub text: String,
    /// Which notice it is (each `notify` numbers them), so that the one a later message
    /// answers can be told from a newer one.
    pub id: u64,
}

/// Messages into the reducer.
#[derive(Debug)]
pub enum Msg {
    /// A key press.
    Key(KeyEvent),
    /// A mouse event.
    Mouse(MouseEvent),
    /// The terminal was resized.
    Resize,
    /// The index changed.
    IndexChanged,
    /// A scan started.
    ScanStarted(Arc<ScanProgress>, Arc<JobHandle>),
    /// A scan ended.
    ScanFinished(Result<ScanSummary, String>),
    /// A detail was loaded.
    DetailLoaded(Box<Detail>),
    /// A job started.
    JobStarted(Arc<JobHandle>),
    /// A job reported.
    Job(JobEvent),
    /// Time passed (sent while something runs).
    Tick,
    /// The index was saved (or not).
    Saved(Result<bool, String>),
    /// The clipboard write went out.
    Copied(Result<(), String>),
    /// A deletion was planned (see [`Effect::PlanDelete`]).
    DeletePlanned(Box<DeleteProposal>),
    /// A garbage-collection plan was made (or not).
    GcPlanned(Result<Arc<GcSummary>, String>),
    /// A pin was written or removed: what happened.
    PinDone(Result<String, String>),
    /// The pins of the cache.
    Pins(Result<Vec<crate::gc::Pin>, String>),
}

/// What a garbage-collection plan is made from (besides the pins in the cache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcRequest {
    /// Nothing younger is deleted.
    pub grace: Duration,
    /// Keep every narinfo newer than this.
    pub keep_younger: Option<Duration>,
    /// Files of store paths to keep.
    pub roots_files: Vec<std::path::PathBuf>,
    /// Whether collecting without any root is allowed.
    pub allow_no_roots: bool,
}

impl Default for GcRequest {
    fn default() -> Self {
        GcRequest {
            grace: crate::gc::DEFAULT_GRACE,
            keep_younger: None,
            roots_files: Vec::new(),
            allow_no_roots: false,
        }
    }
}

/// A plan handed to the runtime (compared by identity).
#[derive(Clone, Debug)]
pub struct PlanHandle(pub Arc<crate::gc::Prepared>);

impl PartialEq for PlanHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PlanHandle {}

/// A deletion plan and the confirmation text that lists it, or why it is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteProposal {
    /// What would be confirmed (the plan with every referrer, transitively).
    pub confirmed: crate::jobs::delete::Confirmed,
    /// What the confirmation dialog says.
    pub lines: Vec<String>,
    /// Why it may not go ahead (unreadable narinfos, pinned paths), if so.
    pub refusal: Option<String>,
}

/// Plan the deletion of `ids` with their referrers, and say what it does: the referrers
/// first, then the counts and the paths. `pins` are the cache's pins: a plan that deletes a
/// pinned path is refused, as is one while any other narinfo cannot be read. At a million
/// rows this takes about a second, so the runtime calls it off the UI thread
/// ([`Effect::PlanDelete`]).
pub fn propose_delete(idx: &Index, ids: &[RowId], pins: &[crate::gc::Pin]) -> DeleteProposal {
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
        human(plan.nar_bytes),
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

/// Work for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Leave.
    Quit,
    /// Plan the deletion of these rows (see [`propose_delete`]); the answer is
    /// [`Msg::DeletePlanned`].
    PlanDelete(Vec<RowId>),
    /// Start a scan (refresh).
    Scan,
    /// Load the detail of a row (the newest request wins).
    LoadDetail(RowId),
    /// Start a deep verification of these rows.
    VerifyContents(Vec<RowId>),
    /// Sign these rows with the signing key.
    Sign(Vec<RowId>),
    /// Carry out a confirmed deletion (looked at again just before deleting).
    Delete(Box<crate::jobs::delete::Confirmed>),
    /// Push local store paths (with their closures).
    Push(Vec<String>),
    /// Pull paths (with their closures) into a directory.
    Pull(Vec<String>, std::path::PathBuf),
    /// Cancel a job.
    CancelJob(JobId),
    /// Put text on the clipboard.
    Copy(String),
    /// Save the index.
    Save,
    /// Make a garbage-collection plan (the index must be a complete scan).
    PlanGc(GcRequest),
    /// Carry out a plan: re-scan, re-plan, delete what both plans agree on.
    Collect(PlanHandle),
    /// Create or replace a pin.
    PinAdd(String, Vec<String>),
    /// Remove a pin.
    PinRemove(String),
    /// List the pins.
    ListPins,
}

/// Where panes were drawn (for the mouse).
#[derive(Clone, Copy, Debug, Default)]
pub struct Areas {
    /// The list pane.
    pub list: Rect,
    /// The first row of the list (below the column header).
    pub list_rows_top: u16,
    /// Details.
    pub details: Rect,
    /// Signatures.
    pub signatures: Rect,
    /// Overview.
    pub overview: Rect,
    /// Jobs.
    pub jobs: Rect,
}

/// The dashboard.
pub struct App {
    /// The index shown.
    pub index: Arc<RwLock<Index>>,
    /// The cache URL.
    pub url: String,
    /// Hide every action that changes the cache.
    pub read_only: bool,
    /// Keys.
    pub keymap: Keymap,
    /// Colours.
    pub theme: Theme,
    /// Sort and filters.
    pub view: View,
    /// Cursor position in the view.
    pub cursor: usize,
    /// First row shown.
    pub offset: usize,
    /// The selected row (kept across refreshes).
    pub selected: Option<RowId>,
    /// Marked rows.
    pub marks: BTreeSet<RowId>,
    /// Focused pane.
    pub focus: Focus,
    /// Which pane the right-hand side shows.
    pub inspector: Focus,
    /// The open overlay.
    pub overlay: Overlay,
    /// The `/` filter being typed.
    pub filter_input: Option<LineInput>,
    /// The loaded detail of the selected row.
    pub detail: Option<Arc<Detail>>,
    /// Scroll of the details pane.
    pub detail_scroll: u16,
    /// Scroll of the signatures pane.
    pub sig_scroll: u16,
    /// Scroll of the overview.
    pub overview_scroll: u16,
    /// Selection among references and referrers in the details pane.
    pub ref_cursor: usize,
    /// Rows left by Follow (Back returns).
    pub history: Vec<RowId>,
    /// The running scan's counters.
    pub scan: Option<Arc<ScanProgress>>,
    /// Whether a scan runs.
    pub scanning: bool,
    /// How the last scan went.
    pub last_scan: Option<Result<ScanSummary, String>>,
    /// Jobs, newest last.
    pub jobs: Vec<Arc<JobHandle>>,
    /// Selected job.
    pub job_cursor: usize,
    /// The status line.
    pub notice: Option<Notice>,
    /// Notices given so far (the next one's id).
    notices: u64,
    /// The "planning the deletion…" notice, until the plan arrives.
    planning_notice: Option<u64>,
    /// Rows the list showed last frame (set while drawing).
    pub list_height: Cell<usize>,
    /// Where panes were drawn last frame.
    pub areas: Cell<Areas>,
    /// The first list row drawn last frame.
    pub drawn_offset: Cell<usize>,
    /// Set by Quit.
    pub quit: bool,
    /// The clock shown (ages); injected so tests are stable.
    pub now: SystemTime,
    /// The log file, shown in help.
    pub log_path: Option<String>,
    /// Whether the index was loaded from disk.
    pub warm: bool,
    /// The name of the signing key (`None`: signing is off).
    pub signing_key: Option<String>,
    /// Ticks seen (drives the spinner).
    pub ticks: u64,
    /// Whether the user has moved the cursor (until then it stays on the first row).
    pub user_moved: bool,
    /// The garbage-collection plan last made.
    pub gc: Option<Arc<GcSummary>>,
    /// Whether a plan is being made.
    pub gc_planning: bool,
    /// Lines the GC view showed last frame.
    pub gc_height: Cell<usize>,
    in_key: bool,
    view_dirty: bool,
    /// When the list was last rebuilt (read by the reducer tests).
    pub(super) last_rebuild: Option<Instant>,
    rebuild_cost: Duration,
    stats: Option<(u64, Arc<(Totals, Problems)>)>,
}

impl App {
    /// A dashboard over `index`.
    pub fn new(index: Arc<RwLock<Index>>, url: &str, keymap: Keymap, theme: Theme) -> App {
        let mut app = App {
            index,
            url: url.to_string(),
            read_only: false,
            keymap,
            theme,
            view: View::default(),
            cursor: 0,
            offset: 0,
            selected: None,
            marks: BTreeSet::new(),
            focus: Focus::List,
            inspector: Focus::Details,
            overlay: Overlay::None,
            filter_input: None,
            detail: None,
            detail_scroll: 0,
            sig_scroll: 0,
            overview_scroll: 0,
            ref_cursor: 0,
            history: Vec::new(),
            scan: None,
            scanning: false,
            last_scan: None,
            jobs: Vec::new(),
            job_cursor: 0,
            notice: None,
            notices: 0,
            planning_notice: None,
            list_height: Cell::new(20),
            areas: Cell::new(Areas::default()),
            drawn_offset: Cell::new(0),
            quit: false,
            now: SystemTime::now(),
            log_path: None,
            warm: false,
            signing_key: None,
            ticks: 0,
            user_moved: false,
            gc: None,
            gc_planning: false,
            gc_height: Cell::new(10),
            in_key: false,
            view_dirty: true,
            last_rebuild: None,
            rebuild_cost: Duration::ZERO,
            stats: None,
        };
        app.rebuild();
        app
    }

    /// Read the index.
    pub fn idx(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Totals and problems of the current index (recomputed when it changed).
    pub fn stats(&mut self) -> Arc<(Totals, Problems)> {
        let generation = self.idx().generation;
        if let Some((g, s)) = &self.stats
            && *g == generation
        {
            return s.clone();
        }
        let s = {
            let idx = self.idx();
            Arc::new((idx.totals(), idx.problems()))
        };
        self.stats = Some((generation, s.clone()));
        s
    }

    /// The stats as last computed (for drawing, which cannot recompute).
    pub fn cached_stats(&self) -> Option<Arc<(Totals, Problems)>> {
        self.stats.as_ref().map(|(_, s)| s.clone())
    }

    /// Any job (other than scans) still running.
    pub fn running_jobs(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| j.is_running() && j.kind != crate::jobs::JobKind::Scan)
            .count()
    }

    /// Show `text` on the status line.
    pub(super) fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notify_id(level, text);
    }

    /// Like [`App::notify`]; the notice's id, unless it was not shown.
    fn notify_id(&mut self, level: Level, text: impl Into<String>) -> Option<u64> {
        // Background news does not push away a warning the user has not seen.
        if level == Level::Info
            && self.notice.as_ref().is_some_and(|n| n.level != Level::Info)
            && !self.in_key
        {
            return None;
        }
        self.notices += 1;
        self.notice = Some(Notice {
            level,
            text: text.into(),
            id: self.notices,
        });
        Some(self.notices)
    }

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
                self.scan = Some(p);
                self.scanning = true;
                self.jobs.push(h);
            }
            Msg::ScanFinished(r) => {
                self.scanning = false;
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
                    }
                    Err(e) => self.notify(Level::Error, format!("scan failed: {e}")),
                }
                self.last_scan = Some(r);
                self.view_dirty = true;
                self.maybe_rebuild(&mut fx, true);
            }
            Msg::DetailLoaded(d) => {
                if Some(d.id) == self.selected {
                    let same = self.detail.as_ref().is_some_and(|o| o.id == d.id);
                    if !same {
                        self.ref_cursor = 0;
                        self.detail_scroll = 0;
                        self.sig_scroll = 0;
                    }
                    self.detail = Some(Arc::new(*d));
                }
            }
            Msg::JobStarted(h) => {
                self.notify(Level::Info, format!("started job #{}: {}", h.id, h.title));
                self.jobs.push(h);
                self.job_cursor = self.jobs.len() - 1;
            }
            Msg::Job(JobEvent::Progress(_)) => {
                // The jobs pane redraws anyway; the list is rebuilt only when the job has
                // changed the index (a verdict, a deletion), not on every progress tick.
                if self.view.is_stale(&self.idx()) {
                    self.view_dirty = true;
                    self.maybe_rebuild(&mut fx, false);
                }
            }
            Msg::Job(JobEvent::Finished(id, state)) => {
                if let Some(j) = self.jobs.iter().find(|j| j.id == id) {
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
                    if j.kind != crate::jobs::JobKind::Scan {
                        self.notify(level, text);
                        fx.push(Effect::Save);
                    }
                }
                self.view_dirty = true;
                self.maybe_rebuild(&mut fx, true);
                if let Some(id) = self.selected {
                    fx.push(Effect::LoadDetail(id));
                }
            }
            Msg::Saved(Err(e)) => self.notify(Level::Warn, format!("index not saved: {e}")),
            Msg::Saved(Ok(_)) => {}
            Msg::Copied(Err(e)) => self.notify(Level::Error, format!("copy failed: {e}")),
            Msg::Copied(Ok(())) => {}
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
                self.gc_planning = false;
                match r {
                    Ok(summary) => {
                        self.notify(Level::Info, format!("gc plan: {}", summary.totals()));
                        self.gc = Some(summary);
                        self.overlay = Overlay::Gc(GcView::default());
                    }
                    Err(e) => self.notify(Level::Error, format!("gc plan failed: {e}")),
                }
            }
            Msg::PinDone(r) => {
                // The roots changed: a plan shown is stale.
                self.gc = None;
                if matches!(self.overlay, Overlay::Gc(_)) {
                    self.overlay = Overlay::None;
                }
                match r {
                    Ok(t) => self.notify(Level::Info, t),
                    Err(e) => self.notify(Level::Error, e),
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
                    scroll: 0,
                };
            }
            Msg::Pins(Err(e)) => self.notify(Level::Error, format!("cannot list pins: {e}")),
        }
        fx
    }

    /// Rebuild the view now if it is stale, or (while a scan streams rows in) if the last
    /// rebuild is old enough for its cost.
    fn maybe_rebuild(&mut self, fx: &mut Vec<Effect>, force: bool) {
        if !self.view_dirty && !force {
            return;
        }
        let throttle = if self.scanning {
            (self.rebuild_cost * 4).max(Duration::from_millis(150))
        } else {
            Duration::ZERO
        };
        if !force && self.last_rebuild.is_some_and(|t| t.elapsed() < throttle) {
            return;
        }
        let before = self.selected;
        self.rebuild();
        if self.selected != before
            && let Some(id) = self.selected
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
            self.view.refresh(&idx);
            self.marks
                .retain(|&m| (m as usize) < idx.len() && idx.row(m).is_live());
        }
        if self.inspector == Focus::Overview {
            self.stats();
        }
        self.rebuild_cost = t.elapsed();
        self.last_rebuild = Some(Instant::now());
        self.view_dirty = false;
        let n = self.view.rows().len();
        if !self.user_moved {
            self.cursor = 0;
            self.selected = self.view.rows().first().copied();
        }
        match self.selected.and_then(|id| self.view.position(id)) {
            Some(pos) => self.cursor = pos,
            None => {
                self.cursor = self.cursor.min(n.saturating_sub(1));
                self.selected = self.view.rows().get(self.cursor).copied();
            }
        }
        self.scroll_to_cursor();
    }

    fn scroll_to_cursor(&mut self) {
        let h = self.list_height.get().max(1);
        self.offset = self.offset.max(self.drawn_offset.get().min(self.cursor));
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + h {
            self.offset = self.cursor + 1 - h;
        }
        let n = self.view.rows().len();
        if self.offset + h > n {
            self.offset = n.saturating_sub(h);
        }
    }

    fn request_detail(&mut self, id: RowId, fx: &mut Vec<Effect>) {
        fx.push(Effect::LoadDetail(id));
    }

    fn select_pos(&mut self, pos: usize, fx: &mut Vec<Effect>) {
        self.user_moved = true;
        let n = self.view.rows().len();
        if n == 0 {
            self.cursor = 0;
            self.selected = None;
            return;
        }
        self.cursor = pos.min(n - 1);
        let id = self.view.rows()[self.cursor];
        self.scroll_to_cursor();
        if self.selected != Some(id) {
            self.selected = Some(id);
            self.request_detail(id, fx);
        }
    }

    /// Select a row by id, clearing filters if it is hidden by them.
    fn select_row(&mut self, id: RowId, fx: &mut Vec<Effect>) {
        let hidden = {
            let idx = self.idx();
            (id as usize) >= idx.len() || !idx.row(id).is_live()
        };
        if hidden {
            self.notify(Level::Warn, "that path is not in the cache");
            return;
        }
        if self.view.position(id).is_none() {
            self.view.query.clear();
            self.view.status = StatusFilter::All;
            self.rebuild();
            self.notify(Level::Info, "filters cleared to show the path");
        }
        if let Some(pos) = self.view.position(id) {
            self.selected = None;
            self.select_pos(pos, fx);
        }
    }

    fn on_key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) {
        // Errors stay until a key; everything else goes with it.
        if self.notice.is_some() {
            self.notice = None;
        }
        if let Some(mut input) = self.filter_input.take() {
            let fuzzy_key = Key::from_event(&k)
                .and_then(|key| self.keymap.action(Mode::Normal, &key))
                == Some(Action::ToggleFuzzy);
            if fuzzy_key {
                self.filter_input = Some(input);
                self.act(Action::ToggleFuzzy, fx);
                return;
            }
            match input.key(&k) {
                Edit::Submit => {}
                Edit::Cancel => {
                    self.view.query.clear();
                    self.refilter(fx);
                }
                Edit::Changed => {
                    self.view.query = input.text.clone();
                    self.refilter(fx);
                    self.filter_input = Some(input);
                }
                Edit::Unchanged => self.filter_input = Some(input),
            }
            return;
        }
        let key = Key::from_event(&k);
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::None => {}
            Overlay::Help { mut scroll } => {
                match key.and_then(|k| self.keymap.action(Mode::Help, &k)) {
                    Some(Action::Close) => return,
                    Some(Action::Down) => scroll += 1,
                    Some(Action::Up) => scroll = scroll.saturating_sub(1),
                    Some(Action::PageDown) => scroll += 10,
                    Some(Action::PageUp) => scroll = scroll.saturating_sub(10),
                    _ => {}
                }
                self.overlay = Overlay::Help { scroll };
                return;
            }
            Overlay::Info {
                title,
                lines,
                mut scroll,
            } => {
                match key.and_then(|k| self.keymap.action(Mode::Help, &k)) {
                    Some(Action::Close) => return,
                    Some(Action::Down) => scroll = (scroll + 1).min(lines.len().saturating_sub(1)),
                    Some(Action::Up) => scroll = scroll.saturating_sub(1),
                    Some(Action::PageDown) => {
                        scroll = (scroll + 10).min(lines.len().saturating_sub(1))
                    }
                    Some(Action::PageUp) => scroll = scroll.saturating_sub(10),
                    _ => {}
                }
                self.overlay = Overlay::Info {
                    title,
                    lines,
                    scroll,
                };
                return;
            }
            Overlay::Gc(v) => {
                let action = key.and_then(|k| self.keymap.action(Mode::Gc, &k));
                self.gc_key(v, action, fx);
                return;
            }
            Overlay::Command(mut input) => {
                match input.key(&k) {
                    Edit::Submit => self.command(&input.text.clone(), fx),
                    Edit::Cancel => {}
                    Edit::Changed | Edit::Unchanged => self.overlay = Overlay::Command(input),
                }
                return;
            }
            Overlay::Confirm(mut c) => {
                match key.and_then(|k| self.keymap.action(Mode::Confirm, &k)) {
                    Some(Action::Confirm) => self.confirmed(c.then, fx),
                    Some(Action::Cancel) => self.notify(Level::Info, "cancelled"),
                    Some(Action::ToggleChoice) => {
                        c.yes_selected = !c.yes_selected;
                        self.overlay = Overlay::Confirm(c);
                    }
                    Some(Action::Choose) => {
                        if c.yes_selected {
                            self.confirmed(c.then, fx)
                        } else {
                            self.notify(Level::Info, "cancelled")
                        }
                    }
                    Some(Action::Down) => {
                        c.scroll = (c.scroll + 1).min(c.lines.len().saturating_sub(1));
                        self.overlay = Overlay::Confirm(c);
                    }
                    Some(Action::Up) => {
                        c.scroll = c.scroll.saturating_sub(1);
                        self.overlay = Overlay::Confirm(c);
                    }
                    _ => self.overlay = Overlay::Confirm(c),
                }
                return;
            }
        }
        let Some(key) = key else { return };
        let Some(action) = self.keymap.action(Mode::Normal, &key) else {
            return;
        };
        self.act(action, fx);
    }

    fn refilter(&mut self, fx: &mut Vec<Effect>) {
        let before = self.selected;
        self.rebuild();
        if self.selected != before
            && let Some(id) = self.selected
        {
            self.request_detail(id, fx);
        }
    }

    fn confirmed(&mut self, what: Confirmed, fx: &mut Vec<Effect>) {
        match what {
            Confirmed::Quit => {
                self.quit = true;
                fx.push(Effect::Quit);
            }
            Confirmed::VerifyContents(ids) => fx.push(Effect::VerifyContents(ids)),
            Confirmed::Sign(ids) => fx.push(Effect::Sign(ids)),
            Confirmed::Push(paths) => fx.push(Effect::Push(paths)),
            Confirmed::Delete(plan) => {
                self.marks.clear();
                fx.push(Effect::Delete(plan))
            }
            Confirmed::Collect => {
                // The plan is consumed: a later one is made afresh.
                if let Some(g) = self.gc.take() {
                    fx.push(Effect::Collect(PlanHandle(g.prepared.clone())));
                }
            }
            Confirmed::PinRemove(name) => fx.push(Effect::PinRemove(name)),
        }
    }

    /// A key in the GC view.
    fn gc_key(&mut self, mut v: GcView, action: Option<Action>, fx: &mut Vec<Effect>) {
        let Some(g) = self.gc.clone() else { return };
        let n = g.line_count(&v.open);
        let page = self.gc_height.get().max(1);
        match action {
            Some(Action::Close) => return,
            Some(Action::Down) => v.cursor = (v.cursor + 1).min(n.saturating_sub(1)),
            Some(Action::Up) => v.cursor = v.cursor.saturating_sub(1),
            Some(Action::PageDown) => v.cursor = (v.cursor + page).min(n.saturating_sub(1)),
            Some(Action::PageUp) => v.cursor = v.cursor.saturating_sub(page),
            Some(Action::Top) => v.cursor = 0,
            Some(Action::Bottom) => v.cursor = n.saturating_sub(1),
            Some(Action::Follow) => match g.line(&v.open, v.cursor) {
                Some(super::gcview::Line::Header(i, grp)) => {
                    if !v.open.remove(&i) {
                        if grp.items.is_empty() {
                            self.notify(Level::Info, format!("{}: none", grp.title));
                        } else {
                            v.open.insert(i);
                        }
                    }
                    v.cursor = g.header_line(&v.open, i);
                }
                Some(super::gcview::Line::Item(..)) => {
                    if let Some(r) = g.row_at(&v.open, v.cursor) {
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
        if v.cursor < v.scroll {
            v.scroll = v.cursor;
        } else if v.cursor >= v.scroll + page {
            v.scroll = v.cursor + 1 - page;
        }
        self.overlay = Overlay::Gc(v);
    }

    fn confirm_collect(&mut self) {
        if self.read_only {
            self.notify(Level::Warn, "collect is disabled: read-only mode");
            return;
        }
        let Some(g) = self.gc.clone() else {
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
                super::ui::thousands(grp.items.len() as u64),
                grp.bytes.map(human).unwrap_or_default(),
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
    fn plan_gc(&mut self, req: GcRequest, fx: &mut Vec<Effect>) {
        if self.gc_planning {
            self.notify(Level::Info, "a gc plan is being made");
            return;
        }
        if self.scanning || !self.idx().nars_listed {
            self.notify(
                Level::Warn,
                "wait for the scan to finish: a gc plan needs every narinfo and NAR listed",
            );
            return;
        }
        self.gc_planning = true;
        self.notify(
            Level::Info,
            "planning gc: reading pins, logs and debuginfo…",
        );
        fx.push(Effect::PlanGc(req));
    }

    fn page(&self) -> usize {
        self.list_height.get().max(1)
    }

    /// Perform an action (keys and the command line both end here).
    pub fn act(&mut self, action: Action, fx: &mut Vec<Effect>) {
        if self.read_only && action.is_mutating() {
            self.notify(Level::Warn, format!("{action} is disabled: read-only mode"));
            return;
        }
        match action {
            Action::Quit => {
                let n = self.running_jobs();
                if n > 0 {
                    self.overlay = Confirm::ask(
                        "Quit?",
                        vec![format!(
                            "{n} job(s) are still running; quitting cancels them."
                        )],
                        "Quit",
                        false,
                        Confirmed::Quit,
                    );
                } else {
                    self.quit = true;
                    fx.push(Effect::Quit);
                }
            }
            Action::ForceQuit => {
                self.quit = true;
                fx.push(Effect::Quit);
            }
            Action::Help => self.overlay = Overlay::Help { scroll: 0 },
            Action::Down => self.move_by(1, fx),
            Action::Up => self.move_by(-1, fx),
            Action::PageDown => self.move_by(self.page() as isize, fx),
            Action::PageUp => self.move_by(-(self.page() as isize), fx),
            Action::HalfPageDown => self.move_by((self.page() / 2).max(1) as isize, fx),
            Action::HalfPageUp => self.move_by(-((self.page() / 2).max(1) as isize), fx),
            Action::Top => self.move_to_end(false, fx),
            Action::Bottom => self.move_to_end(true, fx),
            Action::NextPane | Action::PrevPane => {
                let i = Focus::CYCLE
                    .iter()
                    .position(|f| *f == self.focus)
                    .unwrap_or(0);
                let n = Focus::CYCLE.len();
                let j = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.set_focus(Focus::CYCLE[j]);
            }
            Action::FocusList => self.set_focus(Focus::List),
            Action::FocusDetails => self.set_focus(Focus::Details),
            Action::FocusSignatures => self.set_focus(Focus::Signatures),
            Action::FocusOverview => self.set_focus(Focus::Overview),
            Action::FocusJobs => self.set_focus(Focus::Jobs),
            Action::Filter => {
                self.focus = Focus::List;
                self.filter_input = Some(LineInput::with(&self.view.query));
            }
            Action::ClearFilter => {
                if self.view.query.is_empty() && self.view.status == StatusFilter::All {
                    if self.focus != Focus::List {
                        self.focus = Focus::List;
                    }
                    return;
                }
                self.view.query.clear();
                self.view.status = StatusFilter::All;
                self.refilter(fx);
                self.notify(Level::Info, "filters cleared");
            }
            Action::ToggleFuzzy => {
                self.view.fuzzy = !self.view.fuzzy;
                self.refilter(fx);
                let how = if self.view.fuzzy {
                    "fuzzy"
                } else {
                    "substring"
                };
                self.notify(Level::Info, format!("filter: {how} matching"));
            }
            Action::CycleStatusFilter => {
                self.view.status = self.view.status.next();
                self.refilter(fx);
            }
            Action::OnlyProblems => {
                self.view.status = if self.view.status == StatusFilter::Problems {
                    StatusFilter::All
                } else {
                    StatusFilter::Problems
                };
                self.refilter(fx);
            }
            Action::SortNext => {
                self.view.sort = self.view.sort.next();
                self.view.desc = matches!(self.view.sort, SortKey::NarSize | SortKey::FileSize);
                self.refilter(fx);
            }
            Action::SortReverse => {
                self.view.desc = !self.view.desc;
                self.refilter(fx);
            }
            Action::ToggleMark => {
                if let Some(id) = self.selected {
                    if !self.marks.remove(&id) {
                        self.marks.insert(id);
                    }
                    self.move_by(1, fx);
                }
            }
            Action::MarkAllInView => {
                let rows: Vec<RowId> = self.view.rows().to_vec();
                let n = rows.len();
                self.marks.extend(rows);
                self.notify(
                    Level::Info,
                    format!("marked {n} rows ({} in all)", self.marks.len()),
                );
            }
            Action::ClearMarks => {
                let n = self.marks.len();
                self.marks.clear();
                self.notify(Level::Info, format!("{n} marks cleared"));
            }
            Action::Follow => self.follow(fx),
            Action::Back => {
                if let Some(id) = self.history.pop() {
                    self.select_row(id, fx);
                }
            }
            Action::CopyPath => {
                if let Some(id) = self.selected {
                    let p = self.idx().store_path(id);
                    self.notify(Level::Info, format!("copied {p}"));
                    fx.push(Effect::Copy(p));
                }
            }
            Action::CommandLine => self.overlay = Overlay::Command(LineInput::default()),
            Action::Refresh => {
                if self.scanning {
                    self.notify(Level::Info, "a scan is already running");
                } else {
                    fx.push(Effect::Scan);
                }
            }
            Action::VerifyContents => {
                let ids: Vec<RowId> = if self.marks.is_empty() {
                    self.selected.into_iter().collect()
                } else {
                    self.marks.iter().copied().collect()
                };
                self.confirm_verify(ids);
            }
            Action::Sign => {
                let ids = self.targets();
                self.confirm_sign(ids);
            }
            Action::Delete => {
                let ids = self.targets();
                self.confirm_delete(ids, fx);
            }
            Action::CancelJob => {
                let job = if self.focus == Focus::Jobs {
                    self.jobs.get(self.job_cursor).filter(|j| j.is_running())
                } else {
                    self.jobs.iter().rev().find(|j| j.is_running())
                };
                match job {
                    Some(j) => {
                        let id = j.id;
                        self.notify(Level::Info, format!("cancelling job #{id}"));
                        fx.push(Effect::CancelJob(id));
                    }
                    None => self.notify(Level::Info, "no running job to cancel"),
                }
            }
            Action::Gc => match self.gc.clone() {
                Some(g) if g.generation == self.idx().generation => {
                    self.overlay = Overlay::Gc(GcView::default())
                }
                _ => self.plan_gc(GcRequest::default(), fx),
            },
            Action::Collect => self.confirm_collect(),
            Action::Close
            | Action::Confirm
            | Action::Cancel
            | Action::ToggleChoice
            | Action::Choose => {}
        }
    }

    /// The marked rows, else the selected one.
    fn targets(&self) -> Vec<RowId> {
        if self.marks.is_empty() {
            self.selected.into_iter().collect()
        } else {
            self.marks.iter().copied().collect()
        }
    }

    fn confirm_sign(&mut self, ids: Vec<RowId>) {
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
    fn confirm_delete(&mut self, ids: Vec<RowId>, fx: &mut Vec<Effect>) {
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

    fn confirm_verify(&mut self, ids: Vec<RowId>) {
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
            human(bytes)
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

    fn set_focus(&mut self, f: Focus) {
        self.focus = f;
        if f != Focus::List {
            self.inspector = f;
        }
        if f == Focus::Overview {
            self.stats();
        }
    }

    /// References then referrers of the loaded detail, as the details pane lists them.
    pub fn ref_targets(&self) -> Vec<RowId> {
        match &self.detail {
            Some(d) if Some(d.id) == self.selected => {
                d.references.iter().chain(&d.referrers).copied().collect()
            }
            _ => Vec::new(),
        }
    }

    fn follow(&mut self, fx: &mut Vec<Effect>) {
        if self.focus == Focus::List {
            self.set_focus(Focus::Details);
            return;
        }
        if self.focus != Focus::Details {
            return;
        }
        let targets = self.ref_targets();
        let Some(&target) = targets.get(self.ref_cursor) else {
            self.notify(Level::Info, "no reference to follow");
            return;
        };
        if let Some(cur) = self.selected {
            self.history.push(cur);
        }
        self.select_row(target, fx);
    }

    fn move_by(&mut self, delta: isize, fx: &mut Vec<Effect>) {
        match self.focus {
            Focus::List => {
                let pos = self.cursor as isize + delta;
                self.select_pos(pos.max(0) as usize, fx);
            }
            Focus::Details => {
                let n = self.ref_targets().len();
                if n > 0 && delta.abs() == 1 {
                    let c = self.ref_cursor as isize + delta;
                    self.ref_cursor = c.clamp(0, n as isize - 1) as usize;
                } else {
                    self.detail_scroll = (self.detail_scroll as isize + delta).max(0) as u16;
                }
            }
            Focus::Signatures => {
                self.sig_scroll = (self.sig_scroll as isize + delta).max(0) as u16;
            }
            Focus::Overview => {
                self.overview_scroll = (self.overview_scroll as isize + delta).max(0) as u16;
            }
            Focus::Jobs => {
                let n = self.jobs.len();
                if n > 0 {
                    let c = self.job_cursor as isize + delta;
                    self.job_cursor = c.clamp(0, n as isize - 1) as usize;
                }
            }
        }
    }

    fn move_to_end(&mut self, end: bool, fx: &mut Vec<Effect>) {
        match self.focus {
            Focus::List => {
                let n = self.view.rows().len();
                self.select_pos(if end { n.saturating_sub(1) } else { 0 }, fx);
            }
            Focus::Details => {
                self.ref_cursor = if end {
                    self.ref_targets().len().saturating_sub(1)
                } else {
                    0
                };
                if !end {
                    self.detail_scroll = 0;
                }
            }
            Focus::Signatures => self.sig_scroll = 0,
            Focus::Overview => self.overview_scroll = 0,
            Focus::Jobs => {
                self.job_cursor = if end {
                    self.jobs.len().saturating_sub(1)
                } else {
                    0
                };
            }
        }
    }

    fn on_mouse(&mut self, m: MouseEvent, fx: &mut Vec<Effect>) {
        if self.overlay != Overlay::None {
            return;
        }
        let a = self.areas.get();
        let pos = Position::new(m.column, m.row);
        let pane = [
            (a.list, Focus::List),
            (a.details, Focus::Details),
            (a.signatures, Focus::Signatures),
            (a.overview, Focus::Overview),
            (a.jobs, Focus::Jobs),
        ]
        .into_iter()
        .find(|(r, _)| r.contains(pos))
        .map(|(_, f)| f);
        match m.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let d = if m.kind == MouseEventKind::ScrollDown {
                    3
                } else {
                    -3
                };
                let prev = self.focus;
                if let Some(p) = pane {
                    self.focus = p;
                }
                self.move_by(d, fx);
                self.focus = prev;
            }
            MouseEventKind::Down(MouseButton::Left) => {
                let Some(p) = pane else { return };
                self.set_focus(p);
                if p == Focus::List && m.row >= a.list_rows_top {
                    self.offset = self.drawn_offset.get();
                    let row = self.offset + usize::from(m.row - a.list_rows_top);
                    if row < self.view.rows().len() {
                        self.select_pos(row, fx);
                    }
                }
            }
            _ => {}
        }
    }

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
                        self.notify(Level::Error, e.to_string());
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

/// Sizes as humans read them (binary units).
pub use crate::human_size as human;

/// An age: `42s`, `5m`, `3h`, `12d`, `2y`.
pub fn age(now: SystemTime, then: Option<SystemTime>) -> String {
    let Some(then) = then else {
        return "-".into();
    };
    let s = now.duration_since(then).map(|d| d.as_secs()).unwrap_or(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        86_400..31_536_000 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// Up to `limit` names for a confirmation list, sorted so the dialog reads the
/// same every time (row ids follow listing order). Huge selections are not
/// sorted in full on the UI thread: the first `limit` are shown as they come.
fn sample_names(
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
