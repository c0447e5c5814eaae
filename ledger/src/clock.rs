//! Time and epochs. Time is injected so tests can close epochs without waiting.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of unix time in seconds.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in unix seconds.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock tests set by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `now`.
    pub fn new(now: u64) -> Self {
        Self(AtomicU64::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The epoch clock: epoch `e` covers unix seconds `[e * seconds, (e + 1) * seconds)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epochs {
    seconds: u64,
}

impl Epochs {
    /// Epochs of `seconds` (at least 1).
    pub fn new(seconds: u64) -> Self {
        Self {
            seconds: seconds.max(1),
        }
    }

    /// Epoch length in seconds.
    pub fn seconds(&self) -> u64 {
        self.seconds
    }

    /// The epoch containing unix time `t`.
    pub fn at(&self, t: u64) -> u64 {
        t / self.seconds
    }

    /// The last epoch that ended at least `grace` seconds before `now`, if any.
    pub fn sealable_through(&self, now: u64, grace: u64) -> Option<u64> {
        (now.checked_sub(grace)? / self.seconds).checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_close_after_their_grace() {
        let e = Epochs::new(60);
        assert_eq!(e.at(119), 1);
        assert_eq!(e.at(120), 2);
        // Epoch 1 ends at 120; with 10 s grace it is sealable from 130.
        assert_eq!(e.sealable_through(129, 10), Some(0));
        assert_eq!(e.sealable_through(130, 10), Some(1));
        assert_eq!(e.sealable_through(59, 0), None);
        assert_eq!(e.sealable_through(5, 10), None);
        assert_eq!(Epochs::new(0).seconds(), 1);
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(10);
        c.advance(5);
        assert_eq!(c.now(), 15);
        c.set(3);
        assert_eq!(c.now(), 3);
    }
}
