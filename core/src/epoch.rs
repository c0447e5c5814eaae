//! Metering epochs: fixed windows of unix time, numbered from the unix epoch.

/// How long after an epoch ends its records are accepted by default: six hours, so an edge
/// cut off for hours is still paid. The epoch is sealed, its rewards final, when it is over.
pub const DEFAULT_LATE_WINDOW_SECONDS: u64 = 6 * 3600;

/// How long past the end of the epoch open when it is stopped an agent the network no
/// longer places may take to close that epoch and ship its records (the agent's drain);
/// the operator gives the agents' pods the epoch length plus this as their termination
/// grace period.
pub const DRAIN_SECONDS: u64 = 45;

use std::time::Duration;

/// The epoch clock: epoch `e` covers unix seconds `[e * seconds, (e + 1) * seconds)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochClock {
    seconds: u64,
}

impl EpochClock {
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

    /// The epoch containing unix time `t` (seconds).
    pub fn at(&self, t: u64) -> u64 {
        t / self.seconds
    }

    /// The newest epoch that ended at least `grace` seconds before `now`, if any.
    pub fn ended_by(&self, now: u64, grace: u64) -> Option<u64> {
        (now.checked_sub(grace)? / self.seconds).checked_sub(1)
    }

    /// How long from `now` (since the unix epoch) until the current epoch ends.
    pub fn until_end(&self, now: Duration) -> Duration {
        let len = u128::from(self.seconds) * 1000;
        let left = len - now.as_millis() % len;
        Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_end_and_close_after_their_grace() {
        let e = EpochClock::new(60);
        assert_eq!(e.at(119), 1);
        assert_eq!(e.at(120), 2);
        // Epoch 1 ends at 120; with 10 s grace it is done from 130.
        assert_eq!(e.ended_by(129, 10), Some(0));
        assert_eq!(e.ended_by(130, 10), Some(1));
        assert_eq!(e.ended_by(59, 0), None);
        assert_eq!(e.ended_by(60, 0), Some(0));
        assert_eq!(e.ended_by(5, 10), None);
        assert_eq!(EpochClock::new(0).seconds(), 1);
        assert_eq!(
            e.until_end(Duration::from_millis(61_500)),
            Duration::from_millis(58_500)
        );
        assert_eq!(
            e.until_end(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
    }
}
