//! The upstream column: after a scan the reducer asks for the upstream check, its answers
//! (from a real file:// upstream holding some of the demo's narinfos) mark the rows, the
//! header counts them, and the `upstream:yes` / `upstream:no` filter terms select on them.

use super::*;
use crate::tui::pane::list::query::UpstreamMarks;
use crate::upstream::{Upstream, Upstreams};

const UPSTREAM: &str = "https://upstream.example.org";

/// The fixture with an upstream configured, and the upstream itself: a file:// cache holding
/// the demo's `hello` and `zlib` narinfos (signed by the demo's key), and `ripgrep`'s (signed
/// by a key nobody trusts).
async fn with_upstream() -> (Fixture, Upstreams, tempfile::TempDir) {
    let mut f = fixture().await;
    f.app = App::new(
        f.app.index.clone(),
        AppOptions {
            log_path: Some("/home/op/.cache/narscope/narscope.log".into()),
            upstreams: vec![UPSTREAM.into()],
            ..AppOptions::new(
                "file:///srv/demo-cache",
                Keymap::default_map(),
                Theme::default_theme(false),
            )
        },
    );
    f.app.now = UNIX_EPOCH + Duration::from_secs(NOW);
    f.app.rebuild();
    let up = tempfile::tempdir().unwrap();
    let demo = f._dir.path().join("demo");
    std::fs::copy(
        demo.join("nix-cache-info"),
        up.path().join("nix-cache-info"),
    )
    .unwrap();
    for name in ["hello-2.12.1", "zlib-1.3.1", "ripgrep-14.1.1"] {
        let key = f.app.idx().narinfo_key(f.find(name));
        std::fs::copy(demo.join(&key), up.path().join(&key)).unwrap();
    }
    let url = CacheUrl::file(up.path().to_path_buf());
    let ups = Upstreams::new(vec![Upstream {
        cache: Arc::new(Cache::open(&url).await.unwrap()),
        keys: f.keys.clone(),
    }]);
    (f, ups, up)
}

/// What the runtime does for [`Effect::CheckUpstream`], in one batch.
async fn check(f: &mut Fixture, ups: &Upstreams) {
    let (rows, paths): (Vec<RowId>, Vec<crate::nix::StorePath>) = {
        let idx = f.app.idx();
        idx.live()
            .map(|r| {
                let p = crate::nix::StorePath::from_base_name(&idx.base_name(r)).unwrap();
                (r, p)
            })
            .unzip()
    };
    let answers = ups.check_all(&paths, 4, &|_, _| {}).await;
    let rows = rows
        .into_iter()
        .zip(&answers)
        .map(|(r, a)| (r, a.is_trusted()))
        .collect();
    f.send(Msg::UpstreamChecked { rows, done: true }).await;
}

fn names(f: &Fixture) -> Vec<String> {
    f.app.list.view.rows().iter().map(|&i| f.name(i)).collect()
}

#[tokio::test]
async fn a_scan_starts_the_upstream_check_only_where_an_upstream_is_configured() {
    let mut plain = fixture().await;
    let fx = plain.send(Msg::ScanFinished(Ok(Default::default()))).await;
    assert!(!fx.contains(&Effect::CheckUpstream));
    assert_eq!(plain.app.list.view.upstream.badge(12), None);
    let (mut f, _ups, _dir) = with_upstream().await;
    let fx = f.send(Msg::ScanFinished(Ok(Default::default()))).await;
    assert!(fx.contains(&Effect::CheckUpstream));
    assert!(f.app.list.view.upstream.running);
    assert_eq!(
        f.app.list.view.upstream.badge(12).as_deref(),
        Some("upstream: 0 of 12 served, checking…")
    );
}

#[tokio::test]
async fn answers_mark_rows_and_the_filter_terms_select_on_them() {
    let (mut f, ups, _dir) = with_upstream().await;
    f.app.list.view.upstream.running = true;
    check(&mut f, &ups).await;
    let marks: &UpstreamMarks = &f.app.list.view.upstream;
    assert!(!marks.running);
    // ripgrep's narinfo is there but its signature is not trusted: not served.
    assert_eq!((marks.served, marks.checked), (2, 12));
    assert_eq!(marks.get(f.find("hello-2.12.1")), Some(true));
    assert_eq!(marks.get(f.find("ripgrep-14.1.1")), Some(false));
    assert_eq!(marks.badge(12).as_deref(), Some("upstream: 2 of 12 served"));
    let notice = f.app.notice.as_ref().map(|n| n.text.clone()).unwrap();
    assert!(
        notice.contains("2 of 12") && notice.contains(UPSTREAM),
        "{notice}"
    );
    f.load_selected().await;
    snap("list_upstream_80x24", &f.app, 80, 24);
    snap("list_upstream_160x48", &f.app, 160, 48);
    f.key('/').await;
    f.keys("upstream:yes").await;
    f.code(KeyCode::Enter).await;
    assert_eq!(names(&f), ["hello-2.12.1", "zlib-1.3.1"]);
    f.code(KeyCode::Esc).await;
    f.key('/').await;
    f.keys("upstream:no rip").await;
    assert_eq!(names(&f), ["ripgrep-14.1.1"]);
    f.code(KeyCode::Esc).await;
    f.key('/').await;
    f.keys("upstream:no").await;
    assert_eq!(f.app.list.view.rows().len(), 10);
    // A later answer moves a row between the two (the filter follows).
    let zlib = f.find("zlib-1.3.1");
    f.send(Msg::UpstreamChecked {
        rows: vec![(zlib, false)],
        done: true,
    })
    .await;
    assert_eq!(f.app.list.view.rows().len(), 11);
    assert_eq!(f.app.list.view.upstream.served, 1);
}
