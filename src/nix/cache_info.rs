//! The `nix-cache-info` file: `Key: value` lines.

use thiserror::Error;

use super::store_path::{STORE_DIR, is_store_dir};

/// Contents of `nix-cache-info`. Two are equal when their values (the fields and kept
/// lines) are, whatever the problems of the texts they were read from.
#[derive(Debug, Clone)]
pub struct CacheInfo {
    /// `StoreDir` (`/nix/store` when the line is missing: Nix then does not check it, and
    /// takes the cache to be for its own store; see [`CacheInfo::declared_store_dir`]).
    pub store_dir: String,
    /// `WantMassQuery` (`1` is true, anything else false).
    pub want_mass_query: Option<bool>,
    /// `Priority` (lower is preferred).
    pub priority: Option<i64>,
    /// Other lines with a `:` (unknown keys, or values Nix cannot read), kept in order.
    extra: Vec<String>,
    /// Whether a `StoreDir` line was there.
    declared: bool,
    /// What is wrong with the text, line by line (see [`CacheInfo::problems`]).
    problems: Vec<String>,
}

/// A `nix-cache-info` that Nix would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheInfoError {
    /// `Priority` that `std::stoi` cannot read: Nix fails to open the cache.
    #[error("nix-cache-info: line {line}: invalid Priority '{value}'")]
    BadPriority {
        /// 1-based line number.
        line: usize,
        /// The Priority value as written.
        value: String,
    },
    /// A `StoreDir` other than `/nix/store`.
    #[error("nix-cache-info: binary cache is for Nix stores with prefix '{0}', not '{STORE_DIR}'")]
    WrongStoreDir(String),
}

impl PartialEq for CacheInfo {
    fn eq(&self, o: &Self) -> bool {
        self.store_dir == o.store_dir
            && self.want_mass_query == o.want_mass_query
            && self.priority == o.priority
            && self.extra == o.extra
    }
}

impl Eq for CacheInfo {}

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
            declared: true,
            problems: Vec::new(),
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
        info.declared = false;
        let mut first_err = None;
        let mut problems = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let no = i + 1;
            let Some((name, value)) = line.split_once(':') else {
                if !line.trim().is_empty() {
                    problems.push((
                        no,
                        format!("'{}' is not a 'Name: value' line", shorten(line)),
                    ));
                }
                continue;
            };
            let value = value.trim_matches([' ', '\n', '\r', '\t']);
            match name {
                "StoreDir" => {
                    if info.declared {
                        problems.push((no, "a second StoreDir line".to_string()));
                    }
                    if !is_store_dir(value) {
                        problems.push((
                            no,
                            format!("StoreDir '{}' is not an absolute directory", shorten(value)),
                        ));
                    }
                    info.store_dir = value.to_owned();
                    info.declared = true;
                }
                "WantMassQuery" => info.want_mass_query = Some(value == "1"),
                "Priority" => match stoi(value) {
                    Some(p) => info.priority = Some(p),
                    None => {
                        let e = CacheInfoError::BadPriority {
                            line: no,
                            value: value.to_owned(),
                        };
                        problems.push((no, format!("invalid Priority '{}'", shorten(value))));
                        first_err.get_or_insert(e);
                        info.extra.push(line.to_owned());
                    }
                },
                _ => {
                    // Nix ignores other names; one that is no field name at all is garbage.
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    {
                        problems.push((
                            no,
                            format!("'{}' is not a 'Name: value' line", shorten(line)),
                        ));
                    }
                    info.extra.push(line.to_owned());
                }
            }
        }
        info.problems.extend(
            problems
                .into_iter()
                .map(|(no, what)| format!("line {no}: {what}")),
        );
        if !info.declared {
            info.problems
                .push("no StoreDir line (Nix then takes the cache to be for its own store)".into());
        }
        (info, first_err)
    }

    /// The `StoreDir` the file declares, if it has that line.
    pub fn declared_store_dir(&self) -> Option<&str> {
        self.declared.then_some(self.store_dir.as_str())
    }

    /// What is wrong with the file as read: lines that are no `Name: value` line, a
    /// `StoreDir` that is no absolute directory or is given twice, an unreadable
    /// `Priority`, a missing `StoreDir`; each as `line N: …`. Empty for a well-formed file.
    pub fn problems(&self) -> &[String] {
        &self.problems
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

/// The `StoreDir` a `nix-cache-info` text declares (the last such line, as [`CacheInfo::parse`]
/// reads it), without parsing the rest; `None` when it has no such line.
pub fn declared_store_dir(text: &str) -> Option<&str> {
    text.split('\n')
        .rev()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| *name == "StoreDir")
        .map(|(_, v)| v.trim_matches([' ', '\n', '\r', '\t']))
}

/// At most 60 characters of `s`, for messages.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
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
    fn garbage_is_reported_by_line_never_as_a_store_dir() {
        let c = CacheInfo::parse("<html>\n<body>Access denied</body>\n</html>\n");
        assert_eq!(c.declared_store_dir(), None);
        assert_eq!(
            c.problems(),
            [
                "line 1: '<html>' is not a 'Name: value' line",
                "line 2: '<body>Access denied</body>' is not a 'Name: value' line",
                "line 3: '</html>' is not a 'Name: value' line",
                "no StoreDir line (Nix then takes the cache to be for its own store)",
            ]
        );
        let c = CacheInfo::parse("<a href=\"http://x\">StoreDir: /gnu/store</a>\nPriority: x\n");
        assert_eq!(c.declared_store_dir(), None);
        assert_eq!(c.problems().len(), 3, "{:?}", c.problems());
        assert!(
            c.problems()[0].starts_with("line 1: '<a href="),
            "{:?}",
            c.problems()
        );
        assert_eq!(c.problems()[1], "line 2: invalid Priority 'x'");
        let c = CacheInfo::parse("StoreDir: gnu/store/\nStoreDir: /gnu/store\n");
        assert_eq!(c.declared_store_dir(), Some("/gnu/store"));
        assert_eq!(
            c.problems(),
            [
                "line 1: StoreDir 'gnu/store/' is not an absolute directory",
                "line 2: a second StoreDir line",
            ]
        );
        for good in [
            "StoreDir: /nix/store\n",
            "StoreDir: /gnu/store\nWantMassQuery: 1\nPriority: 30\nBloom-Filter: x\n",
        ] {
            let c = CacheInfo::parse(good);
            assert!(c.problems().is_empty(), "{good}: {:?}", c.problems());
            assert!(c.declared_store_dir().is_some());
        }
        assert_eq!(
            CacheInfo::parse("StoreDir: /gnu/store\n").declared_store_dir(),
            Some("/gnu/store")
        );
        for t in [
            "StoreDir: /gnu/store\n",
            "x\nStoreDir:/a\r\nStoreDir:  /gnu/store \n",
            "<html>\n",
            "",
        ] {
            assert_eq!(
                declared_store_dir(t),
                CacheInfo::parse(t).declared_store_dir(),
                "{t:?}"
            );
        }
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
