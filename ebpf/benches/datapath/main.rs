//! `make bench-datapath`: the edge XDP program against baselines measured side by side in
//! one run on this machine. Prints figures, ratios and targets (MET / NOT MET); asserts
//! nothing about time. Needs root (BPF, network namespaces).
//!
//! 1. ns per packet through BPF_PROG_TEST_RUN, kernel-timed: edge hit (tunnelled: IP in IP,
//!    redirected) and miss vs a bare XDP_PASS program, 64 B and 1500 B frames; every program
//!    runs behind `hsn_bench_timed`, which restores the frame before each repetition.
//!    1b. From the same rounds: the tunnel's cost, the edge's encapsulating redirect
//!    (`hsn_bench_fwd`) vs the plain MAC-rewrite redirect it replaced (`hsn_bench_l2`).
//! 2. The same with 10 vs 100,000 tenant prefixes.
//! 3. Packets per second through an edge namespace (ue -> edge -> super, veth pairs in
//!    namespaces this bench creates and deletes): the edge's IP-in-IP redirect vs Linux
//!    forwarding, metering on vs off; the encapsulating vs the plain XDP redirect; and the
//!    edge's tunnel vs the kernel's (an ipip device where the kernel has one, and a route
//!    whose lwt bpf encap pushes the same header).
//!
//! Run: `cargo bench -p hsn-ebpf --bench datapath` (add `-- --rounds N --repeat N --seconds S`,
//! or `-- --quick` for a smoke run). Ctrl-C stops after the current measurement and cleans up.

mod forwarding;
mod forwarding_report;
mod frames;
mod kernel_tunnel;
mod object;
mod program_cost;
mod report;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use nix::sys::signal::{SigSet, Signal};

static STOP: AtomicBool = AtomicBool::new(false);

/// True once SIGINT, SIGTERM or SIGHUP arrived; measurements stop at the next check.
pub fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Signals are blocked in every thread (threads inherit the mask) and taken by one waiter,
/// so a Ctrl-C never kills the process between creating and deleting its namespaces.
fn catch_signals() -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block().context("blocking signals")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(signal) = set.wait() {
                eprintln!("{signal}: stopping after the current measurement, then cleaning up");
                STOP.store(true, Ordering::Relaxed);
            }
        })
        .context("signal thread")?;
    Ok(())
}

struct Args {
    cost: program_cost::Settings,
    forwarding: forwarding::Settings,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        // Many short interleaved rounds: this machine's speed drifts (a VM on a shared host),
        // and comparisons are made within each round.
        cost: program_cost::Settings {
            rounds: 25,
            repeat: 200_000,
        },
        forwarding: forwarding::Settings {
            rounds: 15,
            seconds: 0.25,
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                let n: usize = value("--rounds")?.parse()?;
                anyhow::ensure!(n > 0, "--rounds must be at least 1");
                (args.cost.rounds, args.forwarding.rounds) = (n, n);
            }
            "--repeat" => args.cost.repeat = value("--repeat")?.parse()?,
            "--seconds" => args.forwarding.seconds = value("--seconds")?.parse()?,
            "--quick" => {
                (args.cost.rounds, args.forwarding.rounds) = (1, 1);
                args.cost.repeat = 100_000;
                args.forwarding.seconds = 0.2;
            }
            // cargo bench passes --bench; nothing else is expected.
            "--bench" => {}
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    anyhow::ensure!(
        (0.05..=30.0).contains(&args.forwarding.seconds),
        "--seconds must be between 0.05 and 30"
    );
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("make bench-datapath needs root: BPF programs and network namespaces");
    }
    catch_signals()?;
    println!("hsn-ebpf datapath benchmark; {}", hsn_testkit::machine());
    println!();
    let mut verdicts = program_cost::run(args.cost)?;
    println!();
    verdicts.extend(forwarding::run(args.forwarding)?);
    report::print_summary(&verdicts);
    println!("after the run: {}", hsn_testkit::machine());
    Ok(())
}
