//! The local Nix store, through Nix's own commands: path metadata and closures for `push`,
//! and importing pulled paths with Nix's checks for `pull --into-store`.

use std::path::Path;
use std::process::Command;

use crate::nix::content_address::CaError;
use crate::nix::hash::HashError;
use crate::nix::store_path::StorePathError;
use crate::nix::{ContentAddress, Hash, StorePath};

/// What the local Nix database knows about one valid path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPath {
    /// The store path.
    pub path: StorePath,
    /// NarHash as registered.
    pub nar_hash: Hash,
    /// NarSize as registered.
    pub nar_size: u64,
    /// References, as registered in the local Nix database.
    pub references: Vec<StorePath>,
    /// The deriver, when one is registered.
    pub deriver: Option<StorePath>,
    /// The content address, for content-addressed paths.
    pub ca: Option<ContentAddress>,
    /// Signatures already on the path.
    pub sigs: Vec<String>,
}

/// Why local store metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LocalStoreError {
    /// Nix is not installed or not runnable.
    #[error("cannot run `{0}`: {1} (is Nix installed?)")]
    NoNix(String, std::io::Error),
    /// Nix said no.
    #[error("`{cmd}` failed: {stderr}")]
    Failed {
        /// The command line that was run.
        cmd: String,
        /// What it printed.
        stderr: String,
    },
    /// Its output was not what Nix prints.
    #[error("cannot read the output of `{0}`: {1}")]
    BadOutput(String, Box<PathInfoError>),
}

/// Why `nix path-info --json` output could not be read; each names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum PathInfoError {
    /// The output is not JSON.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but neither of the two shapes Nix prints.
    #[error("neither a list nor an object")]
    Shape,
    /// Nix reports the path as not valid (not in the store).
    #[error("{0} is not a valid path in the local store")]
    NotValid(String),
    /// A path (the entry's own, a reference or the deriver) that is not a store path.
    #[error("{0}: {1}")]
    BadPath(String, StorePathError),
    /// A required field is missing.
    #[error("{path}: no {field}")]
    Missing {
        /// The entry's path.
        path: String,
        /// `narHash` or `narSize`.
        field: &'static str,
    },
    /// The `narHash` does not parse.
    #[error("{0}: {1}")]
    NarHash(String, HashError),
    /// The `ca` field does not parse.
    #[error("{0}: CA: {1}")]
    Ca(String, CaError),
}

fn nix_command(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("NIX_CONFIG", nix_config());
    c
}

/// `nix-command` on, whatever the user's nix.conf says, plus what `NIX_CONFIG` already holds.
fn nix_config() -> String {
    let mut cfg = std::env::var("NIX_CONFIG").unwrap_or_default();
    if !cfg.is_empty() && !cfg.ends_with('\n') {
        cfg.push('\n');
    }
    cfg.push_str("extra-experimental-features = nix-command\n");
    cfg
}

