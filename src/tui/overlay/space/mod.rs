//! The space view ("where the space goes"): the cache by package, the bytes added per day or
//! week, and the biggest closures, over a [`Report`] built off the UI thread. [`SpaceState`]
//! is what the app keeps between openings (the report, the per-package timelines); the
//! view's own state and keys are [`SpaceView`]; [`draw`] draws it. The app carries out what
//! a key asks ([`SpaceOutcome`], `app/space.rs`).

pub mod draw;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use crossterm::event::KeyEvent;

use crate::index::RowId;
use crate::space::Report;
use crate::space::group::Package;
use crate::space::timeline::{Bucket, Granularity, Timeline};
use crate::tui::input::{Edit, LineInput};
use crate::tui::keymap::Action;
use crate::tui::scroll::Scroll;

/// Per-package timelines kept at most (the cache is dropped when the index changes).
const GROUP_CACHE: usize = 64;

/// The space report as the dashboard holds it between openings of the view.
#[derive(Default)]
pub struct SpaceState {
    /// The report last built (kept while a newer one is built).
    pub report: Option<Arc<Report>>,
    /// Whether a report is being built.
    pub building: bool,
    /// Day timelines of single packages, by name, for the report's generation.
    pub groups: HashMap<String, Arc<Timeline>>,
    /// The generation `groups` belongs to.
    pub groups_generation: u64,
    /// The package whose timeline is being built (generation, name).
    pub group_pending: Option<(u64, String)>,
}

impl SpaceState {
    /// Keep the timeline of package `name` built on generation `generation`.
    pub fn put_group(&mut self, generation: u64, name: String, t: Arc<Timeline>) {
        if self
            .group_pending
            .as_ref()
            .is_some_and(|(g, n)| *g == generation && *n == name)
        {
            self.group_pending = None;
        }
        if generation != self.groups_generation {
            self.groups.clear();
            self.groups_generation = generation;
        }
        if self.groups.len() >= GROUP_CACHE {
            self.groups.clear();
        }
        self.groups.insert(name, t);
    }

    /// The timeline of package `name` on generation `generation`, if built.
    pub fn group(&self, generation: u64, name: &str) -> Option<&Arc<Timeline>> {
        (self.groups_generation == generation)
            .then(|| self.groups.get(name))
            .flatten()
    }
}

/// The sections of the view, in the order Tab visits them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The table of packages.
    Packages,
    /// The bytes added over time.
    Timeline,
    /// The biggest closures.
    Closures,
}

impl Section {
    const CYCLE: [Section; 3] = [Section::Packages, Section::Timeline, Section::Closures];

    fn step(self, by: usize) -> Section {
        let i = Section::CYCLE.iter().position(|s| *s == self).unwrap_or(0);
        Section::CYCLE[(i + by) % Section::CYCLE.len()]
    }
}

/// The columns the package table sorts by (`s` cycles them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortCol {
    /// Package name.
    Name,
    /// Number of versions (paths).
    Versions,
    /// NAR bytes.
    Nar,
    /// Stored bytes.
    Stored,
    /// Age of the newest path.
    Newest,
    /// Age of the oldest path.
    Oldest,
    /// Share of the cache (its stored bytes).
    Share,
}

impl SortCol {
    /// The cycle `s` walks.
    pub const ALL: [SortCol; 7] = [
        SortCol::Name,
        SortCol::Versions,
        SortCol::Nar,
        SortCol::Stored,
        SortCol::Newest,
        SortCol::Oldest,
        SortCol::Share,
    ];

    /// The next column.
    pub fn next(self) -> SortCol {
        let i = SortCol::ALL.iter().position(|c| *c == self).unwrap_or(0);
        SortCol::ALL[(i + 1) % SortCol::ALL.len()]
    }

    /// The order a column starts in: names and ages ascending (youngest first), sizes and
    /// counts descending (biggest first).
    pub fn default_desc(self) -> bool {
        !matches!(self, SortCol::Name | SortCol::Newest | SortCol::Oldest)
    }

