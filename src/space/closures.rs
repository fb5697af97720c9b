//! The biggest closures: the roots of the cache (live paths no live path references) by
//! closure size, with the bytes only that root's closure holds (what deleting the root alone
//! would free).

use crate::index::{Index, RowId};

/// One root and its closure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BigClosure {
    /// The root.
    pub root: RowId,
    /// Live paths in the closure (the root included).
    pub paths: u64,
    /// Stored bytes of the closure (shared NARs once).
    pub stored_bytes: u64,
    /// Paths of the closure no other root reaches.
    pub unshared_paths: u64,
    /// Stored bytes of those paths (shared NARs once).
    pub unshared_bytes: u64,
}

/// Every root, biggest closure (stored bytes) first.
pub fn biggest(idx: &Index) -> Vec<BigClosure> {
    let mut referenced = vec![false; idx.len()];
    for r in idx.live() {
        for &t in idx.refs(r) {
            if t != r
                && let Some(x) = referenced.get_mut(t as usize)
            {
                *x = true;
            }
        }
    }
    let roots: Vec<RowId> = idx.live().filter(|&r| !referenced[r as usize]).collect();
    // Which root reaches each path: one (its id) or several (u32::MAX).
    const NONE: u32 = u32::MAX - 1;
    const MANY: u32 = u32::MAX;
    let mut owner = vec![NONE; idx.len()];
    // The root whose walk last visited each path.
    let mut visited = vec![NONE; idx.len()];
    let mut closures = Vec::with_capacity(roots.len());
    for &root in &roots {
        let mut stack = vec![root];
        let mut members = Vec::new();
        while let Some(x) = stack.pop() {
            if visited[x as usize] == root {
                continue;
            }
            visited[x as usize] = root;
            let o = &mut owner[x as usize];
            *o = if *o == NONE { root } else { MANY };
            members.push(x);
            stack.extend(
                idx.refs(x)
                    .iter()
                    .copied()
                    .filter(|&t| idx.row(t).is_live()),
            );
        }
        closures.push(members);
    }
    let mut out: Vec<BigClosure> = roots
        .iter()
        .zip(closures)
        .map(|(&root, members)| {
            let unshared: Vec<RowId> = members
                .iter()
                .copied()
                .filter(|&m| owner[m as usize] == root)
                .collect();
            BigClosure {
                root,
                paths: members.len() as u64,
                stored_bytes: super::group::stored_sum(idx, members.iter().copied()),
                unshared_paths: unshared.len() as u64,
                unshared_bytes: super::group::stored_sum(idx, unshared.iter().copied()),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.stored_bytes
            .cmp(&a.stored_bytes)
            .then(a.root.cmp(&b.root))
    });
    out
}
