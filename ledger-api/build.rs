//! Generates the protobuf types and the tonic client/server of `proto/hsn/ledger/v1`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/hsn/ledger/v1/records.proto",
        "proto/hsn/ledger/v1/service.proto",
        "proto/hsn/ledger/v1/replication.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    if std::env::var_os("PROTOC").is_none() && which_protoc().is_none() {
        return Err("protoc not found: install protobuf-compiler (apt-get install protobuf-compiler) or set PROTOC".into());
    }
    tonic_prost_build::configure().compile_protos(&protos, &["proto"])?;
    Ok(())
}

fn which_protoc() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("protoc"))
        .find(|p| p.is_file())
}
