//! Store paths: `/nix/store/<32 nix32 chars>-<name>`.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;
use thiserror::Error;

use super::hash::Hash;
use super::nix32;

/// Nix's default store directory (and the one a narinfo without another is read against).
pub const STORE_DIR: &str = "/nix/store";

/// Length of the hash part of a store path (nix32 of 20 bytes).
pub const HASH_PART_LEN: usize = 32;

/// Longest name Nix accepts.
pub const MAX_NAME_LEN: usize = 211;

/// Why a string is not a valid store path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorePathError {
    /// Shorter than `<32 chars>-<name>`.
    #[error("store path '{0}' is too short")]
    TooShort(String),
    /// The hash part has a character outside the nix32 alphabet.
    #[error("store path '{path}' has an illegal character {ch:?} in its hash part")]
    BadHashChar {
        /// The store path as given.
        path: String,
        /// The offending character.
        ch: char,
    },
    /// No `-` between hash part and name.
    #[error("store path '{0}' has no '-' after its 32-character hash part")]
    MissingDash(String),
    /// The name is empty.
    #[error("store path '{0}' has an empty name")]
    EmptyName(String),
    /// The name is longer than 211 characters.
    #[error("store path '{0}' has a name longer than 211 characters")]
    NameTooLong(String),
    /// Name is `.`/`..` or starts with `.-`/`..-`.
    #[error("store path '{0}' has an invalid name ('.' or '..' as first dash-separated component)")]
    DotName(String),
    /// The name has a character outside `[0-9a-zA-Z+-._?=]`.
    #[error("store path '{path}' contains illegal character {ch:?} in its name")]
    BadNameChar {
        /// The store path as given.
        path: String,
        /// The offending character.
        ch: char,
    },
    /// An absolute path not directly under `/nix/store`.
    #[error("path '{0}' is not directly in the Nix store {STORE_DIR}")]
    NotInStore(String),
    /// An absolute path that is not `<store directory>/<base name>` for any store
    /// directory (see [`is_store_dir`]).
    #[error("path '{0}' is not a store path (<store directory>/<hash>-<name>)")]
    NotAStorePath(String),
    /// A hash part (alone) of the wrong length.
    #[error("hash part '{0}' is not 32 characters long")]
    HashPartLength(String),
}

/// A store path, held as its base name `hash-name`. Ordered bytewise by base name,
/// which is also the order of the absolute paths and the order Nix writes References.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath {
    base: Box<str>,
}

impl StorePath {
    /// Parses a base name `<32 nix32 chars>-<name>`, with Nix HEAD's name rules.
    pub fn from_base_name(s: &str) -> Result<StorePath, StorePathError> {
        if let Some(ch) = s.chars().take(HASH_PART_LEN).find(|&c| !is_hash_char(c)) {
            return Err(StorePathError::BadHashChar {
                path: s.to_owned(),
                ch,
            });
        }
        // The first 32 characters are ASCII now, so byte 32 is a char boundary.
        let Some(rest) = s.get(HASH_PART_LEN..).filter(|r| !r.is_empty()) else {
            return Err(StorePathError::TooShort(s.to_owned()));
        };
        let Some(name) = rest.strip_prefix('-') else {
            return Err(StorePathError::MissingDash(s.to_owned()));
        };
        check_name(name, s)?;
        Ok(StorePath { base: s.into() })
    }

    /// Parses `/nix/store/<base name>` with nothing after the base name.
    pub fn from_absolute(s: &str) -> Result<StorePath, StorePathError> {
        let base = s
            .strip_prefix(STORE_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|b| !b.contains('/'))
            .ok_or_else(|| StorePathError::NotInStore(s.to_owned()))?;
        StorePath::from_base_name(base).map_err(|e| with_path(e, s))
    }

    /// Parses `<store directory>/<base name>` for any store directory (see
    /// [`is_store_dir`]), e.g. `/gnu/store/…`; returns the directory and the path.
    pub fn split_absolute(s: &str) -> Result<(&str, StorePath), StorePathError> {
        let (dir, base) = s
            .rsplit_once('/')
            .filter(|(dir, base)| is_store_dir(dir) && !base.is_empty())
            .ok_or_else(|| StorePathError::NotAStorePath(s.to_owned()))?;
        let p = StorePath::from_base_name(base).map_err(|e| with_path(e, s))?;
        Ok((dir, p))
    }

