//! `hsnctl`: one place to look at an HSN network: its ledger, and (feature `kube`) its
//! networks, agents and routes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hsn_ledger::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hsnctl: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(hsn_ledger::cli::run(cli, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hsnctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
