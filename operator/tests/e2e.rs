//! The operator end to end on a hub and two MEC clusters. By default on real control planes
//! started here: a hub (kube-apiserver + etcd) and two MEC clusters (kwok: scheduler,
//! controller-manager, fake kubelets), the operator as a process. The `HSN_E2E_*` variables
//! point the same suite at clusters that exist, e.g. kind with the chart installed and real
//! agents (kind/README.md); a step that must be done differently there says so when it runs.
//! Every wait has a deadline; nothing sleeps.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, ensure};
use hsn_api::routes::{ROUTES_KEY, RoutesTable};
use hsn_api::{HsnNetwork, HsnNode, MecCluster};
use hsn_core::SuperId;
use hsn_testkit::operator::*;
use hsn_testkit::wait_for;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const NS: &str = "edge-net";
const NET: &str = "metro";
const MEMBER_NS: &str = "hsn-metro";

fn network() -> Result<HsnNetwork> {
    // Edge pools tolerate the taint of nodes set aside for edge agents; kwok's nodes have none.
    let tolerations = json!([{"key": AGENTS_TAINT, "operator": "Exists", "effect": "NoSchedule"}]);
    Ok(serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": NET, "namespace": NS},
        "spec": {
            "superNodes": {"replicas": 4, "placement": {
                "clusterSelector": {"matchLabels": {"hsn.io/tier": "mec"}}, "spreadBy": "Region"}},
            "edgePools": [
                {"name": "broadband", "sliceType": "eMBB", "maxEdgesPerSuperNode": 8,
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "embb"}},
                 "tolerations": tolerations},
                {"name": "iot", "sliceType": "mMTC",
                 "nodeSelector": {"matchLabels": {"hsn.io/edge": "true", "hsn.io/slice": "mmtc"}},
                 "tolerations": tolerations}
            ],
            "metering": {"tenants": [
                {"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16", "2001:db8:20::/48"]},
                {"name": "globex", "id": 2, "prefixes": ["10.30.0.0/16"]}
            ]}
        }
    }))?)
}

/// What every step works on.
struct Suite {
    env: E2eEnv,
    hub: Hub,
    a: Member,
    b: Member,
    ta: Topology,
    tb: Topology,
}

impl Suite {
    fn hub(&self) -> Client {
        self.hub.client()
    }

    fn nets(&self) -> Api<HsnNetwork> {
        Api::namespaced(self.hub(), NS)
    }

    /// Agents run for real: they renew their own Leases, and every reconcile mirrors the
    /// renewals into HsnNode status.
    fn live_agents(&self) -> bool {
        self.ta.real || self.tb.real
    }

    /// Name of the HsnNode of super node `ordinal` in `member`.
    fn super_node(member: &Member, ordinal: u32) -> String {
        format!("{NET}.{}.super-{ordinal}", member.name)
    }
}

async fn routes(member: &Client) -> Result<RoutesTable> {
    let cm = Api::<ConfigMap>::namespaced(member.clone(), MEMBER_NS)
        .get("hsn-routes")
        .await?;
    Ok(RoutesTable::parse(
        &cm.data.unwrap_or_default()[ROUTES_KEY],
    )?)
}

async fn super_replicas(member: &Client) -> Option<i32> {
    let sts = Api::<StatefulSet>::namespaced(member.clone(), MEMBER_NS)
        .get_opt("hsn-super-node")
        .await
        .ok()??;
    sts.spec?.replicas
}

/// Edge HsnNodes by (cluster, node) -> assigned super HsnNode.
async fn assignments(hub: &Client) -> Result<Vec<(String, String, String)>> {
    let nodes = Api::<HsnNode>::namespaced(hub.clone(), NS)
        .list(&ListParams::default())
        .await?;
    Ok(nodes
        .items
        .into_iter()
        .filter_map(|n| {
            Some((
                n.spec.cluster,
                n.spec.node_name?,
                n.spec.assigned_super_node?,
            ))
        })
        .collect())
}

