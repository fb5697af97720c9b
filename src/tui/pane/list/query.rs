//! The list's view of the index: sort order and filters, as vectors of row ids.
//!
//! Sorting builds an id vector (never moves rows), with a 16-byte prefix key so most
//! comparisons are one integer compare; filtering walks that order in parallel. A filter that
//! only grows (the user typing on) narrows the previous result instead of starting over.

use rayon::prelude::*;

use crate::index::{Index, Row, RowId, RowStatus, flags};
use crate::nix::nix32;

/// The columns the list can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Store path name, then hash.
    Name,
    /// NarSize (the unpacked size).
    NarSize,
    /// FileSize (stored size).
    FileSize,
    /// Narinfo age (newest first when descending).
    Age,
    /// Verdict, worst first.
    Verdict,
}

impl SortKey {
    /// The cycle `s` walks.
    pub const ALL: [SortKey; 5] = [
        SortKey::Name,
        SortKey::NarSize,
        SortKey::FileSize,
        SortKey::Age,
        SortKey::Verdict,
    ];

    /// The name shown and used by `:sort`.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::NarSize => "size",
            SortKey::FileSize => "stored",
            SortKey::Age => "age",
            SortKey::Verdict => "verdict",
        }
    }

    /// Read a sort key as [`SortKey::as_str`] writes it; `None` for anything else.
    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The next key in the cycle.
    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

/// Which verdicts are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// Every row, whatever its verdict.
    All,
    /// Only rows with this verdict.
    Only(RowStatus),
    /// Anything not trusted, or broken (NAR missing, StorePath not matching its key).
    Problems,
}

impl StatusFilter {
    /// The cycle `v` walks.
    pub const CYCLE: [StatusFilter; 9] = [
        StatusFilter::All,
        StatusFilter::Problems,
        StatusFilter::Only(RowStatus::Unsigned),
        StatusFilter::Only(RowStatus::Untrusted),
        StatusFilter::Only(RowStatus::Invalid),
        StatusFilter::Only(RowStatus::Corrupt),
        StatusFilter::Only(RowStatus::Error),
        StatusFilter::Only(RowStatus::ContentAddressed),
        StatusFilter::Only(RowStatus::Trusted),
    ];

    /// The name shown and used by `:only`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::All => "all",
            StatusFilter::Problems => "problems",
            StatusFilter::Only(s) => s.as_str(),
        }
    }

    /// Read a filter as [`StatusFilter::as_str`] writes it; `None` for anything else.
    pub fn parse(s: &str) -> Option<StatusFilter> {
        match s {
            "all" => Some(StatusFilter::All),
            "problems" => Some(StatusFilter::Problems),
            other => RowStatus::parse(other).map(StatusFilter::Only),
        }
    }

    /// The next filter in the cycle.
    pub fn next(self) -> StatusFilter {
        let i = StatusFilter::CYCLE
            .iter()
            .position(|k| *k == self)
            .unwrap_or(0);
        StatusFilter::CYCLE[(i + 1) % StatusFilter::CYCLE.len()]
    }
}

/// The filter term that keeps the rows an upstream serves (`upstream:yes`) or does not
/// (`upstream:no`).
pub const UPSTREAM_TERM: &str = "upstream:";

/// Which rows the cache's upstreams serve with a trusted signature (see [`crate::upstream`]),
/// as the dashboard's background check finds them.
#[derive(Clone, Debug, Default)]
pub struct UpstreamMarks {
    /// The upstreams' locations, in the order they are asked; empty: none configured.
    pub names: Vec<String>,
    /// By row id: 0 not answered yet, 1 served, 2 not served (or the upstream failed).
    by_row: Vec<u8>,
    /// Rows answered.
    pub checked: u64,
    /// Rows served.
    pub served: u64,
    /// Whether a check runs.
    pub running: bool,
    /// Bumped on every change (views filtered on it rebuild).
    generation: u64,
}

impl UpstreamMarks {
    /// Marks for these upstreams, nothing answered yet.
    pub fn new(names: Vec<String>) -> UpstreamMarks {
        UpstreamMarks {
            names,
            ..UpstreamMarks::default()
        }
    }

    /// Whether the cache has upstreams.
    pub fn configured(&self) -> bool {
        !self.names.is_empty()
    }

