//! Unit tests of the plan (pure, on hand-made indexes) and of reading the extra
//! listings from a file:// store.

use std::time::Duration;

use super::collect::DEBUGINFO_READS;
use super::*;
use crate::index::testdata::info;
use crate::index::{Index, NarObject, OtherObject, RowId};
use crate::nix::{NarInfo, TrustedKeys};

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn opts() -> GcOptions {
    GcOptions {
        grace: DEFAULT_GRACE,
        keep_younger: None,
        now: std::time::UNIX_EPOCH + Duration::from_secs(NOW as u64),
        upstream: Default::default(),
        retention: Default::default(),
    }
}

/// lib ← app ← (pinned); tool → lib (unpinned); old orphan NAR; young orphan NAR; a
/// shared NAR between `tool` and a kept path.
fn cache() -> (Index, Vec<NarInfo>) {
    let lib = info("lib", "lib-1", &[]);
    let app = info("app", "app-1", &[&lib]);
    let tool = info("tool", "tool-1", &[&lib]);
    let mut twin = info("twin", "twin-1", &[]);
    twin.url = tool.url.clone();
    let extra = info("extra", "extra-1", &[]);
    let all = vec![lib, app, tool, twin, extra];
    let mut idx = Index::from_narinfos("file:///c", &TrustedKeys::new(), all.iter());
    for r in idx.rows_mut() {
        r.mtime = NOW - 30 * DAY;
    }
    let mut nars: Vec<NarObject> = all
        .iter()
        .map(|i| NarObject {
            key: i.url.clone(),
            size: 1000,
            mtime: NOW - 30 * DAY,
        })
        .collect();
    nars.push(NarObject {
        key: "nar/old-orphan.nar.xz".into(),
        size: 5,
        mtime: NOW - 30 * DAY,
    });
    nars.push(NarObject {
        key: "nar/young-orphan.nar.xz".into(),
        size: 7,
        mtime: NOW - 60,
    });
    idx.set_nars(nars);
    idx.others = vec![
        OtherObject {
            key: "0000000000000000000000000000000a.ls".into(),
            size: 3,
            mtime: NOW - 30 * DAY,
        },
        OtherObject {
            key: "x.narinfo.tmp.123.4".into(),
            size: 2,
            mtime: NOW - 30 * DAY,
        },
        OtherObject {
            key: "README".into(),
            size: 2,
            mtime: NOW - 30 * DAY,
        },
    ];
    (idx, all)
}

fn names(idx: &Index, rows: &[RowId]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|&r| idx.name(r).to_string()).collect();
    v.sort();
    v
}

#[test]
fn marks_the_closure_of_the_roots_and_collects_the_rest() {
    let (idx, all) = cache();
    let roots = vec![
        (
            RootSource::Pin("release".into()),
            all[1].store_path.to_absolute(),
        ),
        (RootSource::File, all[3].store_path.to_absolute()),
        (
            RootSource::File,
            "/nix/store/00000000000000000000000000000000-gone".to_string(),
        ),
    ];
    let p = plan(&idx, &roots, &Extras::default(), &opts());
    assert_eq!(names(&idx, &p.garbage), ["extra-1", "tool-1"]);
    assert_eq!(p.missing_roots.len(), 1);
    // tool's NAR is shared with twin (a root): kept. extra's goes, and the old orphan.
    assert!(!p.delete.nar_keys.contains(&all[2].url));
    assert!(p.delete.nar_keys.contains(&all[4].url));
    assert_eq!(p.orphan_nars, vec!["nar/old-orphan.nar.xz".to_string()]);
    assert_eq!(p.young_orphans, 1, "the young orphan NAR stays");
    let other: Vec<&str> = p.other.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(other.contains(&"0000000000000000000000000000000a.ls"));
    assert!(other.contains(&"x.narinfo.tmp.123.4"));
    assert!(
        !other.contains(&"README"),
        "unknown files are never deleted"
    );
    let lib = idx.find(all[0].store_path.hash_part()).unwrap();
    let why = p.why(&idx, lib);
    assert!(
        why.contains("pin 'release'") && why.contains("app-1") && why.contains("lib-1"),
        "{why}"
    );
    let tool = idx.find(all[2].store_path.hash_part()).unwrap();
    assert!(p.why(&idx, tool).starts_with("garbage"));
    assert_eq!(p.kept, 3);
    assert!(p.delete.is_safe());
}

