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
    let mut seen = std::collections::HashSet::new();
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
        let id = super::nar_identity(idx, r);
        if id.is_empty() || seen.insert(id) {
            let s = super::stored_size(idx, r);
            b.stored_bytes += s;
            total += s;
        }
        b.cumulative = total;
    }
    t
}
