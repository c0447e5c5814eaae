//! Where the e2e suite's clusters and operator come from: started here, or named by the
//! `HSN_E2E_*` variables (kind/README.md), behind one interface; and the hub.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::install_crds;
use crate::ControlPlane;

/// `HSN_E2E_HUB_KUBECONFIG`: the hub's kubeconfig; unset, the suite starts its own hub.
pub const HUB_VAR: &str = "HSN_E2E_HUB_KUBECONFIG";
/// `HSN_E2E_MEMBERS`: `name=kubeconfig,...`, member clusters already registered in that hub as
/// MecClusters `name`; unset, the suite starts kwok clusters and registers them.
pub const MEMBERS_VAR: &str = "HSN_E2E_MEMBERS";
/// `HSN_E2E_OPERATOR`: `local` (default) runs `hsn-operator` here; `external` uses the one
/// running in the hub's namespace `hsn-system` (the Helm chart's).
pub const OPERATOR_VAR: &str = "HSN_E2E_OPERATOR";
/// `HSN_E2E_NODE_EXEC`: a command that runs a command on a member node when given the node's
/// name first, e.g. `docker exec` on kind; unset, steps that need it are skipped.
pub const NODE_EXEC_VAR: &str = "HSN_E2E_NODE_EXEC";

/// Where the e2e suite's clusters and operator come from.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct E2eEnv {
    /// The given hub, if any.
    pub hub: Option<PathBuf>,
    /// The given members (MecCluster name, kubeconfig), in order.
    pub members: Vec<(String, PathBuf)>,
    /// The operator runs in the hub already.
    pub external_operator: bool,
    /// Command prefix that runs a command on a node.
    pub node_exec: Vec<String>,
}

impl E2eEnv {
    /// Reads the `HSN_E2E_*` variables.
    pub fn from_env() -> Result<Self> {
        Self::parse(|name| std::env::var(name).ok())
    }

    /// The environment `var` describes; an empty value counts as unset.
    pub fn parse(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let hub = var(HUB_VAR).map(PathBuf::from);
        let mut members = Vec::new();
        for entry in var(MEMBERS_VAR)
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let (name, path) = entry
                .split_once('=')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .with_context(|| format!("{MEMBERS_VAR}: {entry:?} is not name=kubeconfig"))?;
            members.push((name.to_string(), PathBuf::from(path)));
        }
        let external_operator = match var(OPERATOR_VAR).as_deref() {
            None | Some("local") => false,
            Some("external") => true,
            Some(other) => bail!("{OPERATOR_VAR}={other}: expected local or external"),
        };
        let node_exec = var(NODE_EXEC_VAR)
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        ensure!(
            hub.is_some() != members.is_empty(),
            "set both {HUB_VAR} and {MEMBERS_VAR} (clusters that exist), or neither (local ones)"
        );
        ensure!(
            hub.is_some() || !external_operator,
            "{OPERATOR_VAR}=external needs {HUB_VAR}: the operator runs in that hub"
        );
        Ok(Self {
            hub,
            members,
            external_operator,
            node_exec,
        })
    }

    /// One line saying what the suite runs against.
    pub fn describe(&self) -> String {
        let Some(hub) = &self.hub else {
            return "local hub and kwok members, operator as a process".into();
        };
        let members: Vec<&str> = self.members.iter().map(|(n, _)| n.as_str()).collect();
        let operator = if self.external_operator {
            "the operator installed in the hub"
        } else {
            "the operator as a process"
        };
        format!("hub {}, members {members:?}, {operator}", hub.display())
    }
}

/// A client for the current context of the kubeconfig at `path`.
pub async fn client_for(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// The hub: a control plane started here (with the CRDs), or the one [`HUB_VAR`] names.
pub struct Hub {
    client: Client,
    kubeconfig: PathBuf,
    local: Option<ControlPlane>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("kubeconfig", &self.kubeconfig)
            .field("local", &self.local)
            .finish()
    }
}

impl Hub {
    /// Starts a hub and installs the CRDs, or connects to the given one.
    pub async fn start_or_connect(env: &E2eEnv) -> Result<Self> {
        if let Some(path) = &env.hub {
            return Ok(Self {
                client: client_for(path).await?,
                kubeconfig: path.clone(),
                local: None,
            });
        }
        let cp = ControlPlane::start().await?;
        install_crds(&cp.client()).await?;
        Ok(Self {
            client: cp.client(),
            kubeconfig: cp.kubeconfig().to_path_buf(),
            local: Some(cp),
        })
    }

    /// A client for the hub.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The hub's kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Whether this suite started the hub (and throws it away at the end).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }
}
