//! Numbers as people read them: sizes in binary units, counts with thousands separators,
//! ages, durations (`6h`, `30d`) read and written, and fixed-width cells. Both front ends (the CLI and the dashboard) format through
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

/// Parse a duration: a number and a unit (`s`, `m`, `h`, `d`, `w`), e.g. `6h`, `30d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
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
    Ok(std::time::Duration::from_secs(n.saturating_mul(mult)))
}

/// Parse a size: a number (decimals allowed) and a unit: none or `B` (bytes), `K`/`KiB`,
/// `M`/`MiB`, `G`/`GiB`, `T`/`TiB` (powers of 1024), `KB`, `MB`, `GB`, `TB` (powers of
/// 1000), e.g. `500M`, `1.5GiB`, `10GB`. Case does not matter.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("'{s}' is not a size (e.g. 500M, 10GiB, 2TB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "'{s}': unknown unit '{u}' (B, K/KiB, M/MiB, G/GiB, T/TiB, KB, MB, GB, TB)"
            ));
        }
    };
    let bytes = n * mult as f64;
    if bytes > u64::MAX as f64 {
        return Err(format!("'{s}' is too large"));
    }
    Ok(bytes.round() as u64)
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

/// A Unix time as (year, month, day, seconds into the day), UTC (Hinnant's civil-from-days).
pub fn civil(secs: i64) -> (i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs.rem_euclid(86_400))
}

/// A time as RFC 3339 in UTC, to the second (times before 1970 as 1970).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d, rem) = civil(secs);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_and_civil_dates_are_utc() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_764_072_000);
        assert_eq!(rfc3339(t), "2025-11-25T12:00:00Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0));
        assert_eq!(civil(-1), (1969, 12, 31, 86_399));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size(" 2t "), Ok(2 << 40));
        assert!(
            parse_size("ten")
                .unwrap_err()
                .contains("'ten' is not a size")
        );
        assert!(parse_size("5X").unwrap_err().contains("unknown unit 'x'"));
        assert!(parse_size("1e30").is_err());
        assert!(
            parse_size("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
    }

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

    #[test]
    fn durations_read_and_write_the_same_units() {
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(
            parse_duration(" 30d "),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(parse_duration("90min"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_duration("6").unwrap_err().contains("give a unit"));
        assert!(
            parse_duration("6y")
                .unwrap_err()
                .contains("unknown unit 'y'")
        );
        assert!(parse_duration("h").unwrap_err().contains("not a duration"));
        for s in ["90s", "5m", "6h", "30d"] {
            assert_eq!(format_duration(parse_duration(s).unwrap().as_secs()), s);
        }
        assert_eq!(format_duration(7 * 86_400), "7d");
        assert_eq!(format_duration(3601), "3601s");
    }
}
