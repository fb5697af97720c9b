//! Configuration: narscope's own config file and the trusted keys of the user's nix.conf.
//!
//! narscope's config lives in the platform config directory (`directories`), e.g.
//! `~/.config/narscope/config.toml` on Linux, or wherever `NARSCOPE_CONFIG` points:
//!
//! ```toml
//! # keys trusted for every cache
//! trusted-keys = ["cache.example.org-1:yKUSiqP9yaMSduDmGtw8U9iVVd/Coyv9csB1rjHtiRM="]
//! # read nix.conf's trusted-public-keys too (default true)
//! use-nix-conf = true
//! concurrency = 64
//! signing-key-file = "/etc/nix/cache.sec"   # the dashboard signs and pushes with it
//!
//! [caches.prod]
//! url = "s3://my-cache?region=eu-west-1"
//! trusted-keys = ["prod-1:…"]
//! ```
//!
//! Trusted keys come from, in order: `--trusted-key` flags, the named cache's `trusted-keys`,
//! the global `trusted-keys`, and nix.conf (`trusted-public-keys`, `extra-trusted-public-keys`,
//! the public halves of `secret-key-files`), read the way Nix reads it. `--no-config` drops
//! everything but the flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::nix::{PublicKey, SecretKey, TrustedKeys};

/// The key Nix trusts when nix.conf sets no `trusted-public-keys`.
pub const NIX_DEFAULT_TRUSTED_KEY: &str =
    "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";

/// narscope's own config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Keys trusted for every cache.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Whether nix.conf's trusted keys are used too.
    pub use_nix_conf: Option<bool>,
    /// Default number of requests in flight.
    pub concurrency: Option<usize>,
    /// The dashboard's signing key (for sign and push).
    pub signing_key_file: Option<PathBuf>,
    /// Named caches: `narscope verify prod`.
    #[serde(default)]
    pub caches: BTreeMap<String, NamedCache>,
    /// Where this config was read from (not part of the file).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// A cache named in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NamedCache {
    /// The cache URL, in Nix's syntax.
    pub url: String,
    /// Keys trusted for this cache only.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

impl Config {
    /// The default location of the config file: `$NARSCOPE_CONFIG`, else
    /// `<platform config dir>/narscope/config.toml`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("NARSCOPE_CONFIG") {
            return Some(PathBuf::from(p));
        }
        directories::ProjectDirs::from("", "", "narscope")
            .map(|d| d.config_dir().join("config.toml"))
    }

    /// Read the config at `path`; a missing file at the default location is an empty config,
    /// a missing file given explicitly is an error.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => match Self::default_path() {
                Some(p) => (p, std::env::var_os("NARSCOPE_CONFIG").is_some()),
                None => return Ok(Config::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read config {}", path.display()));
            }
        };
        let mut cfg = Self::parse(&text).with_context(|| format!("config {}", path.display()))?;
        cfg.path = Some(path);
        Ok(cfg)
    }

    /// Parse a config file's text.
    pub fn parse(text: &str) -> Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        for (name, c) in &cfg.caches {
            if c.url.trim().is_empty() {
                bail!("cache '{name}' has an empty url");
            }
        }
        Ok(cfg)
    }

    /// Resolve a CACHE argument: a name from `[caches]`, else the argument itself.
    pub fn resolve_cache<'a>(&'a self, arg: &'a str) -> (&'a str, Option<&'a NamedCache>) {
        match self.caches.get(arg) {
            Some(c) => (c.url.as_str(), Some(c)),
            None => (arg, None),
        }
    }
}

/// Where one trusted key came from (for `--json` and error messages).
#[derive(Debug, Clone)]
pub struct KeySource {
    /// The key.
    pub key: PublicKey,
    /// A human description: "--trusted-key", "config.toml", "/etc/nix/nix.conf"…
    pub source: String,
}

/// Build the trusted key set for one command.
pub fn trusted_keys(
    flags: &[String],
    cfg: &Config,
    named: Option<&NamedCache>,
    no_config: bool,
) -> Result<(TrustedKeys, Vec<KeySource>)> {
    let mut out = Vec::new();
    for f in flags {
        let key = PublicKey::parse(f).with_context(|| format!("--trusted-key '{f}'"))?;
        out.push(KeySource {
            key,
            source: "--trusted-key".into(),
        });
    }
    if !no_config {
        let cfg_name = cfg
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config".into());
        let per_cache = named.map(|n| n.trusted_keys.as_slice()).unwrap_or(&[]);
        for k in per_cache.iter().chain(cfg.trusted_keys.iter()) {
            let key =
                PublicKey::parse(k).with_context(|| format!("{cfg_name}: trusted key '{k}'"))?;
            out.push(KeySource {
                key,
                source: cfg_name.clone(),
            });
        }
        if cfg.use_nix_conf.unwrap_or(true) {
            out.extend(NixConf::load_default().trusted_keys());
        }
    }
    let mut keys = TrustedKeys::new();
    for k in &out {
        keys.add(k.key.clone());
    }
    Ok((keys, out))
}