#[test]
fn young_paths_are_roots_and_retention_keeps_recent_closures() {
    let (mut idx, all) = cache();
    let tool = idx.find(all[2].store_path.hash_part()).unwrap();
    idx.rows_mut()[tool as usize].mtime = NOW - 3600; // pushed an hour ago
    let p = plan(&idx, &[], &Extras::default(), &opts());
    assert!(!p.garbage.contains(&tool));
    let lib = idx.find(all[0].store_path.hash_part()).unwrap();
    assert!(!p.garbage.contains(&lib), "a young path's references stay");
    assert!(p.why(&idx, lib).contains("grace"));
    let extra = idx.find(all[4].store_path.hash_part()).unwrap();
    idx.rows_mut()[extra as usize].mtime = NOW - 5 * DAY;
    let mut o = opts();
    o.keep_younger = Some(Duration::from_secs(7 * 86_400));
    let p = plan(&idx, &[], &Extras::default(), &o);
    assert!(!p.garbage.contains(&extra));
    assert!(p.why(&idx, extra).contains("retention"));
    // Unknown ages are never collected.
    idx.rows_mut()[extra as usize].mtime = i64::MIN;
    let p = plan(&idx, &[], &Extras::default(), &opts());
    assert!(!p.garbage.contains(&extra));
    // A young path a root reaches is explained by the root, not by its age.
    idx.rows_mut()[lib as usize].mtime = NOW - 60;
    let pinned = [(
        RootSource::Pin("release".into()),
        all[1].store_path.to_absolute(),
    )];
    let p = plan(&idx, &pinned, &Extras::default(), &opts());
    let why = p.why(&idx, lib);
    assert!(why.starts_with("kept by pin 'release'"), "{why}");
    assert_ne!(p.keep[lib as usize], Keep::Grace);
}

#[test]
fn a_second_plan_can_only_shrink_the_deletion() {
    let (mut idx, all) = cache();
    let first = plan(&idx, &[], &Extras::default(), &opts());
    // Meanwhile a push makes `tool` young.
    let tool = idx.find(all[2].store_path.hash_part()).unwrap();
    idx.rows_mut()[tool as usize].mtime = NOW - 10;
    let second = plan(&idx, &[], &Extras::default(), &opts());
    let both = intersect(&first, second);
    assert!(!both.garbage.contains(&tool));
    assert!(both.delete.rows().all(|r| first.garbage.contains(&r)));
}

/// A listed narinfo of `hash` that could not be read, as the scan records it.
fn unreadable(idx: &mut Index, hash: &str, why: &str) -> RowId {
    use crate::index::{ReadError, RowData, RowStatus, TextRef};
    idx.list_key(hash, 120, NOW - 30 * DAY, 7);
    let id = idx
        .apply(&RowData {
            hash_part: hash.to_string(),
            obj_size: 120,
            mtime: NOW - 30 * DAY,
            etag: 7,
            info: None,
            status: RowStatus::Error,
            text: TextRef::default(),
        })
        .unwrap();
    idx.set_read_error(
        id,
        ReadError {
            malformed: false,
            message: why.to_string(),
        },
    );
    id
}

#[test]
fn an_unreadable_narinfo_is_kept_and_nothing_is_collected() {
    let (mut idx, all) = cache();
    let ghost = unreadable(
        &mut idx,
        "0123456789abcdfghijklmnpqrsvwxy0",
        "GET `0123456789abcdfghijklmnpqrsvwxy0.narinfo`: the connection broke",
    );
    let pinned = [(
        RootSource::Pin("release".into()),
        all[1].store_path.to_absolute(),
    )];
    let p = plan(&idx, &pinned, &Extras::default(), &opts());
    assert_eq!(p.keep[ghost as usize], Keep::Unknown);
    assert!(!p.garbage.contains(&ghost), "never garbage");
    assert_eq!(p.unknown.len(), 1);
    assert_eq!(p.unknown[0].state, "unreadable");
    assert!(p.unknown[0].cause.contains("the connection broke"));
    let why = p.refusal().expect("refused");
    assert!(
        why.starts_with("refusing to collect: 1 narinfo(s)"),
        "{why}"
    );
    assert!(p.why(&idx, ghost).contains("could not be read"));
    // Without it, the same cache collects.
    let (idx, _) = cache();
    assert_eq!(
        plan(&idx, &pinned, &Extras::default(), &opts()).refusal(),
        None
    );
}

