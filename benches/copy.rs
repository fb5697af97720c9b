//! `narscope copy` against `nix copy --from A --to B`, in the same run; prints figures,
//! asserts nothing.
//!
//!   cargo bench --bench copy
//!
//! A closure of incompressible random data (NARSCOPE_BENCH_COPY_MB, default 600 MB, in
//! NARSCOPE_BENCH_COPY_PATHS = 12 paths) is added to the store with real Nix and put into
//! file://A by `nix copy --to file://A?compression=zstd`, signed. Then, each run into an
//! empty destination:
//! 1. file://A → file://B: `narscope copy` (hard links: no byte is read) against
//!    `nix copy --from file://A --to file://B?compression=zstd` (which decompresses,
//!    re-dumps and recompresses);
//! 2. Garage bucket → Garage bucket: `narscope copy` (CopyObject on the server) against
//!    `nix copy --from s3://… --to s3://…?compression=zstd` (skipped, with a note, when this
//!    Nix cannot talk to S3, as Debian's nix-bin cannot);
//! 3. Garage → file://: `narscope copy s3://…` (streamed) against `nix copy --from` the
//!    bucket's website endpoint over HTTP.
//!
//! Each line gives the wall time, the CPU seconds (user and system) of the tool and the ratio.
//!
//! Needs Nix (Debian's nix-bin) and Garage.

// The tests' harness; each benchmark uses a part of it.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;
// Each benchmark prints some of these figures.
#[allow(dead_code)]
#[path = "measure.rs"]
mod measure;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cmd::{narscope, ok};
use common::nix::nix;

/// Wall and CPU time of one run.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
}

/// Run `c` and time it (after a `sync`); `None` (with its error) when it fails.
fn timed(mut c: Command) -> Result<Run, String> {
    let _ = Command::new("sync").status();
    let cpu = measure::children_cpu();
    let t = Instant::now();
    let out = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{c:?}: {e}"))?;
    let wall = t.elapsed();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(Run {
        wall,
        cpu: measure::children_cpu().saturating_sub(cpu),
    })
}

fn line(what: &str, r: &Run) {
    println!(
        "  {what:<44} {:>7.2} s wall  {:>7.2} s CPU",
        r.wall.as_secs_f64(),
        r.cpu.as_secs_f64()
    );
}

fn ratio(ours: &Run, theirs: &Run) {
    println!(
        "  narscope is {:.1}x faster (wall), {:.1}x less CPU",
        theirs.wall.as_secs_f64() / ours.wall.as_secs_f64().max(1e-3),
        theirs.cpu.as_secs_f64() / ours.cpu.as_secs_f64().max(1e-2)
    );
}

