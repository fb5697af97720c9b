//! Storage errors: every error names the store (endpoint and bucket, or directory), the operation,
//! the key when there is one, the cause, and advice where we have some.

use std::fmt;

/// What went wrong, for callers that react differently (retry, treat as missing, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The request was refused (HTTP 403 / permission denied).
    AccessDenied,
    /// Credentials are missing, unknown or wrong (InvalidAccessKeyId, SignatureDoesNotMatch, …).
    Credentials,
    /// The bucket (or the cache directory) does not exist.
    NoSuchBucket,
    /// The bucket lives in another region (PermanentRedirect, AuthorizationHeaderMalformed, …).
    WrongRegion,
    /// The endpoint cannot be reached (connection refused, DNS, TLS).
    Unreachable,
    /// The endpoint did not answer in time.
    Timeout,
    /// A conditional write (If-None-Match / If-Match) failed: the object exists or changed.
    PreconditionFailed,
    /// The key is not acceptable (absolute, `..`, empty segment, …).
    InvalidKey,
    /// A local I/O error.
    Io,
    /// The server does not implement the request.
    NotSupported,
    /// Anything else (unexpected server answer, …).
    Other,
}

/// A storage error. `Display` reads like
/// "GET `abc.narinfo` at s3://bkt (endpoint http://127.0.0.1:3900): access denied … (hint: …)".
#[derive(Clone, Debug)]
pub struct StoreError {
    /// Classification.
    pub kind: StoreErrorKind,
    /// The store's description ([`super::Store::describe`]).
    pub store: String,
    /// The operation, e.g. `GET`, `list`, `PUT`.
    pub op: &'static str,
    /// The key (relative to the cache root), when the operation had one.
    pub key: Option<String>,
    /// The cause.
    pub message: String,
    /// What to do about it, when we know.
    pub advice: Option<String>,
}

impl StoreError {
    /// A new error without key and advice.
    pub fn new(
        kind: StoreErrorKind,
        store: impl Into<String>,
        op: &'static str,
        message: impl Into<String>,
    ) -> StoreError {
        StoreError {
            kind,
            store: store.into(),
            op,
            key: None,
            message: message.into(),
            advice: None,
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<String>) -> StoreError {
        self.key = Some(key.into());
        self
    }

    /// Sets the advice.
    pub fn with_advice(mut self, advice: impl Into<String>) -> StoreError {
        self.advice = Some(advice.into());
        self
    }

    /// True for [`StoreErrorKind::PreconditionFailed`].
    pub fn is_precondition_failed(&self) -> bool {
        self.kind == StoreErrorKind::PreconditionFailed
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(k) = &self.key {
            if k.is_empty() {
                write!(f, " (cache root)")?;
            } else {
                write!(f, " `{k}`")?;
            }
        }
        write!(f, " at {}: {}", self.store, self.message)?;
        if let Some(a) = &self.advice {
            write!(f, " (hint: {a})")?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_everything() {
        let e = StoreError::new(
            StoreErrorKind::AccessDenied,
            "s3://bkt (endpoint http://127.0.0.1:3900)",
            "GET",
            "access denied",
        )
        .with_key("abc.narinfo")
        .with_advice("check the key's permissions");
        assert_eq!(
            e.to_string(),
            "GET `abc.narinfo` at s3://bkt (endpoint http://127.0.0.1:3900): access denied \
             (hint: check the key's permissions)"
        );
        let e = StoreError::new(StoreErrorKind::Io, "file:///srv/c", "list", "boom").with_key("");
        assert_eq!(e.to_string(), "list (cache root) at file:///srv/c: boom");
    }
}
