//! `hsn-agent`: parse flags, run.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = hsn_agent::cli::Args::parse();
    hsn_agent::telemetry::init(args.log_json);
    hsn_agent::run(args, hsn_agent::shutdown_signal()).await?;
    Ok(())
}
