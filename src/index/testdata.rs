//! Narinfos for the unit tests of the index and of what plans from it (gc, delete, views).

use crate::nix::{Hash, NarInfo};

/// A fresh narinfo for a fake store path named `name` (its hash made from `seed`),
/// referencing `refs`; NAR and file hashes and sizes are derived from the seed and name.
pub(crate) fn info(seed: &str, name: &str, refs: &[&NarInfo]) -> NarInfo {
    let sp = crate::demo::fake_store_path(seed, name).unwrap();
    NarInfo::new(
        sp,
        format!(
            "nar/{}.nar.xz",
            Hash::sha256_of(seed.as_bytes()).nix32_digest()
        ),
        "xz",
        Hash::sha256_of(name.as_bytes()),
        1000 + seed.len() as u64,
        refs.iter().map(|r| r.store_path.clone()).collect(),
    )
    .with_file(Hash::sha256_of(seed.as_bytes()), 400)
}
