//! `hsn-operator`: parse flags, run.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = hsn_operator::cli::Args::parse();
    let _telemetry = hsn_operator::telemetry::init(args.log_json);
    hsn_operator::run(args, hsn_operator::shutdown_signal()).await
}
