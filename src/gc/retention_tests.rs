//! Unit tests of the retention policies (`--keep-versions`, `--max-size`) on hand-made
//! indexes, and a randomised property test against a straightforward oracle.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::*;
use crate::index::testdata::info;
use crate::index::{Index, NarObject, RowId};
use crate::nix::{NarInfo, TrustedKeys};

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn opts(retention: Retention) -> GcOptions {
    GcOptions {
        grace: DEFAULT_GRACE,
        keep_younger: None,
        now: std::time::UNIX_EPOCH + Duration::from_secs(NOW as u64),
        upstream: Default::default(),
        retention,
    }
}

fn versions(n: u32) -> Retention {
    Retention {
        keep_versions: Some(n),
        max_size: None,
    }
}

fn budget(b: u64) -> Retention {
    Retention {
        keep_versions: None,
        max_size: Some(b),
    }
}

/// One path of a test cache.
#[derive(Clone)]
struct P {
    name: String,
    /// Indexes of earlier paths it references (itself allowed).
    refs: Vec<usize>,
    /// LastModified, Unix seconds (`i64::MIN`: unknown).
    mtime: i64,
    /// Stored bytes of its NAR.
    size: u64,
    /// Shares the NAR of this earlier path.
    share: Option<usize>,
}

fn p(name: &str, refs: &[usize], age_days: i64, size: u64) -> P {
    P {
        name: name.into(),
        refs: refs.to_vec(),
        mtime: NOW - age_days * DAY,
        size,
        share: None,
    }
}

/// A cache of `ps` (NARs listed), its narinfos and the row of each path.
struct Cache {
    idx: Index,
    infos: Vec<NarInfo>,
    rows: Vec<RowId>,
}

impl Cache {
    fn new(ps: &[P]) -> Cache {
        let mut infos: Vec<NarInfo> = Vec::new();
        for (i, x) in ps.iter().enumerate() {
            let refs: Vec<&NarInfo> = x
                .refs
                .iter()
                .filter(|&&r| r < i)
                .map(|&r| &infos[r])
                .collect();
            let mut ni = info(&format!("seed{i}"), &x.name, &refs);
            if x.refs.contains(&i) {
                ni.references.push(ni.store_path.clone());
            }
            if let Some(s) = x.share {
                ni.url = infos[s].url.clone();
            }
            infos.push(ni);
        }
        let mut idx = Index::from_narinfos("file:///c", &TrustedKeys::new(), infos.iter());
        let rows: Vec<RowId> = infos
            .iter()
            .map(|i| idx.find(i.store_path.hash_part()).unwrap())
            .collect();
        for (x, &r) in ps.iter().zip(&rows) {
            idx.rows_mut()[r as usize].mtime = x.mtime;
        }
        let mut nars: Vec<NarObject> = Vec::new();
        for (x, i) in ps.iter().zip(&infos) {
            if x.share.is_none() {
                nars.push(NarObject {
                    key: i.url.clone(),
                    size: x.size,
                    mtime: NOW - 400 * DAY,
                });
            }
        }
        idx.set_nars(nars);
        Cache { idx, infos, rows }
    }

    fn pin(&self, i: usize) -> (RootSource, String) {
        (
            RootSource::Pin("release".into()),
            self.infos[i].store_path.to_absolute(),
        )
    }

    fn plan(&self, roots: &[(RootSource, String)], o: &GcOptions) -> GcPlan {
        plan(&self.idx, roots, &Extras::default(), o)
    }

    /// The names of the paths the plan keeps, sorted.
    fn kept(&self, p: &GcPlan) -> Vec<String> {
        let garbage: HashSet<RowId> = p.garbage.iter().copied().collect();
        let mut v: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !garbage.contains(r))
            .map(|&r| self.idx.name(r).to_string())
            .collect();
        v.sort();
        v
    }

    fn why(&self, p: &GcPlan, i: usize) -> String {
        p.why(&self.idx, self.rows[i])
    }
}

/// Every kept path's references are kept, and every garbage path's referrers are garbage.
fn assert_closed(idx: &Index, p: &GcPlan) {
    let garbage: HashSet<RowId> = p.garbage.iter().copied().collect();
    for r in idx.live() {
        if garbage.contains(&r) {
            continue;
        }
        for &t in idx.refs(r) {
            assert!(
                !garbage.contains(&t),
                "{} is kept but its reference {} is garbage",
                idx.name(r),
                idx.name(t)
            );
        }
    }
    assert!(p.delete.is_safe());
}

