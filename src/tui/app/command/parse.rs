//! The grammar of the `:` line: [`parse`] turns a line into a [`Command`] without looking
//! at the state, so it is tested on its own (below). What needs the state (which rows
//! "marked" means, whether a path is in the cache) is left to [`super`]'s `run_command`.

use std::path::PathBuf;

use crate::gc::{parse_keep_versions, parse_max_size};
use crate::tui::keymap::Action;
use crate::tui::msg::GcRequest;
use crate::tui::pane::list::query::{SortKey, StatusFilter};

/// Which rows a command acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every row the list shows (`view`, or `all`).
    View,
    /// The selected row.
    Selected,
    /// The marked rows.
    Marked,
    /// The rows the list shows whose verdict is unsigned (sign and delete only).
    Unsigned,
}

impl Target {
    /// The target a word names.
    fn parse(word: &str) -> Option<Target> {
        match word {
            "view" | "all" => Some(Target::View),
            "selected" => Some(Target::Selected),
            "marked" => Some(Target::Marked),
            "unsigned" => Some(Target::Unsigned),
            _ => None,
        }
    }
}

/// How `:fuzzy` changes fuzzy matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// `on`, or no argument.
    On,
    /// `off`: turn the setting off.
    Off,
    /// Any other word flips it.
    Toggle,
}

/// A parsed `:` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// An empty line: nothing happens.
    Nothing,
    /// A key action named by a command (`q`, `help`, `refresh`, `copy`, `mark all`, or any
    /// action by its keymap name).
    Action(Action),
    /// Sort by a column; `None` takes the column's natural direction (sizes descending).
    Sort(SortKey, Option<bool>),
    /// Show only rows with this verdict filter.
    Only(StatusFilter),
    /// Filter by name or hash.
    Filter(String),
    /// Fuzzy matching on, off or flipped.
    Fuzzy(Switch),
    /// Jump to a store path or hash.
    Goto(String),
    /// Deep-verify the target (`None`: the marked rows, else the selected one).
    Verify(Option<Target>),
    /// Sign the target (`None`: the marked rows, else the selected one).
    Sign(Option<Target>),
    /// Delete the target (`None`: the marked rows, else the selected one).
    Delete(Option<Target>),
    /// Push local store paths.
    Push(Vec<String>),
    /// Pull paths (none given: the marked or selected ones) into a directory.
    Pull(Vec<String>, PathBuf),
    /// Plan a garbage collection.
    Gc(GcRequest),
    /// List the pins.
    Pins,
    /// Run the bucket doctor and show its findings.
    Doctor,
    /// List the past deletion plans.
    Plans,
    /// Create or replace a pin (no paths given: the marked or selected ones).
    PinAdd(String, Vec<String>),
    /// Remove a pin (asks first).
    PinRemove(String),
    /// Cancel a job by id (`None`: the job the Cancel key would cancel).
    Cancel(Option<u64>),
    /// Copy the marked (or selected) paths with their closures to another cache (a store
    /// URL), after a confirmation that shows the plan.
    CopyTo(String),
}

/// Why a line is not a command: the text for the status line, with the usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage(pub String);

impl Command {
    /// The name under which this command is refused in read-only mode, if it changes the
    /// cache.
    pub fn mutating(&self) -> Option<String> {
        match self {
            Command::Action(a) if a.is_mutating() => Some(a.to_string()),
            Command::Sign(_) => Some("sign".into()),
            Command::Delete(_) => Some("delete".into()),
            Command::Push(_) => Some("push".into()),
            Command::PinAdd(..) => Some("pin add".into()),
            Command::PinRemove(_) => Some("pin rm".into()),
            _ => None,
        }
    }
}

pub(super) const COPY_USAGE: &str =
    "usage: copy --to DST (a store URL; the marked or selected paths, with their closures)";

pub(super) const GC_USAGE: &str = "usage: gc [--grace D] [--keep-younger-than D] \
     [--keep-versions N] [--max-size SIZE] [--roots-file F] [--allow-no-roots]";

