//! Deleters and pushers of one cache, kept apart through small objects in the cache itself.
//!
//! A push relies on objects it did not write just now: a NAR that is already there (it skips
//! the upload), and the narinfos of references that are already there (it skips those
//! paths). A deletion (`gc`, `delete`) decides from a look at the cache what nobody
//! references. If a push writes a narinfo after that look, relying on an object the deletion
//! then removes, the cache holds a narinfo without its NAR or a reference. Object stores have
//! no transactions, so the two sides take turns, each writing its flag and then reading the
//! other's (the store is read-after-write consistent, as S3, file:// and Garage are), so at
//! least one of them sees the other:
//!
//! - A **deletion** writes the lease [`DELETION_LEASE`], then waits until no push is
//!   registered under [`PUSH_PREFIX`] (pushes pause when they see the lease), then looks at
//!   the cache again and deletes, renewing the lease as it goes, and removes it at the end.
//!   A second deletion while one holds the lease is refused.
//! - A **push** registers under [`PUSH_PREFIX`], then checks for the lease, and writes
//!   narinfos only while registered and holding a [`Permit`]. It checks for the lease every
//!   [`PUSH_POLL`]; on seeing one, it lets the narinfo writes in flight finish, withdraws its
//!   registration, waits for the lease to go, registers again and checks again. Every such
//!   pause bumps an epoch: a path whose checks (its NAR, its references) were made in an
//!   earlier epoch checks again before its narinfo goes up.
//!
//! Holders that die leave their object behind: it counts only while renewed (every
//! [`HEARTBEAT`]; it lapses [`TTL`] after the last renewal, by the object's LastModified), or
//! at once when it names a process of this host that is gone. `nix copy` and other writers
//! do not take part; the grace period of `gc` is what protects their uploads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::storage::{ObjectMeta, PutCondition, PutOptions, Store, StoreError};

/// Why the deletion lease could not be taken or a push could not register.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Reading the lease or the push registrations, or writing a registration, failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the lease failed (other than losing a compare-and-swap race).
    #[error("cannot take the deletion lease: {0}")]
    Take(StoreError),
    /// Another deletion holds the lease, or pushes did not pause in time: nothing was done.
    /// The text says who and what to do.
    #[error("refusing: {0}")]
    Refused(String),
    /// The lease was taken over by another process while this one was deleting (its heartbeat
    /// stopped for longer than the lease's time to live): this deletion stopped.
    #[error(
        "stopped: the deletion lease was lost (another process took it over); what is deleted \
         so far is consistent, run again"
    )]
    Lost,
}

/// The deletion lease: held by a running `gc` or `delete`.
pub const DELETION_LEASE: &str = "narscope/locks/deletion";
/// Where running pushes register, one object each.
pub const PUSH_PREFIX: &str = "narscope/locks/push/";
/// A holder's object lapses this long after its last renewal.
pub const TTL: Duration = Duration::from_secs(120);
/// How often holders renew their object.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// How often a push looks for the deletion lease.
pub const PUSH_POLL: Duration = Duration::from_secs(2);
/// How long a deletion waits for pushes to pause before giving up.
pub const PUSH_PAUSE_WAIT: Duration = Duration::from_secs(600);

/// Who holds a lease or a push registration (the object's JSON body).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    /// Random id of this holding.
    pub id: String,
    /// `gc`, `delete` or `push`.
    pub what: String,
    /// Host name of the holding process (a lapsed holder on this host is recognised by its pid).
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// When it was taken (Unix seconds).
    pub started: u64,
}

impl Holder {
    fn new(what: &str) -> Holder {
        Holder {
            id: crate::storage::random_hex(),
            what: what.to_string(),
            host: host_name(),
            pid: std::process::id(),
            started: unix_now(),
        }
    }

