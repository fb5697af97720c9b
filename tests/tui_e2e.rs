//! The dashboard end to end in a real terminal (tmux), against the demo cache uploaded to a
//! real Garage server: open, wait for rows, filter, follow a reference, open help, quit, and
//! check the screen text and a clean exit.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Garage;
use common::upload::{Upload, upload_dir};

struct Tmux {
    socket: String,
    exit_file: std::path::PathBuf,
}

impl Tmux {
    /// Runs `ns` in a detached 120×40 session; its exit code goes to `exit_file`.
    fn start(&self, ns: &std::process::Command) {
        let cmd = format!(
            "{}; echo $? > {}",
            common::cmd::shell_line(ns),
            self.exit_file.display()
        );
        self.run(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            "120",
            "-y",
            "40",
            "sh",
            "-c",
            &cmd,
        ]);
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "e2e"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", "e2e", k]);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    fn literal(&self, text: &str) {
        self.run(&["send-keys", "-t", "e2e", "-l", text]);
        std::thread::sleep(Duration::from_millis(60));
    }

    /// Wait until the screen passes `ok`; panics with the screen after 30 s.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if t.elapsed() > Duration::from_secs(30) {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_terminal_against_garage() {
    let Some(g) = Garage::try_shared() else {
        return;
    };
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux is needed for this test (apt-get install tmux)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let demo = narscope::demo::write_demo_cache(&tmp.path().join("demo")).unwrap();
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    // The demo's secret key is beside the cache, never in it; skip any that a change put there.
    let store = g.open(&url).await;
    let how = Upload {
        skip_secret_keys: true,
        ..Upload::default()
    };
    upload_dir(&store, &demo.dir, how).await;

    let tmux = Tmux {
        socket: format!("narscope-e2e-{}", common::random_hex(4)),
        exit_file: tmp.path().join("exit"),
    };
    let pk = demo.public_key.to_string();
    let mut ns = common::cmd::narscope(&[&url, "--trusted-key", &pk], tmp.path());
    ns.envs(g.env());
    tmux.start(&ns);

    // Rows arrive, and the scan finishes with every narinfo and NAR listed.
    let s = tmux.wait("the scan", |s| s.contains("scanned 12 narinfos"));
    assert!(s.contains("12 paths"), "{s}");
    for name in ["bash-5.2p37", "glibc-2.40-66", "hello-2.12.1", "zlib-1.3.1"] {
        assert!(s.contains(name), "{name} missing:\n{s}");
    }
    assert!(
        s.contains("curl-8.11.0 [no NAR]"),
        "the dangling narinfo is flagged:\n{s}"
    );

    // Filter.
    tmux.keys(&["/"]);
    tmux.literal("bash");
    let s = tmux.wait("the filter", |s| s.contains("1 of 12"));
    assert!(s.contains("filter \"bash\""), "{s}");
    assert!(!s.contains("zlib-1.3.1"), "{s}");
    tmux.keys(&["Enter"]);

    // Follow bash's reference (glibc): Enter focuses details, Enter follows.
    tmux.wait("bash's details", |s| s.contains("References (1)"));
    tmux.keys(&["Enter", "Enter"]);
    let s = tmux.wait("glibc's details", |s| {
        s.contains("Referrers (") && s.contains("glibc-2.40-66") && !s.contains("References (1)")
    });
    assert!(s.contains("filters cleared to show the path"), "{s}");
    // Back.
    tmux.keys(&["BSpace"]);
    tmux.wait("bash again", |s| s.contains("References (1)"));

    // Help.
    tmux.keys(&["?"]);
    let s = tmux.wait("help", |s| s.contains("show this help"));
    assert!(s.contains("Verdicts") || s.contains("Keys"), "{s}");
    tmux.keys(&["Escape"]);
    tmux.wait("help closed", |s| !s.contains("show this help"));

    // Garbage collection: pin hello, plan with no grace, drill in, confirm, watch it go.
    tmux.keys(&["Escape", "/"]);
    tmux.literal("hello");
    tmux.wait("the hello filter", |s| s.contains("1 of 12"));
    tmux.keys(&["Enter", ":"]);
    tmux.literal("pin add release");
    tmux.keys(&["Enter"]);
    tmux.wait("the pin", |s| s.contains("pinned 1 path(s) as 'release'"));
    tmux.keys(&["Escape", ":"]);
    tmux.literal("gc --grace 0s");
    tmux.keys(&["Enter"]);
    let s = tmux.wait("the gc plan", |s| s.contains("Garbage collection plan"));
    assert!(s.contains("−10 narinfos") && s.contains("2 stay"), "{s}");
    assert!(s.contains("orphan NARs"), "{s}");
    tmux.keys(&["c"]);
    let s = tmux.wait("the confirmation", |s| s.contains("Collect garbage"));
    assert!(s.contains("Cancel"), "{s}");
    tmux.keys(&["y"]);
    let s = tmux.wait("the collection", |s| {
        s.contains("2 paths") && s.contains(" done")
    });
    assert!(!s.contains("failed"), "{s}");
    let mut left = Vec::new();
    let mut token = None;
    loop {
        let page = store.list_page("", token).await.unwrap();
        left.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let narinfos: Vec<&String> = left.iter().filter(|k| k.ends_with(".narinfo")).collect();
    assert_eq!(narinfos.len(), 2, "hello and glibc stay: {left:?}");
    assert_eq!(
        left.iter().filter(|k| k.starts_with("nar/")).count(),
        2,
        "their NARs stay, the rest go: {left:?}"
    );
    assert!(left.contains(&"narscope/roots/release".to_string()));

    // Quit: a clean exit and the terminal back to normal.
    tmux.keys(&["q"]);
    let t = Instant::now();
    let code = loop {
        if let Ok(c) = std::fs::read_to_string(&tmux.exit_file) {
            break c;
        }
        if t.elapsed() > Duration::from_secs(15) {
            panic!("narscope did not exit; screen:\n{}", tmux.screen());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code.trim(), "0");
    // The index was kept for the next session.
    let kept = std::fs::read_dir(common::cmd::cache_dir(tmp.path()).join("index"))
        .unwrap()
        .flatten()
        .any(|d| d.path().join("index.bin").is_file());
    assert!(kept, "no index.bin written");
}

/// The space view in a real terminal, on the demo cache as a directory (file://): open it,
/// see the packages, drill into one (the list then shows only its paths), lift the filter,
/// quit.
#[test]
fn space_view_in_a_real_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux is needed for this test (apt-get install tmux)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let demo = narscope::demo::write_demo_cache(&tmp.path().join("demo")).unwrap();
    let tmux = Tmux {
        socket: format!("narscope-e2e-{}", common::random_hex(4)),
        exit_file: tmp.path().join("exit"),
    };
    let pk = demo.public_key.to_string();
    let dir = demo.dir.to_str().unwrap().to_string();
    let ns = common::cmd::narscope(&[&dir, "--trusted-key", &pk], tmp.path());
    tmux.start(&ns);
    tmux.wait("the scan", |s| s.contains("scanned 12 narinfos"));

    // Open: the report is built in the background, then shown.
    tmux.keys(&["W"]);
    let s = tmux.wait("the space view", |s| {
        s.contains("By package") && s.contains("Biggest closures") && !s.contains("building…")
    });
    assert!(s.contains("12 paths"), "{s}");
    for want in ["hello", "glibc", "Added per day", "%"] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }

    // Filter the packages, then Enter lists the package's paths only.
    tmux.keys(&["/"]);
    tmux.literal("hello");
    tmux.wait("the package filter", |s| s.contains("By package: 1 of"));
    tmux.keys(&["Enter", "Enter"]);
    let s = tmux.wait("the package's paths", |s| {
        s.contains("filter \"pkg:hello\"") && !s.contains("By package")
    });
    assert!(s.contains("1 of 12"), "{s}");
    assert!(s.contains("hello-2.12.1"), "{s}");
    for other in ["zlib-1.3.1", "bash-5.2p37"] {
        assert!(!s.contains(other), "{other} shown:\n{s}");
    }
    // Esc lifts the package filter.
    tmux.keys(&["Escape"]);
    let s = tmux.wait("every path", |s| s.contains("12 of 12"));
    assert!(s.contains("zlib-1.3.1"), "{s}");

    // Quit: a clean exit.
    tmux.keys(&["q"]);
    let t = Instant::now();
    let code = loop {
        if let Ok(c) = std::fs::read_to_string(&tmux.exit_file) {
            break c;
        }
        if t.elapsed() > Duration::from_secs(15) {
            panic!("narscope did not exit; screen:\n{}", tmux.screen());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code.trim(), "0");
}
