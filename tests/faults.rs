//! Every job under faults, on Garage behind the fault-injecting proxy, with real Nix paths, and
//! the cache checked after every run by the invariant checker, which reads the bucket straight
//! from Garage (never through the proxy, never through narscope):
//! - a narinfo that cannot be read (in the first look, in both, or only in the look just
//!   before deleting) stops `gc` and `delete` with nothing deleted;
//! - a push reusing an orphan NAR whose narinfo PUT is slow never loses that NAR to a gc that
//!   runs meanwhile;
//! - at a 20% random fault rate on every request, push, sign, verify, pull, delete and gc each
//!   complete in one run; at 50% each completes or stops saying what failed; no run ever
//!   breaks an invariant.

use crate::common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::Garage;
use common::faults::{Fault, FaultProxy, Rule};
use common::invariants::{Snapshot, Source, violations_now};
use narscope::storage::Store;
use narscope::storage::s3::{S3Options, S3Store};

/// A bucket on Garage, a proxy in front of it, and what the jobs need.
struct Rig {
    g: &'static Garage,
    bucket: String,
    proxy: FaultProxy,
    /// The cache through the proxy.
    url: String,
    /// The cache straight from Garage (setup, checks).
    direct_url: String,
    tmp: tempfile::TempDir,
}

impl Rig {
    async fn new() -> Option<Rig> {
        let g = Garage::try_shared()?;
        let bucket = g.fresh_bucket();
        let proxy = FaultProxy::start(&g.endpoint).await;
        let url = format!(
            "s3://{bucket}?endpoint={}&region=us-east-1&addressing-style=path",
            proxy.endpoint()
        );
        let direct_url = g.url(&bucket, "");
        Some(Rig {
            g,
            bucket,
            proxy,
            url,
            direct_url,
            tmp: tempfile::tempdir().unwrap(),
        })
    }

