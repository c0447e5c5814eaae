//! Which way tenant traffic flows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Direction of tenant traffic relative to the tenant's users.
///
/// Text form: `uplink`, `downlink` (metrics labels, the agent's spool); [`Direction::short`]
/// gives `up`, `down` (ledger record keys). Parsing accepts both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Users toward the network: the tenant prefix is the destination.
    #[serde(alias = "up")]
    Uplink,
    /// The network toward users: the tenant prefix is the source.
    #[serde(alias = "down")]
    Downlink,
}

impl Direction {
    /// Both directions, uplink first.
    pub const ALL: [Self; 2] = [Self::Uplink, Self::Downlink];

    /// `uplink` or `downlink`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uplink => "uplink",
            Self::Downlink => "downlink",
        }
    }

    /// `up` or `down`.
    pub fn short(self) -> &'static str {
        match self {
            Self::Uplink => "up",
            Self::Downlink => "down",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A direction name that is none of `uplink`, `downlink`, `up`, `down`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("direction {0:?} is none of uplink, downlink, up, down")]
pub struct ParseDirectionError(pub String);

impl FromStr for Direction {
    type Err = ParseDirectionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s || d.short() == s)
            .ok_or_else(|| ParseDirectionError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_names_parse_and_serde_writes_the_long_one() {
        for d in Direction::ALL {
            assert_eq!(d.as_str().parse::<Direction>(), Ok(d));
            assert_eq!(d.short().parse::<Direction>(), Ok(d));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{d}\""));
            let short: Direction = serde_json::from_str(&format!("\"{}\"", d.short())).unwrap();
            assert_eq!(short, d);
        }
        assert!("sideways".parse::<Direction>().is_err());
    }
}