    /// Whether an upstream serves row `id` (`None`: not answered yet).
    pub fn get(&self, id: RowId) -> Option<bool> {
        match self.by_row.get(id as usize) {
            Some(1) => Some(true),
            Some(2) => Some(false),
            _ => None,
        }
    }

    /// Records the answer for row `id`.
    pub fn set(&mut self, id: RowId, served: bool) {
        let i = id as usize;
        if self.by_row.len() <= i {
            self.by_row.resize(i + 1, 0);
        }
        match self.by_row[i] {
            0 => self.checked += 1,
            1 => self.served -= 1,
            _ => {}
        }
        self.by_row[i] = if served { 1 } else { 2 };
        self.served += u64::from(served);
        self.generation += 1;
    }

    /// The header badge: "upstream: N of M served" (M: the paths in the cache), and
    /// "checking" while the check runs; `None` without upstreams.
    pub fn badge(&self, paths: u64) -> Option<String> {
        self.configured().then(|| {
            format!(
                "upstream: {} of {} served{}",
                crate::units::thousands(self.served),
                crate::units::thousands(paths),
                if self.running { ", checking…" } else { "" }
            )
        })
    }
}

/// The query without its `upstream:yes` / `upstream:no` terms, and what they ask for (the
/// last one wins); the query itself when it has none.
pub fn upstream_term(query: &str) -> (String, Option<bool>) {
    if !query.contains(UPSTREAM_TERM) {
        return (query.to_string(), None);
    }
    let mut want = None;
    let mut rest = Vec::new();
    for word in query.split_whitespace() {
        match word.strip_prefix(UPSTREAM_TERM) {
            Some("yes") => want = Some(true),
            Some("no") => want = Some(false),
            _ => rest.push(word),
        }
    }
    (rest.join(" "), want)
}

/// The filter term that keeps exactly the paths of one package, as the space view groups
/// them (`pkg:openssl`, `pkg:openssl-dev`; see [`crate::space::name`]).
pub const PKG_TERM: &str = "pkg:";

/// The query without its `pkg:NAME` terms, and the package they ask for (the last one
/// wins); the query itself when it has none.
pub fn pkg_term(query: &str) -> (String, Option<String>) {
    if !query.contains(PKG_TERM) {
        return (query.to_string(), None);
    }
    let mut want = None;
    let mut rest = Vec::new();
    for word in query.split_whitespace() {
        match word.strip_prefix(PKG_TERM) {
            Some(name) if !name.is_empty() => want = Some(name.to_string()),
            _ => rest.push(word),
        }
    }
    (rest.join(" "), want)
}

/// Whether the store path name `name` belongs to package `group` (what
/// `space::name::split(name).group() == group` says, without allocating).
pub fn in_package(name: &str, group: &str) -> bool {
    let s = crate::space::name::split(name);
    match s.output {
        None => s.name == group,
        Some("drv") => group.strip_suffix(".drv") == Some(s.name),
        Some(o) => group
            .strip_suffix(o)
            .and_then(|g| g.strip_suffix('-'))
            .is_some_and(|g| g == s.name),
    }
}

/// The parameters a view was built with.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Built {
    generation: u64,
    /// The upstream marks' generation, when the query filters on them (0 otherwise).
    upstream: u64,
    sort: SortKey,
    desc: bool,
    query: String,
    fuzzy: bool,
    status: StatusFilter,
}

/// Sorted, filtered row ids.
#[derive(Clone, Debug)]
pub struct View {
    /// The column sorted by.
    pub sort: SortKey,
    /// Whether the order is descending.
    pub desc: bool,
    /// The text filter (name or hash; empty shows all).
    pub query: String,
    /// Fuzzy instead of substring matching.
    pub fuzzy: bool,
    /// Which verdicts are shown.
    pub status: StatusFilter,
    /// What the upstreams serve (the `upstream:` filter term and the list's badge).
    pub upstream: UpstreamMarks,
    order: Vec<RowId>,
    rows: Vec<RowId>,
    built: Option<Built>,
    lower: Lower,
}

/// Every row's name in ASCII lowercase, by row id, in one arena. Full filters walk it (and
/// the rows) in id order, front to back, and then keep the sort order's ids that matched.
#[derive(Clone, Debug, Default)]
struct Lower {
    generation: u64,
    bytes: Vec<u8>,
    /// (offset, length) of each row's name.
    spans: Vec<(u32, u32)>,
}

