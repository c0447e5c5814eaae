//! `hsnctl`: one place to look at an HSN network: its ledger, networks, agents and routes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hsnctl::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    ExitCode::from(hsnctl::execute(cli, &mut stdout, &mut std::io::stderr()))
}
