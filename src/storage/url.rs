//! Cache URLs in Nix store-URL syntax: `s3://bucket[/prefix]?…`, `file:///path` (or a plain
//! path), and `http(s)://host[:port][/path]?…` (a read-only HTTP binary cache).
//!
//! S3 parameters understood here: `region`, `endpoint`, `scheme`, `profile`, `addressing-style`.
//! HTTP parameter understood here: `netrc-file` (Basic-auth credentials, as Nix's setting).
//! Nix's other store parameters (`compression`, `secret-key`, `write-nar-listing`, …) are checked
//! by [`StoreParams`]: each is honoured by narscope's writers or refused here, before any request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::params::{ParamError, Scheme, StoreParams};

/// A parsed cache location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheUrl {
    /// An S3 (or S3-compatible) bucket, optionally below a key prefix.
    S3(S3Url),
    /// A local directory used as a `file://` binary cache (always an absolute path), with
    /// the URL's store parameters.
    File(PathBuf, StoreParams),
    /// An HTTP(S) binary cache (read-only), as Nix's `http://` and `https://` stores.
    Http(HttpUrl),
}

/// An `http://` or `https://` cache URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `true` for `https://`.
    pub https: bool,
    /// The host, lower-cased (an IPv6 address in brackets).
    pub host: String,
    /// The port, when the URL gives one other than the scheme's default.
    pub port: Option<u16>,
    /// The path below which the cache lives, percent-encoded as in the URL: `""` or `"/a/b"`
    /// (no trailing slash).
    pub path: String,
    /// `netrc-file=`: where Basic-auth credentials come from (else nix.conf's `netrc-file`,
    /// else `$NIX_CONF_DIR/netrc`).
    pub netrc_file: Option<PathBuf>,
    /// The other (Nix) store parameters.
    pub params: StoreParams,
}

impl HttpUrl {
    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// `scheme://host[:port][/path]`, without parameters and without a trailing slash.
    pub fn base(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}{}", self.scheme(), self.host, self.path),
            None => format!("{}://{}{}", self.scheme(), self.host, self.path),
        }
    }

    /// The URL of the object at `key` (relative to the cache root; percent-encoded here).
    pub fn object_url(&self, key: &str) -> String {
        let mut out = self.base();
        out.push('/');
        out.push_str(&encode_bytes(key.as_bytes(), b"-._~/"));
        out
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base())?;
        let netrc = self
            .netrc_file
            .as_ref()
            .map(|p| ("netrc-file", p.to_string_lossy().into_owned()));
        let q = netrc.iter().map(|(k, v)| (*k, v.as_str())).chain(
            self.params
                .raw
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        write_query(f, q)
    }
}

/// An `s3://` cache URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket name.
    pub bucket: String,
    /// Key prefix below which the cache lives: `""` or `"a/b"` (no slash at either end).
    pub prefix: String,
    /// `region=`; `None` means "infer from the endpoint host, else the AWS chain, else us-east-1".
    pub region: Option<String>,
    /// Full endpoint URL (`scheme://host[:port]`) after applying `scheme=`; `None` means AWS S3.
    pub endpoint: Option<String>,
    /// `profile=`: the AWS profile used for credentials.
    pub profile: Option<String>,
    /// How buckets are addressed (`addressing-style=`).
    pub addressing: AddressingStyle,
    /// The other (Nix) store parameters.
    pub params: StoreParams,
}

/// How the bucket is put into request URLs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddressingStyle {
    /// Virtual-hosted for AWS; path-style for custom endpoints and for buckets containing dots.
    #[default]
    Auto,
    /// Path style: `https://endpoint/bucket/key`.
    Path,
    /// Virtual-hosted style: `https://bucket.endpoint/key`.
    Virtual,
}

/// A cache URL that could not be parsed; names the URL and says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("invalid cache URL `{url}`: {reason}")]
pub struct UrlError {
    /// The URL as given.
    pub url: String,
    /// What is wrong, with advice.
    pub reason: UrlProblem,
}

