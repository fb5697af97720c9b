//! The `narscope` command line: every command works on S3 and file:// caches alike.
//!
//! Each subcommand is one file in [`cmd`]: its clap `Args` (flags and help text) and its `run`.
//! `ctx` holds what the commands share (the config, the cache a CACHE names, the trusted keys,
//! the exit codes), `progress` the one progress display (indicatif, on stderr, only on a
//! terminal) and `output` what they print. Only this file dispatches to [`cmd`].

// Doc comments in the CLI are clap's `--help` text, read in a terminal: `<config dir>` and
// `<hash>` there are words, not HTML.
#![allow(rustdoc::invalid_html_tags)]

pub mod cmd;
mod ctx;
mod output;
mod progress;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{CommandFactory, Parser, Subcommand};

pub use ctx::{EXIT_ERROR, EXIT_REFUSED, TrustArgs};

const AFTER_HELP: &str = "\
Trusted keys come from --trusted-key flags, narscope's config file (trusted-keys, and per cache
[caches.NAME] trusted-keys) and nix.conf (trusted-public-keys, extra-trusted-public-keys, the
public halves of secret-key-files; Nix's default cache.nixos.org-1 key when unset).
--no-config uses the flags only. `narscope config trust CACHE KEY` adds a key to the config;
a URL given as CACHE uses the trusted keys of the named cache with the same bucket/directory.

S3 credentials come from the standard AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
AWS_PROFILE or ?profile=, ~/.aws/credentials and ~/.aws/config (SSO included).

The dashboard (narscope CACHE) keeps a local index per cache in the platform cache directory
(~/.cache/narscope/index on Linux, or $NARSCOPE_CACHE_DIR) so it reopens at once; press ? in
it for every key. Keys and colours: ~/.config/narscope/keymap.toml and theme.toml, merged over
the defaults. NO_COLOR turns colours off. Logs: ~/.cache/narscope/narscope.log.

Examples:
  narscope 's3://my-cache?region=eu-west-1'          # the dashboard
  narscope demo                                      # a demo cache in the dashboard
  narscope ls 's3://my-cache?region=eu-west-1'
  narscope verify 's3://nix?endpoint=https://nyc3.digitaloceanspaces.com&region=nyc3' --trusted-key 'my-cache-1:…'
  narscope show file:///srv/nix-cache /nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo
  narscope keygen my-cache-1 --secret-key-file cache.sec --public-key-file cache.pub
  narscope config trust my-cache cache.pub           # trust it for the named cache my-cache
  narscope key public cache.sec                      # the public key of a secret key file";

/// narscope: see, audit and maintain Nix binary caches in S3-compatible storage, local directories or behind HTTP.
#[derive(Debug, Parser)]
#[command(
    name = "narscope",
    version,
    about,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// narscope's config file [default: <config dir>/narscope/config.toml, or $NARSCOPE_CONFIG].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ignore narscope's config file and nix.conf: trust only --trusted-key flags.
    #[arg(long, global = true)]
    pub no_config: bool,
    /// Requests in flight when fetching narinfos [default: 64, or `concurrency` in the config].
    #[arg(long, global = true, value_name = "N")]
    pub concurrency: Option<usize>,
    /// At most N requests per second to an S3 cache, retries included (B2 throttles around
    /// 500/s per account). Without it narscope still slows down when the server throttles
    /// (429, 503 SlowDown) and speeds up again slowly [default: no ceiling].
    #[arg(long, global = true, value_name = "N")]
    pub max_rps: Option<u32>,
    /// More logging on stderr (-v info, -vv debug). Also RUST_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Open the dashboard on this cache (a URL as given to `nix copy`, a directory, or a name
    /// from the config). Without a command, narscope opens the dashboard.
    #[arg(value_name = "CACHE")]
    pub cache: Option<String>,
    /// Keys to trust (--trusted-key), besides the config's and nix.conf's.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Options of the dashboard.
    #[command(flatten)]
    pub dashboard: cmd::dashboard::Args,
    /// What to do (default: the dashboard).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands; each one's flags, help text and code are in its file under [`cmd`].
///
/// The variants carry no doc comment on purpose: clap would show it instead of the help text
/// written on each `Args` struct.
#[derive(Debug, Subcommand)]
#[allow(missing_docs)]
pub enum Command {
    Ls(cmd::ls::Args),
    Show(cmd::show::Args),
    Verify(cmd::verify::Args),
    Info(cmd::info::Args),
    Init(cmd::init::Args),
    Keygen(cmd::keygen::Args),
    Key(cmd::key::Args),
    Sign(cmd::sign::Args),
    Push(cmd::push::Args),
    Pull(cmd::pull::Args),
    Copy(cmd::copy::Args),
    Delete(cmd::delete::Args),
    Gc(cmd::gc::Args),
    Doctor(cmd::doctor::Args),
    Pin(cmd::pin::Args),
    Demo(cmd::demo::Args),
    Config(cmd::config::Args),
    Completions(cmd::completions::Args),
    Man(cmd::man::Args),
}

/// Run a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    // These work without the config: `narscope config` on the file itself (it may not exist
    // yet, or be broken), completions and man pages on the clap definitions.
    let command = match cli.command {
        Some(Command::Config(a)) => {
            return cmd::config::run(a, cli.config.as_deref(), cli.no_config);
        }
        Some(Command::Completions(a)) => return cmd::completions::run(a, Cli::command()),
        Some(Command::Man(a)) => return cmd::man::run(a, Cli::command()),
        c => c,
    };
    let ctx = ctx::Ctx::load(cli.config.as_deref(), cli.no_config, cli.concurrency)?
        .with_max_rps(cli.max_rps);
    let Some(command) = command else {
        let Some(cache) = cli.cache else {
            bail!(
                "give a CACHE to open (e.g. narscope 's3://bucket?region=…' or narscope /srv/cache), \
                 or run `narscope demo` to see the dashboard on a demo cache; `narscope --help` lists the commands"
            );
        };
        return cmd::dashboard::run(&ctx, &cache, &cli.trust, &cli.dashboard, None).await;
    };
    match command {
        Command::Ls(a) => cmd::ls::run(&ctx, a).await,
        Command::Show(a) => cmd::show::run(&ctx, a).await,
        Command::Verify(a) => cmd::verify::run(&ctx, a).await,
        Command::Info(a) => cmd::info::run(&ctx, a).await,
        Command::Init(a) => cmd::init::run(&ctx, a).await,
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Key(a) => cmd::key::run(a),
        Command::Sign(a) => cmd::sign::run(&ctx, a).await,
        Command::Push(a) => cmd::push::run(&ctx, a).await,
        Command::Pull(a) => cmd::pull::run(&ctx, a).await,
        Command::Copy(a) => cmd::copy::run(&ctx, a).await,
        Command::Delete(a) => cmd::delete::run(&ctx, a).await,
        Command::Gc(a) => cmd::gc::run(&ctx, a).await,
        Command::Doctor(a) => cmd::doctor::run(&ctx, a).await,
        Command::Pin(a) => cmd::pin::run(&ctx, a).await,
        Command::Demo(a) => cmd::demo::run(&ctx, a).await,
        // Run above, before the config is loaded.
        Command::Config(a) => cmd::config::run(a, cli.config.as_deref(), cli.no_config),
        Command::Completions(a) => cmd::completions::run(a, Cli::command()),
        Command::Man(a) => cmd::man::run(a, Cli::command()),
    }
}

#[cfg(test)]
mod tests;