impl Lower {
    fn build(idx: &Index) -> Lower {
        // In parallel chunks of ids, then joined with their offsets moved.
        let chunks: Vec<Lower> = (0..idx.len() as RowId)
            .into_par_iter()
            .chunks(1 << 16)
            .map(|ids| {
                let mut bytes = Vec::with_capacity(ids.len() * 24);
                let mut spans = Vec::with_capacity(ids.len());
                for id in ids {
                    let n = idx.name(id).as_bytes();
                    let off = bytes.len();
                    bytes.extend_from_slice(n);
                    bytes[off..].make_ascii_lowercase();
                    spans.push((off as u32, n.len() as u32));
                }
                Lower {
                    generation: 0,
                    bytes,
                    spans,
                }
            })
            .collect();
        let total: usize = chunks.iter().map(|c| c.bytes.len()).sum();
        let mut bytes = Vec::with_capacity(total);
        let mut spans = Vec::with_capacity(idx.len());
        for c in chunks {
            let base = bytes.len() as u32;
            bytes.extend_from_slice(&c.bytes);
            spans.extend(c.spans.into_iter().map(|(o, l)| (o + base, l)));
        }
        Lower {
            generation: idx.generation,
            bytes,
            spans,
        }
    }

    fn name(&self, id: RowId) -> &[u8] {
        let (o, l) = self.spans.get(id as usize).copied().unwrap_or((0, 0));
        self.bytes
            .get(o as usize..(o + l) as usize)
            .unwrap_or_default()
    }
}

impl Default for View {
    fn default() -> Self {
        View {
            sort: SortKey::Name,
            desc: false,
            query: String::new(),
            fuzzy: false,
            status: StatusFilter::All,
            upstream: UpstreamMarks::default(),
            order: Vec::new(),
            rows: Vec::new(),
            built: None,
            lower: Lower::default(),
        }
    }
}

fn prefix_key(s: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = s.len().min(16);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

fn verdict_rank(s: RowStatus) -> u8 {
    match s {
        RowStatus::Corrupt => 0,
        RowStatus::Invalid => 1,
        RowStatus::Error => 2,
        RowStatus::Unsigned => 3,
        RowStatus::Untrusted => 4,
        RowStatus::Pending => 5,
        RowStatus::ContentAddressed => 6,
        RowStatus::Trusted => 7,
    }
}

/// A text matcher: smart-case substring on the name (and on the hash part for hash-like
/// queries), or fuzzy on the name.
struct Matcher<'a> {
    query: String,
    finder: memchr::memmem::Finder<'a>,
    /// The query has no uppercase: match the lowercase names.
    lower: bool,
    hashlike: bool,
    /// Fuzzy by a plain subsequence test: an ASCII query without nucleo's pattern syntax.
    subsequence: Option<Vec<u8>>,
    fuzzy: Option<nucleo_matcher::pattern::Pattern>,
}

impl<'a> Matcher<'a> {
    fn new(query: &'a str, fuzzy: bool) -> Matcher<'a> {
        use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
        let lower = !query.chars().any(|c| c.is_uppercase());
        // One character: fuzzy and substring agree, and substring is faster.
        let fuzzy = fuzzy && query.chars().count() > 1;
        let plain = query.is_ascii()
            && lower
            && !query.contains(|c: char| c.is_whitespace() || "^$!'\\".contains(c));
        Matcher {
            query: query.to_string(),
            finder: memchr::memmem::Finder::new(query.as_bytes()),
            lower,
            hashlike: hashlike(query),
            subsequence: (fuzzy && plain).then(|| query.as_bytes().to_vec()),
            fuzzy: (fuzzy && !plain)
                .then(|| Pattern::parse(query, CaseMatching::Smart, Normalization::Smart)),
        }
    }

    /// Whether row `id` matches.
    fn matches(
        &self,
        idx: &Index,
        lower: &Lower,
        id: RowId,
        m: &mut nucleo_matcher::Matcher,
        buf: &mut Vec<char>,
    ) -> bool {
        if self.query.is_empty() {
            return true;
        }
        if let Some(q) = &self.subsequence {
            let mut it = lower.name(id).iter();
            return q.iter().all(|c| it.any(|b| b == c));
        }
        if let Some(p) = &self.fuzzy {
            let hay = nucleo_matcher::Utf32Str::new(idx.name(id), buf);
            return p.score(hay, m).is_some();
        }
        let hit = if self.lower {
            self.finder.find(lower.name(id)).is_some()
        } else {
            self.finder.find(idx.name(id).as_bytes()).is_some()
        };
        hit || (self.hashlike && idx.hash_part(id).contains(self.query.as_str()))
    }
}

impl View {
    /// The visible rows, in order.
    pub fn rows(&self) -> &[RowId] {
        &self.rows
    }

