//! The space view: opened with its report built off the UI thread (and rebuilt when the
//! index changes), sorted, filtered, drilled into (a package's paths in the list, a root
//! selected), the chart per day or week and per package; snapshots with and without colour.

use std::collections::BTreeSet;

use super::*;
use crate::space::Report;
use crate::space::timeline::{self, Granularity};
use crate::tui::overlay::space::{Section, SortCol, SpaceView};

/// The demo with ages spread over three weeks (the `i`th name is `i * 2` days old), so the chart
/// has periods to show.
async fn spread() -> Fixture {
    spread_with(false).await
}

async fn spread_with(no_color: bool) -> Fixture {
    let mut f = fixture_with(no_color).await;
    {
        // By name, not by row id: rows arrive from the scan in any order.
        let mut idx = f.app.index.write().unwrap();
        let mut by_name: Vec<(String, usize)> = (0..idx.len())
            .map(|i| (idx.name(i as RowId).to_string(), i))
            .collect();
        by_name.sort();
        for (rank, (_, i)) in by_name.into_iter().enumerate() {
            idx.rows_mut()[i].mtime = (NOW - 3600 - rank as u64 * 2 * 86_400) as i64;
        }
        idx.generation += 1;
    }
    f.app.rebuild();
    f
}

impl Fixture {
    /// Do what the runtime does for the space effects (build off the UI thread), deliver
    /// the answers, and return every other effect.
    async fn run_space(&mut self, fx: Vec<Effect>) -> Vec<Effect> {
        let mut todo = fx;
        let mut rest = Vec::new();
        while let Some(e) = todo.pop() {
            let msg = match e {
                Effect::BuildSpace => {
                    let r = Report::build(&self.app.idx(), Granularity::Day);
                    Msg::SpaceBuilt(Arc::new(r))
                }
                Effect::SpaceGroupTimeline(h, i) => {
                    let p = &h.0.packages[i];
                    let t = timeline::build(&self.app.idx(), &p.rows, Granularity::Day);
                    Msg::SpaceGroupTimeline {
                        generation: h.0.generation,
                        name: p.name.clone(),
                        timeline: Arc::new(t),
                    }
                }
                other => {
                    rest.push(other);
                    continue;
                }
            };
            todo.extend(self.send(msg).await);
        }
        rest
    }

    /// Open the view and deliver its report (built only when the index changed).
    async fn open_space(&mut self) {
        let stale = self
            .app
            .space
            .report
            .as_ref()
            .is_none_or(|r| r.generation != self.app.idx().generation);
        let fx = self.key('W').await;
        assert_eq!(fx.contains(&Effect::BuildSpace), stale, "{fx:?}");
        self.run_space(fx).await;
        assert!(self.app.space.report.is_some() && !self.app.space.building);
    }

    fn view(&self) -> &SpaceView {
        match &self.app.overlay {
            Overlay::Space(v) => v,
            other => panic!("no space view: {other:?}"),
        }
    }

    fn report(&self) -> Arc<Report> {
        self.app.space.report.clone().unwrap()
    }

    /// Package names in the table's order.
    fn shown(&self) -> Vec<String> {
        let r = self.report();
        self.view()
            .order()
            .iter()
            .map(|&i| r.packages[i as usize].name.clone())
            .collect()
    }
}

#[tokio::test]
async fn opening_builds_the_report_off_the_ui_thread_and_shows_it() {
    let mut f = spread().await;
    let fx = f.key('W').await;
    assert_eq!(
        fx,
        vec![Effect::BuildSpace],
        "W asks the runtime for a report"
    );
    assert!(f.app.space.building);
    let t = text(&f.app, 80, 24);
    assert!(t.contains("building…"), "{t}");
    // Keys while it builds do nothing harmful, and ask for no second build.
    assert!(f.key('j').await.is_empty());
    assert!(f.key('k').await.is_empty());

    let r = Arc::new(Report::build(&f.app.idx(), Granularity::Day));
    let fx = f.send(Msg::SpaceBuilt(r.clone())).await;
    assert!(fx.is_empty(), "{fx:?}");
    assert!(!f.app.space.building);
    assert!(Arc::ptr_eq(&f.report(), &r));
    assert_eq!(f.view().order().len(), r.packages.len());
    assert_eq!(r.paths, f.app.idx().live().count() as u64);
    let t = text(&f.app, 160, 48);
    for want in [
        "By package",
        "hello",
        "glibc",
        "Added per day — whole cache",
        "Biggest closures",
        &format!("{} paths", r.paths),
    ] {
        assert!(t.contains(want), "{want} missing:\n{t}");
    }
    // The biggest package is on top, with its share bar.
    let top = &r.packages[0];
    assert_eq!(f.shown()[0], top.name);
    let line = t.lines().find(|l| l.contains(&top.name)).unwrap();
    assert!(line.contains('█') && line.contains('%'), "{line}");

    // :space opens it too (the report is current: nothing to build).
    f.key('q').await;
    assert_eq!(f.app.overlay, Overlay::None);
    f.app.command("space", &mut Vec::new());
    assert!(matches!(f.app.overlay, Overlay::Space(_)));
    let t = text(&f.app, 80, 24);
    assert!(!t.contains("building…"), "{t}");
}

