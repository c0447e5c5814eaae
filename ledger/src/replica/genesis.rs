//! The application state of a network's genesis lives in `hsn_ledger_api::genesis` (the
//! operator writes it, replicas read it); what the ledger makes of it is here.

pub use hsn_ledger_api::genesis::{AppState, DEFAULT_LATE_WINDOW_SECONDS, GenesisError};

use crate::ledger::LedgerConfig;

/// The ledger settings of a genesis.
pub fn ledger_config(state: &AppState) -> LedgerConfig {
    LedgerConfig {
        network: state.network.clone(),
        epoch_seconds: state.epoch_seconds,
        grace_seconds: state.late_window_seconds,
        tolerance: state.tolerance,
        max_block_entries: state.max_block_entries,
        max_batch_items: state.max_batch_items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsn_core::Role;
    use hsn_ledger_api::keys::{NodeKey, RegisteredKey};

    #[test]
    fn the_late_window_is_the_ledgers_grace() {
        let key = NodeKey::of(&ed25519_dalek::SigningKey::from_bytes(&[3; 32]));
        let mut state = AppState::new(
            "n",
            vec![],
            vec![RegisteredKey {
                role: Role::Super,
                key,
                name: "s".into(),
                retired: false,
            }],
        );
        state.late_window_seconds = 7200;
        let config = ledger_config(&state);
        assert_eq!(config.grace_seconds, 7200);
        assert_eq!(config.network, "n");
    }
}
