//! The details pane: the selected narinfo's fields, its NAR, closure, references and
//! referrers (which Enter follows) and its `.ls` listing. [`load`] reads all that off the UI
//! thread.

pub mod load;

use std::sync::Arc;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::index::{Index, RowId, RowStatus};
use crate::tui::pane::ctx::{Ctx, Focus};
use crate::tui::pane::details::load::{Detail, NarPresence};
use crate::tui::pane::{kv, pane};
use crate::tui::scroll::Scroll;
use crate::tui::theme::status_symbol;
use crate::units::{age, human_size, thousands};

/// The details pane's state: what it shows and where its cursor and scroll stand.
pub struct Details {
    /// The last detail loaded; drawing ignores it once another row is selected.
    pub loaded: Option<Arc<Detail>>,
    /// The pane's window over its lines (kept by drawing, which alone knows their number).
    pub scroll: Scroll,
    /// The reference (then referrer) under the cursor, which Enter follows.
    pub ref_cursor: usize,
}

impl Default for Details {
    fn default() -> Self {
        Details {
            loaded: None,
            scroll: Scroll::new(10),
            ref_cursor: 0,
        }
    }
}

impl Details {
    /// Show a loaded detail; a detail of another row starts at the top. Whether it is
    /// another row.
    pub fn show(&mut self, d: Detail) -> bool {
        let other = self.loaded.as_ref().is_none_or(|o| o.id != d.id);
        if other {
            self.ref_cursor = 0;
            self.scroll.reset();
        }
        self.loaded = Some(Arc::new(d));
        other
    }

    /// One step moves the cursor among the `refs` references and referrers (if any); a
    /// bigger move scrolls.
    pub fn move_by(&mut self, delta: isize, refs: usize) {
        if refs > 0 && delta.abs() == 1 {
            let c = self.ref_cursor as isize + delta;
            self.ref_cursor = c.clamp(0, refs as isize - 1) as usize;
        } else {
            self.scroll.scroll_drawn(delta);
        }
    }

    /// The cursor to the last of `refs` references (`end`), or to the first and the top.
    pub fn move_to_end(&mut self, end: bool, refs: usize) {
        self.ref_cursor = if end { refs.saturating_sub(1) } else { 0 };
        if !end {
            self.scroll.reset();
        }
    }
}

impl Details {
    /// The loaded detail if it is row `selected`'s (one of another row is stale).
    pub fn current(&self, selected: Option<RowId>) -> Option<&Detail> {
        self.loaded.as_deref().filter(|d| Some(d.id) == selected)
    }

    /// References then referrers of row `selected`'s detail, as the pane lists them.
    pub fn ref_targets(&self, selected: Option<RowId>) -> Vec<RowId> {
        match self.current(selected) {
            Some(d) => d.references.iter().chain(&d.referrers).copied().collect(),
            None => Vec::new(),
        }
    }

