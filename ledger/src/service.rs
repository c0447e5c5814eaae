//! The gRPC service: maps requests onto the [`Ledger`], refusals onto status codes, and
//! counts both in the metrics. Ledger calls touch the disk, so they run on blocking threads.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::ledger::{Ledger, ProofError, Refusal, SealError, SubmitError};
use crate::metrics::Metrics;
use crate::replica::Outcome;
use crate::replica::forward::Forwarder;
use crate::store::{Location, StoreError};
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_ledger_api::record::{RecordError, RecordKey};
use hsn_ledger_api::refusal::{ITEM_METADATA, REASON_METADATA};

/// Headers sent per store read while streaming.
const WATCH_CHUNK: u64 = 256;

/// The tonic implementation of `hsn.ledger.v1.Ledger`.
#[derive(Debug, Clone)]
pub struct LedgerService {
    ledger: Arc<Ledger>,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
    /// A replica's submissions go through CometBFT; sealing follows block time.
    forwarder: Option<Forwarder>,
    /// Whether SealEpochs may cut an epoch's grace period short.
    early_seal: bool,
}

impl LedgerService {
    /// Serves `ledger`; open streams end when `shutdown` turns true.
    pub fn new(ledger: Arc<Ledger>, metrics: Metrics, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            ledger,
            metrics,
            shutdown,
            forwarder: None,
            early_seal: false,
        }
    }

    /// Lets `SealEpochs` seal ended epochs before their grace period is over.
    pub fn allow_early_seal(mut self, allow: bool) -> Self {
        self.early_seal = allow;
        self
    }

    /// Serves a replica of a replicated ledger: reads from its store, submissions through
    /// `forwarder`.
    pub fn replicated(
        ledger: Arc<Ledger>,
        forwarder: Forwarder,
        metrics: Metrics,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            forwarder: Some(forwarder),
            ..Self::new(ledger, metrics, shutdown)
        }
    }

    async fn submit(&self, body: pb::SubmitRecordsRequest) -> Result<Outcome, Status> {
        match &self.forwarder {
            None => {
                self.blocking(move |l| l.submit(&body).map_err(Arc::new))
                    .await
            }
            Some(f) => f
                .submit(body)
                .await
                .map_err(|e| Status::unavailable(e.to_string())),
        }
    }

    /// Runs a ledger call on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> T + Send + 'static,
    ) -> Result<T, Status> {
        if let Some(why) = self.ledger.damaged() {
            return Err(damaged_status(why));
        }
        let ledger = self.ledger.clone();
        match tokio::task::spawn_blocking(move || f(&ledger)).await {
            Ok(value) => Ok(value),
            // redb panics on some damaged pages: the store is not to be trusted any more.
            Err(e) if e.is_panic() => {
                self.ledger
                    .mark_damaged(format!("reading it panicked: {e}"));
                Err(damaged_status(self.ledger.damaged().unwrap_or_default()))
            }
            Err(e) => Err(Status::internal(format!("ledger task failed: {e}"))),
        }
    }

    fn store_status(&self, e: &StoreError) -> Status {
        store_status(&self.ledger, e)
    }

    fn counted<T>(&self, rpc: &'static str, r: Result<T, Status>) -> Result<Response<T>, Status> {
        self.metrics
            .call(rpc, r.as_ref().map_or_else(Status::code, |_| Code::Ok));
        r.map(Response::new)
    }
}

/// The status code of a refusal.
pub fn refusal_code(refusal: &Refusal) -> Code {
    match refusal {
        Refusal::Empty | Refusal::WrongNetwork { .. } => Code::InvalidArgument,
        Refusal::Malformed(RecordError::Unsigned) | Refusal::BadSignature => Code::Unauthenticated,
        Refusal::Malformed(_) => Code::InvalidArgument,
        Refusal::TooMany { .. } => Code::ResourceExhausted,
        Refusal::UnknownKey(_) | Refusal::WrongRole { .. } => Code::PermissionDenied,
        Refusal::FutureEpoch { .. } | Refusal::EpochSealed { .. } => Code::FailedPrecondition,
        Refusal::Conflict { .. } => Code::AlreadyExists,
    }
}

