//! Adaptive concurrency and request rate of one store, against servers that throttle
//! (B2 around 500 requests/s per account, S3's `503 SlowDown` per prefix).
//!
//! Every attempt of every request goes through the store's retry runner
//! ([`super::retry`]), and the runner asks the store's [`Throttle`] before each attempt:
//!
//! - **Window** (AIMD): at most `window` attempts in flight. An answer that says "slow down"
//!   ([`StoreErrorKind::Throttled`](super::StoreErrorKind::Throttled): 429, 503 `SlowDown`,
//!   …) halves the window (from what was really in flight, never below 1); each answer
//!   while the window is full grows it by `1/window`, i.e. by one attempt per window's worth
//!   of answers. The window starts at [`ThrottlePolicy::max_window`] and never exceeds it.
//! - **Rate**: the same answer also sets a rate limit on attempt starts, at
//!   [`RATE_BACKOFF`] of the answers the server accepted in the last second (at most once a
//!   second, and never below half the limit before); the limit then
//!   grows by [`RATE_GROWTH`] of itself per second, until the server throttles again. A
//!   server that throttles at N requests/s is so approached from below and probed now and
//!   then, instead of being hammered.
//! - **Ceiling**: [`ThrottlePolicy::max_rps`] (`--max-rps`) caps attempt starts per second,
//!   whatever the server says; starts are paced evenly (a token bucket of one token).
//!
//! An attempt that waits [`STALL_ESCAPE`] for room goes ahead anyway: callers hold requests
//! in streams they may stop polling, and such a request must not keep the window shut.
//!
//! One throttling episode reduces once: answers to attempts that started before the last
//! reduction say nothing new (the reduction has not reached the server yet) and only count.
//! The decisions are made by a plain state machine that takes the time as an argument, so
//! the unit tests drive it with a clock of their own.

use serde::Serialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The rate limit set after throttling, as a fraction of the answers accepted in the second
/// before.
pub const RATE_BACKOFF: f64 = 0.9;
/// How fast the rate limit grows back: this fraction of itself per second.
pub const RATE_GROWTH: f64 = 0.05;
/// Accepted answers in the last second below which throttling sets no rate limit (too little
/// to measure; the window alone slows down).
const MIN_RATE_SAMPLE: u64 = 10;
/// The lowest rate limit throttling can set, in requests per second.
const MIN_RATE: f64 = 1.0;
/// An attempt that has waited this long for room in the window goes ahead anyway: a request
/// whose caller has stopped polling it (a stream held back by its consumer) keeps its room,
/// and must not keep the window shut for every other request.
pub const STALL_ESCAPE: Duration = Duration::from_millis(250);
/// The rate limit is cut at most once per this time.
const RATE_EPOCH: Duration = Duration::from_secs(1);

/// How a store limits its requests. The defaults never limit a store that is not throttled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// The largest (and the first) window: attempts in flight at once.
    pub max_window: u32,
    /// At most this many attempt starts per second (`--max-rps`); `None`: no ceiling.
    pub max_rps: Option<u32>,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            max_window: 1024,
            max_rps: None,
        }
    }
}

/// How a store has been throttled so far ([`Throttle::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStats {
    /// Attempts started (retries included).
    pub requests: u64,
    /// Answers that said "slow down" (429, 503 `SlowDown`, …).
    pub throttled: u64,
    /// The window now: attempts allowed in flight.
    pub window: u32,
    /// The smallest window so far.
    pub min_window: u32,
    /// The rate limit throttling set, in attempt starts per second, if any.
    pub rate_limit: Option<f64>,
    /// The ceiling on attempt starts per second (`--max-rps`), if any.
    pub max_rps: Option<u32>,
    /// Seconds from the first attempt's start to the last attempt's end.
    pub elapsed_secs: f64,
    /// Attempts per second over that time.
    pub average_rps: f64,
}

impl ThrottleStats {
    /// Whether the server throttled any request.
    pub fn was_throttled(&self) -> bool {
        self.throttled > 0
    }

    /// What happened since `earlier` (a snapshot of the same store), over `elapsed`: the
    /// requests and throttled answers since, and their average rate over `elapsed`; the
    /// windows and limits as they are now (the smallest window is the store's so far).
    pub fn since(&self, earlier: &ThrottleStats, elapsed: Duration) -> ThrottleStats {
        let requests = self.requests.saturating_sub(earlier.requests);
        let secs = elapsed.as_secs_f64();
        ThrottleStats {
            requests,
            throttled: self.throttled.saturating_sub(earlier.throttled),
            elapsed_secs: secs,
            average_rps: if secs > 0.0 {
                requests as f64 / secs
            } else {
                0.0
            },
            ..*self
        }
    }

