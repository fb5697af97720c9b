//! The store-path list: which row is selected and how the cursor moves (the reducer half),
//! and its drawing, one line per visible row. Sorting and filtering live in [`query`].

pub mod query;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::index::{Comp, Index, RowId, RowStatus, flags};
use crate::tui::app::App;
use crate::tui::keymap::{Action, Mode};
use crate::tui::msg::Effect;
use crate::tui::pane::ctx::Focus;
use crate::tui::pane::footer::Level;
use crate::tui::pane::list::query::StatusFilter;
use crate::tui::pane::{Areas, pane};
use crate::tui::theme::status_symbol;
use crate::units::{age, human_size, pad, rpad, thousands};

impl App {
    pub(crate) fn scroll_to_cursor(&mut self) {
        let n = self.view.rows().len();
        self.list.keep_cursor_visible(n);
    }

    pub(crate) fn request_detail(&mut self, id: RowId, fx: &mut Vec<Effect>) {
        fx.push(Effect::LoadDetail(id));
    }

    pub(crate) fn select_pos(&mut self, pos: usize, fx: &mut Vec<Effect>) {
        self.user_moved = true;
        let n = self.view.rows().len();
        if n == 0 {
            self.list.cursor = 0;
            self.selected = None;
            return;
        }
        self.list.cursor = pos.min(n - 1);
        let id = self.view.rows()[self.list.cursor];
        self.scroll_to_cursor();
        if self.selected != Some(id) {
            self.selected = Some(id);
            self.request_detail(id, fx);
        }
    }

    /// Select a row by id, clearing filters if it is hidden by them.
    pub(crate) fn select_row(&mut self, id: RowId, fx: &mut Vec<Effect>) {
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
}

pub(crate) fn comp_short(c: Comp) -> &'static str {
    match c {
        Comp::Bzip2 => "bz2",
        other => other.as_str(),
    }
}

pub(crate) fn draw_list(buf: &mut Buffer, area: Rect, app: &App, idx: &Index, areas: &mut Areas) {
    let rows = app.view.rows();
    let arrow = if app.view.desc { "↓" } else { "↑" };
    let mut title = format!(
        " 1 Store paths: {} of {} │ sort {}{arrow} ",
        thousands(rows.len() as u64),
        thousands(app.view.total() as u64),
        app.view.sort.as_str()
    );
    if app.view.status != StatusFilter::All {
        title.push_str(&format!("│ only {} ", app.view.status.as_str()));
    }
    if !app.view.query.is_empty() {
        let how = if app.view.fuzzy { "fuzzy" } else { "filter" };
        title.push_str(&format!("│ {how} \"{}\" ", app.view.query));
    }
    if !app.marks.is_empty() {
        title.push_str(&format!("│ {} marked ", thousands(app.marks.len() as u64)));
    }
    let block = pane(app, title, Focus::List);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 2 || inner.width < 10 {
        return;
    }
    let w = inner.width as usize;
    let show_hash = w >= 72;
    let show_comp = w >= 56;
    let show_age = w >= 64;
    let fixed = 3
        + 10
        + 10
        + if show_hash { 9 } else { 0 }
        + if show_comp { 6 } else { 0 }
        + if show_age { 5 } else { 0 };
    let name_w = w.saturating_sub(fixed).max(8);
    let mut head = format!("   {}", pad("NAME", name_w));
    if show_hash {
        head.push_str(&pad(" HASH", 9));
    }
    head.push_str(&rpad("NAR", 10));
    head.push_str(&rpad("STORED", 10));
    if show_comp {
        head.push_str(&pad("  COMP", 6));
    }
    if show_age {
        head.push_str(&rpad("AGE", 5));
    }
    buf.set_string(
        inner.x,
        inner.y,
        pad(&head, w),
        app.theme.dim.add_modifier(Modifier::BOLD),
    );
    let body_h = (inner.height - 1) as usize;
    app.list.set_height(body_h);
    areas.list_rows_top = inner.y + 1;
    if rows.is_empty() {
        let msg = if app.scan.running {
            "loading…".to_string()
        } else if app.view.query.is_empty() && app.view.status == StatusFilter::All {
            "no narinfos in this cache".to_string()
        } else {
            format!(
                "no paths match the filters ({} clears them)",
                app.keymap.first(Mode::Normal, Action::ClearFilter)
            )
        };
        buf.set_string(inner.x + 3, inner.y + 1, msg, app.theme.dim);
        return;
    }
    // The window that holds the cursor (the reducer learns the height only from this draw).
    let offset = app.list.window(rows.len(), body_h);
    for (i, &id) in rows.iter().skip(offset).take(body_h).enumerate() {
        let y = inner.y + 1 + i as u16;
        let r = idx.row(id);
        let selected = offset + i == app.list.cursor;
        let marked = app.marks.contains(&id);
        let base = if selected {
            if app.focus == Focus::List {
                app.theme.selected()
            } else {
                Style::default().add_modifier(Modifier::UNDERLINED)
            }
        } else {
            Style::default()
        };
        let mut name = idx.name(id).to_string();
        if name.is_empty() {
            name = format!("({})", idx.narinfo_key(id));
        }
        let mut warn = String::new();
        if r.has(flags::NAR_MISSING) {
            warn.push_str(" [no NAR]");
        }
        if r.has(flags::KEY_MISMATCH) {
            warn.push_str(" [wrong key]");
        }
        let name_cell = pad(&format!("{name}{warn}"), name_w);
        let mut spans = vec![
            Span::styled(if marked { "●" } else { " " }, base.patch(app.theme.marked)),
            Span::styled(
                status_symbol(r.status),
                base.patch(app.theme.status(r.status)),
            ),
            Span::styled(" ", base),
            Span::styled(name_cell, base),
        ];
        if show_hash {
            let h = idx.hash_part(id);
            spans.push(Span::styled(
                format!(" {} ", &h[..7]),
                base.patch(app.theme.dim),
            ));
        }
        let nar = if r.status == RowStatus::Pending && r.nar_size == 0 {
            String::new()
        } else {
            human_size(r.nar_size)
        };
        spans.push(Span::styled(rpad(&nar, 10), base));
        spans.push(Span::styled(
            rpad(&r.file_size().map(human_size).unwrap_or_default(), 10),
            base,
        ));
        if show_comp {
            spans.push(Span::styled(
                pad(&format!("  {}", comp_short(r.comp)), 6),
                base,
            ));
        }
        if show_age {
            spans.push(Span::styled(
                rpad(&age(app.now, r.modified()), 5),
                base.patch(app.theme.dim),
            ));
        }
        buf.set_style(Rect::new(inner.x, y, inner.width, 1), base);
        buf.set_line(inner.x, y, &Line::from(spans), inner.width);
    }
    // A scroll position hint on the border.
    if rows.len() > body_h {
        let pct = (offset + body_h).min(rows.len()) * 100 / rows.len();
        let s = format!(
            " {}/{} {pct}% ",
            thousands((app.list.cursor + 1) as u64),
            thousands(rows.len() as u64)
        );
        let x = area.x + area.width.saturating_sub(s.chars().count() as u16 + 1);
        buf.set_string(
            x,
            area.y + area.height - 1,
            s,
            app.theme.border(app.focus == Focus::List),
        );
    }
}
