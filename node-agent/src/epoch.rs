//! The epoch loop: at each epoch boundary, read the counters and commit the epoch's deltas
//! with the new snapshot into the spool (one atomic step, see [`crate::spool`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hsn_core::{EpochClock, TenantId};
use tokio::sync::watch;

use crate::datapath::Datapath;
use crate::index::Desired;
use crate::metrics::{Metrics, ReasonLabels, TrafficLabels};
use crate::spool::{Spool, SpoolError, SpoolHeader};
use crate::status::StatusTx;
use crate::writer::{SharedDatapath, lock};

/// Why an epoch could not be closed (it is retried at the next boundary, losing nothing).
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    /// Reading the counters failed.
    #[error("reading counters: {0}")]
    Read(#[from] hsn_ebpf::Error),
    /// Computing or persisting failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl EpochError {
    /// Every label [`EpochError::label`] returns.
    pub fn labels() -> Vec<&'static str> {
        [hsn_ebpf::Error::LABELS, SpoolError::LABELS].concat()
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Read(e) => e.label(),
            Self::Spool(e) => e.label(),
        }
    }
}

/// The epoch closer: owns the spool, reads the shared datapath.
#[derive(Debug)]
pub struct EpochCloser<D> {
    dp: SharedDatapath<D>,
    spool: Spool,
    header: SpoolHeader,
    metrics: Arc<Metrics>,
    status: StatusTx,
}

impl<D: Datapath> EpochCloser<D> {
    /// A closer writing into `spool` as `header`.
    pub fn new(
        dp: SharedDatapath<D>,
        spool: Spool,
        header: SpoolHeader,
        metrics: Arc<Metrics>,
        status: StatusTx,
    ) -> Self {
        status.send_modify(|s| s.last_epoch = spool.last_epoch());
        Self {
            dp,
            spool,
            header,
            metrics,
            status,
        }
    }

    /// The last committed epoch.
    pub fn last_epoch(&self) -> Option<u64> {
        self.spool.last_epoch()
    }

    /// Closes `epoch`: counters now minus the last snapshot, committed with the new snapshot.
    pub fn close(
        &mut self,
        epoch: u64,
        epoch_seconds: u32,
        names: &BTreeMap<TenantId, String>,
    ) -> Result<(), EpochError> {
        let (counters, parse_errors) = {
            let dp = lock(&self.dp);
            (dp.counters()?, dp.parse_errors()?)
        };
        let pending = self
            .spool
            .prepare(&self.header, epoch, epoch_seconds, &counters, names)?;
        let records = pending.file().records.clone();
        self.spool.commit(pending)?;
        for r in &records {
            let labels = TrafficLabels {
                tenant: r.tenant.clone(),
                direction: r.direction.as_str().into(),
                edge: r.edge.map(|e| e.to_string()).unwrap_or_default(),
            };
            self.metrics.bytes.get_or_create(&labels).inc_by(r.bytes);
            self.metrics
                .packets
                .get_or_create(&labels)
                .inc_by(r.packets);
        }
        self.metrics.parse_errors_sampled(parse_errors);
        self.metrics.epochs.inc();
        self.status.send_modify(|s| s.last_epoch = Some(epoch));
        tracing::info!(epoch, records = records.len(), "epoch closed");
        Ok(())
    }

    /// Closes each epoch as it ends, until the task is dropped. Epoch length comes from the
    /// routes table, `default_seconds` until the first one.
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Desired>>>,
        default_seconds: u32,
    ) {
        let mut open = true;
        loop {
            // No epoch closes before the first routes table: its epochSeconds numbers the
            // epochs, and numbering some with another length could put later ones below
            // them. Counts made meanwhile stay in the pinned maps for the first close.
            let current = desired
                .borrow_and_update()
                .as_deref()
                .map(|d| (d.epoch_seconds, d.tenant_names.clone()));
            let seconds = current.as_ref().map_or(default_seconds, |(s, _)| *s);
            if let Some((seconds, names)) = &current {
                let now = unix_now();
                if let Some(epoch) = closable(now, *seconds)
                    .filter(|e| self.last_epoch().is_none_or(|last| *e > last))
                    && let Err(error) = self.close(epoch, *seconds, names)
                {
                    self.metrics
                        .epoch_errors
                        .get_or_create(&ReasonLabels {
                            reason: error.label(),
                        })
                        .inc();
                    tracing::warn!(%error, epoch, "closing the epoch failed; its traffic moves to the next");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(until_next(unix_now(), seconds)) => {}
                // A new table may bring the first epoch length: re-time at once.
                changed = desired.changed(), if open => open = changed.is_ok(),
            }
        }
    }
}