    /// Ascending order of two packages by this column (ages: youngest first; unknown ages
    /// count as the oldest).
    fn cmp(self, a: &Package, b: &Package) -> Ordering {
        match self {
            SortCol::Name => a.name.cmp(&b.name),
            SortCol::Versions => a.versions().cmp(&b.versions()),
            SortCol::Nar => a.nar_bytes.cmp(&b.nar_bytes),
            SortCol::Stored | SortCol::Share => a.stored_bytes.cmp(&b.stored_bytes),
            SortCol::Newest => b.newest.cmp(&a.newest),
            SortCol::Oldest => b.oldest.cmp(&a.oldest),
        }
    }
}

/// What a key in the space view asks of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpaceOutcome {
    /// The view stays, with its new state.
    Open,
    /// The key closed it.
    Close,
    /// Show exactly this package's paths in the list; the view closes.
    OpenGroup(String),
    /// Select this root in the list; the view closes.
    FollowRoot(RowId),
}

/// What [`SpaceView::order`] was computed for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OrderKey {
    generation: u64,
    packages: usize,
    sort: SortCol,
    desc: bool,
    filter: String,
}

/// The space view's state: the focused section, the cursors, the table's sort and filter,
/// the chart's period and whether it follows the selected package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceView {
    /// The section that has the keys.
    pub section: Section,
    /// The cursor over the (sorted, filtered) packages.
    pub packages: Scroll,
    /// The cursor over the closures.
    pub closures: Scroll,
    /// The column the packages are sorted by.
    pub sort: SortCol,
    /// Whether the order is descending.
    pub desc: bool,
    /// The name filter (substring, smart case; empty shows all).
    pub filter: String,
    /// The filter being typed (keys go to it).
    pub typing: Option<LineInput>,
    /// Bars per day or per week.
    pub granularity: Granularity,
    /// Whether the chart shows the selected package instead of the whole cache.
    pub follow: bool,
    /// Indices into the report's packages, sorted and filtered.
    order: Vec<u32>,
    order_key: Option<OrderKey>,
}

impl Default for SpaceView {
    /// Biggest stored bytes first, no filter, per day, the chart over the whole cache.
    fn default() -> SpaceView {
        SpaceView {
            section: Section::Packages,
            packages: Scroll::new(10),
            closures: Scroll::new(5),
            sort: SortCol::Stored,
            desc: true,
            filter: String::new(),
            typing: None,
            granularity: Granularity::Day,
            follow: false,
            order: Vec::new(),
            order_key: None,
        }
    }
}

/// Whether `name` passes the filter `f` (substring; case-insensitive unless `f` has an
/// uppercase letter).
fn passes(name: &str, f: &str) -> bool {
    if f.is_empty() {
        true
    } else if f.chars().any(char::is_uppercase) {
        name.contains(f)
    } else {
        name.to_lowercase().contains(f)
    }
}

impl SpaceView {
    /// The packages shown, as indices into the report's, in order (see [`SpaceView::refresh`]).
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// Sort and filter the packages of `r` again if the report, the sort or the filter
    /// changed since the last time; keeps the cursors within the rows.
    pub fn refresh(&mut self, r: &Report) {
        let key = OrderKey {
            generation: r.generation,
            packages: r.packages.len(),
            sort: self.sort,
            desc: self.desc,
            filter: self.filter.clone(),
        };
        if self.order_key.as_ref() != Some(&key) {
            let mut order: Vec<u32> = (0..r.packages.len() as u32)
                .filter(|&i| passes(&r.packages[i as usize].name, &self.filter))
                .collect();
            let (sort, desc) = (self.sort, self.desc);
            order.sort_by(|&a, &b| {
                let (pa, pb) = (&r.packages[a as usize], &r.packages[b as usize]);
                let o = sort.cmp(pa, pb);
                let o = if desc { o.reverse() } else { o };
                o.then_with(|| pa.name.cmp(&pb.name))
            });
            self.order = order;
            self.order_key = Some(key);
        }
        let n = self.order.len();
        self.packages.cursor = self.packages.cursor.min(n.saturating_sub(1));
        self.packages.keep_cursor_visible(n);
        let m = r.closures.len();
        self.closures.cursor = self.closures.cursor.min(m.saturating_sub(1));
        self.closures.keep_cursor_visible(m);
    }

