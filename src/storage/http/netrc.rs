//! netrc files, as Nix (through curl) reads them for HTTP caches: `machine HOST`, `default`,
//! `login`, `password`, `account` (ignored) and `macdef` (skipped), tokens separated by white
//! space, optionally in double quotes.
//!
//! Where the file comes from ([`find_netrc`]): the cache URL's `netrc-file=`, else nix.conf's
//! `netrc-file` setting, else `$NIX_CONF_DIR/netrc` (default `/etc/nix/netrc`) when it exists
//! (Nix's default for the setting).
//!
//! Passwords never appear in `Debug` output, errors or logs: errors name the file and the
//! line, never a token's value.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;

/// One `machine` (or `default`) entry's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct NetrcCredentials {
    /// The `login`.
    pub login: String,
    password: String,
}

impl NetrcCredentials {
    /// The `Authorization: Basic …` header value for these credentials.
    pub fn basic_auth(&self) -> String {
        let raw = format!("{}:{}", self.login, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

impl fmt::Debug for NetrcCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetrcCredentials")
            .field("login", &self.login)
            .field("password", &"** redacted **")
            .finish()
    }
}

/// A parsed netrc file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Netrc {
    /// `(machine, credentials)` in file order; `None` is the `default` entry.
    entries: Vec<(Option<String>, NetrcCredentials)>,
}

/// A netrc file that cannot be used; names the file and line, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum NetrcError {
    /// The file cannot be read.
    #[error("cannot read the netrc file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("netrc file {path} line {line}: {what}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong (never a token's value after `password`).
        what: String,
    },
}

/// A token and the line it starts on.
struct Tok {
    text: String,
    line: usize,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, (usize, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        if c == '\n' {
            line += 1;
            chars.next();
            continue;
        }
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            // A comment runs to the end of the line (curl skips lines starting with `#`).
            while chars.peek().is_some_and(|&c| c != '\n') {
                chars.next();
            }
            continue;
        }
        let start = line;
        let mut tok = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err((start, "a quoted token is not closed".into())),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => tok.push('\n'),
                        Some('r') => tok.push('\r'),
                        Some('t') => tok.push('\t'),
                        Some(other) => tok.push(other),
                        None => return Err((start, "a quoted token is not closed".into())),
                    },
                    Some(ch) => {
                        if ch == '\n' {
                            line += 1;
                        }
                        tok.push(ch);
                    }
                }
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                tok.push(ch);
                chars.next();
            }
        }
        if tok == "macdef" {
            // A macro definition runs to the next empty line; its body is no tokens.
            let mut line_empty = false;
            for ch in chars.by_ref() {
                if ch == '\n' {
                    line += 1;
                    if line_empty {
                        break;
                    }
                    line_empty = true;
                } else if !ch.is_whitespace() {
                    line_empty = false;
                }
            }
            continue;
        }
        out.push(Tok {
            text: tok,
            line: start,
        });
    }
    Ok(out)
}

impl Netrc {
    /// Parses the text of a netrc file; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Netrc, NetrcError> {
        let syntax = |line: usize, what: String| NetrcError::Syntax {
            path: path.to_path_buf(),
            line,
            what,
        };
        let toks = tokenize(text).map_err(|(line, what)| syntax(line, what))?;
        let mut entries: Vec<(Option<String>, Option<String>, Option<String>)> = Vec::new();
        let mut it = toks.into_iter();
        while let Some(t) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .map(|v| v.text)
                    .ok_or_else(|| syntax(t.line, format!("`{name}` has no value")))
            };
            match t.text.as_str() {
                "machine" => {
                    let host = value("machine")?;
                    entries.push((Some(host), None, None));
                }
                "default" => entries.push((None, None, None)),
                "login" | "password" | "account" => {
                    let name = t.text.clone();
                    let v = value(&name)?;
                    let Some(entry) = entries.last_mut() else {
                        return Err(syntax(
                            t.line,
                            format!("`{name}` before any `machine` or `default`"),
                        ));
                    };
                    match name.as_str() {
                        "login" => entry.1 = Some(v),
                        "password" => entry.2 = Some(v),
                        _ => {}
                    }
                }
                other => {
                    return Err(syntax(
                        t.line,
                        format!(
                            "unexpected `{}`; expected machine, default, login, password, \
                             account or macdef",
                            other.chars().take(32).collect::<String>()
                        ),
                    ));
                }
            }
        }
        Ok(Netrc {
            entries: entries
                .into_iter()
                .filter_map(|(m, login, password)| {
                    let login = login?;
                    Some((
                        m,
                        NetrcCredentials {
                            login,
                            password: password.unwrap_or_default(),
                        },
                    ))
                })
                .collect(),
        })
    }

    /// Reads and parses a netrc file.
    pub fn read(path: &Path) -> Result<Netrc, NetrcError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetrcError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Netrc::parse(&text, path)
    }

    /// The credentials for `host` (without port; case-insensitive): the first `machine` entry
    /// naming it, else the `default` entry. Entries without a `login` are skipped.
    pub fn for_host(&self, host: &str) -> Option<&NetrcCredentials> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.entries
            .iter()
            .find(|(m, _)| {
                m.as_deref().is_some_and(|m| {
                    m.trim_start_matches('[')
                        .trim_end_matches(']')
                        .eq_ignore_ascii_case(host)
                })
            })
            .or_else(|| self.entries.iter().find(|(m, _)| m.is_none()))
            .map(|(_, c)| c)
    }

    /// Whether the file has no usable entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where the netrc file for an HTTP cache comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetrcSource {
    /// The URL's `netrc-file=`: it must exist.
    UrlParam(PathBuf),
    /// nix.conf's `netrc-file` (the origin says which file and line): used when it exists.
    NixConf(PathBuf, String),
    /// `$NIX_CONF_DIR/netrc` (Nix's default): used when it exists.
    Default(PathBuf),
}

