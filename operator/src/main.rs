//! `hsn-operator`: parse flags, run.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads exist: they share one arena from their first allocation.
    let compact = hsn_runtime::heap::compact();
    let args = hsn_operator::cli::Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let _telemetry = hsn_runtime::telemetry::init(hsn_runtime::telemetry::Logging {
                service: "hsn-operator",
                json: args.log_json,
                // kube-client logs every failed request at ERROR; an unreachable member
                // would flood the log once per probe. Its state is reported as conditions
                // and Events instead.
                default_filter: "info,kube_client::client::builder=off",
            });
            if !compact {
                tracing::info!("heap settings not applied (not glibc)");
            }
            hsn_operator::run(args, hsn_runtime::signals::shutdown()).await
        })
}
