//! Content addresses (the narinfo `CA` field) and recomputing CA store paths.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::hash::{Hash, HashAlgo, HashError};
use super::store_path::{STORE_DIR, StorePath, StorePathError, make_store_path_in};

/// How a fixed-output path's contents were hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileIngestionMethod {
    /// The file's bytes (`fixed:<algo>:…`).
    Flat,
    /// The NAR serialisation (`fixed:r:<algo>:…`).
    Recursive,
    /// Git tree hashing (`fixed:git:<algo>:…`, experimental).
    Git,
}

impl FileIngestionMethod {
    /// The prefix Nix puts before the algorithm: `""`, `"r:"` or `"git:"`.
    pub fn prefix(&self) -> &'static str {
        match self {
            FileIngestionMethod::Flat => "",
            FileIngestionMethod::Recursive => "r:",
            FileIngestionMethod::Git => "git:",
        }
    }
}

/// A content address as found in the narinfo `CA` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContentAddress {
    /// `text:sha256:<h>`: `builtins.toFile` and `.drv` files.
    Text {
        /// sha256 of the file contents.
        hash: Hash,
    },
    /// A fixed-output path: `fixed:[r:|git:]<algo>:<hash>`.
    Fixed {
        /// How the contents were hashed.
        method: FileIngestionMethod,
        /// The hash of the contents (flat, NAR or git serialisation per `method`).
        hash: Hash,
    },
}

/// Why a content address could not be parsed or its path not recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CaError {
    /// Not `text:…` or `fixed:…`.
    #[error("content address '{0}' does not start with 'text:' or 'fixed:'")]
    BadPrefix(String),
    /// No `<algo>:` after the method.
    #[error("content address '{0}' has no '<algo>:<hash>' part")]
    MissingAlgo(String),
    /// The hash part did not parse.
    #[error("content address '{input}': {source}")]
    BadHash {
        /// The whole CA string.
        input: String,
        /// The hash error.
        source: HashError,
    },
    /// `text:` with a hash other than sha256.
    #[error("text content address must use sha256, not {0}")]
    TextNotSha256(HashAlgo),
    /// A text path that references itself.
    #[error("text content address with a self-reference ({0})")]
    TextSelfReference(String),
    /// A fixed-output path (other than `r:sha256`) with references.
    #[error("fixed-output content address '{0}' must not have references")]
    FixedWithReferences(String),
    /// Git hashing is not supported here.
    #[error("git content addresses are not supported ({0})")]
    GitUnsupported(String),
    /// The name is not a valid store path name.
    #[error("{0}")]
    BadName(#[from] StorePathError),
}

impl ContentAddress {
    /// Parses `text:<algo>:<h>`, `fixed:r:<algo>:<h>`, `fixed:git:<algo>:<h>` or
    /// `fixed:<algo>:<h>`, the digest in any encoding its length implies.
    pub fn parse(s: &str) -> Result<Self, CaError> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| CaError::BadPrefix(s.to_owned()))?;
        let (method, rest) = match kind {
            "text" => (None, rest),
            "fixed" => {
                if let Some(r) = rest.strip_prefix("r:") {
                    (Some(FileIngestionMethod::Recursive), r)
                } else if let Some(r) = rest.strip_prefix("git:") {
                    (Some(FileIngestionMethod::Git), r)
                } else {
                    (Some(FileIngestionMethod::Flat), rest)
                }
            }
            _ => return Err(CaError::BadPrefix(s.to_owned())),
        };
        if !rest.contains(':') {
            return Err(CaError::MissingAlgo(s.to_owned()));
        }
        // Nix parses the digest unprefixed (`parseNonSRIUnprefixed`), so no SRI here.
        let hash = Hash::parse(rest).map_err(|source| CaError::BadHash {
            input: s.to_owned(),
            source,
        })?;
        Ok(match method {
            None => ContentAddress::Text { hash },
            Some(method) => ContentAddress::Fixed { method, hash },
        })
    }

    /// The hash this content address names.
    pub fn hash(&self) -> &Hash {
        match self {
            ContentAddress::Text { hash } | ContentAddress::Fixed { hash, .. } => hash,
        }
    }
}

impl fmt::Display for ContentAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentAddress::Text { hash } => write!(f, "text:{}", hash.to_nix32()),
            ContentAddress::Fixed { method, hash } => {
                write!(f, "fixed:{}{}", method.prefix(), hash.to_nix32())
            }
        }
    }
}

impl FromStr for ContentAddress {
    type Err = CaError;
    fn from_str(s: &str) -> Result<Self, CaError> {
        ContentAddress::parse(s)
    }
}

/// Recomputes the store path of a content-addressed path the way Nix's
/// `ValidPathInfo::isContentAddressed` does. `references` may contain `self_path`
/// (a self-reference); order and duplicates do not matter.
pub fn compute_ca_path(
    name: &str,
    ca: &ContentAddress,
    references: &[StorePath],
    self_path: &StorePath,
) -> Result<StorePath, CaError> {
    compute_ca_path_in(STORE_DIR, name, ca, references, self_path)
}