#[test]
fn roots_that_name_nothing_in_the_cache_are_no_roots() {
    let (idx, _) = cache();
    let gone = vec![(
        RootSource::Pin("old".into()),
        "/nix/store/00000000000000000000000000000000-gone".to_string(),
    )];
    let p = plan(&idx, &gone, &Extras::default(), &opts());
    let prepared = Prepared {
        roots: gone.clone(),
        extra_roots: Vec::new(),
        pins: Vec::new(),
        extras: Extras::default(),
        opts: opts(),
        plan: p,
        allow_no_roots: false,
    };
    assert!(!prepared.has_roots());
    assert!(
        prepared
            .no_roots_message()
            .contains("none of the 1 root path(s) given is in the cache"),
        "{}",
        prepared.no_roots_message()
    );
}

#[tokio::test]
async fn gather_extras_reads_every_debuginfo_link_in_listing_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::storage::file::FileStore::new(dir.path());
    let put = |key: &str, body: String| {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    };
    // More links than are read at once, so that the reads overlap.
    let n = DEBUGINFO_READS * 2 + 5;
    for i in 0..n {
        put(
            &format!("debuginfo/{i:040x}"),
            format!(r#"{{"archive":"../nar/n{i}.nar.xz","member":"lib/debug/{i}"}}"#),
        );
    }
    put("debuginfo/zz-broken", "not json".into());
    put("log/abc-hello.drv", "a log".into());
    let ex = gather_extras(&store).await.unwrap();
    assert_eq!(ex.logs.len(), 1);
    assert_eq!(ex.logs[0].key, "log/abc-hello.drv");
    assert_eq!(ex.debuginfo.len(), n + 1);
    let mut keys: Vec<&str> = ex.debuginfo.iter().map(|(o, _)| o.key.as_str()).collect();
    let listed = keys.clone();
    keys.sort_unstable();
    assert_eq!(keys, listed, "listing order kept");
    for (o, archive) in &ex.debuginfo {
        match o.key.strip_prefix("debuginfo/").unwrap() {
            "zz-broken" => assert_eq!(archive, &None),
            hex => {
                let i = usize::from_str_radix(hex, 16).unwrap();
                assert_eq!(
                    archive.as_deref(),
                    Some(format!("nar/n{i}.nar.xz").as_str())
                );
            }
        }
    }
}

#[test]
fn pruning_upstream_paths_deletes_only_what_references_alone_keep() {
    let (idx, all) = cache();
    let row = |i: usize| idx.find(all[i].store_path.hash_part()).unwrap();
    let (lib, app, tool) = (row(0), row(1), row(2));
    let roots = vec![(
        RootSource::Pin("release".into()),
        all[1].store_path.to_absolute(),
    )];
    let served: std::collections::HashMap<RowId, usize> =
        [(lib, 0), (app, 0), (tool, 0)].into_iter().collect();
    let mut o = opts();
    o.upstream = std::sync::Arc::new(UpstreamRows {
        served: served.clone(),
        names: vec!["http://up".into()],
        prune: false,
    });
    // Reported, not pruned: the plan is the one without upstreams.
    let p = plan(&idx, &roots, &Extras::default(), &o);
    let plain = plan(&idx, &roots, &Extras::default(), &opts());
    assert_eq!(p.garbage, plain.garbage);
    assert!(p.pruned.is_empty());
    let why = p.why(&idx, lib);
    assert!(
        why.contains("pin 'release'") && why.contains("served by upstream http://up"),
        "{why}"
    );
    // Pruned: lib (kept only as app's reference) goes; app, a pinned path, stays.
    o.upstream = std::sync::Arc::new(UpstreamRows {
        served,
        names: vec!["http://up".into()],
        prune: true,
    });
    let p = plan(&idx, &roots, &Extras::default(), &o);
    assert_eq!(p.pruned, vec![lib]);
    assert!(p.garbage.contains(&lib) && p.garbage.contains(&tool));
    assert!(!p.garbage.contains(&app));
    assert!(p.delete.nar_keys.contains(&all[0].url));
    assert!(p.delete.is_safe());
    let why = p.why(&idx, lib);
    assert!(
        why.starts_with("garbage: served by upstream http://up"),
        "{why}"
    );
    // Every narinfo that references lib goes before it.
    let level_of = |r: RowId| p.delete.levels.iter().position(|l| l.contains(&r));
    assert!(level_of(tool) < level_of(lib));
    // A young served path stays (a push may rely on it), as does a root itself.
    let (mut young, _) = cache();
    young.rows_mut()[lib as usize].mtime = NOW - 60;
    let p = plan(&young, &roots, &Extras::default(), &o);
    assert!(!p.garbage.contains(&lib) && p.pruned.is_empty());
}