/// What is wrong with a cache URL (the text says what to write instead, where it can).
#[derive(Debug, thiserror::Error)]
pub enum UrlProblem {
    /// Nothing but white space.
    #[error("the URL is empty")]
    Empty,
    /// A scheme other than `s3://`, `file://`, `http://` and `https://`; `advice` is empty or
    /// starts with a space.
    #[error(
        "unsupported scheme `{scheme}://`; use s3://bucket[/prefix]?…, file:///absolute/path or \
         https://host[/path] (read-only){advice}"
    )]
    Scheme {
        /// The scheme, lower-cased.
        scheme: String,
        /// What to write for a known other scheme (http(s), gs).
        advice: &'static str,
    },
    /// A relative path whose absolute form cannot be found.
    #[error("cannot make the relative path absolute against the current directory: {0}")]
    NotAbsolute(std::io::Error),
    /// A `#` in an `s3://` URL.
    #[error("`#` is not allowed in an s3:// URL")]
    Fragment,
    /// `s3://` with no bucket.
    #[error("the bucket name is empty; write s3://<bucket>[/prefix]")]
    NoBucket,
    /// A bucket name with a character S3 does not allow.
    #[error(
        "bucket name `{bucket}` contains `{ch}`; bucket names use letters, digits, `.`, `-` and `_` \
         (the endpoint goes in `?endpoint=…`, not in the bucket part)"
    )]
    BucketChar {
        /// The bucket part as written.
        bucket: String,
        /// The first character not allowed.
        ch: char,
    },
    /// A key prefix that would leave the bucket's namespace or name nothing.
    #[error("key prefix `{0}` has an empty, `.` or `..` segment")]
    PrefixSegment(String),
    /// `?=value` without a parameter name.
    #[error("parameter `={0}` has no name")]
    Nameless(String),
    /// An S3 connection parameter given twice.
    #[error("parameter `{0}` is given twice")]
    Twice(String),
    /// `region=` with no value.
    #[error("region= is empty")]
    EmptyRegion,
    /// `endpoint=` with no value.
    #[error("endpoint= is empty (leave it out for AWS S3)")]
    EmptyEndpoint,
    /// `scheme=` other than http or https.
    #[error("scheme must be http or https, not `{0}`")]
    SchemeParam(String),
    /// `addressing-style=` other than auto, path or virtual.
    #[error("addressing-style must be auto, path or virtual, not `{0}`")]
    AddressingStyle(String),
    /// `scheme=http` for AWS itself.
    #[error("scheme=http needs an endpoint=host:port (AWS S3 is only reached over https)")]
    HttpWithoutEndpoint,
    /// An endpoint with another scheme than http(s).
    #[error("endpoint `{0}` must be an http:// or https:// URL or a bare host[:port]")]
    EndpointScheme(String),
    /// `scheme=` and the endpoint's own scheme disagree.
    #[error(
        "scheme={scheme} contradicts endpoint `{endpoint}`; drop scheme= (it is deprecated) and keep the full endpoint URL"
    )]
    SchemeContradicts {
        /// The `scheme=` value.
        scheme: String,
        /// The endpoint as written.
        endpoint: String,
    },
    /// An endpoint that is not a URL.
    #[error("endpoint `{endpoint}` is not a valid URL: {cause}")]
    EndpointInvalid {
        /// The endpoint as written.
        endpoint: String,
        /// Why it does not parse.
        cause: url::ParseError,
    },
    /// An endpoint without a host.
    #[error("endpoint `{0}` has no host")]
    EndpointNoHost(String),
    /// An endpoint with `user:password@`.
    #[error(
        "the endpoint must not contain user info; credentials come from the AWS environment, \
         profile files or `profile=`"
    )]
    EndpointUserInfo,
    /// An endpoint with a query or fragment.
    #[error(
        "endpoint `{0}` has a query or fragment; percent-encode it (endpoint=…%3F…) or remove it"
    )]
    EndpointQuery(String),
    /// An endpoint with a path; `advice` is empty or says where the bucket goes.
    #[error(
        "endpoint `{endpoint}` has a path `/{path}`; an S3 endpoint is scheme://host[:port] only{advice}"
    )]
    EndpointPath {
        /// The endpoint as written.
        endpoint: String,
        /// The path, without its leading `/`.
        path: String,
        /// Empty, or `; the bucket goes in the s3:// part, …`.
        advice: String,
    },
    /// A bucket's own ("origin") host given as the endpoint.
    #[error(
        "the endpoint host `{host}` starts with the bucket name `{bucket}` (the bucket's \
         \"origin\" URL, e.g. as shown by the DigitalOcean console); S3 clients add the bucket \
         themselves, so give the service endpoint instead: {suggestion}"
    )]
    BucketHost {
        /// The endpoint's host.
        host: String,
        /// The bucket name, as in the URL.
        bucket: String,
        /// The URL to write instead.
        suggestion: String,
    },
    /// `file://` with nothing after it.
    #[error("file:// needs a path: file:///absolute/path")]
    FileNoPath,
    /// `file://relative`, which would name a host.
    #[error(
        "file:// URLs need an absolute path: `file://{loc}` would name the host `{host}`; \
         write file:///absolute/path, or give a plain (possibly relative) path without file://"
    )]
    FileRelative {
        /// What follows `file://`.
        loc: String,
        /// Its first segment, which a URL reader would take for a host.
        host: String,
    },
    /// An `http(s)://` URL that does not parse.
    #[error("not a valid http(s) URL: {0}")]
    HttpInvalid(url::ParseError),
    /// An `http(s)://` URL without a host.
    #[error("the host is empty; write http(s)://host[:port][/path]")]
    HttpNoHost,
    /// Credentials in an `http(s)://` URL.
    #[error(
        "the URL must not contain user:password@; put the credentials in a netrc file \
         (`machine HOST login USER password …`) and name it with ?netrc-file=/path or nix.conf's \
         netrc-file (a URL gets printed and logged, a netrc file does not)"
    )]
    HttpUserInfo,
    /// A `#` in an `http(s)://` URL.
    #[error("`#` is not allowed in an http(s) cache URL")]
    HttpFragment,
    /// An S3-only parameter in an `http(s)://` URL.
    #[error(
        "`{0}` applies to s3:// caches only; an http(s) cache is read-only here (write to the \
         bucket it serves, with an s3:// URL)"
    )]
    HttpS3Only(String),
    /// `netrc-file=` with no file.
    #[error("netrc-file= is empty")]
    EmptyNetrcFile,
    /// A `%` not followed by two hex digits.
    #[error("bad percent-escape in `{0}`")]
    BadEscape(String),
    /// Percent-escapes that decode to bytes that are not UTF-8.
    #[error("`{0}` decodes to invalid UTF-8")]
    NotUtf8(String),
    /// A Nix store parameter that is refused.
    #[error(transparent)]
    Param(#[from] ParamError),
}

