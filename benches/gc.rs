//! Garbage-collection benchmark: prints figures, asserts nothing about time.
//!
//!   cargo bench --bench gc
//!
//! 1. Plan: a 1,000,000-narinfo index (synthetic rows with references, one NAR object each,
//!    1% orphan NARs) is saved as a persistent local index; a fresh process loads it and plans
//!    a collection with 1,000 pinned roots. Load time, plan time and that process's peak RSS;
//!    then a plan with `--max-size` half the cache's stored bytes (eviction at scale).
//! 2. Delete: a 10,000-path cache (narinfos and NARs) on Garage over loopback, collected
//!    entirely (`gc --allow-no-roots --grace 0s --yes`): objects deleted per second.
//!
//! NARSCOPE_BENCH_GC_ROWS and NARSCOPE_BENCH_GC_DELETE_PATHS change the sizes;
//! NARSCOPE_SKIP_GARAGE skips part 2.

// The tests' harness; each benchmark uses a part of it.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;
// Each benchmark prints some of these figures.
#[allow(dead_code)]
#[path = "measure.rs"]
mod measure;
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use narscope::gc::{self, GcOptions, RootSource};
use narscope::index::NarObject;

/// The URL the synthetic index is made for.
const URL: &str = "file:///bench";

/// The child: load the saved index and plan.
fn child(dir: &Path, roots: usize) {
    let t = Instant::now();
    let idx = narscope::index::file::load(dir, URL)
        .expect("index readable")
        .expect("index present");
    let load = t.elapsed();
    let loaded_rss = measure::rss_mb("VmRSS:");
    let n = idx.len();
    // The newest rows are the roots (their closures reach far back through references).
    let roots: Vec<(RootSource, String)> = (n - roots..n)
        .map(|i| (RootSource::Pin("bench".into()), idx.store_path(i as u32)))
        .collect();
    let t = Instant::now();
    let plan = gc::plan(
        &idx,
        &roots,
        &gc::Extras::default(),
        &GcOptions {
            grace: gc::DEFAULT_GRACE,
            keep_younger: None,
            now: SystemTime::now(),
            upstream: Default::default(),
            retention: Default::default(),
        },
    );
    let took = t.elapsed();
    println!(
        "load the {n}-narinfo index: {:.2} s; plan: {:.2} s ({} kept, {} garbage narinfos, {} NARs incl. {} orphans, {} requests)",
        load.as_secs_f64(),
        took.as_secs_f64(),
        plan.kept,
        plan.garbage.len(),
        plan.delete.nar_keys.len(),
        plan.orphan_nars.len(),
        plan.requests()
    );
    // --max-size: the same roots, a budget of half the cache's stored bytes (eviction over
    // a priority queue of the unrooted paths).
    let opts = |max_size: u64| GcOptions {
        grace: gc::DEFAULT_GRACE,
        keep_younger: None,
        now: SystemTime::now(),
        upstream: Default::default(),
        retention: gc::Retention {
            keep_versions: None,
            max_size: Some(max_size),
        },
    };
    let before = gc::plan(&idx, &roots, &gc::Extras::default(), &opts(u64::MAX))
        .budget
        .map_or(0, |b| b.before);
    let t = Instant::now();
    let plan = gc::plan(&idx, &roots, &gc::Extras::default(), &opts(before / 2));
    let took = t.elapsed();
    let b = plan.budget.unwrap_or_default();
    println!(
        "plan with --max-size (half of {:.1} GiB): {:.2} s ({} evicted, {} kept, budget reached: {}, {:.1} GiB held by roots)",
        before as f64 / (1u64 << 30) as f64,
        took.as_secs_f64(),
        plan.evicted.len(),
        plan.kept,
        b.reached,
        b.held_by_roots as f64 / (1u64 << 30) as f64
    );
    println!(
        "peak RSS of the planning process: {:.0} MB (the loaded index alone: {loaded_rss:.0} MB)",
        measure::rss_mb("VmHWM:")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-plan") {
        child(Path::new(&args[i + 1]), args[i + 2].parse().unwrap());
        return;
    }
    let n: u64 = env_num("NARSCOPE_BENCH_GC_ROWS", 1_000_000);
    println!("narscope gc benchmark: {}", measure::machine());

    // Part 1: plan over a million narinfos, in a fresh process.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    {
        let mut idx = synthetic::synthetic_index(n);
        let mut nars: Vec<NarObject> = idx
            .live()
            .map(|r| NarObject {
                key: idx.url_of(r).to_string(),
                size: 300 + (r as u64 % 3_000_000),
                mtime: 1_700_000_000,
            })
            .collect();
        for i in 0..n / 100 {
            let h = synthetic::hash_part(n + i);
            nars.push(NarObject {
                key: format!("nar/{h}{h}.nar.xz"),
                size: 1000,
                mtime: 1_700_000_000,
            });
        }
        idx.set_nars(nars);
        narscope::index::file::save(&idx, &dir).unwrap();
    }
    println!(
        "built and saved a {n}-narinfo index with {} NARs in {:.1} s",
        n + n / 100,
        t.elapsed().as_secs_f64()
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--child-plan", dir.to_str().unwrap(), "1000"])
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        panic!("plan failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    drop(tmp);

    // Part 2: deletion on Garage.
    let Some(g) = common::Garage::try_shared() else {
        println!("NARSCOPE_SKIP_GARAGE set: skipping the deletion benchmark");
        return;
    };
    let paths = env_num("NARSCOPE_BENCH_GC_DELETE_PATHS", 10_000) as usize;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let key = narscope::nix::SecretKey::generate("bench-1").unwrap();
    narscope::demo::write_synthetic_cache(&src, paths, &key).unwrap();
    let bucket = g.fresh_bucket();
    let url = g.url(&bucket, "");
    let t = Instant::now();
    let objects = upload_with_nars(g, &src, &url);
    println!(
        "uploaded {objects} objects ({paths} narinfos and their NARs) and nix-cache-info to Garage in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let state = tmp.path().join("state");
    let run = |extra: &[&str]| -> Duration {
        let mut c =
            common::cmd::narscope(&["gc", &url, "--allow-no-roots", "--grace", "0s"], &state);
        c.args(extra).envs(g.env());
        let t = Instant::now();
        let out = c.output().unwrap();
        let d = t.elapsed();
        if !out.status.success() {
            panic!(
                "narscope gc failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        d
    };
    let plan = run(&["--dry-run", "--json"]);
    println!(
        "gc plan of {paths} paths on Garage (scan: list, fetch {paths} narinfos; plan): {:.2} s",
        plan.as_secs_f64()
    );
    let all = run(&["--yes", "--json"]);
    // The real run re-lists (warm index), plans, re-scans and deletes.
    let deleting = all.saturating_sub(plan).max(Duration::from_millis(1));
    println!(
        "gc of {objects} objects on Garage: {:.2} s in all; deletion ≈ {:.2} s, {:.0} objects/s (batches of 1000)",
        all.as_secs_f64(),
        deleting.as_secs_f64(),
        objects as f64 / deleting.as_secs_f64()
    );
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Upload the narinfos of `dir` and a small NAR object under each one's URL; the number of
/// objects gc can collect (narinfos and NARs; nix-cache-info stays).
fn upload_with_nars(g: &common::Garage, dir: &Path, url: &str) -> usize {
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if !p.is_file() {
            continue;
        }
        let key = p.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&p).unwrap();
        if let Some(u) = String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix("URL: "))
        {
            objects.push((u.to_string(), vec![0u8; 512]));
        }
        objects.push((key, body));
    }
    let n = objects
        .iter()
        .filter(|(k, _)| k.ends_with(".narinfo") || k.starts_with("nar/"))
        .count();
    synthetic::put_all(g, url, objects);
    n
}
