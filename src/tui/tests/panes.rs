//! Each pane and overlay drawn (snapshots), colours where they carry meaning, and what an empty cache or a running scan says.

use super::*;

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
        let pos = f.app.list.view.position(id).unwrap();
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
    let (s, _, _) = badge(&t, &mono.app, mono.app.list.view.position(id).unwrap());
    assert_eq!(s, "✗");
}

#[tokio::test]
async fn an_empty_cache_and_a_running_scan_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    let opened = open_index("file:///srv/empty", false);
    let mut app = App::new(
        opened.index.clone(),
        AppOptions::new(
            "file:///srv/empty",
            Keymap::default_map(),
            Theme::default_theme(false),
        ),
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
    assert!(app.scan.running);
    let t = text(&app, 120, 24);
    assert!(
        t.contains("scanning: 1,234 listed, 200/1,234 fetched"),
        "{t}"
    );
    assert!(t.contains("loading…"), "{t}");
    h.cancel.cancel();
    app.update(Msg::ScanFinished(Err(
        crate::index::scan::ScanError::Store(crate::storage::StoreError::new(
            crate::storage::StoreErrorKind::NoSuchBucket,
            "s3://b",
            "list",
            "the bucket does not exist",
        )),
    )));
    assert_eq!(app.notice.as_ref().unwrap().level, Level::Error);
    let t = text(&app, 80, 24);
    assert!(
        t.contains("scan failed: list at s3://b: the bucket does not exist"),
        "{t}"
    );
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

#[tokio::test]
async fn help_scrolls_within_its_lines_and_back_at_once() {
    let mut f = fixture().await;
    f.key('?').await;
    let bottom = scrolls_to_its_end_and_back(&mut f).await;
    assert!(
        bottom.contains("Log file:"),
        "the last line shows: {bottom}"
    );
}

/// Scroll down far past the end and back up, drawing after each key as the runtime does;
/// one step up from the end must move the text at once, and the way back ends at the top.
/// The screen at the end.
async fn scrolls_to_its_end_and_back(f: &mut Fixture) -> String {
    let top = text(&f.app, 80, 24);
    for _ in 0..500 {
        f.key('j').await;
        text(&f.app, 80, 24);
    }
    let bottom = text(&f.app, 80, 24);
    assert_ne!(bottom, top, "the view is longer than its window at 80x24");
    f.key('k').await;
    let up = text(&f.app, 80, 24);
    assert_ne!(up, bottom, "one step up moves the text at once");
    for _ in 0..500 {
        f.key('k').await;
    }
    assert_eq!(text(&f.app, 80, 24), top);
    bottom
}

/// The overview pane (and the signatures pane, by the same `Scroll`) scrolls only as far as
/// its last line, and one step back up moves the text at once.
#[tokio::test]
async fn overview_scrolls_within_its_lines_and_back_at_once() {
    let mut f = fixture().await;
    f.key('4').await;
    scrolls_to_its_end_and_back(&mut f).await;
}

/// The bucket's versions: a badge in the header when it keeps them (none when it does not),
/// and a "Versions" block in the overview with the noncurrent versions and delete markers by
/// kind and what frees them; while listing, the running figures; an unknown state is said so.
#[tokio::test]
async fn the_header_and_overview_show_a_versioned_bucket() {
    use crate::storage::{
        ByKind, CountBytes, StoreError, StoreErrorKind, VersionStats, Versioning,
    };
    use crate::tui::msg::VersionsUpdate;
    let mut f = fixture().await;
    f.load_selected().await;
    f.key('4').await;
    let header = |f: &Fixture| text(&f.app, 160, 48).lines().next().unwrap().to_string();
    // Not learnt yet, then unversioned: no badge, and the overview says deletes are final.
    assert!(!header(&f).contains("version"), "{}", header(&f));
    f.app.update(Msg::Versions(VersionsUpdate::State(Ok(
        Versioning::Unversioned,
    ))));
    assert!(!header(&f).contains("version"), "{}", header(&f));
    assert!(text(&f.app, 160, 48).contains("unversioned: deletes are final"));

    f.app.update(Msg::Versions(VersionsUpdate::State(Ok(
        Versioning::Enabled,
    ))));
    let t = text(&f.app, 160, 48);
    assert!(header(&f).contains("│ versioned"), "{t}");
    assert!(t.contains("listing versions…"), "{t}");
    let stats = VersionStats {
        current: CountBytes {
            count: 40,
            bytes: 3_000_000,
        },
        noncurrent: ByKind {
            narinfo: CountBytes {
                count: 12,
                bytes: 9_800,
            },
            nar: CountBytes {
                count: 3,
                bytes: 2_500_000,
            },
            listing: CountBytes::default(),
            other: CountBytes { count: 1, bytes: 7 },
        },
        delete_markers: ByKind {
            narinfo: 3,
            nar: 3,
            listing: 0,
            other: 0,
        },
    };
    f.app.update(Msg::Versions(VersionsUpdate::Listing(stats)));
    assert!(text(&f.app, 160, 48).contains("(listing…)"));
    f.app
        .update(Msg::Versions(VersionsUpdate::Listed(Ok(stats))));
    snap("overview_versioned_160x48", &f.app, 160, 48);
    // The badge keeps its colour: a bucket that keeps versions is worth a warning.
    let t = render(&f.app, 160, 48);
    let line = text(&f.app, 160, 48);
    let col = line.lines().next().unwrap().find("versioned").unwrap();
    let x = line.lines().next().unwrap()[..col].chars().count() as u16;
    assert_eq!(
        t.backend().buffer()[(x, 0)].fg,
        f.app.theme.status_warn.fg.unwrap()
    );

    let denied = StoreError::new(
        StoreErrorKind::AccessDenied,
        "s3://bkt",
        "get versioning",
        "Access Denied",
    );
    f.app
        .update(Msg::Versions(VersionsUpdate::State(Err(denied))));
    let t = text(&f.app, 160, 48);
    assert!(header(&f).contains("versioning unknown"), "{t}");
    assert!(
        t.contains("versioning unknown (") && t.contains("Access Denied"),
        "{t}"
    );
}
