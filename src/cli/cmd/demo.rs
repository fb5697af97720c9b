//! `narscope demo`: write a demo cache and open it in the dashboard, or print its audit.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;

use crate::audit::AuditOptions;
use crate::cache::Cache;
use crate::cli::ctx::{Ctx, TrustArgs, run_audit};
use crate::cli::output::write_verdict_line;
use crate::nix::TrustedKeys;
use crate::storage::CacheUrl;

use super::dashboard;

/// Write a demo cache (a realistic mix of good and broken paths) and open it in the
/// dashboard (on a terminal; otherwise, or with --no-tui, print its audit).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write it [default: <data dir>/narscope/demo-cache].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Print the audit instead of opening the dashboard.
    #[arg(long)]
    pub no_tui: bool,
    /// Options of the dashboard.
    #[command(flatten)]
    pub dashboard: dashboard::Args,
}

/// Write the demo cache, then open it (trusting its key) or print its audit.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let (dir, no_tui, dash) = (args.dir, args.no_tui, &args.dashboard);
    use std::io::IsTerminal;
    let dir = match dir {
        Some(d) => d,
        None => crate::demo::default_dir()?,
    };
    let demo = crate::demo::write_demo_cache(&dir)?;
    let url = CacheUrl::file(dir.clone());
    if !no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        let trust = TrustArgs {
            trusted_keys: vec![demo.public_key.to_string()],
        };
        let notice = format!(
            "demo cache in {} (its keys beside it in {}); its key {} is trusted here. Press ? for help.",
            dir.display(),
            demo.secret_key_file
                .parent()
                .unwrap_or(&demo.secret_key_file)
                .display(),
            demo.public_key.name()
        );
        return dashboard::run(ctx, &url.to_string(), &trust, dash, Some(notice)).await;
    }
    println!("wrote a demo cache to {}", dir.display());
    println!(
        "its keys are kept beside it, not in it: {} (secret) and {}",
        demo.secret_key_file.display(),
        demo.public_key_file.display()
    );
    println!("its signing key is trusted here: {}\n", demo.public_key);
    let cache = Arc::new(Cache::open(&url).await?);
    let mut keys = TrustedKeys::new();
    keys.add(demo.public_key.clone());
    let opts = AuditOptions {
        concurrency: ctx.concurrency(),
        contents: true,
        ..AuditOptions::default()
    };
    let reports = run_audit(&cache, &[], Arc::new(keys), &opts).await?;
    let mut out = std::io::stdout().lock();
    for r in &reports {
        write_verdict_line(&mut out, r)?;
    }
    writeln!(
        out,
        "\nTry: narscope verify {} --trusted-key '{}' --contents",
        dir.display(),
        demo.public_key
    )?;
    Ok(0)
}