impl AddressingStyle {
    /// The parameter value: `auto`, `path` or `virtual`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressingStyle::Auto => "auto",
            AddressingStyle::Path => "path",
            AddressingStyle::Virtual => "virtual",
        }
    }
}

impl fmt::Display for AddressingStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AddressingStyle {
    type Err = UrlProblem;
    fn from_str(s: &str) -> Result<Self, UrlProblem> {
        match s {
            "auto" => Ok(AddressingStyle::Auto),
            "path" => Ok(AddressingStyle::Path),
            "virtual" => Ok(AddressingStyle::Virtual),
            other => Err(UrlProblem::AddressingStyle(other.to_string())),
        }
    }
}

impl CacheUrl {
    /// Parses `s3://…`, `file:///…` or a plain path (a relative path is made absolute against
    /// the current directory).
    pub fn parse(s: &str) -> Result<CacheUrl, UrlError> {
        let err = |reason: UrlProblem| UrlError {
            url: s.to_string(),
            reason,
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(err(UrlProblem::Empty));
        }
        if let Some(rest) = strip_prefix_ci(t, "s3://") {
            return parse_s3(rest).map(CacheUrl::S3).map_err(err);
        }
        if let Some(rest) = strip_prefix_ci(t, "file://") {
            return parse_file(rest)
                .map(|(p, params)| CacheUrl::File(p, params))
                .map_err(err);
        }
        if let Some(rest) = strip_prefix_ci(t, "http://") {
            return parse_http(false, rest).map(CacheUrl::Http).map_err(err);
        }
        if let Some(rest) = strip_prefix_ci(t, "https://") {
            return parse_http(true, rest).map(CacheUrl::Http).map_err(err);
        }
        if let Some(idx) = t.find("://") {
            let scheme = t.get(..idx).unwrap_or_default().to_ascii_lowercase();
            let advice = match scheme.as_str() {
                "gs" | "gcs" => {
                    " (Google Cloud Storage: use its S3 interoperability endpoint, s3://<bucket>?endpoint=https://storage.googleapis.com)"
                }
                _ => "",
            };
            return Err(err(UrlProblem::Scheme { scheme, advice }));
        }
        let path = Path::new(t);
        let abs = std::path::absolute(path).map_err(|e| err(UrlProblem::NotAbsolute(e)))?;
        Ok(CacheUrl::File(abs, StoreParams::default()))
    }

    /// A `file://` cache at `path` without parameters.
    pub fn file(path: impl Into<PathBuf>) -> CacheUrl {
        CacheUrl::File(path.into(), StoreParams::default())
    }

    /// The URL's store parameters.
    pub fn params(&self) -> &StoreParams {
        match self {
            CacheUrl::S3(u) => &u.params,
            CacheUrl::File(_, p) => p,
            CacheUrl::Http(u) => &u.params,
        }
    }

    /// Whether this is an `http(s)://` cache, which narscope reads but cannot list or write.
    pub fn is_http(&self) -> bool {
        matches!(self, CacheUrl::Http(_))
    }

    /// A short human label: the URL without its query.
    pub fn short(&self) -> String {
        match self {
            CacheUrl::S3(u) => u.base(),
            CacheUrl::File(p, _) => format!("file://{}", encode_path(p)),
            CacheUrl::Http(u) => u.base(),
        }
    }
}

impl FromStr for CacheUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        CacheUrl::parse(s)
    }
}

impl fmt::Display for CacheUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheUrl::S3(u) => u.fmt(f),
            CacheUrl::File(p, params) => {
                write!(f, "file://{}", encode_path(p))?;
                write_query(f, params.raw.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            }
            CacheUrl::Http(u) => u.fmt(f),
        }
    }
}