impl NetrcSource {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            NetrcSource::UrlParam(p) | NetrcSource::NixConf(p, _) | NetrcSource::Default(p) => p,
        }
    }
}

impl fmt::Display for NetrcSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetrcSource::UrlParam(p) => write!(f, "{} (netrc-file= in the cache URL)", p.display()),
            NetrcSource::NixConf(p, origin) => {
                write!(f, "{} (netrc-file, {origin})", p.display())
            }
            NetrcSource::Default(p) => write!(f, "{} (Nix's default netrc-file)", p.display()),
        }
    }
}

/// Which netrc file applies to a cache URL with `netrc-file=` `param` (see the module docs).
/// nix.conf is read only when the URL names no file.
pub fn netrc_source(param: Option<&Path>) -> NetrcSource {
    if let Some(p) = param {
        return NetrcSource::UrlParam(p.to_path_buf());
    }
    let conf = crate::nix::conf::NixConf::load_default();
    if let Some((file, origin)) = conf.netrc_file {
        return NetrcSource::NixConf(PathBuf::from(file), origin);
    }
    let dir = std::env::var_os("NIX_CONF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/nix"));
    NetrcSource::Default(dir.join("netrc"))
}

/// The netrc file a cache URL uses, read: `Ok(None)` when no file applies (a nix.conf or
/// default file that does not exist, as curl ignores it); an error when the URL's
/// `netrc-file=` cannot be read, or any applicable file does not parse.
pub fn find_netrc(param: Option<&Path>) -> Result<Option<(NetrcSource, Netrc)>, NetrcError> {
    let source = netrc_source(param);
    if !matches!(source, NetrcSource::UrlParam(_)) && !source.path().exists() {
        tracing::debug!("no netrc file: {source} does not exist");
        return Ok(None);
    }
    let netrc = Netrc::read(source.path())?;
    Ok(Some((source, netrc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Netrc {
        Netrc::parse(text, Path::new("/n")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn machines_and_default() {
        let n = parse(
            "# comment\nmachine cache.example.org login alice password s3cret\n\
             machine OTHER.example.org\n  login bob\n  password \"with space\"\n  account x\n\
             default login anon password guest\n",
        );
        let a = n.for_host("cache.example.org").unwrap();
        assert_eq!(a.login, "alice");
        assert_eq!(a.basic_auth(), "Basic YWxpY2U6czNjcmV0");
        let b = n.for_host("other.EXAMPLE.org").unwrap();
        assert_eq!(b.login, "bob");
        assert_eq!(b.password, "with space");
        assert_eq!(n.for_host("elsewhere").unwrap().login, "anon");
        assert!(
            parse("machine a login x password y")
                .for_host("b")
                .is_none()
        );
    }

    #[test]
    fn first_match_wins_and_macdef_is_skipped() {
        let n = parse(
            "machine h login one password p1\nmacdef init\ncd /pub\nget x\n\n\
             machine h login two password p2\n",
        );
        assert_eq!(n.for_host("h").unwrap().login, "one");
        assert_eq!(n.entries.len(), 2);
        // one line, and a quoted escape
        let n = parse(r#"machine h login "a\"b" password x"#);
        assert_eq!(n.for_host("h").unwrap().login, "a\"b");
        // IPv6 hosts, with or without brackets
        let n = parse("machine ::1 login v6 password p");
        assert_eq!(n.for_host("[::1]").unwrap().login, "v6");
    }

    #[test]
    fn errors_name_the_line_never_the_secret() {
        for (text, want) in [
            (
                "machine h login u password",
                "line 1: `password` has no value",
            ),
            ("login u password p", "`login` before any `machine`"),
            (
                "machine h\nlogin u\nhunter2 p",
                "line 3: unexpected `hunter2`",
            ),
            ("machine h login \"open", "not closed"),
        ] {
            let e = Netrc::parse(text, Path::new("/etc/nix/netrc"))
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.contains("/etc/nix/netrc"), "{e}");
        }
        let e = parse("machine h login u password topsecret");
        assert!(!format!("{e:?}").contains("topsecret"));
        let missing = Netrc::read(Path::new("/nonexistent/netrc")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/netrc"),
            "{missing}"
        );
    }

    #[test]
    fn url_parameter_comes_first_and_must_exist() {
        let src = netrc_source(Some(Path::new("/x/netrc")));
        assert_eq!(src, NetrcSource::UrlParam(PathBuf::from("/x/netrc")));
        assert!(find_netrc(Some(Path::new("/nonexistent/netrc"))).is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("netrc");
        std::fs::write(&f, "machine h login u password p\n").unwrap();
        let (src, n) = find_netrc(Some(&f)).unwrap().unwrap();
        assert_eq!(src.path(), f);
        assert_eq!(n.for_host("h").unwrap().login, "u");
    }
}
