//! The terminal dashboard: panes over a cache's [`crate::index::Index`] and background jobs.
//!
//! It is an Elm-style loop. Everything that happens (a key, a finished scan, a job's progress)
//! arrives as one [`Msg`] in one inbox; [`App::update`] changes the state and returns the
//! [`Effect`]s to perform, without doing any I/O itself; [`runtime`] performs them and sends
//! their results back as messages, and redraws at most every 16 ms, only when something
//! changed. Drawing ([`draw`]) reads the state; the only things it writes back are the
//! window heights ([`scroll::Scroll`]) and where the panes went (for the mouse).
//!
//! Layout by feature: [`msg`] (the vocabulary), [`app`] (state and reducer), [`pane`] (one
//! file or folder per pane: state helpers, keys and drawing), [`overlay`] (one per overlay),
//! [`keymap`] and [`theme`] (keys and colours as data), [`input`] and [`scroll`] (widgets).
//!
//! This module tree is the only one that touches the terminal (ratatui, crossterm); it reaches
//! the cache only through the core (`cache`, `index`, `jobs`), never through the AWS SDK.

pub mod app;
pub mod input;
pub mod keymap;
pub mod msg;
pub mod overlay;
pub mod pane;
pub mod runtime;
pub mod scroll;
pub mod theme;

pub use app::{App, AppOptions};
pub use msg::{Effect, Msg};
pub use pane::draw;

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

/// Where the dashboard logs: `$NARSCOPE_LOG_FILE`, else `narscope.log` in the platform cache
/// directory (`$NARSCOPE_CACHE_DIR` overrides it).
pub fn log_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NARSCOPE_LOG_FILE") {
        return Some(PathBuf::from(p));
    }
    Some(crate::index::file::cache_base()?.join("narscope.log"))
}

#[cfg(test)]
mod tests;
