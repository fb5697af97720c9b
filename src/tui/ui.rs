//! Drawing: a pure function of the [`App`] (plus the pane rectangles it records for the mouse).
//! Only the visible rows of the list are built, so a million rows draw as fast as a hundred.

use std::sync::atomic::Ordering;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use super::app::{App, Areas, Confirm, Focus, Level, Overlay, age, human};
use super::detail::{Detail, NarPresence};
use super::keymap::{Action, Mode};
use super::theme::status_symbol;
use super::view::StatusFilter;
use crate::index::scan::Phase;
use crate::index::{Comp, Index, RowId, RowStatus, flags};
use crate::jobs::JobState;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

/// Draw everything.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let idx = app.idx();
    draw_header(f.buffer_mut(), header, app);

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
    draw_list(f.buffer_mut(), left, app, &idx, &mut areas);
    match app.inspector {
        Focus::Details | Focus::Signatures | Focus::List => {
            if right.height >= 24 || (wide && right.height >= 16) {
                let [d, s] =
                    Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)])
                        .areas(right);
                areas.details = d;
                areas.signatures = s;
                draw_details(f.buffer_mut(), d, app, &idx);
                draw_signatures(f.buffer_mut(), s, app);
            } else if app.inspector == Focus::Signatures {
                areas.signatures = right;
                draw_signatures(f.buffer_mut(), right, app);
            } else {
                areas.details = right;
                draw_details(f.buffer_mut(), right, app, &idx);
            }
        }
        Focus::Overview => {
            areas.overview = right;
            draw_overview(f.buffer_mut(), right, app, &idx);
        }
        Focus::Jobs => {
            areas.jobs = right;
            draw_jobs(f.buffer_mut(), right, app);
        }
    }
    drop(idx);
    draw_footer(f.buffer_mut(), footer, app);
    app.areas.set(areas);

    match &app.overlay {
        Overlay::None | Overlay::Command(_) => {}
        Overlay::Help { scroll } => draw_help(f.buffer_mut(), area, app, *scroll),
        Overlay::Confirm(c) => draw_confirm(f.buffer_mut(), area, app, c),
        Overlay::Gc(v) => draw_gc(f.buffer_mut(), area, app, v),
        Overlay::Info {
            title,
            lines,
            scroll,
        } => draw_info(f.buffer_mut(), area, app, title, lines, *scroll),
    }
}

fn draw_info(
    buf: &mut Buffer,
    area: Rect,
    app: &App,
    title: &str,
    lines: &[String],
    scroll: usize,
) {
    let r = centered(area, 75, 70, 50, 8);
    Clear.render(r, buf);
    let close = app.keymap.first(Mode::Help, Action::Close);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(true))
        .title(format!(" {title} ({close} closes) "));
    let inner = block.inner(r);
    block.render(r, buf);
    let shown: Vec<Line> = lines
        .iter()
        .skip(scroll)
        .take(inner.height as usize)
        .map(|l| Line::raw(l.clone()))
        .collect();
    Paragraph::new(shown).render(inner, buf);
}

/// The GC plan: groups with counts and bytes, opened on Enter; the reason for the line under
/// the cursor at the bottom.
fn draw_gc(buf: &mut Buffer, area: Rect, app: &App, v: &super::gcview::GcView) {
    use super::gcview::Line as GcLine;
    let Some(g) = &app.gc else { return };
    let r = centered(area, 90, 85, 60, 12);
    Clear.render(r, buf);
    let k = |a| app.keymap.first(Mode::Gc, a);
    let st = app.theme.border(true);
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
    let idx = app.idx();
    buf.set_string(
        top.x,
        top.y,
        pad(&g.short_totals(), top.width as usize),
        Style::default().add_modifier(Modifier::BOLD),
    );
    let h = body.height as usize;
    app.gc_height.set(h);
    let n = g.line_count(&v.open);
    let scroll = v.scroll.min(n.saturating_sub(1));
    let w = body.width as usize;
    for (i, line_no) in (scroll..n).take(h).enumerate() {
        let y = body.y + i as u16;
        let selected = line_no == v.cursor;
        let (text, style) = match g.line(&v.open, line_no) {
            Some(GcLine::Header(gi, grp)) => {
                let mark = if v.open.contains(&gi) { "▾" } else { "▸" };
                let verb = if grp.deleted { "delete" } else { "keep  " };
                let bytes = grp.bytes.map(human).unwrap_or_default();
                let style = if grp.deleted && !grp.items.is_empty() {
                    app.theme.danger()
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
                format!("      {}", g.item_text(&idx, gi, ii)),
                Style::default(),
            ),
            None => (String::new(), Style::default()),
        };
        let style = if selected {
            style.patch(app.theme.selected())
        } else {
            style
        };
        buf.set_string(body.x, y, pad(&text, w), style);
    }
    let reason = g.why(&idx, &v.open, v.cursor);
    Paragraph::new(vec![Line::styled(reason, app.theme.fg("dim"))])
        .wrap(ratatui::widgets::Wrap { trim: true })
        .render(why, buf);
}

fn pane<'a>(app: &App, title: String, focus: Focus) -> Block<'a> {
    let focused = app.focus == focus;
    Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(focused))
        .title(Span::styled(
            title,
            app.theme.fg("title").add_modifier(if focused {
                Modifier::BOLD
            } else {
                Modifier::empty()
            }),
        ))
}

