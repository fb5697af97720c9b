//! The store-path list: moving, paging, filtering and sorting, keeping the cursor on its row, following references, the mouse.

use super::*;

#[tokio::test]
async fn navigation_keeps_the_cursor_in_bounds_and_pages() {
    let mut f = fixture().await;
    let n = f.app.list.view.rows().len();
    assert_eq!(n, 12);
    assert_eq!(f.app.list.scroll.cursor, 0);
    f.key('k').await;
    assert_eq!(f.app.list.scroll.cursor, 0);
    f.key('G').await;
    assert_eq!(f.app.list.scroll.cursor, n - 1);
    f.key('j').await;
    assert_eq!(f.app.list.scroll.cursor, n - 1);
    f.key('g').await;
    f.app.list.scroll.set_height(5);
    f.code(KeyCode::PageDown).await;
    assert_eq!(f.app.list.scroll.cursor, 5);
    assert_eq!(
        f.app.list.scroll.offset(),
        1,
        "the cursor row stays in the window"
    );
    let fx = f.send(Msg::Key(ctrl('d'))).await;
    assert_eq!(f.app.list.scroll.cursor, 7);
    assert!(fx.contains(&Effect::LoadDetail(f.app.list.selected.unwrap())));
    f.code(KeyCode::PageUp).await;
    assert_eq!(f.app.list.scroll.cursor, 2);
}

#[tokio::test]
async fn filters_sort_and_status_views() {
    let mut f = fixture().await;
    f.key('/').await;
    f.keys("lib").await;
    assert!(f.app.filter_input.is_some());
    let names: Vec<String> = f.app.list.view.rows().iter().map(|&i| f.name(i)).collect();
    assert_eq!(names, ["glibc-2.40-66", "zlib-1.3.1"]);
    f.code(KeyCode::Enter).await;
    assert!(f.app.filter_input.is_none());
    assert_eq!(f.app.list.view.query, "lib");
    f.code(KeyCode::Esc).await;
    assert_eq!(f.app.list.view.rows().len(), 12);
    // Fuzzy: "hlo" finds hello only when fuzzy.
    f.key('/').await;
    f.keys("hlo").await;
    assert_eq!(f.app.list.view.rows().len(), 0);
    f.send(Msg::Key(ctrl('x'))).await;
    assert!(f.app.list.view.fuzzy);
    assert_eq!(f.app.list.view.rows().len(), 1);
    f.code(KeyCode::Esc).await;
    assert!(f.app.list.view.query.is_empty() && f.app.filter_input.is_none());

    f.key('v').await;
    assert_eq!(f.app.list.view.status, StatusFilter::Problems);
    let problems: Vec<String> = f.app.list.view.rows().iter().map(|&i| f.name(i)).collect();
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
    assert_eq!(
        f.app.list.view.status,
        StatusFilter::Only(RowStatus::Unsigned)
    );
    assert_eq!(f.app.list.view.rows().len(), 1);
    assert_eq!(f.selected_name(), "openssl-3.3.2");
    f.key('!').await;
    assert_eq!(f.app.list.view.status, StatusFilter::Problems);
    f.key('!').await;
    assert_eq!(f.app.list.view.status, StatusFilter::All);

    f.key('s').await;
    assert_eq!(f.app.list.view.sort, SortKey::NarSize);
    assert!(f.app.list.view.desc, "sizes sort largest first");
    let sizes: Vec<u64> = {
        let idx = f.app.idx();
        f.app
            .list
            .view
            .rows()
            .iter()
            .map(|&i| idx.row(i).nar_size)
            .collect()
    };
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    f.key('S').await;
    assert!(!f.app.list.view.desc);
}

#[tokio::test]
async fn the_cursor_stays_on_its_key_when_rows_change() {
    let mut f = fixture().await;
    f.select("python3-3.12.8").await;
    let id = f.app.list.selected.unwrap();
    // A filter that keeps it, then one that moves rows above it away.
    f.app.command("filter 3", &mut Vec::new());
    assert_eq!(f.app.list.selected, Some(id));
    assert_eq!(f.app.list.view.rows()[f.app.list.scroll.cursor], id);
    f.app.command("filter", &mut Vec::new());
    assert_eq!(f.app.list.selected, Some(id));
    // The index changes under the view (a new generation): still on python.
    f.app.index.write().unwrap().generation += 1;
    f.send(Msg::IndexChanged).await;
    assert_eq!(f.app.list.selected, Some(id));
    // Sorting moves the row, not the cursor's target.
    f.key('s').await;
    assert_eq!(f.app.list.selected, Some(id));
    assert_eq!(f.app.list.view.rows()[f.app.list.scroll.cursor], id);
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
    assert_eq!(f.app.details.loaded.as_ref().unwrap().id, glibc);
    assert!(f.app.details.loaded.as_ref().unwrap().referrers.len() >= 5);
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
    assert!(f.app.list.view.query.is_empty());
}

#[tokio::test]
async fn stale_details_are_ignored_and_mouse_works() {
    let mut f = fixture().await;
    f.load_selected().await;
    let first = f.app.list.selected.unwrap();
    let other = f.find("zlib-1.3.1");
    let d = detail::load(f.cache.clone(), f.app.index.clone(), f.keys.clone(), other).await;
    f.app.update(Msg::DetailLoaded(Box::new(d)));
    assert_eq!(
        f.app.details.loaded.as_ref().unwrap().id,
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
    assert_eq!(f.app.list.scroll.cursor, 3);
    let scroll = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: a.list.x + 5,
        row: a.list_rows_top + 3,
        modifiers: KeyModifiers::NONE,
    };
    f.send(Msg::Mouse(scroll)).await;
    assert_eq!(f.app.list.scroll.cursor, 6);
    let on_details = MouseEvent {
        column: a.details.x + 2,
        row: a.details.y + 2,
        ..click
    };
    f.send(Msg::Mouse(on_details)).await;
    assert_eq!(f.app.focus, Focus::Details);
}
