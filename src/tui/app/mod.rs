//! The dashboard's state and its reducer: [`App::update`] takes a [`super::Msg`], changes
//! the state and returns the [`super::Effect`]s to run. It does no I/O and never waits;
//! everything slow is an effect whose result comes back as a message.
//!
//! The reducer is split by what drives it: `update.rs` (messages), `keys.rs` (keys and the
//! actions they name), `command.rs` (the `:` line), `mouse.rs`, `actions.rs` (the confirmations
//! of what changes the cache), `notice.rs` (the status line), `select.rs` (the list's cursor,
//! following references), `overlays.rs` and `gc.rs` (carrying out what an overlay's key asks)
//! and `draw.rs` (the screen layout). Panes and overlays ([`super::pane`], [`super::overlay`])
//! keep their state, keys and drawing together and never import the app: they draw from
//! their state and a [`super::pane::ctx::Ctx`], and their key functions return what the app
//! must do. The direction is app -> pane/overlay -> leaves (msg, theme, scroll, input, keymap).

mod actions;
mod command;
mod draw;
mod gc;
mod keys;
mod mouse;
mod notice;
mod overlays;
mod plans;
mod select;
mod space;
mod update;

pub use crate::tui::msg::DeleteProposal;
pub use crate::tui::pane::ctx::Focus;
pub use crate::tui::pane::footer::{Level, Notice};
pub use crate::tui::pane::header::{Scan, Versions};
pub use actions::propose_delete;
pub use draw::draw;

use std::cell::Cell;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::index::{Index, Problems, RowId, Totals};
use crate::tui::input::LineInput;
use crate::tui::keymap::Keymap;
use crate::tui::overlay::Overlay;
use crate::tui::overlay::gc::GcState;
use crate::tui::overlay::space::SpaceState;
use crate::tui::pane::Areas;
use crate::tui::pane::details::Details;
use crate::tui::pane::jobs::Jobs;
use crate::tui::pane::list::ListPane;
use crate::tui::scroll::Scroll;
use crate::tui::theme::Theme;

/// The dashboard's whole state; [`App::update`] is the only way messages change it.
pub struct App {
    /// The index shown.
    pub index: Arc<RwLock<Index>>,
    /// The cache URL.
    pub url: String,
    /// Hide every action that changes the cache.
    pub read_only: bool,
    /// Which keys do what.
    pub keymap: Keymap,
    /// The colours and styles to draw with (typed; see [`Theme`]).
    pub theme: Theme,
    /// The store-path list: view, cursor and window, selection, marks.
    pub list: ListPane,
    /// The pane that has the keys.
    pub focus: Focus,
    /// Which pane the right-hand side shows.
    pub inspector: Focus,
    /// The open overlay.
    pub overlay: Overlay,
    /// The `/` filter being typed.
    pub filter_input: Option<LineInput>,
    /// The details pane: the loaded detail, its scroll and the reference under the cursor.
    pub details: Details,
    /// Scroll of the signatures pane.
    pub sig_scroll: Scroll,
    /// Scroll of the overview.
    pub overview_scroll: Scroll,
    /// Rows left by Follow (Back returns).
    pub history: Vec<RowId>,
    /// The scan: whether one runs, its counters, how the last one went.
    pub scan: Scan,
    /// Whether the bucket keeps versions, and what they hold.
    pub versions: Versions,
    /// The jobs pane: every job started, and its cursor.
    pub jobs: Jobs,
    /// The status line.
    pub notice: Option<Notice>,
    /// Notices given so far (the next one's id).
    pub(crate) notices: u64,
    /// The "planning the deletion…" notice, until the plan arrives.
    pub(crate) planning_notice: Option<u64>,
    /// The throttling note of the job about to finish ([`Msg::JobThrottled`]).
    pub(crate) throttle_note: Option<(crate::jobs::JobId, String)>,
    /// Where panes were drawn last frame.
    pub areas: Cell<Areas>,
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
    /// The garbage-collection plan last made, and whether one is being made.
    pub gc: GcState,
    /// The space view's report (kept between openings) and per-package timelines.
    pub space: SpaceState,
    /// Whether a key is being handled (its notices may replace a warning).
    pub(crate) in_key: bool,
    /// Whether the list must be rebuilt from the index.
    pub(crate) view_dirty: bool,
    /// When the list was last rebuilt (read by the reducer tests).
    pub(crate) last_rebuild: Option<Instant>,
    /// How long the last rebuild took (throttles rebuilds while a scan streams rows in).
    pub(crate) rebuild_cost: Duration,
    /// Totals and problems, with the index generation they were computed on.
    pub(crate) stats: Option<(u64, Arc<(Totals, Problems)>)>,
}

/// How a dashboard is set up: everything [`App::new`] needs besides the index.
#[derive(Clone, Debug)]
pub struct AppOptions {
    /// The cache URL, as the header shows it.
    pub url: String,
    /// Which keys do what.
    pub keymap: Keymap,
    /// The colours and styles to draw with (typed; see [`Theme`]).
    pub theme: Theme,
    /// Hide and refuse every action that changes the cache.
    pub read_only: bool,
    /// The log file, shown in help.
    pub log_path: Option<String>,
    /// Whether the index was loaded from disk (a scan that changes nothing then says so).
    pub warm: bool,
    /// The name(s) of the signing key; `None` turns signing off.
    pub signing_key: Option<String>,
    /// The cache's upstreams (their locations): the list marks the paths they serve, checked
    /// in the background after each scan. Empty: none.
    pub upstreams: Vec<String>,
}

impl AppOptions {
    /// A writable dashboard over `url` with no log file, no signing key and a cold index.
    pub fn new(url: &str, keymap: Keymap, theme: Theme) -> AppOptions {
        AppOptions {
            url: url.to_string(),
            keymap,
            theme,
            read_only: false,
            log_path: None,
            warm: false,
            signing_key: None,
            upstreams: Vec::new(),
        }
    }
}

impl App {
    /// A dashboard over `index`.
    pub fn new(index: Arc<RwLock<Index>>, opts: AppOptions) -> App {
        let AppOptions {
            url,
            keymap,
            theme,
            read_only,
            log_path,
            warm,
            signing_key,
            upstreams,
        } = opts;
        let mut app = App {
            index,
            url,
            read_only,
            keymap,
            theme,
            list: ListPane::default(),
            focus: Focus::List,
            inspector: Focus::Details,
            overlay: Overlay::None,
            filter_input: None,
            details: Details::default(),
            sig_scroll: Scroll::new(10),
            overview_scroll: Scroll::new(10),
            history: Vec::new(),
            scan: Scan::default(),
            versions: Versions::default(),
            jobs: Jobs::default(),
            notice: None,
            notices: 0,
            planning_notice: None,
            throttle_note: None,
            areas: Cell::new(Areas::default()),
            quit: false,
            now: SystemTime::now(),
            log_path,
            warm,
            signing_key,
            ticks: 0,
            user_moved: false,
            gc: GcState::default(),
            space: SpaceState::default(),
            in_key: false,
            view_dirty: true,
            last_rebuild: None,
            rebuild_cost: Duration::ZERO,
            stats: None,
        };
        app.list.view.upstream = crate::tui::pane::list::query::UpstreamMarks::new(upstreams);
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
        self.jobs.running()
    }

    pub(crate) fn set_focus(&mut self, f: Focus) {
        self.focus = f;
        if f != Focus::List {
            self.inspector = f;
        }
        if f == Focus::Overview {
            self.stats();
        }
    }

    pub(crate) fn page(&self) -> usize {
        self.list.scroll.page()
    }
}
