//! The panes and the screen layout: a header line, the store-path list on the left (on top
//! when narrow), an inspector on the right (details and signatures, the overview, or the
//! jobs), and a footer line; overlays are drawn over them ([`super::overlay`]).
//!
//! Drawing is a function of the [`App`]; it records only where the panes went ([`Areas`], for
//! the mouse) and the window heights (through [`crate::tui::scroll::Scroll`]). Only the visible rows of the list are built, so a million
//! rows draw as fast as a hundred.

pub mod ctx;
pub mod details;
pub mod footer;
pub mod header;
pub mod jobs;
pub mod list;
pub mod overview;
pub mod signatures;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

use crate::tui::app::App;
use crate::tui::pane::ctx::Focus;

/// Where panes were drawn (for the mouse).
#[derive(Clone, Copy, Debug, Default)]
pub struct Areas {
    /// The list pane.
    pub list: Rect,
    /// The first row of the list (below the column header).
    pub list_rows_top: u16,
    /// The details pane (empty when not shown).
    pub details: Rect,
    /// The signatures pane (empty when not shown).
    pub signatures: Rect,
    /// The overview pane (empty when not shown).
    pub overview: Rect,
    /// The jobs pane (empty when not shown).
    pub jobs: Rect,
}

/// Draw the whole screen: header, list, inspector, footer, then the open overlay.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let idx = app.idx();
    header::draw_header(f.buffer_mut(), header, app);

    let wide = body.width >= 100;
    let [left, right] = if wide {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body)
    } else {
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body)
    };
    let mut areas = Areas {
        list: left,
        ..Areas::default()
    };
    list::draw_list(f.buffer_mut(), left, app, &idx, &mut areas);
    match app.inspector {
        Focus::Details | Focus::Signatures | Focus::List => {
            if right.height >= 24 || (wide && right.height >= 16) {
                let [d, s] =
                    Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)])
                        .areas(right);
                areas.details = d;
                areas.signatures = s;
                details::draw_details(f.buffer_mut(), d, app, &idx);
                signatures::draw_signatures(f.buffer_mut(), s, app);
            } else if app.inspector == Focus::Signatures {
                areas.signatures = right;
                signatures::draw_signatures(f.buffer_mut(), right, app);
            } else {
                areas.details = right;
                details::draw_details(f.buffer_mut(), right, app, &idx);
            }
        }
        Focus::Overview => {
            areas.overview = right;
            overview::draw_overview(f.buffer_mut(), right, app, &idx);
        }
        Focus::Jobs => {
            areas.jobs = right;
            jobs::draw_jobs(f.buffer_mut(), right, app);
        }
    }
    drop(idx);
    footer::draw_footer(f.buffer_mut(), footer, app);
    app.areas.set(areas);

    crate::tui::overlay::draw(f.buffer_mut(), area, app);
}

/// A pane's border and title, bold and in the focus colour when the pane has the keys.
pub(crate) fn pane<'a>(app: &App, title: String, focus: Focus) -> Block<'a> {
    let focused = app.focus == focus;
    Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(focused))
        .title(Span::styled(
            title,
            app.theme.title.add_modifier(if focused {
                Modifier::BOLD
            } else {
                Modifier::empty()
            }),
        ))
}

/// A `label value` line with the label dimmed in a 12-character column.
pub(crate) fn kv<'a>(app: &App, k: &str, v: impl Into<String>) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{k:<12}"), app.theme.dim),
        Span::raw(v.into()),
    ])
}
