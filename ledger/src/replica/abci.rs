//! The replica on ABCI 2.0 over gRPC: tendermint-proto's tonic `Abci` service, each call run
//! on a blocking thread against the [`Replica`]. CometBFT exits when a call fails, so refusals
//! are codes in the responses; only a failing store (the replica cannot go on) is an error,
//! which stops CometBFT — and [`serve`] stops too, so neither lingers without the other.

use std::net::SocketAddr;
use std::sync::Arc;

use tendermint_proto::v0_38::abci::abci_server::{Abci, AbciServer};
use tendermint_proto::v0_38::abci::{
    self as t, response_process_proposal, response_verify_vote_extension,
};
use tendermint_proto::v0_38::crypto::{PublicKey, public_key};
use tonic::{Request, Response, Status};

use super::{Replica, TxCode};
use hsn_ledger_api::keys::NodeKey;

/// The `Abci` service of one replica.
#[derive(Debug, Clone)]
pub struct AbciService {
    replica: Arc<Replica>,
    /// Set when a call failed in a way the replica cannot go on from.
    failed: Arc<tokio::sync::Notify>,
}

impl AbciService {
    /// Serves `replica`.
    pub fn new(replica: Arc<Replica>) -> Self {
        Self {
            replica,
            failed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        call: &'static str,
        f: impl FnOnce(&Replica) -> Result<T, String> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let replica = self.replica.clone();
        let result = tokio::task::spawn_blocking(move || f(&replica)).await;
        match result {
            Ok(Ok(value)) => Ok(Response::new(value)),
            Ok(Err(e)) => {
                tracing::error!(call, error = %e, "the replica cannot go on");
                // CometBFT stops on this error; the replica stops too rather than linger.
                self.failed.notify_one();
                Err(Status::internal(format!("{call}: {e}")))
            }
            Err(e) => Err(Status::internal(format!("{call}: {e}"))),
        }
    }
}

/// Serves ABCI on `listener` until `shutdown` resolves or a call fails in a way the replica
/// cannot go on from (then CometBFT stops too).
pub async fn serve(
    replica: Arc<Replica>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = AbciService::new(replica);
    let failed = service.failed.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            () = failed.notified() => {}
        }
    };
    tonic::transport::Server::builder()
        .add_service(AbciServer::new(service))
        .serve_with_incoming_shutdown(incoming, stop)
        .await
}

/// The address ABCI listens on by default (CometBFT's `proxy_app`).
pub const DEFAULT_ABCI_LISTEN: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    hsn_core::ports::ABCI,
);

fn seconds(time: Option<&tendermint_proto::google::protobuf::Timestamp>) -> u64 {
    time.map_or(0, |t| u64::try_from(t.seconds).unwrap_or(0))
}

fn validator(key: NodeKey, power: i64) -> t::ValidatorUpdate {
    t::ValidatorUpdate {
        pub_key: Some(PublicKey {
            sum: Some(public_key::Sum::Ed25519(key.0.to_vec())),
        }),
        power,
    }
}

