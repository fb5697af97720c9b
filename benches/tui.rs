//! Dashboard benchmark: prints figures, asserts nothing about time.
//!
//!   cargo bench --bench tui
//!
//! 1. A 1,000,000-row index (synthetic rows with references): the time to draw one frame
//!    (160×48 and 80×24), the time a filter keystroke takes (substring and fuzzy, typed one
//!    character at a time through the reducer, including the view rebuild), the space view
//!    (its whole report as the dashboard builds it, then by part, and keystrokes in it
//!    redrawn at 160×48), and peak RSS.
//! 2. A 100,000-path file:// cache scanned once into a persistent index: the warm open (load
//!    the index, build the view, draw the first full frame), as the dashboard does it.
//!
//! NARSCOPE_BENCH_ROWS changes the row count of part 1.

// The tests' harness; each benchmark uses a part of it.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;
// Each benchmark prints some of these figures.
#[allow(dead_code)]
#[path = "measure.rs"]
mod measure;
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use narscope::tui::keymap::Keymap;
use narscope::tui::theme::Theme;
use narscope::tui::{App, AppOptions, Msg};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    })
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::CONTROL,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    })
}

fn esc() -> Msg {
    Msg::Key(KeyEvent {
        code: KeyCode::Esc,
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    })
}

fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent {
        code: c,
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    })
}

/// Keystrokes in the space view, each handled and drawn at 160×48: (mean, worst) in ms.
fn space_keys(app: &mut App, term: &mut Terminal<TestBackend>, keys: &[Msg]) -> (f64, f64) {
    let mut times = Vec::new();
    for k in keys {
        let k = match k {
            Msg::Key(e) => Msg::Key(*e),
            _ => unreachable!("keys only"),
        };
        let s = Instant::now();
        app.update(k);
        term.draw(|f| narscope::tui::draw(f, app)).unwrap();
        times.push(s.elapsed());
    }
    let max = times.iter().max().copied().unwrap_or_default();
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    (ms(mean), ms(max))
}

