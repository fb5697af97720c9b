//! The garbage-collection overlay: the plan grouped, drilled into and confirmed; refusals without roots or with unreadable narinfos; pins.

use super::*;

#[tokio::test]
async fn gc_view_groups_the_plan_drills_in_and_confirms() {
    let mut f = fixture().await;
    // Without a complete scan's NAR listing a plan is not made; here it is complete.
    let fx = f.key('C').await;
    assert_eq!(
        fx,
        vec![Effect::PlanGc(crate::tui::msg::GcRequest::default())],
        "C asks the runtime for a plan with the defaults"
    );
    assert!(f.app.gc.planning);
    assert!(f.key('C').await.is_empty(), "one plan at a time");

    // The runtime's part, done here: pin hello's closure and plan past the grace period.
    let store = f.cache.store().clone();
    let hello = f.find("hello-2.12.1");
    let hello_path = f.app.idx().store_path(hello);
    crate::pins::write_pin(store.as_ref(), "release", std::slice::from_ref(&hello_path))
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
    assert!(!f.app.gc.planning);
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
    let first = f.app.list.selected.unwrap();
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
    // What deleting means on this bucket (its versioning is not learnt in this fixture).
    assert!(
        c.lines
            .iter()
            .any(|l| l.contains("versioning is not known yet")),
        "{:?}",
        c.lines
    );
    let planned = f.app.gc.plan.clone().unwrap().prepared.clone();
    let fx = f.key('y').await;
    assert_eq!(
        fx,
        vec![Effect::Collect(crate::tui::msg::PlanHandle(planned))],
        "confirming hands the plan to the runtime"
    );
    assert!(f.app.gc.plan.is_none(), "a used plan is not reused");
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
        vec![Effect::PlanGc(crate::tui::msg::GcRequest {
            grace: Duration::from_secs(7200),
            keep_younger: Some(Duration::from_secs(30 * 86_400)),
            roots_files: vec![],
            roots_from_nix: false,
            allow_no_roots: true,
            retention: Default::default(),
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
    f.send(Msg::PinDone {
        name: "tools".into(),
        result: Ok(crate::tui::msg::PinChange::Written(1)),
    })
    .await;
    assert!(f.app.gc.plan.is_none(), "a pin change makes the plan stale");
    let mut fx = Vec::new();
    f.app.command("pin rm tools", &mut fx);
    assert!(fx.is_empty());
    assert_eq!(f.key('y').await, vec![Effect::PinRemove("tools".into())]);
    let mut fx = Vec::new();
    f.app.command("pins", &mut fx);
    assert_eq!(fx, vec![Effect::ListPins]);
    f.send(Msg::Pins(Ok(vec![crate::pins::Pin {
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

/// The reducer reads the kind of a planning failure: a safety refusal is a warning to act on,
/// a store failure an error, each with the core's own words.
#[tokio::test]
async fn a_refused_plan_warns_and_a_failed_plan_is_an_error() {
    let mut f = fixture().await;
    f.key('C').await;
    f.send(Msg::GcPlanned(Err(crate::gc::GcError::Refused(
        "no roots: pin something first".into(),
    ))))
    .await;
    let n = f.app.notice.clone().unwrap();
    assert_eq!(n.level, Level::Warn);
    assert_eq!(n.text, "gc refused: no roots: pin something first");
    assert!(!f.app.gc.planning);

    f.key('C').await;
    f.send(Msg::GcPlanned(Err(crate::gc::GcError::Store(
        crate::storage::StoreError::new(
            crate::storage::StoreErrorKind::Credentials,
            "s3://b",
            "list",
            "access denied",
        ),
    ))))
    .await;
    let n = f.app.notice.clone().unwrap();
    assert_eq!(n.level, Level::Error);
    assert_eq!(n.text, "gc plan failed: list at s3://b: access denied");
}

/// `:gc --keep-versions N --max-size SIZE` sets the request's retention; bad values are an
/// error notice and plan nothing.
#[tokio::test]
async fn gc_retention_options_reach_the_request_and_bad_values_are_refused() {
    let mut f = fixture().await;
    let mut fx = Vec::new();
    f.app.command("gc --keep-versions 2 --max-size 1G", &mut fx);
    assert_eq!(
        fx,
        vec![Effect::PlanGc(crate::tui::msg::GcRequest {
            retention: crate::gc::Retention {
                keep_versions: Some(2),
                max_size: Some(1 << 30),
            },
            ..Default::default()
        })]
    );
    assert!(f.app.gc.planning);
    f.app.gc.planning = false;
    for (line, says) in [
        (
            "gc --keep-versions 0",
            "--keep-versions 0 would keep no version",
        ),
        ("gc --keep-versions many", "not 'many'"),
        ("gc --keep-versions", "--keep-versions needs a number"),
        ("gc --max-size huge", "--max-size: 'huge' is not a size"),
        ("gc --max-size 3 parsecs", "unknown option 'parsecs'"),
        ("gc --max-size 0", "give a budget above 0"),
    ] {
        let mut fx = Vec::new();
        f.app.command(line, &mut fx);
        assert!(fx.is_empty(), "{line}: {fx:?}");
        assert!(!f.app.gc.planning, "{line}");
        let n = f.app.notice.clone().unwrap();
        assert_eq!(n.level, Level::Error, "{line}");
        assert!(n.text.contains(says), "{line}: {}", n.text);
        assert!(n.text.contains("[--keep-versions N]"), "{line}: the usage");
    }
}

const RNOW: i64 = 1_800_000_000;
const RDAY: i64 = 86_400;

/// Three packages by hand: openssl in three versions (3.1.0 and 3.2.0 share one NAR object),
/// zlib in two, bash in one; the newest of each (and bash) are roots, so the plan deletes
/// openssl-3.0.1, openssl-3.1.0 and zlib-1.2.13 — what `--keep-versions 1` keeps, too.
fn retention_app(no_color: bool) -> (App, Arc<crate::tui::overlay::gc::summary::GcSummary>) {
    use crate::index::testdata::info;
    use crate::index::{Index, NarObject};
    let ossl_old = info("ossl-a", "openssl-3.0.1", &[]);
    let ossl_mid = info("ossl-b", "openssl-3.1.0", &[]);
    let mut ossl_new = info("ossl-c", "openssl-3.2.0", &[]);
    ossl_new.url = ossl_mid.url.clone();
    let zlib_old = info("zlib-a", "zlib-1.2.13", &[]);
    let zlib_new = info("zlib-b", "zlib-1.3.1", &[]);
    let bash = info("bash-a", "bash-5.2p37", &[]);
    let all = [
        (&ossl_old, 3000, 40),
        (&ossl_mid, 5000, 30),
        (&ossl_new, 5000, 10),
        (&zlib_old, 700, 40),
        (&zlib_new, 800, 10),
        (&bash, 400, 10),
    ];
    let mut idx = Index::from_narinfos(
        "file:///srv/retention",
        &TrustedKeys::new(),
        all.iter().map(|x| x.0),
    );
    let ages: std::collections::HashMap<String, i64> = all
        .iter()
        .map(|(i, _, days)| (i.store_path.hash_part().to_string(), *days))
        .collect();
    for r in idx.live().collect::<Vec<_>>() {
        let days = ages[&idx.hash_part(r)];
        idx.rows_mut()[r as usize].mtime = RNOW - days * RDAY;
    }
    idx.set_nars(
        all.iter()
            .map(|(i, size, days)| NarObject {
                key: i.url.clone(),
                size: *size,
                mtime: RNOW - days * RDAY,
            })
            .collect(),
    );
    let roots: Vec<(crate::gc::RootSource, String)> = [&ossl_new, &zlib_new, &bash]
        .iter()
        .map(|i| (crate::gc::RootSource::File, i.store_path.to_string()))
        .collect();
    let opts = crate::gc::GcOptions {
        now: UNIX_EPOCH + Duration::from_secs(RNOW as u64),
        retention: crate::gc::Retention {
            keep_versions: Some(1),
            max_size: None,
        },
        ..Default::default()
    };
    let plan = crate::gc::plan(&idx, &roots, &Default::default(), &opts);
    let prepared = crate::gc::Prepared {
        roots: roots.clone(),
        extra_roots: roots,
        pins: vec![],
        extras: Default::default(),
        opts,
        plan,
        allow_no_roots: false,
    };
    let summary = Arc::new(crate::tui::overlay::gc::summary::GcSummary::new(
        Arc::new(prepared),
        &idx,
        false,
    ));
    let mut app = App::new(
        Arc::new(std::sync::RwLock::new(idx)),
        AppOptions::new(
            "file:///srv/retention",
            Keymap::default_map(),
            Theme::default_theme(no_color),
        ),
    );
    app.now = UNIX_EPOCH + Duration::from_secs(RNOW as u64);
    app.rebuild();
    (app, summary)
}

fn press(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(key(code)));
}

/// A plan arrives with its effect by package: exact stored bytes before and after, freed
/// bytes and versions per package (a NAR shared by two versions counted once, and not
/// freed while one of them stays), most freed first, then the totals; `tab` shows the
/// table, j/k move in it, and the confirmation repeats the totals and the top packages.
#[test]
fn a_plan_shows_its_effect_by_package_with_exact_numbers() {
    use crate::tui::overlay::gc::Section;
    use crate::tui::overlay::gc::effect::{EffectLine, PackageChange};
    let (mut app, summary) = retention_app(false);
    let mut garbage: Vec<String> = summary
        .prepared
        .plan
        .garbage
        .iter()
        .map(|&r| app.idx().name(r).to_string())
        .collect();
    garbage.sort();
    assert_eq!(garbage, ["openssl-3.0.1", "openssl-3.1.0", "zlib-1.2.13"]);
    app.update(Msg::GcPlanned(Ok(summary)));
    let e = &app.gc.plan.as_ref().unwrap().effect;
    assert_eq!(
        e.changed,
        vec![
            PackageChange {
                name: "openssl".into(),
                before: 3000 + 5000,
                after: 5000,
                versions_before: 3,
                versions_after: 1,
            },
            PackageChange {
                name: "zlib".into(),
                before: 700 + 800,
                after: 800,
                versions_before: 2,
                versions_after: 1,
            },
        ]
    );
    assert_eq!(e.changed[0].freed(), 3000);
    assert_eq!(e.changed[1].freed(), 700);
    assert_eq!((e.unchanged, e.unchanged_bytes), (1, 400));
    assert_eq!((e.before, e.after, e.freed()), (9900, 6200, 3700));
    assert_eq!((e.paths_before, e.paths_after), (6, 3));
    assert_eq!(e.line_count(), 4);
    assert_eq!(e.line(2), Some(EffectLine::Total));
    assert_eq!(e.line(3), Some(EffectLine::Unchanged));
    assert_eq!(e.line(4), None);

    // The header names the policies; tab shows the table, j/k move, tab goes back.
    let t = text(&app, 120, 40);
    assert!(t.contains("policies: keep 1 version · grace 6h"), "{t}");
    assert!(
        t.contains("[Plan]") && t.contains("Effect by package (2 changed)"),
        "{t}"
    );
    press(&mut app, KeyCode::Tab);
    let Overlay::Gc(v) = &app.overlay else {
        panic!("no gc view: {:?}", app.overlay)
    };
    assert_eq!(v.section, Section::Effect);
    let t = text(&app, 120, 40);
    // A row of the table: the cell of the overlay that starts with the name, its words.
    let row = |name: &str| {
        t.lines()
            .flat_map(|l| l.split('│'))
            .find(|cell| cell.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} row in {t}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        row("openssl").starts_with("openssl 7.81 KiB 4.88 KiB −2.93 KiB 3→1"),
        "{}",
        row("openssl")
    );
    assert!(
        row("zlib").starts_with("zlib 1.46 KiB 800 B −700 B 2→1"),
        "{}",
        row("zlib")
    );
    assert!(
        row("total").starts_with("total (shared NARs once) 9.67 KiB 6.05 KiB −3.61 KiB 6→3"),
        "{}",
        row("total")
    );
    assert!(t.contains("1 package(s) unchanged (400 B)"), "{t}");
    assert!(
        t.contains("openssl: 1 of 3 version(s) stay; 2.93 KiB of 7.81 KiB"),
        "{t}"
    );
    let at = |name: &str| {
        t.lines()
            .position(|l| l.split('│').any(|c| c.starts_with(&format!("{name} "))))
            .unwrap()
    };
    assert!(at("openssl") < at("zlib"), "most freed first");
    assert!(at("zlib") < at("total"), "the total after the packages");
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    let t = text(&app, 120, 40);
    assert!(t.contains("the cache's paths before and after"), "{t}");
    press(&mut app, KeyCode::Char('G'));
    press(&mut app, KeyCode::Char('j'));
    let Overlay::Gc(v) = &app.overlay else {
        panic!("no gc view")
    };
    assert_eq!(v.effect.cursor, 3, "the cursor stops at the last line");
    assert_eq!(v.scroll.cursor, 0, "the plan's cursor did not move");
    press(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.overlay, Overlay::Gc(_)),
        "Enter opens nothing here"
    );
    press(&mut app, KeyCode::Tab);
    let Overlay::Gc(v) = &app.overlay else {
        panic!("no gc view")
    };
    assert_eq!(v.section, Section::Plan);

    // The confirmation: the totals and the packages that free most.
    press(&mut app, KeyCode::Char('c'));
    let Overlay::Confirm(c) = &app.overlay else {
        panic!("no confirmation: {:?} {:?}", app.overlay, app.notice)
    };
    let l = &c.lines;
    assert!(l[0].starts_with("delete 3 narinfo(s)"), "{l:?}");
    assert_eq!(l[2], "Effect: stored 9.67 KiB → 6.05 KiB (−3.61 KiB)");
    assert_eq!(l[3], "6 → 3 paths; 2 package(s) change, most freed:");
    assert_eq!(l[4], "    −2.93 KiB        3→1  openssl");
    assert_eq!(l[5], "       −700 B        2→1  zlib");
    assert_eq!(l[6], "");
}

/// The effect table drawn at 80×24 and 160×48, with colours and with NO_COLOR (then no cell
/// has a colour; the text is the same).
#[test]
fn gc_effect_snapshots() {
    for no_color in [false, true] {
        let (mut app, summary) = retention_app(no_color);
        app.update(Msg::GcPlanned(Ok(summary)));
        let suffix = if no_color { "_no_color" } else { "" };
        snap(&format!("gc_retention_plan_80x24{suffix}"), &app, 80, 24);
        press(&mut app, KeyCode::Tab);
        snap(&format!("gc_effect_80x24{suffix}"), &app, 80, 24);
        snap(&format!("gc_effect_160x48{suffix}"), &app, 160, 48);
        let coloured = coloured_cells(&app, 160, 48);
        if no_color {
            assert_eq!(coloured, 0, "NO_COLOR draws no colour");
        } else {
            assert!(coloured > 0, "the theme colours something");
            // The confirmation repeats the effect: the totals and the top packages.
            press(&mut app, KeyCode::Char('c'));
            assert!(matches!(app.overlay, Overlay::Confirm(_)));
            snap("gc_effect_confirm_80x24", &app, 80, 24);
        }
    }
}
