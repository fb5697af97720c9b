//! Colours: `assets/theme.toml` (embedded), merged with the user's `theme.toml`; `NO_COLOR`
//! drops every colour (symbols still tell the verdicts apart). Each colour name is a typed
//! [`Style`] field of [`Theme`] (`theme.dim`, `theme.status_warn`), so drawing code cannot
//! ask for a colour that does not exist.

use std::collections::BTreeMap;

use ratatui::style::{Color, Modifier, Style};

use crate::index::RowStatus;

/// The embedded default theme.
pub const DEFAULT_THEME: &str = include_str!("../../assets/theme.toml");

/// The colours a theme file names: each is one [`Style`] field of [`Theme`], set from the
/// file's colour as a foreground (`fg`) or background (`bg`). A misspelt name in code does not
/// compile; one in a file is reported by [`Theme::load`].
macro_rules! theme {
    ($($name:ident ($set:ident): $doc:literal;)*) => {
        /// Resolved styles, one per colour name of `assets/theme.toml`, plus the composite
        /// styles ([`Theme::status`], [`Theme::border`], [`Theme::selected`], …) built on them.
        #[derive(Clone, Debug)]
        pub struct Theme {
            $(#[doc = $doc] pub $name: Style,)*
            /// No colours at all (`NO_COLOR`): every style above is plain.
            pub monochrome: bool,
        }

        /// The colour names a theme file may set.
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];

        impl Theme {
            /// A theme with no colour set.
            fn blank(monochrome: bool) -> Theme {
                Theme {
                    $($name: Style::default(),)*
                    monochrome,
                }
            }

            /// The style a colour name sets and how the colour goes into it; `None` for a
            /// name that is not a colour of the theme.
            fn slot(&mut self, name: &str) -> Option<(&mut Style, fn(Style, Color) -> Style)> {
                match name {
                    $(stringify!($name) => Some((&mut self.$name, $set)),)*
                    _ => None,
                }
            }
        }
    };
}

fn fg(s: Style, c: Color) -> Style {
    s.fg(c)
}

fn bg(s: Style, c: Color) -> Style {
    s.bg(c)
}

theme! {
    trusted (fg): "The trusted verdict (also: a present NAR, a finished job).";
    content_addressed (fg): "The content-addressed verdict.";
    untrusted (fg): "The untrusted verdict.";
    invalid (fg): "The invalid-signature verdict.";
    unsigned (fg): "The unsigned verdict.";
    corrupt (fg): "The corrupt verdict (missing or mismatching NAR).";
    error (fg): "The error verdict (unreadable narinfo).";
    pending (fg): "A row not judged yet.";
    border (fg): "The border of a pane without focus.";
    border_focused (fg): "The border of the focused pane, and key names in hints and help.";
    title (fg): "Pane titles.";
    selected_bg (bg): "The background of the selected row (see [`Theme::selected`]).";
    marked (fg): "The mark in front of a marked row.";
    dim (fg): "Secondary text: column headers, labels, hints, explanations.";
    header_bg (bg): "The background of the header line (see [`Theme::header`]).";
    status_info (fg): "An informational notice on the status line.";
    status_warn (fg): "Warnings: a notice, a running scan or job, read-only mode.";
    status_error (fg): "Errors: a notice, a failed job, a problem in the overview.";
    danger (fg): "Destructive dialogs and what they delete (see [`Theme::danger`]).";
    gauge (fg): "The progress gauges of jobs.";
}

/// Parse a colour: a name, `#rrggbb` or an index.
pub fn parse_color(s: &str) -> Result<Color, String> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() == 6
            && let Ok(v) = u32::from_str_radix(hex, 16)
        {
            return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
        }
        return Err(format!("'{s}' is not a #rrggbb colour"));
    }
    if let Ok(n) = s.parse::<u8>() {
        return Ok(Color::Indexed(n));
    }
    let c = match s.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
        "reset" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return Err(format!("'{s}' is not a colour")),
    };
    Ok(c)
}

impl Theme {
    /// The defaults with a user file merged over them; `no_color` drops all colours (the
    /// files are still checked).
    pub fn load(user: Option<&str>, no_color: bool) -> Result<Theme, String> {
        let mut theme = Theme::blank(no_color);
        for (i, text) in std::iter::once(DEFAULT_THEME).chain(user).enumerate() {
            let file = if i == 0 {
                "default theme"
            } else {
                "theme.toml"
            };
            let t: BTreeMap<String, String> =
                toml::from_str(text).map_err(|e| format!("{file}: {}", e.message()))?;
            for (k, v) in t {
                let Some((style, set)) = theme.slot(&k) else {
                    return Err(format!("{file}: unknown colour '{k}'"));
                };
                let c = parse_color(&v).map_err(|e| format!("{file}: {k}: {e}"))?;
                if !no_color {
                    *style = set(Style::default(), c);
                }
            }
        }
        Ok(theme)
    }