fn submit_status(ledger: &Ledger, e: &SubmitError) -> Status {
    match e {
        SubmitError::Refused { first, .. } => {
            let mut meta = MetadataMap::new();
            meta.insert(
                REASON_METADATA,
                MetadataValue::from_static(first.refusal.label()),
            );
            if let Ok(item) = first.item.to_string().parse() {
                meta.insert(ITEM_METADATA, item);
            }
            Status::with_metadata(refusal_code(&first.refusal), first.to_string(), meta)
        }
        SubmitError::Store(s) => store_status(ledger, s),
    }
}

/// The status of a store failure; a corrupt store is marked damaged.
fn store_status(ledger: &Ledger, e: &StoreError) -> Status {
    if e.label() == "corrupt" {
        ledger.mark_damaged(e.to_string());
        return damaged_status(&e.to_string());
    }
    Status::internal(e.to_string())
}

fn damaged_status(why: &str) -> Status {
    Status::internal(format!(
        "the ledger's store is damaged ({why}); it no longer serves from it: restore the store from a replica or a backup"
    ))
}

fn key_from(m: Option<&pb::RecordKey>) -> Result<RecordKey, Status> {
    let m = m.ok_or_else(|| Status::invalid_argument("missing key"))?;
    RecordKey::from_pb(m).map_err(|e| Status::invalid_argument(format!("key: {e}")))
}

fn location_pb(key: &RecordKey, location: Location) -> pb::RecordLocation {
    let mut out = pb::RecordLocation {
        key: Some(key.to_pb()),
        ..Default::default()
    };
    match location {
        Location::Absent => {}
        Location::Pending(entry) => {
            out.found = true;
            out.entry = Some(entry.to_pb());
        }
        Location::Sealed {
            height,
            index,
            entry,
        } => {
            out.found = true;
            out.sealed = true;
            out.height = height;
            out.index = index;
            out.entry = Some(entry.to_pb());
        }
    }
    out
}

type HeaderStream = Pin<Box<dyn Stream<Item = Result<pb::SignedHeader, Status>> + Send>>;

#[tonic::async_trait]
impl pb::ledger_server::Ledger for LedgerService {
    async fn submit_records(
        &self,
        request: Request<pb::SubmitRecordsRequest>,
    ) -> Result<Response<pb::SubmitRecordsResponse>, Status> {
        let started = Instant::now();
        let body = request.into_inner();
        let result = match self.submit(body).await {
            Ok(result) => result,
            Err(status) => return self.counted("SubmitRecords", Err(status)),
        };
        self.metrics.submitted(result.as_ref().map_err(|e| &**e));
        self.metrics
            .submit_seconds
            .observe(started.elapsed().as_secs_f64());
        let reply = result
            .map(|s| pb::SubmitRecordsResponse {
                stored: s.stored,
                duplicates: s.duplicates,
                attested: s.attested,
                disputed: s.disputed,
            })
            .map_err(|e| submit_status(&self.ledger, &e));
        self.counted("SubmitRecords", reply)
    }

    async fn get_block(
        &self,
        request: Request<pb::GetBlockRequest>,
    ) -> Result<Response<pb::GetBlockResponse>, Status> {
        let pb::GetBlockRequest {
            height,
            include_entries,
        } = request.into_inner();
        let found = self
            .blocking(move |l| l.block(height, include_entries))
            .await?;
        let reply = match found {
            Ok(Some(block)) => Ok(pb::GetBlockResponse { block: Some(block) }),
            Ok(None) => Err(Status::not_found(format!("no block {height}"))),
            Err(e) => Err(self.store_status(&e)),
        };
        self.counted("GetBlock", reply)
    }

