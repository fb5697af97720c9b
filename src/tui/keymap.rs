//! Actions and the keys that trigger them, per mode.
//!
//! Defaults live in `assets/keymap.toml` (embedded); a user's `keymap.toml` is merged over them
//! action by action. The help overlay and the footer hints are generated from the same map, so
//! they always show the keys actually bound.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

/// The embedded default keymap.
pub const DEFAULT_KEYMAP: &str = include_str!("../../assets/keymap.toml");

/// Which keymap section applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The panes, with no overlay open.
    Normal,
    /// The help overlay.
    Help,
    /// A confirmation dialog.
    Confirm,
    /// The garbage-collection view.
    Gc,
    /// The space view (where the space goes).
    Space,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Help => "help",
            Mode::Confirm => "confirm",
            Mode::Gc => "gc",
            Mode::Space => "space",
        }
    }
}

macro_rules! actions {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $desc:literal, $mutating:literal; )*) => {
        /// Something a user can do; keys map to these.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Action {
            $( $(#[$doc])* $variant, )*
        }

        impl Action {
            /// Every action, in the order help lists them.
            pub const ALL: &'static [Action] = &[ $( Action::$variant, )* ];

            /// The name used in keymap files and the command line.
            pub fn name(self) -> &'static str {
                match self { $( Action::$variant => $name, )* }
            }

            /// What it does, for the help overlay.
            pub fn description(self) -> &'static str {
                match self { $( Action::$variant => $desc, )* }
            }

            /// Whether it changes the cache (hidden with `--read-only`).
            pub fn is_mutating(self) -> bool {
                match self { $( Action::$variant => $mutating, )* }
            }

            /// The action with this name.
            pub fn from_name(name: &str) -> Option<Action> {
                Action::ALL.iter().copied().find(|a| a.name() == name)
            }
        }
    };
}

