//! Job benchmarks, side by side with Nix in the same run; prints figures, asserts nothing.
//!
//!   cargo bench --bench jobs
//!
//! 1. Push: a generated closure (NARSCOPE_BENCH_PUSH_MB, default 600 MB, in
//!    NARSCOPE_BENCH_PATHS = 60 paths of falling sizes plus a top path referencing them, about
//!    3:1 compressible) to a file:// cache, `narscope push` against `nix copy --to`, both
//!    with zstd (NARSCOPE_BENCH_COMPRESSION), medians of 3 interleaved runs. narscope runs
//!    twice: as it is (every file fsync'd before its rename) and with NARSCOPE_FSYNC=0, which
//!    writes as `nix copy` does, and once more held to one core (`taskset -c 0`). Both tools
//!    also push from a cold page cache (the closure's files dropped from it before each
//!    run), as when pushing what was built a while ago. Each line gives the CPU time (user
//!    and system) of the run and the cores it kept busy on average.
//! 2. Pull: the same closure back from the file:// cache, `narscope pull -r --to DIR`
//!    (download, decompress, verify, unpack) against `nix copy --from` (the same into the
//!    store), medians of 3.
//! 3. Sign: 100,000 narinfos (NARSCOPE_BENCH_SIGN_PATHS) on Garage over loopback.
//!
//! NARSCOPE_BENCH_PUSH_MB=0 skips parts 1 and 2.
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
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cmd::{narscope, ok};
use common::nix::nix;
use common::upload::{Upload, upload_to};

/// Wall and CPU time of one run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Run {
    wall: Duration,
    cpu: Duration,
}

impl Run {
    /// Cores kept busy on average.
    fn cores(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
}

/// Run `c` and time it, after a `sync`, so that neither tool pays for the write-back of
/// the run before it.
fn timed(mut c: Command) -> Run {
    let _ = Command::new("sync").status();
    let cpu = measure::children_cpu();
    let t = Instant::now();
    let out = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        wall,
        cpu: measure::children_cpu().saturating_sub(cpu),
    }
}

/// Drop the page cache of every file under `paths`, as if they had been built long ago: the
/// next reader waits on the disk.
fn evict(paths: &[String]) {
    for p in paths {
        narscope::nar::writer::evict_tree(Path::new(p));
    }
}

/// Deterministic bytes that zstd compresses about 3:1, like the libraries and binaries of a
/// real closure: runs of words and numbers with an occasional burst of noise.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    let words: &[&[u8]] = &[
        b"store ",
        b"path ",
        b"nix ",
        b"closure ",
        b"hash ",
        b"\n",
        b"lib",
        b".so.",
        b"glibc-",
        b"_ZN4core3fmt",
        b"\x00\x00\x00",
        b"GLIBC_2.",
        b"symbol",
        b"section ",
    ];
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(16) {
            out.extend_from_slice(&x.to_le_bytes());
        } else if x.is_multiple_of(5) {
            out.extend_from_slice(format!("{}", x % 100_000).as_bytes());
        } else {
            out.extend_from_slice(words[(x % words.len() as u64) as usize]);
        }
    }
    out.truncate(len);
    out
}

