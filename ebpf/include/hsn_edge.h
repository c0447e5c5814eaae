/* SPDX-License-Identifier: Apache-2.0 */
/* Edge program state: load-time settings, maps, its first step (count and
 * parse) and the forwarding step. */
#ifndef HSN_EDGE_H
#define HSN_EDGE_H

#include "hsn_count.h"
#include "hsn_ctx.h"
#include "hsn_hook.h"
#include "hsn_parse.h"
#include "hsn_tunnel.h"
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

/* The current super node and the tunnel to it, in two generations (key:
 * next_hop_gen's value): the agent writes the entry packets do not read, then
 * flips next_hop_gen, so a packet reads a whole old or a whole new next hop,
 * never one written in place (as for the tenant tables, see hsn_tenant.h).
 * ifindex 0: none. Arrays, not a hash: both lookups are inlined. */
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

/* Super nodes of the network, by address: tunnelled downlink is taken
 * from these only (any of them: a re-home leaves packets in flight). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hsn_addr);
	__type(value, __u32);
	__uint(max_entries, HSN_MAX_EDGES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} edge_supers SEC(".maps");

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
	return HSN_ACT_PASS;
}

static __always_inline int hsn_edge_pass_because(__u32 stat)
{
	hsn_stat_inc(&edge_stats, stat);
	return hsn_edge_pass();
}

/* The edge's first step: count the packet and parse it. 0 for a frame it
 * does not meter (not IP, or malformed), counted as such; the caller passes
 * it (hsn_edge_pass). */
static __always_inline int hsn_edge_parse(struct hsn_ctx *ctx,
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

/* The next hop packets read now; NULL or ifindex 0: none. */
static __always_inline struct hsn_next_hop *hsn_edge_next_hop(void)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&next_hop_gen, &zero);
	__u32 key = gen ? *gen & 1 : 0;
	struct hsn_next_hop *nh = bpf_map_lookup_elem(&next_hop, &key);

	return nh && nh->ifindex ? nh : NULL;
}

/* Does tenant uplink `pkt` fit the tunnel of `hop`? */
static __always_inline int hsn_edge_fits(const struct hsn_next_hop *hop,
					 const struct hsn_pkt *pkt)
{
	return pkt->l3_len + hsn_tunnel_overhead(hop->outer_v6) <= hop->mtu;
}

/* Does every packet of tenant uplink `w` on the wire fit the tunnel of
 * `hop`? (hsn_edge_fits, for a GSO packet too.) */
static __always_inline int hsn_edge_wire_fits(const struct hsn_next_hop *hop,
					      const struct hsn_wire *w)
{
	return w->max_len + hsn_tunnel_overhead(hop->outer_v6) <= hop->mtu;
}

/* Lowers the MSS of a tenant TCP SYN (either way) so that neither end
 * sends segments the tunnel cannot carry. */
static __always_inline void hsn_edge_clamp(struct hsn_ctx *ctx,
					   const struct hsn_next_hop *hop,
					   const struct hsn_pkt *pkt)
{
	__u16 mss = hsn_tunnel_mss(pkt, hop->mtu, hop->outer_v6);

	if (mss && hsn_clamp_mss(ctx, pkt, mss))
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_MSS_CLAMPED);
}

/* Forwarding: IP in IP to the super node (hsn_tunnel.h), sent with
 * bpf_redirect_map through a devmap (TC: bpf_redirect to a device of the
 * same devmap, hsn_redirect). Why this and not:
 * - XDP_TX: the super node is usually behind another interface than the
 *   one UE traffic arrives on;
 * - bpf_fib_lookup + kernel neighbours per packet: the operator's
 *   assignment, not the routing table, picks the super node, and failover
 *   must not wait on ARP/ND; the agent resolves the route and neighbour
 *   toward the super node ahead of time and the next hop is one map entry,
 *   switched by one write (a re-home, also to another cluster);
 * - bpf_redirect(ifindex): a devmap holds a reference to the device, drops
 *   the entry when the device goes away (then XDP_PASS via the fallback
 *   flag, not a drop) and makes the allowed egress devices explicit state.
 * Ingress VLAN tags belong to the access segment: the encapsulated frame
 * leaves untagged. */
static __always_inline int hsn_edge_forward(struct hsn_ctx *ctx,
					    const struct hsn_next_hop *nh,
					    const struct hsn_pkt *pkt)
{
	if (!hsn_redirect(&tx_ports, nh->ifindex))
		return hsn_edge_pass_because(HSN_EDGE_STAT_REDIRECT_ERROR);
	hsn_edge_clamp(ctx, nh, pkt);
	if (hsn_encap(ctx, pkt, nh))
		return HSN_ACT_ABORTED;
	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_REDIRECTED);
	return HSN_ACT_REDIRECT;
}

#endif /* HSN_EDGE_H */