impl S3Url {
    /// A plain `s3://bucket` URL with defaults.
    pub fn new(bucket: impl Into<String>) -> S3Url {
        S3Url {
            bucket: bucket.into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            profile: None,
            addressing: AddressingStyle::Auto,
            params: StoreParams::default(),
        }
    }

    /// `s3://bucket[/prefix]` without parameters.
    pub fn base(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The prefix as it is put in front of every key: `""` or `"a/b/"`.
    pub fn key_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    /// Whether requests use path-style addressing, resolving [`AddressingStyle::Auto`].
    pub fn path_style(&self) -> bool {
        match self.addressing {
            AddressingStyle::Path => true,
            AddressingStyle::Virtual => false,
            AddressingStyle::Auto => self.endpoint.is_some() || self.bucket.contains('.'),
        }
    }

    /// The value of another (Nix) parameter, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The region implied by a well-known provider endpoint host (AWS, DigitalOcean Spaces,
    /// Backblaze B2, Cloudflare R2), if any.
    pub fn inferred_region(&self) -> Option<String> {
        let ep = self.endpoint.as_deref()?;
        let host = url::Url::parse(ep).ok()?.host_str()?.to_ascii_lowercase();
        region_from_host(&host)
    }
}

/// Region encoded in a provider's endpoint host name.
fn region_from_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    if host.ends_with(".r2.cloudflarestorage.com") {
        return Some("auto".into());
    }
    if let Some(rest) = host.strip_suffix(".digitaloceanspaces.com") {
        return rest.rsplit('.').next().map(str::to_string);
    }
    if host.ends_with(".backblazeb2.com") {
        // s3.<region>.backblazeb2.com
        return labels
            .iter()
            .position(|l| *l == "s3")
            .and_then(|i| labels.get(i + 1))
            .filter(|r| **r != "backblazeb2")
            .map(|r| r.to_string());
    }
    if host.ends_with(".amazonaws.com") {
        // s3.<region>.amazonaws.com, s3-<region>.amazonaws.com, bucket.s3.<region>.amazonaws.com
        for (i, l) in labels.iter().enumerate() {
            if *l == "s3" {
                let next = labels.get(i + 1)?;
                return if *next == "amazonaws" {
                    Some("us-east-1".into())
                } else {
                    Some(next.to_string())
                };
            }
            if let Some(r) = l.strip_prefix("s3-") {
                return Some(r.to_string());
            }
        }
    }
    None
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base())?;
        let mut q: Vec<(&str, &str)> = Vec::new();
        if let Some(e) = &self.endpoint {
            q.push(("endpoint", e));
        }
        if let Some(r) = &self.region {
            q.push(("region", r));
        }
        if let Some(p) = &self.profile {
            q.push(("profile", p));
        }
        if self.addressing != AddressingStyle::Auto {
            q.push(("addressing-style", self.addressing.as_str()));
        }
        for (k, v) in &self.params.raw {
            q.push((k, v));
        }
        write_query(f, q.into_iter())
    }
}

fn write_query<'a>(
    f: &mut fmt::Formatter<'_>,
    q: impl Iterator<Item = (&'a str, &'a str)>,
) -> fmt::Result {
    for (i, (k, v)) in q.enumerate() {
        let sep = if i == 0 { '?' } else { '&' };
        write!(f, "{sep}{}={}", encode_component(k), encode_component(v))?;
    }
    Ok(())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn parse_s3(rest: &str) -> Result<S3Url, UrlProblem> {
    let (location, query) = match rest.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (rest, None),
    };
    if location.contains('#') {
        return Err(UrlProblem::Fragment);
    }
    let (bucket, prefix) = match location.split_once('/') {
        Some((b, p)) => (b, p.trim_matches('/')),
        None => (location, ""),
    };
    if bucket.is_empty() {
        return Err(UrlProblem::NoBucket);
    }
    if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(UrlProblem::BucketChar {
            bucket: bucket.to_string(),
            ch: c,
        });
    }
    let prefix = percent_decode(prefix)?;
    if prefix
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        && !prefix.is_empty()
    {
        return Err(UrlProblem::PrefixSegment(prefix));
    }

    let mut url = S3Url::new(bucket);
    url.prefix = prefix;
    let mut scheme: Option<String> = None;
    let mut endpoint_raw: Option<String> = None;
    let mut seen: Vec<String> = Vec::new();
    let mut store: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        if k.is_empty() {
            if v.is_empty() {
                continue;
            }
            return Err(UrlProblem::Nameless(v));
        }
        let own = matches!(
            k.as_str(),
            "region" | "endpoint" | "scheme" | "profile" | "addressing-style"
        );
        if own {
            if seen.contains(&k) {
                return Err(UrlProblem::Twice(k));
            }
            seen.push(k.clone());
        }
        match k.as_str() {
            "region" => {
                if v.is_empty() {
                    return Err(UrlProblem::EmptyRegion);
                }
                url.region = Some(v);
            }
            "endpoint" => {
                if v.is_empty() {
                    return Err(UrlProblem::EmptyEndpoint);
                }
                endpoint_raw = Some(v);
            }
            "scheme" => match v.as_str() {
                "http" | "https" => scheme = Some(v),
                _ => return Err(UrlProblem::SchemeParam(v)),
            },
            "profile" => {
                if !v.is_empty() {
                    url.profile = Some(v);
                }
            }
            "addressing-style" => url.addressing = v.parse()?,
            _ => store.push((k, v)),
        }
    }
    url.params = StoreParams::parse(store, Scheme::S3)?;
    match endpoint_raw {
        Some(raw) => url.endpoint = Some(normalize_endpoint(&raw, scheme.as_deref(), &url.bucket)?),
        None => {
            if scheme.as_deref() == Some("http") {
                return Err(UrlProblem::HttpWithoutEndpoint);
            }
        }
    }
    Ok(url)
}

