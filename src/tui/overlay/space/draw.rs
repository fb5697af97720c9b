//! Drawing the space view: the totals, the package table (sort marks, share bars), the bars
//! of bytes added per period with the cumulative size under them, and the biggest closures.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};

use crate::index::Index;
use crate::space::Report;
use crate::space::timeline::{Granularity, Timeline};
use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::space::{Section, SortCol, SpaceState, SpaceView, date, regroup};
use crate::tui::pane::ctx::Ctx;
use crate::units::{age, human_size, pad, rpad, thousands};

/// Eighths of a cell, left to right.
const H_EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
/// Eighths of a cell, bottom to top.
const V_EIGHTHS: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/// A share of the cache as 8 cells of bar and a percentage: `████▌    56%`.
pub fn share_bar(n: u64, total: u64) -> String {
    const CELLS: u64 = 8;
    let eighths = if total == 0 {
        0
    } else {
        (u128::from(n) * u128::from(CELLS * 8) / u128::from(total)) as u64
    };
    let mut s = "█".repeat((eighths / 8) as usize);
    s.push_str(H_EIGHTHS[(eighths % 8) as usize]);
    let s = pad(&s, CELLS as usize);
    let pct = if total == 0 {
        0.0
    } else {
        n as f64 * 100.0 / total as f64
    };
    let pct = if pct > 0.0 && pct < 1.0 {
        "<1%".to_string()
    } else {
        format!("{:.0}%", pct)
    };
    format!("{s} {pct:>4}")
}

fn when(t: i64) -> Option<SystemTime> {
    (t != i64::MIN && t >= 0).then(|| UNIX_EPOCH + Duration::from_secs(t as u64))
}

