//! narscope: read, audit and maintain Nix binary caches.
//!
//! The cache core (`nix`, `nar`, `compression`, `storage`, `cache`, `audit`, `config`, `demo`,
//! `index`, `closure`, `pins`, `space`, `gc`, `doctor`, `lease`, `jobs`, `keyprobe`, `units`) never touches a
//! terminal; the CLI (`cli`) and the dashboard (`tui`) are built on top of it.

pub mod audit;
pub mod cache;
pub mod cli;
pub mod closure;
pub mod compression;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod gc;
pub mod index;
pub mod jobs;
pub mod keyprobe;
pub mod lease;
pub mod localstore;
pub mod nar;
pub mod nix;
pub mod pins;
pub mod space;
pub mod storage;
pub mod tui;
pub mod units;
pub mod upstream;
pub mod versioned;
