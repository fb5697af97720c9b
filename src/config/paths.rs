//! Where narscope keeps its user files and its log, for every front end: the config directory
//! (keymap.toml, theme.toml beside config.toml) and the log file. The config file's own
//! location is [`super::Config::default_path`]; the local indexes live under
//! [`crate::index::file::cache_base`].

use std::path::PathBuf;

/// narscope's config directory (`$NARSCOPE_CONFIG_DIR`, else the platform's).
pub fn config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("NARSCOPE_CONFIG_DIR") {
        return Some(PathBuf::from(d));
    }
    directories::ProjectDirs::from("", "", "narscope").map(|d| d.config_dir().to_path_buf())
}

/// The text of a user file in the config directory, if it exists.
pub fn user_file(name: &str) -> anyhow::Result<Option<String>> {
    let Some(dir) = config_dir() else {
        return Ok(None);
    };
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Where narscope logs: `$NARSCOPE_LOG_FILE`, else `narscope.log` in the platform cache
/// directory (`$NARSCOPE_CACHE_DIR` overrides it).
pub fn log_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NARSCOPE_LOG_FILE") {
        return Some(PathBuf::from(p));
    }
    Some(crate::index::file::cache_base()?.join("narscope.log"))
}