/// Turns `endpoint=` (full URL or bare `host[:port]`) into `scheme://host[:port]`.
fn normalize_endpoint(raw: &str, scheme: Option<&str>, bucket: &str) -> Result<String, UrlProblem> {
    let full = if let Some((s, _)) = raw.split_once("://") {
        let s = s.to_ascii_lowercase();
        if s != "http" && s != "https" {
            return Err(UrlProblem::EndpointScheme(raw.to_string()));
        }
        if let Some(sch) = scheme
            && sch != s
        {
            return Err(UrlProblem::SchemeContradicts {
                scheme: sch.to_string(),
                endpoint: raw.to_string(),
            });
        }
        raw.to_string()
    } else {
        format!("{}://{raw}", scheme.unwrap_or("https"))
    };
    let parsed = url::Url::parse(&full).map_err(|cause| UrlProblem::EndpointInvalid {
        endpoint: raw.to_string(),
        cause,
    })?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| UrlProblem::EndpointNoHost(raw.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlProblem::EndpointUserInfo);
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(UrlProblem::EndpointQuery(raw.to_string()));
    }
    let path = parsed.path().trim_matches('/');
    if !path.is_empty() {
        let advice = if path == bucket || path.starts_with(&format!("{bucket}/")) {
            format!(
                "; the bucket goes in the s3:// part, so use endpoint={}://{}",
                parsed.scheme(),
                host_port(&parsed, host)
            )
        } else {
            String::new()
        };
        return Err(UrlProblem::EndpointPath {
            endpoint: raw.to_string(),
            path: path.to_string(),
            advice,
        });
    }
    let lower = host.to_ascii_lowercase();
    let bucket_l = bucket.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix(&format!("{bucket_l}."))
        && rest.contains('.')
    {
        let suggestion = if rest.ends_with("amazonaws.com") {
            match region_from_host(rest) {
                Some(r) => format!("s3://{bucket}?region={r} (no endpoint is needed for AWS S3)"),
                None => format!("s3://{bucket} (no endpoint is needed for AWS S3)"),
            }
        } else {
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let ep = format!("{}://{rest}{port}", parsed.scheme());
            match region_from_host(rest) {
                Some(r) => format!("s3://{bucket}?endpoint={ep}&region={r}"),
                None => format!("s3://{bucket}?endpoint={ep}"),
            }
        };
        return Err(UrlProblem::BucketHost {
            host: host.to_string(),
            bucket: bucket.to_string(),
            suggestion,
        });
    }
    Ok(format!(
        "{}://{}",
        parsed.scheme(),
        host_port(&parsed, host)
    ))
}

fn host_port(u: &url::Url, host: &str) -> String {
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Parameters of Nix's S3 store that mean nothing for an HTTP cache.
const S3_ONLY_FOR_HTTP: &[&str] = &[
    "region",
    "endpoint",
    "scheme",
    "profile",
    "addressing-style",
    "storage-class",
    "multipart-upload",
    "multipart-threshold",
    "multipart-chunk-size",
    "buffer-size",
];

fn parse_http(https: bool, rest: &str) -> Result<HttpUrl, UrlProblem> {
    let (loc, query) = match rest.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (rest, None),
    };
    if loc.contains('#') || query.is_some_and(|q| q.contains('#')) {
        return Err(UrlProblem::HttpFragment);
    }
    let scheme = if https { "https" } else { "http" };
    let parsed = url::Url::parse(&format!("{scheme}://{loc}")).map_err(|e| match e {
        url::ParseError::EmptyHost => UrlProblem::HttpNoHost,
        e => UrlProblem::HttpInvalid(e),
    })?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(UrlProblem::HttpNoHost)?
        .to_ascii_lowercase();
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlProblem::HttpUserInfo);
    }
    let mut netrc_file = None;
    let mut store: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        if k.is_empty() {
            if v.is_empty() {
                continue;
            }
            return Err(UrlProblem::Nameless(v));
        }
        if S3_ONLY_FOR_HTTP.contains(&k.as_str()) {
            return Err(UrlProblem::HttpS3Only(k));
        }
        if k == "netrc-file" {
            if netrc_file.is_some() {
                return Err(UrlProblem::Twice(k));
            }
            if v.is_empty() {
                return Err(UrlProblem::EmptyNetrcFile);
            }
            netrc_file = Some(PathBuf::from(v));
            continue;
        }
        store.push((k, v));
    }
    let params = StoreParams::parse(store, Scheme::S3)?;
    Ok(HttpUrl {
        https,
        host,
        port: parsed.port(),
        path: parsed.path().trim_end_matches('/').to_string(),
        netrc_file,
        params,
    })
}

