// SPDX-License-Identifier: Apache-2.0
/* Programs for `make bench-datapath` (benches/datapath/ loads this object
 * itself); the library never embeds them and no agent loads them. One test
 * borrows hsn_bench_pass: tests/routed_e2e.rs attaches it to the router
 * namespace's links (veth needs an XDP program at the peer to receive
 * XDP_REDIRECTed frames).
 * - hsn_bench_pass: bare XDP_PASS, the cost of running any XDP program;
 * - hsn_bench_fwd: hsn_edge without metering: the same parse and forwarding
 *   step (IP in IP to the super node), no tenant lookup, no tenant counter;
 * - hsn_bench_l2: the same parse and the edge's forwarding before the
 *   tunnel: pop VLAN tags, rewrite the Ethernet header, redirect;
 * - hsn_bench_timed: restores the frame, then tail-calls the program being
 *   timed (BPF_PROG_TEST_RUN with a repeat count reruns on one buffer);
 * - hsn_bench_gen: a traffic generator for BPF_F_TEST_XDP_LIVE_FRAMES that
 *   sends every frame out of cfg_gen_ifindex (as xdp-trafficgen does);
 * - hsn_bench_sink: counts and drops what reaches the far end;
 * - hsn_bench_lwt_ipip: an lwt_xmit program for a route of the edge's kernel
 *   that pushes the edge's outer IPv4 header, the Linux stand-in for an ipip
 *   device on kernels without one. iproute2 loads it (`ip route ... encap
 *   bpf xmit obj bench.bpf.o sec socket`, which sets the program type); its
 *   section is "socket" because aya, which parses the whole object, rejects
 *   lwt_* section names. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>

#include "hsn_count.h"
#include "hsn_ctx.h"
#include "hsn_edge.h"
#include "hsn_hook.h"
#include "hsn_parse.h"
#include "hsn_tunnel.h"

/* Load-time setting: the device hsn_bench_gen sends out of. */
const volatile __u32 cfg_gen_ifindex = 0;

/* Ethernet + option-less IPv4 header: what hsn_bench_gen and hsn_bench_timed
 * restore. */
#define HSN_BENCH_GEN_HDR (14 + 20)

/* The outer addresses hsn_bench_lwt_ipip writes: hsn-testkit's EDGE_V4 and
 * super 0's address on its link to the edge (iproute2 loads the program, so
 * it has no load-time settings; the bench checks that the plan agrees). */
#define HSN_BENCH_LWT_LOCAL  0xc0000201 /* 192.0.2.1 */
#define HSN_BENCH_LWT_REMOTE 0xc0a80102 /* 192.168.1.2 */

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

/* The frame hsn_bench_timed restores (key 0): its length and first bytes. */
struct hsn_bench_frame {
	__u32 len;
	__u8 hdr[HSN_BENCH_GEN_HDR];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hsn_bench_frame);
	__uint(max_entries, 1);
} timed_frame SEC(".maps");

/* The program hsn_bench_timed runs (key 0): one of this object's or the
 * library's hsn_edge (any xdp.frags program). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} timed_prog SEC(".maps");

/* xdp.frags like every program hsn_bench_timed tail-calls (a program array
 * holds programs of one kind). */
SEC("xdp.frags")
int hsn_bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* hsn_edge's steps minus hsn_tenant_lookup and hsn_counter_add; the
 * outcome stats stay, so the difference is exactly the metering. */
SEC("xdp.frags")
int hsn_bench_fwd(struct xdp_md *ctx)
{
	struct hsn_next_hop *hop;
	struct hsn_pkt pkt = {};
	struct hsn_wire w;

	if (!hsn_edge_parse(ctx, &pkt))
		return hsn_edge_pass();
	if (hsn_tunnel_proto(&pkt))
		return hsn_edge_pass_because(HSN_EDGE_STAT_UNKNOWN_PEER);
	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_TENANT);
	hsn_wire_of(ctx, &pkt, &w);
	hop = hsn_edge_next_hop();
	if (!hop)
		return hsn_edge_pass_because(HSN_EDGE_STAT_NO_NEXT_HOP);
	if (!hsn_edge_wire_fits(hop, &w)) {
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_TOO_BIG);
		return XDP_DROP;
	}
	return hsn_edge_forward(ctx, hop, &pkt);
}

