//! What a client of the HSN ledger needs to produce, send and read ledger data: the
//! protobuf API ([`pb`]), signed records and observations ([`record`]) with the bytes that
//! are signed ([`canonical`]), node keys and key files ([`keys`]), connecting over (m)TLS
//! ([`client`]), why a submission is refused ([`refusal`]) and the CometBFT RPC calls a
//! replicated ledger makes ([`cometbft`]).
//!
//! No storage, no server: the agent depends on this crate alone; the ledger service
//! (`hsn-ledger`) and `hsnctl` build on it.

pub mod canonical;
pub mod client;
pub mod cometbft;
pub mod genesis;
pub mod keys;
pub mod pb;
pub mod record;
pub mod refusal;
pub mod registry;
