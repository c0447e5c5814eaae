//! The agent against a real kube-apiserver, as its ServiceAccount with the Role the operator
//! writes: a missing Lease is waited for (never created), then renewed with its annotations
//! once the operator created it; routes ConfigMap changes reprogrammed, a malformed table
//! keeps the last good state.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{FakeDatapath, edge_n1_header, table};
use hsn_agent::agent::{Agent, AgentConfig, LeaseConfig, RoutesSource};
use hsn_agent::index::Me;
use hsn_agent::lease::LeaseIdentity;
use hsn_agent::nexthop::NextHops;
use hsn_api::HsnNetwork;
use hsn_api::node::lease as names;
use hsn_api::routes::ROUTES_KEY;
use hsn_core::MacAddr;
use hsn_core::{Role, SuperId};
use hsn_ebpf::NextHop;
use hsn_testkit::operator::{EDGE_AGENT_IDENTITY, EDGE_NODE, EDGE_POOL, apply_member_objects};
use hsn_testkit::{ControlPlane, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams};

const NS: &str = "hsn-metro";
const WAIT: Duration = Duration::from_secs(20);

fn hop(last: u8) -> NextHop {
    NextHop {
        ifindex: 1,
        dst_mac: MacAddr([2, 0, 0, 0, 0, last]),
        src_mac: MacAddr([2, 0, 0, 0, 1, 1]),
        local: "10.1.0.1".parse().unwrap(),
        remote: std::net::Ipv4Addr::new(10, 0, 0, last).into(),
        mtu: 1500,
    }
}

async fn put_routes(api: &Api<ConfigMap>, json: String) -> anyhow::Result<()> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("hsn-routes".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(ROUTES_KEY.to_owned(), json)])),
        ..ConfigMap::default()
    };
    api.patch(
        "hsn-routes",
        &PatchParams::apply("test").force(),
        &Patch::Apply(cm),
    )
    .await?;
    Ok(())
}

fn annotation(lease: &Lease, key: &str) -> Option<String> {
    lease.metadata.annotations.as_ref()?.get(key).cloned()
}

fn network() -> anyhow::Result<HsnNetwork> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": "metro", "namespace": "edge-net", "uid": "0000-1111"},
        "spec": {
            "superNodes": {"replicas": 1, "image": "agent:1"},
            "edgePools": [{"name": EDGE_POOL, "sliceType": "eMBB"}],
            "metering": {"tenants": [{"name": "acme", "id": 7, "prefixes": ["10.7.0.0/16"]}]}
        }
    }))?)
}

/// The edge agent of node n1 as its pod runs it, reading and writing as `client`.
fn edge_config(client: &kube::Client, state: &std::path::Path, heartbeat: Duration) -> AgentConfig {
    AgentConfig {
        network: "metro".into(),
        me: Me::Edge { node: "n1".into() },
        spool_header: edge_n1_header(),
        spool_dir: state.join("spool"),
        routes: RoutesSource::ConfigMap(
            Box::new(Api::namespaced(client.clone(), NS)),
            "hsn-routes".into(),
        ),
        next_hops: NextHops::PerSuper(BTreeMap::from([
            (SuperId::new("a", 0), hop(0xa0)),
            (SuperId::new("a", 1), hop(0xa1)),
        ])),
        tunnel_address: Some("10.1.0.1".parse().unwrap()),
        lease: Some(LeaseConfig {
            api: Api::namespaced(client.clone(), NS),
            identity: LeaseIdentity {
                name: names::edge_lease(EDGE_NODE),
                holder: "hsn-edge-bb-x1".into(),
                pod_uid: "u-x1".into(),
                role: Role::Edge,
                public_key: "ab".repeat(32),
                duration_seconds: 15,
                address: Some("10.1.0.1".parse().unwrap()),
            },
            heartbeat,
        }),
        default_epoch_seconds: 60,
        epoch_loop: false,
        datapath_mode: "xdp-generic".into(),
        shipper: None,
        ledger_relay_dir: None,
    }
}

