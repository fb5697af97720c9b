//! The screen: where each pane goes (the layout reads the whole app and hands each pane its
//! state and a [`Ctx`]), then the open overlay over them.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};

use crate::tui::app::{App, Focus};
use crate::tui::overlay::{self, Overlay};
use crate::tui::pane::footer::FooterInfo;
use crate::tui::pane::header::HeaderInfo;
use crate::tui::pane::list::ListInfo;
use crate::tui::pane::{self, Areas, ctx::Ctx};

impl App {
    /// What panes and overlays read when they draw, besides their own state.
    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            theme: &self.theme,
            keymap: &self.keymap,
            focus: self.focus,
            read_only: self.read_only,
            now: self.now,
            log_path: self.log_path.as_deref(),
        }
    }
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
    let ctx = app.ctx();
    let idx = app.idx();
    let info = HeaderInfo {
        url: &app.url,
        paths: app.list.view.total() as u64,
        scan: &app.scan,
        ticks: app.ticks,
        running_jobs: app.running_jobs(),
        versions: &app.versions,
        upstream: &app.list.view.upstream,
    };
    pane::header::draw_header(f.buffer_mut(), header, &ctx, &info);

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
    let list = ListInfo {
        view: &app.list.view,
        scroll: &app.list.scroll,
        marks: &app.list.marks,
        scanning: app.scan.running,
    };
    pane::list::draw_list(f.buffer_mut(), left, &ctx, &list, &idx, &mut areas);
    let gc_why = || {
        let g = app.gc.plan.as_deref()?;
        g.why_row(&idx, app.list.selected?)
    };
    let detail = app.details.current(app.list.selected);
    match app.inspector {
        Focus::Details | Focus::Signatures | Focus::List => {
            if right.height >= 24 || (wide && right.height >= 16) {
                let [d, s] =
                    Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)])
                        .areas(right);
                areas.details = d;
                areas.signatures = s;
                app.details
                    .draw(f.buffer_mut(), d, &ctx, &idx, app.list.selected, gc_why());
                pane::signatures::draw_signatures(f.buffer_mut(), s, &ctx, detail, &app.sig_scroll);
            } else if app.inspector == Focus::Signatures {
                areas.signatures = right;
                pane::signatures::draw_signatures(
                    f.buffer_mut(),
                    right,
                    &ctx,
                    detail,
                    &app.sig_scroll,
                );
            } else {
                areas.details = right;
                app.details.draw(
                    f.buffer_mut(),
                    right,
                    &ctx,
                    &idx,
                    app.list.selected,
                    gc_why(),
                );
            }
        }
        Focus::Overview => {
            areas.overview = right;
            pane::overview::draw_overview(
                f.buffer_mut(),
                right,
                &ctx,
                &idx,
                app.cached_stats(),
                &app.versions,
                &app.overview_scroll,
            );
        }
        Focus::Jobs => {
            areas.jobs = right;
            app.jobs.draw(f.buffer_mut(), right, &ctx);
        }
    }
    drop(idx);
    let command = match &app.overlay {
        Overlay::Command(input) => Some(input),
        _ => None,
    };
    let info = FooterInfo {
        filter: app.filter_input.as_ref(),
        fuzzy: app.list.view.fuzzy,
        command,
        notice: app.notice.as_ref(),
        space: matches!(app.overlay, Overlay::Space(_)),
    };
    pane::footer::draw_footer(f.buffer_mut(), footer, &ctx, &info);
    app.areas.set(areas);

    draw_overlay(f.buffer_mut(), area, app, &ctx);
}

/// Draw the open overlay, if any, over the whole `area`.
fn draw_overlay(buf: &mut Buffer, area: Rect, app: &App, ctx: &Ctx) {
    match &app.overlay {
        Overlay::None | Overlay::Command(_) => {}
        Overlay::Help { scroll } => overlay::help::draw_help(buf, area, ctx, scroll),
        Overlay::Confirm(c) => overlay::confirm::draw_confirm(buf, area, ctx, c),
        Overlay::Gc(v) => {
            if let Some(g) = &app.gc.plan {
                overlay::gc::draw::draw_gc(buf, area, ctx, g, &app.idx(), v);
            }
        }
        Overlay::Info {
            title,
            lines,
            scroll,
        } => overlay::info::draw_info(buf, area, ctx, title, lines, scroll),
        Overlay::Doctor(v) => overlay::doctor::draw_doctor(buf, area, ctx, v),
        Overlay::Plans(v) => overlay::plans::draw_plans(buf, area, ctx, v),
        Overlay::Space(v) => {
            // The screen between the header and the footer.
            let body = Rect::new(
                area.x,
                area.y + 1,
                area.width,
                area.height.saturating_sub(2),
            );
            overlay::space::draw::draw_space(buf, body, ctx, &app.space, &app.idx(), v);
        }
    }
}
