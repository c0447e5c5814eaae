//! End to end over real gRPC on 127.0.0.1: agent-like clients (edges and their super node,
//! each with its own key and connection) submit signed records and observations to the
//! real `hsn-ledger` binary; then blocks, proofs, verification, rewards and `hsnctl`.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{Network, flip_every, hsnctl, hsnctl_json, scrape};
use ed25519_dalek::SigningKey;
use hsn_core::Direction;
use hsn_ledger::chain::walk_remote;
use hsn_ledger::merkle::{Hash, Proof};
use hsn_ledger::proof::verify_inclusion;
use hsn_ledger::verify::VerifyOptions;
use hsn_ledger_api::keys::NodeKey;
use hsn_ledger_api::pb;
use hsn_ledger_api::record::{RecordKey, SignedRecord};
use hsn_ledger_api::refusal::REASON_METADATA;
use hsn_testkit::ledger_fixtures::{Slot, signing_key};
use tokio_stream::StreamExt;
use tonic::Code;

const MB: u64 = 1_000_000;

fn slots(epoch: u64) -> Vec<Slot> {
    [Direction::Uplink, Direction::Downlink]
        .into_iter()
        .map(|d| Slot::new("net-a", epoch, "video", d))
        .collect()
}

/// What edge `i` claims: (i + 1) MB per slot.
fn edge_records(edge: &SigningKey, i: usize, epochs: &[u64]) -> Vec<SignedRecord> {
    let slots = epochs.iter().flat_map(|&e| slots(e));
    slots
        .enumerate()
        .map(|(seq, s)| s.record(edge, (i as u64 + 1) * MB, seq as u64))
        .collect()
}

fn records_request(records: &[SignedRecord]) -> pb::SubmitRecordsRequest {
    pb::SubmitRecordsRequest {
        records: records.iter().map(SignedRecord::to_pb).collect(),
        observations: vec![],
    }
}