    /// Parses either an absolute store path, in any store directory (the directory is
    /// dropped: see [`StorePath::split_absolute`] to keep it), or a base name.
    pub fn parse_any(s: &str) -> Result<StorePath, StorePathError> {
        if s.starts_with('/') {
            StorePath::split_absolute(s).map(|(_, p)| p)
        } else {
            StorePath::from_base_name(s)
        }
    }

    /// Builds a store path from a hash part and a name, validating both.
    pub fn from_parts(hash_part: &str, name: &str) -> Result<StorePath, StorePathError> {
        validate_hash_part(hash_part)?;
        StorePath::from_base_name(&format!("{hash_part}-{name}"))
    }

    /// The 32-character nix32 hash part.
    pub fn hash_part(&self) -> &str {
        self.base.get(..HASH_PART_LEN).unwrap_or_default()
    }

    /// The name after the dash.
    pub fn name(&self) -> &str {
        self.base.get(HASH_PART_LEN + 1..).unwrap_or_default()
    }

    /// `hash-name` as an owned string.
    pub fn base_name(&self) -> String {
        self.base.to_string()
    }

    /// The base name `<hash>-<name>`, borrowed.
    pub fn as_base_name(&self) -> &str {
        &self.base
    }

    /// The full path in the default store directory, `/nix/store/<hash>-<name>`.
    pub fn to_absolute(&self) -> String {
        let mut s = String::with_capacity(STORE_DIR.len() + 1 + self.base.len());
        s.push_str(STORE_DIR);
        s.push('/');
        s.push_str(&self.base);
        s
    }

    /// The full path in another store directory, `<store_dir>/<hash>-<name>`.
    pub fn in_dir(&self, store_dir: &str) -> String {
        format!("{store_dir}/{}", self.base)
    }

    /// The object key of this path's narinfo: `<hash>.narinfo`.
    pub fn narinfo_key(&self) -> String {
        format!("{}.narinfo", self.hash_part())
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STORE_DIR}/{}", self.base)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({})", self.base)
    }
}

impl FromStr for StorePath {
    type Err = StorePathError;
    fn from_str(s: &str) -> Result<Self, StorePathError> {
        StorePath::parse_any(s)
    }
}

fn with_path(e: StorePathError, path: &str) -> StorePathError {
    let p = path.to_owned();
    match e {
        StorePathError::TooShort(_) => StorePathError::TooShort(p),
        StorePathError::BadHashChar { ch, .. } => StorePathError::BadHashChar { path: p, ch },
        StorePathError::MissingDash(_) => StorePathError::MissingDash(p),
        StorePathError::EmptyName(_) => StorePathError::EmptyName(p),
        StorePathError::NameTooLong(_) => StorePathError::NameTooLong(p),
        StorePathError::DotName(_) => StorePathError::DotName(p),
        StorePathError::BadNameChar { ch, .. } => StorePathError::BadNameChar { path: p, ch },
        StorePathError::NotInStore(_) => StorePathError::NotInStore(p),
        StorePathError::NotAStorePath(_) => StorePathError::NotAStorePath(p),
        StorePathError::HashPartLength(_) => StorePathError::HashPartLength(p),
    }
}

fn is_hash_char(c: char) -> bool {
    c.is_ascii() && nix32::is_digit(c as u8)
}

