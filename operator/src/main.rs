//! `hsn-operator`: parse flags, run.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = hsn_operator::cli::Args::parse();
    let _telemetry = hsn_runtime::telemetry::init(hsn_runtime::telemetry::Logging {
        service: "hsn-operator",
        json: args.log_json,
        // kube-client logs every failed request at ERROR; an unreachable member would flood
        // the log once per probe. Its state is reported as conditions and Events instead.
        default_filter: "info,kube_client::client::builder=off",
    });
    hsn_operator::run(args, hsn_runtime::signals::shutdown()).await
}
