//! A chain that has history must not begin a second one. A super node's chain data (its
//! CometBFT home and the replica's store) live on the node it runs on; rescheduled to
//! another node, its pod starts from an empty home. With other validators it syncs their
//! blocks and cannot commit alone; a network's only validator would instead begin the
//! chain again at height 1 from the same genesis, and every record acknowledged before
//! would be missing from it. The operator writes `history` into the ledger ConfigMap once
//! the chain has committed a block (and keeps it); a node that finds that file, a home
//! that never signed a block and no peer to sync from waits instead of starting, and says
//! why, until a peer is listed or it is stopped. With peers listed it starts and syncs
//! from them. Once the chain has history the operator lists as peers only the validators
//! whose replica reports a committed block, so when every validator lost its data at once
//! none is listed and none begins the chain again: they all wait.

use std::path::Path;
use std::time::Duration;

use super::peers::Peer;
use super::relay::Copies;

/// How often a node that must not start looks again.
pub const HISTORY_POLL: Duration = Duration::from_secs(2);

/// The last height this validator signed at: CometBFT's guard against signing twice
/// (`data/priv_validator_state.json` in its home); 0 for a home that never signed one.
pub fn signed_height(home: &Path) -> u64 {
    let path = home.join("data").join("priv_validator_state.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
        return 0;
    };
    match &state["height"] {
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// Why a node must not start now: the chain has history (the file `history` names), its
/// home at `home` never signed a block and `peers` lists no other validator to sync from.
/// `None`: it may start.
pub fn refusal(history: &Copies, home: &Path, peers: &[Peer]) -> Option<String> {
    let path = history.freshest()?;
    let seen = std::fs::read_to_string(&path).ok()?;
    let seen = seen.trim();
    if seen.is_empty() || signed_height(home) > 0 || !peers.is_empty() {
        return None;
    }
    Some(format!(
        "the chain has history ({seen}, from {}) but this node's CometBFT home {} never \
         signed a block and no other validator is listed to sync from: starting would begin \
         a second chain from the genesis. Its data is on the node this super node ran on \
         before: run the pod there again",
        path.display(),
        home.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "0123456789abcdef0123456789abcdef01234567@10.0.0.1:26656";

    #[test]
    fn a_fresh_home_of_a_chain_with_history_and_no_peer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let history = Copies::new(dir.path().join("history"), None);
        assert_eq!(refusal(&history, &home, &[]), None, "no history yet");

        std::fs::write(dir.path().join("history"), "chain height 12\n").unwrap();
        let why = refusal(&history, &home, &[]).expect("refused");
        assert!(
            why.contains("chain height 12") && why.contains("second chain"),
            "{why}"
        );
        let peer: Peer = PEER.parse().unwrap();
        assert_eq!(
            refusal(&history, &home, &[peer]),
            None,
            "a peer to sync from"
        );

        std::fs::create_dir_all(home.join("data")).unwrap();
        let state = home.join("data").join("priv_validator_state.json");
        std::fs::write(&state, r#"{"height": "0", "round": 0, "step": 0}"#).unwrap();
        assert!(refusal(&history, &home, &[]).is_some(), "never signed");
        std::fs::write(&state, r#"{"height": "57", "round": 0, "step": 3}"#).unwrap();
        assert_eq!(signed_height(&home), 57);
        assert_eq!(refusal(&history, &home, &[]), None, "its own history");
    }
}
