//! The hsn-agent image built without a daemon (`hack/images.sh`) is the one
//! `node-agent/Dockerfile` describes, under the name the operator puts in its pod specs.

#[test]
fn local_image_matches_the_dockerfile() {
    if let Some(reason) = hsn_testkit::images::missing_tools() {
        panic!("{reason}");
    }
    let built = hsn_testkit::images::check_equivalent(
        "hsn-agent",
        std::path::Path::new(env!("CARGO_BIN_EXE_hsn-agent")),
    )
    .unwrap();
    assert_eq!(built.reference, hsn_api::network::DEFAULT_AGENT_IMAGE);
    // The agent runs `ip -j ...`: iproute2's ip, found on the image's PATH.
    assert!(
        built.files.contains_key("usr/bin/ip"),
        "{:?}",
        built.files.keys()
    );
}
