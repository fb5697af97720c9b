//! Garbage collection of a binary cache that never breaks a closure.
//!
//! Roots come from pins stored in the cache itself (`narscope/roots/<name>`, a list of store
//! paths each, shared by everyone who operates the bucket), from a file, from the local Nix
//! store's GC roots, and from age (every narinfo newer than a duration). The closure of the
//! roots through References is marked; everything else is a candidate. Nothing whose object is
//! younger than the grace period is deleted, and a young narinfo counts as a root, so a push
//! that is running (NARs first, narinfos last) loses nothing.
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
//! ([`final_plan`]). Files: `pins.rs` (pins), `roots.rs` (roots and the request), `plan.rs`
//! (the pure plan), `collect.rs` (the looks and the job), `error.rs` ([`GcError`]).

mod collect;
mod error;
mod pins;
mod plan;
mod roots;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use collect::{
    Prepared, collect, final_plan, gather_extras, prepare, prepare_given, prepare_request,
};
pub use error::GcError;
pub use pins::{
    PINS_PREFIX, Pin, check_pin_name, list_pins, parse_pin, pin_text, remove_pin, write_pin,
};
pub use plan::{DEFAULT_GRACE, Extras, GcOptions, GcPlan, Keep, intersect, plan};
pub use roots::{GcRequest, GivenRoots, RootSource, read_roots_file};

/// Parse a duration: a number and a unit (`s`, `m`, `h`, `d`, `w`), e.g. `6h`, `30d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 6h, 30d, 90m)"))?;
    let mult = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" => return Err(format!("'{s}': give a unit (s, m, h, d or w)")),
        _ => return Err(format!("'{s}': unknown unit '{unit}' (s, m, h, d or w)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

/// A whole number of seconds as [`parse_duration`] reads it: "6h", "30d", "90s".
pub fn format_duration(s: u64) -> String {
    if s >= 86_400 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