    fn source(&self) -> Source {
        Source::S3 {
            endpoint: self.g.endpoint.clone(),
            bucket: self.bucket.clone(),
            prefix: String::new(),
            access_key: self.g.access_key.clone(),
            secret_key: self.g.secret_key.clone(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = common::cmd::narscope(args, &self.tmp.path().join("state"));
        c.envs(self.g.env());
        c
    }

    /// Runs a command off the runtime (the proxy lives on it), killed after `limit`.
    async fn run(&self, args: &[&str], limit: Duration) -> Output {
        let mut c = self.cmd(args);
        let desc = format!("{args:?}");
        tokio::task::spawn_blocking(move || {
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            let start = Instant::now();
            loop {
                if child.try_wait().unwrap().is_some() {
                    return child.wait_with_output().unwrap();
                }
                if start.elapsed() > limit {
                    let _ = child.kill();
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "{desc} did not finish within {limit:?}:\n{}\n{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, Duration::from_secs(300)).await;
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    async fn direct(&self) -> S3Store {
        let url = match narscope::storage::CacheUrl::parse(&self.direct_url).unwrap() {
            narscope::storage::CacheUrl::S3(u) => u,
            other => panic!("{other:?}"),
        };
        S3Store::connect(
            url,
            S3Options::default().with_static_credentials(&self.g.access_key, &self.g.secret_key),
        )
        .await
        .unwrap()
    }

    /// The invariants right now (the bucket read straight from Garage).
    async fn check(&self, trusted: &[String]) -> Snapshot {
        let src = self.source();
        let trusted = trusted.to_vec();
        tokio::task::spawn_blocking(move || {
            let snap = Snapshot::take(&src);
            let v = snap.violations(&trusted);
            assert!(v.is_empty(), "invariants broken: {v:?}");
            snap
        })
        .await
        .unwrap()
    }

    /// A new signing key: its secret key file and its public key.
    async fn keygen(&self, name: &str) -> (String, String) {
        let (sk, public) = common::nix::keygen_in(self.tmp.path(), name, |args| {
            tokio::task::block_in_place(|| common::cmd::ok(self.cmd(args)));
        });
        (sk.to_str().unwrap().to_string(), public)
    }

    fn nix_chain(&self, tag: &str, n: usize, kib: usize) -> Vec<String> {
        common::nix::nix_chain(self.tmp.path(), tag, n, kib)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn narinfo_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap();
    format!("{}.narinfo", &base[..32])
}

/// `gc` and `delete` with one narinfo unreadable: in the first look, in both, and only in the
/// look just before deleting. Each time exit 2 naming it, and nothing deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_narinfo_stops_gc_and_delete_in_either_look() {
    if common::nix::skip_nix() {
        return;
    }
    let Some(rig) = Rig::new().await else { return };
    let tag = common::random_hex(4);
    let keep = rig.nix_chain(&format!("k{tag}"), 3, 8);
    let junk = rig.nix_chain(&format!("j{tag}"), 2, 8);
    rig.ok(&["push", &rig.direct_url, &keep[2]]).await;
    rig.ok(&["push", &rig.direct_url, &junk[1]]).await;
    rig.ok(&["pin", &rig.direct_url, "add", "release", &keep[2]])
        .await;
    let before = rig.check(&[]).await;
    let victim = narinfo_of(&keep[1]);
    let gc = ["gc", rig.url.as_str(), "--grace", "0s", "--yes"];

    // Both looks (and every retry) fail: refused.
    rig.proxy.set_rules(vec![
        Rule::new(Fault::Reset)
            .method("GET")
            .path(&format!("*{victim}")),
    ]);
    let out = rig.run(&gc, Duration::from_secs(120)).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refusing to collect") && err.contains(&victim),
        "{err}"
    );
    assert!(err.contains("run again"), "{err}");
    let out = rig
        .run(
            &["delete", rig.url.as_str(), &junk[1], "--yes"],
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&victim));
    let snap = rig.check(&[]).await;
    assert_eq!(snap.keys, before.keys, "nothing deleted");

    // Only the look just before deleting fails: the first look reads everything; the gc then
    // waits for a (fake, remote) push to pause, meanwhile the victim changes and its reads
    // start failing; when the push goes, the second look cannot read it.
    rig.proxy.clear();
    let direct = rig.direct().await;
    let holder = r#"{"id":"p","what":"push","host":"elsewhere","pid":1,"started":0}"#;
    direct
        .put(
            "narscope/locks/push/fake",
            holder.as_bytes().to_vec().into(),
            &Default::default(),
        )
        .await
        .unwrap();
    let mut gc_cmd = rig.cmd(&gc);
    gc_cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = gc_cmd.spawn().unwrap();
    // Wait until the gc waits for the push (its lease is out).
    let start = Instant::now();
    while direct
        .head(narscope::lease::DELETION_LEASE)
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gc never took its lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let text_now = direct.get(&victim).await.unwrap().unwrap().bytes;
    direct
        .put(&victim, text_now, &Default::default())
        .await
        .unwrap();
    rig.proxy.set_rules(vec![
        Rule::new(Fault::Reset)
            .method("GET")
            .path(&format!("*{victim}")),
    ]);
    direct
        .delete_many(&["narscope/locks/push/fake".to_string()])
        .await
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}\n{err}", text(&out.stdout));
    assert!(
        err.contains(&victim) && err.contains("just before deleting"),
        "{err}"
    );
    let snap = rig.check(&[]).await;
    assert_eq!(snap.keys, before.keys, "nothing deleted");

    // Reads that fail only for a while (one look's worth of attempts): refused, then a re-run
    // collects exactly the garbage.
    rig.proxy.set_rules(vec![
        Rule::new(Fault::Reset)
            .method("GET")
            .path(&format!("*{victim}"))
            .at_most(8),
    ]);
    let out = rig.run(&gc, Duration::from_secs(120)).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    rig.proxy.clear();
    let out = rig.ok(&gc).await;
    assert!(out.contains("collected 2 narinfo(s)"), "{out}");
    let after = rig.check(&[]).await;
    assert!(after.lost_pinned(&before).is_empty());
    for p in &junk {
        assert!(!after.has(p), "{p} collected");
    }
    for p in &keep {
        assert!(after.has(p), "{p} kept");
    }
}

/// A push reuses an orphan NAR (a failed push's leftover), and its narinfo PUT is slow; a gc
/// runs meanwhile. Before the deletion lease, the gc deleted the NAR between the push's check
/// and its narinfo landing: a narinfo without its NAR. Now the gc waits for the push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_push_reusing_an_orphan_nar_never_races_a_gc() {
    if common::nix::skip_nix() {
        return;
    }
    let Some(rig) = Rig::new().await else { return };
    let tag = common::random_hex(4);
    let path = rig.nix_chain(&format!("r{tag}"), 1, 32).remove(0);
    let key = narinfo_of(&path);
    let direct = rig.direct().await;
    for round in 0..3 {
        rig.ok(&["push", &rig.direct_url, &path]).await;
        direct
            .delete_many(std::slice::from_ref(&key))
            .await
            .unwrap();
        rig.ok(&["pin", &rig.direct_url, "add", "p", &path]).await;
        rig.proxy.set_rules(vec![
            Rule::new(Fault::Delay(Duration::from_secs(4)))
                .method("PUT")
                .path("*.narinfo"),
        ]);
        let mut push = rig.cmd(&["push", &rig.url, &path]);
        push.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut gc = rig.cmd(&["gc", &rig.url, "--grace", "0s", "--allow-no-roots", "--yes"]);
        gc.stdout(std::process::Stdio::null());
        let src = rig.source();
        let (broken, statuses) = tokio::task::spawn_blocking(move || {
            let mut children = vec![push.spawn().unwrap()];
            std::thread::sleep(Duration::from_millis(1500));
            children.push(gc.spawn().unwrap());
            let mut broken = Vec::new();
            loop {
                broken.extend(violations_now(&src, &[]));
                if children
                    .iter_mut()
                    .all(|c| c.try_wait().ok().flatten().is_some())
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let statuses: Vec<_> = children.iter_mut().map(|c| c.wait().unwrap()).collect();
            (broken, statuses)
        })
        .await
        .unwrap();
        assert!(broken.is_empty(), "round {round}: {broken:?}");
        assert!(
            statuses.iter().all(|s| s.success()),
            "round {round}: {statuses:?}"
        );
        rig.proxy.clear();
        let snap = rig.check(&[]).await;
        assert!(
            snap.has(&path),
            "round {round}: the pushed path stays (pinned)"
        );
        // Next round starts from an orphan again.
    }
}

/// Every job at a 20% random fault rate on every request completes in one run; at 50% each
/// completes or stops with an error; the invariants hold after every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_survives_random_faults() {
    if common::nix::skip_nix() {
        return;
    }
    let Some(rig) = Rig::new().await else { return };
    let tag = common::random_hex(4);
    let (sk, pk) = rig.keygen("faults-1").await;
    let (sk2, pk2) = rig.keygen("faults-2").await;
    let trusted = vec![pk.clone(), pk2.clone()];
    for (rate, must_complete) in [(0.2, true), (0.5, false)] {
        let round = format!("{tag}{}", (rate * 10.0) as u32);
        let chain = rig.nix_chain(&format!("f{round}"), 4, 64);
        let extra = rig.nix_chain(&format!("x{round}"), 2, 16);
        let top = chain.last().unwrap().clone();
        rig.ok(&["pin", &rig.direct_url, "add", &format!("p{round}"), &top])
            .await;
        rig.proxy.set_rules(vec![
            Rule::new(Fault::every_kind(Duration::from_millis(300))).probability(rate),
        ]);
        let pull_dir = rig.tmp.path().join(format!("pull-{round}"));
        std::fs::create_dir_all(&pull_dir).unwrap();
        let jobs: Vec<Vec<String>> = vec![
            vec![
                "push".into(),
                rig.url.clone(),
                top.clone(),
                "--key-file".into(),
                sk.clone(),
            ],
            vec![
                "push".into(),
                rig.url.clone(),
                extra[1].clone(),
                "--key-file".into(),
                sk.clone(),
            ],
            vec![
                "sign".into(),
                rig.url.clone(),
                "--all".into(),
                "--key-file".into(),
                sk2.clone(),
            ],
            vec![
                "verify".into(),
                rig.url.clone(),
                "--contents".into(),
                "--trusted-key".into(),
                pk.clone(),
            ],
            vec![
                "pull".into(),
                rig.url.clone(),
                top.clone(),
                "-r".into(),
                "--to".into(),
                pull_dir.to_str().unwrap().into(),
                "--trusted-key".into(),
                pk.clone(),
            ],
            vec![
                "delete".into(),
                rig.url.clone(),
                extra[1].clone(),
                "--yes".into(),
            ],
            vec![
                "gc".into(),
                rig.url.clone(),
                "--grace".into(),
                "0s".into(),
                "--yes".into(),
            ],
        ];
        for job in &jobs {
            let args: Vec<&str> = job.iter().map(String::as_str).collect();
            let before = rig.check(&trusted).await;
            let out = rig.run(&args, Duration::from_secs(600)).await;
            let (so, se) = (text(&out.stdout), text(&out.stderr));
            assert!(!se.contains("panicked"), "{args:?}: {se}");
            for bad in ["Error {", "kind:"] {
                assert!(!se.contains(bad), "{args:?}: a Debug dump in {se}");
            }
            if must_complete {
                assert!(
                    out.status.success(),
                    "{args:?} at {rate}: {:?}\n{so}\n{se}\n(seed {})",
                    out.status.code(),
                    rig.proxy.seed()
                );
            } else if !out.status.success() {
                assert!(
                    matches!(out.status.code(), Some(1..=7)),
                    "{args:?}: {:?}",
                    out.status.code()
                );
                // verify reports per-path errors (and its summary) on stdout, the jobs on
                // stderr.
                assert!(
                    se.contains("error") || so.contains("error"),
                    "{args:?}: it says what failed:\n{so}\n{se}"
                );
            }
            rig.proxy.clear();
            let after = rig.check(&trusted).await;
            rig.proxy.set_rules(vec![
                Rule::new(Fault::every_kind(Duration::from_millis(300))).probability(rate),
            ]);
            assert!(
                after.lost_pinned(&before).is_empty(),
                "{args:?}: {:?}",
                after.lost_pinned(&before)
            );
        }
        rig.proxy.clear();
        if must_complete {
            let snap = rig.check(&trusted).await;
            for p in &chain {
                assert!(snap.has(p), "{p} pushed and kept");
                assert!(
                    pull_dir
                        .join(p.rsplit('/').next().unwrap())
                        .join("data")
                        .exists(),
                    "{p} pulled"
                );
            }
            assert!(!snap.has(&extra[1]), "deleted");
        }
    }
}

/// A NAR download that keeps breaking in transit is reported as a failed download (a transport
/// fault, naming the key), not as bad data; nothing is left in the target directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_keeps_breaking_is_called_a_transport_fault() {
    if common::nix::skip_nix() {
        return;
    }
    let Some(rig) = Rig::new().await else { return };
    let tag = common::random_hex(4);
    let path = rig.nix_chain(&format!("d{tag}"), 1, 256).remove(0);
    let (sk, pk) = rig.keygen("dl-1").await;
    rig.ok(&["push", &rig.direct_url, &path, "--key-file", &sk])
        .await;
    rig.proxy.set_rules(vec![
        Rule::new(Fault::ResetMidBody(common::faults::Cut::Half))
            .method("GET")
            .path("*/nar/*"),
    ]);
    let to = rig.tmp.path().join("pulled");
    std::fs::create_dir_all(&to).unwrap();
    let out = rig
        .run(
            &[
                "pull",
                &rig.url,
                &path,
                "--to",
                to.to_str().unwrap(),
                "--trusted-key",
                &pk,
            ],
            Duration::from_secs(300),
        )
        .await;
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("nar/"), "names the NAR: {err}");
    assert!(
        err.contains("download") && err.contains("transport fault"),
        "{err}"
    );
    assert!(!err.contains("not a valid"), "blamed on the data: {err}");
    assert_eq!(std::fs::read_dir(&to).unwrap().count(), 0, "nothing kept");
}
