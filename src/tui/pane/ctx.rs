//! What drawing a pane or an overlay reads besides its own state: [`Ctx`], built by the
//! app for each frame, and [`Focus`], which pane has the keys. Nothing here knows the app.

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
