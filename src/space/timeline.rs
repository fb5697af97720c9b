//! Bytes and paths added per day or week, from the narinfos' LastModified.

use crate::index::{Index, RowId};

/// How long one bucket of the timeline is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Granularity {
    /// Calendar days (UTC).
    #[default]
    Day,
    /// Weeks starting on Monday (UTC).
    Week,
}

impl Granularity {
    /// Seconds in one bucket.
    pub fn secs(self) -> i64 {
        match self {
            Granularity::Day => 86_400,
            Granularity::Week => 7 * 86_400,
        }
    }

    /// The start of the bucket `t` falls in (Unix seconds).
    pub fn start(self, t: i64) -> i64 {
        // 1970-01-01 was a Thursday: weeks start 3 days later (Monday 1970-01-05).
        let shift = match self {
            Granularity::Day => 0,
            Granularity::Week => 4 * 86_400,
        };
        (t - shift).div_euclid(self.secs()) * self.secs() + shift
    }
}

/// One period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Start of the period (Unix seconds, UTC).
    pub start: i64,
    /// Paths added in it.
    pub paths: u64,
    /// NAR bytes added.
    pub nar_bytes: u64,
    /// Stored bytes added (a NAR shared with an earlier path is not added again).
    pub stored_bytes: u64,
    /// Stored bytes of everything up to the end of the period.
    pub cumulative: u64,
}

/// Buckets in time order, without gaps (empty periods between two non-empty ones are there,
/// with zeros); paths of unknown age are counted apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Bucket length.
    pub granularity: Granularity,
    /// The periods, oldest first.
    pub buckets: Vec<Bucket>,
    /// Paths without a LastModified.
    pub undated: u64,
}

/// The timeline of `rows` (live rows of `idx`).
pub fn build(idx: &Index, rows: &[RowId], granularity: Granularity) -> Timeline {
    build_sized(idx, &super::Sizes::of(idx), rows, granularity)
}

/// [`build`] with the NAR sizes already known.
pub fn build_sized(
    idx: &Index,
    sizes: &super::Sizes,
    rows: &[RowId],
    granularity: Granularity,
) -> Timeline {
    let mut marks = sizes.marks();
    marks.next_round();
    let mut dated: Vec<RowId> = rows
        .iter()
        .copied()
        .filter(|&r| idx.row(r).mtime != i64::MIN)
        .collect();
    dated.sort_by_key(|&r| idx.row(r).mtime);
    let mut t = Timeline {
        granularity,
        buckets: Vec::new(),
        undated: (rows.len() - dated.len()) as u64,
    };
    let mut total = 0u64;
    for r in dated {
        let row = idx.row(r);
        let start = granularity.start(row.mtime);
        while t.buckets.last().is_none_or(|b| b.start < start) {
            let next = match t.buckets.last() {
                Some(b) => b.start + granularity.secs(),
                None => start,
            };
            t.buckets.push(Bucket {
                start: next,
                cumulative: total,
                ..Bucket::default()
            });
        }
        let b = t.buckets.last_mut().expect("pushed above");
        b.paths += 1;
        b.nar_bytes += row.nar_size;
        let s = match sizes.slot(r) {
            Some(s) if marks.first(s) => sizes.slot_size(s),
            Some(_) => 0,
            None => super::stored_size(idx, r),
        };
        b.stored_bytes += s;
        total += s;
        b.cumulative = total;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testdata::info;
    use crate::nix::TrustedKeys;

    const DAY: i64 = 86_400;
    /// Monday 2024-01-01 00:00 UTC.
    const MONDAY: i64 = 1_704_067_200;

    #[test]
    fn weeks_start_on_monday_and_days_at_midnight_utc() {
        assert_eq!(Granularity::Week.start(MONDAY + 6 * DAY + 5), MONDAY);
        assert_eq!(Granularity::Week.start(MONDAY - 1), MONDAY - 7 * DAY);
        assert_eq!(Granularity::Day.start(MONDAY + DAY + 3600), MONDAY + DAY);
    }

    #[test]
    fn buckets_are_gapless_cumulative_and_count_a_shared_nar_once() {
        let a = info("a", "a-1", &[]);
        let b = info("b", "b-1", &[]);
        let mut twin = info("twin", "twin-1", &[]);
        twin.url = a.url.clone();
        let c = info("c", "c-1", &[]);
        let undated = info("u", "u-1", &[]);
        let mut idx = Index::from_narinfos(
            "file:///c",
            &TrustedKeys::new(),
            [a, b, twin, c, undated].iter(),
        );
        let times = [
            MONDAY,
            MONDAY + 3600,
            MONDAY + 2 * DAY,
            MONDAY + 3 * DAY,
            i64::MIN,
        ];
        for (r, t) in idx.rows_mut().iter_mut().zip(times) {
            r.mtime = t;
        }
        let rows: Vec<RowId> = idx.live().collect();
        let t = build(&idx, &rows, Granularity::Day);
        let got: Vec<(i64, u64, u64, u64)> = t
            .buckets
            .iter()
            .map(|b| (b.start - MONDAY, b.paths, b.stored_bytes, b.cumulative))
            .collect();
        // FileSize is 400 each; twin's NAR is a's: no bytes added on day 2.
        assert_eq!(
            got,
            [
                (0, 2, 800, 800),
                (DAY, 0, 0, 800),
                (2 * DAY, 1, 0, 800),
                (3 * DAY, 1, 400, 1200),
            ]
        );
        assert_eq!(t.undated, 1);
        let w = build(&idx, &rows, Granularity::Week);
        assert_eq!(w.buckets.len(), 1);
        assert_eq!((w.buckets[0].paths, w.buckets[0].cumulative), (4, 1200));
    }
}
