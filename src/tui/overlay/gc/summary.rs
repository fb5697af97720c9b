//! The garbage-collection view: a plan grouped by reason, with bytes, that the operator can
//! open group by group and drill into ("why is this garbage / why is this kept").
//!
//! The groups, and the plan's effect by package ([`super::effect`]), are computed once
//! where the plan is made (the runtime's blocking task), not when drawing; lines are
//! produced only for the rows on screen, so a plan with a million candidates opens and
//! scrolls like a small one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::gc::{GcPlan, Keep, Prepared};
use crate::index::{Index, RowId};
use crate::tui::overlay::gc::effect::PackageEffect;
use crate::units::{format_duration, human_size, thousands};

/// What a group lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Items {
    /// Narinfos (rows of the index).
    Rows(Vec<RowId>),
    /// Objects by key, with their sizes.
    Keys(Vec<(String, u64)>),
    /// Lines of text (for groups that are neither rows nor objects).
    Text(Vec<String>),
}

impl Items {
    /// How many members the group has.
    pub fn len(&self) -> usize {
        match self {
            Items::Rows(v) => v.len(),
            Items::Keys(v) => v.len(),
            Items::Text(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One group of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group's title, as its header line shows it.
    pub title: String,
    /// Bytes it reclaims (deleted groups) or holds (kept groups).
    pub bytes: Option<u64>,
    /// Whether its members are deleted.
    pub deleted: bool,
    /// What it explains in one line.
    pub about: &'static str,
    /// The members, listed when the group is opened.
    pub items: Items,
}

/// The plan, grouped.
#[derive(Clone, Debug)]
pub struct GcSummary {
    /// The plan and what made it.
    pub prepared: Arc<Prepared>,
    /// The index generation it was made on.
    pub generation: u64,
    /// Whether collecting without any root was allowed (`:gc --allow-no-roots`).
    pub allow_no_roots: bool,
    /// The groups, deleted first.
    pub groups: Vec<Group>,
    /// Stored bytes per package before and after (computed with the groups, off the UI
    /// thread).
    pub effect: PackageEffect,
}

/// A line of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A group header.
    Header(usize, &'a Group),
    /// A member of a group: (group, index in the group).
    Item(usize, usize),
}

impl GcSummary {
    /// Group a plan.
    pub fn new(prepared: Arc<Prepared>, idx: &Index, allow_no_roots: bool) -> GcSummary {
        let p = &prepared.plan;
        let mut groups = Vec::new();
        let orphan_bytes: u64 = p
            .orphan_nars
            .iter()
            .map(|k| idx.nar(k).map(|n| n.size).unwrap_or(0))
            .sum();
        let mut garbage = p.garbage.clone();
        garbage.sort_by_cached_key(|&r| (idx.name(r).to_string(), idx.hash_part(r)));
        groups.push(Group {
            title: "unreachable narinfos (with their NARs)".into(),
            bytes: Some(p.delete.nar_bytes.saturating_sub(orphan_bytes)),
            deleted: true,
            about: "no root's closure contains them and they are older than the grace period",
            items: Items::Rows(garbage),
        });
        let sized = |keys: &[String]| -> Vec<(String, u64)> {
            keys.iter()
                .map(|k| (k.clone(), idx.nar(k).map(|n| n.size).unwrap_or(0)))
                .collect()
        };
        groups.push(Group {
            title: "orphan NARs".into(),
            bytes: Some(orphan_bytes),
            deleted: true,
            about: "no narinfo points to them (an interrupted upload or a deletion by hand)",
            items: Items::Keys(sized(&p.orphan_nars)),
        });
        let mut by_reason: BTreeMap<&'static str, Vec<(String, u64)>> = BTreeMap::new();
        for (k, why, size) in &p.other {
            by_reason.entry(why).or_default().push((k.clone(), *size));
        }
        for (why, keys) in by_reason {
            let bytes = keys.iter().map(|k| k.1).sum();
            let (title, about) = match why {
                "listing of garbage" => (
                    "listings of unreachable narinfos",
                    "the .ls file listings of the unreachable narinfos",
                ),
                "listing without a narinfo" => (
                    "listings without a narinfo",
                    ".ls listings whose narinfo is gone",
                ),
                "temp file" => (
                    "temp files",
                    "leftovers of interrupted writes to this file:// cache",
                ),
                "build log of garbage" => (
                    "build logs of unreachable paths",
                    "logs of derivations none of whose outputs stay",
                ),
                _ => (
                    "debuginfo links of deleted NARs",
                    "debuginfo links into NARs that are deleted",
                ),
            };
            groups.push(Group {
                title: title.into(),
                bytes: Some(bytes),
                deleted: true,
                about,
                items: Items::Keys(keys),
            });
        }
        let mut roots: Vec<String> = p
            .roots
            .iter()
            .map(|(src, path)| format!("{path}  ({src})"))
            .collect();
        roots.extend(
            p.missing_roots
                .iter()
                .map(|(src, path)| format!("{path}  ({src}; not in the cache)")),
        );
        if let Some(k) = prepared.opts.keep_younger {
            roots.push(format!(
                "every narinfo newer than {}",
                crate::units::format_duration(k.as_secs())
            ));
        }
        let retention = prepared.opts.retention;
        if let Some(n) = retention.keep_versions {
            roots.push(format!(
                "the newest {n} version(s) of each package, by LastModified (--keep-versions)"
            ));
        }
        if let Some(m) = retention.max_size {
            roots.push(format!(
                "what fits a budget of {} stored bytes, least recently pushed evicted first \
                 (--max-size)",
                human_size(m)
            ));
        }
        groups.push(Group {
            title: "roots".into(),
            bytes: None,
            deleted: false,
            about: "pins in the cache, roots files, the retention age and the retention \
                    policies keep these closures",
            items: Items::Text(roots),
        });
        let grace: Vec<RowId> = idx
            .live()
            .filter(|&r| p.keep.get(r as usize) == Some(&Keep::Grace))
            .collect();
        groups.push(Group {
            title: format!(
                "kept by the grace period ({}; a push may be running)",
                crate::units::format_duration(prepared.opts.grace.as_secs())
            ),
            bytes: None,
            deleted: false,
            about: "younger than the grace period (or of unknown age): never deleted",
            items: Items::Rows(grace),
        });
        if !p.unknown.is_empty() {
            groups.push(Group {
                title: "unreadable narinfos: nothing is collected while they exist".into(),
                bytes: None,
                deleted: false,
                about: "what they reference, and which NARs are theirs, is unknown; run again, \
                        or delete a malformed one explicitly (D on its row)",
                items: Items::Text(
                    p.unknown
                        .iter()
                        .map(|u| format!("{}  {}: {}", u.key, u.state, u.cause))
                        .collect(),
                ),
            });
        }
        let mut broken: BTreeSet<RowId> = p.dangling.iter().copied().collect();
        broken.extend(p.missing_refs.iter().map(|m| m.0));
        groups.push(Group {
            title: "already broken among what stays (left alone)".into(),
            bytes: None,
            deleted: false,
            about: "NAR missing or a reference missing before gc; gc neither fixes nor worsens them",
            items: Items::Rows(broken.into_iter().collect()),
        });
        let effect = PackageEffect::compute(idx, &p.garbage);
        GcSummary {
            generation: idx.generation,
            allow_no_roots,
            groups,
            effect,
            prepared,
        }
    }

    /// Lines in view order with `open` groups expanded.
    pub fn line_count(&self, open: &BTreeSet<usize>) -> usize {
        self.groups
            .iter()
            .enumerate()
            .map(|(i, g)| 1 + if open.contains(&i) { g.items.len() } else { 0 })
            .sum()
    }

    /// The line at `n`.
    pub fn line(&self, open: &BTreeSet<usize>, mut n: usize) -> Option<Line<'_>> {
        for (i, g) in self.groups.iter().enumerate() {
            if n == 0 {
                return Some(Line::Header(i, g));
            }
            n -= 1;
            if open.contains(&i) {
                if n < g.items.len() {
                    return Some(Line::Item(i, n));
                }
                n -= g.items.len();
            }
        }
        None
    }

    /// The line number of group `g`'s header.
    pub fn header_line(&self, open: &BTreeSet<usize>, g: usize) -> usize {
        (0..g)
            .map(|i| {
                1 + if open.contains(&i) {
                    self.groups[i].items.len()
                } else {
                    0
                }
            })
            .sum()
    }

    /// The row at line `n`, if it is one.
    pub fn row_at(&self, open: &BTreeSet<usize>, n: usize) -> Option<RowId> {
        match self.line(open, n)? {
            Line::Item(g, i) => match &self.groups[g].items {
                Items::Rows(v) => v.get(i).copied(),
                _ => None,
            },
            Line::Header(..) => None,
        }
    }

    /// The text of an item.
    pub fn item_text(&self, idx: &Index, g: usize, i: usize) -> String {
        match &self.groups[g].items {
            Items::Rows(v) => v.get(i).map(|&r| idx.store_path(r)).unwrap_or_default(),
            Items::Keys(v) => v
                .get(i)
                .map(|(k, size)| format!("{k}  {}", human_size(*size)))
                .unwrap_or_default(),
            Items::Text(v) => v.get(i).cloned().unwrap_or_default(),
        }
    }

    /// Why the plan keeps or deletes row `id`, if the plan was made on this generation of
    /// `idx` and knows the row.
    pub fn why_row(&self, idx: &Index, id: RowId) -> Option<String> {
        (self.generation == idx.generation && (id as usize) < self.prepared.plan.keep.len())
            .then(|| self.prepared.plan.why(idx, id))
    }

    /// Why the thing at line `n` is garbage or kept.
    pub fn why(&self, idx: &Index, open: &BTreeSet<usize>, n: usize) -> String {
        match self.line(open, n) {
            Some(Line::Header(_, g)) => g.about.to_string(),
            Some(Line::Item(g, i)) => match &self.groups[g].items {
                Items::Rows(v) => v
                    .get(i)
                    .map(|&r| self.prepared.plan.why(idx, r))
                    .unwrap_or_default(),
                _ => self.groups[g].about.to_string(),
            },
            None => String::new(),
        }
    }

    /// Totals in a line that fits 80 columns.
    pub fn short_totals(&self) -> String {
        let p = &self.prepared.plan;
        format!(
            "−{} narinfos, {} NARs, {} other = {} · {} requests · {} stay",
            thousands(p.garbage.len() as u64),
            thousands(p.delete.nar_keys.len() as u64),
            thousands((p.delete.ls_keys.len() + p.delete.extra_keys.len()) as u64),
            human_size(p.bytes),
            thousands(p.requests() as u64),
            thousands(p.kept)
        )
    }

    /// The policies the plan was made with, for the view's header: "keep 3 versions · max
    /// 10 GiB · keep younger than 30d · grace 6h".
    pub fn policies(&self) -> String {
        let o = &self.prepared.opts;
        let mut parts = Vec::new();
        match o.retention.keep_versions {
            Some(1) => parts.push("keep 1 version".to_string()),
            Some(n) => parts.push(format!("keep {n} versions")),
            None => {}
        }
        if let Some(m) = o.retention.max_size {
            parts.push(format!("max {}", human_size(m)));
        }
        if let Some(k) = o.keep_younger {
            parts.push(format!(
                "keep younger than {}",
                format_duration(k.as_secs())
            ));
        }
        parts.push(format!("grace {}", format_duration(o.grace.as_secs())));
        parts.join(" · ")
    }

    /// Totals for the status line and the confirmation.
    pub fn totals(&self) -> String {
        let p = &self.prepared.plan;
        format!(
            "delete {} narinfo(s), {} NAR(s), {} other object(s): {} in {} request(s); {} path(s) stay",
            p.garbage.len(),
            p.delete.nar_keys.len(),
            p.delete.ls_keys.len() + p.delete.extra_keys.len(),
            human_size(p.bytes),
            p.requests(),
            p.kept
        )
    }
}

/// What the plan's size budget (`--max-size`) reached, in one line, when it has one.
pub fn budget_line(plan: &GcPlan) -> Option<String> {
    plan.budget.as_ref().map(|b| b.line())
}