/// The settings of nix.conf that narscope reads.
#[derive(Debug, Default, Clone)]
pub struct NixConf {
    /// `trusted-public-keys` (or its old alias), with the file that set it; None = Nix's default.
    pub trusted_public_keys: Option<(Vec<String>, String)>,
    /// `extra-trusted-public-keys`, each with the file it came from.
    pub extra_trusted_public_keys: Vec<(String, String)>,
    /// `secret-key-files` (their public halves are trusted too, as in Nix).
    pub secret_key_files: Vec<(String, String)>,
    /// Problems found while reading (unreadable includes, bad keys); shown with `-v`.
    pub warnings: Vec<String>,
}

impl NixConf {
    /// Read nix.conf the way Nix does: `$NIX_CONF_DIR/nix.conf` (default `/etc/nix/nix.conf`),
    /// then the user files (`$NIX_USER_CONF_FILES`, else `$XDG_CONFIG_DIRS`/`$XDG_CONFIG_HOME`
    /// `nix/nix.conf`), then the `NIX_CONFIG` environment variable.
    pub fn load_default() -> NixConf {
        let mut conf = NixConf::default();
        let conf_dir = std::env::var("NIX_CONF_DIR").unwrap_or_else(|_| "/etc/nix".into());
        conf.read_file(&Path::new(&conf_dir).join("nix.conf"), 0);
        for f in user_conf_files() {
            conf.read_file(&f, 0);
        }
        if let Ok(text) = std::env::var("NIX_CONFIG") {
            conf.apply_text(&text, "NIX_CONFIG", None, 0);
        }
        conf
    }

    fn read_file(&mut self, path: &Path, depth: usize) {
        if let Ok(text) = std::fs::read_to_string(path) {
            let name = path.display().to_string();
            self.apply_text(&text, &name, path.parent(), depth);
        }
    }

