//! The routes ConfigMap: the assignment table of one cluster's edges, every live super
//! node, and the tenants.

use hsn_api::routes::{EdgeRoute, ROUTES_KEY, ROUTES_VERSION, RoutesTable, SuperRoute};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

use super::{Context, ROUTES_CONFIGMAP};
use crate::plan::Plan;

/// The routes table for the edges of `cluster`.
pub fn routes_table(
    network: &hsn_api::HsnNetwork,
    name: &str,
    cluster: &str,
    plan: &Plan,
) -> RoutesTable {
    RoutesTable {
        version: ROUTES_VERSION,
        network: name.to_string(),
        epoch_seconds: u32::try_from(network.spec.metering.epoch_seconds).unwrap_or(60),
        supers: plan
            .live_supers
            .iter()
            .map(|s| SuperRoute {
                id: s.to_string(),
                address: None,
            })
            .collect(),
        edges: plan
            .assignment
            .iter()
            .filter(|(e, _)| e.cluster == cluster)
            .map(|(e, s)| EdgeRoute {
                node: e.node.clone(),
                super_id: s.to_string(),
            })
            .collect(),
        tenants: network.spec.metering.tenants.clone(),
    }
}

/// The ConfigMap holding [`routes_table`] as JSON.
pub(super) fn config_map(ctx: &Context<'_>, cluster: &str, plan: &Plan) -> ConfigMap {
    let table = routes_table(ctx.network, &ctx.name, cluster, plan);
    ConfigMap {
        metadata: ctx.meta(ROUTES_CONFIGMAP),
        data: Some(BTreeMap::from([(
            ROUTES_KEY.to_string(),
            serde_json::to_string_pretty(&table).expect("routes serialize to JSON"),
        )])),
        ..Default::default()
    }
}
