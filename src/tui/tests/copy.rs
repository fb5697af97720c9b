//! `:copy --to DST`: the plan is made off the reducer, shown in a confirmation, and only a
//! confirmed plan starts the copy; a plan naming untrusted paths is refused.

use super::*;
use crate::jobs::copy::{self, CopyOptions, Selection};
use crate::tui::msg::CopyHandle;

#[tokio::test]
async fn copy_to_plans_first_then_asks_then_copies() {
    let mut f = fixture().await;
    f.select("glibc-2.40-66").await;
    let selected = {
        let idx = f.app.idx();
        idx.store_path(f.app.list.selected.unwrap())
    };
    let dst_dir = tempfile::tempdir().unwrap();
    let dst_url = format!("file://{}", dst_dir.path().display());
    let mut fx = Vec::new();
    f.app.command(&format!("copy --to {dst_url}"), &mut fx);
    assert_eq!(
        fx,
        vec![Effect::PlanCopyTo(dst_url.clone(), vec![selected.clone()])]
    );
    assert_eq!(
        f.app.overlay,
        Overlay::None,
        "nothing is asked before the plan"
    );

    // The runtime's part, for real: the plan of the demo cache's closure.
    let dst = Arc::new(
        Cache::open(&CacheUrl::parse(&dst_url).unwrap())
            .await
            .unwrap(),
    );
    let sel = Selection::Paths(vec![selected.clone()]);
    let plan = copy::plan(&f.cache, &dst, &sel, &f.keys, &CopyOptions::default())
        .await
        .unwrap();
    assert!(plan.refused.is_empty());
    let h = CopyHandle(Arc::new((dst.clone(), plan)));
    let fx = f.app.update(Msg::CopyPlanned(Ok(h.clone())));
    assert!(fx.is_empty());
    let Overlay::Confirm(c) = &f.app.overlay else {
        panic!("no confirmation: {:?}", f.app.overlay)
    };
    assert!(!c.yes_selected, "defaults to Cancel");
    assert!(c.lines[1].starts_with("plan: "), "{:?}", c.lines);
    assert!(c.lines[1].contains("0 already there"), "{:?}", c.lines);
    let fx = f.key('y').await;
    assert_eq!(fx, vec![Effect::CopyTo(h)]);
    assert!(
        std::fs::read_dir(dst_dir.path()).unwrap().next().is_none(),
        "the reducer wrote nothing"
    );

    // Nothing trusted: the plan refuses and nothing is asked.
    let sel = Selection::Paths(vec![selected]);
    let plan = copy::plan(
        &f.cache,
        &dst,
        &sel,
        &TrustedKeys::new(),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert!(!plan.refused.is_empty());
    let fx = f
        .app
        .update(Msg::CopyPlanned(Ok(CopyHandle(Arc::new((dst, plan))))));
    assert!(fx.is_empty());
    assert_eq!(f.app.overlay, Overlay::None);
    let n = f.app.notice.clone().unwrap();
    assert!(n.text.contains("refusing to copy"), "{n:?}");
}