/// What a reconcile must not rewrite even while agents renew Leases: the network (its
/// resourceVersion) and every HsnNode's spec (generation), by name.
async fn hub_objects(hub: &Client) -> Result<(Option<String>, BTreeMap<String, Option<i64>>)> {
    let net = Api::<HsnNetwork>::namespaced(hub.clone(), NS)
        .get(NET)
        .await?;
    let nodes = Api::<HsnNode>::namespaced(hub.clone(), NS)
        .list(&ListParams::default())
        .await?;
    let generations = nodes
        .items
        .iter()
        .map(|n| (n.name_any(), n.metadata.generation))
        .collect();
    Ok((net.resource_version(), generations))
}

/// Writes (or renews) the Lease of super node `ordinal` of a member: renewed `age` seconds
/// ago, valid for `duration` seconds.
async fn put_super_lease(member: &Client, ordinal: u32, age: i64, duration: i32) -> Result<()> {
    let name = format!("super-{ordinal}");
    let renewed =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(age);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": MEMBER_NS},
        "spec": {"holderIdentity": "node-x", "leaseDurationSeconds": duration,
                 "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}
    });
    let api: Api<Lease> = Api::namespaced(member.clone(), MEMBER_NS);
    api.patch(
        &name,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&lease),
    )
    .await?;
    Ok(())
}

/// How step 3b stops and resumes the renewals of a super node's Lease.
enum LeaseControl {
    /// Nothing renews Leases (kwok's pods run no process): the suite writes them.
    Written,
    /// The super node's agent renews it: the suite pauses and resumes its process on the
    /// node (SIGSTOP, SIGCONT), as a hung agent would.
    Agent { node: String, pod: String },
}

/// Signals the agent container of `pod` on its node: crictl finds it, `kill` signals it.
const SIGNAL_AGENT: &str = r#"set -eu
id=$(crictl ps -q --name '^agent$' --label "io.kubernetes.pod.namespace=$1" --label "io.kubernetes.pod.name=$2")
[ -n "$id" ] || { echo "no running agent container in pod $1/$2" >&2; exit 1; }
kill "-$3" "$(crictl inspect -o go-template --template '{{.info.pid}}' "$id")""#;

impl LeaseControl {
    /// How to control super `ordinal` of `member`; `None` (with the reason printed) when the
    /// suite cannot.
    async fn of(s: &Suite, member: &Member, ordinal: u32) -> Result<Option<Self>> {
        if !s.live_agents() {
            return Ok(Some(Self::Written));
        }
        if s.env.node_exec.is_empty() {
            eprintln!(
                "step 3b skipped: agents renew their own Leases here, and pausing one needs \
                 {NODE_EXEC_VAR} (e.g. 'docker exec' on kind)"
            );
            return Ok(None);
        }
        let pod = format!("hsn-super-node-{ordinal}");
        let node = Api::<Pod>::namespaced(member.client(), MEMBER_NS)
            .get(&pod)
            .await?
            .spec
            .and_then(|s| s.node_name)
            .with_context(|| format!("pod {pod} is not scheduled"))?;
        Ok(Some(Self::Agent { node, pod }))
    }

    async fn signal(&self, env: &E2eEnv, signal: &str) -> Result<()> {
        if let Self::Agent { node, pod } = self {
            node_exec(
                env,
                node,
                &["sh", "-c", SIGNAL_AGENT, "sh", MEMBER_NS, pod, signal],
            )
            .await?;
        }
        Ok(())
    }

    /// The Lease is renewed and stays current.
    async fn renewing(&self, env: &E2eEnv, member: &Client, ordinal: u32) -> Result<()> {
        match self {
            // Valid for an hour: the later steps must not see it lapse.
            Self::Written => put_super_lease(member, ordinal, 0, 3600).await,
            Self::Agent { .. } => self.signal(env, "CONT").await,
        }
    }

    /// The Lease is no longer renewed (and, written, lapsed already).
    async fn stopped(&self, env: &E2eEnv, member: &Client, ordinal: u32) -> Result<()> {
        match self {
            Self::Written => put_super_lease(member, ordinal, 120, 15).await,
            Self::Agent { .. } => self.signal(env, "STOP").await,
        }
    }
}

