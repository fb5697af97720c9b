//! What a failed S3 request boils down to ([`Failure`]): its status, code, transport fault and
//! the server's `Retry-After`, whether it means "missing" (Nix's 403 rule) or bad credentials,
//! and the advice given for it. Shared by the SDK path and the lean client; it knows nothing
//! of either.

use crate::storage::S3Url;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::fmt;
use std::time::{Duration, SystemTime};

/// What a failed request boils down to (from the SDK or the lean client).
pub(super) struct Failure {
    pub(super) status: Option<u16>,
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
    pub(super) bucket_region: Option<String>,
    pub(super) transport: Option<Transport>,
    /// The cause's Display chain (no repetitions).
    pub(super) detail: String,
    /// The cause's Debug form, for the debug log only.
    pub(super) debug: String,
    /// The server's `Retry-After`.
    pub(super) retry_after: Option<Duration>,
}

/// A fault below the S3 protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    /// No connection could be made (refused, DNS, TLS handshake).
    Connect,
    /// No answer in time.
    Timeout,
    /// The connection broke before the answer arrived.
    Reset,
    /// The connection broke, or the body ended, before the whole body arrived.
    Body {
        got: Option<u64>,
        expected: Option<u64>,
    },
    /// A 2xx answer whose body is not a complete S3 document (cut short in transit).
    Garbled,
    /// A body that does not match the MD5 its ETag names.
    Mismatch { etag: String, got: u64 },
    /// The request could not be made (credentials, signing, …).
    Other,
}

pub(super) const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
    "InvalidClientTokenId",
];

/// S3 error codes that ask the client to slow down.
pub(super) const THROTTLING_CODES: &[&str] = &[
    "SlowDown",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "BandwidthLimitExceeded",
    "EC2ThrottledException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
];

/// S3 error codes of a server fault (whatever the status).
pub(super) const SERVER_FAULT_CODES: &[&str] =
    &["InternalError", "ServiceUnavailable", "InternalFailure"];

/// S3 error codes that say a request took too long to arrive.
pub(super) const TIMEOUT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

impl Failure {
    pub(super) fn from_sdk<E>(e: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let raw = e.raw_response();
        let status = raw.map(|r| r.status().as_u16());
        let header = |n: &str| raw.and_then(|r| r.headers().get(n)).map(str::to_string);
        let cut_short = find_in_chain::<CutShort>(e);
        // What was wrong with a cut-short answer says more than the SDK's wrapping of it.
        let detail = match cut_short {
            Some(c) => c.to_string(),
            None => error_chain(e),
        };
        let transport = match e {
            SdkError::TimeoutError(_) => Some(Transport::Timeout),
            SdkError::DispatchFailure(d) if d.is_timeout() => Some(Transport::Timeout),
            SdkError::DispatchFailure(d) => Some(match transport_in_chain(e) {
                Some(t) => t,
                None if d.is_io() => Transport::Reset,
                None => Transport::Other,
            }),
            SdkError::ConstructionFailure(_) => Some(Transport::Other),
            SdkError::ResponseError(_) if cut_short.is_some() => Some(Transport::Garbled),
            SdkError::ResponseError(_) => match transport_in_chain(e) {
                Some(Transport::Timeout) => Some(Transport::Timeout),
                // The answer began: whatever broke, broke in its body.
                Some(_) => Some(Transport::Body {
                    got: None,
                    expected: header("content-length").and_then(|v| v.parse().ok()),
                }),
                None => Some(Transport::Garbled),
            },
            // A 2xx answer the SDK could not parse (no error code): cut short in transit.
            SdkError::ServiceError(_)
                if status.is_some_and(|s| (200..300).contains(&s)) && e.code().is_none() =>
            {
                Some(Transport::Garbled)
            }
            _ => None,
        };
        Failure {
            status,
            code: e.code().map(str::to_string),
            message: e.message().map(str::to_string),
            bucket_region: header("x-amz-bucket-region"),
            transport,
            detail,
            debug: format!("{e:?}"),
            retry_after: header("retry-after").and_then(|v| parse_retry_after(&v)),
        }
    }

    /// An HTTP answer with an S3 error code and no more to say.
    pub(super) fn http(status: u16, code: &str) -> Failure {
        Failure {
            status: Some(status),
            code: Some(code.to_string()),
            message: None,
            bucket_region: None,
            transport: None,
            detail: format!("HTTP {status}"),
            debug: String::new(),
            retry_after: None,
        }
    }

