//! One module per subcommand: its clap `Args` (the flags, their help text and the command's
//! own help) and its `run`. Only [`crate::cli`]'s dispatcher calls them; they share
//! `cli::ctx`, `cli::output` and `cli::progress`, never each other (except `demo`, which
//! opens the dashboard).

pub mod completions;
pub mod config;
pub mod copy;
pub mod dashboard;
pub mod delete;
pub mod demo;
pub mod doctor;
pub mod gc;
pub mod info;
pub mod init;
pub mod key;
pub mod keygen;
pub mod ls;
pub mod man;
pub mod pin;
pub mod pull;
pub mod push;
pub mod show;
pub mod sign;
pub mod verify;