    /// The embedded default theme (plain styles if it could not be read).
    pub fn default_theme(no_color: bool) -> Theme {
        Theme::load(None, no_color).unwrap_or_else(|_| Theme::blank(true))
    }

    /// The style of a verdict.
    pub fn status(&self, s: RowStatus) -> Style {
        let st = match s {
            RowStatus::Trusted => self.trusted,
            RowStatus::ContentAddressed => self.content_addressed,
            RowStatus::Untrusted => self.untrusted,
            RowStatus::Invalid => self.invalid,
            RowStatus::Unsigned => self.unsigned,
            RowStatus::Corrupt => self.corrupt,
            RowStatus::Error => self.error,
            RowStatus::Pending => self.pending,
        };
        match s {
            RowStatus::Invalid | RowStatus::Corrupt | RowStatus::Error => {
                st.add_modifier(Modifier::BOLD)
            }
            _ => st,
        }
    }

    /// A pane border.
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.border_focused.add_modifier(Modifier::BOLD)
        } else {
            self.border
        }
    }

    /// The selected row.
    pub fn selected(&self) -> Style {
        match self.selected_bg.bg {
            Some(_) => self.selected_bg.add_modifier(Modifier::BOLD),
            None => Style::default().add_modifier(Modifier::REVERSED),
        }
    }

    /// The header bar.
    pub fn header(&self) -> Style {
        match self.header_bg.bg {
            Some(_) => self.header_bg,
            None => Style::default().add_modifier(Modifier::REVERSED),
        }
    }

    /// Something dangerous (destructive confirmations).
    pub fn danger(&self) -> Style {
        self.danger.add_modifier(Modifier::BOLD)
    }
}

/// The symbol of a verdict: distinct per verdict, so the list reads without colour.
pub fn status_symbol(s: RowStatus) -> &'static str {
    match s {
        RowStatus::Trusted => "✓",
        RowStatus::ContentAddressed => "◆",
        RowStatus::Untrusted => "?",
        RowStatus::Invalid => "✗",
        RowStatus::Unsigned => "○",
        RowStatus::Corrupt => "‼",
        RowStatus::Error => "E",
        RowStatus::Pending => "…",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_and_merge() {
        assert_eq!(parse_color("#ff8000").unwrap(), Color::Rgb(255, 128, 0));
        assert_eq!(parse_color("208").unwrap(), Color::Indexed(208));
        assert_eq!(parse_color("Light-Red").unwrap(), Color::LightRed);
        assert!(parse_color("#12").is_err());
        assert!(parse_color("ultraviolet").is_err());
        let t = Theme::load(Some("trusted = \"blue\"\n"), false).unwrap();
        assert_eq!(t.status(RowStatus::Trusted).fg, Some(Color::Blue));
        assert_eq!(t.status(RowStatus::Unsigned).fg, Some(Color::Magenta));
        assert!(Theme::load(Some("nope = \"blue\"\n"), false).is_err());
        let mono = Theme::load(None, true).unwrap();
        assert_eq!(mono.status(RowStatus::Trusted).fg, None);
        assert!(mono.selected().add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn every_name_is_a_field_and_files_name_the_unknown_ones() {
        let all: String = NAMES
            .iter()
            .map(|n| format!("{n} = \"#010203\"\n"))
            .collect();
        let t = Theme::load(Some(&all), false).unwrap();
        let rgb = Some(Color::Rgb(1, 2, 3));
        assert_eq!(t.dim.fg, rgb);
        assert_eq!(t.gauge.fg, rgb);
        assert_eq!(t.header().bg, rgb);
        assert_eq!(t.selected().bg, rgb);
        assert_eq!(t.danger().fg, rgb);
        assert_eq!(
            Theme::load(Some("dimm = \"red\"\n"), false).unwrap_err(),
            "theme.toml: unknown colour 'dimm'"
        );
        assert_eq!(
            Theme::load(Some("dim = \"ultraviolet\"\n"), true).unwrap_err(),
            "theme.toml: dim: 'ultraviolet' is not a colour"
        );
        let mono = Theme::load(Some(&all), true).unwrap();
        assert_eq!(mono.dim.fg, None);
        assert!(mono.header().add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn every_verdict_has_its_own_symbol() {
        let mut syms: Vec<&str> = RowStatus::ALL.iter().map(|s| status_symbol(*s)).collect();
        syms.sort();
        syms.dedup();
        assert_eq!(syms.len(), RowStatus::ALL.len());
    }
}
