//! Typed errors of gc planning and pins. `Display` is the text the front ends show;
//! [`GcError::kind`] says what kind of failure it was.

use std::path::PathBuf;

use crate::jobs::{ErrorKind, JobError};
use crate::localstore::LocalStoreError;
use crate::storage::StoreError;

/// Why reading pins or roots, or planning a collection, failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// A request to the cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The local Nix store's GC roots could not be read (`--roots-from-nix`).
    #[error(transparent)]
    LocalStore(#[from] LocalStoreError),
    /// Reading the pins (or a roots file's store paths) failed.
    #[error(transparent)]
    Pin(#[from] crate::pins::PinError),
    /// A roots file could not be read.
    #[error("cannot read roots file {}: {error}", path.display())]
    RootsFile {
        /// The roots file, as given.
        path: PathBuf,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// A pin name, a pin, a roots file or a store path that is not what it must be (the
    /// message names it, the line and the cause).
    #[error("{0}")]
    Invalid(String),
    /// The cache did not do what was asked of one object (the message names it and says
    /// why): a pin that vanished while read, or could not be removed.
    #[error("{0}")]
    Failed(String),
    /// A safety rule refused collecting before anything was deleted (the message says why).
    #[error("{0}")]
    Refused(String),
}

impl GcError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GcError::Store(e) => ErrorKind::Store(e.kind),
            GcError::Pin(e) => ErrorKind::of_pin(e),
            GcError::LocalStore(_) => ErrorKind::LocalNix,
            GcError::RootsFile { .. } => ErrorKind::Local,
            GcError::Invalid(_) => ErrorKind::Invalid,
            GcError::Failed(_) => ErrorKind::Failed,
            GcError::Refused(_) => ErrorKind::Refused,
        }
    }
}

/// A gc failure inside a job (the collecting job, or delete's second look) is the job's
/// failure, of the same kind and with the same text.
impl From<GcError> for JobError {
    fn from(e: GcError) -> JobError {
        match e {
            GcError::Store(e) => JobError::Store(e),
            GcError::Pin(e) => JobError::Pin(e),
            GcError::LocalStore(e) => JobError::LocalStore(e),
            e @ GcError::RootsFile { .. } => JobError::Local(e.to_string()),
            GcError::Invalid(m) => JobError::Invalid(m),
            GcError::Failed(m) => JobError::Failed(m),
            GcError::Refused(m) => JobError::Refused(m),
        }
    }
}
