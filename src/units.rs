//! Numbers as people read them: sizes in binary units, counts with thousands separators,
//! ages, and fixed-width cells. Both front ends (the CLI and the dashboard) format through
//! these functions, so a size reads the same everywhere. Pure string work: no terminal, no I/O.

use std::time::SystemTime;

/// Bytes as a human size in binary units: `1536` → `1.50 KiB`.
pub fn human_size(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// A count with thousands separators: `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How long ago `then` was at `now`, in its largest whole unit: `42s`, `5m`, `3h`, `12d`,
/// `2y`; `-` when the time is unknown, `0s` when it lies in the future.
pub fn age(now: SystemTime, then: Option<SystemTime>) -> String {
    let Some(then) = then else {
        return "-".into();
    };
    let s = now.duration_since(then).map(|d| d.as_secs()).unwrap_or(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        86_400..31_536_000 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// `s` left-aligned in exactly `w` characters: padded with spaces, or cut with a trailing `…`.
pub fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n > w {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        if w > 0 {
            t.push('…');
        }
        t
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

/// `s` right-aligned in exactly `w` characters: padded on the left, or cut to its first `w`.
pub fn rpad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        s.chars().take(w).collect()
    } else {
        format!("{}{s}", " ".repeat(w - n))
    }
}

/// A bar of `█` for `n` out of `max` in at most `width` cells (rounded up, so any non-zero
/// count shows); empty when `max` or `width` is zero.
pub fn bar(n: u64, max: u64, width: usize) -> String {
    if max == 0 || width == 0 {
        return String::new();
    }
    let cells = (n as f64 / max as f64 * width as f64).ceil() as usize;
    "█".repeat(cells.min(width))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(pad("abcdef", 4), "abc…");
        assert_eq!(rpad("ab", 4), "  ab");
        assert_eq!(bar(5, 10, 10).chars().count(), 5);
        assert_eq!(bar(0, 0, 10), "");
    }

    #[test]
    fn sizes_are_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1536), "1.50 KiB");
    }

    #[test]
    fn ages_use_their_largest_unit() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let ago = |s: u64| age(now, Some(now - Duration::from_secs(s)));
        assert_eq!(ago(42), "42s");
        assert_eq!(ago(5 * 60), "5m");
        assert_eq!(ago(3 * 3600 + 59), "3h");
        assert_eq!(ago(12 * 86_400), "12d");
        assert_eq!(age(now, None), "-");
        assert_eq!(age(now, Some(now + Duration::from_secs(9))), "0s");
    }
}
