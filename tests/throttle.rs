//! A server that throttles: Garage behind the fault proxy in rate-limit mode (503 `SlowDown`
//! above N requests in any second). narscope slows down (adaptive window and rate), loses no
//! item, and says in its summary that it was throttled and by how much.

use crate::common;

use common::Garage;
use common::cmd::{narscope, run};
use common::faults::FaultProxy;
use common::upload::{Upload, upload_dir};

/// Narinfos in the cache.
const PATHS: usize = 300;
/// Requests the proxy forwards per second.
const LIMIT: u32 = 50;

/// A synthetic cache of [`PATHS`] narinfos on a fresh Garage bucket, a proxy limiting the
/// rate in front of it; the cache URL through the proxy and the key that signed the paths.
struct Rig {
    g: &'static Garage,
    proxy: FaultProxy,
    url: String,
    public_key: String,
    tmp: tempfile::TempDir,
}

impl Rig {
    async fn new() -> Option<Rig> {
        let g = Garage::try_shared()?;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("src");
        let key = narscope::nix::SecretKey::generate("throttle-test-1").unwrap();
        let public_key = narscope::demo::write_synthetic_cache(&dir, PATHS, &key)
            .unwrap()
            .to_string();
        let bucket = g.fresh_bucket();
        let store = g.open(&g.url(&bucket, "")).await;
        let how = Upload {
            concurrency: 32,
            ..Upload::default()
        };
        upload_dir(&store, &dir, how).await;
        let proxy = FaultProxy::start(&g.endpoint).await;
        let url = format!(
            "s3://{bucket}?endpoint={}&region=us-east-1&addressing-style=path",
            proxy.endpoint()
        );
        Some(Rig {
            g,
            proxy,
            url,
            public_key,
            tmp,
        })
    }

    /// `narscope verify --json` through the proxy, off the runtime (the proxy lives on it):
    /// exit code and the document.
    async fn verify_json(&self, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
        let mut c = narscope(&[], &self.tmp.path().join("state"));
        c.args([
            "verify",
            &self.url,
            "--json",
            "--trusted-key",
            &self.public_key,
        ])
        .args(extra)
        .envs(self.g.env());
        let out = tokio::task::spawn_blocking(move || run(c)).await.unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "verify --json printed no JSON ({e}):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), doc)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_slows_down_under_a_rate_limit_and_loses_nothing() {
    let Some(rig) = Rig::new().await else {
        eprintln!("NARSCOPE_SKIP_GARAGE set: skipping");
        return;
    };
    rig.proxy.set_rate_limit(Some(LIMIT));
    let (code, doc) = rig.verify_json(&[]).await;
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["summary"]["trusted"], PATHS, "{:#}", doc["summary"]);
    assert_eq!(doc["paths"].as_array().map(Vec::len), Some(PATHS));
    let refused = rig.proxy.rate_limited();
    assert!(
        refused > 0,
        "the proxy never throttled: the test does not test anything"
    );
    let t = &doc["throttle"];
    // Every 503 the proxy sent was an answer narscope saw and counted.
    assert_eq!(t["throttled"], refused, "{t:#}");
    let min_window = t["minWindow"].as_u64().unwrap();
    assert!((1..64).contains(&min_window), "{t:#}");
    assert!(t["rateLimit"].as_f64().is_some(), "{t:#}");
    // Every request the proxy saw was an attempt narscope counted.
    assert_eq!(t["requests"], rig.proxy.request_count(), "{t:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rps_paces_requests_and_the_text_says_when_it_throttled() {
    let Some(rig) = Rig::new().await else {
        eprintln!("NARSCOPE_SKIP_GARAGE set: skipping");
        return;
    };
    // Well under the limit: starts are paced at 30/s. (Requests can still bunch up on their
    // way to the server on a loaded machine, so a few refusals are possible; whatever the
    // server said, narscope counted.)
    rig.proxy.set_rate_limit(Some(LIMIT));
    let (code, doc) = rig.verify_json(&["--max-rps", "30"]).await;
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["summary"]["trusted"], PATHS);
    assert_eq!(doc["throttle"]["maxRps"], 30);
    assert_eq!(doc["throttle"]["throttled"], rig.proxy.rate_limited());
    eprintln!(
        "with --max-rps 30 under a limit of {LIMIT}/s: {} answers 503",
        rig.proxy.rate_limited()
    );

    // Without the ceiling the text summary has a line saying how it was throttled.
    rig.proxy.reset_counters();
    let mut c = narscope(&[], &rig.tmp.path().join("state"));
    c.args(["verify", &rig.url, "--trusted-key", &rig.public_key])
        .envs(rig.g.env());
    let out = tokio::task::spawn_blocking(move || run(c)).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("checked {PATHS} paths: {PATHS} trusted")),
        "{stdout}"
    );
    let refused = rig.proxy.rate_limited();
    assert!(refused > 0, "the proxy never throttled");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("throttled: "))
        .unwrap_or_else(|| panic!("no throttling line:\n{stdout}"));
    assert!(
        line.starts_with(&format!(
            "throttled: {refused} answers 503/429, window shrank to "
        )),
        "{line}"
    );
    assert!(
        line.contains(" in flight, average ") && line.ends_with(" req/s"),
        "{line}"
    );
}
