//! Drawing the GC plan: totals, policies and the sections on top; the groups with counts and
//! bytes and the open groups' members, or the effect by package; the reason for the line
//! under the cursor at the bottom.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::index::Index;
use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::centered;
use crate::tui::overlay::gc::effect::{EffectLine, PackageEffect};
use crate::tui::overlay::gc::summary::{GcSummary, budget_line};
use crate::tui::overlay::gc::{GcView, Section};
use crate::tui::pane::ctx::Ctx;
use crate::units::{human_size, pad, rpad, thousands};

/// The GC plan: a header (totals, the policies, the budget, the sections), then the section
/// shown: the groups with counts and bytes, opened on Enter, or the effect by package; the
/// reason for the line under the cursor at the bottom.
pub(crate) fn draw_gc(
    buf: &mut Buffer,
    area: Rect,
    ctx: &Ctx,
    g: &GcSummary,
    idx: &Index,
    v: &GcView,
) {
    let r = centered(area, 90, 85, 60, 12);
    let k = |a| ctx.keymap.first(Mode::Gc, a);
    let inner = super::super::frame(
        buf,
        r,
        ctx.theme,
        format!(
            " Garbage collection plan: {} open · {} collect · {} close ",
            k(Action::Follow),
            k(Action::Collect),
            k(Action::Close)
        ),
    );
    if inner.height < 6 {
        return;
    }
    let budget = budget_line(&g.prepared.plan);
    let head_h = 3 + u16::from(budget.is_some());
    let [top, body, why] = Layout::vertical([
        Constraint::Length(head_h),
        Constraint::Min(1),
        Constraint::Length(2),
    ])
    .areas(inner);
    let w = top.width as usize;
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut y = top.y;
    buf.set_string(top.x, y, pad(&g.short_totals(), w), bold);
    y += 1;
    buf.set_string(
        top.x,
        y,
        pad(&format!("policies: {}", g.policies()), w),
        Style::default(),
    );
    y += 1;
    if let Some(b) = budget {
        let st = if g.prepared.opts.retention.max_size.is_some() {
            bold
        } else {
            Style::default()
        };
        buf.set_string(top.x, y, pad(&b, w), st);
        y += 1;
    }
    draw_sections(buf, top.x, y, top.width, ctx, g, v);
    let reason = match v.section {
        Section::Plan => {
            draw_plan(buf, body, ctx, g, idx, v);
            g.why(idx, &v.open, v.scroll.cursor)
        }
        Section::Effect => {
            draw_effect(buf, body, ctx, &g.effect, v);
            g.effect.why(v.effect.cursor)
        }
    };
    Paragraph::new(vec![Line::styled(reason, ctx.theme.dim)])
        .wrap(ratatui::widgets::Wrap { trim: true })
        .render(why, buf);
}

/// The line naming the sections, the one shown in brackets, and the key that switches.
fn draw_sections(
    buf: &mut Buffer,
    x: u16,
    y: u16,
    width: u16,
    ctx: &Ctx,
    g: &GcSummary,
    v: &GcView,
) {
    let tab = ctx.keymap.first(Mode::Gc, Action::NextPane);
    let name = |s: Section, text: String| {
        if v.section == s {
            Span::styled(
                format!("[{text}]"),
                Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            )
        } else {
            Span::styled(format!(" {text} "), ctx.theme.dim)
        }
    };
    let mut spans = vec![
        name(Section::Plan, "Plan".into()),
        Span::raw(" "),
        name(
            Section::Effect,
            format!(
                "Effect by package ({} changed)",
                thousands(g.effect.changed.len() as u64)
            ),
        ),
    ];
    if !tab.is_empty() {
        spans.push(Span::styled(format!("  {tab} switches"), ctx.theme.dim));
    }
    buf.set_line(x, y, &Line::from(spans), width);
}

/// The groups of the plan, the open ones with their members.
fn draw_plan(buf: &mut Buffer, body: Rect, ctx: &Ctx, g: &GcSummary, idx: &Index, v: &GcView) {
    use crate::tui::overlay::gc::summary::Line as GcLine;
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
}

/// Width of a size column ("1023.99 KiB").
const SIZE_W: usize = 11;
/// Width of the versions column ("12,345→12,345").
const VERSIONS_W: usize = 9;

/// Widest package name column: on a wide screen the numbers stay near the names.
const NAME_MAX_W: usize = 40;

/// One row of the effect table: name, before, after, freed, versions.
fn effect_row(name: &str, cells: [&str; 4], w: usize) -> String {
    let fixed = 3 * (SIZE_W + 1) + VERSIONS_W + 1;
    let name_w = w.saturating_sub(fixed).clamp(8, NAME_MAX_W);
    format!(
        "{} {} {} {} {}",
        pad(name, name_w),
        rpad(cells[0], SIZE_W),
        rpad(cells[1], SIZE_W),
        rpad(cells[2], SIZE_W),
        rpad(cells[3], VERSIONS_W)
    )
}

/// The effect by package: a column header, the packages that change (most freed first), the
/// totals, and the packages left as they are.
fn draw_effect(buf: &mut Buffer, body: Rect, ctx: &Ctx, e: &PackageEffect, v: &GcView) {
    let w = body.width as usize;
    buf.set_string(
        body.x,
        body.y,
        pad(
            &effect_row("PACKAGE", ["BEFORE", "AFTER", "FREED", "VERSIONS"], w),
            w,
        ),
        ctx.theme.dim.add_modifier(Modifier::BOLD),
    );
    let h = body.height.saturating_sub(1) as usize;
    let n = e.line_count();
    let scroll = v.effect.window(n, h);
    for (i, line_no) in (scroll..n).take(h).enumerate() {
        let y = body.y + 1 + i as u16;
        let (text, style) = match e.line(line_no) {
            Some(EffectLine::Package(p)) => {
                let freed = format!("−{}", human_size(p.freed()));
                let style = if p.versions_after == 0 {
                    ctx.theme.danger()
                } else {
                    Style::default()
                };
                (
                    effect_row(
                        &p.name,
                        [
                            &human_size(p.before),
                            &human_size(p.after),
                            &freed,
                            &p.versions(),
                        ],
                        w,
                    ),
                    style,
                )
            }
            Some(EffectLine::Total) => (
                effect_row(
                    "total (shared NARs once)",
                    [
                        &human_size(e.before),
                        &human_size(e.after),
                        &format!("−{}", human_size(e.freed())),
                        &format!("{}→{}", e.paths_before, e.paths_after),
                    ],
                    w,
                ),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Some(EffectLine::Unchanged) => (
                format!(
                    "{} package(s) unchanged ({})",
                    thousands(e.unchanged as u64),
                    human_size(e.unchanged_bytes)
                ),
                ctx.theme.dim,
            ),
            None => (String::new(), Style::default()),
        };
        let style = if line_no == v.effect.cursor {
            style.patch(ctx.theme.selected())
        } else {
            style
        };
        buf.set_string(body.x, y, pad(&text, w), style);
    }
}
