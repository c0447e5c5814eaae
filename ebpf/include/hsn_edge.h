/* SPDX-License-Identifier: Apache-2.0 */
/* Edge program state: load-time settings, maps, its first step (count and
 * parse) and the forwarding step. */
#ifndef HSN_EDGE_H
#define HSN_EDGE_H

#include "hsn_count.h"
#include "hsn_parse.h"
#include "hsn_types.h"

/* Load-time setting: 0 = meter only, every packet goes to the kernel. */
const volatile __u8 cfg_redirect_uplink = 1;

/* Bytes/packets per (tenant slot, direction) at slot * 2 + direction, per
 * CPU; pinned across restarts. An array, not a hash keyed by tenant: the
 * lookup is inlined and never fails for a slot in range. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct hsn_counter);
	__uint(max_entries, 2 * HSN_MAX_TENANT_SLOTS);
} edge_counters SEC(".maps");

/* Which tenant owns each counter slot; written by the agent only, pinned
 * with the counters. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hsn_slot);
	__uint(max_entries, HSN_MAX_TENANT_SLOTS);
} edge_slots SEC(".maps");

/* Packets per outcome (enum hsn_edge_stat), per CPU; pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, HSN_EDGE_STAT_MAX);
} edge_stats SEC(".maps");

/* The current super node, in two generations (key: next_hop_gen's value):
 * the agent writes the entry packets do not read, then flips next_hop_gen,
 * so a packet reads a whole old or a whole new next hop, never one written
 * in place (as for the tenant tables, see hsn_tenant.h). ifindex 0: none.
 * Arrays, not a hash: both lookups are inlined. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hsn_next_hop);
	__uint(max_entries, 2);
} next_hop SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} next_hop_gen SEC(".maps");

/* Egress devices a next hop may use, keyed by ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(max_entries, HSN_MAX_TX_PORTS);
} tx_ports SEC(".maps");

static __always_inline int hsn_edge_pass(void)
{
	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_PASSED);
	return XDP_PASS;
}

static __always_inline int hsn_edge_pass_because(__u32 stat)
{
	hsn_stat_inc(&edge_stats, stat);
	return hsn_edge_pass();
}

/* The edge's first step: count the packet and parse it. 0 for a frame it
 * does not meter (not IP, or malformed), counted as such; the caller passes
 * it (hsn_edge_pass). */
static __always_inline int hsn_edge_parse(struct xdp_md *ctx,
					  struct hsn_pkt *pkt)
{
	int res;

	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_PACKETS);
	res = hsn_parse(ctx, pkt);
	if (res == HSN_PARSE_NON_IP) {
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_NON_IP);
		return 0;
	}
	if (res != HSN_PARSE_OK) {
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_PARSE_ERROR);
		return 0;
	}
	return 1;
}

/* Forwarding: bpf_redirect_map through a devmap, rewriting the Ethernet
 * header for the next hop. Why this and not:
 * - XDP_TX: the super node is usually behind another interface than the
 *   one UE traffic arrives on;
 * - bpf_fib_lookup + kernel neighbours: the operator's assignment, not the
 *   routing table, picks the super node, and failover must not wait on
 *   ARP/ND; the next hop here is one map entry, switched by one write;
 * - bpf_redirect(ifindex): a devmap holds a reference to the device, drops
 *   the entry when the device goes away (then XDP_PASS via the fallback
 *   flag, not a drop) and makes the allowed egress devices explicit state.
 */
static __always_inline int hsn_edge_forward(struct xdp_md *ctx,
					    const struct hsn_pkt *pkt)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&next_hop_gen, &zero);
	__u32 key = gen ? *gen & 1 : 0;
	struct hsn_next_hop *nh = bpf_map_lookup_elem(&next_hop, &key);
	struct hsn_next_hop hop;
	struct ethhdr *eth;
	void *data_end;

	if (!nh || !nh->ifindex)
		return hsn_edge_pass_because(HSN_EDGE_STAT_NO_NEXT_HOP);
	hop = *nh;
	if (bpf_redirect_map(&tx_ports, hop.ifindex, XDP_PASS) != XDP_REDIRECT)
		return hsn_edge_pass_because(HSN_EDGE_STAT_REDIRECT_ERROR);
	/* Ingress VLAN tags belong to the access segment: pop them, the
	 * frame leaves untagged towards the super node. */
	if (pkt->vlan_len && bpf_xdp_adjust_head(ctx, pkt->vlan_len))
		return hsn_edge_pass_because(HSN_EDGE_STAT_REDIRECT_ERROR);
	eth = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, hop.dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, hop.src_mac, ETH_ALEN);
	eth->h_proto = pkt->l3_proto;
	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_REDIRECTED);
	return XDP_REDIRECT;
}

#endif /* HSN_EDGE_H */
