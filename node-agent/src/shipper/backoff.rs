//! Exponential backoff with a cap and jitter, for retrying ledger submissions.

use std::time::Duration;

/// Doubling delays from `initial` up to `max`, each drawn from `[d/2, d)` ("equal jitter") so
/// agents that failed together do not retry together, yet never wait less than half the step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff starting at `initial` (at least 1 ms) and capped at `max` (at least `initial`).
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The step before jitter for the next failure: `initial · 2^failures`, capped.
    pub fn step(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Records a failure and returns the delay before the next attempt; `unit` in `[0, 1)`
    /// places it within `[step/2, step)`.
    pub fn fail_with(&mut self, unit: f64) -> Duration {
        let step = self.step();
        self.failures = self.failures.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(unit.clamp(0.0, 0.999_999))
    }

    /// Records a failure with a random jitter.
    pub fn fail(&mut self) -> Duration {
        self.fail_with(random_unit())
    }

    /// A success: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A number in `[0, 1)` from the OS random source (0.5 if it fails: jitter is best effort).
fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn delays_double_up_to_the_cap_within_the_jitter_band() {
        let mut b = Backoff::new(S(1), S(60));
        let steps: Vec<Duration> = (0..10)
            .map(|_| {
                let step = b.step();
                let low = b.clone().fail_with(0.0);
                let high = b.clone().fail_with(0.999_999_9);
                assert_eq!(low, step / 2);
                assert!(high < step && high >= step / 2, "{high:?} vs {step:?}");
                b.fail();
                step
            })
            .collect();
        assert_eq!(
            steps,
            [1, 2, 4, 8, 16, 32, 60, 60, 60, 60].map(S).to_vec(),
            "doubling, then capped"
        );
        assert_eq!(b.failures(), 10);
    }

    #[test]
    fn random_delays_stay_in_band_and_reset_restarts() {
        let mut b = Backoff::new(Duration::from_millis(100), S(2));
        for _ in 0..1000 {
            let step = b.step();
            let d = b.fail();
            assert!(
                d >= step / 2 && d < step,
                "{d:?} not in [{step:?}/2, {step:?})"
            );
            assert!(d < S(2));
        }
        // Enormous failure counts neither overflow nor exceed the cap.
        assert_eq!(b.step(), S(2));
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(100));
        // Degenerate settings are made sane.
        let z = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(z.step(), Duration::from_millis(1));
    }
}