/// The space view over `app`'s index: the whole report as the dashboard builds it, then by
/// part, then keystrokes in the view.
fn space_view(app: &mut App, n: u64) {
    use narscope::space::{Report, Sizes, closures, group, timeline};
    let index = app.index.clone();
    let idx = index.read().unwrap();
    let t = Instant::now();
    let report = Report::build(&idx, timeline::Granularity::Day);
    let t_report = t.elapsed();
    let t = Instant::now();
    let sizes = Sizes::of(&idx);
    let t_sizes = t.elapsed();
    let t = Instant::now();
    let _ = group::by_package_sized(&idx, &sizes, |_| true);
    let t_packages = t.elapsed();
    let live: Vec<u32> = idx.live().collect();
    let t = Instant::now();
    let _ = timeline::build_sized(&idx, &sizes, &live, timeline::Granularity::Day);
    let t_timeline = t.elapsed();
    let t = Instant::now();
    let c = closures::biggest_sized(&idx, &sizes, closures::WALK_BUDGET);
    let t_closures = t.elapsed();
    let measured = c.iter().filter(|c| c.measured).count();
    let biggest = report
        .packages
        .first()
        .map(|p| p.rows.clone())
        .unwrap_or_default();
    let t = Instant::now();
    let _ = timeline::build(&idx, &biggest, timeline::Granularity::Day);
    let t_group = t.elapsed();
    drop(idx);
    println!(
        "space report at {n} rows: {:.0} ms — target < 1000 ms (parts: NAR sizes {:.0} ms, by package {:.0} ms, timeline {:.0} ms, closures {:.0} ms; {} packages, {} roots, {measured} measured within the walk budget)",
        ms(t_report),
        ms(t_sizes),
        ms(t_packages),
        ms(t_timeline),
        ms(t_closures),
        report.packages.len(),
        c.len(),
    );
    println!(
        "space chart of one package ({} paths, built off the UI thread): {:.1} ms",
        biggest.len(),
        ms(t_group)
    );
    app.update(key('W'));
    app.update(Msg::SpaceBuilt(Arc::new(report)));
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    term.draw(|f| narscope::tui::draw(f, app)).unwrap();
    let downs: Vec<Msg> = (0..100).map(|_| key('j')).collect();
    let (mean, max) = space_keys(app, &mut term, &downs);
    println!(
        "space view keystroke: move down, drawn 160x48: mean {mean:.2} ms, worst {max:.2} ms — target < 50 ms"
    );
    let sorts: Vec<Msg> = (0..14)
        .map(|i| key(if i % 2 == 0 { 's' } else { 'S' }))
        .collect();
    let (mean, max) = space_keys(app, &mut term, &sorts);
    println!(
        "space view keystroke: sort (s, S), drawn 160x48: mean {mean:.2} ms, worst {max:.2} ms — target < 50 ms"
    );
    let filter: Vec<Msg> = std::iter::once(key('/'))
        .chain("python".chars().map(key))
        .chain(std::iter::once(code(KeyCode::Esc)))
        .collect();
    let (mean, max) = space_keys(app, &mut term, &filter);
    println!(
        "space view keystroke: filter char (\"python\", esc), drawn 160x48: mean {mean:.2} ms, worst {max:.2} ms — target < 50 ms"
    );
    let (mean, max) = space_keys(app, &mut term, &[key('t'), key('f'), key('j'), key('f')]);
    println!(
        "space view keystroke: day/week, chart follow, drawn 160x48: mean {mean:.2} ms, worst {max:.2} ms — target < 50 ms"
    );
    app.update(key('q'));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn frame_times(app: &mut App, w: u16, h: u16, frames: usize) -> (f64, f64) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        // Move the cursor between frames, as scrolling does.
        app.update(key(if i % 50 < 25 { 'j' } else { 'k' }));
        let s = Instant::now();
        t.draw(|f| narscope::tui::draw(f, app)).unwrap();
        times.push(s.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / frames as u32;
    (ms(mean), ms(times[frames * 99 / 100]))
}

fn type_filter(app: &mut App, text: &str, fuzzy: bool) -> (f64, f64, usize) {
    app.update(key('/'));
    if fuzzy {
        app.update(ctrl('x'));
    }
    let mut times = Vec::new();
    for c in text.chars() {
        let s = Instant::now();
        app.update(key(c));
        times.push(s.elapsed());
    }
    let shown = app.list.view.rows().len();
    let s = Instant::now();
    app.update(esc());
    times.push(s.elapsed());
    if fuzzy {
        app.update(ctrl('x'));
    }
    if std::env::var_os("NARSCOPE_BENCH_VERBOSE").is_some() {
        let each: Vec<String> = times.iter().map(|t| format!("{:.1}", ms(*t))).collect();
        println!(
            "  keystrokes of \"{text}\" (ms, the last is esc): {}",
            each.join(" ")
        );
    }
    let max = times.iter().max().copied().unwrap_or_default();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    (ms(mean), ms(max), shown)
}

fn main() {
    let n: u64 = std::env::var("NARSCOPE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!("narscope dashboard benchmark: {}", measure::machine());

    // Part 1: a million rows.
    let t = Instant::now();
    let idx = synthetic::synthetic_index(n);
    println!(
        "built a {n}-row index in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let index = Arc::new(std::sync::RwLock::new(idx));
    let t = Instant::now();
    let mut app = App::new(
        index,
        AppOptions::new(
            "file:///bench",
            Keymap::default_map(),
            Theme::default_theme(false),
        ),
    );
    println!(
        "first view (sort by name of {n} rows) in {:.0} ms",
        ms(t.elapsed())
    );
    let (mean, p99) = frame_times(&mut app, 160, 48, 400);
    println!("frame 160x48 with {n} rows: mean {mean:.2} ms, p99 {p99:.2} ms");
    let (mean, p99) = frame_times(&mut app, 80, 24, 400);
    println!("frame  80x24 with {n} rows: mean {mean:.2} ms, p99 {p99:.2} ms");
    for (q, fuzzy) in [
        ("python3-4", false),
        ("zzz", false),
        ("glbc", true),
        ("rgrep1", true),
    ] {
        let (mean, max, shown) = type_filter(&mut app, q, fuzzy);
        let how = if fuzzy { "fuzzy" } else { "substring" };
        println!(
            "filter keystroke, {how} \"{q}\" over {n} rows: mean {mean:.1} ms, worst {max:.1} ms ({shown} shown)"
        );
    }
    let t = Instant::now();
    app.update(key('s'));
    println!("re-sort {n} rows by NAR size: {:.0} ms", ms(t.elapsed()));
    space_view(&mut app, n);
    println!(
        "RSS with {n} rows indexed (and the space report): {:.0} MB now, peak {:.0} MB — target < 500 MB",
        measure::rss_mb("VmRSS:"),
        measure::rss_mb("VmHWM:")
    );
    drop(app);

    // Part 2: warm open of a 100k-path cache.
    let paths: usize = std::env::var("NARSCOPE_BENCH_WARM_PATHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let state_dir = dir.path().join("state");
    let key = narscope::nix::SecretKey::generate("bench-1").unwrap();
    let public = narscope::demo::write_synthetic_cache(&cache_dir, paths, &key).unwrap();
    let url = narscope::storage::CacheUrl::file(cache_dir.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut keys = narscope::nix::TrustedKeys::new();
    keys.add(public);
    let keys = Arc::new(keys);
    let cold = Instant::now();
    rt.block_on(async {
        let cache = Arc::new(narscope::cache::Cache::open(&url).await.unwrap());
        let opened = narscope::index::scan::open_index_in(&state_dir, &url.to_string());
        narscope::index::scan::scan(
            cache,
            opened.index.clone(),
            keys.clone(),
            Default::default(),
            Arc::default(),
            Arc::new(|| {}),
            Default::default(),
        )
        .await
        .unwrap();
        opened.save().unwrap();
    });
    println!(
        "cold scan of a {paths}-path file:// cache into the index: {:.2} s",
        cold.elapsed().as_secs_f64()
    );
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let opened = narscope::index::scan::open_index_in(&state_dir, &url.to_string());
        assert!(opened.loaded, "index reloads");
        let load = t.elapsed();
        let app = App::new(
            opened.index.clone(),
            AppOptions::new(
                &url.to_string(),
                Keymap::default_map(),
                Theme::default_theme(false),
            ),
        );
        let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
        term.draw(|f| narscope::tui::draw(f, &app)).unwrap();
        opens.push((t.elapsed(), load));
        drop(opened);
    }
    opens.sort();
    let (total, load) = opens[opens.len() / 2];
    println!(
        "warm open of {paths} paths to the first full frame: {:.0} ms (median of 5; loading the index {:.0} ms)",
        ms(total),
        ms(load)
    );
}