fn exec(code: TxCode) -> t::ExecTxResult {
    t::ExecTxResult {
        code: code.code,
        data: code.data.into(),
        log: code.log,
        info: code.info,
        codespace: if code.code == 0 {
            String::new()
        } else {
            "hsn-ledger".to_owned()
        },
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Abci for AbciService {
    async fn echo(&self, r: Request<t::RequestEcho>) -> Result<Response<t::ResponseEcho>, Status> {
        Ok(Response::new(t::ResponseEcho {
            message: r.into_inner().message,
        }))
    }

    async fn flush(
        &self,
        _: Request<t::RequestFlush>,
    ) -> Result<Response<t::ResponseFlush>, Status> {
        Ok(Response::new(t::ResponseFlush {}))
    }

    async fn info(&self, _: Request<t::RequestInfo>) -> Result<Response<t::ResponseInfo>, Status> {
        self.run("Info", |r| {
            let state = r.info().map_err(|e| e.to_string())?;
            Ok(t::ResponseInfo {
                data: "hsn-ledger".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                app_version: 1,
                last_block_height: i64::try_from(state.height).unwrap_or(i64::MAX),
                last_block_app_hash: if state.height == 0 {
                    Vec::new().into()
                } else {
                    state.app_hash.to_vec().into()
                },
            })
        })
        .await
    }

    async fn check_tx(
        &self,
        r: Request<t::RequestCheckTx>,
    ) -> Result<Response<t::ResponseCheckTx>, Status> {
        let r = r.into_inner();
        let recheck = r.r#type == t::CheckTxType::Recheck as i32;
        self.run("CheckTx", move |replica| {
            let code = replica.check_tx(&r.tx, recheck);
            Ok(t::ResponseCheckTx {
                code: code.code,
                log: code.log,
                info: code.info,
                codespace: if code.code == 0 {
                    String::new()
                } else {
                    "hsn-ledger".to_owned()
                },
                ..Default::default()
            })
        })
        .await
    }

    async fn query(
        &self,
        _: Request<t::RequestQuery>,
    ) -> Result<Response<t::ResponseQuery>, Status> {
        Ok(Response::new(t::ResponseQuery {
            code: 1,
            log: "query the ledger's gRPC service (hsn.ledger.v1.Ledger) instead".to_owned(),
            ..Default::default()
        }))
    }

    async fn commit(
        &self,
        _: Request<t::RequestCommit>,
    ) -> Result<Response<t::ResponseCommit>, Status> {
        self.run("Commit", |r| {
            r.commit().map_err(|e| e.to_string())?;
            // Never let CometBFT prune blocks: replicas that lost their store replay them.
            Ok(t::ResponseCommit { retain_height: 0 })
        })
        .await
    }

    async fn init_chain(
        &self,
        r: Request<t::RequestInitChain>,
    ) -> Result<Response<t::ResponseInitChain>, Status> {
        let r = r.into_inner();
        self.run("InitChain", move |replica| {
            let (validators, app_hash) = replica
                .init_chain(&r.app_state_bytes)
                .map_err(|e| e.to_string())?;
            Ok(t::ResponseInitChain {
                consensus_params: None,
                validators: validators
                    .into_iter()
                    .map(|(k, p)| validator(k, p))
                    .collect(),
                app_hash: app_hash.to_vec().into(),
            })
        })
        .await
    }

    async fn list_snapshots(
        &self,
        _: Request<t::RequestListSnapshots>,
    ) -> Result<Response<t::ResponseListSnapshots>, Status> {
        Ok(Response::new(t::ResponseListSnapshots::default()))
    }

    async fn offer_snapshot(
        &self,
        _: Request<t::RequestOfferSnapshot>,
    ) -> Result<Response<t::ResponseOfferSnapshot>, Status> {
        Ok(Response::new(t::ResponseOfferSnapshot {
            result: t::response_offer_snapshot::Result::Reject as i32,
        }))
    }

    async fn load_snapshot_chunk(
        &self,
        _: Request<t::RequestLoadSnapshotChunk>,
    ) -> Result<Response<t::ResponseLoadSnapshotChunk>, Status> {
        Ok(Response::new(t::ResponseLoadSnapshotChunk::default()))
    }

    async fn apply_snapshot_chunk(
        &self,
        _: Request<t::RequestApplySnapshotChunk>,
    ) -> Result<Response<t::ResponseApplySnapshotChunk>, Status> {
        Ok(Response::new(t::ResponseApplySnapshotChunk {
            result: t::response_apply_snapshot_chunk::Result::Abort as i32,
            ..Default::default()
        }))
    }

    async fn prepare_proposal(
        &self,
        r: Request<t::RequestPrepareProposal>,
    ) -> Result<Response<t::ResponsePrepareProposal>, Status> {
        let r = r.into_inner();
        self.run("PrepareProposal", move |replica| {
            let extensions: Vec<Vec<u8>> = r
                .local_last_commit
                .map(|c| c.votes)
                .unwrap_or_default()
                .into_iter()
                .filter(|v| !v.vote_extension.is_empty())
                .map(|v| v.vote_extension.to_vec())
                .collect();
            let txs = r.txs.into_iter().map(|t| t.to_vec()).collect();
            let max = usize::try_from(r.max_tx_bytes).unwrap_or(0);
            let txs = replica.prepare(txs, &extensions, max);
            Ok(t::ResponsePrepareProposal {
                txs: txs.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn process_proposal(
        &self,
        r: Request<t::RequestProcessProposal>,
    ) -> Result<Response<t::ResponseProcessProposal>, Status> {
        let r = r.into_inner();
        self.run("ProcessProposal", move |replica| {
            let txs: Vec<Vec<u8>> = r.txs.into_iter().map(|t| t.to_vec()).collect();
            let status = if replica.process(&txs) {
                response_process_proposal::ProposalStatus::Accept
            } else {
                response_process_proposal::ProposalStatus::Reject
            };
            Ok(t::ResponseProcessProposal {
                status: status as i32,
            })
        })
        .await
    }

    async fn extend_vote(
        &self,
        _: Request<t::RequestExtendVote>,
    ) -> Result<Response<t::ResponseExtendVote>, Status> {
        self.run("ExtendVote", |replica| {
            let extension = replica.extend_vote().map_err(|e| e.to_string())?;
            Ok(t::ResponseExtendVote {
                vote_extension: extension.into(),
            })
        })
        .await
    }

    async fn verify_vote_extension(
        &self,
        r: Request<t::RequestVerifyVoteExtension>,
    ) -> Result<Response<t::ResponseVerifyVoteExtension>, Status> {
        let r = r.into_inner();
        self.run("VerifyVoteExtension", move |replica| {
            let status = if replica.verify_extension(&r.validator_address, &r.vote_extension) {
                response_verify_vote_extension::VerifyStatus::Accept
            } else {
                response_verify_vote_extension::VerifyStatus::Reject
            };
            Ok(t::ResponseVerifyVoteExtension {
                status: status as i32,
            })
        })
        .await
    }

    async fn finalize_block(
        &self,
        r: Request<t::RequestFinalizeBlock>,
    ) -> Result<Response<t::ResponseFinalizeBlock>, Status> {
        let r = r.into_inner();
        self.run("FinalizeBlock", move |replica| {
            let height = u64::try_from(r.height).unwrap_or(0);
            let txs: Vec<Vec<u8>> = r.txs.into_iter().map(|t| t.to_vec()).collect();
            let block = replica
                .finalize(height, seconds(r.time.as_ref()), &txs)
                .map_err(|e| e.to_string())?;
            Ok(t::ResponseFinalizeBlock {
                events: Vec::new(),
                tx_results: block.tx_results.into_iter().map(exec).collect(),
                validator_updates: block
                    .validator_updates
                    .into_iter()
                    .map(|(k, p)| validator(k, p))
                    .collect(),
                consensus_param_updates: None,
                app_hash: block.app_hash.to_vec().into(),
            })
        })
        .await
    }
}
