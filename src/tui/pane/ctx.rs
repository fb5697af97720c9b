//! What drawing a pane or an overlay reads besides its own state: [`Ctx`], built by the
//! app for each frame, and [`Focus`], which pane has the keys. Nothing here knows the app.

use std::time::SystemTime;

use crate::tui::keymap::Keymap;
use crate::tui::theme::Theme;

/// Which pane has the keys (and, for all but the list, what the right-hand side shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// The store path list.
    List,
    /// The selected narinfo.
    Details,
    /// The selected narinfo's signatures and verdict.
    Signatures,
    /// Totals and problems.
    Overview,
    /// Background jobs and their progress.
    Jobs,
}

impl Focus {
    /// The panes in the order NextPane visits them.
    pub const CYCLE: [Focus; 5] = [
        Focus::List,
        Focus::Details,
        Focus::Signatures,
        Focus::Overview,
        Focus::Jobs,
    ];
}

/// What every pane and overlay may read when it draws, besides its own state: the colours,
/// the keys (for hints), which pane has the keys, the clock and the mode.
pub struct Ctx<'a> {
    /// The named styles every pane and overlay draws with.
    pub theme: &'a Theme,
    /// Which keys do what (key hints name the first key of an action).
    pub keymap: &'a Keymap,
    /// The pane that has the keys (drawn bold, in the focus colour).
    pub focus: Focus,
    /// Whether actions that change the cache are hidden.
    pub read_only: bool,
    /// The clock ages are measured against.
    pub now: SystemTime,
    /// The log file, shown in help.
    pub log_path: Option<&'a str>,
}
