//! A one-line text input with the usual editing keys (Ctrl-U, Ctrl-W, arrows, Home/End),
//! shared by the `/` filter and the `:` command line. It only edits its text; what a submit
//! or a cancel means is up to the caller.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The text of a one-line input and where its cursor stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineInput {
    /// What has been typed so far.
    pub text: String,
    /// Cursor position, in characters.
    pub cursor: usize,
}

/// What a key did to a [`LineInput`], so the caller knows whether to re-run a filter or
/// act on the line.
pub enum Edit {
    /// The text changed (a character typed or deleted).
    Changed,
    /// The text is the same (the cursor may have moved, or the key meant nothing here).
    Unchanged,
    /// Enter: the caller acts on the text.
    Submit,
    /// Esc or Ctrl-C: the caller drops the input.
    Cancel,
}

impl LineInput {
    /// An input holding `text`, with the cursor after its last character.
    pub fn with(text: &str) -> LineInput {
        LineInput {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    fn byte_at(&self, cursor: usize) -> usize {
        self.text
            .char_indices()
            .nth(cursor)
            .map(|(i, _)| i)
            .unwrap_or(self.text.len())
    }

    /// Apply one key press and say what it did.
    pub fn key(&mut self, k: &KeyEvent) -> Edit {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Enter => Edit::Submit,
            KeyCode::Esc => Edit::Cancel,
            KeyCode::Char('c') if ctrl => Edit::Cancel,
            KeyCode::Char('u') if ctrl => {
                let b = self.byte_at(self.cursor);
                self.text.replace_range(..b, "");
                self.cursor = 0;
                Edit::Changed
            }
            KeyCode::Char('w') if ctrl => {
                let b = self.byte_at(self.cursor);
                let head = &self.text[..b];
                let keep = head.trim_end().rfind(' ').map(|i| i + 1).unwrap_or(0);
                self.text.replace_range(keep..b, "");
                self.cursor = self.text[..keep].chars().count();
                Edit::Changed
            }
            KeyCode::Char(c) if !ctrl => {
                let b = self.byte_at(self.cursor);
                self.text.insert(b, c);
                self.cursor += 1;
                Edit::Changed
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let b = self.byte_at(self.cursor - 1);
                self.text.remove(b);
                self.cursor -= 1;
                Edit::Changed
            }
            KeyCode::Delete if self.cursor < self.text.chars().count() => {
                let b = self.byte_at(self.cursor);
                self.text.remove(b);
                Edit::Changed
            }
            KeyCode::Left => {
                self.cursor = self.cursor.saturating_sub(1);
                Edit::Unchanged
            }
            KeyCode::Right => {
                self.cursor = (self.cursor + 1).min(self.text.chars().count());
                Edit::Unchanged
            }
            KeyCode::Home => {
                self.cursor = 0;
                Edit::Unchanged
            }
            KeyCode::End => {
                self.cursor = self.text.chars().count();
                Edit::Unchanged
            }
            _ => Edit::Unchanged,
        }
    }
}
