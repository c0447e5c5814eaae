//! What the agent reports about itself (Lease annotations), shared through a `watch`.

use tokio::sync::watch;

/// The agent's reportable state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStatus {
    /// Why the latest routes table was refused, if it was.
    pub routes_error: Option<String>,
    /// How the program is attached: `xdp-native`, `xdp-generic`, or `detached`.
    pub datapath: String,
    /// The last epoch closed into the spool.
    pub last_epoch: Option<u64>,
    /// Super: the network's chain as its ledger replica last reported it ([`crate::chain`]).
    pub ledger: Option<hsn_api::network::LedgerHead>,
}

/// The writing side, held by the index, the map writer and the epoch loop.
pub type StatusTx = watch::Sender<AgentStatus>;
