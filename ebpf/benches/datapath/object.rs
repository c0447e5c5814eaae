//! The bench-only programs of `src/bench.bpf.c`, loaded with aya directly (the library
//! never embeds them).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aya::maps::xdp::DevMapHash;
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::Xdp;
use aya::programs::xdp::{XdpLinkId, XdpMode};
use aya::{Ebpf, EbpfLoader, TestRun, TestRunAttrs, TestRunOptions};
use hsn_core::MacAddr;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench.bpf.o"));

/// Bare `XDP_PASS`.
pub const PASS: &str = "hsn_bench_pass";
/// `hsn_edge` without the tenant lookup and counter: parse, then forward.
pub const FWD: &str = "hsn_bench_fwd";
/// Live-frame generator: redirects every frame out of the load-time device.
pub const GEN: &str = "hsn_bench_gen";
/// Counts and drops.
pub const SINK: &str = "hsn_bench_sink";

/// `HSN_BENCH_GEN_HDR`: the bytes of each frame the generator rewrites before sending it.
const GEN_HEADER: usize = 14 + 20;

/// Frames per batch of a live-frame run (the kernel's default, NAPI_POLL_WEIGHT).
const LIVE_BATCH: u32 = 64;

/// How long a live-frame run took.
#[derive(Clone, Copy, Debug)]
pub struct LiveRun {
    /// Wall time of the syscall.
    pub wall: Duration,
    /// The kernel's own timing of the run: it includes the softirq work the frames cause on
    /// this CPU (processed when each batch re-enables bottom halves) and excludes the time
    /// the thread yielded the CPU to other tasks.
    pub kernel: Duration,
}

/// One loaded instance of the bench object; dropping it detaches its programs.
pub struct BenchObject {
    ebpf: Ebpf,
    links: Vec<(&'static str, String, XdpLinkId)>,
}

impl BenchObject {
    /// Loads every program; `gen_ifindex` is the device [`GEN`] sends out of.
    pub fn load(gen_ifindex: u32) -> anyhow::Result<Self> {
        if OBJECT.is_empty() {
            anyhow::bail!("bench.bpf.o is an empty stub (HSN_EBPF_SKIP_BPF_BUILD=1)");
        }
        let mut ebpf = EbpfLoader::new()
            .override_global("cfg_gen_ifindex", &gen_ifindex, true)
            .load(OBJECT)
            .context("loading bench.bpf.o")?;
        for name in [PASS, FWD, GEN, SINK] {
            let prog: &mut Xdp = ebpf
                .program_mut(name)
                .with_context(|| format!("{name} missing"))?
                .try_into()?;
            prog.load().with_context(|| format!("loading {name}"))?;
        }
        Ok(Self {
            ebpf,
            links: Vec::new(),
        })
    }

    fn xdp(&self, name: &str) -> anyhow::Result<&Xdp> {
        let prog = self
            .ebpf
            .program(name)
            .with_context(|| format!("{name} missing"))?;
        Ok(prog.try_into()?)
    }

    fn xdp_mut(&mut self, name: &str) -> anyhow::Result<&mut Xdp> {
        let prog = self
            .ebpf
            .program_mut(name)
            .with_context(|| format!("{name} missing"))?;
        Ok(prog.try_into()?)
    }

    /// The kernel's average time per run of `name` over `repeat` runs of `frame`.
    pub fn time(&self, name: &str, frame: &[u8], repeat: u32) -> anyhow::Result<Duration> {
        let result = self.xdp(name)?.test_run(TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        })?;
        Ok(result.duration)
    }

    /// The raw XDP verdict of one run of `name` on `frame`.
    pub fn action(&self, name: &str, frame: &[u8]) -> anyhow::Result<u32> {
        let mut out = vec![0u8; frame.len() + 256];
        let result = self.xdp(name)?.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        })?;
        Ok(result.return_value)
    }

    /// Sends `count` copies of `frame` through [`GEN`] as live frames (they really leave
    /// through its device) on the calling thread, whose namespace is the one used.
    pub fn generate(&mut self, frame: &[u8], count: u32) -> anyhow::Result<LiveRun> {
        let header: [u8; GEN_HEADER] = frame
            .get(..GEN_HEADER)
            .context("frame shorter than Ethernet + IPv4")?
            .try_into()?;
        Array::<&mut MapData, [u8; GEN_HEADER]>::try_from(
            self.ebpf.map_mut("gen_header").context("gen_header")?,
        )?
        .set(0, header, 0)?;
        let gen_prog = self.xdp(GEN)?;
        let start = Instant::now();
        let result = gen_prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat: count,
                attrs: TestRunAttrs::new().xdp_live_frames(LIVE_BATCH),
                ..TestRunOptions::default()
            })
            .context("live-frame run of the generator")?;
        Ok(LiveRun {
            wall: start.elapsed(),
            kernel: result.duration * count,
        })
    }

    /// Frames [`SINK`] has counted, over all CPUs.
    pub fn sink_packets(&self) -> anyhow::Result<u64> {
        let map = self.ebpf.map("sink_packets").context("sink_packets")?;
        let counts = PerCpuArray::<&MapData, u64>::try_from(map)?;
        Ok(counts.get(&0, 0)?.iter().sum())
    }

    /// The next hop of [`FWD`], written as `EdgeDatapath::set_next_hop` writes the edge's:
    /// the device into `tx_ports`, then `struct hsn_next_hop` into `next_hop` (both copies,
    /// so whichever `next_hop_gen` names holds it).
    pub fn set_next_hop(&mut self, ifindex: u32, dst: MacAddr, src: MacAddr) -> anyhow::Result<()> {
        let mut ports = DevMapHash::<&mut MapData>::try_from(
            self.ebpf.map_mut("tx_ports").context("tx_ports")?,
        )?;
        ports.insert(ifindex, ifindex, None, 0)?;
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&ifindex.to_ne_bytes());
        raw[4..10].copy_from_slice(&dst.0);
        raw[10..].copy_from_slice(&src.0);
        let mut hop = Array::<&mut MapData, [u8; 16]>::try_from(
            self.ebpf.map_mut("next_hop").context("next_hop")?,
        )?;
        for copy in 0..2 {
            hop.set(copy, raw, 0)?;
        }
        Ok(())
    }

    /// Attaches `name` in native (driver) mode to `ifname` in the calling thread's namespace.
    pub fn attach(&mut self, name: &'static str, ifname: &str) -> anyhow::Result<()> {
        let link = self
            .xdp_mut(name)?
            .attach(ifname, XdpMode::Driver)
            .with_context(|| format!("attaching {name} to {ifname} (native)"))?;
        self.links.push((name, ifname.to_owned(), link));
        Ok(())
    }

    /// Detaches `name` from `ifname`.
    pub fn detach(&mut self, name: &'static str, ifname: &str) -> anyhow::Result<()> {
        let idx = self
            .links
            .iter()
            .position(|(prog, dev, _)| *prog == name && dev == ifname)
            .with_context(|| format!("{name} is not attached to {ifname}"))?;
        let (_, _, link) = self.links.remove(idx);
        self.xdp_mut(name)?.detach(link)?;
        Ok(())
    }
}
