//! Well-known ports. Each is written here once; flags default to these and the operator's
//! pod specs expose them.
//!
//! Agents and super-node pods use the host network, so their ports are the node's: none may
//! be one that a node daemon of a usual cluster holds. The metrics ports follow the ledger's
//! (7443..7446, one block to open in a firewall). They were 9100..9102: Prometheus'
//! node-exporter holds host port 9100 on every node of a cluster that runs it, and the
//! scheduler then leaves every edge pod Pending ("didn't have free ports for the requested
//! pod ports").

/// A super node's ledger gRPC service (records from edges, observations, `hsnctl ledger`).
pub const LEDGER: u16 = 7443;
/// An edge agent's `/metrics` and health endpoints.
pub const EDGE_METRICS: u16 = 7444;
/// A super-node agent's `/metrics` and health endpoints (apart from the edge's, so both
/// roles can share a host network).
pub const SUPER_METRICS: u16 = 7445;
/// The operator's `/metrics`, `/healthz` and `/readyz`.
pub const OPERATOR_METRICS: u16 = 8080;
/// A super node's ledger `/metrics` (`hsn-ledger node`).
pub const LEDGER_METRICS: u16 = 7446;
/// A super node's CometBFT peer-to-peer listener: the other validators connect here.
pub const COMETBFT_P2P: u16 = 26656;
/// A super node's CometBFT RPC, on loopback: the ledger submits transactions there.
pub const COMETBFT_RPC: u16 = 26657;
/// The ledger's ABCI (gRPC) listener, on loopback: its CometBFT node connects here.
pub const ABCI: u16 = 26658;
/// A super node's CometBFT `/metrics`.
pub const COMETBFT_METRICS: u16 = 26660;