async fn lease_lapse(s: &Suite) -> Result<()> {
    let (hub, a, nets) = (s.hub(), &s.a, s.nets());
    let ac = a.client();
    // The super node of A that guarantees edges: super-0 whenever it does.
    let ordinal = assignments(&hub)
        .await?
        .iter()
        .filter_map(|(_, _, sup)| {
            sup.strip_prefix(&format!("{NET}.{}.super-", a.name))?
                .parse::<u32>()
                .ok()
        })
        .min()
        .context("a super node of A guarantees edges")?;
    let lost = Suite::super_node(a, ordinal);
    let Some(control) = LeaseControl::of(s, a, ordinal).await? else {
        return Ok(());
    };
    control.renewing(&s.env, &ac, ordinal).await?;
    let before = assignments(&hub).await?;
    ensure!(
        before.iter().any(|(_, _, sup)| sup == &lost),
        "{lost} guarantees edges: {before:?}"
    );
    control.stopped(&s.env, &ac, ordinal).await?;
    wait_condition(&nets, NET, "Degraded", "True", Some("SuperNodesLost")).await?;
    let after = wait_for("the lost super's edges re-homed", DEADLINE, || async {
        let now = assignments(&hub).await.ok()?;
        (now.len() == before.len() && now.iter().all(|(_, _, sup)| sup != &lost)).then_some(now)
    })
    .await?;
    for (old, new) in before.iter().zip(&after) {
        ensure!(
            old.0 == new.0 && old.1 == new.1,
            "same edges in the same order"
        );
        ensure!(
            old.2 == lost || old.2 == new.2,
            "{}/{} moved from {} to {} though its super lives",
            old.0,
            old.1,
            old.2,
            new.2
        );
    }
    let routes_a = routes(&ac).await?;
    let lost_id = SuperId::new(&a.name, ordinal);
    ensure!(
        routes_a.supers.iter().all(|sup| sup.id != lost_id),
        "routes list only live supers"
    );
    // Renewed, it is live again and takes back the edges it wins.
    control.renewing(&s.env, &ac, ordinal).await?;
    wait_condition(&nets, NET, "Degraded", "False", None).await?;
    wait_for(
        &format!("{lost} guarantees edges again"),
        DEADLINE,
        || async {
            assignments(&hub)
                .await
                .ok()?
                .iter()
                .any(|(_, _, sup)| sup == &lost)
                .then_some(())
        },
    )
    .await?;
    Ok(())
}

