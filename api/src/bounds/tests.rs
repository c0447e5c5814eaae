use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::*;

/// The CRDs as committed (what `kubectl apply -f crds/` installs), parsed back from YAML.
fn committed() -> Vec<CustomResourceDefinition> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push(serde_yaml_ng::from_str(&text).unwrap());
        }
    }
    assert_eq!(out.len(), 3, "three CRDs in {}", dir.display());
    out
}

#[test]
fn every_string_list_and_map_of_every_committed_crd_is_bounded() {
    let mut gaps = Vec::new();
    for crd in committed() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        gaps.extend(unbounded(&crd).into_iter().map(|g| format!("{name} {g}")));
    }
    assert!(gaps.is_empty(), "unbounded:\n{}", gaps.join("\n"));
}

#[test]
fn the_walk_finds_what_is_unbounded() {
    let mut crd = crate::crdgen::crds().remove(1);
    let spec = crd.spec.versions[0]
        .schema
        .as_mut()
        .unwrap()
        .open_api_v3_schema
        .as_mut()
        .unwrap()
        .properties
        .as_mut()
        .unwrap()
        .get_mut("spec")
        .unwrap();
    let pools = spec
        .properties
        .as_mut()
        .unwrap()
        .get_mut("edgePools")
        .unwrap();
    pools.max_items = None;
    let gaps = unbounded(&crd);
    assert_eq!(gaps, ["v1alpha1:.spec.edgePools has no maxItems"]);
}

/// The schema node at `path` of the `kind`'s CRD: property names, `[]` for items, `{}` for
/// map values.
fn at(kind: &str, path: &str) -> JSONSchemaProps {
    let crd = crate::crdgen::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    let mut node = crd.spec.versions[0]
        .schema
        .clone()
        .unwrap()
        .open_api_v3_schema
        .unwrap();
    for part in path.split('.') {
        node = match part {
            "[]" => match node.items.unwrap() {
                JSONSchemaPropsOrArray::Schema(s) => *s,
                JSONSchemaPropsOrArray::Schemas(_) => unreachable!(),
            },
            "{}" => match node.additional_properties.unwrap() {
                JSONSchemaPropsOrBool::Schema(s) => *s,
                JSONSchemaPropsOrBool::Bool(_) => unreachable!(),
            },
            name => node.properties.unwrap().remove(name).unwrap(),
        };
    }
    node
}

#[test]
fn explicit_bounds_are_kept_and_gaps_get_the_defaults() {
    let net = |path| at("HsnNetwork", path);
    // Stated by the type, looser or tighter than the defaults.
    assert_eq!(net("spec.edgePools").max_items, Some(16));
    assert_eq!(net("spec.edgePools.[].name").max_length, Some(40));
    assert_eq!(
        net("spec.edgePools.[].tolerations.[].key").max_length,
        Some(317)
    );
    assert_eq!(
        net("spec.superNodes.resources.limits").max_properties,
        Some(16)
    );
    assert_eq!(net("status.conditions.[].message").max_length, Some(4096));
    // An enum: its longest value.
    assert_eq!(net("spec.routing.datapath").max_length, Some(3));
    // Defaults.
    assert_eq!(
        net("status.conditions.[].lastTransitionTime").max_length,
        Some(MAX_TIMESTAMP)
    );
    assert_eq!(net("status.ledger.headHash").max_length, Some(128));
    let allocatable = at("MecCluster", "status.allocatable");
    assert_eq!(allocatable.max_properties, Some(MAX_PROPERTIES));
    assert_eq!(
        allocatable.x_kubernetes_validations.unwrap()[0].rule,
        "self.all(k, size(k) <= 317)"
    );
    assert_eq!(
        at("MecCluster", "status.allocatable.{}").max_length,
        Some(MAX_QUANTITY)
    );
    assert_eq!(
        at("MecCluster", "status.kubernetesVersion").max_length,
        Some(MAX_STRING)
    );
}

/// Largest compact JSON text (in characters) a value of `node` can have within its bounds.
fn worst_case(node: &JSONSchemaProps) -> u64 {
    let len = |n: Option<i64>| u64::try_from(n.unwrap_or(0)).unwrap_or(0);
    let string =
        node.type_.as_deref() == Some("string") || node.x_kubernetes_int_or_string == Some(true);
    if string {
        return len(node.max_length) + 2;
    }
    match node.type_.as_deref() {
        Some("array") => {
            let item = match node.items.as_ref() {
                Some(JSONSchemaPropsOrArray::Schema(s)) => worst_case(s),
                _ => 0,
            };
            2 + len(node.max_items) * (item + 1)
        }
        Some("object") => match &node.additional_properties {
            Some(JSONSchemaPropsOrBool::Schema(v)) => {
                2 + len(node.max_properties) * (len(Some(MAX_KEY)) + 4 + worst_case(v))
            }
            _ => {
                2 + node
                    .properties
                    .iter()
                    .flatten()
                    .map(|(name, child)| name.len() as u64 + 4 + worst_case(child))
                    .sum::<u64>()
            }
        },
        Some("boolean") => 5,
        _ => 24,
    }
}

/// Paths of the nodes whose worst case is at least `min`, to say what to bound tighter.
fn largest(node: &JSONSchemaProps, path: &str, min: u64, out: &mut Vec<String>) {
    let size = worst_case(node);
    if size < min {
        return;
    }
    out.push(format!("  {size:>8} {path}"));
    for (name, child) in node.properties.iter().flatten() {
        largest(child, &format!("{path}.{name}"), min, out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = &node.items {
        largest(item, &format!("{path}[*]"), min, out);
    }
}

#[test]
fn the_largest_spec_and_status_stay_far_below_what_etcd_stores() {
    // etcd refuses an object over 1.5 MiB; besides spec and status, an object carries its
    // metadata (annotations alone up to 256 KiB) and managedFields. So the largest spec the
    // bounds allow, plus the largest status, plus that, stays below it; and an object of
    // about 1 MB is refused whatever its shape. Characters of compact JSON: bytes, for ASCII.
    const SPEC_BUDGET: u64 = 768 * 1024;
    const STATUS_BUDGET: u64 = 256 * 1024;
    let mut report = Vec::new();
    let mut over = Vec::new();
    for crd in crate::crdgen::crds() {
        let root = crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .clone()
            .unwrap();
        let props = root.properties.unwrap();
        for (part, budget) in [("spec", SPEC_BUDGET), ("status", STATUS_BUDGET)] {
            let size = worst_case(&props[part]);
            report.push(format!("{} {part}: {size}", crd.spec.names.kind));
            if size > budget {
                let mut big = Vec::new();
                largest(&props[part], part, budget / 8, &mut big);
                over.push(format!(
                    "{} {part}: {size} > {budget}; the largest parts:\n{}",
                    crd.spec.names.kind,
                    big.join("\n")
                ));
            }
        }
    }
    eprintln!("worst-case JSON characters:\n{}", report.join("\n"));
    assert!(over.is_empty(), "over budget:\n{}", over.join("\n"));
}