fn run(mut c: Command) -> Result<Vec<u8>, LocalStoreError> {
    let desc = std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = c
        .output()
        .map_err(|e| LocalStoreError::NoNix(desc.clone(), e))?;
    if !out.status.success() {
        return Err(LocalStoreError::Failed {
            cmd: desc,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// The closures of `paths` (each path and everything it references), with their metadata,
/// from `nix path-info --json --recursive`.
pub fn closure(paths: &[String]) -> Result<Vec<LocalPath>, LocalStoreError> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = nix_command("nix");
    c.args(["path-info", "--json", "--recursive"]).args(paths);
    let desc = format!("nix path-info --json --recursive {}", paths.join(" "));
    let out = run(c)?;
    parse_path_info(&out).map_err(|e| LocalStoreError::BadOutput(desc, Box::new(e)))
}

/// Parse `nix path-info --json` output: a list of objects with a `path` (Nix 2.8–2.18) or an
/// object keyed by path (newer Nix).
pub fn parse_path_info(json: &[u8]) -> Result<Vec<LocalPath>, PathInfoError> {
    let v: serde_json::Value = serde_json::from_slice(json)?;
    let items: Vec<(String, &serde_json::Value)> = match &v {
        serde_json::Value::Array(a) => a
            .iter()
            .map(|o| {
                let p = o.get("path").and_then(|p| p.as_str()).unwrap_or_default();
                (p.to_string(), o)
            })
            .collect(),
        serde_json::Value::Object(m) => m.iter().map(|(k, o)| (k.clone(), o)).collect(),
        _ => return Err(PathInfoError::Shape),
    };
    let sp =
        |s: &str| StorePath::parse_any(s).map_err(|e| PathInfoError::BadPath(s.to_string(), e));
    let mut out = Vec::new();
    for (path, o) in items {
        if o.is_null() || o.get("valid").and_then(|v| v.as_bool()) == Some(false) {
            return Err(PathInfoError::NotValid(path));
        }
        let str_of = |k: &str| o.get(k).and_then(|v| v.as_str());
        let missing = |field| PathInfoError::Missing {
            path: path.clone(),
            field,
        };
        let nar_hash = str_of("narHash").ok_or_else(|| missing("narHash"))?;
        let nar_hash =
            Hash::parse(nar_hash).map_err(|e| PathInfoError::NarHash(path.clone(), e))?;
        let nar_size = o
            .get("narSize")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| missing("narSize"))?;
        let references = o
            .get("references")
            .and_then(|r| r.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).map(sp).collect())
            .unwrap_or(Ok(Vec::new()))?;
        let deriver = match str_of("deriver") {
            Some(d) if !d.is_empty() => Some(sp(d)?),
            _ => None,
        };
        let ca = match str_of("ca") {
            Some(c) if !c.is_empty() => {
                Some(ContentAddress::parse(c).map_err(|e| PathInfoError::Ca(path.clone(), e))?)
            }
            _ => None,
        };
        let sigs = o
            .get("signatures")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        out.push(LocalPath {
            path: sp(&path)?,
            nar_hash,
            nar_size,
            references,
            deriver,
            ca,
            sigs,
        });
    }
    Ok(out)
}

/// Import the closure of `paths` from a local binary cache directory into the Nix store with
/// `nix copy --from`, so that Nix checks signatures (against `trusted_keys`) and hashes itself.
pub fn import_from_cache(
    cache_dir: &Path,
    paths: &[String],
    trusted_keys: &[String],
) -> Result<(), LocalStoreError> {
    let mut c = nix_command("nix");
    c.arg("copy")
        .arg("--from")
        .arg(format!("file://{}", cache_dir.display()))
        .args(["--option", "trusted-public-keys", &trusted_keys.join(" ")])
        .args(["--option", "narinfo-cache-negative-ttl", "0"])
        .args(paths);
    run(c).map(|_| ())
}

/// The closures of the local Nix store's GC roots (`nix-store --gc --print-roots`, then
/// `nix-store --query --requisites`), sorted: a path the cache has stays even when the root
/// itself was never pushed. A root that vanishes meanwhile keeps at least itself.
pub fn gc_root_closures() -> Result<Vec<String>, LocalStoreError> {
    let mut c = nix_command("nix-store");
    c.args(["--gc", "--print-roots"]);
    let out = run(c)?;
    let roots: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.rsplit_once(" -> ").map(|(_, p)| p.trim().to_string()))
        .filter(|p| p.starts_with("/nix/store/"))
        .collect();
    let roots: Vec<String> = roots.into_iter().collect();
    // `None` when Nix refuses (a path that is no longer valid), an error when it cannot run.
    let requisites = |paths: &[String]| -> Result<Option<Vec<String>>, LocalStoreError> {
        let mut c = nix_command("nix-store");
        c.args(["--query", "--requisites"]).args(paths);
        match run(c) {
            Ok(out) => Ok(Some(
                String::from_utf8_lossy(&out)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| l.starts_with("/nix/store/"))
                    .collect(),
            )),
            Err(LocalStoreError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let mut all = std::collections::BTreeSet::new();
    for chunk in roots.chunks(500) {
        match requisites(chunk)? {
            Some(paths) => all.extend(paths),
            None => {
                for p in chunk {
                    all.insert(p.clone());
                    match requisites(std::slice::from_ref(p))? {
                        Some(paths) => all.extend(paths),
                        None => tracing::warn!("no closure for GC root {p}"),
                    }
                }
            }
        }
    }
    Ok(all.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_info_in_both_shapes() {
        let old = br#"[{"path":"/nix/store/28k7qmrizd12lnpv4mhw3yhir75dhj1k-withrefs","narHash":"sha256:0sh1ghr019m7vl5byq9l2kjzcizgm70mrg6yx0j0hn5ikm5vn044","narSize":1096,"references":["/nix/store/v9k39iqz3s8j5gxavbbgr1cavsqcg13b-somedir"],"deriver":"/nix/store/bghky0dgfk01r3m3gvs4bzhl74jkmgfg-withrefs.drv","signatures":["demo-1:abc"],"registrationTime":1}]"#;
        let v = parse_path_info(old).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].nar_size, 1096);
        assert_eq!(v[0].references.len(), 1);
        assert!(v[0].deriver.is_some());
        assert_eq!(v[0].sigs, vec!["demo-1:abc".to_string()]);
        let new = br#"{"/nix/store/28k7qmrizd12lnpv4mhw3yhir75dhj1k-withrefs":{"narHash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","narSize":5,"references":[],"ca":null,"deriver":null}}"#;
        let v = parse_path_info(new).unwrap();
        assert_eq!(v[0].path.name(), "withrefs");
        assert!(v[0].ca.is_none());
        assert!(
            parse_path_info(br#"{"/nix/store/28k7qmrizd12lnpv4mhw3yhir75dhj1k-x":null}"#).is_err()
        );
        assert!(parse_path_info(b"[{\"path\":\"/nix/store/bad\"}]").is_err());
    }
}
