//! The terminal dashboard: panes over a cache's [`crate::index::Index`], background jobs, and
//! the reducer/runtime split described in `docs`: one inbox of [`app::Msg`]s, a pure
//! [`app::App::update`] that returns [`app::Effect`]s, a runtime that performs them, and a
//! redraw only when something changed.
//!
//! This module tree is the only one that touches the terminal (ratatui, crossterm); it reaches
//! the cache only through the core (`cache`, `index`, `jobs`), never through the AWS SDK.

pub mod app;
pub mod detail;
pub mod gcview;
pub mod keymap;
pub mod runtime;
pub mod theme;
pub mod ui;
pub mod view;

#[cfg(test)]
mod tests;