fn draw_header(buf: &mut Buffer, area: Rect, app: &App) {
    buf.set_style(area, app.theme.header());
    let live = app.view.total() as u64;
    let mut spans = vec![
        Span::styled(
            " narscope ",
            app.theme.header().add_modifier(Modifier::BOLD),
        ),
        Span::raw("│ "),
        Span::raw(app.url.clone()),
        Span::raw(" │ "),
        Span::raw(format!("{} paths", thousands(live))),
    ];
    if app.scanning {
        let sp = SPINNER[(app.ticks as usize) % SPINNER.len()];
        let text = match &app.scan {
            Some(p) => match p.phase() {
                Phase::Nars => format!(
                    " │ {sp} listing NARs: {}",
                    thousands(p.nars.load(Ordering::Relaxed))
                ),
                _ => {
                    let listed = p.listed.load(Ordering::Relaxed);
                    let to_fetch = p.to_fetch.load(Ordering::Relaxed);
                    let fetched = p.fetched.load(Ordering::Relaxed);
                    format!(
                        " │ {sp} scanning: {} listed, {}/{} fetched",
                        thousands(listed),
                        thousands(fetched),
                        thousands(to_fetch)
                    )
                }
            },
            None => format!(" │ {sp} scanning"),
        };
        spans.push(Span::styled(text, app.theme.fg("status_warn")));
    } else if let Some(Err(_)) = &app.last_scan {
        spans.push(Span::styled(" │ scan failed", app.theme.fg("status_error")));
    }
    let running = app.running_jobs();
    if running > 0 {
        spans.push(Span::raw(format!(" │ {running} job(s)")));
    }
    if app.read_only {
        spans.push(Span::styled(" │ read-only", app.theme.fg("status_warn")));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

fn comp_short(c: Comp) -> &'static str {
    match c {
        Comp::Bzip2 => "bz2",
        other => other.as_str(),
    }
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n > w {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        if w > 0 {
            t.push('…');
        }
        t
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

fn rpad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        s.chars().take(w).collect()
    } else {
        format!("{}{s}", " ".repeat(w - n))
    }
}

fn draw_list(buf: &mut Buffer, area: Rect, app: &App, idx: &Index, areas: &mut Areas) {
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
        app.theme.fg("dim").add_modifier(Modifier::BOLD),
    );
    let body_h = (inner.height - 1) as usize;
    app.list_height.set(body_h);
    areas.list_rows_top = inner.y + 1;
    if rows.is_empty() {
        let msg = if app.scanning {
            "loading…".to_string()
        } else if app.view.query.is_empty() && app.view.status == StatusFilter::All {
            "no narinfos in this cache".to_string()
        } else {
            format!(
                "no paths match the filters ({} clears them)",
                app.keymap.first(Mode::Normal, Action::ClearFilter)
            )
        };
        buf.set_string(inner.x + 3, inner.y + 1, msg, app.theme.fg("dim"));
        return;
    }
    // The window that holds the cursor (the reducer learns the height only from this draw).
    let mut offset = app.offset.min(rows.len().saturating_sub(1));
    if app.cursor >= offset + body_h {
        offset = app.cursor + 1 - body_h;
    } else if app.cursor < offset {
        offset = app.cursor;
    }
    app.drawn_offset.set(offset);
    for (i, &id) in rows.iter().skip(offset).take(body_h).enumerate() {
        let y = inner.y + 1 + i as u16;
        let r = idx.row(id);
        let selected = offset + i == app.cursor;
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
            Span::styled(
                if marked { "●" } else { " " },
                base.patch(app.theme.fg("marked")),
            ),
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
                base.patch(app.theme.fg("dim")),
            ));
        }
        let nar = if r.status == RowStatus::Pending && r.nar_size == 0 {
            String::new()
        } else {
            human(r.nar_size)
        };
        spans.push(Span::styled(rpad(&nar, 10), base));
        spans.push(Span::styled(
            rpad(&r.file_size().map(human).unwrap_or_default(), 10),
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
                base.patch(app.theme.fg("dim")),
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
            thousands((app.cursor + 1) as u64),
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

fn kv<'a>(app: &App, k: &str, v: impl Into<String>) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{k:<12}"), app.theme.fg("dim")),
        Span::raw(v.into()),
    ])
}

