//! The jobs pane and what running jobs change: quitting asks, progress rebuilds the list only when the index changed.

use super::*;

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
    let ids: Vec<RowId> = f.app.list.marks.iter().copied().collect();
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