#[test]
fn keep_versions_keeps_the_newest_n_of_each_group_outputs_apart() {
    let c = Cache::new(&[
        p("openssl-3.0.1", &[], 40, 10),     // 0
        p("openssl-3.0.2", &[], 30, 10),     // 1
        p("openssl-3.0.3", &[], 20, 10),     // 2
        p("openssl-3.0.4", &[], 10, 10),     // 3
        p("openssl-3.0.1-dev", &[], 5, 10),  // 4: -dev is its own group
        p("openssl-3.0.2-dev", &[], 50, 10), // 5
        p("openssl-3.0.3-dev", &[], 60, 10), // 6
        p("hello-2.12", &[], 90, 10),        // 7
        p("hello-2.13.drv", &[], 90, 10),    // 8
        p("hello-2.12.drv", &[], 95, 10),    // 9
        p("source", &[], 80, 10),            // 10: no version
    ]);
    let pl = c.plan(&[], &opts(versions(2)));
    assert_eq!(
        c.kept(&pl),
        [
            "hello-2.12",
            "hello-2.12.drv",
            "hello-2.13.drv",
            "openssl-3.0.1-dev",
            "openssl-3.0.2-dev",
            "openssl-3.0.3",
            "openssl-3.0.4",
            "source"
        ]
    );
    assert_eq!(pl.keep[c.rows[3] as usize], Keep::Version { rank: 1 });
    assert_eq!(pl.keep[c.rows[2] as usize], Keep::Version { rank: 2 });
    assert_eq!(pl.keep[c.rows[5] as usize], Keep::Version { rank: 2 });
    assert_eq!(pl.dropped_by_versions, 3);
    assert_eq!(pl.kept_by_policy, 8);
    assert_eq!(pl.budget, None);
    assert_eq!(
        c.why(&pl, 2),
        "kept: one of the 2 newest versions of openssl (2nd newest): openssl-3.0.3"
    );
    assert_eq!(
        c.why(&pl, 0),
        "garbage: older than the 2 newest version(s) of openssl, and no root, young path or \
         kept version reaches it"
    );
    assert!(
        c.why(&pl, 6).contains("of openssl-dev"),
        "{}",
        c.why(&pl, 6)
    );
    assert_closed(&c.idx, &pl);
    // N = 1 keeps one a group.
    let pl = c.plan(&[], &opts(versions(1)));
    assert_eq!(
        c.kept(&pl),
        [
            "hello-2.12",
            "hello-2.13.drv",
            "openssl-3.0.1-dev",
            "openssl-3.0.4",
            "source"
        ]
    );
    assert_eq!(
        c.why(&pl, 8),
        "kept: the newest version of hello.drv: hello-2.13.drv"
    );
}

#[test]
fn keep_versions_keeps_closures_and_older_versions_a_kept_path_references() {
    let c = Cache::new(&[
        p("lib-1", &[], 90, 10),    // 0: old lib, referenced by app-2
        p("lib-2", &[], 10, 10),    // 1: newest lib
        p("lib-0", &[], 100, 10),   // 2: older lib, referenced by old app only
        p("app-1", &[2], 80, 10),   // 3
        p("app-2", &[0, 4], 5, 10), // 4: newest app (refs itself)
        p("zlib-1", &[], 200, 10),  // 5: pinned (and old)
        p("zlib-2", &[], 20, 10),   // 6
        p("tool-1", &[5], 300, 10), // 7: old tool referencing the pinned zlib
    ]);
    let pins = [c.pin(5)];
    let pl = c.plan(&pins, &opts(versions(1)));
    assert_eq!(
        c.kept(&pl),
        ["app-2", "lib-1", "lib-2", "tool-1", "zlib-1", "zlib-2"]
    );
    // tool-1 is the newest (only) tool; lib-0 and app-1 go together.
    assert_eq!(
        c.why(&pl, 0),
        "kept: the newest version of app: app-2 → lib-1"
    );
    assert!(c.why(&pl, 5).starts_with("kept by pin 'release'"));
    assert_eq!(pl.dropped_by_versions, 2);
    // The pin is a hard root: its closure is not counted as the policy's.
    assert_eq!(pl.kept_by_policy, 5);
    assert_closed(&c.idx, &pl);
    // app-1 goes before lib-0 (referrers first).
    let level = |r: RowId| pl.delete.levels.iter().position(|l| l.contains(&r));
    assert!(level(c.rows[3]) < level(c.rows[2]));
}

