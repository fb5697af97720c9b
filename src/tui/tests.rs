//! Reducer tests on [`App::update`], snapshots of every pane and overlay (insta, on ratatui's
//! `TestBackend`), and exact-buffer checks where colour carries the meaning. The fixture is the
//! real demo cache, scanned through the real file:// backend.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};

use super::app::{App, Confirmed, Effect, Focus, Level, Msg, Overlay};
use super::detail;
use super::keymap::Keymap;
use super::theme::Theme;
use super::ui;
use super::view::{SortKey, StatusFilter};
use crate::cache::Cache;
use crate::index::scan::{ScanOptions, ScanProgress, open_index, scan};
use crate::index::{RowId, RowStatus};
use crate::nix::TrustedKeys;
use crate::storage::CacheUrl;

struct Fixture {
    _dir: tempfile::TempDir,
    cache: Arc<Cache>,
    keys: Arc<TrustedKeys>,
    app: App,
}

const NOW: u64 = 1_750_000_000;

async fn fixture_with(no_color: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let demo = crate::demo::write_demo_cache(&dir.path().join("demo")).unwrap();
    let url = CacheUrl::file(demo.dir.clone());
    let cache = Arc::new(Cache::open(&url).await.unwrap());
    let mut keys = TrustedKeys::new();
    keys.add(demo.public_key.clone());
    let keys = Arc::new(keys);
    let opened = open_index(&url.to_string(), false);
    scan_into(&cache, &opened.index, &keys).await;
    {
        // Fixed ages: every narinfo five hours old.
        let mut idx = opened.index.write().unwrap();
        for r in idx.rows_mut() {
            r.mtime = (NOW - 5 * 3600) as i64;
        }
        idx.generation += 1;
    }
    let mut app = App::new(
        opened.index.clone(),
        "file:///srv/demo-cache",
        Keymap::default_map(),
        Theme::default_theme(no_color),
    );
    app.now = UNIX_EPOCH + Duration::from_secs(NOW);
    app.log_path = Some("/home/op/.cache/narscope/narscope.log".into());
    app.rebuild();
    Fixture {
        _dir: dir,
        cache,
        keys,
        app,
    }
}

/// A complete scan of `cache` into `index` (the dashboard's own).
async fn scan_into(
    cache: &Arc<Cache>,
    index: &Arc<std::sync::RwLock<crate::index::Index>>,
    keys: &Arc<TrustedKeys>,
) {
    scan(
        cache.clone(),
        index.clone(),
        keys.clone(),
        ScanOptions::default(),
        Arc::new(ScanProgress::default()),
        Arc::new(|| {}),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
}

async fn fixture() -> Fixture {
    fixture_with(false).await
}

impl Fixture {
    /// Deliver a message and then every LoadDetail it asks for (the runtime's job).
    async fn send(&mut self, msg: Msg) -> Vec<Effect> {
        let fx = self.app.update(msg);
        for f in &fx {
            if let Effect::PlanDelete(ids) = f {
                let p = super::app::propose_delete(&self.app.idx(), ids, &[]);
                self.app.update(Msg::DeletePlanned(Box::new(p)));
            }
            if let Effect::LoadDetail(id) = f {
                let d = detail::load(
                    self.cache.clone(),
                    self.app.index.clone(),
                    self.keys.clone(),
                    *id,
                )
                .await;
                self.app.update(Msg::DetailLoaded(Box::new(d)));
            }
        }
        fx
    }

    async fn key(&mut self, c: char) -> Vec<Effect> {
        self.send(Msg::Key(key(KeyCode::Char(c)))).await
    }

    async fn code(&mut self, c: KeyCode) -> Vec<Effect> {
        self.send(Msg::Key(key(c))).await
    }

    async fn keys(&mut self, s: &str) {
        for c in s.chars() {
            self.key(c).await;
        }
    }

    async fn load_selected(&mut self) {
        if let Some(id) = self.app.selected {
            let d = detail::load(
                self.cache.clone(),
                self.app.index.clone(),
                self.keys.clone(),
                id,
            )
            .await;
            self.app.update(Msg::DetailLoaded(Box::new(d)));
        }
    }

    fn name(&self, id: RowId) -> String {
        self.app.idx().name(id).to_string()
    }

    fn selected_name(&self) -> String {
        self.name(self.app.selected.unwrap())
    }

    fn find(&self, name: &str) -> RowId {
        let idx = self.app.idx();
        idx.live().find(|&i| idx.name(i) == name).unwrap()
    }

    async fn select(&mut self, name: &str) {
        let focus = self.app.focus;
        self.app.update(Msg::Key(key(KeyCode::Char('1'))));
        let id = self.find(name);
        let pos = self.app.view.position(id).unwrap();
        self.app.update(Msg::Key(key(KeyCode::Char('g'))));
        for _ in 0..pos {
            self.app.update(Msg::Key(key(KeyCode::Char('j'))));
        }
        self.load_selected().await;
        assert_eq!(self.selected_name(), name);
        self.app.focus = focus;
    }
}

fn key(code: KeyCode) -> KeyEvent {
    let modifiers = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    KeyEvent {
        code,
        modifiers,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    }
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::CONTROL,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    }
}

fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::draw(f, app)).unwrap();
    t
}

fn text(app: &App, w: u16, h: u16) -> String {
    let t = render(app, w, h);
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn snap(name: &str, app: &App, w: u16, h: u16) {
    let t = text(app, w, h);
    let filters = vec![
        (r"in \d+\.\d s", "in [time]"),
        (r"file:///tmp/\.tmp\w+", "file:///[tmp]"),
    ];
    insta::with_settings!({filters => filters, prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, t);
    });
}

#[tokio::test]
async fn list_panes_at_both_sizes() {
    let mut f = fixture().await;
    f.load_selected().await;
    snap("list_80x24", &f.app, 80, 24);
    snap("list_160x48", &f.app, 160, 48);
}