/// Time since the Unix epoch.
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The newest epoch that has fully ended at `now`.
pub fn closable(now: Duration, seconds: u32) -> Option<u64> {
    EpochClock::new(seconds.into()).ended_by(now.as_secs(), 0)
}

/// How long until the current epoch ends (plus a little, so it has ended).
pub fn until_next(now: Duration, seconds: u32) -> Duration {
    EpochClock::new(seconds.into()).until_end(now) + Duration::from_millis(10)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use hsn_ebpf::{AttachMode, Error, NextHop, TenantPrefixes};
    use prometheus_client::registry::Registry;

    use super::*;
    use crate::datapath::{CounterKey, Totals};
    use crate::index::RoleState;
    use crate::spool;
    use crate::status::AgentStatus;

    /// A datapath that has counted nothing.
    struct Idle;

    impl Datapath for Idle {
        fn set_tenants(&mut self, _: &[TenantPrefixes]) -> Result<(), Error> {
            Ok(())
        }
        fn set_next_hop(&mut self, _: Option<NextHop>) -> Result<(), Error> {
            Ok(())
        }
        fn set_supers(&mut self, _: &[std::net::IpAddr]) -> Result<(), Error> {
            Ok(())
        }
        fn set_edges(&mut self, _: &[hsn_ebpf::EdgeNode]) -> Result<(), Error> {
            Ok(())
        }
        fn counters(&self) -> Result<Vec<(CounterKey, Totals)>, Error> {
            Ok(Vec::new())
        }
        fn parse_errors(&self) -> Result<u64, Error> {
            Ok(0)
        }
        fn attach(&mut self, _: &str) -> Result<AttachMode, Error> {
            Ok(AttachMode::Generic)
        }
        fn detach(&mut self, _: &str) -> Result<(), Error> {
            Ok(())
        }
    }

    // Paused time: the loop's timers fire as soon as nothing else can run, so many ticks of
    // the 1 s default pass in no real time.
    #[tokio::test(start_paused = true)]
    async fn no_epoch_closes_before_the_first_table_and_the_tables_length_numbers_them() {
        let dir = tempfile::tempdir().unwrap();
        let (status, mut reported) = watch::channel(AgentStatus::default());
        let epochs = EpochCloser::new(
            Arc::new(Mutex::new(Idle)),
            Spool::open(dir.path()).unwrap(),
            SpoolHeader {
                network: "metro".into(),
                role: "edge".into(),
                agent: "edge-n1".into(),
                public_key: "ab".repeat(32),
            },
            Metrics::register(&mut Registry::default()),
            status,
        );
        let (desired, rx) = watch::channel(None);
        let task = tokio::spawn(epochs.run(rx, 1));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(reported.borrow().last_epoch, None, "closed without a table");
        assert!(spool::unsent(dir.path()).unwrap().is_empty());

        let before = closable(unix_now(), 60).unwrap();
        desired
            .send(Some(Arc::new(Desired {
                epoch_seconds: 60,
                tenants: Vec::new(),
                tenant_names: BTreeMap::new(),
                role: RoleState::Edge {
                    target: None,
                    supers: Vec::new(),
                },
            })))
            .unwrap();
        let closed = tokio::time::timeout(
            Duration::from_secs(5),
            reported.wait_for(|s| s.last_epoch.is_some()),
        )
        .await
        .expect("the first table closes the last ended epoch at once")
        .unwrap()
        .last_epoch
        .unwrap();
        let after = closable(unix_now(), 60).unwrap();
        assert!(
            (before..=after).contains(&closed),
            "epoch {closed} is not in the table's 60 s units ({before}..={after})"
        );
        task.abort();
    }

    #[test]
    fn epochs_close_after_they_end() {
        assert_eq!(closable(Duration::from_secs(59), 60), None);
        assert_eq!(closable(Duration::from_secs(60), 60), Some(0));
        assert_eq!(closable(Duration::from_secs(179), 60), Some(1));
        assert_eq!(
            until_next(Duration::from_millis(61_500), 60),
            Duration::from_millis(58_510)
        );
    }
}
