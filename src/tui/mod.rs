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
//! file or folder per pane: its state and drawing), [`overlay`] (one per overlay: state, keys
//! and drawing; neither imports [`app`]),
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

pub use app::{App, AppOptions, draw};
pub use msg::{Effect, Msg};

#[cfg(test)]
mod tests;
