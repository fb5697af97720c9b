//! `narscope ls`: every store path of a cache with its sizes, compression and verdict.

use std::io::Write;

use anyhow::Result;
use serde_json::json;

use crate::audit::AuditOptions;
use crate::cli::ctx::{CACHE_HELP, Ctx, TrustArgs, run_audit};
use crate::cli::output::{table, write_paths_doc};
use crate::units::human_size;

/// List the store paths in a cache with sizes, compression and signature verdicts.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Audit every narinfo and print the table (or the JSON document).
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let (arg, trust, json) = (args.cache.as_str(), &args.trust, args.json);
    ctx.require_listable(arg, "`narscope ls`")?;
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let opts = AuditOptions {
        concurrency: ctx.concurrency(),
        ..AuditOptions::default()
    };
    let reports = run_audit(&cache, &[], keys, &opts).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let head = [("cache", json!(cache.url().to_string()))];
        write_paths_doc(out, &head, &reports, &[])?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.store_path.clone().unwrap_or_else(|| r.key.clone()),
                r.nar_size.map(human_size).unwrap_or_default(),
                r.file_size.map(human_size).unwrap_or_default(),
                r.compression.clone().unwrap_or_default(),
                r.status.to_string(),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &["STORE PATH", "NAR", "FILE", "COMPRESSION", "STATUS"],
            &rows
        )
    )?;
    writeln!(out, "{} paths", reports.len())?;
    Ok(0)
}
