//! Garbage collection of a binary cache that never breaks a closure.
//!
//! Roots come from pins stored in the cache itself (`narscope/roots/<name>`, a list of store
//! paths each, shared by everyone who operates the bucket), from a file, from the local Nix
//! store's GC roots, and from age (every narinfo newer than a duration). The closure of the
//! roots through References is marked; everything else is a candidate. Nothing whose object is
//! younger than the grace period is deleted, and a young narinfo counts as a root, so a push
//! that is running (NARs first, narinfos last) loses nothing.
//!
//! Retention policies ([`Retention`]) keep more, or less, of what no root reaches:
//! `--keep-versions N` keeps the newest N versions of each package with their closures,
//! `--max-size` evicts the least recently pushed paths no root reaches until the stored
//! bytes fit a budget ([`GcPlan::budget`] says whether they did).
//!
//! [`plan()`] is pure (all of `plan.rs`): it works on a complete
//! [`Index`](crate::index::Index) (and the extra listings of `log/` and `debuginfo/`).
//! Execution reuses [`crate::jobs::delete::execute`]: narinfos first, referrers before what
//! they reference, in batches of 1000, then NARs, listings and the rest. Re-running
//! after an interruption converges: what was left behind is garbage again.
//!
//! Both front ends run the same workflow: a [`GcRequest`] (what to keep, how carefully)
//! becomes the first look with [`prepare_request`] (or [`GcRequest::read_roots`] then
//! [`prepare_given`], to refuse a request without roots before scanning), and [`collect`]
//! carries it out as a job, under the deletion lease and after a second look
//! ([`final_plan`]). Files: `roots.rs` (roots and the request), `plan.rs`
//! (the pure plan and where a root came from), `retention.rs` (`--keep-versions` and
//! `--max-size`, pure, used by the plan), `collect.rs` (the looks and the job), `error.rs`
//! ([`GcError`]). Imports run one way: `collect` → `roots` → `plan` (with `retention`); pins are [`crate::pins`], below
//! both gc and the jobs.

mod collect;
mod error;
mod plan;
mod retention;
#[cfg(test)]
mod retention_tests;
mod roots;
#[cfg(test)]
mod tests;

pub use collect::{
    Prepared, collect, final_plan, gather_extras, prepare, prepare_given, prepare_request,
};
pub use error::GcError;
pub use plan::{
    DEFAULT_GRACE, Extras, GcOptions, GcPlan, Keep, Retention, RootSource, UpstreamRows, intersect,
    plan,
};
pub use retention::{BudgetReport, parse_keep_versions, parse_max_size, pushed_date};
pub use roots::{GcRequest, GivenRoots, read_roots_file};
