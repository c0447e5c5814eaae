//! Step 3b: a super node whose Lease lapses loses exactly its edges, and wins some back
//! when it renews.

use anyhow::{Context, Result, ensure};
use hsn_core::SuperId;
use hsn_operator::resources::SUPER_NODE;
use hsn_testkit::operator::{
    DEADLINE, E2eEnv, Member, NODE_EXEC_VAR, node_exec, put_super_lease, wait_condition,
};
use hsn_testkit::wait_for;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};

use crate::reads::{assignments, routes};
use crate::{MEMBER_NS, NET, Suite};

/// How step 3b stops and resumes the renewals of a super node's Lease.
pub(crate) enum LeaseControl {
    /// Nothing renews Leases (kwok's pods run no process): the suite writes them.
    Written,
    /// The super node's agent renews it: the suite pauses and resumes its process on the
    /// node (SIGSTOP, SIGCONT), as a hung agent would.
    Agent { node: String, pod: String },
}

/// Signals the agent container of `pod` on its node: crictl finds it, `kill` signals it.
pub(crate) const SIGNAL_AGENT: &str = r#"set -eu
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
        let pod = format!("{SUPER_NODE}-{ordinal}");
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
            Self::Written => put_super_lease(member, MEMBER_NS, ordinal, 0, 3600).await,
            Self::Agent { .. } => self.signal(env, "CONT").await,
        }
    }

    /// The Lease is no longer renewed (and, written, lapsed already).
    async fn stopped(&self, env: &E2eEnv, member: &Client, ordinal: u32) -> Result<()> {
        match self {
            Self::Written => put_super_lease(member, MEMBER_NS, ordinal, 120, 15).await,
            Self::Agent { .. } => self.signal(env, "STOP").await,
        }
    }
}

/// The ordinal of `a`'s super node that guarantees edges (the lowest, when several do):
/// super-0 whenever it does.
pub(crate) async fn guarding_super(hub: &Client, a: &Member) -> Result<u32> {
    assignments(hub)
        .await?
        .iter()
        .filter_map(|(_, _, sup)| {
            sup.strip_prefix(&format!("{NET}.{}.super-", a.name))?
                .parse::<u32>()
                .ok()
        })
        .min()
        .context("a super node of A guarantees edges")
}

pub(crate) async fn lease_lapse(s: &Suite) -> Result<()> {
    let (hub, a, nets) = (s.hub(), &s.a, s.nets());
    let ac = a.client();
    let ordinal = guarding_super(&hub, a).await?;
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
