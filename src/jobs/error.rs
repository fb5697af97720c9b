//! Typed errors of the jobs (sign, push, pull, delete, gc, verify). Their `Display` is the
//! text the front ends show; [`JobError::kind`] says what kind of failure it was, so the
//! dashboard and `--json` can tell a credentials error from a missing key from a refusal.

use crate::cache::CacheError;
use crate::index::scan::ScanError;
use crate::localstore::LocalStoreError;
use crate::nix::narinfo::NarInfoError;
use crate::storage::{StoreError, StoreErrorKind};

/// What kind of failure an error is, for the front ends to react to (or report) without
/// reading its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A request to the cache failed; the storage layer's classification says why
    /// (credentials, missing bucket or object, timeout, …).
    Store(StoreErrorKind),
    /// A narinfo in the cache could not be parsed.
    NarInfo,
    /// An object that should be in the cache is not (a narinfo, a NAR).
    Missing,
    /// The local Nix store could not be asked (Nix missing, a command failed).
    LocalNix,
    /// A local file (a key file, a roots file, a download target) could not be read or
    /// written.
    Local,
    /// Something given or found is not what it must be (a pin name, a store path, a key, a
    /// signature that does not verify).
    Invalid,
    /// The cache's deletion lease could not be taken, or was lost.
    Lease,
    /// A safety rule refused the work before anything was changed.
    Refused,
    /// The work failed otherwise (objects that could not be written or deleted, a panic).
    Failed,
}

impl ErrorKind {
    /// What kind of failure a pin error is.
    pub fn of_pin(e: &crate::pins::PinError) -> ErrorKind {
        use crate::pins::PinError;
        match e {
            PinError::Store(s) => ErrorKind::Store(s.kind),
            PinError::Invalid(_) => ErrorKind::Invalid,
            PinError::Failed(_) => ErrorKind::Failed,
        }
    }
}

/// Why a job failed. `Display` reads as the job's error line.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A request to the cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request to the cache failed, with what was being done.
    #[error("{context}: {error}")]
    StoreIn {
        /// What was being done (often the object's origin).
        context: String,
        /// The storage error (boxed: it is large, and errors travel in every `Result`).
        error: Box<StoreError>,
    },
    /// A narinfo could not be parsed.
    #[error(transparent)]
    NarInfo(#[from] NarInfoError),
    /// A narinfo could not be read from the cache (storage, parse or encoding); boxed, as
    /// it is large.
    #[error(transparent)]
    Cache(Box<CacheError>),
    /// An object that should be in the cache is not (the message names it).
    #[error("{0}")]
    Missing(String),
    /// The local Nix store could not be asked.
    #[error(transparent)]
    LocalStore(#[from] LocalStoreError),
    /// Reading the cache's pins failed.
    #[error(transparent)]
    Pin(#[from] crate::pins::PinError),
    /// A local file could not be read or written (the message names it and the cause).
    #[error("{0}")]
    Local(String),
    /// Something given or found is not what it must be (the message says what and why).
    #[error("{0}")]
    Invalid(String),
    /// The deletion lease could not be taken, or was lost, or pushes did not pause.
    #[error(transparent)]
    Lease(Box<crate::lease::LeaseError>),
    /// A safety rule refused the work before anything was changed (the message says why).
    #[error("{0}")]
    Refused(String),
    /// The work failed otherwise (the message says what and how far it got).
    #[error("{0}")]
    Failed(String),
}

impl JobError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::Store(e) => ErrorKind::Store(e.kind),
            JobError::StoreIn { error, .. } => ErrorKind::Store(error.kind),
            JobError::NarInfo(_) => ErrorKind::NarInfo,
            JobError::Cache(e) => match e.as_ref() {
                CacheError::Store(e) => ErrorKind::Store(e.kind),
                CacheError::NarInfo(_) => ErrorKind::NarInfo,
                CacheError::Missing(_) => ErrorKind::Missing,
                _ => ErrorKind::Invalid,
            },
            JobError::Missing(_) => ErrorKind::Missing,
            JobError::LocalStore(_) => ErrorKind::LocalNix,
            JobError::Pin(e) => ErrorKind::of_pin(e),
            JobError::Local(_) => ErrorKind::Local,
            JobError::Invalid(_) => ErrorKind::Invalid,
            JobError::Lease(_) => ErrorKind::Lease,
            JobError::Refused(_) => ErrorKind::Refused,
            JobError::Failed(_) => ErrorKind::Failed,
        }
    }

    /// A storage error with what was being done: "`context`: `error`".
    pub fn store_in(context: impl Into<String>, error: StoreError) -> JobError {
        JobError::StoreIn {
            context: context.into(),
            error: Box::new(error),
        }
    }
}

impl From<&ScanError> for JobError {
    /// A scan's error as a job's: a storage error keeps its kind; a cancelled scan is a
    /// failure with the same text.
    fn from(e: &ScanError) -> JobError {
        match e {
            ScanError::Store(e) => JobError::Store(e.clone()),
            other => JobError::Failed(other.to_string()),
        }
    }
}

impl From<CacheError> for JobError {
    fn from(e: CacheError) -> JobError {
        JobError::Cache(Box::new(e))
    }
}

impl From<crate::lease::LeaseError> for JobError {
    fn from(e: crate::lease::LeaseError) -> Self {
        JobError::Lease(Box::new(e))
    }
}