    /// "throttled: 312 answers 503/429, window shrank to 9 in flight, average 410 req/s", or
    /// `None` when nothing was throttled.
    pub fn note(&self) -> Option<String> {
        self.was_throttled().then(|| {
            format!(
                "throttled: {} answers 503/429, window shrank to {} in flight, average {:.0} req/s",
                self.throttled, self.min_window, self.average_rps
            )
        })
    }
}

/// How an attempt ended, as far as throttling goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The server answered and did not throttle (an error answer included).
    Answered,
    /// The server said "slow down".
    Throttled,
    /// No answer (a broken connection, a timeout, a local error): says nothing of the rate.
    NoAnswer,
}

/// Counts of the last second, in ten buckets of 100 ms.
#[derive(Debug)]
struct Recent {
    base: Instant,
    buckets: [(u64, u64); 10],
}

impl Recent {
    fn new(base: Instant) -> Recent {
        Recent {
            base,
            buckets: [(u64::MAX, 0); 10],
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_millis() / 100)
            .unwrap_or(u64::MAX - 1)
    }

    fn add(&mut self, now: Instant) {
        let e = self.epoch(now);
        let b = &mut self.buckets[(e % 10) as usize];
        if b.0 != e {
            *b = (e, 0);
        }
        b.1 += 1;
    }

    /// Counts of the last second (the current bucket and the nine before).
    fn last_second(&self, now: Instant) -> u64 {
        let e = self.epoch(now);
        self.buckets
            .iter()
            .filter(|(ep, _)| *ep <= e && e - *ep < 10)
            .map(|(_, n)| n)
            .sum()
    }
}

/// An adaptive rate limit: `base` at `since`, growing by [`RATE_GROWTH`] of `base` per second.
#[derive(Clone, Copy, Debug)]
struct Rate {
    base: f64,
    since: Instant,
}

impl Rate {
    fn at(&self, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(self.since).as_secs_f64();
        self.base * (1.0 + RATE_GROWTH * secs)
    }
}

/// What [`Core::admit`] granted: the attempt's generation, and when it may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Admitted {
    generation: u64,
    start_at: Instant,
}

/// The limiter's decisions, with the time passed in.
#[derive(Debug)]
struct Core {
    max_window: f64,
    max_rps: Option<u32>,
    window: f64,
    in_flight: u32,
    /// Bumped by each reduction; an attempt remembers the generation it started in.
    generation: u64,
    rate: Option<Rate>,
    /// When the rate limit was last cut.
    last_rate_cut: Option<Instant>,
    /// When the next paced start may happen.
    next_start: Option<Instant>,
    accepted: Recent,
    requests: u64,
    throttled: u64,
    min_window: u32,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
}

impl Core {
    fn new(policy: &ThrottlePolicy, now: Instant) -> Core {
        let max = policy.max_window.max(1);
        Core {
            max_window: f64::from(max),
            max_rps: policy.max_rps.filter(|n| *n > 0),
            window: f64::from(max),
            in_flight: 0,
            generation: 0,
            rate: None,
            last_rate_cut: None,
            next_start: None,
            accepted: Recent::new(now),
            requests: 0,
            throttled: 0,
            min_window: max,
            first_start: None,
            last_end: None,
        }
    }

    /// The window as a count of attempts (at least 1).
    fn slots(&self) -> u32 {
        (self.window.floor() as u32).max(1)
    }

    /// Starts per second allowed at `now`, if limited.
    fn rate_at(&self, now: Instant) -> Option<f64> {
        let adaptive = self.rate.map(|r| r.at(now));
        let ceiling = self.max_rps.map(f64::from);
        match (adaptive, ceiling) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }

    /// Lets an attempt in if the window has room: its generation and when it may start
    /// (paced by the rate limit). `None`: the window is full.
    #[cfg(test)]
    fn admit(&mut self, now: Instant) -> Option<Admitted> {
        self.admit_with(now, false)
    }