#[test]
fn max_size_evicts_the_least_recently_pushed_tops_only() {
    let c = Cache::new(&[
        p("y-1", &[], 90, 100),  // 0: the oldest, but x references it
        p("x-1", &[0], 60, 100), // 1
        p("z-1", &[], 30, 100),  // 2
    ]);
    // 150: x goes first (y is not a top while x stays), then y; z fits.
    let pl = c.plan(&[], &opts(budget(150)));
    assert_eq!(c.kept(&pl), ["z-1"]);
    assert_eq!(pl.evicted.len(), 2);
    let b = pl.budget.unwrap();
    assert_eq!(
        b,
        BudgetReport {
            budget: 150,
            before: 300,
            after: 100,
            reached: true,
            held_by_roots: 0
        }
    );
    assert_closed(&c.idx, &pl);
    assert_eq!(
        c.why(&pl, 2),
        "kept: fits the --max-size budget of 150 B (least recently pushed are evicted first): z-1"
    );
    let date = super::retention::date(NOW - 60 * DAY);
    assert_eq!(
        c.why(&pl, 1),
        format!(
            "garbage: evicted by --max-size 150 B (pushed {date}, least recently pushed first)"
        )
    );
    // 250: evicting x alone fits; y, older, stays because nothing needed it gone.
    let pl = c.plan(&[], &opts(budget(250)));
    assert_eq!(c.kept(&pl), ["y-1", "z-1"]);
    assert_eq!(pl.budget.unwrap().after, 200);
    // A budget the cache fits: nothing goes, and nothing is refused for lack of roots.
    let pl = c.plan(&[], &opts(budget(300)));
    assert!(pl.garbage.is_empty() && pl.evicted.is_empty());
    assert!(pl.budget.unwrap().reached);
    assert_eq!(pl.kept_by_policy, 3);
}

#[test]
fn max_size_counts_shared_nars_once() {
    let mut ps = vec![
        p("p-1", &[], 90, 1000), // 0
        p("r-1", &[], 60, 500),  // 1
        p("q-1", &[], 30, 1000), // 2: the same NAR as p
    ];
    ps[2].share = Some(0);
    let c = Cache::new(&ps);
    let pl = c.plan(&[], &opts(budget(1200)));
    // p goes (the NAR stays: q uses it, nothing freed), then r: 1000 fits.
    assert_eq!(c.kept(&pl), ["q-1"]);
    let b = pl.budget.unwrap();
    assert_eq!((b.before, b.after, b.reached), (1500, 1000, true));
    assert!(
        !pl.delete.nar_keys.contains(&c.infos[0].url),
        "the shared NAR stays with q"
    );
    assert!(pl.delete.nar_keys.contains(&c.infos[1].url));
    // Exactly the shared NAR: the same.
    let pl = c.plan(&[], &opts(budget(1000)));
    assert_eq!(c.kept(&pl), ["q-1"]);
}

#[test]
fn an_unreachable_budget_is_reported_with_what_the_roots_hold() {
    let c = Cache::new(&[
        p("a-1", &[], 90, 1000), // 0 pinned
        p("b-1", &[], 80, 500),  // 1
        p("c-1", &[], 0, 300),   // 2 young: the grace period holds it
    ]);
    let mut o = opts(budget(800));
    o.now = std::time::UNIX_EPOCH + Duration::from_secs((NOW + 3600) as u64);
    let pl = c.plan(&[c.pin(0)], &o);
    assert_eq!(c.kept(&pl), ["a-1", "c-1"]);
    assert_eq!(
        pl.budget.unwrap(),
        BudgetReport {
            budget: 800,
            before: 1800,
            after: 1300,
            reached: false,
            held_by_roots: 1300
        }
    );
    assert!(c.why(&pl, 2).contains("grace period"), "{}", c.why(&pl, 2));
    assert!(
        c.why(&pl, 1)
            .starts_with("garbage: evicted by --max-size 800 B")
    );
    // Budget 0 evicts everything but the hard roots.
    let pl = c.plan(&[c.pin(0)], &opts(budget(0)));
    assert_eq!(c.kept(&pl), ["a-1", "c-1"]);
}

