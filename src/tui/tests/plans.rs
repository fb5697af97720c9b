//! The past plans overlay: opened by its key or `:plans`, the records read (as the runtime
//! does) from the real demo cache, Enter → restore confirmation → restore effect, the purge
//! key → purge confirmation (cannot be undone, bytes freed) → purge effect; an empty list
//! says why on a cache that does not keep versions. And the delete confirmation says what
//! deleting means on this bucket.

use super::*;
use crate::storage::Versioning;
use crate::tui::msg::VersionsUpdate;
use crate::tui::overlay::plans::{PlansView, read_plans};
use crate::versioned::{ObjectKind, PlanRecord, RecordObject, RecordState};

/// Stores a plan record in the fixture's cache, an hour old.
async fn store_record(f: &Fixture) -> String {
    let objects = vec![
        RecordObject {
            key: "nar/aaaa.nar.xz".into(),
            kind: ObjectKind::Nar,
            size: 3 * 1024 * 1024,
            version: Some("v1".into()),
            marker: Some("m1".into()),
            level: None,
            restored: false,
        },
        RecordObject {
            key: "aaaa.narinfo".into(),
            kind: ObjectKind::Narinfo,
            size: 1024,
            version: Some("v2".into()),
            marker: Some("m2".into()),
            level: Some(0),
            restored: false,
        },
    ];
    let mut r = PlanRecord::new("delete", "s3://demo", objects);
    r.id = "20250615T140000Z-0000abcd".into();
    r.created_unix = NOW - 3600;
    r.state = RecordState::Hidden;
    r.save(f.cache.store().as_ref()).await.unwrap();
    r.id
}

#[tokio::test]
async fn plans_overlay_lists_and_asks_before_restore_and_purge() {
    let mut f = fixture().await;
    let id = store_record(&f).await;
    let fx = f.key('P').await;
    assert_eq!(fx, vec![Effect::ListPlans]);
    let Overlay::Plans(v) = &f.app.overlay else {
        panic!("the plans overlay is open: {:?}", f.app.overlay);
    };
    assert!(v.list.is_none());
    assert!(text(&f.app, 80, 24).contains("reading the stored plans"));
    // An answer after the overlay closed is dropped.
    f.code(KeyCode::Esc).await;
    assert_eq!(f.app.overlay, Overlay::None);
    let list = read_plans(&f.cache).await;
    f.send(Msg::Plans(list.clone())).await;
    assert_eq!(f.app.overlay, Overlay::None);

    let mut fx = Vec::new();
    f.app.command("plans", &mut fx);
    assert_eq!(fx, vec![Effect::ListPlans]);
    f.send(Msg::Plans(list.clone())).await;
    let Overlay::Plans(v) = &f.app.overlay else {
        panic!("the plans overlay is open");
    };
    assert_eq!(v.rows().len(), 1);
    let t = text(&f.app, 80, 24);
    assert!(
        t.contains(&id) && t.contains("delete") && t.contains("hidden") && t.contains("1h"),
        "{t}"
    );
    assert!(t.contains("3.00 MiB"), "{t}");
    snap("plans_80x24", &f.app, 80, 24);

    // Enter: a restore confirmation (not destructive, on Cancel), then the restore job.
    f.code(KeyCode::Enter).await;
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!("a confirmation: {:?}", f.app.overlay);
    };
    assert!(!c.destructive && !c.yes_selected);
    assert_eq!(c.then, Confirmed::RestorePlan(id.clone()));
    assert!(c.lines[0].contains(&id), "{:?}", c.lines);
    let fx = f.key('y').await;
    assert_eq!(fx, vec![Effect::RestorePlan(id.clone())]);
    assert_eq!(f.app.overlay, Overlay::None);

    // The purge key: a destructive confirmation naming the bytes freed, then the purge job.
    f.key('P').await;
    f.send(Msg::Plans(list)).await;
    f.key('p').await;
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!("a confirmation: {:?}", f.app.overlay);
    };
    assert!(c.destructive && !c.yes_selected);
    assert_eq!(c.then, Confirmed::PurgePlan(id.clone()));
    let all = c.lines.join("\n");
    assert!(
        all.contains("cannot be undone") && all.contains("frees up to 3.00 MiB"),
        "{all}"
    );
    // Cancel starts nothing.
    let fx = f.key('n').await;
    assert!(fx.is_empty(), "{fx:?}");
    f.key('P').await;
    f.send(Msg::Plans(read_plans(&f.cache).await)).await;
    f.key('p').await;
    let fx = f.key('y').await;
    assert_eq!(fx, vec![Effect::PurgePlan(id)]);

    // Read-only: neither asks; the overlay stays and says why.
    f.app.read_only = true;
    f.key('P').await;
    f.send(Msg::Plans(read_plans(&f.cache).await)).await;
    for fx in [f.code(KeyCode::Enter).await, f.key('p').await] {
        assert!(fx.is_empty(), "{fx:?}");
        assert!(
            matches!(f.app.overlay, Overlay::Plans(_)),
            "{:?}",
            f.app.overlay
        );
        let n = f.app.notice.clone().unwrap();
        assert!(n.text.contains("read-only"), "{n:?}");
    }
}