/// [`compute_ca_path`] in the store directory `store_dir`, which is part of the hash (and of
/// each reference's full path in it).
pub fn compute_ca_path_in(
    store_dir: &str,
    name: &str,
    ca: &ContentAddress,
    references: &[StorePath],
    self_path: &StorePath,
) -> Result<StorePath, CaError> {
    let mut others: Vec<&StorePath> = references.iter().filter(|r| *r != self_path).collect();
    others.sort_unstable();
    others.dedup();
    let has_self = references.contains(self_path);

    let make_type = |kind: &str, with_self: bool| {
        let mut t = String::with_capacity(kind.len() + others.len() * 80 + 5);
        t.push_str(kind);
        for r in &others {
            t.push(':');
            t.push_str(store_dir);
            t.push('/');
            t.push_str(r.as_base_name());
        }
        if with_self {
            t.push_str(":self");
        }
        t
    };

    match ca {
        ContentAddress::Text { hash } => {
            if hash.algo() != HashAlgo::Sha256 {
                return Err(CaError::TextNotSha256(hash.algo()));
            }
            if has_self {
                return Err(CaError::TextSelfReference(self_path.in_dir(store_dir)));
            }
            Ok(make_store_path_in(
                store_dir,
                &make_type("text", false),
                hash,
                name,
            )?)
        }
        ContentAddress::Fixed {
            method: FileIngestionMethod::Git,
            ..
        } => Err(CaError::GitUnsupported(ca.to_string())),
        ContentAddress::Fixed {
            method: FileIngestionMethod::Recursive,
            hash,
        } if hash.algo() == HashAlgo::Sha256 => Ok(make_store_path_in(
            store_dir,
            &make_type("source", has_self),
            hash,
            name,
        )?),
        ContentAddress::Fixed { method, hash } => {
            if has_self || !others.is_empty() {
                return Err(CaError::FixedWithReferences(ca.to_string()));
            }
            let inner = Hash::sha256_of(
                format!("fixed:out:{}{}:", method.prefix(), hash.to_hex()).as_bytes(),
            );
            Ok(make_store_path_in(store_dir, "output:out", &inner, name)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> StorePath {
        StorePath::parse_any(s).unwrap()
    }

    #[test]
    fn parse_and_display() {
        let cases = [
            "text:sha256:1fcgpy7vc4ammr7s17j2xq88scswkgz23dqzc04g8sx5vcp2pppw",
            "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
            "fixed:sha256:00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq",
            "fixed:git:sha1:00bgd045z0d4icpbc2yyz4gx48ak44la",
            "fixed:r:sha1:00bgd045z0d4icpbc2yyz4gx48ak44la",
        ];
        for c in cases {
            let ca = ContentAddress::parse(c).unwrap();
            assert_eq!(ca.to_string(), c);
        }
        assert_eq!(
            ContentAddress::parse(
                "fixed:r:sha256:1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
            )
            .unwrap()
            .to_string(),
            "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"
        );
        assert!(matches!(
            ContentAddress::parse("fixed:r:sha256:04zwf"),
            Err(CaError::BadHash { .. })
        ));
        assert_eq!(
            ContentAddress::parse("nar:sha256:x")
                .unwrap_err()
                .to_string(),
            "content address 'nar:sha256:x' does not start with 'text:' or 'fixed:'"
        );
        assert_eq!(
            ContentAddress::parse("fixed:r:abc")
                .unwrap_err()
                .to_string(),
            "content address 'fixed:r:abc' has no '<algo>:<hash>' part"
        );
        assert_eq!(
            ContentAddress::parse("text:sha256:abc")
                .unwrap_err()
                .to_string(),
            "content address 'text:sha256:abc': hash 'sha256:abc' has wrong length 3 for sha256 (expected 52 nix32, 64 base16 or 44 base64 characters)"
        );
    }

    #[test]
    fn recompute_doc_paths() {
        let foo = sp("/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo");
        let ca = ContentAddress::Text {
            hash: Hash::sha256_of(b"bar"),
        };
        assert_eq!(compute_ca_path("foo", &ca, &[], &foo).unwrap(), foo);

        let baz = sp("/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz");
        let ca = ContentAddress::Text {
            hash: Hash::sha256_of(foo.to_string().as_bytes()),
        };
        assert_eq!(
            compute_ca_path("baz", &ca, &[foo.clone(), foo.clone()], &baz).unwrap(),
            baz
        );
        assert!(matches!(
            compute_ca_path("baz", &ca, std::slice::from_ref(&baz), &baz),
            Err(CaError::TextSelfReference(_))
        ));

        let hello = sp("/nix/store/i9pmrzmpshapij2kin22pff6fc2adavx-hello.txt");
        let ca = ContentAddress::parse(
            "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
        )
        .unwrap();
        assert_eq!(
            compute_ca_path("hello.txt", &ca, &[], &hello).unwrap(),
            hello
        );
        // A self-reference changes the path (":self" is hashed in).
        assert_ne!(
            compute_ca_path("hello.txt", &ca, std::slice::from_ref(&hello), &hello).unwrap(),
            hello
        );

        let fixed = sp("/nix/store/gy454w1cxaq731grqwylhzf4pp9r5izh-hello.txt");
        let ca = ContentAddress::parse(
            "fixed:sha256:00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq",
        )
        .unwrap();
        assert_eq!(ca.hash(), &Hash::sha256_of(b"hello\n"));
        assert_eq!(
            compute_ca_path("hello.txt", &ca, &[], &fixed).unwrap(),
            fixed
        );
        assert!(matches!(
            compute_ca_path("hello.txt", &ca, std::slice::from_ref(&foo), &fixed),
            Err(CaError::FixedWithReferences(_))
        ));

        let git = ContentAddress::parse("fixed:git:sha1:00bgd045z0d4icpbc2yyz4gx48ak44la").unwrap();
        assert!(matches!(
            compute_ca_path("x", &git, &[], &fixed),
            Err(CaError::GitUnsupported(_))
        ));
        assert!(matches!(
            compute_ca_path(
                "bad name",
                &ContentAddress::Text {
                    hash: Hash::sha256_of(b"")
                },
                &[],
                &fixed
            ),
            Err(CaError::BadName(_))
        ));
    }
}
