//! `narscope info`: totals of a cache, its compression mix and verdict counts, and the problems
//! of the cache as a whole (misnamed narinfos, secret keys stored in it).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use futures::StreamExt;
use serde_json::json;

use crate::audit::{self, AuditOptions};
use crate::cli::ctx::{CACHE_HELP, Ctx, TrustArgs, UpstreamArgs, run_audit, scanned_index};
use crate::cli::output::table;
use crate::space::group::{Column, Package, sort_packages};
use crate::storage;
use crate::units::{age, human_size};

/// Totals: paths, NAR bytes, stored bytes, compression mix and verdict counts.
///
/// Also reports problems of the cache as a whole: objects named like a narinfo that name
/// no store path, and secret keys stored in the cache (small objects at the root and any
/// *.sec, *.key or *.secret are read, at most 100; the key itself is never printed), and
/// whether the bucket keeps versions: where it does, the noncurrent versions and delete
/// markers, by kind (narinfos, NARs, listings, other), from a version listing.
///
/// With --upstream (or the cache's configured `upstreams`): how many of its paths an upstream
/// serves with a signature that verifies under a trusted key, and their NAR and file bytes.
///
/// With --by-package: where the space goes instead. Store paths are grouped by package name,
/// split from the version the way Nix splits a derivation name (`openssl-3.0.13` → openssl;
/// outputs stay apart: `openssl-3.0.13-dev` → openssl-dev), and each group shows its
/// versions (paths), NAR bytes, stored bytes (a NAR object two narinfos share counts once),
/// the age of its newest and oldest path (from the narinfo's LastModified) and its share of
/// the cache's stored bytes. Biggest stored bytes first (--sort), all groups (--top N for the
/// first N).
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print the result as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Upstreams to relate the cache to: the paths they serve trusted are counted.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// Show the space by package (name without version; outputs apart) instead of the totals.
    #[arg(long)]
    pub by_package: bool,
    /// With --by-package: only the first N groups (a total line still counts all).
    #[arg(long, value_name = "N", requires = "by_package")]
    pub top: Option<usize>,
    /// With --by-package: the column to sort by (descending; name sorts A to Z): name,
    /// versions, nar, stored, newest, oldest.
    #[arg(long, value_name = "COLUMN", default_value = "stored", value_parser = parse_column, requires = "by_package")]
    pub sort: Column,
}

fn parse_column(s: &str) -> Result<Column, String> {
    Column::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Column::ALL.iter().map(|c| c.as_str()).collect();
        format!("unknown column '{s}': one of {}", names.join(", "))
    })
}