/// The view over `area` (the screen between the header and the footer).
pub(crate) fn draw_space(
    buf: &mut Buffer,
    area: Rect,
    ctx: &Ctx,
    s: &SpaceState,
    idx: &Index,
    v: &SpaceView,
) {
    let k = |a| ctx.keymap.first(Mode::Space, a);
    let inner = super::super::frame(
        buf,
        area,
        ctx.theme,
        format!(
            " Where the space goes: {} section · {} day/week · {} close ",
            k(Action::NextSection),
            k(Action::TogglePeriod),
            k(Action::Close)
        ),
    );
    if inner.height < 6 || inner.width < 30 {
        return;
    }
    let [top, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    let Some(r) = s.report.as_deref() else {
        buf.set_string(top.x, top.y, "building…", ctx.theme.status_warn);
        return;
    };
    let mut totals = format!(
        "{} paths · NAR {} · stored {} (shared NARs once) · {} packages · {} roots",
        thousands(r.paths),
        human_size(r.nar_bytes),
        human_size(r.stored_bytes),
        thousands(r.packages.len() as u64),
        thousands(r.closures.len() as u64),
    );
    if s.building {
        totals.push_str(" · building…");
    }
    buf.set_string(
        top.x,
        top.y,
        pad(&totals, top.width as usize),
        Style::default().add_modifier(Modifier::BOLD),
    );
    let (packages, chart, closures) = if body.width >= 120 {
        let [p, rest] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        let [c, b] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(rest);
        (p, c, b)
    } else {
        let [p, c, b] = Layout::vertical([
            Constraint::Percentage(45),
            Constraint::Percentage(30),
            Constraint::Percentage(25),
        ])
        .areas(body);
        (p, c, b)
    };
    draw_packages(buf, packages, ctx, r, v);
    draw_chart(buf, chart, ctx, s, r, v);
    draw_closures(buf, closures, ctx, r, idx, v);
}

/// A section: a title on a top rule; the area under it.
fn section(buf: &mut Buffer, area: Rect, ctx: &Ctx, title: String, focused: bool) -> Rect {
    let st = ctx.theme.border(focused);
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(st)
        .title(Span::styled(title, st));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

fn row_style(ctx: &Ctx, selected: bool, focused: bool) -> Style {
    match (selected, focused) {
        (true, true) => ctx.theme.selected(),
        (true, false) => Style::default().add_modifier(Modifier::UNDERLINED),
        _ => Style::default(),
    }
}

fn draw_packages(buf: &mut Buffer, area: Rect, ctx: &Ctx, r: &Report, v: &SpaceView) {
    let focused = v.section == Section::Packages;
    let order = v.order();
    let mut title = format!(
        " By package: {} of {} ",
        thousands(order.len() as u64),
        thousands(r.packages.len() as u64)
    );
    if let Some(input) = &v.typing {
        title.push_str(&format!("│ filter /{}█ ", input.text));
    } else if !v.filter.is_empty() {
        title.push_str(&format!("│ filter \"{}\" ", v.filter));
    }
    let inner = section(buf, area, ctx, title, focused);
    if inner.height < 2 {
        return;
    }
    let w = inner.width as usize;
    let show_ages = w >= 64;
    // The share: two spaces, 8 cells of bar, a space, 4 of percentage.
    let fixed = 6 + 11 + 11 + if show_ages { 14 } else { 0 } + 15;
    let name_w = w.saturating_sub(fixed).max(8);
    let head = |c: SortCol, label: &str| {
        if v.sort == c {
            format!("{label}{}", if v.desc { "▼" } else { "▲" })
        } else {
            label.to_string()
        }
    };
    let mut h = pad(&head(SortCol::Name, "NAME"), name_w);
    h.push_str(&rpad(&head(SortCol::Versions, "VERS"), 6));
    h.push_str(&rpad(&head(SortCol::Nar, "NAR"), 11));
    h.push_str(&rpad(&head(SortCol::Stored, "STORED"), 11));
    if show_ages {
        h.push_str(&rpad(&head(SortCol::Newest, "NEWEST"), 7));
        h.push_str(&rpad(&head(SortCol::Oldest, "OLDEST"), 7));
    }
    h.push_str("  ");
    h.push_str(&pad(&head(SortCol::Share, "SHARE"), 13));
    buf.set_string(
        inner.x,
        inner.y,
        pad(&h, w),
        ctx.theme.dim.add_modifier(Modifier::BOLD),
    );
    let body_h = (inner.height - 1) as usize;
    if order.is_empty() {
        let msg = if r.packages.is_empty() {
            "no paths in this cache".to_string()
        } else {
            format!(
                "no package matches \"{}\" ({} and esc clear it)",
                v.filter,
                ctx.keymap.first(Mode::Space, Action::Filter)
            )
        };
        buf.set_string(inner.x, inner.y + 1, pad(&msg, w), ctx.theme.dim);
        v.packages.set_height(body_h);
        return;
    }
    let offset = v.packages.window(order.len(), body_h);
    for (i, &pi) in order.iter().skip(offset).take(body_h).enumerate() {
        let p = &r.packages[pi as usize];
        let y = inner.y + 1 + i as u16;
        let base = row_style(ctx, offset + i == v.packages.cursor, focused);
        let mut spans = vec![
            Span::styled(pad(&p.name, name_w), base),
            Span::styled(rpad(&thousands(p.versions() as u64), 6), base),
            Span::styled(rpad(&human_size(p.nar_bytes), 11), base),
            Span::styled(rpad(&human_size(p.stored_bytes), 11), base),
        ];
        if show_ages {
            for t in [p.newest, p.oldest] {
                spans.push(Span::styled(
                    rpad(&age(ctx.now, when(t)), 7),
                    base.patch(ctx.theme.dim),
                ));
            }
        }
        spans.push(Span::styled("  ", base));
        spans.push(Span::styled(
            share_bar(p.stored_bytes, r.stored_bytes),
            base.patch(ctx.theme.border_focused),
        ));
        buf.set_style(Rect::new(inner.x, y, inner.width, 1), base);
        buf.set_line(inner.x, y, &Line::from(spans), inner.width);
    }
}

fn period(g: Granularity) -> &'static str {
    match g {
        Granularity::Day => "day",
        Granularity::Week => "week",
    }
}

fn draw_chart(buf: &mut Buffer, area: Rect, ctx: &Ctx, s: &SpaceState, r: &Report, v: &SpaceView) {
    let focused = v.section == Section::Timeline;
    let chosen = v.chart_package(r);
    let (whose, timeline): (String, Option<Timeline>) = match chosen {
        Some((_, p)) => (
            p.name.clone(),
            s.group(r.generation, &p.name)
                .map(|t| regroup(t, v.granularity)),
        ),
        None => (
            "whole cache".to_string(),
            Some(regroup(&r.timeline, v.granularity)),
        ),
    };
    let per = period(v.granularity);
    let title = format!(
        " Added per {per} — {whose} ({} {}) ",
        ctx.keymap.first(Mode::Space, Action::ChartFollow),
        if v.follow {
            "whole cache"
        } else {
            "follow selection"
        }
    );
    let inner = section(buf, area, ctx, title, focused);
    if inner.height == 0 || inner.width < 10 {
        return;
    }
    let w = inner.width as usize;
    let Some(t) = timeline else {
        buf.set_string(inner.x, inner.y, "building…", ctx.theme.status_warn);
        return;
    };
    if t.buckets.is_empty() {
        let msg = if t.undated > 0 {
            format!(
                "no dated paths ({} without LastModified)",
                thousands(t.undated)
            )
        } else {
            "no paths".to_string()
        };
        buf.set_string(inner.x, inner.y, pad(&msg, w), ctx.theme.dim);
        return;
    }
    // Fit the bars: 1 to 4 cells each (a gap after bars of 2 or more), the newest periods
    // when they do not all fit.
    let n = t.buckets.len();
    let bw = (w / n).clamp(1, 4);
    let shown = n.min(w / bw);
    let buckets = &t.buckets[n - shown..];
    let max = buckets.iter().map(|b| b.stored_bytes).max().unwrap_or(0);
    let last = buckets.last().expect("non-empty");
    let mut head = format!(
        "max {}/{per} · {} {per}s · cumulative {} (last line)",
        human_size(max),
        thousands(shown as u64),
        human_size(last.cumulative)
    );
    if t.undated > 0 {
        head.push_str(&format!(" · {} undated", thousands(t.undated)));
    }
    buf.set_string(inner.x, inner.y, pad(&head, w), ctx.theme.dim);
    let h = inner.height as usize;
    if h < 2 {
        return;
    }
    // Lines: the head, the bars, the dates, the cumulative size as one line of bars (with
    // less room: no dates, then no cumulative line).
    let extra = match h {
        0..=3 => 0,
        4 => 1,
        _ => 2,
    };
    let bars_h = h - 1 - extra;
    let bar_st = ctx.theme.border_focused;
    let cells = if bw >= 2 { bw - 1 } else { 1 };
    for (i, b) in buckets.iter().enumerate() {
        let x = inner.x + (i * bw) as u16;
        let eighths = if max == 0 {
            0
        } else {
            // Any non-zero period shows at least one eighth.
            ((u128::from(b.stored_bytes) * (bars_h as u128 * 8)).div_ceil(u128::from(max))) as usize
        };
        for row in 0..bars_h {
            let y = inner.y + 1 + (bars_h - 1 - row) as u16;
            let fill = eighths.saturating_sub(row * 8).min(8);
            if fill > 0 {
                buf.set_string(x, y, V_EIGHTHS[fill].repeat(cells), bar_st);
            }
        }
    }
    if extra == 0 {
        return;
    }
    let mut y = inner.y + 1 + bars_h as u16;
    if extra == 2 {
        let first = date(buckets[0].start);
        let end = date(last.start);
        // Under the bars: the first period's date at the left, the last one's at the right.
        let span = (shown * bw).min(w);
        let axis = if span >= first.len() + end.len() + 2 {
            format!("{first}{}{end}", " ".repeat(span - first.len() - end.len()))
        } else {
            end
        };
        buf.set_string(inner.x, y, pad(&axis, w), ctx.theme.dim);
        y += 1;
    }
    // The cumulative size: one line of bars, from 0 to the newest total.
    let top = last.cumulative.max(1);
    for (i, b) in buckets.iter().enumerate() {
        let x = inner.x + (i * bw) as u16;
        let e = (u128::from(b.cumulative) * 8).div_ceil(u128::from(top)) as usize;
        buf.set_string(x, y, V_EIGHTHS[e.min(8)].repeat(cells), ctx.theme.dim);
    }
    let label = format!(" cumulative {}", human_size(last.cumulative));
    let span = shown * bw;
    if w >= span + label.chars().count() {
        buf.set_string(inner.x + span as u16, y, label, ctx.theme.dim);
    }
}

fn draw_closures(buf: &mut Buffer, area: Rect, ctx: &Ctx, r: &Report, idx: &Index, v: &SpaceView) {
    let focused = v.section == Section::Closures;
    let unmeasured = r.closures.iter().filter(|c| !c.measured).count();
    let title = if unmeasured == 0 {
        format!(
            " Biggest closures: {} roots ({} selects) ",
            thousands(r.closures.len() as u64),
            ctx.keymap.first(Mode::Space, Action::Follow)
        )
    } else {
        // The walk budget ran out: those roots show their unshared part as "≥".
        format!(
            " Biggest closures: {} roots, {} not measured (≥: lower bound) ({} selects) ",
            thousands(r.closures.len() as u64),
            thousands(unmeasured as u64),
            ctx.keymap.first(Mode::Space, Action::Follow)
        )
    };
    let inner = section(buf, area, ctx, title, focused);
    if inner.height < 2 {
        return;
    }
    let w = inner.width as usize;
    let name_w = w.saturating_sub(7 + 11 + 11).max(8);
    let mut h = pad("ROOT", name_w);
    h.push_str(&rpad("PATHS", 7));
    h.push_str(&rpad("CLOSURE", 11));
    h.push_str(&rpad("FREES", 11));
    buf.set_string(
        inner.x,
        inner.y,
        pad(&h, w),
        ctx.theme.dim.add_modifier(Modifier::BOLD),
    );
    let body_h = (inner.height - 1) as usize;
    if r.closures.is_empty() {
        buf.set_string(inner.x, inner.y + 1, "no roots", ctx.theme.dim);
        v.closures.set_height(body_h);
        return;
    }
    let offset = v.closures.window(r.closures.len(), body_h);
    for (i, c) in r.closures.iter().skip(offset).take(body_h).enumerate() {
        let y = inner.y + 1 + i as u16;
        let base = row_style(ctx, offset + i == v.closures.cursor, focused);
        let name = if (c.root as usize) < idx.len() {
            idx.name(c.root).to_string()
        } else {
            String::new()
        };
        let at_least = if c.measured { "" } else { "≥" };
        let spans = vec![
            Span::styled(pad(&name, name_w), base),
            Span::styled(rpad(&format!("{at_least}{}", thousands(c.paths)), 7), base),
            Span::styled(
                rpad(&format!("{at_least}{}", human_size(c.stored_bytes)), 11),
                base,
            ),
            Span::styled(rpad(&human_size(c.unshared_bytes), 11), base),
        ];
        buf.set_style(Rect::new(inner.x, y, inner.width, 1), base);
        buf.set_line(inner.x, y, &Line::from(spans), inner.width);
    }
}

#[cfg(test)]
mod tests {
    use super::share_bar;

    #[test]
    fn share_bars_fill_eighths() {
        assert_eq!(share_bar(0, 100), format!("{}0%", " ".repeat(11)));
        assert_eq!(share_bar(100, 100), "████████ 100%");
        assert_eq!(share_bar(50, 100), "████      50%");
        assert_eq!(share_bar(3, 16), "█▌        19%");
        assert_eq!(share_bar(1, 1000), "          <1%");
        assert_eq!(share_bar(5, 0), format!("{}0%", " ".repeat(11)));
    }
}
