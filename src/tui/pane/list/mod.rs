//! The store-path list: its state ([`ListPane`]: the view, the cursor and window, the
//! selection and the marks) and its drawing, one line per visible row. How a key moves the
//! cursor and what selecting a row loads is the app's (`app/select.rs`, which also loads the
//! details); sorting and filtering live in [`query`].

pub mod query;

use std::collections::BTreeSet;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::index::{Comp, Index, RowId, RowStatus, flags};
use crate::tui::keymap::{Action, Mode};
use crate::tui::pane::ctx::{Ctx, Focus};
use crate::tui::pane::list::query::{StatusFilter, View};
use crate::tui::pane::{Areas, pane};
use crate::tui::scroll::Scroll;
use crate::tui::theme::status_symbol;
use crate::units::{age, human_size, pad, rpad, thousands};

pub(crate) fn comp_short(c: Comp) -> &'static str {
    match c {
        Comp::Bzip2 => "bz2",
        other => other.as_str(),
    }
}

/// The store-path list's state.
#[derive(Debug)]
pub struct ListPane {
    /// Sort and filters, and the rows they give.
    pub view: View,
    /// The cursor (a position in the view) and the window that shows it.
    pub scroll: Scroll,
    /// The selected row (kept across refreshes).
    pub selected: Option<RowId>,
    /// Rows marked for a bulk action (sign, delete, verify).
    pub marks: BTreeSet<RowId>,
}

impl Default for ListPane {
    fn default() -> Self {
        ListPane {
            view: View::default(),
            scroll: Scroll::new(20),
            selected: None,
            marks: BTreeSet::new(),
        }
    }
}

/// What the list shows: the view (sorted, filtered rows), its cursor and window, the marks,
/// and whether a scan runs (an empty list then says so).
pub(crate) struct ListInfo<'a> {
    /// The sorted, filtered rows.
    pub(crate) view: &'a View,
    /// The cursor and the window that shows it (drawing records the height).
    pub(crate) scroll: &'a Scroll,
    /// Rows marked for a bulk action.
    pub(crate) marks: &'a BTreeSet<RowId>,
    /// Whether a scan runs.
    pub(crate) scanning: bool,
}

pub(crate) fn draw_list(
    buf: &mut Buffer,
    area: Rect,
    ctx: &Ctx,
    l: &ListInfo,
    idx: &Index,
    areas: &mut Areas,
) {
    let rows = l.view.rows();
    let arrow = if l.view.desc { "↓" } else { "↑" };
    let mut title = format!(
        " 1 Store paths: {} of {} │ sort {}{arrow} ",
        thousands(rows.len() as u64),
        thousands(l.view.total() as u64),
        l.view.sort.as_str()
    );
    if l.view.status != StatusFilter::All {
        title.push_str(&format!("│ only {} ", l.view.status.as_str()));
    }
    if !l.view.query.is_empty() {
        let how = if l.view.fuzzy { "fuzzy" } else { "filter" };
        title.push_str(&format!("│ {how} \"{}\" ", l.view.query));
    }
    if !l.marks.is_empty() {
        title.push_str(&format!("│ {} marked ", thousands(l.marks.len() as u64)));
    }
    let block = pane(ctx, title, Focus::List);
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
        ctx.theme.dim.add_modifier(Modifier::BOLD),
    );
    let body_h = (inner.height - 1) as usize;
    l.scroll.set_height(body_h);
    areas.list_rows_top = inner.y + 1;
    if rows.is_empty() {
        let msg = if l.scanning {
            "loading…".to_string()
        } else if l.view.query.is_empty() && l.view.status == StatusFilter::All {
            "no narinfos in this cache".to_string()
        } else {
            format!(
                "no paths match the filters ({} clears them)",
                ctx.keymap.first(Mode::Normal, Action::ClearFilter)
            )
        };
        buf.set_string(inner.x + 3, inner.y + 1, msg, ctx.theme.dim);
        return;
    }
    // The window that holds the cursor (the reducer learns the height only from this draw).
    let offset = l.scroll.window(rows.len(), body_h);
    for (i, &id) in rows.iter().skip(offset).take(body_h).enumerate() {
        let y = inner.y + 1 + i as u16;
        let r = idx.row(id);
        let selected = offset + i == l.scroll.cursor;
        let marked = l.marks.contains(&id);
        let base = if selected {
            if ctx.focus == Focus::List {
                ctx.theme.selected()
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
        if l.view.upstream.get(id) == Some(true) {
            warn.push_str(" ↑");
        }
        let name_cell = pad(&format!("{name}{warn}"), name_w);
        let mut spans = vec![
            Span::styled(if marked { "●" } else { " " }, base.patch(ctx.theme.marked)),
            Span::styled(
                status_symbol(r.status),
                base.patch(ctx.theme.status(r.status)),
            ),
            Span::styled(" ", base),
            Span::styled(name_cell, base),
        ];
        if show_hash {
            let h = idx.hash_part(id);
            spans.push(Span::styled(
                format!(" {} ", &h[..7]),
                base.patch(ctx.theme.dim),
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
                rpad(&age(ctx.now, r.modified()), 5),
                base.patch(ctx.theme.dim),
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
            thousands((l.scroll.cursor + 1) as u64),
            thousands(rows.len() as u64)
        );
        let x = area.x + area.width.saturating_sub(s.chars().count() as u16 + 1);
        buf.set_string(
            x,
            area.y + area.height - 1,
            s,
            ctx.theme.border(ctx.focus == Focus::List),
        );
    }
}
