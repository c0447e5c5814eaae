//! What an agent is: a super node or an edge node.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The two kinds of HSN node.
///
/// Text form (labels, Lease annotations, flags, ledger registry files): `edge`, `super`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Forwards and meters tenant traffic close to users; signs records of what it carried.
    Edge,
    /// Carries and attests the traffic of its edge nodes; signs observations and blocks.
    Super,
}

impl Role {
    /// Both roles, edge first.
    pub const ALL: [Self; 2] = [Self::Edge, Self::Super];

    /// `edge` or `super`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::Super => "super",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is neither `edge` nor `super`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("role {0:?} is neither edge nor super")]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseRoleError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_serde_and_parse_agree() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        assert!("Super".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }
}
