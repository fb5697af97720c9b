//! The confirmation dialog: what will happen, line by line, and two buttons. It opens on
//! Cancel, so a stray Enter never starts anything; destructive ones are drawn in the danger
//! colour.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::index::RowId;
use crate::tui::keymap::{Action, Mode};
use crate::tui::overlay::Overlay;
use crate::tui::overlay::centered;
use crate::tui::pane::ctx::Ctx;
use crate::tui::scroll::Scroll;

/// What a confirmed dialog starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Quit although jobs are running.
    Quit,
    /// Deep-verify these rows.
    VerifyContents(Vec<RowId>),
    /// Sign these rows.
    Sign(Vec<RowId>),
    /// Carry out this confirmed deletion.
    Delete(Box<crate::jobs::delete::Confirmed>),
    /// Push these local paths.
    Push(Vec<String>),
    /// Collect the garbage of the plan shown.
    Collect,
    /// Remove this pin.
    PinRemove(String),
    /// Restore this past plan.
    RestorePlan(String),
    /// Purge this past plan.
    PurgePlan(String),
    /// Copy what this plan says to another cache.
    CopyTo(crate::tui::msg::CopyHandle),
}

/// A confirmation dialog. It defaults to Cancel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// What is asked, in the border.
    pub title: String,
    /// What will happen, one line each (scrollable).
    pub lines: Vec<String>,
    /// The confirm button's label.
    pub yes_label: String,
    /// Whether the confirm button is highlighted.
    pub yes_selected: bool,
    /// The first line shown and the window's height.
    pub scroll: Scroll,
    /// Whether this destroys something (drawn in the danger colour).
    pub destructive: bool,
    /// What confirming does.
    pub then: Confirmed,
}

impl Confirm {
    /// The overlay asking `title`, listing `lines`, with cancel selected.
    pub fn ask(
        title: &str,
        lines: Vec<String>,
        yes_label: &str,
        destructive: bool,
        then: Confirmed,
    ) -> Overlay {
        Overlay::Confirm(Confirm {
            title: title.into(),
            lines,
            yes_label: yes_label.into(),
            yes_selected: false,
            scroll: Scroll::new(10),
            destructive,
            then,
        })
    }
}

/// What a key in a confirmation asks of the ctx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Still asking (the dialog stays, with its new state).
    Open,
    /// Cancelled: the dialog closes and nothing starts.
    Cancel,
    /// Confirmed: the dialog closes and its [`Confirm::then`] starts.
    Confirm,
}

impl Confirm {
    /// A key in a confirmation: confirm, cancel, move between the buttons, or scroll.
    pub(crate) fn key(&mut self, action: Option<Action>) -> Answer {
        match action {
            Some(Action::Confirm) => return Answer::Confirm,
            Some(Action::Cancel) => return Answer::Cancel,
            Some(Action::ToggleChoice) => self.yes_selected = !self.yes_selected,
            Some(Action::Choose) => {
                return if self.yes_selected {
                    Answer::Confirm
                } else {
                    Answer::Cancel
                };
            }
            Some(Action::Down) => self.scroll.scroll_by(1, self.lines.len()),
            Some(Action::Up) => self.scroll.scroll_by(-1, self.lines.len()),
            _ => {}
        }
        Answer::Open
    }
}

pub(crate) fn draw_confirm(buf: &mut Buffer, area: Rect, ctx: &Ctx, c: &Confirm) {
    let r = centered(area, 70, 60, 50, 9);
    Clear.render(r, buf);
    let st = if c.destructive {
        ctx.theme.danger()
    } else {
        ctx.theme.border(true)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(st)
        .title(Span::styled(format!(" {} ", c.title), st));
    let inner = block.inner(r);
    block.render(r, buf);
    let [body, buttons] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let top = c.scroll.view(c.lines.len(), body.height as usize);
    let lines: Vec<Line> = c
        .lines
        .iter()
        .skip(top)
        .map(|l| Line::raw(l.clone()))
        .collect();
    Paragraph::new(lines).render(body, buf);
    let yes_k = ctx.keymap.first(Mode::Confirm, Action::Confirm);
    let no_k = ctx.keymap.first(Mode::Confirm, Action::Cancel);
    let sel = ctx.theme.selected();
    let yes_style = if c.yes_selected {
        if c.destructive {
            sel.patch(ctx.theme.danger())
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
