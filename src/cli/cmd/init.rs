//! `narscope init`: create a cache (its bucket or directory) and its nix-cache-info.

use anyhow::{Result, bail};

use crate::cli::ctx::{Ctx, write_help};

/// Create a cache: the bucket (where the provider allows it) or directory, and nix-cache-info.
///
/// Refuses to overwrite an existing nix-cache-info that says something else. Priority and
/// WantMassQuery come from the flags or the URL's priority= and want-mass-query= (a flag
/// that contradicts the URL is an error).
#[derive(Debug, clap::Args)]
#[command(after_help = write_help())]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// Priority: lower numbers are preferred by Nix (cache.nixos.org uses 40).
    #[arg(long, value_name = "N")]
    pub priority: Option<i64>,
    /// Write WantMassQuery: 1 (lets Nix query many paths at once).
    #[arg(long)]
    pub want_mass_query: bool,
}

/// Check the URL and its key files, create the container, write nix-cache-info unless an
/// equal one is there (a different one is refused).
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let (arg, priority, want_mass_query) = (
        args.cache.as_str(),
        args.priority,
        args.want_mass_query.then_some(true),
    );
    ctx.require_writable(arg, "`narscope init`")?;
    // Everything the URL says is checked before the cache is touched: its key files too
    // (a writer of this cache would sign with them).
    let url = ctx.url(arg)?;
    let wanted = crate::jobs::push::new_cache_info(url.params(), priority, want_mass_query)
        .map_err(anyhow::Error::msg)?;
    crate::jobs::sign::load_signing_keys(url.params(), &[]).map_err(anyhow::Error::msg)?;
    let (cache, _) = ctx.open(arg).await?;
    let created = cache.store().ensure_container().await?;
    let wanted_text = wanted.to_text();
    if let Some(existing) = cache.cache_info().await? {
        let existing_text = existing.to_text();
        if existing_text == wanted_text {
            println!(
                "{} already has this nix-cache-info; nothing to do",
                cache.url()
            );
            return Ok(0);
        }
        bail!(
            "{} already has a different nix-cache-info; refusing to overwrite it.\n--- existing\n{}--- wanted\n{}",
            cache.origin(crate::cache::CACHE_INFO_KEY),
            existing_text,
            wanted_text
        );
    }
    cache.write_cache_info(&wanted).await?;
    println!(
        "{} {}; wrote nix-cache-info:\n{}",
        if created { "created" } else { "initialised" },
        cache.url(),
        wanted_text.trim_end()
    );
    Ok(0)
}
