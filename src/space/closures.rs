//! The biggest closures: the roots of the cache (live paths no other live path references)
//! by closure size, with the bytes only that root's closure holds (what deleting the root
//! alone would free).
//!
//! Which root reaches a path — exactly one, or several — is found for every path at once, in
//! one pass over the reference graph in topological order (referrers before what they
//! reference), so the unshared part of every closure is exact in time linear in paths plus
//! references. A closure's full size needs a walk per root; the walks share a budget of
//! [`WALK_BUDGET`] steps, likely biggest first (by an upper bound of the closure's bytes
//! from the same pass, which counts shared parts again), so a cache whose closures are huge and
//! overlap (every root reaching most of the cache) still answers at once: roots left over are
//! marked as not measured ([`BigClosure::measured`]) and carry their unshared part only.

use crate::index::{Index, RowId};

/// Steps (paths plus references walked) all closure walks of one report may take together:
/// about a quarter of a second on this project's benchmark machine.
pub const WALK_BUDGET: u64 = 3_000_000;

/// One root and its closure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BigClosure {
    /// The root.
    pub root: RowId,
    /// Live paths in the closure (the root included); the unshared paths when not measured.
    pub paths: u64,
    /// Stored bytes of the closure (shared NARs once); the unshared bytes when not measured.
    pub stored_bytes: u64,
    /// Paths of the closure no other root reaches.
    pub unshared_paths: u64,
    /// Stored bytes of those paths (shared NARs once): what deleting the root alone frees.
    pub unshared_bytes: u64,
    /// Whether `paths` and `stored_bytes` are the whole closure (false: the walk budget ran
    /// out first, and they are only the unshared part, a lower bound).
    pub measured: bool,
}

/// Which root reaches a path.
const NONE: u32 = u32::MAX - 1;
const MANY: u32 = u32::MAX;

/// Every root, biggest closure (stored bytes) first; roots not measured after the measured
/// ones, biggest unshared part first.
pub fn biggest(idx: &Index) -> Vec<BigClosure> {
    biggest_sized(idx, &super::Sizes::of(idx), WALK_BUDGET)
}

