//! The `:` command line driven through the reducer (its grammar is tested in `app/command.rs`).

use super::*;

#[tokio::test]
async fn quit_copy_refresh_and_commands() {
    let mut f = fixture().await;
    let fx = f.key('y').await;
    let p = f.app.idx().store_path(f.app.list.selected.unwrap());
    assert_eq!(fx, vec![Effect::Copy(p)]);
    assert_eq!(f.key('R').await, vec![Effect::Scan]);
    f.app.scan.running = true;
    assert!(f.key('R').await.is_empty(), "one scan at a time");
    f.app.scan.running = false;

    let mut fx = Vec::new();
    f.app.command("sort age desc", &mut fx);
    assert_eq!(
        (f.app.list.view.sort, f.app.list.view.desc),
        (SortKey::Age, true)
    );
    f.app.command("only untrusted", &mut fx);
    assert_eq!(f.app.list.view.rows().len(), 1);
    f.app.command("all", &mut fx);
    let hash = {
        let idx = f.app.idx();
        idx.hash_part(f.find("jq-1.7.1"))
    };
    f.app.command(&format!("goto {hash}"), &mut fx);
    assert_eq!(f.selected_name(), "jq-1.7.1");
    f.app.command(
        "goto /nix/store/00000000000000000000000000000000-nope",
        &mut fx,
    );
    assert_eq!(f.app.notice.as_ref().unwrap().level, Level::Error);
    f.app.command("frobnicate", &mut fx);
    assert!(
        f.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("unknown command")
    );
    f.app.command("sort sideways", &mut fx);
    assert!(f.app.notice.as_ref().unwrap().text.contains("usage"));

    // The command line itself: typed, then Enter.
    f.key(':').await;
    f.keys("only unsigned").await;
    f.code(KeyCode::Enter).await;
    assert_eq!(
        f.app.list.view.status,
        StatusFilter::Only(RowStatus::Unsigned)
    );
    assert_eq!(f.app.overlay, Overlay::None);

    // Quitting with a job running asks first.
    let runner = crate::jobs::Runner::new();
    let h = runner.spawn(
        crate::jobs::JobKind::VerifyContents,
        "slow",
        Arc::new(|_| {}),
        |_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        },
    );
    f.app.update(Msg::JobStarted(h.clone()));
    assert!(f.key('q').await.is_empty());
    assert!(matches!(f.app.overlay, Overlay::Confirm(_)));
    assert!(f.key('n').await.is_empty());
    assert!(!f.app.quit);
    f.key('x').await;
    f.key('q').await;
    assert_eq!(f.key('y').await, vec![Effect::Quit]);
    assert!(f.app.quit);
    h.cancel.cancel();
}