#[tokio::test]
async fn lease_routes_and_malformed_tables_against_a_real_apiserver() -> anyhow::Result<()> {
    let cp = ControlPlane::start().await?;
    let client = cp.client();
    // The member namespace and the agents' identities as the operator writes them, but not
    // the Lease yet: the operator has not got to it.
    let identity = ["Namespace", "ServiceAccount", "Role", "RoleBinding"];
    let ns = apply_member_objects(&client, &network()?, &identity).await?;
    assert_eq!(ns, NS);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    put_routes(&cms, serde_json::to_string(&table("a/super-0"))?).await?;
    // The agent reads and writes as the edges' ServiceAccount.
    let as_edge = cp
        .client_as_service_account(NS, EDGE_AGENT_IDENTITY)
        .await?;

    let state = tempfile::tempdir()?;
    let fake = FakeDatapath::default();
    let config = edge_config(&as_edge, state.path(), Duration::from_secs(1));
    let agent = Agent::start(config, fake.clone())?;

    // No Lease yet: the agent says so and waits, and nothing creates it.
    wait_for("the agent to find its Lease missing", WAIT, || async {
        (agent.metrics.lease_missing.get() == 1).then_some(())
    })
    .await?;
    assert!(
        leases.get_opt("edge-n1").await?.is_none(),
        "the agent created its Lease"
    );
    // Routes are programmed meanwhile: a missing Lease stops nothing.
    wait_for("first programming", WAIT, || async {
        (fake.state().hop == Some(hop(0xa0))).then_some(())
    })
    .await?;
    assert_eq!(
        fake.state().supers,
        [
            "10.0.0.160".parse::<std::net::IpAddr>()?,
            "10.0.0.161".parse()?
        ],
        "tunnelled downlink is taken from every super node"
    );

    // The operator creates it: the agent renews it from then on.
    apply_member_objects(&client, &network()?, &["Namespace", "Lease"]).await?;
    let first = wait_for("Lease edge-n1 written by the agent", WAIT, || async {
        let l = leases.get_opt("edge-n1").await.ok().flatten()?;
        l.spec.as_ref()?.renew_time.is_some().then_some(l)
    })
    .await?;
    wait_for("lease_missing back to 0", WAIT, || async {
        (agent.metrics.lease_missing.get() == 0).then_some(())
    })
    .await?;
    // The operator's labels and annotations are left alone (no re-apply needed).
    assert!(
        first
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("hsn.io/network-uid"))
    );
    assert!(annotation(&first, "hsn.io/applied-hash").is_some());
    assert_eq!(
        annotation(&first, names::POD_UID_ANNOTATION).as_deref(),
        Some("u-x1")
    );
    assert_eq!(
        annotation(&first, names::ROLE_ANNOTATION).as_deref(),
        Some("edge")
    );
    assert_eq!(
        annotation(&first, names::PUBLIC_KEY_ANNOTATION),
        Some("ab".repeat(32))
    );
    assert_eq!(
        annotation(&first, names::DATAPATH_ANNOTATION).as_deref(),
        Some("xdp-generic")
    );
    assert_eq!(
        annotation(&first, names::ADDRESS_ANNOTATION).as_deref(),
        Some("10.1.0.1")
    );
    let spec = first.spec.clone().unwrap_or_default();
    assert_eq!(spec.holder_identity.as_deref(), Some("hsn-edge-bb-x1"));
    assert_eq!(spec.lease_duration_seconds, Some(15));

    // Renewed: renewTime moves on.
    let renewed_at = spec.renew_time.clone();
    wait_for("Lease renewal", WAIT, || async {
        let l = leases.get("edge-n1").await.ok()?;
        (l.spec?.renew_time != renewed_at).then_some(())
    })
    .await?;

    // Programmed from the ConfigMap: tenants and the first super's next hop.
    assert_eq!(fake.state().tenants[0].tenant.get(), 7);

    // A routes change moves the edge to super-1: one next-hop write, no reload.
    put_routes(&cms, serde_json::to_string(&table("a/super-1"))?).await?;
    wait_for("next hop switched", WAIT, || async {
        (fake.state().hop == Some(hop(0xa1))).then_some(())
    })
    .await?;

    // A malformed table: last good state kept, error in the Lease and the metric.
    let writes_before = fake.state().writes;
    let mut bad = table("a/super-0");
    bad.tenants[0].prefixes[0].0 = "10.7.0.0/99".into();
    put_routes(&cms, serde_json::to_string(&bad)?).await?;
    let error = wait_for("routes-error annotation", WAIT, || async {
        let l = leases.get("edge-n1").await.ok()?;
        annotation(&l, names::ROUTES_ERROR_ANNOTATION)
    })
    .await?;
    assert!(error.contains("10.7.0.0/99"), "{error}");
    assert_eq!(
        fake.state().hop,
        Some(hop(0xa1)),
        "still on the last good super"
    );
    assert_eq!(fake.state().writes, writes_before, "nothing half-loaded");
    assert_eq!(
        agent
            .metrics
            .routes_errors_total(hsn_agent::index::IndexError::LABELS),
        1
    );
    put_routes(&cms, "{not json".into()).await?;
    wait_for("second error", WAIT, || async {
        let l = leases.get("edge-n1").await.ok()?;
        annotation(&l, names::ROUTES_ERROR_ANNOTATION).filter(|e| e.contains("malformed"))
    })
    .await?;

    // Fixed again: the error annotation goes away and the new table is programmed.
    put_routes(&cms, serde_json::to_string(&table("a/super-0"))?).await?;
    wait_for("error cleared", WAIT, || async {
        let l = leases.get("edge-n1").await.ok()?;
        annotation(&l, names::ROUTES_ERROR_ANNOTATION)
            .is_none()
            .then_some(())
    })
    .await?;
    wait_for("back on super-0", WAIT, || async {
        (fake.state().hop == Some(hop(0xa0))).then_some(())
    })
    .await?;
    assert!(agent.status.borrow().routes_error.is_none());
    drop(agent);
    Ok(())
}

#[tokio::test]
async fn a_missing_lease_is_looked_for_again_within_a_second_not_a_heartbeat() -> anyhow::Result<()>
{
    let cp = ControlPlane::start().await?;
    let client = cp.client();
    let identity = ["Namespace", "ServiceAccount", "Role", "RoleBinding"];
    apply_member_objects(&client, &network()?, &identity).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    let as_edge = cp
        .client_as_service_account(NS, EDGE_AGENT_IDENTITY)
        .await?;
    let state = tempfile::tempdir()?;
    // A heartbeat far longer than the wait below: only the missing Lease's own recheck can
    // find the Lease in time (the pods are placed while the operator writes the Leases).
    let config = edge_config(&as_edge, state.path(), Duration::from_secs(600));
    let agent = Agent::start(config, FakeDatapath::default())?;
    wait_for("the agent to find its Lease missing", WAIT, || async {
        (agent.metrics.lease_missing.get() == 1).then_some(())
    })
    .await?;
    apply_member_objects(&client, &network()?, &["Namespace", "Lease"]).await?;
    wait_for("Lease edge-n1 renewed by the agent", WAIT, || async {
        let l = leases.get_opt("edge-n1").await.ok().flatten()?;
        l.spec.as_ref()?.renew_time.is_some().then_some(())
    })
    .await?;
    assert_eq!(agent.metrics.lease_missing.get(), 0);
    drop(agent);
    Ok(())
}
