//! Protobuf messages and the gRPC client and server generated from `proto/hsn/ledger/v1`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("hsn.ledger.v1");