/// Parse one `:` line. Words are separated by spaces; the first names the command.
pub fn parse(line: &str) -> Result<Command, Usage> {
    let usage = |s: &str| Err(Usage(s.to_string()));
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Ok(Command::Nothing);
    };
    let rest: Vec<&str> = words.collect();
    let arg = rest.join(" ");
    let owned = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    Ok(match cmd {
        "q" | "quit" => Command::Action(Action::Quit),
        "q!" | "quit!" => Command::Action(Action::ForceQuit),
        "help" | "h" | "keys" => Command::Action(Action::Help),
        "refresh" | "r" => Command::Action(Action::Refresh),
        "copy" | "y" if rest.is_empty() => Command::Action(Action::CopyPath),
        "copy" => match rest.as_slice() {
            ["--to", dst] => Command::CopyTo(dst.to_string()),
            [one] if one.starts_with("--to=") && one.len() > 5 => {
                Command::CopyTo(one["--to=".len()..].to_string())
            }
            _ => return usage(COPY_USAGE),
        },
        "sort" => match rest.first().and_then(|k| SortKey::parse(k)) {
            Some(k) => Command::Sort(
                k,
                match rest.get(1).copied() {
                    Some("desc") => Some(true),
                    Some("asc") => Some(false),
                    _ => None,
                },
            ),
            None => return usage("usage: sort name|size|stored|age|verdict [asc|desc]"),
        },
        "only" | "status" => match StatusFilter::parse(arg.trim()) {
            Some(f) => Command::Only(f),
            None => {
                return usage(
                    "usage: only all|problems|trusted|content-addressed|untrusted|invalid|unsigned|corrupt|error|pending",
                );
            }
        },
        "all" => Command::Only(StatusFilter::All),
        "filter" | "f" => Command::Filter(arg),
        "fuzzy" => Command::Fuzzy(match rest.first().copied() {
            Some("off") => Switch::Off,
            Some("on") | None => Switch::On,
            Some(_) => Switch::Toggle,
        }),
        "goto" | "g" | "show" => Command::Goto(arg),
        "verify" => match rest.first().copied() {
            None => Command::Verify(None),
            Some(w) => match Target::parse(w) {
                Some(t) if t != Target::Unsigned => Command::Verify(Some(t)),
                _ => {
                    return Err(Usage(format!(
                        "usage: verify [marked|selected|view] (not '{w}')"
                    )));
                }
            },
        },
        "sign" | "delete" => {
            let target = match rest.iter().copied().find(|w| !w.starts_with("--")) {
                None => None,
                Some(w) => match Target::parse(w) {
                    Some(t) => Some(t),
                    None => {
                        return Err(Usage(format!(
                            "usage: {cmd} [marked|selected|view|unsigned] (not '{w}')"
                        )));
                    }
                },
            };
            if cmd == "sign" {
                Command::Sign(target)
            } else {
                Command::Delete(target)
            }
        }
        "push" if rest.is_empty() => return usage("usage: push STORE-PATH…"),
        "push" => Command::Push(owned(&rest)),
        "pull" => {
            let (paths, dir) = match rest.iter().position(|w| *w == "--to") {
                Some(i) => (owned(&rest[..i]), rest.get(i + 1).map(PathBuf::from)),
                None => (owned(&rest), None),
            };
            match dir {
                Some(d) => Command::Pull(paths, d),
                None => return usage(PULL_USAGE),
            }
        }
        "gc" => Command::Gc(parse_gc(&rest).map_err(|e| Usage(format!("{e}; {GC_USAGE}")))?),
        "pins" => Command::Pins,
        "doctor" => Command::Doctor,
        "plans" => Command::Plans,
        "space" => Command::Action(Action::SpaceView),
        "pin" => match rest.first().copied() {
            Some("ls") | Some("list") | None => Command::Pins,
            Some("add") => {
                let Some(name) = rest.get(1) else {
                    return usage("usage: pin add NAME [STORE-PATH…]");
                };
                crate::pins::check_pin_name(name).map_err(|e| Usage(e.to_string()))?;
                Command::PinAdd(name.to_string(), owned(&rest[2..]))
            }
            Some("rm") | Some("remove") => match rest.get(1) {
                Some(name) => Command::PinRemove(name.to_string()),
                None => return usage("usage: pin rm NAME"),
            },
            Some(other) => {
                return Err(Usage(format!(
                    "usage: pin ls | add NAME [PATH…] | rm NAME (not '{other}')"
                )));
            }
        },
        "mark" => match rest.first().copied() {
            Some("all") | Some("view") => Command::Action(Action::MarkAllInView),
            Some("none") | Some("clear") => Command::Action(Action::ClearMarks),
            _ => return usage("usage: mark all|none"),
        },
        "cancel" => Command::Cancel(
            rest.first()
                .and_then(|s| s.trim_start_matches('#').parse::<u64>().ok()),
        ),
        other => match Action::from_name(other) {
            Some(a) => Command::Action(a),
            None => {
                return Err(Usage(format!(
                    "unknown command '{other}' (see ? for commands)"
                )));
            }
        },
    })
}

