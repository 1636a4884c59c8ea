//! A circuit breaker per activation: after `threshold` consecutive failures
//! the activation is skipped (its category's failure policy applies without
//! calling it) for a cool-down; then one trial call decides whether it
//! closes again. This bounds what a broken plugin costs every request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker.
pub const DEFAULT_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls before a trial.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// The breaker of one activation.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

/// What the breaker says about a call about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: call.
    Call,
    /// Half-open: this call is the trial.
    Trial,
    /// Open: do not call.
    Refuse,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            state: Mutex::new(State {
                consecutive_failures: 0,
                open_until: None,
                trial_in_flight: false,
            }),
        }
    }

    /// Asks whether a call may go ahead.
    pub fn admit(&self) -> Admission {
        let mut s = self.state.lock().expect("breaker lock");
        match s.open_until {
            None => Admission::Call,
            Some(until) if Instant::now() < until || s.trial_in_flight => Admission::Refuse,
            Some(_) => {
                s.trial_in_flight = true;
                Admission::Trial
            }
        }
    }

    /// Records a success: the breaker closes.
    pub fn success(&self) {
        let mut s = self.state.lock().expect("breaker lock");
        s.consecutive_failures = 0;
        s.open_until = None;
        s.trial_in_flight = false;
    }

    /// Records a failure; returns true when this failure opened the breaker.
    pub fn failure(&self) -> bool {
        let mut s = self.state.lock().expect("breaker lock");
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        let was_open = s.open_until.is_some();
        if s.trial_in_flight || s.consecutive_failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.cool_down);
            s.trial_in_flight = false;
            return !was_open;
        }
        false
    }

    /// Ends a trial that neither succeeded nor failed (the plugin declined,
    /// the input was refused before the call): the next call is a trial.
    pub fn release_trial(&self) {
        self.state.lock().expect("breaker lock").trial_in_flight = false;
    }

    /// Whether the breaker is open now (for the admin API).
    pub fn is_open(&self) -> bool {
        let s = self.state.lock().expect("breaker lock");
        s.open_until.is_some_and(|u| Instant::now() < u)
    }

    /// Consecutive failures so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.state
            .lock()
            .expect("breaker lock")
            .consecutive_failures
    }
}

/// Holds a half-open trial: if the call is abandoned (its future dropped:
/// client gone, request timeout, a panic), the trial counts as a failure,
/// so the breaker can never stay half-open for good.
pub struct TrialGuard<'a> {
    breaker: &'a CircuitBreaker,
    armed: bool,
}

impl<'a> TrialGuard<'a> {
    /// A guard; `armed` when the admission was a trial.
    pub fn new(breaker: &'a CircuitBreaker, armed: bool) -> Self {
        Self { breaker, armed }
    }

    /// The call finished; the caller records the outcome.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.breaker.failure();
        }
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD, DEFAULT_COOL_DOWN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_trials_after_cool_down() {
        let b = CircuitBreaker::new(2, Duration::from_millis(20));
        assert_eq!(b.admit(), Admission::Call);
        assert!(!b.failure());
        assert!(b.failure());
        assert_eq!(b.admit(), Admission::Refuse);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(b.admit(), Admission::Trial);
        assert_eq!(b.admit(), Admission::Refuse, "one trial at a time");
        b.failure();
        assert_eq!(b.admit(), Admission::Refuse);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(b.admit(), Admission::Trial);
        b.success();
        assert_eq!(b.admit(), Admission::Call);
    }
}
