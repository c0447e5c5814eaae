//! The hsn-operator image built without a daemon (`hack/images.sh`) is the one
//! `operator/Dockerfile` describes, under the name the chart's defaults give.

#[test]
fn local_image_matches_the_dockerfile() {
    if let Some(reason) = hsn_testkit::images::missing_tools() {
        panic!("{reason}");
    }
    let built = hsn_testkit::images::check_equivalent(
        "hsn-operator",
        std::path::Path::new(env!("CARGO_BIN_EXE_hsn-operator")),
    )
    .unwrap();
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/hsn");
    let values: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(format!("{chart}/values.yaml")).unwrap())
            .unwrap();
    let meta: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(format!("{chart}/Chart.yaml")).unwrap())
            .unwrap();
    let expected = format!(
        "{}:{}",
        values["image"]["repository"].as_str().unwrap(),
        meta["appVersion"].as_str().unwrap()
    );
    assert_eq!(built.reference, expected);
}
