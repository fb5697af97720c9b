//! `narscope verify`: every path's signatures judged as Nix would (and with `--contents` its
//! NAR), with `nix store verify`'s exit code.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use crate::audit::{self, AuditOptions, AuditProgress, PathReport, Status};
use crate::cli::ctx::{CACHE_HELP, Ctx, EXIT_ERROR, TrustArgs, sort_key};
use crate::cli::output::{write_paths_doc_raw, write_verdict_line};
use crate::cli::progress::Progress;

/// Check every path's signatures as Nix would (and with --contents, its NAR).
///
/// One verdict per path: trusted, content-addressed (no trusted signature but the CA store
/// path recomputes), untrusted (signatures, none valid under a trusted key), invalid (a
/// signature under a trusted key's name that does not verify), unsigned; with --contents
/// also corrupt (NAR missing, or FileHash/FileSize/NarHash/NarSize mismatch); error when a
/// narinfo cannot be read, or an object at the root is named like a narinfo but names no
/// store path (remove such an object by hand). Exit code as `nix store verify`: bitmask of 1 corrupt,
/// 2 not trusted, 4 other error; 0 when all is well.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Check only these store paths (default: every narinfo in the cache).
    pub paths: Vec<String>,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Download every NAR, decompress it and check its hashes and sizes.
    #[arg(long)]
    pub contents: bool,
    /// NAR downloads in flight with --contents.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub nar_concurrency: usize,
    /// Print one JSON document: {cache, paths: [{storePath, status, signatures, reasons}], summary,
    /// throttle}.
    #[arg(long)]
    pub json: bool,
    /// Print every path, not only those with problems.
    #[arg(short, long)]
    pub long: bool,
}

/// `verify`; with `--json` a failure is one document too (the error in it, exit 4).
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let opts = AuditOptions {
        concurrency: ctx.concurrency(),
        contents: args.contents,
        nar_concurrency: args.nar_concurrency,
    };
    let (arg, json) = (args.cache.as_str(), args.json);
    match verify(ctx, &args, &opts).await {
        Err(e) if json => {
            let doc = json!({
                "cache": arg,
                "contents": opts.contents,
                "paths": [],
                "error": format!("{e:#}"),
                "exitCode": EXIT_ERROR,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            eprintln!("error: {e:#}");
            Ok(EXIT_ERROR)
        }
        r => r,
    }
}

/// Audit the paths, counting verdicts as they come, and print what was asked for.
async fn verify(ctx: &Ctx, args: &Args, opts: &AuditOptions) -> Result<i32> {
    let (arg, paths, trust, json, long) = (
        args.cache.as_str(),
        args.paths.as_slice(),
        &args.trust,
        args.json,
        args.long,
    );
    if paths.is_empty() {
        ctx.require_listable(arg, "`narscope verify` without paths")?;
    }
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    if keys.is_empty() {
        tracing::warn!("no trusted keys: only content-addressed paths can pass");
    }
    // Keep only what gets printed: one serialized line per path for --json, the reports
    // worth a line otherwise. A 100k-path audit then holds a few bytes per good path.
    let mut counts: BTreeMap<Status, usize> = Status::ALL.iter().map(|s| (*s, 0)).collect();
    let mut code = 0;
    let mut total = 0usize;
    let mut lines: Vec<(String, String, Vec<u8>)> = Vec::new();
    let mut kept: Vec<PathReport> = Vec::new();
    let mut ser_err = None;
    let progress = Arc::new(AuditProgress::default());
    let line = Progress::audit(progress.clone(), "checking");
    let res = audit::audit_each(cache.clone(), paths, keys, opts, progress, |r| {
        total += 1;
        code |= r.status.exit_bits();
        *counts.entry(r.status).or_default() += 1;
        if json {
            let (name, key) = sort_key(&r);
            match serde_json::to_vec(&r) {
                Ok(v) => lines.push((name.to_string(), key.to_string(), v)),
                Err(e) => ser_err = Some(e),
            }
        } else if long || !matches!(r.status, Status::Trusted | Status::ContentAddressed) {
            kept.push(r);
        }
    })
    .await;
    line.finish();
    res?;
    if let Some(e) = ser_err {
        return Err(e.into());
    }
    let mut out = std::io::stdout().lock();
    if json {
        lines.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let counts: BTreeMap<&str, usize> = counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let head = [
            ("cache", json!(cache.url().to_string())),
            ("contents", json!(opts.contents)),
        ];
        let tail = [
            ("summary", json!(counts)),
            ("throttle", json!(ctx.throttle_stats())),
            ("exitCode", json!(code)),
        ];
        let raw: Vec<&[u8]> = lines.iter().map(|(_, _, v)| v.as_slice()).collect();
        write_paths_doc_raw(out, &head, &raw, &tail)?;
        return Ok(code);
    }
    kept.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    for r in &kept {
        write_verdict_line(&mut out, r)?;
    }
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    writeln!(
        out,
        "checked {total} paths{}: {}",
        if opts.contents { " with contents" } else { "" },
        if parts.is_empty() {
            "nothing to check".into()
        } else {
            parts.join(", ")
        }
    )?;
    if let Some(note) = ctx.throttle_stats().and_then(|t| t.note()) {
        writeln!(out, "{note}")?;
    }
    Ok(code)
}