    /// Apply the text of one nix.conf file.
    pub fn apply_text(&mut self, text: &str, origin: &str, dir: Option<&Path>, depth: usize) {
        for raw in text.lines() {
            let line = match raw.find('#') {
                Some(i) => &raw[..i],
                None => raw,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(first) = words.first() else { continue };
            if *first == "include" || *first == "!include" {
                if let Some(p) = words.get(1) {
                    let p = match dir {
                        Some(d) if !Path::new(p).is_absolute() => d.join(p),
                        _ => PathBuf::from(p),
                    };
                    if depth < 16 {
                        if !p.exists() && *first == "include" {
                            self.warnings
                                .push(format!("{origin}: include {} not found", p.display()));
                        }
                        self.read_file(&p, depth + 1);
                    }
                }
                continue;
            }
            let Some(eq) = line.find('=') else { continue };
            let name = line[..eq].trim();
            let values: Vec<String> = line[eq + 1..]
                .split_whitespace()
                .map(str::to_string)
                .collect();
            match name {
                "trusted-public-keys" | "binary-cache-public-keys" => {
                    self.trusted_public_keys = Some((values, origin.to_string()));
                }
                "extra-trusted-public-keys" | "extra-binary-cache-public-keys" => {
                    self.extra_trusted_public_keys
                        .extend(values.into_iter().map(|v| (v, origin.to_string())));
                }
                "secret-key-files" => {
                    self.secret_key_files = values
                        .into_iter()
                        .map(|v| (v, origin.to_string()))
                        .collect();
                }
                "extra-secret-key-files" => {
                    self.secret_key_files
                        .extend(values.into_iter().map(|v| (v, origin.to_string())));
                }
                _ => {}
            }
        }
    }

    /// The keys this configuration trusts, as Nix would.
    pub fn trusted_keys(&self) -> Vec<KeySource> {
        let mut out = Vec::new();
        let base: Vec<(String, String)> = match &self.trusted_public_keys {
            Some((v, origin)) => v.iter().map(|k| (k.clone(), origin.clone())).collect(),
            None => vec![(
                NIX_DEFAULT_TRUSTED_KEY.to_string(),
                "Nix's default trusted-public-keys".to_string(),
            )],
        };
        for (k, origin) in base.iter().chain(self.extra_trusted_public_keys.iter()) {
            match PublicKey::parse(k) {
                Ok(key) => out.push(KeySource {
                    key,
                    source: origin.clone(),
                }),
                Err(e) => tracing::warn!("{origin}: ignoring trusted key '{k}': {e}"),
            }
        }
        for (f, origin) in &self.secret_key_files {
            match std::fs::read_to_string(f)
                .map_err(anyhow::Error::from)
                .and_then(|t| SecretKey::parse(&t).map_err(anyhow::Error::from))
            {
                Ok(sk) => out.push(KeySource {
                    key: sk.public_key(),
                    source: format!("{origin} (secret-key-files {f})"),
                }),
                Err(e) => tracing::debug!("{origin}: secret-key-files {f}: {e}"),
            }
        }
        out
    }
}

fn user_conf_files() -> Vec<PathBuf> {
    if let Ok(files) = std::env::var("NIX_USER_CONF_FILES") {
        return files
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    let mut dirs: Vec<PathBuf> = std::env::var("XDG_CONFIG_DIRS")
        .unwrap_or_else(|_| "/etc/xdg".into())
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    // Nix reads them from the least to the most important: reversed XDG_CONFIG_DIRS, then home.
    dirs.reverse();
    let home_cfg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(h) = home_cfg {
        dirs.push(h);
    }
    dirs.into_iter().map(|d| d.join("nix/nix.conf")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "cache.example.com-1:yKUSiqP9yaMSduDmGtw8U9iVVd/Coyv9csB1rjHtiRM=";
    const K2: &str = "demo-1:MuS4S312FPH/rbSb45tWcHWWCHapIeakUehH41sXarY=";

    #[test]
    fn nix_conf_assignment_replaces_and_extra_appends() {
        let mut c = NixConf::default();
        c.apply_text(
            &format!("trusted-public-keys = {K2}\n# comment\nextra-trusted-public-keys = {K1} # trailing\n"),
            "a.conf",
            None,
            0,
        );
        c.apply_text(&format!("trusted-public-keys = {K1}\n"), "b.conf", None, 0);
        let names: Vec<_> = c
            .trusted_keys()
            .iter()
            .map(|k| (k.key.name().to_string(), k.source.clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("cache.example.com-1".to_string(), "b.conf".to_string()),
                ("cache.example.com-1".to_string(), "a.conf".to_string()),
            ]
        );
    }

    #[test]
    fn nix_conf_default_key_when_unset() {
        let c = NixConf::default();
        let keys = c.trusted_keys();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key.to_string(), NIX_DEFAULT_TRUSTED_KEY);
    }

    #[test]
    fn nix_conf_include_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("keys.conf"),
            format!("extra-trusted-public-keys = {K2}\n"),
        )
        .unwrap();
        let mut c = NixConf::default();
        c.apply_text("include keys.conf\n", "main", Some(dir.path()), 0);
        assert_eq!(c.extra_trusted_public_keys.len(), 1);
    }

    #[test]
    fn config_names_caches_and_rejects_unknown_fields() {
        let cfg = Config::parse(&format!(
            "trusted-keys = [\"{K1}\"]\n[caches.prod]\nurl = \"s3://bkt?region=eu-west-1\"\n"
        ))
        .unwrap();
        let (url, named) = cfg.resolve_cache("prod");
        assert_eq!(url, "s3://bkt?region=eu-west-1");
        assert!(named.is_some());
        assert_eq!(cfg.resolve_cache("file:///x").0, "file:///x");
        let err = Config::parse("trusted-key = []\n").unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn flags_and_config_keys_are_combined_and_bad_keys_named() {
        let cfg = Config::parse(&format!(
            "trusted-keys = [\"{K2}\"]\nuse-nix-conf = false\n"
        ))
        .unwrap();
        let (keys, sources) = trusted_keys(&[K1.to_string()], &cfg, None, false).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(sources[0].source, "--trusted-key");
        let (keys, _) = trusted_keys(&[K1.to_string()], &cfg, None, true).unwrap();
        assert_eq!(keys.len(), 1);
        let err = trusted_keys(&["nocolon".to_string()], &cfg, None, true).unwrap_err();
        assert!(
            format!("{err:#}").contains("--trusted-key 'nocolon'"),
            "{err:#}"
        );
    }
}