    /// [`Core::admit`], or with `force` whether or not the window has room.
    fn admit_with(&mut self, now: Instant, force: bool) -> Option<Admitted> {
        if !force && self.in_flight >= self.slots() {
            return None;
        }
        self.in_flight += 1;
        self.requests += 1;
        self.first_start.get_or_insert(now);
        let start_at = match self.rate_at(now) {
            Some(rate) => {
                let at = self.next_start.map_or(now, |n| n.max(now));
                self.next_start = Some(at + Duration::from_secs_f64(1.0 / rate.max(MIN_RATE)));
                at
            }
            None => now,
        };
        Some(Admitted {
            generation: self.generation,
            start_at,
        })
    }

    /// Records how an attempt of `generation` ended.
    fn finish(&mut self, generation: u64, outcome: Outcome, now: Instant) {
        let was_full = self.in_flight >= self.slots();
        let in_flight = self.in_flight;
        self.in_flight = self.in_flight.saturating_sub(1);
        self.last_end = Some(now);
        match outcome {
            Outcome::NoAnswer => {}
            Outcome::Answered => {
                self.accepted.add(now);
                // Only answers to attempts made under the current window say it is enough.
                if was_full && generation == self.generation && self.window < self.max_window {
                    self.window = (self.window + 1.0 / self.window).min(self.max_window);
                }
            }
            Outcome::Throttled => {
                self.throttled += 1;
                if generation == self.generation {
                    self.reduce(in_flight, now);
                }
            }
        }
    }

    /// One reduction: halve the window (from what was in flight) and set the rate limit.
    fn reduce(&mut self, in_flight: u32, now: Instant) {
        self.generation += 1;
        let from = self.window.min(f64::from(in_flight.max(1)));
        self.window = (from / 2.0).max(1.0);
        self.min_window = self.min_window.min(self.slots());
        // The rate is cut at most once a second, from a second's worth of answers, and never
        // below half of what it was: a burst of refusals cannot drive it down to nothing.
        if self
            .last_rate_cut
            .is_some_and(|t| now.saturating_duration_since(t) < RATE_EPOCH)
        {
            return;
        }
        let accepted = self.accepted.last_second(now);
        if accepted >= MIN_RATE_SAMPLE {
            let floor = self.rate.map_or(MIN_RATE, |r| r.at(now) / 2.0);
            let base = (accepted as f64 * RATE_BACKOFF).max(floor).max(MIN_RATE);
            self.rate = Some(Rate { base, since: now });
            self.last_rate_cut = Some(now);
        }
        // Starts already paced at the old rate keep their slots; later ones use the new one.
    }

    fn stats(&self, now: Instant) -> ThrottleStats {
        let elapsed = match (self.first_start, self.last_end) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        ThrottleStats {
            requests: self.requests,
            throttled: self.throttled,
            window: self.slots(),
            min_window: self.min_window,
            rate_limit: self.rate.map(|r| r.at(now)),
            max_rps: self.max_rps,
            elapsed_secs: elapsed,
            average_rps: if elapsed > 0.0 {
                self.requests as f64 / elapsed
            } else {
                0.0
            },
        }
    }
}

/// The limiter of one store: adaptive window and rate, and the `--max-rps` ceiling (see the
/// module documentation).
#[derive(Debug)]
pub struct Throttle {
    core: Mutex<Core>,
    room: tokio::sync::Notify,
}

impl Throttle {
    /// A limiter with this policy.
    pub fn new(policy: &ThrottlePolicy) -> Throttle {
        Throttle {
            core: Mutex::new(Core::new(policy, Instant::now())),
            room: tokio::sync::Notify::new(),
        }
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How this store has been throttled so far.
    pub fn stats(&self) -> ThrottleStats {
        self.core().stats(Instant::now())
    }

    /// Sets (or with `None` or 0 removes) the ceiling on attempt starts per second.
    pub fn set_max_rps(&self, max_rps: Option<u32>) {
        let mut c = self.core();
        c.max_rps = max_rps.filter(|n| *n > 0);
        c.next_start = None;
    }

    /// Waits for room in the window and for the attempt's turn under the rate limits.
    /// After [`STALL_ESCAPE`] without room it goes ahead over the window.
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        let since = Instant::now();
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let force = since.elapsed() >= STALL_ESCAPE;
            let admitted = self.core().admit_with(Instant::now(), force);
            if let Some(a) = admitted {
                let permit = Permit {
                    throttle: self,
                    generation: a.generation,
                    done: false,
                };
                if a.start_at > Instant::now() {
                    tokio::time::sleep_until(a.start_at.into()).await;
                }
                return permit;
            }
            let _ = tokio::time::timeout(STALL_ESCAPE, room).await;
        }
    }
}

