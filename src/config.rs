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
//! public = false   # narscope doctor checks that anonymous reads are refused
//! ```
//!
//! Trusted keys come from, in order: `--trusted-key` flags, the named cache's `trusted-keys`,
//! the global `trusted-keys`, and nix.conf (`trusted-public-keys`, `extra-trusted-public-keys`,
//! the public halves of `secret-key-files`), read the way Nix reads it. `--no-config` drops
//! everything but the flags.
//!
//! No message shows key material: a bad key is named by where it was given (the flag, the
//! config file and setting, or the nix.conf file and line, or `NIX_CONFIG` and line) and at
//! most its name. A secret key given where a public key belongs is recognised and the message
//! says how to get its public half. A malformed key in the flags or narscope's config is an
//! error; one in nix.conf, and an unusable `secret-key-files` entry, a warning.

pub mod paths;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

pub use crate::nix::conf::{KeySource, NIX_DEFAULT_TRUSTED_KEY, NixConf};
use crate::nix::{PublicKey, TrustedKeys};

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
    /// Whether the cache is meant to be readable without credentials (`narscope doctor`
    /// checks that it is, or is not); unset: the doctor only reports what it is.
    pub public: Option<bool>,
    /// Upstream caches of this cache (store URLs or names of other caches in the config):
    /// `push` skips what they serve, `info`/`gc --upstream` report it, `verify -r` accepts it.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Keys trusted for the upstreams' signatures (besides the global trusted keys).
    #[serde(default)]
    pub upstream_keys: Vec<String>,
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

    /// Parse a config file's text. Errors give the line and never echo long base64 runs (a
    /// key put in the wrong place stays out of the message).
    pub fn parse(text: &str) -> Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let msg = redact_base64(e.message());
            match e.span() {
                Some(span) => {
                    let line = text.get(..span.start).unwrap_or("").matches('\n').count() + 1;
                    anyhow::anyhow!("line {line}: {msg}")
                }
                None => anyhow::anyhow!("{msg}"),
            }
        })?;
        for (name, c) in &cfg.caches {
            if c.url.trim().is_empty() {
                bail!("cache '{name}' has an empty url");
            }
        }
        Ok(cfg)
    }

    /// Resolve a CACHE argument: a name from `[caches]` (its URL and settings), else the
    /// argument itself, with the settings (trusted keys) of the named cache whose URL names
    /// the same cache, if one does (see [`Config::cache_for_url`]).
    pub fn resolve_cache<'a>(&'a self, arg: &'a str) -> (&'a str, Option<&'a NamedCache>) {
        match self.caches.get(arg) {
            Some(c) => (c.url.as_str(), Some(c)),
            None => (arg, self.cache_for_url(arg).map(|(_, c)| c)),
        }
    }

    /// The first named cache (by name) whose URL names the same cache as `url`: the same
    /// bucket and prefix or directory, whatever the query parameters.
    pub fn cache_for_url(&self, url: &str) -> Option<(&str, &NamedCache)> {
        let want = crate::storage::CacheUrl::parse(url).ok()?.short();
        self.caches
            .iter()
            .find(|(_, c)| crate::storage::CacheUrl::parse(&c.url).is_ok_and(|u| u.short() == want))
            .map(|(n, c)| (n.as_str(), c))
    }
}

/// Where [`add_trusted_key`] puts a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustScope {
    /// The top-level `trusted-keys`: every cache.
    Global,
    /// `[caches.NAME] trusted-keys`; `url` creates the entry when it does not exist yet.
    Cache {
        /// The cache's name.
        name: String,
        /// Its URL, to create the entry with (`None`: the entry must exist).
        url: Option<String>,
    },
}

/// What [`add_trusted_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustOutcome {
    /// The key was written.
    Added,
    /// The key was there already; the file is unchanged.
    AlreadyTrusted,
}