async fn refused(
    net_client: &mut hsn_ledger_api::pb::ledger_client::LedgerClient<tonic::transport::Channel>,
    req: pb::SubmitRecordsRequest,
) -> (Code, String) {
    let status = net_client
        .submit_records(req)
        .await
        .expect_err("should be refused");
    let reason = status
        .metadata()
        .get(REASON_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status.code(), reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_submit_attest_seal_verify_and_reward() -> Result<()> {
    let net = Network::new(4)?;
    let limits = ["--max-request-bytes", "16384", "--max-batch-items", "50"];
    let epochs_flags = [
        "--epoch-seconds",
        "2",
        "--grace-seconds",
        "3600",
        "--allow-early-seal",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let mut server = net.start(&[&limits[..], &epochs_flags[..]].concat())?;
    let mut client = server.client().await?;
    let current = client
        .status(pb::StatusRequest {})
        .await?
        .into_inner()
        .current_epoch;
    let epochs = [current - 3, current - 2];

    let mut watch = client
        .watch_blocks(pb::WatchBlocksRequest { from_height: 0 })
        .await?
        .into_inner();

    // Each edge agent submits its own records on its own connection, concurrently.
    let mut agents = Vec::new();
    for (i, edge) in net.edges.iter().enumerate() {
        let (edge, url) = (edge.clone(), server.url());
        agents.push(tokio::spawn(async move {
            let mut c = hsn_ledger_api::client::connect(&url, None).await?;
            let mut records = edge_records(&edge, i, &epochs);
            if i == 2 {
                // A record the super never observes; the tamper test flips its tenant.
                records.push(
                    Slot::new("net-a", epochs[0], "flipme", Direction::Uplink).record(&edge, 5, 99),
                );
            }
            anyhow::Ok(
                c.submit_records(records_request(&records))
                    .await?
                    .into_inner(),
            )
        }));
    }
    for agent in agents {
        let reply = agent.await??;
        assert_eq!((reply.stored, reply.duplicates), (reply.stored.max(4), 0));
    }

    // The super agent reports what it observed: edges 0-2 within tolerance, edge 3 at half.
    let mut observations = Vec::new();
    for (i, edge) in net.edges.iter().enumerate() {
        for slot in epochs.iter().flat_map(|&e| slots(e)) {
            let claimed = (i as u64 + 1) * MB;
            let observed = if i == 3 { claimed / 2 } else { claimed + 100 };
            observations.push(
                slot.observation(&net.sup, NodeKey::of(edge), observed)
                    .to_pb(),
            );
        }
    }
    let reply = client
        .submit_records(pb::SubmitRecordsRequest {
            records: vec![],
            observations,
        })
        .await?
        .into_inner();
    assert_eq!((reply.stored, reply.attested, reply.disputed), (16, 12, 4));

    // Identical replay: accepted, nothing changes.
    let edge0 = edge_records(&net.edges[0], 0, &epochs);
    let reply = client
        .submit_records(records_request(&edge0))
        .await?
        .into_inner();
    assert_eq!((reply.stored, reply.duplicates), (0, 4));

    // Refusals, each with its status code and reason.
    let mut conflicting = edge0[0].clone();
    conflicting.body.bytes += 1;
    let conflicting = conflicting.body.sign(&net.edges[0]);
    let stranger = signing_key(555);
    let mut unsigned = edge0[1].to_pb();
    unsigned.signature.clear();
    let mut forged = edge0[1].to_pb();
    forged.body.as_mut().unwrap().bytes += 1;
    let mut malformed = edge0[1].to_pb();
    malformed.body.as_mut().unwrap().direction = 0;
    let one = |r: pb::SignedRecord| pb::SubmitRecordsRequest {
        records: vec![r],
        observations: vec![],
    };
    let future =
        Slot::new("net-a", current + 5, "video", Direction::Uplink).record(&net.edges[1], 1, 1);
    let many: Vec<SignedRecord> = (0..51)
        .map(|k| {
            Slot::new("net-a", epochs[1], &format!("t{k}"), Direction::Uplink).record(
                &net.edges[1],
                1,
                k,
            )
        })
        .collect();
    let huge: Vec<SignedRecord> = (0..100)
        .map(|k| {
            Slot::new(
                "net-a",
                epochs[1],
                &format!("{:a>60}{k}", ""),
                Direction::Uplink,
            )
            .record(&net.edges[1], 1, k)
        })
        .collect();
    let cases = [
        (
            records_request(&[conflicting]),
            Code::AlreadyExists,
            "conflict",
        ),
        (
            records_request(&[slots(epochs[0])[0].record(&stranger, 1, 1)]),
            Code::PermissionDenied,
            "unknown_key",
        ),
        (one(unsigned), Code::Unauthenticated, "unsigned"),
        (one(forged), Code::Unauthenticated, "bad_signature"),
        (one(malformed), Code::InvalidArgument, "malformed"),
        (
            records_request(&[future]),
            Code::FailedPrecondition,
            "future_epoch",
        ),
        (records_request(&many), Code::ResourceExhausted, "too_many"),
        (records_request(&huge), Code::OutOfRange, ""),
    ];
    for (req, code, reason) in cases {
        assert_eq!(
            refused(&mut client, req).await,
            (code, reason.to_owned()),
            "{reason}"
        );
    }
    // A request that is not a SubmitRecordsRequest at all (a GetBlockRequest's varint where
    // a message belongs): INVALID_ARGUMENT and counted as malformed, not INTERNAL.
    let channel = tonic::transport::Endpoint::from_shared(server.url())?
        .connect()
        .await?;
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await?;
    let path = http::uri::PathAndQuery::from_static("/hsn.ledger.v1.Ledger/SubmitRecords");
    let codec =
        tonic_prost::ProstCodec::<pb::GetBlockRequest, pb::SubmitRecordsResponse>::default();
    let garbage = tonic::Request::new(pb::GetBlockRequest {
        height: 5,
        include_entries: true,
    });
    let status = raw
        .unary(garbage, path, codec)
        .await
        .expect_err("undecodable");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let reason = status
        .metadata()
        .get(REASON_METADATA)
        .and_then(|v| v.to_str().ok());
    assert_eq!(reason, Some("malformed"), "{status:?}");
    let metrics = scrape(server.metrics.context("metrics address")?)?;
    assert!(
        metrics.contains("hsn_ledger_items_refused_total{reason=\"malformed\"} 2"),
        "an undecodable request counts as malformed: {metrics}"
    );
    for reason in [
        "conflict",
        "unknown_key",
        "unsigned",
        "bad_signature",
        "future_epoch",
        "too_many",
        "too_large",
    ] {
        let line = format!("hsn_ledger_items_refused_total{{reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }

    // Seal both epochs: one block each, announced on the watch stream.
    let sealed = client
        .seal_epochs(pb::SealEpochsRequest {
            through_epoch: epochs[1],
        })
        .await?
        .into_inner();
    assert_eq!(sealed.blocks.len(), 2);
    for height in 0..2u64 {
        let header = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await?
            .context("stream ended")??;
        assert_eq!(header.header.context("header")?.height, height);
    }
    let metrics = scrape(server.metrics.context("metrics address")?)?;
    assert!(
        metrics.contains("hsn_ledger_height_blocks 2\n"),
        "{metrics}"
    );
    let refused_late = refused(
        &mut client,
        records_request(&[slots(epochs[0])[0].record(&net.edges[1], 7, 7)]),
    )
    .await;
    assert_eq!(refused_late, (Code::AlreadyExists, "conflict".to_owned()));

    // Anyone can verify the chain and single records from what the ledger serves.
    let summary = walk_remote(&mut client, VerifyOptions::default(), |_, _| {}).await?;
    assert_eq!((summary.blocks, summary.entries), (2, 17));
    let key = edge_records(&net.edges[1], 1, &epochs)[0].body.key();
    let p = client
        .get_proof(pb::GetProofRequest {
            key: Some(key.to_pb()),
        })
        .await?
        .into_inner();
    let header = p.header.context("header")?;
    let siblings: Vec<Hash> = p
        .siblings
        .iter()
        .map(|s| s.as_slice().try_into())
        .collect::<Result<_, _>>()?;
    let proof = Proof {
        index: p.index,
        count: header.header.as_ref().context("h")?.entry_count,
        siblings,
    };
    let included = verify_inclusion(&p.entry.context("entry")?, &header, &proof, None)?;
    assert_eq!(included.entry.key(), key);

    // hsnctl, over gRPC.
    let url = server.url();
    let addr = ["ledger", "--addr", url.as_str()];
    let verify = hsnctl_json(&[&addr[..], &["verify", "-o", "json"]].concat())?;
    assert_eq!(
        (verify["blocks"].as_u64(), verify["entries"].as_u64()),
        (Some(2), Some(17))
    );
    let (from, to) = (epochs[0].to_string(), epochs[1].to_string());
    let rewards = hsnctl_json(
        &[
            &addr[..],
            &[
                "rewards", "--from", &from, "--to", &to, "--pool", "600", "-o", "json",
            ],
        ]
        .concat(),
    )?;
    let reward_of = |i: usize| {
        let key = NodeKey::of(&net.edges[i]).to_hex();
        rewards["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["node"] == key.as_str()))
            .map(|n| n["reward"].as_u64())
    };
    assert_eq!(
        [reward_of(0), reward_of(1), reward_of(2), reward_of(3)],
        [
            Some(Some(100)),
            Some(Some(200)),
            Some(Some(300)),
            Some(Some(0))
        ]
    );
    assert_eq!(
        (rewards["disputed"].as_u64(), rewards["unobserved"].as_u64()),
        (Some(4), Some(1))
    );
    // Named from the registry file (keys.json); both epochs are sealed, so final.
    let names: Vec<&str> = rewards["nodes"]
        .as_array()
        .map(|n| n.iter().filter_map(|n| n["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names.len(), 4, "{rewards}");
    assert!(names.iter().all(|n| n.starts_with("edge-")), "{rewards}");
    assert!(
        rewards["final_through"].as_u64() >= Some(epochs[1]),
        "{rewards}"
    );
    let status = hsnctl(&[&addr[..], &["status"]].concat())?;
    let status = String::from_utf8(status.stdout)?;
    let field = |name: &str, value: &str| {
        status
            .lines()
            .any(|l| l.split_whitespace().eq([name, value]))
    };
    assert!(field("blocks:", "2") && field("evidence:", "2"), "{status}");
    let show = String::from_utf8(hsnctl(&[&addr[..], &["show", "0"]].concat())?.stdout)?;
    assert!(
        show.contains("disputed") && show.contains("unobserved") && show.contains(&key.to_string()),
        "{show}"
    );
    let proof_out = hsnctl(&[&addr[..], &["proof", &key.to_string()]].concat())?;
    assert!(
        proof_out.status.success() && String::from_utf8(proof_out.stdout)?.contains("verified")
    );
    let blocks = String::from_utf8(hsnctl(&[&addr[..], &["blocks"]].concat())?.stdout)?;
    assert_eq!(blocks.lines().count(), 3, "{blocks}");

    // Tamper with the stored chain: `hsnctl ledger verify` says where.
    let flip_key = RecordKey {
        tenant: "flipme".into(),
        direction: Direction::Uplink,
        epoch: epochs[0],
        node: NodeKey::of(&net.edges[2]),
    };
    let p = client
        .get_proof(pb::GetProofRequest {
            key: Some(flip_key.to_pb()),
        })
        .await?
        .into_inner();
    let at = format!("block 0, entry {}", p.index);
    server.terminate()?;
    let db = net.files.db.display().to_string();
    let clean = hsnctl(&["ledger", "verify", "--db", &db])?;
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    flip_every(&net.files.db, b"flipme", b'g')?;
    let tampered = hsnctl(&["ledger", "verify", "--db", &db])?;
    let stderr = String::from_utf8(tampered.stderr)?;
    assert_eq!(tampered.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "verification failed at {at}: record signature does not verify"
        )),
        "{stderr}"
    );
    // The same fault, seen through a ledger serving the tampered file.
    let server = net.start(&epochs_flags)?;
    let metrics = scrape(server.metrics.context("metrics address")?)?;
    assert!(
        metrics.contains("hsn_ledger_height_blocks 2\n"),
        "a restarted ledger reports its chain's height: {metrics}"
    );
    let remote = hsnctl(&["ledger", "--addr", &server.url(), "verify"])?;
    assert_eq!(remote.status.code(), Some(1));
    assert!(String::from_utf8(remote.stderr)?.contains(&at));

    // Damage anywhere in a copy of the file: verify answers (0 when the byte was unused
    // space, 1 with a located error otherwise), never crashes. 150 copies, one flipped
    // byte each, at positions spread over the file by a fixed stride.
    drop(server);
    let pristine = std::fs::read(&net.files.db)?;
    let copy = net.dir.path().join("damaged.redb");
    let copy_s = copy.display().to_string();
    let (mut failed, mut passed) = (0, 0);
    for k in 0..150usize {
        let mut bytes = pristine.clone();
        let at = (k * 7919 + 13) % bytes.len();
        bytes[at] ^= 0x5a;
        std::fs::write(&copy, &bytes)?;
        let out = hsnctl(&["ledger", "verify", "--db", &copy_s])?;
        match out.status.code() {
            Some(0) => passed += 1,
            Some(1) => failed += 1,
            other => anyhow::bail!(
                "byte {at}: hsnctl exited {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    eprintln!(
        "flipped bytes: {failed} refused, {passed} in unused space or caught by redb and rolled back"
    );
    Ok(())
}
