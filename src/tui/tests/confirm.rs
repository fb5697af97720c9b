//! Confirmations of what changes the cache: verify, sign and delete ask first, default to Cancel, and refuse what must not happen.

use super::*;

#[tokio::test]
async fn marks_and_deep_verify_ask_first_defaulting_to_cancel() {
    let mut f = fixture().await;
    f.key(' ').await;
    f.key(' ').await;
    assert_eq!(f.app.list.marks.len(), 2);
    assert_eq!(f.app.list.scroll.cursor, 2, "space marks and moves on");
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
    let marked: Vec<RowId> = f.app.list.marks.iter().copied().collect();
    assert_eq!(fx, vec![Effect::VerifyContents(marked.clone())]);
    f.key('V').await;
    let fx = f.key('y').await;
    assert_eq!(fx, vec![Effect::VerifyContents(marked)]);
    f.key('M').await;
    assert!(f.app.list.marks.is_empty());
    // Without marks, the selected row.
    f.key('V').await;
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!()
    };
    assert_eq!(
        c.then,
        Confirmed::VerifyContents(vec![f.app.list.selected.unwrap()])
    );
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
            f.app
                .update(Msg::Saved(Err(std::io::Error::other("disk full"))));
        }
        let p = crate::tui::app::propose_delete(&f.app.idx(), ids, &[]);
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
    let pins = vec![crate::pins::Pin {
        name: "release".into(),
        paths: vec![f.app.idx().store_path(hello)],
    }];
    let p = crate::tui::app::propose_delete(&f.app.idx(), ids, &pins);
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