#[tokio::test]
async fn details_and_signatures_of_paths() {
    let mut f = fixture().await;
    f.select("hello-2.12.1").await;
    f.code(KeyCode::Tab).await;
    assert_eq!(f.app.focus, Focus::Details);
    snap("details_hello_160x48", &f.app, 160, 48);
    f.select("ripgrep-14.1.1").await;
    f.key('3').await;
    snap("signatures_untrusted_80x24", &f.app, 80, 24);
    f.select("nodejs-22.11.0").await;
    snap("signatures_invalid_160x48", &f.app, 160, 48);
}

#[tokio::test]
async fn overview_jobs_help_confirm_and_inputs() {
    let mut f = fixture().await;
    f.load_selected().await;
    f.key('4').await;
    snap("overview_160x48", &f.app, 160, 48);
    snap("overview_80x24", &f.app, 80, 24);
    f.key('5').await;
    snap("jobs_empty_80x24", &f.app, 80, 24);
    f.key('1').await;
    f.key('?').await;
    snap("help_80x24", &f.app, 80, 24);
    snap("help_160x48", &f.app, 160, 48);
    f.code(KeyCode::Esc).await;
    f.key(' ').await;
    f.key(' ').await;
    f.key('V').await;
    snap("confirm_verify_80x24", &f.app, 80, 24);
    f.code(KeyCode::Esc).await;
    f.key('/').await;
    f.keys("lib").await;
    snap("filter_typing_80x24", &f.app, 80, 24);
    f.code(KeyCode::Enter).await;
    f.key(':').await;
    f.keys("sort size").await;
    snap("command_line_80x24", &f.app, 80, 24);
}

#[tokio::test]
async fn quitting_asks_while_a_job_runs_but_not_for_the_scan() {
    let runner = crate::jobs::Runner::new();
    let notify: crate::jobs::JobNotify = Arc::new(|_| {});
    let idle = |job: Arc<crate::jobs::JobHandle>, _| async move {
        job.cancel.cancelled().await;
        Ok(())
    };
    let mut f = fixture().await;
    let scan = runner.spawn(crate::jobs::JobKind::Scan, "scan", notify.clone(), idle);
    f.app.update(Msg::ScanStarted(
        Arc::new(ScanProgress::default()),
        scan.clone(),
    ));
    assert_eq!(f.app.running_jobs(), 0);
    let fx = f.key('q').await;
    assert!(fx.iter().any(|e| matches!(e, Effect::Quit)), "{fx:?}");
    scan.cancel.cancel();

    let mut f = fixture().await;
    let push = runner.spawn(crate::jobs::JobKind::Push, "push", notify, idle);
    f.app.update(Msg::JobStarted(push.clone()));
    assert_eq!(f.app.running_jobs(), 1);
    let fx = f.key('q').await;
    assert!(!fx.iter().any(|e| matches!(e, Effect::Quit)), "{fx:?}");
    assert!(matches!(f.app.overlay, Overlay::Confirm(_)));
    push.cancel.cancel();
}

#[tokio::test]
async fn job_progress_rebuilds_the_list_only_when_the_index_changed() {
    let mut f = fixture().await;
    let before = f.app.last_rebuild;
    assert!(before.is_some());
    f.send(Msg::Job(crate::jobs::JobEvent::Progress(1))).await;
    assert_eq!(f.app.last_rebuild, before, "nothing changed: no rebuild");
    f.app.index.write().unwrap().generation += 1;
    f.send(Msg::Job(crate::jobs::JobEvent::Progress(1))).await;
    assert_ne!(f.app.last_rebuild, before, "the index changed: rebuilt");
}

#[tokio::test]
async fn jobs_pane_shows_progress_and_errors() {
    let mut f = fixture().await;
    f.key('M').await;
    f.send(Msg::Key(ctrl('a'))).await;
    let ids: Vec<RowId> = f.app.marks.iter().copied().collect();
    let runner = crate::jobs::Runner::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let notify: crate::jobs::JobNotify = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let (cache, index, keys) = (f.cache.clone(), f.app.index.clone(), f.keys.clone());
    let h = runner.spawn(
        crate::jobs::JobKind::VerifyContents,
        "deep-verify 12 path(s)",
        notify,
        move |job, n| crate::jobs::verify_contents(cache, index, keys, ids, 1, job, n),
    );
    f.app.update(Msg::JobStarted(h.clone()));
    loop {
        let e = rx.recv().await.unwrap();
        let done = matches!(e, crate::jobs::JobEvent::Finished(..));
        f.send(Msg::Job(e)).await;
        if done {
            break;
        }
    }
    // The corrupt and the dangling NAR were found; the corrupt one is marked in the list.
    let errors = h.progress.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("missing")), "{errors:?}");
    let corrupt = f.app.idx().totals().status(RowStatus::Corrupt);
    assert_eq!(corrupt, 2);
    assert_eq!(f.app.notice.as_ref().unwrap().level, Level::Warn);
    f.key('5').await;
    snap("jobs_finished_160x48", &f.app, 160, 48);
}

#[tokio::test]
async fn navigation_keeps_the_cursor_in_bounds_and_pages() {
    let mut f = fixture().await;
    let n = f.app.view.rows().len();
    assert_eq!(n, 12);
    assert_eq!(f.app.cursor, 0);
    f.key('k').await;
    assert_eq!(f.app.cursor, 0);
    f.key('G').await;
    assert_eq!(f.app.cursor, n - 1);
    f.key('j').await;
    assert_eq!(f.app.cursor, n - 1);
    f.key('g').await;
    f.app.list_height.set(5);
    f.code(KeyCode::PageDown).await;
    assert_eq!(f.app.cursor, 5);
    assert_eq!(f.app.offset, 1, "the cursor row stays in the window");
    let fx = f.send(Msg::Key(ctrl('d'))).await;
    assert_eq!(f.app.cursor, 7);
    assert!(fx.contains(&Effect::LoadDetail(f.app.selected.unwrap())));
    f.code(KeyCode::PageUp).await;
    assert_eq!(f.app.cursor, 2);
}

