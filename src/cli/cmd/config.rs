//! `narscope config trust` and `narscope config show`: narscope's config file, edited in
//! place (see [`crate::config::add_trusted_key`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::{Config, TrustOutcome, TrustScope, add_trusted_key};
use crate::nix::key_error::KeyError;
use crate::nix::{PublicKey, SecretKey};
use crate::storage::CacheUrl;

/// Edit or show narscope's config file: `narscope config trust CACHE KEY` trusts a key.
///
/// The file is --config, else $NARSCOPE_CONFIG, else <config dir>/narscope/config.toml;
/// it is created when missing, and everything else in it (comments included) is kept.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// `narscope config` actions.
#[derive(Debug, clap::Subcommand)]
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

/// Run a `narscope config` action on the config file `--config` names (else the default).
pub fn run(args: Args, config: Option<&Path>, no_config: bool) -> Result<i32> {
    let action = args.action;
    if no_config {
        bail!(
            "--no-config ignores the config file; `narscope config` works on it: drop --no-config"
        );
    }
    let path = match config {
        Some(p) => p.to_path_buf(),
        None => Config::default_path()
            .context("cannot find a config directory (is $HOME set?); give --config FILE")?,
    };
    match action {
        ConfigAction::Trust {
            first,
            second,
            name,
            global,
        } => trust(&path, &first, second.as_deref(), name, global),
        ConfigAction::Show => show(&path),
    }
}

/// The config at `path`, or the empty one when there is no file yet.
fn read_config(path: &Path) -> Result<Option<Config>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Config::parse(&text)
            .with_context(|| format!("config {}", path.display()))
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read config {}", path.display())),
    }
}

fn trust(
    path: &Path,
    first: &str,
    second: Option<&str>,
    name: Option<String>,
    global: bool,
) -> Result<i32> {
    let (cache, key_arg) = match (global, second) {
        (true, None) => (None, first),
        (true, Some(_)) => {
            bail!("with --global give only the KEY: narscope config trust --global KEY")
        }
        (false, Some(k)) => (Some(first), k),
        (false, None) => bail!(
            "give the CACHE and the KEY (narscope config trust CACHE KEY), or --global KEY to \
             trust the key for every cache"
        ),
    };
    // The key first: a bad KEY is refused before anything is read or written.
    let (key, from) = resolve_key(key_arg)?;
    let cfg = read_config(path)?.unwrap_or_default();
    let (scope, what) = match cache {
        None => (TrustScope::Global, "every cache".to_string()),
        Some(c) if cfg.caches.contains_key(c) => {
            if let Some(n) = name.as_deref().filter(|n| *n != c) {
                bail!(
                    "'{c}' is already a named cache in {}; --name {n} is for giving a URL a name",
                    path.display()
                );
            }
            (
                TrustScope::Cache {
                    name: c.to_string(),
                    url: None,
                },
                format!("cache '{c}' ({})", cfg.caches[c].url),
            )
        }
        Some(c) => {
            let parsed = CacheUrl::parse(c).with_context(|| {
                format!(
                    "CACHE '{c}' is neither a named cache in {} nor a cache URL",
                    path.display()
                )
            })?;
            // A directory is kept as its absolute file:// URL; other URLs as given.
            let url = match parsed {
                CacheUrl::File(..) => parsed.to_string(),
                CacheUrl::S3(_) | CacheUrl::Http(_) => c.trim().to_string(),
            };
            match (name, cfg.cache_for_url(c)) {
                (Some(n), _) => (
                    TrustScope::Cache {
                        name: n.clone(),
                        url: Some(url.clone()),
                    },
                    format!("cache '{n}' ({url})"),
                ),
                (None, Some((n, named))) => (
                    TrustScope::Cache {
                        name: n.to_string(),
                        url: None,
                    },
                    format!("cache '{n}' ({})", named.url),
                ),
                (None, None) => bail!(
                    "{c} is not a cache named in {}: give --name NAME to add it under that name, \
                     or use --global to trust the key for every cache (nothing was written)",
                    path.display()
                ),
            }
        }
    };
    match add_trusted_key(path, &scope, &key)? {
        TrustOutcome::Added => {
            println!("trusted {key} for {what} in {}", path.display());
            println!("  (the key is {from})");
        }
        TrustOutcome::AlreadyTrusted => println!(
            "{key} is already trusted for {what} in {}; nothing changed",
            path.display()
        ),
    }
    println!(
        "Nix does not read this file: for `nix copy` and substituters, add to nix.conf\n  \
         extra-trusted-public-keys = {key}"
    );
    Ok(0)
}

/// KEY as `config trust` takes it: a file holding a public or secret key, or the public key
/// itself. Returns the public key and where it came from, in words. Messages never show key
/// data.
fn resolve_key(arg: &str) -> Result<(PublicKey, String)> {
    let path = PathBuf::from(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read key file {}", path.display()))?;
        if let Ok(sk) = SecretKey::parse(&text) {
            return Ok((
                sk.public_key(),
                format!("the public half of secret key file {}", path.display()),
            ));
        }
        return match PublicKey::parse(&text) {
            Ok(k) => Ok((k, format!("from {}", path.display()))),
            // 64 bytes: a secret key that is not valid; say why as a secret key.
            Err(KeyError::WrongLength { len: 64, .. }) => {
                let e = SecretKey::parse(&text).err();
                match e {
                    Some(e) => Err(e).with_context(|| format!("key file {}", path.display())),
                    None => bail!("key file {}: not a key", path.display()),
                }
            }
            Err(e) => Err(e).with_context(|| format!("key file {}", path.display())),
        };
    }
    match PublicKey::parse(arg) {
        Ok(k) => Ok((k, "given on the command line".into())),
        Err(e @ KeyError::SecretNotPublic(_)) => Err(e).context(
            "KEY (a secret key on the command line ends up in shell history; give its file \
             instead, and consider rotating it)",
        ),
        Err(e) if !arg.contains(':') || arg.contains('/') && !path.exists() => {
            bail!("KEY {arg}: no such file, and not a public key NAME:BASE64 ({e})")
        }
        Err(e) => Err(e).context("KEY"),
    }
}

fn show(path: &Path) -> Result<i32> {
    let cfg = read_config(path)?;
    let exists = if cfg.is_some() {
        ""
    } else {
        " (no such file: narscope uses its defaults)"
    };
    println!("config file: {}{exists}", path.display());
    let cfg = cfg.unwrap_or_default();
    println!(
        "nix.conf keys: {}",
        if cfg.use_nix_conf.unwrap_or(true) {
            "used (use-nix-conf = true)"
        } else {
            "not used (use-nix-conf = false)"
        }
    );
    let list = |keys: &[String]| {
        if keys.is_empty() {
            println!("  (none)");
        }
        for k in keys {
            // Only public keys are shown: a secret key put here by mistake stays unprinted.
            match PublicKey::parse(k) {
                Ok(k) => println!("  {k}"),
                Err(e) => println!("  (not a valid public key: {e})"),
            }
        }
    };
    println!("trusted for every cache:");
    list(&cfg.trusted_keys);
    for (name, c) in &cfg.caches {
        println!("cache '{name}': {}", c.url);
        list(&c.trusted_keys);
    }
    Ok(0)
}