fn check_name(name: &str, whole: &str) -> Result<(), StorePathError> {
    if name.is_empty() {
        return Err(StorePathError::EmptyName(whole.to_owned()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StorePathError::NameTooLong(whole.to_owned()));
    }
    if name == "." || name == ".." || name.starts_with(".-") || name.starts_with("..-") {
        return Err(StorePathError::DotName(whole.to_owned()));
    }
    if let Some(ch) = name.chars().find(|&c| !is_name_char(c)) {
        return Err(StorePathError::BadNameChar {
            path: whole.to_owned(),
            ch,
        });
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | '?' | '=')
}

/// Whether `dir` can be a store directory, as Nix's `canonPath` leaves one: absolute, not
/// `/` itself, without a trailing `/`, empty, `.` or `..` components.
pub fn is_store_dir(dir: &str) -> bool {
    dir.len() > 1
        && dir.starts_with('/')
        && dir
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Checks that `s` is a 32-character nix32 hash part.
pub fn validate_hash_part(s: &str) -> Result<(), StorePathError> {
    if let Some(ch) = s.chars().find(|&c| !is_hash_char(c)) {
        return Err(StorePathError::BadHashChar {
            path: s.to_owned(),
            ch,
        });
    }
    if s.len() != HASH_PART_LEN {
        return Err(StorePathError::HashPartLength(s.to_owned()));
    }
    Ok(())
}

/// The hash part of a narinfo object key, only for exactly `<32 nix32 chars>.narinfo`.
pub fn hash_part_from_narinfo_key(key: &str) -> Option<&str> {
    let hash = key.strip_suffix(".narinfo")?;
    (hash.len() == HASH_PART_LEN && nix32::is_nix32(hash)).then_some(hash)
}

/// Why `key`, an object at the cache root named `<something>.narinfo`, names no store path:
/// its hash part is not 32 characters of Nix's base-32 alphabet. `None` for a real narinfo
/// key, and for keys that do not end in `.narinfo` or lie below a `/`.
///
/// Such an object is not a narinfo Nix could ever look up. Nix 2.8's `nix store verify --all`
/// on a file:// cache fails on a bad character ("store path '…-x' contains illegal base-32
/// character 'u'") and skips a wrong length; narscope reports both.
pub fn narinfo_key_problem(key: &str) -> Option<String> {
    let hash = key.strip_suffix(".narinfo")?;
    if key.contains('/') || hash_part_from_narinfo_key(key).is_some() {
        return None;
    }
    let what = match hash
        .chars()
        .find(|c| !c.is_ascii() || !nix32::is_digit(*c as u8))
    {
        Some(c) => format!("contains {c:?}, which is not a character of Nix's base-32 alphabet"),
        None => format!(
            "has {} characters, not {HASH_PART_LEN}",
            hash.chars().count()
        ),
    };
    Some(format!(
        "`{key}` is named like a narinfo, but its hash part {what}: it names no store path, \
         so Nix never substitutes from it; inspect it and remove it by hand (gc and delete \
         leave it alone)"
    ))
}

/// Nix's `makeStorePath`: nix32 of `sha256("<type>:<algo>:<hex>:/nix/store:<name>")`
/// XOR-folded to 20 bytes, joined with `name`.
pub fn make_store_path(
    path_type: &str,
    inner: &Hash,
    name: &str,
) -> Result<StorePath, StorePathError> {
    make_store_path_in(STORE_DIR, path_type, inner, name)
}

/// [`make_store_path`] for the store directory `store_dir` (which is part of the hash).
pub fn make_store_path_in(
    store_dir: &str,
    path_type: &str,
    inner: &Hash,
    name: &str,
) -> Result<StorePath, StorePathError> {
    let s = format!("{path_type}:{}:{store_dir}:{name}", inner.to_hex());
    let digest = sha2::Sha256::digest(s.as_bytes());
    let mut folded = [0u8; 20];
    for (i, b) in digest.iter().enumerate() {
        if let Some(slot) = folded.get_mut(i % 20) {
            *slot ^= b;
        }
    }
    let base = format!("{}-{name}", nix32::encode(&folded));
    StorePath::from_base_name(&base)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOO: &str = "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo";

    #[test]
    fn parses_and_prints() {
        let p = StorePath::from_base_name(FOO).unwrap();
        assert_eq!(p.hash_part(), "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0");
        assert_eq!(p.name(), "foo");
        assert_eq!(p.base_name(), FOO);
        assert_eq!(p.to_absolute(), format!("/nix/store/{FOO}"));
        assert_eq!(p.to_string(), format!("/nix/store/{FOO}"));
        assert_eq!(p.narinfo_key(), "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo");
        assert_eq!(StorePath::from_absolute(&p.to_absolute()).unwrap(), p);
        assert_eq!(StorePath::parse_any(&p.to_absolute()).unwrap(), p);
        assert_eq!(StorePath::parse_any(FOO).unwrap(), p);
        assert_eq!(
            StorePath::from_parts("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0", "foo").unwrap(),
            p
        );
    }

    #[test]
    fn ordering_is_bytewise_on_base_names() {
        let a = StorePath::from_base_name("0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0").unwrap();
        let b =
            StorePath::from_base_name("6w8g7njm4mck5dmjxws0z1xnrxvl81xa-glibc-2.34-115").unwrap();
        let c =
            StorePath::from_base_name("yxvjs9drzsphm9pcf42a4byzj1kb9m7k-openssl-1.1.1n").unwrap();
        let mut v = vec![c.clone(), a.clone(), b.clone()];
        v.sort();
        assert_eq!(v, vec![a, b, c]);
    }

    #[test]
    fn name_rules() {
        let h = "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0";
        for ok in [
            "a",
            "A-Z_0.9+?=",
            ".a",
            "..a",
            ".a-b",
            "a..-",
            &"x".repeat(211),
        ] {
            assert!(StorePath::from_parts(h, ok).is_ok(), "{ok}");
        }
        let cases: &[(&str, &str)] = &[
            (
                "",
                "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-' has an empty name",
            ),
            (
                ".",
                "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-.' has an invalid name ('.' or '..' as first dash-separated component)",
            ),
            (
                "..",
                "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-..' has an invalid name ('.' or '..' as first dash-separated component)",
            ),
            (
                ".-x",
                "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-.-x' has an invalid name ('.' or '..' as first dash-separated component)",
            ),
            (
                "..-x",
                "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-..-x' has an invalid name ('.' or '..' as first dash-separated component)",
            ),
            (
                "a b",
                "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-a b' contains illegal character ' ' in its name",
            ),
            (
                "a\r",
                "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-a\r' contains illegal character '\\r' in its name",
            ),
            (
                "é",
                "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-é' contains illegal character 'é' in its name",
            ),
        ];
        for (name, msg) in cases {
            let err = StorePath::from_base_name(&format!("{h}-{name}")).unwrap_err();
            assert_eq!(err.to_string(), *msg);
        }
        assert!(matches!(
            StorePath::from_parts(h, &"x".repeat(212)),
            Err(StorePathError::NameTooLong(_))
        ));
    }

    #[test]
    fn hash_part_rules() {
        assert_eq!(
            StorePath::from_base_name("exjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo")
                .unwrap_err()
                .to_string(),
            "store path 'exjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo' has an illegal character 'e' in its hash part"
        );
        assert!(StorePath::from_base_name("Vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo").is_err());
        assert_eq!(
            StorePath::from_base_name("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0_foo")
                .unwrap_err()
                .to_string(),
            "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0_foo' has no '-' after its 32-character hash part"
        );
        assert!(matches!(
            StorePath::from_base_name("abc"),
            Err(StorePathError::TooShort(_))
        ));
        assert!(matches!(
            StorePath::from_base_name("aéc"),
            Err(StorePathError::BadHashChar { ch: 'é', .. })
        ));
        assert!(validate_hash_part("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0").is_ok());
        assert!(validate_hash_part("vxjiwkjkn7x4079qvh1jkl5pn05j2aw").is_err());
        assert!(validate_hash_part("vxjiwkjkn7x4079qvh1jkl5pn05j2awt").is_err());
    }

    #[test]
    fn absolute_rules() {
        for bad in [
            "/nix/store",
            "/nix/store/",
            "/nix/storevxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
            "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo/",
            "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo/bin",
            "/gnu/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
            "nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo",
        ] {
            assert!(StorePath::from_absolute(bad).is_err(), "{bad}");
        }
        assert_eq!(
            StorePath::from_absolute("/nix/store/x/y")
                .unwrap_err()
                .to_string(),
            "path '/nix/store/x/y' is not directly in the Nix store /nix/store"
        );
        assert_eq!(
            StorePath::from_absolute("/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-a b")
                .unwrap_err()
                .to_string(),
            "store path '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-a b' contains illegal character ' ' in its name"
        );
    }

    #[test]
    fn other_store_directories() {
        let gnu = format!("/gnu/store/{FOO}");
        let (dir, p) = StorePath::split_absolute(&gnu).unwrap();
        assert_eq!(dir, "/gnu/store");
        assert_eq!(p.base_name(), FOO);
        assert_eq!(p.in_dir(dir), format!("/gnu/store/{FOO}"));
        assert_eq!(
            StorePath::parse_any(&format!("/gnu/store/{FOO}")).unwrap(),
            p
        );
        assert_eq!(
            StorePath::split_absolute(&format!("/nix/store/{FOO}"))
                .unwrap()
                .0,
            "/nix/store"
        );
        for bad in [
            format!("/{FOO}"),
            format!("gnu/store/{FOO}"),
            format!("/gnu//store/{FOO}"),
            format!("/gnu/./store/{FOO}"),
            format!("/gnu/../store/{FOO}"),
            format!("/gnu/store/{FOO}/"),
            "/gnu/store/".to_string(),
        ] {
            let e = StorePath::split_absolute(&bad).unwrap_err();
            assert!(matches!(e, StorePathError::NotAStorePath(_)), "{bad}: {e}");
            assert!(StorePath::parse_any(&bad).is_err(), "{bad}");
        }
        assert!(matches!(
            StorePath::split_absolute("/gnu/store/short-foo"),
            Err(StorePathError::BadHashChar { .. } | StorePathError::TooShort(_))
        ));
        assert!(is_store_dir("/nix/store") && is_store_dir("/a"));
        for bad in [
            "",
            "/",
            "nix/store",
            "/nix/store/",
            "/nix//store",
            "/nix/./s",
        ] {
            assert!(!is_store_dir(bad), "{bad}");
        }
        // The store directory is part of a content address.
        let gnu =
            make_store_path_in("/gnu/store", "text", &Hash::sha256_of(b"bar"), "foo").unwrap();
        assert_ne!(gnu.base_name(), FOO);
        assert_eq!(
            make_store_path_in(STORE_DIR, "text", &Hash::sha256_of(b"bar"), "foo")
                .unwrap()
                .base_name(),
            FOO
        );
    }

    #[test]
    fn narinfo_keys() {
        assert_eq!(
            hash_part_from_narinfo_key("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo"),
            Some("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0")
        );
        for bad in [
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw.narinfo",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw00.narinfo",
            "exjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo.tmp",
            "nar/vxjiwkjkn7x4079qvh1jkl5pn05j2.narinfo",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.ls",
            "nix-cache-info",
        ] {
            assert_eq!(hash_part_from_narinfo_key(bad), None, "{bad}");
        }
        let p = narinfo_key_problem("vxjiwkjkn7x4079qvh1jkl5pn05j2auu.narinfo").unwrap();
        assert!(
            p.starts_with("`vxjiwkjkn7x4079qvh1jkl5pn05j2auu.narinfo` is named like a narinfo, but its hash part contains 'u', which is not")
                && p.contains("remove it by hand"),
            "{p}"
        );
        let p = narinfo_key_problem("vxjiwkjkn7x4079qvh1jkl5pn05j2aw.narinfo").unwrap();
        assert!(p.contains("its hash part has 31 characters, not 32"), "{p}");
        assert!(
            narinfo_key_problem("abc.narinfo")
                .unwrap()
                .contains("has 3 characters")
        );
        for fine in [
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.narinfo",
            "nar/vxjiwkjkn7x4079qvh1jkl5pn05j2.narinfo",
            "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0.ls",
            "nix-cache-info",
        ] {
            assert_eq!(narinfo_key_problem(fine), None, "{fine}");
        }
    }

    #[test]
    fn make_store_path_vectors() {
        // builtins.toFile "foo" "bar"
        let p = make_store_path("text", &Hash::sha256_of(b"bar"), "foo").unwrap();
        assert_eq!(p.to_string(), format!("/nix/store/{FOO}"));
        // builtins.toFile "baz" "${foo}" with a reference to foo
        let p = make_store_path(
            &format!("text:/nix/store/{FOO}"),
            &Hash::sha256_of(format!("/nix/store/{FOO}").as_bytes()),
            "baz",
        )
        .unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz"
        );
        // nix-store --add hello.txt
        let nar =
            Hash::parse("sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw").unwrap();
        let p = make_store_path("source", &nar, "hello.txt").unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/i9pmrzmpshapij2kin22pff6fc2adavx-hello.txt"
        );
        // nix-store --add-fixed sha256 hello.txt
        let flat = Hash::sha256_of(b"hello\n");
        assert_eq!(
            flat.hex_digest(),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        let inner = Hash::sha256_of(format!("fixed:out:{}:", flat.to_hex()).as_bytes());
        let p = make_store_path("output:out", &inner, "hello.txt").unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/gy454w1cxaq731grqwylhzf4pp9r5izh-hello.txt"
        );
        // NAR of the tree/ directory from the doc.
        let tree =
            Hash::parse("sha256:1z6lc24y87d2fvdvij404yddclby8qbcmybm61w8ckrxb86617mb").unwrap();
        assert_eq!(
            make_store_path("source", &tree, "tree")
                .unwrap()
                .to_string(),
            "/nix/store/xglgicngsyrdq9w7r3i4gd4d12mq2x5a-tree"
        );
        assert!(make_store_path("text", &flat, "bad name").is_err());
    }
}
