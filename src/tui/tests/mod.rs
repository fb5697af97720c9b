//! Reducer tests on [`App::update`], snapshots of every pane and overlay (insta, on ratatui's
//! `TestBackend`), and exact-buffer checks where colour carries the meaning. The fixture is the
//! real demo cache, scanned through the real file:// backend; this file holds it and the
//! helpers, the tests sit beside it by subject.

mod commands;
mod confirm;
mod copy;
mod doctor;
mod gc;
mod jobs;
mod list;
mod panes;
mod plans;
mod space;
mod upstream;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};

use super::app as ui;
use super::app::{App, AppOptions, Focus, Level};
use super::keymap::Keymap;
use super::msg::{Effect, Msg};
use super::overlay::Overlay;
use super::overlay::confirm::Confirmed;
use super::pane::details::load as detail;
use super::pane::list::query::{SortKey, StatusFilter};
use super::theme::Theme;
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
        AppOptions {
            log_path: Some("/home/op/.cache/narscope/narscope.log".into()),
            ..AppOptions::new(
                "file:///srv/demo-cache",
                Keymap::default_map(),
                Theme::default_theme(no_color),
            )
        },
    );
    app.now = UNIX_EPOCH + Duration::from_secs(NOW);
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
        if let Some(id) = self.app.list.selected {
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
        self.name(self.app.list.selected.unwrap())
    }

    fn find(&self, name: &str) -> RowId {
        let idx = self.app.idx();
        idx.live().find(|&i| idx.name(i) == name).unwrap()
    }

    async fn select(&mut self, name: &str) {
        let focus = self.app.focus;
        self.app.update(Msg::Key(key(KeyCode::Char('1'))));
        let id = self.find(name);
        let pos = self.app.list.view.position(id).unwrap();
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

/// Cells drawn with a foreground or background colour (none under NO_COLOR).
fn coloured_cells(app: &App, w: u16, h: u16) -> usize {
    let t = render(app, w, h);
    let buf = t.backend().buffer();
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let c = &buf[(x, y)];
            !matches!(c.fg, ratatui::style::Color::Reset)
                || !matches!(c.bg, ratatui::style::Color::Reset)
        })
        .count()
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
    insta::with_settings!({filters => filters, prepend_module_to_snapshot => false, snapshot_path => "../snapshots"}, {
        insta::assert_snapshot!(name, t);
    });
}

/// The runtime's grouping of a plan.
fn summary(
    f: &Fixture,
    prepared: crate::gc::Prepared,
    allow_no_roots: bool,
) -> Arc<crate::tui::overlay::gc::summary::GcSummary> {
    Arc::new(crate::tui::overlay::gc::summary::GcSummary::new(
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
    let pins = crate::pins::list_pins(store.as_ref()).await.unwrap();
    crate::gc::prepare(store.as_ref(), &f.app.index, pins, vec![], opts)
        .await
        .unwrap()
}
