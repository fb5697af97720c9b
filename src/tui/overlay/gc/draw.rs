//! Drawing the GC plan: totals on top, the groups with counts and bytes, the open groups'
//! members, and the reason for the line under the cursor at the bottom.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::index::Index;
use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::centered;
use crate::tui::overlay::gc::GcView;
use crate::tui::overlay::gc::summary::GcSummary;
use crate::tui::pane::ctx::Ctx;
use crate::units::{human_size, pad, thousands};

/// The GC plan: groups with counts and bytes, opened on Enter; the reason for the line under
/// the cursor at the bottom.
pub(crate) fn draw_gc(
    buf: &mut Buffer,
    area: Rect,
    ctx: &Ctx,
    g: &GcSummary,
    idx: &Index,
    v: &GcView,
) {
    use crate::tui::overlay::gc::summary::Line as GcLine;
    let r = centered(area, 90, 85, 60, 12);
    Clear.render(r, buf);
    let k = |a| ctx.keymap.first(Mode::Gc, a);
    let st = ctx.theme.border(true);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(st)
        .title(Span::styled(
            format!(
                " Garbage collection plan: {} open · {} collect · {} close ",
                k(Action::Follow),
                k(Action::Collect),
                k(Action::Close)
            ),
            st,
        ));
    let inner = block.inner(r);
    block.render(r, buf);
    if inner.height < 4 {
        return;
    }
    let [top, body, why] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(2),
    ])
    .areas(inner);
    buf.set_string(
        top.x,
        top.y,
        pad(&g.short_totals(), top.width as usize),
        Style::default().add_modifier(Modifier::BOLD),
    );
    let h = body.height as usize;
    let n = g.line_count(&v.open);
    let scroll = v.scroll.window(n, h);
    let w = body.width as usize;
    for (i, line_no) in (scroll..n).take(h).enumerate() {
        let y = body.y + i as u16;
        let selected = line_no == v.scroll.cursor;
        let (text, style) = match g.line(&v.open, line_no) {
            Some(GcLine::Header(gi, grp)) => {
                let mark = if v.open.contains(&gi) { "▾" } else { "▸" };
                let verb = if grp.deleted { "delete" } else { "keep  " };
                let bytes = grp.bytes.map(human_size).unwrap_or_default();
                let style = if grp.deleted && !grp.items.is_empty() {
                    ctx.theme.danger()
                } else {
                    Style::default()
                };
                (
                    format!(
                        "{mark} {verb} {:>9} {:>11}  {}",
                        thousands(grp.items.len() as u64),
                        bytes,
                        grp.title
                    ),
                    style.add_modifier(Modifier::BOLD),
                )
            }
            Some(GcLine::Item(gi, ii)) => (
                format!("      {}", g.item_text(idx, gi, ii)),
                Style::default(),
            ),
            None => (String::new(), Style::default()),
        };
        let style = if selected {
            style.patch(ctx.theme.selected())
        } else {
            style
        };
        buf.set_string(body.x, y, pad(&text, w), style);
    }
    let reason = g.why(idx, &v.open, v.scroll.cursor);
    Paragraph::new(vec![Line::styled(reason, ctx.theme.dim)])
        .wrap(ratatui::widgets::Wrap { trim: true })
        .render(why, buf);
}
