// SPDX-License-Identifier: Apache-2.0
/* Edge ingress: parse, find the tenant, meter; tenant uplink goes to the
 * super node through the tunnel, tenant downlink comes back through it.
 * Anything not understood or not a tenant's goes to the kernel. Built for
 * XDP and, with -DHSN_TC, for TC (hsn_ctx.h). */
#include "hsn_count.h"
#include "hsn_ctx.h"
#include "hsn_edge.h"
#include "hsn_hook.h"
#include "hsn_parse.h"
#include "hsn_tenant.h"
#include "hsn_tunnel.h"

static __always_inline void hsn_edge_count(const struct hsn_tenant_match *m,
					   const struct hsn_wire *w)
{
	if (hsn_counter_add_at(&edge_counters, m->ref.slot * 2 + m->dir,
			       w->packets, w->bytes))
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_COUNTER_FULL);
	else
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_TENANT);
}

/* A tunnel packet from a known super node: its inner packet is metered and
 * delivered (the kernel routes it to the UE). Tunnel packets of anyone
 * else are the kernel's business (an ipip device may want them), never
 * metered. */
static __always_inline int hsn_edge_from_tunnel(struct hsn_ctx *ctx,
						const struct hsn_pkt *outer)
{
	struct hsn_pkt inner = {};
	struct hsn_tenant_match m = {};
	struct hsn_next_hop *hop;
	struct hsn_wire w;

	if (!bpf_map_lookup_elem(&edge_supers, outer->saddr))
		return hsn_edge_pass_because(HSN_EDGE_STAT_UNKNOWN_PEER);
	if (hsn_parse_inner(ctx, outer, &inner) != HSN_PARSE_OK)
		return hsn_edge_pass_because(HSN_EDGE_STAT_PARSE_ERROR);
	if (!hsn_tenant_lookup(&inner, &m))
		return hsn_edge_pass_because(HSN_EDGE_STAT_NON_TENANT);
	hsn_wire_of(ctx, &inner, &w);
	hsn_edge_count(&m, &w);
	hop = hsn_edge_next_hop();
	if (hop)
		hsn_edge_clamp(ctx, hop, &inner);
	if (hsn_decap(ctx, outer, &inner))
		return HSN_ACT_ABORTED;
	hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_DECAPSULATED);
	return hsn_edge_pass();
}

SEC(HSN_PROG_SEC)
int hsn_edge(struct hsn_ctx *ctx)
{
	struct hsn_tenant_match m = {};
	struct hsn_next_hop *hop;
	struct hsn_pkt pkt = {};
	struct hsn_wire w;

	if (!hsn_edge_parse(ctx, &pkt))
		return hsn_edge_pass();
	if (hsn_tunnel_proto(&pkt))
		return hsn_edge_from_tunnel(ctx, &pkt);
	if (!hsn_tenant_lookup(&pkt, &m))
		return hsn_edge_pass_because(HSN_EDGE_STAT_NON_TENANT);
	hsn_wire_of(ctx, &pkt, &w);

	/* Downlink that did not come through the tunnel: metered, then the
	 * kernel routes it to the UE (no super node saw it). */
	if (m.dir != HSN_DIR_UPLINK || !cfg_redirect_uplink) {
		hsn_edge_count(&m, &w);
		return hsn_edge_pass();
	}
	hop = hsn_edge_next_hop();
	if (!hop) {
		hsn_edge_count(&m, &w);
		return hsn_edge_pass_because(HSN_EDGE_STAT_NO_NEXT_HOP);
	}
	/* No fragmenting here: a packet the tunnel cannot carry is dropped,
	 * not metered (TCP never sends one: its SYNs are clamped). */
	if (!hsn_edge_wire_fits(hop, &w)) {
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_TOO_BIG);
		return HSN_ACT_DROP;
	}
	hsn_edge_count(&m, &w);
	return hsn_edge_forward(ctx, hop, &pkt);
}

/* Not GPL-compatible: GPL-only helpers (bpf_printk, ...) are unavailable. */
char LICENSE[] SEC("license") = "Apache-2.0";
