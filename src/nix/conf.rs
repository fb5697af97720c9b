//! nix.conf as Nix reads it: the settings narscope uses (trusted keys, the public halves of
//! `secret-key-files`, `netrc-file`), each with the file and line that set it. Below
//! [`crate::config`] (narscope's own config) and the storage backends, which both read it.

use std::path::{Path, PathBuf};

use super::{PublicKey, SecretKey};

/// The key Nix trusts when nix.conf sets no `trusted-public-keys`.
pub const NIX_DEFAULT_TRUSTED_KEY: &str =
    "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";

/// Where one trusted key came from (for `--json` and error messages).
#[derive(Debug, Clone)]
pub struct KeySource {
    /// The public key a path signed with this key name is checked against.
    pub key: PublicKey,
    /// A human description: "--trusted-key", "config.toml", "/etc/nix/nix.conf"…
    pub source: String,
}

/// The settings of nix.conf that narscope reads. Each value comes with its origin: the file
/// (or `NIX_CONFIG`) and line that set it, e.g. `/etc/nix/nix.conf line 3`.
#[derive(Debug, Default, Clone)]
pub struct NixConf {
    /// `trusted-public-keys` (or its old alias), with its origin; None = Nix's default.
    pub trusted_public_keys: Option<(Vec<String>, String)>,
    /// `extra-trusted-public-keys`, each with its origin.
    pub extra_trusted_public_keys: Vec<(String, String)>,
    /// `secret-key-files` (their public halves are trusted too, as in Nix), with origins.
    pub secret_key_files: Vec<(String, String)>,
    /// `netrc-file` (Basic-auth credentials for HTTP caches), with its origin; None = Nix's
    /// default, `$NIX_CONF_DIR/netrc`.
    pub netrc_file: Option<(String, String)>,
    /// Problems found while reading (missing includes); logged as warnings.
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
    pub fn apply_text(&mut self, text: &str, file: &str, dir: Option<&Path>, depth: usize) {
        for (n, raw) in text.lines().enumerate() {
            let origin = format!("{file} line {}", n + 1);
            let origin = origin.as_str();
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
                "netrc-file" => {
                    self.netrc_file = values.into_iter().next().map(|v| (v, origin.to_string()));
                }
                "extra-secret-key-files" => {
                    self.secret_key_files
                        .extend(values.into_iter().map(|v| (v, origin.to_string())));
                }
                _ => {}
            }
        }
    }

    /// The keys this configuration trusts, as Nix would; problems are logged as warnings.
    pub fn trusted_keys(&self) -> Vec<KeySource> {
        let (keys, warnings) = self.key_sources();
        for w in warnings {
            tracing::warn!("{w}");
        }
        keys
    }

    /// The keys this configuration trusts, as Nix would, and a warning for each key or
    /// `secret-key-files` entry that cannot be used. Warnings name the origin (file and line,
    /// or `NIX_CONFIG`), the file of a secret key and at most a key's name, never key data.
    pub fn key_sources(&self) -> (Vec<KeySource>, Vec<String>) {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let base: Vec<(String, String, &str)> = match &self.trusted_public_keys {
            Some((v, origin)) => v
                .iter()
                .map(|k| (k.clone(), origin.clone(), "trusted-public-keys"))
                .collect(),
            None => vec![(
                NIX_DEFAULT_TRUSTED_KEY.to_string(),
                "Nix's default trusted-public-keys".to_string(),
                "trusted-public-keys",
            )],
        };
        let extra = self
            .extra_trusted_public_keys
            .iter()
            .map(|(k, o)| (k.clone(), o.clone(), "extra-trusted-public-keys"));
        for (k, origin, setting) in base.into_iter().chain(extra) {
            match PublicKey::parse(&k) {
                Ok(key) => out.push(KeySource {
                    key,
                    source: origin,
                }),
                Err(e) => warnings.push(format!("{origin}: ignoring a key in {setting}: {e}")),
            }
        }
        for (f, origin) in &self.secret_key_files {
            let problem = match std::fs::read_to_string(f) {
                Err(e) => format!("cannot read it: {e}"),
                Ok(text) => match SecretKey::parse(&text) {
                    Ok(sk) => {
                        out.push(KeySource {
                            key: sk.public_key(),
                            source: format!("{origin} (secret-key-files {f})"),
                        });
                        continue;
                    }
                    Err(e) => format!("it does not hold a valid secret key: {e}"),
                },
            };
            warnings.push(format!(
                "{origin}: secret-key-files {f}: {problem}; its public key is not trusted"
            ));
        }
        (out, warnings)
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