/// (writes to members, writes to the hub by the network controller) so far, from one
/// scrape. MecCluster status is left out: it records probe latency when that moves a lot.
async fn writes(op: &OperatorUnderTest) -> Result<(f64, f64)> {
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
fn nothing_rewritten<T: PartialEq>(
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

async fn namespace_gone(member: &Client) -> Option<()> {
    let ns = Api::<Namespace>::all(member.clone());
    ns.get_opt(MEMBER_NS).await.ok()?.is_none().then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_places_fails_over_and_cleans_up() -> Result<()> {
    let env = E2eEnv::from_env()?;
    eprintln!("e2e against: {}", env.describe());
    let hub = Hub::start_or_connect(&env).await?;
    // Here: two regions x two zones x five nodes; four edge-capable nodes per zone.
    let local = vec![
        ("mec-a", "eu-west", nodes("eu-west", 5, 4)),
        ("mec-b", "eu-north", nodes("eu-north", 5, 4)),
    ];
    let [a, b] = <[Member; 2]>::try_from(members(&env, &hub, local).await?)
        .map_err(|_| anyhow!("two members"))?;
    let dir = tempfile::tempdir()?;
    let op = OperatorUnderTest::start(&env, &hub, dir.path()).await?;
    let (ta, tb) = (Topology::of(&a).await?, Topology::of(&b).await?);
    eprintln!("{}: {ta:?}\n{}: {tb:?}", a.name, b.name);
    let s = Suite {
        env,
        hub,
        a,
        b,
        ta,
        tb,
    };
    with_log(&op, rollout(&s, &op)).await?;
    // A restarted operator plans from what is there (HsnNodes, members): it must move no
    // edge and write nothing, even before its first probes complete.
    let before = assignments(&s.hub()).await?;
    let objects = hub_objects(&s.hub()).await?;
    let op = op.restart(&s.hub, dir.path()).await?;
    with_log(&op, restarted(&s, &op, before, objects)).await?;
    with_log(&op, churn(&s, &op)).await?;
    if !s.hub.is_local() {
        tidy(&s).await?;
    }
    Ok(())
}

async fn restarted(
    s: &Suite,
    op: &OperatorUnderTest,
    before: Vec<(String, String, String)>,
    objects: (Option<String>, BTreeMap<String, Option<i64>>),
) -> Result<()> {
    wait_for(
        "three network reconciles by the new operator",
        DEADLINE,
        || async {
            let n = op
                .metric("hsn_operator_reconciles_total{controller=\"hsnnetwork\"}")
                .await
                .ok()?;
            (n >= 3.0).then_some(())
        },
    )
    .await?;
    ensure!(
        assignments(&s.hub()).await? == before,
        "a restart moved edges"
    );
    nothing_rewritten(
        s,
        "a restarted operator",
        ((0.0, 0.0), writes(op).await?),
        (&objects, &hub_objects(&s.hub()).await?),
    )
}

/// Steps 1 and 2: the network rolls out, then steady state writes nothing.
async fn rollout(s: &Suite, op: &OperatorUnderTest) -> Result<()> {
    let hub = s.hub();
    let (ac, bc) = (s.a.client(), s.b.client());
    let nets = s.nets();
    let ns: Api<Namespace> = Api::all(hub.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
    )
    .await?;
    nets.create(&PostParams::default(), &network()?).await?;

    // 1. Ready with the right counts and the right objects in each member.
    let edges = s.ta.edges() + s.tb.edges();
    let n = wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    let status = n.status.unwrap();
    ensure!(
        status.super_nodes.desired == 4 && status.super_nodes.ready == 4,
        "{status:?}"
    );
    ensure!(
        usize::try_from(status.edge_nodes.desired)? == edges
            && usize::try_from(status.edge_nodes.ready)? == edges,
        "{edges} edges: {status:?}"
    );
    ensure!(status.cluster_count == 2);
    for (member, topo, client) in [(&s.a, &s.ta, &ac), (&s.b, &s.tb, &bc)] {
        ensure!(
            super_replicas(client).await == Some(2),
            "two super nodes per region"
        );
        let ds = Api::<DaemonSet>::namespaced(client.clone(), MEMBER_NS);
        for (pool, want) in [
            ("hsn-edge-broadband", topo.broadband),
            ("hsn-edge-iot", topo.iot),
        ] {
            let d = ds
                .get(pool)
                .await
                .with_context(|| format!("DaemonSet {pool}"))?;
            ensure!(
                usize::try_from(d.status.unwrap().number_ready)? == want,
                "{pool}: {want} edge agents ready"
            );
        }
        let table = routes(client).await?;
        ensure!(
            table.edges.len() == topo.edges()
                && table.supers.len() == 4
                && table.tenants.len() == 2
        );
        // Locality: every edge goes to a super node of its own region.
        ensure!(
            table
                .edges
                .iter()
                .all(|e| e.super_id.cluster == member.name),
            "{table:?}"
        );
    }
    let edge_nodes = assignments(&hub).await?;
    ensure!(
        edge_nodes.len() == edges,
        "one HsnNode per edge agent: {edge_nodes:?}"
    );
    if s.live_agents() {
        // Real agents write their Leases once running; their addresses reach the routes.
        wait_for("every agent's Lease current", DEADLINE, || async {
            let nodes = Api::<HsnNode>::namespaced(hub.clone(), NS)
                .list(&ListParams::default())
                .await
                .ok()?
                .items;
            let current = |n: &HsnNode| {
                n.status.as_ref().is_some_and(|st| {
                    st.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            };
            (nodes.len() == edges + 4 && nodes.iter().all(current)).then_some(())
        })
        .await?;
    }

    // 2. Steady state writes nothing: several reconciles later, no new write anywhere.
    let before = writes(op).await?;
    let objects = hub_objects(&hub).await?;
    let reconciles = op
        .metric("hsn_operator_reconciles_total{controller=\"hsnnetwork\"}")
        .await?;
    wait_for("three more network reconciles", DEADLINE, || async {
        let now = op
            .metric("hsn_operator_reconciles_total{controller=\"hsnnetwork\"}")
            .await
            .ok()?;
        (now >= reconciles + 3.0).then_some(())
    })
    .await?;
    let after = writes(op).await?;
    nothing_rewritten(
        s,
        "steady-state reconciles",
        (before, after),
        (&objects, &hub_objects(&hub).await?),
    )
}

/// Steps 3 to 7: pool changes, a lapsed Lease, a lost member, deletion, broken Secrets.
async fn churn(s: &Suite, op: &OperatorUnderTest) -> Result<()> {
    let hub = s.hub();
    let (a, b) = (&s.a, &s.b);
    let (ac, bc) = (a.client(), b.client());
    let nets = s.nets();
    let edges = s.ta.edges() + s.tb.edges() + 2;

    // 3. Label two more nodes of A into the broadband pool: assignment and routes follow.
    let anodes: Api<Node> = Api::all(ac.clone());
    for node in &s.ta.spare {
        let patch =
            json!({"metadata": {"labels": {"hsn.io/edge": "true", "hsn.io/slice": "embb"}}});
        anodes
            .patch(node, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    let a_edges = s.ta.edges() + 2;
    wait_for(
        &format!("routes of A list {a_edges} edges"),
        DEADLINE,
        || async { (routes(&ac).await.ok()?.edges.len() == a_edges).then_some(()) },
    )
    .await?;
    wait_for(&format!("{edges} edges ready"), DEADLINE, || async {
        let st = nets.get(NET).await.ok()?.status?;
        let want = i32::try_from(edges).ok()?;
        (st.edge_nodes.desired == want && st.edge_nodes.ready == want).then_some(())
    })
    .await?;
    wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    wait_for(&format!("{edges} edge HsnNodes"), DEADLINE, || async {
        (assignments(&hub).await.ok()?.len() == edges).then_some(())
    })
    .await?;

    // 3b. A super node whose Lease lapses loses exactly its edges, and wins some back when
    // it renews.
    lease_lapse(s).await?;

    // 4. B goes away (its API server stops): B turns NotReady, its edges are re-homed to A's
    // super nodes.
    b.go_away().await?;
    let mecs: Api<MecCluster> = Api::all(hub.clone());
    let b_not_ready = format!("MecCluster {} Ready=False", b.name);
    wait_for(&b_not_ready, DEADLINE, || async {
        let m = mecs.get(&b.name).await.ok()?;
        (mec_condition(&m, "Ready")?.0 == "False").then_some(())
    })
    .await?;
    let degraded = wait_condition(&nets, NET, "Degraded", "True", Some("ClusterNotReady")).await?;
    let conditions = degraded.status.unwrap().conditions;
    let message = &conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    ensure!(message.contains(&b.name), "{message}");
    let on_a_prefix = format!("{NET}.{}.", a.name);
    wait_for(
        "B's edges re-homed to A's super nodes",
        DEADLINE,
        || async {
            let all = assignments(&hub).await.ok()?;
            let on_a = all
                .iter()
                .filter(|(_, _, sup)| sup.starts_with(&on_a_prefix))
                .count();
            (all.len() == edges && on_a == edges).then_some(())
        },
    )
    .await?;
    wait_for("A runs all four super nodes", DEADLINE, || async {
        (super_replicas(&ac).await? == 4).then_some(())
    })
    .await?;
    let table = routes(&ac).await?;
    ensure!(
        table.supers.iter().all(|sup| sup.id.cluster == a.name),
        "A's routes list only live super nodes: {table:?}"
    );
    let failovers = op.metric("hsn_operator_failover_seconds_count").await?;
    ensure!(failovers >= 1.0, "the failover time was recorded");

    // 5. B comes back: the network converges back.
    b.come_back().await?;
    wait_condition(&nets, NET, "Degraded", "False", None).await?;
    wait_condition(&nets, NET, "Ready", "True", Some("AllAgentsReady")).await?;
    wait_for("B hosts super nodes again", DEADLINE, || async {
        (super_replicas(&bc).await? == 2).then_some(())
    })
    .await?;

    // 6. Delete the network while B is away: A is cleaned now, B when it returns.
    b.go_away().await?;
    wait_for(&b_not_ready, DEADLINE, || async {
        let m = mecs.get(&b.name).await.ok()?;
        (mec_condition(&m, "Ready")?.0 == "False").then_some(())
    })
    .await?;
    nets.delete(NET, &DeleteParams::default()).await?;
    wait_for("network gone from the hub", DEADLINE, || async {
        nets.get_opt(NET).await.ok()?.is_none().then_some(())
    })
    .await?;
    wait_for("A's namespace gone", DEADLINE, || namespace_gone(&ac)).await?;
    let marked = mecs.get(&b.name).await?;
    ensure!(
        marked
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("hsn.io/pending-cleanup")
    );
    ensure!(
        assignments(&hub).await?.is_empty(),
        "HsnNodes are removed with the network"
    );
    b.come_back().await?;
    wait_for("B's namespace gone after it came back", DEADLINE, || {
        namespace_gone(&bc)
    })
    .await?;
    wait_for("pending cleanup cleared", DEADLINE, || async {
        let m = mecs.get(&b.name).await.ok()?;
        (!m.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("hsn.io/pending-cleanup"))
        .then_some(())
    })
    .await?;

    // 7. Broken kubeconfig Secrets: clear conditions, no crash.
    let registered = mecs.list(&ListParams::default()).await?.items.len();
    kubeconfig_secret(&hub, "garbage", b"this is not a kubeconfig").await?;
    mec_cluster(&hub, "mec-broken", "eu-south", "garbage").await?;
    mec_cluster(&hub, "mec-missing", "eu-east", "no-such-secret").await?;
    for (name, reason) in [
        ("mec-broken", "KubeconfigInvalid"),
        ("mec-missing", "SecretNotFound"),
    ] {
        let m = wait_for(
            &format!("{name} Reachable=False {reason}"),
            DEADLINE,
            || async {
                let m = mecs.get(name).await.ok()?;
                let (status, r, _) = mec_condition(&m, "Reachable")?;
                (status == "False" && r == reason).then_some(m)
            },
        )
        .await?;
        let (ready, _, message) = mec_condition(&m, "Ready").context("Ready condition")?;
        ensure!(ready == "False" && !message.is_empty(), "{name}: {message}");
    }
    let names: BTreeSet<String> = mecs
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(name_of)
        .collect();
    ensure!(names.len() == registered + 2, "{names:?}");
    Ok(())
}

/// On clusters that outlive the suite: removes what it created and unlabels the nodes step 3
/// labelled, so that it can run again.
async fn tidy(s: &Suite) -> Result<()> {
    let (hub, dp) = (s.hub(), DeleteParams::default());
    let mecs: Api<MecCluster> = Api::all(hub.clone());
    for name in ["mec-broken", "mec-missing"] {
        mecs.delete(name, &dp).await?;
    }
    Api::<Secret>::namespaced(hub.clone(), OPERATOR_NS)
        .delete("garbage", &dp)
        .await?;
    Api::<Namespace>::all(hub).delete(NS, &dp).await?;
    let unlabel = json!({"metadata": {"labels": {"hsn.io/edge": null, "hsn.io/slice": null}}});
    for node in &s.ta.spare {
        Api::<Node>::all(s.a.client())
            .patch(node, &PatchParams::default(), &Patch::Merge(&unlabel))
            .await?;
    }
    Ok(())
}
