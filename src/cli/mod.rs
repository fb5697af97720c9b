//! The `narscope` command line: every command works on S3 and file:// caches alike.

mod commands;
mod config_cmd;
mod jobs;
mod output;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use commands::{EXIT_ERROR, run};

const CACHE_HELP: &str = "CACHE is a Nix store URL — s3://bucket[/prefix]?region=…&endpoint=…&scheme=…&profile=…&addressing-style=path|virtual|auto, file:///abs/path or a plain directory — or the name of a cache in narscope's config file.";

/// `--help` text after the options of the commands that write (push, init, sign): the cache
/// URL and the Nix store parameters narscope honours in it.
fn write_help() -> String {
    format!("{CACHE_HELP}\n\n{}", crate::storage::params::HONOURED_HELP)
}

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

/// narscope: see, audit and maintain Nix binary caches in S3-compatible storage or local directories.
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
    /// More logging on stderr (-v info, -vv debug). Also RUST_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Open the dashboard on this cache (a URL as given to `nix copy`, a directory, or a name
    /// from the config). Without a command, narscope opens the dashboard.
    #[arg(value_name = "CACHE")]
    pub cache: Option<String>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
    /// What to do (default: the dashboard).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options of the dashboard.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct DashboardArgs {
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
}

/// Options shared by commands that judge signatures.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct TrustArgs {
    /// Trust this public key, NAME:BASE64 as in nix.conf's trusted-public-keys (repeatable).
    #[arg(long = "trusted-key", value_name = "NAME:BASE64")]
    pub trusted_keys: Vec<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the store paths in a cache with sizes, compression and signature verdicts.
    #[command(after_help = CACHE_HELP)]
    Ls {
        /// The cache.
        cache: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one narinfo: every field, its signatures and whether its NAR exists.
    #[command(after_help = CACHE_HELP)]
    Show {
        /// The cache.
        cache: String,
        /// A store path, its base name (hash-name) or its 32-character hash part.
        path: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check every path's signatures as Nix would (and with --contents, its NAR).
    ///
    /// One verdict per path: trusted, content-addressed (no trusted signature but the CA store
    /// path recomputes), untrusted (signatures, none valid under a trusted key), invalid (a
    /// signature under a trusted key's name that does not verify), unsigned; with --contents
    /// also corrupt (NAR missing, or FileHash/FileSize/NarHash/NarSize mismatch); error when a
    /// narinfo cannot be read, or an object at the root is named like a narinfo but names no
    /// store path (remove such an object by hand). Exit code as `nix store verify`: bitmask of 1 corrupt,
    /// 2 not trusted, 4 other error; 0 when all is well.
    #[command(after_help = CACHE_HELP)]
    Verify {
        /// The cache.
        cache: String,
        /// Check only these store paths (default: every narinfo in the cache).
        paths: Vec<String>,
        #[command(flatten)]
        trust: TrustArgs,
        /// Download every NAR, decompress it and check its hashes and sizes.
        #[arg(long)]
        contents: bool,
        /// NAR downloads in flight with --contents.
        #[arg(long, value_name = "N", default_value_t = 8)]
        nar_concurrency: usize,
        /// Print one JSON document: {cache, paths: [{storePath, status, signatures, reasons}], summary}.
        #[arg(long)]
        json: bool,
        /// Print every path, not only those with problems.
        #[arg(short, long)]
        long: bool,
    },
    /// Totals: paths, NAR bytes, stored bytes, compression mix and verdict counts.
    ///
    /// Also reports problems of the cache as a whole: objects named like a narinfo that name
    /// no store path, and secret keys stored in the cache (small objects at the root and any
    /// *.sec, *.key or *.secret are read, at most 100; the key itself is never printed).
    #[command(after_help = CACHE_HELP)]
    Info {
        /// The cache.
        cache: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a cache: the bucket (where the provider allows it) or directory, and nix-cache-info.
    ///
    /// Refuses to overwrite an existing nix-cache-info that says something else. Priority and
    /// WantMassQuery come from the flags or the URL's priority= and want-mass-query= (a flag
    /// that contradicts the URL is an error).
    #[command(after_help = write_help())]
    Init {
        /// The cache.
        cache: String,
        /// Priority: lower numbers are preferred by Nix (cache.nixos.org uses 40).
        #[arg(long, value_name = "N")]
        priority: Option<i64>,
        /// Write WantMassQuery: 1 (lets Nix query many paths at once).
        #[arg(long)]
        want_mass_query: bool,
    },
    /// Generate an ed25519 signing key pair in Nix's format (as nix-store --generate-binary-cache-key).
    ///
    /// Then prints the next steps: the nix.conf line that trusts the key
    /// (extra-trusted-public-keys), the `narscope config trust` command that makes narscope
    /// trust it, and how to sign as you push. The secret key is never printed.
    Keygen {
        /// The key name, conventionally host-N, e.g. cache.example.org-1.
        name: String,
        /// Where to write the secret key (created with mode 0600; never printed).
        #[arg(long, value_name = "FILE")]
        secret_key_file: PathBuf,
        /// Where to write the public key (give its contents to trusted-public-keys).
        #[arg(long, value_name = "FILE")]
        public_key_file: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Work with key files: `narscope key public SECRET-FILE` prints the public key.
    Key {
        /// What to do.
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Add signatures to narinfos in place (only Sig lines change), or drop a retired key's.
    ///
    /// Uses compare-and-swap (If-Match) where the server honours it and says when it cannot.
    /// A signature under the signing key's name that does not verify is replaced. Every key
    /// signs: --key-file and the URL's secret-key= and secret-keys=; narinfos are written as
    /// the URL says (narinfo-compression=, storage-class= on S3).
    #[command(after_help = write_help())]
    Sign {
        /// The cache.
        cache: String,
        /// Sign these store paths.
        paths: Vec<String>,
        /// The secret key (as made by `narscope keygen` or `nix-store --generate-binary-cache-key`);
        /// the URL's secret-key= and secret-keys= sign too.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Every narinfo of the cache (each is read; only those without a valid signature by
        /// the key, or with one of --remove-key, are rewritten).
        #[arg(long)]
        all: bool,
        /// The narinfos without a valid signature by this key (the same writes as --all).
        #[arg(long)]
        unsigned: bool,
        /// Drop every signature under this key name (key rotation).
        #[arg(long, value_name = "NAME")]
        remove_key: Option<String>,
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Upload local store paths with their whole closure, in Nix's order.
    ///
    /// NARs are streamed from the store, compressed in parallel and uploaded before their
    /// narinfos, references before referrers; paths already present are skipped, and
    /// nix-cache-info is written if missing. Every narinfo is signed by each key (--key-file,
    /// the URL's secret-key= and secret-keys=); the URL's compression=, compression-level=,
    /// parallel-compression=, write-nar-listing= and index-debug-info= are honoured as Nix
    /// does (see below). Key files are checked before anything touches the cache.
    #[command(after_help = write_help())]
    Push {
        /// The cache.
        cache: String,
        /// Store paths to push (with their closures).
        paths: Vec<String>,
        /// Sign with this secret key too (besides the URL's secret-key= and secret-keys=).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// NAR compression: zstd, xz, bzip2, gzip, br or none [default: the URL's
        /// compression=, else zstd]; must agree with the URL's compression= when both are given.
        #[arg(long, value_name = "NAME")]
        compression: Option<String>,
        /// Compression level (xz 0–9, zstd 1–22, bzip2 1–9, gzip 0–9, br 0–11); must agree
        /// with the URL's compression-level= when both are given.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        level: Option<i32>,
        /// Paths in flight at once [default: twice the number of cores]; at most one per
        /// core is compressed at a time, the others upload.
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Download paths, checking their signatures before any NAR and their hashes after.
    #[command(after_help = CACHE_HELP)]
    Pull {
        /// The cache.
        cache: String,
        /// Store paths (or hashes) to pull.
        paths: Vec<String>,
        /// Unpack each path into DIR/<hash>-<name>.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Also pull everything the paths reference.
        #[arg(short, long)]
        recursive: bool,
        /// Import the closure into the local Nix store through `nix copy`, so Nix checks it too.
        #[arg(long)]
        into_store: bool,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Delete paths from the cache, showing the plan first and never breaking a referrer.
    ///
    /// narinfos go first (referrers before what they reference), then NARs and .ls listings
    /// that no remaining narinfo needs. A path that something else still references is refused
    /// unless --cascade deletes the referrers too; a pinned path is refused unless
    /// --even-if-pinned. While any narinfo of the cache cannot be read (it might reference
    /// what would go) nothing is deleted, except that narinfo itself when named. Just before
    /// deleting, narscope takes the cache's deletion lease (pushes by narscope pause), looks
    /// at the cache again and deletes only what the confirmed plan named.
    #[command(after_help = CACHE_HELP)]
    Delete {
        /// The cache.
        cache: String,
        /// Store paths to delete (or base names, hashes, `<hash>.narinfo` keys).
        paths: Vec<String>,
        /// Every unsigned path.
        #[arg(long)]
        unsigned: bool,
        /// Every path whose signatures are all untrusted or invalid.
        #[arg(long)]
        untrusted: bool,
        /// Also delete every path that references a deleted one.
        #[arg(long)]
        cascade: bool,
        /// Delete paths that a pin names too (the pins keep naming them).
        #[arg(long)]
        even_if_pinned: bool,
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask before deleting.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Garbage-collect the cache: keep the closures of the roots, delete the rest.
    ///
    /// Roots: the pins stored in the cache (narscope pin), --roots-file, --roots-from-nix, and
    /// with --keep-younger-than every newer narinfo. Roots that name nothing in the cache are
    /// no roots: without one in the cache gc refuses (unless --allow-no-roots). Nothing
    /// younger than --grace is deleted, and young narinfos count as roots. The plan is shown
    /// first (provisional: just before deleting, narscope takes the cache's deletion lease,
    /// pushes by narscope pause, the cache is looked at again and only what both looks call
    /// garbage goes). While any narinfo cannot be read nothing is collected. Narinfos go
    /// before their NARs, referrers before what they reference.
    #[command(after_help = CACHE_HELP)]
    Gc {
        /// The cache.
        cache: String,
        /// A file of store paths to keep (one a line; repeatable).
        #[arg(long = "roots-file", value_name = "FILE")]
        roots_files: Vec<PathBuf>,
        /// Keep the closures of the local Nix store's GC roots (nix-store --gc --print-roots).
        #[arg(long)]
        roots_from_nix: bool,
        /// Keep every narinfo newer than this (e.g. 30d), with its closure.
        #[arg(long, value_name = "DURATION")]
        keep_younger_than: Option<String>,
        /// Never delete an object younger than this (by LastModified).
        #[arg(long, value_name = "DURATION", default_value = "6h")]
        grace: String,
        /// Collect even when there is no root at all.
        #[arg(long)]
        allow_no_roots: bool,
        /// Say why this path is garbage or kept: the root and the chain of references that
        /// keep it (repeatable; a store path, base name or hash).
        #[arg(long, value_name = "PATH")]
        why: Vec<String>,
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask before deleting.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage the pins (named GC roots) stored in the cache under narscope/roots/.
    #[command(after_help = CACHE_HELP)]
    Pin {
        /// The cache.
        cache: String,
        /// What to do.
        #[command(subcommand)]
        action: PinAction,
    },
    /// Write a demo cache (a realistic mix of good and broken paths) and open it in the
    /// dashboard (on a terminal; otherwise, or with --no-tui, print its audit).
    Demo {
        /// Where to write it [default: <data dir>/narscope/demo-cache].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Print the audit instead of opening the dashboard.
        #[arg(long)]
        no_tui: bool,
        #[command(flatten)]
        dashboard: DashboardArgs,
    },
    /// Edit or show narscope's config file: `narscope config trust CACHE KEY` trusts a key.
    ///
    /// The file is --config, else $NARSCOPE_CONFIG, else <config dir>/narscope/config.toml;
    /// it is created when missing, and everything else in it (comments included) is kept.
    Config {
        /// What to do.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

/// `narscope config` actions.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Trust a public key for one cache (or every cache with --global), so that `ls`,
    /// `verify`, `info` and the dashboard judge its signatures without --trusted-key.
    ///
    /// KEY is a public key (NAME:BASE64), a file holding one (e.g. the .pub file of
    /// `narscope keygen`), or a secret key file, whose public half is derived (the secret is
    /// never printed or written anywhere). CACHE is the name of a cache in the config, or a
    /// URL: the named cache with that URL, or with --name NAME a new named cache. Trusting a
    /// key twice changes nothing. Nix does not read this file: for Nix, add
    /// `extra-trusted-public-keys = NAME:BASE64` to nix.conf.
    #[command(
        override_usage = "narscope config trust CACHE KEY [--name NAME]\n       narscope config trust --global KEY",
        after_help = "Examples:\n  narscope config trust prod cache.pub\n  narscope config trust 's3://my-cache?region=eu-west-1' cache.pub --name prod\n  narscope config trust --global 'my-cache-1:Zm9v…'"
    )]
    Trust {
        /// The cache (a name from the config, or a URL); with --global, the KEY.
        #[arg(value_name = "CACHE")]
        first: String,
        /// The key: NAME:BASE64, a public key file or a secret key file.
        #[arg(value_name = "KEY")]
        second: Option<String>,
        /// Create (or use) the named cache NAME for the URL given as CACHE.
        #[arg(long, value_name = "NAME", conflicts_with = "global")]
        name: Option<String>,
        /// Trust the key for every cache (the top-level trusted-keys).
        #[arg(long)]
        global: bool,
    },
    /// Print where the config file is and which keys it trusts, per cache.
    Show,
}

/// `narscope key` actions.
#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Print the public key of a secret key file, for trusted-public-keys or --trusted-key
    /// (as `nix key convert-secret-to-public`). The secret itself is never printed.
    Public {
        /// The secret key file (`-` reads standard input).
        #[arg(value_name = "SECRET-FILE")]
        file: PathBuf,
    },
}

/// `narscope pin` actions.
#[derive(Debug, Subcommand)]
pub enum PinAction {
    /// List the pins.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create or replace a pin.
    Add {
        /// Its name.
        name: String,
        /// The store paths it keeps.
        paths: Vec<String>,
    },
    /// Remove a pin.
    Rm {
        /// Its name.
        name: String,
    },
}