    /// Draw the detail of row `selected` (of `idx`), with why the last GC plan keeps or
    /// deletes it (`gc_why`), if it knows.
    pub(crate) fn draw(
        &self,
        buf: &mut Buffer,
        area: Rect,
        ctx: &Ctx,
        idx: &Index,
        selected: Option<RowId>,
        gc_why: Option<String>,
    ) {
        let block = pane(ctx, " 2 Details ".into(), Focus::Details);
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(id) = selected else {
            buf.set_string(inner.x + 1, inner.y, "nothing selected", ctx.theme.dim);
            return;
        };
        let mut lines: Vec<Line> = Vec::new();
        let r = idx.row(id);
        lines.push(Line::from(vec![
            Span::styled(status_symbol(r.status), ctx.theme.status(r.status)),
            Span::raw(" "),
            Span::styled(
                idx.store_path(id),
                Style::default().add_modifier(Modifier::BOLD),
            ),
        ]));
        let Some(d) = self.current(selected) else {
            lines.push(kv(ctx, "narinfo", idx.narinfo_key(id)));
            lines.push(Line::styled("loading…", ctx.theme.dim));
            Paragraph::new(lines).render(inner, buf);
            return;
        };
        lines.push(kv(ctx, "narinfo", d.key.clone()));
        if let Some(why) = gc_why {
            lines.push(kv(ctx, "GC plan", why));
        }
        match &d.info {
            Err(e) => {
                lines.push(Line::styled(
                    format!("cannot read: {e}"),
                    ctx.theme.status_error,
                ));
                if let Some(t) = &d.text {
                    lines.push(Line::styled("text:", ctx.theme.dim));
                    for l in t.lines().take(40) {
                        lines.push(Line::raw(format!("  {l}")));
                    }
                }
            }
            Ok(info) => {
                lines.push(kv(ctx, "URL", info.url.clone()));
                lines.push(kv(
                    ctx,
                    "Compression",
                    match &info.compression {
                        Some(c) => c.clone(),
                        None => "(missing: bzip2)".into(),
                    },
                ));
                if let Some(h) = &info.file_hash {
                    lines.push(kv(ctx, "FileHash", h.to_string()));
                }
                if let Some(s) = info.file_size {
                    lines.push(kv(
                        ctx,
                        "FileSize",
                        format!("{} ({} bytes)", human_size(s), thousands(s)),
                    ));
                }
                lines.push(kv(ctx, "NarHash", info.nar_hash.to_string()));
                lines.push(kv(
                    ctx,
                    "NarSize",
                    format!(
                        "{} ({} bytes)",
                        human_size(info.nar_size),
                        thousands(info.nar_size)
                    ),
                ));
                lines.push(kv(
                    ctx,
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
                    lines.push(kv(ctx, "CA", format!("{ca}{ok}")));
                }
                if let Some(s) = &info.system {
                    lines.push(kv(ctx, "System", s.clone()));
                }
                for (k, v) in info.unknown_fields() {
                    lines.push(kv(ctx, k, v.to_string()));
                }
                if let Some(t) = r.modified() {
                    lines.push(kv(
                        ctx,
                        "Modified",
                        format!("{} ago", age(ctx.now, Some(t))),
                    ));
                }
            }
        }
        let nar = match &d.nar {
            NarPresence::Exists(s) => {
                Span::styled(format!("present ({})", human_size(*s)), ctx.theme.trusted)
            }
            NarPresence::Missing => Span::styled(
                "MISSING (dangling narinfo)",
                ctx.theme.status(RowStatus::Corrupt),
            ),
            NarPresence::Unknown(e) => Span::styled(format!("unknown: {e}"), ctx.theme.status_warn),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12}", "NAR object"), ctx.theme.dim),
            nar,
        ]));
        let crate::index::ClosureStats {
            paths: n,
            nar_bytes: nar_b,
            file_bytes: file_b,
            missing,
        } = d.closure;
        let mut clos = format!(
            "{n} paths, NAR {}, stored {}",
            human_size(nar_b),
            human_size(file_b)
        );
        if missing > 0 {
            clos.push_str(&format!(", {missing} reference(s) NOT in the cache"));
        }
        lines.push(kv(ctx, "Closure", clos));
        lines.push(Line::raw(""));
        let focused = ctx.focus == Focus::Details;
        let mut k = 0usize;
        let push_ref = |lines: &mut Vec<Line>, rid: RowId, k: usize| {
            let row = idx.row(rid);
            let here = row.is_live();
            let sel = focused && k == self.ref_cursor;
            let style = if sel {
                ctx.theme.selected()
            } else {
                Style::default()
            };
            let sym = if here {
                status_symbol(row.status)
            } else {
                "⚠"
            };
            let sym_style = if here {
                ctx.theme.status(row.status)
            } else {
                ctx.theme.status_error
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
        for (title, rows) in [("References", &d.references), ("Referrers", &d.referrers)] {
            lines.push(Line::styled(
                format!("{title} ({})", rows.len()),
                Style::default().add_modifier(Modifier::BOLD),
            ));
            for &rid in rows {
                push_ref(&mut lines, rid, k);
                k += 1;
            }
        }
        match &d.listing {
            None => {}
            Some(Err(e)) => lines.push(Line::styled(
                format!("Files (.ls): {e}"),
                ctx.theme.status_warn,
            )),
            Some(Ok(entries)) => {
                lines.push(Line::styled(
                    format!("Files (.ls, {} entries)", entries.len()),
                    Style::default().add_modifier(Modifier::BOLD),
                ));
                for e in entries {
                    let size = e
                        .size
                        .map(|s| format!("  {}", human_size(s)))
                        .unwrap_or_default();
                    lines.push(Line::raw(format!("  {} {}{size}", e.path, e.kind)));
                }
            }
        }
        // Keep the selected reference in sight.
        let sel_line = (focused && k > 0).then(|| {
            let header_lines = lines.len() - k - 2 - listing_len(d);
            header_lines + 1 + self.ref_cursor + usize::from(self.ref_cursor >= d.references.len())
        });
        let top = self
            .scroll
            .view_showing(sel_line, lines.len(), inner.height as usize);
        Paragraph::new(lines)
            .scroll((top.min(u16::MAX as usize) as u16, 0))
            .render(inner, buf);
    }
}

pub(crate) fn listing_len(d: &Detail) -> usize {
    match &d.listing {
        None => 0,
        Some(Err(_)) => 1,
        Some(Ok(e)) => e.len() + 1,
    }
}
