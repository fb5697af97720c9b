//! The vocabulary between the reducer and the runtime: every [`Msg`] that can reach
//! [`super::app::App::update`] and every [`Effect`] it can ask for. The reducer never performs
//! an effect itself; the runtime ([`super::runtime`]) is the only place that does, and it
//! answers through messages. Reading this file tells everything the dashboard can do.

use std::sync::Arc;

use crossterm::event::{KeyEvent, MouseEvent};

use super::overlay::gc::summary::GcSummary;
use super::pane::details::load::Detail;
use crate::gc::GcError;
use crate::index::RowId;
use crate::index::scan::{ScanError, ScanProgress, ScanSummary};
use crate::jobs::{JobEvent, JobHandle, JobId};
use crate::pins::{Pin, PinError};

/// A deletion plan and the confirmation text that lists it, or why it is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteProposal {
    /// What would be confirmed (the plan with every referrer, transitively).
    pub confirmed: crate::jobs::delete::Confirmed,
    /// What the confirmation dialog says.
    pub lines: Vec<String>,
    /// Why it may not go ahead (unreadable narinfos, pinned paths), if so.
    pub refusal: Option<String>,
}

/// Messages into the reducer.
#[derive(Debug)]
pub enum Msg {
    /// A key press.
    Key(KeyEvent),
    /// A mouse event.
    Mouse(MouseEvent),
    /// The terminal was resized.
    Resize,
    /// The index changed.
    IndexChanged,
    /// A scan started.
    ScanStarted(Arc<ScanProgress>, Arc<JobHandle>),
    /// A scan ended: its summary, or why it stopped (a store error keeps its kind).
    ScanFinished(Result<ScanSummary, ScanError>),
    /// A detail was loaded.
    DetailLoaded(Box<Detail>),
    /// A job started.
    JobStarted(Arc<JobHandle>),
    /// A job reported.
    Job(JobEvent),
    /// How the server throttled a job's requests (sent just before its
    /// [`JobEvent::Finished`]): a note for the job's final line.
    JobThrottled(JobId, String),
    /// Time passed (sent while something runs).
    Tick,
    /// The index was saved (or not).
    Saved(Result<bool, std::io::Error>),
    /// The clipboard write (an OSC 52 sequence on the terminal) went out, or failed.
    Copied(Result<(), std::io::Error>),
    /// A deletion was planned (see [`Effect::PlanDelete`]).
    DeletePlanned(Box<DeleteProposal>),
    /// A garbage-collection plan was made (or not).
    GcPlanned(Result<Arc<GcSummary>, GcError>),
    /// A pin was written or removed (or could not be): the reducer words the notice.
    PinDone {
        /// The pin's name.
        name: String,
        /// What changed in the cache, or why nothing did.
        result: Result<PinChange, PinError>,
    },
    /// The pins of the cache.
    Pins(Result<Vec<Pin>, PinError>),
    /// The bucket doctor's findings (see [`Effect::Doctor`]).
    Doctor(Arc<crate::doctor::Report>),
    /// What the runtime learnt about the bucket's versions.
    Versions(VersionsUpdate),
    /// The stored plan records (see [`Effect::ListPlans`]), or why they could not be read.
    Plans(Result<super::overlay::plans::PlanList, String>),
    /// A copy was planned (see [`Effect::PlanCopyTo`]), or why it could not be.
    CopyPlanned(Result<CopyHandle, String>),
    /// The space report (see [`Effect::BuildSpace`]).
    SpaceBuilt(Arc<crate::space::Report>),
    /// The day timeline of one package (see [`Effect::SpaceGroupTimeline`]).
    SpaceGroupTimeline {
        /// The index generation of the report it was built from.
        generation: u64,
        /// The package.
        name: String,
        /// Its timeline, per day.
        timeline: Arc<crate::space::timeline::Timeline>,
    },
    /// Answers of the upstream check (see [`Effect::CheckUpstream`]): whether an upstream
    /// serves each row with a trusted signature; `done` on the last batch.
    UpstreamChecked {
        /// Rows and whether they are served.
        rows: Vec<(RowId, bool)>,
        /// The check ended.
        done: bool,
    },
}

/// How the title of a job restoring a past plan starts (the reducer refreshes the index
/// when it ends).
pub const PLAN_RESTORE_TITLE: &str = "restore plan";

/// How the title of a job purging a past plan starts (the reducer refreshes the index when
/// it ends).
pub const PLAN_PURGE_TITLE: &str = "purge plan";

