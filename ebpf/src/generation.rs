//! Two-generation switches: state the programs read is kept twice, and a `*_gen` array
//! (key 0, value 0 or 1) says which copy packets use. The agent writes the other copy, then
//! flips the switch: one write of one changing byte, so a packet reads the old state or the
//! new one, whole, and a failed update leaves the old state in force.

use std::time::{Duration, Instant};

use aya::maps::{Array, MapData, MapError};

use crate::Error;

/// A copy is rewritten at least this long after packets stopped being directed to it. A
/// program run reads the switch once and finishes within microseconds (XDP runs to
/// completion with preemption disabled), so after this no run can still be reading it.
const QUIET: Duration = Duration::from_millis(10);

/// One switch and what this process knows about it.
pub(crate) struct Generation {
    map: Array<MapData, u32>,
    name: &'static str,
    active: u8,
    /// When packets were last directed to the other copy.
    flipped: Option<Instant>,
}

impl Generation {
    /// Reads the switch (pinned by an earlier load, or fresh: 0).
    pub(crate) fn load(map: Array<MapData, u32>, name: &'static str) -> Result<Self, Error> {
        let active = map
            .get(&0, 0)
            .map_err(|source| Error::ReadMap { map: name, source })?;
        Ok(Self {
            map,
            name,
            active: (active & 1) as u8,
            flipped: None,
        })
    }

    /// The copy packets read.
    pub(crate) fn active(&self) -> u8 {
        self.active
    }

    /// The copy to write next; waits until no program run can still be reading it.
    pub(crate) fn writable(&self) -> u8 {
        if let Some(at) = self.flipped {
            std::thread::sleep(QUIET.saturating_sub(at.elapsed()));
        }
        1 - self.active
    }

    /// Directs packets to copy `g`.
    pub(crate) fn switch_to(&mut self, g: u8) -> Result<(), MapError> {
        self.map.set(0, u32::from(g), 0)?;
        self.active = g;
        self.flipped = Some(Instant::now());
        Ok(())
    }

    /// The switch map's name, for errors.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }
}
