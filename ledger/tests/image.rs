//! The hsn-ledger image built without a daemon (`hack/images.sh`) is the one
//! `ledger/Dockerfile` describes: entrypoint, user, files and modes
//! (`hsn_testkit::images::check_equivalent` says what is not compared).

#[test]
fn local_image_matches_the_dockerfile() {
    if let Some(reason) = hsn_testkit::images::missing_tools() {
        panic!("{reason}");
    }
    let built = hsn_testkit::images::check_equivalent(
        "hsn-ledger",
        std::path::Path::new(env!("CARGO_BIN_EXE_hsn-ledger")),
    )
    .unwrap();
    assert_eq!(built.reference, "ghcr.io/hsn-io/hsn-ledger:0.1.0");
}
