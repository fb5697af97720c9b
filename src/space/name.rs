//! Package names of store paths, split the way Nix's `DrvName` splits a derivation name:
//! the name ends at the first `-` that is not followed by a letter, and the rest is the
//! version (`hello-2.12.1` → `hello` / `2.12.1`; `foo-unstable-2024-01-01` → `foo-unstable` /
//! `2024-01-01`; `source` has no version). A known output name at the end of the version
//! (`openssl-3.0.13-dev`) is kept apart, so `openssl` and `openssl-dev` are two groups.

/// Output names a multiple-output derivation appends to its store paths (`-out` never
/// appears: the default output has no suffix).
pub const OUTPUTS: &[&str] = &[
    "bin",
    "dev",
    "doc",
    "devdoc",
    "devman",
    "man",
    "info",
    "lib",
    "lib32",
    "debug",
    "static",
    "terminfo",
    "modules",
    "dist",
    "py",
    "python",
    "fonts",
    "scripts",
    "sbin",
    "tex",
    "gui",
    "nc",
    "test",
    "tests",
    "installedTests",
    "examples",
];

/// A store path name, split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// The package name (`openssl`).
    pub name: &'a str,
    /// The version (`3.0.13`); empty when the name has none.
    pub version: &'a str,
    /// The output the path is (`dev`), when the version ends with a known output name;
    /// `drv` for a derivation (`.drv`).
    pub output: Option<&'a str>,
}

impl Split<'_> {
    /// The group the path belongs to: the name, with the output appended as in the store
    /// path (`openssl`, `openssl-dev`, `hello.drv`).
    pub fn group(&self) -> String {
        match self.output {
            None => self.name.to_string(),
            Some("drv") => format!("{}.drv", self.name),
            Some(o) => format!("{}-{o}", self.name),
        }
    }
}

/// Splits a store path name (the part after `<hash>-`) into name, version and output.
pub fn split(full: &str) -> Split<'_> {
    let (base, drv) = match full.strip_suffix(".drv") {
        Some(b) => (b, true),
        None => (full, false),
    };
    let bytes = base.as_bytes();
    let cut = (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()));
    let (name, mut version) = match cut {
        Some(i) => (&base[..i], &base[i + 1..]),
        None => (base, ""),
    };
    let mut output = drv.then_some("drv");
    if !drv
        && let Some((v, o)) = version.rsplit_once('-')
        && OUTPUTS.contains(&o)
    {
        version = v;
        output = Some(o);
    }
    Split {
        name,
        version,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(full: &str) -> (&str, &str, Option<&str>, String) {
        let x = split(full);
        (x.name, x.version, x.output, x.group())
    }

    #[test]
    fn splits_like_nix_drvname() {
        assert_eq!(s("hello-2.12.1"), ("hello", "2.12.1", None, "hello".into()));
        assert_eq!(
            s("foo-unstable-2024-01-01"),
            ("foo-unstable", "2024-01-01", None, "foo-unstable".into())
        );
        assert_eq!(
            s("zsh-autosuggestions-0-unstable-2024-01-01"),
            (
                "zsh-autosuggestions",
                "0-unstable-2024-01-01",
                None,
                "zsh-autosuggestions".into()
            )
        );
        assert_eq!(
            s("perl5.38.2-Test-Simple-1.302195"),
            (
                "perl5.38.2-Test-Simple",
                "1.302195",
                None,
                "perl5.38.2-Test-Simple".into()
            )
        );
        assert_eq!(s("source"), ("source", "", None, "source".into()));
        assert_eq!(
            s("hello-world"),
            ("hello-world", "", None, "hello-world".into())
        );
    }

    #[test]
    fn outputs_are_kept_apart() {
        assert_eq!(
            s("openssl-3.0.13-dev"),
            ("openssl", "3.0.13", Some("dev"), "openssl-dev".into())
        );
        assert_eq!(
            s("glibc-2.38-27-bin"),
            ("glibc", "2.38-27", Some("bin"), "glibc-bin".into())
        );
        assert_eq!(
            s("linux-6.6.10-modules"),
            ("linux", "6.6.10", Some("modules"), "linux-modules".into())
        );
        assert_eq!(s("hello-2.12.1.drv").3, "hello.drv");
        assert_eq!(s("foo-1-dev").2, Some("dev"));
        assert_eq!(s("foo-dev"), ("foo-dev", "", None, "foo-dev".into()));
    }
}