actions! {
    /// Quit (asks first while jobs run).
    Quit = "quit", "quit (asks while jobs are running)", false;
    /// Quit at once.
    ForceQuit = "force_quit", "quit at once, cancelling jobs", false;
    /// Open the help overlay.
    Help = "help", "show this help", false;
    /// Next row / line.
    Down = "down", "move down", false;
    /// Previous row / line.
    Up = "up", "move up", false;
    /// One page down.
    PageDown = "page_down", "page down", false;
    /// One page up.
    PageUp = "page_up", "page up", false;
    /// Half a page down.
    HalfPageDown = "half_page_down", "half a page down", false;
    /// Half a page up.
    HalfPageUp = "half_page_up", "half a page up", false;
    /// Go to the first row (or line).
    Top = "top", "go to the first row", false;
    /// Go to the last row (or line).
    Bottom = "bottom", "go to the last row", false;
    /// Focus the next pane.
    NextPane = "next_pane", "focus the next pane", false;
    /// Focus the previous pane.
    PrevPane = "prev_pane", "focus the previous pane", false;
    /// Focus the store path list.
    FocusList = "focus_list", "focus the store paths", false;
    /// Focus the details pane.
    FocusDetails = "focus_details", "focus the details", false;
    /// Focus the signatures pane.
    FocusSignatures = "focus_signatures", "focus the signatures", false;
    /// Show the overview.
    FocusOverview = "focus_overview", "show the overview (totals, problems)", false;
    /// Show the jobs.
    FocusJobs = "focus_jobs", "show the jobs", false;
    /// Type a filter.
    Filter = "filter", "filter the list by name or hash", false;
    /// Drop the text and status filters.
    ClearFilter = "clear_filter", "clear the filters", false;
    /// Switch between substring and fuzzy filtering.
    ToggleFuzzy = "toggle_fuzzy", "switch substring / fuzzy filtering", false;
    /// Next status filter.
    CycleStatusFilter = "cycle_status_filter", "cycle the verdict filter (all, unsigned, untrusted…)", false;
    /// Show only paths with a problem.
    OnlyProblems = "only_problems", "show only paths that are not trusted or are broken", false;
    /// Next sort key.
    SortNext = "sort_next", "sort by the next column (name, NAR size, stored size, age, verdict)", false;
    /// Reverse the sort.
    SortReverse = "sort_reverse", "reverse the sort order", false;
    /// Mark or unmark the row.
    ToggleMark = "toggle_mark", "mark / unmark the row", false;
    /// Mark every row in view.
    MarkAllInView = "mark_all_in_view", "mark every row in view", false;
    /// Unmark every marked path.
    ClearMarks = "clear_marks", "clear all marks", false;
    /// Follow the selected reference or referrer.
    Follow = "follow", "follow the selected reference / referrer", false;
    /// Go back to where Follow came from.
    Back = "back", "go back", false;
    /// Copy the store path.
    CopyPath = "copy_path", "copy the store path to the clipboard", false;
    /// Open the command line.
    CommandLine = "command_line", "open the command line", false;
    /// Re-read the cache.
    Refresh = "refresh", "refresh: re-fetch narinfos that changed", false;
    /// Download and check the NARs of the marked (or selected) paths.
    VerifyContents = "verify_contents", "deep-verify NARs of the marked or selected paths", false;
    /// Sign the marked (or selected) paths.
    Sign = "sign", "sign the marked or selected paths with the signing key", true;
    /// Delete the marked (or selected) paths.
    Delete = "delete", "delete the marked or selected paths (plan first; never breaks a referrer)", true;
    /// Cancel the selected job.
    CancelJob = "cancel_job", "cancel the selected (or newest) job", false;
    /// Plan a garbage collection and open its view.
    Gc = "gc", "plan a garbage collection (roots: the pins) and show it; nothing is deleted yet", false;
    /// Run the bucket doctor and show its findings.
    Doctor = "doctor", "bucket doctor: check versioning, lifecycle rules, uploads, object lock, keys…", false;
    /// List the past deletion plans of a versioned bucket (restore, purge).
    Plans = "plans", "past deletion plans of a versioned bucket: restore or purge them", false;
    /// Open the space view: packages, bytes over time, biggest closures.
    SpaceView = "space_view", "where the space goes: packages, bytes added over time, biggest closures", false;
    /// The next section of a view with several (the space view).
    NextSection = "next_section", "the next section", false;
    /// The previous section.
    PrevSection = "prev_section", "the previous section", false;
    /// Bars per day or per week.
    TogglePeriod = "toggle_period", "bars per day / per week", false;
    /// Whether the chart follows the selected row.
    ChartFollow = "chart_follow", "chart: the whole cache / the selected package", false;
    /// Purge the selected past plan (asks first).
    Purge = "purge", "purge the selected past plan: free its hidden versions for good (asks first)", true;
    /// Collect the garbage of the plan shown.
    Collect = "collect", "collect the garbage of the plan shown (asks first)", true;
    /// Close an overlay.
    Close = "close", "close", false;
    /// Accept a confirmation.
    Confirm = "confirm", "confirm", false;
    /// Refuse a confirmation.
    Cancel = "cancel", "cancel", false;
    /// Move between the buttons of a dialog.
    ToggleChoice = "toggle_choice", "switch between the buttons", false;
    /// Press the highlighted button.
    Choose = "choose", "press the highlighted button", false;
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key with its modifiers, comparable and printable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The key itself, without modifiers.
    pub code: KeyCodeOrd,
    /// ctrl / alt (shift is folded into characters).
    pub ctrl: bool,
    /// Whether alt is held.
    pub alt: bool,
    /// shift, for non-character keys.
    pub shift: bool,
}

/// `KeyCode` subset, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyCodeOrd {
    /// A character key (shift folded in: `G`, not shift+g).
    Char(char),
    /// A named key.
    Named(&'static str),
    /// A function key.
    F(u8),
}

const NAMED: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("delete", KeyCode::Delete),
    ("insert", KeyCode::Insert),
];