    /// The package under the cursor.
    pub fn selected<'r>(&self, r: &'r Report) -> Option<(usize, &'r Package)> {
        let i = *self.order.get(self.packages.cursor)? as usize;
        r.packages.get(i).map(|p| (i, p))
    }

    /// The package the chart shows: the selected one when it follows the selection.
    pub fn chart_package<'r>(&self, r: &'r Report) -> Option<(usize, &'r Package)> {
        if self.follow { self.selected(r) } else { None }
    }

    /// A key while the filter is typed: it edits the filter, live.
    pub fn type_key(&mut self, r: Option<&Report>, k: &KeyEvent) {
        let Some(mut input) = self.typing.take() else {
            return;
        };
        match input.key(k) {
            Edit::Submit => {}
            Edit::Cancel => self.filter.clear(),
            Edit::Changed => {
                self.filter = input.text.clone();
                self.packages.cursor = 0;
                self.typing = Some(input);
            }
            Edit::Unchanged => self.typing = Some(input),
        }
        if let Some(r) = r {
            self.refresh(r);
        }
    }

    /// A key (its action in the space mode) over report `r` (`None` while the first report
    /// is being built).
    pub fn key(&mut self, r: Option<&Report>, action: Option<Action>) -> SpaceOutcome {
        let Some(action) = action else {
            return SpaceOutcome::Open;
        };
        let rows = match self.section {
            Section::Packages => self.order.len(),
            Section::Closures => r.map_or(0, |r| r.closures.len()),
            Section::Timeline => 0,
        };
        let scroll = match self.section {
            Section::Closures => &mut self.closures,
            _ => &mut self.packages,
        };
        let last = rows.saturating_sub(1);
        let page = scroll.page();
        let moves = self.section != Section::Timeline;
        match action {
            Action::Close => return SpaceOutcome::Close,
            Action::NextSection => self.section = self.section.step(1),
            Action::PrevSection => self.section = self.section.step(Section::CYCLE.len() - 1),
            Action::TogglePeriod => {
                self.granularity = match self.granularity {
                    Granularity::Day => Granularity::Week,
                    Granularity::Week => Granularity::Day,
                }
            }
            Action::ChartFollow => self.follow = !self.follow,
            Action::Filter => {
                self.section = Section::Packages;
                self.typing = Some(LineInput::with(&self.filter));
            }
            Action::SortNext => {
                self.sort = self.sort.next();
                self.desc = self.sort.default_desc();
                self.packages.cursor = 0;
            }
            Action::SortReverse => {
                self.desc = !self.desc;
                self.packages.cursor = 0;
            }
            Action::Down if moves => scroll.cursor = (scroll.cursor + 1).min(last),
            Action::Up if moves => scroll.cursor = scroll.cursor.saturating_sub(1),
            Action::PageDown if moves => scroll.cursor = (scroll.cursor + page).min(last),
            Action::PageUp if moves => scroll.cursor = scroll.cursor.saturating_sub(page),
            Action::Top if moves => scroll.cursor = 0,
            Action::Bottom if moves => scroll.cursor = last,
            Action::Follow => match (self.section, r) {
                (Section::Packages, Some(r)) => {
                    if let Some((_, p)) = self.selected(r) {
                        return SpaceOutcome::OpenGroup(p.name.clone());
                    }
                }
                (Section::Closures, Some(r)) => {
                    if let Some(c) = r.closures.get(self.closures.cursor) {
                        return SpaceOutcome::FollowRoot(c.root);
                    }
                }
                _ => {}
            },
            _ => {}
        }
        if let Some(r) = r {
            self.refresh(r);
        }
        SpaceOutcome::Open
    }
}

