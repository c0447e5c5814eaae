// SPDX-License-Identifier: Apache-2.0
/* Programs for `make bench-datapath` only (benches/datapath/ loads this
 * object itself); the library never embeds them and no agent loads them.
 * - hsn_bench_pass: bare XDP_PASS, the cost of running any XDP program;
 * - hsn_bench_fwd: hsn_edge without metering: the same parse and forwarding
 *   step, no tenant lookup, no tenant counter;
 * - hsn_bench_gen: a traffic generator for BPF_F_TEST_XDP_LIVE_FRAMES that
 *   sends every frame out of cfg_gen_ifindex (as xdp-trafficgen does);
 * - hsn_bench_sink: counts and drops what reaches the far end. */
#include "hsn_count.h"
#include "hsn_edge.h"
#include "hsn_parse.h"

/* Load-time setting: the device hsn_bench_gen sends out of. */
const volatile __u32 cfg_gen_ifindex = 0;

/* Ethernet + option-less IPv4 header: what hsn_bench_gen restores. */
#define HSN_BENCH_GEN_HDR (14 + 20)

/* The headers every generated frame starts with (key 0). Live frames are
 * recycled pages: whatever the path wrote into one (a MAC rewrite, a TTL
 * decrement) would otherwise be in the next frame sent from it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u8[HSN_BENCH_GEN_HDR]);
	__uint(max_entries, 1);
} gen_header SEC(".maps");

/* Frames that reached hsn_bench_sink, per CPU (key 0). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} sink_packets SEC(".maps");

SEC("xdp")
int hsn_bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* hsn_edge's steps minus hsn_tenant_lookup and hsn_counter_add; the
 * outcome stats stay, so the difference is exactly the metering. */
SEC("xdp.frags")
int hsn_bench_fwd(struct xdp_md *ctx)
{
	struct hsn_pkt pkt = {};

	if (!hsn_edge_parse(ctx, &pkt))
		return hsn_edge_pass();
	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_TENANT);
	return hsn_edge_forward(ctx, &pkt);
}

SEC("xdp")
int hsn_bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u8 *hdr = bpf_map_lookup_elem(&gen_header, &zero);

	if (!hdr || data + HSN_BENCH_GEN_HDR > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, hdr, HSN_BENCH_GEN_HDR);
	return bpf_redirect(cfg_gen_ifindex, 0);
}

SEC("xdp")
int hsn_bench_sink(struct xdp_md *ctx)
{
	hsn_stat_inc(&sink_packets, 0);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Apache-2.0";
