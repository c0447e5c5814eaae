//! What an agent is: a super node or an edge node.

use serde::{Deserialize, Serialize};

crate::words! {
    /// The two kinds of HSN node.
    ///
    /// Text form (labels, Lease annotations, flags, ledger registry files): `edge`, `super`.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Role: "role" {
        /// Forwards and meters tenant traffic close to users; signs records of what it carried.
        Edge = "edge",
        /// Carries and attests the traffic of its edge nodes; signs observations and blocks.
        Super = "super",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_serde_and_parse_agree() {
        for &role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        assert!("Super".parse::<Role>().is_err());
        assert_eq!(
            "".parse::<Role>().unwrap_err().to_string(),
            "unknown role \"\" (one of: edge, super)"
        );
    }
}