#[tokio::test]
async fn sorting_cycles_every_column_and_reverses() {
    let mut f = spread().await;
    f.open_space().await;
    let r = f.report();
    let by = |name: &str| r.packages.iter().find(|p| p.name == name).unwrap().clone();
    // Default: stored bytes, biggest first.
    assert_eq!((f.view().sort, f.view().desc), (SortCol::Stored, true));
    let check = |f: &Fixture, col: SortCol, desc: bool| {
        let shown = f.shown();
        assert_eq!(shown.len(), r.packages.len());
        for w in shown.windows(2) {
            let (a, b) = (by(&w[0]), by(&w[1]));
            let key = |p: &crate::space::group::Package| -> i128 {
                match col {
                    SortCol::Name => 0,
                    SortCol::Versions => p.versions() as i128,
                    SortCol::Nar => p.nar_bytes as i128,
                    SortCol::Stored | SortCol::Share => p.stored_bytes as i128,
                    // Ascending age: the youngest (latest time) first.
                    SortCol::Newest => -(p.newest as i128),
                    SortCol::Oldest => -(p.oldest as i128),
                }
            };
            let (ka, kb) = (key(&a), key(&b));
            let ordered = if col == SortCol::Name {
                if desc {
                    a.name >= b.name
                } else {
                    a.name <= b.name
                }
            } else if desc {
                ka > kb || (ka == kb && a.name <= b.name)
            } else {
                ka < kb || (ka == kb && a.name <= b.name)
            };
            assert!(ordered, "{col:?} desc={desc}: {} before {}", a.name, b.name);
        }
    };
    check(&f, SortCol::Stored, true);
    let mut seen = vec![SortCol::Stored];
    for _ in 0..7 {
        f.key('s').await;
        let (col, desc) = (f.view().sort, f.view().desc);
        assert_eq!(desc, col.default_desc());
        check(&f, col, desc);
        // S reverses (the header shows ▲ or ▼ on the column).
        let before = f.shown();
        f.key('S').await;
        assert_eq!(f.view().desc, !desc);
        check(&f, col, !desc);
        if col == SortCol::Name {
            let mut rev = before.clone();
            rev.reverse();
            assert_eq!(f.shown(), rev, "names are distinct: S is the exact reverse");
        }
        let t = text(&f.app, 160, 48);
        assert!(t.contains(if desc { "▲" } else { "▼" }), "{t}");
        f.key('S').await;
        seen.push(col);
    }
    assert_eq!(seen.len(), 8);
    assert_eq!(
        seen[7],
        SortCol::Stored,
        "s walks all seven columns and wraps"
    );
    let all: BTreeSet<String> = seen.iter().map(|c| format!("{c:?}")).collect();
    assert_eq!(all.len(), 7);
}

#[tokio::test]
async fn the_filter_narrows_live_and_esc_clears_it() {
    let mut f = spread().await;
    f.open_space().await;
    let all = f.shown().len();
    assert!(all > 5);
    f.key('/').await;
    f.keys("gl").await;
    assert_eq!(f.shown(), vec!["glibc".to_string()], "live as typed");
    let t = text(&f.app, 80, 24);
    assert!(t.contains("filter /gl█"), "{t}");
    f.code(KeyCode::Backspace).await;
    let shown = f.shown();
    assert!(
        shown.len() > 1 && shown.iter().all(|n| n.contains('g')),
        "{shown:?}"
    );
    f.code(KeyCode::Esc).await;
    assert_eq!(f.shown().len(), all, "esc clears");
    assert!(f.view().typing.is_none());
    // Smart case: an uppercase letter matches case-sensitively; Enter keeps the filter.
    f.key('/').await;
    f.keys("Hello").await;
    assert!(f.shown().is_empty());
    let t = text(&f.app, 80, 24);
    assert!(t.contains("no package matches"), "{t}");
    f.code(KeyCode::Backspace).await;
    f.code(KeyCode::Backspace).await;
    f.code(KeyCode::Backspace).await;
    f.code(KeyCode::Backspace).await;
    f.code(KeyCode::Backspace).await;
    f.keys("hel").await;
    f.code(KeyCode::Enter).await;
    assert_eq!(f.shown(), vec!["hello".to_string()]);
    assert_eq!(f.view().filter, "hel");
    assert!(f.view().typing.is_none());
    let t = text(&f.app, 80, 24);
    assert!(t.contains("filter \"hel\""), "{t}");
}

