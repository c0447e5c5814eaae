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
    let outcome = runtime.block_on(cli.run());
    // A blocking task still running (a store call the shutdown interrupted) must not keep
    // the process alive: whatever it would have written is not acknowledged yet.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hsn-ledger: {e}");
            ExitCode::FAILURE
        }
    }
}
