//! Colours: `assets/theme.toml` (embedded), merged with the user's `theme.toml`; `NO_COLOR`
//! drops every colour (symbols still tell the verdicts apart).

use std::collections::BTreeMap;

use ratatui::style::{Color, Modifier, Style};

use crate::index::RowStatus;

/// The embedded default theme.
pub const DEFAULT_THEME: &str = include_str!("../../assets/theme.toml");

/// Resolved styles.
#[derive(Clone, Debug)]
pub struct Theme {
    colors: BTreeMap<String, Color>,
    /// No colours at all.
    pub monochrome: bool,
}

const NAMES: &[&str] = &[
    "trusted",
    "content_addressed",
    "untrusted",
    "invalid",
    "unsigned",
    "corrupt",
    "error",
    "pending",
    "border",
    "border_focused",
    "title",
    "selected_bg",
    "marked",
    "dim",
    "header_bg",
    "status_info",
    "status_warn",
    "status_error",
    "danger",
    "gauge",
];

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
    /// The defaults with a user file merged over them; `no_color` drops all colours.
    pub fn load(user: Option<&str>, no_color: bool) -> Result<Theme, String> {
        let mut colors = BTreeMap::new();
        for (i, text) in std::iter::once(DEFAULT_THEME).chain(user).enumerate() {
            let file = if i == 0 {
                "default theme"
            } else {
                "theme.toml"
            };
            let t: BTreeMap<String, String> =
                toml::from_str(text).map_err(|e| format!("{file}: {}", e.message()))?;
            for (k, v) in t {
                if !NAMES.contains(&k.as_str()) {
                    return Err(format!("{file}: unknown colour '{k}'"));
                }
                colors.insert(
                    k.clone(),
                    parse_color(&v).map_err(|e| format!("{file}: {k}: {e}"))?,
                );
            }
        }
        Ok(Theme {
            colors,
            monochrome: no_color,
        })
    }

    /// The default theme.
    pub fn default_theme(no_color: bool) -> Theme {
        Theme::load(None, no_color).unwrap_or(Theme {
            colors: BTreeMap::new(),
            monochrome: true,
        })
    }

    fn color(&self, name: &str) -> Option<Color> {
        if self.monochrome {
            None
        } else {
            self.colors.get(name).copied()
        }
    }

    /// Foreground style of a named colour.
    pub fn fg(&self, name: &str) -> Style {
        match self.color(name) {
            Some(c) => Style::default().fg(c),
            None => Style::default(),
        }
    }

    /// The style of a verdict.
    pub fn status(&self, s: RowStatus) -> Style {
        let name = match s {
            RowStatus::Trusted => "trusted",
            RowStatus::ContentAddressed => "content_addressed",
            RowStatus::Untrusted => "untrusted",
            RowStatus::Invalid => "invalid",
            RowStatus::Unsigned => "unsigned",
            RowStatus::Corrupt => "corrupt",
            RowStatus::Error => "error",
            RowStatus::Pending => "pending",
        };
        let st = self.fg(name);
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
            self.fg("border_focused").add_modifier(Modifier::BOLD)
        } else {
            self.fg("border")
        }
    }

    /// The selected row.
    pub fn selected(&self) -> Style {
        match self.color("selected_bg") {
            Some(c) => Style::default().bg(c).add_modifier(Modifier::BOLD),
            None => Style::default().add_modifier(Modifier::REVERSED),
        }
    }

    /// The header bar.
    pub fn header(&self) -> Style {
        match self.color("header_bg") {
            Some(c) => Style::default().bg(c),
            None => Style::default().add_modifier(Modifier::REVERSED),
        }
    }

    /// Something dangerous (destructive confirmations).
    pub fn danger(&self) -> Style {
        self.fg("danger").add_modifier(Modifier::BOLD)
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
    fn every_verdict_has_its_own_symbol() {
        let mut syms: Vec<&str> = RowStatus::ALL.iter().map(|s| status_symbol(*s)).collect();
        syms.sort();
        syms.dedup();
        assert_eq!(syms.len(), RowStatus::ALL.len());
    }
}