#[tokio::test]
async fn filters_sort_and_status_views() {
    let mut f = fixture().await;
    f.key('/').await;
    f.keys("lib").await;
    assert!(f.app.filter_input.is_some());
    let names: Vec<String> = f.app.view.rows().iter().map(|&i| f.name(i)).collect();
    assert_eq!(names, ["glibc-2.40-66", "zlib-1.3.1"]);
    f.code(KeyCode::Enter).await;
    assert!(f.app.filter_input.is_none());
    assert_eq!(f.app.view.query, "lib");
    f.code(KeyCode::Esc).await;
    assert_eq!(f.app.view.rows().len(), 12);
    // Fuzzy: "hlo" finds hello only when fuzzy.
    f.key('/').await;
    f.keys("hlo").await;
    assert_eq!(f.app.view.rows().len(), 0);
    f.send(Msg::Key(ctrl('x'))).await;
    assert!(f.app.view.fuzzy);
    assert_eq!(f.app.view.rows().len(), 1);
    f.code(KeyCode::Esc).await;
    assert!(f.app.view.query.is_empty() && f.app.filter_input.is_none());

    f.key('v').await;
    assert_eq!(f.app.view.status, StatusFilter::Problems);
    let problems: Vec<String> = f.app.view.rows().iter().map(|&i| f.name(i)).collect();
    for p in [
        "openssl-3.3.2",
        "ripgrep-14.1.1",
        "nodejs-22.11.0",
        "curl-8.11.0",
    ] {
        assert!(problems.contains(&p.to_string()), "{p} in {problems:?}");
    }
    assert!(!problems.contains(&"glibc-2.40-66".to_string()));
    f.key('v').await;
    assert_eq!(f.app.view.status, StatusFilter::Only(RowStatus::Unsigned));
    assert_eq!(f.app.view.rows().len(), 1);
    assert_eq!(f.selected_name(), "openssl-3.3.2");
    f.key('!').await;
    assert_eq!(f.app.view.status, StatusFilter::Problems);
    f.key('!').await;
    assert_eq!(f.app.view.status, StatusFilter::All);

    f.key('s').await;
    assert_eq!(f.app.view.sort, SortKey::NarSize);
    assert!(f.app.view.desc, "sizes sort largest first");
    let sizes: Vec<u64> = {
        let idx = f.app.idx();
        f.app
            .view
            .rows()
            .iter()
            .map(|&i| idx.row(i).nar_size)
            .collect()
    };
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    f.key('S').await;
    assert!(!f.app.view.desc);
}

#[tokio::test]
async fn the_cursor_stays_on_its_key_when_rows_change() {
    let mut f = fixture().await;
    f.select("python3-3.12.8").await;
    let id = f.app.selected.unwrap();
    // A filter that keeps it, then one that moves rows above it away.
    f.app.command("filter 3", &mut Vec::new());
    assert_eq!(f.app.selected, Some(id));
    assert_eq!(f.app.view.rows()[f.app.cursor], id);
    f.app.command("filter", &mut Vec::new());
    assert_eq!(f.app.selected, Some(id));
    // The index changes under the view (a new generation): still on python.
    f.app.index.write().unwrap().generation += 1;
    f.send(Msg::IndexChanged).await;
    assert_eq!(f.app.selected, Some(id));
    // Sorting moves the row, not the cursor's target.
    f.key('s').await;
    assert_eq!(f.app.selected, Some(id));
    assert_eq!(f.app.view.rows()[f.app.cursor], id);
}

#[tokio::test]
async fn follow_references_and_go_back() {
    let mut f = fixture().await;
    f.select("hello-2.12.1").await;
    f.code(KeyCode::Enter).await;
    assert_eq!(
        f.app.focus,
        Focus::Details,
        "enter on the list focuses details"
    );
    let targets = f.app.ref_targets();
    assert!(!targets.is_empty());
    let glibc = f.find("glibc-2.40-66");
    let pos = targets.iter().position(|&t| t == glibc).unwrap();
    for _ in 0..pos {
        f.key('j').await;
    }
    f.code(KeyCode::Enter).await;
    assert_eq!(f.selected_name(), "glibc-2.40-66");
    assert_eq!(f.app.detail.as_ref().unwrap().id, glibc);
    assert!(f.app.detail.as_ref().unwrap().referrers.len() >= 5);
    f.code(KeyCode::Backspace).await;
    assert_eq!(f.selected_name(), "hello-2.12.1");
    // A reference hidden by a filter: following clears the filter to show it.
    f.app.command("filter hello", &mut Vec::new());
    f.load_selected().await;
    f.key('2').await;
    let targets = f.app.ref_targets();
    let pos = targets.iter().position(|&t| t == glibc).unwrap();
    f.key('g').await;
    for _ in 0..pos {
        f.key('j').await;
    }
    f.code(KeyCode::Enter).await;
    assert_eq!(f.selected_name(), "glibc-2.40-66");
    assert!(f.app.view.query.is_empty());
}

