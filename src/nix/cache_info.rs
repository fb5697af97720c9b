//! The `nix-cache-info` file: `Key: value` lines.

use thiserror::Error;

use super::store_path::STORE_DIR;

/// Contents of `nix-cache-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheInfo {
    /// `StoreDir` (`/nix/store` when the line is missing: Nix then does not check it).
    pub store_dir: String,
    /// `WantMassQuery` (`1` is true, anything else false).
    pub want_mass_query: Option<bool>,
    /// `Priority` (lower is preferred).
    pub priority: Option<i64>,
    /// Other lines with a `:` (unknown keys, or values Nix cannot read), kept in order.
    extra: Vec<String>,
}

/// A `nix-cache-info` that Nix would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheInfoError {
    /// `Priority` that `std::stoi` cannot read: Nix fails to open the cache.
    #[error("nix-cache-info: line {line}: invalid Priority '{value}'")]
    BadPriority {
        /// 1-based line number.
        line: usize,
        /// The value.
        value: String,
    },
    /// A `StoreDir` other than `/nix/store`.
    #[error("nix-cache-info: binary cache is for Nix stores with prefix '{0}', not '{STORE_DIR}'")]
    WrongStoreDir(String),
}

impl Default for CacheInfo {
    fn default() -> Self {
        CacheInfo::new()
    }
}

/// `std::stoi`: optional sign, digits, then anything; must fit an `int`.
fn stoi(s: &str) -> Option<i64> {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let n: i64 = digits.get(..end).filter(|d| !d.is_empty())?.parse().ok()?;
    let n = if neg { -n } else { n };
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&n)
        .then_some(n)
}

impl CacheInfo {
    /// What Nix writes to an empty cache: `StoreDir: /nix/store`.
    pub fn new() -> Self {
        CacheInfo {
            store_dir: STORE_DIR.to_owned(),
            want_mass_query: None,
            priority: None,
            extra: Vec::new(),
        }
    }

    /// Parses leniently like Nix: lines without ':' are ignored, the value is the
    /// trimmed text after the first ':'. An unreadable `Priority` is kept as an
    /// extra line (see [`CacheInfo::parse_strict`] to reject it as Nix does).
    pub fn parse(text: &str) -> CacheInfo {
        Self::parse_inner(text).0
    }

    /// Like [`CacheInfo::parse`], but fails where Nix refuses the cache: an
    /// unreadable `Priority`, or a `StoreDir` other than `/nix/store`.
    pub fn parse_strict(text: &str) -> Result<CacheInfo, CacheInfoError> {
        let (info, err) = Self::parse_inner(text);
        if let Some(e) = err {
            return Err(e);
        }
        if info.store_dir != STORE_DIR {
            return Err(CacheInfoError::WrongStoreDir(info.store_dir));
        }
        Ok(info)
    }

    fn parse_inner(text: &str) -> (CacheInfo, Option<CacheInfoError>) {
        let mut info = CacheInfo::new();
        let mut first_err = None;
        for (i, line) in text.split('\n').enumerate() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim_matches([' ', '\n', '\r', '\t']);
            match name {
                "StoreDir" => info.store_dir = value.to_owned(),
                "WantMassQuery" => info.want_mass_query = Some(value == "1"),
                "Priority" => match stoi(value) {
                    Some(p) => info.priority = Some(p),
                    None => {
                        first_err.get_or_insert(CacheInfoError::BadPriority {
                            line: i + 1,
                            value: value.to_owned(),
                        });
                        info.extra.push(line.to_owned());
                    }
                },
                _ => info.extra.push(line.to_owned()),
            }
        }
        (info, first_err)
    }

    /// Lines kept besides the known fields.
    pub fn extra_lines(&self) -> &[String] {
        &self.extra
    }

    /// True if `StoreDir` is `/nix/store`.
    pub fn is_nix_store(&self) -> bool {
        self.store_dir == STORE_DIR
    }

    /// `StoreDir`, then `WantMassQuery` and `Priority` when set, then kept lines.
    pub fn to_text(&self) -> String {
        let mut s = format!("StoreDir: {}\n", self.store_dir);
        if let Some(w) = self.want_mass_query {
            s.push_str(if w {
                "WantMassQuery: 1\n"
            } else {
                "WantMassQuery: 0\n"
            });
        }
        if let Some(p) = self.priority {
            s.push_str(&format!("Priority: {p}\n"));
        }
        for l in &self.extra {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_default_and_nixos_org() {
        assert_eq!(CacheInfo::new().to_text(), "StoreDir: /nix/store\n");
        let t = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n";
        let c = CacheInfo::parse(t);
        assert_eq!(c.store_dir, "/nix/store");
        assert_eq!(c.want_mass_query, Some(true));
        assert_eq!(c.priority, Some(40));
        assert_eq!(c.to_text(), t);
        assert_eq!(CacheInfo::parse_strict(t).unwrap(), c);
    }

    #[test]
    fn lenient_like_nix() {
        let t = "garbage\n\nStoreDir:/nix/store  \r\nWantMassQuery: yes\nPriority:  -7abc\nBloomFilter: x\n";
        let c = CacheInfo::parse(t);
        assert_eq!(c.store_dir, "/nix/store");
        assert_eq!(c.want_mass_query, Some(false));
        assert_eq!(c.priority, Some(-7));
        assert_eq!(c.extra_lines(), ["BloomFilter: x"]);
        assert_eq!(
            c.to_text(),
            "StoreDir: /nix/store\nWantMassQuery: 0\nPriority: -7\nBloomFilter: x\n"
        );
        let empty = CacheInfo::parse("");
        assert_eq!(empty, CacheInfo::new());
    }

    #[test]
    fn strict_cases() {
        let t = "StoreDir: /nix/store\nPriority: high\n";
        let c = CacheInfo::parse(t);
        assert_eq!(c.priority, None);
        assert_eq!(c.to_text(), t);
        assert_eq!(
            CacheInfo::parse_strict(t).unwrap_err().to_string(),
            "nix-cache-info: line 2: invalid Priority 'high'"
        );
        assert!(CacheInfo::parse_strict("Priority: 99999999999\n").is_err());
        assert_eq!(
            CacheInfo::parse_strict("StoreDir: /gnu/store\n")
                .unwrap_err()
                .to_string(),
            "nix-cache-info: binary cache is for Nix stores with prefix '/gnu/store', not '/nix/store'"
        );
        assert!(!CacheInfo::parse("StoreDir: /gnu/store\n").is_nix_store());
    }
}
