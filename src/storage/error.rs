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
    /// The server asks us to slow down (HTTP 429, 503 `SlowDown`, `Throttling`, …).
    Throttled,
    /// The server failed (HTTP 5xx other than 501, `InternalError`, …).
    ServerError,
    /// A transport fault: the connection broke before or during an answer, a body was cut
    /// short or does not match its checksum, an answer could not be parsed because it was
    /// incomplete, or an object changed while it was streamed.
    Interrupted,
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

impl StoreErrorKind {
    /// Whether a retry may succeed (see [`StoreError::is_transient`]).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            StoreErrorKind::Throttled
                | StoreErrorKind::ServerError
                | StoreErrorKind::Interrupted
                | StoreErrorKind::Timeout
                | StoreErrorKind::Unreachable
        )
    }
}

/// A storage error. `Display` reads like
/// "GET `abc.narinfo` at s3://bkt (endpoint http://127.0.0.1:3900): access denied … (hint: …)".
#[derive(Clone, Debug)]
pub struct StoreError {
    /// What kind of failure it is; callers decide on this, not on the text.
    pub kind: StoreErrorKind,
    /// The store's description ([`super::Store::describe`]).
    pub store: String,
    /// The operation, e.g. `GET`, `list`, `PUT`.
    pub op: &'static str,
    /// The key (relative to the cache root), when the operation had one.
    pub key: Option<String>,
    /// The cause in words (the server's message, the I/O error).
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

    /// True for faults of the network or the server that may go away by themselves (the S3
    /// backend has already retried them): [`StoreErrorKind::Throttled`],
    /// [`StoreErrorKind::ServerError`], [`StoreErrorKind::Interrupted`],
    /// [`StoreErrorKind::Timeout`] and [`StoreErrorKind::Unreachable`].
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
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

/// The [`StoreError`] behind an I/O error from a store's byte stream ([`super::Store::get_reader`]),
/// looked for along the error's source chain, so that it is found through decoders that wrap
/// I/O errors. `Some` means the read failed because of the store or the network (a connection
/// that broke and could not be resumed, an object replaced while it was read), never because
/// of the bytes themselves.
pub fn store_error_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a StoreError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(s) = c.downcast_ref::<StoreError>() {
            return Some(s);
        }
        // io::Error's `source` skips the error it wraps; look inside too.
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(s) = store_error_in(inner)
        {
            return Some(s);
        }
        cur = c.source();
    }
    None
}

/// True if this I/O error from a store's byte stream is a transport fault (see
/// [`store_error_in`]): the download failed, the data is not to blame.
pub fn is_transport_fault(e: &std::io::Error) -> bool {
    store_error_in(e).is_some()
}

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

    #[test]
    fn transport_faults_are_found_through_wrappers() {
        let e = StoreError::new(StoreErrorKind::Interrupted, "s3://b", "GET", "broke")
            .with_key("nar/x.nar");
        assert!(e.is_transient());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, e);
        assert!(is_transport_fault(&io));
        // as a decoder would wrap it
        let outer = std::io::Error::other(io);
        assert_eq!(
            store_error_in(&outer).map(|e| e.kind),
            Some(StoreErrorKind::Interrupted)
        );
        assert!(!is_transport_fault(&std::io::Error::other(
            "bad zstd frame"
        )));
        for k in [
            StoreErrorKind::AccessDenied,
            StoreErrorKind::PreconditionFailed,
        ] {
            assert!(!k.is_transient(), "{k:?}");
        }
    }
}
