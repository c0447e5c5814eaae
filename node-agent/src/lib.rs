//! `hsn-agent`, the per-node daemon: identity, Lease heartbeat, routes to eBPF maps, epoch
//! metering and spool. Placeholder until the agent lands.