    async fn get_proof(
        &self,
        request: Request<pb::GetProofRequest>,
    ) -> Result<Response<pb::GetProofResponse>, Status> {
        let key = key_from(request.get_ref().key.as_ref());
        let reply = match key {
            Err(s) => Err(s),
            Ok(key) => match self.blocking(move |l| l.proof(&key)).await? {
                Ok(p) => Ok(pb::GetProofResponse {
                    entry: Some(p.entry),
                    header: Some(p.header),
                    index: p.proof.index,
                    siblings: p.proof.siblings.iter().map(|s| s.to_vec()).collect(),
                }),
                Err(e @ ProofError::Absent(_)) => Err(Status::not_found(e.to_string())),
                Err(e @ ProofError::Pending(_)) => Err(Status::failed_precondition(e.to_string())),
                Err(ProofError::Store(e)) => Err(self.store_status(&e)),
            },
        };
        self.counted("GetProof", reply)
    }

    async fn lookup_records(
        &self,
        request: Request<pb::LookupRecordsRequest>,
    ) -> Result<Response<pb::LookupRecordsResponse>, Status> {
        let raw = request.into_inner().keys;
        let max = self.ledger.config().max_batch_items;
        let keys: Result<Vec<RecordKey>, Status> = if raw.len() > max {
            Err(Status::resource_exhausted(format!(
                "{} keys, at most {max}",
                raw.len()
            )))
        } else {
            raw.iter().map(|k| key_from(Some(k))).collect()
        };
        let reply = match keys {
            Err(s) => Err(s),
            Ok(keys) => match self.blocking(move |l| (l.lookup(&keys), keys)).await? {
                (Ok(found), keys) => Ok(pb::LookupRecordsResponse {
                    locations: keys
                        .iter()
                        .zip(found)
                        .map(|(k, l)| location_pb(k, l))
                        .collect(),
                }),
                (Err(e), _) => Err(self.store_status(&e)),
            },
        };
        self.counted("LookupRecords", reply)
    }

    type WatchBlocksStream = HeaderStream;

    async fn watch_blocks(
        &self,
        request: Request<pb::WatchBlocksRequest>,
    ) -> Result<Response<Self::WatchBlocksStream>, Status> {
        let from = request.into_inner().from_height;
        let (tx, rx) = mpsc::channel(64);
        let (ledger, shutdown) = (self.ledger.clone(), self.shutdown.clone());
        tokio::spawn(stream_headers(ledger, from, tx, shutdown));
        let stream: HeaderStream = Box::pin(ReceiverStream::new(rx));
        self.counted("WatchBlocks", Ok(stream))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let replica = self.forwarder.as_ref().map(|f| f.replica().clone());
        let reply = self
            .blocking(move |l| {
                let s = l.status()?;
                let mut reply = pb::StatusResponse {
                    network: s.network,
                    height: s.blocks,
                    head_hash: s.head_hash.map(|h| h.to_vec()).unwrap_or_default(),
                    current_epoch: s.current_epoch,
                    sealed_through: s.sealed_through,
                    pending_entries: s.pending,
                    evidence_count: s.evidence,
                    signer_key: s.signer.0.to_vec(),
                    epoch_seconds: s.epoch_seconds,
                    time: s.time,
                    late_window_seconds: l.config().grace_seconds,
                    ..Default::default()
                };
                if let Some(replica) = replica {
                    let r = replica.status()?;
                    reply.replicated = true;
                    reply.signer_key = replica.public_key().0.to_vec();
                    reply.app_height = r.app_height;
                    reply.endorsed_blocks = r.endorsed_blocks;
                    reply.validators = r
                        .validators
                        .into_iter()
                        .map(|v| pb::ValidatorStatus {
                            key: v.key.0.to_vec(),
                            name: v.name,
                            power: v.power,
                            last_signed_block: v.last_signed_block,
                        })
                        .collect();
                }
                Ok::<_, StoreError>(reply)
            })
            .await?
            .map_err(|e| self.store_status(&e));
        self.counted("Status", reply)
    }