    /// Live rows before filtering.
    pub fn total(&self) -> usize {
        self.order.len()
    }

    /// Whether the view must be rebuilt for this index.
    pub fn is_stale(&self, idx: &Index) -> bool {
        self.built.as_ref() != Some(&self.wanted(idx))
    }

    fn wanted(&self, idx: &Index) -> Built {
        Built {
            generation: idx.generation,
            upstream: if self.query.contains(UPSTREAM_TERM) {
                self.upstream.generation
            } else {
                0
            },
            sort: self.sort,
            desc: self.desc,
            query: self.query.clone(),
            fuzzy: self.fuzzy,
            status: self.status,
        }
    }

    /// Bring the view up to date with `idx` and the current sort and filters.
    pub fn refresh(&mut self, idx: &Index) {
        let want = self.wanted(idx);
        let old = self.built.take();
        let order_ok = old.as_ref().is_some_and(|b| {
            b.generation == want.generation && b.sort == want.sort && b.desc == want.desc
        });
        if !order_ok {
            self.order = sorted(idx, self.sort, self.desc);
        }
        // Narrow the previous result when only the query grew.
        let narrowing = order_ok
            && old.as_ref().is_some_and(|b| {
                // A longer query matches a subset: substrings extend, and fuzzy matches are
                // subsequences.
                b.status == want.status
                    && b.fuzzy == want.fuzzy
                    && want.query.starts_with(&b.query)
                    && !b.query.is_empty()
                    && b.query.chars().any(|c| c.is_uppercase())
                        == want.query.chars().any(|c| c.is_uppercase())
                    // A query that starts matching hashes matches more, not less.
                    && (hashlike(&b.query) || !hashlike(&want.query))
                    // A term being typed ("upstream:y") is text until it is complete.
                    && !want.query.contains(UPSTREAM_TERM)
                    // A package is an exact name: a longer one is another package.
                    && !want.query.contains(PKG_TERM)
            });
        // Built with the order, so that no keystroke pays for it.
        if self.lower.generation != idx.generation || self.lower.spans.len() != idx.len() {
            self.lower = Lower::build(idx);
        }
        let (text, upstream) = upstream_term(&self.query);
        let (text, pkg) = pkg_term(&text);
        let m = Matcher::new(&text, self.fuzzy);
        let (lower, status, rows) = (&self.lower, self.status, idx.rows());
        let marks = &self.upstream;
        let keep = |nm: &mut nucleo_matcher::Matcher, buf: &mut Vec<char>, id: RowId| {
            accepts(status, &rows[id as usize])
                && upstream.is_none_or(|w| marks.get(id) == Some(w))
                && pkg.as_deref().is_none_or(|g| in_package(idx.name(id), g))
                && m.matches(idx, lower, id, nm, buf)
        };
        self.rows = if self.query.is_empty() && self.status == StatusFilter::All {
            self.order.clone()
        } else if narrowing {
            self.rows
                .par_iter()
                .copied()
                .with_min_len(4096)
                .map_init(matcher_state, |(nm, buf), id| {
                    keep(nm, buf, id).then_some(id)
                })
                .flatten_iter()
                .collect()
        } else {
            // Test every row in id order (sequential memory), then keep the order's hits.
            let hit: Vec<bool> = (0..rows.len() as RowId)
                .into_par_iter()
                .with_min_len(8192)
                .map_init(matcher_state, |(nm, buf), id| {
                    rows[id as usize].is_live() && keep(nm, buf, id)
                })
                .collect();
            self.order
                .iter()
                .copied()
                .filter(|&id| hit[id as usize])
                .collect()
        };
        self.built = Some(want);
    }