#[tokio::test]
async fn marks_and_deep_verify_ask_first_defaulting_to_cancel() {
    let mut f = fixture().await;
    f.key(' ').await;
    f.key(' ').await;
    assert_eq!(f.app.marks.len(), 2);
    assert_eq!(f.app.cursor, 2, "space marks and moves on");
    let fx = f.key('V').await;
    assert!(fx.is_empty());
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!("no confirmation: {:?}", f.app.overlay)
    };
    assert!(!c.yes_selected, "defaults to Cancel");
    assert!(c.lines[0].contains("2 NAR(s)"), "{:?}", c.lines);
    // Enter presses the highlighted button: Cancel.
    let fx = f.code(KeyCode::Enter).await;
    assert!(fx.is_empty());
    assert_eq!(f.app.overlay, Overlay::None);
    f.key('V').await;
    f.code(KeyCode::Tab).await;
    let fx = f.code(KeyCode::Enter).await;
    let marked: Vec<RowId> = f.app.marks.iter().copied().collect();
    assert_eq!(fx, vec![Effect::VerifyContents(marked.clone())]);
    f.key('V').await;
    let fx = f.key('y').await;
    assert_eq!(fx, vec![Effect::VerifyContents(marked)]);
    f.key('M').await;
    assert!(f.app.marks.is_empty());
    // Without marks, the selected row.
    f.key('V').await;
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!()
    };
    assert_eq!(
        c.then,
        Confirmed::VerifyContents(vec![f.app.selected.unwrap()])
    );
}

#[tokio::test]
async fn quit_copy_refresh_and_commands() {
    let mut f = fixture().await;
    let fx = f.key('y').await;
    let p = f.app.idx().store_path(f.app.selected.unwrap());
    assert_eq!(fx, vec![Effect::Copy(p)]);
    assert_eq!(f.key('R').await, vec![Effect::Scan]);
    f.app.scanning = true;
    assert!(f.key('R').await.is_empty(), "one scan at a time");
    f.app.scanning = false;

    let mut fx = Vec::new();
    f.app.command("sort age desc", &mut fx);
    assert_eq!((f.app.view.sort, f.app.view.desc), (SortKey::Age, true));
    f.app.command("only untrusted", &mut fx);
    assert_eq!(f.app.view.rows().len(), 1);
    f.app.command("all", &mut fx);
    let hash = {
        let idx = f.app.idx();
        idx.hash_part(f.find("jq-1.7.1"))
    };
    f.app.command(&format!("goto {hash}"), &mut fx);
    assert_eq!(f.selected_name(), "jq-1.7.1");
    f.app.command(
        "goto /nix/store/00000000000000000000000000000000-nope",
        &mut fx,
    );
    assert_eq!(f.app.notice.as_ref().unwrap().level, Level::Error);
    f.app.command("frobnicate", &mut fx);
    assert!(
        f.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("unknown command")
    );
    f.app.command("sort sideways", &mut fx);
    assert!(f.app.notice.as_ref().unwrap().text.contains("usage"));

    // The command line itself: typed, then Enter.
    f.key(':').await;
    f.keys("only unsigned").await;
    f.code(KeyCode::Enter).await;
    assert_eq!(f.app.view.status, StatusFilter::Only(RowStatus::Unsigned));
    assert_eq!(f.app.overlay, Overlay::None);

    // Quitting with a job running asks first.
    let runner = crate::jobs::Runner::new();
    let h = runner.spawn(
        crate::jobs::JobKind::VerifyContents,
        "slow",
        Arc::new(|_| {}),
        |_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        },
    );
    f.app.update(Msg::JobStarted(h.clone()));
    assert!(f.key('q').await.is_empty());
    assert!(matches!(f.app.overlay, Overlay::Confirm(_)));
    assert!(f.key('n').await.is_empty());
    assert!(!f.app.quit);
    f.key('x').await;
    f.key('q').await;
    assert_eq!(f.key('y').await, vec![Effect::Quit]);
    assert!(f.app.quit);
    h.cancel.cancel();
}

#[tokio::test]
async fn stale_details_are_ignored_and_mouse_works() {
    let mut f = fixture().await;
    f.load_selected().await;
    let first = f.app.selected.unwrap();
    let other = f.find("zlib-1.3.1");
    let d = detail::load(f.cache.clone(), f.app.index.clone(), f.keys.clone(), other).await;
    f.app.update(Msg::DetailLoaded(Box::new(d)));
    assert_eq!(
        f.app.detail.as_ref().unwrap().id,
        first,
        "a late answer for another row"
    );

    // Draw once so the panes' places are known, then click the fourth row.
    render(&f.app, 160, 48);
    let a = f.app.areas.get();
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: a.list.x + 5,
        row: a.list_rows_top + 3,
        modifiers: KeyModifiers::NONE,
    };
    f.send(Msg::Mouse(click)).await;
    assert_eq!(f.app.cursor, 3);
    let scroll = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: a.list.x + 5,
        row: a.list_rows_top + 3,
        modifiers: KeyModifiers::NONE,
    };
    f.send(Msg::Mouse(scroll)).await;
    assert_eq!(f.app.cursor, 6);
    let on_details = MouseEvent {
        column: a.details.x + 2,
        row: a.details.y + 2,
        ..click
    };
    f.send(Msg::Mouse(on_details)).await;
    assert_eq!(f.app.focus, Focus::Details);
}

/// Where the badge of a row is drawn (first list row is `list_rows_top`).
fn badge(t: &Terminal<TestBackend>, app: &App, pos: usize) -> (String, Color, Modifier) {
    let a = app.areas.get();
    let cell = &t.backend().buffer()[(a.list.x + 2, a.list_rows_top + pos as u16)];
    (cell.symbol().to_string(), cell.fg, cell.modifier)
}