#[tokio::test]
async fn enter_lists_exactly_the_package_paths_and_esc_lifts_it() {
    let mut f = spread().await;
    let total = f.app.list.view.rows().len();
    f.open_space().await;
    let r = f.report();
    // Every package, drilled into, shows exactly its rows.
    for (i, p) in r.packages.iter().enumerate() {
        if i > 0 {
            f.open_space().await;
        }
        f.key('/').await;
        f.keys(&p.name).await;
        f.code(KeyCode::Enter).await;
        // Several packages may contain the name: go to the exact one.
        let pos = f.shown().iter().position(|n| *n == p.name).unwrap();
        for _ in 0..pos {
            f.key('j').await;
        }
        f.code(KeyCode::Enter).await;
        assert_eq!(f.app.overlay, Overlay::None, "Enter closes the view");
        assert_eq!(f.app.list.view.query, format!("pkg:{}", p.name));
        let got: BTreeSet<RowId> = f.app.list.view.rows().iter().copied().collect();
        let want: BTreeSet<RowId> = p.rows.iter().copied().collect();
        assert_eq!(got, want, "{}", p.name);
        assert!(want.contains(&f.app.list.selected.unwrap()));
        assert_eq!(f.app.focus, Focus::List);
        let t = text(&f.app, 160, 48);
        assert!(t.contains(&format!("filter \"pkg:{}\"", p.name)), "{t}");
        // Esc (clear_filter) lifts it.
        f.code(KeyCode::Esc).await;
        assert!(f.app.list.view.query.is_empty());
        assert_eq!(f.app.list.view.rows().len(), total);
    }
}

#[tokio::test]
async fn enter_on_a_closure_selects_its_root() {
    let mut f = spread().await;
    f.open_space().await;
    let r = f.report();
    assert!(!r.closures.is_empty());
    f.code(KeyCode::Tab).await;
    assert_eq!(f.view().section, Section::Timeline);
    assert!(f.key('j').await.is_empty(), "the chart has no cursor");
    f.code(KeyCode::Tab).await;
    assert_eq!(f.view().section, Section::Closures);
    let pick = r.closures.len().min(2) - 1;
    for _ in 0..pick {
        f.key('j').await;
    }
    let root = r.closures[pick].root;
    let fx = f.code(KeyCode::Enter).await;
    assert!(fx.contains(&Effect::LoadDetail(root)), "{fx:?}");
    assert_eq!(f.app.overlay, Overlay::None);
    assert_eq!(f.app.list.selected, Some(root));
    let n = f.app.notice.as_ref().unwrap();
    assert!(n.text.starts_with("root "), "{}", n.text);
    assert!(n.text.contains("frees"), "{}", n.text);
}

#[tokio::test]
async fn a_changed_index_rebuilds_the_report_keeping_the_old_one_meanwhile() {
    let mut f = spread().await;
    f.open_space().await;
    let old = f.report();
    // Closed: an index change builds nothing.
    f.key('q').await;
    f.app.index.write().unwrap().generation += 1;
    assert!(f.send(Msg::IndexChanged).await.is_empty());
    // Reopened with an old report: rebuild, showing the old one until the new arrives.
    let fx = f.key('W').await;
    assert_eq!(fx, vec![Effect::BuildSpace]);
    let t = text(&f.app, 160, 48);
    assert!(t.contains("building…") && t.contains("By package"), "{t}");
    // Open, current, then the index changes: one rebuild at a time.
    f.run_space(fx).await;
    let current = f.report();
    assert!(!Arc::ptr_eq(&old, &current));
    assert_eq!(current.generation, f.app.idx().generation);
    assert!(f.send(Msg::IndexChanged).await.is_empty(), "up to date");
    f.app.index.write().unwrap().generation += 1;
    let fx = f.send(Msg::IndexChanged).await;
    assert_eq!(fx, vec![Effect::BuildSpace]);
    f.app.index.write().unwrap().generation += 1;
    assert!(f.send(Msg::Tick).await.is_empty(), "one build at a time");
    // A report that is already stale when it arrives asks for the next one.
    let stale = Report::build(&f.app.idx(), Granularity::Day);
    let mut stale = stale;
    stale.generation -= 1;
    let fx = f.send(Msg::SpaceBuilt(Arc::new(stale))).await;
    assert_eq!(fx, vec![Effect::BuildSpace]);
    f.run_space(fx).await;
    assert_eq!(f.report().generation, f.app.idx().generation);
}

