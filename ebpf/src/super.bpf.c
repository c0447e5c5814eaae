// SPDX-License-Identifier: Apache-2.0
/* Super-node ingress: the independent witness of what its edges carry.
 * - Tenant uplink arrives in a tunnel from an edge (hsn_tunnel.h): counted
 *   under the tunnel's outer source when that is one of its edges, then
 *   decapsulated and handed to the kernel, which routes it on.
 * - Tenant downlink arrives plain (the super node is the route back to the
 *   UEs): counted under the edge whose tunnel the UE's uplink last came
 *   through, encapsulated toward that edge and redirected on the way back
 *   to it the agent resolved (no per-packet FIB lookup: bpf_fib_lookup is
 *   GPL-only, and the edges' routes change at control time).
 * Everything else goes to the kernel untouched and is never metered: plain
 * tenant uplink, tunnels of unknown sources, malformed packets. Built for
 * XDP and, with -DHSN_TC, for TC (hsn_ctx.h). */
#include "hsn_count.h"
#include "hsn_ctx.h"
#include "hsn_hook.h"
#include "hsn_parse.h"
#include "hsn_super.h"
#include "hsn_tenant.h"
#include "hsn_tunnel.h"

static __always_inline int hsn_super_from_edge(struct hsn_ctx *ctx,
					       const struct hsn_pkt *outer)
{
	struct hsn_pkt inner = {};
	struct hsn_tenant_match m = {};
	struct hsn_wire w;

	if (!bpf_map_lookup_elem(&super_edges, outer->saddr))
		return hsn_super_pass(HSN_SUPER_STAT_UNKNOWN_EDGE);
	if (hsn_parse_inner(ctx, outer, &inner) != HSN_PARSE_OK)
		return hsn_super_pass(HSN_SUPER_STAT_PARSE_ERROR);
	/* Only tenant traffic is relayed: the rest stays in its tunnel. */
	if (!hsn_tenant_lookup(&inner, &m))
		return hsn_super_pass(HSN_SUPER_STAT_NON_TENANT);
	hsn_wire_of(ctx, &inner, &w);
	hsn_super_count(outer->saddr, m.ref.tenant, m.dir, &w);
	if (m.dir == HSN_DIR_UPLINK)
		hsn_super_learn(inner.saddr, outer->saddr);
	if (hsn_decap(ctx, outer, &inner))
		return HSN_ACT_ABORTED;
	return hsn_super_pass(HSN_SUPER_STAT_DECAPSULATED);
}

static __always_inline int hsn_super_to_edge(struct hsn_ctx *ctx,
					     const struct hsn_pkt *pkt,
					     const struct hsn_tenant_match *m)
{
	struct hsn_next_hop *hop;
	struct hsn_addr *edge;
	struct hsn_wire w;

	edge = bpf_map_lookup_elem(&ue_edge, pkt->daddr);
	if (!edge)
		return hsn_super_pass(HSN_SUPER_STAT_UNKNOWN_UE);
	hop = bpf_map_lookup_elem(&super_edges, edge->addr);
	if (!hop || !hop->ifindex)
		return hsn_super_pass(HSN_SUPER_STAT_NO_ROUTE);
	/* The edge clamps TCP's MSS; anything else this big is dropped. */
	hsn_wire_of(ctx, pkt, &w);
	if (w.max_len + hsn_tunnel_overhead(hop->outer_v6) > hop->mtu) {
		hsn_stat_inc(&super_stats, HSN_SUPER_STAT_TOO_BIG);
		return HSN_ACT_DROP;
	}
	if (!hsn_redirect(&super_tx_ports, hop->ifindex))
		return hsn_super_pass(HSN_SUPER_STAT_NO_ROUTE);
	hsn_super_count(hop->remote, m->ref.tenant, HSN_DIR_DOWNLINK, &w);
	if (hsn_encap(ctx, pkt, hop))
		return HSN_ACT_ABORTED;
	hsn_stat_inc(&super_stats, HSN_SUPER_STAT_ENCAPSULATED);
	return HSN_ACT_REDIRECT;
}

SEC(HSN_PROG_SEC)
int hsn_super(struct hsn_ctx *ctx)
{
	struct hsn_tenant_match m = {};
	struct hsn_pkt pkt = {};
	int res;

	hsn_stat_inc(&super_stats, HSN_SUPER_STAT_PACKETS);
	res = hsn_parse(ctx, &pkt);
	if (res == HSN_PARSE_NON_IP)
		return hsn_super_pass(HSN_SUPER_STAT_NON_IP);
	if (res != HSN_PARSE_OK)
		return hsn_super_pass(HSN_SUPER_STAT_PARSE_ERROR);
	if (hsn_tunnel_proto(&pkt))
		return hsn_super_from_edge(ctx, &pkt);
	if (!hsn_tenant_lookup(&pkt, &m))
		return hsn_super_pass(HSN_SUPER_STAT_NON_TENANT);
	if (m.dir == HSN_DIR_UPLINK)
		return hsn_super_pass(HSN_SUPER_STAT_UNKNOWN_EDGE);
	return hsn_super_to_edge(ctx, &pkt, &m);
}

/* Not GPL-compatible: GPL-only helpers (bpf_printk, ...) are unavailable. */
char LICENSE[] SEC("license") = "Apache-2.0";