impl Key {
    /// Parse `ctrl-d`, `G`, `?`, `space`, `pagedown`, `f1`, `shift-tab`…
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut rest = s;
        let (mut ctrl, mut alt, mut shift) = (false, false, false);
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-").filter(|r| !r.is_empty()) {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-").filter(|r| !r.is_empty()) {
                alt = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-").filter(|r| !r.is_empty()) {
                shift = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = if rest == "space" {
            KeyCodeOrd::Char(' ')
        } else if let Some((name, _)) = NAMED.iter().find(|(n, _)| *n == rest) {
            if *name == "tab" && shift {
                shift = false;
                KeyCodeOrd::Named("backtab")
            } else {
                KeyCodeOrd::Named(name)
            }
        } else if let Some(n) = rest.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
            if !(1..=12).contains(&n) {
                return Err(format!("'{s}': function keys are f1 to f12"));
            }
            KeyCodeOrd::F(n)
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => {
                    if shift && c.is_ascii_lowercase() {
                        shift = false;
                        KeyCodeOrd::Char(c.to_ascii_uppercase())
                    } else {
                        KeyCodeOrd::Char(c)
                    }
                }
                _ => return Err(format!("'{s}' is not a key")),
            }
        };
        if matches!(code, KeyCodeOrd::Char(_)) {
            shift = false;
        }
        Ok(Key {
            code,
            ctrl,
            alt,
            shift,
        })
    }

    /// The key of a terminal event (`None` for keys narscope does not bind).
    pub fn from_event(e: &KeyEvent) -> Option<Key> {
        let ctrl = e.modifiers.contains(KeyModifiers::CONTROL);
        let alt = e.modifiers.contains(KeyModifiers::ALT);
        let shift = e.modifiers.contains(KeyModifiers::SHIFT);
        let code = match e.code {
            KeyCode::Char(c) => {
                // Terminals report ctrl-letters in either case.
                let c = if ctrl { c.to_ascii_lowercase() } else { c };
                return Some(Key {
                    code: KeyCodeOrd::Char(c),
                    ctrl,
                    alt,
                    shift: false,
                });
            }
            KeyCode::F(n) => KeyCodeOrd::F(n),
            KeyCode::BackTab => {
                return Some(Key {
                    code: KeyCodeOrd::Named("backtab"),
                    ctrl,
                    alt,
                    shift: false,
                });
            }
            other => KeyCodeOrd::Named(NAMED.iter().find(|(_, k)| *k == other)?.0),
        };
        Some(Key {
            code,
            ctrl,
            alt,
            shift,
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        if self.shift {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCodeOrd::Char(' ') => f.write_str("space"),
            KeyCodeOrd::Char(c) => write!(f, "{c}"),
            KeyCodeOrd::Named(n) => f.write_str(n),
            KeyCodeOrd::F(n) => write!(f, "f{n}"),
        }
    }
}

#[derive(Deserialize)]
struct KeymapFile(BTreeMap<String, BTreeMap<String, Vec<String>>>);

/// Keys to actions, per mode.
#[derive(Clone, Debug, Default)]
pub struct Keymap {
    by_key: BTreeMap<(Mode, Key), Action>,
    by_action: BTreeMap<(Mode, Action), Vec<Key>>,
}

impl Keymap {
    /// The embedded default keymap (`assets/keymap.toml`).
    pub fn default_map() -> Keymap {
        Keymap::from_texts(&[DEFAULT_KEYMAP]).unwrap_or_default()
    }

    /// The defaults with a user file's text merged over them.
    pub fn with_user(user: Option<&str>) -> Result<Keymap, String> {
        match user {
            None => Ok(Keymap::default_map()),
            Some(u) => Keymap::from_texts(&[DEFAULT_KEYMAP, u]),
        }
    }

    fn from_texts(texts: &[&str]) -> Result<Keymap, String> {
        // (keys, set by a later file): later files win over earlier ones, also for a key.
        let mut bindings: BTreeMap<(Mode, Action), (Vec<Key>, usize)> = BTreeMap::new();
        for (i, text) in texts.iter().enumerate() {
            let file: KeymapFile = toml::from_str(text).map_err(|e| {
                let which = if i == 0 {
                    "default keymap"
                } else {
                    "keymap.toml"
                };
                format!("{which}: {}", e.message())
            })?;
            for (section, actions) in file.0 {
                let mode: Mode = match section.as_str() {
                    "normal" => Mode::Normal,
                    "help" => Mode::Help,
                    "confirm" => Mode::Confirm,
                    "gc" => Mode::Gc,
                    "space" => Mode::Space,
                    other => {
                        return Err(format!(
                            "keymap.toml: unknown section [{other}] (normal, help, confirm, gc, space)"
                        ));
                    }
                };
                for (name, keys) in actions {
                    let action = Action::from_name(&name).ok_or_else(|| {
                        format!("keymap.toml: [{}] has no action '{name}'", mode.name())
                    })?;
                    let keys = keys
                        .iter()
                        .map(|k| {
                            Key::parse(k)
                                .map_err(|e| format!("keymap.toml: [{}] {name}: {e}", mode.name()))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    bindings.insert((mode, action), (keys, i));
                }
            }
        }
        let mut map = Keymap::default();
        let mut ordered: Vec<_> = bindings.into_iter().collect();
        ordered.sort_by_key(|(_, (_, file))| *file);
        for ((mode, action), (keys, _)) in ordered {
            for k in &keys {
                // A later binding of the same key wins; the loser loses that key.
                if let Some(prev) = map.by_key.insert((mode, *k), action)
                    && let Some(v) = map.by_action.get_mut(&(mode, prev))
                {
                    v.retain(|x| x != k);
                }
            }
            map.by_action.insert((mode, action), keys);
        }
        Ok(map)
    }

    /// The action bound to `key` in `mode`.
    pub fn action(&self, mode: Mode, key: &Key) -> Option<Action> {
        self.by_key.get(&(mode, *key)).copied()
    }

    /// The keys bound to `action` in `mode`.
    pub fn keys(&self, mode: Mode, action: Action) -> &[Key] {
        self.by_action
            .get(&(mode, action))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The first key of `action`, as text ("" when unbound).
    pub fn first(&self, mode: Mode, action: Action) -> String {
        self.keys(mode, action)
            .first()
            .map(|k| k.to_string())
            .unwrap_or_default()
    }

    /// Every bound (action, keys) of a mode, in action order.
    pub fn bindings(&self, mode: Mode) -> Vec<(Action, &[Key])> {
        Action::ALL
            .iter()
            .filter_map(|a| {
                let k = self.keys(mode, *a);
                (!k.is_empty()).then_some((*a, k))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventKind;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: m,
            kind: KeyEventKind::Press,
            state: crossterm::event::KeyEventState::NONE,
        }
    }

    #[test]
    fn keys_parse_and_print() {
        for s in [
            "ctrl-d", "G", "?", "space", "pagedown", "f1", "backtab", "alt-x", "/",
        ] {
            assert_eq!(Key::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Key::parse("shift-tab").unwrap().to_string(), "backtab");
        assert_eq!(Key::parse("shift-g").unwrap().to_string(), "G");
        for bad in ["", "ctrl-", "foo", "f13", "ab"] {
            assert!(Key::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_map_to_keys() {
        let k = |c, m| Key::from_event(&ev(c, m)).unwrap();
        assert_eq!(
            k(KeyCode::Char('G'), KeyModifiers::SHIFT),
            Key::parse("G").unwrap()
        );
        assert_eq!(
            k(KeyCode::Char('D'), KeyModifiers::CONTROL),
            Key::parse("ctrl-d").unwrap()
        );
        assert_eq!(
            k(KeyCode::BackTab, KeyModifiers::SHIFT),
            Key::parse("backtab").unwrap()
        );
        assert_eq!(
            k(KeyCode::PageDown, KeyModifiers::NONE),
            Key::parse("pagedown").unwrap()
        );
    }

    #[test]
    fn defaults_cover_every_normal_action_and_user_files_merge() {
        let m = Keymap::default_map();
        assert_eq!(
            m.action(Mode::Normal, &Key::parse("j").unwrap()),
            Some(Action::Down)
        );
        assert_eq!(
            m.action(Mode::Help, &Key::parse("esc").unwrap()),
            Some(Action::Close)
        );
        assert_eq!(m.first(Mode::Normal, Action::Help), "?");
        let user = "[normal]\nquit = [\"Q\"]\ndown = []\nhelp = [\"j\"]\n";
        let m = Keymap::with_user(Some(user)).unwrap();
        assert_eq!(
            m.action(Mode::Normal, &Key::parse("Q").unwrap()),
            Some(Action::Quit)
        );
        assert_eq!(m.action(Mode::Normal, &Key::parse("q").unwrap()), None);
        assert_eq!(
            m.action(Mode::Normal, &Key::parse("j").unwrap()),
            Some(Action::Help)
        );
        assert!(m.keys(Mode::Normal, Action::Down).is_empty());
        // Untouched actions keep their defaults.
        assert_eq!(m.first(Mode::Normal, Action::Filter), "/");
        for bad in [
            "[normal]\nnope = [\"a\"]",
            "[elsewhere]\nquit = [\"a\"]",
            "[normal]\nquit = [\"ctrl-\"]",
            "x =",
        ] {
            assert!(Keymap::with_user(Some(bad)).is_err(), "{bad}");
        }
    }
}