/// What the runtime learnt about the bucket's versions (see
/// [`super::pane::header::Versions`]).
#[derive(Clone, Debug)]
pub enum VersionsUpdate {
    /// Whether the bucket keeps versions, or why that is unknown.
    State(Result<crate::storage::Versioning, crate::storage::StoreError>),
    /// A version listing runs: its figures so far.
    Listing(crate::storage::VersionStats),
    /// A version listing ended: its figures, or why it failed.
    Listed(Result<crate::storage::VersionStats, crate::storage::StoreError>),
}

/// What a pin effect changed in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinChange {
    /// The pin was written, naming this many store paths.
    Written(usize),
    /// The pin was removed.
    Removed,
    /// There was no pin of that name: nothing changed.
    Missing,
}

/// What a garbage-collection plan is made from: the core's request, which the dashboard's
/// `:gc` form and the CLI's flags both fill.
pub use crate::gc::GcRequest;

/// A space report handed to the runtime (compared by identity).
#[derive(Clone, Debug)]
pub struct ReportHandle(pub Arc<crate::space::Report>);

impl PartialEq for ReportHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ReportHandle {}

/// A plan handed to the runtime (compared by identity).
#[derive(Clone, Debug)]
pub struct PlanHandle(pub Arc<crate::gc::Prepared>);

impl PartialEq for PlanHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PlanHandle {}

/// A copy planned for the dashboard (see [`Effect::PlanCopyTo`]): the destination opened
/// and the plan; compared by identity.
#[derive(Clone)]
pub struct CopyHandle(pub Arc<(Arc<crate::cache::Cache>, crate::jobs::copy::CopyPlan)>);

impl std::fmt::Debug for CopyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CopyHandle({})", self.0.0.url())
    }
}

impl PartialEq for CopyHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CopyHandle {}

/// Work for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Leave the dashboard (jobs are cancelled, the index is saved).
    Quit,
    /// Plan the deletion of these rows (see [`super::app::propose_delete`]); the answer is
    /// [`Msg::DeletePlanned`].
    PlanDelete(Vec<RowId>),
    /// Start a scan (refresh).
    Scan,
    /// Load the detail of a row (the newest request wins).
    LoadDetail(RowId),
    /// Start a deep verification of these rows.
    VerifyContents(Vec<RowId>),
    /// Sign these rows with the signing key.
    Sign(Vec<RowId>),
    /// Carry out a confirmed deletion (looked at again just before deleting).
    Delete(Box<crate::jobs::delete::Confirmed>),
    /// Push local store paths (with their closures).
    Push(Vec<String>),
    /// Pull paths (with their closures) into a directory.
    Pull(Vec<String>, std::path::PathBuf),
    /// Cancel a job.
    CancelJob(JobId),
    /// Put text on the clipboard.
    Copy(String),
    /// Save the index.
    Save,
    /// Make a garbage-collection plan (the index must be a complete scan).
    PlanGc(GcRequest),
    /// Carry out a plan: re-scan, re-plan, delete what both plans agree on.
    Collect(PlanHandle),
    /// Create or replace a pin.
    PinAdd(String, Vec<String>),
    /// Remove a pin.
    PinRemove(String),
    /// List the pins.
    ListPins,
    /// Run the bucket doctor's checks (without the write probe); the answer is
    /// [`Msg::Doctor`].
    Doctor,
    /// Read the bucket's versioning and the stored plan records; the answer is
    /// [`Msg::Plans`].
    ListPlans,
    /// Restore this past plan (a job).
    RestorePlan(String),
    /// Purge this past plan (a job).
    PurgePlan(String),
    /// Plan copying these paths (with their closures) to the cache at this URL; the answer
    /// is [`Msg::CopyPlanned`].
    PlanCopyTo(String, Vec<String>),
    /// Carry out a confirmed copy (a job).
    CopyTo(CopyHandle),
    /// Ask the upstreams about every row (in the background, replacing a check that runs);
    /// the answers come back in batches as [`Msg::UpstreamChecked`].
    CheckUpstream,
    /// Build the space report from the index (off the UI thread, under a read lock); the
    /// answer is [`Msg::SpaceBuilt`].
    BuildSpace,
    /// Build the day timeline of the report's package at this index (off the UI thread);
    /// the answer is [`Msg::SpaceGroupTimeline`].
    SpaceGroupTimeline(ReportHandle, usize),
}