    /// Position of a row in the view.
    pub fn position(&self, id: RowId) -> Option<usize> {
        self.rows.par_iter().position_first(|&r| r == id)
    }
}

fn sorted(idx: &Index, sort: SortKey, desc: bool) -> Vec<RowId> {
    let rows = idx.rows();
    let mut ids: Vec<RowId> = (0..rows.len() as RowId)
        .into_par_iter()
        .filter(|&i| rows[i as usize].is_live())
        .collect();
    let by_name = |a: RowId, b: RowId| {
        let (na, nb) = (idx.name(a), idx.name(b));
        na.cmp(nb)
            .then_with(|| rows[a as usize].digest.cmp(&rows[b as usize].digest))
    };
    match sort {
        SortKey::Name => {
            let mut keyed: Vec<(u128, RowId)> = ids
                .par_iter()
                .map(|&i| (prefix_key(idx.name(i)), i))
                .collect();
            keyed.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| by_name(a.1, b.1)));
            ids = keyed.into_iter().map(|(_, i)| i).collect();
        }
        SortKey::NarSize => {
            ids.par_sort_unstable_by(|&a, &b| {
                rows[a as usize]
                    .nar_size
                    .cmp(&rows[b as usize].nar_size)
                    .then_with(|| by_name(a, b))
            });
        }
        SortKey::FileSize => {
            let fs = |i: RowId| rows[i as usize].file_size().unwrap_or(0);
            ids.par_sort_unstable_by(|&a, &b| fs(a).cmp(&fs(b)).then_with(|| by_name(a, b)));
        }
        SortKey::Age => {
            // Ascending age: newest first.
            ids.par_sort_unstable_by(|&a, &b| {
                rows[b as usize]
                    .mtime
                    .cmp(&rows[a as usize].mtime)
                    .then_with(|| by_name(a, b))
            });
        }
        SortKey::Verdict => {
            ids.par_sort_unstable_by(|&a, &b| {
                verdict_rank(rows[a as usize].status)
                    .cmp(&verdict_rank(rows[b as usize].status))
                    .then_with(|| by_name(a, b))
            });
        }
    }
    if desc {
        ids.reverse();
    }
    ids
}

fn matcher_state() -> (nucleo_matcher::Matcher, Vec<char>) {
    (
        nucleo_matcher::Matcher::new(nucleo_matcher::Config::DEFAULT),
        Vec::new(),
    )
}

fn accepts(f: StatusFilter, r: &Row) -> bool {
    match f {
        StatusFilter::All => true,
        StatusFilter::Only(s) => r.status == s,
        StatusFilter::Problems => {
            !r.status.is_good() || r.flags & (flags::NAR_MISSING | flags::KEY_MISMATCH) != 0
        }
    }
}