#[tokio::test]
async fn verdict_badges_have_their_colour_and_symbol() {
    let mut f = fixture().await;
    f.key('j').await; // keep the selection highlight off the rows checked below
    f.key('j').await;
    f.key('j').await;
    f.key('j').await;
    f.key('j').await;
    f.key('j').await;
    f.key('j').await;
    f.key('j').await;
    f.key('j').await;
    f.key('j').await;
    f.key('j').await;
    let t = render(&f.app, 160, 48);
    let want = [
        ("bash-5.2p37", "✓", Color::Green),
        ("greeting.txt", "◆", Color::Cyan),
        ("ripgrep-14.1.1", "?", Color::Yellow),
        ("nodejs-22.11.0", "✗", Color::Red),
        ("openssl-3.3.2", "○", Color::Magenta),
    ];
    for (name, sym, color) in want {
        let id = f.find(name);
        let pos = f.app.view.position(id).unwrap();
        let (s, fg, m) = badge(&t, &f.app, pos);
        assert_eq!((s.as_str(), fg), (sym, color), "{name}");
        if name.starts_with("nodejs") {
            assert!(m.contains(Modifier::BOLD), "invalid is bold");
        }
    }
    // NO_COLOR: no colours at all, the symbols still differ.
    let mut mono = fixture_with(true).await;
    mono.key('G').await;
    let t = render(&mono.app, 160, 48);
    let buf = t.backend().buffer();
    for y in 0..48 {
        for x in 0..160 {
            let c = &buf[(x, y)];
            assert!(
                matches!(c.fg, Color::Reset) && matches!(c.bg, Color::Reset),
                "colour at {x},{y}"
            );
        }
    }
    let id = mono.find("nodejs-22.11.0");
    let (s, _, _) = badge(&t, &mono.app, mono.app.view.position(id).unwrap());
    assert_eq!(s, "✗");
}

#[tokio::test]
async fn the_confirm_dialog_highlights_cancel_until_moved() {
    let mut f = fixture().await;
    f.key('V').await;
    let t = render(&f.app, 80, 24);
    let buf = t.backend().buffer();
    let find = |label: &str| {
        for y in 0..24u16 {
            let row: String = (0..80u16)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            if let Some(i) = row.find(label) {
                let x = row[..i].chars().count() as u16;
                return (x, y);
            }
        }
        panic!("{label} not drawn");
    };
    let (cx, cy) = find("Cancel (n)");
    let (vx, vy) = find("Verify (y)");
    let sel_bg = buf[(cx, cy)].bg;
    assert_ne!(sel_bg, Color::Reset, "Cancel is highlighted");
    assert_eq!(buf[(vx, vy)].bg, Color::Reset, "Verify is not");
}

#[tokio::test]
async fn an_empty_cache_and_a_running_scan_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    let opened = open_index("file:///srv/empty", false);
    let mut app = App::new(
        opened.index.clone(),
        "file:///srv/empty",
        Keymap::default_map(),
        Theme::default_theme(false),
    );
    app.now = SystemTime::UNIX_EPOCH;
    snap("empty_80x24", &app, 80, 24);
    let p = Arc::new(ScanProgress::default());
    p.listed.store(1234, std::sync::atomic::Ordering::Relaxed);
    p.to_fetch.store(1234, std::sync::atomic::Ordering::Relaxed);
    p.fetched.store(200, std::sync::atomic::Ordering::Relaxed);
    let runner = crate::jobs::Runner::new();
    let h = runner.spawn(
        crate::jobs::JobKind::Scan,
        "scan",
        Arc::new(|_| {}),
        |_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        },
    );
    app.update(Msg::ScanStarted(p, h.clone()));
    assert!(app.scanning);
    let t = text(&app, 120, 24);
    assert!(
        t.contains("scanning: 1,234 listed, 200/1,234 fetched"),
        "{t}"
    );
    assert!(t.contains("loading…"), "{t}");
    h.cancel.cancel();
    app.update(Msg::ScanFinished(Err(
        "s3://b: the bucket does not exist".into()
    )));
    assert_eq!(app.notice.as_ref().unwrap().level, Level::Error);
    let t = text(&app, 80, 24);
    assert!(
        t.contains("scan failed: s3://b: the bucket does not exist"),
        "{t}"
    );
}

#[tokio::test]
async fn the_planning_notice_goes_when_its_plan_arrives_and_a_newer_notice_stays() {
    let mut f = fixture().await;
    f.select("glibc-2.40-66").await;
    for newer in [false, true] {
        f.app.overlay = Overlay::None;
        // The reducer alone, so that the plan arrives only when this test delivers it.
        let fx = f.app.update(Msg::Key(key(KeyCode::Char('D'))));
        let [Effect::PlanDelete(ids)] = &fx[..] else {
            panic!("{fx:?}")
        };
        let notice = f.app.notice.clone().unwrap();
        assert!(
            notice.text.starts_with("planning the deletion"),
            "{notice:?}"
        );
        if newer {
            f.app.update(Msg::Saved(Err("disk full".into())));
        }
        let p = super::app::propose_delete(&f.app.idx(), ids, &[]);
        f.app.update(Msg::DeletePlanned(Box::new(p)));
        assert!(matches!(f.app.overlay, Overlay::Confirm(_)));
        let left = f.app.notice.as_ref().map(|n| n.text.as_str());
        if newer {
            assert_eq!(left, Some("index not saved: disk full"));
        } else {
            assert_eq!(left, None);
        }
    }
}

#[tokio::test]
async fn a_delete_that_reaches_a_pinned_path_is_refused_naming_the_pin() {
    let mut f = fixture().await;
    f.select("glibc-2.40-66").await;
    let fx = f.app.update(Msg::Key(key(KeyCode::Char('D'))));
    let [Effect::PlanDelete(ids)] = &fx[..] else {
        panic!("{fx:?}")
    };
    let hello = f.find("hello-2.12.1");
    let pins = vec![crate::gc::Pin {
        name: "release".into(),
        paths: vec![f.app.idx().store_path(hello)],
    }];
    let p = super::app::propose_delete(&f.app.idx(), ids, &pins);
    f.app.update(Msg::DeletePlanned(Box::new(p)));
    assert!(
        !matches!(f.app.overlay, Overlay::Confirm(_)),
        "no confirmation"
    );
    let n = f.app.notice.clone().unwrap();
    assert_eq!(n.level, Level::Error);
    assert!(
        n.text.contains("pin release") && n.text.contains("hello-2.12.1"),
        "{n:?}"
    );
    assert!(n.text.contains(":pin rm NAME"), "{n:?}");
}

