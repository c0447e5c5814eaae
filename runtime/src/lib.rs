//! What every HSN binary (operator, agent, ledger) runs besides its job, written once:
//!
//! - [`admin`]: the admin HTTP server, `/metrics` (OpenMetrics text), `/healthz` and
//!   `/readyz`;
//! - [`heap`]: malloc settings that return a bursty binary's memory to the system;
//! - [`signals`]: the shutdown signal (SIGTERM or Ctrl-C) and reload signals (SIGHUP);
//! - [`telemetry`]: logs through `tracing` (text or JSON lines, `RUST_LOG`), and with the
//!   `otlp` feature spans exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

pub mod admin;
pub mod heap;
pub mod signals;
pub mod telemetry;