/// Whether a query is also matched against hashes (three or more nix32 characters).
fn hashlike(query: &str) -> bool {
    query.len() >= 3 && nix32::is_nix32(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testdata::info;
    use crate::nix::{NarInfo, SecretKey, TrustedKeys};

    fn sample() -> (Index, Vec<NarInfo>) {
        let key = SecretKey::from_seed("k-1", &[3; 32]).unwrap();
        let mut keys = TrustedKeys::new();
        keys.add(key.public_key());
        let mut infos = vec![
            info("1", "zlib-1.3", &[]),
            info("22", "hello-2.12", &[]),
            info("333", "Glibc-2.40", &[]),
            info("4444", "bash-5.2", &[]),
        ];
        infos[0].sign(&key);
        infos[3].sign(&key);
        let idx = Index::from_narinfos("file:///s", &keys, infos.iter());
        (idx, infos)
    }

    fn names(idx: &Index, v: &View) -> Vec<String> {
        v.rows().iter().map(|&i| idx.name(i).to_string()).collect()
    }

    #[test]
    fn sorts_and_filters() {
        let (idx, infos) = sample();
        let mut v = View::default();
        v.refresh(&idx);
        assert_eq!(
            names(&idx, &v),
            ["Glibc-2.40", "bash-5.2", "hello-2.12", "zlib-1.3"]
        );
        v.sort = SortKey::NarSize;
        v.desc = true;
        v.refresh(&idx);
        assert_eq!(names(&idx, &v)[0], "bash-5.2", "largest NAR first");
        v.sort = SortKey::Verdict;
        v.desc = false;
        v.refresh(&idx);
        assert_eq!(idx.row(v.rows()[0]).status, RowStatus::Unsigned);

        v.sort = SortKey::Name;
        v.query = "l".into();
        v.refresh(&idx);
        assert_eq!(names(&idx, &v), ["Glibc-2.40", "hello-2.12", "zlib-1.3"]);
        v.query = "li".into();
        assert!(v.is_stale(&idx));
        v.refresh(&idx);
        assert_eq!(
            names(&idx, &v),
            ["Glibc-2.40", "zlib-1.3"],
            "smart case: lower matches upper"
        );
        v.query = "Gl".into();
        v.refresh(&idx);
        assert_eq!(names(&idx, &v), ["Glibc-2.40"]);
        v.query = "gl".into();
        v.refresh(&idx);
        assert_eq!(names(&idx, &v), ["Glibc-2.40"]);
        // Fuzzy: letters in order, not adjacent.
        v.query = "hlo".into();
        v.refresh(&idx);
        assert!(v.rows().is_empty());
        v.fuzzy = true;
        v.refresh(&idx);
        assert_eq!(names(&idx, &v), ["hello-2.12"]);
        // A hash prefix finds its path, also when typed one character at a time.
        v.fuzzy = false;
        let h = infos[1].store_path.hash_part()[..6].to_string();
        v.query.clear();
        for c in h.chars() {
            v.query.push(c);
            v.refresh(&idx);
        }
        assert!(v.rows().iter().any(|&i| idx.name(i) == "hello-2.12"));

        v.query.clear();
        v.status = StatusFilter::Only(RowStatus::Trusted);
        v.refresh(&idx);
        assert_eq!(names(&idx, &v), ["bash-5.2", "zlib-1.3"]);
        v.status = StatusFilter::Problems;
        v.refresh(&idx);
        assert_eq!(names(&idx, &v), ["Glibc-2.40", "hello-2.12"]);
        let id = v.rows()[1];
        assert_eq!(v.position(id), Some(1));
    }

    #[test]
    fn the_pkg_term_keeps_exactly_one_package() {
        let keys = TrustedKeys::new();
        let infos = [
            info("1", "hello-2.12.1", &[]),
            info("22", "hello-2.10", &[]),
            info("333", "hello-2.12.1-dev", &[]),
            info("4444", "hello-world", &[]),
            info("55555", "hello-2.12.1.drv", &[]),
            info("666666", "openssl-3.0.13-dev", &[]),
            info("7777777", "hellox-1.0", &[]),
        ];
        let idx = Index::from_narinfos("file:///s", &keys, infos.iter());
        let mut v = View::default();
        for (q, want) in [
            ("pkg:hello", &["hello-2.10", "hello-2.12.1"][..]),
            ("pkg:hello-dev", &["hello-2.12.1-dev"]),
            ("pkg:hello.drv", &["hello-2.12.1.drv"]),
            ("pkg:hello-world", &["hello-world"]),
            ("pkg:openssl-dev", &["openssl-3.0.13-dev"]),
            ("pkg:hell", &[]),
            ("pkg:hello 2.10", &["hello-2.10"]),
            ("2.12 pkg:hello", &["hello-2.12.1"]),
        ] {
            v.query = q.into();
            v.refresh(&idx);
            assert_eq!(names(&idx, &v), want, "{q}");
        }
        // Typed one character at a time: a longer name is another package, not a subset.
        v.query.clear();
        for c in "pkg:hellox".chars() {
            v.query.push(c);
            v.refresh(&idx);
        }
        assert_eq!(names(&idx, &v), ["hellox-1.0"]);
        // Every package of the space report, exactly.
        for p in crate::space::group::by_package(&idx) {
            v.query = format!("{PKG_TERM}{}", p.name);
            v.refresh(&idx);
            let mut got = v.rows().to_vec();
            let mut want = p.rows.clone();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{}", p.name);
        }
        assert_eq!(pkg_term("a pkg:x b"), ("a b".to_string(), Some("x".into())));
        assert_eq!(pkg_term("pkg:"), ("pkg:".to_string(), None));
    }

    #[test]
    fn cycles_wrap() {
        assert_eq!(SortKey::Verdict.next(), SortKey::Name);
        assert_eq!(StatusFilter::All.next(), StatusFilter::Problems);
        assert_eq!(
            StatusFilter::Only(RowStatus::Trusted).next(),
            StatusFilter::All
        );
        assert_eq!(
            StatusFilter::parse("unsigned"),
            Some(StatusFilter::Only(RowStatus::Unsigned))
        );
        assert_eq!(SortKey::parse("age"), Some(SortKey::Age));
    }
}
