//! Audit benchmark: list + fetch + parse + verify a generated, signed cache, on file:// and on
//! Garage over loopback, side by side with `nix store verify --all --no-contents` on the same
//! file:// copy. Prints figures; asserts nothing about time.
//!
//!   cargo bench --bench audit                       # 100,000 paths
//!   NARSCOPE_BENCH_PATHS=20000 cargo bench --bench audit
//!
//! Needs `garage` (see README) and, for the Nix column, `nix` (Debian's nix-bin).

// The tests' harness; each benchmark uses a part of it.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;
// Each benchmark prints some of these figures.
#[allow(dead_code)]
#[path = "measure.rs"]
mod measure;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::upload::{Upload, upload_to};
use narscope::nix::SecretKey;

struct Run {
    wall: Duration,
    /// CPU seconds (user + system) of the measured process.
    cpu: f64,
    /// CPU seconds the whole machine was busy meanwhile (the measured process, and servers).
    machine_cpu: f64,
    peak_rss_kib: u64,
    paths: u64,
    exit: i32,
}

/// Run a command, polling its peak RSS (VmHWM) until it exits.
fn measure(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out_reader = {
        let mut so = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut so, &mut s).ok();
            s
        })
    };
    let err_reader = {
        let mut se = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut se, &mut s).ok();
            s
        })
    };
    let mut peak = 0u64;
    let mut cpu_ticks = 0u64;
    let busy_before = machine_busy_ticks();
    let status = loop {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Fields after the command name: state is field 3; utime, stime are 14 and 15.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                cpu_ticks = cpu_ticks.max(t(11) + t(12));
            }
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    let kib: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak = peak.max(kib);
                }
            }
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let machine_cpu = machine_busy_ticks().saturating_sub(busy_before) as f64 / 100.0;
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let paths = serde_json::from_str::<serde_json::Value>(&stdout)
        .ok()
        .and_then(|v| v["paths"].as_array().map(|a| a.len() as u64))
        .unwrap_or(0);
    if !matches!(status.code(), Some(0)) {
        eprintln!("  (exit {:?}; stderr: {})", status.code(), stderr.trim());
    }
    Run {
        wall,
        cpu: cpu_ticks as f64 / 100.0,
        machine_cpu,
        peak_rss_kib: peak,
        paths,
        exit: status.code().unwrap_or(-1),
    }
}

/// Busy jiffies of all CPUs since boot (USER_HZ = 100 on Linux).
fn machine_busy_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_string();
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            Some(
                v.iter().take(8).sum::<u64>()
                    - v.get(3).copied().unwrap_or(0)
                    - v.get(4).copied().unwrap_or(0),
            )
        })
        .unwrap_or(0)
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn print(label: &str, r: &Run, n: u64) {
    println!(
        "{label:<46} {:>7.2} s  {:>7.0} paths/s  peak RSS {:>6.1} MB  CPU {:>5.1} s (machine {:>5.1} s)  (checked {}, exit {})",
        r.wall.as_secs_f64(),
        rate(n, r.wall),
        r.peak_rss_kib as f64 / 1024.0,
        r.cpu,
        r.machine_cpu,
        r.paths,
        r.exit
    );
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let n: usize = std::env::var("NARSCOPE_BENCH_PATHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let ns_root = tmp.path().join("narscope");
    // NARSCOPE_BENCH_DIR keeps the generated cache (and its key) for repeated runs.
    let dir = std::env::var_os("NARSCOPE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("cache"));
    println!(
        "narscope audit benchmark: {n} signed narinfos; {}",
        measure::machine()
    );
    let t = Instant::now();
    let key_file = dir.join("bench-key.sec");
    let public = match std::fs::read_to_string(&key_file) {
        Ok(k) if dir.join("nix-cache-info").exists() => {
            println!("reusing the cache in {}", dir.display());
            SecretKey::parse(&k).expect("key").public_key()
        }
        _ => {
            let key = SecretKey::generate("bench-1").expect("key");
            let public = narscope::demo::write_synthetic_cache(&dir, n, &key).expect("generate");
            std::fs::write(&key_file, key.to_file_text()).expect("write key");
            println!("generated in {:.1} s", t.elapsed().as_secs_f64());
            public
        }
    };
    let pk = public.to_string();
    // Warm the page cache so neither tool pays for the disk and both run alike.
    for e in std::fs::read_dir(&dir).expect("read dir").flatten() {
        let _ = std::fs::read(e.path());
    }
    let file_url = format!("file://{}", dir.display());

    let narscope_cmd = || {
        common::cmd::narscope(
            &["verify", &file_url, "--json", "--trusted-key", &pk],
            &ns_root,
        )
    };
    let have_nix = Command::new("nix").arg("--version").output().is_ok();
    let nix_root = tempfile::tempdir().expect("tempdir");
    let nix_cmd = || {
        let mut c = common::nix::nix("nix", nix_root.path());
        c.args([
            "store",
            "verify",
            "--all",
            "--no-contents",
            "--store",
            &file_url,
            "--trusted-public-keys",
            &pk,
        ]);
        c
    };
    // One unmeasured run of each (page cache, lazy init), then NARSCOPE_BENCH_RUNS (default 3)
    // runs of each, interleaved so both see the same machine; the medians are compared.
    let runs: usize = std::env::var("NARSCOPE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    measure(&mut narscope_cmd());
    if have_nix {
        measure(&mut nix_cmd());
    } else {
        println!("nix not found: skipping the Nix comparison");
    }
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        ours.push(measure(&mut narscope_cmd()));
        if have_nix {
            theirs.push(measure(&mut nix_cmd()));
        }
    }
    let nr = measure::median_by(ours, |r| r.wall);
    print(
        &format!("narscope verify, file:// (median of {runs})"),
        &nr,
        n as u64,
    );
    let nix_run = (!theirs.is_empty()).then(|| measure::median_by(theirs, |r| r.wall));
    if let Some(r) = &nix_run {
        print(
            &format!("nix store verify --all --no-contents ({runs})"),
            r,
            n as u64,
        );
    }

    match common::Garage::try_shared() {
        Some(g) => {
            let bucket = g.fresh_bucket();
            let url = g.url(&bucket, "");
            let t = Instant::now();
            let how = Upload {
                concurrency: 64,
                ..Upload::default()
            };
            upload_to(g, &url, &dir, how);
            println!(
                "uploaded to Garage in {:.1} s ({:.0} objects/s)",
                t.elapsed().as_secs_f64(),
                rate(n as u64, t.elapsed())
            );
            // NARSCOPE_BENCH_S3_CONCURRENCY=16,64 compares request concurrencies.
            let levels =
                std::env::var("NARSCOPE_BENCH_S3_CONCURRENCY").unwrap_or_else(|_| "64".into());
            for c in levels.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                let mut cmd = common::cmd::narscope(
                    &["verify", &url, "--json", "--trusted-key", &pk],
                    &ns_root,
                );
                let gr = measure(cmd.args(["--concurrency", c]).envs(g.env()));
                print(
                    &format!("narscope verify, Garage, {c} in flight"),
                    &gr,
                    n as u64,
                );
            }
        }
        None => println!("NARSCOPE_SKIP_GARAGE set: skipping Garage"),
    }
    if let Some(nix) = nix_run {
        println!(
            "speed-up on file:// vs nix store verify: {:.1}x",
            nix.wall.as_secs_f64() / nr.wall.as_secs_f64()
        );
    }
}