#[test]
fn policies_compose_with_pins_and_keep_younger() {
    let c = Cache::new(&[
        p("lib-1", &[], 100, 100), // 0: pinned
        p("lib-2", &[], 50, 100),  // 1
        p("lib-3", &[], 40, 100),  // 2
        p("app-1", &[0], 90, 100), // 3
        p("app-2", &[1], 30, 100), // 4
        p("app-3", &[2], 20, 100), // 5
        p("web-1", &[], 3, 100),   // 6: kept by --keep-younger-than 7d
        p("cli-1", &[4], 60, 100), // 7: references an older app
        p("cli-2", &[], 2, 100),   // 8: young too
    ]);
    let mut o = opts(Retention {
        keep_versions: Some(2),
        max_size: Some(550),
    });
    o.keep_younger = Some(Duration::from_secs(7 * DAY as u64));
    let pl = c.plan(&[c.pin(0)], &o);
    // Hard: lib-1 (pin), web-1, cli-2 (young) = 300. Versions (2 each): lib-2, lib-3,
    // app-2, app-3, cli-1 (and what they reference). Evicted least recently pushed first
    // among tops: cli-1 (60d), which makes app-2 a top; then app-2 (30d, older than
    // app-3), which makes lib-2 one; then lib-2 (50d) → 300 + lib-3 + app-3 = 500 ≤ 550.
    // app-1 is an older version.
    assert_eq!(c.kept(&pl), ["app-3", "cli-2", "lib-1", "lib-3", "web-1"]);
    let b = pl.budget.unwrap();
    assert_eq!(
        (b.before, b.after, b.reached, b.held_by_roots),
        (900, 500, true, 300)
    );
    assert_eq!(pl.evicted.len(), 3);
    assert_eq!(pl.dropped_by_versions, 1);
    assert_eq!(pl.kept_by_policy, 2);
    assert!(c.why(&pl, 6).contains("retention age"));
    let why = c.why(&pl, 5);
    assert_eq!(
        why,
        "kept: one of the 2 newest versions of app (1st newest): app-3; within the \
         --max-size budget of 550 B (least recently pushed are evicted first)"
    );
    assert!(
        c.why(&pl, 7)
            .starts_with("garbage: evicted by --max-size 550 B")
    );
    assert!(
        c.why(&pl, 3)
            .starts_with("garbage: older than the 2 newest")
    );
    assert_closed(&c.idx, &pl);
}

#[test]
fn what_an_evicted_version_referenced_is_explained_again() {
    let c = Cache::new(&[
        p("lib-1", &[], 90, 100),   // 0: an older lib
        p("lib-2", &[], 10, 100),   // 1
        p("app-1", &[0], 50, 100),  // 2: the oldest top
        p("other-1", &[], 30, 100), // 3
        p("tool-1", &[0], 20, 100), // 4: keeps lib-1 too
    ]);
    let o = opts(Retention {
        keep_versions: Some(1),
        max_size: Some(400),
    });
    let pl = c.plan(&[], &o);
    assert_eq!(c.kept(&pl), ["lib-1", "lib-2", "other-1", "tool-1"]);
    assert_eq!(
        c.why(&pl, 0),
        "kept: the newest version of tool: tool-1 → lib-1; within the --max-size budget of \
         400 B (least recently pushed are evicted first)"
    );
    // Without tool: lib-1 stays by the budget alone once app-1 is gone.
    let c = Cache::new(&[
        p("lib-1", &[], 90, 100),
        p("lib-2", &[], 10, 100),
        p("app-1", &[0], 50, 100),
        p("other-1", &[], 30, 100),
    ]);
    let o = opts(Retention {
        keep_versions: Some(1),
        max_size: Some(300),
    });
    let pl = c.plan(&[], &o);
    assert_eq!(c.kept(&pl), ["lib-1", "lib-2", "other-1"]);
    assert_eq!(pl.keep[c.rows[0] as usize], Keep::Budget);
    assert_eq!(
        c.why(&pl, 0),
        "kept: fits the --max-size budget of 300 B (least recently pushed are evicted first): \
         lib-1"
    );
}