    /// A transport fault.
    pub(super) fn transport(t: Transport, detail: String, debug: String) -> Failure {
        Failure {
            status: None,
            code: None,
            message: None,
            bucket_region: None,
            transport: Some(t),
            detail,
            debug,
            retry_after: None,
        }
    }

    pub(super) fn code_is(&self, c: &str) -> bool {
        self.code.as_deref() == Some(c)
    }

    pub(super) fn code_in(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// The server does not implement the request (`NotImplemented` or HTTP 501).
    pub(super) fn not_implemented(&self) -> bool {
        self.code_is("NotImplemented") || self.status == Some(501)
    }

    pub(super) fn credentials_problem(&self) -> bool {
        if self.code_in(CREDENTIAL_CODES) {
            return true;
        }
        // Garage (and others) answer AccessDenied for a bad signature or an unknown key id.
        let msg = self
            .message
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.code_is("AccessDenied")
            && (msg.contains("signature")
                || msg.contains("no such key: ")
                || msg.contains("access key"))
    }

    /// Nix's rule for GET/HEAD: 404 and 403 mean "missing", unless the bucket is missing or
    /// the credentials are rejected outright.
    pub(super) fn means_missing(&self) -> bool {
        if self.transport.is_some() || self.code_is("NoSuchBucket") || self.credentials_problem() {
            return false;
        }
        matches!(self.status, Some(404) | Some(403))
            || self.code_is("NoSuchKey")
            || self.code_is("NotFound")
    }

    /// `Code: message` as the server said it.
    pub(super) fn server_said(&self) -> String {
        match (&self.code, &self.message, self.status) {
            (Some(c), Some(m), _) => format!("{c}: {m}"),
            (Some(c), None, Some(s)) => format!("{c} (HTTP {s})"),
            (Some(c), None, None) => c.clone(),
            (None, Some(m), Some(s)) => format!("HTTP {s}: {m}"),
            (None, _, Some(s)) => format!("HTTP {s}"),
            (None, _, None) => self.detail.clone(),
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub(super) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = aws_smithy_types::DateTime::from_str(v, aws_smithy_types::date_time::Format::HttpDate)
        .ok()
        .and_then(|d| SystemTime::try_from(d).ok())?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        cur = c.source();
    }
    None
}

/// What the error chain of a failed exchange says about the connection, if anything.
pub(super) fn transport_in_chain(e: &(dyn std::error::Error + 'static)) -> Option<Transport> {
    use std::io::ErrorKind as K;
    let mut found = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<hyper_util::client::legacy::Error>()
            && h.is_connect()
        {
            return Some(Transport::Connect);
        }
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return Some(Transport::Timeout);
            }
            if h.is_incomplete_message()
                || h.is_closed()
                || h.is_canceled()
                || h.is_body_write_aborted()
                || h.is_parse()
            {
                found.get_or_insert(Transport::Reset);
            }
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            match io.kind() {
                K::ConnectionRefused
                | K::AddrNotAvailable
                | K::HostUnreachable
                | K::NetworkUnreachable => return Some(Transport::Connect),
                K::TimedOut => return Some(Transport::Timeout),
                K::ConnectionReset
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::NotConnected => {
                    found.get_or_insert(Transport::Reset);
                }
                _ => {}
            }
        }
        cur = c.source();
    }
    found
}

/// A 2xx XML answer that ends before its root element is closed (found by [`CompleteXml`]).
#[derive(Debug)]
pub(super) struct CutShort {
    pub(super) root: String,
    pub(super) len: usize,
}

impl fmt::Display for CutShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} bytes that arrived end before the closing </{}> tag",
            self.len, self.root
        )
    }
}

impl std::error::Error for CutShort {}

/// The Display texts of an error and its sources, joined with `: ` (repetitions dropped).
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        let text = c.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// What to check when the server rejects the credentials, naming the profile in use.
pub(super) fn credentials_advice(url: &S3Url) -> String {
    let profile = match &url.profile {
        Some(p) => format!("profile `{p}` (profile= in the URL)"),
        None => "the profile (profile= in the URL or AWS_PROFILE)".to_string(),
    };
    format!(
        "check the credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, {profile}, or \
         ~/.aws/credentials; the access key must belong to this endpoint"
    )
}
