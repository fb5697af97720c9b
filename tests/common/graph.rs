//! Synthetic caches with known answers: a random reference graph of signed paths written
//! straight into a file:// directory (age it with [`super::fs::age_files`]).

use std::collections::BTreeSet;
use std::path::Path;

use narscope::nix::{Hash, NarInfo, SecretKey, StorePath};

use super::rng::Rng;

/// A random cache: `n` signed paths, each referencing some earlier ones; every fifth path
/// shares the NAR of the one before it. Returns the paths and, per path, its references (by
/// index).
pub struct Graph {
    pub paths: Vec<StorePath>,
    pub refs: Vec<Vec<usize>>,
    pub urls: Vec<String>,
}

pub fn write_graph(dir: &Path, n: usize, seed: u64, key: &SecretKey) -> Graph {
    let mut rng = Rng(seed | 1);
    let refs: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            let mut refs: BTreeSet<usize> = BTreeSet::new();
            if i > 0 {
                for _ in 0..rng.below(4) {
                    refs.insert(rng.below(i as u64) as usize);
                }
            }
            refs.into_iter().collect()
        })
        .collect();
    write_edges(dir, &refs, seed, key)
}

/// A cache of signed paths where path `i` references the (earlier) paths `refs[i]`; every
/// fifth path shares the NAR of the one before it.
pub fn write_edges(dir: &Path, refs: &[Vec<usize>], seed: u64, key: &SecretKey) -> Graph {
    std::fs::create_dir_all(dir.join("nar")).unwrap();
    std::fs::write(dir.join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    let mut g = Graph {
        paths: Vec::new(),
        refs: Vec::new(),
        urls: Vec::new(),
    };
    for (i, rs) in refs.iter().enumerate() {
        let sp =
            narscope::demo::fake_store_path(&format!("gc:{seed}:{i}"), &format!("p{i}")).unwrap();
        let nar = narscope::nar::encode_node(&narscope::nar::NarNode::Regular {
            executable: false,
            contents: format!("contents of {i}").into_bytes(),
        });
        let (url, file_hash, file_size) = if i % 5 == 4 {
            // Shares the previous path's NAR (same bytes).
            let prev = &g.urls[i - 1];
            let bytes = std::fs::read(dir.join(prev)).unwrap();
            (prev.clone(), Hash::sha256_of(&bytes), bytes.len() as u64)
        } else {
            let fh = Hash::sha256_of(&nar);
            let url = format!("nar/{}.nar", fh.nix32_digest());
            std::fs::write(dir.join(&url), &nar).unwrap();
            (url, fh, nar.len() as u64)
        };
        let bytes = std::fs::read(dir.join(&url)).unwrap();
        let mut info = NarInfo::new(
            sp.clone(),
            url.clone(),
            "none",
            Hash::sha256_of(&bytes),
            bytes.len() as u64,
            rs.iter().map(|&j| g.paths[j].clone()).collect(),
        )
        .with_file(file_hash, file_size);
        info.sign(key);
        std::fs::write(dir.join(sp.narinfo_key()), info.to_text()).unwrap();
        g.paths.push(sp);
        g.refs.push(rs.clone());
        g.urls.push(url);
    }
    g
}

pub fn closure(g: &Graph, roots: &[usize]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = roots.to_vec();
    while let Some(x) = stack.pop() {
        if seen.insert(x) {
            stack.extend(g.refs[x].iter().copied());
        }
    }
    seen
}
