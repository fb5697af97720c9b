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