/// Room for one attempt in a [`Throttle`]'s window; give it back with [`Permit::finish`]
/// (dropped unfinished, as when a request is cancelled, it counts as no answer).
pub(crate) struct Permit<'a> {
    throttle: &'a Throttle,
    generation: u64,
    done: bool,
}

impl Permit<'_> {
    /// Records how the attempt ended and frees its room.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.release(outcome);
    }

    fn release(&mut self, outcome: Outcome) {
        if !self.done {
            self.done = true;
            self.throttle
                .core()
                .finish(self.generation, outcome, Instant::now());
            self.throttle.room.notify_waiters();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.release(Outcome::NoAnswer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core(max_window: u32, max_rps: Option<u32>) -> (Core, Instant) {
        let t0 = Instant::now();
        let c = Core::new(
            &ThrottlePolicy {
                max_window,
                max_rps,
            },
            t0,
        );
        (c, t0)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_window_admits_up_to_its_size() {
        let (mut c, t0) = core(4, None);
        let got: Vec<_> = (0..4).map(|_| c.admit(t0).unwrap()).collect();
        assert!(got.iter().all(|a| a.start_at == t0 && a.generation == 0));
        assert_eq!(c.admit(t0), None, "full");
        c.finish(0, Outcome::Answered, t0);
        assert!(c.admit(t0).is_some(), "room again");
        assert_eq!(c.stats(t0).requests, 5);
    }

    #[test]
    fn throttling_halves_the_window_once_per_episode() {
        let (mut c, t0) = core(64, None);
        for _ in 0..40 {
            c.admit(t0).unwrap();
        }
        // Forty attempts in flight, all of generation 0, all throttled: one reduction, from
        // what was in flight (40), not from the window (64).
        for i in 0..40 {
            c.finish(0, Outcome::Throttled, t0 + ms(i));
        }
        let s = c.stats(t0);
        assert_eq!((s.window, s.min_window, s.throttled), (20, 20, 40));
        // A throttled attempt of the new generation reduces again.
        let a = c.admit(t0).unwrap();
        assert_eq!(a.generation, 1);
        for _ in 0..19 {
            c.admit(t0).unwrap();
        }
        c.finish(1, Outcome::Throttled, t0);
        assert_eq!(c.stats(t0).window, 10);
    }

    #[test]
    fn the_window_never_falls_below_one() {
        let (mut c, t0) = core(8, None);
        for g in 0..20 {
            let a = c.admit(t0).unwrap();
            assert_eq!(a.generation, g);
            c.finish(a.generation, Outcome::Throttled, t0);
        }
        let s = c.stats(t0);
        assert_eq!((s.window, s.min_window, s.throttled), (1, 1, 20));
        assert!(c.admit(t0).is_some(), "one attempt always fits");
        assert_eq!(c.admit(t0), None);
    }

    #[test]
    fn the_window_grows_back_slowly_and_only_while_full() {
        let (mut c, t0) = core(16, None);
        for _ in 0..16 {
            c.admit(t0).unwrap();
        }
        c.finish(0, Outcome::Throttled, t0);
        assert_eq!(c.slots(), 8);
        // Drain the attempts of the old generation; answers while the window is not full do
        // not grow it.
        for _ in 0..15 {
            c.finish(0, Outcome::Answered, t0);
        }
        assert_eq!(c.slots(), 8);
        // Keep the window full: one more slot per window's worth of answers.
        let mut answers = 0;
        while c.slots() < 16 {
            while c.admit(t0).is_some() {}
            c.finish(1, Outcome::Answered, t0);
            answers += 1;
            assert!(answers < 1000);
        }
        // From 8 to 16: about 8 + 9 + … + 15 answers (the sum of the windows), never a jump.
        assert!((80..=130).contains(&answers), "{answers}");
        for _ in 0..1000 {
            while c.admit(t0).is_some() {}
            c.finish(1, Outcome::Answered, t0);
        }
        assert_eq!(c.slots(), 16, "never above the ceiling");
    }

    #[test]
    fn answers_without_a_reply_change_nothing() {
        let (mut c, t0) = core(4, None);
        for _ in 0..4 {
            c.admit(t0).unwrap();
        }
        c.finish(0, Outcome::NoAnswer, t0);
        let s = c.stats(t0);
        assert_eq!((s.window, s.throttled, s.rate_limit), (4, 0, None));
    }

    #[test]
    fn throttling_sets_a_rate_limit_below_what_was_accepted_and_it_grows_back() {
        let (mut c, t0) = core(64, None);
        // 500 answers accepted within the last second (50 per 100 ms)…
        for i in 0..500u64 {
            let now = t0 + ms(i * 2);
            c.admit(now).unwrap();
            c.finish(0, Outcome::Answered, now);
        }
        let now = t0 + ms(1000);
        c.admit(now).unwrap();
        c.finish(0, Outcome::Throttled, now);
        // …the limit is 90% of what was accepted in the last second (only the answers of
        // the last ten 100 ms buckets count).
        let limit = c.stats(now).rate_limit.unwrap();
        assert!((400.0..=450.0).contains(&limit), "{limit}");
        // Starts are paced at that rate: 1/limit apart.
        let a = c.admit(now).unwrap();
        c.finish(a.generation, Outcome::Answered, now);
        let b = c.admit(now).unwrap();
        let gap = b.start_at - a.start_at;
        let want = Duration::from_secs_f64(1.0 / limit);
        assert!(
            gap >= want - ms(1) && gap <= want + ms(1),
            "{gap:?} {want:?}"
        );
        // It grows by 5% of itself per second.
        let later = c.stats(now + Duration::from_secs(2)).rate_limit.unwrap();
        assert!((later / limit - 1.10).abs() < 0.01, "{later} {limit}");
    }

    #[test]
    fn too_few_answers_set_no_rate_limit() {
        let (mut c, t0) = core(64, None);
        c.admit(t0).unwrap();
        c.finish(0, Outcome::Throttled, t0);
        assert_eq!(c.stats(t0).rate_limit, None);
        assert_eq!(c.admit(t0).unwrap().start_at, t0, "not paced");
    }

    #[test]
    fn max_rps_paces_starts_evenly() {
        let (mut c, t0) = core(1024, Some(100));
        let starts: Vec<Instant> = (0..10).map(|_| c.admit(t0).unwrap().start_at).collect();
        for (i, s) in starts.iter().enumerate() {
            assert_eq!(*s, t0 + ms(10 * i as u64), "start {i}");
        }
        // After a pause, the bucket holds one token again, not a burst of them.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(c.admit(later).unwrap().start_at, later);
        assert_eq!(c.admit(later).unwrap().start_at, later + ms(10));
        let s = c.stats(later);
        assert_eq!((s.max_rps, s.rate_limit, s.throttled), (Some(100), None, 0));
    }

    #[test]
    fn max_rps_caps_the_adaptive_rate() {
        let (mut c, t0) = core(64, Some(50));
        for i in 0..200u64 {
            let now = t0 + ms(i * 5);
            c.admit(now).unwrap();
            c.finish(0, Outcome::Answered, now);
        }
        let now = t0 + ms(1000);
        assert_eq!(c.rate_at(now), Some(50.0));
        c.admit(now).unwrap();
        c.finish(0, Outcome::Throttled, now);
        // the adaptive limit (about 180/s) is above the ceiling: the ceiling holds
        assert_eq!(c.rate_at(now), Some(50.0));
    }

    #[test]
    fn the_note_says_how_it_throttled() {
        let s = ThrottleStats {
            requests: 1000,
            throttled: 312,
            window: 12,
            min_window: 9,
            rate_limit: Some(400.0),
            max_rps: None,
            elapsed_secs: 2.5,
            average_rps: 410.2,
        };
        assert_eq!(
            s.note().unwrap(),
            "throttled: 312 answers 503/429, window shrank to 9 in flight, average 410 req/s"
        );
        assert_eq!(ThrottleStats::default().note(), None);
        let earlier = ThrottleStats {
            requests: 200,
            throttled: 12,
            ..s
        };
        let job = s.since(&earlier, Duration::from_secs(4));
        assert_eq!((job.requests, job.throttled, job.min_window), (800, 300, 9));
        assert_eq!(job.average_rps, 200.0);
        assert_eq!(s.since(&s, Duration::from_secs(1)).note(), None);
    }

    #[tokio::test]
    async fn permits_wait_for_room_and_free_it_when_dropped() {
        let t = std::sync::Arc::new(Throttle::new(&ThrottlePolicy {
            max_window: 1,
            max_rps: None,
        }));
        let p = t.acquire().await;
        let t2 = t.clone();
        let waiter = tokio::spawn(async move {
            let q = t2.acquire().await;
            q.finish(Outcome::Answered);
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "no room while the permit is held");
        drop(p);
        waiter.await.unwrap();
        let s = t.stats();
        assert_eq!((s.requests, s.throttled, s.window), (2, 0, 1));
    }
}