#[tokio::test]
async fn delete_plans_first_cascades_referrers_and_is_read_only_aware() {
    let mut f = fixture().await;
    f.select("glibc-2.40-66").await;
    let fx = f.key('D').await;
    assert!(
        matches!(&fx[..], [Effect::PlanDelete(ids)] if ids.len() == 1),
        "{fx:?}"
    );
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!("no plan shown: {:?}", f.app.overlay)
    };
    assert!(
        c.destructive && !c.yes_selected,
        "destructive, defaulting to Cancel"
    );
    assert!(
        c.lines[0].contains("reference these and go too"),
        "{:?}",
        c.lines
    );
    assert!(
        c.lines.iter().any(|l| l.contains("hello-2.12.1")),
        "{:?}",
        c.lines
    );
    let Confirmed::Delete(plan) = c.then.clone() else {
        panic!()
    };
    assert!(plan.plan.is_safe());
    assert!(plan.cascade && !plan.even_if_pinned);
    let glibc = f.find("glibc-2.40-66");
    assert_eq!(plan.targets, vec![glibc]);
    assert_eq!(
        plan.plan.levels.last().unwrap(),
        &vec![glibc],
        "glibc goes last"
    );
    snap("confirm_delete_80x24", &f.app, 80, 24);
    assert!(f.key('n').await.is_empty());
    f.key('D').await;
    assert_eq!(f.key('y').await, vec![Effect::Delete(plan)]);

    // A leaf nobody references: no cascade.
    f.select("jq-1.7.1").await;
    f.key('D').await;
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!()
    };
    assert!(
        c.lines[0].starts_with("Delete 1 narinfo(s), 1 NAR(s)"),
        "{:?}",
        c.lines
    );
    f.code(KeyCode::Esc).await;

    // Signing needs a key; read-only turns both off.
    f.send(Msg::Key(ctrl('s'))).await;
    assert!(
        f.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("no signing key")
    );
    f.app.signing_key = Some("cache-1".into());
    f.send(Msg::Key(ctrl('s'))).await;
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!()
    };
    assert!(c.lines[0].contains("cache-1"), "{:?}", c.lines);
    assert_eq!(
        f.key('y').await,
        vec![Effect::Sign(vec![f.find("jq-1.7.1")])]
    );
    // Push asks first too.
    let mut fx = Vec::new();
    f.app.command(
        "push /nix/store/00000000000000000000000000000000-x",
        &mut fx,
    );
    assert!(fx.is_empty());
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!()
    };
    assert!(c.lines[0].contains("signed by cache-1"), "{:?}", c.lines);
    assert_eq!(
        f.key('y').await,
        vec![Effect::Push(vec![
            "/nix/store/00000000000000000000000000000000-x".into()
        ])]
    );
    f.app.read_only = true;
    assert!(f.key('D').await.is_empty());
    assert_eq!(f.app.overlay, Overlay::None);
    assert!(f.app.notice.as_ref().unwrap().text.contains("read-only"));
    let mut fx = Vec::new();
    f.app.command("push /nix/store/x", &mut fx);
    assert!(fx.is_empty());
    let t = text(&f.app, 160, 48);
    assert!(t.contains("read-only"), "{t}");
    f.key('?').await;
    let help = text(&f.app, 160, 48);
    assert!(help.contains("(disabled: read-only)"), "{help}");
}

/// The runtime's grouping of a plan.
fn summary(
    f: &Fixture,
    prepared: crate::gc::Prepared,
    allow_no_roots: bool,
) -> Arc<super::gcview::GcSummary> {
    Arc::new(super::gcview::GcSummary::new(
        Arc::new(prepared),
        &f.app.idx(),
        allow_no_roots,
    ))
}

/// The runtime's part of a gc plan, seven hours later (past the default grace period).
async fn plan_past_grace(
    store: &Arc<dyn crate::storage::Store>,
    f: &Fixture,
) -> crate::gc::Prepared {
    let opts = crate::gc::GcOptions {
        now: SystemTime::now() + Duration::from_secs(7 * 3600),
        ..Default::default()
    };
    let pins = crate::gc::list_pins(store.as_ref()).await.unwrap();
    crate::gc::prepare(store.as_ref(), &f.app.index, pins, vec![], opts)
        .await
        .unwrap()
}