#[tokio::test]
async fn the_chart_follows_the_selection_per_day_or_week() {
    let mut f = spread().await;
    f.open_space().await;
    let t = text(&f.app, 160, 48);
    assert!(t.contains("Added per day — whole cache"), "{t}");
    assert!(t.contains("cumulative"), "{t}");
    f.key('t').await;
    let t = text(&f.app, 160, 48);
    assert!(t.contains("Added per week — whole cache"), "{t}");
    // Follow the selection: the selected package's timeline is built off the UI thread.
    let fx = f.key('f').await;
    let r = f.report();
    let (i, p) = f.view().selected(&r).unwrap();
    assert_eq!(
        fx,
        vec![Effect::SpaceGroupTimeline(
            crate::tui::msg::ReportHandle(r.clone()),
            i
        )]
    );
    let t = text(&f.app, 160, 48);
    assert!(t.contains(&format!("Added per week — {}", p.name)), "{t}");
    assert!(t.contains("building…"), "{t}");
    let name = p.name.clone();
    f.run_space(fx).await;
    let t = text(&f.app, 160, 48);
    assert!(!t.contains("building…"), "{t}");
    let tl = f.app.space.group(r.generation, &name).unwrap();
    assert_eq!(
        tl.buckets.iter().map(|b| b.paths).sum::<u64>(),
        r.packages[i].versions() as u64
    );
    // Moving asks for the next package's timeline; coming back uses the one built.
    let fx = f.key('j').await;
    assert!(
        matches!(fx.as_slice(), [Effect::SpaceGroupTimeline(_, _)]),
        "{fx:?}"
    );
    f.run_space(fx).await;
    assert!(f.key('k').await.is_empty(), "cached");
    // Back to the whole cache.
    f.key('f').await;
    let t = text(&f.app, 160, 48);
    assert!(t.contains("Added per week — whole cache"), "{t}");
}

#[tokio::test]
async fn closing_returns_to_the_panes_and_help_lists_the_keys() {
    let mut f = spread().await;
    f.open_space().await;
    let t = text(&f.app, 160, 48);
    assert!(t.contains("enter open"), "footer hints of the view:\n{t}");
    let before = f.app.list.selected;
    f.code(KeyCode::Esc).await;
    assert_eq!(f.app.overlay, Overlay::None);
    assert_eq!(f.app.list.selected, before);
    // Normal mode again: j moves the list.
    f.key('j').await;
    assert_ne!(f.app.list.selected, before);
    f.key('W').await;
    assert!(matches!(f.app.overlay, Overlay::Space(_)));
    f.key('W').await;
    assert_eq!(f.app.overlay, Overlay::None, "W closes it too");
    // Help lists the view's keys from the keymap.
    f.key('?').await;
    let Overlay::Help { .. } = f.app.overlay else {
        panic!("no help")
    };
    let ctx = f.app.ctx();
    let lines: Vec<String> = crate::tui::overlay::help::help_lines(&ctx)
        .iter()
        .map(|l| l.to_string())
        .collect();
    let at = lines.iter().position(|l| l == "Space view (W)").unwrap();
    for want in ["bars per day / per week", "filter packages by name", "tab"] {
        assert!(
            lines[at..].iter().take(20).any(|l| l.contains(want)),
            "{want}: {lines:#?}"
        );
    }
}

#[tokio::test]
async fn snapshots_with_and_without_colour() {
    for mono in [false, true] {
        let mut f = spread_with(mono).await;
        f.open_space().await;
        let suffix = if mono { "_no_color" } else { "" };
        snap(&format!("space{suffix}_80x24"), &f.app, 80, 24);
        if !mono {
            // README's capture.
            snap("space_100x30", &f.app, 100, 30);
        }
        f.key('j').await;
        snap(&format!("space{suffix}_160x48"), &f.app, 160, 48);
        let coloured = coloured_cells(&f.app, 160, 48);
        if mono {
            assert_eq!(coloured, 0, "NO_COLOR: no colour at all");
        } else {
            assert!(coloured > 0, "the theme's colours are used");
        }
    }
}

#[tokio::test]
async fn closures_past_the_walk_budget_show_as_lower_bounds() {
    let mut f = spread().await;
    f.open_space().await;
    let measured = text(&f.app, 160, 48);
    assert!(!measured.contains('≥'), "{measured}");
    // The same report as if the walk budget had run out before every closure.
    let mut r = Report::build(&f.app.idx(), Granularity::Day);
    r.closures = crate::space::closures::biggest_sized(
        &f.app.idx(),
        &crate::space::Sizes::of(&f.app.idx()),
        0,
    );
    let n = r.closures.len();
    assert!(n > 0 && r.closures.iter().all(|c| !c.measured));
    f.send(Msg::SpaceBuilt(Arc::new(r))).await;
    let screen = text(&f.app, 160, 48);
    assert!(
        screen.contains(&format!("{n} roots, {n} not measured (≥: lower bound)")),
        "{screen}"
    );
    assert!(screen.contains('≥'), "{screen}");
}
