//! One scrolling rule for every window (the store-path list and the GC plan with a cursor;
//! help, info, confirmations and the details, signatures and overview panes without one):
//! the window moves as little as possible to show the cursor, and never past the window that
//! ends at the last line. When the cursor moves, the window also never leaves blank lines
//! below the last item when it could show more; a frame drawn at another size only ever
//! moves it to show the cursor (so a resize alone does not scroll the list).
//!
//! The reducer moves the cursor; only drawing knows how many lines fit. Drawing reports that
//! height through [`Scroll::window`], which applies the same rule and records the offset it
//! drew, so the next key starts from what the user saw. Those two numbers sit in `Cell`s:
//! they are the only state drawing writes (besides the pane rectangles kept for the mouse).
//! Views without a cursor (help, info, confirmations, the details, signatures and overview
//! panes) use [`Scroll::view`] and [`Scroll::scroll_by`]/[`Scroll::scroll_drawn`]: the same
//! window, clamped to the lines the last frame had.

use std::cell::Cell;

/// A cursor over `len` items and the window of `height` lines that shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scroll {
    /// The item under the cursor.
    pub cursor: usize,
    /// The first item shown, as last drawn or moved.
    offset: Cell<usize>,
    /// How many items the last frame showed (at least 1).
    height: Cell<usize>,
    /// How many lines the last frame had to show, for views without a cursor (unknown
    /// before the first frame: then keys move freely and the frame clamps).
    drawn_len: Cell<Option<usize>>,
}

impl Scroll {
    /// A scroll at the top that assumes `height` lines until the first frame says otherwise.
    pub fn new(height: usize) -> Scroll {
        Scroll {
            cursor: 0,
            offset: Cell::new(0),
            height: Cell::new(height),
            drawn_len: Cell::new(None),
        }
    }

    /// Back to the top (a new item is shown).
    pub fn reset(&mut self) {
        self.cursor = 0;
        self.offset.set(0);
    }

    /// The first item shown.
    pub fn offset(&self) -> usize {
        self.offset.get()
    }

    /// Lines in the window as last drawn: what Page Down moves.
    pub fn page(&self) -> usize {
        self.height.get().max(1)
    }

    /// Record the window's height without drawing (tests, and drawing code that has no list).
    pub fn set_height(&self, height: usize) {
        self.height.set(height);
    }

    /// After the cursor moved: move the window so that it shows the cursor (over `len`
    /// items), and fill it to the end.
    pub fn keep_cursor_visible(&mut self, len: usize) {
        let h = self.page();
        let mut o = fit(self.offset.get(), self.cursor, len, h);
        if o + h > len {
            o = len.saturating_sub(h);
        }
        self.offset.set(o);
    }

    /// For a view without a cursor (help): move the window by `delta` lines over `len`,
    /// never past the window that ends at the last line.
    pub fn scroll_by(&mut self, delta: isize, len: usize) {
        let max = len.saturating_sub(self.page());
        let o = (self.offset.get() as isize + delta).clamp(0, max as isize) as usize;
        self.offset.set(o);
        self.cursor = o;
    }

    /// Keys for a view without a cursor whose length only drawing knows (the signatures and
    /// overview panes): move by `delta` lines, within the lines the last frame had.
    pub fn scroll_drawn(&mut self, delta: isize) {
        let o = (self.offset.get() as isize + delta).max(0) as usize;
        let o = match self.drawn_len.get() {
            Some(len) => o.min(len.saturating_sub(self.page())),
            None => o,
        };
        self.offset.set(o);
        self.cursor = o;
    }

    /// Drawing a view without a cursor: `len` lines in a window of `height`; the first line to
    /// draw, never past the window that ends at the last line. Records both for the keys.
    pub fn view(&self, len: usize, height: usize) -> usize {
        self.height.set(height);
        self.drawn_len.set(Some(len));
        let o = self.offset.get().min(len.saturating_sub(self.page()));
        self.offset.set(o);
        o
    }