#[test]
fn a_retention_policy_is_enough_to_run_without_roots() {
    let req = GcRequest {
        retention: versions(3),
        ..GcRequest::default()
    };
    assert!(!req.refuses_without(&GivenRoots::default()));
    assert!(GcRequest::default().refuses_without(&GivenRoots::default()));
    let req = GcRequest {
        retention: budget(1 << 30),
        ..GcRequest::default()
    };
    assert!(!req.refuses_without(&GivenRoots::default()));
    assert_eq!(req.options().retention, budget(1 << 30));
    let c = Cache::new(&[p("a-1", &[], 90, 10)]);
    let prepared = Prepared {
        roots: Vec::new(),
        extra_roots: Vec::new(),
        pins: Vec::new(),
        extras: Extras::default(),
        opts: opts(versions(1)),
        plan: c.plan(&[], &opts(versions(1))),
        allow_no_roots: false,
    };
    assert!(prepared.has_roots());
    assert_eq!(
        Retention {
            keep_versions: Some(3),
            max_size: Some(10 << 30)
        }
        .describe(),
        "--keep-versions 3 --max-size 10 GiB"
    );
}

#[test]
fn the_second_look_only_deletes_what_both_evict() {
    let mut c = Cache::new(&[
        p("a-1", &[], 90, 100),
        p("b-1", &[], 80, 100),
        p("c-1", &[], 70, 100),
    ]);
    let first = c.plan(&[], &opts(budget(150)));
    assert_eq!(c.kept(&first), ["c-1"]);
    // Meanwhile a-1 is pushed again (young): the second look evicts b-1 and c-1 instead.
    c.idx.rows_mut()[c.rows[0] as usize].mtime = NOW - 60;
    let second = c.plan(&[], &opts(budget(150)));
    assert!(!second.garbage.contains(&c.rows[0]));
    let both = intersect(&first, second);
    assert_eq!(both.garbage, vec![c.rows[1]]);
    assert_eq!(both.evicted, vec![c.rows[1]]);
}

#[test]
fn ordinals_and_dates() {
    let o: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
        .into_iter()
        .map(super::retention::ordinal)
        .collect();
    assert_eq!(
        o,
        [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"
        ]
    );
    assert_eq!(super::retention::date(0), "1970-01-01");
    assert_eq!(super::retention::date(1_800_000_000), "2027-01-15");
    assert_eq!(super::retention::date(951_782_400), "2000-02-29");
    assert_eq!(super::retention::date(i64::MIN), "an unknown date");
}

/// A small seeded xorshift.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A random cache: names from a few packages with versions and outputs, references to
/// earlier paths, random ages (some young), some shared NARs; and random pins.
fn random_cache(rng: &mut Rng) -> (Vec<P>, Vec<usize>, Option<i64>) {
    const PACKAGES: &[&str] = &["openssl", "hello", "curl", "zlib", "glibc", "foo-unstable"];
    const OUTPUTS: &[&str] = &["", "-dev", "-doc", ".drv"];
    let n = 2 + rng.below(40) as usize;
    let mut ps: Vec<P> = Vec::new();
    for i in 0..n {
        let pkg = PACKAGES[rng.below(PACKAGES.len() as u64) as usize];
        let out = OUTPUTS[rng.below(OUTPUTS.len() as u64) as usize];
        let mut refs = Vec::new();
        for _ in 0..rng.below(4) {
            if i > 0 {
                refs.push(rng.below(i as u64) as usize);
            }
        }
        if rng.chance(5) {
            refs.push(i);
        }
        let mtime = if rng.chance(8) {
            NOW - rng.below(3600) as i64 // young
        } else if rng.chance(2) {
            i64::MIN
        } else {
            // Few distinct days, so ages tie.
            NOW - (1 + rng.below(20) as i64) * DAY
        };
        ps.push(P {
            name: format!("{pkg}-1.{i}{out}"),
            refs,
            mtime,
            size: 1 + rng.below(1000),
            share: (i > 0 && rng.chance(15)).then(|| rng.below(i as u64) as usize),
        });
    }
    let pins = (0..n).filter(|_| rng.chance(7)).collect();
    let keep_younger = rng.chance(30).then(|| (1 + rng.below(10) as i64) * DAY);
    (ps, pins, keep_younger)
}

/// The closure of `start` through the references.
fn closure(c: &Cache, start: impl IntoIterator<Item = usize>) -> HashSet<usize> {
    let pos: HashMap<RowId, usize> = c.rows.iter().enumerate().map(|(i, &r)| (r, i)).collect();
    let mut seen: HashSet<usize> = HashSet::new();
    let mut stack: Vec<usize> = start.into_iter().collect();
    while let Some(i) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        for t in c.idx.refs(c.rows[i]) {
            if let Some(&j) = pos.get(t) {
                stack.push(j);
            }
        }
    }
    seen
}

