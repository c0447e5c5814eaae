//! What counts as a write: member requests other than GET, and the network controller's
//! hub writes, from the operator's metrics.

use anyhow::{Result, ensure};
use hsn_testkit::operator::OperatorUnderTest;

use crate::Suite;

/// (writes to members, writes to the hub by the network controller) so far, from one
/// scrape. MecCluster status is left out: it records probe latency when that moves a lot.
pub(crate) async fn writes(op: &OperatorUnderTest) -> Result<(f64, f64)> {
    let text = op.get("/metrics").await?;
    let sum = |keep: &dyn Fn(&str) -> bool| -> f64 {
        text.lines()
            .filter(|l| keep(l))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let member = sum(&|l| {
        l.starts_with("hsn_operator_member_requests_total{") && !l.contains("method=\"GET\"")
    });
    let hub = sum(&|l| l.starts_with("hsn_operator_hub_writes_total{controller=\"hsnnetwork\"}"));
    Ok((member, hub))
}

/// Checks that nothing was rewritten between two [`writes`] scrapes. With live agents, hub
/// writes are HsnNode status following Lease renewals; then the network and the HsnNodes'
/// specs (`objects`, before and after) must be untouched instead.
pub(crate) fn nothing_rewritten<T: PartialEq>(
    s: &Suite,
    what: &str,
    (before, after): ((f64, f64), (f64, f64)),
    objects: (&T, &T),
) -> Result<()> {
    if !s.live_agents() {
        ensure!(
            before == after,
            "{what} wrote: (member, hub) writes {before:?} -> {after:?}"
        );
        return Ok(());
    }
    ensure!(
        before.0 == after.0,
        "{what} wrote to members: {} -> {}",
        before.0,
        after.0
    );
    ensure!(
        objects.0 == objects.1,
        "{what} rewrote the network or an HsnNode spec"
    );
    eprintln!(
        "{what}: no member write, network and HsnNode specs untouched; hub writes {} -> {} not \
         required to be equal: agents are live and HsnNode status mirrors their Lease renewals",
        before.1, after.1
    );
    Ok(())
}