/* hsn_bench_fwd with the edge's forwarding as it was before the tunnel (a
 * plain redirect of the frame, rewritten for the next hop): the difference
 * is what the tunnel costs (fit check, MSS clamp, encapsulation). */
SEC("xdp.frags")
int hsn_bench_l2(struct xdp_md *ctx)
{
	struct hsn_next_hop *nh, hop;
	struct hsn_pkt pkt = {};
	struct ethhdr *eth;
	void *data_end;

	if (!hsn_edge_parse(ctx, &pkt))
		return hsn_edge_pass();
	if (hsn_tunnel_proto(&pkt))
		return hsn_edge_pass_because(HSN_EDGE_STAT_UNKNOWN_PEER);
	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_TENANT);
	nh = hsn_edge_next_hop();
	if (!nh)
		return hsn_edge_pass_because(HSN_EDGE_STAT_NO_NEXT_HOP);
	hop = *nh;
	if (!hsn_redirect(&tx_ports, hop.ifindex))
		return hsn_edge_pass_because(HSN_EDGE_STAT_REDIRECT_ERROR);
	if (pkt.vlan_len && bpf_xdp_adjust_head(ctx, pkt.vlan_len))
		return hsn_edge_pass_because(HSN_EDGE_STAT_REDIRECT_ERROR);
	eth = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, hop.dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, hop.src_mac, ETH_ALEN);
	eth->h_proto = pkt.l3_proto;
	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_REDIRECTED);
	return XDP_REDIRECT;
}

/* BPF_PROG_TEST_RUN with a repeat count runs every repetition on the same
 * buffer, so a program that encapsulates would see its own output from the
 * second run on. This puts the frame back as it was (the start moved by the
 * previous run's head adjustment, the Ethernet + IPv4 header rewritten),
 * then tail-calls the program timed. The same work for every program: the
 * head is adjusted even by 0. */
SEC("xdp.frags")
int hsn_bench_timed(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hsn_bench_frame *frame;
	__u32 zero = 0;
	long moved;

	frame = bpf_map_lookup_elem(&timed_frame, &zero);
	if (!frame)
		return XDP_ABORTED;
	moved = (data_end - data) - (long)frame->len;
	if (bpf_xdp_adjust_head(ctx, (int)moved))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + HSN_BENCH_GEN_HDR > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, frame->hdr, HSN_BENCH_GEN_HDR);
	bpf_tail_call(ctx, &timed_prog, 0);
	return XDP_ABORTED;
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

/* lwt_xmit (see the top of the file for the section name). On a route's
 * `encap bpf xmit`: the IPv4 packet routed there gets the outer
 * header the edge writes for an IPv4 tunnel (DF, TTL 64, the inner
 * TOS; the kernel fills the checksum), and the kernel routes it again by
 * the outer destination. Without ipip in the kernel this is the closest it
 * comes to forwarding into an ipip device: route, push the header, route
 * the outer packet, neighbour, transmit. */
SEC("socket")
int hsn_bench_lwt_ipip(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *inner = data;
	struct iphdr outer = {};

	if ((void *)(inner + 1) > data_end || inner->version != 4)
		return BPF_DROP;
	outer.version = 4;
	outer.ihl = 5;
	outer.tos = inner->tos;
	outer.tot_len = bpf_htons(skb->len + sizeof(outer));
	outer.frag_off = bpf_htons(HSN_IP_DF);
	outer.ttl = HSN_OUTER_TTL;
	outer.protocol = IPPROTO_IPIP;
	outer.saddr = bpf_htonl(HSN_BENCH_LWT_LOCAL);
	outer.daddr = bpf_htonl(HSN_BENCH_LWT_REMOTE);
	if (bpf_lwt_push_encap(skb, BPF_LWT_ENCAP_IP, &outer, sizeof(outer)))
		return BPF_DROP;
	return BPF_LWT_REROUTE;
}

char LICENSE[] SEC("license") = "Apache-2.0";
