//! How an [`S3Store`](super::S3Store) is set up: [`S3Options`] (from the URL's parameters or
//! set by hand) and [`StaticCredentials`].

use super::multipart::{MAX_PUT_SIZE, MIN_PART_SIZE, MULTIPART_THRESHOLD, PART_SIZE};
use crate::storage::retry::RetryPolicy;
use std::fmt;
use std::time::Duration;

/// Access key and secret given explicitly instead of the AWS chain. `Debug` hides the secret.
#[derive(Clone)]
pub struct StaticCredentials {
    pub(super) access_key: String,
    pub(super) secret_key: String,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"** redacted **")
            .finish()
    }
}

/// Tuning of an [`S3Store`](super::S3Store).
#[derive(Clone, Debug)]
pub struct S3Options {
    /// `put_file` uses multipart upload above this size (never above [`MAX_PUT_SIZE`]: a
    /// larger object always goes in parts, as one PUT cannot carry it).
    pub multipart_threshold: u64,
    /// Multipart part size (kept within 5 MiB to 5 GiB and raised automatically to stay
    /// within 10,000 parts; see [`part_plan`](super::part_plan)).
    pub part_size: u64,
    /// Parts uploaded at once.
    pub part_concurrency: usize,
    /// Credentials overriding the AWS chain.
    pub credentials: Option<StaticCredentials>,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Per-attempt timeout of small requests (list, HEAD, DELETE, bucket calls).
    pub metadata_timeout: Duration,
    /// Time allowed until the response of a transfer (GET, PUT, part upload) starts.
    pub transfer_timeout: Duration,
    /// Small GETs and PUTs go through a lean SigV4 client first (see `s3/lean.rs`). It settles
    /// the clear answers itself (a GET's 200 or `NoSuchKey`, a PUT's 2xx or failed write
    /// condition, and transient faults, which are retried like any other) and hands anything
    /// else to the SDK within the same attempt. Off: every request goes through the SDK.
    pub lean_client: bool,
    /// How requests are retried (one policy for every request of the store).
    pub retry: RetryPolicy,
    /// Check streamed bodies ([`Store::get_reader`](crate::storage::Store::get_reader), NARs) against plain-MD5 ETags, once a
    /// whole GET has shown that this bucket's ETags are MD5s: a body cut short under a fixed
    /// `Content-Length` is then resumed instead of handed on short. Costs the MD5 of every
    /// streamed byte (about 1.6 ns per byte on one core).
    pub verify_streams: bool,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: PART_SIZE,
            part_concurrency: 4,
            credentials: None,
            connect_timeout: Duration::from_secs(5),
            metadata_timeout: Duration::from_secs(60),
            transfer_timeout: Duration::from_secs(600),
            lean_client: true,
            retry: RetryPolicy::default(),
            verify_streams: true,
        }
    }
}

impl S3Options {
    /// Uses this access key and secret instead of the AWS credential chain.
    pub fn with_static_credentials(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> S3Options {
        self.credentials = Some(StaticCredentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        });
        self
    }

    /// The options a cache URL's store parameters ask for:
    /// - `multipart-upload=false`: one PUT per object up to S3's 5 GiB single-PUT limit, parts
    ///   only above it (where one PUT cannot);
    /// - `multipart-upload=true` or unset: parts above `multipart-threshold=` (default
    ///   [`MULTIPART_THRESHOLD`], 100 MiB);
    /// - `multipart-chunk-size=` / `buffer-size=`: the part size (default [`PART_SIZE`]);
    ///   S3's 5 MiB minimum and 5 GiB maximum are checked when the URL is parsed, and a part
    ///   size that would need more than 10,000 parts is raised ([`part_plan`](super::part_plan)).
    ///
    /// `storage-class=` and the object codings travel with each write ([`crate::storage::PutOptions`]).
    pub fn from_params(p: &crate::storage::StoreParams) -> S3Options {
        let multipart_threshold = match p.multipart_upload {
            Some(false) => MAX_PUT_SIZE,
            Some(true) | None => p.multipart_threshold.unwrap_or(MULTIPART_THRESHOLD),
        };
        S3Options {
            multipart_threshold,
            part_size: p.multipart_chunk_size.unwrap_or(PART_SIZE),
            ..S3Options::default()
        }
    }

    /// Sets the multipart threshold and part size (the part size is raised to 5 MiB if smaller).
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> S3Options {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }
}