/// Stored bytes of some paths, shared NARs once.
fn stored(ps: &[P], set: &HashSet<usize>) -> u64 {
    let owner = |mut i: usize| {
        while let Some(s) = ps[i].share {
            i = s;
        }
        i
    };
    let owners: HashSet<usize> = set.iter().map(|&i| owner(i)).collect();
    owners.iter().map(|&o| ps[o].size).sum()
}

#[test]
fn random_caches_keep_exactly_what_the_policies_say() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..400 {
        let (ps, pins, keep_younger) = random_cache(&mut rng);
        let c = Cache::new(&ps);
        let roots: Vec<(RootSource, String)> = pins.iter().map(|&i| c.pin(i)).collect();
        let n_versions = 1 + rng.below(3) as u32;
        let mut o = opts(versions(n_versions));
        o.keep_younger = keep_younger.map(|s| Duration::from_secs(s as u64));
        // The oracle: hard roots (pins, young or undatable, newer than keep_younger).
        let young = |i: usize| {
            let m = ps[i].mtime;
            m == i64::MIN
                || NOW - m < DEFAULT_GRACE.as_secs() as i64
                || keep_younger.is_some_and(|k| NOW - m < k)
        };
        let hard = closure(&c, (0..ps.len()).filter(|&i| pins.contains(&i) || young(i)));
        // The newest N of each group: unknown ages newest, ties by the greater name.
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, x) in ps.iter().enumerate() {
            groups
                .entry(crate::space::name::split(&x.name).group())
                .or_default()
                .push(i);
        }
        let mut newest = Vec::new();
        for g in groups.values_mut() {
            let key = |i: usize| match ps[i].mtime {
                i64::MIN => i64::MAX,
                m => m,
            };
            g.sort_by(|&a, &b| key(b).cmp(&key(a)).then(ps[b].name.cmp(&ps[a].name)));
            newest.extend(g.iter().take(n_versions as usize));
        }
        let wanted = closure(&c, hard.iter().copied().chain(newest));
        let pl = c.plan(&roots, &o);
        let garbage: HashSet<RowId> = pl.garbage.iter().copied().collect();
        let kept: HashSet<usize> = (0..ps.len())
            .filter(|&i| !garbage.contains(&c.rows[i]))
            .collect();
        assert_eq!(kept, wanted, "case {case}: --keep-versions {n_versions}");
        assert_closed(&c.idx, &pl);
        // Then a budget: under it whenever the hard roots allow, else exactly the hard
        // closure; never anything outside what the versions keep.
        let total = stored(&ps, &(0..ps.len()).collect());
        let b = rng.below(total + 1);
        for with_versions in [true, false] {
            let mut o2 = o.clone();
            o2.retention = Retention {
                keep_versions: with_versions.then_some(n_versions),
                max_size: Some(b),
            };
            let pl = c.plan(&roots, &o2);
            let garbage: HashSet<RowId> = pl.garbage.iter().copied().collect();
            let kept: HashSet<usize> = (0..ps.len())
                .filter(|&i| !garbage.contains(&c.rows[i]))
                .collect();
            assert!(kept.is_superset(&hard), "case {case}: hard roots hold");
            if with_versions {
                assert!(kept.is_subset(&wanted), "case {case}");
            }
            let held = stored(&ps, &hard);
            let report = pl.budget.unwrap();
            assert_eq!(report.held_by_roots, held, "case {case}");
            assert_eq!(report.after, stored(&ps, &kept), "case {case}");
            assert_eq!(report.before, total, "case {case}");
            if held <= b {
                assert!(stored(&ps, &kept) <= b, "case {case}: budget {b} reached");
                assert!(report.reached);
            } else {
                assert_eq!(kept, hard, "case {case}: only the hard closure stays");
                assert!(!report.reached);
            }
            assert_closed(&c.idx, &pl);
            for &r in &pl.garbage {
                assert!(pl.why(&c.idx, r).starts_with("garbage"), "case {case}");
            }
            for &i in &kept {
                let why = pl.why(&c.idx, c.rows[i]);
                assert!(
                    why.starts_with("kept") && why.contains(": "),
                    "case {case}: {why}"
                );
            }
        }
    }
}
