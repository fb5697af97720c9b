//! `narscope sign`: add signatures to narinfos in place, or drop a retired key's.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cli::ctx::{Ctx, TrustArgs, key_flag, write_help};
use crate::cli::output::report;
use crate::cli::progress::run_job;
use crate::jobs::JobKind;
use crate::jobs::sign::{self, SignOptions};

/// Add signatures to narinfos in place (only Sig lines change), or drop a retired key's.
///
/// Uses compare-and-swap (If-Match) where the server honours it and says when it cannot.
/// A signature under the signing key's name that does not verify is replaced. Every key
/// signs: --key-file and the URL's secret-key= and secret-keys=; narinfos are written as
/// the URL says (narinfo-compression=, storage-class= on S3).
#[derive(Debug, clap::Args)]
#[command(after_help = write_help())]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Sign these store paths.
    pub paths: Vec<String>,
    /// The secret key (as made by `narscope keygen` or `nix-store --generate-binary-cache-key`);
    /// the URL's secret-key= and secret-keys= sign too.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Every narinfo of the cache (each is read; only those without a valid signature by
    /// the key, or with one of --remove-key, are rewritten).
    #[arg(long)]
    pub all: bool,
    /// The narinfos without a valid signature by this key (the same writes as --all).
    #[arg(long)]
    pub unsigned: bool,
    /// Drop every signature under this key name (key rotation).
    #[arg(long, value_name = "NAME")]
    pub remove_key: Option<String>,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// `narscope sign`: check every key file, pick the narinfos, run the sign job, report.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let Args {
        cache: arg,
        paths,
        key_file,
        all,
        unsigned,
        remove_key,
        dry_run,
        trust,
        json: json_out,
    } = args;
    let (arg, key_file, trust) = (arg.as_str(), key_file.as_deref(), &trust);
    ctx.require_writable(arg, "`narscope sign`")?;
    // Every key file (the flag's and the URL's) is checked before the cache is touched.
    let url = ctx.url(arg)?;
    let keys_to_sign =
        sign::load_signing_keys(url.params(), &key_flag(key_file)).map_err(anyhow::Error::msg)?;
    if keys_to_sign.is_empty() && remove_key.is_none() {
        bail!(
            "nothing to do: give --key-file (or secret-key= in the cache URL) to sign, or \
             --remove-key NAME to drop signatures"
        );
    }
    let selections = usize::from(all) + usize::from(unsigned) + usize::from(!paths.is_empty());
    if selections != 1 {
        bail!("say which paths: STORE-PATH…, --all or --unsigned (one of them)");
    }
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    let targets: Vec<String> = if paths.is_empty() {
        // Every narinfo: the job reads each one and rewrites only those that lack a valid
        // signature by the key (or carry one of --remove-key), so --all and --unsigned
        // select the same writes; no separate audit is needed.
        use futures::StreamExt;
        let mut keys_out = Vec::new();
        let mut pages = std::pin::pin!(cache.narinfo_keys(ctx.concurrency()));
        while let Some(page) = pages.next().await {
            keys_out.extend(page?.into_iter().map(|o| o.key));
        }
        keys_out.sort();
        keys_out
    } else {
        paths
            .iter()
            .map(|p| crate::cache::narinfo_key_for(p).map_err(anyhow::Error::from))
            .collect::<Result<_>>()?
    };
    let n = targets.len();
    let opts = SignOptions {
        keys: keys_to_sign,
        remove_key,
        concurrency: ctx.concurrency(),
        dry_run,
    };
    let c2 = cache.clone();
    let (job, state, summary) = run_job(
        JobKind::Sign,
        format!("sign {n} narinfo(s)"),
        move |job, notify| sign::sign(c2, targets, opts, keys, None, job, notify),
    )
    .await;
    report(
        json_out,
        "sign",
        ctx.throttle_stats(),
        &job,
        &state,
        summary.as_ref(),
        |s: &sign::SignSummary| {
            let verb = if dry_run { "would change" } else { "changed" };
            let mut t = format!(
                "{verb} {} narinfo(s): {} signature(s) added, {} removed; {} already done; {} failed",
                s.changed, s.added, s.removed, s.unchanged, s.failed
            );
            if !dry_run && !s.compare_and_swap {
                t.push_str(&format!(
                    "\nnote: {} does not honour If-Match, so narinfos were overwritten without \
                     compare-and-swap; {} of them were read back carrying the change (a \
                     concurrent writer may still overwrite them later)",
                    cache.store().describe(),
                    s.verified
                ));
            }
            if s.retries > 0 {
                t.push_str(&format!(
                    "\n{} write(s) retried after a concurrent change",
                    s.retries
                ));
            }
            t
        },
    )
}
