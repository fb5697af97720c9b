//! Throttling benchmark: narscope against a server that answers 503 `SlowDown` above N
//! requests per second. Prints figures, asserts nothing.
//!
//!   cargo bench --bench throttle
//!
//! NARSCOPE_BENCH_THROTTLE_PATHS narinfos (default 10,000) on Garage, behind the fault proxy
//! in rate-limit mode at NARSCOPE_BENCH_THROTTLE_RPS requests per second (default 400, in any
//! sliding second). `narscope verify` (signatures only: list, then one GET per narinfo) and
//! `narscope sign --all` (GET and PUT per narinfo, with a new key each run) run as they are,
//! then with `--max-rps` at 95% of the limit. Each line gives: items, failed items, the 503s
//! the proxy answered (and narscope counted), the rate the proxy forwarded over the whole run
//! and over its second half (settled) against the limit, narscope's window (smallest and at
//! the end) and the wall time.
//!
//! Needs Garage.

// The tests' harness; this benchmark uses the proxy, Garage, the upload and the command.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "measure.rs"]
mod measure;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::cmd::narscope;
use common::faults::FaultProxy;
use common::upload::{Upload, upload_to};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run's figures.
struct Figures {
    items: u64,
    failed: u64,
    refused: u64,
    counted: u64,
    rate: f64,
    settled: f64,
    min_window: u64,
    window: u64,
    wall: Duration,
}

/// Requests the proxy forwarded (the refused ones are read first, so the difference never
/// goes below zero).
fn forwarded(proxy: &FaultProxy) -> u64 {
    let refused = proxy.rate_limited();
    proxy.request_count() - refused
}

/// Runs narscope with `args` (its `--json` document on stdout), sampling the proxy's
/// forwarded requests every 200 ms; returns the document, the wall time and the samples.
fn sampled(
    proxy: &FaultProxy,
    g: &common::Garage,
    root: &Path,
    args: &[&str],
) -> (serde_json::Value, Duration, Vec<(f64, u64)>) {
    let mut c = narscope(&[], root);
    c.args(args)
        .envs(g.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let forwarded = || forwarded(proxy);
    let t = Instant::now();
    let mut child = c.spawn().unwrap_or_else(|e| panic!("narscope: {e}"));
    // Both pipes are drained while the command runs: a full pipe would stop it.
    let drain = |p: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let mut samples = vec![(0.0, forwarded())];
    while child.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(200));
        samples.push((t.elapsed().as_secs_f64(), forwarded()));
    }
    let wall = t.elapsed();
    samples.push((wall.as_secs_f64(), forwarded()));
    let _ = child.wait();
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    let doc = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "{args:?}: no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )
    });
    (doc, wall, samples)
}

/// Requests per second forwarded from the middle of the run to its end (the settled rate).
fn settled_rate(samples: &[(f64, u64)]) -> f64 {
    let (end_t, end_n) = samples.last().copied().unwrap_or_default();
    let (mid_t, mid_n) = samples
        .iter()
        .copied()
        .find(|(t, _)| *t >= end_t / 2.0)
        .unwrap_or_default();
    if end_t > mid_t {
        (end_n - mid_n) as f64 / (end_t - mid_t)
    } else {
        0.0
    }
}