/// Add `key` to the trusted keys of `scope` in the config file at `path`, keeping everything
/// else in it (comments, order, formatting) as it is. A missing file (and its directories)
/// is created. A file that is not a valid narscope config is refused, untouched. Adding a key
/// that is already there changes nothing. The file is replaced atomically.
pub fn add_trusted_key(path: &Path, scope: &TrustScope, key: &PublicKey) -> Result<TrustOutcome> {
    use toml_edit::{Array, DocumentMut, Item, Table, value};
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read config {}", path.display())),
    };
    // Parse as narscope reads it first: its errors give the line, never key material.
    let cfg = Config::parse(&text).with_context(|| {
        format!(
            "config {} is not valid; fix it first (nothing was written)",
            path.display()
        )
    })?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|_| anyhow::anyhow!("config {} does not parse as TOML", path.display()))?;
    let wanted = key.to_string();
    let list: &mut Item = match scope {
        TrustScope::Global => doc
            .as_table_mut()
            .entry("trusted-keys")
            .or_insert(value(Array::new())),
        TrustScope::Cache { name, url } => {
            match (cfg.caches.get(name), url) {
                (None, None) => bail!(
                    "config {} has no cache named '{name}' (nothing was written)",
                    path.display()
                ),
                (Some(c), Some(u)) if c.url != *u => bail!(
                    "config {}: cache '{name}' already has the URL {}, not {u};                      choose another --name (nothing was written)",
                    path.display(),
                    c.url
                ),
                _ => {}
            }
            let caches = doc.as_table_mut().entry("caches").or_insert_with(|| {
                let mut t = Table::new();
                t.set_implicit(true);
                Item::Table(t)
            });
            let Some(caches) = caches.as_table_like_mut() else {
                bail!("config {}: `caches` is not a table", path.display());
            };
            let entry = caches.entry(name).or_insert_with(|| {
                let mut t = Table::new();
                if let Some(u) = url {
                    t.insert("url", value(u.as_str()));
                }
                Item::Table(t)
            });
            let Some(entry) = entry.as_table_like_mut() else {
                bail!("config {}: `caches.{name}` is not a table", path.display());
            };
            entry.entry("trusted-keys").or_insert(value(Array::new()))
        }
    };
    let Some(array) = list.as_array_mut() else {
        bail!(
            "config {}: trusted-keys is not a list (nothing was written)",
            path.display()
        );
    };
    if array
        .iter()
        .any(|v| v.as_str().map(str::trim) == Some(wanted.as_str()))
    {
        return Ok(TrustOutcome::AlreadyTrusted);
    }
    array.push(wanted.as_str());
    let out = doc.to_string();
    // What is written must read back as a config that trusts the key.
    Config::parse(&out).context("the edited config does not parse (nothing was written)")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_file_name(format!(
        ".{}.tmp.{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.toml"),
        std::process::id()
    ));
    std::fs::write(&tmp, &out).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot replace {}", path.display()));
    }
    Ok(TrustOutcome::Added)
}

