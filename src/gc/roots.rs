//! Where roots come from besides pins: a roots file, the local Nix store's GC roots; and
//! the list of (source, store path) roots a plan starts from.

use super::pins::Pin;

/// Where a root came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum RootSource {
    /// A pin in the cache.
    Pin(String),
    /// `--roots-file`.
    File,
    /// The local Nix store's GC roots.
    Nix,
}

impl std::fmt::Display for RootSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootSource::Pin(n) => write!(f, "pin '{n}'"),
            RootSource::File => f.write_str("the roots file"),
            RootSource::Nix => f.write_str("a local Nix GC root"),
        }
    }
}

/// Store paths one a line, blank lines and `#` comments skipped; errors name `what` and the
/// line.
pub(super) fn parse_paths(what: &str, text: &str) -> Result<Vec<String>, String> {
    let mut paths = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        crate::nix::StorePath::parse_any(l).map_err(|e| format!("{what}, line {}: {e}", i + 1))?;
        paths.push(l.to_string());
    }
    Ok(paths)
}

/// The store paths of a roots file (one a line; blank lines and `#` comments skipped).
pub fn read_roots_file(f: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(f)
        .map_err(|e| format!("cannot read roots file {}: {e}", f.display()))?;
    parse_paths(&f.display().to_string(), &text)
}

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
