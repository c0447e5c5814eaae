//! `hsn-ledger`: the ledger service of an HSN super node.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hsn_ledger::server::Cli::parse();
    let _telemetry = hsn_runtime::telemetry::init(hsn_runtime::telemetry::Logging {
        service: "hsn-ledger",
        json: false,
        default_filter: "info",
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hsn-ledger: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hsn-ledger: {e}");
            ExitCode::FAILURE
        }
    }
}
