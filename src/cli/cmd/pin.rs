//! `narscope pin`: the pins (named GC roots) stored in a cache under narscope/roots/.

use anyhow::{Result, bail};
use serde_json::json;

use crate::cli::ctx::{CACHE_HELP, Ctx};

/// Manage the pins (named GC roots) stored in the cache under narscope/roots/.
#[derive(Debug, clap::Args)]
#[command(after_help = CACHE_HELP)]
pub struct Args {
    /// The cache: a store URL or the name of a cache in the config file (see below).
    pub cache: String,
    /// What to do.
    #[command(subcommand)]
    pub action: PinAction,
}

/// `narscope pin` actions.
#[derive(Debug, clap::Subcommand)]
pub enum PinAction {
    /// List the pins.
    Ls {
        /// Print the result as JSON on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create or replace a pin.
    Add {
        /// The pin's name (letters, digits and - _ . + @, not starting with a dot).
        name: String,
        /// The store paths it keeps.
        paths: Vec<String>,
    },
    /// Remove a pin.
    Rm {
        /// The pin's name (letters, digits and - _ . + @, not starting with a dot).
        name: String,
    },
}

/// `narscope pin`: list, add or remove a pin.
pub async fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let (arg, action) = (args.cache.as_str(), args.action);
    use crate::pins;
    // Pins are objects in the cache (listed, written, deleted).
    ctx.require_writable(arg, "`narscope pin`")?;
    let (cache, _) = ctx.open(arg).await?;
    let store = cache.store().clone();
    match action {
        PinAction::Ls { json: true } => {
            let pins = pins::list_pins(store.as_ref()).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "pins": pins }))?
            );
        }
        PinAction::Ls { json: false } => {
            let pins = pins::list_pins(store.as_ref()).await?;
            if pins.is_empty() {
                println!("no pins in {}", cache.url());
            }
            for p in pins {
                println!("{} ({} path(s))", p.name, p.paths.len());
                for x in p.paths {
                    println!("  {x}");
                }
            }
        }
        PinAction::Add { name, paths } => {
            if paths.is_empty() {
                bail!("give the store paths to pin");
            }
            for p in &paths {
                let key = crate::cache::narinfo_key_for(p)?;
                if store.head(&key).await?.is_none() {
                    eprintln!(
                        "warning: {p} is not in the cache (yet); the pin keeps it once it is"
                    );
                }
            }
            pins::write_pin(store.as_ref(), &name, &paths).await?;
            println!("pinned {} path(s) as '{name}'", paths.len());
        }
        PinAction::Rm { name } => {
            if pins::remove_pin(store.as_ref(), &name).await? {
                println!("removed pin '{name}'");
            } else {
                bail!("no pin '{name}' in {}", cache.url());
            }
        }
    }
    Ok(0)
}