    /// Drawing a view without a cursor of its own that must still show one line (the details
    /// pane's selected reference): [`Scroll::view`], then the least move that shows `line`.
    pub fn view_showing(&self, line: Option<usize>, len: usize, height: usize) -> usize {
        let o = self.view(len, height);
        let o = match line {
            Some(l) => fit(o, l, len, self.page()),
            None => o,
        };
        self.offset.set(o);
        o
    }

    /// Drawing: the window is `height` lines over `len` items; the first item to draw.
    pub fn window(&self, len: usize, height: usize) -> usize {
        self.height.set(height);
        let offset = fit(self.offset.get(), self.cursor, len, self.page());
        self.offset.set(offset);
        offset
    }
}

/// The rule: keep `offset` (within the `len` items) unless the cursor is above it (then start
/// at the cursor) or below the window (then end at the cursor).
fn fit(offset: usize, cursor: usize, len: usize, height: usize) -> usize {
    let o = offset.min(len.saturating_sub(1));
    if cursor < o {
        cursor
    } else if cursor >= o + height {
        cursor + 1 - height
    } else {
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_follows_the_cursor_by_the_least_move() {
        let mut s = Scroll::new(5);
        s.cursor = 5;
        s.keep_cursor_visible(12);
        assert_eq!(s.offset(), 1, "the cursor row becomes the last one shown");
        s.cursor = 3;
        s.keep_cursor_visible(12);
        assert_eq!(s.offset(), 1, "a cursor inside the window does not move it");
        s.cursor = 0;
        s.keep_cursor_visible(12);
        assert_eq!(s.offset(), 0);
    }

    #[test]
    fn drawing_reports_its_height_and_moves_only_to_show_the_cursor() {
        let mut s = Scroll::new(20);
        s.cursor = 11;
        s.keep_cursor_visible(12);
        assert_eq!(s.offset(), 0, "12 items fit in 20 lines");
        assert_eq!(
            s.window(12, 8),
            4,
            "a smaller frame scrolls to show the cursor"
        );
        assert_eq!(s.page(), 8);
        assert_eq!(s.offset(), 4, "the next key starts from what was drawn");
        assert_eq!(
            s.window(12, 10),
            4,
            "a taller frame does not scroll by itself"
        );
        s.keep_cursor_visible(12);
        assert_eq!(s.offset(), 2, "the next move fills the window to the end");
        s.cursor = 0;
        assert_eq!(s.window(0, 10), 0, "an empty list starts at the top");
        s.set_height(0);
        assert_eq!(s.page(), 1, "a page is at least one line");
    }

    #[test]
    fn a_view_without_cursor_stops_at_its_last_window() {
        let mut s = Scroll::new(10);
        s.scroll_by(100, 25);
        assert_eq!(s.offset(), 15, "the last window ends at the last line");
        s.scroll_by(-1, 25);
        assert_eq!(s.offset(), 14, "one step back shows at once");
        s.scroll_by(-100, 25);
        assert_eq!(s.offset(), 0);
        s.scroll_by(3, 5);
        assert_eq!(s.offset(), 0, "a short text does not scroll");
    }

    #[test]
    fn a_view_without_a_cursor_stops_at_its_last_window() {
        let mut s = Scroll::new(5);
        // Before any frame, keys move freely; the frame clamps.
        s.scroll_drawn(30);
        assert_eq!(s.view(12, 5), 7);
        // After it, keys stop at the last window, and one step back shows at once.
        s.scroll_drawn(10);
        assert_eq!(s.offset(), 7);
        s.scroll_drawn(-1);
        assert_eq!(s.view(12, 5), 6);
        s.scroll_drawn(-100);
        assert_eq!(s.offset(), 0);
        // A view shorter than its window never scrolls.
        s.scroll_drawn(3);
        assert_eq!(s.view(3, 5), 0);
        s.reset();
        assert_eq!((s.offset(), s.cursor), (0, 0));
    }

    #[test]
    fn a_view_can_keep_one_line_in_sight() {
        let mut s = Scroll::new(5);
        assert_eq!(s.view_showing(Some(8), 20, 5), 4);
        // The window stays where it was drawn: the next key starts from what was seen.
        s.scroll_drawn(1);
        assert_eq!(s.view_showing(None, 20, 5), 5);
        assert_eq!(s.view_showing(Some(2), 20, 5), 2);
    }
}
