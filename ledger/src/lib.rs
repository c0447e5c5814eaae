//! The HSN ledger: signed metering records, attestation, Merkle blocks, storage, the gRPC
//! service, chain verification and rewards.
//!
//! Layers, from pure to effectful: [`record`], [`attest`], [`entry`], [`merkle`], [`block`],
//! [`verify`], [`rewards`] are pure; [`store`] is the redb file; [`ledger`] combines them
//! with a clock and the super node's key; [`service`] and [`server`] put it on gRPC;
//! [`cli`] is `hsnctl` (`ledger`; with the `kube` feature also `networks`, `nodes`, `routes`).

pub mod attest;
pub mod block;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod entry;
pub mod ledger;
pub mod merkle;
pub mod metrics;
pub mod proof;
pub mod rewards;
pub mod server;
pub mod service;
pub mod sigs;
pub mod store;
pub mod testkit;
pub mod verify;
