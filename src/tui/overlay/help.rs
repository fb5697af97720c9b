//! Help: every key of normal mode (from the keymap in use), the `:` commands and what each
//! verdict means.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::index::RowStatus;
use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::{Outcome, centered};
use crate::tui::pane::ctx::Ctx;
use crate::tui::scroll::Scroll;
use crate::tui::theme::status_symbol;

/// A key while help (`n` lines long) is open: scroll, or close.
pub(crate) fn key(scroll: &mut Scroll, n: usize, action: Option<Action>) -> Outcome {
    match action {
        Some(Action::Close) => return Outcome::Close,
        Some(Action::Down) => scroll.scroll_by(1, n),
        Some(Action::Up) => scroll.scroll_by(-1, n),
        Some(Action::PageDown) => scroll.scroll_by(10, n),
        Some(Action::PageUp) => scroll.scroll_by(-10, n),
        _ => {}
    }
    Outcome::Open
}

/// The help text (also what `--help` of the dashboard describes).
pub fn help_lines(ctx: &Ctx) -> Vec<Line<'static>> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::styled("Keys", bold)];
    for (a, keys) in ctx.keymap.bindings(Mode::Normal) {
        let ks: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let mut desc = a.description().to_string();
        if ctx.read_only && a.is_mutating() {
            desc.push_str("  (disabled: read-only)");
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<22}", ks.join(", ")), ctx.theme.border_focused),
            Span::raw(desc),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!(
            "Space view ({})",
            ctx.keymap.first(Mode::Normal, Action::SpaceView)
        ),
        bold,
    ));
    for (a, keys) in ctx.keymap.bindings(Mode::Space) {
        let ks: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<22}", ks.join(", ")), ctx.theme.border_focused),
            Span::raw(crate::tui::overlay::space::describe(a)),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Command line (:)", bold));
    let gc_hint = format!(
        "({} plans with the defaults)",
        ctx.keymap.first(Mode::Normal, Action::Gc)
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
            "   [--keep-versions N] [--max-size SIZE]",
            "retention: newest N versions; a size budget",
        ),
        (
            "pin add NAME [PATH…]",
            "pin paths (default: marked/selected)",
        ),
        ("pin rm NAME, pins", "remove a pin / list the pins"),
        ("plans", "past deletion plans (restore, purge)"),
        (
            "space",
            "where the space goes (packages, over time, closures)",
        ),
        ("mark all|none", "mark every row in view / none"),
        ("cancel [#ID]", "cancel a job"),
        ("refresh", "re-read the cache"),
        ("copy", "copy the store path"),
        ("quit, q!", "quit / quit at once"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("  :{c:<46}"), ctx.theme.border_focused),
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
                ctx.theme.status(s),
            ),
            Span::raw(d),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "  [no NAR] after a name: the narinfo's NAR object is missing.",
    ));
    if let Some(p) = ctx.log_path {
        lines.push(Line::raw(format!("  Log file: {p}")));
    }
    lines
}

pub(crate) fn draw_help(buf: &mut Buffer, area: Rect, ctx: &Ctx, scroll: &Scroll) {
    let r = centered(area, 80, 85, 60, 12);
    Clear.render(r, buf);
    let close = ctx.keymap.first(Mode::Help, Action::Close);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(ctx.theme.border(true))
        .title(format!(
            " Help: {close} closes, {}/{} scroll ",
            ctx.keymap.first(Mode::Help, Action::Down),
            ctx.keymap.first(Mode::Help, Action::Up)
        ));
    let inner = block.inner(r);
    block.render(r, buf);
    let lines = help_lines(ctx);
    scroll.set_height(inner.height as usize);
    let max = lines.len().saturating_sub(inner.height as usize);
    Paragraph::new(lines)
        .scroll((scroll.offset().min(max) as u16, 0))
        .render(inner, buf);
}
