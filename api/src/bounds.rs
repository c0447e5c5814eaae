//! Bounds on every string, list and map of every CRD, spec and status, including the
//! Kubernetes types embedded in them: applied once to each generated CRD ([`bound`]).
//!
//! Why: an unbounded field lets one object grow until its status can no longer be written
//! (etcd refuses objects over ~1.5 MiB) and makes the cost of CEL rules over it unknown to
//! the API server. A bound a field states itself (`#[schemars(length(max = ..))]`, an enum,
//! an embedded type's [`embedded`] bounds) is kept; the defaults here fill the gaps:
//!
//! | node | default |
//! |---|---|
//! | string with `enum` | its longest value |
//! | string with `format: date-time` | [`MAX_TIMESTAMP`] |
//! | int-or-string (a `Quantity`) | [`MAX_QUANTITY`] |
//! | other string | [`MAX_STRING`] |
//! | list | [`MAX_ITEMS`] |
//! | map (`additionalProperties`) | [`MAX_PROPERTIES`], and keys of at most [`MAX_KEY`] characters (CEL) |

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    ValidationRule,
};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

/// Longest string a field without a tighter bound takes: room for any Kubernetes name,
/// label key or value, and short free text.
pub const MAX_STRING: i64 = 1024;
/// Longest RFC 3339 timestamp (`2026-01-01T00:00:00.123456789+00:00` is 35).
pub const MAX_TIMESTAMP: i64 = 64;
/// Longest quantity, e.g. `1536Mi` or `250m`.
pub const MAX_QUANTITY: i64 = 64;
/// Most items of a list without a tighter bound.
pub const MAX_ITEMS: i64 = 64;
/// Most entries of a map without a tighter bound.
pub const MAX_PROPERTIES: i64 = 64;
/// Longest map key: a qualified name with a DNS-subdomain prefix (253 + `/` + 63).
pub const MAX_KEY: i64 = 317;

/// Bounds every string, list and map of `crd`'s schemas that does not state its own.
pub fn bound(crd: &mut CustomResourceDefinition) {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            bound_node(schema);
        }
    }
}

fn bound_node(node: &mut JSONSchemaProps) {
    let int_or_string = node.x_kubernetes_int_or_string == Some(true);
    match node.type_.as_deref() {
        Some("string") => {
            let default = match (&node.enum_, node.format.as_deref()) {
                (Some(values), _) => longest(values),
                (None, Some("date-time")) => MAX_TIMESTAMP,
                _ => MAX_STRING,
            };
            node.max_length.get_or_insert(default);
        }
        Some("array") => {
            node.max_items.get_or_insert(MAX_ITEMS);
        }
        Some("object") if is_map(node) => {
            node.max_properties.get_or_insert(MAX_PROPERTIES);
            node.x_kubernetes_validations
                .get_or_insert_with(Vec::new)
                .push(key_rule());
        }
        _ if int_or_string => {
            node.max_length.get_or_insert(MAX_QUANTITY);
        }
        _ => {}
    }
    for child in children(node) {
        bound_node(child);
    }
}

/// The CEL rule bounding a map's keys, which no OpenAPI keyword can.
fn key_rule() -> ValidationRule {
    ValidationRule {
        rule: format!("self.all(k, size(k) <= {MAX_KEY})"),
        message: Some(format!("keys must be at most {MAX_KEY} characters")),
        ..Default::default()
    }
}

fn longest(
    values: &[k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON],
) -> i64 {
    values
        .iter()
        .filter_map(|v| v.0.as_str())
        .map(|s| i64::try_from(s.chars().count()).unwrap_or(i64::MAX))
        .max()
        .unwrap_or(MAX_STRING)
}

fn is_map(node: &JSONSchemaProps) -> bool {
    matches!(
        node.additional_properties,
        Some(JSONSchemaPropsOrBool::Schema(_))
    )
}

/// Every schema directly inside `node`.
fn children(node: &mut JSONSchemaProps) -> Vec<&mut JSONSchemaProps> {
    let mut out: Vec<&mut JSONSchemaProps> = Vec::new();
    if let Some(props) = node.properties.as_mut() {
        out.extend(props.values_mut());
    }
    match node.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(s)) => out.push(s),
        Some(JSONSchemaPropsOrArray::Schemas(v)) => out.extend(v.iter_mut()),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = node.additional_properties.as_mut() {
        out.push(s);
    }
    for junctor in [&mut node.all_of, &mut node.any_of, &mut node.one_of] {
        if let Some(v) = junctor.as_mut() {
            out.extend(v.iter_mut());
        }
    }
    if let Some(not) = node.not.as_mut() {
        out.push(not);
    }
    out
}

/// Paths (e.g. `.spec.edgePools[*].tolerations`) of every string, list or map in `crd`
/// without a bound, and of every node that keeps unknown fields (which nothing bounds).
pub fn unbounded(crd: &CustomResourceDefinition) -> Vec<String> {
    let mut out = Vec::new();
    for version in &crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        {
            walk(schema, &format!("{}:", version.name), &mut out);
        }
    }
    out
}

fn walk(node: &JSONSchemaProps, path: &str, out: &mut Vec<String>) {
    let string =
        node.type_.as_deref() == Some("string") || node.x_kubernetes_int_or_string == Some(true);
    let missing = if string {
        node.max_length.is_none().then_some("maxLength")
    } else if node.type_.as_deref() == Some("array") {
        node.max_items.is_none().then_some("maxItems")
    } else if is_map(node) {
        let keys = node
            .x_kubernetes_validations
            .iter()
            .flatten()
            .any(|r| r.rule == key_rule().rule);
        if node.max_properties.is_none() {
            Some("maxProperties")
        } else if !keys {
            Some("a rule on key length")
        } else {
            None
        }
    } else if node.x_kubernetes_preserve_unknown_fields == Some(true) {
        Some("known fields (x-kubernetes-preserve-unknown-fields)")
    } else {
        None
    };
    if let Some(what) = missing {
        out.push(format!("{path} has no {what}"));
    }
    if let Some(props) = &node.properties {
        for (name, child) in props {
            walk(child, &format!("{path}.{name}"), out);
        }
    }
    match &node.items {
        Some(JSONSchemaPropsOrArray::Schema(s)) => walk(s, &format!("{path}[*]"), out),
        Some(JSONSchemaPropsOrArray::Schemas(v)) => {
            for (i, s) in v.iter().enumerate() {
                walk(s, &format!("{path}[{i}]"), out);
            }
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = &node.additional_properties {
        walk(s, &format!("{path}{{*}}"), out);
    }
}

/// The schema of an embedded type `T` (e.g. `Vec<Toleration>`) with explicit bounds: each
/// edit is (JSON pointer inside the schema, keyword, value), e.g.
/// `("/items/properties/key", "maxLength", 317)`. For fields of Kubernetes types whose own
/// schema states no bounds; use it through `#[schemars(schema_with = ..)]`.
pub(crate) fn embedded<T: JsonSchema>(
    generator: &mut SchemaGenerator,
    edits: &[(&str, &str, Value)],
) -> Schema {
    let mut schema = generator.subschema_for::<T>();
    for (pointer, keyword, value) in edits {
        let target = schema
            .pointer_mut(pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{} has no schema at {pointer}", T::schema_name()));
        target.insert((*keyword).to_string(), value.clone());
    }
    schema
}

#[cfg(test)]
mod tests;