#[tokio::test]
async fn gc_view_groups_the_plan_drills_in_and_confirms() {
    let mut f = fixture().await;
    // Without a complete scan's NAR listing a plan is not made; here it is complete.
    let fx = f.key('C').await;
    assert_eq!(
        fx,
        vec![Effect::PlanGc(super::app::GcRequest::default())],
        "C asks the runtime for a plan with the defaults"
    );
    assert!(f.app.gc_planning);
    assert!(f.key('C').await.is_empty(), "one plan at a time");

    // The runtime's part, done here: pin hello's closure and plan past the grace period.
    let store = f.cache.store().clone();
    let hello = f.find("hello-2.12.1");
    let hello_path = f.app.idx().store_path(hello);
    crate::gc::write_pin(store.as_ref(), "release", std::slice::from_ref(&hello_path))
        .await
        .unwrap();
    let prepared = plan_past_grace(&store, &f).await;
    let garbage = prepared.plan.garbage.clone();
    assert!(
        !garbage.is_empty(),
        "the demo has paths outside hello's closure"
    );
    assert!(!garbage.contains(&hello));
    let glibc = f.find("glibc-2.40-66");
    assert!(!garbage.contains(&glibc), "hello references glibc");
    f.send(Msg::GcPlanned(Ok(summary(&f, prepared, false))))
        .await;
    assert!(!f.app.gc_planning);
    let Overlay::Gc(_) = &f.app.overlay else {
        panic!("no gc view: {:?}", f.app.overlay)
    };
    let t = text(&f.app, 120, 40);
    assert!(t.contains("unreachable narinfos"), "{t}");
    assert!(t.contains("orphan NARs"), "{t}");
    assert!(t.contains("roots"), "{t}");
    assert!(t.contains(&format!("{} narinfo(s)", garbage.len())), "{t}");
    snap("gc_plan_80x24", &f.app, 80, 24);

    // Open the first group, go to its first path: the reason is shown, and Enter drills
    // into the path (the list shows it, Details says why).
    f.code(KeyCode::Enter).await;
    f.key('j').await;
    let t = text(&f.app, 120, 40);
    assert!(t.contains("garbage: no root reaches it"), "{t}");
    snap("gc_plan_open_120x40", &f.app, 120, 40);
    f.code(KeyCode::Enter).await;
    assert_eq!(f.app.overlay, Overlay::None);
    let first = f.app.selected.unwrap();
    assert!(garbage.contains(&first));
    f.load_selected().await;
    let t = text(&f.app, 160, 48);
    assert!(t.contains("GC plan"), "{t}");
    // A kept path says which root keeps it, through which referrer.
    f.select("glibc-2.40-66").await;
    let t = text(&f.app, 160, 48);
    assert!(t.contains("kept by pin 'release': hello-2.12.1"), "{t}");

    // C reopens the same plan (the index did not change); c asks, defaulting to Cancel.
    assert!(f.key('C').await.is_empty());
    assert!(matches!(f.app.overlay, Overlay::Gc(_)));
    assert!(f.key('c').await.is_empty());
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!("no confirmation: {:?}", f.app.overlay)
    };
    assert!(c.destructive && !c.yes_selected);
    assert_eq!(c.then, Confirmed::Collect);
    assert!(c.lines[0].starts_with(&format!("delete {} narinfo(s)", garbage.len())));
    assert!(
        c.lines.iter().any(|l| l.contains("read again")),
        "{:?}",
        c.lines
    );
    let planned = f.app.gc.clone().unwrap().prepared.clone();
    let fx = f.key('y').await;
    assert_eq!(
        fx,
        vec![Effect::Collect(super::app::PlanHandle(planned))],
        "confirming hands the plan to the runtime"
    );
    assert!(f.app.gc.is_none(), "a used plan is not reused");
}

#[tokio::test]
async fn gc_with_an_unreadable_narinfo_is_refused_and_shows_it() {
    let mut f = fixture().await;
    let store = f.cache.store().clone();
    let mut prepared = plan_past_grace(&store, &f).await;
    prepared.plan.unknown.push(crate::index::UnknownRow {
        row: 0,
        key: "0123456789abcdfghijklmnpqrsvwxy0.narinfo".into(),
        state: "malformed",
        cause: "line 6: bad NarHash".into(),
    });
    f.key('C').await;
    f.send(Msg::GcPlanned(Ok(summary(&f, prepared, true))))
        .await;
    let t = text(&f.app, 160, 48);
    assert!(t.contains("unreadable narinfos"), "{t}");
    f.key('c').await;
    assert!(matches!(f.app.overlay, Overlay::Gc(_)), "no confirmation");
    let n = f.app.notice.clone().unwrap();
    assert_eq!(n.level, Level::Error);
    assert!(
        n.text.contains("refusing to collect")
            && n.text.contains("0123456789abcdfghijklmnpqrsvwxy0.narinfo")
            && n.text.contains("delete it explicitly"),
        "{n:?}"
    );
}

#[tokio::test]
async fn gc_without_roots_is_refused_and_pins_are_commands() {
    let mut f = fixture().await;
    let store = f.cache.store().clone();
    let prepared = plan_past_grace(&store, &f).await;
    assert!(!prepared.has_roots());
    f.key('C').await;
    f.send(Msg::GcPlanned(Ok(summary(&f, prepared.clone(), false))))
        .await;
    f.key('c').await;
    assert!(matches!(f.app.overlay, Overlay::Gc(_)), "no confirmation");
    assert!(
        f.app.notice.as_ref().unwrap().text.contains("no roots"),
        "{:?}",
        f.app.notice
    );
    // Allowed explicitly, it asks.
    let mut fx = Vec::new();
    f.app.overlay = Overlay::None;
    f.app
        .command("gc --allow-no-roots --grace 2h --keep 30d", &mut fx);
    assert_eq!(
        fx,
        vec![Effect::PlanGc(super::app::GcRequest {
            grace: Duration::from_secs(7200),
            keep_younger: Some(Duration::from_secs(30 * 86_400)),
            roots_files: vec![],
            allow_no_roots: true,
        })]
    );
    f.send(Msg::GcPlanned(Ok(summary(&f, prepared, true))))
        .await;
    f.key('c').await;
    assert!(matches!(f.app.overlay, Overlay::Confirm(_)));
    f.key('n').await;
    // Bad options name themselves.
    let mut fx = Vec::new();
    f.app.command("gc --grace soon", &mut fx);
    assert!(fx.is_empty());
    assert!(f.app.notice.as_ref().unwrap().text.contains("'soon'"));

    // Pins: add the selected path, remove with a confirmation, list into an overlay.
    f.select("jq-1.7.1").await;
    let jq = f.app.idx().store_path(f.find("jq-1.7.1"));
    let mut fx = Vec::new();
    f.app.command("pin add tools", &mut fx);
    assert_eq!(fx, vec![Effect::PinAdd("tools".into(), vec![jq.clone()])]);
    let mut fx = Vec::new();
    f.app.command("pin add ../evil", &mut fx);
    assert!(fx.is_empty());
    assert!(
        f.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("not a pin name")
    );
    f.send(Msg::PinDone(Ok("pinned 1 path(s) as 'tools'".into())))
        .await;
    assert!(f.app.gc.is_none(), "a pin change makes the plan stale");
    let mut fx = Vec::new();
    f.app.command("pin rm tools", &mut fx);
    assert!(fx.is_empty());
    assert_eq!(f.key('y').await, vec![Effect::PinRemove("tools".into())]);
    let mut fx = Vec::new();
    f.app.command("pins", &mut fx);
    assert_eq!(fx, vec![Effect::ListPins]);
    f.send(Msg::Pins(Ok(vec![crate::gc::Pin {
        name: "tools".into(),
        paths: vec![jq.clone()],
    }])))
    .await;
    let t = text(&f.app, 120, 40);
    assert!(t.contains("tools (1 path(s))") && t.contains(&jq), "{t}");
    f.code(KeyCode::Esc).await;
    assert_eq!(f.app.overlay, Overlay::None);
    // Read-only: planning is fine, collecting and pin changes are not.
    f.app.read_only = true;
    let mut fx = Vec::new();
    f.app.command("pin add x", &mut fx);
    assert!(fx.is_empty());
    assert!(f.app.notice.as_ref().unwrap().text.contains("read-only"));
}