pub(super) const PULL_USAGE: &str =
    "usage: pull [STORE-PATH…] --to DIR (default: the marked or selected paths)";

/// The options of `:gc`.
fn parse_gc(words: &[&str]) -> Result<GcRequest, String> {
    let mut req = GcRequest::default();
    let mut it = words.iter().copied();
    while let Some(w) = it.next() {
        match w {
            "--allow-no-roots" => req.allow_no_roots = true,
            "--grace" => {
                let d = it.next().ok_or("--grace needs a duration")?;
                req.grace = crate::units::parse_duration(d)?;
            }
            "--keep-younger-than" | "--keep" => {
                let d = it.next().ok_or_else(|| format!("{w} needs a duration"))?;
                req.keep_younger = Some(crate::units::parse_duration(d)?);
            }
            "--roots-file" => {
                let f = it.next().ok_or("--roots-file needs a file")?;
                req.roots_files.push(f.into());
            }
            "--keep-versions" => {
                let n = it.next().ok_or("--keep-versions needs a number")?;
                req.retention.keep_versions = Some(parse_keep_versions(n)?);
            }
            "--max-size" => {
                let s = it.next().ok_or("--max-size needs a size (e.g. 500G)")?;
                req.retention.max_size = Some(parse_max_size(s)?);
            }
            other => match other.split_once('=') {
                Some(("--keep-versions", n)) => {
                    req.retention.keep_versions = Some(parse_keep_versions(n)?)
                }
                Some(("--max-size", s)) => req.retention.max_size = Some(parse_max_size(s)?),
                _ => return Err(format!("unknown option '{other}'")),
            },
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn usage(line: &str) -> String {
        match parse(line) {
            Err(Usage(u)) => u,
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
        }
    }

    #[test]
    fn simple_commands_and_actions() {
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert_eq!(parse("   "), Ok(Command::Nothing));
        for (line, a) in [
            ("q", Action::Quit),
            ("quit", Action::Quit),
            ("q!", Action::ForceQuit),
            ("help", Action::Help),
            ("keys", Action::Help),
            ("r", Action::Refresh),
            ("copy", Action::CopyPath),
            ("y", Action::CopyPath),
            ("mark all", Action::MarkAllInView),
            ("mark view", Action::MarkAllInView),
            ("mark none", Action::ClearMarks),
            ("collect", Action::Collect),
            ("focus_signatures", Action::FocusSignatures),
        ] {
            assert_eq!(parse(line), Ok(Command::Action(a)), "{line}");
        }
        assert_eq!(usage("mark"), "usage: mark all|none");
        assert_eq!(
            parse("copy --to s3://other?endpoint=x"),
            Ok(Command::CopyTo("s3://other?endpoint=x".into()))
        );
        assert_eq!(
            parse("copy --to=file:///srv/b"),
            Ok(Command::CopyTo("file:///srv/b".into()))
        );
        assert_eq!(usage("copy --to"), COPY_USAGE);
        assert_eq!(usage("copy somewhere"), COPY_USAGE);
        assert_eq!(
            usage("frobnicate now"),
            "unknown command 'frobnicate' (see ? for commands)"
        );
    }

    #[test]
    fn list_commands() {
        assert_eq!(
            parse("sort size"),
            Ok(Command::Sort(SortKey::NarSize, None))
        );
        assert_eq!(
            parse("sort name desc"),
            Ok(Command::Sort(SortKey::Name, Some(true)))
        );
        assert_eq!(
            parse("sort size asc"),
            Ok(Command::Sort(SortKey::NarSize, Some(false)))
        );
        assert!(usage("sort").starts_with("usage: sort "));
        assert!(usage("sort colour").starts_with("usage: sort "));
        assert_eq!(
            parse("only unsigned"),
            Ok(Command::Only(StatusFilter::parse("unsigned").unwrap()))
        );
        assert_eq!(parse("all"), Ok(Command::Only(StatusFilter::All)));
        assert!(usage("only nonsense").starts_with("usage: only "));
        assert_eq!(
            parse("f  hello   world "),
            Ok(Command::Filter("hello world".into()))
        );
        assert_eq!(parse("filter"), Ok(Command::Filter(String::new())));
        assert_eq!(parse("fuzzy"), Ok(Command::Fuzzy(Switch::On)));
        assert_eq!(parse("fuzzy off"), Ok(Command::Fuzzy(Switch::Off)));
        assert_eq!(parse("fuzzy flip"), Ok(Command::Fuzzy(Switch::Toggle)));
        assert_eq!(parse("g abc"), Ok(Command::Goto("abc".into())));
    }

    #[test]
    fn targets_parse_once_for_every_command() {
        for (word, t) in [
            ("view", Target::View),
            ("all", Target::View),
            ("selected", Target::Selected),
            ("marked", Target::Marked),
        ] {
            assert_eq!(
                parse(&format!("verify {word}")),
                Ok(Command::Verify(Some(t)))
            );
            assert_eq!(parse(&format!("sign {word}")), Ok(Command::Sign(Some(t))));
            assert_eq!(
                parse(&format!("delete {word}")),
                Ok(Command::Delete(Some(t)))
            );
        }
        assert_eq!(parse("verify"), Ok(Command::Verify(None)));
        assert_eq!(parse("sign"), Ok(Command::Sign(None)));
        assert_eq!(
            parse("delete unsigned"),
            Ok(Command::Delete(Some(Target::Unsigned)))
        );
        // Options are skipped when looking for the target of sign and delete.
        assert_eq!(
            parse("sign --now marked"),
            Ok(Command::Sign(Some(Target::Marked)))
        );
        assert_eq!(
            usage("verify unsigned"),
            "usage: verify [marked|selected|view] (not 'unsigned')"
        );
        assert_eq!(
            usage("delete some"),
            "usage: delete [marked|selected|view|unsigned] (not 'some')"
        );
    }

    #[test]
    fn push_pull_and_pins() {
        assert_eq!(
            parse("push /nix/store/a /nix/store/b"),
            Ok(Command::Push(vec![
                "/nix/store/a".into(),
                "/nix/store/b".into()
            ]))
        );
        assert_eq!(usage("push"), "usage: push STORE-PATH…");
        assert_eq!(
            parse("pull /nix/store/a --to out"),
            Ok(Command::Pull(vec!["/nix/store/a".into()], "out".into()))
        );
        assert_eq!(
            parse("pull --to out"),
            Ok(Command::Pull(vec![], "out".into()))
        );
        assert_eq!(usage("pull /nix/store/a"), PULL_USAGE);
        assert_eq!(usage("pull --to"), PULL_USAGE);
        assert_eq!(parse("pins"), Ok(Command::Pins));
        assert_eq!(parse("doctor"), Ok(Command::Doctor));
        assert_eq!(parse("plans"), Ok(Command::Plans));
        assert_eq!(parse("pin"), Ok(Command::Pins));
        assert_eq!(parse("pin ls"), Ok(Command::Pins));
        assert_eq!(
            parse("pin add tools /nix/store/a"),
            Ok(Command::PinAdd("tools".into(), vec!["/nix/store/a".into()]))
        );
        assert_eq!(
            parse("pin add tools"),
            Ok(Command::PinAdd("tools".into(), vec![]))
        );
        assert_eq!(usage("pin add"), "usage: pin add NAME [STORE-PATH…]");
        assert!(parse("pin add ../x").is_err(), "a bad pin name is refused");
        assert_eq!(parse("pin remove x"), Ok(Command::PinRemove("x".into())));
        assert_eq!(usage("pin rm"), "usage: pin rm NAME");
        assert!(usage("pin drop x").ends_with("(not 'drop')"));
    }

    #[test]
    fn gc_options() {
        assert_eq!(parse("gc"), Ok(Command::Gc(GcRequest::default())));
        let Ok(Command::Gc(req)) =
            parse("gc --grace 2h --keep 3d --roots-file r.txt --allow-no-roots")
        else {
            panic!("gc did not parse");
        };
        assert_eq!(req.grace, Duration::from_secs(2 * 3600));
        assert_eq!(req.keep_younger, Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(req.roots_files, vec![PathBuf::from("r.txt")]);
        assert!(req.allow_no_roots);
        assert_eq!(
            usage("gc --grace"),
            format!("--grace needs a duration; {GC_USAGE}")
        );
        assert_eq!(
            usage("gc --keep"),
            format!("--keep needs a duration; {GC_USAGE}")
        );
        assert_eq!(
            usage("gc --now"),
            format!("unknown option '--now'; {GC_USAGE}")
        );
        assert!(usage("gc --grace soon").ends_with(GC_USAGE));
    }

    #[test]
    fn gc_retention_options() {
        let Ok(Command::Gc(req)) = parse("gc --keep-versions 3 --max-size 10GiB") else {
            panic!("gc did not parse");
        };
        assert_eq!(req.retention.keep_versions, Some(3));
        assert_eq!(req.retention.max_size, Some(10 << 30));
        let Ok(Command::Gc(req)) = parse("gc --max-size=500MB --keep-versions=1") else {
            panic!("gc with = did not parse");
        };
        assert_eq!(req.retention.keep_versions, Some(1));
        assert_eq!(req.retention.max_size, Some(500_000_000));
        for (line, want) in [
            ("gc --keep-versions", "--keep-versions needs a number"),
            (
                "gc --keep-versions three",
                "--keep-versions needs a whole number of versions (e.g. 3), not 'three'",
            ),
            (
                "gc --keep-versions -1",
                "--keep-versions needs a whole number of versions (e.g. 3), not '-1'",
            ),
            (
                "gc --keep-versions 0",
                "--keep-versions 0 would keep no version: give at least 1",
            ),
            ("gc --max-size", "--max-size needs a size (e.g. 500G)"),
            (
                "gc --max-size 0",
                "--max-size 0 would evict every unpinned path: give a budget above 0",
            ),
        ] {
            assert_eq!(usage(line), format!("{want}; {GC_USAGE}"), "{line}");
        }
        let u = usage("gc --max-size 10XB");
        assert!(
            u.starts_with("--max-size: '10XB': unknown unit 'xb'"),
            "{u}"
        );
        let u = usage("gc --max-size lots");
        assert!(u.starts_with("--max-size: 'lots' is not a size"), "{u}");
        assert!(u.ends_with(GC_USAGE), "{u}");
    }

    #[test]
    fn cancel_and_what_read_only_refuses() {
        assert_eq!(parse("cancel #7"), Ok(Command::Cancel(Some(7))));
        assert_eq!(parse("cancel 7"), Ok(Command::Cancel(Some(7))));
        assert_eq!(parse("cancel"), Ok(Command::Cancel(None)));
        assert_eq!(parse("cancel it"), Ok(Command::Cancel(None)));
        for (line, name) in [
            ("sign", Some("sign")),
            ("delete view", Some("delete")),
            ("push /nix/store/a", Some("push")),
            ("pin add x", Some("pin add")),
            ("pin rm x", Some("pin rm")),
            ("collect", Some("collect")),
            ("verify", None),
            ("gc", None),
            ("pins", None),
            ("doctor", None),
            ("pull --to d", None),
        ] {
            let c = parse(line).unwrap();
            assert_eq!(c.mutating().as_deref(), name, "{line}");
        }
    }
}
