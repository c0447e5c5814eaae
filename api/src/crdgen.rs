//! Renders the CRDs shipped in `crds/*.yaml` from the Rust types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{HsnNetwork, HsnNode, MecCluster};

/// Where the CRD files are written, relative to this crate: the crds/ folder for
/// `kubectl apply -f crds/`, and the Helm chart's crds/.
pub const OUTPUT_DIRS: &[&str] = &["../crds", "../charts/hsn/crds"];

const HEADER: &str =
    "# Generated from the Rust types in api/src by `make crds` (hsn-crdgen). Do not edit.\n";

/// Every CRD of the API, in a stable order, with every string, list and map bounded
/// ([`bounds`](crate::bounds)).
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![MecCluster::crd(), HsnNetwork::crd(), HsnNode::crd()];
    crds.iter_mut().for_each(crate::bounds::bound);
    crds
}

/// The file name a CRD is written to, e.g. `hsn.io_hsnnetworks.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// The YAML document of one CRD, with the generated-file header.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, serde_yaml_ng::Error> {
    Ok(format!("{HEADER}{}", serde_yaml_ng::to_string(crd)?))
}

/// (file name, contents) of every CRD file.
pub fn files() -> Result<Vec<(String, String)>, serde_yaml_ng::Error> {
    crds()
        .iter()
        .map(|crd| Ok((file_name(crd), render(crd)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The committed YAML (in crds/ and in the Helm chart) must be what the types
    /// generate; `make crds` rewrites both.
    #[test]
    fn committed_crds_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in OUTPUT_DIRS {
            for (name, want) in files().unwrap() {
                let have = std::fs::read_to_string(root.join(dir).join(&name)).unwrap_or_default();
                assert!(
                    have == want,
                    "{dir}/{name} is stale or missing: run `make crds` and commit the result"
                );
            }
        }
    }

    #[test]
    fn every_crd_has_status_short_name_and_columns() {
        for crd in crds() {
            let version = &crd.spec.versions[0];
            assert!(version.subresources.as_ref().unwrap().status.is_some());
            assert_eq!(crd.spec.names.short_names.as_ref().unwrap().len(), 1);
            assert!(version.additional_printer_columns.as_ref().unwrap().len() >= 4);
        }
    }
}
