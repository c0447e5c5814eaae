//! `hsn-agent`: parse flags, run.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = hsn_agent::cli::Args::parse();
    let _telemetry = hsn_runtime::telemetry::init(hsn_runtime::telemetry::Logging {
        service: "hsn-agent",
        json: args.log_json,
        default_filter: "info",
    });
    hsn_agent::run(args, hsn_runtime::signals::shutdown()).await?;
    Ok(())
}
