//! The HSN ledger: signed metering records, attestation, Merkle blocks, storage, the gRPC
//! service, chain verification and rewards.
//!
//! Records, keys, the protobuf API and the client are `hsn_ledger_api`'s. Layers, from pure
//! to effectful: [`attest`], [`entry`], [`merkle`], [`block`], [`verify`], [`proof`],
//! [`rewards`] are pure; [`store`] is the redb file; [`ledger`] combines them with a clock
//! and the super node's key; [`service`] and [`server`] put it on gRPC; [`chain`] walks a
//! whole chain from a store file or a ledger. `hsnctl` (crate `hsnctl`) is built on them.

pub mod attest;
pub mod block;
pub mod chain;
pub mod clock;
pub mod endorsing;
pub mod entry;
pub mod ledger;
pub mod merkle;
pub mod metrics;
pub mod proof;
pub mod replica;
pub mod rewards;
pub mod server;
pub mod service;
pub mod sigs;
pub mod store;
pub mod verify;