    async fn get_registry(
        &self,
        _request: Request<pb::GetRegistryRequest>,
    ) -> Result<Response<pb::GetRegistryResponse>, Status> {
        let node = |role: hsn_core::Role, key: NodeKey, name: String, retired| pb::RegistryNode {
            role: role.to_string(),
            key: key.0.to_vec(),
            name,
            retired,
        };
        let nodes = match &self.forwarder {
            Some(f) => f
                .replica()
                .registry()
                .nodes
                .into_iter()
                .map(|n| node(n.role, n.key, n.name, n.retired))
                .collect(),
            None => self
                .ledger
                .registry()
                .entries()
                .into_iter()
                .map(|(key, role, name)| node(role, key, name, false))
                .collect(),
        };
        self.counted("GetRegistry", Ok(pb::GetRegistryResponse { nodes }))
    }

    async fn submit_registry_change(
        &self,
        request: Request<pb::SubmitRegistryChangeRequest>,
    ) -> Result<Response<pb::SubmitRegistryChangeResponse>, Status> {
        let Some(forwarder) = &self.forwarder else {
            let refused = Status::failed_precondition(
                "an embedded ledger's registry is its keys file (--keys), not a chain's",
            );
            return self.counted("SubmitRegistryChange", Err(refused));
        };
        let tx = request.into_inner().transaction;
        if !hsn_ledger_api::registry::is_registry_change(&tx) {
            let refused =
                Status::invalid_argument("not an encoded LedgerTx holding a RegistryChange");
            return self.counted("SubmitRegistryChange", Err(refused));
        }
        let reply = forwarder
            .registry_change(&tx)
            .await
            .map(|d| pb::SubmitRegistryChangeResponse {
                taken: d.taken,
                detail: d.detail,
            })
            .map_err(|e| Status::unavailable(e.to_string()));
        self.counted("SubmitRegistryChange", reply)
    }

    async fn seal_epochs(
        &self,
        request: Request<pb::SealEpochsRequest>,
    ) -> Result<Response<pb::SealEpochsResponse>, Status> {
        if self.forwarder.is_some() {
            let refused = Status::failed_precondition(
                "a replicated ledger seals an epoch when its late window ends, by block time",
            );
            return self.counted("SealEpochs", Err(refused));
        }
        let through = request.into_inner().through_epoch;
        let early = self.early_seal;
        let sealed = self
            .blocking(move |l| match early {
                true => l.seal_through(through),
                false => l.seal_due_through(through),
            })
            .await?;
        let reply = match sealed {
            Ok(headers) => {
                self.metrics.sealed(&headers);
                Ok(pb::SealEpochsResponse {
                    blocks: headers.iter().map(|h| h.to_pb()).collect(),
                })
            }
            Err(e @ (SealError::NotClosed { .. } | SealError::InGrace { .. })) => {
                Err(Status::failed_precondition(e.to_string()))
            }
            Err(SealError::Store(e)) => Err(self.store_status(&e)),
        };
        self.counted("SealEpochs", reply)
    }
}