/// Replaces every run of 24 or more base64 characters in `msg` by `…`: keys and signatures are
/// such runs, and no part of one must reach an error message.
fn redact_base64(msg: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    let mut out = String::with_capacity(msg.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 24 {
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in msg.chars() {
        if is_b64(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// How the n-th of `count` values of a setting is named in messages (no key material).
fn nth(setting: &str, i: usize, count: usize) -> String {
    if count == 1 {
        setting.to_string()
    } else {
        format!("{setting} (value {} of {count})", i + 1)
    }
}

/// Build the trusted key set for one command.
///
/// A malformed key in the flags or in narscope's config is an error; one in nix.conf is
/// skipped with a warning, as are unusable `secret-key-files`. Messages name where the key was
/// given and at most its name, never its data.
pub fn trusted_keys(
    flags: &[String],
    cfg: &Config,
    named: Option<&NamedCache>,
    no_config: bool,
) -> Result<(TrustedKeys, Vec<KeySource>)> {
    let mut out = Vec::new();
    for (i, f) in flags.iter().enumerate() {
        let key = PublicKey::parse(f).with_context(|| nth("--trusted-key", i, flags.len()))?;
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
        let cache_name = named
            .and_then(|n| cfg.caches.iter().find(|(_, c)| std::ptr::eq(*c, n)))
            .map(|(name, _)| name.as_str())
            .unwrap_or("?");
        let lists = [
            (format!("[caches.{cache_name}] trusted-keys"), per_cache),
            ("trusted-keys".to_string(), cfg.trusted_keys.as_slice()),
        ];
        for (setting, list) in &lists {
            for (i, k) in list.iter().enumerate() {
                let key = PublicKey::parse(k)
                    .with_context(|| format!("{cfg_name}: {}", nth(setting, i, list.len())))?;
                out.push(KeySource {
                    key,
                    source: cfg_name.clone(),
                });
            }
        }
        if cfg.use_nix_conf.unwrap_or(true) {
            let conf = NixConf::load_default();
            let (keys, warnings) = conf.key_sources();
            for w in conf.warnings.iter().chain(&warnings) {
                tracing::warn!("{w}");
            }
            out.extend(keys);
        }
    }
    let mut keys = TrustedKeys::new();
    for k in &out {
        keys.add(k.key.clone());
    }
    Ok((keys, out))
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
                (
                    "cache.example.com-1".to_string(),
                    "b.conf line 1".to_string()
                ),
                (
                    "cache.example.com-1".to_string(),
                    "a.conf line 3".to_string()
                ),
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
        assert!(cfg.resolve_cache("file:///x").1.is_none());
        // The same bucket by URL (other parameters): the URL as given, the named settings.
        let (url, named) = cfg.resolve_cache("s3://bkt?region=eu-west-1&compression=xz");
        assert_eq!(url, "s3://bkt?region=eu-west-1&compression=xz");
        assert!(std::ptr::eq(named.unwrap(), &cfg.caches["prod"]));
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
        assert_eq!(
            format!("{err:#}"),
            "--trusted-key: public key has no ':' between key name and base64 data"
        );
        let err =
            trusted_keys(&[K1.to_string(), "k:AAAA".to_string()], &cfg, None, true).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "--trusted-key (value 2 of 2): public key 'k' is not valid: 3 bytes, expected 32"
        );
    }

    use crate::nix::testdata::{TEST_SECRET, leaked_pieces};

    /// Asserts `text` holds no 12-character piece of the test secret key.
    fn assert_no_secret(text: &str) {
        assert_eq!(
            leaked_pieces(text, TEST_SECRET, 12),
            Vec::<String>::new(),
            "secret key material in: {text}"
        );
    }

    #[test]
    fn a_secret_key_as_trusted_key_flag_is_refused_without_echo() {
        let err =
            trusted_keys(&[TEST_SECRET.to_string()], &Config::default(), None, true).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with(
                "--trusted-key: 'cache.example.com-1' is a secret key (keep it private), not a public key; give its public half"
            ),
            "{msg}"
        );
        assert!(msg.contains("narscope key public FILE"), "{msg}");
        assert_no_secret(&msg);
    }

    #[test]
    fn a_secret_key_in_the_config_file_is_refused_without_echo() {
        let cfg = Config::parse(&format!(
            "trusted-keys = [\"{K1}\", \"{TEST_SECRET}\"]\nuse-nix-conf = false\n\
             [caches.prod]\nurl = \"file:///x\"\ntrusted-keys = [\"{TEST_SECRET}\"]\n"
        ))
        .unwrap();
        let msg = format!("{:#}", trusted_keys(&[], &cfg, None, false).unwrap_err());
        assert!(
            msg.starts_with(
                "config: trusted-keys (value 2 of 2): 'cache.example.com-1' is a secret key"
            ),
            "{msg}"
        );
        assert_no_secret(&msg);
        let (_, named) = cfg.resolve_cache("prod");
        let msg = format!("{:#}", trusted_keys(&[], &cfg, named, false).unwrap_err());
        assert!(
            msg.starts_with(
                "config: [caches.prod] trusted-keys: 'cache.example.com-1' is a secret key"
            ),
            "{msg}"
        );
        assert_no_secret(&msg);
        // A key in the wrong shape of setting: the TOML error names the line, not the key.
        let msg = format!(
            "{:#}",
            Config::parse(&format!(
                "concurrency = 4\ntrusted-keys = \"{TEST_SECRET}\"\n"
            ))
            .unwrap_err()
        );
        assert!(msg.starts_with("line 2: invalid type: string"), "{msg}");
        assert_no_secret(&msg);
    }

    #[test]
    fn secret_keys_in_nix_conf_are_skipped_with_a_warning_naming_only_the_origin() {
        let mut c = NixConf::default();
        c.apply_text(
            &format!("# keys\ntrusted-public-keys = {K1} {TEST_SECRET}\n"),
            "/etc/nix/nix.conf",
            None,
            0,
        );
        c.apply_text(
            &format!("extra-trusted-public-keys = {TEST_SECRET}\n"),
            "NIX_CONFIG",
            None,
            0,
        );
        let (keys, warnings) = c.key_sources();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key.to_string(), K1);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "/etc/nix/nix.conf line 2: ignoring a key in trusted-public-keys: 'cache.example.com-1' is a secret key (keep it private)"
            ),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].starts_with(
                "NIX_CONFIG line 1: ignoring a key in extra-trusted-public-keys: 'cache.example.com-1' is a secret key"
            ),
            "{}",
            warnings[1]
        );
        for w in &warnings {
            assert_no_secret(w);
        }
    }

    #[test]
    fn unusable_secret_key_files_are_warned_about_by_file_not_contents() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.sec");
        std::fs::write(&good, TEST_SECRET).unwrap();
        // A secret key with one byte of its public half changed: malformed.
        let b64 = TEST_SECRET.split_once(':').unwrap().1;
        let mut bytes = crate::nix::hash::base64_decode(b64).unwrap();
        bytes[63] ^= 1;
        let bad = dir.path().join("bad.sec");
        std::fs::write(
            &bad,
            format!(
                "cache.example.com-1:{}",
                crate::nix::hash::base64_encode(&bytes)
            ),
        )
        .unwrap();
        let truncated = dir.path().join("truncated.sec");
        std::fs::write(&truncated, &TEST_SECRET[..60]).unwrap();
        let missing = dir.path().join("missing.sec");
        let mut c = NixConf::default();
        c.apply_text(
            &format!(
                "secret-key-files = {} {}\nextra-secret-key-files = {} {}\n",
                good.display(),
                bad.display(),
                truncated.display(),
                missing.display()
            ),
            "/etc/nix/nix.conf",
            None,
            0,
        );
        let (keys, warnings) = c.key_sources();
        let names: Vec<_> = keys.iter().map(|k| k.key.name().to_string()).collect();
        assert_eq!(names, ["cache.nixos.org-1", "cache.example.com-1"]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        let expect = [
            (
                "line 1",
                &bad,
                "it does not hold a valid secret key: secret key 'cache.example.com-1' is not valid: its public half does not match its seed",
            ),
            (
                "line 2",
                &truncated,
                "it does not hold a valid secret key: secret key 'cache.example.com-1' is not valid: 30 bytes, expected 64",
            ),
            (
                "line 2",
                &missing,
                "cannot read it: No such file or directory",
            ),
        ];
        for (w, (line, file, why)) in warnings.iter().zip(expect) {
            assert!(
                w.starts_with(&format!(
                    "/etc/nix/nix.conf {line}: secret-key-files {}: {why}",
                    file.display()
                )),
                "{w}"
            );
            assert!(w.ends_with("; its public key is not trusted"), "{w}");
            assert_no_secret(w);
        }
    }

    #[test]
    fn trusting_a_key_keeps_the_file_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/config.toml");
        let k1 = PublicKey::parse(K1).unwrap();
        let k2 = PublicKey::parse(K2).unwrap();
        // A missing file (and its directories) is created.
        assert_eq!(
            add_trusted_key(&path, &TrustScope::Global, &k1).unwrap(),
            TrustOutcome::Added
        );
        let cfg = Config::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(cfg.trusted_keys, [K1]);
        // Comments and other settings stay; a second add changes nothing.
        let original = "# my settings\nconcurrency = 8 # fast\n\n[caches.prod] # the big one\nurl = \"file:///srv/prod\"\n";
        std::fs::write(&path, original).unwrap();
        let prod = TrustScope::Cache {
            name: "prod".into(),
            url: None,
        };
        assert_eq!(
            add_trusted_key(&path, &prod, &k2).unwrap(),
            TrustOutcome::Added
        );
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(
            after.starts_with("# my settings\nconcurrency = 8 # fast\n"),
            "{after}"
        );
        assert!(after.contains("[caches.prod] # the big one\n"), "{after}");
        assert_eq!(
            add_trusted_key(&path, &prod, &k2).unwrap(),
            TrustOutcome::AlreadyTrusted
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
        // A global key goes before the tables; a new named cache gets its URL.
        add_trusted_key(&path, &TrustScope::Global, &k1).unwrap();
        let new = TrustScope::Cache {
            name: "mine".into(),
            url: Some("file:///srv/mine".into()),
        };
        add_trusted_key(&path, &new, &k1).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = Config::parse(&text).unwrap();
        assert_eq!(cfg.trusted_keys, [K1]);
        assert_eq!(cfg.concurrency, Some(8));
        assert_eq!(cfg.caches["prod"].trusted_keys, [K2]);
        assert_eq!(cfg.caches["mine"].url, "file:///srv/mine");
        assert_eq!(cfg.caches["mine"].trusted_keys, [K1]);
        // Refusals leave the file alone: an unknown cache, a name taken by another URL.
        let before = std::fs::read_to_string(&path).unwrap();
        let unknown = TrustScope::Cache {
            name: "nope".into(),
            url: None,
        };
        let e = add_trusted_key(&path, &unknown, &k1).unwrap_err();
        assert!(e.to_string().contains("no cache named 'nope'"), "{e}");
        let taken = TrustScope::Cache {
            name: "prod".into(),
            url: Some("file:///elsewhere".into()),
        };
        let e = add_trusted_key(&path, &taken, &k1).unwrap_err();
        assert!(
            e.to_string()
                .contains("already has the URL file:///srv/prod"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        // An invalid config is refused untouched, without echoing its contents.
        let bad = format!("trusted-keys = \"{TEST_SECRET}\"\n");
        std::fs::write(&path, &bad).unwrap();
        let e = format!(
            "{:#}",
            add_trusted_key(&path, &TrustScope::Global, &k1).unwrap_err()
        );
        assert!(
            e.contains("is not valid; fix it first") && e.contains("line 1"),
            "{e}"
        );
        assert_no_secret(&e);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);
    }

    #[test]
    fn base64_runs_are_redacted() {
        assert_eq!(
            redact_base64("a \"k:AAAAAAAAAAAAAAAAAAAAAAAA\" b"),
            "a \"k:…\" b"
        );
        assert_eq!(
            redact_base64("unknown field `trusted-key`, expected one of"),
            "unknown field `trusted-key`, expected one of"
        );
    }
}
