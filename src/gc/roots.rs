//! Where roots come from besides pins: a roots file, the local Nix store's GC roots; and
//! the list of (source, store path) roots a plan starts from.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::storage::Store;

use super::GcError;
use super::plan::{DEFAULT_GRACE, GcOptions, Retention, RootSource};
use crate::pins::{Pin, list_pins, parse_paths};

/// The store paths of a roots file (one a line; blank lines and `#` comments skipped).
pub fn read_roots_file(f: &std::path::Path) -> Result<Vec<String>, GcError> {
    let text = std::fs::read_to_string(f).map_err(|error| GcError::RootsFile {
        path: f.to_path_buf(),
        error,
    })?;
    Ok(parse_paths(&f.display().to_string(), &text)?)
}

/// Every root: the pins' paths first, then the caller's.
pub(super) fn roots_of(pins: &[Pin], extra: &[(RootSource, String)]) -> Vec<(RootSource, String)> {
    let mut roots: Vec<(RootSource, String)> = pins
        .iter()
        .flat_map(|p| {
            p.paths
                .iter()
                .map(|x| (RootSource::Pin(p.name.clone()), x.clone()))
        })
        .collect();
    roots.extend(extra.iter().cloned());
    roots
}

/// What a garbage collection is asked to keep, and how carefully: built by both front ends
/// (flags, or the dashboard's form) and turned into a plan by [`super::prepare_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcRequest {
    /// Files of store paths to keep (`--roots-file`).
    pub roots_files: Vec<PathBuf>,
    /// Keep the closures of the local Nix store's GC roots (`--roots-from-nix`).
    pub roots_from_nix: bool,
    /// Nothing younger than this is deleted, and young narinfos are roots.
    pub grace: Duration,
    /// Keep every narinfo newer than this, with its closure.
    pub keep_younger: Option<Duration>,
    /// Collecting without any root in the cache is allowed (`--allow-no-roots`).
    pub allow_no_roots: bool,
    /// Retention policies (`--keep-versions`, `--max-size`).
    pub retention: Retention,
}

impl Default for GcRequest {
    fn default() -> Self {
        GcRequest {
            roots_files: Vec::new(),
            roots_from_nix: false,
            grace: DEFAULT_GRACE,
            keep_younger: None,
            allow_no_roots: false,
            retention: Retention::default(),
        }
    }
}

/// The roots a request names, read: the cache's pins and the caller's own roots.
#[derive(Clone, Debug, Default)]
pub struct GivenRoots {
    /// The pins of the cache.
    pub pins: Vec<Pin>,
    /// Roots from roots files and the local Nix store, in that order.
    pub extra: Vec<(RootSource, String)>,
}

impl GivenRoots {
    /// No root at all: no pin names a path and the caller gave none.
    pub fn is_empty(&self) -> bool {
        self.extra.is_empty() && self.pins.iter().all(|p| p.paths.is_empty())
    }
}

impl GcRequest {
    /// Reads the roots files, the local Nix store's GC roots (when asked) and the pins of
    /// the cache.
    pub async fn read_roots(&self, store: &dyn Store) -> Result<GivenRoots, GcError> {
        let mut extra = Vec::new();
        for f in &self.roots_files {
            extra.extend(
                read_roots_file(f)?
                    .into_iter()
                    .map(|p| (RootSource::File, p)),
            );
        }
        if self.roots_from_nix {
            extra.extend(
                crate::localstore::gc_root_closures()?
                    .into_iter()
                    .map(|p| (RootSource::Nix, p)),
            );
        }
        let pins = list_pins(store).await?;
        Ok(GivenRoots { pins, extra })
    }

    /// Whether to refuse before looking at the cache: no root given or pinned, no retention
    /// age, no retention policy (`--keep-versions`, `--max-size`: the policy says what to
    /// keep), and collecting without roots not allowed.
    pub fn refuses_without(&self, roots: &GivenRoots) -> bool {
        roots.is_empty()
            && self.keep_younger.is_none()
            && !self.retention.is_set()
            && !self.allow_no_roots
    }

    /// The plan's options, measured from now.
    pub fn options(&self) -> GcOptions {
        GcOptions {
            grace: self.grace,
            keep_younger: self.keep_younger,
            now: SystemTime::now(),
            upstream: Default::default(),
            retention: self.retention,
        }
    }
}
