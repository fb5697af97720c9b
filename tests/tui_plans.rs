//! The dashboard's past plans, on a real Ceph RADOS Gateway with versioning: what the plans
//! overlay reads (`read_plans`: the versioning and the records a gc wrote), and the bodies of
//! the restore and purge jobs it starts (`restore_job`, `purge_job`): a restore brings the
//! hidden narinfos back and counts them, a purge deletes the hidden versions and the record.

use crate::common;

use std::sync::Arc;

use common::Rgw;
use common::cmd::{narscope, ok};
use common::nix::{nix_chain, skip_nix};
use narscope::cache::Cache;
use narscope::jobs::{JobEvent, JobHandle, JobKind, JobNotify, JobState, Runner};
use narscope::nix::{SecretKey, StorePath};
use narscope::storage::{CacheUrl, Store, Versioning};
use narscope::tui::overlay::plans::{purge_job, read_plans, restore_job};
use narscope::versioned::RecordState;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs a job body as the dashboard's runner does and waits for its end.
async fn run_job<F, Fut>(title: String, work: F) -> Arc<JobHandle>
where
    F: FnOnce(Arc<JobHandle>, JobNotify) -> Fut,
    Fut: std::future::Future<Output = Result<(), narscope::jobs::JobError>> + Send + 'static,
{
    let runner = Runner::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let notify: JobNotify = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let h = runner.spawn(JobKind::Gc, title, notify, work);
    while let Some(e) = rx.recv().await {
        if matches!(e, JobEvent::Finished(..)) {
            break;
        }
    }
    h
}

#[test]
fn plans_overlay_reads_restores_and_purges_on_rgw() {
    if skip_nix() {
        return;
    }
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let bucket = rt().block_on(rgw.versioned_bucket());
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let key = SecretKey::generate(&format!("pl-{}", common::random_hex(3))).unwrap();
    let key_file = tmp.path().join("k.sec");
    std::fs::write(&key_file, key.to_file_text()).unwrap();
    let url = rgw.url(&bucket, "c");
    let store: Arc<dyn Store> = rt().block_on(rgw.open(&url));
    let cache = Cache::from_store(CacheUrl::parse(&url).unwrap(), store.clone());
    let ns = |args: &[&str]| {
        let mut c = narscope(args, &state);
        c.envs(rgw.env());
        ok(c)
    };
    let tag = common::random_hex(4);
    let a = nix_chain(tmp.path(), &format!("pl{tag}"), 2, 32);
    ns(&[
        "push",
        &url,
        &a[1],
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    let narinfo = |p: &str| StorePath::parse_any(p).unwrap().narinfo_key();
    let gc = || {
        let out = ns(&[
            "gc",
            &url,
            "--grace",
            "0s",
            "--allow-no-roots",
            "--yes",
            "--json",
        ]);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        doc["summary"]["plan"].as_str().unwrap().to_string()
    };
    let plan1 = gc();

    // What the overlay lists.
    let list = rt().block_on(read_plans(&cache)).unwrap();
    assert_eq!(list.versioning, Ok(Versioning::Enabled));
    assert_eq!(list.plans.len(), 1, "{list:?}");
    let row = &list.plans[0];
    assert_eq!(row.id, plan1);
    assert_eq!(
        (row.command.as_str(), row.state),
        ("gc", RecordState::Hidden)
    );
    assert!(
        row.objects >= 4 && row.bytes > 0 && row.hidden_bytes == row.bytes,
        "{row:?}"
    );
    for p in &a {
        assert!(rt().block_on(store.head(&narinfo(p))).unwrap().is_none());
    }

    // Enter → restore job: the narinfos are back, counted, the last line says so.
    let (st, id) = (store.clone(), plan1.clone());
    let h = rt().block_on(run_job(format!("restore plan {plan1}"), move |job, _| {
        restore_job(st, id, job)
    }));
    assert_eq!(h.state(), JobState::Done, "{:?}", h.progress.errors());
    let p = &h.progress;
    let done = p.done.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(done, row.objects);
    assert_eq!(p.failed.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert!(p.current().starts_with("restored "), "{}", p.current());
    for q in &a {
        assert!(
            rt().block_on(store.head(&narinfo(q))).unwrap().is_some(),
            "{q} restored"
        );
    }
    let list = rt().block_on(read_plans(&cache)).unwrap();
    assert_eq!(list.plans[0].state, RecordState::Restored, "{list:?}");

    // gc again, then p → purge job: the hidden versions and the plan's record go.
    let plan2 = gc();
    let (st, id) = (store.clone(), plan2.clone());
    let h = rt().block_on(run_job(format!("purge plan {plan2}"), move |job, _| {
        purge_job(st, id, job)
    }));
    assert_eq!(h.state(), JobState::Done, "{:?}", h.progress.errors());
    assert!(
        h.progress.current().contains("no longer stored"),
        "{}",
        h.progress.current()
    );
    let list = rt().block_on(read_plans(&cache)).unwrap();
    let ids: Vec<&str> = list.plans.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![plan1.as_str()],
        "the purged plan's record is gone"
    );
    for q in &a {
        let versions = rt()
            .block_on(narscope::versioned::versions_of(
                store.as_ref(),
                &narinfo(q),
            ))
            .unwrap();
        assert!(
            versions.iter().all(|v| v.delete_marker),
            "{q}: only markers left (or nothing): {versions:?}"
        );
    }
}