/// What each action does in the space view (the help overlay lists them).
pub fn describe(a: Action) -> &'static str {
    match a {
        Action::Close => "close the space view",
        Action::Down => "move down (packages, closures)",
        Action::Up => "move up",
        Action::PageDown => "page down",
        Action::PageUp => "page up",
        Action::Top => "go to the first row",
        Action::Bottom => "go to the last row",
        Action::SortNext => {
            "sort packages by the next column (name, versions, NAR, stored, newest, oldest, share)"
        }
        Action::SortReverse => "reverse the sort order",
        Action::Filter => "filter packages by name (live; esc clears)",
        Action::Follow => "packages: list the package's paths; closures: select the root",
        Action::NextSection => "the next section (packages, over time, closures)",
        Action::PrevSection => "the previous section",
        Action::TogglePeriod => "bars per day / per week",
        Action::ChartFollow => "chart: the whole cache / the selected package",
        other => other.description(),
    }
}

/// `t` regrouped into periods of `g`: day buckets add up into weeks (stored bytes added
/// stay right: a NAR counts in the day, hence the week, it first appeared). A timeline
/// already in `g`, or one that cannot be split finer, comes back as it is.
pub fn regroup(t: &Timeline, g: Granularity) -> Timeline {
    if t.granularity == g || g == Granularity::Day {
        return t.clone();
    }
    let mut out = Timeline {
        granularity: g,
        buckets: Vec::new(),
        undated: t.undated,
    };
    for b in &t.buckets {
        let start = g.start(b.start);
        if out.buckets.last().is_none_or(|x| x.start != start) {
            out.buckets.push(Bucket {
                start,
                ..Bucket::default()
            });
        }
        let x = out.buckets.last_mut().expect("pushed above");
        x.paths += b.paths;
        x.nar_bytes += b.nar_bytes;
        x.stored_bytes += b.stored_bytes;
        x.cumulative = b.cumulative;
    }
    out
}

/// A Unix time as a UTC date, `2024-03-01`.
pub fn date(t: i64) -> String {
    let (y, m, d, _) = crate::units::civil(t);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_709_251_200), "2024-03-01");
        assert_eq!(date(1_709_251_199), "2024-02-29");
        assert_eq!(date(-1), "1969-12-31");
    }

    #[test]
    fn days_add_up_into_weeks() {
        let day = |start, stored, cumulative| Bucket {
            start,
            paths: 1,
            nar_bytes: 2 * stored,
            stored_bytes: stored,
            cumulative,
        };
        // Sunday 2024-03-03, Monday 2024-03-04, Tuesday 2024-03-05.
        let t = Timeline {
            granularity: Granularity::Day,
            buckets: vec![
                day(1_709_424_000, 10, 10),
                day(1_709_510_400, 5, 15),
                day(1_709_596_800, 7, 22),
            ],
            undated: 3,
        };
        let w = regroup(&t, Granularity::Week);
        assert_eq!(w.granularity, Granularity::Week);
        assert_eq!(w.undated, 3);
        assert_eq!(w.buckets.len(), 2);
        assert_eq!(date(w.buckets[0].start), "2024-02-26");
        assert_eq!(date(w.buckets[1].start), "2024-03-04");
        assert_eq!(
            (
                w.buckets[1].paths,
                w.buckets[1].stored_bytes,
                w.buckets[1].cumulative
            ),
            (2, 12, 22)
        );
        assert_eq!(w.buckets[1].nar_bytes, 24);
        assert_eq!(regroup(&w, Granularity::Day), w, "weeks do not split");
    }
}
