//! The footer line: the `/` filter being typed, else the `:` line, else the status notice,
//! else key hints that fit the width (mutating ones hidden in read-only mode).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::tui::input::LineInput;
use crate::tui::keymap::{Action, Mode};
use crate::tui::pane::ctx::Ctx;

/// Status line severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Information; goes away at the next key.
    Info,
    /// A warning; goes away at the next key.
    Warn,
    /// An error; stays until a key is pressed.
    Error,
}

/// A status line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// How serious it is (its colour, and whether background news may replace it).
    pub level: Level,
    /// What the status line says.
    pub text: String,
    /// Which notice it is (each `notify` numbers them), so that the one a later message
    /// answers can be told from a newer one.
    pub id: u64,
}

/// What the footer may show, first one first: the `/` filter being typed (and whether it is
/// fuzzy), the `:` line, the notice.
pub(crate) struct FooterInfo<'a> {
    /// The `/` filter being typed.
    pub(crate) filter: Option<&'a LineInput>,
    /// Whether filtering is fuzzy.
    pub(crate) fuzzy: bool,
    /// The `:` line being typed.
    pub(crate) command: Option<&'a LineInput>,
    /// The status line's notice.
    pub(crate) notice: Option<&'a Notice>,
    /// The space view is open: hints for its keys.
    pub(crate) space: bool,
}

pub(crate) fn draw_footer(buf: &mut Buffer, area: Rect, ctx: &Ctx, info: &FooterInfo) {
    if let Some(input) = info.filter {
        let how = if info.fuzzy { "fuzzy" } else { "filter" };
        let line = Line::from(vec![
            Span::styled(format!("{how} /"), ctx.theme.status_warn),
            Span::raw(input.text.clone()),
            Span::styled("█", ctx.theme.dim),
            Span::styled(
                format!(
                    "   enter keep · esc clear · {} fuzzy",
                    ctx.keymap.first(Mode::Normal, Action::ToggleFuzzy)
                ),
                ctx.theme.dim,
            ),
        ]);
        buf.set_line(area.x, area.y, &line, area.width);
        return;
    }
    if let Some(input) = info.command {
        let line = Line::from(vec![
            Span::styled(":", ctx.theme.status_warn),
            Span::raw(input.text.clone()),
            Span::styled("█", ctx.theme.dim),
        ]);
        buf.set_line(area.x, area.y, &line, area.width);
        return;
    }
    if let Some(n) = info.notice {
        let st = match n.level {
            Level::Info => ctx.theme.status_info,
            Level::Warn => ctx.theme.status_warn,
            Level::Error => ctx.theme.status_error.add_modifier(Modifier::BOLD),
        };
        buf.set_line(
            area.x,
            area.y,
            &Line::styled(n.text.clone(), st),
            area.width,
        );
        return;
    }
    let (mode, hints) = if info.space {
        (Mode::Space, &SPACE_HINTS[..])
    } else {
        (Mode::Normal, &NORMAL_HINTS[..])
    };
    let mut spans = Vec::new();
    let mut used = 0usize;
    for &(a, label) in hints {
        let k = ctx.keymap.first(mode, a);
        if k.is_empty() || (ctx.read_only && a.is_mutating()) {
            continue;
        }
        let len = k.chars().count() + label.len() + 3;
        if used + len > area.width as usize {
            break;
        }
        used += len;
        spans.push(Span::styled(
            format!(" {k}"),
            ctx.theme.border_focused.add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(format!(" {label} "), ctx.theme.dim));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

/// Key hints of the space view, first ones first.
const SPACE_HINTS: [(Action, &str); 8] = [
    (Action::Follow, "open"),
    (Action::SortNext, "sort"),
    (Action::SortReverse, "reverse"),
    (Action::Filter, "filter"),
    (Action::NextSection, "section"),
    (Action::TogglePeriod, "day/week"),
    (Action::ChartFollow, "chart"),
    (Action::Close, "close"),
];

/// Key hints of the panes, first ones first.
const NORMAL_HINTS: [(Action, &str); 10] = [
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