fn current_detail(app: &App) -> Option<&Detail> {
    app.detail.as_deref().filter(|d| Some(d.id) == app.selected)
}

fn draw_details(buf: &mut Buffer, area: Rect, app: &App, idx: &Index) {
    let block = pane(app, " 2 Details ".into(), Focus::Details);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(id) = app.selected else {
        buf.set_string(
            inner.x + 1,
            inner.y,
            "nothing selected",
            app.theme.fg("dim"),
        );
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    let r = idx.row(id);
    lines.push(Line::from(vec![
        Span::styled(status_symbol(r.status), app.theme.status(r.status)),
        Span::raw(" "),
        Span::styled(
            idx.store_path(id),
            Style::default().add_modifier(Modifier::BOLD),
        ),
    ]));
    let Some(d) = current_detail(app) else {
        lines.push(kv(app, "narinfo", idx.narinfo_key(id)));
        lines.push(Line::styled("loading…", app.theme.fg("dim")));
        Paragraph::new(lines).render(inner, buf);
        return;
    };
    lines.push(kv(app, "narinfo", d.key.clone()));
    if let Some(g) = &app.gc
        && g.generation == idx.generation
        && (id as usize) < g.prepared.plan.keep.len()
    {
        lines.push(kv(app, "GC plan", g.prepared.plan.why(idx, id)));
    }
    match &d.info {
        Err(e) => {
            lines.push(Line::styled(
                format!("cannot read: {e}"),
                app.theme.fg("status_error"),
            ));
            if let Some(t) = &d.text {
                lines.push(Line::styled("text:", app.theme.fg("dim")));
                for l in t.lines().take(40) {
                    lines.push(Line::raw(format!("  {l}")));
                }
            }
        }
        Ok(info) => {
            lines.push(kv(app, "URL", info.url.clone()));
            lines.push(kv(
                app,
                "Compression",
                match &info.compression {
                    Some(c) => c.clone(),
                    None => "(missing: bzip2)".into(),
                },
            ));
            if let Some(h) = &info.file_hash {
                lines.push(kv(app, "FileHash", h.to_string()));
            }
            if let Some(s) = info.file_size {
                lines.push(kv(
                    app,
                    "FileSize",
                    format!("{} ({} bytes)", human(s), thousands(s)),
                ));
            }
            lines.push(kv(app, "NarHash", info.nar_hash.to_string()));
            lines.push(kv(
                app,
                "NarSize",
                format!(
                    "{} ({} bytes)",
                    human(info.nar_size),
                    thousands(info.nar_size)
                ),
            ));
            lines.push(kv(
                app,
                "Deriver",
                info.deriver
                    .as_ref()
                    .map(|p| p.to_absolute())
                    .unwrap_or_else(|| "unknown".into()),
            ));
            if let Some(ca) = &info.ca {
                let ok = match d.ca_ok {
                    Some(true) => " (store path recomputes)",
                    Some(false) => " (store path does NOT recompute)",
                    None => "",
                };
                lines.push(kv(app, "CA", format!("{ca}{ok}")));
            }
            if let Some(s) = &info.system {
                lines.push(kv(app, "System", s.clone()));
            }
            for (k, v) in info.unknown_fields() {
                lines.push(kv(app, k, v.to_string()));
            }
            if let Some(t) = r.modified() {
                lines.push(kv(
                    app,
                    "Modified",
                    format!("{} ago", age(app.now, Some(t))),
                ));
            }
        }
    }
    let nar = match &d.nar {
        NarPresence::Exists(s) => {
            Span::styled(format!("present ({})", human(*s)), app.theme.fg("trusted"))
        }
        NarPresence::Missing => Span::styled(
            "MISSING (dangling narinfo)",
            app.theme.status(RowStatus::Corrupt),
        ),
        NarPresence::Unknown(e) => {
            Span::styled(format!("unknown: {e}"), app.theme.fg("status_warn"))
        }
    };
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "NAR object"), app.theme.fg("dim")),
        nar,
    ]));
    let crate::index::ClosureStats {
        paths: n,
        nar_bytes: nar_b,
        file_bytes: file_b,
        missing,
    } = d.closure;
    let mut clos = format!("{n} paths, NAR {}, stored {}", human(nar_b), human(file_b));
    if missing > 0 {
        clos.push_str(&format!(", {missing} reference(s) NOT in the cache"));
    }
    lines.push(kv(app, "Closure", clos));
    lines.push(Line::raw(""));
    let focused = app.focus == Focus::Details;
    let mut k = 0usize;
    let push_ref = |lines: &mut Vec<Line>, rid: RowId, k: usize| {
        let row = idx.row(rid);
        let here = row.is_live();
        let sel = focused && k == app.ref_cursor;
        let style = if sel {
            app.theme.selected()
        } else {
            Style::default()
        };
        let sym = if here {
            status_symbol(row.status)
        } else {
            "⚠"
        };
        let sym_style = if here {
            app.theme.status(row.status)
        } else {
            app.theme.fg("status_error")
        };
        let mut text = format!(" {}", idx.base_name(rid));
        if !here {
            text.push_str("  (not in the cache)");
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {sym}"), style.patch(sym_style)),
            Span::styled(text, style),
        ]));
    };
    lines.push(Line::styled(
        format!("References ({})", d.references.len()),
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for &rid in &d.references {
        push_ref(&mut lines, rid, k);
        k += 1;
    }
    lines.push(Line::styled(
        format!("Referrers ({})", d.referrers.len()),
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for &rid in &d.referrers {
        push_ref(&mut lines, rid, k);
        k += 1;
    }
    match &d.listing {
        None => {}
        Some(Err(e)) => lines.push(Line::styled(
            format!("Files (.ls): {e}"),
            app.theme.fg("status_warn"),
        )),
        Some(Ok(entries)) => {
            lines.push(Line::styled(
                format!("Files (.ls, {} entries)", entries.len()),
                Style::default().add_modifier(Modifier::BOLD),
            ));
            for e in entries {
                let size = e
                    .size
                    .map(|s| format!("  {}", human(s)))
                    .unwrap_or_default();
                lines.push(Line::raw(format!("  {} {}{size}", e.path, e.kind)));
            }
        }
    }
    // Keep the selected reference in sight.
    let mut scroll = app.detail_scroll;
    if focused && k > 0 {
        let header_lines = lines.len() - k - 2 - listing_len(d);
        let sel_line =
            header_lines + 1 + app.ref_cursor + usize::from(app.ref_cursor >= d.references.len());
        let h = inner.height as usize;
        if sel_line >= scroll as usize + h {
            scroll = (sel_line + 1 - h) as u16;
        } else if sel_line < scroll as usize {
            scroll = sel_line as u16;
        }
    }
    Paragraph::new(lines).scroll((scroll, 0)).render(inner, buf);
}

fn listing_len(d: &Detail) -> usize {
    match &d.listing {
        None => 0,
        Some(Err(_)) => 1,
        Some(Ok(e)) => e.len() + 1,
    }
}

fn draw_signatures(buf: &mut Buffer, area: Rect, app: &App) {
    let block = pane(app, " 3 Signatures ".into(), Focus::Signatures);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(d) = current_detail(app) else {
        return;
    };
    let status = RowStatus::from(d.status);
    let mut lines = vec![Line::from(vec![Span::styled(
        format!("{} {}", status_symbol(status), status.as_str()),
        app.theme.status(status),
    )])];
    for r in &d.reasons {
        lines.push(Line::raw(format!("  {r}")));
    }
    if d.sigs.is_empty() {
        lines.push(Line::styled("no Sig lines", app.theme.fg("dim")));
    }
    for s in &d.sigs {
        let (sym, st) = if s.valid {
            ("✓", app.theme.status(RowStatus::Trusted))
        } else if !s.trusted_key {
            ("?", app.theme.status(RowStatus::Untrusted))
        } else {
            ("✗", app.theme.status(RowStatus::Invalid))
        };
        let what = if s.trusted_key {
            format!("trusted key: {}", s.outcome)
        } else if s.outcome.starts_with("malformed") {
            s.outcome.clone()
        } else {
            "not a trusted key (not checked)".to_string()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{sym} "), st),
            Span::styled(
                s.key_name.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("  {what}")),
        ]));
    }
    if let Some(fp) = &d.fingerprint {
        lines.push(Line::styled("fingerprint:", app.theme.fg("dim")));
        // Wrap by hand: the fingerprint has no spaces.
        let w = inner.width.saturating_sub(2).max(10) as usize;
        let chars: Vec<char> = fp.chars().collect();
        for chunk in chars.chunks(w) {
            lines.push(Line::raw(format!("  {}", chunk.iter().collect::<String>())));
        }
    }
    Paragraph::new(lines)
        .scroll((app.sig_scroll, 0))
        .render(inner, buf);
}

fn bar(n: u64, max: u64, width: usize) -> String {
    if max == 0 || width == 0 {
        return String::new();
    }
    let cells = (n as f64 / max as f64 * width as f64).ceil() as usize;
    "█".repeat(cells.min(width))
}

fn draw_overview(buf: &mut Buffer, area: Rect, app: &App, idx: &Index) {
    let block = pane(app, " 4 Overview ".into(), Focus::Overview);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(stats) = app.cached_stats() else {
        buf.set_string(inner.x + 1, inner.y, "computing…", app.theme.fg("dim"));
        return;
    };
    let (t, p) = (&stats.0, &stats.1);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::styled("Totals", bold),
        kv(app, "paths", thousands(t.paths)),
        kv(app, "NAR bytes", human(t.nar_bytes)),
        kv(app, "FileSize", human(t.file_bytes)),
        kv(
            app,
            "NAR objects",
            if idx.nars_listed {
                format!(
                    "{} ({})",
                    thousands(t.nar_objects),
                    human(t.nar_object_bytes)
                )
            } else {
                "not listed yet".into()
            },
        ),
        Line::raw(""),
        Line::styled("Verdicts", bold),
    ];
    let max = t.max_status();
    let bar_w = (inner.width as usize).saturating_sub(34).max(4);
    for s in RowStatus::ALL {
        let n = t.status(s);
        if n == 0 && s == RowStatus::Pending {
            continue;
        }
        lines.push(Line::from(vec![
            Span::styled(
                format!("{} {:<18}", status_symbol(s), s.as_str()),
                app.theme.status(s),
            ),
            Span::raw(format!("{:>10} ", thousands(n))),
            Span::styled(bar(n, max, bar_w), app.theme.status(s)),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Compression", bold));
    for c in [
        Comp::Xz,
        Comp::Zstd,
        Comp::Bzip2,
        Comp::None,
        Comp::Gzip,
        Comp::Br,
        Comp::Other,
        Comp::Unknown,
    ] {
        let (n, bytes) = t.comp(c);
        if n == 0 {
            continue;
        }
        let name = if c == Comp::Unknown {
            "(unread)"
        } else {
            c.as_str()
        };
        lines.push(Line::raw(format!(
            "  {name:<8} {:>10} paths  {:>12}",
            thousands(n),
            human(bytes)
        )));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Problems", bold));
    let problem = |lines: &mut Vec<Line>, label: &str, n: usize, examples: Vec<String>| {
        let st = if n == 0 {
            app.theme.fg("dim")
        } else {
            app.theme.fg("status_error")
        };
        lines.push(Line::styled(
            format!("  {label}: {}", thousands(n as u64)),
            st,
        ));
        // Callers build only the examples shown (the first three).
        for e in examples.into_iter().take(3) {
            lines.push(Line::styled(format!("      {e}"), app.theme.fg("dim")));
        }
    };
    // A secret key in the cache first: one line each, in full (never the key itself).
    let width = usize::from(inner.width).saturating_sub(4).max(20);
    for &i in &p.secret_keys {
        if let Some(k) = idx.secret_keys.get(i) {
            for (n, part) in wrap_words(&k.message(), width).into_iter().enumerate() {
                let indent = if n == 0 { "  " } else { "    " };
                lines.push(Line::styled(
                    format!("{indent}{part}"),
                    app.theme.fg("status_error").add_modifier(Modifier::BOLD),
                ));
            }
        }
    }
    if idx.keys_not_checked > 0 {
        lines.push(Line::styled(
            format!(
                "  {} small stray objects not checked for secret keys (at most {} are read)",
                thousands(idx.keys_not_checked as u64),
                crate::keyprobe::MAX_KEY_PROBES
            ),
            app.theme.fg("status_warn"),
        ));
    }
    if idx.nars_listed {
        problem(
            &mut lines,
            "dangling narinfos (NAR missing)",
            p.dangling.len(),
            p.dangling
                .iter()
                .take(3)
                .map(|&i| idx.base_name(i))
                .collect(),
        );
        problem(
            &mut lines,
            "orphan NARs (no narinfo)",
            p.orphan_nars.len(),
            p.orphan_nars
                .iter()
                .filter_map(|&i| idx.nars().get(i).map(|n| n.key.clone()))
                .take(3)
                .collect(),
        );
    } else {
        lines.push(Line::styled(
            "  NARs not listed yet: dangling/orphan unknown",
            app.theme.fg("dim"),
        ));
    }
    problem(
        &mut lines,
        "references not in the cache",
        p.missing_refs.len(),
        p.missing_refs
            .iter()
            .take(3)
            .map(|&(a, b)| format!("{} → {}", idx.base_name(a), idx.base_name(b)))
            .collect(),
    );
    problem(
        &mut lines,
        "StorePath not matching its key",
        p.key_mismatch.len(),
        p.key_mismatch
            .iter()
            .take(3)
            .map(|&i| idx.narinfo_key(i))
            .collect(),
    );
    problem(
        &mut lines,
        "unreadable narinfos",
        p.unreadable.len(),
        p.unreadable
            .iter()
            .take(3)
            .map(|&i| idx.narinfo_key(i))
            .collect(),
    );
    problem(
        &mut lines,
        "named like a narinfo, no store path (remove by hand)",
        p.misnamed.len(),
        p.misnamed
            .iter()
            .filter_map(|&i| idx.others.get(i).map(|o| o.key.clone()))
            .take(3)
            .collect(),
    );
    problem(
        &mut lines,
        "stray objects at the root",
        p.stray.len(),
        p.stray
            .iter()
            .filter_map(|&i| idx.others.get(i).map(|o| o.key.clone()))
            .take(3)
            .collect(),
    );
    if p.cache_info.is_empty() {
        lines.push(Line::styled("  nix-cache-info: ok", app.theme.fg("dim")));
    }
    for c in &p.cache_info {
        lines.push(Line::styled(format!("  {c}"), app.theme.fg("status_error")));
    }
    if let Some(ci) = &idx.cache_info {
        lines.push(Line::raw(""));
        lines.push(Line::styled("nix-cache-info", bold));
        for l in ci.lines() {
            lines.push(Line::raw(format!("  {l}")));
        }
    }
    Paragraph::new(lines)
        .scroll((app.overview_scroll, 0))
        .render(inner, buf);
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word stands alone).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    out
}

fn draw_jobs(buf: &mut Buffer, area: Rect, app: &App) {
    let block = pane(app, " 5 Jobs ".into(), Focus::Jobs);
    let inner = block.inner(area);
    block.render(area, buf);
    if app.jobs.is_empty() {
        buf.set_string(inner.x + 1, inner.y, "no jobs yet", app.theme.fg("dim"));
        return;
    }
    let mut lines = Vec::new();
    let gauge_w = (inner.width as usize).saturating_sub(50).clamp(6, 30);
    for (i, j) in app.jobs.iter().enumerate() {
        let p = &j.progress;
        let total = p.total.load(Ordering::Relaxed);
        let done = p.done.load(Ordering::Relaxed);
        let failed = p.failed.load(Ordering::Relaxed);
        let frac = if total > 0 {
            done as f64 / total as f64
        } else {
            0.0
        };
        let filled = ((frac * gauge_w as f64).round() as usize).min(gauge_w);
        let gauge = format!("▕{}{}▏", "█".repeat(filled), "░".repeat(gauge_w - filled));
        let (state, st) = match j.state() {
            JobState::Running => ("running".to_string(), app.theme.fg("status_warn")),
            JobState::Done if failed > 0 => (
                format!("done, {failed} failed"),
                app.theme.fg("status_error"),
            ),
            JobState::Done => ("done".to_string(), app.theme.fg("trusted")),
            JobState::Failed(e) => (format!("failed: {e}"), app.theme.fg("status_error")),
            JobState::Cancelled => ("cancelled".to_string(), app.theme.fg("dim")),
        };
        let sel = app.focus == Focus::Jobs && i == app.job_cursor;
        let base = if sel {
            app.theme.selected()
        } else {
            Style::default()
        };
        let counts = if total > 0 {
            format!("{}/{}", thousands(done), thousands(total))
        } else {
            thousands(done)
        };
        let mut extra = if j.is_running() {
            let mut e = format!(" {:.1}/s", j.rate());
            if let Some(eta) = j.eta() {
                e.push_str(&format!(" ETA {}s", eta.as_secs()));
            }
            e
        } else {
            format!(" in {:.1} s", j.elapsed().as_secs_f64())
        };
        let bytes = p.bytes_done.load(Ordering::Relaxed);
        if bytes > 0 {
            extra.push_str(&format!(" {}", human(bytes)));
        }
        lines.push(Line::from(vec![
            Span::styled(
                format!("#{} {} ", j.id, j.kind.as_str()),
                base.add_modifier(Modifier::BOLD),
            ),
            Span::styled(j.title.clone(), base),
        ]));
        lines.push(Line::from(vec![
            Span::styled(format!("  {gauge} "), app.theme.fg("gauge")),
            Span::raw(format!("{counts}{extra}  ")),
            Span::styled(state, st),
        ]));
        if sel {
            let cur = p.current();
            if !cur.is_empty() {
                lines.push(Line::styled(format!("  now: {cur}"), app.theme.fg("dim")));
            }
            for e in p.errors().iter().take(50) {
                lines.push(Line::styled(
                    format!("  ✗ {e}"),
                    app.theme.fg("status_error"),
                ));
            }
        }
    }
    Paragraph::new(lines)
        .wrap(ratatui::widgets::Wrap { trim: false })
        .render(inner, buf);
}

fn draw_footer(buf: &mut Buffer, area: Rect, app: &App) {
    if let Some(input) = &app.filter_input {
        let how = if app.view.fuzzy { "fuzzy" } else { "filter" };
        let line = Line::from(vec![
            Span::styled(format!("{how} /"), app.theme.fg("status_warn")),
            Span::raw(input.text.clone()),
            Span::styled("█", app.theme.fg("dim")),
            Span::styled(
                format!(
                    "   enter keep · esc clear · {} fuzzy",
                    app.keymap.first(Mode::Normal, Action::ToggleFuzzy)
                ),
                app.theme.fg("dim"),
            ),
        ]);
        buf.set_line(area.x, area.y, &line, area.width);
        return;
    }
    if let Overlay::Command(input) = &app.overlay {
        let line = Line::from(vec![
            Span::styled(":", app.theme.fg("status_warn")),
            Span::raw(input.text.clone()),
            Span::styled("█", app.theme.fg("dim")),
        ]);
        buf.set_line(area.x, area.y, &line, area.width);
        return;
    }
    if let Some(n) = &app.notice {
        let st = match n.level {
            Level::Info => app.theme.fg("status_info"),
            Level::Warn => app.theme.fg("status_warn"),
            Level::Error => app.theme.fg("status_error").add_modifier(Modifier::BOLD),
        };
        buf.set_line(
            area.x,
            area.y,
            &Line::styled(n.text.clone(), st),
            area.width,
        );
        return;
    }
    let hints = [
        (Action::Help, "help"),
        (Action::Filter, "filter"),
        (Action::CycleStatusFilter, "verdicts"),
        (Action::SortNext, "sort"),
        (Action::NextPane, "pane"),
        (Action::ToggleMark, "mark"),
        (Action::VerifyContents, "verify"),
        (Action::CommandLine, "command"),
        (Action::Refresh, "refresh"),
        (Action::Quit, "quit"),
    ];
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (a, label) in hints {
        let k = app.keymap.first(Mode::Normal, a);
        if k.is_empty() || (app.read_only && a.is_mutating()) {
            continue;
        }
        let len = k.chars().count() + label.len() + 3;
        if used + len > area.width as usize {
            break;
        }
        used += len;
        spans.push(Span::styled(
            format!(" {k}"),
            app.theme.fg("border_focused").add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(format!(" {label} "), app.theme.fg("dim")));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

fn centered(area: Rect, w_pct: u16, h_pct: u16, min_w: u16, min_h: u16) -> Rect {
    let w = (area.width * w_pct / 100).max(min_w).min(area.width);
    let h = (area.height * h_pct / 100).max(min_h).min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The help text (also what `--help` of the dashboard describes).
pub fn help_lines(app: &App) -> Vec<Line<'static>> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::styled("Keys", bold)];
    for (a, keys) in app.keymap.bindings(Mode::Normal) {
        let ks: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let mut desc = a.description().to_string();
        if app.read_only && a.is_mutating() {
            desc.push_str("  (disabled: read-only)");
        }
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {:<22}", ks.join(", ")),
                app.theme.fg("border_focused"),
            ),
            Span::raw(desc),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Command line (:)", bold));
    let gc_hint = format!(
        "({} plans with the defaults)",
        app.keymap.first(Mode::Normal, Action::Gc)
    );
    for (c, d) in [
        (
            "sort name|size|stored|age|verdict [asc|desc]",
            "sort the list",
        ),
        (
            "only all|problems|unsigned|untrusted|…",
            "filter by verdict",
        ),
        (
            "filter TEXT",
            "filter by name or hash (substring; smart case)",
        ),
        ("fuzzy on|off", "fuzzy filtering"),
        ("goto PATH|HASH", "jump to a store path"),
        ("verify [marked|selected|view]", "deep-verify NARs"),
        (
            "sign [marked|selected|view|unsigned]",
            "sign with the signing key",
        ),
        (
            "delete [marked|selected|view|unsigned]",
            "delete paths (plan first)",
        ),
        ("push STORE-PATH…", "push local paths with their closures"),
        ("pull [PATH…] --to DIR", "download and unpack paths"),
        (
            "gc [--grace D] [--keep-younger-than D]",
            "plan a garbage collection",
        ),
        ("   [--roots-file F] [--allow-no-roots]", gc_hint.as_str()),
        (
            "pin add NAME [PATH…]",
            "pin paths (default: marked/selected)",
        ),
        ("pin rm NAME, pins", "remove a pin / list the pins"),
        ("mark all|none", "mark every row in view / none"),
        ("cancel [#ID]", "cancel a job"),
        ("refresh", "re-read the cache"),
        ("copy", "copy the store path"),
        ("quit, q!", "quit / quit at once"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("  :{c:<46}"), app.theme.fg("border_focused")),
            Span::raw(d.to_string()),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Verdicts", bold));
    for (s, d) in [
        (
            RowStatus::Trusted,
            "a signature verifies under a trusted key",
        ),
        (
            RowStatus::ContentAddressed,
            "no trusted signature, but the CA store path recomputes",
        ),
        (
            RowStatus::Untrusted,
            "signatures, but none by a trusted key",
        ),
        (
            RowStatus::Invalid,
            "a signature under a trusted key's name does not verify",
        ),
        (RowStatus::Unsigned, "no signatures"),
        (
            RowStatus::Corrupt,
            "the NAR is missing or does not match (deep verify)",
        ),
        (
            RowStatus::Error,
            "the narinfo cannot be read or has the wrong key",
        ),
        (RowStatus::Pending, "not judged yet"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {} {:<19}", status_symbol(s), s.as_str()),
                app.theme.status(s),
            ),
            Span::raw(d),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "  [no NAR] after a name: the narinfo's NAR object is missing.",
    ));
    if let Some(p) = &app.log_path {
        lines.push(Line::raw(format!("  Log file: {p}")));
    }
    lines
}

fn draw_help(buf: &mut Buffer, area: Rect, app: &App, scroll: usize) {
    let r = centered(area, 80, 85, 60, 12);
    Clear.render(r, buf);
    let close = app.keymap.first(Mode::Help, Action::Close);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(true))
        .title(format!(
            " Help: {close} closes, {}/{} scroll ",
            app.keymap.first(Mode::Help, Action::Down),
            app.keymap.first(Mode::Help, Action::Up)
        ));
    let inner = block.inner(r);
    block.render(r, buf);
    let lines = help_lines(app);
    let max = lines.len().saturating_sub(inner.height as usize);
    Paragraph::new(lines)
        .scroll((scroll.min(max) as u16, 0))
        .render(inner, buf);
}

fn draw_confirm(buf: &mut Buffer, area: Rect, app: &App, c: &Confirm) {
    let r = centered(area, 70, 60, 50, 9);
    Clear.render(r, buf);
    let st = if c.destructive {
        app.theme.danger()
    } else {
        app.theme.border(true)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(st)
        .title(Span::styled(format!(" {} ", c.title), st));
    let inner = block.inner(r);
    block.render(r, buf);
    let [body, buttons] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let lines: Vec<Line> = c
        .lines
        .iter()
        .skip(c.scroll)
        .map(|l| Line::raw(l.clone()))
        .collect();
    Paragraph::new(lines).render(body, buf);
    let yes_k = app.keymap.first(Mode::Confirm, Action::Confirm);
    let no_k = app.keymap.first(Mode::Confirm, Action::Cancel);
    let sel = app.theme.selected();
    let yes_style = if c.yes_selected {
        if c.destructive {
            sel.patch(app.theme.danger())
        } else {
            sel
        }
    } else {
        Style::default()
    };
    let no_style = if c.yes_selected {
        Style::default()
    } else {
        sel
    };
    let line = Line::from(vec![
        Span::styled(format!(" [ Cancel ({no_k}) ] "), no_style),
        Span::raw("  "),
        Span::styled(format!(" [ {} ({yes_k}) ] ", c.yes_label), yes_style),
    ]);
    buf.set_line(
        buttons.x + 1,
        buttons.y,
        &line,
        buttons.width.saturating_sub(1),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(pad("abcdef", 4), "abc…");
        assert_eq!(rpad("ab", 4), "  ab");
        assert_eq!(bar(5, 10, 10).chars().count(), 5);
        assert_eq!(bar(0, 0, 10), "");
    }
}
