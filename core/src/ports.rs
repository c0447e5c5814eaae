//! Well-known ports. Each is written here once; flags default to these and the operator's
//! pod specs expose them.

/// A super node's ledger gRPC service (records from edges, observations, `hsnctl ledger`).
pub const LEDGER: u16 = 7443;
/// An edge agent's `/metrics` and health endpoints.
pub const EDGE_METRICS: u16 = 9100;
/// A super-node agent's `/metrics` and health endpoints (apart from the edge's, so both
/// roles can share a host network).
pub const SUPER_METRICS: u16 = 9101;
/// The operator's `/metrics`, `/healthz` and `/readyz`.
pub const OPERATOR_METRICS: u16 = 8080;
