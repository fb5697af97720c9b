//! `narscope CACHE` (no subcommand) and `narscope demo`: open the dashboard on a cache.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cli::ctx::{Ctx, TrustArgs, UpstreamArgs};

/// Options of the dashboard.
// The group keeps its old id: two flattened structs named `Args` (in `demo`) would clash.
#[derive(Debug, clap::Args, Clone, Default)]
#[group(id = "DashboardArgs")]
pub struct Args {
    /// Hide every action that would change the cache.
    #[arg(long)]
    pub read_only: bool,
    /// Don't keep a local index (in the platform cache directory) between sessions.
    #[arg(long)]
    pub no_index: bool,
    /// The secret key for signing and pushing from the dashboard [default: signing-key-file
    /// in the config].
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Show the closure of this store path (repeatable) instead of listing the cache: for
    /// caches that cannot be listed (http://, https://) or to look at one deployment. The
    /// index is then not kept.
    #[arg(long = "root", value_name = "PATH")]
    pub roots: Vec<String>,
    /// Upstreams [default: the cache's `upstreams` in the config]: the list marks the paths
    /// they serve with a trusted signature (filter: upstream:yes / upstream:no), and pushes
    /// from the dashboard skip them.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
}

/// Open the dashboard on the cache `arg` names (refused when stdout is not a terminal); its
/// signing keys are checked before the cache is touched. `notice` is its first status line.
pub async fn run(
    ctx: &Ctx,
    arg: &str,
    trust: &TrustArgs,
    dash: &Args,
    notice: Option<String>,
) -> Result<i32> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        bail!(
            "the dashboard needs a terminal; for scripts use `narscope ls`, `verify` or `info` (with --json)"
        );
    }
    // The dashboard lists the whole cache, unless it shows the closures of roots.
    let http = ctx.url(arg)?.is_http();
    if http && dash.roots.is_empty() {
        bail!(
            "{arg} is an HTTP cache, which cannot be listed: open the dashboard on the closures \
             of store paths with --root /nix/store/… (repeatable)"
        );
    }
    // Key files are checked before the cache is touched.
    let key_file = match (&dash.key_file, &ctx.config().signing_key_file) {
        (Some(f), _) => Some((f.clone(), "--key-file".to_string())),
        (None, Some(f)) => Some((f.clone(), "signing-key-file in the config".to_string())),
        (None, None) => None,
    };
    let mut push = crate::jobs::push::PushOptions::resolve(
        ctx.url(arg)?.params(),
        &crate::jobs::push::PushFlags {
            key_files: key_file.into_iter().collect(),
            ..Default::default()
        },
    )
    .map_err(anyhow::Error::msg)?;
    let (cache, named) = ctx.open(arg).await?;
    let keys = ctx.keys(trust, named)?;
    push.upstreams = std::sync::Arc::new(ctx.upstreams(&dash.upstream, named, &keys).await?);
    push.upstream_concurrency = ctx.concurrency();
    let keymap = crate::tui::keymap::Keymap::with_user(
        crate::config::paths::user_file("keymap.toml")?.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = crate::tui::theme::Theme::load(
        crate::config::paths::user_file("theme.toml")?.as_deref(),
        no_color,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let notice = notice.or_else(|| {
        keys.is_empty().then(|| {
            "no trusted keys: only content-addressed paths can pass (add --trusted-key)".to_string()
        })
    });
    crate::tui::runtime::run(crate::tui::runtime::TuiOptions {
        push,
        url: cache.url().to_string(),
        cache,
        keys,
        // narscope does not write to HTTP caches.
        read_only: dash.read_only || http,
        persist: !dash.no_index,
        concurrency: ctx.concurrency(),
        keymap,
        theme,
        log_path: crate::config::paths::log_path().map(|p| p.display().to_string()),
        notice,
        roots: dash.roots.clone(),
    })
    .await?;
    Ok(0)
}