/// [`biggest`] with the NAR sizes already known and a given walk budget.
pub fn biggest_sized(idx: &Index, sizes: &super::Sizes, budget: u64) -> Vec<BigClosure> {
    let n = idx.len();
    // The live references (none to itself) of every live path, built once as a compact
    // adjacency (offsets into one array): every pass below reads it instead of the rows.
    let live: Vec<bool> = (0..n as RowId).map(|r| idx.row(r).is_live()).collect();
    let mut offsets: Vec<u32> = Vec::with_capacity(n + 1);
    let mut targets: Vec<RowId> = Vec::new();
    offsets.push(0);
    for x in 0..n as RowId {
        if live[x as usize] {
            targets.extend(
                idx.refs(x)
                    .iter()
                    .copied()
                    .filter(|&t| t != x && live.get(t as usize).copied().unwrap_or(false)),
            );
        }
        offsets.push(targets.len() as u32);
    }
    drop(live);
    let edges = |x: RowId| {
        targets[offsets[x as usize] as usize..offsets[x as usize + 1] as usize]
            .iter()
            .copied()
    };
    // Live referrers of each path.
    let mut indeg = vec![0u32; n];
    for r in idx.live() {
        for t in edges(r) {
            indeg[t as usize] += 1;
        }
    }
    let roots: Vec<RowId> = idx.live().filter(|&r| indeg[r as usize] == 0).collect();
    // Stored bytes by NAR: paths sharing a NAR object share one slot.
    let nar_of: Vec<u32> = (0..n as RowId)
        .map(|r| sizes.slot(r).unwrap_or(u32::MAX))
        .collect();
    let nar_size: Vec<u64> = (0..sizes.slots() as u32)
        .map(|s| sizes.slot_size(s))
        .collect();
    // Owners (index into `roots`) in topological order (Kahn): a path's owner is its
    // referrers' merged.
    let mut owner = vec![NONE; n];
    let mut queue: Vec<RowId> = Vec::with_capacity(roots.len());
    for (i, &r) in roots.iter().enumerate() {
        owner[r as usize] = i as u32;
        queue.push(r);
    }
    // The order paths were taken in: referrers before what they reference.
    let mut topo: Vec<RowId> = Vec::with_capacity(n);
    while let Some(x) = queue.pop() {
        topo.push(x);
        let o = owner[x as usize];
        for t in edges(x) {
            let ot = &mut owner[t as usize];
            *ot = match *ot {
                NONE => o,
                cur if cur == o => o,
                _ => MANY,
            };
            indeg[t as usize] -= 1;
            if indeg[t as usize] == 0 {
                queue.push(t);
            }
        }
    }
    // A reference cycle (impossible in a valid cache): what is on it is counted shared.
    for r in idx.live() {
        if indeg[r as usize] > 0 {
            owner[r as usize] = MANY;
        }
    }
    drop(indeg);
    // Unshared part of each root: the paths it alone owns, and the NARs only its paths use
    // (a NAR two roots' paths share is freed by neither deletion alone).
    let mut out: Vec<BigClosure> = roots
        .iter()
        .map(|&root| BigClosure {
            root,
            ..BigClosure::default()
        })
        .collect();
    let mut nar_owner = vec![NONE; nar_size.len()];
    for r in idx.live() {
        let o = owner[r as usize];
        let nar = nar_of[r as usize];
        if o != MANY && o != NONE {
            let i = o as usize;
            out[i].unshared_paths += 1;
            if nar == u32::MAX {
                out[i].unshared_bytes += super::stored_size(idx, r);
            }
        }
        if nar != u32::MAX {
            let no = &mut nar_owner[nar as usize];
            *no = match *no {
                NONE => o,
                cur if cur == o => o,
                _ => MANY,
            };
        }
    }
    for (nar, &o) in nar_owner.iter().enumerate() {
        if o != MANY && o != NONE {
            out[o as usize].unshared_bytes += nar_size[nar];
        }
    }
    // Whole closures within the budget, likely biggest first: by an upper bound of each
    // closure's bytes (a path's own plus its references' bounds, shared parts counted again),
    // one pass in reverse topological order.
    let own = |r: RowId| match nar_of[r as usize] {
        u32::MAX => super::stored_size(idx, r),
        s => nar_size[s as usize],
    };
    let mut bound = vec![0u64; n];
    for &x in topo.iter().rev() {
        bound[x as usize] = edges(x).fold(own(x), |b, t| b.saturating_add(bound[t as usize]));
    }
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (out[a].root as usize, out[b].root as usize);
        bound[rb]
            .cmp(&bound[ra])
            .then(out[b].unshared_bytes.cmp(&out[a].unshared_bytes))
            .then(ra.cmp(&rb))
    });
    let mut visited = vec![u32::MAX; n];
    let mut nar_stamp = vec![u32::MAX; nar_size.len()];
    let mut steps = 0u64;
    let mut stack = Vec::new();
    for (walk, &i) in order.iter().enumerate() {
        let walk = walk as u32;
        if steps >= budget {
            break;
        }
        let (mut paths, mut bytes) = (0u64, 0u64);
        stack.clear();
        stack.push(out[i].root);
        visited[out[i].root as usize] = walk;
        let mut finished = true;
        while let Some(x) = stack.pop() {
            steps += 1;
            if steps > budget {
                finished = false;
                break;
            }
            paths += 1;
            let nar = nar_of[x as usize];
            if nar == u32::MAX {
                bytes += super::stored_size(idx, x);
            } else if nar_stamp[nar as usize] != walk {
                nar_stamp[nar as usize] = walk;
                bytes += nar_size[nar as usize];
            }
            for t in edges(x) {
                steps += 1;
                if visited[t as usize] != walk {
                    visited[t as usize] = walk;
                    stack.push(t);
                }
            }
        }
        if finished {
            out[i].paths = paths;
            out[i].stored_bytes = bytes;
            out[i].measured = true;
        }
    }
    for c in out.iter_mut().filter(|c| !c.measured) {
        c.paths = c.unshared_paths;
        c.stored_bytes = c.unshared_bytes;
    }
    out.sort_by(|a, b| {
        b.measured
            .cmp(&a.measured)
            .then(b.stored_bytes.cmp(&a.stored_bytes))
            .then(b.unshared_bytes.cmp(&a.unshared_bytes))
            .then(a.root.cmp(&b.root))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testdata::info;
    use crate::nix::TrustedKeys;

    fn by_name<'a>(idx: &Index, all: &'a [BigClosure], name: &str) -> &'a BigClosure {
        all.iter()
            .find(|c| idx.name(c.root) == name)
            .unwrap_or_else(|| panic!("no root {name}"))
    }

    /// lib ← liba ← app1 → lib; app2 → lib; solo; twin shares liba's NAR object.
    fn cache() -> Index {
        let lib = info("lib", "lib-1", &[]);
        let liba = info("liba", "liba-1", &[&lib]);
        let app1 = info("app1", "app1-1", &[&liba, &lib]);
        let app2 = info("app2", "app2-1", &[&lib]);
        let solo = info("solo", "solo-1", &[]);
        let mut twin = info("twin", "twin-1", &[]);
        twin.url = liba.url.clone();
        let all = [lib, liba, app1, app2, solo, twin];
        Index::from_narinfos("file:///c", &TrustedKeys::new(), all.iter())
    }

    #[test]
    fn roots_closures_and_what_only_they_hold() {
        let idx = cache();
        let all = biggest(&idx);
        let order: Vec<&str> = all.iter().map(|c| idx.name(c.root)).collect();
        assert_eq!(order, ["app1-1", "app2-1", "solo-1", "twin-1"]);
        let app1 = by_name(&idx, &all, "app1-1");
        assert!(app1.measured);
        assert_eq!((app1.paths, app1.stored_bytes), (3, 1200));
        // liba is app1's alone, but its NAR object is twin's too: deleting app1 frees only
        // its own NAR.
        assert_eq!((app1.unshared_paths, app1.unshared_bytes), (2, 400));
        let app2 = by_name(&idx, &all, "app2-1");
        assert_eq!((app2.paths, app2.stored_bytes), (2, 800));
        assert_eq!((app2.unshared_paths, app2.unshared_bytes), (1, 400));
        let twin = by_name(&idx, &all, "twin-1");
        assert_eq!((twin.paths, twin.stored_bytes), (1, 400));
        assert_eq!((twin.unshared_paths, twin.unshared_bytes), (1, 0));
    }

    #[test]
    fn an_exhausted_budget_leaves_roots_unmeasured_with_their_unshared_part() {
        let idx = cache();
        let all = biggest_sized(&idx, &crate::space::Sizes::of(&idx), 3);
        assert!(all.iter().all(|c| !c.measured));
        let app1 = by_name(&idx, &all, "app1-1");
        assert_eq!((app1.paths, app1.stored_bytes), (2, 400));
        // Enough for the first walks only: the measured come first.
        let some = biggest_sized(&idx, &crate::space::Sizes::of(&idx), 8);
        assert!(some[0].measured);
        assert!(some.iter().any(|c| !c.measured));
        let first_unmeasured = some.iter().position(|c| !c.measured).unwrap();
        assert!(some[first_unmeasured..].iter().all(|c| !c.measured));
    }

    #[test]
    fn a_reference_cycle_is_counted_shared_and_terminates() {
        let a0 = info("a", "a-1", &[]);
        let b = info("b", "b-1", &[&a0]);
        let mut a = a0.clone();
        a.references.push(b.store_path.clone());
        let c = info("c", "c-1", &[&a]);
        let idx = Index::from_narinfos("file:///c", &TrustedKeys::new(), [a, b, c].iter());
        let all = biggest(&idx);
        assert_eq!(all.len(), 1);
        assert_eq!(idx.name(all[0].root), "c-1");
        assert_eq!((all[0].paths, all[0].unshared_paths), (3, 1));
    }
}