fn random_file(path: &Path, bytes: usize, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mb: usize = std::env::var("NARSCOPE_BENCH_COPY_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let n: usize = std::env::var("NARSCOPE_BENCH_COPY_PATHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    println!(
        "copy benchmark: {mb} MB in {n} paths; {}",
        measure::machine()
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let seed = std::process::id() as u64;
    let mut paths = Vec::new();
    for i in 0..n {
        let d = root.join(format!("data-{i}"));
        std::fs::create_dir_all(&d).unwrap();
        random_file(&d.join("blob"), mb * (1 << 20) / n, seed * 1000 + i as u64);
        let mut c = nix("nix-store", root);
        c.arg("--add").arg(&d);
        paths.push(ok(c).trim().to_string());
        let _ = std::fs::remove_dir_all(&d);
    }
    let (sk, pk) = common::nix::keygen_in(root, "bench-copy", |args| {
        ok(narscope(args, root));
    });
    let a = root.join("A");
    let mut c = nix("nix", root);
    c.args([
        "copy",
        "--to",
        &format!(
            "file://{}?compression=zstd&secret-key={}",
            a.display(),
            sk.display()
        ),
    ])
    .args(&paths);
    ok(c);
    let a_url = format!("file://{}", a.display());

    println!("file://A -> file://B (zstd NARs):");
    let b = root.join("B");
    let ours = timed({
        let mut c = narscope(
            &[
                "copy",
                &a_url,
                &format!("file://{}", b.display()),
                "--all",
                "--trusted-key",
                &pk,
            ],
            root,
        );
        c.env("NARSCOPE_FSYNC", "0");
        c
    })
    .unwrap_or_else(|e| panic!("narscope copy: {e}"));
    line("narscope copy (hard links)", &ours);
    let copied = std::fs::read_dir(&b)
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.file_name().to_string_lossy().ends_with(".narinfo"))
        })
        .count();
    assert_eq!(copied, n, "narscope copied every path");
    let b2 = root.join("B2");
    let mut c = nix("nix", root);
    c.args([
        "copy",
        "--no-check-sigs",
        "--from",
        &a_url,
        "--to",
        &format!("file://{}?compression=zstd", b2.display()),
    ])
    .args(&paths);
    let theirs = timed(c).unwrap_or_else(|e| panic!("nix copy: {e}"));
    line("nix copy --from file://A --to file://B", &theirs);
    ratio(&ours, &theirs);
    let _ = std::fs::remove_dir_all(&b);
    let _ = std::fs::remove_dir_all(&b2);

    let Some(g) = common::Garage::try_shared() else {
        println!("Garage: not available, skipped");
        return;
    };
    println!("Garage bucket -> Garage bucket (same endpoint and credentials):");
    let (g1, g2, g3) = (g.fresh_bucket(), g.fresh_bucket(), g.fresh_bucket());
    let (u1, u2) = (g.url(&g1, ""), g.url(&g2, ""));
    let mut c = narscope(&["copy", &a_url, &u1, "--all", "--trusted-key", &pk], root);
    c.envs(g.env());
    ok(c);
    let mut c = narscope(&["copy", &u1, &u2, "--all", "--trusted-key", &pk], root);
    c.envs(g.env());
    let ours = timed(c).unwrap_or_else(|e| panic!("narscope copy: {e}"));
    line("narscope copy (CopyObject)", &ours);
    let mut c = narscope(
        &[
            "copy",
            &u1,
            &u2,
            "--all",
            "--trusted-key",
            &pk,
            "--dry-run",
            "--json",
        ],
        root,
    );
    c.envs(g.env());
    let plan: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
    assert_eq!(
        plan["plan"]["alreadyThere"], n,
        "narscope copied every path: {plan}"
    );
    let mut c = nix("nix", root);
    c.envs(g.env())
        .args([
            "copy",
            "--no-check-sigs",
            "--from",
            &u1,
            "--to",
            &format!("{}&compression=zstd", g.url(&g3, "")),
        ])
        .args(&paths);
    match timed(c) {
        Ok(theirs) => {
            line("nix copy --from s3://G1 --to s3://G3", &theirs);
            ratio(&ours, &theirs);
        }
        Err(e) => println!(
            "  nix copy between the buckets: not possible here (this Nix has no S3 support: {})",
            e.lines().last().unwrap_or_default().trim()
        ),
    }

    // What this Nix can do with Garage: read it over HTTP (the website endpoint of the
    // default bucket). Garage -> file://, both tools.
    println!("Garage bucket -> file:// (NARs streamed):");
    let prefix = format!("bench-copy-{seed}");
    let web = g.url(&g.default_bucket, &prefix);
    let mut c = narscope(&["copy", &a_url, &web, "--all", "--trusted-key", &pk], root);
    c.envs(g.env());
    ok(c);
    let b = root.join("B3");
    let to = format!("file://{}", b.display());
    let mut c = narscope(&["copy", &web, &to, "--all", "--trusted-key", &pk], root);
    c.envs(g.env()).env("NARSCOPE_FSYNC", "0");
    let ours = timed(c).unwrap_or_else(|e| panic!("narscope copy: {e}"));
    line("narscope copy s3://G -> file://B", &ours);
    let b2 = root.join("B4");
    let mut c = nix("nix", root);
    c.args([
        "copy",
        "--no-check-sigs",
        "--from",
        &format!("{}/{prefix}", g.web_url),
        "--to",
        &format!("file://{}?compression=zstd", b2.display()),
    ])
    .args(&paths);
    match timed(c) {
        Ok(theirs) => {
            line("nix copy --from http://G --to file://B", &theirs);
            ratio(&ours, &theirs);
        }
        Err(e) => println!("  nix copy over HTTP failed: {e}"),
    }
}