/// Sends stored headers from `next` on, then each new one, until the client goes away or
/// the server shuts down.
async fn stream_headers(
    ledger: Arc<Ledger>,
    mut next: u64,
    tx: mpsc::Sender<Result<pb::SignedHeader, Status>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut blocks = ledger.subscribe();
    loop {
        // Mark the current count seen before reading, so a seal racing the read wakes us.
        let height = *blocks.borrow_and_update();
        while next < height {
            let l = ledger.clone();
            let read = tokio::task::spawn_blocking(move || l.headers(next, WATCH_CHUNK)).await;
            let headers = match read {
                Ok(Ok(h)) if !h.is_empty() => h,
                Ok(Ok(_)) => break,
                Ok(Err(e)) => return drop(tx.send(Err(store_status(&ledger, &e))).await),
                Err(e) => return drop(tx.send(Err(Status::internal(e.to_string()))).await),
            };
            for header in headers {
                if tx.send(Ok(header)).await.is_err() {
                    return;
                }
                next += 1;
            }
        }
        tokio::select! {
            changed = blocks.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|&stop| stop) => return,
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsn_core::Role;
    use hsn_ledger_api::keys::NodeKey;

    #[test]
    fn refusals_map_to_specific_codes() {
        let key = NodeKey([1; 32]);
        let cases = [
            (
                Refusal::Malformed(RecordError::MissingBody),
                Code::InvalidArgument,
            ),
            (
                Refusal::Malformed(RecordError::Unsigned),
                Code::Unauthenticated,
            ),
            (Refusal::BadSignature, Code::Unauthenticated),
            (Refusal::UnknownKey(key), Code::PermissionDenied),
            (
                Refusal::WrongRole {
                    key,
                    role: Role::Edge,
                    kind: "observation",
                    want: Role::Super,
                },
                Code::PermissionDenied,
            ),
            (
                Refusal::FutureEpoch {
                    epoch: 2,
                    current: 1,
                },
                Code::FailedPrecondition,
            ),
            (
                Refusal::EpochSealed {
                    epoch: 1,
                    through: 1,
                },
                Code::FailedPrecondition,
            ),
            (
                Refusal::TooMany { items: 2, max: 1 },
                Code::ResourceExhausted,
            ),
            (Refusal::Empty, Code::InvalidArgument),
        ];
        for (refusal, code) in cases {
            assert_eq!(refusal_code(&refusal), code, "{refusal}");
        }
    }
}

#[cfg(test)]
mod damaged {
    use ed25519_dalek::SigningKey;
    use hsn_core::{Direction, Role};
    use hsn_ledger_api::keys::KeyRegistry;
    use hsn_ledger_api::pb::ledger_server::Ledger as _;
    use hsn_testkit::ledger_fixtures::{Slot, signing_key};

    use super::*;
    use crate::clock::ManualClock;
    use crate::ledger::LedgerConfig;
    use crate::store::Store;

    #[tokio::test]
    async fn a_damaged_store_is_no_longer_served() {
        let dir = tempfile::tempdir().unwrap();
        let (sup, edge): (SigningKey, SigningKey) = (signing_key(1), signing_key(2));
        let mut registry = KeyRegistry::default();
        registry.insert(NodeKey::of(&sup), Role::Super).unwrap();
        registry.insert(NodeKey::of(&edge), Role::Edge).unwrap();
        let clock = Arc::new(ManualClock::new(10 * 60 + 1));
        let store = Store::open(&dir.path().join("l.redb")).unwrap();
        let ledger = Ledger::open(LedgerConfig::new("n"), store, sup, registry, clock).unwrap();
        let records: Vec<_> = ["a", "b"]
            .iter()
            .map(|t| Slot::new("n", 8, t, Direction::Uplink).record(&edge, 10, 1))
            .collect();
        let request = pb::SubmitRecordsRequest {
            records: records.iter().map(|r| r.to_pb()).collect(),
            observations: vec![],
        };
        ledger.submit(&request).unwrap();
        ledger.seal_through(8).unwrap();
        let ledger = Arc::new(ledger);
        let mut prometheus = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut prometheus);
        let (_stop, stopped) = watch::channel(false);
        let service = LedgerService::new(ledger.clone(), metrics, stopped);
        let lookup = |key: &RecordKey| {
            Request::new(pb::LookupRecordsRequest {
                keys: vec![key.to_pb()],
            })
        };
        let a = records[0].body.key();
        service.lookup_records(lookup(&a)).await.unwrap();

        ledger.store().damage_index(&a, (0, 1));
        let status = service.lookup_records(lookup(&a)).await.unwrap_err();
        assert!(status.message().contains("damaged"), "{status:?}");
        assert!(ledger.damaged().is_some());
        // Nothing is served from it any more, and nothing is sealed on it.
        let status = service
            .status(Request::new(pb::StatusRequest {}))
            .await
            .unwrap_err();
        assert!(status.message().contains("no longer serves"), "{status:?}");
        assert!(ledger.seal_due().is_err());
    }
}