    /// "gc (pid 123 on host h, since 2026-…)".
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {} on host {}, started {} s ago)",
            self.what,
            self.pid,
            self.host,
            unix_now().saturating_sub(self.started)
        )
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` of this host still runs (`true` when it cannot be told).
fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// A lease or registration object as read.
#[derive(Clone, Debug)]
struct Found {
    holder: Option<Holder>,
    meta: ObjectMeta,
}

impl Found {
    /// Whether it still counts: renewed within [`TTL`], and not naming a dead process of
    /// this host. An object that does not parse counts until it lapses.
    fn live(&self, ttl: Duration) -> bool {
        if let Some(h) = &self.holder
            && h.host == host_name()
            && h.pid != std::process::id()
            && !h.host.is_empty()
            && !process_alive(h.pid)
        {
            return false;
        }
        let renewed = self
            .meta
            .last_modified
            .or_else(|| {
                self.holder
                    .as_ref()
                    .map(|h| UNIX_EPOCH + Duration::from_secs(h.started))
            })
            .unwrap_or(UNIX_EPOCH);
        SystemTime::now()
            .duration_since(renewed)
            .map(|age| age < ttl)
            .unwrap_or(true)
    }

    fn describe(&self) -> String {
        match &self.holder {
            Some(h) => h.describe(),
            None => format!("an unreadable holder object `{}`", self.meta.key),
        }
    }
}

async fn read(store: &dyn Store, key: &str) -> Result<Option<Found>, StoreError> {
    Ok(store.get(key).await?.map(|g| Found {
        holder: serde_json::from_slice(&g.bytes).ok(),
        meta: g.meta,
    }))
}

fn body(h: &Holder) -> bytes::Bytes {
    serde_json::to_vec(h).unwrap_or_default().into()
}

fn json_put(condition: PutCondition) -> PutOptions {
    PutOptions {
        content_type: Some("application/json".into()),
        condition,
        ..PutOptions::default()
    }
}

/// The deletion lease, held while a `gc` or `delete` looks and deletes. Renewed in the
/// background; call [`DeletionLease::release`] at the end (a dropped lease stops being
/// renewed and lapses after [`TTL`]).
pub struct DeletionLease {
    store: Arc<dyn Store>,
    holder: Holder,
    lost: Arc<AtomicBool>,
    released: AtomicBool,
    renew: tokio::task::JoinHandle<()>,
}

impl DeletionLease {
    /// Takes the lease for `what` (`gc`, `delete`). Refused (an error starting with
    /// "refusing") while another live holder has it.
    pub async fn acquire(store: Arc<dyn Store>, what: &str) -> Result<DeletionLease, LeaseError> {
        Self::acquire_with(store, what, HEARTBEAT, TTL).await
    }

    async fn acquire_with(
        store: Arc<dyn Store>,
        what: &str,
        heartbeat: Duration,
        ttl: Duration,
    ) -> Result<DeletionLease, LeaseError> {
        let holder = Holder::new(what);
        let cas = store.probe_conditional_writes().await?;
        for _ in 0..3 {
            let current = read(store.as_ref(), DELETION_LEASE).await?;
            if let Some(f) = &current
                && f.live(ttl)
            {
                return Err(LeaseError::Refused(format!(
                    "another deletion holds this cache's lease ({}): wait for it to \
                     finish; if it died, its lease lapses {} s after its last renewal \
                     (`{}` in the cache)",
                    f.describe(),
                    ttl.as_secs(),
                    DELETION_LEASE
                )));
            }
            let condition = match (&current, cas.if_none_match, cas.if_match) {
                (None, true, _) => PutCondition::IfNoneMatch,
                (Some(f), _, true) => f
                    .meta
                    .etag
                    .clone()
                    .map(PutCondition::IfMatch)
                    .unwrap_or_default(),
                _ => PutCondition::None,
            };
            match store
                .put(DELETION_LEASE, body(&holder), &json_put(condition))
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_precondition_failed() => continue,
                Err(e) => return Err(LeaseError::Take(e)),
            }
            // Without compare-and-swap two could have written: the one read back holds it.
            let now = read(store.as_ref(), DELETION_LEASE).await?;
            match now.as_ref().and_then(|f| f.holder.as_ref()) {
                Some(h) if h.id == holder.id => {
                    let lost = Arc::new(AtomicBool::new(false));
                    let renew = tokio::spawn(renew_lease(
                        store.clone(),
                        holder.clone(),
                        lost.clone(),
                        heartbeat,
                    ));
                    return Ok(DeletionLease {
                        store,
                        holder,
                        lost,
                        released: AtomicBool::new(false),
                        renew,
                    });
                }
                _ => continue,
            }
        }
        Err(LeaseError::Refused(
            "another process took the deletion lease at the same moment; run again".to_string(),
        ))
    }

    /// Whether the lease is still ours (a renewal found another holder, or could not
    /// write). Deleting stops when it is not.
    pub fn holds(&self) -> bool {
        !self.lost.load(Ordering::Relaxed)
    }

    /// Who holds it.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Waits until no push is registered (they pause when they see the lease), reporting
    /// the pushes still running through `waiting`. Refused when they do not pause within
    /// [`PUSH_PAUSE_WAIT`].
    pub async fn wait_for_pushes(&self, waiting: impl Fn(&str)) -> Result<(), LeaseError> {
        self.wait_for_pushes_within(PUSH_PAUSE_WAIT, TTL, waiting)
            .await
    }

    async fn wait_for_pushes_within(
        &self,
        limit: Duration,
        ttl: Duration,
        waiting: impl Fn(&str),
    ) -> Result<(), LeaseError> {
        let start = std::time::Instant::now();
        loop {
            let pushes = live_pushes(self.store.as_ref(), ttl).await?;
            if pushes.is_empty() {
                return Ok(());
            }
            let who = pushes
                .iter()
                .map(Found::describe)
                .collect::<Vec<_>>()
                .join(", ");
            if start.elapsed() > limit {
                return Err(LeaseError::Refused(format!(
                    "{} push(es) did not pause for the deletion within {} s: {who}",
                    pushes.len(),
                    limit.as_secs()
                )));
            }
            waiting(&format!(
                "waiting for {} push(es) to pause: {who}",
                pushes.len()
            ));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Gives the lease back (removes it if it is still ours).
    pub async fn release(self) {
        self.renew.abort();
        self.released.store(true, Ordering::Relaxed);
        release_lease(self.store.clone(), self.holder.id.clone()).await;
    }
}

async fn release_lease(store: Arc<dyn Store>, id: String) {
    if let Ok(Some(f)) = read(store.as_ref(), DELETION_LEASE).await
        && f.holder.as_ref().is_some_and(|h| h.id == id)
        && let Err(e) = store
            .delete_many(std::slice::from_ref(&DELETION_LEASE.to_string()))
            .await
    {
        tracing::warn!("giving back the deletion lease: {e}");
    }
}

impl Drop for DeletionLease {
    /// A lease dropped without [`DeletionLease::release`] (a cancelled job) is given back in
    /// the background where a runtime still runs; else it lapses.
    fn drop(&mut self) {
        self.renew.abort();
        if !self.released.load(Ordering::Relaxed)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(release_lease(self.store.clone(), self.holder.id.clone()));
        }
    }
}

async fn renew_lease(
    store: Arc<dyn Store>,
    holder: Holder,
    lost: Arc<AtomicBool>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        match read(store.as_ref(), DELETION_LEASE).await {
            Ok(Some(f)) if f.holder.as_ref().is_some_and(|h| h.id == holder.id) => {
                let cond = f.meta.etag.map(PutCondition::IfMatch).unwrap_or_default();
                if let Err(e) = store
                    .put(DELETION_LEASE, body(&holder), &json_put(cond))
                    .await
                {
                    if e.is_precondition_failed() {
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                    tracing::warn!("renewing the deletion lease: {e}");
                }
            }
            Ok(_) => {
                tracing::warn!("the deletion lease was taken over or removed: stopping");
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::warn!("reading the deletion lease: {e}"),
        }
    }
}

async fn live_pushes(store: &dyn Store, ttl: Duration) -> Result<Vec<Found>, StoreError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = store.list_page(PUSH_PREFIX, token).await?;
        for o in &page.objects {
            if crate::storage::is_temp_litter(&o.key) {
                continue;
            }
            if let Some(f) = read(store, &o.key).await?
                && f.live(ttl)
            {
                out.push(f);
            }
        }
        match page.next {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// The deletion lease, if a live one is out (this process's own included: the dashboard
/// runs pushes and deletions side by side).
async fn deletion_running(store: &dyn Store, ttl: Duration) -> Result<Option<Found>, StoreError> {
    Ok(read(store, DELETION_LEASE).await?.filter(|f| f.live(ttl)))
}

/// A push's registration: narinfos are written only while holding a [`Permit`] from it.
pub struct PushRegistration {
    shared: Arc<PushShared>,
    task: tokio::task::JoinHandle<()>,
}

struct PushShared {
    store: Arc<dyn Store>,
    holder: Holder,
    key: String,
    /// Write: held while paused; read: held by each narinfo write.
    gate: tokio::sync::RwLock<()>,
    epoch: AtomicU64,
    /// What the push is waiting for, for its progress line (empty when not paused).
    status: std::sync::Mutex<String>,
    ttl: Duration,
    finished: AtomicBool,
}

/// Leave to write narinfos; the epoch says whether the push paused since a path's checks.
pub struct Permit<'a> {
    _guard: tokio::sync::RwLockReadGuard<'a, ()>,
    /// The epoch the permit was given in.
    pub epoch: u64,
}

impl PushRegistration {
    /// Registers a push (then waits, if a deletion is running, until it ends).
    pub async fn register(store: Arc<dyn Store>) -> Result<PushRegistration, LeaseError> {
        Self::register_with(store, PUSH_POLL, HEARTBEAT, TTL).await
    }

    async fn register_with(
        store: Arc<dyn Store>,
        poll: Duration,
        heartbeat: Duration,
        ttl: Duration,
    ) -> Result<PushRegistration, LeaseError> {
        let holder = Holder::new("push");
        let key = format!("{PUSH_PREFIX}{}", holder.id);
        let shared = Arc::new(PushShared {
            store,
            holder,
            key,
            gate: tokio::sync::RwLock::new(()),
            epoch: AtomicU64::new(0),
            status: std::sync::Mutex::new(String::new()),
            ttl,
            finished: AtomicBool::new(false),
        });
        shared.announce().await?;
        // Registered first, then look: a deletion that starts later sees us.
        if let Some(f) = deletion_running(shared.store.as_ref(), ttl).await? {
            shared.pause(f, poll).await;
        }
        let task = tokio::spawn(watch(shared.clone(), poll, heartbeat));
        Ok(PushRegistration { shared, task })
    }

    /// Leave to write a narinfo now (waits while paused for a deletion).
    pub async fn permit(&self) -> Permit<'_> {
        let guard = self.shared.gate.read().await;
        Permit {
            _guard: guard,
            epoch: self.shared.epoch.load(Ordering::Acquire),
        }
    }

    /// The current epoch: checks made now hold until it changes.
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// What the push waits for ("" when it does not).
    pub fn status(&self) -> String {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Withdraws the registration.
    pub async fn finish(self) {
        self.task.abort();
        self.shared.finished.store(true, Ordering::Relaxed);
        // Writes in flight are over once the gate is ours.
        let _g = self.shared.gate.write().await;
        self.shared.withdraw().await;
    }
}

impl Drop for PushRegistration {
    /// A registration dropped without [`PushRegistration::finish`] (a cancelled push) is
    /// withdrawn in the background where a runtime still runs; else it lapses.
    fn drop(&mut self) {
        self.task.abort();
        if !self.shared.finished.load(Ordering::Relaxed)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let shared = self.shared.clone();
            rt.spawn(async move { shared.withdraw().await });
        }
    }
}

impl PushShared {
    async fn announce(&self) -> Result<(), StoreError> {
        self.store
            .put(&self.key, body(&self.holder), &json_put(PutCondition::None))
            .await
            .map(|_| ())
    }

    async fn withdraw(&self) {
        if let Err(e) = self
            .store
            .delete_many(std::slice::from_ref(&self.key))
            .await
        {
            tracing::warn!("withdrawing the push registration {}: {e}", self.key);
        }
    }

    fn set_status(&self, s: String) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// Pauses for the deletion `f`: lets narinfo writes in flight end, withdraws, waits for
    /// the lease to go, registers again and checks again; bumps the epoch.
    async fn pause(&self, mut f: Found, poll: Duration) {
        let _paused = self.gate.write().await;
        loop {
            self.set_status(format!("paused while a deletion runs: {}", f.describe()));
            self.withdraw().await;
            loop {
                tokio::time::sleep(poll).await;
                match deletion_running(self.store.as_ref(), self.ttl).await {
                    Ok(Some(again)) => f = again,
                    Ok(None) => break,
                    Err(e) => tracing::warn!("looking for the deletion lease: {e}"),
                }
            }
            if let Err(e) = self.announce().await {
                tracing::warn!("registering the push again: {e}");
                continue;
            }
            match deletion_running(self.store.as_ref(), self.ttl).await {
                Ok(Some(again)) => f = again,
                Ok(None) => break,
                Err(e) => tracing::warn!("looking for the deletion lease: {e}"),
            }
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.set_status(String::new());
    }
}

async fn watch(shared: Arc<PushShared>, poll: Duration, heartbeat: Duration) {
    let mut since_renewal = Duration::ZERO;
    loop {
        tokio::time::sleep(poll).await;
        since_renewal += poll;
        match deletion_running(shared.store.as_ref(), shared.ttl).await {
            Ok(Some(f)) => {
                shared.pause(f, poll).await;
                since_renewal = Duration::ZERO;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("looking for the deletion lease: {e}"),
        }
        if since_renewal >= heartbeat {
            since_renewal = Duration::ZERO;
            if let Err(e) = shared.announce().await {
                tracing::warn!("renewing the push registration: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::file::FileStore;

    fn store(dir: &std::path::Path) -> Arc<dyn Store> {
        Arc::new(FileStore::new(dir).with_fsync(false))
    }

    #[tokio::test]
    async fn one_deletion_at_a_time_and_a_dead_holder_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let a = DeletionLease::acquire(s.clone(), "gc").await.unwrap();
        let e = DeletionLease::acquire(s.clone(), "delete")
            .await
            .err()
            .unwrap();
        assert!(matches!(e, LeaseError::Refused(_)), "{e:?}");
        let e = e.to_string();
        assert!(e.starts_with("refusing") && e.contains("gc (pid"), "{e}");
        a.release().await;
        assert!(!dir.path().join(DELETION_LEASE).exists(), "released");
        // A lease left by a process of this host that is gone does not count.
        let dead = Holder {
            pid: u32::MAX - 7,
            ..Holder::new("gc")
        };
        s.put(DELETION_LEASE, body(&dead), &json_put(PutCondition::None))
            .await
            .unwrap();
        let b = DeletionLease::acquire(s.clone(), "gc").await.unwrap();
        assert!(b.holds());
        b.release().await;
        // One from another host counts until it lapses.
        let remote = Holder {
            host: "elsewhere".into(),
            ..Holder::new("gc")
        };
        s.put(DELETION_LEASE, body(&remote), &json_put(PutCondition::None))
            .await
            .unwrap();
        assert!(DeletionLease::acquire(s.clone(), "gc").await.is_err());
        let lapsed =
            DeletionLease::acquire_with(s.clone(), "gc", HEARTBEAT, Duration::from_millis(0)).await;
        assert!(lapsed.is_ok(), "a lease past its TTL is taken over");
    }

    #[tokio::test]
    async fn a_push_pauses_for_a_deletion_and_its_epoch_moves() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let poll = Duration::from_millis(20);
        let push = PushRegistration::register_with(s.clone(), poll, HEARTBEAT, TTL)
            .await
            .unwrap();
        assert_eq!(push.epoch(), 0);
        let lease = DeletionLease::acquire(s.clone(), "gc").await.unwrap();
        // The push sees the lease, withdraws, and the deletion may go on.
        tokio::time::timeout(
            Duration::from_secs(10),
            lease.wait_for_pushes_within(Duration::from_secs(10), TTL, |_| {}),
        )
        .await
        .expect("the push paused in time")
        .unwrap();
        // While the deletion runs, no narinfo write may start.
        let blocked = tokio::time::timeout(Duration::from_millis(200), push.permit())
            .await
            .is_err();
        assert!(blocked, "no permit while a deletion runs");
        assert!(push.status().contains("paused"), "{}", push.status());
        lease.release().await;
        let permit = tokio::time::timeout(Duration::from_secs(10), push.permit())
            .await
            .expect("the push resumes");
        assert_eq!(permit.epoch, 1, "a pause moves the epoch");
        drop(permit);
        push.finish().await;
        let left: Vec<_> = std::fs::read_dir(dir.path().join(PUSH_PREFIX))
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "the registration is withdrawn");
    }

    #[tokio::test]
    async fn a_deletion_waits_for_a_narinfo_write_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let poll = Duration::from_millis(20);
        let push = Arc::new(
            PushRegistration::register_with(s.clone(), poll, HEARTBEAT, TTL)
                .await
                .unwrap(),
        );
        let wrote = Arc::new(AtomicBool::new(false));
        let (p2, w2) = (push.clone(), wrote.clone());
        let writer = tokio::spawn(async move {
            let _permit = p2.permit().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            w2.store(true, Ordering::SeqCst);
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let lease = DeletionLease::acquire(s.clone(), "gc").await.unwrap();
        lease
            .wait_for_pushes_within(Duration::from_secs(10), TTL, |_| {})
            .await
            .unwrap();
        assert!(
            wrote.load(Ordering::SeqCst),
            "the deletion went on only after the write in flight ended"
        );
        writer.await.unwrap();
        lease.release().await;
    }
}