#[tokio::test]
async fn details_read_an_unindexed_narinfo_once_and_show_it_decoded() {
    let f = fixture().await;
    let id = f.find("hello-2.12.1");
    let indexed = detail::load(f.cache.clone(), f.app.index.clone(), f.keys.clone(), id).await;
    let (key, plain) = {
        let mut idx = f.app.index.write().unwrap();
        let key = idx.narinfo_key(id);
        let plain = idx
            .read_text(id)
            .unwrap()
            .expect("the scan stores the text");
        // As if the index held no text for the row: Details must read the cache.
        idx.rows_mut()[id as usize].text.len = 0;
        (key, plain)
    };
    // The cache stores it xz-compressed, which Nix reads too.
    let mut packed = Vec::new();
    crate::compression::compress_all(
        crate::compression::Compression::Xz,
        None,
        plain.as_bytes(),
        &mut packed,
    )
    .unwrap();
    assert_ne!(packed, plain.as_bytes());
    f.cache
        .store()
        .put(&key, packed.into(), &crate::storage::PutOptions::default())
        .await
        .unwrap();
    let d = detail::load(f.cache.clone(), f.app.index.clone(), f.keys.clone(), id).await;
    assert_eq!(d.text.as_deref(), Some(plain.as_str()), "decoded text");
    assert!(d.info.is_ok(), "{:?}", d.info);
    assert_eq!(d.status, indexed.status, "judged as when indexed");
}

/// A secret key planted in the cache (a stray name at the root, and `x.sec` under `nar/`) and
/// an object named like a narinfo whose hash part has a `u` are problems of their own in the
/// overview; the key itself is never shown; gc neither refuses nor deletes the misnamed one.
#[tokio::test]
async fn the_overview_reports_secret_keys_and_misnamed_narinfos() {
    let mut f = fixture().await;
    let root = f.cache.store().local_root().unwrap();
    let sk = crate::nix::SecretKey::generate("leaked-cache-1").unwrap();
    let secret = sk.to_file_text();
    std::fs::write(root.join("backup-2024"), &secret).unwrap();
    std::fs::write(root.join("nar/x.sec"), format!("{secret}\n")).unwrap();
    let misnamed = "vxjiwkjkn7x4079qvh1jkl5pn05j2auu.narinfo";
    std::fs::write(
        root.join(misnamed),
        "StorePath: /nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2auu-x\n",
    )
    .unwrap();
    scan_into(&f.cache, &f.app.index, &f.keys).await;
    f.app.rebuild();
    f.key('4').await;
    let t = text(&f.app, 200, 70);
    // The overview pane's lines, joined: messages wrap inside the pane.
    let pane: String = t
        .lines()
        .filter_map(|l| l.rsplit('│').nth(1))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    for object in ["backup-2024", "nar/x.sec"] {
        let want = format!(
            "secret key in the cache: {object}; anyone who can read the cache can sign as leaked-cache-1; delete it and rotate the key"
        );
        assert!(pane.contains(&want), "{want} not in:\n{t}");
    }
    assert!(
        pane.contains("named like a narinfo, no store path (remove by hand): 1")
            && pane.contains(misnamed),
        "{t}"
    );
    // Neither is a stray object any more: each is a problem of its own.
    {
        let idx = f.app.idx();
        let p = idx.problems();
        let strays: Vec<&str> = p
            .stray
            .iter()
            .map(|&i| idx.others[i].key.as_str())
            .collect();
        assert!(
            !strays.contains(&"backup-2024") && !strays.contains(&misnamed),
            "{strays:?}"
        );
        assert_eq!(p.misnamed.len(), 1);
        assert_eq!(p.secret_keys.len(), 2);
        assert!(idx.unknown_rows().is_empty(), "a misnamed object is no row");
    }
    let b64 = secret.split_once(':').unwrap().1;
    for piece in b64.as_bytes().chunks(12) {
        assert!(
            !t.contains(std::str::from_utf8(piece).unwrap()),
            "key data shown:\n{t}"
        );
    }
    // gc plans as usual: nothing refused because of it, and it is not in what would go.
    let store = f.cache.store().clone();
    let prepared = plan_past_grace(&store, &f).await;
    assert!(prepared.plan.unknown.is_empty());
    let doomed: Vec<&String> = prepared
        .plan
        .delete
        .nar_keys
        .iter()
        .chain(&prepared.plan.delete.ls_keys)
        .chain(&prepared.plan.delete.extra_keys)
        .collect();
    assert!(!doomed.iter().any(|k| *k == misnamed), "{doomed:?}");
}
