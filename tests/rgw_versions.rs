//! The versioning calls of the S3 backend against a real Ceph RADOS Gateway: what a plain delete
//! does on a versioned bucket (a delete marker, bytes kept), what the version listing shows, and
//! that deleting exact versions frees the bytes (as `radosgw-admin bucket stats` counts them).

use crate::common::Rgw;
use narscope::storage::{PutOptions, VersionRef, Versioning};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_listed_hidden_and_freed_on_rgw() {
    let Some(rgw) = Rgw::try_shared() else {
        return;
    };
    let plain = rgw.fresh_bucket().await;
    let store = rgw.open(&rgw.url(&plain, "")).await;
    assert_eq!(store.versioning().await.unwrap(), Versioning::Unversioned);

    let bucket = rgw.versioned_bucket().await;
    let store = rgw.open(&rgw.url(&bucket, "cache")).await;
    assert_eq!(store.versioning().await.unwrap(), Versioning::Enabled);

    let body = bytes::Bytes::from(vec![7u8; 100_000]);
    let opts = PutOptions::default();
    store.put("nar/a.nar", body.clone(), &opts).await.unwrap();
    store.put("nar/a.nar", body.clone(), &opts).await.unwrap();
    store.put("nar/b.nar", body.clone(), &opts).await.unwrap();
    let (stored_before, _) = rgw.stored(&bucket);
    assert_eq!(stored_before, 300_000, "three versions of 100 kB each");

    let report = store.delete_many(&["nar/a.nar".to_string()]).await.unwrap();
    assert_eq!(report.deleted, vec!["nar/a.nar".to_string()]);
    assert_eq!(report.markers.len(), 1, "{report:?}");
    assert!(store.head("nar/a.nar").await.unwrap().is_none());
    assert_eq!(
        rgw.stored(&bucket).0,
        stored_before,
        "a delete marker frees nothing"
    );

    // The listing: a's marker (current) and two noncurrent versions, b current.
    let page = store.list_versions_page("nar/", None).await.unwrap();
    assert!(page.next.is_none());
    let a: Vec<_> = page
        .versions
        .iter()
        .filter(|v| v.key == "nar/a.nar")
        .collect();
    assert_eq!(a.len(), 3, "{page:?}");
    assert!(a[0].delete_marker && a[0].is_latest, "{a:?}");
    assert_eq!(a[0].version_id, report.markers[0].version_id);
    assert!(
        a[1..]
            .iter()
            .all(|v| !v.delete_marker && !v.is_latest && v.size == 100_000)
    );
    let b: Vec<_> = page
        .versions
        .iter()
        .filter(|v| v.key == "nar/b.nar")
        .collect();
    assert!(b.len() == 1 && b[0].is_latest && !b[0].delete_marker);

    // Removing the marker makes the newest hidden version current again.
    let restore = store
        .delete_versions(&[report.markers[0].clone()])
        .await
        .unwrap();
    assert!(restore.failed.is_empty(), "{restore:?}");
    assert_eq!(
        store.head("nar/a.nar").await.unwrap().unwrap().size,
        100_000
    );

    // Deleting exact versions frees their bytes.
    let exact: Vec<VersionRef> = a[1..]
        .iter()
        .map(|v| VersionRef {
            key: v.key.clone(),
            version_id: v.version_id.clone(),
        })
        .collect();
    let freed = store.delete_versions(&exact).await.unwrap();
    assert!(freed.failed.is_empty(), "{freed:?}");
    assert_eq!(rgw.stored(&bucket).0, 100_000, "only b is left");
    assert!(store.head("nar/a.nar").await.unwrap().is_none());
}