#[tokio::test]
async fn no_plans_on_a_cache_that_does_not_keep_versions_says_why() {
    let mut f = fixture().await;
    f.key('P').await;
    let list = read_plans(&f.cache).await;
    assert!(
        matches!(&list, Ok(l) if l.plans.is_empty() && l.versioning == Ok(Versioning::Unversioned)),
        "{list:?}"
    );
    f.send(Msg::Plans(list)).await;
    let t = text(&f.app, 80, 24);
    assert!(
        t.contains("no stored plans") && t.contains("deletion is final"),
        "{t}"
    );
    // Enter and the purge key do nothing without plans.
    f.code(KeyCode::Enter).await;
    f.key('p').await;
    assert!(matches!(f.app.overlay, Overlay::Plans(PlansView { .. })));
}

#[tokio::test]
async fn delete_confirmation_says_what_deleting_means_on_this_bucket() {
    let mut f = fixture().await;
    f.send(Msg::Versions(VersionsUpdate::State(Ok(
        Versioning::Enabled,
    ))))
    .await;
    f.select("glibc-2.40-66").await;
    f.key('D').await;
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!("no plan shown: {:?}", f.app.overlay)
    };
    let all = c.lines.join(" ");
    assert!(
        all.contains("behind delete markers")
            && all.contains("frees no space")
            && all.contains("gc restore")
            && all.contains(":plans"),
        "{all}"
    );
    f.key('n').await;

    f.send(Msg::Versions(VersionsUpdate::State(Ok(
        Versioning::Unversioned,
    ))))
    .await;
    f.key('D').await;
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!("no plan shown: {:?}", f.app.overlay)
    };
    let all = c.lines.join(" ");
    assert!(all.contains("Deletion is final."), "{all}");
    assert!(!all.contains(":plans"), "{all}");
}

#[tokio::test]
async fn a_finished_restore_job_refreshes_the_index() {
    let mut f = fixture().await;
    let id = store_record(&f).await;
    let runner = crate::jobs::Runner::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let notify: crate::jobs::JobNotify = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let store = f.cache.store().clone();
    let rid = id.clone();
    let h = runner.spawn(
        crate::jobs::JobKind::Gc,
        format!("{} {id}", crate::tui::msg::PLAN_RESTORE_TITLE),
        notify,
        move |job, _n| crate::tui::overlay::plans::restore_job(store, rid, job),
    );
    f.app.update(Msg::JobStarted(h.clone()));
    let fx = loop {
        let e = rx.recv().await.unwrap();
        let done = matches!(e, crate::jobs::JobEvent::Finished(..));
        let fx = f.send(Msg::Job(e)).await;
        if done {
            break fx;
        }
    };
    assert!(fx.contains(&Effect::Scan), "{fx:?}");
    // file:// keeps no versions: the restore fails, naming the object and why.
    let n = f.app.notice.clone().unwrap();
    assert!(n.text.contains(&format!("job #{}", h.id)), "{n:?}");
    assert_eq!(n.level, Level::Error);
    assert!(
        matches!(h.state(), crate::jobs::JobState::Failed(e) if e.contains("list versions")),
        "{:?}",
        h.state()
    );
}