fn parse_file(rest: &str) -> Result<(PathBuf, StoreParams), UrlProblem> {
    let (loc, query) = match rest.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (rest, None),
    };
    if loc.is_empty() {
        return Err(UrlProblem::FileNoPath);
    }
    if !loc.starts_with('/') {
        return Err(UrlProblem::FileRelative {
            loc: loc.to_string(),
            host: loc.split('/').next().unwrap_or_default().to_string(),
        });
    }
    let mut pairs = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k.is_empty() {
            if v.is_empty() {
                continue;
            }
            return Err(UrlProblem::Nameless(v.into_owned()));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    let params = StoreParams::parse(pairs, Scheme::File)?;
    let decoded = percent_decode(loc)?;
    Ok((PathBuf::from(decoded), params))
}

fn percent_decode(s: &str) -> Result<String, UrlProblem> {
    let mut out = Vec::with_capacity(s.len());
    let raw = s.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let b = raw.get(i).copied().unwrap_or_default();
        if b == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UrlProblem::BadEscape(s.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlProblem::NotUtf8(s.to_string()))
}

fn encode_bytes(s: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_component(s: &str) -> String {
    encode_bytes(s.as_bytes(), b"-._~:/@,!$'()*;[]")
}

fn encode_path(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    encode_bytes(p.as_os_str().as_bytes(), b"-._~:/@,!$'()*;=+&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(s: &str) -> S3Url {
        match CacheUrl::parse(s) {
            Ok(CacheUrl::S3(u)) => u,
            other => panic!("{s}: expected an S3 URL, got {other:?}"),
        }
    }

    fn bad(s: &str) -> String {
        match CacheUrl::parse(s) {
            Err(e) => e.to_string(),
            Ok(u) => panic!("{s}: expected an error, got {u:?}"),
        }
    }

    #[test]
    fn aws() {
        let u = s3("s3://bkt?region=eu-west-1");
        assert_eq!(u.bucket, "bkt");
        assert_eq!(u.prefix, "");
        assert_eq!(u.region.as_deref(), Some("eu-west-1"));
        assert_eq!(u.endpoint, None);
        assert!(!u.path_style(), "AWS uses virtual-hosted addressing");
        assert_eq!(u.to_string(), "s3://bkt?region=eu-west-1");
        // dotted bucket names force path style on AWS too
        assert!(s3("s3://my.bkt").path_style());
        assert!(!s3("s3://bkt?addressing-style=virtual").path_style());
    }

    #[test]
    fn provider_examples() {
        // (url, endpoint, region given, inferred region)
        let cases = [
            (
                "s3://bkt?endpoint=http://127.0.0.1:3900&region=garage",
                "http://127.0.0.1:3900",
                Some("garage"),
                None,
            ),
            (
                "s3://bkt?endpoint=https://nyc3.digitaloceanspaces.com&region=nyc3",
                "https://nyc3.digitaloceanspaces.com",
                Some("nyc3"),
                Some("nyc3"),
            ),
            (
                "s3://bkt?endpoint=https://s3.us-west-004.backblazeb2.com&region=us-west-004",
                "https://s3.us-west-004.backblazeb2.com",
                Some("us-west-004"),
                Some("us-west-004"),
            ),
            (
                "s3://bkt?endpoint=https://0123abcd.r2.cloudflarestorage.com&region=auto",
                "https://0123abcd.r2.cloudflarestorage.com",
                Some("auto"),
                Some("auto"),
            ),
            (
                "s3://nix?endpoint=http://minio.local:9000/&region=us-east-1",
                "http://minio.local:9000",
                Some("us-east-1"),
                None,
            ),
            (
                "s3://bkt?endpoint=https://s3.eu-central-1.amazonaws.com",
                "https://s3.eu-central-1.amazonaws.com",
                None,
                Some("eu-central-1"),
            ),
        ];
        for (url, ep, region, inferred) in cases {
            let u = s3(url);
            assert_eq!(u.endpoint.as_deref(), Some(ep), "{url}");
            assert_eq!(u.region.as_deref(), region, "{url}");
            assert_eq!(u.inferred_region().as_deref(), inferred, "{url}");
            assert!(u.path_style(), "{url}: custom endpoints use path style");
        }
    }

    #[test]
    fn scheme_and_bare_host() {
        let u = s3("s3://bkt?endpoint=127.0.0.1:3900&scheme=http");
        assert_eq!(u.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        // scheme is folded into the endpoint and not repeated
        assert_eq!(u.to_string(), "s3://bkt?endpoint=http://127.0.0.1:3900");
        let u = s3("s3://bkt?endpoint=minio.example.com");
        assert_eq!(u.endpoint.as_deref(), Some("https://minio.example.com"));
        let u = s3("s3://bkt?scheme=https&endpoint=https://minio.example.com:9443");
        assert_eq!(
            u.endpoint.as_deref(),
            Some("https://minio.example.com:9443")
        );
    }

    #[test]
    fn prefixes() {
        let u = s3("s3://bkt/caches/nix/?region=us-east-1");
        assert_eq!(u.prefix, "caches/nix");
        assert_eq!(u.key_prefix(), "caches/nix/");
        assert_eq!(u.base(), "s3://bkt/caches/nix");
        assert_eq!(s3("s3://bkt/").prefix, "");
        assert_eq!(s3("s3://bkt").key_prefix(), "");
        assert_eq!(s3("s3://bkt/a%20b").prefix, "a b");
    }

    #[test]
    fn nix_params_kept() {
        let u = s3(
            "s3://bkt?compression=zstd&secret-key=/etc/nix/key.sec&write-nar-listing=true&parallel-compression=1&priority=30&want-mass-query=true&trusted=1&multipart-upload=true&retry-attempts=3&profile=ci",
        );
        assert_eq!(u.param("compression"), Some("zstd"));
        assert_eq!(u.param("secret-key"), Some("/etc/nix/key.sec"));
        assert_eq!(u.param("retry-attempts"), Some("3"));
        assert_eq!(u.params.raw.len(), 9);
        assert_eq!(
            u.to_string(),
            "s3://bkt?profile=ci&compression=zstd&secret-key=/etc/nix/key.sec&write-nar-listing=true&parallel-compression=1&priority=30&want-mass-query=true&trusted=1&multipart-upload=true&retry-attempts=3"
        );
        let f = CacheUrl::parse("file:///srv/c?compression=xz&write-nar-listing=1").unwrap();
        assert_eq!(
            f.params().compression,
            Some(crate::compression::Compression::Xz)
        );
        assert_eq!(
            f.to_string(),
            "file:///srv/c?compression=xz&write-nar-listing=1"
        );
        assert_eq!(u.profile.as_deref(), Some("ci"));
    }

    #[test]
    fn bucket_in_endpoint() {
        let e = bad("s3://mybkt?endpoint=https://mybkt.nyc3.digitaloceanspaces.com");
        assert!(e.contains("starts with the bucket name"), "{e}");
        assert!(
            e.contains("s3://mybkt?endpoint=https://nyc3.digitaloceanspaces.com&region=nyc3"),
            "{e}"
        );
        let e = bad("s3://mybkt?endpoint=https://mybkt.s3.eu-west-1.amazonaws.com");
        assert!(e.contains("s3://mybkt?region=eu-west-1"), "{e}");
        let e = bad("s3://mybkt?endpoint=https://nyc3.digitaloceanspaces.com/mybkt");
        assert!(
            e.contains("use endpoint=https://nyc3.digitaloceanspaces.com"),
            "{e}"
        );
        // a bucket literally named like a single-label host is fine
        let u = s3("s3://localhost?endpoint=http://localhost:3900");
        assert_eq!(u.endpoint.as_deref(), Some("http://localhost:3900"));
    }

    #[test]
    fn bad_urls() {
        let table = [
            ("", "empty"),
            ("s3://", "bucket name is empty"),
            ("s3:///prefix", "bucket name is empty"),
            ("s3://bkt?region=", "region= is empty"),
            ("s3://bkt?endpoint=", "endpoint= is empty"),
            ("gs://bkt", "unsupported scheme `gs://`"),
            ("ftp://cache.nixos.org", "unsupported scheme `ftp://`"),
            ("https://u:p@cache.example.org", "netrc"),
            ("https://", "host is empty"),
            ("https://c.example.org/x#frag", "`#` is not allowed"),
            ("https://c.example.org?region=eu", "s3:// caches only"),
            ("https://c.example.org?netrc-file=", "netrc-file= is empty"),
            (
                "https://c.example.org?netrc-file=/a&netrc-file=/b",
                "given twice",
            ),
            (
                "https://c.example.org?colour=blue",
                "unknown parameter `colour`",
            ),
            ("s3://bkt?colour=blue", "unknown parameter `colour`"),
            ("s3://bkt?region=a&region=b", "given twice"),
            (
                "s3://bkt?scheme=ftp&endpoint=h:1",
                "scheme must be http or https",
            ),
            ("s3://bkt?scheme=http", "needs an endpoint"),
            (
                "s3://bkt?endpoint=ftp://h:1",
                "must be an http:// or https://",
            ),
            ("s3://bkt?endpoint=https://h:1&scheme=http", "contradicts"),
            (
                "s3://bkt?addressing-style=sideways",
                "addressing-style must be",
            ),
            ("s3://bkt?endpoint=https://u:p@h", "user info"),
            ("s3://b/k?x", "unknown parameter `x`"),
            ("s3://bk t", "contains ` `"),
            ("s3://bkt/a//b", "empty, `.` or `..` segment"),
            ("s3://bkt/a/../b", "empty, `.` or `..` segment"),
            ("file://relative/dir", "need an absolute path"),
            ("file://", "needs a path"),
            (
                "file:///srv/cache?colour=blue",
                "unknown parameter `colour`",
            ),
        ];
        for (url, want) in table {
            let e = bad(url);
            assert!(e.contains(want), "{url:?}: {e}");
            assert!(e.contains(&format!("`{url}`")), "error names the URL: {e}");
        }
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            CacheUrl::parse("file:///srv/nix%20cache").ok(),
            Some(CacheUrl::file(PathBuf::from("/srv/nix cache")))
        );
        assert_eq!(
            CacheUrl::parse("file:///srv/cache?compression=zstd")
                .ok()
                .map(|u| u.short()),
            Some("file:///srv/cache".to_string())
        );
        assert_eq!(
            CacheUrl::parse("/abs/dir").ok(),
            Some(CacheUrl::file(PathBuf::from("/abs/dir")))
        );
        let cwd = std::env::current_dir().unwrap_or_default();
        assert_eq!(
            CacheUrl::parse("rel/cache").ok(),
            Some(CacheUrl::file(cwd.join("rel/cache")))
        );
        assert_eq!(
            CacheUrl::file(PathBuf::from("/srv/nix cache")).to_string(),
            "file:///srv/nix%20cache"
        );
    }

    #[test]
    fn http_urls() {
        let http = |s: &str| match CacheUrl::parse(s) {
            Ok(CacheUrl::Http(u)) => u,
            other => panic!("{s}: expected an HTTP URL, got {other:?}"),
        };
        let u = http("https://Cache.NixOS.org/");
        assert!(u.https);
        assert_eq!(u.host, "cache.nixos.org");
        assert_eq!(u.port, None);
        assert_eq!(u.path, "");
        assert_eq!(
            u.object_url("nix-cache-info"),
            "https://cache.nixos.org/nix-cache-info"
        );
        let u = http(
            "HTTP://127.0.0.1:8080/a/b/?priority=30&want-mass-query=1&trusted=true&netrc-file=/n/rc",
        );
        assert!(!u.https);
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.params.priority, Some(30));
        assert_eq!(u.params.want_mass_query, Some(true));
        assert_eq!(u.netrc_file.as_deref(), Some(Path::new("/n/rc")));
        assert_eq!(
            u.object_url("nar/x y.nar.xz"),
            "http://127.0.0.1:8080/a/b/nar/x%20y.nar.xz"
        );
        assert_eq!(
            u.to_string(),
            "http://127.0.0.1:8080/a/b?netrc-file=/n/rc&priority=30&want-mass-query=1&trusted=true"
        );
        assert_eq!(
            CacheUrl::Http(u.clone()).short(),
            "http://127.0.0.1:8080/a/b"
        );
        // the scheme's default port is dropped, as any URL reader does
        assert_eq!(http("https://h:443/x").port, None);
        assert_eq!(http("http://h:80").to_string(), "http://h");
        assert!(CacheUrl::parse("https://h").is_ok_and(|u| u.is_http()));
    }

    #[test]
    fn display_round_trip() {
        let urls = [
            "s3://bkt",
            "s3://bkt/a/b?region=eu-west-1",
            "s3://bkt?endpoint=http://127.0.0.1:3900&region=garage&addressing-style=path",
            "s3://bkt?region=us-east-1&profile=ci&compression=zstd&secret-key=/k%20ey&retry-attempts=5",
            "s3://bkt?endpoint=https://[::1]:9000",
            "s3://bkt?write-nar-listing=true&secret-key=/k/a%2Bb%26c",
            "file:///srv/cache",
            "file:///srv/with%20space/%3Fq%23h%25",
            "https://cache.nixos.org",
            "http://127.0.0.1:8080/sub/dir?priority=40&want-mass-query=true",
            "https://c.example.org?netrc-file=/etc/nix/netrc&trusted=1",
            "http://[::1]:5000",
        ];
        for s in urls {
            let u = CacheUrl::parse(s).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(u.to_string(), s, "canonical form");
            let again: CacheUrl = u.to_string().parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(again, u);
        }
        // non-canonical inputs round-trip as values
        for s in [
            "s3://bkt/p/?endpoint=h:9000&scheme=http&addressing-style=auto",
            "S3://bkt?endpoint=HTTPS://Host.Example:443/",
        ] {
            let u = CacheUrl::parse(s).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(CacheUrl::parse(&u.to_string()).ok(), Some(u));
        }
    }
}