fn mb(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn main() {
    println!("narscope jobs benchmark: {}", measure::machine());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let total_mb: usize = std::env::var("NARSCOPE_BENCH_PUSH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let comp = std::env::var("NARSCOPE_BENCH_COMPRESSION").unwrap_or_else(|_| "zstd".into());

    let keyd = root.join("keys");
    std::fs::create_dir_all(&keyd).unwrap();
    let sk = keyd.join("k.sec");
    let pk = keyd.join("k.pub");
    ok({
        let mut c = narscope(&[], root);
        c.args([
            "keygen",
            "bench-1",
            "--secret-key-file",
            sk.to_str().unwrap(),
            "--public-key-file",
            pk.to_str().unwrap(),
        ]);
        c
    });
    let pk = std::fs::read_to_string(&pk).unwrap().trim().to_string();

    if total_mb > 0 {
        push_and_pull(root, total_mb, &comp, &sk, &pk);
    } else {
        println!("NARSCOPE_BENCH_PUSH_MB=0: skipping push and pull");
    }

    // Sign on Garage.
    let n: usize = std::env::var("NARSCOPE_BENCH_SIGN_PATHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let Some(g) = common::Garage::try_shared() else {
        println!("NARSCOPE_SKIP_GARAGE set: skipping the sign benchmark");
        return;
    };
    let dir = root.join("sign-src");
    let k1 = narscope::nix::SecretKey::generate("old-1").unwrap();
    narscope::demo::write_synthetic_cache(&dir, n, &k1).unwrap();
    let bucket = g.fresh_bucket();
    let s3 = g.url(&bucket, "");
    let t = Instant::now();
    let how = Upload {
        concurrency: 64,
        ..Upload::default()
    };
    upload_to(g, &s3, &dir, how);
    println!(
        "uploaded {n} narinfos to Garage in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut c = narscope(&[], root);
    c.args(["sign", &s3, "--all", "--key-file", sk.to_str().unwrap()])
        .envs(g.env());
    let d = timed(c).wall;
    println!(
        "sign  {n} narinfos on Garage (list, then GET, sign and PUT each): {:.1} s, {:.0} narinfos/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );
}

/// Parts 1 and 2: push and pull, each against Nix.
fn push_and_pull(root: &Path, total_mb: usize, comp: &str, sk: &Path, pk: &str) {
    // A closure shaped like a real one: NARSCOPE_BENCH_PATHS (default 60) content-addressed
    // directories whose sizes fall geometrically (a few large, many small), and a top path.
    let npaths: usize = std::env::var("NARSCOPE_BENCH_PATHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
        .max(1);
    let tag = common::random_hex(4);
    let mut leaves = Vec::new();
    let t = Instant::now();
    let weights: Vec<f64> = (0..npaths).map(|i| 0.93f64.powi(i as i32)).collect();
    let wsum: f64 = weights.iter().sum();
    for (i, w) in weights.iter().enumerate() {
        let bytes = ((total_mb * 1_000_000) as f64 * w / wsum) as usize;
        let d = root.join(format!("leaf-{tag}-{i}"));
        std::fs::create_dir_all(d.join("lib")).unwrap();
        let sizes = [bytes / 2, bytes / 4, bytes / 8, bytes / 8];
        for (j, s) in sizes.iter().enumerate() {
            std::fs::write(
                d.join(format!("lib/part{j}.so")),
                content(*s, (i * 10 + j) as u64 + 1),
            )
            .unwrap();
        }
        std::fs::write(d.join("README"), format!("leaf {i} of {tag}\n")).unwrap();
        let mut c = nix("nix-store", root);
        c.arg("--add").arg(&d);
        leaves.push(ok(c));
        let _ = std::fs::remove_dir_all(&d);
    }
    let list = leaves
        .iter()
        .map(|l| format!("(builtins.storePath \"{l}\")"))
        .collect::<Vec<_>>()
        .join(" ");
    let expr = format!(
        "derivation {{ name = \"bench-top-{tag}\"; system = builtins.currentSystem; builder = \"/bin/sh\"; \
         args = [ \"-c\" \"echo ${{toString [ {list} ]}} > $out\" ]; }}"
    );
    let mut b = nix("nix-build", root);
    b.args(["--no-out-link", "-E", &expr]);
    let top = ok(b);
    let nar_bytes: u64 = {
        let mut c = nix("nix", root);
        c.args(["path-info", "--json", "-r", &top]);
        let v: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["narSize"].as_u64())
            .sum()
    };
    println!(
        "closure: {} paths, {:.0} MB of NAR, made in {:.1} s; compression {comp}",
        npaths + 1,
        nar_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // Push.
    let mut ours = Vec::new();
    let mut ours_nofsync = Vec::new();
    let mut theirs = Vec::new();
    let mut last_cache = PathBuf::new();
    let push = |dir: &Path, fsync: bool| {
        let mut c = narscope(&[], root);
        c.args([
            "push",
            &format!("file://{}", dir.display()),
            &top,
            "--key-file",
            sk.to_str().unwrap(),
            "--compression",
            comp,
        ]);
        if !fsync {
            c.env("NARSCOPE_FSYNC", "0");
        }
        c
    };
    let closure_paths: Vec<String> = {
        let mut c = nix("nix-store", root);
        c.args(["-qR", &top]);
        ok(c).lines().map(str::to_string).collect()
    };
    let nix_copy = |dir: &Path| {
        let mut c = nix("nix", root);
        c.args([
            "copy",
            "--to",
            &format!(
                "file://{}?compression={comp}&secret-key={}",
                dir.display(),
                sk.display()
            ),
            &top,
        ]);
        c
    };
    // narscope held to one core, as `nix copy` mostly runs: the same CPU per byte would
    // give the same time.
    let push_on_one_core = |dir: &Path| {
        let ours = push(dir, true);
        let mut c = Command::new("taskset");
        c.args(["-c", "0"])
            .arg(ours.get_program())
            .args(ours.get_args());
        for (k, v) in ours.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c
    };
    let (mut ours_cold, mut theirs_cold, mut ours_one) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..3 {
        // Cold: the closure's files are read from the disk, as when pushing what was built
        // a while ago.
        let a = root.join(format!("nix-cold-{r}"));
        let c = nix_copy(&a);
        let _ = Command::new("sync").status();
        evict(&closure_paths);
        theirs_cold.push(timed(c));
        let _ = std::fs::remove_dir_all(&a);
        let nd = root.join(format!("ns-cold-{r}"));
        let _ = Command::new("sync").status();
        evict(&closure_paths);
        ours_cold.push(timed(push(&nd, true)));
        let _ = std::fs::remove_dir_all(&nd);
        // Warm: the closure is in the page cache (the cold runs just read it).
        let a = root.join(format!("nix-cache-{r}"));
        let c = nix_copy(&a);
        theirs.push(timed(c));
        let _ = std::fs::remove_dir_all(&a);
        let nd = root.join(format!("ns-nofsync-{r}"));
        ours_nofsync.push(timed(push(&nd, false)));
        let _ = std::fs::remove_dir_all(&nd);
        let nd = root.join(format!("ns-one-core-{r}"));
        ours_one.push(timed(push_on_one_core(&nd)));
        let _ = std::fs::remove_dir_all(&nd);
        let bdir = root.join(format!("ns-cache-{r}"));
        ours.push(timed(push(&bdir, true)));
        if r < 2 {
            let _ = std::fs::remove_dir_all(&bdir);
        } else {
            last_cache = bdir;
        }
    }
    let (o, n, t) = (
        measure::median_by(ours, |r| r.wall),
        measure::median_by(ours_nofsync, |r| r.wall),
        measure::median_by(theirs, |r| r.wall),
    );
    let (oc, tc, one) = (
        measure::median_by(ours_cold, |r| r.wall),
        measure::median_by(theirs_cold, |r| r.wall),
        measure::median_by(ours_one, |r| r.wall),
    );
    let line = |what: &str, ours: Run, theirs: Option<Run>| {
        let mut l = format!(
            "push  {what:<44} narscope {:>5.2} s ({:>4.0} MB/s, {:>4.1} CPU-s on {:.2} cores)",
            ours.wall.as_secs_f64(),
            mb(nar_bytes, ours.wall),
            ours.cpu.as_secs_f64(),
            ours.cores()
        );
        if let Some(t) = theirs {
            l += &format!(
                "   nix copy --to {:>5.2} s ({:>4.0} MB/s, {:>4.1} CPU-s on {:.2} cores)",
                t.wall.as_secs_f64(),
                mb(nar_bytes, t.wall),
                t.cpu.as_secs_f64(),
                t.cores()
            );
        }
        l += &format!(
            "   speed-up {:.2}x",
            theirs.unwrap_or(t).wall.as_secs_f64() / ours.wall.as_secs_f64()
        );
        println!("{l}");
    };
    line("warm page cache", o, Some(t));
    line(
        "without fsync, as nix copy writes (NARSCOPE_FSYNC=0)",
        n,
        None,
    );
    line("on one core (taskset -c 0)", one, None);
    line("from a cold page cache", oc, Some(tc));

    // Pull, from narscope's cache (Nix accepts it: that is what the interop tests check).
    let url = format!("file://{}", last_cache.display());
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for r in 0..3 {
        // Remove the closure from the local store (with whatever refers to it, the .drv
        // included), so that `nix copy --from` really copies.
        for p in std::iter::once(&top).chain(&leaves) {
            let mut q = nix("nix-store", root);
            q.args(["-q", "--referrers-closure", p]);
            let Ok(out) = q.output() else { continue };
            let all = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut d = nix("nix-store", root);
            d.arg("--delete").args(all.lines());
            let _ = d.output();
        }
        assert!(!Path::new(&top).exists(), "{top} is still in the store");
        let mut c = nix("nix", root);
        c.args([
            "copy",
            "--from",
            &url,
            "--option",
            "trusted-public-keys",
            pk,
            &top,
        ]);
        theirs.push(timed(c));
        let out = root.join(format!("pulled-{r}"));
        let mut c = narscope(&[], root);
        c.args([
            "pull",
            &url,
            &top,
            "-r",
            "--to",
            out.to_str().unwrap(),
            "--trusted-key",
            pk,
        ]);
        ours.push(timed(c));
        let _ = std::fs::remove_dir_all(&out);
    }
    let (o, t) = (
        measure::median_by(ours, |r| r.wall),
        measure::median_by(theirs, |r| r.wall),
    );
    println!(
        "pull  narscope {:>5.2} s ({:>4.0} MB/s, {:>4.1} CPU-s on {:.2} cores)   nix copy --from {:>5.2} s ({:>4.0} MB/s, {:>4.1} CPU-s on {:.2} cores)   speed-up {:.2}x",
        o.wall.as_secs_f64(),
        mb(nar_bytes, o.wall),
        o.cpu.as_secs_f64(),
        o.cores(),
        t.wall.as_secs_f64(),
        mb(nar_bytes, t.wall),
        t.cpu.as_secs_f64(),
        t.cores(),
        t.wall.as_secs_f64() / o.wall.as_secs_f64()
    );
}
