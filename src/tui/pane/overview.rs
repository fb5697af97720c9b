//! The overview pane: totals, verdict counts with bars, compression, the bucket's versions
//! (noncurrent versions and delete markers, once learnt), and the cache's problems with a few
//! examples each (a secret key in the cache first).

use std::sync::Arc;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::index::{Comp, Index, Problems, RowStatus, Totals};
use crate::tui::pane::ctx::{Ctx, Focus};
use crate::tui::pane::header::Versions;
use crate::tui::pane::{kv, pane};
use crate::tui::scroll::Scroll;
use crate::tui::theme::status_symbol;
use crate::units::{bar, human_size, thousands};

/// Totals and problems (`stats`, once computed) of `idx`, and the bucket's `versions`, in the
/// window `scroll` keeps.
pub(crate) fn draw_overview(
    buf: &mut Buffer,
    area: Rect,
    ctx: &Ctx,
    idx: &Index,
    stats: Option<Arc<(Totals, Problems)>>,
    versions: &Versions,
    scroll: &Scroll,
) {
    let block = pane(ctx, " 4 Overview ".into(), Focus::Overview);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(stats) = stats else {
        buf.set_string(inner.x + 1, inner.y, "computing…", ctx.theme.dim);
        return;
    };
    let (t, p) = (&stats.0, &stats.1);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::styled("Totals", bold),
        kv(ctx, "paths", thousands(t.paths)),
        kv(ctx, "NAR bytes", human_size(t.nar_bytes)),
        kv(ctx, "FileSize", human_size(t.file_bytes)),
        kv(
            ctx,
            "NAR objects",
            if idx.nars_listed {
                format!(
                    "{} ({})",
                    thousands(t.nar_objects),
                    human_size(t.nar_object_bytes)
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
                ctx.theme.status(s),
            ),
            Span::raw(format!("{:>10} ", thousands(n))),
            Span::styled(bar(n, max, bar_w), ctx.theme.status(s)),
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
            human_size(bytes)
        )));
    }
    version_lines(&mut lines, ctx, versions, usize::from(inner.width));
    lines.push(Line::raw(""));
    lines.push(Line::styled("Problems", bold));
    let problem = |lines: &mut Vec<Line>, label: &str, n: usize, examples: Vec<String>| {
        let st = if n == 0 {
            ctx.theme.dim
        } else {
            ctx.theme.status_error
        };
        lines.push(Line::styled(
            format!("  {label}: {}", thousands(n as u64)),
            st,
        ));
        // Callers build only the examples shown (the first three).
        for e in examples.into_iter().take(3) {
            lines.push(Line::styled(format!("      {e}"), ctx.theme.dim));
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
                    ctx.theme.status_error.add_modifier(Modifier::BOLD),
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
            ctx.theme.status_warn,
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
            ctx.theme.dim,
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
        lines.push(Line::styled("  nix-cache-info: ok", ctx.theme.dim));
    }
    for c in &p.cache_info {
        lines.push(Line::styled(format!("  {c}"), ctx.theme.status_error));
    }
    if let Some(ci) = &idx.cache_info {
        lines.push(Line::raw(""));
        lines.push(Line::styled("nix-cache-info", bold));
        for l in ci.lines() {
            lines.push(Line::raw(format!("  {l}")));
        }
    }
    let top = scroll.view(lines.len(), inner.height as usize);
    Paragraph::new(lines)
        .scroll((top.min(u16::MAX as usize) as u16, 0))
        .render(inner, buf);
}

/// The "Versions" block, once the versioning state is known: the state, and for a bucket that
/// keeps versions the noncurrent versions and delete markers by kind and what frees them.
fn version_lines(lines: &mut Vec<Line>, ctx: &Ctx, v: &Versions, width: usize) {
    let Some(state) = &v.state else {
        return;
    };
    let bold = Style::default().add_modifier(Modifier::BOLD);
    lines.push(Line::raw(""));
    lines.push(Line::styled("Versions", bold));
    let wrapped = |lines: &mut Vec<Line>, label: &str, text: String, style: Style| {
        let w = width.saturating_sub(19).max(20);
        for (n, part) in wrap_words(&text, w).into_iter().enumerate() {
            let k = if n == 0 { label } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("  {k:<15} "), ctx.theme.dim),
                Span::styled(part, style),
            ]));
        }
    };
    let plain = Style::default();
    match state {
        Ok(s) if s.keeps_versions() => wrapped(
            lines,
            "state",
            format!("{}: deletes only hide objects", s.label()),
            ctx.theme.status_warn,
        ),
        Ok(s) => wrapped(
            lines,
            "state",
            format!("{}: deletes are final", s.label()),
            plain,
        ),
        Err(e) => wrapped(
            lines,
            "state",
            format!("versioning unknown ({e})"),
            ctx.theme.dim,
        ),
    }
    match &v.stats {
        None if v.listing => wrapped(
            lines,
            "noncurrent",
            "listing versions…".into(),
            ctx.theme.dim,
        ),
        None => {}
        Some(Err(e)) => wrapped(
            lines,
            "noncurrent",
            format!("unknown (listing versions failed: {e})"),
            ctx.theme.status_error,
        ),
        Some(Ok(st)) => {
            let so_far = if v.listing { " (listing…)" } else { "" };
            let nc = st.noncurrent.total();
            let style = if nc.count > 0 {
                ctx.theme.status_warn
            } else {
                plain
            };
            wrapped(
                lines,
                "noncurrent",
                format!("{}{so_far}", st.noncurrent.describe()),
                style,
            );
            wrapped(lines, "delete markers", st.delete_markers.describe(), plain);
            if st.keeps_anything() {
                wrapped(
                    lines,
                    "frees it",
                    crate::storage::version_stats::FREES_NONCURRENT.into(),
                    ctx.theme.dim,
                );
            }
        }
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word stands alone).
pub(crate) fn wrap_words(text: &str, width: usize) -> Vec<String> {
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
