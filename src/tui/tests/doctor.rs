//! The bucket doctor's overlay: opened by its key or `:doctor`, the checks asked of the runtime,
//! the findings of the real demo cache drawn (worst first), closed with the help keys.

use super::*;
use crate::tui::overlay::doctor::DoctorView;

#[tokio::test]
async fn doctor_overlay_runs_off_the_ui_thread_and_shows_findings() {
    let mut f = fixture().await;
    let fx = f.key('B').await;
    assert_eq!(fx, vec![Effect::Doctor]);
    assert_eq!(f.app.overlay, Overlay::Doctor(DoctorView::default()));
    assert!(text(&f.app, 80, 24).contains("checking the bucket"));
    f.code(KeyCode::Esc).await;
    assert_eq!(f.app.overlay, Overlay::None);
    // An answer after the overlay closed is dropped.
    let opts = crate::doctor::DoctorOptions {
        no_write_probe: true,
        concurrency: 4,
        ..Default::default()
    };
    let report = Arc::new(crate::doctor::diagnose(&f.cache, &opts).await);
    f.send(Msg::Doctor(report.clone())).await;
    assert_eq!(f.app.overlay, Overlay::None);

    let mut fx = Vec::new();
    f.app.command("doctor", &mut fx);
    assert_eq!(fx, vec![Effect::Doctor]);
    f.send(Msg::Doctor(report)).await;
    let Overlay::Doctor(v) = &f.app.overlay else {
        panic!("the doctor overlay is open");
    };
    assert!(v.report.is_some());
    let t = text(&f.app, 80, 24);
    assert!(t.contains("[secret_keys]") && t.contains("0 errors"), "{t}");
    snap("doctor_80x24", &f.app, 80, 24);
}