fn run(proxy: &FaultProxy, g: &common::Garage, root: &Path, args: &[&str], sign: bool) -> Figures {
    // Let the limit's sliding second forget the previous run.
    std::thread::sleep(Duration::from_millis(1100));
    proxy.reset_counters();
    let (doc, wall, samples) = sampled(proxy, g, root, args);
    let (items, failed) = if sign {
        let s = &doc["summary"];
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        (n("changed") + n("unchanged") + n("failed"), n("failed"))
    } else {
        let counts = doc["summary"].as_object().cloned().unwrap_or_default();
        let total: u64 = counts.values().filter_map(|v| v.as_u64()).sum();
        let good = counts.get("trusted").and_then(|v| v.as_u64()).unwrap_or(0);
        (total, total - good)
    };
    if failed > 0 {
        // What went wrong, so a regression is readable from the figures alone.
        for e in doc["errors"].as_array().into_iter().flatten().take(3) {
            println!("  failed: {e}");
        }
    }
    let t = &doc["throttle"];
    let forwarded = forwarded(proxy);
    Figures {
        items,
        failed,
        refused: proxy.rate_limited(),
        counted: t["throttled"].as_u64().unwrap_or(0),
        rate: forwarded as f64 / wall.as_secs_f64(),
        settled: settled_rate(&samples),
        min_window: t["minWindow"].as_u64().unwrap_or(0),
        window: t["window"].as_u64().unwrap_or(0),
        wall,
    }
}

fn print(what: &str, limit: f64, f: &Figures) {
    println!(
        "{what:<22} {:>6} items, {} failed; {:>5} answers 503 ({} counted by narscope); \
         {:>5.0} req/s overall ({:.2} of N), settled {:>5.0} req/s ({:.2} of N); window min {} \
         final {}; {:.1} s",
        f.items,
        f.failed,
        f.refused,
        f.counted,
        f.rate,
        f.rate / limit,
        f.settled,
        f.settled / limit,
        f.min_window,
        f.window,
        f.wall.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_or("NARSCOPE_BENCH_THROTTLE_PATHS", 10_000);
    let limit = env_or("NARSCOPE_BENCH_THROTTLE_RPS", 400) as u32;
    println!("throttle benchmark: {}", measure::machine());
    let Some(g) = common::Garage::try_shared() else {
        println!("NARSCOPE_SKIP_GARAGE set: skipping the throttle benchmark");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = root.join("src");
    let k1 = narscope::nix::SecretKey::generate("bench-1").unwrap();
    let pk = narscope::demo::write_synthetic_cache(&dir, n, &k1)
        .unwrap()
        .to_string();
    let bucket = g.fresh_bucket();
    let how = Upload {
        concurrency: 64,
        ..Upload::default()
    };
    upload_to(g, &g.url(&bucket, ""), &dir, how);
    // The proxy lives on this runtime's threads while the commands run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let proxy = rt.block_on(FaultProxy::start(&g.endpoint));
    proxy.set_rate_limit(Some(limit));
    let url = format!(
        "s3://{bucket}?endpoint={}&region=us-east-1&addressing-style=path",
        proxy.endpoint()
    );
    println!(
        "{n} narinfos on Garage behind a proxy answering 503 SlowDown above N = {limit} req/s"
    );
    let ceiling = (f64::from(limit) * 0.95).floor() as u32;
    let ceiling_s = ceiling.to_string();
    for (i, max_rps) in [None, Some(ceiling_s.as_str())].into_iter().enumerate() {
        let mut global: Vec<&str> = Vec::new();
        if let Some(m) = max_rps {
            global.extend(["--max-rps", m]);
        }
        let label = |what: &str| match max_rps {
            Some(m) => format!("{what} --max-rps {m}"),
            None => what.to_string(),
        };
        let mut args = vec!["verify", &url, "--json", "--trusted-key", &pk];
        args.extend(&global);
        let f = run(&proxy, g, root, &args, false);
        print(&label("verify"), f64::from(limit), &f);

        let key = narscope::nix::SecretKey::generate(&format!("bench-sign-{i}")).unwrap();
        let key_file = root.join(format!("sign-{i}.sec"));
        std::fs::write(&key_file, key.to_file_text()).unwrap();
        let key_path = key_file.to_str().unwrap();
        let mut args = vec!["sign", &url, "--all", "--key-file", key_path, "--json"];
        args.extend(&global);
        let f = run(&proxy, g, root, &args, true);
        print(&label("sign"), f64::from(limit), &f);
    }
    drop(rt);
}