/// Audit every narinfo, list every object, probe the small ones for keys, print the totals.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    if args.by_package {
        return by_package(ctx, &args).await;
    }
    let (arg, trust, json) = (args.cache.as_str(), &args.trust, args.json);
    ctx.require_listable(arg, "`narscope info`")?;
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let ups = ctx.upstreams(&args.upstream, named, &keys).await?;
    let cache_info = cache.cache_info().await?;
    let opts = AuditOptions {
        concurrency: ctx.concurrency(),
        ..AuditOptions::default()
    };
    let reports = run_audit(&cache, &[], keys, &opts).await?;
    // Everything stored under the cache root, NARs and litter included.
    let mut objects = 0u64;
    let mut stored = 0u64;
    // Local stores list from one cached directory read; remote ones as parallel scans.
    let scans = if cache.store().supports_blocking_get() {
        1
    } else {
        ctx.concurrency().clamp(1, 32)
    };
    let mut pages = std::pin::pin!(storage::list_root_parallel_with(
        cache.store().clone(),
        scans,
        storage::RootKeys::All
    ));
    // Objects to read for secret keys, and objects named like a narinfo that are none.
    let mut key_candidates = Vec::new();
    let mut misnamed = Vec::new();
    while let Some(page) = pages.next().await {
        for o in page?.objects {
            objects += 1;
            stored += o.size;
            if let Some(why) = crate::nix::store_path::narinfo_key_problem(&o.key) {
                misnamed.push((o.key.clone(), why));
            }
            if crate::keyprobe::is_candidate(&o.key, o.size) {
                key_candidates.push((o.key, o.size));
            }
        }
    }
    misnamed.sort();
    let leaked = crate::keyprobe::probe(cache.store(), key_candidates).await;
    let problems = info_problems(&leaked, &misnamed);
    let nar_bytes: u64 = reports.iter().filter_map(|r| r.nar_size).sum();
    let file_bytes: u64 = reports.iter().filter_map(|r| r.file_size).sum();
    let mut mix: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &reports {
        if let Some(c) = &r.compression {
            let e = mix.entry(c.clone()).or_default();
            e.0 += 1;
            e.1 += r.file_size.unwrap_or(0);
        }
    }
    let summary = audit::summarize(&reports);
    let upstream = served_by(&ups, &reports, ctx.concurrency()).await;
    let versions = learn_versions(&cache, ctx.concurrency()).await;
    let mut out = std::io::stdout().lock();
    if json {
        let mut doc = json!({
            "cache": cache.url().to_string(),
            "cacheInfo": cache_info.as_ref().map(|c| json!({
                "storeDir": c.declared_store_dir(),
                "wantMassQuery": c.want_mass_query,
                "priority": c.priority,
                "problems": c.problems(),
            })),
            "paths": reports.len(),
            "narBytes": nar_bytes,
            "fileBytes": file_bytes,
            "objects": objects,
            "storedBytes": stored,
            "compression": mix.iter().map(|(k, (n, b))| (k.clone(), json!({"paths": n, "fileBytes": b}))).collect::<serde_json::Map<_, _>>(),
            "verdicts": summary.iter().map(|(s, n)| (s.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "problems": problems,
            "secretKeys": leaked.found,
            "keyCheck": json!({
                "checked": leaked.checked,
                "notChecked": leaked.not_checked,
            }),
        });
        if let Some(map) = doc.as_object_mut() {
            map.extend(versions.to_json());
            if let Some(u) = &upstream {
                map.insert("upstreams".into(), json!(ups.describe_all()));
                map.insert("upstream".into(), json!(u));
            }
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(0);
    }
    let ci = match &cache_info {
        None => "MISSING (Nix writes it on first push; `narscope init` writes one)".into(),
        Some(c) => {
            let mut parts = Vec::new();
            if let Some(d) = c.declared_store_dir() {
                parts.push(format!("StoreDir {d}"));
            }
            if let Some(w) = c.want_mass_query {
                parts.push(format!("WantMassQuery {}", u8::from(w)));
            }
            if let Some(p) = c.priority {
                parts.push(format!("Priority {p}"));
            }
            let mut s = parts.join(", ");
            if !c.problems().is_empty() {
                if !s.is_empty() {
                    s.push_str("; ");
                }
                s.push_str("BROKEN: ");
                s.push_str(&c.problems().join("; "));
            }
            s
        }
    };
    let n = reports.len().max(1) as f64;
    let mix_s: Vec<String> = mix
        .iter()
        .map(|(k, (c, b))| {
            format!(
                "{k} {c} ({:.0}%, {})",
                *c as f64 * 100.0 / n,
                human_size(*b)
            )
        })
        .collect();
    let verdicts: Vec<String> = summary
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    let mut rows = vec![
        vec!["cache:".into(), cache.url().to_string()],
        vec!["nix-cache-info:".into(), ci],
        vec!["paths:".into(), reports.len().to_string()],
        vec![
            "NAR bytes:".into(),
            format!("{} ({nar_bytes})", human_size(nar_bytes)),
        ],
        vec![
            "file bytes:".into(),
            format!("{} (FileSize of all narinfos)", human_size(file_bytes)),
        ],
        vec![
            "stored bytes:".into(),
            format!("{} in {objects} objects", human_size(stored)),
        ],
        vec!["compression:".into(), mix_s.join(", ")],
        vec!["verdicts:".into(), verdicts.join(", ")],
    ];
    if let Some(u) = &upstream {
        rows.push(vec![
            "upstream:".into(),
            format!(
                "{} of {} path(s) served by {} with a trusted signature ({} NAR, {} file)",
                u.served,
                u.checked,
                ups.describe_all().join(", "),
                human_size(u.nar_bytes),
                human_size(u.file_bytes)
            ),
        ]);
        if u.not_trusted > 0 || u.errors > 0 {
            rows.push(vec![
                "".into(),
                format!(
                    "not served: {} whose upstream narinfo does not verify, {} the upstream \
                     could not be asked about",
                    u.not_trusted, u.errors
                ),
            ]);
        }
        for e in &u.examples {
            rows.push(vec!["".into(), e.clone()]);
        }
    }
    rows.extend(versions.rows());
    write!(out, "{}", table(&["", ""], &rows).trim_start_matches('\n'))?;
    write_info_problems(&mut out, &problems, &leaked)?;
    Ok(0)
}

/// What `info` learnt about the bucket's versions: its versioning state (or why it is
/// unknown) and, when it keeps versions, what a version listing found (or why it failed).
struct Versions {
    state: Result<storage::Versioning, storage::StoreError>,
    stats: Option<Result<storage::VersionStats, storage::StoreError>>,
}

/// Ask the bucket whether it keeps versions and, if it does, list them (never fatal: errors
/// are reported in the output).
async fn learn_versions(cache: &crate::cache::Cache, concurrency: usize) -> Versions {
    let state = cache.versioning().await;
    let stats = match &state {
        Ok(v) if v.keeps_versions() => Some(
            storage::version_stats(cache.store().clone(), concurrency.clamp(1, 32), |_| {}).await,
        ),
        _ => None,
    };
    Versions { state, stats }
}

impl Versions {
    /// `versioning` (`enabled`, `suspended`, `unversioned` or `unknown`, with
    /// `versioningError`), and for a bucket that keeps versions `noncurrent` and
    /// `deleteMarkers` by kind (or `versionsError`).
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        match &self.state {
            Ok(v) => {
                m.insert("versioning".into(), json!(v));
            }
            Err(e) => {
                m.insert("versioning".into(), json!("unknown"));
                m.insert("versioningError".into(), json!(e.to_string()));
            }
        }
        match &self.stats {
            Some(Ok(s)) => {
                let mut nc = serde_json::to_value(s.noncurrent).unwrap_or_default();
                if let Some(o) = nc.as_object_mut() {
                    o.insert("total".into(), json!(s.noncurrent.total()));
                }
                let mut dm = serde_json::to_value(s.delete_markers).unwrap_or_default();
                if let Some(o) = dm.as_object_mut() {
                    o.insert("total".into(), json!(s.delete_markers.total()));
                }
                m.insert("noncurrent".into(), nc);
                m.insert("deleteMarkers".into(), dm);
                m.insert("currentVersions".into(), json!(s.current));
            }
            Some(Err(e)) => {
                m.insert("versionsError".into(), json!(e.to_string()));
            }
            None => {}
        }
        m
    }

    /// The text rows: versioning, and for a bucket that keeps versions what it keeps and
    /// what frees it.
    fn rows(&self) -> Vec<Vec<String>> {
        let mut rows = vec![vec![
            "versioning:".into(),
            match &self.state {
                Ok(v) if v.keeps_versions() => format!(
                    "{} (a delete only hides an object; its bytes stay stored)",
                    v.label()
                ),
                Ok(v) => v.label().to_string(),
                Err(e) => format!("unknown ({e})"),
            },
        ]];
        match &self.stats {
            Some(Ok(s)) => {
                rows.push(vec!["noncurrent:".into(), s.noncurrent.describe()]);
                rows.push(vec!["delete markers:".into(), s.delete_markers.describe()]);
                if s.keeps_anything() {
                    rows.push(vec![
                        "frees it:".into(),
                        storage::version_stats::FREES_NONCURRENT.into(),
                    ]);
                }
            }
            Some(Err(e)) => rows.push(vec![
                "noncurrent:".into(),
                format!("unknown (listing versions failed: {e})"),
            ]),
            None => {}
        }
        rows
    }
}

/// `info`'s problems beyond verdicts: secret keys stored in the cache and objects named like a
/// narinfo that name no store path, each `{kind, object, message}`.
fn info_problems(
    leaked: &crate::keyprobe::KeyProbe,
    misnamed: &[(String, String)],
) -> Vec<serde_json::Value> {
    let keys = leaked
        .found
        .iter()
        .map(|k| json!({"kind": "secret-key", "object": k.object, "message": k.message()}));
    let names = misnamed.iter().map(|(key, why)| {
        json!({"kind": "misnamed-narinfo", "object": key, "message": format!("BROKEN: {why}")})
    });
    keys.chain(names).collect()
}

/// The human form of [`info_problems`], after the table.
fn write_info_problems(
    out: &mut impl Write,
    problems: &[serde_json::Value],
    leaked: &crate::keyprobe::KeyProbe,
) -> std::io::Result<()> {
    if problems.is_empty() && leaked.not_checked == 0 {
        return Ok(());
    }
    writeln!(out, "problems:")?;
    for p in problems {
        writeln!(out, "  - {}", p["message"].as_str().unwrap_or_default())?;
    }
    if leaked.not_checked > 0 {
        writeln!(
            out,
            "  - {} small objects were not checked for secret keys (at most {} are read)",
            leaked.not_checked,
            crate::keyprobe::MAX_KEY_PROBES
        )?;
    }
    Ok(())
}

/// What the upstreams serve of the audited paths (`None` without upstreams), with the cache's
/// own NarSize and FileSize.
async fn served_by(
    ups: &crate::upstream::Upstreams,
    reports: &[audit::PathReport],
    concurrency: usize,
) -> Option<crate::upstream::ServedTotals> {
    if ups.is_empty() {
        return None;
    }
    let mine: Vec<(crate::nix::StorePath, u64, u64)> = reports
        .iter()
        .filter_map(|r| {
            let p = crate::nix::StorePath::parse_any(r.store_path.as_deref()?).ok()?;
            Some((p, r.nar_size.unwrap_or(0), r.file_size.unwrap_or(0)))
        })
        .collect();
    let paths: Vec<crate::nix::StorePath> = mine.iter().map(|m| m.0.clone()).collect();
    let answers = ups.check_all(&paths, concurrency, &|_, _| {}).await;
    let mut t = crate::upstream::ServedTotals::default();
    for ((p, nar, file), a) in mine.iter().zip(&answers) {
        t.add(p, a, *nar, *file);
    }
    Some(t)
}

/// `info --by-package`: the groups of the scanned index, as a table or JSON.
async fn by_package(ctx: &Ctx, args: &Args) -> Result<i32> {
    ctx.require_listable(&args.cache, "`narscope info --by-package`")?;
    let (cache, named) = ctx.open(&args.cache).await?;
    let keys = ctx.keys(&args.trust, named)?;
    let opened = scanned_index(ctx, &cache, &keys).await?;
    let idx = opened.index.read().unwrap_or_else(|e| e.into_inner());
    let report = crate::space::Report::build_packages(&idx);
    let mut packages = report.packages;
    sort_packages(&mut packages, args.sort, args.sort.natural_descending());
    let shown = &packages[..args.top.unwrap_or(usize::MAX).min(packages.len())];
    let total = report.stored_bytes;
    let now = std::time::SystemTime::now();
    let share = |p: &Package| {
        if total == 0 {
            0.0
        } else {
            p.stored_bytes as f64 / total as f64
        }
    };
    let when = |t: i64| {
        (t != i64::MIN)
            .then(|| std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
    };
    let unix = |t: i64| (t != i64::MIN).then_some(t);
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = json!({
            "cache": cache.url().to_string(),
            "paths": report.paths,
            "narBytes": report.nar_bytes,
            "storedBytes": total,
            "groups": packages.len(),
            "sort": args.sort.as_str(),
            "packages": shown.iter().map(|p| json!({
                "name": p.name,
                "versions": p.versions(),
                "narBytes": p.nar_bytes,
                "storedBytes": p.stored_bytes,
                "newest": unix(p.newest),
                "oldest": unix(p.oldest),
                "share": share(p),
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.versions().to_string(),
                human_size(p.nar_bytes),
                human_size(p.stored_bytes),
                age(now, when(p.newest)),
                age(now, when(p.oldest)),
                format!(
                    "{:<10} {:>5.1}%",
                    crate::units::bar(p.stored_bytes, total, 10),
                    share(p) * 100.0
                ),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &[
                "PACKAGE", "VERSIONS", "NAR", "STORED", "NEWEST", "OLDEST", "SHARE"
            ],
            &rows
        )
    )?;
    let more = packages.len() - shown.len();
    writeln!(
        out,
        "{} path(s) in {} package group(s){}: {} NAR, {} stored (shared NARs once)",
        report.paths,
        packages.len(),
        if more > 0 {
            format!(" ({more} more not shown)")
        } else {
            String::new()
        },
        human_size(report.nar_bytes),
        human_size(total),
    )?;
    Ok(0)
}
